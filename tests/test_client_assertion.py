"""``client_auth: client_assertion`` (workload identity) through the CLI against loopback
servers: a projected token file read anew for every token request, ``${env:…}``, GitHub
Actions' ID-token endpoint, and every bad input as one line, exit 6 (or 3), nothing secret.

The e2e proof against oidc-provider and the fake CI issuer is tests/e2e/test_e2e_workload.py.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from oauthcli.tokens.workload import jwt_problem
from tests.clirun import run
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REQUEST_TOKEN = "gh-request-token-5eCr3t"


def _jwt(n: int) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'sub': 'ci', 'n': n})}.c2lnLXt7bn19{n}"


def _form(rec: Recorded) -> dict[str, list[str]]:
    return parse_qs(rec.body.decode())


def ok_token(server: LoopbackServer) -> None:
    """The token endpoint issues a token (also used by tests/test_attack_today.py)."""
    body = {"access_token": "issued-for-ci-1234", "token_type": "Bearer", "expires_in": 60}
    server.reply("/token", 200, json.dumps(body).encode(), Content_Type="application/json")


def assertion_registry(tmp_path: Path, server: LoopbackServer, assertion: str) -> Path:
    """Profile ``ci`` with ``client_auth: client_assertion`` (also tests/test_attack_today.py)."""
    return make_registry(
        tmp_path,
        {
            "profiles/ci.yaml": f"""\
                grant_type: client_credentials
                token_url: {server.url("/token")}
                client_id: ci-app
                client_auth: client_assertion
                client_assertion: {assertion}
                scope: api.read
                """
        },
    )


def _token_requests(server: LoopbackServer) -> list[dict[str, list[str]]]:
    return [_form(r) for r in server.requests if r.path == "/token"]


def test_a_file_is_read_anew_for_every_token_request(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    ok_token(loopback)
    token_file = tmp_path / "projected" / "token"
    token_file.parent.mkdir()
    token_file.write_text(_jwt(1) + "\n")
    root = assertion_registry(tmp_path, loopback, f"${{file:{token_file}}}")

    first = run("-r", str(root), "get-token", "ci")
    assert first.code == 0, first.both
    token_file.write_text(_jwt(2) + "\n")  # the kubelet rotates the projected token
    second = run("-r", str(root), "get-token", "ci", "--force")
    assert second.code == 0, second.both

    sent = _token_requests(loopback)
    assert [f["client_assertion"] for f in sent] == [[_jwt(1)], [_jwt(2)]]
    for form in sent:
        assert form["client_assertion_type"] == [ASSERTION_TYPE]
        assert form["client_id"] == ["ci-app"] and "client_secret" not in form
    assert not any("authorization" in r.headers for r in loopback.requests)
    for result in (first, second):
        assert _jwt(1) not in result.both and _jwt(2) not in result.both
    # The cache entry stays the same workload's: the rotation makes no new identity.
    assert run("-r", str(root), "get-token", "ci").code == 0
    assert len(_token_requests(loopback)) == 2


def test_a_missing_file_is_exit_6_at_token_time_and_no_problem_for_validate(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    ok_token(loopback)
    missing = tmp_path / "var" / "run" / "secrets" / "azure-identity-token"
    root = assertion_registry(tmp_path, loopback, f"${{file:{missing}}}")
    checked = run("-r", str(root), "validate")
    assert checked.code == 0, checked.both  # a projected token appears when the pod runs
    shown = run("-r", str(root), "show", "ci")
    assert shown.code == 0 and f"read per token request from {missing}" in shown.out
    result = run("-r", str(root), "get-token", "ci")
    assert result.code == 6, result.both
    assert str(missing) in result.err and "not found" in result.err
    assert "AZURE_FEDERATED_TOKEN_FILE" in result.err and "Traceback" not in result.both
    assert not loopback.requests


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("not a jwt at all", "three base64url parts"),
        ("a.b", "three base64url parts"),
        ("e30.e30.c2ln", "names no alg"),  # header {}
        ("eyJhbGciOiJub25lIn0.e30.", "unsigned"),  # alg none
        ("!!!.e30.c2ln", "three base64url parts"),
    ],
)
def test_an_assertion_that_is_not_a_jwt_is_exit_6(
    tmp_path: Path, loopback: LoopbackServer, content: str, why: str
) -> None:
    ok_token(loopback)
    token_file = tmp_path / "token.jwt"
    token_file.write_text(content)
    root = assertion_registry(tmp_path, loopback, "${file:../token.jwt}")  # relative to the profile
    result = run("-r", str(root), "get-token", "ci")
    assert result.code == 6, result.both
    assert "is not a JWT" in result.err and why in result.err
    assert "token.jwt" in result.err
    if len(content) >= 4:
        assert content not in result.both
    assert not loopback.requests
    assert jwt_problem(content) is not None and jwt_problem(_jwt(7)) is None


def test_an_env_assertion(
    tmp_path: Path, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok_token(loopback)
    monkeypatch.setenv("WORKLOAD_JWT", _jwt(3))
    root = assertion_registry(tmp_path, loopback, "${env:WORKLOAD_JWT}")
    result = run("-r", str(root), "get-token", "ci", "-v")
    assert result.code == 0, result.both
    assert _token_requests(loopback)[0]["client_assertion"] == [_jwt(3)]
    assert _jwt(3) not in result.both


def _github(server: LoopbackServer, monkeypatch: pytest.MonkeyPatch, reply: object) -> None:
    def answer(rec: Recorded) -> object:
        if rec.headers.get("authorization") != f"bearer {REQUEST_TOKEN}":
            return 401, {"Content-Type": "application/json"}, b'{"message": "bad credentials"}'
        return reply(rec) if callable(reply) else reply

    server.routes["/_apis/idtoken"] = answer
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", server.url("/_apis/idtoken?api-version=2.0"))
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)


GITHUB = "{github_actions: {audience: 'api://AzureADTokenExchange'}}"


def test_github_actions_id_token(
    tmp_path: Path, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok_token(loopback)
    counter = iter(range(10, 20))

    def value(rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        body = json.dumps({"count": 1, "value": _jwt(next(counter))}).encode()
        return 200, {"Content-Type": "application/json"}, body

    _github(loopback, monkeypatch, value)
    root = assertion_registry(tmp_path, loopback, GITHUB)
    shown = run("-r", str(root), "show", "ci")
    assert "GitHub Actions ID token, audience api://AzureADTokenExchange" in shown.out
    first = run("-r", str(root), "get-token", "ci", "-v")
    assert first.code == 0, first.both
    again = run("-r", str(root), "get-token", "ci", "--force")
    assert again.code == 0, again.both

    asked = [r for r in loopback.requests if r.path.startswith("/_apis/idtoken")]
    assert len(asked) == 2 and all(r.method == "GET" for r in asked)
    query = parse_qs(urlsplit(asked[0].path).query)
    assert query == {"api-version": ["2.0"], "audience": ["api://AzureADTokenExchange"]}
    assert "audience=api%3A%2F%2FAzureADTokenExchange" in asked[0].path
    assert [f["client_assertion"] for f in _token_requests(loopback)] == [[_jwt(10)], [_jwt(11)]]
    for result in (first, again):
        assert REQUEST_TOKEN not in result.both
        assert _jwt(10) not in result.both and _jwt(11) not in result.both


def test_github_actions_without_the_variables_is_exit_6_naming_them(
    tmp_path: Path, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok_token(loopback)
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_URL", raising=False)
    monkeypatch.delenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", raising=False)
    root = assertion_registry(tmp_path, loopback, GITHUB)
    assert run("-r", str(root), "validate").code == 0
    result = run("-r", str(root), "get-token", "ci")
    assert result.code == 6, result.both
    assert "ACTIONS_ID_TOKEN_REQUEST_URL is not set" in result.err
    assert "permissions: id-token: write" in result.err
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", loopback.url("/_apis/idtoken?x=1"))
    no_token = run("-r", str(root), "get-token", "ci")
    assert no_token.code == 6 and "ACTIONS_ID_TOKEN_REQUEST_TOKEN is not set" in no_token.err
    assert not loopback.requests


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        ((500, {}, b"oops"), "answered HTTP 500"),
        ((200, {"Content-Type": "text/html"}, b"<html>hi</html>"), 'expected JSON with a "value"'),
        ((200, {"Content-Type": "application/json"}, b"{}"), 'expected JSON with a "value"'),
        ((200, {}, b'{"value": "not-a-jwt-value"}'), "is not a JWT"),
        ((302, {"Location": "http://127.0.0.2:9/steal"}, b""), "answered HTTP 302"),
    ],
)
def test_github_answering_garbage_is_exit_6(
    tmp_path: Path,
    loopback: LoopbackServer,
    monkeypatch: pytest.MonkeyPatch,
    reply: tuple[int, dict[str, str], bytes],
    says: str,
) -> None:
    ok_token(loopback)
    _github(loopback, monkeypatch, reply)
    root = assertion_registry(tmp_path, loopback, GITHUB)
    result = run("-r", str(root), "get-token", "ci")
    assert result.code == 6, result.both
    assert says in result.err and "Traceback" not in result.both
    assert REQUEST_TOKEN not in result.both and "not-a-jwt-value" not in result.both
    assert not [r for r in loopback.requests if r.path == "/token"]


def test_github_refusing_the_request_token_is_exit_6(
    tmp_path: Path, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok_token(loopback)
    _github(loopback, monkeypatch, (200, {}, b"{}"))
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "a-wrong-request-token")
    root = assertion_registry(tmp_path, loopback, GITHUB)
    result = run("-r", str(root), "get-token", "ci")
    assert result.code == 6, result.both
    assert "refused the ID-token request (HTTP 401" in result.err
    assert "permissions: id-token: write" in result.err
    assert "a-wrong-request-token" not in result.both


def test_github_over_plain_http_elsewhere_than_loopback_is_refused(
    tmp_path: Path, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_URL", "http://example.test/_apis/idtoken?a=1")
    monkeypatch.setenv("ACTIONS_ID_TOKEN_REQUEST_TOKEN", REQUEST_TOKEN)
    root = assertion_registry(tmp_path, loopback, GITHUB)
    result = run("-r", str(root), "get-token", "ci")
    assert result.code == 6 and "is not an https URL" in result.err, result.both


@pytest.mark.parametrize(
    ("written", "problem"),
    [
        ("{github_actions: {}}", "audience: missing required key"),
        ("{github_actions: {audience: x, extra: 1}}", "extra: unknown key"),
        ("{gitlab: {audience: x}}", "gitlab: unknown key"),
        ("{}", "github_actions: missing"),
    ],
)
def test_a_bad_github_actions_block_is_exit_3(
    tmp_path: Path, loopback: LoopbackServer, written: str, problem: str
) -> None:
    root = assertion_registry(tmp_path, loopback, written)
    result = run("-r", str(root), "validate")
    assert result.code == 3 and problem in result.out, result.both
    assert "ci.yaml" in result.out


def test_client_assertion_is_required_by_its_client_auth(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    root = make_registry(
        tmp_path,
        {
            "profiles/ci.yaml": f"""\
                token_url: {loopback.url("/token")}
                client_id: ci-app
                client_auth: client_assertion
                """
        },
    )
    result = run("-r", str(root), "validate")
    assert result.code == 3
    assert "client_assertion: missing; client_auth client_assertion needs it" in result.out
