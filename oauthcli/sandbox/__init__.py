"""A local OAuth 2.0 authorization server and protected sample API on 127.0.0.1.

Only the ``oauthcli sandbox`` command and the tests import this package.

Endpoints (relative to ``Sandbox.url``)::

    POST /oauth/token           client_credentials, password, refresh_token,
                                jwt-bearer (RFC 7523), authorization_code + PKCE
    POST /oauth/revoke          RFC 7009
    POST /oauth/introspect      RFC 7662
    GET  /oauth/authorize       consents as the demo user at once (no login page)
    GET  /.well-known/oauth-authorization-server   RFC 8414
    GET  /.well-known/jwks.json
    /api/now/table/incident[/{sys_id}], /api/fail/{403,500,503},
    /api/admin/users, /api/other/ping, /api/binary, /api/redirect, /api/echo
    GET  /__sandbox/stats, POST /__sandbox/reject-tokens-before-now
"""

from __future__ import annotations

from .api import BINARY_PAYLOAD, OTHER_AUDIENCE, SEED_INCIDENT_IDS
from .clients import (
    BASIC_CLIENT_ID,
    BASIC_CLIENT_SECRET,
    DEFAULT_SCOPE,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    JWT_BEARER_GRANT,
    JWT_CLIENT_ID,
    POST_CLIENT_ID,
    POST_CLIENT_SECRET,
    PUBLIC_CLIENT_ID,
    SCOPES,
    SECRET_JWT_CLIENT_ID,
    SECRET_JWT_CLIENT_SECRET,
)
from .keys import SANDBOX_ASSERTION_AUDIENCE, SANDBOX_CLIENT_KEY_ID, sign_assertion
from .runner import DEFAULT_PORT, Sandbox, serve

__all__ = [
    "BASIC_CLIENT_ID",
    "BASIC_CLIENT_SECRET",
    "BINARY_PAYLOAD",
    "DEFAULT_PORT",
    "DEFAULT_SCOPE",
    "DEMO_PASSWORD",
    "DEMO_USERNAME",
    "JWT_BEARER_GRANT",
    "JWT_CLIENT_ID",
    "OTHER_AUDIENCE",
    "POST_CLIENT_ID",
    "POST_CLIENT_SECRET",
    "PUBLIC_CLIENT_ID",
    "SANDBOX_ASSERTION_AUDIENCE",
    "SANDBOX_CLIENT_KEY_ID",
    "SCOPES",
    "SECRET_JWT_CLIENT_ID",
    "SECRET_JWT_CLIENT_SECRET",
    "SEED_INCIDENT_IDS",
    "Sandbox",
    "serve",
    "sign_assertion",
]
