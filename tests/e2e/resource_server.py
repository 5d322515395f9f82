"""Test-only resource server (the "API") for oauthcli's end-to-end tests.

Accepts JWT access tokens (RFC 9068, ``typ: at+jwt``, RS256) issued by the e2e oidc-provider and
checks signature (keys from the provider's JWKS, re-fetched on an unknown ``kid``), ``iss``,
``aud`` (this server's ``/api`` resource URL), ``exp`` and scope.

Routes::

    GET  /api/incidents         needs api.read: 200, JSON list
    POST /api/incidents         needs api.write: 201, the JSON body echoed with an "id"
    GET  /api/me                any valid token: 200, the token's claims (no signature)
    *    /api/reset-connection  closes the TCP connection with a RST, no response at all
    GET  /__health              200 once listening
    GET  /__stats               request counters of the /api routes, and the last requests
    POST /__reset               zero the counters, forget the reject-before-now cutoff
    POST /__reject_before_now   from now on, reject every token not issued after this moment

Errors follow RFC 6750: 401 with ``WWW-Authenticate: Bearer realm=..., error="invalid_token",
error_description="..."`` (no ``error`` when no token was sent at all), 400 ``invalid_request``
for a malformed Authorization header, 403 with ``error="insufficient_scope", scope="..."``.

Listens on 127.0.0.1 only. One log line per request on stderr, never a token.

Usage::

    python -m tests.e2e.resource_server --port 8081 --issuer http://127.0.0.1:8080 \
        --jwks-url http://127.0.0.1:8080/jwks
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import sys
import threading
import time
import urllib.request
from collections import Counter, deque
from http.server import BaseHTTPRequestHandler
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from joserfc.jwk import KeySet

from .httpbase import HOST, JsonHandler, serve

REALM = "oauthcli-e2e-api"
ALGORITHMS = ["RS256"]
JWKS_REFRESH_MIN_INTERVAL = 1.0
# Loopback only: never let an http_proxy from the environment see the requests.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class TokenError(Exception):
    """A token that cannot be accepted: 401 invalid_token."""


class JwksCache:
    """The provider's JWKS, fetched lazily, re-fetched (rate-limited) on an unknown kid."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._kids: set[str] = set()
        self._fetched_at = 0.0

    def _fetch(self) -> None:
        with _OPENER.open(self.url, timeout=5) as resp:
            data = json.load(resp)
        self._keys = KeySet.import_key_set(data)
        self._kids = {k.get("kid") for k in data.get("keys", [])}
        self._fetched_at = time.monotonic()

    def get(self, kid: str | None) -> KeySet:
        with self._lock:
            stale = kid is not None and kid not in self._kids
            recent = time.monotonic() - self._fetched_at < JWKS_REFRESH_MIN_INTERVAL
            if self._keys is None or (stale and not recent):
                self._fetch()
            assert self._keys is not None
            return self._keys


class State:
    def __init__(self, issuer: str, audience: str, jwks_url: str) -> None:
        self.issuer = issuer
        self.audience = audience
        self.jwks = JwksCache(jwks_url)
        self.lock = threading.Lock()
        self.reject_before_ms: int | None = None
        self.next_id = 3
        self.incidents: list[dict[str, Any]] = [
            {"id": 1, "title": "Database latency above SLO", "severity": "high"},
            {"id": 2, "title": "Certificate expires in 7 days", "severity": "low"},
        ]
        self.reset_stats()

    def reset_stats(self) -> None:
        with self.lock:
            self.by_status: Counter[int] = Counter()
            self.total = 0
            self.requests: deque[dict[str, Any]] = deque(maxlen=100)

    def record(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.total += 1
            self.by_status[entry["status"]] += 1
            self.requests.append(entry)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "total": self.total,
                "unauthorized": self.by_status.get(401, 0),
                "forbidden": self.by_status.get(403, 0),
                "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
                "requests": list(self.requests),
                "reject_before_ms": self.reject_before_ms,
            }

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid access token, or raise TokenError."""
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError) as exc:
            raise TokenError(f"malformed JWT: {exc}") from None
        kid = header.get("kid")
        if header.get("alg") not in ALGORITHMS:
            raise TokenError(f"unexpected alg {header.get('alg')!r}, expected RS256")
        typ = str(header.get("typ", "")).lower()
        if typ not in ("at+jwt", "application/at+jwt"):
            raise TokenError(f"unexpected typ {header.get('typ')!r}, expected at+jwt")
        try:
            keys = self.jwks.get(kid)
        except OSError as exc:
            raise TokenError(f"cannot fetch the issuer's JWKS: {exc}") from None
        try:
            decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
        except JoseError as exc:
            raise TokenError(f"signature verification failed: {exc.error}") from None
        except ValueError as exc:
            raise TokenError(f"malformed JWT: {exc}") from None
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise TokenError(f"token expired at {claims.get('exp')}") from None
        except MissingClaimError as exc:
            raise TokenError(f"missing claim: {exc.claim}") from None
        except InvalidClaimError as exc:
            got = claims.get(exc.claim)
            raise TokenError(f"invalid {exc.claim!r} claim {got!r}") from None
        except JoseError as exc:
            raise TokenError(f"invalid claims: {exc.description or exc.error}") from None
        cutoff = self.reject_before_ms
        if cutoff is not None:
            issued_ms = claims.get("iat_ms")
            if not isinstance(issued_ms, int):
                issued_ms = int(claims["iat"]) * 1000
            if issued_ms <= cutoff:
                raise TokenError("token was revoked (issued before the server's revocation cutoff)")
        return claims


def incidents_answer(state: Any, command: str, raw: bytes) -> tuple[int, Any]:
    """GET or POST /api/incidents once the token is accepted, on a state with lock,
    incidents and next_id (this server's and dpop_server's)."""
    if command == "GET":
        with state.lock:
            return 200, list(state.incidents)
    try:
        item = json.loads(raw or b"null")
    except ValueError:
        return 400, {"error": "invalid_json"}
    if not isinstance(item, dict):
        return 400, {"error": "expected a JSON object"}
    with state.lock:
        created = {**item, "id": state.next_id}
        state.next_id += 1
        state.incidents.append(created)
    return 201, created


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        server_version = "oauthcli-e2e-rs/1"

        def reset_connection(self) -> None:
            """Abort the TCP connection: SO_LINGER 0 then close sends a RST, not a FIN."""
            sock = self.connection
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # The buffered reader holds a reference on the socket: close it first so that
            # sock.close() really closes the descriptor now (with the RST). wfile holds none,
            # and http.server still flushes it after the handler returns.
            self.rfile.close()
            sock.close()
            self.close_connection = True

        # -- dispatch ------------------------------------------------------------------------
        def do_PUT(self) -> None:
            self.dispatch()

        def do_PATCH(self) -> None:
            self.dispatch()

        def do_DELETE(self) -> None:
            self.dispatch()

        def dispatch(self) -> None:
            path = self.path.split("?", 1)[0]
            if path.startswith("/__"):
                self.hook(path)
            elif path == "/api/reset-connection":
                self.read_body()
                state.record({"method": self.command, "path": path, "status": 0})
                self.log_line(0, " (connection reset)")
                self.reset_connection()
            else:
                self.api(path)

        def hook(self, path: str) -> None:
            self.read_body()
            route = (self.command, path)
            if route == ("GET", "/__health"):
                status, body = 200, {"ok": True, "audience": state.audience}
            elif route == ("GET", "/__stats"):
                status, body = 200, state.stats()
            elif route == ("POST", "/__reset"):
                state.reset_stats()
                state.reject_before_ms = None
                status, body = 200, {"reset": True}
            elif route == ("POST", "/__reject_before_now"):
                state.reject_before_ms = time.time_ns() // 1_000_000
                status, body = 200, {"reject_before_ms": state.reject_before_ms}
            else:
                status, body = 404, {"error": "not_found"}
            self.send_json(status, body)
            self.log_line(status)

        def api(self, path: str) -> None:
            raw = self.read_body()
            entry: dict[str, Any] = {"method": self.command, "path": path}
            status, body, headers = self.api_response(path, raw, entry)
            entry["status"] = status
            state.record(entry)
            self.send_json(status, body, headers)
            who = f" client={entry['client_id']}" if entry.get("client_id") else ""
            if status >= 400 and isinstance(body, dict) and body.get("error"):
                who += f" {body['error']}: {body.get('error_description', '')}".rstrip(": ")
            self.log_line(status, who)

        def api_response(
            self, path: str, raw: bytes, entry: dict[str, Any]
        ) -> tuple[int, Any, dict[str, str]]:
            routes = {
                ("GET", "/api/incidents"): "api.read",
                ("POST", "/api/incidents"): "api.write",
                ("GET", "/api/me"): None,
            }
            if (self.command, path) not in routes:
                known = {p for _, p in routes}
                if path in known:
                    return 405, {"error": "method_not_allowed"}, {}
                return 404, {"error": "not_found"}, {}
            needed = routes[(self.command, path)]

            authz = self.headers.get("Authorization")
            entry["had_authorization"] = authz is not None
            if authz is None or not authz.lower().startswith("bearer"):
                return (
                    401,
                    {"error": "unauthorized"},
                    {"WWW-Authenticate": f'Bearer realm="{REALM}"'},
                )
            parts = authz.split()
            if len(parts) != 2 or parts[0].lower() != "bearer":
                return self.bearer_error(400, "invalid_request", "malformed Authorization header")
            try:
                claims = state.verify(parts[1])
            except TokenError as exc:
                return self.bearer_error(401, "invalid_token", str(exc))
            entry["client_id"] = claims.get("client_id")
            entry["jti"] = claims.get("jti")

            granted = set(str(claims.get("scope") or "").split())
            if needed is not None and needed not in granted:
                return self.bearer_error(
                    403,
                    "insufficient_scope",
                    f"this request needs scope {needed}, the token has {sorted(granted)}",
                    scope=needed,
                )

            if path == "/api/me":
                return 200, claims, {}
            status, body = incidents_answer(state, self.command, raw)
            if status == 201:
                return status, body, {"Location": f"/api/incidents/{body['id']}"}
            return status, body, {}

        @staticmethod
        def bearer_error(
            status: int, error: str, description: str, scope: str | None = None
        ) -> tuple[int, Any, dict[str, str]]:
            desc = description.replace("\\", "\\\\").replace('"', "'")
            challenge = f'Bearer realm="{REALM}", error="{error}", error_description="{desc}"'
            if scope:
                challenge += f', scope="{scope}"'
            body = {"error": error, "error_description": description}
            return status, body, {"WWW-Authenticate": challenge}

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--issuer", required=True, help="expected iss, e.g. http://127.0.0.1:8080")
    parser.add_argument("--jwks-url", required=True)
    parser.add_argument("--audience", help="expected aud (default: http://127.0.0.1:PORT/api)")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    args = parser.parse_args(argv)

    audience = args.audience or f"http://{HOST}:{args.port}/api"
    state = State(args.issuer, audience, args.jwks_url)
    banner = f"listening, audience {audience}, issuer {args.issuer}"
    return serve("resource-server-e2e", args.port, make_handler(state), args.parent_pid, banner)


if __name__ == "__main__":
    sys.exit(main())
