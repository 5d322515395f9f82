"""Access tokens for profiles: the API ``send`` and the token commands use.

:func:`obtain` returns a usable token for a profile, from the cache when a
valid one is there (no lock, nothing heavy imported) and otherwise from the
token endpoint, under a per-entry file lock so concurrent processes make one
request. :func:`drop` forgets a token the API rejected. :meth:`Token.due` is
the one rule for when a token is renewed (SPEC §4).

This module must stay import-light: Authlib, filelock and the JWT signing code
are imported only on the path that actually runs a grant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from oauthcli.secret import Secret

if TYPE_CHECKING:
    from oauthcli.resolved import ResolvedProfile
    from oauthcli.trace import Trace

__all__ = ["Obtained", "Token", "drop", "obtain"]


@dataclass(frozen=True)
class Token:
    access_token: Secret
    token_type: str  # "Bearer" with normalised capitalisation
    expires_at: float | None  # epoch seconds
    scope: str | None  # granted scope string, if the server said
    refresh_token: Secret | None
    refresh_expires_at: float | None
    obtained_at: float
    lifetime: float | None = None  # seconds it was issued for; None: from expires_at

    def renew_margin(self, leeway: float) -> float:
        """Seconds before expiry from which the token is renewed: min(leeway, lifetime / 4).

        So a 30-second token is reused for 22.5 s and a 1-hour one until ``leeway``
        seconds before it expires, instead of short tokens never being reused at all.
        """
        lifetime = self.lifetime
        if lifetime is None:
            lifetime = (self.expires_at or self.obtained_at) - self.obtained_at
        return min(float(leeway), max(0.0, lifetime) / 4)

    def due(self, leeway: float, now: float) -> bool:
        """Whether it is time to renew the token (or past it): the one rule, SPEC §4."""
        return self.expires_at is not None and now >= self.expires_at - self.renew_margin(leeway)

    def is_jwt(self) -> bool:
        """Whether the access token is a JWS compact JWT (header and claims decode)."""
        from oauthcli.tokens.jwtinfo import decode

        return decode(self.access_token.reveal()) is not None


@dataclass(frozen=True)
class Obtained:
    token: Token
    source: str  # "cache" | "grant" | "refresh"
    warnings: list[str] = field(default_factory=list)


def obtain(
    profile: ResolvedProfile, *, force: bool = False, trace: Trace | None = None
) -> Obtained:
    """A valid token for ``profile``; raises :class:`~oauthcli.errors.TokenError`.

    ``trace`` is told each decision (cached, renewing and why, refreshing) and is
    passed on to the token requests, so ``-v`` shows the token exchange.
    """
    from oauthcli.tokens import service

    return service.obtain(profile, force=force, trace=trace)


def drop(profile: ResolvedProfile, token: Token) -> None:
    """Remove the cache entry only if it still holds this exact token."""
    from oauthcli.tokens import service

    service.drop(profile, token)
