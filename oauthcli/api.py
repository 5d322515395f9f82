"""The Python API (SPEC §8): call the registry's messages from a script, as the CLI does.

::

    import oauthcli

    with oauthcli.open_registry() as reg:              # found as the CLI finds it
        r = reg.send("incidents.create", {"short_description": "Disk full"})
        r.raise_for_status()                           # oauthcli.HTTPStatusError on 4xx/5xx
        print(r.json()["result"]["sys_id"])

Everything goes through the CLI's own stages (registry, request building, the token
cache, the Sender), so a script sends exactly what ``oauthcli send`` would and shares
its cached tokens. Nothing here prints: what the CLI writes as ``warning: ...`` is an
:class:`~oauthcli.errors.OAuthCliWarning` through :mod:`warnings`. Secrets stay masked
in the ``str`` and ``repr`` of everything returned.
"""

from __future__ import annotations

import json
import os
import threading
import time
import warnings
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests
from requests.auth import AuthBase
from requests.cookies import extract_cookies_to_jar
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from oauthcli.errors import ExitCode, HTTPStatusError, OAuthCliError, OAuthCliWarning
from oauthcli.registry.discovery import Registry as _Files
from oauthcli.registry.discovery import discover
from oauthcli.request.build import RequestBuilder
from oauthcli.request.resolve import profile_named, split_target, use_profile
from oauthcli.request.resolved import ResolvedProfile, ResolvedRequest
from oauthcli.secret import Secret, mask_url, scrub

if TYPE_CHECKING:
    from oauthcli.auth.base import Signer
    from oauthcli.outlog.record import Recording
    from oauthcli.tokens import Obtained
    from oauthcli.transport.sending import Result, Sender

__all__ = ["AccessToken", "Failed", "ProfileAuth", "Registry", "Response", "open_registry"]


def _warn(text: str) -> None:
    warnings.warn(text, OAuthCliWarning, stacklevel=3)


def open_registry(
    path: str | os.PathLike[str] | None = None,
    env: str | None = None,
    *,
    log_level: str | None = None,
) -> Registry:
    """The registry at ``path``, else ``$OAUTHCLI_REGISTRY``, else the current directory.

    ``env`` names the environment (``environments/NAME.yaml``, SPEC §6) whose variables
    fill ``${name}`` in profiles and messages, else ``$OAUTHCLI_ENV``'s, as the CLI's
    ``--env`` does; an unknown one raises :class:`~oauthcli.errors.RegistryError`.
    ``log_level`` (off, basic, elevated, all) is what the outbound log records of every
    call, as the CLI's ``--log-level``; None: as ``$OAUTHCLI_LOG_LEVEL``, the method, the
    message and the profile say (docs/outbound-log.md).
    """
    if log_level is not None:
        from oauthcli.outlog.calls import check_level

        check_level(log_level, "log_level")
    return Registry(
        discover(os.fspath(path) if path is not None else None, env=env, env_from="env="),
        log_level=log_level,
    )


class Registry:
    """An opened registry: send its messages, get its profiles' tokens.

    Safe to share between threads. Holds pooled connections: use it as a context
    manager or call :meth:`close` when done.
    """

    def __init__(self, files: _Files, *, log_level: str | None = None) -> None:
        self._files = files
        self._log_level = log_level
        self._sender: Sender | None = None
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        """The registry folder."""
        return self._files.root

    @property
    def environment(self) -> str | None:
        """The name of the selected environment (``env=``, ``$OAUTHCLI_ENV``), if any."""
        env = self._files.environment
        return env.name if env is not None else None

    def __repr__(self) -> str:
        env = self.environment
        return f"<oauthcli.Registry {str(self.root)!r}{f' env={env!r}' if env else ''}>"

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            sender, self._sender = self._sender, None
        if sender is not None:
            sender.close()

    def send(
        self,
        target: str,
        variables: Mapping[str, str] | None = None,
        profile: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Send ``target`` (``message.method``, or ``message`` when it has one method).

        ``variables`` are the call's ``${name}`` values (``--var``), ``headers`` replace
        the message's (``-H``; an empty value removes one), ``body`` replaces the
        method's body (``--body``), ``timeout`` its timeout in seconds. ``profile`` sends
        an ``oauth2`` message with another profile's token.

        Returns the final :class:`Response`, 4xx and 5xx included (see
        :meth:`Response.raise_for_status`); raises RegistryError (3), TokenError (6),
        NetworkError (7) or UsageError (2) when there is no answer.
        """
        build = self._builder(target, headers, body, timeout)
        req = self._with_profile(build(dict(variables or {})), profile)
        return _send(self._shared_sender(), req)

    def send_each(
        self,
        target: str,
        rows: Iterable[Mapping[str, str]],
        concurrency: int = 4,
        profile: str | None = None,
        *,
        variables: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes | str | None = None,
        timeout: float | None = None,
    ) -> Generator[Response | Failed, None, None]:
        """Send ``target`` once per row (a mapping of variables), ``concurrency`` at a time.

        Yields one result per row, in row order: a :class:`Response` when the API
        answered (4xx/5xx included), a :class:`Failed` (with ``.error`` and
        ``.exit_code``) when the row got no answer (a missing variable, no token, the
        network); either way the iteration goes on. A row's values override
        ``variables``. Rows are read as they are needed: at most ``2 × concurrency``
        are in flight or waiting to be yielded. One token per profile serves every row.
        Closing the generator early (``.close()``, ``break``) sends no further row.
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        build = self._builder(target, headers, body, timeout)
        base = dict(variables or {})
        return self._each(build, base, rows, concurrency, profile)

    def _each(
        self,
        build: RequestBuilder,
        base: dict[str, str],
        rows: Iterable[Mapping[str, str]],
        concurrency: int,
        profile: str | None,
    ) -> Generator[Response | Failed, None, None]:
        from oauthcli.outlog.calls import LoggingSender
        from oauthcli.transport.batch import Threads

        with LoggingSender(pool_size=concurrency, warn=_warn, log_level=self._log_level) as sender:

            def one(number: int, row: Mapping[str, str]) -> Response | Failed | _Bug:
                try:
                    req = self._with_profile(build({**base, **row}), profile)
                    return _send(sender, req)
                except OAuthCliError as exc:
                    return Failed(exc)

            # The batch engine of send --each (transport/batch.py): rows read as needed,
            # at most 2 × concurrency of them read and not yet yielded.
            pool: Threads[Mapping[str, str], Response | Failed | _Bug] = Threads(
                rows, one, concurrency, on_bug=lambda n, exc: _Bug(exc), name="oauthcli-each"
            )
            pool.start()
            try:
                for _, outcome in pool.results():
                    if isinstance(outcome, _Bug):
                        raise outcome.exc  # a bug is the caller's to see, as before
                    yield outcome
                if pool.error is not None:  # the rows' iterable raised
                    raise pool.error
            finally:  # the caller stopped early: rows not started are not sent
                pool.stop()
                while not pool.finished():  # the rows in flight end before the Sender
                    pool.over.wait(0.1)

    def get_token(self, profile: str, force: bool = False) -> AccessToken:
        """A valid access token for ``profile``, from the shared cache unless ``force``.

        Raises RegistryError (3) for an unknown or broken profile, TokenError (6)
        when none can be obtained.
        """
        from oauthcli.outlog.calls import recorded
        from oauthcli.tokens import obtain

        resolved = self._profile(profile)
        with recorded(
            "token", resolved, log_level=self._log_level, trace=None, warn=_warn
        ) as trace:
            return AccessToken._of(_warned(obtain(resolved, force=force, trace=trace)))

    def auth(self, profile: str) -> ProfileAuth:
        """A :class:`requests.auth.AuthBase` for any ``requests.Session``: ``profile``'s token.

        The token comes from the shared cache and is renewed when due; a 401 to a
        request sent with a cached token drops it and re-sends once with a new one.
        """
        return ProfileAuth(self._profile(profile), log_level=self._log_level)

    # -- helpers -------------------------------------------------------------

    def _builder(
        self,
        target: str,
        headers: Mapping[str, str] | None,
        body: bytes | str | None,
        timeout: float | None,
    ) -> RequestBuilder:
        message, method = split_target(self._files, target, None)
        data = body.encode("utf-8") if isinstance(body, str) else body
        return RequestBuilder(
            self._files,
            message,
            method,
            data,
            headers=list((headers or {}).items()),
            timeout=timeout,
        )

    def _with_profile(self, req: ResolvedRequest, profile: str | None) -> ResolvedRequest:
        if profile is None:
            return req
        return use_profile(self._files, req, profile, f"profile='{profile}'")

    def _profile(self, name: str) -> ResolvedProfile:
        # The same per-registry memo the request stage fills (request.resolve.resolve_auth).
        return profile_named(self._files, name)

    def _shared_sender(self) -> Sender:
        with self._lock:
            if self._sender is None:
                from oauthcli.outlog.calls import LoggingSender

                self._sender = LoggingSender(pool_size=4, warn=_warn, log_level=self._log_level)
            return self._sender


def _send(sender: Sender, req: ResolvedRequest) -> Response:
    # The whole body is kept (as requests does); the Result keeps its start to explain a 4xx/5xx.
    body = bytearray()
    result = sender.send(req, sink=body.extend)
    return Response(result, bytes(body))


def _warned(obtained: Obtained) -> Obtained:
    for text in obtained.warnings:
        _warn(text)
    return obtained


class Response:
    """The final answer to one call: what requests' Response offers, and the attempts."""

    #: The row got an answer: always None here (see :class:`Failed`).
    error: OAuthCliError | None = None

    def __init__(self, result: Result, content: bytes) -> None:
        self._result = result
        self.status: int = result.status
        self.reason: str = result.reason
        self.url: str = result.url
        self.headers: CaseInsensitiveDict[str] = result.headers
        self.content: bytes = content
        #: Requests sent for this call: retries and a re-send after a 401 included.
        self.attempts: int = result.attempts
        self.elapsed_ms: float = result.elapsed_ms

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def exit_code(self) -> ExitCode:
        """What the CLI would exit with: 0, 4 (4xx) or 5 (5xx)."""
        return ExitCode.for_status(self.status)

    @property
    def encoding(self) -> str:
        return get_encoding_from_headers(self.headers) or "utf-8"

    @property
    def text(self) -> str:
        try:
            return self.content.decode(self.encoding, errors="replace")
        except LookupError:  # a charset Python does not know
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError (json.JSONDecodeError) when it is not."""
        return json.loads(self.content)

    def raise_for_status(self) -> None:
        """Raise :class:`~oauthcli.errors.HTTPStatusError` for a 4xx/5xx, with the CLI's words."""
        if self.status < 400:
            return
        from oauthcli.present.explain import failure_lines

        raise HTTPStatusError(
            "\n".join(failure_lines(self._result)), status=self.status, response=self
        )

    def __repr__(self) -> str:
        method = self._result.http_method
        return f"<oauthcli.Response [{self.status}] {method} {scrub(mask_url(self.url))}>"


class _Bug:
    """A row's unexpected exception, raised to the caller of send_each when its turn comes."""

    __slots__ = ("exc",)

    def __init__(self, exc: Exception) -> None:
        self.exc = exc


@dataclass(repr=False, eq=False)
class Failed:
    """A :meth:`Registry.send_each` row that got no answer; ``error`` says why."""

    error: OAuthCliError
    status: None = None
    ok = False

    @property
    def exit_code(self) -> int:
        return int(self.error.exit_code)

    def raise_for_status(self) -> None:
        """Raise the row's error, as :meth:`Registry.send` would have."""
        raise self.error

    def __repr__(self) -> str:
        return f"<oauthcli.Failed exit {self.exit_code}: {scrub(str(self.error))}>"


@dataclass(frozen=True, repr=False, eq=False)
class AccessToken:
    """An access token: ``access_token`` is a :class:`~oauthcli.secret.Secret`
    (``str()``/``repr()`` give ``****``; ``.reveal()`` the value)."""

    access_token: Secret
    token_type: str
    expires_at: float | None
    scope: str | None
    #: The token's claims when it is a JWT (not verified), else {}.
    claims: dict[str, Any]
    #: Where it came from: "cache", "grant" or "refresh".
    source: str

    @classmethod
    def _of(cls, obtained: Obtained) -> AccessToken:
        from oauthcli.tokens.jwtinfo import decode

        token = obtained.token
        decoded = decode(token.access_token.reveal())
        return cls(
            access_token=token.access_token,
            token_type=token.token_type,
            expires_at=token.expires_at,
            scope=token.scope,
            claims=decoded[1] if decoded else {},
            source=obtained.source,
        )

    def reveal(self) -> str:
        """The access token itself."""
        return self.access_token.reveal()

    def __repr__(self) -> str:
        return (
            f"<oauthcli.AccessToken {self.token_type} ****, expires_at={self.expires_at}, "
            f"scope={self.scope!r}>"
        )


class ProfileAuth(AuthBase):
    """A profile's token on every request of a ``requests.Session`` (``session.auth = ...``).

    A requests adapter over :class:`oauthcli.auth.OAuth2Auth`, the auth ``send`` uses:
    its flow attaches the token (from the CLI's token cache, by its renewal rule) and,
    on a 401 to a request sent with a cached token, drops it and gives the request
    again with a new one. requests' ``AuthBase`` cannot be a generator, so the flow
    is driven from a response hook, as requests' ``HTTPDigestAuth`` re-sends; the
    re-send happens only when the body can be sent again (bytes, or a file that can be
    rewound). Each request asks the shared cache afresh, so a token another process
    renewed is picked up at once.
    """

    def __init__(self, profile: ResolvedProfile, *, log_level: str | None = None) -> None:
        from oauthcli.auth import OAuth2Auth

        self._auth = OAuth2Auth(profile)
        self._log_level = log_level

    def __repr__(self) -> str:
        return f"<oauthcli.ProfileAuth profile={self._auth.profile.name!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProfileAuth) and other._auth.profile is self._auth.profile

    def __hash__(self) -> int:
        return id(self._auth.profile)

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        from oauthcli.auth import AuthState, Outgoing
        from oauthcli.outlog import calls
        from oauthcli.outlog.record import OFF, Recording
        from oauthcli.trace import Trace

        # Each request is a record of the outbound log, written when its answer is in.
        level = calls.level_of(self._log_level, self._auth.profile.log_level)
        recording = Recording(level) if level != OFF else None
        started = time.monotonic()
        flow = self._auth.auth_flow(Outgoing({}, {}, recording or Trace()), AuthState(warn=_warn))
        try:
            out = next(flow)
        except BaseException as exc:  # no token: the request is not sent
            calls.record_exchange(
                recording, self._auth.profile, started=started, exc=exc, warn=_warn
            )
            raise
        r.headers["Authorization"] = out.headers["Authorization"]
        if out.signer is not None:  # DPoP: a proof for this request
            out.signer.sign(r.method or "GET", r.url or "", r.headers)
        position: int | None = None
        tell = getattr(r.body, "tell", None)
        if tell is not None:
            try:
                position = tell()
            except (OSError, ValueError):
                position = None
        r.register_hook(
            "response",
            partial(
                self._on_response,
                flow=flow,
                sent=r.headers["Authorization"],
                position=position,
                signer=out.signer,
                recording=recording,
                started=started,
            ),
        )
        return r

    def _on_response(
        self,
        r: requests.Response,
        *,
        flow: Generator[Any, Any, None],
        sent: str,
        position: int | None,
        signer: Signer | None = None,
        recording: Recording | None = None,
        started: float = 0.0,
        **kwargs: Any,
    ) -> requests.Response:
        from oauthcli.outlog import calls

        profile = self._auth.profile
        try:
            answer = self._answered(
                r, flow=flow, sent=sent, position=position, signer=signer, **kwargs
            )
        except BaseException as exc:  # no new token after a 401, or the network
            calls.record_exchange(recording, profile, started=started, exc=exc, warn=_warn)
            raise
        attempts = 2 if answer is not r else 1
        calls.record_exchange(
            recording,
            profile,
            started=started,
            response=answer,
            attempts=attempts,
            warn=_warn,
            secret_headers=self._auth.secret_headers(),
        )
        return answer

    def _answered(
        self,
        r: requests.Response,
        *,
        flow: Generator[Any, Any, None],
        sent: str,
        position: int | None,
        signer: Signer | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        if signer is not None:
            signer.answered(r.url, r.headers)
        if r.status_code != 401 or r.history and r.history[-1].status_code == 401:
            return r
        # Only a request that carried our token: requests strips it on a redirect to
        # another host, and this hook would otherwise put it back there.
        if r.request.headers.get("Authorization") != sent or not self._rewind(r.request, position):
            return r
        try:
            again = flow.send(_Reply(r.status_code, credentials_sent=True, headers=r.headers))
        except StopIteration:
            return r  # a token fresh from the token endpoint would only be replaced by its twin
        r.content  # noqa: B018 (read to the end, so the connection can be reused)
        r.close()
        prep = r.request.copy()
        extract_cookies_to_jar(prep._cookies, r.request, r.raw)  # type: ignore[attr-defined]
        prep.prepare_cookies(prep._cookies)  # type: ignore[attr-defined]
        prep.headers["Authorization"] = again.headers["Authorization"]
        if again.signer is not None:
            again.signer.sign(prep.method or "GET", prep.url or "", prep.headers)
        retried: requests.Response = r.connection.send(prep, **kwargs)
        retried.history.append(r)
        retried.request = prep
        return retried

    @staticmethod
    def _rewind(request: requests.PreparedRequest, position: int | None) -> bool:
        body = request.body
        if body is None or isinstance(body, (bytes, str)):
            return True
        seek = getattr(body, "seek", None)
        if position is None or seek is None:
            return False  # a generator, or a file that cannot say where it was: not again
        try:
            seek(position)
        except (OSError, ValueError):
            return False
        return True


@dataclass(frozen=True)
class _Reply:
    """What :class:`ProfileAuth` tells the auth flow of requests' response."""

    status_code: int
    credentials_sent: bool
    headers: Mapping[str, str] = field(default_factory=dict)
