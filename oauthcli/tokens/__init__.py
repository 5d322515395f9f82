"""Access tokens for profiles: the API ``send`` and the token commands use.

:func:`obtain` returns a usable token for a profile, from the cache when a
valid one is there (no lock, nothing heavy imported) and otherwise from the
token endpoint, under a per-entry file lock so concurrent processes make one
request. :func:`drop` forgets a token the API rejected.

This module must stay import-light: Authlib, filelock and the JWT signing code
are imported only on the path that actually runs a grant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from oauthcli.secret import Secret

if TYPE_CHECKING:
    from oauthcli.resolved import ResolvedProfile

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

    def is_jwt(self) -> bool:
        """Whether the access token is a JWS compact JWT (header and claims decode)."""
        from oauthcli.tokens.jwtinfo import decode

        return decode(self.access_token.reveal()) is not None


@dataclass(frozen=True)
class Obtained:
    token: Token
    source: str  # "cache" | "grant" | "refresh"
    warnings: list[str] = field(default_factory=list)


def obtain(profile: ResolvedProfile, *, force: bool = False) -> Obtained:
    """A valid token for ``profile``; raises :class:`~oauthcli.errors.TokenError`."""
    from oauthcli.tokens import service

    return service.obtain(profile, force=force)


def drop(profile: ResolvedProfile, token: Token) -> None:
    """Remove the cache entry only if it still holds this exact token."""
    from oauthcli.tokens import service

    service.drop(profile, token)
