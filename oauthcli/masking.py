"""How what oauthcli shows of a request is masked: by header name, by form field and
answer member, and every known secret value (:func:`oauthcli.secret.scrub`).

A leaf shared by what prints (:mod:`oauthcli.present.output`: ``-v``, ``--json``,
``--dry-run``) and what records (:mod:`oauthcli.outlog`), so that the terminal and the
outbound log mask alike. A DPoP proof is shown as its claims and key thumbprint, never
as the signed proof (RFC 9449); the thumbprint is the one :mod:`oauthcli.tokens.dpop`
binds tokens to.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from oauthcli.secret import MASK, scrub

#: Form fields of a token or revocation request that carry a credential (RFC 6749,
#: 7009, 7523, 7636, 8693), masked by name whatever their value.
TOKEN_FORM_FIELDS = frozenset(
    {
        "client_secret",
        "client_assertion",
        "password",
        "refresh_token",
        "code",
        "code_verifier",
        "subject_token",
        "actor_token",
        "assertion",
        "token",
        "device_code",
    }
)
#: Members of a token endpoint's answer that are credentials.
TOKEN_ANSWER_MEMBERS = frozenset({"access_token", "refresh_token", "id_token"})


#: Headers of an answer masked wherever it is shown (``-v``, the outbound log).
RESPONSE_SECRET_HEADERS = frozenset({"set-cookie", "set-cookie2", "authorization", "cookie"})


def mask_header(name: str, value: str, secret_names: frozenset[str]) -> str:
    """``Authorization: Bearer ****``: the scheme stays, the credential goes."""
    if name.lower() not in secret_names:
        return scrub(value)
    if name.lower() == "dpop":  # a proof: its claims and key thumbprint, never the proof
        claims = describe_proof(value)
        return f"{MASK} {scrub(claims)}" if claims else MASK
    scheme, sep, _ = value.partition(" ")
    if name.lower() in ("authorization", "proxy-authorization") and sep and scheme.isalpha():
        return f"{scheme} {MASK}"
    return MASK


def masked_headers(headers: Mapping[str, str], secret_names: frozenset[str]) -> dict[str, str]:
    return {name: mask_header(name, value, secret_names) for name, value in headers.items()}


def masked_pairs(
    headers: Iterable[tuple[str, str]], secret_names: frozenset[str]
) -> list[list[str]]:
    """Headers as ``[name, value]`` pairs in their order, masked (names scrubbed too)."""
    return [[scrub(name), mask_header(name, value, secret_names)] for name, value in headers]


def scrub_value(value: Any) -> Any:
    """A JSON value with every known secret masked in its strings and keys."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [scrub_value(v) for v in value]
    if isinstance(value, dict):
        return {scrub(k): scrub_value(v) for k, v in value.items()}
    return value


def mask_form(text: str, fields: frozenset[str] = TOKEN_FORM_FIELDS) -> str:
    """A form-encoded body with the values of ``fields`` masked (the rest as sent)."""
    from urllib.parse import unquote_plus

    pieces = []
    for pair in text.split("&"):
        name, sep, _ = pair.partition("=")
        if sep and unquote_plus(name) in fields:
            pair = f"{name}={MASK}"
        pieces.append(pair)
    return "&".join(pieces)


def mask_answer(text: str, members: frozenset[str] = TOKEN_ANSWER_MEMBERS) -> str:
    """A token endpoint's answer with its credential members masked: a JSON object (as
    JSON again) or a form-encoded answer; anything else as it is."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, dict):
        if not members & document.keys():
            return text
        masked = {k: MASK if k in members else v for k, v in document.items()}
        return json.dumps(masked, ensure_ascii=False)
    if "=" in text and not text.lstrip().startswith(("{", "[", "<")):
        return mask_form(text, members)
    return text


# -- DPoP proofs -----------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256) of a public EC JWK: the ``jkt`` a token is bound to."""
    members = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    text = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return _b64(hashlib.sha256(text.encode()).digest())


def describe(claims: Mapping[str, Any], jkt: str) -> str:
    """A proof's claims as ``-v`` and ``--dry-run`` show them (never the signed proof)."""
    shown = " ".join(f"{k}={claims[k]}" for k in ("htm", "htu", "iat", "jti", "ath") if k in claims)
    nonce = " nonce=(the server's)" if "nonce" in claims else ""
    return f"(proof: {shown}{nonce} jkt={jkt})"


def describe_proof(proof: str) -> str | None:
    """:func:`describe` of a compact proof as it goes on the wire; None if it is not one."""
    try:
        head, body, _ = proof.split(".")
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        return describe(claims, thumbprint(header["jwk"]))
    except (ValueError, KeyError, TypeError):
        return None
