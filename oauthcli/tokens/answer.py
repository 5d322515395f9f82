"""A token endpoint's answer, read once into one shape (SPEC §4).

:func:`decode` turns the body of a token endpoint's response into a dict,
whatever the provider sent: JSON (served as ``application/json``,
``text/plain`` or with no content type) or a form-encoded answer (GitHub's
classic endpoint). :func:`read` turns that dict into a :class:`TokenAnswer`,
normalising what real providers vary on: numbers sent as strings, ``scope``
as a list or comma-separated, ``token_type`` in any spelling (kept as issued),
Keycloak's ``refresh_expires_in`` (``0`` there means "no expiry").

An access token or token type that cannot go in an HTTP header (a line break,
NUL or another control, a character beyond Latin-1) is refused here, naming
the field and never showing the value, so it is never cached or sent.
:mod:`oauthcli.tokens.grants` calls both; :mod:`oauthcli.tokens.service` only
ever sees the result.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from oauthcli.errors import UnusableAnswer
from oauthcli.headers import header_value_problem
from oauthcli.tokens.model import MAX_LIFETIME

#: Bytes of a token answer read at most; real ones are a few KiB (a JWT with many claims).
MAX_ANSWER_BYTES = 1024 * 1024

_SECONDS = re.compile(r"\s*\+?([0-9]{1,12})(?:\.[0-9]*)?\s*")
_FORM_TYPE = "application/x-www-form-urlencoded"


@dataclass(frozen=True, repr=False)
class TokenAnswer:
    access_token: str
    token_type: str  # as issued ("Bearer" when the server said nothing)
    expires_in: int | None  # seconds, as issued; None when not stated
    scope: str | None  # space-separated
    refresh_token: str | None
    refresh_expires_in: int | None  # seconds (Keycloak's refresh_expires_in), None if not stated

    def __repr__(self) -> str:
        return f"TokenAnswer(token_type={self.token_type!r}, expires_in={self.expires_in!r})"


def decode(body: bytes, content_type: str | None) -> dict[str, Any] | None:
    """The answer's members: a JSON object, or form-encoded pairs; None if it is neither."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    text = body.decode("utf-8", "replace")
    if ctype != _FORM_TYPE:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):  # 4300-digit numbers, deep nesting
            data = None
        if isinstance(data, dict):
            return data
        if data is not None or ctype not in ("", "text/plain"):
            return None
    # Form-encoded: declared so, or undeclared text that is one (GitHub's classic answer).
    if "=" not in text or "{" in text[:1]:
        return None
    try:
        pairs = parse_qsl(text.strip(), keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    form = dict(pairs)
    return form if {"access_token", "error"} & form.keys() else None


def read(data: dict[str, Any]) -> TokenAnswer:
    """The answer ``data`` (refusals already ruled out) as a :class:`TokenAnswer`.

    Raises :class:`UnusableAnswer` for a token that cannot be used.
    """
    token = data.get("access_token")
    if not isinstance(token, str) or not token:
        keys_seen = ", ".join(sorted(str(k) for k in data)[:20]) or "none"
        raise UnusableAnswer(f"JSON without an access_token (keys: {keys_seen})")
    _header_safe("access_token", token)
    token_type = data.get("token_type")
    if token_type is None or token_type == "":
        token_type = "Bearer"
    elif not isinstance(token_type, str):
        raise UnusableAnswer(f"token_type as {_kind(token_type)}, not a string")
    else:
        _header_safe("token_type", token_type)
    expires_in = data.get("expires_in")
    if expires_in is not None and expires_in != "":
        expires_in = seconds(expires_in)
        if expires_in is None:
            raise UnusableAnswer(
                f"expires_in as {_kind(data['expires_in'])}, not seconds from 0 to {MAX_LIFETIME}"
            )
    else:
        expires_in = None
    refresh = data.get("refresh_token")
    return TokenAnswer(
        access_token=token,
        token_type=token_type,
        expires_in=expires_in,
        scope=_scope(data.get("scope")),
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        refresh_expires_in=_refresh_expires_in(data),
    )


def seconds(value: Any) -> int | None:
    """A lifetime as providers send it (``3600``, ``"3600"``, ``3600.0``); None if garbage.

    Negative, non-finite, boolean and beyond :data:`MAX_LIFETIME` values are garbage.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number: float = value
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str):
        match = _SECONDS.fullmatch(value)
        if not match:
            return None
        number = int(match.group(1))
    else:
        return None
    # A huge int is compared as an int: math.isfinite() would overflow converting it.
    if isinstance(number, float) and not math.isfinite(number):
        return None
    if number < 0 or number > MAX_LIFETIME:
        return None
    return int(number)


def _scope(value: Any) -> str | None:
    if isinstance(value, str):
        words = [w for w in re.split(r"[\s,]+", value) if w]
    elif isinstance(value, list):
        words = [w for item in value if isinstance(item, str) for w in item.split() if w]
    else:
        return None
    return " ".join(words) or None


def _refresh_expires_in(data: dict[str, Any]) -> int | None:
    for key in ("refresh_expires_in", "refresh_token_expires_in"):
        raw = data.get(key)
        value = seconds(raw)
        if value:  # Keycloak's 0 means an offline token that does not expire
            return value
        if isinstance(raw, int) and not isinstance(raw, bool) and raw > MAX_LIFETIME:
            return MAX_LIFETIME  # "practically forever", bounded so that it stays a date
    return None


def _header_safe(name: str, value: str) -> None:
    why = header_value_problem(value, word=True)
    if why is None:
        return
    article = "an" if name[0] in "aeiou" else "a"
    raise UnusableAnswer(
        f"{article} {name} that {why}; it cannot go in an HTTP header, so it is not used"
    )


def _kind(value: Any) -> str:
    """What a value is, without showing a long or secret one."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= 24 else f"a {len(text)}-digit number"
    if isinstance(value, str):
        return repr(value) if len(value) <= 24 else f"a {len(value)}-character string"
    if isinstance(value, list):
        return "a list"
    return "an object" if isinstance(value, dict) else type(value).__name__
