"""Secrets that cannot be printed by accident.

A value read from a secret-bearing key is wrapped in :class:`Secret` at once;
``str``/``repr``/f-strings show it masked and only :meth:`Secret.reveal` gives
the value. Every revealed value is also remembered, so :func:`scrub` can blank
it out of any text (a server error body that echoes a credential, say) before
that text is printed.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "****"
_known: set[str] = set()
_pattern: re.Pattern[str] | None = None
_byte_pattern: re.Pattern[bytes] | None = None
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
    """Make :func:`scrub` blank out ``value``, in every spelling it travels in, from now on."""
    global _pattern, _byte_pattern
    if len(value) >= _MIN_SCRUB_LEN and value not in _known:
        _known.add(value)
        _pattern = None
        _byte_pattern = None


def _raw_bytes(value: str) -> list[bytes]:
    """The bytes ``value`` is sent as: UTF-8 (lone surrogates from a non-UTF-8 argv
    back to the bytes they stood for), and Latin-1 when it has a Latin-1 spelling."""
    spellings = [value.encode("utf-8", "surrogateescape" if _escaped(value) else "surrogatepass")]
    try:
        spellings.append(value.encode("latin-1"))
    except UnicodeEncodeError:
        pass
    return spellings


def _escaped(value: str) -> bool:
    try:
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def _encoded(raw: bytes) -> set[str]:
    """The ASCII spellings of ``raw``: form- and percent-encoded, base64 with and
    without padding."""
    forms: set[str] = set()
    for encoded in (quote_plus(raw, safe=""), quote(raw, safe=""), quote(raw)):
        forms.add(encoded)
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded))
    for b64 in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = b64.decode("ascii")
        forms.add(text)
        forms.add(text.rstrip("="))
    return forms


def _text_forms(value: str) -> set[str]:
    forms = {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1]}
    # As Python quotes it: a KeyError, an f-string's !r, a traceback's message.
    forms |= {repr(value)[1:-1], ascii(value)[1:-1]}
    for raw in _raw_bytes(value):
        forms |= _encoded(raw)
    forms.discard("")
    return forms


def _byte_forms(value: str) -> set[bytes]:
    forms = set(_raw_bytes(value))
    for text in _text_forms(value):
        forms.add(text.encode("utf-8", "surrogateescape" if _escaped(text) else "surrogatepass"))
    forms.discard(b"")
    return forms


def _alternation(forms: set[str]) -> str:
    """One regular expression for ``forms``, shaped as a trie so that matching costs a
    character test per level, not one per spelling; longer spellings win (a padded
    base64 form over its unpadded prefix)."""
    trie: dict[str, Any] = {}
    for form in forms:
        node = trie
        for char in form:
            node = node.setdefault(char, {})
        node[""] = {}
    # Built bottom-up with an explicit stack: a token may be thousands of characters.
    done: dict[int, str] = {}
    stack: list[tuple[dict[str, Any], bool]] = [(trie, False)]
    while stack:
        node, expanded = stack.pop()
        if not expanded:
            stack.append((node, True))
            stack.extend((child, False) for char, child in node.items() if char)
            continue
        branches = [re.escape(c) + done.pop(id(child)) for c, child in sorted(node.items()) if c]
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if branches and "" in node:
            body = f"(?:{body})?"
        done[id(node)] = body if branches else ""
    return done[id(trie)]


def scrub(text: str) -> str:
    """Replace every secret value seen in this process, in any of its spellings, by the mask:
    raw, form- and percent-encoded, base64 (standard and URL-safe, padded or not),
    JSON-escaped, and quoted as Python's ``repr`` quotes it."""
    global _pattern
    if not _known:
        return text
    if _pattern is None:
        forms: set[str] = set()
        for value in _known:
            forms |= _text_forms(value)
        _pattern = re.compile(_alternation(forms))
    return _pattern.sub(MASK, text)


def contains_secret(data: bytes) -> bool:
    """Whether ``data`` holds a known secret in any spelling: raw as UTF-8 or Latin-1,
    percent- or form-encoded, base64 (standard or URL-safe), JSON-escaped."""
    global _byte_pattern
    if not _known or not data:
        return False
    if _byte_pattern is None:
        forms: set[bytes] = set()
        for value in _known:
            forms |= _byte_forms(value)
        # Each byte stands for the Latin-1 character of the same number.
        pattern = _alternation({f.decode("latin-1") for f in forms})
        _byte_pattern = re.compile(pattern.encode("latin-1"))
    return _byte_pattern.search(data) is not None


def _userinfo_span(url: str, loose: bool = False) -> tuple[int, int] | None:
    """Where the password of ``scheme://user:password@host`` lies in ``url``, found
    without parsing it strictly: the URL may be invalid (a bad port, white space).
    ``loose``: a password may itself hold ``/`` (``https://u:a/b@host``, which a
    parser reads as host ``u`` and a bad port), so the userinfo runs to the last
    ``@`` before any query or fragment."""
    start = url.find("://")
    start = start + 3 if start >= 0 else 0
    end = len(url)
    for stop in "?#" if loose else "/?#":
        found = url.find(stop, start)
        if found >= 0:
            end = min(end, found)
    at = url.rfind("@", start, end)
    if at < 0:
        return None
    colon = url.find(":", start, at)
    if colon < 0:
        return None
    return colon + 1, at


def url_password(url: str, loose: bool = False) -> str | None:
    """The password written into ``url``'s authority, as written (maybe percent-encoded)."""
    span = _userinfo_span(url, loose)
    return url[span[0] : span[1]] if span else None


def mask_url(url: str, loose: bool = False) -> str:
    """``url`` with the password of its userinfo replaced by the mask, valid URL or not."""
    span = _userinfo_span(url, loose)
    return url if span is None else url[: span[0]] + MASK + url[span[1] :]


def mask_token(token: str) -> str:
    """A token's shape without its value: ``eyJh…(812 chars)``."""
    if len(token) <= 12:
        return MASK
    return f"{token[:4]}…({len(token)} chars)"
