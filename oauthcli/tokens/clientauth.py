"""How a client proves who it is to the token endpoint: the ``client_auth`` table.

:data:`CLIENT_AUTHS` maps each ``client_auth`` value of a profile to a
:class:`ClientAuthMethod`, which says what Authlib signs with
(:meth:`~ClientAuthMethod.credential`) and how it is sent
(:meth:`~ClientAuthMethod.method`: an Authlib encoder
``(client, method, uri, headers, body)`` or one of its assertion classes).
:func:`oauthcli.tokens.endpoint.session` registers the one a profile names, for
token and revocation requests alike. A new method (issue 13's
``client_assertion``) is one class here, one entry in the table and its tests.

Import-light: Authlib's encoders and its JWT code (joserfc, cryptography) are
imported only by the method that uses them, when a request is about to be made;
``oauthcli validate`` reads this table too (:meth:`~ClientAuthMethod.check`).
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote_plus

import oauthcli.tokens.keys as keys
from oauthcli.secret import remember

if TYPE_CHECKING:
    from oauthcli.request.resolved import ResolvedProfile


class ClientAuthMethod:
    """One ``client_auth`` value: the credential it signs with and how it is sent."""

    #: The ``client_auth`` value a profile writes.
    name: ClassVar[str]
    #: The profile key holding its credential (checked when the profile is read), if any.
    needs: ClassVar[str | None] = None
    #: The ``signing_alg`` values it accepts; empty when it signs nothing.
    algs: ClassVar[tuple[str, ...]] = ()

    def credential(self, profile: ResolvedProfile) -> Any:
        """What Authlib gets as the client secret (a key, for the assertion methods)."""
        return profile.client_secret.reveal() if profile.client_secret else None

    def method(self, profile: ResolvedProfile, credential: Any) -> Any:
        """Authlib's client auth method for it, registered under :attr:`name`."""
        raise NotImplementedError

    def check(self, profile: ResolvedProfile) -> None:
        """What ``oauthcli validate`` proves before anything is sent (a key that parses)."""


def _encode_client_secret_basic(
    client: Any, method: str, uri: str, headers: dict[str, str], body: str
) -> tuple[str, dict[str, str], str]:
    # Authlib joins id and secret unencoded; RFC 6749 §2.3.1 form-urlencodes each first,
    # so secrets with "+ % : /" work.
    secret = client.client_secret or ""
    pair = f"{quote_plus(client.client_id, safe='')}:{quote_plus(secret, safe='')}"
    credential = base64.b64encode(pair.encode()).decode()
    remember(credential)
    remember(pair)  # so its base64 without padding or URL-safe is masked too
    headers["Authorization"] = "Basic " + credential
    return uri, headers, body


class ClientSecretBasic(ClientAuthMethod):
    """``Authorization: Basic`` of the form-urlencoded id and secret (RFC 6749 §2.3.1)."""

    name = "client_secret_basic"
    needs = "client_secret"

    def method(self, profile: ResolvedProfile, credential: Any) -> Any:
        return _encode_client_secret_basic


class ClientSecretPost(ClientAuthMethod):
    """``client_id`` and ``client_secret`` in the form (Authlib's encoder)."""

    name = "client_secret_post"
    needs = "client_secret"

    def method(self, profile: ResolvedProfile, credential: Any) -> Any:
        from authlib.oauth2.auth import encode_client_secret_post

        return encode_client_secret_post


class NoClientAuth(ClientAuthMethod):
    """A public client: only ``client_id`` in the form (Authlib's encoder)."""

    name = "none"

    def method(self, profile: ResolvedProfile, credential: Any) -> Any:
        from authlib.oauth2.auth import encode_none

        return encode_none


ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
HMAC_ALGS = ("HS256", "HS384", "HS512")


def _kid(profile: ResolvedProfile) -> dict[str, str] | None:
    return {"kid": profile.key_id} if profile.key_id else None


class PrivateKeyJWT(ClientAuthMethod):
    """A client assertion signed with the profile's private key (RFC 7523 §2.2)."""

    name = "private_key_jwt"
    needs = "private_key"
    algs = ASYMMETRIC_ALGS

    def credential(self, profile: ResolvedProfile) -> Any:
        return keys.load_private_key(profile)

    def method(self, profile: ResolvedProfile, credential: Any) -> Any:
        from oauthcli.tokens.assertions import ShortLivedPrivateKeyJWT

        alg = profile.signing_alg or keys.default_alg(credential)
        return ShortLivedPrivateKeyJWT(profile.token_url, headers=_kid(profile), alg=alg)

    def check(self, profile: ResolvedProfile) -> None:
        keys.load_private_key(profile)


class ClientSecretJWT(ClientAuthMethod):
    """A client assertion signed with the client secret as an HMAC key (RFC 7523 §2.2)."""

    name = "client_secret_jwt"
    needs = "client_secret"
    algs = HMAC_ALGS

    def credential(self, profile: ResolvedProfile) -> Any:
        return keys.load_hmac_key(profile)

    def method(self, profile: ResolvedProfile, credential: Any) -> Any:
        from oauthcli.tokens.assertions import ShortLivedClientSecretJWT

        alg = profile.signing_alg or "HS256"
        return ShortLivedClientSecretJWT(profile.token_url, headers=_kid(profile), alg=alg)


def _encode_client_assertion(profile: ResolvedProfile) -> Any:
    """An encoder that puts a client assertion issued elsewhere in the form, read anew for
    each request (:mod:`~oauthcli.tokens.workload`), with the client id (RFC 7521 §4.2)."""

    def encode(
        client: Any, method: str, uri: str, headers: dict[str, str], body: str
    ) -> tuple[str, dict[str, str], str]:
        from authlib.common.urls import add_params_to_qs

        import oauthcli.tokens.workload as workload

        pairs = [
            ("client_id", client.client_id),
            ("client_assertion_type", workload.JWT_BEARER),
            ("client_assertion", workload.assertion(profile)),
        ]
        return uri, headers, add_params_to_qs(body or "", pairs)

    return encode


class ClientAssertion(ClientAuthMethod):
    """A JWT issued to this workload elsewhere (a projected token file, GitHub Actions),
    sent as a ``jwt-bearer`` client assertion: no secret is stored anywhere."""

    name = "client_assertion"
    needs = "client_assertion"

    def credential(self, profile: ResolvedProfile) -> Any:
        return None

    def method(self, profile: ResolvedProfile, credential: Any) -> Any:
        return _encode_client_assertion(profile)


#: Every ``client_auth`` value, in the order SPEC §1.1 lists them.
CLIENT_AUTHS: dict[str, ClientAuthMethod] = {
    m.name: m
    for m in (
        ClientSecretBasic(),
        ClientSecretPost(),
        PrivateKeyJWT(),
        ClientSecretJWT(),
        NoClientAuth(),
        ClientAssertion(),
    )
}
