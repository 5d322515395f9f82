"""The token endpoint as real and hostile providers run it, seen from the installed CLI.

Every test runs oauthcli as a subprocess (``python -m oauthcli``) against a token endpoint
and an API on 127.0.0.1 (the ``loopback`` fixture) that misbehave on purpose: answers in
provider dialects (form-encoded, strings for numbers, ``token_type: N_A``), tokens holding
line breaks, 429s with ``Retry-After``, and an endpoint that echoes the request it got, in
several encodings, in its ``error_description``. SPEC §4 and §5.
"""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus

import pytest

from oauthcli import __version__
from tests.cliproc import Done, oauthcli
from tests.registry_factory import make_registry
from tests.servers import Dribbler, LoopbackServer, Recorded
from tests.timing import assert_cut_off

JSON = {"Content-Type": "application/json"}
CLIENT_ID = "app/ü 1"
CLIENT_SECRET = 'cl ié+nt%2F:/"sécret'
PASSWORD = 'pa ss+wörd%:/"x9'
ASSERTION = 'as+sert/ion "é" %3A:42'
REFRESH = 're fresh+tök/en%:"7'
SECRETS = {
    "E2E_CLIENT_SECRET": CLIENT_SECRET,
    "E2E_PASSWORD": PASSWORD,
    "E2E_ASSERTION": ASSERTION,
    "E2E_REFRESH": REFRESH,
}


def cli(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 20) -> Done:
    """The CLI in a fresh interpreter, the registry and the secrets in its environment."""
    return oauthcli(
        *args, env={"OAUTHCLI_REGISTRY": str(root), **SECRETS, **(env or {})}, timeout=timeout
    )


def profile_yaml(server: LoopbackServer, extra: str = "", grant: str = "client_credentials") -> str:
    return (
        f"grant_type: {grant}\n"
        f"token_url: {server.url('/token')}\n"
        f"client_id: {json.dumps(CLIENT_ID)}\n"
        "client_secret: ${env:E2E_CLIENT_SECRET}\n"
        "scope: api.read\n"
        "timeout: 5\n" + extra
    )


def message_yaml(server: LoopbackServer) -> str:
    return (
        f"endpoint: {server.url('/api/items')}\n"
        "auth: {type: oauth2, profile: acme}\n"
        "retry: {attempts: 1}\n"
        "methods:\n  list:\n    http_method: GET\n"
    )


def registry(tmp_path: Path, server: LoopbackServer, extra: str = "", **kw: Any) -> Path:
    return make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": profile_yaml(server, extra, **kw),
            "messages/items.yaml": message_yaml(server),
        },
    )


def answer(status: int, body: Any, **headers: str) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return status, {**JSON, **{k.replace("_", "-"): v for k, v in headers.items()}}, data


def api_echoing_authorization(server: LoopbackServer) -> None:
    def items(rec: Recorded) -> Any:
        return answer(200, {"authorization_scheme": rec.headers["authorization"].split()[0]})

    server.routes["/api/items"] = items


def cached_text(cache_dir: Path) -> str:
    if not cache_dir.exists():
        return ""
    return "".join(p.read_text(errors="replace") for p in cache_dir.rglob("*") if p.is_file())


# -- provider dialects ----------------------------------------------------------------------


def test_a_form_encoded_answer_with_token_type_n_a_goes_out_as_bearer(
    tmp_path: Path, loopback: LoopbackServer, isolated_oauthcli: Path
) -> None:
    body = b"access_token=gho_form+tok%2Fen42&token_type=N_A&expires_in=3600&scope=api.read%2Capi.write"
    loopback.reply("/token", 200, body, Content_Type="application/x-www-form-urlencoded")
    api_echoing_authorization(loopback)
    root = registry(tmp_path, loopback)
    got = cli(root, "get-token", "--json", "acme")
    assert got.code == 0, got
    shown = json.loads(got.out)
    assert shown["token_type"] == "N_A" and shown["scope"] == "api.read api.write"
    assert "gho_form" not in got.both
    sent = cli(root, "send", "items.list")
    assert sent.code == 0 and json.loads(sent.out) == {"authorization_scheme": "Bearer"}, sent
    api = [r for r in loopback.requests if r.path == "/api/items"]
    assert api[0].headers["authorization"] == "Bearer gho_form tok/en42"


def test_token_scheme_is_what_goes_out_and_what_show_and_dry_run_say(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    loopback.reply("/token", 200, json.dumps({"access_token": "at-mac-1", "token_type": "bearer"}).encode(), **JSON)  # fmt: skip
    api_echoing_authorization(loopback)
    root = registry(tmp_path, loopback, "token_scheme: MAC\n")
    shown = cli(root, "show", "acme")
    assert shown.code == 0 and "token_scheme:" in shown.out and "MAC" in shown.out, shown
    dry = cli(root, "send", "--dry-run", "items.list")
    assert dry.code == 0 and "Authorization: MAC ****" in dry.out, dry
    assert [r for r in loopback.requests if r.path == "/token"] == []
    sent = cli(root, "send", "items.list")
    assert sent.code == 0 and json.loads(sent.out) == {"authorization_scheme": "MAC"}, sent


@pytest.mark.parametrize("scheme", ['"Bearer x"', '"Bear\\ner"', "[Bearer]", '""', '"Bé"'])
def test_a_token_scheme_that_is_not_one_word_is_a_registry_error(
    tmp_path: Path, loopback: LoopbackServer, scheme: str
) -> None:
    root = registry(tmp_path, loopback, f"token_scheme: {scheme}\n")
    got = cli(root, "validate")
    assert got.code == 3 and "acme.yaml:7: token_scheme" in got.both, got


def test_numbers_as_strings_and_an_error_in_an_http_200(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    answers = iter(
        [
            answer(200, {"ok": False, "error": "invalid_auth"}),
            answer(200, {"access_token": "at-str-1", "expires_in": "3600", "token_type": "BEARER"}),
        ]
    )
    loopback.routes["/token"] = lambda rec: next(answers)
    root = registry(tmp_path, loopback)
    refused = cli(root, "get-token", "acme")
    assert refused.code == 6 and "invalid_auth (HTTP 200 from" in refused.err, refused
    assert refused.err.count("\n") == 1
    got = cli(root, "get-token", "--json", "acme")
    assert got.code == 0 and 3590 < json.loads(got.out)["expires_in"] <= 3600, got


# -- values that cannot go in a header ------------------------------------------------------


@pytest.mark.parametrize(
    ("members", "field"),
    [
        ({"access_token": "at-crlf-LEAK\r\nX-Injected: 1"}, "access_token"),
        ({"access_token": "at-lf-LEAK-1\n"}, "access_token"),
        ({"access_token": "at-euro-LEAK-€"}, "access_token"),
        ({"access_token": "at-ok-123456", "token_type": "Bearer\r\nX-Injected: 1"}, "token_type"),
    ],
)
def test_a_token_with_a_line_break_is_exit_6_masked_and_never_cached(
    tmp_path: Path,
    loopback: LoopbackServer,
    isolated_oauthcli: Path,
    members: dict[str, str],
    field: str,
) -> None:
    loopback.routes["/token"] = lambda rec: answer(200, {"expires_in": 60, **members})
    api_echoing_authorization(loopback)
    root = registry(tmp_path, loopback)
    for args in (("get-token", "acme"), ("send", "items.list")):
        got = cli(root, *args)
        assert got.code == 6 and got.out == "", got
        assert f"{field} that " in got.err and got.err.count("\n") == 1
        assert "LEAK" not in got.both and "X-Injected" not in got.both
    assert "LEAK" not in cached_text(isolated_oauthcli)
    assert [r for r in loopback.requests if r.path == "/api/items"] == []


@pytest.mark.parametrize("value", ['"abc"', "1e400", "-5", "true", '"' + "9" * 5000 + '"'])
def test_garbage_expires_in_is_one_line_exit_6(
    tmp_path: Path, loopback: LoopbackServer, value: str
) -> None:
    body = ('{"access_token": "at-1234567", "expires_in": ' + value + "}").encode()
    loopback.reply("/token", 200, body, **JSON)
    got = cli(registry(tmp_path, loopback), "get-token", "acme")
    assert got.code == 6 and "expires_in as" in got.err and got.err.count("\n") == 1, got
    assert len(got.err) < 400


# -- 429 / 503 with Retry-After --------------------------------------------------------------


def test_a_429_with_retry_after_is_waited_for_once(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    answers = iter(
        [
            answer(429, {"error": "slow_down"}, Retry_After="1"),
            answer(200, {"access_token": "at-after-429", "expires_in": 60}),
        ]
    )
    loopback.routes["/token"] = lambda rec: next(answers)
    got = cli(registry(tmp_path, loopback), "get-token", "acme")
    assert got.code == 0 and got.seconds >= 1.0, got
    assert len([r for r in loopback.requests if r.path == "/token"]) == 2


@pytest.mark.parametrize("value", ["120", "²", "-1", "1e9", "9" * 5000])
def test_a_retry_after_beyond_the_timeout_or_garbage_fails_at_once(
    tmp_path: Path, loopback: LoopbackServer, value: str
) -> None:
    loopback.reply("/token", 503, b"busy", Retry_After=value, Content_Type="text/plain")
    got = cli(registry(tmp_path, loopback), "get-token", "acme")
    assert got.code == 6 and got.err.count("\n") == 1, got
    assert_cut_off(got, 0, "get-token")  # at once: neither the 5 s timeout nor the wait
    assert "HTTP 503" in got.err
    if value in ("120", "9" * 5000):
        assert "asks to retry after" in got.err and "timeout (5 s)" in got.err
    assert len([r for r in loopback.requests if r.path == "/token"]) == 1


# -- what the token request carries -----------------------------------------------------------


def test_token_requests_say_oauthcli_sent_them(tmp_path: Path, loopback: LoopbackServer) -> None:
    loopback.routes["/token"] = lambda rec: answer(
        200, {"access_token": "at-ua-123", "expires_in": 60}
    )
    got = cli(registry(tmp_path, loopback), "get-token", "acme")
    assert got.code == 0, got
    token = [r for r in loopback.requests if r.path == "/token"][0]
    assert token.headers["user-agent"] == f"oauthcli/{__version__}"
    assert token.headers["accept"] == "application/json"


# -- an endpoint that echoes the request ----------------------------------------------------


def _forms(value: str) -> dict[str, str]:
    raw = value.encode()
    return {
        "raw": value,
        "form-encoded": quote_plus(value),
        "percent-encoded": quote(value, safe=""),
        "JSON-escaped": json.dumps(value)[1:-1],
        "base64": base64.b64encode(raw).decode(),
        "base64 unpadded": base64.b64encode(raw).decode().rstrip("="),
    }


BASIC = base64.b64encode(f"{quote_plus(CLIENT_ID)}:{quote_plus(CLIENT_SECRET)}".encode()).decode()
FORBIDDEN = {
    f"{name} {form}": text
    for name, value in [
        ("client secret", CLIENT_SECRET),
        ("password", PASSWORD),
        ("assertion", ASSERTION),
        ("refresh token", REFRESH),
    ]
    for form, text in _forms(value).items()
} | {
    "Basic credential": BASIC,
    "Basic credential unencoded": base64.b64encode(
        f"{CLIENT_ID}:{CLIENT_SECRET}".encode()
    ).decode(),
}


def echo_route(encoding: str) -> Any:
    """A token endpoint that refuses, quoting the credentials it received in ``encoding``."""

    def route(rec: Recorded) -> Any:
        said = [rec.headers.get("authorization", "")]
        for name, value in parse_qsl(rec.body.decode()):
            if name not in ("grant_type", "scope", "client_id"):
                said.append(value)
        if encoding == "percent":
            said = [quote(s, safe="") for s in said]
        elif encoding == "base64":
            said = [base64.b64encode(s.encode()).decode() for s in said]
        elif encoding == "form":
            said = [rec.body.decode()] + said[:1]
        text = " ".join(said)
        if encoding == "json":
            text = json.dumps(said)
        return answer(400, {"error": "invalid_client", "error_description": f"got {text}"})

    return route


CASES = {
    "client_secret_basic": ("client_credentials", ""),
    "client_secret_post": ("client_credentials", "client_auth: client_secret_post\n"),
    "password": ("password", "username: ann\npassword: ${env:E2E_PASSWORD}\n"),
    "jwt_bearer": ("jwt_bearer", "assertion: ${env:E2E_ASSERTION}\n"),
    "refresh_token": ("refresh_token", "refresh_token: ${env:E2E_REFRESH}\n"),
}


def _leaks(done: Done) -> list[str]:
    return [name for name, text in FORBIDDEN.items() if text in done.both]


@pytest.mark.parametrize("case", list(CASES))
def test_an_endpoint_echoing_the_request_shows_no_secret_in_any_encoding(
    tmp_path: Path, loopback: LoopbackServer, case: str
) -> None:
    grant, extra = CASES[case]
    encodings = ["raw", "form", "percent", "base64", "json"]
    servers = {e: LoopbackServer() for e in encodings}
    try:
        roots = {}
        for encoding, server in servers.items():
            server.routes["/token"] = echo_route(encoding)
            roots[encoding] = make_registry(
                tmp_path / encoding,
                {"profiles/acme.yaml": profile_yaml(server, extra, grant=grant)},
            )
        with ThreadPoolExecutor(3) as pool:
            runs = dict(
                zip(
                    encodings,
                    pool.map(lambda e: cli(roots[e], "get-token", "acme"), encodings),
                    strict=True,
                )
            )
        for encoding, done in runs.items():
            assert done.code == 6 and "invalid_client: got " in done.err, (encoding, done)
            assert _leaks(done) == [], (encoding, done)
            assert "****" in done.err, (encoding, done)  # the echo was there, masked
    finally:
        for server in servers.values():
            server.close()


@pytest.mark.parametrize("case", ["client_secret_basic", "password"])
def test_an_echoing_endpoint_under_oauthcli_debug_shows_no_secret(
    tmp_path: Path, loopback: LoopbackServer, case: str
) -> None:
    grant, extra = CASES[case]
    loopback.routes["/token"] = echo_route("raw")
    root = make_registry(
        tmp_path, {"profiles/acme.yaml": profile_yaml(loopback, extra, grant=grant)}
    )
    done = cli(root, "get-token", "acme", env={"OAUTHCLI_DEBUG": "1"})
    assert done.code == 6 and "invalid_client" in done.err, done
    assert _leaks(done) == [], done


# -- authorization_code without a terminal ----------------------------------------------------


def test_authorization_code_without_a_terminal_fails_at_once(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    extra = (
        f"authorization_url: {loopback.url('/authorize')}\n"
        f"redirect_url: http://127.0.0.1:{port}/callback\n"
    )
    root = registry(tmp_path, loopback, extra, grant="authorization_code")
    for args in (("get-token", "acme"), ("send", "items.list")):
        done = cli(root, *args, env={"BROWSER": "false"}, timeout=15)
        assert done.code == 6 and done.seconds < 10, done
        assert "no terminal" in done.err and "oauthcli get-token acme" in done.err, done
        assert "Opening a browser" not in done.err and done.err.count("\n") == 1
    assert loopback.requests == []


# -- -v shows the token exchange --------------------------------------------------------------


@pytest.mark.parametrize("grant", ["client_credentials", "password"])
def test_verbose_shows_the_token_exchange_masked(
    tmp_path: Path, loopback: LoopbackServer, grant: str
) -> None:
    issued = "at-verbose-LEAK-4711"
    loopback.routes["/token"] = lambda rec: answer(
        200, {"access_token": issued, "refresh_token": "rt-verbose-LEAK-9", "expires_in": 60}
    )
    api_echoing_authorization(loopback)
    extra = "username: ann\npassword: ${env:E2E_PASSWORD}\n" if grant == "password" else ""
    root = registry(tmp_path, loopback, extra, grant=grant)
    for n, args in enumerate([("get-token", "-v", "acme"), ("send", "-v", "items.list")]):
        own_cache = {"OAUTHCLI_CACHE_DIR": str(tmp_path / f"cache-{n}")}  # a token exchange each
        done = cli(root, *args, env=own_cache)
        assert done.code == 0, done
        assert "> POST /token HTTP/1.1" in done.err, done
        assert "> Authorization: Basic ****" in done.err, done
        assert f"> User-Agent: oauthcli/{__version__}" in done.err, done
        assert "< HTTP/1.1 200" in done.err, done
        assert _leaks(done) == [] and "LEAK" not in done.err, done


# -- a token endpoint that dribbles (tests/servers.py) ---------------------------------------


@pytest.mark.parametrize(
    ("from_headers", "by_line"),
    [(True, False), (True, True), (False, False)],
    ids=["headers", "header-lines", "body"],
)
def test_a_dribbling_token_endpoint_is_cut_off_at_the_timeout(
    tmp_path: Path, from_headers: bool, by_line: bool
) -> None:
    server = Dribbler(from_headers, pause=0.5 if by_line else 0.3, by_line=by_line)
    try:
        profile = (
            "grant_type: client_credentials\n"
            f"token_url: {server.url}/token\n"
            "client_id: app\nclient_secret: ${env:E2E_CLIENT_SECRET}\ntimeout: 1\n"
        )
        root = make_registry(tmp_path, {"profiles/acme.yaml": profile})
        done = cli(root, "get-token", "acme")
    finally:
        server.close()
    assert done.code == 6, done
    assert_cut_off(done, 1, "get-token")
    assert "within 1 s" in done.err and done.err.count("\n") == 1, done
