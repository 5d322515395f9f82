"""The authorization server: Authlib's ``AuthorizationServer`` on the stdlib handler.

:class:`SandboxAuthorizationServer` supplies the framework plumbing Authlib
asks an integration for (``create_oauth2_request``, ``handle_response``,
``send_signal``, ``query_client``, ``save_token``) and registers the grants,
client-auth methods and the RFC 7009 / RFC 7662 endpoints.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    InvalidClientError,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7636 import CodeChallenge

from .clients import DEMO_USER, SCOPES, SandboxClient, find_client
from .endpoints import Introspection, Revocation
from .grants import (
    AccessTokenGenerator,
    AssertionGrant,
    AuthorizationCodeGrant,
    ClientAssertionAuth,
    ClientCredentialsGrant,
    PasswordGrant,
    RefreshTokenGrant,
    requested_audience,
    safe_description,
)
from .keys import SANDBOX_ASSERTION_AUDIENCE, SigningKeys
from .store import REFRESH_TOKEN_LIFETIME, RefreshToken, TokenStore
from .wire import Request, Response


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: the requested resource or audience is not acceptable."""

    error = "invalid_target"


def audience_parameter(datalist: dict[str, list[str]]) -> str | list[str] | None:
    """The ``aud`` a token request asks for with ``resource`` (RFC 8707) or ``audience``."""
    values: list[str] = []
    for value in datalist.get("resource", []):
        parts = urlsplit(value)
        if not parts.scheme or parts.fragment:
            raise InvalidTargetError(description="A resource must be an absolute URI.")
        values.append(value)
    values.extend(datalist.get("audience", []))
    for value in values:
        if not value or value != safe_description(value) or any(c.isspace() for c in value):
            raise InvalidTargetError(description="The requested audience is not acceptable.")
    if not values:
        return None
    return values[0] if len(values) == 1 else values


class _Payload(OAuth2Payload):
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {key: values[0] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class SandboxOAuth2Request(OAuth2Request):
    """An ``OAuth2Request`` over a :class:`Request`: the form for POST, the query for GET."""

    def __init__(self, request: Request) -> None:
        super().__init__(request.method, request.url, headers=request.headers)
        self._args = dict(request.query_items())
        self._form = dict(request.form_items())
        items = request.form_items() if request.method == "POST" else request.query_items()
        self.payload = _Payload(items)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class SandboxAuthorizationServer(AuthorizationServer):
    """Token, authorization, revocation and introspection endpoints of the sandbox."""

    def __init__(self, issuer: str, token_ttl: int, store: TokenStore) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.issuer = issuer
        self.store = store
        self.keys = SigningKeys()
        self.token_url = f"{issuer}/oauth/token"
        self.assertion_audiences = [self.token_url, issuer, SANDBOX_ASSERTION_AUDIENCE]
        self.register_token_generator(
            "default", AccessTokenGenerator(issuer, self.keys, f"{issuer}/api", token_ttl)
        )
        endpoint_urls = [self.token_url, issuer, f"{issuer}/oauth/revoke"]
        endpoint_urls.append(f"{issuer}/oauth/introspect")
        for method in ("private_key_jwt", "client_secret_jwt"):
            self.register_client_auth_method(
                method, ClientAssertionAuth(method, endpoint_urls, store)
            )
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(PasswordGrant)
        self.register_grant(RefreshTokenGrant)
        self.register_grant(AssertionGrant)
        self.register_grant(AuthorizationCodeGrant, [CodeChallenge(required=True)])
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    # -- the endpoints, called by the HTTP handler --

    def token_endpoint(self, request: Request) -> Response:
        self.store.count("token_requests")
        oauth_request = SandboxOAuth2Request(request)
        try:
            audience = audience_parameter(oauth_request.payload.datalist)
        except OAuth2Error as error:
            response: Response = self.handle_error_response(oauth_request, error)
        else:
            reset = requested_audience.set(audience)
            try:
                response = self.create_token_response(oauth_request)
            finally:
                requested_audience.reset(reset)
        response.client_id = _client_id(oauth_request)
        return response

    def revocation_endpoint(self, request: Request) -> Response:
        self.store.count("revocation_requests")
        return self._endpoint("revocation", request)

    def introspection_endpoint(self, request: Request) -> Response:
        self.store.count("introspection_requests")
        return self._endpoint("introspection", request)

    def _endpoint(self, name: str, request: Request) -> Response:
        oauth_request = SandboxOAuth2Request(request)
        response: Response = self.create_endpoint_response(name, oauth_request)
        response.client_id = _client_id(oauth_request)
        return response

    def authorization_endpoint(self, request: Request) -> Response:
        """Consent on the demo user's behalf at once: there is no login page."""
        oauth_request = SandboxOAuth2Request(request)
        try:
            grant = self.get_consent_grant(oauth_request, end_user=DEMO_USER)
        except OAuth2Error as error:
            response: Response = self.handle_error_response(oauth_request, error)
        else:
            response = self.create_authorization_response(
                oauth_request, grant_user=DEMO_USER, grant=grant
            )
        response.client_id = oauth_request.payload.client_id
        return response

    # -- the hooks Authlib asks a framework integration for --

    def query_client(self, client_id: str) -> SandboxClient | None:
        return find_client(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        claims = self.keys.decode(token["access_token"])
        self.store.add_access(claims, str(request.payload.grant_type))
        if "refresh_token" in token:
            refresh = RefreshToken(
                value=token["refresh_token"],
                client_id=request.client.client_id,
                user=request.user,
                scope=token.get("scope", ""),
                audience=claims["aud"],
                expires_at=time.time() + REFRESH_TOKEN_LIFETIME,
            )
            self.store.add_refresh(refresh)

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return SandboxOAuth2Request(request)

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Response:
        response = Response(status, headers=list(headers))
        if isinstance(body, dict):
            response.body = json.dumps(body).encode("utf-8")
        elif body:
            response.body = str(body).encode("utf-8")
        return response

    def handle_error_response(self, request: Any, error: OAuth2Error) -> Response:
        # RFC 6749 §5.2 lets invalid_client always be 401, whatever the method.
        if isinstance(error, InvalidClientError) and request.method == "POST":
            error.status_code = 401
        response: Response = super().handle_error_response(request, error)
        return response

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        if name == "after_revoke_token":
            self.store.count("revocations")


def _client_id(request: OAuth2Request) -> str | None:
    if request.client is not None:
        return str(request.client.client_id)
    if request.payload.client_id:
        return str(request.payload.client_id)
    client_id, _ = extract_basic_authorization(request.headers)
    return str(client_id) if client_id else None
