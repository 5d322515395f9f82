"""Reading a JWT access token for display, and times as people read them.

Decoding is base64 and JSON only: nothing is verified (the API does that) and
no JOSE library is imported, so ``get-token`` stays cheap.
"""

from __future__ import annotations

import base64
import json
import math
from datetime import datetime, timezone
from typing import Any

#: Claims shown first and by name; the rest are listed after them.
CLAIM_ORDER = (
    "iss",
    "sub",
    "aud",
    "client_id",
    "azp",
    "appid",
    "scope",
    "scp",
    "roles",
    "exp",
    "iat",
    "nbf",
)
TIME_CLAIMS = ("exp", "iat", "nbf", "auth_time")
#: 9999-12-31T23:59:59Z, the last moment a datetime can hold.
_MAX_TIME = 253402300799


def _part(segment: str) -> dict[str, Any] | None:
    try:
        value = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Header and claims of a JWS compact token, unverified; None if it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    header, claims = _part(parts[0]), _part(parts[1])
    if header is None or claims is None or "alg" not in header:
        return None
    return header, claims


def duration(seconds: float) -> str:
    """``45 s``, ``4 min``, ``4 min 5 s``, ``2 h 10 min``, ``3 d 4 h``."""
    if not math.isfinite(seconds):  # json.loads reads 1e400 as inf
        return f"{abs(seconds)} s"
    s = int(abs(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        m, r = divmod(s, 60)
        return f"{m} min" + (f" {r} s" if r and m < 10 else "")
    if s < 86400:
        h, r = divmod(s, 3600)
        return f"{h} h" + (f" {r // 60} min" if r // 60 else "")
    d, r = divmod(s, 86400)
    return f"{d} d" + (f" {r // 3600} h" if r // 3600 else "")


def relative(when: float, now: float) -> str:
    delta = when - now
    return f"in {duration(delta)}" if delta >= 0 else f"{duration(delta)} ago"


def local_time(when: float) -> str:
    """``2026-01-01 12:05:00 CET`` in the local zone."""
    try:
        moment = datetime.fromtimestamp(when).astimezone()
    except (OverflowError, OSError, ValueError):
        return _out_of_range(when)
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def iso_time(when: float) -> str:
    try:
        moment = datetime.fromtimestamp(when, timezone.utc).astimezone()
    except (OverflowError, OSError, ValueError):
        return _out_of_range(when)
    return moment.isoformat(timespec="seconds")


def _out_of_range(when: float) -> str:
    # What a server or a cache file states may be any number; showing it must not fail.
    return f"{str(when)[:24]} (not a representable date)"


def is_time(value: Any) -> bool:
    """A number that can be shown as a date (a claim may hold anything, even 1e400)."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and -_MAX_TIME <= value <= _MAX_TIME
    )


def claim_text(name: str, value: Any, now: float) -> str:
    """One claim for a person: times as ISO with relative, lists space-joined."""
    if name in TIME_CLAIMS and is_time(value):
        return f"{iso_time(value)} ({relative(value, now)})"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    if isinstance(value, str):
        return value
    return json.dumps(value)


def ordered_claims(claims: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The claims shown by name, in display order, and the names of the others."""
    shown = [c for c in CLAIM_ORDER if c in claims]
    return shown, sorted(c for c in claims if c not in CLAIM_ORDER)
