"""What a token is: :class:`Token`, and :class:`Obtained` (a token and where it came from).

A leaf of the tokens package: the cache, the grants and the service all use these
without importing one another or the package's front door.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oauthcli.secret import Secret

#: Seconds beyond which a stated lifetime is garbage (over 300 years; dates end in 9999).
MAX_LIFETIME = 10**10


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
