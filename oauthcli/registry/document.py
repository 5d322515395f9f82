"""A YAML file as read: its data, and the line of every key, for error messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oauthcli.errors import Problem

Key = tuple[str | int, ...]


@dataclass(repr=False, eq=False)
class Document:
    path: Path
    data: Any
    lines: dict[Key, int] = field(default_factory=dict)
    # The text of each unquoted scalar that YAML 1.1 turned into something else
    # (012345 → 5349, 2026-01-02 → a date, 2.50 → 2.5): where a string is wanted,
    # the value as written is used, not its reading.
    scalars: dict[Key, str] = field(default_factory=dict)

    def line(self, key: Key) -> int | None:
        """The line of ``key``, else of its nearest ancestor that has one."""
        while True:
            if key in self.lines:
                return self.lines[key]
            if not key:
                return None
            key = key[:-1]

    def problem(self, key: Key, message: str) -> Problem:
        dotted = ".".join(str(k) for k in key) or None
        return Problem(self.path, self.line(key), dotted, message)
