"""get-token and token list/clear/revoke as a user runs them, against a token endpoint on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from oauthcli.tokens import authcode
from tests.clirun import Result, run
from tests.registry_factory import make_registry
from tests.servers import TokenServer

SECRET = "s3cr3t-value"


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def jwt_like(claims: dict[str, Any]) -> str:
    header = {"alg": "RS256", "kid": "key-7", "typ": "at+jwt"}
    return f"{_b64(header)}.{_b64(claims)}.c2lnbmF0dXJlLWJ5dGVz"


def registry(tmp_path: Path, server: TokenServer, extra: str = "") -> Path:
    profile = f"""\
grant_type: client_credentials
token_url: {server.url}/token
client_id: app
client_secret: {SECRET}
scope: api.read api.write
{extra}"""
    return make_registry(tmp_path / "reg", {"profiles/acme.yaml": profile})


def token_answer(server: TokenServer, **body: Any) -> None:
    server.answer = (200, "application/json", json.dumps(body))


def no_secrets(result: Result, *values: str) -> None:
    for value in (SECRET, *values):
        assert value not in result.out and value not in result.err


def test_get_token_prints_what_the_button_shows(tmp_path: Path, token_server: TokenServer) -> None:
    root = registry(tmp_path, token_server)
    result = run("-r", str(root), "get-token", "acme")
    assert result.code == 0 and result.err == ""
    lines = result.out.splitlines()
    assert lines[0] == f"OK Token for profile 'acme' obtained from {token_server.url}/token"
    text = result.out
    assert "access token   at-1…(16 chars)" in text
    assert "type           Bearer" in text
    assert "(in 4 min 59 s)" in text or "(in 5 min)" in text
    assert "scope          api.read" in text and "refresh token  no" in text
    assert "JWT            no (opaque token)" in text
    no_secrets(result, "at-1-from-server")
    form = token_server.forms[0]
    assert form == {"grant_type": ["client_credentials"], "scope": ["api.read api.write"]}

    again = run("-r", str(root), "get-token", "acme")
    assert again.code == 0 and len(token_server.forms) == 1
    assert again.out.splitlines()[0].startswith(
        "OK Token for profile 'acme' from the cache, valid for 4 min"
    )


def test_get_token_decodes_a_jwt(tmp_path: Path, token_server: TokenServer) -> None:
    now = int(time.time())
    claims = {
        "iss": "https://login.test",
        "sub": "app",
        "aud": ["https://api.test", "https://other.test"],
        "client_id": "app",
        "scp": ["api.read", "api.write"],
        "exp": now + 300,
        "iat": now,
        "nbf": now,
        "tid": "blue",
    }
    access = jwt_like(claims)
    token_answer(token_server, access_token=access, token_type="bearer", expires_in=300)
    result = run("-r", str(registry(tmp_path, token_server)), "get-token", "acme")
    assert result.code == 0
    out = result.out
    assert "JWT header     alg=RS256 kid=key-7 typ=at+jwt" in out
    assert "    iss          https://login.test" in out
    assert "    aud          https://api.test https://other.test" in out
    assert "    scp          api.read api.write" in out
    assert "    others       tid" in out
    exp_line = next(line for line in out.splitlines() if line.strip().startswith("exp "))
    assert "T" in exp_line and "(in 4 min" in exp_line or "(in 5 min)" in exp_line
    no_secrets(result, access)


def test_raw_prints_only_the_token(tmp_path: Path, token_server: TokenServer) -> None:
    result = run("-r", str(registry(tmp_path, token_server)), "get-token", "--raw", "acme")
    assert (result.code, result.out, result.err) == (0, "at-1-from-server\n", "")


def test_json_is_one_object_with_the_token_masked(
    tmp_path: Path, token_server: TokenServer
) -> None:
    access = jwt_like({"aud": "https://api.test", "exp": int(time.time()) + 300})
    token_answer(
        token_server, access_token=access, expires_in=300, refresh_token="rt-abcdef-123456"
    )
    root = registry(tmp_path, token_server)
    first = json.loads(run("-r", str(root), "get-token", "--json", "acme").out)
    second = run("-r", str(root), "get-token", "--json", "acme")
    data = json.loads(second.out)
    assert first["cached"] is False and first["source"] == "grant"
    assert data["cached"] is True and data["source"] == "cache"
    assert data["access_token"].endswith(f"({len(access)} chars)")
    assert data["token_type"] == "Bearer" and data["refresh_token"] is True
    assert data["jwt"]["claims"]["aud"] == "https://api.test"
    assert data["jwt"]["header"]["kid"] == "key-7"
    assert 290 < data["expires_in"] <= 300
    no_secrets(second, access, "rt-abcdef-123456")


def test_force_skips_the_cache(tmp_path: Path, token_server: TokenServer) -> None:
    root = registry(tmp_path, token_server)
    run("-r", str(root), "get-token", "acme")
    result = run("-r", str(root), "get-token", "--force", "--raw", "acme")
    assert result.out == "at-2-from-server\n" and len(token_server.forms) == 2


def test_raw_and_json_together_is_a_usage_error(tmp_path: Path, token_server: TokenServer) -> None:
    result = run(
        "-r", str(registry(tmp_path, token_server)), "get-token", "--raw", "--json", "acme"
    )
    assert result.code == 2 and "cannot be used together" in result.err


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            (401, "application/json", '{"error": "invalid_client", "error_description": "bad"}'),
            "failed: invalid_client: bad (HTTP 401 from ",
        ),
        (
            (400, "application/json", '{"error": "invalid_scope"}'),
            "failed: invalid_scope (HTTP 400",
        ),
        (
            (502, "text/html", "<html><body><h1>Bad Gateway</h1>\n" + "x" * 2000),
            "answered HTTP 502 (text/html), not a JSON object: <html><body><h1>Bad Gateway</h1>",
        ),
        ((200, "application/json", '{"token_type": "bearer"}'), "JSON without an access_token"),
        ((302, "text/plain", ""), "HTTP 302 redirect"),
    ],
)
def test_failures_are_one_line_and_exit_6(
    tmp_path: Path, token_server: TokenServer, answer: tuple[int, str, str], expected: str
) -> None:
    token_server.answer = answer
    result = run("-r", str(registry(tmp_path, token_server)), "get-token", "acme")
    assert result.code == 6 and result.out == ""
    assert result.err.count("\n") == 1 and result.err.startswith("error: ")
    assert expected in result.err and "Traceback" not in result.err
    assert len(result.err) < 400
    no_secrets(result)


def test_unreachable_token_endpoint_exits_6(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    profile = f"""\
grant_type: client_credentials
token_url: http://127.0.0.1:{port}/token
client_id: app
client_secret: {SECRET}
"""
    root = make_registry(tmp_path, {"profiles/acme.yaml": profile})
    result = run("-r", str(root), "get-token", "acme")
    assert result.code == 6
    assert f"cannot connect to http://127.0.0.1:{port}/token: Connection refused" in result.err


def test_bad_private_key_exits_3_naming_the_file(tmp_path: Path, token_server: TokenServer) -> None:
    pem = "-----BEGIN PRIVATE KEY-----\\nbm90IGEga2V5\\n-----END PRIVATE KEY-----\\n"
    profile = f"""\
grant_type: client_credentials
token_url: {token_server.url}/token
client_id: app
client_auth: private_key_jwt
private_key: "{pem}"
"""
    root = make_registry(tmp_path, {"profiles/acme.yaml": profile})
    result = run("-r", str(root), "get-token", "acme")
    assert result.code == 3 and "acme.yaml" in result.err and "private_key" in result.err
    assert "bm90IGEga2V5" not in result.err and token_server.forms == []


def test_unknown_profile_exits_3(tmp_path: Path, token_server: TokenServer) -> None:
    result = run("-r", str(registry(tmp_path, token_server)), "get-token", "acmee")
    assert result.code == 3 and "did you mean 'acme'" in result.err


def test_token_list_clear(
    tmp_path: Path, token_server: TokenServer, isolated_oauthcli: Path
) -> None:
    root = registry(tmp_path, token_server)
    empty = run("token", "list")
    assert empty.code == 0 and empty.out == "" and "no cached tokens" in empty.err
    run("-r", str(root), "get-token", "acme")
    broken = "b" * 64 + ".json"  # named as oauthcli names its entries
    (isolated_oauthcli / broken).write_text("{")
    listed = run("token", "list")
    assert listed.code == 0
    assert listed.out.startswith(f"acme\t{token_server.url}/token\tat-1…(16 chars)\texpires ")
    assert listed.out.rstrip().endswith("refresh: no")
    assert f"{broken} is not valid JSON" in listed.err
    no_secrets(listed, "at-1-from-server")
    one = run("-r", str(root), "token", "clear", "acme")
    assert (one.code, one.out) == (0, "removed 1 cached token(s) of profile 'acme'\n")
    unknown = run("-r", str(root), "token", "clear", "nobody")
    assert unknown.code == 3 and "unknown profile 'nobody'" in unknown.err
    everything = run("token", "clear")
    assert everything.code == 0 and everything.out.startswith("removed 1 cached token(s)")
    assert list(isolated_oauthcli.iterdir()) == []


def test_token_revoke_revokes_both_tokens_then_forgets_them(
    tmp_path: Path, token_server: TokenServer, isolated_oauthcli: Path
) -> None:
    root = registry(tmp_path, token_server, f"revocation_url: {token_server.url}/revoke\n")
    token_answer(token_server, access_token="at-revoke-me-1", refresh_token="rt-revoke-me-2")
    run("-r", str(root), "get-token", "acme")
    token_server.answer = (200, "application/json", "{}")
    result = run("-r", str(root), "token", "revoke", "acme")
    assert result.code == 0
    assert "revoked the refresh token and access token of profile 'acme'" in result.out
    revocations = token_server.forms[1:]
    assert revocations == [
        {"token": ["rt-revoke-me-2"], "token_type_hint": ["refresh_token"]},
        {"token": ["at-revoke-me-1"], "token_type_hint": ["access_token"]},
    ]
    assert list(isolated_oauthcli.glob("*.json")) == []
    no_secrets(result, "at-revoke-me-1", "rt-revoke-me-2")
    nothing = run("-r", str(root), "token", "revoke", "acme")
    assert nothing.code == 0 and "nothing to revoke" in nothing.out


def test_token_revoke_refused_keeps_the_entry(
    tmp_path: Path, token_server: TokenServer, isolated_oauthcli: Path
) -> None:
    root = registry(tmp_path, token_server, f"revocation_url: {token_server.url}/revoke\n")
    run("-r", str(root), "get-token", "acme")
    token_server.answer = (503, "text/plain", "maintenance")
    result = run("-r", str(root), "token", "revoke", "acme")
    assert result.code == 6 and "HTTP 503" in result.err
    assert len(list(isolated_oauthcli.glob("*.json"))) == 1


def test_token_revoke_without_revocation_url_exits_3(
    tmp_path: Path, token_server: TokenServer
) -> None:
    result = run("-r", str(registry(tmp_path, token_server)), "token", "revoke", "acme")
    assert result.code == 3 and "revocation_url: missing" in result.err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _authcode_registry(tmp_path: Path, server: TokenServer) -> tuple[Path, str]:
    redirect = f"http://127.0.0.1:{_free_port()}/callback"
    profile = f"""\
grant_type: authorization_code
token_url: {server.url}/token
authorization_url: {server.url}/authorize
redirect_url: {redirect}
client_id: app
client_auth: none
scope: openid api.read
"""
    return make_registry(tmp_path, {"profiles/acme.yaml": profile}), redirect


def test_authorization_code_with_pkce_through_the_browser(
    tmp_path: Path, token_server: TokenServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, redirect = _authcode_registry(tmp_path, token_server)
    seen: dict[str, str] = {}

    def browser(url: str) -> bool:
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        seen.update(query)
        answer = requests.get(
            redirect, params={"code": "code-xyz-789", "state": query["state"]}, timeout=5
        )
        assert answer.status_code == 200 and "Signed in" in answer.text
        return True

    monkeypatch.setattr(authcode.webbrowser, "open", browser)
    monkeypatch.setattr(authcode, "interactive", lambda: True)  # CliRunner has no terminal
    result = run("-r", str(root), "get-token", "--raw", "acme")
    assert result.code == 0 and result.out == "at-1-from-server\n"
    assert "Opening a browser" in result.err and "code-xyz-789" not in result.err
    assert seen["response_type"] == "code" and seen["client_id"] == "app"
    assert seen["redirect_uri"] == redirect and seen["code_challenge_method"] == "S256"
    form = {k: v[0] for k, v in token_server.forms[0].items()}
    assert form["grant_type"] == "authorization_code" and form["code"] == "code-xyz-789"
    assert form["redirect_uri"] == redirect and form["client_id"] == "app"
    digest = hashlib.sha256(form["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == seen["code_challenge"]


def test_authorization_code_rejects_a_wrong_state(
    tmp_path: Path, token_server: TokenServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, redirect = _authcode_registry(tmp_path, token_server)

    def browser(url: str) -> bool:
        requests.get(redirect, params={"code": "c", "state": "forged"}, timeout=5)
        return True

    monkeypatch.setattr(authcode.webbrowser, "open", browser)
    monkeypatch.setattr(authcode, "interactive", lambda: True)  # CliRunner has no terminal
    result = run("-r", str(root), "get-token", "acme")
    assert result.code == 6 and "state does not match" in result.err
    assert token_server.forms == []
