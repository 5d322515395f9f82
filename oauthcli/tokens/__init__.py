"""Access tokens for profiles: the API ``send`` and the token commands use.

:func:`obtain` returns a usable token for a profile, from the cache when a
valid one is there (no lock, nothing heavy imported) and otherwise from the
token endpoint, under a per-entry file lock so concurrent processes make one
request. :func:`drop` forgets a token the API rejected.

This module must stay import-light: Authlib, filelock and the JWT signing code
are imported only on the path that actually runs a grant.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from oauthcli.secret import Secret

if TYPE_CHECKING:
    from oauthcli.resolve import ResolvedProfile

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
        """Whether the access token looks like a JWS compact JWT (decodable header)."""
        parts = self.access_token.reveal().split(".")
        if len(parts) != 3:
            return False
        try:
            header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
        except (ValueError, UnicodeDecodeError):
            return False
        return isinstance(header, dict) and "alg" in header


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
