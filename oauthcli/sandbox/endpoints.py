"""The RFC 7009 revocation and RFC 7662 introspection endpoints, and RFC 8414 metadata.

Authlib's endpoint classes do the protocol work (client authentication, the
``token``/``token_type_hint`` parameters, the response shapes); these
subclasses only look tokens up in the sandbox's store.
"""

from __future__ import annotations

from typing import Any, Protocol

from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from joserfc.errors import JoseError

from .clients import AUTH_METHODS, JWT_BEARER_GRANT, SCOPES, SandboxClient
from .keys import HMAC_ALGORITHMS, RSA_ALGORITHMS, SigningKeys
from .store import AccessToken, RefreshToken, TokenStore


class SandboxAuthorizationServer(Protocol):
    """What the endpoints use of the sandbox's authorization server (:mod:`.server`)."""

    issuer: str
    token_url: str
    store: TokenStore
    keys: SigningKeys


def _find_token(
    server: SandboxAuthorizationServer, value: str, hint: str | None
) -> AccessToken | RefreshToken | None:
    if hint != "access_token":
        found = server.store.find_refresh(value)
        if found is not None or hint == "refresh_token":
            return found
    try:
        claims = server.keys.decode(value)
    except (JoseError, ValueError):
        return None
    return server.store.find_access(str(claims.get("jti", "")))


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _find_token(self.server, token_string, token_type_hint)

    def revoke_token(self, token: AccessToken | RefreshToken, request: Any) -> None:
        self.server.store.revoke(token)


class Introspection(IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = AUTH_METHODS

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        token = _find_token(self.server, token_string, token_type_hint)
        if isinstance(token, AccessToken) and self.server.store.is_rejected(token.jti):
            return None
        return token

    def check_permission(self, token: Any, client: SandboxClient, request: Any) -> bool:
        return True  # every sandbox client may act as a resource server

    def introspect_token(self, token: AccessToken | RefreshToken) -> dict[str, Any]:
        if isinstance(token, AccessToken):
            return {"token_type": "Bearer", **token.claims}
        return {
            "client_id": token.client_id,
            "scope": token.scope,
            "sub": token.user.get_user_id(),
            "exp": int(token.expires_at),
            "token_type": "refresh_token",
        }


def metadata(server: SandboxAuthorizationServer) -> dict[str, Any]:
    """The RFC 8414 authorization server metadata document."""
    issuer = server.issuer
    algorithms = RSA_ALGORITHMS + HMAC_ALGORITHMS
    document = AuthorizationServerMetadata(
        {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/oauth/authorize",
            "token_endpoint": server.token_url,
            "revocation_endpoint": f"{issuer}/oauth/revoke",
            "introspection_endpoint": f"{issuer}/oauth/introspect",
            "jwks_uri": f"{issuer}/.well-known/jwks.json",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "grant_types_supported": [
                "authorization_code",
                "client_credentials",
                "password",
                "refresh_token",
                JWT_BEARER_GRANT,
            ],
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "token_endpoint_auth_signing_alg_values_supported": algorithms,
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_signing_alg_values_supported": algorithms,
            "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
            "introspection_endpoint_auth_signing_alg_values_supported": algorithms,
            "code_challenge_methods_supported": ["S256", "plain"],
        }
    )
    document.validate()
    return dict(document)
