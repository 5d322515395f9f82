"""What a record of the outbound log holds, at each level (docs/outbound-log.md).

A :class:`Recording` is the :class:`~oauthcli.trace.Trace` a logged call runs with: it
passes every hook on to the trace it wraps (``-v``'s, or the silent default) and keeps
what the record needs: the token decisions, the token requests (the token code shows
them with :meth:`~oauthcli.trace.Trace.token_request`, so they are told apart from the
call's own), and at ``elevated`` and ``all`` the headers and bodies. :meth:`Recording.record`
then makes the record, masked: credential headers by name, token form fields and answer
members by name, and every known secret value in every string
(:func:`oauthcli.masking.scrub_value`), whatever the level.
"""

from __future__ import annotations

import base64
import os
import time
from typing import TYPE_CHECKING, Any

from oauthcli.auth.base import SECRET_HEADERS
from oauthcli.masking import (
    RESPONSE_SECRET_HEADERS,
    mask_answer,
    mask_form,
    masked_pairs,
    scrub_value,
)
from oauthcli.outlog.place import FORMAT_VERSION
from oauthcli.secret import mask_url, scrub, scrub_bytes
from oauthcli.trace import Trace

if TYPE_CHECKING:
    import requests

LEVELS = ("off", "basic", "elevated", "all")
OFF, BASIC, ELEVATED, ALL = range(4)
#: Bytes of each body an ``all`` record keeps.
BODY_LIMIT = 64 * 1024


def timestamp(seconds: float) -> str:
    """``2026-12-02T05:40:00.123Z`` (UTC), without importing datetime."""
    whole = int(seconds)
    millis = min(999, int((seconds - whole) * 1000))
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def body_members(
    data: bytes | str | None, prefix: str, *, size: int | None = None, mask: Any = None
) -> dict[str, Any]:
    """``{prefix}_body`` (text, or base64 when it is not UTF-8), ``_truncated`` when cut at
    :data:`BODY_LIMIT`, ``_encoding``; ``mask`` rewrites a text body (token form fields)."""
    if data is None:
        return {f"{prefix}_body": None}
    raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else bytes(data)
    total = len(raw) if size is None else size
    cut = total > BODY_LIMIT or len(raw) > BODY_LIMIT
    raw = raw[:BODY_LIMIT]
    members: dict[str, Any] = {}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if cut and exc.start >= len(raw) - 3 and exc.reason == "unexpected end of data":
            text = raw[: exc.start].decode("utf-8")  # cut inside a character
        else:
            text = None
    if text is not None:
        members[f"{prefix}_body"] = scrub(mask(text) if mask is not None else text)
    else:
        members[f"{prefix}_body"] = base64.b64encode(scrub_bytes(raw)).decode("ascii")
        members[f"{prefix}_body_encoding"] = "base64"
    members[f"{prefix}_body_truncated"] = cut
    return members


def _grant_of(body: Any) -> str | None:
    """The ``grant_type`` of a form-encoded token request body, else None."""
    if isinstance(body, bytes):
        body = body.decode("latin-1")
    if not isinstance(body, str) or "grant_type=" not in body:
        return None
    from urllib.parse import parse_qsl

    for name, value in parse_qsl(body, keep_blank_values=True):
        if name == "grant_type":
            return value
    return None


class Recording(Trace):
    """A trace that records a call for the outbound log and forwards to ``inner``."""

    def __init__(self, level: int, inner: Trace | None = None) -> None:
        self.level = level
        self.inner = inner or Trace()
        self.started = time.time()
        self.decisions: list[dict[str, Any]] = []
        self.token_requests: list[dict[str, Any]] = []
        self._open: tuple[dict[str, Any], float] | None = None
        # The call's last request and answer seen (headers and body at elevated and all).
        self.sent: requests.PreparedRequest | None = None
        # Until a request says which of its headers are secret (its auth's), the usual ones.
        self.secret_headers: frozenset[str] = SECRET_HEADERS
        self.received: list[tuple[str, str]] | None = None

    # -- the Trace hooks ------------------------------------------------------------

    def request(self, prepared: requests.PreparedRequest, secret_headers: frozenset[str]) -> None:
        self.inner.request(prepared, secret_headers)
        self._close_token()
        if self.level >= ELEVATED:
            self.sent, self.secret_headers = prepared, secret_headers
            self.received = None

    def response(self, response: requests.Response) -> None:
        self.inner.response(response)
        if self.level >= ELEVATED:
            self.received = list(response.headers.items())

    def token_request(
        self, prepared: requests.PreparedRequest, secret_headers: frozenset[str]
    ) -> None:
        self.inner.token_request(prepared, secret_headers)
        self._close_token()
        entry: dict[str, Any] = {
            "url": _url(prepared.url or ""),
            "method": prepared.method,
            "grant": _grant_of(prepared.body),
            "status": None,
            "elapsed_ms": None,
        }
        if self.level >= ELEVATED:
            entry["request_headers"] = masked_pairs(prepared.headers.items(), secret_headers)
        if self.level >= ALL:
            entry.update(body_members(prepared.body, "request", mask=mask_form))
        self.token_requests.append(entry)
        self._open = (entry, time.monotonic())

    def token_response(self, response: requests.Response) -> None:
        self.inner.token_response(response)
        if self._open is None:
            return
        entry, started = self._open
        self._open = None
        entry["status"] = response.status_code
        entry["elapsed_ms"] = ms(time.monotonic() - started)
        if self.level >= ELEVATED:
            entry["response_headers"] = masked_pairs(
                response.headers.items(), RESPONSE_SECRET_HEADERS
            )
        if self.level >= ALL:
            content = response.content or b""
            entry.update(body_members(content, "response", mask=mask_answer))
            entry["response_body_size"] = len(content)

    def note(self, text: str) -> None:
        self.inner.note(text)

    def decision(self, kind: str, text: str, **facts: Any) -> None:
        self.inner.decision(kind, text, **facts)
        self.decisions.append({**facts, "kind": kind, "text": text})

    def _close_token(self, error: str | None = None) -> None:
        """A token request no answer came to (refused connection, timeout)."""
        if self._open is not None:
            entry, started = self._open
            self._open = None
            entry["elapsed_ms"] = ms(time.monotonic() - started)
            if error is not None:
                entry["error"] = error

    # -- the record -----------------------------------------------------------------

    def record(self, kind: str, **members: Any) -> dict[str, Any]:
        """The record of the call: ``members`` (message, url, status, …) and what was seen."""
        self._close_token(members.get("error"))
        rec: dict[str, Any] = {
            "v": FORMAT_VERSION,
            "time": timestamp(self.started),
            "pid": os.getpid(),
            "kind": kind,
            "level": LEVELS[self.level],
            **members,
            "decisions": self.decisions,
            "token_requests": self.token_requests,
        }
        if "url" in rec and isinstance(rec["url"], str):
            rec["url"] = _url(rec["url"])
        return _masked(rec)

    def http_members(
        self,
        response_headers: list[tuple[str, str]] | None,
        response_body: bytes | None,
        body_size: int | None,
    ) -> dict[str, Any]:
        """``request_headers`` … ``response_body_size`` of the call, as the level says."""
        members: dict[str, Any] = {}
        if self.level < ELEVATED:
            return members
        sent = self.sent
        received = response_headers if response_headers is not None else self.received
        members["request_headers"] = (
            masked_pairs(sent.headers.items(), self.secret_headers) if sent is not None else None
        )
        members["response_headers"] = (
            masked_pairs(received, RESPONSE_SECRET_HEADERS) if received is not None else None
        )
        if self.level >= ALL:
            members.update(body_members(sent.body if sent is not None else None, "request"))
            members.update(body_members(response_body, "response", size=body_size))
            members["response_body_size"] = body_size
        return members


def _masked(record: dict[str, Any]) -> dict[str, Any]:
    """Every string of the record scrubbed of known secrets (its own member names are
    oauthcli's; header names are values, in ``[name, value]`` pairs)."""
    return {
        name: value if isinstance(value, (int, float, type(None))) else scrub_value(value)
        for name, value in record.items()
    }


def _url(url: str) -> str:
    return scrub(mask_url(url))


def ms(seconds: float) -> float:
    return round(seconds * 1000, 1)
