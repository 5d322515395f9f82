"""``auth: {type: oauth2}``: a profile's access token, held and renewed for a Sender.

One :class:`TokenHolder` per Sender holds one token per token identity (the cache's
entry key). It is shared by the threads of a batch: the common case reads the held
token without a lock; when a held token is refused, one thread renews it under the
identity's lock and the others re-send with the one it got instead of each fetching
their own. Tokens come from :func:`oauthcli.tokens.obtain` and a refused cached one is
dropped with :func:`oauthcli.tokens.drop` (SPEC §4).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, ClassVar

from oauthcli.auth.base import SECRET_HEADERS, Auth, AuthState, Flow, Outgoing, Reply
from oauthcli.errors import TokenEndpointError
from oauthcli.secret import MASK

if TYPE_CHECKING:
    from oauthcli.request.resolved import ResolvedProfile
    from oauthcli.tokens.model import Token
    from oauthcli.trace import Trace

#: The headers masked for a ``dpop: true`` profile: its proofs too.
_WITH_PROOF = SECRET_HEADERS | {"dpop"}
#: Seconds a timed-out or 5xx token request stands before a call may try again.
TRANSIENT_TOKEN_FAILURE = 5.0


class Held:
    """A token a Sender uses for a profile, and what is known about it."""

    __slots__ = ("accepted", "source", "token")

    def __init__(self, token: Token, source: str) -> None:
        self.token = token
        self.source = source  # "cache", "refresh", "grant", ...
        #: A response other than 401 came to a request that carried it.
        self.accepted = False


class OAuth2Auth(Auth):
    """The token of :attr:`profile`, as ``Authorization: <token_scheme> <token>``."""

    __slots__ = ("_profile",)
    type: ClassVar[str] = "oauth2"

    def __init__(self, profile: ResolvedProfile) -> None:
        self._profile = profile

    @property
    def profile(self) -> ResolvedProfile:
        """The profile whose token is sent."""
        return self._profile

    @property
    def header(self) -> str:
        return "Authorization"

    def auth_flow(self, request: Outgoing, state: AuthState) -> Flow:
        if self._given(request):
            yield request
            return
        if state.dry_run:
            request.attach("Authorization", self.masked())
            if self._profile.dpop:
                from oauthcli.auth.dpop import signer

                request.signer = signer(self._profile, None, state, request.trace)
            yield request
            return
        holder = state.slot("oauth2", TokenHolder)
        profile, trace = self._profile, request.trace
        held = holder.current(profile, trace)
        self._put(request, held, state)
        reply = yield from self._exchange(request)
        if not reply.credentials_sent:
            return
        if reply.status_code != 401:
            held.accepted = True
            return
        replacement = holder.renew(profile, held, trace)
        if replacement is None:
            return
        self._put(request, replacement, state)
        request.renewed = True
        reply = yield from self._exchange(request)
        if reply.credentials_sent and reply.status_code != 401:
            replacement.accepted = True

    def _exchange(self, request: Outgoing) -> Generator[Outgoing, Reply, Reply]:
        """Send ``request``; a DPoP nonce challenge (RFC 9449 §9) is answered once."""
        reply = yield request
        if request.signer is None or not reply.credentials_sent:
            return reply
        from oauthcli.auth.dpop import asks_nonce

        if asks_nonce(reply):
            request.trace.note("401 use_dpop_nonce: sending again with the API's DPoP nonce")
            reply = yield request
            if reply.credentials_sent and asks_nonce(reply):
                request.trace.note("the API asked for a new DPoP nonce again: not retried")
        return reply

    def _put(self, request: Outgoing, held: Held, state: AuthState) -> None:
        request.attach("Authorization", self.authorization(held.token))
        request.token = held.token
        if self._profile.dpop:
            from oauthcli.auth.dpop import signer

            request.signer = signer(self._profile, held.token, state, request.trace)

    def authorization(self, token: Token) -> str:
        """``Bearer <token>``, or the profile's ``token_scheme``: never the answer's
        token_type, which providers fill with "bearer", "N_A" or nothing (SPEC §4); a
        DPoP-bound token of a ``dpop: true`` profile goes as ``DPoP`` (never Bearer)."""
        return f"{self._scheme(token.token_type)} {token.access_token.reveal()}"

    def _scheme(self, token_type: str) -> str:
        p = self._profile
        if p.dpop and token_type.lower() == "dpop":
            scheme = p.token_scheme
            return scheme if scheme and scheme.lower() != "bearer" else "DPoP"
        return p.authorization_scheme

    def masked(self) -> str:
        return f"{self._scheme('DPoP' if self._profile.dpop else '')} {MASK}"

    def secret_headers(self) -> frozenset[str]:
        return _WITH_PROOF if self._profile.dpop else SECRET_HEADERS

    def curl(self) -> tuple[list[str], list[str]]:
        import shlex

        p = self._profile
        comments = [f"# TOKEN=$(oauthcli get-token {shlex.quote(p.name)} --raw)"]
        args = ["-H", f'"Authorization: {self._scheme("DPoP" if p.dpop else "")} $TOKEN"']
        if p.dpop:
            # A proof is signed per request with the key in the cache folder: curl cannot.
            comments.append("# DPOP: a fresh DPoP proof for this request (RFC 9449)")
            args += ["-H", '"DPoP: $DPOP"']
        return comments, args

    def summary(self) -> str:
        p = self._profile
        dpop = ", DPoP-bound" if p.dpop else ""
        return (
            f"oauth2 via profile {p.name} ({p.grant_type}, {p.client_auth} at {p.token_url}{dpop})"
        )


class TokenHolder:
    """The tokens of one Sender, one per token identity; safe to share between threads."""

    def __init__(self, state: AuthState) -> None:
        self._warn = state.warn
        self._tokens: dict[str, Held] = {}  # by token identity (tokens.cache.entry_key)
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        # A token request that failed, per identity, and until when it stands (None: for
        # good). The rows of a batch then report it instead of each asking again.
        self._failed: dict[str, tuple[TokenEndpointError, float | None]] = {}

    def current(self, profile: ResolvedProfile, trace: Trace) -> Held:
        """The token to send with: the held one while not due, else from ``tokens.obtain``."""
        from oauthcli.tokens.cache import entry_key

        key = entry_key(profile)
        held = self._tokens.get(key)
        if held is not None and not _due(held, profile):
            _held(held, profile, trace)
            return held  # the common case in a batch: no lock, so workers do not queue here
        with self._lock(key):
            held = self._tokens.get(key)
            if held is None or _due(held, profile):
                held = self._obtain(key, profile, force=False, trace=trace)
            else:
                _held(held, profile, trace)
            return held

    def renew(self, profile: ResolvedProfile, stale: Held, trace: Trace) -> Held | None:
        """After a 401: the token to re-send with, or None when another would not help."""
        from oauthcli.tokens.cache import entry_key

        key = entry_key(profile)
        with self._lock(key):
            current = self._tokens.get(key)
            if current is not None and current is not stale:
                trace.decision(
                    "shared_401", "401: re-sending with the token another call just obtained"
                )
                return current
            # A token fresh from the token endpoint that was never accepted would
            # only be replaced by its twin; a cached or once-good one may be stale.
            if stale.source != "cache" and not stale.accepted:
                return None
            from oauthcli.tokens import drop

            trace.decision(
                "refused_401", "401 with a cached token: dropping it and obtaining a new one"
            )
            drop(profile, stale.token)
            return self._obtain(key, profile, force=True, trace=trace)

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())

    def _obtain(self, key: str, profile: ResolvedProfile, *, force: bool, trace: Trace) -> Held:
        """Get a token (holding the identity's lock), or raise the failure that still stands.

        A refusal (``invalid_client``, a bad key) stands for the Sender's life; a
        transient failure (timeout, 5xx) for :data:`TRANSIENT_TOKEN_FAILURE` seconds.
        Without this, every row of a batch would ask the token endpoint again, and
        wait out its timeout again.
        """
        from oauthcli.tokens import obtain

        failed = self._failed.get(key)
        if failed is not None and (failed[1] is None or time.monotonic() < failed[1]):
            import copy

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
        held = Held(obtained.token, obtained.source)
        self._tokens[key] = held
        return held


def _held(held: Held, profile: ResolvedProfile, trace: Trace) -> None:
    """The decision of a call sent with the token this Sender holds (a batch's rows)."""
    expires_at = held.token.expires_at
    left = None if expires_at is None else round(expires_at - time.time(), 1)
    shown = "" if left is None else f", {left:g} s left"
    trace.decision(
        "cached", f"token: the one held for profile '{profile.name}'{shown}", expires_in_s=left
    )


def _due(held: Held, profile: ResolvedProfile) -> bool:
    """Time to renew the held token: the cache's rule (SPEC §4), not one of our own."""
    return held.token.due(profile.token_leeway, time.time())
