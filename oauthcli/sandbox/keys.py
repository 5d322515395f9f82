"""Keys of the sandbox: its own token-signing key and the demo client's public key.

The signing key is generated at start-up, so tokens never outlive the process
that issued them. The ``sandbox-jwt`` client's key pair is a fixed demo key:
its private half is committed at ``profiles/keys/sandbox-client.pem`` for the
example registry, and its public half is embedded below so the sandbox works
from any folder and from an installed package.
"""

from __future__ import annotations

import time
from typing import Any

from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

#: Public half of ``profiles/keys/sandbox-client.pem`` (the ``sandbox-jwt`` client).
SANDBOX_CLIENT_PUBLIC_KEY_PEM = """\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAkA1NIEYw78zCg/Mpgesi
F+QBUeRz7ZBLboZXkEeTjkxbFThQ+X1B2CDqttje4HIw8MiB/G0MOKCILbwMrPVb
BSCbIcrDjAMXVo8x0Ea/a6FgGo8vCxZvMNlwoLIKqFM3GgARjlRSr/97gjGHum/8
b0QFYz5p8knEqIqAKGdrD7OuOnkniNPS1hkHenECEgTxcknRrBPPumKX7gx0Mj1Q
OrVseKYMix9TGE0hoZC7Ysvvru4dupN3+/wTOhhSCwZFlRHBIkmbgjS14VuU/qra
L9T7/6Ubqux3/eS1VOTZUnhOFDoNkKfVidWaptrkECTd7q2BdG7q0kcSelyXaSq1
8wIDAQAB
-----END PUBLIC KEY-----
"""

#: The ``kid`` the example profile puts on its private_key_jwt assertions.
SANDBOX_CLIENT_KEY_ID = "sandbox-client-2026"

#: An audience every sandbox accepts in jwt_bearer assertions, whatever its
#: port, so the committed pre-signed assertion works when the port changes.
SANDBOX_ASSERTION_AUDIENCE = "urn:oauthcli:sandbox"

#: Algorithms accepted on client assertions, per key type.
RSA_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"]
HMAC_ALGORITHMS = ["HS256", "HS384", "HS512"]


def client_public_key() -> RSAKey:
    """The ``sandbox-jwt`` client's public key."""
    return RSAKey.import_key(SANDBOX_CLIENT_PUBLIC_KEY_PEM, {"kid": SANDBOX_CLIENT_KEY_ID})


def client_secret_key(secret: str) -> OctKey:
    """The HMAC key of a client_secret_jwt client: its secret's bytes."""
    return OctKey.import_key(secret.encode("utf-8"))


class SigningKeys:
    """The RSA key that signs access tokens, made fresh for each sandbox."""

    def __init__(self) -> None:
        key = RSAKey.generate_key(2048, private=True, auto_kid=True)
        self.kid: str = str(key.kid)
        self.private = KeySet([key])
        self.public = KeySet([RSAKey.import_key(key.as_dict(private=False))])

    def jwks(self) -> dict[str, Any]:
        """The public JWKS document served at ``/.well-known/jwks.json``."""
        keys = self.public.as_dict(private=False)["keys"]
        for item in keys:
            item.setdefault("use", "sig")
            item.setdefault("alg", "RS256")
        return {"keys": keys}

    def decode(self, token: str) -> dict[str, Any]:
        """Claims of a token this sandbox signed, without checking them;
        raises ``joserfc.errors.JoseError`` when the signature is not ours."""
        return dict(jwt.decode(token, self.public, algorithms=["RS256"]).claims)


def sign_assertion(
    private_key_pem: bytes,
    audience: str | list[str],
    issuer: str = "sandbox-jwt",
    subject: str = "demo",
    lifetime: int = 300,
    key_id: str = SANDBOX_CLIENT_KEY_ID,
) -> str:
    """A jwt_bearer grant assertion (RFC 7523 §2.1) signed with a client key.

    Used by the tests and to regenerate the example registry's long-lived
    assertion (see ``profiles/keys/README.md``).
    """
    key = RSAKey.import_key(private_key_pem)
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": now,
        "exp": now + lifetime,
        "jti": f"{issuer}-{now}-{time.perf_counter_ns()}",
    }
    return jwt.encode({"alg": "RS256", "kid": key_id}, claims, key)
