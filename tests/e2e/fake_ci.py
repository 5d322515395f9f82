"""Test-only fake of GitHub Actions' OIDC ID-token endpoint, signing as the local "CI issuer".

A CI job in GitHub Actions gets ``ACTIONS_ID_TOKEN_REQUEST_URL`` and
``ACTIONS_ID_TOKEN_REQUEST_TOKEN``; ``GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD`` with
``Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN`` answers ``{"count": 1, "value":
"<JWT>"}``. This server does the same on 127.0.0.1: the JWT is signed (RS256) with the CI
issuer key that the e2e oidc-provider trusts for client ``cli-ci`` (private_key_jwt), with
``iss`` = ``sub`` = that client id and ``aud`` = the requested audience (RFC 7523 client
authentication: the audience to ask for is the provider's token endpoint), plus GitHub's usual
claims (repository, ref, workflow, ...).

Routes::

    GET  /_apis/idtoken?api-version=2.0[&audience=AUD]   the token (401 for a wrong or
                                          missing request token; audience defaults to the
                                          repository owner's URL, as GitHub's does)
    GET  /__health                        200 once listening
    GET  /__stats                         {"total", "ok", "unauthorized", "requests": [{"at",
                                          "audience", "authorized", "status"}]}
    POST /__reset                         zero the counters, cancel injected failures
    POST /__fail                          JSON {count, status, body}: the next `count` token
                                          requests answer `status` with `body` (a JSON value;
                                          e.g. {} for an answer without "value")

Listens on 127.0.0.1 only; never logs the request token or a JWT.

Usage::

    python -m tests.e2e.fake_ci --port 8090 --key-file ci-issuer.pem --kid KID \
        --request-token-file request-token --subject cli-ci
"""

from __future__ import annotations

import argparse
import hmac
import json
import sys
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey

from .httpbase import HOST, JsonHandler, serve

TOKEN_PATH = "/_apis/idtoken"
LIFETIME = 300
REPOSITORY = "oauthcli/e2e"


def github_claims(subject: str, audience: str, now: int | None = None) -> dict[str, Any]:
    """The claims of a GitHub Actions ID token, with iss = sub = subject (the client id)."""
    now = int(time.time()) if now is None else now
    return {
        "iss": subject,
        "sub": subject,
        "aud": audience,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now - 5,
        "exp": now + LIFETIME,
        "repository": REPOSITORY,
        "repository_owner": REPOSITORY.split("/")[0],
        "ref": "refs/heads/main",
        "workflow": "ci",
        "job_workflow_ref": f"{REPOSITORY}/.github/workflows/ci.yml@refs/heads/main",
        "runner_environment": "github-hosted",
        "event_name": "push",
    }


def sign(key: RSAKey, kid: str, claims: dict[str, Any]) -> str:
    return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": kid}, claims, key)


class State:
    def __init__(self, key: RSAKey, kid: str, request_token: str, subject: str) -> None:
        self.key = key
        self.kid = kid
        self.request_token = request_token
        self.subject = subject
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests: deque[dict[str, Any]] = deque(maxlen=200)
            self.failure: dict[str, Any] = {"count": 0}

    def stats(self) -> dict[str, Any]:
        with self.lock:
            requests = list(self.requests)
        return {
            "total": len(requests),
            "ok": sum(1 for r in requests if r["status"] == 200),
            "unauthorized": sum(1 for r in requests if r["status"] == 401),
            "requests": requests,
        }


def make_handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        server_version = "oauthcli-e2e-fake-ci/1"
        content_type = "application/json; charset=utf-8"
        cache_control = None
        max_body = 65536

        def dispatch(self) -> None:
            raw = self.read_body()
            url = urlsplit(self.path)
            route = (self.command, url.path)
            status: int = 200
            body: Any
            extra = ""
            if route == ("GET", "/__health"):
                body = {"ok": True}
            elif route == ("GET", "/__stats"):
                body = state.stats()
            elif route == ("POST", "/__reset"):
                state.reset()
                body = {"reset": True}
            elif route == ("POST", "/__fail"):
                wanted = json.loads(raw or b"{}")
                with state.lock:
                    state.failure = {
                        "count": int(wanted.get("count", 1)),
                        "status": int(wanted.get("status", 500)),
                        "body": wanted.get("body", {"message": "injected failure (test hook)"}),
                    }
                    body = dict(state.failure)
            elif route == ("GET", TOKEN_PATH):
                status, body, extra = self.id_token(parse_qs(url.query))
            else:
                status, body = 404, {"message": "Not Found"}
            self.send_json(status, body)
            self.log_line(status, extra)

        def id_token(self, query: dict[str, list[str]]) -> tuple[int, Any, str]:
            authz = self.headers.get("Authorization") or ""
            scheme, _, value = authz.partition(" ")
            authorized = scheme.lower() == "bearer" and hmac.compare_digest(
                value.strip().encode(), state.request_token.encode()
            )
            audiences = query.get("audience") or []
            audience = (
                audiences[-1] if audiences else f"https://github.com/{REPOSITORY.split('/')[0]}"
            )
            entry: dict[str, Any] = {
                "at": time.time(),
                "audience": audience if audiences else None,
                "api_version": query["api-version"][-1] if "api-version" in query else None,
                "authorized": authorized,
            }
            if not authorized:
                status: int = 401
                body: Any = {
                    "message": "Unable to get ACTIONS_ID_TOKEN_REQUEST_URL token: bad credentials"
                }
            else:
                with state.lock:
                    failing = state.failure["count"] > 0
                    if failing:
                        state.failure["count"] -= 1
                        status, body = state.failure["status"], state.failure["body"]
                if not failing:
                    claims = github_claims(state.subject, audience)
                    status, body = 200, {"count": 1, "value": sign(state.key, state.kid, claims)}
            entry["status"] = status
            with state.lock:
                state.requests.append(entry)
            return status, body, f" audience={entry['audience']} authorized={authorized}"

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key-file", required=True, help="the CI issuer's private key (PEM)")
    parser.add_argument("--kid", required=True)
    parser.add_argument("--request-token-file", required=True)
    parser.add_argument("--subject", required=True, help="iss and sub of the tokens")
    parser.add_argument("--parent-pid", type=int)
    args = parser.parse_args(argv)

    key = RSAKey.import_key(Path(args.key_file).read_bytes())
    request_token = Path(args.request_token_file).read_text().strip()
    state = State(key, args.kid, request_token, args.subject)
    banner = f"listening on {HOST}:{args.port}, subject {args.subject}"
    return serve("fake-ci-e2e", args.port, make_handler(state), args.parent_pid, banner)


if __name__ == "__main__":
    sys.exit(main())
