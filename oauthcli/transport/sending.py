"""Sending resolved requests: credentials, retries, redirects and 401 recovery.

A :class:`Sender` owns one pooled ``requests.Session`` and holds one token per
OAuth profile. It is safe to share between threads (a batch runner's workers):
when a held token is refused, one worker renews it under the profile's lock and
the others re-send with the new one instead of each fetching their own.

What goes on the wire is decided here, not by requests' conveniences:

* requests are prepared without ``Session.prepare_request``, so ``~/.netrc``
  never replaces the configured auth (SPEC §3) while proxies and
  ``REQUESTS_CA_BUNDLE`` from the environment still apply;
* redirects are followed by hand: GET/HEAD always, other methods on 307/308
  only, never more than :data:`MAX_REDIRECTS`; once the chain leaves the first
  origin (scheme, host or port) the credential header and cookies stay behind,
  and a 307/308 never re-sends a body that carries a secret;
* retries follow the message's ``retry:`` (full-jitter backoff, ``Retry-After``
  capped at ``max_delay``), for idempotent methods unless told otherwise;
* ``timeout`` is a deadline for each request: connecting, the headers and the
  whole body (see :class:`~oauthcli.transport.adapter.Deadline`);
* a body is read only once the response is final, and never all into memory: it
  streams to a sink (stdout), or at most ``body_limit`` bytes are kept (a gzip
  bomb stops being decoded there). A response that is retried, followed or
  re-sent after a 401 is drained only when small, else its connection is closed.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urldefrag, urljoin, urlsplit

import requests
import urllib3
from requests.auth import HTTPBasicAuth
from requests.cookies import RequestsCookieJar, get_cookie_header
from requests.structures import CaseInsensitiveDict

from oauthcli.errors import NetworkError, RegistryError, TokenEndpointError
from oauthcli.present import console
from oauthcli.request.resolved import IDEMPOTENT, ResolvedProfile, ResolvedRequest, ResolvedRetry
from oauthcli.secret import remember
from oauthcli.tokens.cache import entry_key
from oauthcli.trace import Trace
from oauthcli.transport.adapter import (
    Deadline,
    PooledAdapter,
    UnsendableURL,
    prepare,
    scheme_authority,
    watching,
)
from oauthcli.transport.http import (
    SECRET_HEADERS,
    backoff_delay,
    base_headers,
    describe_failure,
    innermost,
    origin,
    redirect_refusal,
    retry_after,
    secret_header_names,
    user_overrides_auth,
)

if TYPE_CHECKING:
    from oauthcli.tokens import Token

MAX_REDIRECTS = 10
#: Seconds a timed-out or 5xx token request stands before a call may try again.
TRANSIENT_TOKEN_FAILURE = 5.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Bytes of a body kept in memory for the terminal, ``--json`` and ``--each`` lines.
BODY_LIMIT = 8 * 1024 * 1024
#: Bytes of a streamed body kept for explaining a failure (explain reads 64 KiB).
EXPLAIN_LIMIT = 64 * 1024
#: A response not used (retried, followed) is read to its end only up to this size.
DRAIN_LIMIT = 64 * 1024
_CHUNK = 64 * 1024


@dataclass(repr=False, eq=False)
class Result:
    """The final answer to one call, with what is needed to explain a refusal."""

    request: ResolvedRequest
    status: int
    reason: str
    url: str
    http_method: str
    headers: CaseInsensitiveDict[str]
    body: bytes
    elapsed_ms: float
    attempts: int
    token: Token | None = None
    token_renewed: bool = False
    credentials_sent: bool = False
    redirected_from_origin: bool = False
    secret_headers: frozenset[str] = SECRET_HEADERS
    notes: list[str] = field(default_factory=list)
    #: Bytes of body received (decoded); more than len(body) when it was cut or streamed.
    body_size: int = 0
    #: ``body`` holds only the start of the body: it was larger than the Sender keeps.
    body_cut: bool = False
    #: The body went to the ``sink`` given to :meth:`Sender.send` as it arrived.
    streamed: bool = False


@dataclass(repr=False, eq=False)
class _Answer:
    """A response whose body is not read yet, the deadline it runs under, and how it came."""

    response: requests.Response
    deadline: Deadline
    sent: bool  # credentials went with it
    left: bool  # a redirect left the first origin


@dataclass(repr=False, eq=False)
class _Held:
    """A token this Sender uses for a profile, and what is known about it."""

    token: Token
    source: str
    accepted: bool = False


@dataclass(repr=False, eq=False)
class _Credentials:
    header: str | None = None
    value: str | None = None
    held: _Held | None = None


class Sender:
    """Sends :class:`ResolvedRequest` objects; reuse one for many calls, close it after."""

    def __init__(
        self,
        *,
        pool_size: int = 10,
        sleep: Callable[[float], None] = time.sleep,
        warn: Callable[[str], None] = console.warn,
        body_limit: int = BODY_LIMIT,
    ) -> None:
        self._body_limit = body_limit
        # The session only works out proxy and CA settings from the environment;
        # requests go straight to the adapter (see _send_one).
        self._session = requests.Session()
        self._adapter = PooledAdapter(
            pool_connections=pool_size, pool_maxsize=pool_size, max_retries=0
        )
        self._sleep = sleep
        self._warn = warn
        self._tokens: dict[str, _Held] = {}  # by token identity (cache.entry_key)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        # A token request that failed, per profile, and until when it stands (None: for
        # good). The rows of a batch then report it instead of each asking again.
        self._failed: dict[str, tuple[TokenEndpointError, float | None]] = {}
        # Proxy and CA settings from the environment, per origin and TLS options:
        # the environment does not change while we run, and working them out for
        # every request was a fifth of a batch row's CPU time.
        self._environment: dict[tuple[Any, ...], dict[str, Any]] = {}

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._adapter.close()
        self._session.close()

    def send(
        self,
        req: ResolvedRequest,
        trace: Trace | None = None,
        *,
        sink: Callable[[bytes], None] | None = None,
    ) -> Result:
        """Send ``req``; raises NetworkError (7) or TokenError (6), never for an HTTP status.

        With ``sink``, the final body goes there as it arrives, whatever its size, and
        the Result keeps only its start; without, at most ``body_limit`` bytes of it.
        """
        trace = trace or Trace()
        if not req.tls.verify:
            self._warn(f"TLS certificate verification is off for {req.url} (tls.verify: false)")
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        creds = self._credentials(req, trace)
        retry = req.retry
        retryable = req.http_method in IDEMPOTENT or not retry.idempotent_only
        attempts = tries = 0
        renewed = False
        started = time.monotonic()
        while True:
            attempts += 1
            tries += 1
            try:
                answer = self._exchange(req, creds, trace)
            except _Transient as exc:
                self._wait_or_raise(exc, trace, tries if retryable else retry.attempts, retry)
                continue
            response, sent, left = answer.response, answer.sent, answer.left
            status = response.status_code
            held = creds.held
            if held is not None and sent and status != 401:
                held.accepted = True
            if status == 401 and held is not None and sent and not renewed:
                replacement = self._renew(req, held, trace)
                if replacement is not None:
                    _discard(answer)
                    creds = _Credentials(
                        "Authorization", _authorization(replacement, req), held=replacement
                    )
                    renewed = True
                    tries -= 1  # the re-send after a renewal is not one of the retries
                    continue
            if status in retry.on_status and retryable and tries < retry.attempts:
                wait = retry_after(response.headers.get("Retry-After"), retry.max_delay)
                if wait is None:
                    wait = backoff_delay(retry, tries)
                trace.note(f"retry {tries}/{retry.attempts - 1} in {wait:.2f} s: HTTP {status}")
                _discard(answer)
                self._sleep(wait)
                continue
            try:
                body, size, cut = self._read_body(answer, req, sink)
            except _Transient as exc:
                self._wait_or_raise(exc, trace, tries if retryable else retry.attempts, retry)
                continue
            return Result(
                request=req,
                status=status,
                reason=response.reason or "",
                url=response.url,
                http_method=response.request.method or req.http_method,
                headers=response.headers,
                body=body,
                elapsed_ms=(time.monotonic() - started) * 1000,
                attempts=attempts,
                token=held.token if held else None,
                token_renewed=renewed,
                credentials_sent=sent,
                redirected_from_origin=left,
                secret_headers=secret_header_names(req),
                body_size=size,
                body_cut=cut,
                streamed=sink is not None,
            )

    def _wait_or_raise(
        self, exc: _Transient, trace: Trace, tries: int, retry: ResolvedRetry
    ) -> None:
        """Back off before the next try of a failed attempt, or raise when none is left."""
        if exc.retryable and tries < retry.attempts:
            delay = backoff_delay(retry, tries)
            trace.note(f"retry {tries}/{retry.attempts - 1} in {delay:.2f} s: {exc.cause}")
            self._sleep(delay)
            return
        raise NetworkError(f"{exc.what} {exc.url}: {exc.cause}") from None

    def _read_body(
        self, answer: _Answer, req: ResolvedRequest, sink: Callable[[bytes], None] | None
    ) -> tuple[bytes, int, bool]:
        """The body (or its start), its size, whether it was cut; under the request's deadline.

        Decoding (gzip, deflate) goes a chunk at a time, so it stops where reading stops.
        """
        response, deadline = answer.response, answer.deadline
        limit = EXPLAIN_LIMIT if sink is not None else self._body_limit
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

    # -- credentials -------------------------------------------------------

    def _credentials(self, req: ResolvedRequest, trace: Trace) -> _Credentials:
        auth = req.auth
        if user_overrides_auth(req):
            for name, value in req.headers.items():
                if name.lower() in secret_header_names(req):
                    remember(value)
            return _Credentials()
        if auth.type == "oauth2":
            assert auth.profile is not None
            held = self._token(auth.profile, trace)
            return _Credentials("Authorization", _authorization(held, req), held=held)
        if auth.type == "basic":
            password = auth.secret.reveal() if auth.secret else ""
            return _Credentials("Authorization", basic_authorization(auth.username or "", password))
        if auth.type == "bearer":
            token = auth.secret.reveal() if auth.secret else ""
            return _Credentials("Authorization", f"Bearer {token}")
        if auth.type == "api_key":
            return _Credentials(auth.header, auth.secret.reveal() if auth.secret else "")
        return _Credentials()

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())

    def _token(self, profile: ResolvedProfile, trace: Trace) -> _Held:
        key = entry_key(profile)
        held = self._tokens.get(key)
        if held is not None and not _due(held, profile):
            return held  # the common case in a batch: no lock, so workers do not queue here
        with self._lock(key):
            held = self._tokens.get(key)
            if held is None or _due(held, profile):
                held = self._obtain(key, profile, force=False, trace=trace)
            return held

    def _renew(self, req: ResolvedRequest, stale: _Held, trace: Trace) -> _Held | None:
        """After a 401: the token to re-send with, or None when another would not help."""
        profile = req.auth.profile
        assert profile is not None
        key = entry_key(profile)
        with self._lock(key):
            current = self._tokens.get(key)
            if current is not None and current is not stale:
                trace.note("401: re-sending with the token another call just obtained")
                return current
            # A token fresh from the token endpoint that was never accepted would
            # only be replaced by its twin; a cached or once-good one may be stale.
            if stale.source != "cache" and not stale.accepted:
                return None
            from oauthcli.tokens import drop

            trace.note("401 with a cached token: dropping it and obtaining a new one")
            drop(profile, stale.token)
            return self._obtain(key, profile, force=True, trace=trace)

    def _obtain(self, key: str, profile: ResolvedProfile, *, force: bool, trace: Trace) -> _Held:
        """Get a token (holding the profile's lock), or raise the failure that still stands.

        A refusal (``invalid_client``, a bad key) stands for the Sender's life; a
        transient failure (timeout, 5xx) for :data:`TRANSIENT_TOKEN_FAILURE` seconds.
        Without this, every row of a batch would ask the token endpoint again, and
        wait out its timeout again.
        """
        from oauthcli.tokens import obtain

        failed = self._failed.get(key)
        if failed is not None and (failed[1] is None or time.monotonic() < failed[1]):
            # A copy: raising the same object again would chain every row's frames to it.
            raise copy.copy(failed[0]) from None
        try:
            obtained = obtain(profile, force=force, trace=trace)
        except TokenEndpointError as exc:  # not a lock timeout or a sign-in: those may pass
            until = time.monotonic() + TRANSIENT_TOKEN_FAILURE if exc.transient else None
            self._failed[key] = (exc, until)
            raise
        self._failed.pop(key, None)
        for warning in obtained.warnings:
            self._warn(warning)
        held = _Held(obtained.token, obtained.source)
        self._tokens[key] = held
        return held

    # -- one attempt: a request and its redirects --------------------------

    def _exchange(self, req: ResolvedRequest, creds: _Credentials, trace: Trace) -> _Answer:
        """Send one attempt, following redirects; the final response's body is not read."""
        url, method, body = req.full_url, req.http_method, req.body
        left = False
        jar = RequestsCookieJar()
        secret_names = secret_header_names(req)
        headers = base_headers(req)
        if creds.header and creds.value is not None:
            headers[creds.header] = creds.value
        for hop in range(MAX_REDIRECTS + 1):
            if left:
                for name in list(headers):
                    if name.lower() in secret_names - {"proxy-authorization"}:
                        del headers[name]
            try:
                prepared = prepare(method, url, headers, body)
            except UnsendableURL as exc:
                if hop:
                    raise NetworkError(f"cannot follow the redirect to {url}: {exc}") from None
                raise RegistryError.at(
                    req.source, None, "endpoint", f"cannot send to {url}: {exc}"
                ) from None
            if not left and len(jar) and "Cookie" not in prepared.headers:
                cookie = get_cookie_header(jar, prepared)
                if cookie:
                    prepared.headers["Cookie"] = cookie
            sent = creds.header is not None and not left
            trace.request(prepared, secret_names)
            response, deadline = self._send_one(prepared, req)
            answer = _Answer(response, deadline, sent, left)
            trace.response(response)
            if not left:
                jar.update(response.cookies)
            status = response.status_code
            location = response.headers.get("Location")
            if status not in REDIRECT_STATUSES or not location:
                return answer
            try:
                target = urldefrag(urljoin(url, location))[0]
                origin(target)  # a port out of range raises here
            except ValueError as exc:  # Location: http://[::1 or http://host:99999/
                _discard(answer)
                shown = location if len(location) <= 200 else location[:199] + "…"
                raise NetworkError(
                    f"cannot follow the {status} redirect from {url}: "
                    f"Location {shown!r} is not a valid URL ({exc})"
                ) from None
            refusal = redirect_refusal(method, status, target, body, req.full_url)
            if refusal:
                trace.note(f"not following {status} to {target}: {refusal}")
                if "plain http" in refusal:
                    self._warn(f"not following the {status} redirect to {target}: {refusal}")
                return answer
            if not left and origin(target) != origin(req.full_url):
                left = True
                trace.note(
                    f"redirect to another origin {origin(target)}: credentials and cookies stay behind"
                )
            trace.note(f"following {status} to {target}")
            _discard(answer)
            url = target
            if status in (301, 302, 303):
                body = None
        raise NetworkError(f"too many redirects (more than {MAX_REDIRECTS}) from {req.full_url}")

    def _send_one(
        self, prepared: requests.PreparedRequest, req: ResolvedRequest
    ) -> tuple[requests.Response, Deadline]:
        """The response's status and headers (its body unread), and its running deadline."""
        url = prepared.url or req.url
        key = (scheme_authority(url), req.tls.requests_verify, req.tls.requests_cert)
        settings = self._environment.get(key)
        if settings is None:
            merged = self._session.merge_environment_settings(
                url, {}, False, req.tls.requests_verify, req.tls.requests_cert
            )
            settings = {k: merged[k] for k in ("proxies", "verify", "cert")}
            self._environment[key] = settings
        deadline = Deadline(req.timeout)
        try:
            # Not Session.send: its hooks, session cookie jar and redirect look-ahead
            # are not wanted here (cookies and redirects are handled in _exchange).
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
                raise _Transient(url, _no_response(req)) from None
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
                raise _Transient(url, cause) from None
            raise NetworkError(f"cannot reach {url}: {cause}") from None
        return response, deadline


class _Transient(Exception):
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


def _no_response(req: ResolvedRequest, *, started: bool = False) -> str:
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
        cause = _no_response(req, started=True)
    elif isinstance(exc, urllib3.exceptions.DecodeError):
        return NetworkError(
            f"cannot read the response from {url}: the body could not be decoded (Content-Encoding)"
        )
    else:
        cause = "the connection broke while reading the response"
    if sink is not None and size:
        cause += f", after {size} bytes of body had been written"
    return _Transient(
        url, cause, retryable=not (sink is not None and size), what="incomplete response from"
    )


def _discard(answer: _Answer) -> None:
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


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` value requests' HTTPBasicAuth would send, remembered as a secret."""
    probe = requests.PreparedRequest()
    probe.prepare_headers({})
    HTTPBasicAuth(username, password)(probe)
    value = probe.headers["Authorization"]
    remember(value.partition(" ")[2])
    remember(f"{username}:{password}")  # so its base64 without padding or URL-safe is masked too
    return value


def _authorization(held: _Held, req: ResolvedRequest) -> str:
    """``Bearer <token>``, or the profile's ``token_scheme``: never the answer's token_type,
    which providers fill with "bearer", "N_A" or nothing (SPEC §4)."""
    assert req.auth.profile is not None
    return f"{req.auth.profile.authorization_scheme} {held.token.access_token.reveal()}"


def _due(held: _Held, profile: ResolvedProfile) -> bool:
    """Time to renew the held token: the cache's rule (SPEC §4), not one of our own."""
    return held.token.due(profile.token_leeway, time.time())
