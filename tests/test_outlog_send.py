"""The outbound log of ``send``, ``--each``, ``get-token``, ``token revoke`` and the Python
API: one record per call at each level, secrets masked, token decisions (docs/outbound-log.md)."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus

import pytest

from oauthcli.outlog import place, writer
from tests.clirun import Result, run
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded

JSON = {"Content-Type": "application/json"}
CLIENT_SECRET = "cs-LOG-client-secret+/:%x"
BASIC_PASSWORD = "pw-LOG-basic-password"
API_KEY = "ak-LOG-api-key-3141"
STATIC_TOKEN = "bt-LOG-static-bearer-2718"
USER_PASSWORD = "up-LOG-user-password"


@dataclass
class Api:
    server: LoopbackServer
    root: Path
    expires_in: int = 300
    rotate: bool = False  # refresh answers carry a new refresh token
    issued: list[str] = field(default_factory=list)
    refreshes: list[str] = field(default_factory=list)
    refused: set[str] = field(default_factory=set)  # access tokens the API answers 401 to
    grants: list[str] = field(default_factory=list)

    def send(self, *args: str, input: str | None = None) -> Result:
        return run("-r", str(self.root), "send", *args, input=input)

    def cli(self, *args: str) -> Result:
        return run("-r", str(self.root), *args)

    def token(self, rec: Recorded) -> Any:
        form = {k: v[0] for k, v in parse_qs(rec.body.decode()).items()}
        self.grants.append(form.get("grant_type", ""))
        n = len(self.issued) + 1
        access = f"at-LOG-{n}-{'a' * 20}"
        self.issued.append(access)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.expires_in,
            "id_token": f"idt-LOG-{n}-{'i' * 20}",
        }
        if form.get("grant_type") != "refresh_token" or self.rotate:
            refresh = f"rt-LOG-{n}-{'r' * 20}"
            self.refreshes.append(refresh)
            body["refresh_token"] = refresh
        return 200, JSON, json.dumps(body).encode()

    def items(self, rec: Recorded) -> Any:
        auth = rec.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if auth.startswith("Bearer ") and (token in self.refused or token not in self.issued):
            if token not in (STATIC_TOKEN,):
                return 401, {**JSON, "WWW-Authenticate": 'Bearer error="invalid_token"'}, b"{}"
        echo = {"auth": auth, "key": rec.headers.get("x-api-key"), "body": rec.body.decode()}
        echo["query"] = rec.path.partition("?")[2]
        headers = {**JSON, "Set-Cookie": f"session={API_KEY}-cookie", "X-Echo": auth}
        return 200, headers, json.dumps({"items": [1, 2], "echo": echo}).encode()


def _registry(root: Path, base: str, **extra: str) -> Path:
    files: dict[str, str | bytes] = {
        "profiles/acme.yaml": f"""\
            grant_type: client_credentials
            token_url: {base}/token
            client_id: app
            client_secret: "{CLIENT_SECRET}"
            scope: api.read
            """,
        "profiles/posted.yaml": f"""\
            grant_type: password
            token_url: {base}/token
            client_id: app
            client_auth: client_secret_post
            client_secret: "{CLIENT_SECRET}"
            username: ann
            password: "{USER_PASSWORD}"
            revocation_url: {base}/revoke
            """,
        "messages/items.yaml": f"""\
            endpoint: {base}/api/items
            auth: {{type: oauth2, profile: acme}}
            methods:
              list: {{http_method: GET}}
              create:
                http_method: POST
                json: {{name: "${{name}}"}}
            """,
        "messages/basic.yaml": f"""\
            endpoint: {base}/api/items
            auth: {{type: basic, username: ann, password: "{BASIC_PASSWORD}"}}
            """,
        "messages/keyed.yaml": f"""\
            endpoint: {base}/api/items
            auth: {{type: api_key, value: "{API_KEY}"}}
            query: {{echo: "{API_KEY}"}}
            """,
        "messages/static.yaml": f"""\
            endpoint: {base}/api/items
            auth: {{type: bearer, token: "{STATIC_TOKEN}"}}
            """,
        "messages/posted.yaml": f"""\
            endpoint: {base}/api/items
            auth: {{type: oauth2, profile: posted}}
            """,
        **extra,
    }
    return make_registry(root, files)


@pytest.fixture
def api(loopback: LoopbackServer, tmp_path: Path) -> Iterator[Api]:
    a = Api(loopback, _registry(tmp_path / "reg", loopback.base))
    loopback.routes["/token"] = a.token
    loopback.routes["/api/items"] = a.items
    loopback.routes["/revoke"] = lambda rec: (200, JSON, b"")
    writer._after_fork()  # this process's log handles and warning start afresh
    yield a
    writer._after_fork()


def log_folder() -> Path:
    return Path(os.environ["OAUTHCLI_LOG_DIR"])


def records() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in place.file_names():
        path = log_folder() / name
        if path.exists():
            out += [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return out


def log_text() -> str:
    return "".join(
        (log_folder() / n).read_text(encoding="utf-8")
        for n in place.file_names()
        if (log_folder() / n).exists()
    )


def kinds(record: dict[str, Any]) -> list[str]:
    return [d["kind"] for d in record["decisions"]]


# -- basic, elevated, all -----------------------------------------------------------


BASIC_MEMBERS = {
    "v", "time", "pid", "kind", "level", "message", "profile", "environment", "method",
    "url", "status", "reason", "elapsed_ms", "attempts", "exit_code", "error", "decisions",
    "token_requests",
}  # fmt: skip


def test_basic_records_the_call_and_its_token_request_without_headers(api: Api) -> None:
    r = api.send("items.list")
    assert r.code == 0, r.err
    [rec] = records()
    assert set(rec) == BASIC_MEMBERS
    assert rec["v"] == 1 and rec["kind"] == "send" and rec["level"] == "basic"
    assert (
        rec["time"].endswith("Z")
        and abs(
            time.mktime(time.strptime(rec["time"][:19], "%Y-%m-%dT%H:%M:%S"))
            - time.mktime(time.gmtime())
        )
        < 60
    )
    assert rec["pid"] == os.getpid()
    assert (rec["message"], rec["profile"], rec["environment"]) == ("items.list", "acme", None)
    assert (rec["method"], rec["url"]) == ("GET", api.server.url("/api/items"))
    assert (rec["status"], rec["reason"], rec["attempts"], rec["exit_code"]) == (200, "OK", 1, 0)
    assert rec["error"] is None and rec["elapsed_ms"] > 0
    assert kinds(rec) == ["none_cached", "grant"]
    assert rec["decisions"][1]["grant"] == "client_credentials"
    [tr] = rec["token_requests"]
    assert tr["url"] == api.server.url("/token") and tr["method"] == "POST"
    assert tr["grant"] == "client_credentials" and tr["status"] == 200 and tr["elapsed_ms"] > 0
    assert "request_headers" not in tr and "request_body" not in tr
    # The next call uses the cached token, and says how long it has left.
    assert api.send("items.list").code == 0
    second = records()[1]
    assert kinds(second) == ["cached"] and second["token_requests"] == []
    assert 290 < second["decisions"][0]["expires_in_s"] <= 300


def test_elevated_adds_the_headers_of_the_call_and_of_each_token_request_masked(
    api: Api,
) -> None:
    r = api.send("items.list", "--log-level", "elevated")
    assert r.code == 0, r.err
    [rec] = records()
    assert rec["level"] == "elevated" and "request_body" not in rec
    sent = dict(rec["request_headers"])
    assert sent["Authorization"] == "Bearer ****"
    got = dict(rec["response_headers"])
    assert got["Set-Cookie"] == "****" and got["X-Echo"] == "Bearer ****"
    assert got["Content-Type"] == "application/json"
    [tr] = rec["token_requests"]
    assert dict(tr["request_headers"])["Authorization"] == "Basic ****"
    assert dict(tr["response_headers"])["Content-Type"] == "application/json"
    assert "request_body" not in tr
    assert api.issued[0] not in log_text()


def test_all_adds_the_bodies_masked_and_cut_at_64_kib(api: Api) -> None:
    big = {"items": ["x" * 1000] * 100}  # about 100 KB
    api.server.routes["/api/big"] = lambda rec: (200, JSON, json.dumps(big).encode())
    extra = {
        "messages/big.yaml": f"""\
            endpoint: {api.server.base}/api/big
            auth: {{type: oauth2, profile: posted}}
            log_level: all
            """
    }
    _registry(api.root, api.server.base, **extra)
    r = api.send("big")
    assert r.code == 0, r.err
    [rec] = records()
    assert rec["level"] == "all"
    assert rec["response_body_truncated"] is True
    assert len(rec["response_body"].encode()) == 64 * 1024
    assert rec["response_body_size"] == len(json.dumps(big))
    assert rec["request_body"] is None
    [tr] = rec["token_requests"]
    form = parse_qs(tr["request_body"])
    assert form["client_secret"] == ["****"] and form["password"] == ["****"]
    assert form["username"] == ["ann"] and form["grant_type"] == ["password"]
    answer = json.loads(tr["response_body"])
    assert answer["access_token"] == answer["refresh_token"] == answer["id_token"] == "****"
    assert answer["expires_in"] == 300 and tr["response_body_truncated"] is False


def test_a_binary_body_is_base64_with_its_secrets_masked(api: Api) -> None:
    payload = b"\xff\xfe" + API_KEY.encode() + b"\x00"
    api.server.routes["/api/bin"] = lambda rec: (200, {"Content-Type": "image/png"}, payload)
    extra = {
        "messages/bin.yaml": f"""\
            endpoint: {api.server.base}/api/bin
            auth: {{type: api_key, value: "{API_KEY}"}}
            """
    }
    _registry(api.root, api.server.base, **extra)
    assert api.send("bin", "--log-level", "all").code == 0
    [rec] = records()
    assert rec["response_body_encoding"] == "base64"
    assert base64.b64decode(rec["response_body"]) == b"\xff\xfe****\x00"


def _spellings(secret: str) -> set[str]:
    raw = secret.encode()
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        json.dumps(secret)[1:-1],
    }


@pytest.mark.parametrize("level", ["basic", "elevated", "all"])
@pytest.mark.parametrize("target", ["items.create", "basic", "keyed", "static", "posted"])
def test_no_secret_in_any_encoding_at_any_level(api: Api, level: str, target: str) -> None:
    # A known secret in the JSON body, which the API echoes back (in its body and a header).
    r = api.send(target, "-V", f"name={CLIENT_SECRET}", "--log-level", level)
    assert r.code == 0, r.err
    # A second call: the cached token, sent again.
    assert api.send(target, "-V", "name=x", "--log-level", level).code == 0
    text = log_text()
    secrets = [CLIENT_SECRET, BASIC_PASSWORD, API_KEY, STATIC_TOKEN, USER_PASSWORD]
    secrets += api.issued + api.refreshes
    secrets += [f"ann:{BASIC_PASSWORD}", f"app:{quote_plus(CLIENT_SECRET)}"]
    for secret in secrets:
        for spelling in _spellings(secret):
            assert spelling not in text, (secret, spelling)
    assert all(isinstance(rec, dict) for rec in records())  # every line still parses


# -- precedence, off and bad values ---------------------------------------------------


def _levels_registry(api: Api, profile: str, message: str, method: str) -> None:
    def line(key: str, value: str) -> str:
        return f"{key}log_level: {value}\n" if value else ""

    extra = {
        "profiles/levelled.yaml": f"""\
            grant_type: client_credentials
            token_url: {api.server.base}/token
            client_id: app
            client_secret: x-secret-1
            """
        + line("", profile),
        "messages/levelled.yaml": f"endpoint: {api.server.base}/api/items\n"
        "auth: {type: oauth2, profile: levelled}\n"
        + line("", message)
        + "methods:\n  list:\n    http_method: GET\n"
        + line("    ", method),
    }
    _registry(api.root, api.server.base, **extra)


@pytest.mark.parametrize(
    ("profile", "message", "method", "env", "flag", "expected"),
    [
        ("", "", "", None, None, "basic"),
        ("all", "", "", None, None, "all"),
        ("all", "elevated", "", None, None, "elevated"),
        ("all", "elevated", "basic", None, None, "basic"),
        ("all", "elevated", "basic", "all", None, "all"),
        ("all", "elevated", "basic", "all", "elevated", "elevated"),
        ("basic", "", "", None, "off", None),
        ("basic", "", "off", None, None, None),  # YAML 1.1's bare off (false) means off
        ("basic", "'off'", "", None, None, None),
        ("off", "", "", "basic", None, "basic"),
    ],
)
def test_the_level_is_the_first_that_says_one(
    api: Api,
    monkeypatch: pytest.MonkeyPatch,
    profile: str,
    message: str,
    method: str,
    env: str | None,
    flag: str | None,
    expected: str | None,
) -> None:
    _levels_registry(api, profile, message, method)
    if env is not None:
        monkeypatch.setenv("OAUTHCLI_LOG_LEVEL", env)
    r = api.send("levelled.list", *(["--log-level", flag] if flag else []))
    assert r.code == 0, r.err
    got = records()
    if expected is None:
        assert got == [] and not (log_folder() / place.CURRENT).exists()
    else:
        assert [rec["level"] for rec in got] == [expected]


@pytest.mark.parametrize(
    ("profile", "message", "method", "shown"),
    [
        ("", "", "", "basic (default)"),
        ("all", "", "", "all (profile levelled)"),
        ("all", "elevated", "", "elevated (message)"),
        ("all", "elevated", "off", "off (message)"),
    ],
)
def test_show_says_the_level_the_files_give_a_call(
    api: Api, profile: str, message: str, method: str, shown: str
) -> None:
    _levels_registry(api, profile, message, method)
    r = api.cli("show", "levelled.list")
    assert r.code == 0, r.err
    assert [
        line.split(None, 1)[1] for line in r.out.splitlines() if line.startswith("log_level:")
    ] == [shown]


def test_a_bad_log_level_in_a_file_is_exit_3_at_its_line(api: Api) -> None:
    _levels_registry(api, "", "", "verbose")
    r = api.send("levelled.list")
    assert r.code == 3 and "Traceback" not in r.err
    assert "levelled.yaml:6:" in r.err and "log_level" in r.err and "'verbose'" in r.err
    assert "off, basic, elevated, all" in r.err
    _levels_registry(api, "true", "", "")
    r = api.send("levelled.list")
    assert r.code == 3 and "levelled.yaml:5:" in r.err and "true is not one of" in r.err


def test_a_bad_log_level_option_is_exit_2(api: Api) -> None:
    for args in (["send", "items.list"], ["get-token", "acme"], ["token", "revoke", "posted"]):
        r = api.cli(*args, "--log-level", "loud")
        assert r.code == 2 and "--log-level" in r.err and "'loud'" in r.err, r.err
    assert api.issued == [] and records() == []


def test_a_bad_log_level_variable_is_exit_3_naming_it(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHCLI_LOG_LEVEL", "chatty")
    r = api.send("items.list")
    assert r.code == 3 and "OAUTHCLI_LOG_LEVEL='chatty' is not one of" in r.err
    assert "Traceback" not in r.err and api.issued == []


# -- failures -------------------------------------------------------------------------


def test_a_network_failure_is_recorded_with_its_exit_code(api: Api) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    extra = {
        "messages/gone.yaml": f"""\
            endpoint: http://127.0.0.1:{port}/x
            auth: {{type: oauth2, profile: acme}}
            """
    }
    _registry(api.root, api.server.base, **extra)
    r = api.send("gone", "--log-level", "elevated")
    assert r.code == 7, r.err
    [rec] = records()
    assert rec["status"] is None and rec["reason"] is None and rec["exit_code"] == 7
    assert "127.0.0.1" in rec["error"] and rec["token_requests"][0]["status"] == 200
    assert rec["response_headers"] is None


def test_a_refused_token_request_is_recorded_with_exit_6(api: Api) -> None:
    api.server.routes["/token"] = lambda rec: (
        401,
        JSON,
        json.dumps({"error": "invalid_client", "error_description": CLIENT_SECRET}).encode(),
    )
    r = api.send("items.list", "--log-level", "all")
    assert r.code == 6, r.err
    [rec] = records()
    assert rec["exit_code"] == 6 and "invalid_client" in rec["error"]
    assert rec["status"] is None
    [tr] = rec["token_requests"]
    assert tr["status"] == 401 and "invalid_client" in tr["response_body"]
    assert CLIENT_SECRET not in log_text() and quote_plus(CLIENT_SECRET) not in log_text()


def test_an_api_error_status_keeps_its_exit_code_and_no_fail_its_zero(api: Api) -> None:
    api.server.routes["/api/items"] = lambda rec: (503, JSON, b'{"down": true}')
    assert api.send("items.list", "--retries", "0").code == 5
    assert api.send("items.list", "--no-fail").code == 0
    assert [(r["status"], r["exit_code"]) for r in records()] == [(503, 5), (503, 0)]


# -- token decisions ------------------------------------------------------------------


def _cached_left(seconds: float, **changes: Any) -> None:
    """Make the one cached token have ``seconds`` left (and other ``changes``)."""
    folder = Path(os.environ["OAUTHCLI_CACHE_DIR"])
    [path] = [p for p in folder.iterdir() if p.suffix == ".json"]
    data = json.loads(path.read_text())
    data.update(expires_at=time.time() + seconds, **changes)
    path.write_text(json.dumps(data))


def test_renewal_window_decision_gives_the_numbers(api: Api) -> None:
    api.expires_in = 100  # a quarter is 25 s: due under min(60, 25) s left
    assert api.send("items.list").code == 0
    _cached_left(10)  # 10 s left of a 100 s token
    assert api.send("items.list").code == 0
    rec = records()[1]
    assert kinds(rec) == ["due", "refresh"]
    due = rec["decisions"][0]
    assert 8 <= due["expires_in_s"] <= 10 and due["window_s"] == 25 and due["leeway_s"] == 60
    assert "renewing" in due["text"]
    assert [t["grant"] for t in rec["token_requests"]] == ["refresh_token"]


def test_a_rotated_refresh_token_is_a_decision(api: Api) -> None:
    api.rotate = True
    assert api.send("items.list").code == 0
    _cached_left(5)
    assert api.send("items.list").code == 0
    rec = records()[1]
    assert kinds(rec) == ["due", "refresh", "rotated"]


def test_a_refused_refresh_token_is_a_decision_then_the_grant(api: Api) -> None:
    assert api.send("items.list").code == 0
    _cached_left(5)
    token = api.token

    def refuse_refresh(rec: Recorded) -> Any:
        if b"grant_type=refresh_token" in rec.body:
            return 400, JSON, b'{"error": "invalid_grant"}'
        return token(rec)

    api.server.routes["/token"] = refuse_refresh
    assert api.send("items.list").code == 0
    rec = records()[1]
    assert kinds(rec) == ["due", "refresh", "refresh_refused", "grant"]
    assert [t["status"] for t in rec["token_requests"]] == [400, 200]


def test_a_401_to_the_cached_token_is_a_decision(api: Api) -> None:
    assert api.send("items.list").code == 0
    api.refused.add(api.issued[0])
    assert api.send("items.list").code == 0
    rec = records()[1]
    assert kinds(rec) == ["cached", "refused_401", "forced", "grant"], rec["decisions"]
    assert rec["status"] == 200 and len(rec["token_requests"]) == 1


def test_a_transient_failure_inside_the_window_uses_the_still_valid_token(api: Api) -> None:
    api.expires_in = 100
    assert api.send("items.list").code == 0
    _cached_left(20, refresh_token=None)
    api.server.routes["/token"] = lambda rec: (503, JSON, b'{"error": "temporarily_unavailable"}')
    r = api.send("items.list")
    assert r.code == 0, r.err
    rec = records()[1]
    assert kinds(rec)[-1] == "stale_used" and 15 <= rec["decisions"][-1]["expires_in_s"] <= 20


def test_get_token_and_revoke_are_records_of_their_own(api: Api) -> None:
    assert api.cli("get-token", "posted").code == 0
    assert api.cli("get-token", "posted").code == 0
    assert api.cli("get-token", "posted", "--force", "--log-level", "all").code == 0
    assert api.cli("token", "revoke", "posted").code == 0
    got = records()
    assert [r["kind"] for r in got] == ["token", "token", "token", "revoke"]
    assert [kinds(r) for r in got[:3]] == [
        ["none_cached", "grant"],
        ["cached"],
        ["forced", "grant"],
    ]
    assert got[0]["profile"] == "posted" and got[0]["exit_code"] == 0
    assert got[0]["status"] == 200 and got[1]["status"] is None and got[1]["attempts"] == 0
    assert parse_qs(got[2]["token_requests"][0]["request_body"])["password"] == ["****"]
    revoke = got[3]
    assert revoke["url"] == api.server.url("/revoke") and revoke["status"] == 200
    assert [t["grant"] for t in revoke["token_requests"]] == [None, None]  # refresh, access
    assert all(s not in log_text() for s in api.issued + api.refreshes)


# -- batches ----------------------------------------------------------------------------


def _rows(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text("name\n" + "".join(f"row{i}\n" for i in range(1, n + 1)))
    return path


def test_each_row_of_a_batch_is_one_record(api: Api, tmp_path: Path) -> None:
    r = api.send("items.create", "--each", str(_rows(tmp_path, 5)), "--log-level", "all")
    assert r.code == 0, r.err
    got = records()
    assert len(got) == 5 and {g["message"] for g in got} == {"items.create"}
    names = sorted(json.loads(g["request_body"])["name"] for g in got)
    assert names == [f"row{i}" for i in range(1, 6)]
    assert sum(len(g["token_requests"]) for g in got) == 1
    assert all(kinds(g) in (["none_cached", "grant"], ["cached"]) for g in got)


def test_rows_sent_by_worker_processes_write_their_own_records(api: Api, tmp_path: Path) -> None:
    api.server.httpd.socket.listen(128)  # 40 connections at once: more than http.server's 5
    r = api.send("items.create", "--each", str(_rows(tmp_path, 80)), "--concurrency", "40")
    assert r.code == 0, r.err
    got = records()
    assert len(got) == 80 and len({g["pid"] for g in got}) >= 2, {g["pid"] for g in got}
    assert os.getpid() not in {g["pid"] for g in got}  # the rows went to worker processes
    assert all(g["level"] == "basic" and g["exit_code"] == 0 for g in got)
    r = api.send("items.create", "--each", str(_rows(tmp_path, 5)), "--log-level", "off")
    assert r.code == 0 and len(records()) == 80


# -- an unusable log folder ---------------------------------------------------------------


def test_an_unusable_log_folder_is_one_warning_and_the_same_result(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = api.send("items.list")
    assert before.code == 0
    folder = log_folder()
    folder.chmod(0o777)
    writer._after_fork()
    r = api.send("items.list", "--each", "-", input="a\nb\nc\n")
    assert r.code == 0
    warnings = [line for line in r.err.splitlines() if "outbound log" in line]
    assert len(warnings) == 1 and "is writable by group and others" in warnings[0], r.err
    assert "calls are not logged" in warnings[0]
    assert len(records()) == 1  # only the call before


def test_each_page_of_paginate_is_a_record(api: Api) -> None:
    link = {**JSON, "Link": f'<{api.server.url("/api/p2")}>; rel="next"'}
    api.server.reply("/api/p1", 200, b"[1]", **link)
    api.server.reply("/api/p2", 200, b"[2]", **JSON)
    extra = {
        "messages/paged.yaml": f"""\
            endpoint: {api.server.base}/api/p1
            auth: {{type: oauth2, profile: acme}}
            """
    }
    _registry(api.root, api.server.base, **extra)
    r = api.send("paged", "--paginate")
    assert r.code == 0, r.err
    got = records()
    assert [g["url"] for g in got] == [api.server.url("/api/p1"), api.server.url("/api/p2")]
    assert [kinds(g) for g in got] == [["none_cached", "grant"], ["cached"]]


def test_the_environment_is_named_in_the_record(api: Api) -> None:
    extra = {"environments/dev.yaml": "variables: {x: 1}\n"}
    _registry(api.root, api.server.base, **extra)
    assert run("-r", str(api.root), "-e", "dev", "send", "items.list").code == 0
    assert records()[0]["environment"] == "dev"


def test_oauthcli_log_reads_what_the_writer_wrote(api: Api, tmp_path: Path) -> None:
    assert api.send("items.list", "--log-level", "all").code == 0
    api.server.routes["/api/items"] = lambda rec: (500, JSON, b"{}")
    assert api.send("items.list", "--retries", "0").code == 5
    shown = run("log", "--json")
    assert shown.code == 0, shown.err
    assert [json.loads(line)["status"] for line in shown.out.splitlines()] == [200, 500]
    failed = run("log", "--failed", "--json")
    assert [json.loads(line)["exit_code"] for line in failed.out.splitlines()] == [5]
    har = tmp_path / "calls.har"
    assert run("log", "--har", str(har)).code == 0
    entries = json.loads(har.read_text())["log"]["entries"]
    assert len(entries) == 3  # the token request and the two calls
    assert all(s not in har.read_text() for s in api.issued + [CLIENT_SECRET])


def test_a_cache_that_cannot_be_written_is_a_decision_of_each_call(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = Path(os.environ["OAUTHCLI_CACHE_DIR"])
    blocker = cache_dir.parent / "not-a-folder"
    blocker.write_text("x")
    monkeypatch.setenv("OAUTHCLI_CACHE_DIR", str(blocker / "cache"))
    first = api.send("items.list")
    second = api.send("items.list")
    assert first.code == second.code == 0, first.err
    got = records()
    for rec in got:  # every call says it (the warning comes once per process)
        assert kinds(rec) == ["none_cached", "cache_unwritable", "grant"], rec["decisions"]
        assert rec["decisions"][1]["folder"] == str(blocker / "cache")
    assert len(api.issued) == 2  # nothing cached: each call asked for a token
