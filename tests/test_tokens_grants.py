"""What goes on the wire to the token endpoint, and how its failures read."""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote_plus

import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from oauthcli.errors import ExitCode, RegistryError, TokenError
from oauthcli.request.resolved import ResolvedProfile, ResolvedTLS
from oauthcli.secret import Secret
from oauthcli.tokens import endpoint, grants
from tests.wire import body_text

URL = "https://login.test/oauth2/token"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
Make = Callable[..., ResolvedProfile]


def _ok(rsps: responses.RequestsMock, **extra: Any) -> None:
    body = {"access_token": "at-1234567890", "token_type": "bearer", "expires_in": 300, **extra}
    rsps.post(URL, json=body)


def _form(call: Any) -> dict[str, list[str]]:
    return parse_qs(call.request.body)


def pkcs8_pem(key: Any) -> str:
    """A private key as unencrypted PKCS#8 PEM text (what a profile's private_key holds)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@responses.activate
def test_client_secret_basic_form_encodes_before_base64(token_profile: Make) -> None:
    secret = "p+a%s:s/w rd"
    _ok(responses.mock)
    grants.fetch(token_profile(client_id="my app:1", client_secret=Secret(secret)))
    request = responses.calls[0].request
    scheme, _, encoded = request.headers["Authorization"].partition(" ")
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    assert scheme == "Basic"
    assert user == "my+app%3A1" and password == "p%2Ba%25s%3As%2Fw+rd"
    assert unquote_plus(password) == secret
    body = body_text(request)
    assert "client_secret" not in body and "p%2Ba" not in body
    assert _form(responses.calls[0]) == {
        "grant_type": ["client_credentials"],
        "scope": ["api.read api.write"],
    }


@responses.activate
def test_client_secret_post_sends_credentials_in_the_body(token_profile: Make) -> None:
    _ok(responses.mock)
    grants.fetch(token_profile(client_auth="client_secret_post"))
    request = responses.calls[0].request
    assert "Authorization" not in request.headers
    form = _form(responses.calls[0])
    assert form["client_id"] == ["app"] and form["client_secret"] == ["s3cr3t-value"]


@responses.activate
def test_none_sends_only_the_client_id(token_profile: Make) -> None:
    _ok(responses.mock)
    grants.fetch(token_profile(client_auth="none", client_secret=None))
    form = _form(responses.calls[0])
    assert form["client_id"] == ["app"] and "client_secret" not in form
    assert "Authorization" not in responses.calls[0].request.headers


@responses.activate
def test_resource_repeated_audience_and_extra_params(token_profile: Make) -> None:
    _ok(responses.mock)
    profile = token_profile(
        resource=("https://api.one.test", "https://api.two.test"),
        audience="https://api.test",
        extra_params={"tenant": "blue"},
        scope=("a",),
    )
    grants.fetch(profile)
    pairs = parse_qsl(body_text(responses.calls[0].request))
    assert [v for k, v in pairs if k == "resource"] == [
        "https://api.one.test",
        "https://api.two.test",
    ]
    form = dict(pairs)
    assert form["audience"] == "https://api.test" and form["tenant"] == "blue"
    assert form["scope"] == "a"


@responses.activate
def test_password_grant_fields(token_profile: Make) -> None:
    _ok(responses.mock)
    grants.fetch(token_profile(grant_type="password", username="ann", password=Secret("pw-9876")))
    form = _form(responses.calls[0])
    assert form["grant_type"] == ["password"]
    assert form["username"] == ["ann"] and form["password"] == ["pw-9876"]


@responses.activate
def test_jwt_bearer_grant_fields(token_profile: Make) -> None:
    _ok(responses.mock)
    grants.fetch(token_profile(grant_type="jwt_bearer", assertion=Secret("eyJ.assert.ion")))
    form = _form(responses.calls[0])
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    assert form["assertion"] == ["eyJ.assert.ion"]


@responses.activate
def test_refresh_grant_fields(token_profile: Make) -> None:
    _ok(responses.mock)
    grants.refresh(token_profile(), Secret("rt-abcdef"))
    form = _form(responses.calls[0])
    assert form["grant_type"] == ["refresh_token"] and form["refresh_token"] == ["rt-abcdef"]


@responses.activate
def test_refresh_sends_audience_resources_and_extra_params(token_profile: Make) -> None:
    _ok(responses.mock)
    profile = token_profile(
        audience="https://api.example.test",
        resource=("https://a.example.test", "https://b.example.test"),
        extra_params={"tenant": "blue"},
    )
    grants.refresh(profile, Secret("rt-abcdef"))
    form = _form(responses.calls[0])
    assert form["refresh_token"] == ["rt-abcdef"] and form["audience"] == [
        "https://api.example.test"
    ]
    assert form["resource"] == ["https://a.example.test", "https://b.example.test"]
    assert form["tenant"] == ["blue"]


def _assertion(call: Any) -> str:
    form = _form(call)
    assert form["client_assertion_type"] == [ASSERTION_TYPE]
    assert "client_secret" not in form and "Authorization" not in call.request.headers
    return form["client_assertion"][0]


@responses.activate
def test_private_key_jwt_rsa_assertion_verifies_with_fresh_jti(
    token_profile: Make, rsa_key: rsa.RSAPrivateKey
) -> None:
    _ok(responses.mock)
    _ok(responses.mock)
    profile = token_profile(
        client_auth="private_key_jwt",
        client_secret=None,
        private_key=Secret(pkcs8_pem(rsa_key)),
        key_id="acme-2026",
    )
    grants.fetch(profile)
    grants.fetch(profile)
    public = RSAKey.import_key(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    jtis = []
    for call in responses.calls:
        token = jwt.decode(_assertion(call), public, algorithms=["RS256"])
        assert token.header["alg"] == "RS256" and token.header["kid"] == "acme-2026"
        claims = token.claims
        assert claims["iss"] == claims["sub"] == "app"
        assert claims["aud"] == URL
        assert 0 < claims["exp"] - claims["iat"] <= 60
        jtis.append(claims["jti"])
    assert len(set(jtis)) == 2


@responses.activate
def test_private_key_jwt_ec_key_defaults_to_es256(
    token_profile: Make, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    _ok(responses.mock)
    grants.fetch(
        token_profile(
            client_auth="private_key_jwt", client_secret=None, private_key=Secret(pkcs8_pem(ec_key))
        )
    )
    public = ECKey.import_key(
        ec_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    token = jwt.decode(_assertion(responses.calls[0]), public, algorithms=["ES256"])
    assert token.header["alg"] == "ES256" and "kid" not in token.header


@responses.activate
def test_private_key_jwt_ps256(token_profile: Make, rsa_key: rsa.RSAPrivateKey) -> None:
    _ok(responses.mock)
    profile = token_profile(
        client_auth="private_key_jwt",
        private_key=Secret(pkcs8_pem(rsa_key)),
        signing_alg="PS256",
    )
    grants.fetch(profile)
    public = RSAKey.import_key(
        rsa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    assert jwt.decode(_assertion(responses.calls[0]), public, algorithms=["PS256"])


@responses.activate
def test_client_secret_jwt_hs256(token_profile: Make) -> None:
    _ok(responses.mock)
    secret = "a-long-enough-shared-secret-value"
    grants.fetch(token_profile(client_auth="client_secret_jwt", client_secret=Secret(secret)))
    assertion = _assertion(responses.calls[0])
    assert secret not in body_text(responses.calls[0].request)
    token = jwt.decode(assertion, OctKey.import_key(secret), algorithms=["HS256"])
    assert token.header["alg"] == "HS256" and token.claims["aud"] == URL


@pytest.mark.parametrize(
    ("pem", "expected"),
    [
        ("~/.keys/acme.pem", "is not PEM text"),
        ("-----BEGIN PRIVATE KEY-----\nbm9wZQ==\n-----END PRIVATE KEY-----\n", "cannot be parsed"),
        ("-----BEGIN PUBLIC KEY-----\nbm9wZQ==\n-----END PUBLIC KEY-----\n", "not a private key"),
    ],
)
def test_bad_private_key_is_a_registry_error_naming_the_file(
    token_profile: Make, pem: str, expected: str
) -> None:
    profile = token_profile(client_auth="private_key_jwt", private_key=Secret(pem))
    with pytest.raises(RegistryError) as caught:
        grants.fetch(profile)
    assert caught.value.exit_code == ExitCode.REGISTRY
    assert "acme.yaml" in str(caught.value) and expected in str(caught.value)
    assert "bm9wZQ" not in str(caught.value)


def test_signing_alg_must_fit_the_key(token_profile: Make, rsa_key: rsa.RSAPrivateKey) -> None:
    profile = token_profile(
        client_auth="private_key_jwt", private_key=Secret(pkcs8_pem(rsa_key)), signing_alg="ES256"
    )
    with pytest.raises(RegistryError, match="ES256 needs an EC private_key"):
        grants.fetch(profile)


@responses.activate
def test_oauth_error_is_shown_with_description(token_profile: Make) -> None:
    responses.post(
        URL,
        status=401,
        json={"error": "invalid_client", "error_description": "Client authentication failed"},
    )
    with pytest.raises(grants.GrantError) as caught:
        grants.fetch(token_profile())
    text = str(caught.value)
    assert caught.value.exit_code == ExitCode.TOKEN and not caught.value.transient
    assert "invalid_client: Client authentication failed" in text
    assert "HTTP 401" in text and "check client_id" in text
    assert "\n" not in text


@responses.activate
def test_html_answer_is_summarised(token_profile: Make) -> None:
    page = "<html><head><title>502 Bad Gateway</title></head>\n<body>" + "x" * 500
    responses.post(URL, status=502, body=page, content_type="text/html")
    with pytest.raises(grants.GrantError) as caught:
        grants.fetch(token_profile())
    text = str(caught.value)
    assert "HTTP 502 (text/html), not a JSON object: <html><head><title>502" in text
    assert len(text) < 400 and caught.value.transient


@responses.activate
def test_json_without_access_token(token_profile: Make) -> None:
    responses.post(URL, json={"token_type": "bearer", "expires_in": 60})
    with pytest.raises(TokenError, match=r"JSON without an access_token \(keys: expires_in"):
        grants.fetch(token_profile())


@responses.activate
@pytest.mark.parametrize("error", [None, 0, {"code": 1}])
def test_an_error_member_beside_a_token_is_a_clear_refusal(token_profile: Make, error: Any) -> None:
    _ok(responses.mock, error=error, error_description="caf\u00e9")
    with pytest.raises(grants.GrantError, match=f"access_token together with error={error!r}"):
        grants.fetch(token_profile())


@responses.activate
def test_redirect_is_never_followed(token_profile: Make) -> None:
    responses.post(URL, status=302, headers={"Location": "https://evil.test/steal"})
    responses.post("https://evil.test/steal", json={"access_token": "x" * 20})
    with pytest.raises(TokenError, match="HTTP 302 redirect to https://evil.test/steal"):
        grants.fetch(token_profile())
    assert len(responses.calls) == 1


@responses.activate
def test_temporarily_unavailable_is_transient(token_profile: Make) -> None:
    responses.post(URL, status=400, json={"error": "temporarily_unavailable"})
    with pytest.raises(grants.GrantError) as caught:
        grants.fetch(token_profile())
    assert caught.value.transient and caught.value.error == "temporarily_unavailable"


@responses.activate
def test_timeout_names_the_url(token_profile: Make) -> None:
    responses.post(URL, body=requests.Timeout("read timed out"))
    with pytest.raises(grants.GrantError, match=f"no answer from {URL} within 5 s") as caught:
        grants.fetch(token_profile())
    assert caught.value.transient


def test_refused_connection_names_the_url(token_profile: Make) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/token"
    with pytest.raises(grants.GrantError, match=f"cannot connect to {url}: Connection refused"):
        grants.fetch(token_profile(token_url=url))


@responses.activate
def test_tls_options_reach_requests(token_profile: Make, tmp_path: Any) -> None:
    _ok(responses.mock)
    tls = ResolvedTLS(verify=True, ca_bundle="/ca.pem", client_cert="/c.pem", client_key="/k.pem")
    s = endpoint.session(token_profile(tls=tls), "test")
    assert s.verify == "/ca.pem" and s.cert == ("/c.pem", "/k.pem")
    assert endpoint.session(token_profile(tls=ResolvedTLS(verify=False)), "test").verify is False


@responses.activate
def test_revoke_sends_token_and_hint_with_client_auth(token_profile: Make) -> None:
    responses.post("https://login.test/oauth2/revoke", body="")
    profile = token_profile(revocation_url="https://login.test/oauth2/revoke")
    grants.revoke(profile, Secret("rt-to-revoke"), "refresh_token")
    call = responses.calls[0]
    assert _form(call) == {"token": ["rt-to-revoke"], "token_type_hint": ["refresh_token"]}
    assert call.request.headers["Authorization"].startswith("Basic ")


@responses.activate
def test_revoke_refusal_is_a_token_error(token_profile: Make) -> None:
    responses.post(
        "https://login.test/oauth2/revoke", status=400, json={"error": "unsupported_token_type"}
    )
    profile = token_profile(revocation_url="https://login.test/oauth2/revoke")
    with pytest.raises(TokenError, match="unsupported_token_type"):
        grants.revoke(profile, Secret("at-xyz-123"), "access_token")


@responses.activate
def test_a_short_rsa_key_is_the_servers_business(token_profile: Make) -> None:
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    _ok(responses.mock)
    grants.fetch(token_profile(client_auth="private_key_jwt", private_key=Secret(pkcs8_pem(short))))
    assert _assertion(responses.calls[0]).count(".") == 2


def test_a_missing_client_certificate_is_a_registry_error(token_profile: Make) -> None:
    tls = ResolvedTLS(client_cert="/nonexistent/client.pem", client_key="/nonexistent/k.pem")
    with pytest.raises(RegistryError, match="acme.yaml: tls: Could not find the TLS"):
        grants.fetch(token_profile(tls=tls, token_url="https://127.0.0.1:9/token"))
