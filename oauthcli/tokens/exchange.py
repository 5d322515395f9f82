"""RFC 8693 token exchange: the subject and actor tokens, and ``${token:PROFILE}``.

:func:`parameters` gives the grant's form fields (:class:`~oauthcli.tokens.grants.TokenExchange`
is its entry in the table). A ``subject_token``/``actor_token`` that names another
profile's token (``${token:PROFILE}``, a :class:`~oauthcli.request.resolved.WithTokens`)
is put together here, when the exchange runs: each such token comes from
the token service's ``obtain`` (passed in), the cache or that profile's own grant, as any other
token would. A failure there is this profile's token error, naming the other profile.

The answer (RFC 8693 §2.2.1) is read as any other (``issued_token_type`` accepted, shown
with the answer by ``-v``). A ``token_type`` of ``N_A`` says the token is not an OAuth access
token for an ``Authorization`` header (an ID token, a SAML assertion); oauthcli still sends
it as ``Bearer`` unless the profile sets ``token_scheme``, as it does for every unusual
token_type (SPEC §4): the API at the other end decides what it accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from oauthcli.errors import GrantError, TokenError
from oauthcli.request.resolved import WithTokens
from oauthcli.secret import Secret

if TYPE_CHECKING:
    from oauthcli.request.resolved import ResolvedProfile
    from oauthcli.tokens.model import Obtained
    from oauthcli.trace import Trace

#: How another profile's token is obtained: :func:`oauthcli.tokens.service.obtain`, passed
#: in by the token service (this module imports no part of it).
Obtain = Callable[..., "Obtained"]


def parameters(
    profile: ResolvedProfile, obtain: Obtain | None, trace: Trace | None = None
) -> dict[str, Any]:
    """The form fields of the exchange: subject (and actor) token with their types, and the
    requested token type. ``audience`` and each ``resource`` go as for every grant."""
    assert profile.subject_token is not None
    form: dict[str, Any] = {
        "subject_token": reveal(profile, "subject_token", profile.subject_token, obtain, trace),
        "subject_token_type": profile.subject_token_type,
    }
    if profile.actor_token is not None:
        form["actor_token"] = reveal(profile, "actor_token", profile.actor_token, obtain, trace)
        form["actor_token_type"] = profile.actor_token_type
    if profile.requested_token_type:
        form["requested_token_type"] = profile.requested_token_type
    for name in ("subject_token", "actor_token"):
        if name in form and not form[name]:
            raise GrantError(
                f"token request for profile '{profile.name}' failed: {name} is empty "
                f"(check its value in {profile.source})"
            )
    return form


def reveal(
    profile: ResolvedProfile,
    key: str,
    value: Secret | WithTokens,
    obtain: Obtain | None,
    trace: Trace | None = None,
) -> str:
    """The value of ``key``: a plain secret as it is, ``${token:…}`` parts with that
    profile's access token (from the cache, else its grant)."""
    if isinstance(value, Secret):
        return value.reveal()
    assert obtain is not None, "the token service passes obtain for ${token:…}"
    out = []
    for part in value.parts:
        if isinstance(part, Secret):
            out.append(part.reveal())
            continue
        if trace is not None:
            trace.note(
                f"token: profile '{profile.name}' needs profile '{part.name}'s token ({key})"
            )
        try:
            got = obtain(part, trace=trace)
        except TokenError as exc:
            raise GrantError(
                f"token request for profile '{profile.name}' failed: its {key} is "
                f"profile '{part.name}'s token, which could not be obtained: {exc}",
                transient=getattr(exc, "transient", False),
            ) from None
        out.append(got.token.access_token.reveal())
    return "".join(out)
