"""The protected sample API: a ServiceNow-like incident table and failure endpoints.

Bearer tokens are checked by Authlib's ``ResourceProtector`` with an RFC 9068
``JWTBearerTokenValidator``; the sandbox adds only what a JWT cannot say by
itself (revoked, or issued before the server-side cut-off).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from uuid import uuid4

from authlib.oauth2 import OAuth2Error, ResourceProtector
from authlib.oauth2.rfc6749 import MissingAuthorizationError, UnsupportedTokenTypeError
from authlib.oauth2.rfc6750 import InsufficientScopeError, InvalidTokenError
from authlib.oauth2.rfc9068 import JWTBearerTokenValidator
from joserfc import jws
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError

from .clients import CLIENTS
from .grants import safe_description
from .keys import SigningKeys
from .store import TokenStore
from .wire import Request, Response, json_response, sn_error

REALM = "sandbox"
OTHER_AUDIENCE = "urn:sandbox:other"
SEED_INCIDENT_IDS = (
    "9d385017c611228701d22104cc95c371",
    "e8caedcbc0a80164017df472f39eaed1",
    "46b66a40a9fe198101f243dfbc79033d",
)
#: Served by ``/api/binary``: every byte value, so it is not valid UTF-8.
BINARY_PAYLOAD = bytes(range(256)) + b"\xff\xfe\x00\x80\xc3\x28" * 10
_FIELDS = ("short_description", "description", "urgency", "impact", "state", "category")

Handler = Callable[[Request], Response]
Claims = dict[str, Any]


class SandboxTokenValidator(JWTBearerTokenValidator):
    """RFC 9068 validation, with error descriptions that say what was wrong."""

    def __init__(self, issuer: str, audience: str, keys: SigningKeys, store: TokenStore) -> None:
        super().__init__(issuer=issuer, resource_server=audience, realm=REALM)
        self._keys = keys
        self._store = store

    def get_jwks(self) -> Any:
        return self._keys.public

    def _invalid(self, description: str) -> InvalidTokenError:
        return InvalidTokenError(description=safe_description(description), realm=self.realm)

    def authenticate_token(self, token_string: str) -> Any:
        try:
            return super().authenticate_token(token_string)
        except InvalidTokenError as exc:
            text = "The access token is malformed or not signed by this sandbox"
            raise self._invalid(text) from exc

    def validate_token(self, token: Any, scopes: Any, request: Any, *args: Any) -> None:
        try:
            token.validate()
        except ExpiredTokenError as exc:
            raise self._invalid("The access token expired") from exc
        except InvalidClaimError as exc:
            if exc.claim != "aud":
                raise self._invalid(str(exc.description)) from exc
            got = token.get("aud")
            got = " ".join(got) if isinstance(got, list) else str(got)
            text = f"The token audience '{got}' does not include '{self.resource_server}'"
            raise self._invalid(text) from exc
        except JoseError as exc:
            raise self._invalid(str(exc.description)) from exc
        reason = self._store.is_rejected(str(token.get("jti")))
        if reason:
            raise self._invalid(reason)
        super().validate_token(token, scopes, request, *args)


def _auth_error(error: OAuth2Error, scope: str | None) -> Response:
    status, body, headers = error()
    if isinstance(error, (MissingAuthorizationError, UnsupportedTokenTypeError)):
        # RFC 6750 §3.1: no error code when the request carried no usable credentials.
        response = sn_error(401, "User Not Authenticated", "Required to provide Auth information")
        response.headers.append(("WWW-Authenticate", f'Bearer realm="{REALM}"'))
        return response
    headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
    if isinstance(error, InsufficientScopeError):
        challenge = (
            f'Bearer realm="{REALM}", error="insufficient_scope", '
            f'error_description="{error.get_error_description()}", scope="{scope}"'
        )
        headers.append(("WWW-Authenticate", challenge))
    return json_response(status, body, headers)


def _claimed_client_id(request: Request) -> str | None:
    """For the request log only: the client a refused token names, if it is a sandbox client."""
    auth = request.headers.get("Authorization") or ""
    try:
        payload = json.loads(jws.extract_compact(auth.split(" ", 1)[-1].encode()).payload)
    except (JoseError, ValueError):
        return None
    client_id = payload.get("client_id") if isinstance(payload, dict) else None
    return client_id if client_id in CLIENTS else None


class IncidentTable:
    """A thread-safe, in-memory ``incident`` table seeded with three records."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, dict[str, str]] = {}
        seeds = [
            ("Email server is down", "1", "1"),
            ("VPN drops every ten minutes", "2", "2"),
            ("Printer on floor 3 is out of toner", "3", "3"),
        ]
        for sys_id, (text, urgency, state) in zip(SEED_INCIDENT_IDS, seeds, strict=True):
            self._insert(sys_id, {"short_description": text, "urgency": urgency, "state": state})

    def _insert(self, sys_id: str, fields: dict[str, str]) -> dict[str, str]:
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        row = {"sys_id": sys_id, "number": f"INC{10001 + len(self._rows):07d}"}
        row.update({"short_description": "", "description": "", "urgency": "3"})
        row.update({"impact": "3", "state": "1", "category": "inquiry"})
        row.update(fields)
        row.update(active="true", sys_created_on=now, sys_updated_on=now)
        self._rows[sys_id] = row
        return dict(row)

    def list(self, limit: int | None) -> list[dict[str, str]]:
        with self._lock:
            rows = [dict(row) for row in self._rows.values()]
        return rows if limit is None else rows[:limit]

    def get(self, sys_id: str) -> dict[str, str] | None:
        with self._lock:
            row = self._rows.get(sys_id)
            return dict(row) if row else None

    def create(self, fields: dict[str, str]) -> dict[str, str]:
        with self._lock:
            return self._insert(uuid4().hex, fields)

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)


class Api:
    """The ``/api`` routes; each protected one names the scope or audience it needs."""

    def __init__(self, issuer: str, keys: SigningKeys, store: TokenStore) -> None:
        self.incidents = IncidentTable()
        self._protectors: dict[str, ResourceProtector] = {}
        for audience in (f"{issuer}/api", OTHER_AUDIENCE):
            protector = ResourceProtector()
            protector.register_token_validator(SandboxTokenValidator(issuer, audience, keys, store))
            self._protectors[audience] = protector
        self.default_audience = f"{issuer}/api"

    def protected(
        self,
        handler: Callable[[Request, Claims], Response],
        scope: str | None = None,
        audience: str | None = None,
    ) -> Handler:
        """``handler`` behind a bearer-token check for ``scope`` and ``audience``."""
        protector = self._protectors[audience or self.default_audience]

        def guarded(request: Request) -> Response:
            try:
                token = protector.validate_request([scope] if scope else None, request)
            except OAuth2Error as error:
                response = _auth_error(error, scope)
                response.client_id = _claimed_client_id(request)
                return response
            response = handler(request, dict(token))
            response.client_id = str(token.get("client_id"))
            return response

        return guarded

    def routes(self) -> list[tuple[str, str, Handler]]:
        """(methods, path pattern, handler) triples; ``*`` is any method."""
        table = "/api/now/table/incident"
        return [
            ("GET", table, self.protected(self.list_incidents, "incident.read")),
            ("POST", table, self.protected(self.create_incident, "incident.write")),
            (
                "GET",
                table + "/(?P<sys_id>[^/]+)",
                self.protected(self.get_incident, "incident.read"),
            ),
            ("*", "/api/fail/(?P<code>403|500|503)", self.protected(self.fail)),
            ("GET", "/api/admin/users", self.protected(self.admin_users, "admin")),
            ("GET", "/api/other/ping", self.protected(self.ping, audience=OTHER_AUDIENCE)),
        ]

    def list_incidents(self, request: Request, claims: Claims) -> Response:
        raw = request.query_dict().get("sysparm_limit")
        if raw is not None and not re.fullmatch(r"\d+", raw):
            return sn_error(400, "Invalid sysparm_limit", f"Not a whole number: {raw[:40]}")
        rows = self.incidents.list(int(raw) if raw is not None else None)
        return json_response(200, {"result": rows}, {"X-Total-Count": str(len(self.incidents))})

    def get_incident(self, request: Request, claims: Claims) -> Response:
        row = self.incidents.get(request.params["sys_id"])
        if row is None:
            return sn_error(
                404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval"
            )
        return json_response(200, {"result": row})

    def create_incident(self, request: Request, claims: Claims) -> Response:
        try:
            body = request.json()
        except ValueError:
            return sn_error(400, "Exception while reading request", "The body is not valid JSON")
        if not isinstance(body, dict):
            return sn_error(
                400, "Exception while reading request", "The body must be a JSON object"
            )
        fields = {k: v if isinstance(v, str) else str(v) for k, v in body.items() if k in _FIELDS}
        row = self.incidents.create(fields)
        location = f"{request.url.split('?', 1)[0]}/{row['sys_id']}"
        return json_response(201, {"result": row}, {"Location": location})

    def fail(self, request: Request, claims: Claims) -> Response:
        code = request.params["code"]
        if code == "403":
            body = {
                "code": "0x80072560",
                "message": "The user is not a member of the organization.",
            }
            return json_response(403, {"error": body})
        if code == "503":
            response = sn_error(
                503, "Service Unavailable", "The sandbox is unavailable on purpose."
            )
            response.headers.append(("Retry-After", "1"))
            return response
        return sn_error(500, "Internal Server Error", "The sandbox fails here on purpose.")

    def admin_users(self, request: Request, claims: Claims) -> Response:
        return json_response(200, {"result": [{"user_name": "demo", "roles": "itil,admin"}]})

    def ping(self, request: Request, claims: Claims) -> Response:
        return json_response(200, {"result": "pong", "aud": claims.get("aud")})
