"""Proves the e2e components of issue 13 with plain requests/joserfc (no oauthcli): the device
flow, DPoP with server nonces at the provider and at the DPoP-verifying API, token exchange,
refresh token rotation, the CI issuer's assertion for private_key_jwt, the fake GitHub Actions
endpoint and the headless browser through authorization_code + PKCE (opened by Python's
webbrowser with BROWSER set to the wrapper)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlencode, urlsplit

import pytest
import requests
from joserfc import jws
from joserfc.jwk import ECKey

from .servers import (
    Browser,
    Client,
    DpopServer,
    FakeCi,
    OidcProvider,
    ResourceServer,
    open_with_webbrowser,
)

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("fresh_stats")]

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


# --------------------------------------------------------------------------------------------
# helpers


def basic(client: Client) -> dict[str, str]:
    assert client.client_secret is not None
    pair = f"{quote_plus(client.client_id)}:{quote_plus(client.client_secret)}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


#: Every token, code, assertion and secret these tests handled: no log may hold one.
SECRETS: set[str] = set()


def claims_of(token: str) -> dict[str, Any]:
    SECRETS.add(token)
    return dict(json.loads(jws.extract_compact(token.encode()).payload))


def remember(*values: str | None) -> None:
    SECRETS.update(v for v in values if v)


def b64url_sha256(value: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(value.encode()).digest()).rstrip(b"=").decode()


def dpop_proof(
    key: ECKey,
    htm: str,
    htu: str,
    *,
    nonce: str | None = None,
    token: str | None = None,
    iat: float | None = None,
    jti: str | None = None,
    typ: str = "dpop+jwt",
    ath: str | None = None,
) -> str:
    claims: dict[str, Any] = {
        "htm": htm,
        "htu": htu,
        "iat": int(time.time() if iat is None else iat),
        "jti": jti or uuid.uuid4().hex,
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if token is not None:
        claims["ath"] = ath or b64url_sha256(token)
    header = {"alg": "ES256", "typ": typ, "jwk": key.as_dict(private=False)}
    return jws.serialize_compact(header, json.dumps(claims).encode(), key)


def client_credentials(
    http: requests.Session, op: OidcProvider, client: Client, **data: str
) -> requests.Response:
    form = {"grant_type": "client_credentials", "scope": "api.read api.write", **data}
    return http.post(op.token_url, data=form, headers=basic(client), timeout=10)


def dpop_token(http: requests.Session, op: OidcProvider, key: ECKey) -> dict[str, Any]:
    """A DPoP-bound token for cli-dpop (answering the provider's nonce challenge)."""
    nonce = None
    for _ in range(2):
        headers = {**basic(op.dpop), "DPoP": dpop_proof(key, "POST", op.token_url, nonce=nonce)}
        form = {"grant_type": "client_credentials", "scope": "api.read api.write"}
        resp = http.post(op.token_url, data=form, headers=headers, timeout=10)
        if resp.status_code == 400 and resp.json().get("error") == "use_dpop_nonce":
            nonce = resp.headers["DPoP-Nonce"]
            continue
        assert resp.status_code == 200, resp.text
        remember(resp.json()["access_token"])
        return dict(resp.json())
    raise AssertionError("the provider challenged twice")


def poll_device(
    http: requests.Session, op: OidcProvider, device_code: str, interval: float, limit: float
) -> requests.Response:
    """Poll as RFC 8628 says (interval, +5 s on slow_down) until not pending, bounded."""
    deadline = time.monotonic() + limit
    while True:
        time.sleep(interval)
        resp = http.post(
            op.token_url,
            data={"grant_type": DEVICE_CODE, "device_code": device_code, "client_id": "cli-device"},
            timeout=10,
        )
        error = resp.json().get("error") if resp.status_code == 400 else None
        if error == "slow_down":
            interval += 5
        elif error != "authorization_pending":
            return resp
        if time.monotonic() > deadline:
            raise AssertionError(f"device flow still pending after {limit} s")


class Callback:
    """A one-shot loopback redirect target like oauthcli's: http://127.0.0.1:PORT/callback."""

    def __init__(self) -> None:
        self.query: dict[str, str] | None = None
        self.got = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                url = urlsplit(self.path)
                if url.path != "/callback":
                    self.send_error(404)
                    return
                outer.query = {k: v[-1] for k, v in parse_qs(url.query).items()}
                body = b"signed in, you can close this window"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                outer.got.set()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.redirect_uri = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,))

    def __enter__(self) -> Callback:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def wait(self, timeout: float) -> dict[str, str]:
        assert self.got.wait(timeout), f"no redirect reached {self.redirect_uri} in {timeout} s"
        assert self.query is not None
        return self.query


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, b64url_sha256(verifier)


# --------------------------------------------------------------------------------------------
# discovery


def test_discovery_announces_every_endpoint(
    http: requests.Session, oidc_provider: OidcProvider
) -> None:
    meta = http.get(oidc_provider.discovery_url, timeout=5).json()
    assert meta["authorization_endpoint"] == oidc_provider.authorization_url
    assert meta["device_authorization_endpoint"] == oidc_provider.device_authorization_url
    assert set(meta["grant_types_supported"]) >= {
        "authorization_code",
        "refresh_token",
        "client_credentials",
        DEVICE_CODE,
        TOKEN_EXCHANGE,
    }
    assert "ES256" in meta["dpop_signing_alg_values_supported"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "none" in meta["token_endpoint_auth_methods_supported"]

    # RFC 8414's path serves the same document, unless switched off (OpenID discovery only).
    assert http.get(oidc_provider.oauth_metadata_url, timeout=5).json() == meta
    oidc_provider.configure(oauth_metadata=False)
    assert http.get(oidc_provider.oauth_metadata_url, timeout=5).status_code == 404
    assert http.get(oidc_provider.discovery_url, timeout=5).json() == meta


# --------------------------------------------------------------------------------------------
# device flow


def test_device_authorization_gives_a_user_code_then_pending_then_slow_down(
    http: requests.Session, oidc_provider: OidcProvider
) -> None:
    resp = http.post(
        oidc_provider.device_authorization_url,
        data={"client_id": "cli-device", "scope": "openid offline_access api.read"},
        timeout=5,
    )
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["user_code"] and answer["device_code"]
    assert answer["verification_uri"] == f"{oidc_provider.issuer}/device"
    assert answer["verification_uri_complete"].startswith(answer["verification_uri"] + "?")
    assert answer["interval"] == 1 and 0 < answer["expires_in"] <= 600

    poll = {
        "grant_type": DEVICE_CODE,
        "device_code": answer["device_code"],
        "client_id": "cli-device",
    }
    pending = http.post(oidc_provider.token_url, data=poll, timeout=5)
    too_soon = http.post(oidc_provider.token_url, data=poll, timeout=5)

    assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
    assert too_soon.status_code == 400 and too_soon.json()["error"] == "slow_down"
    assert [g["error"] for g in oidc_provider.served(DEVICE_CODE, "cli-device")][-2:] == [
        "authorization_pending",
        "slow_down",
    ]


def test_device_code_expires(http: requests.Session, oidc_provider: OidcProvider) -> None:
    oidc_provider.configure(device_code_ttl=1)
    answer = http.post(
        oidc_provider.device_authorization_url, data={"client_id": "cli-device"}, timeout=5
    ).json()
    assert answer["expires_in"] == 1
    resp = poll_device(http, oidc_provider, answer["device_code"], 1.1, limit=5)
    assert resp.status_code == 400 and resp.json()["error"] == "expired_token"


def test_browser_completes_the_device_flow_and_refresh_tokens_rotate(
    http: requests.Session, oidc_provider: OidcProvider, browser: Browser
) -> None:
    answer = http.post(
        oidc_provider.device_authorization_url,
        data={"client_id": "cli-device", "scope": "openid offline_access api.read"},
        timeout=5,
    ).json()
    open_with_webbrowser(answer["verification_uri_complete"], browser.env())

    resp = poll_device(http, oidc_provider, answer["device_code"], answer["interval"], limit=30)

    assert resp.status_code == 200, resp.text
    tokens = resp.json()
    assert browser.wait_done()[0]["outcome"] == "device_success"
    claims = claims_of(tokens["access_token"])
    assert claims["sub"] == OidcProvider.USER and claims["aud"] == oidc_provider.resource
    assert claims["scope"] == "api.read" and tokens["refresh_token"]
    remember(tokens["refresh_token"], answer["device_code"])

    # refresh_token with rotation: a new refresh token each time, the old one is dead
    refresh = {"grant_type": "refresh_token", "client_id": "cli-device"}
    first = tokens["refresh_token"]
    rotated = http.post(
        oidc_provider.token_url, data={**refresh, "refresh_token": first}, timeout=5
    )
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["refresh_token"]
    remember(second, rotated.json()["access_token"])
    assert second != first
    again = http.post(oidc_provider.token_url, data={**refresh, "refresh_token": first}, timeout=5)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    # reusing a rotated refresh token revokes the grant (RFC 9700 4.14.2): second dies too
    after = http.post(oidc_provider.token_url, data={**refresh, "refresh_token": second}, timeout=5)
    assert after.status_code == 400 and after.json()["error"] == "invalid_grant"
    assert [g["status"] for g in oidc_provider.served("refresh_token", "cli-device")] == [
        "200",
        "400",
        "400",
    ]
    assert oidc_provider.served(DEVICE_CODE, "cli-device")[-1]["status"] == "200"


def test_browser_denies_the_device(
    http: requests.Session, oidc_provider: OidcProvider, browser: Browser
) -> None:
    answer = http.post(
        oidc_provider.device_authorization_url, data={"client_id": "cli-device"}, timeout=5
    ).json()
    open_with_webbrowser(answer["verification_uri_complete"], browser.env(mode="deny"))
    resp = poll_device(http, oidc_provider, answer["device_code"], answer["interval"], limit=30)
    assert resp.status_code == 400 and resp.json()["error"] == "access_denied"
    assert browser.wait_done()[0]["outcome"] == "device_denied"


# --------------------------------------------------------------------------------------------
# DPoP at the provider


def test_dpop_token_request_needs_the_servers_nonce(
    http: requests.Session, oidc_provider: OidcProvider, dpop_server: DpopServer
) -> None:
    key = ECKey.generate_key("P-256")
    form = {"grant_type": "client_credentials", "scope": "api.read"}
    headers = basic(oidc_provider.dpop)

    without = http.post(
        oidc_provider.token_url,
        data=form,
        headers={**headers, "DPoP": dpop_proof(key, "POST", oidc_provider.token_url)},
        timeout=5,
    )
    assert without.status_code == 400 and without.json()["error"] == "use_dpop_nonce"
    nonce = without.headers["DPoP-Nonce"]
    proof = dpop_proof(key, "POST", oidc_provider.token_url, nonce=nonce)
    bound = http.post(
        oidc_provider.token_url, data=form, headers={**headers, "DPoP": proof}, timeout=5
    )

    assert bound.status_code == 200, bound.text
    assert bound.json()["token_type"] == "DPoP"
    claims = claims_of(bound.json()["access_token"])
    assert claims["cnf"] == {"jkt": key.thumbprint()}
    assert claims["aud"] == dpop_server.api_base_url and claims["scope"] == "api.read"
    # cli-dpop is registered with dpop_bound_access_tokens: no proof, no token
    plain = http.post(oidc_provider.token_url, data=form, headers=headers, timeout=5)
    assert plain.status_code == 400, plain.text
    log = oidc_provider.served("client_credentials", "cli-dpop")
    assert [(g["error"], g["token_type"], g["dpop_proof"]) for g in log][-3:] == [
        ("use_dpop_nonce", "-", "yes"),
        ("-", "DPoP", "yes"),
        ("invalid_grant", "-", "no"),
    ]


def test_a_provider_that_ignores_dpop_issues_bearer(
    http: requests.Session, oidc_provider: OidcProvider
) -> None:
    oidc_provider.configure(ignore_dpop=True)
    key = ECKey.generate_key("P-256")
    proof = dpop_proof(key, "POST", oidc_provider.token_url)
    resp = http.post(
        oidc_provider.token_url,
        data={"grant_type": "client_credentials", "scope": "api.read"},
        headers={**basic(oidc_provider.basic), "DPoP": proof},
        timeout=5,
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["token_type"] == "Bearer"
    assert "cnf" not in claims_of(resp.json()["access_token"])


# --------------------------------------------------------------------------------------------
# the DPoP-verifying API


def test_dpop_api_accepts_a_correct_proof_and_refuses_each_wrong_one(
    http: requests.Session, oidc_provider: OidcProvider, dpop_server: DpopServer
) -> None:
    key = ECKey.generate_key("P-256")
    token = dpop_token(http, oidc_provider, key)["access_token"]
    url = dpop_server.incidents_url

    def call(
        proof: str, method: str = "GET", scheme: str = "DPoP", target: str = url
    ) -> requests.Response:
        headers = {"Authorization": f"{scheme} {token}", "DPoP": proof}
        return http.request(
            method, target, headers=headers, json={} if method == "POST" else None, timeout=5
        )

    first = call(dpop_proof(key, "GET", url, token=token))
    assert first.status_code == 401
    assert 'error="use_dpop_nonce"' in first.headers["WWW-Authenticate"]
    nonce = first.headers["DPoP-Nonce"]
    good = dpop_proof(key, "GET", url, token=token, nonce=nonce)
    ok = call(good)
    assert ok.status_code == 200, ok.headers.get("WWW-Authenticate")
    assert isinstance(ok.json(), list)

    other_key = ECKey.generate_key("P-256")
    wrong = {
        "htm": call(dpop_proof(key, "POST", url, token=token, nonce=nonce)),
        "htu": call(dpop_proof(key, "GET", url + "?page=2", token=token, nonce=nonce)),
        "htu_path": call(dpop_proof(key, "GET", dpop_server.me_url, token=token, nonce=nonce)),
        "iat": call(dpop_proof(key, "GET", url, token=token, nonce=nonce, iat=time.time() - 300)),
        "replay": call(good),
        "ath": call(dpop_proof(key, "GET", url, token=token, nonce=nonce, ath=b64url_sha256("x"))),
        "jkt": call(dpop_proof(other_key, "GET", url, token=token, nonce=nonce)),
        "typ": call(dpop_proof(key, "GET", url, token=token, nonce=nonce, typ="JWT")),
        "scheme": call(dpop_proof(key, "GET", url, token=token, nonce=nonce), scheme="Bearer"),
        "use_dpop_nonce": call(dpop_proof(key, "GET", url, token=token, nonce="stale")),
    }
    for reason, resp in wrong.items():
        assert resp.status_code == 401, (reason, resp.status_code)
        assert resp.headers["WWW-Authenticate"].startswith("DPoP "), reason
    assert wrong["use_dpop_nonce"].headers["DPoP-Nonce"] == nonce  # the same nonce, again

    # a request with a query: the proof's htu leaves it out
    with_query = dpop_proof(key, "GET", url, token=token, nonce=nonce)
    assert call(with_query, target=url + "?page=2").status_code == 200
    # POST with scope api.write
    created = call(dpop_proof(key, "POST", url, token=token, nonce=nonce), method="POST")
    assert created.status_code == 201

    stats = dpop_server.stats()
    assert stats["by_reason"] == {
        "use_dpop_nonce": 2,
        "htm": 1,
        "htu": 2,
        "iat": 1,
        "replay": 1,
        "ath": 1,
        "jkt": 1,
        "typ": 1,
        "scheme": 1,
    }
    assert stats["accepted"] == 3 and stats["challenged"] == 2
    accepted = [r for r in stats["requests"] if r["status"] < 400]
    assert all(r["jkt"] == r["cnf_jkt"] == key.thumbprint() for r in accepted)
    assert all(r["proof"]["ath"] and r["proof"]["nonce"] for r in accepted)
    assert token not in json.dumps(stats)


def test_dpop_api_nonce_rotation_and_loop(
    http: requests.Session, oidc_provider: OidcProvider, dpop_server: DpopServer
) -> None:
    key = ECKey.generate_key("P-256")
    token = dpop_token(http, oidc_provider, key)["access_token"]
    url = dpop_server.me_url

    def call(nonce: str | None) -> requests.Response:
        proof = dpop_proof(key, "GET", url, token=token, nonce=nonce)
        return http.get(url, headers={"Authorization": f"DPoP {token}", "DPoP": proof}, timeout=5)

    nonce = call(None).headers["DPoP-Nonce"]
    me = call(nonce)
    assert me.status_code == 200 and me.json()["claims"]["cnf"]["jkt"] == key.thumbprint()
    dpop_server.rotate_nonce()
    rotated = call(nonce)
    assert rotated.status_code == 401 and rotated.headers["DPoP-Nonce"] != nonce
    assert call(rotated.headers["DPoP-Nonce"]).status_code == 200

    dpop_server.configure(nonce_loop=True)
    looped = call(rotated.headers["DPoP-Nonce"])
    assert looped.status_code == 401 and call(looped.headers["DPoP-Nonce"]).status_code == 401


# --------------------------------------------------------------------------------------------
# token exchange


def test_token_exchange_exchanges_an_issued_token(
    http: requests.Session, oidc_provider: OidcProvider, resource_server: ResourceServer
) -> None:
    subject = client_credentials(http, oidc_provider, oidc_provider.basic).json()["access_token"]
    remember(subject)
    form = {
        "grant_type": TOKEN_EXCHANGE,
        "subject_token": subject,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "audience": resource_server.api_base_url,
        "scope": "api.read",
    }
    resp = http.post(
        oidc_provider.token_url, data=form, headers=basic(oidc_provider.exchange), timeout=5
    )

    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["issued_token_type"] == ACCESS_TOKEN_TYPE and body["token_type"] == "Bearer"
    claims = claims_of(body["access_token"])
    assert claims["sub"] == "cli-basic" and claims["client_id"] == "cli-exchange"
    assert claims["aud"] == resource_server.api_base_url and claims["scope"] == "api.read"
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    assert http.get(resource_server.incidents_url, headers=bearer, timeout=5).status_code == 200
    assert (
        http.post(resource_server.incidents_url, json={}, headers=bearer, timeout=5).status_code
        == 403
    )

    # with an actor token: the act claim names it
    actor_token = body["access_token"]
    acted = http.post(
        oidc_provider.token_url,
        data={**form, "actor_token": actor_token, "actor_token_type": ACCESS_TOKEN_TYPE},
        headers=basic(oidc_provider.exchange),
        timeout=5,
    )
    assert acted.status_code == 200, acted.text
    assert claims_of(acted.json()["access_token"])["act"] == {"sub": "cli-basic"}

    head, payload, sig = subject.split(".")
    forged = http.post(
        oidc_provider.token_url,
        data={**form, "subject_token": f"{head}.{payload}.{sig[:-4]}AAAA"},
        headers=basic(oidc_provider.exchange),
        timeout=5,
    )
    assert forged.status_code == 400 and forged.json()["error"] == "invalid_grant"
    unknown = http.post(
        oidc_provider.token_url,
        data={**form, "audience": "http://127.0.0.1:9/elsewhere"},
        headers=basic(oidc_provider.exchange),
        timeout=5,
    )
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_target"
    log = oidc_provider.served(TOKEN_EXCHANGE, "cli-exchange")
    assert [g["status"] for g in log] == ["200", "200", "400", "400"]
    assert log[0]["audience"] == resource_server.api_base_url and log[1]["actor"] == "yes"


# --------------------------------------------------------------------------------------------
# workload identity: the CI issuer and the fake GitHub Actions endpoint


def test_github_actions_endpoint_and_ci_assertion_authenticate_cli_ci(
    http: requests.Session, oidc_provider: OidcProvider, fake_ci: FakeCi
) -> None:
    env = fake_ci.actions_env()
    remember(env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"])
    url = f"{env['ACTIONS_ID_TOKEN_REQUEST_URL']}&audience={quote_plus(oidc_provider.token_url)}"
    answer = http.get(
        url, headers={"Authorization": f"bearer {env['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"}, timeout=5
    )
    assert answer.status_code == 200, answer.text
    assertion = answer.json()["value"]
    claims = claims_of(assertion)
    assert claims["iss"] == claims["sub"] == "cli-ci" and claims["aud"] == oidc_provider.token_url

    form = {
        "grant_type": "client_credentials",
        "scope": "api.read",
        "client_assertion_type": JWT_BEARER,
        "client_assertion": assertion,
    }
    token = http.post(oidc_provider.token_url, data=form, timeout=5)
    assert token.status_code == 200, token.text
    assert claims_of(token.json()["access_token"])["client_id"] == "cli-ci"
    # an assertion made without HTTP (a projected token file's content) works the same
    local = {**form, "client_assertion": fake_ci.issue(oidc_provider.token_url)}
    assert http.post(oidc_provider.token_url, data=local, timeout=5).status_code == 200
    # another audience is refused by the provider
    elsewhere = {**form, "client_assertion": fake_ci.issue("api://AzureADTokenExchange")}
    refused = http.post(oidc_provider.token_url, data=elsewhere, timeout=5)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"

    wrong = http.get(url, headers={"Authorization": "bearer not-the-token"}, timeout=5)
    assert wrong.status_code == 401 and "value" not in wrong.json()
    fake_ci.fail_next(1, status=200, body={})
    empty = http.get(
        url, headers={"Authorization": f"Bearer {env['ACTIONS_ID_TOKEN_REQUEST_TOKEN']}"}, timeout=5
    )
    assert empty.status_code == 200 and empty.json() == {}
    stats = fake_ci.stats()
    assert [(r["audience"], r["authorized"], r["status"]) for r in stats["requests"]] == [
        (oidc_provider.token_url, True, 200),
        (oidc_provider.token_url, False, 401),
        (oidc_provider.token_url, True, 200),
    ]
    assert [g["auth"] for g in oidc_provider.served("client_credentials", "cli-ci")] == [
        "private_key_jwt"
    ] * 3
    assert env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] not in fake_ci.log_path.read_text()


# --------------------------------------------------------------------------------------------
# the browser: authorization_code + PKCE


def authorize_url(
    op: OidcProvider, client_id: str, redirect_uri: str, challenge: str, state: str
) -> str:
    query = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": "openid offline_access api.read",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": state,
        "prompt": "consent",
    }
    return f"{op.authorization_url}?{urlencode(query)}"


@pytest.mark.parametrize("which", ["authcode", "authcode_secret"])
def test_browser_completes_authorization_code_with_pkce(
    which: str, http: requests.Session, oidc_provider: OidcProvider, browser: Browser
) -> None:
    client: Client = getattr(oidc_provider, which)
    verifier, challenge = pkce()
    state = secrets.token_urlsafe(16)
    with Callback() as callback:
        url = authorize_url(
            oidc_provider, client.client_id, callback.redirect_uri, challenge, state
        )
        started = time.monotonic()
        open_with_webbrowser(url, browser.env())
        answer = callback.wait(30)
    assert answer["state"] == state and answer["iss"] == oidc_provider.issuer
    remember(answer["code"], verifier, client.client_secret)
    form = {
        "grant_type": "authorization_code",
        "code": answer["code"],
        "redirect_uri": callback.redirect_uri,
        "code_verifier": verifier,
    }
    if client.auth_method == "none":
        resp = http.post(
            oidc_provider.token_url, data={**form, "client_id": client.client_id}, timeout=5
        )
    else:
        resp = http.post(oidc_provider.token_url, data=form, headers=basic(client), timeout=5)
    assert resp.status_code == 200, resp.text
    tokens = resp.json()
    claims = claims_of(tokens["access_token"])
    assert claims["sub"] == OidcProvider.USER and claims["aud"] == oidc_provider.resource
    assert tokens["refresh_token"] and tokens["id_token"]
    remember(tokens["refresh_token"], tokens["id_token"])
    result = browser.wait_done()[0]
    assert result["outcome"] == "callback" and result["code"] and result["state"]
    assert answer["code"] not in browser.log_path.read_text()
    assert time.monotonic() - started < 20
    # the code is single-use, and the verifier is checked
    replay = http.post(
        oidc_provider.token_url,
        data={**form, "client_id": client.client_id},
        headers=basic(client) if client.client_secret else {},
        timeout=5,
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    history = oidc_provider.stats()["authorization_history"]
    assert history[0]["code_challenge_method"] == "S256" and history[0]["code_challenge"]
    assert oidc_provider.served("authorization_code", client.client_id)[0]["status"] == "200"


def test_browser_denied_consent_redirects_access_denied(
    oidc_provider: OidcProvider, browser: Browser
) -> None:
    _, challenge = pkce()
    with Callback() as callback:
        url = authorize_url(oidc_provider, "cli-authcode", callback.redirect_uri, challenge, "s1")
        open_with_webbrowser(url, browser.env(mode="deny"))
        answer = callback.wait(30)
    assert answer["error"] == "access_denied" and answer["state"] == "s1" and "code" not in answer
    assert browser.wait_done()[0]["error"] == "access_denied"


def test_wrong_verifier_is_refused(
    http: requests.Session, oidc_provider: OidcProvider, browser: Browser
) -> None:
    _, challenge = pkce()
    with Callback() as callback:
        url = authorize_url(oidc_provider, "cli-authcode", callback.redirect_uri, challenge, "s2")
        open_with_webbrowser(url, browser.env())
        answer = callback.wait(30)
    resp = http.post(
        oidc_provider.token_url,
        data={
            "grant_type": "authorization_code",
            "code": answer["code"],
            "redirect_uri": callback.redirect_uri,
            "code_verifier": pkce()[0],
            "client_id": "cli-authcode",
        },
        timeout=5,
    )
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"
    browser.wait_done()


# --------------------------------------------------------------------------------------------
# the components' own output


def test_component_logs_hold_no_token_code_assertion_or_secret(
    oidc_provider: OidcProvider,
    resource_server: ResourceServer,
    dpop_server: DpopServer,
    fake_ci: FakeCi,
) -> None:
    """Runs last in this file: every log the servers wrote during the tests above (the
    browser's are checked by each browser test) is free of what those tests handled."""
    secrets_seen = {s for s in SECRETS if len(s) >= 8}
    secrets_seen.update(
        c.client_secret for c in oidc_provider.all_clients.values() if c.client_secret
    )
    secrets_seen.add(fake_ci.request_token)
    secrets_seen.add(oidc_provider.client_key.private_key_path.read_text().splitlines()[1])
    assert len(secrets_seen) > 10
    logs = {
        path.name: path.read_text(errors="replace")
        for path in (
            oidc_provider.log_path,
            resource_server.log_path,
            dpop_server.log_path,
            fake_ci.log_path,
        )
    }
    assert "grant_type=" in logs[oidc_provider.log_path.name]
    for name, text in logs.items():
        for secret in secrets_seen:
            assert secret not in text, f"{name} holds a secret ({secret[:4]}...)"
