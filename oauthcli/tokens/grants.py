"""The grants as a table: how each ``grant_type`` is asked of the token endpoint.

:data:`GRANTS` maps each ``grant_type`` a profile may name to a :class:`Grant`:
the profile keys it needs, which of them become which request parameters
(:meth:`Grant.parameters`), which Authlib call carries them (:meth:`Grant.ask`:
``fetch_token`` with the wire ``grant_type``, or ``refresh_token``), how its
answer is read (:meth:`Grant.read`), and what the token service must know of
it (:attr:`Grant.rotating`, :attr:`Grant.interactive`). :func:`fetch` runs a
profile's grant, :func:`refresh` exchanges a refresh token, :func:`revoke`
revokes one (RFC 7009). A new grant (issue 13's ``device_code``,
``token_exchange``) is one class here, one entry in the table and its tests.

How the client authenticates is :mod:`oauthcli.tokens.clientauth`'s table; the
exchange itself (Authlib's client on a requests session, the answer check, the
failures in words) is :mod:`oauthcli.tokens.endpoint`, imported only when a
request is made, so reading this table costs no Authlib import.

Every call is asked once more after a 429 or 503 with ``Retry-After`` when the
wait fits in what remains of the profile's ``timeout`` (:func:`_call`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlencode

import oauthcli.tokens.answer as answer
import oauthcli.tokens.signin as signin
from oauthcli.errors import GrantError
from oauthcli.secret import Secret
from oauthcli.tokens.answer import TokenAnswer
from oauthcli.tokens.clientauth import CLIENT_AUTHS

if TYPE_CHECKING:
    from oauthcli.request.resolved import ResolvedProfile
    from oauthcli.tokens.endpoint import Session
    from oauthcli.tokens.model import Obtained
    from oauthcli.trace import Trace

__all__ = ["CLIENT_AUTHS", "GRANTS", "GRANT_TYPES", "Grant", "GrantError", "fetch", "refresh"]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"

#: Waits for the one retry after a 429/503 (tests replace it).
sleep: Callable[[float], None] = time.sleep


@dataclass(frozen=True)
class Exchange:
    """One run of a grant: the Authlib session, the profile, and how to reach the user."""

    session: Session
    profile: ResolvedProfile
    #: Shows the user a line they must act on (a sign-in URL); see :mod:`~oauthcli.tokens.signin`.
    show: Callable[[str], None]
    #: The refresh token to exchange (the cached one), instead of the profile's.
    refresh_token: Secret | None = None
    #: Another profile's token (``${token:PROFILE}``): the token service's ``obtain``.
    obtain: Callable[..., Obtained] | None = None


class Grant:
    """One ``grant_type``: what it needs, what it sends and how Authlib is called for it."""

    #: The ``grant_type`` a profile writes.
    name: ClassVar[str]
    #: The ``grant_type`` sent to the token endpoint.
    wire: ClassVar[str]
    #: Profile keys the grant reads beyond token_url and the client's (SPEC §1.1).
    needs: ClassVar[tuple[str, ...]] = ()
    #: Its credential is a refresh token the server may rotate: the cached one wins (SPEC §4).
    rotating: ClassVar[bool] = False
    #: Its credential is the profile's ``refresh_token``: once refused, it is spent.
    spends_refresh_token: ClassVar[bool] = False
    #: A person signs in while it runs: others wait for the cache entry's lock that long.
    interactive: ClassVar[bool] = False
    #: What a failure calls the request ("token request for profile 'acme' failed: …").
    action: ClassVar[str] = "token request"

    def signin_bound(self) -> float:
        """The longest a person's sign-in may take (:attr:`interactive` grants): how long
        another process waits for this one's lock, beyond the token requests."""
        return 0.0

    def parameters(self, x: Exchange) -> dict[str, Any]:
        """The grant's own request parameters, from the profile's values.

        Called once per run, before the request (and not again for its one retry).
        """
        return {}

    def ask(self, x: Exchange, parameters: dict[str, Any]) -> None:
        """Make the request through Authlib; the answer is read by the session's check."""
        x.session.fetch_token(
            x.profile.token_url,
            grant_type=self.wire,
            body=_extras(x.profile),
            **parameters,
            **_request_options(x.profile),
        )

    def read(self, data: dict[str, Any]) -> TokenAnswer:
        """The checked answer as a :class:`TokenAnswer` (it needs a usable access_token)."""
        return answer.read(data)


class ClientCredentials(Grant):
    name = wire = "client_credentials"


class Password(Grant):
    name = wire = "password"
    needs = ("username", "password")

    def parameters(self, x: Exchange) -> dict[str, Any]:
        return {"username": x.profile.username, "password": _reveal(x.profile.password)}


class JWTBearer(Grant):
    """RFC 7523 §2.1: an assertion issued elsewhere, exchanged for a token."""

    name = "jwt_bearer"
    wire = JWT_BEARER
    needs = ("assertion",)

    def parameters(self, x: Exchange) -> dict[str, Any]:
        return {"assertion": _reveal(x.profile.assertion)}


class AuthorizationCode(Grant):
    """A browser sign-in (:mod:`~oauthcli.tokens.authcode`, PKCE S256), then the code."""

    name = wire = "authorization_code"
    needs = ("authorization_url", "redirect_url")
    rotating = True
    interactive = True

    def signin_bound(self) -> float:
        from oauthcli.tokens.authcode import WAIT  # the browser's answer comes within it

        return float(WAIT)

    def parameters(self, x: Exchange) -> dict[str, Any]:
        from oauthcli.tokens.authcode import authorize

        code, verifier = authorize(x.profile, x.session, x.show)
        return {"code": code, "code_verifier": verifier, "redirect_uri": x.profile.redirect_url}


class DeviceCode(Grant):
    """RFC 8628: a user code shown to enter elsewhere (:mod:`~oauthcli.tokens.device`),
    then the token endpoint polled until the user has signed in."""

    name = "device_code"
    wire = "urn:ietf:params:oauth:grant-type:device_code"
    needs = ("device_authorization_url",)
    rotating = True
    interactive = True

    def signin_bound(self) -> float:
        from oauthcli.tokens.device import MAX_WAIT  # a device code's lifetime, at most

        return float(MAX_WAIT)

    def parameters(self, x: Exchange) -> dict[str, Any]:
        from oauthcli.tokens.device import start

        return {"device": start(x.profile, x.session, x.show, _request_options(x.profile))}

    def ask(self, x: Exchange, parameters: dict[str, Any]) -> None:
        from oauthcli.tokens.device import poll

        found = parameters["device"]

        def one() -> None:
            x.session.fetch_token(
                x.profile.token_url,
                grant_type=self.wire,
                device_code=found.device_code.reveal(),
                scope="",  # asked for with the device code already
                body=_extras(x.profile),
                **_request_options(x.profile),
            )

        poll(x.profile, found, one, f"{self.action} for profile '{x.profile.name}'")


class TokenExchange(Grant):
    """RFC 8693: a token (``subject_token``, maybe ``${token:PROFILE}``) exchanged for another
    (:mod:`~oauthcli.tokens.exchange`); audience and each resource go as for every grant."""

    name = "token_exchange"
    wire = "urn:ietf:params:oauth:grant-type:token-exchange"
    needs = ("subject_token",)

    def parameters(self, x: Exchange) -> dict[str, Any]:
        from oauthcli.tokens.exchange import parameters

        return parameters(x.profile, x.obtain, x.session.trace)


class RefreshToken(Grant):
    """RFC 6749 §6 through Authlib's ``refresh_token``: the cached refresh token, else the
    profile's; RFC 8707 §2.2: the resources (and audience, extras) go with it too."""

    name = wire = "refresh_token"
    needs = ("refresh_token",)
    rotating = True
    spends_refresh_token = True
    action = "token refresh"

    def ask(self, x: Exchange, parameters: dict[str, Any]) -> None:
        token = x.refresh_token or x.profile.refresh_token
        assert token is not None
        x.session.refresh_token(
            x.profile.token_url,
            refresh_token=token.reveal(),
            body=_extras(x.profile),
            **_request_options(x.profile),
        )


#: Every ``grant_type``, in the order SPEC §1.1 lists them.
GRANTS: dict[str, Grant] = {
    g.name: g
    for g in (
        ClientCredentials(),
        Password(),
        RefreshToken(),
        JWTBearer(),
        AuthorizationCode(),
        DeviceCode(),
        TokenExchange(),
    )
}
#: The names, for checking the registry's declaration against (tests/test_grant_table.py).
GRANT_TYPES: tuple[str, ...] = tuple(GRANTS)


def fetch(
    profile: ResolvedProfile,
    *,
    trace: Trace | None = None,
    obtain: Callable[..., Obtained] | None = None,
) -> TokenAnswer:
    """Run the profile's grant; the token endpoint's answer. ``obtain`` gets the tokens of
    the profiles its ``${token:PROFILE}`` values name."""
    grant = GRANTS.get(profile.grant_type)
    if grant is None:
        raise GrantError(
            f"token request for profile '{profile.name}' failed: "
            f"grant_type {profile.grant_type} is not supported"
        )
    return _run(grant, profile, trace, obtain=obtain)


def refresh(
    profile: ResolvedProfile, refresh_token: Secret, *, trace: Trace | None = None
) -> TokenAnswer:
    """Exchange a refresh token; the token endpoint's answer."""
    return _run(GRANTS["refresh_token"], profile, trace, refresh_token)


def revoke(
    profile: ResolvedProfile, token: Secret, hint: str, *, trace: Trace | None = None
) -> None:
    """Revoke one token at the profile's revocation_url (RFC 7009)."""
    import oauthcli.tokens.endpoint as endpoint

    url = profile.revocation_url
    assert url is not None
    what = f"revocation of the {hint.replace('_', ' ')} for profile '{profile.name}'"
    s = endpoint.session(profile, what, trace)

    def call() -> None:
        resp = s.revoke_token(
            url, token=token.reveal(), token_type_hint=hint, **_request_options(profile)
        )
        if resp.status_code != 200:
            endpoint.refusal(resp, url, what)

    _call(s, profile, what, call, url)


def _run(
    grant: Grant,
    profile: ResolvedProfile,
    trace: Trace | None,
    refresh_token: Secret | None = None,
    *,
    obtain: Callable[..., Obtained] | None = None,
) -> TokenAnswer:
    """Run one grant; the answer the session's check read (not Authlib's dict)."""
    import oauthcli.tokens.discovery as discovery
    import oauthcli.tokens.endpoint as endpoint

    # With issuer: the endpoints the profile leaves out, from the issuer's metadata.
    profile = discovery.complete(profile, trace, needs=("token_url", *grant.needs))
    what = f"{grant.action} for profile '{profile.name}'"
    s = endpoint.session(profile, what, trace, read=grant.read)
    x = Exchange(s, profile, signin.current(), refresh_token, obtain)
    parameters = grant.parameters(x)  # a browser sign-in happens once, outside the retry
    try:
        _call(s, profile, what, lambda: grant.ask(x, parameters))
    except GrantError as exc:
        hinted = discovery.hint(profile, exc)  # invalid_client: the server's auth methods
        if hinted is exc:
            raise
        raise hinted from None
    return s.answers[-1]


def _extras(profile: ResolvedProfile) -> str:
    """The parameters every grant sends: audience, each resource (RFC 8707), extra_params."""
    pairs: list[tuple[str, str]] = []
    if profile.audience:
        pairs.append(("audience", profile.audience))
    pairs.extend(("resource", r) for r in profile.resource)
    pairs.extend(profile.extra_params.items())
    return urlencode(pairs)


def _request_options(profile: ResolvedProfile) -> dict[str, Any]:
    # verify and cert go with each request: set on the session only, requests lets
    # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace them (psf/requests#3829).
    return {
        "timeout": profile.timeout,
        "allow_redirects": False,
        "verify": profile.tls.requests_verify,
        "cert": profile.tls.requests_cert,
    }


def _reveal(secret: Secret | None) -> str | None:
    return secret.reveal() if secret else None


def _call(
    s: Session,
    profile: ResolvedProfile,
    what: str,
    fn: Callable[[], Any],
    url: str | None = None,
) -> None:
    """Run one Authlib call, asked once more after a 429/503 with a ``Retry-After`` that fits
    in the profile's timeout."""
    from oauthcli.tokens.endpoint import transport

    url = url or profile.token_url
    deadline = time.monotonic() + profile.timeout
    try:
        transport(profile, what, fn, url)
    except GrantError as exc:
        if exc.retry_after is None:
            raise
        left = deadline - time.monotonic()
        if exc.retry_after > left:
            raise GrantError(
                f"{exc}; it asks to retry after {_wait(exc.retry_after)}, more than the "
                f"{max(left, 0):.1f} s left of the profile's timeout ({profile.timeout:g} s)",
                error=exc.error,
                transient=True,
            ) from None
        s.trace.note(f"{what}: retrying once in {exc.retry_after:.2f} s (Retry-After)")
        sleep(exc.retry_after)
        try:
            transport(profile, what, fn, url)
        except GrantError as again:
            again.retry_after = None
            raise


def _wait(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 10**7 else "longer than anyone will wait"
