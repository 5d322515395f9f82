"""Proves the e2e harness with plain ``requests`` (no oauthcli): every client auth method gets a
JWT for the API from the real oidc-provider, the API enforces signature, aud, exp, scope and the
simulated revocation, and the counters count exactly."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests
from joserfc import jws, jwt
from joserfc.jwk import OctKey, RSAKey

from .servers import Client, OidcProvider, ResourceServer

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("fresh_stats")]

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# --------------------------------------------------------------------------------------------
# helpers


def client_assertion(client: Client, audience: str) -> str:
    now = int(time.time())
    claims = {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": audience,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 60,
    }
    if client.auth_method == "private_key_jwt":
        key = RSAKey.import_key(client.private_key_pem)
        header = {"alg": "RS256", "typ": "JWT", "kid": client.kid}
    else:
        assert client.client_secret is not None
        key = OctKey.import_key(client.client_secret.encode())
        header = {"alg": "HS256", "typ": "JWT"}
    return jwt.encode(header, claims, key)


def token_request(
    http: requests.Session,
    op: OidcProvider,
    client: Client,
    scope: str | None = "api.read api.write",
    **extra: str,
) -> requests.Response:
    """A client_credentials token request, authenticated as the client is registered."""
    data: dict[str, str] = {"grant_type": "client_credentials", **extra}
    if scope is not None:
        data["scope"] = scope
    headers: dict[str, str] = {}
    if client.auth_method == "client_secret_basic":
        assert client.client_secret is not None
        # RFC 6749 section 2.3.1: form-urlencode id and secret, then Basic-encode.
        pair = f"{quote_plus(client.client_id)}:{quote_plus(client.client_secret)}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    elif client.auth_method == "client_secret_post":
        assert client.client_secret is not None
        data.update(client_id=client.client_id, client_secret=client.client_secret)
    else:
        data.update(
            client_assertion_type=JWT_BEARER,
            client_assertion=client_assertion(client, op.token_url),
        )
    return http.post(op.token_url, data=data, headers=headers, timeout=10)


def get_token(
    http: requests.Session, op: OidcProvider, client: Client, scope: str = "api.read api.write"
) -> str:
    resp = token_request(http, op, client, scope)
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


def unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    compact = jws.extract_compact(token.encode())
    return dict(compact.headers()), json.loads(compact.payload)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


CLIENTS = ["basic", "post", "jwt", "secret_jwt"]


# --------------------------------------------------------------------------------------------
# tests


def test_discovery_matches_fixture(http: requests.Session, oidc_provider: OidcProvider) -> None:
    meta = http.get(oidc_provider.discovery_url, timeout=5).json()
    assert meta["issuer"] == oidc_provider.issuer
    assert meta["token_endpoint"] == oidc_provider.token_url
    assert meta["revocation_endpoint"] == oidc_provider.revocation_url
    assert meta["jwks_uri"] == oidc_provider.jwks_url
    assert "client_credentials" in meta["grant_types_supported"]
    assert set(meta["token_endpoint_auth_methods_supported"]) >= {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
        "client_secret_jwt",
    }


@pytest.mark.parametrize("which", CLIENTS)
def test_each_auth_method_gets_a_jwt_the_api_accepts(
    which: str,
    http: requests.Session,
    oidc_provider: OidcProvider,
    resource_server: ResourceServer,
) -> None:
    client: Client = getattr(oidc_provider, which)
    before = oidc_provider.token_requests()

    resp = token_request(http, oidc_provider, client)

    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "api.read api.write"
    assert 0 < body["expires_in"] <= oidc_provider.access_token_ttl
    assert oidc_provider.token_requests() == before + 1
    assert oidc_provider.token_history()[-1]["client_auth"] == client.auth_method

    header, claims = unverified(body["access_token"])
    assert header["alg"] == "RS256"
    assert header["typ"] == "at+jwt"
    assert claims["iss"] == oidc_provider.issuer
    assert claims["aud"] == resource_server.api_base_url == oidc_provider.api_base_url
    assert claims["client_id"] == client.client_id
    assert claims["scope"] == "api.read api.write"

    token = body["access_token"]
    listed = http.get(resource_server.incidents_url, headers=bearer(token), timeout=5)
    assert listed.status_code == 200, listed.headers.get("WWW-Authenticate")
    assert isinstance(listed.json(), list)

    created = http.post(
        resource_server.incidents_url,
        json={"title": f"from {client.client_id}"},
        headers=bearer(token),
        timeout=5,
    )
    assert created.status_code == 201
    assert created.json()["title"] == f"from {client.client_id}"
    assert isinstance(created.json()["id"], int)
    assert oidc_provider.token_requests() == before + 1  # the API never calls the provider


def test_basic_secret_must_be_form_urlencoded(
    http: requests.Session, oidc_provider: OidcProvider
) -> None:
    client = oidc_provider.basic
    assert client.client_secret is not None
    assert set("+%:/") <= set(client.client_secret)
    raw = base64.b64encode(f"{client.client_id}:{client.client_secret}".encode()).decode()

    resp = http.post(
        oidc_provider.token_url,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {raw}"},
        timeout=5,
    )

    assert resp.status_code == 400
    assert resp.json()["error"] == "invalid_request"
    assert oidc_provider.token_requests() == 1


def test_registered_auth_method_is_enforced(
    http: requests.Session, oidc_provider: OidcProvider
) -> None:
    basic, post = oidc_provider.basic, oidc_provider.post
    as_post = Client(basic.client_id, "client_secret_post", basic.client_secret)
    as_basic = Client(post.client_id, "client_secret_basic", post.client_secret)

    for wrong in (as_post, as_basic):
        resp = token_request(http, oidc_provider, wrong)
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"] == "invalid_client"
    assert oidc_provider.stats()["token"] == {"total": 2, "ok": 0, "error": 2}


def test_assertion_jti_cannot_be_replayed(
    http: requests.Session, oidc_provider: OidcProvider
) -> None:
    client = oidc_provider.jwt
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": client_assertion(client, oidc_provider.token_url),
    }
    first = http.post(oidc_provider.token_url, data=data, timeout=5)
    second = http.post(oidc_provider.token_url, data=data, timeout=5)
    assert first.status_code == 200, first.text
    assert second.status_code == 401
    assert second.json()["error"] == "invalid_client"


def test_resource_parameter(
    http: requests.Session, oidc_provider: OidcProvider, resource_server: ResourceServer
) -> None:
    explicit = token_request(
        http, oidc_provider, oidc_provider.post, resource=resource_server.api_base_url
    )
    assert explicit.status_code == 200, explicit.text
    assert unverified(explicit.json()["access_token"])[1]["aud"] == resource_server.api_base_url

    unknown = token_request(
        http, oidc_provider, oidc_provider.post, resource="http://127.0.0.1:9/other"
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"] == "invalid_target"

    history = oidc_provider.token_history()
    assert [h["resource"] for h in history] == [
        resource_server.api_base_url,
        "http://127.0.0.1:9/other",
    ]


def test_unknown_scopes_are_dropped_and_no_scope_gives_none(
    http: requests.Session, oidc_provider: OidcProvider
) -> None:
    resp = token_request(http, oidc_provider, oidc_provider.post, scope="api.read api.admin")
    assert resp.status_code == 200, resp.text
    assert resp.json()["scope"] == "api.read"

    resp = token_request(http, oidc_provider, oidc_provider.post, scope=None)
    assert resp.status_code == 200, resp.text
    assert "scope" not in resp.json()
    assert "scope" not in unverified(resp.json()["access_token"])[1]


def test_wrong_scope_is_403(
    http: requests.Session, oidc_provider: OidcProvider, resource_server: ResourceServer
) -> None:
    token = get_token(http, oidc_provider, oidc_provider.post, scope="api.read")

    assert http.get(resource_server.incidents_url, headers=bearer(token), timeout=5).ok
    resp = http.post(resource_server.incidents_url, json={}, headers=bearer(token), timeout=5)

    assert resp.status_code == 403
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="api.write"' in challenge
    assert resource_server.stats()["forbidden"] == 1


def test_reject_before_now_makes_old_tokens_401(
    http: requests.Session, oidc_provider: OidcProvider, resource_server: ResourceServer
) -> None:
    old = get_token(http, oidc_provider, oidc_provider.basic)
    assert http.get(resource_server.incidents_url, headers=bearer(old), timeout=5).ok

    resource_server.reject_before_now()
    resp = http.get(resource_server.incidents_url, headers=bearer(old), timeout=5)

    assert resp.status_code == 401
    challenge = resp.headers["WWW-Authenticate"]
    assert 'error="invalid_token"' in challenge
    assert "revoked" in challenge
    new = get_token(http, oidc_provider, oidc_provider.basic)  # same second is fine
    assert http.get(resource_server.incidents_url, headers=bearer(new), timeout=5).ok
    stats = resource_server.stats()
    assert (stats["total"], stats["unauthorized"]) == (3, 1)


def test_api_rejects_missing_tampered_and_expired_tokens(
    http: requests.Session, oidc_provider: OidcProvider, resource_server: ResourceServer
) -> None:
    missing = http.get(resource_server.incidents_url, timeout=5)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert "error=" not in missing.headers["WWW-Authenticate"]

    token = get_token(http, oidc_provider, oidc_provider.post)
    head, payload, sig = token.split(".")
    tampered = f"{head}.{payload}.{sig[:-4]}AAAA"
    resp = http.get(resource_server.incidents_url, headers=bearer(tampered), timeout=5)
    assert resp.status_code == 401
    assert 'error="invalid_token"' in resp.headers["WWW-Authenticate"]

    with oidc_provider.short_lived_tokens(1):
        short = token_request(http, oidc_provider, oidc_provider.post)
    assert short.json()["expires_in"] == 1
    exp = unverified(short.json()["access_token"])[1]["exp"]
    time.sleep(max(0.0, exp + 1.05 - time.time()))
    resp = http.get(
        resource_server.incidents_url, headers=bearer(short.json()["access_token"]), timeout=5
    )
    assert resp.status_code == 401
    assert "expired" in resp.headers["WWW-Authenticate"]
    assert oidc_provider.access_token_ttl == 300


def test_revocation_answers_200_but_jwts_are_stateless(
    http: requests.Session, oidc_provider: OidcProvider, resource_server: ResourceServer
) -> None:
    """oidc-provider does not store JWT access tokens: it cannot introspect them, and revoking
    one is a successful no-op (RFC 7009 answers 200 for unknown tokens). The API keeps accepting
    it until it expires; use resource_server.reject_before_now() to simulate revocation."""
    client = oidc_provider.post
    assert client.client_secret is not None
    auth = {"client_id": client.client_id, "client_secret": client.client_secret}
    token = get_token(http, oidc_provider, client)

    resp = http.post(
        oidc_provider.revocation_url,
        data={"token": token, "token_type_hint": "access_token", **auth},
        timeout=5,
    )

    assert resp.status_code == 200
    assert oidc_provider.revocation_requests() == 1
    assert oidc_provider.token_requests() == 1
    introspected = http.post(
        oidc_provider.introspection_url, data={"token": token, **auth}, timeout=5
    )
    assert introspected.json() == {"active": False}
    assert http.get(resource_server.incidents_url, headers=bearer(token), timeout=5).ok
    unauthenticated = http.post(oidc_provider.revocation_url, data={"token": token}, timeout=5)
    assert unauthenticated.status_code in (400, 401)
    assert oidc_provider.stats()["revocation"] == {"total": 2, "ok": 1, "error": 1}


def test_injected_token_endpoint_failure(
    http: requests.Session, oidc_provider: OidcProvider
) -> None:
    oidc_provider.fail_next_token_requests(1, status=503)

    failed = token_request(http, oidc_provider, oidc_provider.post)
    ok = token_request(http, oidc_provider, oidc_provider.post)

    assert failed.status_code == 503
    assert failed.json()["error"] == "temporarily_unavailable"
    assert ok.status_code == 200
    assert oidc_provider.stats()["token"] == {"total": 2, "ok": 1, "error": 1}


def test_reset_connection_route_aborts(
    http: requests.Session, resource_server: ResourceServer
) -> None:
    with pytest.raises(requests.ConnectionError):
        http.get(resource_server.reset_connection_url, timeout=5)
