"""Sending resolved requests, in stages as httpx does: auth flow → retries → redirects → exchange.

A :class:`Sender` owns one pooled connection adapter and one
:class:`~oauthcli.auth.AuthState` (an OAuth profile's token, held per token identity).
It is safe to share between threads (a batch runner's workers): when a held token is
refused, one worker renews it and the others re-send with the new one
(:mod:`oauthcli.auth.oauth2`).

For one call, :meth:`Sender.send` runs the request's auth flow
(:meth:`oauthcli.auth.Auth.auth_flow`: credentials attached, a 401 renewed once);
each request it yields is tried by :mod:`~oauthcli.transport.retries`, each try
follows its redirects by :mod:`~oauthcli.transport.redirects`, and each hop is one
exchange of :mod:`~oauthcli.transport.exchange`. The final answer's body is read
last, streamed to a sink or cut at ``body_limit``.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from requests.structures import CaseInsensitiveDict

from oauthcli.auth.base import SECRET_HEADERS, AuthState, Outgoing
from oauthcli.errors import OAuthCliWarning
from oauthcli.request.resolved import ResolvedRequest
from oauthcli.trace import Trace
from oauthcli.transport.exchange import Answer, Transient, Transport, discard, read_body
from oauthcli.transport.http import base_headers
from oauthcli.transport.redirects import MAX_REDIRECTS, REDIRECT_STATUSES, follow
from oauthcli.transport.retries import Retrying

if TYPE_CHECKING:
    from oauthcli.auth.base import Token  # the token an auth attached (oauthcli.tokens')

__all__ = ["BODY_LIMIT", "MAX_REDIRECTS", "REDIRECT_STATUSES", "Result", "Sender"]

#: Bytes of a body kept in memory for the terminal, ``--json`` and ``--each`` lines.
BODY_LIMIT = 8 * 1024 * 1024


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


def _warn(text: str) -> None:
    warnings.warn(text, OAuthCliWarning, stacklevel=4)


class Sender:
    """Sends :class:`ResolvedRequest` objects; reuse one for many calls, close it after.

    ``warn`` receives each warning (the CLI passes ``console.warn``); by default it is
    an :class:`~oauthcli.errors.OAuthCliWarning` through :mod:`warnings`.
    """

    def __init__(
        self,
        *,
        pool_size: int = 10,
        sleep: Callable[[float], None] = time.sleep,
        warn: Callable[[str], None] = _warn,
        body_limit: int = BODY_LIMIT,
    ) -> None:
        self._body_limit = body_limit
        self._transport = Transport(pool_size)
        self._sleep = sleep
        self._warn = warn
        self._auth = AuthState(warn=warn)

    @property
    def warn(self) -> Callable[[str], None]:
        """Where this Sender's warnings go."""
        return self._warn

    def __enter__(self) -> Sender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

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
        started = time.monotonic()
        flow = req.auth.auth_flow(Outgoing(req.headers, base_headers(req), trace), self._auth)
        request = next(flow)
        tries = Retrying(req, self._sleep, trace)
        send_one, warn = self._transport.send, self._warn
        flowing = True  # the auth flow has not yet said it is content with an answer
        while True:
            attempt = partial(follow, send_one, req, request, warn)
            answer = tries.send(attempt, keep=_refused if flowing else None)
            if flowing:
                try:
                    request = flow.send(answer)
                except StopIteration:
                    flowing = False  # the auth is content with this answer
                else:
                    discard(answer)
                    tries.not_a_retry()
                    continue
                if tries.again(answer):  # a 401 the auth could not help with, maybe retried
                    continue
            try:
                body, size, cut = read_body(answer, req, sink, self._body_limit)
            except Transient as exc:
                tries.wait_or_raise(exc)
                continue  # the same request again; its auth flow has finished
            response = answer.response
            return Result(
                request=req,
                status=response.status_code,
                reason=response.reason or "",
                url=response.url,
                http_method=response.request.method or req.http_method,
                headers=response.headers,
                body=body,
                elapsed_ms=(time.monotonic() - started) * 1000,
                attempts=tries.attempts,
                token=request.token,
                token_renewed=request.renewed,
                credentials_sent=answer.sent,
                redirected_from_origin=answer.left,
                secret_headers=req.auth.secret_headers(),
                body_size=size,
                body_cut=cut,
                streamed=sink is not None,
            )


def _refused(answer: Answer) -> bool:
    """A 401 to credentials sent: the auth flow sees it before any retry (it may renew)."""
    return answer.sent and answer.response.status_code == 401
