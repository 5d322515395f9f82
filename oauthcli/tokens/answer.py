"""A token endpoint's answer, read once into one shape (SPEC §4).

:func:`read` turns the decoded answer of a token request into a
:class:`TokenAnswer`; :mod:`oauthcli.tokens.grants` calls it and
:mod:`oauthcli.tokens.service` only ever sees the result, whatever shape the
provider used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, repr=False)
class TokenAnswer:
    access_token: str
    token_type: str  # as issued ("Bearer" when the server said nothing)
    expires_in: int | None  # seconds, as issued; None when not stated
    scope: str | None  # space-separated
    refresh_token: str | None
    refresh_expires_in: int | None  # seconds (Keycloak's refresh_expires_in), None if not stated

    def __repr__(self) -> str:
        return f"TokenAnswer(token_type={self.token_type!r}, expires_in={self.expires_in!r})"


def read(data: dict[str, Any]) -> TokenAnswer:
    """The answer ``data`` as a :class:`TokenAnswer` (checked already by the caller)."""
    expires_in = data.get("expires_in")
    scope = data.get("scope")
    if isinstance(scope, list):
        scope = " ".join(str(s) for s in scope)
    refresh = data.get("refresh_token")
    refresh_expires_in = None
    for key in ("refresh_expires_in", "refresh_token_expires_in"):
        seconds = data.get(key)
        if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) and seconds > 0:
            refresh_expires_in = int(seconds)
            break
    return TokenAnswer(
        access_token=str(data["access_token"]),
        token_type=str(data.get("token_type") or "Bearer"),
        expires_in=None if expires_in is None else int(expires_in),
        scope=str(scope) if scope else None,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        refresh_expires_in=refresh_expires_in,
    )
