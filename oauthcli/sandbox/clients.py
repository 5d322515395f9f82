"""The sandbox's fixed clients, user and scopes.

One client per client-authentication method, with fixed ids and demo secrets
that the tests and the example registry use. They are trusted only by the
sandbox on 127.0.0.1.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from ipaddress import ip_address
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import ClientMixin, list_to_scope, scope_to_list

from .keys import client_public_key, client_secret_key

SCOPES = ("incident.read", "incident.write", "admin")
#: Granted when a token request names no scope (``admin`` must be asked for).
DEFAULT_SCOPE = "incident.read incident.write"

DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-pass"

BASIC_CLIENT_ID = "sandbox-basic"
# Holds "+ % : /" so that only an RFC 6749 §2.3.1 form-urlencoded Basic header works.
BASIC_CLIENT_SECRET = "basic+secret%2F:/demo-7Qx"
POST_CLIENT_ID = "sandbox-post"
POST_CLIENT_SECRET = "post-secret-demo-4Kd9"
JWT_CLIENT_ID = "sandbox-jwt"
SECRET_JWT_CLIENT_ID = "sandbox-secret-jwt"
# Long enough to be a sound HS256 key (at least 112 bits).
SECRET_JWT_CLIENT_SECRET = "secret-jwt-demo-key-2026-Vb7pLw3nQz"
PUBLIC_CLIENT_ID = "sandbox-public"

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_CONFIDENTIAL_GRANTS = frozenset(
    {"client_credentials", "password", "refresh_token", "authorization_code"}
)
_PUBLIC_GRANTS = frozenset({"password", "refresh_token", "authorization_code"})

#: Every client-auth method the token, revocation and introspection endpoints accept.
AUTH_METHODS = [
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "client_secret_jwt",
    "none",
]


@dataclass(frozen=True)
class User:
    username: str

    def get_user_id(self) -> str:
        return self.username


DEMO_USER = User(DEMO_USERNAME)


def find_user(username: str, password: str | None = None) -> User | None:
    """The demo user, when the name (and password, if given) match."""
    if username != DEMO_USERNAME:
        return None
    if password is not None and not hmac.compare_digest(password, DEMO_PASSWORD):
        return None
    return DEMO_USER


def is_loopback_url(url: str) -> bool:
    """Whether ``url`` is http(s) to 127.0.0.0/8, ::1 or localhost."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class SandboxClient(ClientMixin):
    client_id: str
    auth_method: str
    secret: str | None = None
    grant_types: frozenset[str] = _CONFIDENTIAL_GRANTS

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return DEFAULT_SCOPE
        return str(list_to_scope([s for s in scope_to_list(scope) if s in SCOPES]))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # RFC 8252 §7.3: any port on the loopback interface.
        return is_loopback_url(redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        if self.secret is None:
            return False
        return hmac.compare_digest(self.secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types

    def assertion_key(self) -> object:
        """The key that verifies this client's JWT assertions."""
        if self.auth_method == "client_secret_jwt" and self.secret:
            return client_secret_key(self.secret)
        return client_public_key()


CLIENTS: dict[str, SandboxClient] = {
    client.client_id: client
    for client in (
        SandboxClient(BASIC_CLIENT_ID, "client_secret_basic", BASIC_CLIENT_SECRET),
        SandboxClient(POST_CLIENT_ID, "client_secret_post", POST_CLIENT_SECRET),
        SandboxClient(
            JWT_CLIENT_ID, "private_key_jwt", None, _CONFIDENTIAL_GRANTS | {JWT_BEARER_GRANT}
        ),
        SandboxClient(SECRET_JWT_CLIENT_ID, "client_secret_jwt", SECRET_JWT_CLIENT_SECRET),
        SandboxClient(PUBLIC_CLIENT_ID, "none", None, _PUBLIC_GRANTS),
    )
}


def find_client(client_id: str) -> SandboxClient | None:
    return CLIENTS.get(client_id)
