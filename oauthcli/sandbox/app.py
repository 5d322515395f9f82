"""Routing: every sandbox URL, from the token endpoint to the test hooks.

:class:`Application` owns the authorization server, the API and the token
store of one sandbox and turns a :class:`~.wire.Request` into a
:class:`~.wire.Response`. It knows nothing about sockets.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urljoin

from .api import BINARY_PAYLOAD, Api, Handler
from .clients import is_loopback_url
from .endpoints import metadata
from .server import SandboxAuthorizationServer
from .store import TokenStore
from .wire import Request, Response, json_response, sn_error

METADATA_PATH = "/.well-known/oauth-authorization-server"
JWKS_PATH = "/.well-known/jwks.json"
_REDIRECT_STATUSES = {"301", "302", "303", "307", "308"}


class Application:
    def __init__(self, issuer: str, token_ttl: int) -> None:
        self.issuer = issuer
        self.store = TokenStore()
        self.auth = SandboxAuthorizationServer(issuer, token_ttl, self.store)
        self.api = Api(issuer, self.auth.keys, self.store)
        self._metadata = metadata(self.auth)
        routes: list[tuple[str, str, Handler]] = [
            ("POST", "/oauth/token", self.auth.token_endpoint),
            ("POST", "/oauth/revoke", self.auth.revocation_endpoint),
            ("POST", "/oauth/introspect", self.auth.introspection_endpoint),
            ("GET", "/oauth/authorize", self.auth.authorization_endpoint),
            ("GET", METADATA_PATH, lambda _: json_response(200, self._metadata)),
            ("GET", JWKS_PATH, lambda _: json_response(200, self.auth.keys.jwks())),
            *self.api.routes(),
            ("GET", "/api/binary", self.binary),
            ("*", "/api/redirect", self.redirect),
            ("*", "/api/echo", self.echo),
            ("GET", "/__sandbox/stats", lambda _: json_response(200, self.store.stats())),
            ("POST", "/__sandbox/reject-tokens-before-now", self.reject_tokens_before_now),
        ]
        self._routes = [(m, re.compile(p), h) for m, p, h in routes]

    def urls(self) -> dict[str, str]:
        """What ``serve`` prints: the endpoints a profile or message points at."""
        return {
            "issuer": self.issuer,
            "token": self.auth.token_url,
            "revocation": f"{self.issuer}/oauth/revoke",
            "introspection": f"{self.issuer}/oauth/introspect",
            "authorization": f"{self.issuer}/oauth/authorize",
            "metadata": self.issuer + METADATA_PATH,
            "jwks": self.issuer + JWKS_PATH,
            "api": f"{self.issuer}/api",
        }

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/api/"):
            self.store.count("api_requests")
        allowed: list[str] = []
        for methods, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if methods in ("*", request.method) or (methods == "GET" and request.method == "HEAD"):
                request.params = match.groupdict()
                return handler(request)
            allowed.append(methods)
        if allowed:
            response = sn_error(
                405, "Method not Supported", f"{request.method} is not allowed here"
            )
            response.headers.append(("Allow", ", ".join(sorted(set(allowed)))))
            return response
        return sn_error(404, "Requested URI does not represent any resource", request.path)

    # -- utility endpoints for the tool's own tests: no token needed --

    def binary(self, request: Request) -> Response:
        return Response(200, BINARY_PAYLOAD, [("Content-Type", "application/octet-stream")])

    def redirect(self, request: Request) -> Response:
        query = request.query_dict()
        target = urljoin(request.url, query.get("to", "/api/echo"))
        if not is_loopback_url(target):
            return sn_error(400, "Redirect refused", "Only loopback targets are allowed")
        status = query.get("status", "302")
        if status not in _REDIRECT_STATUSES:
            return sn_error(400, "Redirect refused", "status must be one of 301 302 303 307 308")
        return json_response(int(status), {"location": target}, {"Location": target})

    def echo(self, request: Request) -> Response:
        """The request as received; the Authorization value is only said to be present."""
        query: dict[str, Any] = {}
        for key, value in request.query_items():
            if key in query:
                previous = query[key]
                query[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
            else:
                query[key] = value
        headers: dict[str, Any] = {}
        for key, value in request.headers.items():
            headers[key] = True if key.lower() == "authorization" else value
        payload = {
            "method": request.method,
            "path": request.target.split("?", 1)[0],
            "query": query,
            "raw_query": request.query,
            "headers": headers,
            "body": request.body.decode("utf-8", errors="replace"),
        }
        return json_response(200, payload)

    def reject_tokens_before_now(self, request: Request) -> Response:
        cutoff = self.store.reject_tokens_before_now()
        return json_response(200, {"reject_tokens_before": cutoff})
