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
  capped at ``max_delay``), for idempotent methods unless told otherwise.
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
from requests.auth import HTTPBasicAuth
from requests.cookies import RequestsCookieJar, get_cookie_header
from requests.structures import CaseInsensitiveDict

from oauthcli import console
from oauthcli.errors import NetworkError, RegistryError, TokenEndpointError
from oauthcli.http import (
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
from oauthcli.resolved import IDEMPOTENT, ResolvedProfile, ResolvedRequest
from oauthcli.secret import remember
from oauthcli.tokens.cache import entry_key
from oauthcli.trace import Trace
from oauthcli.transport import PooledAdapter, UnsendableURL, prepare, scheme_authority

if TYPE_CHECKING:
    from oauthcli.tokens import Token

MAX_REDIRECTS = 10
#: Seconds a timed-out or 5xx token request stands before a call may try again.
TRANSIENT_TOKEN_FAILURE = 5.0
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


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
    ) -> None:
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

    def send(self, req: ResolvedRequest, trace: Trace | None = None) -> Result:
        """Send ``req``; raises NetworkError (7) or TokenError (6), never for an HTTP status."""
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
                response, sent, left = self._exchange(req, creds, trace)
            except _Transient as exc:
                if retryable and tries < retry.attempts:
                    delay = backoff_delay(retry, tries)
                    trace.note(f"retry {tries}/{retry.attempts - 1} in {delay:.2f} s: {exc.cause}")
                    self._sleep(delay)
                    continue
                raise NetworkError(f"cannot reach {exc.url}: {exc.cause}") from None
            status = response.status_code
            held = creds.held
            if held is not None and sent and status != 401:
                held.accepted = True
            if status == 401 and held is not None and sent and not renewed:
                replacement = self._renew(req, held, trace)
                if replacement is not None:
                    response.close()
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
                response.close()
                self._sleep(wait)
                continue
            return Result(
                request=req,
                status=status,
                reason=response.reason or "",
                url=response.url,
                http_method=response.request.method or req.http_method,
                headers=response.headers,
                body=response.content,
                elapsed_ms=(time.monotonic() - started) * 1000,
                attempts=attempts,
                token=held.token if held else None,
                token_renewed=renewed,
                credentials_sent=sent,
                redirected_from_origin=left,
                secret_headers=secret_header_names(req),
            )

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

    def _exchange(
        self, req: ResolvedRequest, creds: _Credentials, trace: Trace
    ) -> tuple[requests.Response, bool, bool]:
        """Send one attempt, following redirects; returns (response, credentials sent, left origin)."""
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
            response = self._send_one(prepared, req)
            trace.response(response)
            if not left:
                jar.update(response.cookies)
            status = response.status_code
            location = response.headers.get("Location")
            if status not in REDIRECT_STATUSES or not location:
                return response, sent, left
            target = urldefrag(urljoin(url, location))[0]
            refusal = redirect_refusal(method, status, target, body)
            if refusal:
                trace.note(f"not following {status} to {target}: {refusal}")
                return response, sent, left
            if not left and origin(target) != origin(req.full_url):
                left = True
                trace.note(
                    f"redirect to another origin {origin(target)}: credentials and cookies stay behind"
                )
            trace.note(f"following {status} to {target}")
            response.close()
            url = target
            if status in (301, 302, 303):
                body = None
        raise NetworkError(f"too many redirects (more than {MAX_REDIRECTS}) from {req.full_url}")

    def _send_one(
        self, prepared: requests.PreparedRequest, req: ResolvedRequest
    ) -> requests.Response:
        url = prepared.url or req.url
        key = (scheme_authority(url), req.tls.requests_verify, req.tls.requests_cert)
        settings = self._environment.get(key)
        if settings is None:
            merged = self._session.merge_environment_settings(
                url, {}, False, req.tls.requests_verify, req.tls.requests_cert
            )
            settings = {k: merged[k] for k in ("proxies", "verify", "cert")}
            self._environment[key] = settings
        try:
            # Not Session.send: its hooks, session cookie jar and redirect look-ahead
            # are not wanted here (cookies and redirects are handled in _exchange).
            response = self._adapter.send(
                prepared, stream=False, timeout=(req.timeout, req.timeout), **settings
            )
            response.content  # noqa: B018 - read the body now, inside the error mapping
        except requests.exceptions.SSLError as exc:
            raise NetworkError(f"cannot reach {url}: TLS error: {innermost(exc)}") from None
        except (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            requests.exceptions.ChunkedEncodingError,
        ) as exc:
            raise _Transient(
                url, describe_failure(exc, req.timeout, urlsplit(url).hostname)
            ) from None
        except requests.exceptions.RequestException as exc:
            raise NetworkError(
                f"cannot reach {url}: {describe_failure(exc, req.timeout, urlsplit(url).hostname)}"
            ) from None
        return response


class _Transient(Exception):
    """A failure worth retrying: refused, reset, timed out."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(cause)
        self.url = url
        self.cause = cause


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` value requests' HTTPBasicAuth would send, remembered as a secret."""
    probe = requests.PreparedRequest()
    probe.prepare_headers({})
    HTTPBasicAuth(username, password)(probe)
    value = probe.headers["Authorization"]
    remember(value.partition(" ")[2])
    return value


def _authorization(held: _Held, req: ResolvedRequest) -> str:
    """``Bearer <token>``, or the profile's ``token_scheme``: never the answer's token_type,
    which providers fill with "bearer", "N_A" or nothing (SPEC §4)."""
    assert req.auth.profile is not None
    return f"{req.auth.profile.authorization_scheme} {held.token.access_token.reveal()}"


def _due(held: _Held, profile: ResolvedProfile) -> bool:
    """Time to renew the held token: the cache's rule (SPEC §4), not one of our own."""
    return held.token.due(profile.token_leeway, time.time())
