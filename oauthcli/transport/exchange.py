"""One exchange: a prepared request through the adapter, under its deadline; its body read.

The innermost stage of the :class:`~oauthcli.transport.sending.Sender` (auth flow →
redirects → retries → here):

* requests are sent without ``Session.send`` or ``Session.prepare_request``, so
  ``~/.netrc`` never replaces the configured auth (SPEC §3), while proxies and
  ``REQUESTS_CA_BUNDLE`` from the environment still apply (worked out once per
  origin and TLS options: the environment does not change while we run, and working
  them out for every request was a fifth of a batch row's CPU time);
* ``timeout`` is a deadline for each request: connecting, the headers and the whole
  body (see :class:`~oauthcli.transport.adapter.Deadline`);
* a body is read only once the response is final, and never all into memory: it
  streams to a sink (stdout), or at most a limit is kept (a gzip bomb stops being
  decoded there). A response not used is drained only when small, else its
  connection is closed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3
from requests.structures import CaseInsensitiveDict

from oauthcli.errors import NetworkError
from oauthcli.request.resolved import ResolvedRequest
from oauthcli.transport.adapter import Deadline, PooledAdapter, scheme_authority, watching
from oauthcli.transport.http import describe_failure, innermost

#: Bytes of a streamed body kept for explaining a failure (explain reads 64 KiB).
EXPLAIN_LIMIT = 64 * 1024
#: A response not used (retried, followed) is read to its end only up to this size.
DRAIN_LIMIT = 64 * 1024
_CHUNK = 64 * 1024


class Answer:
    """A response whose body is not read yet, the deadline it runs under, and how it came."""

    __slots__ = ("deadline", "left", "response", "sent")

    def __init__(
        self, response: requests.Response, deadline: Deadline, sent: bool, left: bool
    ) -> None:
        self.response = response
        self.deadline = deadline
        self.sent = sent  # credentials went with it
        self.left = left  # a redirect left the first origin

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def credentials_sent(self) -> bool:
        return self.sent

    @property
    def headers(self) -> CaseInsensitiveDict[str]:
        return self.response.headers


class Transient(Exception):
    """A failure worth retrying: refused, reset, timed out (unless ``retryable`` is False:
    part of the body was already written out)."""

    def __init__(
        self, url: str, cause: str, *, retryable: bool = True, what: str = "cannot reach"
    ) -> None:
        super().__init__(cause)
        self.url = url
        self.cause = cause
        self.retryable = retryable
        self.what = what


class Transport:
    """requests' pooled adapter and the environment's proxy and CA settings."""

    def __init__(self, pool_size: int) -> None:
        # The session only works out proxy and CA settings from the environment;
        # requests go straight to the adapter.
        self._session = requests.Session()
        self._adapter = PooledAdapter(
            pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0
        )
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def close(self) -> None:
        self._adapter.close()
        self._session.close()

    def send(
        self, prepared: requests.PreparedRequest, req: ResolvedRequest
    ) -> tuple[requests.Response, Deadline]:
        """The response's status and headers (its body unread), and its running deadline."""
        url = prepared.url or req.url
        tls = req.tls
        key = (scheme_authority(url), tls.requests_verify, tls.requests_cert)
        settings = self._environment.get(key)
        if settings is None:
            merged = self._session.merge_environment_settings(
                url, {}, False, tls.requests_verify, tls.requests_cert
            )
            settings = {k: merged[k] for k in ("proxies", "verify", "cert")}
            self._environment[key] = settings
        deadline = Deadline(req.timeout)
        try:
            # Not Session.send: its hooks, session cookie jar and redirect look-ahead
            # are not wanted here (cookies and redirects: transport.redirects).
            with watching(deadline):
                response = self._adapter.send(
                    prepared,
                    stream=True,
                    timeout=(deadline.remaining(), req.timeout),
                    **settings,
                )
        except requests.exceptions.RequestException as exc:
            deadline.finish()
            if deadline.expired:
                raise Transient(url, no_response(req)) from None
            if isinstance(exc, requests.exceptions.SSLError):
                raise NetworkError(f"cannot reach {url}: TLS error: {innermost(exc)}") from None
            cause = describe_failure(exc, req.timeout, urlsplit(url).hostname)
            if isinstance(
                exc,
                (
                    requests.exceptions.ConnectionError,
                    requests.exceptions.Timeout,
                    requests.exceptions.ChunkedEncodingError,
                ),
            ):
                raise Transient(url, cause) from None
            raise NetworkError(f"cannot reach {url}: {cause}") from None
        return response, deadline


def read_body(
    answer: Answer, req: ResolvedRequest, sink: Callable[[bytes], None] | None, limit: int
) -> tuple[bytes, int, bool]:
    """The body (or its start), its size, whether it was cut; under the request's deadline.

    Decoding (gzip, deflate) goes a chunk at a time, so it stops where reading stops.
    With ``sink`` every chunk goes there and only :data:`EXPLAIN_LIMIT` bytes are kept.
    """
    response, deadline = answer.response, answer.deadline
    if sink is not None:
        limit = EXPLAIN_LIMIT
    kept = bytearray()
    size = 0
    cut = complete = False
    chunks = response.raw.stream(_CHUNK, decode_content=True)
    try:
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                complete = True
                break
            except (urllib3.exceptions.HTTPError, OSError, ValueError) as exc:
                if isinstance(exc, urllib3.exceptions.DecodeError) and (
                    response.status_code >= 400
                ):
                    break  # the status is the answer (exit 4/5); the body only explains it
                raise _body_failure(exc, req, response.url, deadline, size, sink) from None
            if deadline.expired:  # a body that keeps flowing is cut here, not by the socket
                raise _body_failure(TimeoutError(), req, response.url, deadline, size, sink)
            size += len(chunk)
            room = limit - len(kept)
            if room > 0:
                kept += chunk[:room]
            if len(chunk) > room:
                cut = True
                if sink is None:
                    break  # the rest is neither read nor decoded
            if sink is not None:
                sink(chunk)
    finally:
        deadline.finish()
        if not complete:
            response.close()
    return bytes(kept), size, cut


def discard(answer: Answer) -> None:
    """Let go of a response not used: a small body is read so the connection can be reused."""
    response = answer.response
    try:
        length = int(response.headers.get("Content-Length", ""))
    except ValueError:
        length = -1
    try:
        if 0 <= length <= DRAIN_LIMIT:
            response.raw.drain_conn()
        else:
            response.close()
    finally:
        answer.deadline.finish()


def no_response(req: ResolvedRequest, *, started: bool = False) -> str:
    if started:  # status and headers came, the body did not finish
        return f"no complete response within {req.timeout:g} s (timeout, body still arriving)"
    return f"no response within {req.timeout:g} s (timeout)"


def _body_failure(
    exc: BaseException,
    req: ResolvedRequest,
    url: str,
    deadline: Deadline,
    size: int,
    sink: Callable[[bytes], None] | None,
) -> Exception:
    """What a failure while reading the body is: the deadline, a bad encoding, a broken line."""
    if deadline.expired:
        cause = no_response(req, started=True)
    elif isinstance(exc, urllib3.exceptions.DecodeError):
        return NetworkError(
            f"cannot read the response from {url}: the body could not be decoded (Content-Encoding)"
        )
    else:
        cause = "the connection broke while reading the response"
    if sink is not None and size:
        cause += f", after {size} bytes of body had been written"
    return Transient(
        url, cause, retryable=not (sink is not None and size), what="incomplete response from"
    )
