"""The grant and client-auth tables: each entry on the wire, and the tables against the
registry's declaration.

``responses`` plays the token endpoint. Every entry of ``GRANTS`` and ``CLIENT_AUTHS``
must have a case here (the coverage tests fail otherwise), so a new grant or method
arrives with its test.
"""

from __future__ import annotations

import base64
import logging
import socket
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import responses
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey

from oauthcli.registry import declaration
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret
from oauthcli.tokens import authcode, grants, signin
from oauthcli.tokens.clientauth import CLIENT_AUTHS
from oauthcli.tokens.grants import GRANTS, Exchange, Grant
from tests.test_tokens_grants import pkcs8_pem

URL = "https://login.test/oauth2/token"
SECRET = "a-long-enough-shared-secret-value"  # joserfc warns about short HMAC keys
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
Make = Callable[..., ResolvedProfile]


def _ok(**extra: Any) -> None:
    body = {"access_token": "at-table-12345", "token_type": "bearer", "expires_in": 300, **extra}
    responses.post(URL, json=body)


def _form(n: int = 0) -> dict[str, list[str]]:
    return parse_qs(str(responses.calls[n].request.body))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the tables against the registry's declaration --------------------------------------


def test_the_grant_table_holds_exactly_the_declared_grant_types() -> None:
    assert grants.GRANT_TYPES == declaration.GRANT_TYPES
    assert {name: g.needs for name, g in GRANTS.items()} == declaration.GRANT_REQUIRES


def test_the_client_auth_table_holds_exactly_the_declared_methods() -> None:
    assert tuple(CLIENT_AUTHS) == declaration.CLIENT_AUTHS
    needs = {name: (m.needs,) if m.needs else () for name, m in CLIENT_AUTHS.items()}
    assert needs == declaration.CLIENT_AUTH_REQUIRES
    algs = {name: m.algs for name, m in CLIENT_AUTHS.items() if m.algs}
    assert algs == declaration.SIGNING_ALGS


def test_each_entry_names_itself() -> None:
    assert all(g.name == name for name, g in GRANTS.items())
    assert all(m.name == name for name, m in CLIENT_AUTHS.items())


# -- each grant through the table --------------------------------------------------------

# grant_type → (profile values, the form it must send besides grant_type and scope)
GRANT_CASES: dict[str, tuple[dict[str, Any], dict[str, list[str]]]] = {
    "client_credentials": ({}, {}),
    "password": (
        {"username": "ann", "password": Secret("pw-table-9876")},
        {"username": ["ann"], "password": ["pw-table-9876"]},
    ),
    "refresh_token": (
        {"refresh_token": Secret("rt-table-4567")},
        {"refresh_token": ["rt-table-4567"]},
    ),
    "jwt_bearer": (
        {"assertion": Secret("eyJ.table.assertion")},
        {"assertion": ["eyJ.table.assertion"]},
    ),
    "token_exchange": (
        {"subject_token": Secret("st-table-3456")},
        {
            "subject_token": ["st-table-3456"],
            "subject_token_type": ["urn:ietf:params:oauth:token-type:access_token"],
        },
    ),
}


def test_every_grant_has_a_case() -> None:
    # the interactive grants have tests of their own (test_get_token.py, test_device.py)
    assert set(GRANTS) == {*GRANT_CASES, "authorization_code", "device_code"}


@pytest.mark.parametrize("name", sorted(GRANT_CASES))
@responses.activate
def test_each_grant_sends_its_wire_grant_type_and_parameters(
    name: str, token_profile: Make
) -> None:
    values, sent = GRANT_CASES[name]
    _ok()
    got = grants.fetch(token_profile(grant_type=name, **values))
    assert got.access_token == "at-table-12345"
    form = _form()
    assert form.pop("grant_type") == [GRANTS[name].wire]
    assert form.pop("scope") == ["api.read api.write"]
    assert form == sent


@pytest.mark.parametrize("name", sorted(GRANT_CASES))
@responses.activate
def test_each_grant_sends_audience_resources_and_extra_params(
    name: str, token_profile: Make
) -> None:
    values, _ = GRANT_CASES[name]
    _ok()
    resources = ("https://api.one.test", "https://api.two.test")
    profile = token_profile(
        grant_type=name, audience="api://x", resource=resources, extra_params={"k": "v"}, **values
    )
    grants.fetch(profile)
    form = _form()
    # Every resource, not the last one Authlib's dict would keep (authlib/authlib#524).
    assert form["resource"] == list(resources)
    assert form["audience"] == ["api://x"] and form["k"] == ["v"]


@responses.activate
def test_a_refresh_uses_the_given_refresh_token_over_the_profiles(token_profile: Make) -> None:
    _ok(refresh_token="rt-next")
    profile = token_profile(grant_type="refresh_token", refresh_token=Secret("rt-profile"))
    got = grants.refresh(profile, Secret("rt-cached-1111"))
    assert _form()["refresh_token"] == ["rt-cached-1111"] and got.refresh_token == "rt-next"


@responses.activate
def test_a_failed_refresh_is_called_a_token_refresh(token_profile: Make) -> None:
    responses.post(URL, status=400, json={"error": "invalid_grant"})
    profile = token_profile(grant_type="refresh_token", refresh_token=Secret("rt-1"))
    with pytest.raises(grants.GrantError, match="^token refresh for profile 'acme' failed"):
        grants.fetch(profile)


def _authcode_profile(token_profile: Make) -> ResolvedProfile:
    return token_profile(
        grant_type="authorization_code",
        client_auth="none",
        client_secret=None,
        authorization_url="https://login.test/authorize",
        redirect_url=f"http://127.0.0.1:{_free_port()}/callback",
    )


@pytest.fixture
def browser(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A browser that signs in at once: it answers the redirect with a code and the state."""
    opened: list[str] = []

    def open_url(url: str) -> bool:
        opened.append(url)
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        # urllib, not requests: responses, playing the token endpoint, would catch it.
        answer = urlencode({"code": "code-tbl-5678", "state": query["state"]})
        with urllib.request.urlopen(f"{query['redirect_uri']}?{answer}", timeout=5) as page:
            assert page.status == 200
        return True

    monkeypatch.setattr(authcode.webbrowser, "open", open_url)
    monkeypatch.setattr(authcode, "interactive", lambda: True)
    return opened


@responses.activate
def test_authorization_code_signs_in_and_sends_the_code_with_its_verifier(
    token_profile: Make, browser: list[str]
) -> None:
    _ok()
    profile = _authcode_profile(token_profile)
    shown: list[str] = []
    with signin.shown_by(shown.append):
        grants.fetch(profile)
    assert len(browser) == 1 and len(shown) == 1 and browser[0] in shown[0]
    form = _form()
    assert form["grant_type"] == ["authorization_code"] and form["code"] == ["code-tbl-5678"]
    assert form["redirect_uri"] == [profile.redirect_url] and form["client_id"] == ["app"]
    assert len(form["code_verifier"][0]) >= 43


@responses.activate
def test_authorization_code_signs_in_once_when_the_token_request_is_retried(
    token_profile: Make, browser: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(grants, "sleep", lambda seconds: None)
    responses.post(URL, status=503, headers={"Retry-After": "0"}, body="busy")
    _ok()
    with signin.shown_by(lambda text: None):
        grants.fetch(_authcode_profile(token_profile))
    assert len(browser) == 1 and len(responses.calls) == 2
    assert _form(0)["code"] == _form(1)["code"] == ["code-tbl-5678"]


@responses.activate
def test_without_a_callback_the_sign_in_url_is_logged_not_printed(
    token_profile: Make,
    browser: list[str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    _ok()
    with caplog.at_level(logging.INFO, logger="oauthcli"):
        grants.fetch(_authcode_profile(token_profile))
    assert capsys.readouterr() == ("", "")
    assert any(browser[0] in record.getMessage() for record in caplog.records)


def test_the_callback_is_restored_after_its_block() -> None:
    before = signin.current()
    with signin.shown_by(print):
        assert signin.current() is print
    assert signin.current() is before


# -- each client auth method through the table ------------------------------------------


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _claims_of(form: dict[str, list[str]], key: Any, alg: str) -> dict[str, Any]:
    assert form["client_assertion_type"] == [ASSERTION_TYPE] and "client_secret" not in form
    token = jwt.decode(form["client_assertion"][0], key, algorithms=[alg])
    assert token.header["alg"] == alg
    return dict(token.claims)


def _basic(profile: ResolvedProfile, form: dict[str, list[str]], headers: Any) -> None:
    assert (
        base64.b64decode(headers["Authorization"].removeprefix("Basic "))
        == b"app:" + SECRET.encode()
    )
    assert "client_id" not in form and "client_secret" not in form


def _post(profile: ResolvedProfile, form: dict[str, list[str]], headers: Any) -> None:
    assert "Authorization" not in headers
    assert form["client_id"] == ["app"] and form["client_secret"] == [SECRET]


def _none(profile: ResolvedProfile, form: dict[str, list[str]], headers: Any) -> None:
    assert "Authorization" not in headers
    assert form["client_id"] == ["app"] and "client_secret" not in form


def _private_key(profile: ResolvedProfile, form: dict[str, list[str]], headers: Any) -> None:
    assert profile.private_key is not None and "Authorization" not in headers
    public = ECKey.import_key(profile.private_key.reveal()).as_dict(private=False)
    claims = _claims_of(form, ECKey.import_key(public), "ES256")
    assert claims["iss"] == claims["sub"] == "app" and claims["aud"] == URL


#: A JWT issued elsewhere (a workload's projected token): header {"alg": "RS256"}.
WORKLOAD_JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhcHAifQ.c2lnbmF0dXJl"


def _client_assertion(profile: ResolvedProfile, form: dict[str, list[str]], headers: Any) -> None:
    assert "Authorization" not in headers and "client_secret" not in form
    assert form["client_assertion_type"] == [ASSERTION_TYPE]
    assert form["client_assertion"] == [WORKLOAD_JWT] and form["client_id"] == ["app"]


def _secret_jwt(profile: ResolvedProfile, form: dict[str, list[str]], headers: Any) -> None:
    assert "Authorization" not in headers
    claims = _claims_of(form, OctKey.import_key(SECRET), "HS256")
    assert claims["iss"] == claims["sub"] == "app" and claims["aud"] == URL


AUTH_CASES: dict[str, Callable[[ResolvedProfile, dict[str, list[str]], Any], None]] = {
    "client_secret_basic": _basic,
    "client_secret_post": _post,
    "none": _none,
    "private_key_jwt": _private_key,
    "client_secret_jwt": _secret_jwt,
    "client_assertion": _client_assertion,
}


def test_every_client_auth_method_has_a_case() -> None:
    assert set(CLIENT_AUTHS) == set(AUTH_CASES)


@pytest.mark.parametrize("name", sorted(AUTH_CASES))
@pytest.mark.parametrize("call", ["fetch", "revoke"])
@responses.activate
def test_each_client_auth_method_sends_the_credential_its_way(
    name: str, call: str, token_profile: Make, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    profile = token_profile(
        client_auth=name,
        client_secret=Secret(SECRET),
        revocation_url="https://login.test/oauth2/revoke",
    )
    if name == "private_key_jwt":
        profile = replace(profile, client_secret=None, private_key=Secret(pkcs8_pem(ec_key)))
    if name == "client_assertion":
        profile = replace(profile, client_secret=None, client_assertion=Secret(WORKLOAD_JWT))
    if call == "fetch":
        _ok()
        grants.fetch(profile)
    else:
        responses.post("https://login.test/oauth2/revoke", body="")
        grants.revoke(profile, Secret("rt-to-revoke-1"), "refresh_token")
    request = responses.calls[0].request
    AUTH_CASES[name](profile, parse_qs(str(request.body)), request.headers)


def test_only_private_key_jwt_has_a_key_to_check_before_sending(
    token_profile: Make, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    from oauthcli.errors import RegistryError

    bad = token_profile(client_auth="private_key_jwt", private_key=Secret("not a key"))
    with pytest.raises(RegistryError, match="private_key: is not PEM text"):
        CLIENT_AUTHS["private_key_jwt"].check(bad)
    CLIENT_AUTHS["private_key_jwt"].check(replace(bad, private_key=Secret(pkcs8_pem(ec_key))))
    for name in (
        "client_secret_basic",
        "client_secret_post",
        "client_secret_jwt",
        "none",
        "client_assertion",
    ):
        CLIENT_AUTHS[name].check(token_profile(client_auth=name, client_secret=None))


# -- a new grant is one class and one entry -----------------------------------------------


class _Example(Grant):
    name = "example"
    wire = "urn:example:params:oauth:grant-type:example"
    needs: ClassVar[tuple[str, ...]] = ("assertion",)

    def parameters(self, x: Exchange) -> dict[str, Any]:
        assert x.profile.assertion is not None
        return {"example_token": x.profile.assertion.reveal()}


@responses.activate
def test_a_new_grant_is_one_class_and_one_table_entry(
    token_profile: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(GRANTS, "example", _Example())
    _ok()
    got = grants.fetch(token_profile(grant_type="example", assertion=Secret("ex-tok-1")))
    assert got.access_token == "at-table-12345"
    form = _form()
    assert form["grant_type"] == [_Example.wire] and form["example_token"] == ["ex-tok-1"]


def test_a_grant_type_not_in_the_table_is_refused_by_name(token_profile: Make) -> None:
    with pytest.raises(grants.GrantError, match="grant_type saml2_bearer is not supported"):
        grants.fetch(token_profile(grant_type="saml2_bearer"))
