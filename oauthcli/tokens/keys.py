"""Signing keys for client assertions (private_key_jwt, client_secret_jwt).

A key that cannot be used is a registry problem (exit 3) naming the profile
file: the server never sees it. The PEM text itself is never quoted.
"""

from __future__ import annotations

import warnings
from typing import Any

from oauthcli.errors import RegistryError
from oauthcli.request.resolved import ResolvedProfile

_EC_ALG_BY_CURVE = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}


def _problem(profile: ResolvedProfile, key: str, message: str) -> RegistryError:
    return RegistryError.at(profile.source, None, key, message)


def load_private_key(profile: ResolvedProfile) -> Any:
    """The profile's PEM private key as a joserfc RSA or EC key, checked against signing_alg."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from joserfc.jwk import ECKey, RSAKey

    if profile.private_key is None or not profile.private_key.reveal().strip():
        raise _problem(profile, "private_key", "missing; client_auth private_key_jwt needs it")
    pem = profile.private_key.reveal().strip().encode()
    if b"-----BEGIN" not in pem:
        raise _problem(
            profile,
            "private_key",
            "is not PEM text; give the key itself, e.g. private_key: ${file:keys/client.pem}",
        )
    if b"PRIVATE KEY-----" not in pem:
        raise _problem(
            profile, "private_key", "is not a private key (a public key or certificate?)"
        )
    try:
        loaded = load_pem_private_key(pem, password=None)
    except TypeError:
        raise _problem(
            profile, "private_key", "is encrypted; oauthcli needs an unencrypted PEM key"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise _problem(
            profile, "private_key", "cannot be parsed as a PEM private key (RSA or EC)"
        ) from None
    key: Any
    with warnings.catch_warnings():
        # joserfc warns about RSA keys under 2048 bits; the server is the judge of that.
        warnings.simplefilter("ignore")
        if isinstance(loaded, rsa.RSAPrivateKey):
            key = RSAKey.import_key(pem)
        elif isinstance(loaded, ec.EllipticCurvePrivateKey):
            curve = loaded.curve.name
            if curve not in ("secp256r1", "secp384r1", "secp521r1"):
                raise _problem(profile, "private_key", f"EC curve {curve} is not supported")
            key = ECKey.import_key(pem)
        else:
            raise _problem(profile, "private_key", "must be an RSA or EC key")
    alg = profile.signing_alg
    if alg is not None:
        _check_alg(profile, key, alg)
    return key


def _check_alg(profile: ResolvedProfile, key: Any, alg: str) -> None:
    kty = key.key_type
    if alg[:2] in ("RS", "PS") and kty != "RSA":
        raise _problem(profile, "signing_alg", f"{alg} needs an RSA private_key, not {kty}")
    if alg.startswith("ES"):
        if kty != "EC":
            raise _problem(profile, "signing_alg", f"{alg} needs an EC private_key, not {kty}")
        curve = key.curve_name
        if _EC_ALG_BY_CURVE.get(curve) != alg:
            raise _problem(
                profile,
                "signing_alg",
                f"{alg} does not match the key's curve {curve} (use {_EC_ALG_BY_CURVE[curve]})",
            )


def default_alg(key: Any) -> str:
    """RS256 for RSA keys (SPEC §1.1); for EC keys the algorithm of the key's curve."""
    if key.key_type == "EC":
        return _EC_ALG_BY_CURVE[key.curve_name]
    return "RS256"


def load_hmac_key(profile: ResolvedProfile) -> Any:
    """The client secret as an HMAC key for client_secret_jwt."""
    from joserfc.jwk import OctKey

    if profile.client_secret is None or not profile.client_secret.reveal():
        raise _problem(profile, "client_secret", "missing; client_auth client_secret_jwt needs it")
    with warnings.catch_warnings():
        # joserfc warns about short secrets; the secret is the server's choice, not ours.
        warnings.simplefilter("ignore")
        return OctKey.import_key(profile.client_secret.reveal())
