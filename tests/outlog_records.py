"""Records of the outbound log as docs/outbound-log.md specifies them (format version 1),
and log folders built from them, for the tests of ``oauthcli log`` and its reader.

:func:`record` is the doc's example record with any member changed; :func:`elevated` and
:func:`full` add what those levels log. :func:`write_log` lays out a log folder as the writer
leaves it (0700, files 0600), each file a list of records or raw lines.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

TOKEN_URL = "http://127.0.0.1:8976/oauth/token"
API_URL = "http://127.0.0.1:8976/api/now/table/incident?sysparm_limit=5"

_BASIC: dict[str, Any] = {
    "v": 1,
    "time": "2026-12-02T05:40:00.123Z",
    "pid": 4242,
    "kind": "send",
    "level": "basic",
    "message": "incidents.list",
    "profile": "acme",
    "environment": None,
    "method": "GET",
    "url": API_URL,
    "status": 200,
    "reason": "OK",
    "elapsed_ms": 84.2,
    "attempts": 1,
    "exit_code": 0,
    "error": None,
    "decisions": [
        {
            "kind": "due",
            "text": "renewing, 12 s left < window 60 s",
            "expires_in_s": 12,
            "window_s": 60,
            "leeway_s": 60,
        }
    ],
    "token_requests": [
        {
            "url": TOKEN_URL,
            "method": "POST",
            "grant": "client_credentials",
            "status": 200,
            "elapsed_ms": 20.5,
        }
    ],
}


def record(**changes: Any) -> dict[str, Any]:
    """The doc's example record (a ``send`` at level basic) with ``changes`` applied."""
    made = copy.deepcopy(_BASIC)
    made.update(changes)
    return made


def at(second: int, **changes: Any) -> dict[str, Any]:
    """A record made ``second`` seconds after 05:40:00, so records can be told apart."""
    minutes, seconds = divmod(second, 60)
    hours, minutes = divmod(40 + minutes, 60)
    when = f"2026-12-02T{5 + hours:02d}:{minutes:02d}:{seconds:02d}.000Z"
    return record(time=when, pid=10_000 + second, **changes)


_TOKEN_HEADERS = {
    "request_headers": [
        ["Content-Type", "application/x-www-form-urlencoded"],
        ["Authorization", "Basic ****"],
    ],
    "response_headers": [["Content-Type", "application/json"], ["Cache-Control", "no-store"]],
}


def elevated(**changes: Any) -> dict[str, Any]:
    """Level elevated: the call's and its token request's headers, masked as the writer does."""
    made = record(**{"level": "elevated", **changes})
    made.setdefault(
        "request_headers",
        [["User-Agent", "oauthcli/0.1.0"], ["Accept", "*/*"], ["Authorization", "Bearer ****"]],
    )
    made.setdefault(
        "response_headers",
        [["Content-Type", "application/json"], ["Set-Cookie", "****"], ["X-Trace", "t-1"]],
    )
    for exchange in made["token_requests"]:
        for key, value in _TOKEN_HEADERS.items():
            exchange.setdefault(key, copy.deepcopy(value))
    return made


def full(**changes: Any) -> dict[str, Any]:
    """Level all: bodies too (the token answer's secrets masked)."""
    made = elevated(**{"level": "all", **changes})
    made.setdefault("request_body", None)
    made.setdefault("response_body", '{"result": [{"number": "INC0010001"}]}')
    made.setdefault("response_body_truncated", False)
    made.setdefault("response_body_size", len(made["response_body"] or ""))
    for exchange in made["token_requests"]:
        body = "grant_type=client_credentials&scope=api.read"
        answer = '{"access_token": "****", "token_type": "Bearer", "expires_in": 300}'
        exchange.setdefault("request_body", body)
        exchange.setdefault("response_body", answer)
        exchange.setdefault("response_body_size", len(answer))
    return made


def line(made: dict[str, Any]) -> bytes:
    """One record as the writer writes it: one line of compact UTF-8 JSON."""
    return json.dumps(made, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def write_log(folder: Path, files: Mapping[str, Sequence[dict[str, Any] | bytes]]) -> Path:
    """A log folder (0700) with these files (0600), each a list of records or raw bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    for name, content in files.items():
        path = folder / name
        path.write_bytes(b"".join(c if isinstance(c, bytes) else line(c) for c in content))
        os.chmod(path, 0o600)
    return folder
