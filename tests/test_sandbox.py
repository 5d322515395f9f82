"""The sandbox end to end: a real server on 127.0.0.1, spoken to with plain requests."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import pytest
import requests
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from oauthcli.sandbox import (
    BASIC_CLIENT_ID,
    BASIC_CLIENT_SECRET,
    BINARY_PAYLOAD,
    DEMO_PASSWORD,
    DEMO_USERNAME,
    JWT_BEARER_GRANT,
    JWT_CLIENT_ID,
    OTHER_AUDIENCE,
    POST_CLIENT_ID,
    POST_CLIENT_SECRET,
    PUBLIC_CLIENT_ID,
    SANDBOX_ASSERTION_AUDIENCE,
    SECRET_JWT_CLIENT_ID,
    SECRET_JWT_CLIENT_SECRET,
    SEED_INCIDENT_IDS,
    Sandbox,
    sign_assertion,
)
from oauthcli.sandbox.keys import SANDBOX_CLIENT_PUBLIC_KEY_PEM

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
CLIENT_PEM = (ROOT / "profiles/keys/sandbox-client.pem").read_bytes()
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0, token_ttl=300) as running:
        yield running


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def basic(client_id: str, secret: str) -> dict[str, str]:
    """RFC 6749 §2.3.1: form-urlencode id and secret, then Basic-encode."""
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def claims_of(token: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==")))


def header_of(token: str) -> dict[str, Any]:
    return dict(json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "==")))


def client_assertion(sandbox: Sandbox, alg: str = "RS256", jti: str | None = None) -> str:
    now = int(time.time())
    if alg.startswith("HS"):
        key: Any = OctKey.import_key(SECRET_JWT_CLIENT_SECRET.encode())
        client_id = SECRET_JWT_CLIENT_ID
    else:
        key = RSAKey.import_key(CLIENT_PEM)
        client_id = JWT_CLIENT_ID
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": f"{sandbox.url}/oauth/token",
        "iat": now,
        "exp": now + 60,
        "jti": jti or os.urandom(8).hex(),
    }
    return jwt.encode({"alg": alg, "kid": "sandbox-client-2026"}, claims, key, algorithms=[alg])


def get_token(http: requests.Session, base_url: str, **data: str) -> dict[str, Any]:
    """A token for sandbox-basic from the sandbox at ``base_url``."""
    data.setdefault("grant_type", "client_credentials")
    response = http.post(
        f"{base_url}/oauth/token", data=data, headers=basic(BASIC_CLIENT_ID, BASIC_CLIENT_SECRET)
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# -- client authentication, one method each ------------------------------------


def test_client_secret_basic_needs_the_form_urlencoded_secret(sandbox: Sandbox, http: Any) -> None:
    assert {"+", "%", ":", "/"} <= set(BASIC_CLIENT_SECRET)
    token = get_token(http, sandbox.url)
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == 300
    assert "refresh_token" not in token

    raw = http.post(
        f"{sandbox.url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(BASIC_CLIENT_ID, BASIC_CLIENT_SECRET),  # not form-urlencoded first
    )
    assert raw.status_code == 401
    assert raw.json()["error"] == "invalid_client"
    assert raw.headers["WWW-Authenticate"].startswith("Basic ")


def test_client_secret_post(sandbox: Sandbox, http: Any) -> None:
    data = {"grant_type": "client_credentials", "client_id": POST_CLIENT_ID}
    ok = http.post(f"{sandbox.url}/oauth/token", data={**data, "client_secret": POST_CLIENT_SECRET})
    assert ok.status_code == 200
    assert claims_of(ok.json()["access_token"])["client_id"] == POST_CLIENT_ID

    wrong = http.post(f"{sandbox.url}/oauth/token", data={**data, "client_secret": "nope"})
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")


def test_a_client_must_use_its_own_auth_method(sandbox: Sandbox, http: Any) -> None:
    data = {
        "grant_type": "client_credentials",
        "client_id": BASIC_CLIENT_ID,
        "client_secret": BASIC_CLIENT_SECRET,
    }
    response = http.post(f"{sandbox.url}/oauth/token", data=data)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_private_key_jwt(sandbox: Sandbox, http: Any, alg: str) -> None:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(sandbox, alg),
    }
    first = http.post(f"{sandbox.url}/oauth/token", data=data)
    assert first.status_code == 200, first.text
    assert claims_of(first.json()["access_token"])["sub"] == JWT_CLIENT_ID

    replay = http.post(f"{sandbox.url}/oauth/token", data=data)
    assert (replay.status_code, replay.json()["error"]) == (401, "invalid_client")
    assert "used before" in replay.json()["error_description"]


def test_private_key_jwt_signed_by_another_key_is_refused(sandbox: Sandbox, http: Any) -> None:
    other = RSAKey.generate_key(2048, private=True)
    now = int(time.time())
    claims: dict[str, Any] = {"iss": JWT_CLIENT_ID, "sub": JWT_CLIENT_ID, "exp": now + 60}
    claims.update(aud=f"{sandbox.url}/oauth/token", jti="forged-1")
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": jwt.encode({"alg": "RS256"}, claims, other),
    }
    response = http.post(f"{sandbox.url}/oauth/token", data=data)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


def test_client_secret_jwt(sandbox: Sandbox, http: Any) -> None:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(sandbox, "HS256"),
    }
    response = http.post(f"{sandbox.url}/oauth/token", data=data)
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["client_id"] == SECRET_JWT_CLIENT_ID


def test_public_client_cannot_use_client_credentials(sandbox: Sandbox, http: Any) -> None:
    data = {"grant_type": "client_credentials", "client_id": PUBLIC_CLIENT_ID}
    response = http.post(f"{sandbox.url}/oauth/token", data=data)
    assert (response.status_code, response.json()["error"]) == (400, "unauthorized_client")


def test_token_endpoint_errors(sandbox: Sandbox, http: Any) -> None:
    url = f"{sandbox.url}/oauth/token"
    auth = basic(BASIC_CLIENT_ID, BASIC_CLIENT_SECRET)
    cases = [
        ({"grant_type": "magic"}, "unsupported_grant_type"),
        ({"grant_type": "client_credentials", "scope": "incident.delete"}, "invalid_scope"),
        ({"grant_type": "client_credentials", "resource": "not a uri"}, "invalid_target"),
        ({"grant_type": "refresh_token", "refresh_token": "unknown"}, "invalid_grant"),
    ]
    for data, error in cases:
        response = http.post(url, data=data, headers=auth)
        assert (response.status_code, response.json()["error"]) == (400, error), data
        assert response.headers["Cache-Control"] == "no-store"
    unknown = http.post(url, data={"grant_type": "client_credentials"}, headers=basic("who", "x"))
    assert (unknown.status_code, unknown.json()["error"]) == (401, "invalid_client")
    assert http.get(url).status_code == 405


# -- other grants --------------------------------------------------------------


def test_password_grant_and_refresh_rotation(sandbox: Sandbox, http: Any) -> None:
    url = f"{sandbox.url}/oauth/token"
    data = {
        "grant_type": "password",
        "client_id": PUBLIC_CLIENT_ID,
        "username": DEMO_USERNAME,
        "password": DEMO_PASSWORD,
        "scope": "incident.read",
    }
    first = http.post(url, data=data).json()
    assert claims_of(first["access_token"])["sub"] == DEMO_USERNAME
    assert first["scope"] == "incident.read"

    refresh = {"grant_type": "refresh_token", "client_id": PUBLIC_CLIENT_ID}
    second = http.post(url, data={**refresh, "refresh_token": first["refresh_token"]}).json()
    assert second["refresh_token"] != first["refresh_token"]
    assert claims_of(second["access_token"])["scope"] == "incident.read"

    reused = http.post(url, data={**refresh, "refresh_token": first["refresh_token"]})
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    third = http.post(url, data={**refresh, "refresh_token": second["refresh_token"]})
    assert third.status_code == 200

    bad = http.post(url, data={**data, "password": "wrong"})
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_grant")


def test_refresh_keeps_the_requested_audience(sandbox: Sandbox, http: Any) -> None:
    token = get_token(
        http,
        sandbox.url,
        grant_type="password",
        username=DEMO_USERNAME,
        password=DEMO_PASSWORD,
        resource=OTHER_AUDIENCE,
    )
    data = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"]}
    refreshed = get_token(http, sandbox.url, **data)
    assert claims_of(refreshed["access_token"])["aud"] == OTHER_AUDIENCE


@pytest.mark.parametrize("audience", ["token_url", SANDBOX_ASSERTION_AUDIENCE])
def test_jwt_bearer_grant(sandbox: Sandbox, http: Any, audience: str) -> None:
    aud = f"{sandbox.url}/oauth/token" if audience == "token_url" else audience
    data = {"grant_type": JWT_BEARER_GRANT, "assertion": sign_assertion(CLIENT_PEM, aud)}
    response = http.post(f"{sandbox.url}/oauth/token", data=data)
    assert response.status_code == 200, response.text
    claims = claims_of(response.json()["access_token"])
    assert (claims["sub"], claims["client_id"]) == (DEMO_USERNAME, JWT_CLIENT_ID)
    assert "refresh_token" not in response.json()


def test_jwt_bearer_grant_refuses_a_foreign_audience(sandbox: Sandbox, http: Any) -> None:
    assertion = sign_assertion(CLIENT_PEM, "https://elsewhere.test/token")
    data = {"grant_type": JWT_BEARER_GRANT, "assertion": assertion}
    response = http.post(f"{sandbox.url}/oauth/token", data=data)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")


def test_committed_assertion_and_key_match_the_sandbox(sandbox: Sandbox, http: Any) -> None:
    public = RSAKey.import_key(CLIENT_PEM).as_dict(private=False)
    assert public["n"] == RSAKey.import_key(SANDBOX_CLIENT_PUBLIC_KEY_PEM).as_dict()["n"]
    assertion = (ROOT / "profiles/keys/sandbox-jwt-bearer.jwt").read_text().strip()
    data = {"grant_type": JWT_BEARER_GRANT, "assertion": assertion}
    response = http.post(f"{sandbox.url}/oauth/token", data=data)
    assert response.status_code == 200, response.text


def test_authorization_code_with_pkce(sandbox: Sandbox, http: Any) -> None:
    verifier = "v" * 50
    redirect_uri = "http://127.0.0.1:9/callback"
    params = {
        "response_type": "code",
        "client_id": PUBLIC_CLIENT_ID,
        "redirect_uri": redirect_uri,
        "scope": "incident.read",
        "state": "xyz",
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    answer = http.get(f"{sandbox.url}/oauth/authorize", params=params, allow_redirects=False)
    assert answer.status_code == 302
    location = urlsplit(answer.headers["Location"])
    query = parse_qs(location.query)
    assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
    assert query["state"] == ["xyz"]
    data = {
        "grant_type": "authorization_code",
        "client_id": PUBLIC_CLIENT_ID,
        "code": query["code"][0],
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    token = http.post(f"{sandbox.url}/oauth/token", data=data)
    assert token.status_code == 200, token.text
    assert claims_of(token.json()["access_token"])["sub"] == DEMO_USERNAME
    again = http.post(f"{sandbox.url}/oauth/token", data=data)
    assert again.json()["error"] == "invalid_grant"


# -- tokens, metadata, revocation ------------------------------------------------


def test_jwt_claims(sandbox: Sandbox, http: Any) -> None:
    token = get_token(http, sandbox.url, scope="incident.read admin")["access_token"]
    claims, header = claims_of(token), header_of(token)
    assert header["alg"] == "RS256" and header["kid"] and header["typ"] == "at+jwt"
    assert claims["iss"] == sandbox.url
    assert claims["aud"] == f"{sandbox.url}/api"
    assert claims["sub"] == claims["client_id"] == BASIC_CLIENT_ID
    assert claims["scope"] == "incident.read admin"
    assert claims["exp"] - claims["iat"] == 300
    assert claims["jti"]

    default = claims_of(get_token(http, sandbox.url)["access_token"])
    assert default["scope"] == "incident.read incident.write"
    assert (
        claims_of(get_token(http, sandbox.url, audience="urn:x")["access_token"])["aud"] == "urn:x"
    )
    resource = "https://api.example.test"
    assert (
        claims_of(get_token(http, sandbox.url, resource=resource)["access_token"])["aud"]
        == resource
    )


def test_metadata_and_jwks(sandbox: Sandbox, http: Any) -> None:
    document = http.get(f"{sandbox.url}/.well-known/oauth-authorization-server").json()
    AuthorizationServerMetadata(document).validate()
    assert document["issuer"] == sandbox.url
    assert document["token_endpoint"] == f"{sandbox.url}/oauth/token"
    assert document["revocation_endpoint"] == f"{sandbox.url}/oauth/revoke"
    assert {"client_secret_basic", "client_secret_post", "private_key_jwt"} <= set(
        document["token_endpoint_auth_methods_supported"]
    )
    jwks = http.get(document["jwks_uri"]).json()
    (key,) = jwks["keys"]
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["alg"] == "RS256"
    assert "d" not in key
    token = get_token(http, sandbox.url)["access_token"]
    assert header_of(token)["kid"] == key["kid"]
    verified = jwt.decode(token, KeySet.import_key_set(jwks))
    assert verified.claims["iss"] == sandbox.url


def test_revocation_and_introspection(sandbox: Sandbox, http: Any) -> None:
    auth = basic(BASIC_CLIENT_ID, BASIC_CLIENT_SECRET)
    token = get_token(http, sandbox.url)["access_token"]
    api = f"{sandbox.url}/api/now/table/incident"
    introspect = f"{sandbox.url}/oauth/introspect"
    before = sandbox.stats()["revocations"]

    active = http.post(introspect, data={"token": token}, headers=auth).json()
    assert active["active"] is True and active["client_id"] == BASIC_CLIENT_ID
    assert http.get(api, headers=bearer(token)).status_code == 200

    revoked = http.post(f"{sandbox.url}/oauth/revoke", data={"token": token}, headers=auth)
    assert revoked.status_code == 200
    assert sandbox.stats()["revocations"] == before + 1
    assert http.post(introspect, data={"token": token}, headers=auth).json() == {"active": False}
    refused = http.get(api, headers=bearer(token))
    assert refused.status_code == 401
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    assert "revoked" in refused.json()["error_description"]

    unknown = http.post(f"{sandbox.url}/oauth/revoke", data={"token": "nonsense"}, headers=auth)
    assert unknown.status_code == 200  # RFC 7009 §2.2


def test_revoked_refresh_token_no_longer_refreshes(sandbox: Sandbox, http: Any) -> None:
    grant = {"grant_type": "password", "username": DEMO_USERNAME, "password": DEMO_PASSWORD}
    refresh_token = get_token(http, sandbox.url, **grant)["refresh_token"]
    auth = basic(BASIC_CLIENT_ID, BASIC_CLIENT_SECRET)
    data = {"token": refresh_token, "token_type_hint": "refresh_token"}
    assert http.post(f"{sandbox.url}/oauth/revoke", data=data, headers=auth).status_code == 200
    again = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    response = http.post(f"{sandbox.url}/oauth/token", data=again, headers=auth)
    assert response.json()["error"] == "invalid_grant"


# -- the API --------------------------------------------------------------------


def test_incident_table(sandbox: Sandbox, http: Any) -> None:
    headers = bearer(get_token(http, sandbox.url)["access_token"])
    table = f"{sandbox.url}/api/now/table/incident"
    listed = http.get(table, headers=headers, params={"sysparm_limit": "2"})
    assert listed.status_code == 200
    assert [row["sys_id"] for row in listed.json()["result"]] == list(SEED_INCIDENT_IDS[:2])

    one = http.get(f"{table}/{SEED_INCIDENT_IDS[2]}", headers=headers).json()["result"]
    assert one["number"] == "INC0010003"

    missing = http.get(f"{table}/nope", headers=headers)
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "No Record found"
    assert missing.json()["error"]["detail"]

    body = {"short_description": 'Quote " and \\ survive', "urgency": 2}
    created = http.post(table, headers=headers, json=body)
    assert created.status_code == 201
    row = created.json()["result"]
    assert row["short_description"] == body["short_description"] and row["urgency"] == "2"
    assert created.headers["Location"] == f"{table}/{row['sys_id']}"
    assert http.get(f"{table}/{row['sys_id']}", headers=headers).status_code == 200

    assert http.post(table, headers=headers, data="[not json").status_code == 400
    read_only = bearer(get_token(http, sandbox.url, scope="incident.read")["access_token"])
    denied = http.post(table, headers=read_only, json=body)
    assert denied.status_code == 403
    assert 'scope="incident.write"' in denied.headers["WWW-Authenticate"]


def test_failure_endpoints(sandbox: Sandbox, http: Any) -> None:
    headers = bearer(get_token(http, sandbox.url)["access_token"])
    forbidden = http.get(f"{sandbox.url}/api/fail/403", headers=headers)
    assert forbidden.status_code == 403
    assert forbidden.json() == {
        "error": {"code": "0x80072560", "message": "The user is not a member of the organization."}
    }
    broken = http.get(f"{sandbox.url}/api/fail/500", headers=headers)
    assert broken.status_code == 500
    assert broken.headers["Content-Type"] == "application/json"
    assert broken.json()["error"]["message"]
    busy = http.get(f"{sandbox.url}/api/fail/503", headers=headers)
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"


def test_missing_scope(sandbox: Sandbox, http: Any) -> None:
    url = f"{sandbox.url}/api/admin/users"
    response = http.get(url, headers=bearer(get_token(http, sandbox.url)["access_token"]))
    assert response.status_code == 403
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert 'error="insufficient_scope"' in challenge and 'scope="admin"' in challenge
    admin = bearer(get_token(http, sandbox.url, scope="admin")["access_token"])
    assert http.get(url, headers=admin).status_code == 200


def test_wrong_audience(sandbox: Sandbox, http: Any) -> None:
    url = f"{sandbox.url}/api/other/ping"
    response = http.get(url, headers=bearer(get_token(http, sandbox.url)["access_token"]))
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith(
        'Bearer realm="sandbox", error="invalid_token", error_description="'
    )
    assert f"'{sandbox.url}/api'" in challenge and f"'{OTHER_AUDIENCE}'" in challenge
    right = bearer(get_token(http, sandbox.url, resource=OTHER_AUDIENCE)["access_token"])
    assert http.get(url, headers=right).json()["result"] == "pong"


def test_missing_and_bad_tokens(sandbox: Sandbox, http: Any) -> None:
    url = f"{sandbox.url}/api/now/table/incident"
    missing = http.get(url)
    assert missing.status_code == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="sandbox"'
    for value in ("Bearer garbage", "Bearer " + client_assertion(sandbox)):
        bad = http.get(url, headers={"Authorization": value})
        assert bad.status_code == 401
        assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    basic_auth = http.get(url, headers=basic(BASIC_CLIENT_ID, BASIC_CLIENT_SECRET))
    assert basic_auth.headers["WWW-Authenticate"] == 'Bearer realm="sandbox"'


def test_expired_token_is_refused(http: Any) -> None:
    with Sandbox(port=0, token_ttl=1) as short:
        token = get_token(http, short.url)["access_token"]
        url = f"{short.url}/api/now/table/incident"
        deadline = time.time() + 5
        while (response := http.get(url, headers=bearer(token))).status_code == 200:
            assert time.time() < deadline
            time.sleep(0.2)
        assert response.status_code == 401
        assert response.json()["error_description"] == "The access token expired"


def test_reject_tokens_before_now(http: Any) -> None:
    with Sandbox(port=0) as fresh:
        url = f"{fresh.url}/api/now/table/incident"
        old = get_token(http, fresh.url)["access_token"]
        assert http.get(url, headers=bearer(old)).status_code == 200
        hook = http.post(f"{fresh.url}/__sandbox/reject-tokens-before-now")
        assert hook.status_code == 200
        refused = http.get(url, headers=bearer(old))
        assert refused.status_code == 401
        assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
        new = get_token(http, fresh.url)["access_token"]  # same second: still accepted
        assert http.get(url, headers=bearer(new)).status_code == 200


def test_utility_endpoints(sandbox: Sandbox, http: Any) -> None:
    binary = http.get(f"{sandbox.url}/api/binary")
    assert binary.headers["Content-Type"] == "application/octet-stream"
    assert binary.content == BINARY_PAYLOAD
    with pytest.raises(UnicodeDecodeError):
        binary.content.decode("utf-8")

    target = f"{sandbox.url}/api/echo"
    moved = http.get(f"{sandbox.url}/api/redirect", params={"to": target}, allow_redirects=False)
    assert (moved.status_code, moved.headers["Location"]) == (302, target)
    kept = http.post(
        f"{sandbox.url}/api/redirect",
        params={"to": "/api/echo", "status": "307"},
        allow_redirects=False,
    )
    assert (kept.status_code, kept.headers["Location"]) == (307, target)
    away = http.get(f"{sandbox.url}/api/redirect", params={"to": "https://example.com/"})
    assert away.status_code == 400

    echo = http.put(
        f"{sandbox.url}/api/echo/../echo?a=1&a=2&b=%2B x",
        headers={"Authorization": "Bearer secret-value", "X-Test": "yes"},
        data="hello",
    ).json()
    assert echo["method"] == "PUT"
    assert echo["query"] == {"a": ["1", "2"], "b": "+ x"}
    assert echo["headers"]["Authorization"] is True
    assert echo["headers"]["X-Test"] == "yes"
    assert echo["body"] == "hello"
    assert "secret-value" not in json.dumps(echo)


def test_chunked_request_body_is_read(sandbox: Sandbox, http: Any) -> None:
    chunks = iter([b"hel", b"lo ", b"world"])  # a generator body goes out chunked
    echo = http.post(f"{sandbox.url}/api/echo", data=chunks).json()
    assert echo["headers"]["Transfer-Encoding"] == "chunked"
    assert echo["body"] == "hello world"


def test_garbage_client_assertion_is_invalid_client(sandbox: Sandbox, http: Any) -> None:
    data = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": "not.a.jwt",
    }
    response = http.post(f"{sandbox.url}/oauth/token", data=data)
    assert (response.status_code, response.json()["error"]) == (401, "invalid_client")


def test_stats(sandbox: Sandbox, http: Any) -> None:
    before = sandbox.stats()
    get_token(http, sandbox.url)
    http.get(f"{sandbox.url}/api/binary")
    served = http.get(f"{sandbox.url}/__sandbox/stats").json()
    assert served == sandbox.stats()
    assert served["token_requests"] == before["token_requests"] + 1
    assert served["tokens_issued"] == before["tokens_issued"] + 1
    assert served["api_requests"] == before["api_requests"] + 1


def test_two_hundred_concurrent_requests(sandbox: Sandbox, http: Any) -> None:
    headers = bearer(get_token(http, sandbox.url)["access_token"])
    url = f"{sandbox.url}/api/now/table/incident/{SEED_INCIDENT_IDS[0]}"
    before = sandbox.stats()["api_requests"]

    def call(_: int) -> int:
        return requests.get(url, headers=headers, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=200) as pool:
        statuses = list(pool.map(call, range(200)))
    assert statuses == [200] * 200
    assert sandbox.stats()["api_requests"] == before + 200


# -- lifecycle ------------------------------------------------------------------


def test_lifecycle() -> None:
    with pytest.raises(ValueError):
        Sandbox(host="0.0.0.0")
    idle = Sandbox(port=0)
    idle.stop()  # never started: nothing to do
    with idle:
        assert idle.port != 0 and idle.url == f"http://127.0.0.1:{idle.port}"
        with pytest.raises(RuntimeError):
            idle.start()
    idle.stop()


def test_serve_prints_urls_logs_requests_and_stops_on_sigterm() -> None:
    code = "import sys; from oauthcli.sandbox import serve; "
    code += "sys.exit(serve('127.0.0.1', 0, 300, sys.stdout, sys.stderr))"
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline()]
        while not lines[-1].startswith("hint:"):
            lines.append(process.stdout.readline())
        url = lines[0].split()[4]
        assert lines[1].split() == ["issuer", url]
        with requests.Session() as http:
            token = get_token(http, url)["access_token"]
            http.get(f"{url}/api/now/table/incident", headers=bearer(token))
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    banner = "".join(lines) + out
    for path in ("/oauth/token", "/oauth/revoke", "/.well-known/jwks.json", "/api"):
        assert f"{url}{path}" in banner
    assert "hint:" in banner
    assert f"POST /oauth/token 200 client={BASIC_CLIENT_ID}" in err
    assert f"GET /api/now/table/incident 200 client={BASIC_CLIENT_ID}" in err
    assert BASIC_CLIENT_SECRET not in err and token not in err
