"""Reading a JWT access token for display, and times as people read them.

Decoding is base64 and JSON only: nothing is verified (the API does that) and
no JOSE library is imported, so ``get-token`` stays cheap.
"""

from __future__ import annotations

import base64
import json
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
    return datetime.fromtimestamp(when).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def iso_time(when: float) -> str:
    return datetime.fromtimestamp(when, timezone.utc).astimezone().isoformat(timespec="seconds")


def is_time(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
