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

from typing import TYPE_CHECKING

from oauthcli.tokens.model import Obtained, Token

if TYPE_CHECKING:
    from oauthcli.request.resolved import ResolvedProfile
    from oauthcli.trace import Trace

__all__ = ["Obtained", "Token", "drop", "obtain"]


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
