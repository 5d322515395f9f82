"""A record of the outbound log as one line of ``oauthcli log``.

``2026-12-02 05:40:00  200 OK  84 ms  GET http://…/incident  incidents.list  token: renewed
(12 s left < 60 s window)``: the time (UTC), the status (``---`` when no answer came, ``cached`` for a get-token
that sent nothing), the
elapsed time, method and URL, what was called (the message; ``token PROFILE``,
``revoke PROFILE``, ``profile PROFILE`` for the Python API's ``auth``), then attempts, the token decisions and
token requests, and the exit code and error of a failure. Every string of a record came
from a server or a registry: control characters, tabs and line breaks are shown as
escapes, so a line stays one line and nothing acts on the terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TextIO

from oauthcli.outlog.reader import Record
from oauthcli.present.console import escaped, style

_STATUS_COLORS = {1: "cyan", 2: "green", 3: "cyan", 4: "yellow", 5: "red"}


def _n(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        return "?"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _left(facts: dict[str, Any]) -> str:
    return f"{_n(facts.get('expires_in_s'))} s left"


#: A decision's kind (docs/outbound-log.md) → its phrase in the summary, from its facts.
DECISIONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "cached": lambda f: f"cached ({_left(f)})",
    "none_cached": lambda f: "none cached",
    "forced": lambda f: "forced",
    "due": lambda f: f"renewed ({_left(f)} < {_n(f.get('window_s'))} s window)",
    "renewed_elsewhere": lambda f: "renewed by another process",
    "refresh": lambda f: "refreshed",
    "refresh_expired": lambda f: "refresh token expired",
    "refresh_refused": lambda f: "refresh token refused, dropped",
    "rotated": lambda f: "refresh token rotated",
    "grant": lambda f: f"grant {_plain(f.get('grant')) or '?'}",
    "stale_used": lambda f: f"renewal failed, still-valid token used ({_left(f)})",
    "refused_401": lambda f: "401: token dropped, new one, sent again",
    "shared_401": lambda f: "401: another call's newer token used",
    "cache_unwritable": lambda f: "cache unwritable, token not cached",
    "cache_fallback": lambda f: "shared cache failed, file cache used",
}


def line(record: Record, stream: TextIO) -> str:
    """The record as one line, coloured when ``stream`` takes colour."""
    data = record.data
    exchange = _exchange(data)
    status = _int(exchange.get("status"))
    if status:
        shown = f"{status} {_plain(exchange.get('reason'))}".rstrip()
        color = _STATUS_COLORS.get(status // 100)
    elif _from_cache(data):
        shown, color = "cached", "green"
    else:
        shown, color = "---", "red"
    parts = [
        record.time.strftime("%Y-%m-%d %H:%M:%S"),
        style(shown, color, stream) if color else shown,
    ]
    elapsed = exchange.get("elapsed_ms")
    if isinstance(elapsed, (int, float)) and not isinstance(elapsed, bool):
        parts.append(f"{elapsed:.0f} ms")
    target = f"{_plain(exchange.get('method'))} {_plain(exchange.get('url'))}".strip()
    if target:
        parts.append(target)
    parts.append(_called(data))
    attempts = _int(data.get("attempts"))
    if attempts > 1:
        parts.append(f"{attempts} attempts")
    token = _token_summary(data)
    if token:
        parts.append(token)
    failure = _failure(data)
    if failure:
        parts.append(style(failure, "red", stream))
    return "  ".join(p for p in parts if p)


def _exchange(data: dict[str, Any]) -> dict[str, Any]:
    """What the line shows the status and URL of: the call, or for a ``token`` record
    that has none of its own, its last token request."""
    if data.get("kind") == "token" and not data.get("url"):
        requests = [r for r in _list(data.get("token_requests")) if isinstance(r, dict)]
        if requests:
            return requests[-1]
    return data


def _from_cache(data: dict[str, Any]) -> bool:
    """A get-token that sent nothing: its token came from the cache."""
    return (
        data.get("kind") == "token"
        and not _list(data.get("token_requests"))
        and data.get("exit_code") == 0
    )


def _called(data: dict[str, Any]) -> str:
    kind = _plain(data.get("kind"))
    message = _plain(data.get("message"))
    profile = _plain(data.get("profile"))
    if message:
        return message
    if kind == "send":  # the Python API's auth: a request of its own with a profile's token
        return f"profile {profile}" if profile else "?"
    return f"{kind} {profile}".strip()


def _token_summary(data: dict[str, Any]) -> str:
    said = []
    for decision in _list(data.get("decisions")):
        if not isinstance(decision, dict):
            continue
        kind = decision.get("kind")
        phrase = DECISIONS.get(kind) if isinstance(kind, str) else None
        said.append(phrase(decision) if phrase else _plain(decision.get("text") or kind))
    requests = [r for r in _list(data.get("token_requests")) if isinstance(r, dict)]
    if requests and data.get("kind") not in ("token", "revoke"):  # the line is the request
        answers = ", ".join(str(_int(r.get("status")) or "no answer") for r in requests)
        said.append(f"{len(requests)} token request{'s' if len(requests) > 1 else ''} ({answers})")
    return "token: " + "; ".join(s for s in said if s) if any(said) else ""


def _failure(data: dict[str, Any]) -> str:
    code = data.get("exit_code")
    error = _plain(data.get("error"))
    if isinstance(code, int) and not isinstance(code, bool) and code != 0:
        return f"exit {code}" + (f": {error}" if error else "")
    return f"error: {error}" if error else ""


def _plain(value: Any) -> str:
    """A record's string on one line, its control characters as escapes."""
    if not isinstance(value, str):
        return ""
    return escaped(value).replace("\n", "\\n").replace("\t", "\\t")


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []
