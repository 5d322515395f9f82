"""DPoP (RFC 9449) through the installed CLI: oidc-provider issues DPoP-bound tokens (server
nonces required at its token endpoint) and the DPoP API (tests/e2e/dpop_server.py) verifies
every proof: signature, htm, htu, iat, jti replay, ath, cnf.jkt and one nonce challenge.

Each test asserts from the provider's grant log that it served the DPoP grant.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from .cli import Cli, secret_env_name
from .servers import DpopServer

pytestmark = pytest.mark.e2e


@pytest.fixture
def dcli(cli: Cli, dpop_server: DpopServer) -> Cli:
    """``cli`` with profile ``dpop`` (client cli-dpop, dpop: true) and message ``dapi``."""
    return add_dpop_profile(cli, dpop_server)


def add_dpop_profile(cli: Cli, dpop_server: DpopServer) -> Cli:
    """Profile ``dpop`` (client cli-dpop, dpop: true) and message ``dapi`` (the DPoP API)."""
    client = cli.op.dpop
    (cli.root / "profiles" / "dpop.yaml").write_text(
        "\n".join(
            [
                "grant_type: client_credentials",
                f"token_url: {cli.op.token_url}",
                f"client_id: {client.client_id}",
                "client_auth: client_secret_basic",
                f"client_secret: ${{env:{secret_env_name(client)}}}",
                "scope: api.read api.write",
                f"resource: {dpop_server.api_base_url}",
                "dpop: true",
            ]
        )
        + "\n"
    )
    cli.add_message(
        "dapi",
        f"""\
endpoint: {dpop_server.api_base_url}
auth: {{type: oauth2, profile: dpop}}
headers: {{Accept: application/json}}
retry: {{attempts: 1}}
methods:
  list: {{http_method: GET, path: /incidents, query: {{page: "${{page}}"}}}}
  create:
    http_method: POST
    path: /incidents
    json: {{title: "${{title}}"}}
  me: {{http_method: GET, path: /me}}
""",
    )
    cli.env[secret_env_name(client)] = client.client_secret or ""
    return cli


def _dpop_grants(cli: Cli) -> list[dict[str, str]]:
    return [g for g in cli.op.grants_served() if g.get("client") == "cli-dpop"]


def _key_files(cli: Cli) -> list[Path]:
    return sorted(cli.cache_dir.glob("*.dpop"))


def test_send_with_dpop_bound_token(dcli: Cli, dpop_server: DpopServer) -> None:
    before = len(_dpop_grants(dcli))
    me = dcli.run("send", "--json", "-v", "dapi.me")

    assert me.code == 0, me
    body = me.json()["body"]
    [key] = _key_files(dcli)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    jkt = body["claims"]["cnf"]["jkt"]
    assert body["proof"]["htu"] == dpop_server.me_url and body["proof"]["htm"] == "GET"
    assert "ath" in body["proof"] and "nonce" in body["proof"]
    # The provider: a proof, a nonce challenge answered once, a DPoP token.
    grants = _dpop_grants(dcli)[before:]
    assert [(g["status"], g["error"]) for g in grants] == [
        ("400", "use_dpop_nonce"),
        ("200", "-"),
    ]
    assert all(g["dpop_proof"] == "yes" for g in grants) and grants[-1]["token_type"] == "DPoP"
    # The API: one nonce challenge, then accepted with the token's key.
    api = dpop_server.stats()
    assert api["by_reason"] == {"use_dpop_nonce": 1} and api["accepted"] == 1
    assert {r["jkt"] for r in api["requests"]} == {jkt}
    # -v shows the proof's claims and thumbprint, never the proof or the key.
    assert f"jkt={jkt}" in me.err and "htm=GET" in me.err
    assert "Authorization: DPoP ****" in me.err
    private = json.loads(key.read_text())["d"]
    assert private not in me.both
    for request in api["requests"]:
        assert request["scheme"] == "DPoP"

    # A second process: the cached token, the same key, the nonce left by the first.
    again = dcli.run("send", "dapi.list", "-V", "page=2")
    assert again.code == 0, again
    assert len(_dpop_grants(dcli)) == before + 2
    last = dpop_server.stats()["requests"][-1]
    assert last["status"] == 200 and last["proof"]["htu"] == dpop_server.incidents_url

    token = dcli.run("get-token", "dpop")
    assert token.code == 0, token
    assert f"cnf.jkt={jkt}: this profile's key" in token.out


def test_each_20_rows_every_proof_unique(dcli: Cli, dpop_server: DpopServer) -> None:
    rows = dcli.root / "rows.jsonl"
    rows.write_text("".join(json.dumps({"title": f"row {i}"}) + "\n" for i in range(20)))
    before = len(_dpop_grants(dcli))

    run = dcli.run("send", "dapi.create", "--each", str(rows), "--concurrency", "4")

    assert run.code == 0, run
    lines = [json.loads(line) for line in run.out.splitlines()]
    assert [line["status"] for line in lines] == [201] * 20
    api = dpop_server.stats()
    accepted = [r for r in api["requests"] if r["status"] == 201]
    assert len(accepted) == 20
    jtis = [r["proof"]["jti"] for r in api["requests"]]
    assert len(set(jtis)) == len(jtis)  # replays would have been refused anyway
    assert api["challenged"] <= 4  # the nonce is shared: at most the first proofs in flight
    assert len({r["jkt"] for r in accepted}) == 1
    assert _dpop_grants(dcli)[before:][-1]["status"] == "200"
    assert len([g for g in _dpop_grants(dcli)[before:] if g["status"] == "200"]) == 1


def test_401_recovery_gets_a_new_token_and_proof(dcli: Cli, dpop_server: DpopServer) -> None:
    assert dcli.run("send", "dapi.me").code == 0
    before = len(_dpop_grants(dcli))
    # The cached token is now refused at the API: a key that is not its own.
    for entry in dcli.cache_dir.glob("*.json"):
        data = json.loads(entry.read_text())
        data["access_token"] = data["access_token"][:-4] + "AAAA"
        entry.write_text(json.dumps(data))
        os.chmod(entry, 0o600)

    run = dcli.run("send", "--json", "-v", "dapi.me")

    assert run.code == 0, run
    assert "dropping it" in run.err
    grants = _dpop_grants(dcli)[before:]
    assert grants[-1]["status"] == "200" and grants[-1]["token_type"] == "DPoP"
    reasons = [r.get("reason") for r in dpop_server.stats()["requests"]][-2:]
    assert reasons == ["token", None]


def test_nonce_loop_at_the_api_is_explained(dcli: Cli, dpop_server: DpopServer) -> None:
    dpop_server.configure(nonce_loop=True)
    run = dcli.run("send", "dapi.me")
    assert run.code == 4, run
    assert "use_dpop_nonce" in run.err
    assert dpop_server.stats()["challenged"] == 2  # the first proof and the one retry
    assert _dpop_grants(dcli)[-1]["status"] == "200"


def test_use_dpop_nonce_without_a_nonce_at_the_token_endpoint_is_exit_6(dcli: Cli) -> None:
    """The provider's hook answers use_dpop_nonce without a DPoP-Nonce header: nothing a
    retry could carry, so no retry. (A real nonce loop, the server asking again after the
    retry with its nonce, is tests/test_dpop.py's: oidc-provider's nonces do not loop.)"""
    dcli.op.fail_next_token_requests(2, status=400, error="use_dpop_nonce")
    run = dcli.run("get-token", "dpop")
    assert run.code == 6, run
    assert "use_dpop_nonce without a usable DPoP-Nonce header" in run.err
    assert len(run.err.strip().splitlines()) == 1
    assert dcli.token_requests() == 1  # the hook's answer (not in the grant log): no retry
    # The hook cancelled, the provider serves the DPoP grant: its log names it.
    before = len(_dpop_grants(dcli))
    dcli.op.fail_next_token_requests(0)
    assert dcli.run("get-token", "dpop").code == 0
    assert _dpop_grants(dcli)[before:][-1]["token_type"] == "DPoP"


def test_server_that_ignores_dpop_warns_and_sends_bearer(cli: Cli) -> None:
    cli.add_profile("ignored", "client_secret_basic", dpop=True)
    cli.op.configure(ignore_dpop=True)
    run = cli.run("send", "api_ignored.me")
    assert run.code == 0, run
    assert "ignores DPoP" in run.err and run.err.count("ignores DPoP") == 1
    served = [g for g in cli.op.grants_served() if g.get("client") == "cli-basic"]
    assert served[-1]["token_type"] == "Bearer" and served[-1]["dpop_proof"] == "yes"
    token = cli.run("get-token", "ignored")
    assert "the server ignored DPoP" in token.out


def test_key_file_of_mode_0644_is_refused(dcli: Cli) -> None:
    assert dcli.run("get-token", "dpop").code == 0
    [key] = _key_files(dcli)
    key.chmod(0o644)
    run = dcli.run("send", "dapi.me")
    assert run.code == 3, run
    assert str(key) in run.err and "0644" in run.err
    assert json.loads(key.read_text())["d"] not in run.both
    assert len(run.err.strip().splitlines()) == 1


def test_unreadable_key_file_is_refused(dcli: Cli) -> None:
    if os.getuid() == 0:
        pytest.skip("root reads a file of mode 0000")
    assert dcli.run("get-token", "dpop").code == 0
    [key] = _key_files(dcli)
    key.chmod(0o000)
    try:
        run = dcli.run("get-token", "dpop", "--force")
    finally:
        key.chmod(0o600)
    assert run.code == 3, run
    assert str(key) in run.err and "cannot be read" in run.err


def test_each_in_worker_processes_shares_key_token_and_nonce(
    dcli: Cli, dpop_server: DpopServer
) -> None:
    """Above --concurrency 32 the rows go to worker processes: one key file, one token, and
    the nonce the first process was given left in the cache folder for the others.

    GETs with retries: the test API's listen backlog resets some of 40 connections opened at
    once (a property of http.server, not of DPoP); each retry carries a fresh proof."""
    dcli.add_message(
        "dapi_many",
        f"""\
endpoint: {dpop_server.api_base_url}
auth: {{type: oauth2, profile: dpop}}
retry: {{attempts: 4, backoff: 0.05}}
methods:
  list: {{http_method: GET, path: /incidents, query: {{row: "${{row}}"}}}}
""",
    )
    rows = dcli.root / "rows.jsonl"
    rows.write_text("".join(json.dumps({"row": i}) + "\n" for i in range(80)))
    before = len(_dpop_grants(dcli))
    assert dcli.run("get-token", "dpop").code == 0  # the token and a first nonce, cached
    assert dcli.run("send", "dapi.me").code == 0

    run = dcli.run("send", "dapi_many.list", "--each", str(rows), "--concurrency", "40")

    lines = [json.loads(x) for x in run.out.splitlines()]
    assert run.code == 0, [x["error"] for x in lines if x["status"] != 200]
    assert [x["status"] for x in lines] == [200] * 80
    api = dpop_server.stats()
    listed = [r for r in api["requests"] if r["path"] == "/api/incidents"]
    assert len([r for r in listed if r["status"] == 200]) == 80
    assert len({r["jkt"] for r in listed}) == 1
    assert len({r["proof"]["jti"] for r in api["requests"]}) == len(api["requests"])
    assert api["challenged"] == 1  # only the first send's; the workers had the nonce
    assert len(_key_files(dcli)) == 1
    assert [g["status"] for g in _dpop_grants(dcli)[before:]] == ["400", "200"]


def test_key_file_of_another_user_is_refused(dcli: Cli) -> None:
    if os.getuid() != 0:
        pytest.skip("only root can give a file to another user")
    assert dcli.run("get-token", "dpop").code == 0
    [key] = _key_files(dcli)
    os.chown(key, 65534, 65534)
    run = dcli.run("send", "dapi.me")
    assert run.code == 3, run
    assert str(key) in run.err and "belongs to uid 65534" in run.err
