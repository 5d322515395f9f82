"""Authlib grants, client-assertion authentication and the JWT token generator.

Each class fills in the storage hooks Authlib leaves open; the protocol checks
(client authentication, assertion signatures and claims, scopes, PKCE) are
Authlib's own.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

from authlib.common.security import generate_token
from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidGrantError, grants
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion, JWTBearerGrant
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc import jwt
from joserfc.errors import JoseError

from .clients import AUTH_METHODS, DEMO_USER, SandboxClient, User, find_client, find_user
from .keys import HMAC_ALGORITHMS, RSA_ALGORITHMS, SigningKeys
from .store import AUTHORIZATION_CODE_LIFETIME, AuthorizationCode, RefreshToken, TokenStore

#: The ``aud`` of the token being issued in this thread: the request's
#: ``resource``/``audience``, or a refreshed token's original audience.
requested_audience: ContextVar[str | list[str] | None] = ContextVar(
    "requested_audience", default=None
)


def safe_description(text: str) -> str:
    """``text`` without the characters RFC 6749 forbids in ``error_description``."""
    bad = set(invalid_error_characters(text))
    return "".join("'" if char in bad else char for char in text)


class AccessTokenGenerator(JWTBearerTokenGenerator):
    """RFC 9068 JWT access tokens signed with the sandbox's start-up key."""

    def __init__(self, issuer: str, keys: SigningKeys, default_audience: str, ttl: int) -> None:
        super().__init__(
            issuer=issuer,
            alg="RS256",
            refresh_token_generator=lambda **_: generate_token(48),
            expires_generator=ttl,
        )
        self._keys = keys
        self._default_audience = default_audience

    def get_jwks(self) -> Any:
        return self._keys.private

    def get_audiences(self, client: SandboxClient, user: User | None, scope: str) -> Any:
        return requested_audience.get() or self._default_audience


class ClientAssertionAuth(JWTBearerClientAssertion):
    """private_key_jwt or client_secret_jwt (RFC 7523 §2.2), one instance each."""

    def __init__(self, method: str, audiences: list[str], store: TokenStore) -> None:
        super().__init__(validate_jti=True, leeway=60)
        self.CLIENT_AUTH_METHOD = method
        self._audiences = audiences
        self._store = store

    def __call__(self, query_client: Any, request: Any) -> SandboxClient | None:
        form = request.form
        assertion = form.get("client_assertion")
        if form.get("client_assertion_type") != self.CLIENT_ASSERTION_TYPE or not assertion:
            return None
        # Both JWT methods read the same parameter: leave the other method's
        # clients to it instead of failing them here.
        _, claims = self.extract_assertion(assertion)
        sub = claims.get("sub")
        client = query_client(sub) if isinstance(sub, str) else None
        if client is not None and client.auth_method != self.CLIENT_AUTH_METHOD:
            return None
        result: SandboxClient | None = super().__call__(query_client, request)
        return result

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> Any:
        # As Authlib's, but with the algorithms this client type may use (PS256 included).
        secret = self.CLIENT_AUTH_METHOD == "client_secret_jwt"
        algorithms = HMAC_ALGORITHMS if secret else RSA_ALGORITHMS
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=algorithms)
        except JoseError as exc:
            raise InvalidClientError(description=safe_description(str(exc.description))) from exc
        self.verify_claims(token.claims)
        return token.claims

    def get_audiences(self) -> list[str]:
        return self._audiences

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        return self._store.use_assertion_id(f"{claims['sub']}:{jti}")

    def resolve_client_public_key(self, client: SandboxClient) -> Any:
        return client.assertion_key()


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS


class PasswordGrant(grants.ResourceOwnerPasswordCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def authenticate_user(self, username: str, password: str) -> User:
        user = find_user(username, password)
        if user is None:
            # RFC 6749 §5.2: wrong resource owner credentials are an invalid grant.
            raise InvalidGrantError(description="Invalid username or password.")
        return user


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True  # rotate on every use

    def validate_token_request(self) -> None:
        super().validate_token_request()
        if not self.server.store.consume_refresh(self.request.refresh_token):
            raise InvalidGrantError(description="The refresh token was already used.")

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        token: RefreshToken | None = self.server.store.find_refresh(refresh_token)
        if token is None or token.is_revoked() or token.is_expired():
            return None
        return token

    def authenticate_user(self, refresh_token: RefreshToken) -> User:
        return refresh_token.user

    def issue_token(self, user: User, refresh_token: RefreshToken) -> Any:
        reset = None
        if requested_audience.get() is None:
            reset = requested_audience.set(refresh_token.audience)
        try:
            return super().issue_token(user, refresh_token)
        finally:
            if reset is not None:
                requested_audience.reset(reset)

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        self.server.store.revoke(refresh_token)


class AssertionGrant(JWTBearerGrant):
    """The RFC 7523 §2.1 jwt-bearer grant: a client-signed assertion about a user."""

    def resolve_issuer_client(self, issuer: str) -> SandboxClient | None:
        return find_client(issuer)

    def resolve_client_public_key(self, client: SandboxClient) -> Any:
        return client.assertion_key()

    def authenticate_user(self, subject: str) -> User | None:
        return find_user(subject)

    def has_granted_permission(self, client: SandboxClient, user: User) -> bool:
        return True

    def get_audiences(self) -> list[str]:
        audiences: list[str] = self.server.assertion_audiences
        return audiences


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    """Authorization code with PKCE; ``/oauth/authorize`` consents as the demo user."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def save_authorization_code(self, code: str, request: Any) -> None:
        data = request.payload.data
        self.server.store.add_code(
            AuthorizationCode(
                code=code,
                client_id=request.client.client_id,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope,
                user=request.user or DEMO_USER,
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                expires_at=time.time() + AUTHORIZATION_CODE_LIFETIME,
            )
        )

    def query_authorization_code(
        self, code: str, client: SandboxClient
    ) -> AuthorizationCode | None:
        found: AuthorizationCode | None = self.server.store.take_code(code)
        if found is None or found.client_id != client.client_id:
            return None
        return found

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing to do: ``take_code`` already spent it."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User:
        return authorization_code.user
