"""Client assertions for private_key_jwt and client_secret_jwt (RFC 7523 §2.2).

A module of its own so that only these two client_auth methods import Authlib's
JWT code (joserfc, cryptography); :func:`oauthcli.tokens.grants.session` imports
it when a profile uses one of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authlib.oauth2.rfc7523 import ClientSecretJWT, PrivateKeyJWT
from authlib.oauth2.rfc7523.assertion import client_secret_jwt_sign, private_key_jwt_sign

from oauthcli.secret import remember

# Client assertions are single-use; a minute covers clock skew and slow servers.
ASSERTION_LIFETIME = 60


class _ShortLivedAssertion:
    """Authlib's assertion signers with a short ``exp``; a new ``jti`` on every request.

    Passing Authlib a claims dict would freeze the first ``jti``, so none is passed.
    """

    headers: Any
    alg: str
    sign_function: Callable[..., Any]

    def sign(self, auth: Any, token_endpoint: str) -> str:
        assertion = str(
            self.sign_function(
                auth.client_secret,
                client_id=auth.client_id,
                token_endpoint=token_endpoint,
                header=dict(self.headers or {}),
                alg=self.alg,
                expires_in=ASSERTION_LIFETIME,
            )
        )
        # A bearer credential for its minute: masked wherever an echo of the request shows.
        remember(assertion)
        return assertion


class ShortLivedPrivateKeyJWT(_ShortLivedAssertion, PrivateKeyJWT):
    sign_function = staticmethod(private_key_jwt_sign)


class ShortLivedClientSecretJWT(_ShortLivedAssertion, ClientSecretJWT):
    sign_function = staticmethod(client_secret_jwt_sign)
