"""HTTP rules that need no session: headers, origins, Retry-After, backoff, failure causes.

Kept apart from :mod:`oauthcli.transport.sending` so the policy can be read (and tested)
without the machinery that applies them. Which redirects are followed is decided in
:mod:`oauthcli.transport.redirects`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import requests
from requests.structures import CaseInsensitiveDict

from oauthcli import __version__
from oauthcli.auth.base import SECRET_HEADERS
from oauthcli.request.resolved import ResolvedRetry
from oauthcli.secret import contains_secret, scrub

__all__ = [
    "DEFAULT_HEADERS",
    "SECRET_HEADERS",
    "backoff_delay",
    "base_headers",
    "carries_secret",
    "describe_failure",
    "innermost",
    "retry_after",
]

if TYPE_CHECKING:
    from oauthcli.request.resolved import ResolvedRequest

DEFAULT_HEADERS = {
    "User-Agent": f"oauthcli/{__version__}",
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
}


def bounded_body(resp: requests.Response, limit: int) -> bytes | None:
    """A small answer's body (token endpoint, metadata, CI ID token): None once it passes
    ``limit`` bytes, where reading stops; a server sending slowly is cut by the deadline."""
    body = bytearray()
    for chunk in resp.iter_content(64 * 1024):
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def carries_secret(body: bytes) -> bool:
    """The body holds a known secret in any encoding it may travel in (UTF-8, form, JSON…)."""
    return contains_secret(body)


def base_headers(req: ResolvedRequest) -> CaseInsensitiveDict[str]:
    """Headers sent with every hop before credentials: defaults, then the message's."""
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict(DEFAULT_HEADERS)
    headers.update(req.headers)
    return headers


def backoff_delay(
    retry: ResolvedRetry, tries: int, rand: Callable[[], float] = random.random
) -> float:
    """Full jitter: uniform in [0, min(max_delay, backoff · 2^(tries-1))]."""
    return rand() * min(retry.max_delay, retry.backoff * 2 ** (tries - 1))


def retry_after(value: str | None, max_delay: float, now: float | None = None) -> float | None:
    """``Retry-After`` (seconds or HTTP-date) in seconds, capped at ``max_delay``."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():  # not "²" or "٣": str.isdigit takes those too
        return min(float(value), max_delay) if len(value) < 16 else max_delay
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    wait = when.timestamp() - (time.time() if now is None else now)
    return min(max(wait, 0.0), max_delay)


def describe_failure(exc: BaseException, timeout: float, host: str | None = None) -> str:
    """One short cause for a failed request: refused, DNS, timeout, reset."""
    chain = _chain(exc)
    names = {type(e).__name__ for e in chain}
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return f"connection timed out after {timeout:g} s"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return f"no response within {timeout:g} s (read timeout)"
    if isinstance(exc, requests.exceptions.ProxyError):
        return f"proxy error: {innermost(exc)}"
    if "NameResolutionError" in names or any(
        isinstance(e, OSError) and "Name or service" in str(e) for e in chain
    ):
        return f"DNS lookup failed for {host}" if host else "DNS lookup failed"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(isinstance(e, ConnectionResetError) for e in chain):
        return "connection reset by peer"
    if "RemoteDisconnected" in names or "IncompleteRead" in names:
        return "the server closed the connection without a complete response"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection broke while reading the response"
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return "the response body could not be decoded (Content-Encoding)"
    return innermost(exc)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or any(item is s for s in seen):
            continue
        seen.append(item)
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
    return seen


def innermost(exc: BaseException) -> str:
    chain = _chain(exc)
    for item in reversed(chain):
        text = str(item)
        if text and not text.startswith(("HTTPSConnectionPool", "HTTPConnectionPool")):
            return scrub(text.split("(Caused by")[0].strip())
    return type(exc).__name__
