"""Secrets that cannot be printed by accident.

A value read from a secret-bearing key is wrapped in :class:`Secret` at once;
``str``/``repr``/f-strings show it masked and only :meth:`Secret.reveal` gives
the value. Every revealed value is also remembered, so :func:`scrub` can blank
it out of any text (a server error body that echoes a credential, say) before
that text is printed.
"""

from __future__ import annotations

import re

MASK = "****"
_known: set[str] = set()
_pattern: re.Pattern[str] | None = None
# Values this short are too likely to occur in ordinary text to scrub safely.
_MIN_SCRUB_LEN = 4


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        remember(value)

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return MASK

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    def __format__(self, spec: str) -> str:
        return MASK

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> None:  # type: ignore[override]
        raise TypeError("a Secret cannot be pickled")


def reveal(value: str | Secret | None) -> str | None:
    return value.reveal() if isinstance(value, Secret) else value


def remember(value: str) -> None:
    """Make :func:`scrub` blank out ``value`` from now on."""
    global _pattern
    if len(value) >= _MIN_SCRUB_LEN and value not in _known:
        _known.add(value)
        _pattern = None


def scrub(text: str) -> str:
    """Replace every secret value seen in this process by the mask."""
    global _pattern
    if not _known:
        return text
    if _pattern is None:
        alternatives = sorted(_known, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in alternatives))
    return _pattern.sub(MASK, text)


def mask_token(token: str) -> str:
    """A token's shape without its value: ``eyJh…(812 chars)``."""
    if len(token) <= 12:
        return MASK
    return f"{token[:4]}…({len(token)} chars)"
