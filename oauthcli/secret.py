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
import threading
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "****"
_known: set[str] = set()
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
    if len(value) >= _MIN_SCRUB_LEN and value not in _known:
        with _lock:
            if value not in _known:
                _known.add(value)
                _pending.append(value)


class _Chunk:
    """Some of the known secrets, with their patterns compiled when first needed."""

    __slots__ = ("values", "text", "data")

    def __init__(self, values: list[str]) -> None:
        self.values = values
        self.text: re.Pattern[str] | None = None
        self.data: re.Pattern[bytes] | None = None

    def text_pattern(self) -> re.Pattern[str]:
        if self.text is None:
            forms: set[str] = set()
            for value in self.values:
                forms |= _text_forms(value)
            self.text = re.compile(_alternation(forms))
        return self.text

    def data_pattern(self) -> re.Pattern[bytes]:
        if self.data is None:
            forms: set[bytes] = set()
            for value in self.values:
                forms |= _byte_forms(value)
            # Each byte stands for the Latin-1 character of the same number.
            pattern = _alternation({f.decode("latin-1") for f in forms})
            self.data = re.compile(pattern.encode("latin-1"))
        return self.data


# Secrets are compiled in chunks whose sizes halve from the first: one more secret
# (a batch row's own key) compiles a small pattern, not all of them again; two chunks
# of a size merge, so there are never more than log2(n) to search with.
_chunks: list[_Chunk] = []
_pending: list[str] = []
_lock = threading.Lock()


def _current() -> list[_Chunk]:
    if _pending:
        with _lock:
            if _pending:
                _chunks.append(_Chunk(list(_pending)))
                _pending.clear()
                while len(_chunks) >= 2 and len(_chunks[-1].values) >= len(_chunks[-2].values):
                    last = _chunks.pop()
                    _chunks[-1] = _Chunk(_chunks[-1].values + last.values)
    return list(_chunks)


def forget_all() -> None:
    """Forget every remembered secret: for a test suite, where one process runs many
    unrelated calls and a token issued as an ordinary word would mask it in the next."""
    with _lock:
        _known.clear()
        _pending.clear()
        _chunks.clear()


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
    # Its UTF-8 bytes read as Latin-1: what a body decoded byte for byte shows.
    forms.add(_raw_bytes(value)[0].decode("latin-1"))
    if any(c in value for c in "&<>\"'"):  # as an HTML error page escapes it
        escaped = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        forms.add(escaped)
        for dq, sq in (("&quot;", "&#x27;"), ("&quot;", "&#39;"), ("&#34;", "&#39;")):
            forms.add(escaped.replace('"', dq).replace("'", sq))
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
    JSON-escaped, and quoted as Python's ``repr`` quotes it. Where spellings overlap
    (one secret's end is another's start) the whole run is masked, never a piece left."""
    if not text:
        return text
    if "@" in text and "://" in text:  # two cheap tests: a batch scrubs several texts a row
        text = mask_userinfo(text)
    if not _known:
        return text
    spans: list[tuple[int, int]] = []
    for chunk in _current():
        spans += _spans(chunk.text_pattern(), text)
    if not spans:
        return text
    spans.sort()
    pieces: list[str] = []
    done = 0
    start, end = spans[0]
    for s_start, s_end in spans[1:]:
        if s_start <= end:
            end = max(end, s_end)
            continue
        pieces += [text[done:start], MASK]
        done, start, end = end, s_start, s_end
    pieces += [text[done:start], MASK, text[end:]]
    return "".join(pieces)


def scrub_spread(text: str) -> str:
    """:func:`scrub`, and a secret broken up by white space masked too: a server that
    wraps what it echoes (base64 in 76-character lines, a value split over lines).
    For server text shown in one line; a value interrupted by a space is masked across it."""
    text = scrub(text)
    if not _known or not _SPACE.search(text):
        return text
    kept = [i for i, c in enumerate(text) if not c.isspace()]
    joined = "".join(text[i] for i in kept)
    spans: list[tuple[int, int]] = []
    for chunk in _current():
        spans += [(kept[s], kept[e - 1] + 1) for s, e in _spans(chunk.text_pattern(), joined)]
    pieces: list[str] = []
    done = 0
    for start, end in sorted(spans):
        if start < done:  # overlaps the run just masked
            done = max(done, end)
            continue
        pieces += [text[done:start], MASK]
        done = end
    pieces.append(text[done:])
    return "".join(pieces)


_SPACE = re.compile(r"\s")


def _spans(pattern: re.Pattern[str], text: str) -> list[tuple[int, int]]:
    """Where ``pattern`` matches in ``text``, a match that starts inside another and runs
    past its end included (one secret's spelling overlapping another's)."""
    spans = []
    match = pattern.search(text)
    while match:
        start, end = match.span()
        inside = start + 1
        while inside < end:
            more = pattern.match(text, inside)
            if more and more.end() > end:
                end = more.end()
            inside += 1
        spans.append((start, end))
        match = pattern.search(text, end)
    return spans


def contains_secret(data: bytes) -> bool:
    """Whether ``data`` holds a known secret in any spelling: raw as UTF-8 or Latin-1,
    percent- or form-encoded, base64 (standard or URL-safe), JSON-escaped."""
    if not _known or not data:
        return False
    return any(chunk.data_pattern().search(data) for chunk in _current())


def scrub_bytes(data: bytes) -> bytes:
    """:func:`scrub` for bytes that are not text (a binary body the outbound log keeps as
    base64): every known secret, in each of its byte spellings, replaced by the mask."""
    if not _known or not data:
        return data
    for chunk in _current():
        data = chunk.data_pattern().sub(MASK.encode("ascii"), data)
    return data


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


# ``scheme://user:password@`` in any text: the password, however short, is masked.
# The look-behind starts a match only where a scheme can start: linear on a long word.
_USERINFO = re.compile(
    r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*://[^\s/?#@:\"'<>\\]*:)([^\s/?#\"'<>\\]+)@"
)


def mask_userinfo(text: str) -> str:
    """``text`` with the password of every ``scheme://user:password@host`` in it masked:
    scrub's list of known secrets skips values under four characters, a URL's does not."""
    return _USERINFO.sub(lambda m: f"{m.group(1)}{MASK}@", text)


def remember_url(url: str) -> None:
    """Remember the password written into ``url`` and its whole ``user:password`` (what
    Basic auth base64-encodes), as written and percent-decoded."""
    from urllib.parse import unquote

    span = _userinfo_span(url)
    if span is None:
        return
    start = url.find("://")
    userinfo = url[start + 3 if start >= 0 else 0 : span[1]]
    for value in (url[span[0] : span[1]], userinfo):
        remember(value)
        remember(unquote(value))


def mask_url(url: str, loose: bool = False) -> str:
    """``url`` with the password of its userinfo replaced by the mask, valid URL or not."""
    span = _userinfo_span(url, loose)
    return url if span is None else url[: span[0]] + MASK + url[span[1] :]


def mask_token(token: str) -> str:
    """A token's shape without its value: ``eyJh…(812 chars)``."""
    if len(token) <= 12:
        return MASK
    return f"{token[:4]}…({len(token)} chars)"
