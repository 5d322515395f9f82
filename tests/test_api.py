"""The Python API (SPEC §8) from the outside: against the sandbox and loopback servers."""

from __future__ import annotations

import io
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

import oauthcli
from oauthcli.errors import ExitCode
from oauthcli.sandbox import BASIC_CLIENT_SECRET, Sandbox
from tests.clirun import run
from tests.conftest import LoopbackServer, Recorded, Reply
from tests.registry_factory import make_registry

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
KNOWN_ID = "9d385017c611228701d22104cc95c371"
PUBLIC = {
    "AccessToken",
    "Failed",
    "HTTPStatusError",
    "NetworkError",
    "OAuthCliError",
    "OAuthCliWarning",
    "ProfileAuth",
    "Registry",
    "RegistryError",
    "Response",
    "TokenError",
    "UsageError",
    "__version__",
    "open_registry",
}


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0, token_ttl=300) as running:
        yield running


@pytest.fixture
def reg(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Iterator[oauthcli.Registry]:
    """The project's own sample registry, pointed at the sandbox."""
    monkeypatch.setenv("OAUTHCLI_SANDBOX_URL", sandbox.url)
    with oauthcli.open_registry(ROOT) as opened:
        yield opened


@pytest.fixture
def own(tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A registry of the sandbox-basic profile and messages written for these tests."""
    monkeypatch.setenv("OAUTHCLI_SANDBOX_URL", sandbox.url)
    root = make_registry(
        tmp_path / "reg",
        {
            "messages/item.yaml": f"""\
                endpoint: {sandbox.url}/api/now/table/incident
                auth: {{type: oauth2, profile: sandbox-basic}}
                methods:
                  get: {{http_method: GET, path: "/${{sys_id}}"}}
                """,
            "messages/plain.yaml": f"""\
                endpoint: {sandbox.url}/api/now/table/incident
                methods:
                  get: {{http_method: GET}}
                """,
            "messages/unverified.yaml": f"""\
                endpoint: {sandbox.url}/api/now/table/incident
                auth: {{type: oauth2, profile: sandbox-basic}}
                tls: {{verify: false}}
                methods:
                  list: {{http_method: GET, query: {{sysparm_limit: "1"}}}}
                """,
        },
    )
    shutil.copy(ROOT / "profiles/sandbox-basic.yaml", root / "profiles/sandbox-basic.yaml")
    return root


# -- the package's surface ---------------------------------------------------


def test_all_lists_exactly_the_public_names_and_each_imports() -> None:
    assert set(oauthcli.__all__) == PUBLIC
    assert len(oauthcli.__all__) == len(PUBLIC)
    for name in oauthcli.__all__:
        assert getattr(oauthcli, name) is not None
    namespace: dict[str, object] = {}
    exec(f"from oauthcli import {', '.join(sorted(PUBLIC))}", namespace)
    assert oauthcli.RegistryError is oauthcli.errors.RegistryError
    assert (ROOT / "oauthcli/py.typed").is_file()


def test_errors_carry_the_cli_exit_codes() -> None:
    assert oauthcli.RegistryError.exit_code == ExitCode.REGISTRY == 3
    assert oauthcli.TokenError.exit_code == 6
    assert oauthcli.NetworkError.exit_code == 7
    assert oauthcli.HTTPStatusError("x", status=404).exit_code == 4
    assert oauthcli.HTTPStatusError("x", status=503).exit_code == 5


# -- open_registry -----------------------------------------------------------


def test_open_registry_is_found_as_the_cli_finds_it(
    own: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert oauthcli.open_registry(own).root == own
    assert oauthcli.open_registry(str(own)).root == own
    monkeypatch.setenv("OAUTHCLI_REGISTRY", str(own))
    assert oauthcli.open_registry().root == own
    monkeypatch.delenv("OAUTHCLI_REGISTRY")
    monkeypatch.chdir(own)
    assert oauthcli.open_registry().root == own
    with pytest.raises(oauthcli.RegistryError, match="does not exist") as info:
        oauthcli.open_registry(tmp_path / "nowhere")
    assert info.value.exit_code == 3


def test_open_registry_with_an_unknown_environment_says_so(own: Path) -> None:
    with pytest.raises(oauthcli.RegistryError, match="unknown environment 'prod'") as info:
        oauthcli.open_registry(own, env="prod")
    assert info.value.exit_code == 3


# -- send --------------------------------------------------------------------


def test_send_returns_the_answer(reg: oauthcli.Registry, sandbox: Sandbox) -> None:
    r = reg.send("incidents.list", {"limit": "2"})
    assert (r.status, r.reason, r.attempts, r.ok) == (200, "OK", 1, True)
    assert r.url == f"{sandbox.url}/api/now/table/incident?sysparm_limit=2"
    assert r.headers["content-type"].startswith("application/json")
    assert len(r.json()["result"]) == 2
    assert json.loads(r.text) == json.loads(r.content)
    r.raise_for_status()  # a 2xx: nothing

    created = reg.send("incidents.create", variables={"short_description": "Disk full"})
    assert created.status == 201
    assert created.json()["result"]["short_description"] == "Disk full"


def test_send_returns_4xx_and_raise_for_status_says_what_the_cli_says(
    reg: oauthcli.Registry, sandbox: Sandbox
) -> None:
    r = reg.send("forbidden")
    assert (r.status, r.exit_code, r.ok) == (403, 4, False)
    with pytest.raises(oauthcli.HTTPStatusError) as info:
        r.raise_for_status()
    exc = info.value
    assert (exc.exit_code, exc.status, exc.response) == (4, 403, r)
    lines = str(exc).splitlines()
    assert lines[0].startswith(f"403 Forbidden from GET {sandbox.url}/api/fail/403: ")
    assert any("roles or permissions" in line for line in lines)
    cli = run("--registry", str(ROOT), "send", "forbidden")
    assert cli.code == 4
    assert all(line in cli.err for line in lines)

    server = reg.send("server-error")
    with pytest.raises(oauthcli.HTTPStatusError) as info5:
        server.raise_for_status()
    assert info5.value.exit_code == 5


def test_send_with_another_profile(reg: oauthcli.Registry, own: Path) -> None:
    r = reg.send("incidents.create", {"short_description": "by post"}, profile="sandbox-post")
    assert r.status == 201
    assert r.json()["result"]["short_description"] == "by post"
    with oauthcli.open_registry(own) as mine:
        with pytest.raises(oauthcli.RegistryError, match="not oauth2") as info:
            mine.send("plain", profile="sandbox-basic")
    assert info.value.exit_code == 3


def test_send_errors_before_an_answer(own: Path, loopback: LoopbackServer) -> None:
    with oauthcli.open_registry(own) as reg:
        with pytest.raises(oauthcli.RegistryError, match="sys_id") as missing:
            reg.send("item")
        assert missing.value.exit_code == 3
        with pytest.raises(oauthcli.RegistryError, match="no-such-profile"):
            reg.get_token("no-such-profile")


# -- headers, body and timeout on the wire (loopback) ---------------------------


def token_server(loopback: LoopbackServer, tokens: list[str]) -> None:
    """``/token`` hands out ``tokens`` in turn (the last one again once they run out)."""
    given: list[str] = []

    def answer(rec: Recorded) -> Reply:
        token = tokens[min(len(given), len(tokens) - 1)]
        given.append(token)
        body = {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    loopback.routes["/token"] = answer


def loopback_registry(root: Path, loopback: LoopbackServer) -> Path:
    return make_registry(
        root,
        {
            "profiles/acme.yaml": f"""\
                grant_type: client_credentials
                token_url: {loopback.url("/token")}
                client_id: app
                client_secret: s3cr3t-value
                """,
            "messages/items.yaml": f"""\
                endpoint: {loopback.url("/api/items")}
                auth: {{type: oauth2, profile: acme}}
                headers: {{X-Trace: from-message, Accept: application/json}}
                methods:
                  create: {{http_method: POST, json: {{name: "${{name}}"}}}}
                """,
        },
    )


def test_send_applies_headers_body_and_timeout(tmp_path: Path, loopback: LoopbackServer) -> None:
    token_server(loopback, ["tok-1"])
    loopback.reply("/api/items", 201, b'{"ok": true}', Content_Type="application/json")
    with oauthcli.open_registry(loopback_registry(tmp_path, loopback)) as reg:
        r = reg.send(
            "items.create",
            headers={"x-trace": "from-script", "Accept": ""},
            body='{"name": "raw"}',
            timeout=5,
        )
    assert (r.status, r.json()) == (201, {"ok": True})
    sent = loopback.requests[-1]
    assert sent.body == b'{"name": "raw"}'
    assert sent.headers["x-trace"] == "from-script"
    assert "accept" not in sent.headers or sent.headers["accept"] != "application/json"
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["authorization"] == "Bearer tok-1"


# -- get_token -----------------------------------------------------------------


def test_get_token_is_masked_and_shared_with_the_cli(reg: oauthcli.Registry) -> None:
    t = reg.get_token("sandbox-basic")
    value = t.access_token.reveal()
    assert t.reveal() == value and value.count(".") == 2
    assert str(t.access_token) == "****" and value not in repr(t.access_token)
    assert value not in repr(t) and value not in str(t) and value not in f"{t.access_token}"
    assert t.token_type == "Bearer" and t.scope == "incident.read incident.write"
    assert t.expires_at is not None and t.claims["client_id"] == "sandbox-basic"
    again = reg.get_token("sandbox-basic")
    assert (again.source, again.reveal()) == ("cache", value)
    forced = reg.get_token("sandbox-basic", force=True)
    assert forced.source == "grant" and forced.reveal() != value
    cli = run("--registry", str(ROOT), "get-token", "sandbox-basic", "--raw")
    assert (cli.code, cli.out) == (0, forced.reveal() + "\n")  # one cache for CLI and scripts


def test_get_token_of_an_opaque_token_has_no_claims(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    token_server(loopback, ["opaque-token-1"])
    with oauthcli.open_registry(loopback_registry(tmp_path, loopback)) as reg:
        t = reg.get_token("acme")
    assert t.claims == {} and t.reveal() == "opaque-token-1"


def test_get_token_refused_raises_token_error(tmp_path: Path, loopback: LoopbackServer) -> None:
    loopback.reply("/token", 401, b'{"error": "invalid_client"}', Content_Type="application/json")
    with oauthcli.open_registry(loopback_registry(tmp_path, loopback)) as reg:
        with pytest.raises(oauthcli.TokenError, match="invalid_client") as info:
            reg.get_token("acme")
    assert info.value.exit_code == 6
    assert "s3cr3t-value" not in str(info.value) and "s3cr3t-value" not in repr(info.value)


# -- auth() --------------------------------------------------------------------


def test_auth_on_a_plain_requests_session(reg: oauthcli.Registry, sandbox: Sandbox) -> None:
    with requests.Session() as s:
        s.auth = reg.auth("sandbox-basic")
        r = s.get(f"{sandbox.url}/api/now/table/incident/{KNOWN_ID}")
    assert r.status_code == 200 and r.json()["result"]["sys_id"] == KNOWN_ID
    assert r.request.headers["Authorization"] == f"Bearer {reg.get_token('sandbox-basic').reveal()}"
    assert "****" not in repr(s.auth) and "Bearer" not in repr(s.auth)


def stale_api(loopback: LoopbackServer, good: str) -> None:
    """``/api`` accepts only ``Bearer good``, and answers 401 to anything else."""

    def answer(rec: Recorded) -> Reply:
        if rec.headers.get("authorization") == f"Bearer {good}":
            return 200, {}, b"ok:" + rec.body
        return 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, b""

    loopback.routes["/api"] = answer


def api_calls(loopback: LoopbackServer) -> list[Recorded]:
    return [rec for rec in loopback.requests if rec.path == "/api"]


def test_auth_renews_a_cached_token_refused_with_401_and_resends_once(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    token_server(loopback, ["at-revoked-x7q", "at-fresh-x7q"])
    stale_api(loopback, "at-fresh-x7q")
    with oauthcli.open_registry(loopback_registry(tmp_path, loopback)) as reg:
        assert reg.get_token("acme").reveal() == "at-revoked-x7q"  # now in the cache
        with requests.Session() as s:
            s.auth = reg.auth("acme")
            r = s.post(loopback.url("/api"), data=b"payload")
            assert (r.status_code, r.content) == (200, b"ok:payload")
            assert [h.status_code for h in r.history] == [401]
            assert [c.headers["authorization"] for c in api_calls(loopback)] == [
                "Bearer at-revoked-x7q",
                "Bearer at-fresh-x7q",
            ]
            assert reg.get_token("acme").reveal() == "at-fresh-x7q"  # the cache holds the new one
            # A file body is rewound for the re-send.
            loopback.requests.clear()
            token_server(loopback, ["fresh-2"])
            stale_api(loopback, "fresh-2")
            r = s.put(loopback.url("/api"), data=io.BytesIO(b"file-body"))
            assert (r.status_code, r.content) == (200, b"ok:file-body")


def test_auth_does_not_retry_a_fresh_token_or_a_body_it_cannot_resend(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    token_server(loopback, ["one", "two", "at-three-x7q"])
    stale_api(loopback, "at-never-x7q")
    with oauthcli.open_registry(loopback_registry(tmp_path, loopback)) as reg:
        with requests.Session() as s:
            s.auth = reg.auth("acme")
            r = s.get(loopback.url("/api"))  # "one" is fresh from the grant: no second try
            assert r.status_code == 401 and len(api_calls(loopback)) == 1
            r = s.get(loopback.url("/api"))  # "one" from the cache: renewed once, then given up
            assert r.status_code == 401 and len(api_calls(loopback)) == 3
            loopback.requests.clear()
            r = s.post(loopback.url("/api"), data=(c for c in [b"a", b"b"]))
            assert r.status_code == 401 and len(api_calls(loopback)) == 1  # a generator: once


def test_auth_token_does_not_follow_a_redirect_to_another_host(
    tmp_path: Path, loopback: LoopbackServer, loopback2: LoopbackServer
) -> None:
    token_server(loopback, ["at-cached-x7q", "at-renewed-x7q"])
    loopback.reply("/api", 302, b"", Location=loopback2.url("/api"))
    loopback2.reply("/api", 401, b"")
    with oauthcli.open_registry(loopback_registry(tmp_path, loopback)) as reg:
        reg.get_token("acme")
        with requests.Session() as s:
            s.auth = reg.auth("acme")
            assert s.get(loopback.url("/api")).status_code == 401
    assert all("authorization" not in rec.headers for rec in loopback2.requests)
    assert len(loopback2.requests) == 1


# -- send_each -----------------------------------------------------------------


def test_send_each_yields_in_row_order_and_goes_on_after_a_failed_row(own: Path) -> None:
    rows: list[dict[str, str]] = [{"sys_id": KNOWN_ID}, {}, {"sys_id": "nope"}] * 4
    with oauthcli.open_registry(own) as reg:
        results = list(reg.send_each("item", rows, concurrency=3))
    assert len(results) == len(rows)
    for row, res in zip(rows, results, strict=True):
        if not row:
            assert isinstance(res, oauthcli.Failed)
            assert res.status is None and res.exit_code == 3 and not res.ok
            assert isinstance(res.error, oauthcli.RegistryError) and "sys_id" in str(res.error)
            with pytest.raises(oauthcli.RegistryError):
                res.raise_for_status()
        else:
            assert isinstance(res, oauthcli.Response)
            assert res.status == (200 if row["sys_id"] == KNOWN_ID else 404)
            assert res.error is None
            assert res.url.endswith("/" + row["sys_id"])


def test_send_each_reads_rows_lazily_and_stops_with_the_caller(own: Path) -> None:
    taken: list[int] = []

    def rows() -> Iterator[dict[str, str]]:
        for i in range(1000):
            taken.append(i)
            yield {"sys_id": KNOWN_ID}

    with oauthcli.open_registry(own) as reg:
        each = reg.send_each("item", rows(), concurrency=2)
        first = next(each)
        assert isinstance(first, oauthcli.Response) and first.status == 200
        each.close()
    assert len(taken) <= 5  # a window of 2 × concurrency, not the whole file


def test_send_each_with_another_profile(reg: oauthcli.Registry) -> None:
    rows = [{"short_description": f"row {i}"} for i in range(3)]
    results = list(reg.send_each("incidents.create", rows, profile="sandbox-post"))
    assert [r.status for r in results] == [201, 201, 201]
    assert [r.json()["result"]["short_description"] for r in results if r.ok] == [  # type: ignore[union-attr]
        "row 0",
        "row 1",
        "row 2",
    ]


# -- nothing printed, secrets masked ----------------------------------------------


def test_the_api_prints_nothing_and_warns_through_warnings(
    own: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with oauthcli.open_registry(own) as reg:
        reg.get_token("sandbox-basic")
        reg.send("item", {"sys_id": KNOWN_ID})
        assert reg.send("item", {"sys_id": "nope"}).status == 404
        list(reg.send_each("item", [{"sys_id": KNOWN_ID}, {}]))
        with requests.Session() as s:
            s.auth = reg.auth("sandbox-basic")
            s.get(reg.send("item", {"sys_id": KNOWN_ID}).url)
        with pytest.warns(oauthcli.OAuthCliWarning, match="verification is off"):
            assert reg.send("unverified.list").status == 200
        with pytest.warns(oauthcli.OAuthCliWarning, match="verification is off"):
            assert [r.status for r in reg.send_each("unverified.list", [{}])] == [200]
    assert capfd.readouterr() == ("", "")


def test_secrets_stay_masked_in_what_the_api_returns(
    own: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    with oauthcli.open_registry(own) as reg:
        token = reg.get_token("sandbox-basic").reveal()
        ok = reg.send("item", {"sys_id": KNOWN_ID})
        failed = list(reg.send_each("item", [{}]))[0]
        refused = reg.send("item", {"sys_id": "nope"})
        with pytest.raises(oauthcli.HTTPStatusError) as info:
            refused.raise_for_status()
        shown = [repr(reg), repr(ok), repr(failed), repr(refused), str(info.value)]
        shown += [
            repr(info.value),
            repr(reg.auth("sandbox-basic")),
            repr(reg.get_token("sandbox-basic")),
        ]
    for text in shown:
        assert token not in text and BASIC_CLIENT_SECRET not in text
    assert os.environ.get("OAUTHCLI_DEBUG") is None
