"""``oauthcli send`` through the CLI against a real loopback API and token endpoint."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.clirun import Result, run
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded

CLIENT_SECRET = "cs-LEAK-client-secret-7f3a"
BASIC_PASSWORD = "pw-LEAK-basic-91c2"
API_KEY = "ak-LEAK-api-key-55d1"
STATIC_TOKEN = "bt-LEAK-static-bearer-0e4b"
JSON = {"Content-Type": "application/json"}


def b64(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


@dataclass
class Api:
    """A registry whose messages call ``server``, which also runs the token endpoint."""

    server: LoopbackServer
    root: Path
    issued: list[str] = field(default_factory=list)
    claims: dict[str, Any] = field(default_factory=dict)
    token_reply: Callable[[Recorded], Any] | None = None
    accepted: set[str] | None = None  # None: every issued token

    def send(self, *args: str, input: str | None = None) -> Result:
        return run("-r", str(self.root), "send", *args, input=input)

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.server.requests if r.path.split("?")[0] == path]

    def token(self, rec: Recorded) -> Any:
        if self.token_reply is not None:
            return self.token_reply(rec)
        claims = {
            "iss": self.server.base,
            "sub": "app",
            "aud": self.server.base,
            "scope": "api.read",
            "exp": int(time.time()) + 300,
            "n": len(self.issued) + 1,
            **self.claims,
        }
        value = f"{b64({'alg': 'RS256'})}.{b64(claims)}.c2ln"
        self.issued.append(value)
        body = {"access_token": value, "token_type": "bearer", "expires_in": 300}
        return 200, JSON, json.dumps(body).encode()

    def authorised(self, rec: Recorded) -> bool:
        allowed = set(self.issued) if self.accepted is None else self.accepted
        return rec.headers.get("authorization") in {f"Bearer {t}" for t in allowed}

    def items(self, rec: Recorded) -> Any:
        if not self.authorised(rec):
            challenge = 'Bearer error="invalid_token", error_description="audience mismatch"'
            return 401, {**JSON, "WWW-Authenticate": challenge}, b'{"message": "bad token"}'
        body = {"items": [{"id": 1, "name": "disk full"}], "query": rec.path.partition("?")[2]}
        return 200, {**JSON, "Set-Cookie": "session=cookie-LEAK-1"}, json.dumps(body).encode()

    def echo(self, rec: Recorded) -> Any:
        return 200, JSON, json.dumps({"headers": rec.headers, "body": rec.body.decode()}).encode()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def api(loopback: LoopbackServer, tmp_path: Path) -> Api:
    base = loopback.base
    root = make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": f"""\
                grant_type: client_credentials
                token_url: {base}/token
                client_id: app
                client_secret: {CLIENT_SECRET}
                scope: api.read
                """,
            "messages/items.yaml": f"""\
                endpoint: {base}/api/items
                auth: {{type: oauth2, profile: acme}}
                headers: {{Accept: application/json}}
                variables: {{limit: "10"}}
                retry: {{attempts: 1}}
                methods:
                  list:
                    http_method: GET
                    query: {{limit: "${{limit}}"}}
                  get:
                    http_method: GET
                    path: /${{id}}
                  create:
                    http_method: POST
                    json: {{name: "${{name}}"}}
                """,
            "messages/basic.yaml": f"""\
                endpoint: {base}/api/echo
                auth: {{type: basic, username: alice, password: {BASIC_PASSWORD}}}
                methods: {{call: {{http_method: POST, content: "hello"}}}}
                """,
            "messages/keyed.yaml": f"""\
                endpoint: {base}/api/echo
                auth: {{type: api_key, header: X-Api-Key, value: {API_KEY}}}
                methods: {{call: {{http_method: GET}}}}
                """,
            "messages/static.yaml": f"""\
                endpoint: {base}/api/echo
                auth: {{type: bearer, token: {STATIC_TOKEN}}}
                methods: {{call: {{http_method: GET}}}}
                """,
            "messages/status.yaml": f"""\
                endpoint: {base}/status/${{code}}
                auth: {{type: oauth2, profile: acme}}
                retry: {{attempts: 1}}
                methods: {{call: {{http_method: GET}}}}
                """,
            "messages/down.yaml": f"""\
                endpoint: http://127.0.0.1:{closed_port()}/x
                auth: {{type: basic, username: alice, password: {BASIC_PASSWORD}}}
                retry: {{attempts: 1}}
                methods: {{call: {{http_method: GET}}}}
                """,
        },
    )
    state = Api(loopback, root)
    loopback.routes["/token"] = lambda rec: state.token(rec)
    loopback.routes["/api/items"] = lambda rec: state.items(rec)
    loopback.routes["/api/echo"] = lambda rec: state.echo(rec)
    loopback.reply("/status/404", 404, b'{"error": {"message": "no such incident"}}', **JSON)
    loopback.reply("/status/403", 403, b'{"message": "not yours"}', **JSON)
    loopback.reply("/status/500", 500, b"Internal trouble\nstack...", Content_Type="text/plain")
    loopback.reply("/status/503", 503, b'{"detail": "maintenance"}', **JSON)
    loopback.reply("/status/302", 302, Location="/status/200")
    loopback.reply("/status/200", 200, b"fine")
    return state


# -- exit codes ------------------------------------------------------------------


def test_success_prints_the_body_and_exits_0(api: Api) -> None:
    r = api.send("items.list", "--var", "limit=3")
    assert r.code == 0, r.err
    assert json.loads(r.out)["query"] == "limit=3"
    assert r.err == ""
    (call,) = api.calls("/api/items")
    assert call.headers["authorization"] == f"Bearer {api.issued[0]}"
    assert call.headers["accept"] == "application/json"
    assert len(api.calls("/token")) == 1


def test_redirect_is_followed_and_3xx_is_success(api: Api) -> None:
    r = api.send("status", "-V", "code=302")
    assert (r.code, r.out) == (0, "fine")


def test_missing_variable_is_a_registry_error(api: Api) -> None:
    r = api.send("items.get")
    assert r.code == 3
    assert "id" in r.err and r.out == ""
    assert api.server.requests == []


def test_4xx_shows_the_api_message_and_exits_4(api: Api) -> None:
    r = api.send("status", "-V", "code=404")
    assert r.code == 4
    assert json.loads(r.out) == {"error": {"message": "no such incident"}}
    assert r.err.startswith("error: 404 Not Found from GET http://127.0.0.1:")
    assert "/status/404: no such incident" in r.err


def test_no_fail_exits_0(api: Api) -> None:
    r = api.send("status", "-V", "code=404", "--no-fail")
    assert r.code == 0 and "no such incident" in r.err


def test_403_shows_identity_and_scope(api: Api) -> None:
    r = api.send("status", "-V", "code=403")
    assert r.code == 4
    assert "403 Forbidden" in r.err and "not yours" in r.err
    assert "subject app" in r.err and "scope api.read" in r.err


@pytest.mark.parametrize(("code", "message"), [("500", "Internal trouble"), ("503", "maintenance")])
def test_5xx_exits_5(api: Api, code: str, message: str) -> None:
    r = api.send("status", "-V", f"code={code}")
    assert r.code == 5
    assert f"{code} " in r.err and message in r.err


def test_token_endpoint_refusal_exits_6(api: Api) -> None:
    api.token_reply = lambda rec: (
        401,
        JSON,
        json.dumps({"error": "invalid_client", "error_description": "bad secret"}).encode(),
    )
    r = api.send("items.list")
    assert r.code == 6
    assert "invalid_client" in r.err and api.calls("/api/items") == []


def test_network_failure_exits_7_with_one_line(api: Api) -> None:
    r = api.send("down")
    assert r.code == 7
    assert r.err.count("\n") == 1
    assert r.err.startswith("error: cannot reach http://127.0.0.1:")
    assert "connection refused" in r.err


def test_timeout_exits_7(api: Api) -> None:
    def slow(rec: Recorded) -> Any:
        time.sleep(0.4)
        return 200, {}, b"late"

    api.server.routes["/status/slow"] = slow
    r = api.send("status", "-V", "code=slow", "--timeout", "0.1")
    assert r.code == 7 and "no response within 0.1 s" in r.err


# -- 401 recovery ---------------------------------------------------------------------


def test_401_on_cached_token_renews_and_succeeds(api: Api) -> None:
    assert api.send("items.list").code == 0  # caches token 1
    api.accepted = set()  # token 1 is revoked...

    def issue(rec: Recorded) -> Any:
        reply = api.token(rec)
        assert api.accepted is not None
        api.accepted.add(api.issued[-1])  # ...and the next one is good
        return reply

    api.server.routes["/token"] = issue
    r = api.send("items.list", "--json")
    assert r.code == 0, r.err
    assert json.loads(r.out)["attempts"] == 2
    sent = [c.headers["authorization"] for c in api.calls("/api/items")]
    assert sent == [f"Bearer {api.issued[0]}", f"Bearer {api.issued[0]}", f"Bearer {api.issued[1]}"]


def test_second_401_is_explained_and_exits_4(api: Api) -> None:
    api.claims = {"aud": "https://api.other.test"}
    assert api.send("items.list").code == 0
    api.accepted = set()
    r = api.send("items.list")
    assert r.code == 4
    assert len(api.calls("/token")) == 2
    host = api.server.base.removeprefix("http://")
    assert "401 Unauthorized" in r.err and "bad token" in r.err
    assert "WWW-Authenticate says invalid_token: audience mismatch" in r.err
    assert "the cached token was dropped and a new one obtained" in r.err
    assert f"the token's aud is https://api.other.test but you are calling host {host}" in r.err
    assert "check profile acme (acme.yaml)" in r.err
    assert all(token not in r.both for token in api.issued)


def test_401_on_fresh_token_is_explained_at_once(api: Api) -> None:
    api.accepted = set()
    api.claims = {"exp": int(time.time()) - 180}
    r = api.send("items.list")
    assert r.code == 4
    assert len(api.calls("/token")) == 1 and len(api.calls("/api/items")) == 1
    assert "just obtained" in r.err and "token expired 3 min ago: check the clock" in r.err


# -- request building ---------------------------------------------------------------------


def test_header_option_overrides_case_insensitively(api: Api) -> None:
    r = api.send("items.list", "-H", "accept: text/plain", "-H", "X-Extra: 1")
    assert r.code == 0
    (call,) = api.calls("/api/items")
    assert call.headers["accept"] == "text/plain" and call.headers["x-extra"] == "1"


def test_authorization_header_option_wins_and_is_masked(api: Api) -> None:
    r = api.send("keyed", "-H", "X-Api-Key: user-given-key-123", "-v")
    assert r.code == 0
    assert api.calls("/api/echo")[0].headers["x-api-key"] == "user-given-key-123"
    assert "> X-Api-Key: ****" in r.err
    assert "user-given-key-123" not in r.err
    # stdout is a pipe here: the echoed body is the API's data, written as received (SPEC §2)
    assert json.loads(r.out)["headers"]["x-api-key"] == "user-given-key-123"


def test_body_from_file_and_stdin(api: Api, tmp_path: Path) -> None:
    payload = tmp_path / "body.json"
    payload.write_bytes(b'{"name": "from file"}')
    assert api.send("items.create", "--body", f"@{payload}").code == 0  # no ${name} needed
    (call,) = api.calls("/api/items")
    assert call.body == b'{"name": "from file"}'
    assert call.headers["content-type"] == "application/json"
    assert api.send("basic", "--body", "-", input="from stdin").code == 0
    assert api.calls("/api/echo")[-1].body == b"from stdin"
    r = api.send("basic", "--body", "inline")
    assert r.code == 2 and "@FILE" in r.err
    r = api.send("basic", "--body", f"@{tmp_path / 'nope'}")
    assert r.code == 2 and "nope" in r.err


def test_vars_file_yaml_json_and_bad(api: Api, tmp_path: Path) -> None:
    (tmp_path / "v.yaml").write_text("limit: 7\n")
    (tmp_path / "v.json").write_text('{"limit": 8}')
    (tmp_path / "bad.yaml").write_text("limit: [unclosed\n")
    (tmp_path / "list.json").write_text("[1, 2]")
    assert api.send("items.list", "--vars-file", str(tmp_path / "v.yaml")).code == 0
    r = api.send("items.list", "--vars-file", str(tmp_path / "v.json"), "-V", "limit=9", "--json")
    assert json.loads(r.out)["body"]["query"] == "limit=9"  # --var wins over the file
    assert api.calls("/api/items")[0].path.endswith("limit=7")
    for bad in ("bad.yaml", "list.json", "missing.yaml"):
        r = api.send("items.list", "--vars-file", str(tmp_path / bad))
        assert r.code == 2 and bad in r.err, r.err


def test_retries_option_and_retry_after(api: Api) -> None:
    answers = [(503, {"Retry-After": "0"}, b"busy"), (200, {}, b"ok")]
    api.server.routes["/status/flaky"] = lambda rec: answers.pop(0)
    r = api.send("status", "-V", "code=flaky", "--retries", "1", "--json")
    assert r.code == 0
    assert json.loads(r.out)["attempts"] == 2


# -- output modes -------------------------------------------------------------------------


def test_json_result_shape(api: Api) -> None:
    r = api.send("items.list", "--json")
    assert r.code == 0
    doc = json.loads(r.out)
    assert set(doc) == {
        "status",
        "reason",
        "url",
        "http_method",
        "headers",
        "body",
        "elapsed_ms",
        "attempts",
    }
    assert (doc["status"], doc["reason"], doc["http_method"], doc["attempts"]) == (
        200,
        "OK",
        "GET",
        1,
    )
    assert doc["url"] == f"{api.server.base}/api/items?limit=10"
    assert doc["body"]["items"][0]["name"] == "disk full"
    assert doc["headers"]["Set-Cookie"] == "****"
    assert isinstance(doc["elapsed_ms"], int)
    text = json.loads(api.send("status", "-V", "code=500", "--json").out)["body"]
    assert text == "Internal trouble\nstack..."


def test_verbose_masks_credentials(api: Api) -> None:
    r = api.send("items.list", "-v")
    assert r.code == 0
    assert "> GET /api/items?limit=10 HTTP/1.1" in r.err
    assert "> Authorization: Bearer ****" in r.err
    assert "< HTTP/1.1 200 OK" in r.err and "< Set-Cookie: ****" in r.err
    assert api.issued[0] not in r.both and "cookie-LEAK-1" not in r.err
    r = api.send("basic", "-v")
    assert "> Authorization: Basic ****" in r.err


def test_dry_run_prints_request_and_curl_and_sends_nothing(
    api: Api, isolated_oauthcli: Path
) -> None:
    r = api.send("items.create", "-V", "name=disk", "--dry-run")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == f"POST {api.server.base}/api/items"
    assert "Authorization: Bearer ****" in lines
    assert "Content-Type: application/json" in lines
    assert '{"name": "disk"}' in lines
    curl = lines[-1]
    assert curl.startswith(f"curl -X POST {api.server.base}/api/items")
    assert '-H "Authorization: Bearer $TOKEN"' in curl
    assert '--data-binary \'{"name": "disk"}\'' in curl
    assert "# TOKEN=$(oauthcli get-token acme --raw)" in r.out
    assert api.server.requests == []
    assert not list(isolated_oauthcli.glob("*.json"))  # no token fetched or stored
    basic = api.send("basic", "--dry-run").out
    assert '-u "alice:$PASSWORD"' in basic and BASIC_PASSWORD not in basic
    keyed = api.send("keyed", "--dry-run").out
    assert "X-Api-Key: ****" in keyed and '-H "X-Api-Key: $API_KEY"' in keyed


def test_dry_run_with_json_is_one_object(api: Api, isolated_oauthcli: Path) -> None:
    r = api.send("items.create", "-V", "name=disk", "--dry-run", "--json")
    assert r.code == 0, r.err
    got = json.loads(r.out)
    assert got["dry_run"] is True and got["http_method"] == "POST"
    assert got["url"] == f"{api.server.base}/api/items"
    assert got["headers"]["Authorization"] == "Bearer ****"
    assert got["headers"]["Content-Type"] == "application/json"
    assert got["body"] == '{"name": "disk"}'
    assert got["curl"][0] == "# TOKEN=$(oauthcli get-token acme --raw)"
    assert got["curl"][-1].startswith(f"curl -X POST {api.server.base}/api/items")
    assert api.server.requests == []
    keyed = json.loads(api.send("keyed", "--dry-run", "--json").out)
    assert keyed["headers"]["X-Api-Key"] == "****"
    basic = api.send("basic", "--dry-run", "--json").out
    assert BASIC_PASSWORD not in basic and json.loads(basic)["headers"]["Authorization"] == (
        "Basic ****"
    )


# -- --each ----------------------------------------------------------------------------------


def test_each_csv_rows_in_order_with_worst_exit(api: Api, tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("code\n200\n404\n200\n503\n302\n")
    r = api.send("status", "--each", str(rows), "--concurrency", "3")
    assert r.code == 5
    results = [json.loads(line) for line in r.out.splitlines()]
    assert [x["row"] for x in results] == [1, 2, 3, 4, 5]
    assert [x["status"] for x in results] == [200, 404, 200, 503, 200]
    assert [x["exit_code"] for x in results] == [0, 4, 0, 5, 0]
    assert results[1]["error"].endswith("no such incident")
    assert "5 row(s)" in r.err and "3 ok, 1 4xx, 1 5xx" in r.err
    assert "row 2: 404 Not Found" in r.err
    assert len(api.calls("/token")) == 1


def test_each_jsonl_from_stdin_with_errors_per_row(api: Api) -> None:
    api.server.routes["/api/items/1"] = api.items
    r = api.send("items.get", "--each", "-", input='{"id": 1}\n\n{"other": 2}\n')
    results = [json.loads(line) for line in r.out.splitlines()]
    assert [x["exit_code"] for x in results] == [0, 3]
    assert results[1]["status"] is None and "id" in results[1]["error"]
    assert r.code == 3


def test_each_bad_input_and_rate(api: Api, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n[2]\n')
    r = api.send("items.get", "--each", str(bad))
    assert r.code == 2 and "bad.jsonl:2" in r.err
    assert api.send("items.list", "--rate", "5/s").code == 2
    rows = tmp_path / "r.csv"
    rows.write_text("limit\n1\n2\n")
    assert api.send("items.list", "--each", str(rows), "--rate", "fast").code == 2
    assert api.send("items.list", "--each", str(rows), "--rate", "100/s").code == 0


# -- secrets never leak ------------------------------------------------------------------------


def test_no_secret_in_any_output(api: Api, tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("code\n200\n404\n")
    runs = [
        ("items.list",),
        ("items.list", "--json"),
        ("items.list", "-v"),
        ("items.list", "--dry-run"),
        ("basic", "-v"),
        ("basic", "--json"),  # the echo route returns the Authorization header in the body
        ("basic",),
        ("keyed", "-v", "--json"),
        ("keyed",),
        ("static", "-v"),
        ("static", "--dry-run"),
        ("down", "-v"),
        ("status", "-V", "code=403", "-v"),
        ("status", "-V", "code=500", "--json"),
        ("status", "--each", str(rows), "-v"),
        ("items.list", "-H", f"Authorization: Bearer {STATIC_TOKEN}", "-v"),
    ]
    outputs = [api.send(*args).both for args in runs]
    api.accepted = set()
    outputs.append(api.send("items.list", "-v").both)  # 401 → renew → 401 → explanation
    api.token_reply = lambda rec: (
        400,
        JSON,
        json.dumps({"error": "invalid_client", "error_description": CLIENT_SECRET}).encode(),
    )
    outputs.append(api.send("items.list", "--json").both)
    secrets = [CLIENT_SECRET, BASIC_PASSWORD, API_KEY, STATIC_TOKEN, "cookie-LEAK-1", *api.issued]
    basic_b64 = base64.b64encode(f"alice:{BASIC_PASSWORD}".encode()).decode()
    # stdout is a pipe: a body is written as received (SPEC §2), and the echo route's
    # body holds the credential it got; only what oauthcli renders is checked there.
    echoed = {("basic", "-v"), ("basic",), ("keyed",), ("static", "-v")}
    for args, text in zip([*runs, ("401",), ("token error",)], outputs, strict=True):
        if args in echoed:
            continue
        for secret in [*secrets, basic_b64]:
            assert secret not in text, (args, secret)
    for args in echoed:
        r = api.send(*args)
        assert '"headers"' in r.out, args  # the body, as the API sent it
        for secret in [*secrets, basic_b64]:
            assert secret not in r.err, (args, secret)
