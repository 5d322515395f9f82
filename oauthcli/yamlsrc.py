"""YAML files read safely, with the line of every key kept for error messages.

A registry file's parse is kept in :mod:`oauthcli.parsecache` and used again
while the file's bytes are unchanged, so a warm ``send`` does not import PyYAML
(~10 ms); :mod:`oauthcli.yamlparse` parses the others.
"""

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


class YamlProblem(Exception):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


def load(path: Path) -> Document:
    """Read one YAML file; raise :class:`YamlProblem` when it cannot be used at all."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlProblem(Problem(path, None, None, f"cannot read file: {exc.strerror}")) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlProblem(
            Problem(path, line, None, "not UTF-8 text (is it a binary file?)")
        ) from None
    from oauthcli import parsecache

    source = parsecache.digest(raw)
    cached = parsecache.get(path, source)
    if cached is not None:
        data, lines, scalars = cached
        return Document(path, data, lines, scalars)
    doc = loads(text, path)
    parsecache.put(path, source, (doc.data, doc.lines, doc.scalars))
    return doc


def loads(text: str, path: Path) -> Document:
    """Parse ``text`` (read from ``path``); raises :class:`YamlProblem`."""
    from oauthcli.yamlparse import parse

    return parse(text, path)
