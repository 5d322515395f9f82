"""Test-only DPoP-verifying resource server (the "DPoP API") for oauthcli's end-to-end tests.

Accepts only DPoP-bound JWT access tokens (RFC 9449) issued by the e2e oidc-provider, sent as
``Authorization: DPoP <token>`` with a ``DPoP`` proof header, and checks, in this order:

1. the proof: one compact JWS, ``typ: dpop+jwt``, an asymmetric ``alg``, a public ``jwk`` in
   the header (no private part) whose signature verifies; ``htm`` = the request method;
   ``htu`` = the request URL without query and fragment (strict by default: an ``htu`` that
   itself carries a query or fragment is refused, SPEC §5; ``strict_htu: false`` compares as
   RFC 9449 section 4.3 does, ignoring them); ``iat`` within ``iat_window`` seconds of now;
   ``jti`` present and never seen before (replay refused);
2. the token (signature against the provider's JWKS, ``iss``, ``aud`` = this server's
   ``/api``, ``exp``; see resource_server.State.verify), ``ath`` = base64url(SHA-256(token))
   and the token's ``cnf.jkt`` = the RFC 7638 thumbprint of the proof's key;
3. the server nonce: the first proof of a key gets ``401`` with
   ``WWW-Authenticate: DPoP error="use_dpop_nonce"`` and a ``DPoP-Nonce`` header; from then on
   that key's proofs must carry that nonce (a wrong one is challenged again, same nonce);
4. the scope of the route.

Errors: 401 with ``WWW-Authenticate: DPoP algs="...", error="invalid_dpop_proof"|
"invalid_token"|"use_dpop_nonce", error_description="..."`` (no ``error`` when no credentials
were sent), 403 ``insufficient_scope``. A Bearer token is refused (``invalid_token``, this API
takes DPoP only).

Routes::

    GET  /api/incidents   needs api.read: 200, JSON list
    POST /api/incidents   needs api.write: 201, the JSON body echoed with an "id"
    GET  /api/me          any valid token: 200, {"claims": token claims, "proof": proof claims}
    GET  /__health        200 once listening
    GET  /__stats         counters and the last requests, each with what was seen and why it
                          was refused (never a token or a proof, only their claims)
    POST /__reset         zero the counters, forget seen jti and nonces, default settings
    POST /__config        JSON body, any of: require_nonce (bool, default true), nonce_loop
                          (bool: challenge every proof with a fresh nonce, default false),
                          strict_htu (bool, default true), iat_window (s, default 60)
    POST /__rotate_nonce  every key's next proof is challenged for a new nonce

Listens on 127.0.0.1 only. One log line per request on stderr, never a token or proof.

Run as ``python -m tests.e2e.dpop_server --port P --issuer URL --jwks-url URL`` from the
repository root (it reuses resource_server's token check).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
import threading
import time
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry

from .httpbase import HOST, JsonHandler, serve
from .resource_server import State as TokenVerifier
from .resource_server import TokenError, incidents_answer

ALGS = ("ES256", "ES384", "RS256", "PS256", "EdDSA", "Ed25519")
REALM = "oauthcli-e2e-dpop-api"
DEFAULT_SETTINGS: dict[str, Any] = {
    "require_nonce": True,
    "nonce_loop": False,
    "strict_htu": True,
    "iat_window": 60,
}


class Refused(Exception):
    """A request refused: status, error code, description, short reason for the records."""

    def __init__(self, status: int, error: str, description: str, reason: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.reason = reason


def b64url_sha256(value: str) -> str:
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def normalized_url(url: str) -> tuple[str, str]:
    """(scheme://host:port/path, query+fragment) with scheme and host lower-cased and the
    default port dropped."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = (
        host
        if port is None or (scheme, port) in (("http", 80), ("https", 443))
        else f"{host}:{port}"
    )
    base = urlunsplit((scheme, netloc, parts.path or "/", "", ""))
    rest = parts.query + parts.fragment
    return base, rest


class DpopState:
    def __init__(self, issuer: str, audience: str, jwks_url: str, base_url: str) -> None:
        self.verifier = TokenVerifier(issuer, audience, jwks_url)
        self.audience = audience
        self.base_url = base_url
        self.lock = threading.Lock()
        self.next_id = 2
        self.incidents: list[dict[str, Any]] = [{"id": 1, "title": "DPoP key rotation due"}]
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.settings = dict(DEFAULT_SETTINGS)
            self.nonces: dict[str, str] = {}  # jkt -> the nonce it must send
            self.seen_jti: dict[str, float] = {}
            self.total = 0
            self.by_status: Counter[int] = Counter()
            self.by_reason: Counter[str] = Counter()
            self.challenges = 0
            self.requests: deque[dict[str, Any]] = deque(maxlen=200)

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.total += 1
            self.by_status[entry["status"]] += 1
            if entry.get("reason"):
                self.by_reason[entry["reason"]] += 1
            if entry.get("reason") == "use_dpop_nonce":
                self.challenges += 1
            self.requests.append(entry)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "total": self.total,
                "accepted": sum(v for k, v in self.by_status.items() if k < 400),
                "challenged": self.challenges,
                "unauthorized": self.by_status.get(401, 0),
                "forbidden": self.by_status.get(403, 0),
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
                "by_reason": dict(self.by_reason),
                "requests": list(self.requests),
                "settings": dict(self.settings),
            }

    def configure(self, body: dict[str, Any]) -> str | None:
        with self.lock:
            settings = dict(self.settings)
            for key, value in body.items():
                if key not in DEFAULT_SETTINGS:
                    return f"unknown setting {key}; known: {', '.join(DEFAULT_SETTINGS)}"
                if key == "iat_window":
                    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                        return "iat_window must be a positive integer"
                elif not isinstance(value, bool):
                    return f"{key} must be true or false"
                settings[key] = value
            self.settings = settings
            return None

    def rotate_nonces(self) -> None:
        with self.lock:
            for jkt in self.nonces:
                self.nonces[jkt] = secrets.token_urlsafe(16)

    # -- the checks --------------------------------------------------------------------------
    def check_proof(
        self, proof: str, method: str, url: str, entry: dict[str, Any]
    ) -> dict[str, Any]:
        """The proof's claims and key thumbprint (as entry["jkt"]) or Refused."""

        def bad(description: str, reason: str) -> Refused:
            return Refused(401, "invalid_dpop_proof", description, reason)

        try:
            compact = jws.extract_compact(proof.encode("ascii"))
            header = dict(compact.headers())
            claims = json.loads(compact.payload)
        except (JoseError, ValueError, UnicodeError) as exc:
            raise bad(f"the DPoP proof is not a compact JWS: {exc}", "malformed") from None
        if not isinstance(claims, dict):
            raise bad("the DPoP proof's payload is not a JSON object", "malformed")
        entry["proof"] = {k: claims.get(k) for k in ("htm", "htu", "iat", "jti")} | {
            "ath": "ath" in claims,
            "nonce": "nonce" in claims,
            "typ": header.get("typ"),
            "alg": header.get("alg"),
        }
        if header.get("typ") != "dpop+jwt":
            raise bad(f"typ is {header.get('typ')!r}, not 'dpop+jwt'", "typ")
        if header.get("alg") not in ALGS:
            raise bad(f"alg {header.get('alg')!r} is not one of {' '.join(ALGS)}", "alg")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise bad("the proof has no jwk header", "jwk")
        if any(name in jwk for name in ("d", "p", "q", "dp", "dq", "qi", "k")):
            raise bad("the proof's jwk holds a private key", "jwk")
        try:
            key = JWKRegistry.import_key(jwk)
            jws.deserialize_compact(proof, key, algorithms=[header["alg"]])
        except (JoseError, ValueError, TypeError) as exc:
            raise bad(
                f"the proof's signature does not verify with its jwk: {exc}", "signature"
            ) from None
        entry["jkt"] = jkt = key.thumbprint()

        if claims.get("htm") != method:
            raise bad(f"htm is {claims.get('htm')!r}, the request is {method}", "htm")
        htu = claims.get("htu")
        if not isinstance(htu, str):
            raise bad("the proof has no htu", "htu")
        want, _ = normalized_url(url)
        got, rest = normalized_url(htu)
        if got != want or (rest and self.settings["strict_htu"]):
            why = "has a query or fragment" if got == want else f"is not {want}"
            raise bad(f"htu {htu!r} {why}", "htu")
        iat = claims.get("iat")
        now = time.time()
        window = int(self.settings["iat_window"])
        if not isinstance(iat, (int, float)) or isinstance(iat, bool) or abs(now - iat) > window:
            raise bad(f"iat {iat!r} is not within {window} s of now ({int(now)})", "iat")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise bad("the proof has no jti", "jti")
        with self.lock:
            for old, at in list(self.seen_jti.items()):
                if at < now - 2 * window:
                    del self.seen_jti[old]
            if f"{jkt}:{jti}" in self.seen_jti:
                raise bad(f"jti {jti!r} was already used (replay)", "replay")
            self.seen_jti[f"{jkt}:{jti}"] = now
        return claims

    def check_token(self, token: str, claims: dict[str, Any], jkt: str) -> dict[str, Any]:
        try:
            token_claims = self.verifier.verify(token)
        except TokenError as exc:
            raise Refused(401, "invalid_token", str(exc), "token") from None
        if claims.get("ath") != b64url_sha256(token):
            raise Refused(401, "invalid_dpop_proof", "ath does not match the access token", "ath")
        cnf = token_claims.get("cnf")
        bound = cnf.get("jkt") if isinstance(cnf, dict) else None
        if bound is None:
            raise Refused(
                401, "invalid_token", "the access token is not DPoP-bound (no cnf.jkt)", "unbound"
            )
        if bound != jkt:
            raise Refused(
                401,
                "invalid_token",
                "the proof's key is not the one the token is bound to (cnf.jkt)",
                "jkt",
            )
        return token_claims

    def check_nonce(self, claims: dict[str, Any], jkt: str) -> None:
        with self.lock:
            if self.settings["nonce_loop"]:
                self.nonces[jkt] = secrets.token_urlsafe(16)
                raise NonceChallenge(self.nonces[jkt])
            if not self.settings["require_nonce"]:
                return
            expected = self.nonces.setdefault(jkt, secrets.token_urlsafe(16))
            if claims.get("nonce") != expected:
                raise NonceChallenge(expected)


class NonceChallenge(Refused):
    def __init__(self, nonce: str) -> None:
        super().__init__(
            401, "use_dpop_nonce", "Resource server requires nonce in DPoP proof", "use_dpop_nonce"
        )
        self.nonce = nonce


def make_handler(state: DpopState) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        server_version = "oauthcli-e2e-dpop-rs/1"

        def do_PUT(self) -> None:  # noqa: N802 (the stdlib's name)
            self.dispatch()

        def do_DELETE(self) -> None:  # noqa: N802
            self.dispatch()

        def dispatch(self) -> None:
            path = self.path.split("?", 1)[0]
            raw = self.read_body()
            if path.startswith("/__"):
                self.hook(path, raw)
                return
            entry: dict[str, Any] = {"at": time.time(), "method": self.command, "path": path}
            try:
                status, body, headers = self.api(path, raw, entry)
            except Refused as exc:
                entry["reason"] = exc.reason
                status, body, headers = self.refusal(exc)
            entry["status"] = status
            state.record(entry)
            self.send_json(status, body, headers)
            extra = f" {entry['reason']}" if entry.get("reason") else ""
            self.log_line(status, extra)

        def hook(self, path: str, raw: bytes) -> None:
            route = (self.command, path)
            status: int = 200
            body: Any
            if route == ("GET", "/__health"):
                body = {"ok": True, "audience": state.audience}
            elif route == ("GET", "/__stats"):
                body = state.stats()
            elif route == ("POST", "/__reset"):
                state.reset()
                body = {"reset": True}
            elif route == ("POST", "/__rotate_nonce"):
                state.rotate_nonces()
                body = {"rotated": True}
            elif route == ("POST", "/__config"):
                try:
                    wanted = json.loads(raw or b"{}")
                except ValueError:
                    wanted = None
                problem = (
                    state.configure(wanted)
                    if isinstance(wanted, dict)
                    else "the body must be a JSON object"
                )
                status, body = (
                    (400, {"error": problem}) if problem else (200, state.stats()["settings"])
                )
            else:
                status, body = 404, {"error": "not_found"}
            self.send_json(status, body)
            self.log_line(status)

        def api(
            self, path: str, raw: bytes, entry: dict[str, Any]
        ) -> tuple[int, Any, dict[str, str]]:
            routes = {
                ("GET", "/api/incidents"): "api.read",
                ("POST", "/api/incidents"): "api.write",
                ("GET", "/api/me"): None,
            }
            if (self.command, path) not in routes:
                return 404, {"error": "not_found"}, {}
            needed = routes[(self.command, path)]

            authz = self.headers.get("Authorization")
            proofs = self.headers.get_all("DPoP") or []
            entry["scheme"] = authz.split(" ", 1)[0] if authz else None
            entry["proofs"] = len(proofs)
            if authz is None:
                return 401, {"error": "unauthorized"}, {"WWW-Authenticate": self.challenge()}
            parts = authz.split()
            if len(parts) != 2:
                raise Refused(
                    400, "invalid_request", "malformed Authorization header", "authorization"
                )
            if parts[0].lower() != "dpop":
                raise Refused(
                    401,
                    "invalid_token",
                    f"this API takes DPoP-bound tokens only, not {parts[0]}",
                    "scheme",
                )
            if len(proofs) != 1:
                raise Refused(
                    401,
                    "invalid_dpop_proof",
                    f"{len(proofs)} DPoP headers, expected one",
                    "proof_count",
                )
            claims = state.check_proof(proofs[0], self.command, state.base_url + self.path, entry)
            token_claims = state.check_token(parts[1], claims, entry["jkt"])
            entry["client_id"] = token_claims.get("client_id")
            entry["cnf_jkt"] = token_claims["cnf"]["jkt"]
            state.check_nonce(claims, entry["jkt"])

            granted = set(str(token_claims.get("scope") or "").split())
            if needed is not None and needed not in granted:
                raise Refused(
                    403, "insufficient_scope", f"this request needs scope {needed}", "scope"
                )
            if path == "/api/me":
                return 200, {"claims": token_claims, "proof": claims}, {}
            status, body = incidents_answer(state, self.command, raw)
            return status, body, {}

        @staticmethod
        def challenge(error: str | None = None, description: str | None = None) -> str:
            value = f'DPoP realm="{REALM}", algs="{" ".join(ALGS)}"'
            if error:
                value += f', error="{error}"'
            if description:
                value += ', error_description="{}"'.format(description.replace('"', "'"))
            return value

        def refusal(self, exc: Refused) -> tuple[int, Any, dict[str, str]]:
            headers = {"WWW-Authenticate": self.challenge(exc.error, exc.description)}
            if isinstance(exc, NonceChallenge):
                headers["DPoP-Nonce"] = exc.nonce
            return exc.status, {"error": exc.error, "error_description": exc.description}, headers

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--jwks-url", required=True)
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    args = parser.parse_args(argv)

    base_url = f"http://{HOST}:{args.port}"
    audience = f"{base_url}/api"
    state = DpopState(args.issuer, audience, args.jwks_url, base_url)
    banner = f"listening, audience {audience}, issuer {args.issuer}"
    return serve("dpop-server-e2e", args.port, make_handler(state), args.parent_pid, banner)


if __name__ == "__main__":
    sys.exit(main())
