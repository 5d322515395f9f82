"""The outbound log end to end: ``oauthcli send`` and ``get-token`` against the sandbox with
``OAUTHCLI_LOG_DIR`` set, then read back with ``oauthcli log``, ``--json`` and ``--har``:
what the writer wrote is what the reader shows, and no secret is in any of it."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import jsonschema
import pytest

from oauthcli.sandbox import BASIC_CLIENT_SECRET, Sandbox
from tests.cliproc import Done, oauthcli

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((Path(__file__).parent / "data" / "har-1.2.schema.json").read_text())


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0, token_ttl=300) as running:
        yield running


@pytest.fixture
def env(sandbox: Sandbox, tmp_path: Path, isolated_oauthcli: Path) -> dict[str, str]:
    return {
        "OAUTHCLI_SANDBOX_URL": sandbox.url,
        "OAUTHCLI_LOG_DIR": str(tmp_path / "log"),
        "OAUTHCLI_CACHE_DIR": str(isolated_oauthcli),
    }


def cli(env: dict[str, str], *args: str | Path, **more: str) -> Done:
    return oauthcli(*args, registry=ROOT, env={**env, **more})


def secret_forms(*values: str) -> set[str]:
    """Each secret as it could travel: raw, percent- and form-encoded, in HTTP Basic."""
    forms = set()
    for value in values:
        forms |= {value, quote(value, safe=""), quote(value, safe="").replace("%20", "+")}
        forms.add(base64.b64encode(value.encode()).decode().rstrip("="))
    pair = f"{quote('sandbox-basic', safe='')}:{quote(BASIC_CLIENT_SECRET, safe='')}"
    forms.add(base64.b64encode(pair.encode()).decode().rstrip("="))
    return forms


def test_send_then_log_json_and_har(env: dict[str, str], tmp_path: Path) -> None:
    first = cli(env, "send", "incidents.list", "-V", "limit=1", OAUTHCLI_LOG_LEVEL="all")
    assert first.code == 0, first
    second = cli(env, "send", "incidents.get", "-V", "sys_id=nope", OAUTHCLI_LOG_LEVEL="elevated")
    assert second.code == 4, second
    failed = cli(env, "send", "server-error", OAUTHCLI_LOG_LEVEL="basic")
    assert failed.code == 5, failed
    token = cli(env, "get-token", "sandbox-basic", "--raw")
    assert token.code == 0, token
    access_token = token.out.strip()
    revoked = cli(env, "token", "revoke", "sandbox-basic")
    assert revoked.code == 0, revoked

    shown = cli(env, "log")
    assert shown.code == 0 and shown.err == "", shown
    lines = shown.out.splitlines()
    assert len(lines) == 5, shown
    assert "200 OK" in lines[0] and "incidents.list" in lines[0]
    assert "token: " in lines[0] and "1 token request (200)" in lines[0]
    assert "404" in lines[1] and "incidents.get" in lines[1] and "exit 4" in lines[1]
    assert "500" in lines[2] and "server-error" in lines[2] and "exit 5" in lines[2]
    assert "  cached  " in lines[3] and "token sandbox-basic  token: cached (" in lines[3]
    assert "POST " in lines[4] and "/oauth/revoke  revoke sandbox-basic" in lines[4]

    stored = cli(env, "log", "--json")
    records = [json.loads(x) for x in stored.out.splitlines()]
    assert [r["v"] for r in records] == [1, 1, 1, 1, 1]
    assert [r["kind"] for r in records] == ["send", "send", "send", "token", "revoke"]
    assert [r["exit_code"] for r in records] == [0, 4, 5, 0, 0]
    kinds = [[d["kind"] for d in r["decisions"]] for r in records]
    assert "none_cached" in kinds[0] and kinds[1][0] == "cached", kinds
    log_files = b"".join(p.read_bytes() for p in sorted((tmp_path / "log").iterdir()))
    assert stored.data.splitlines() == [x for x in log_files.splitlines() if x.strip()][-5:]

    assert [
        json.loads(x)["exit_code"] for x in cli(env, "log", "--failed", "--json").out.splitlines()
    ] == [4, 5]
    assert len(cli(env, "log", "--message", "incidents", "--json").out.splitlines()) == 2
    assert len(cli(env, "log", "--message", "sandbox-basic", "--json").out.splitlines()) == 2
    assert len(cli(env, "log", "--last", "1", "--json").out.splitlines()) == 1

    archive = tmp_path / "calls.har"
    wrote = cli(env, "log", "--har", archive)
    assert wrote.code == 0 and wrote.err.startswith("wrote "), wrote
    document = json.loads(archive.read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    entries = document["log"]["entries"]
    # token, list; list's token? none (cached); get's; 500's; the cached get-token: none;
    # the revocation request once
    assert [(e["request"]["method"], e["response"]["status"]) for e in entries] == [
        ("POST", 200), ("GET", 200), ("GET", 404), ("GET", 500), ("POST", 200),
    ]  # fmt: skip
    assert entries[-1]["request"]["url"].endswith("/oauth/revoke")
    assert entries[0]["request"]["url"].endswith("/oauth/token")
    assert entries[0]["request"]["method"] == "POST"
    call = entries[1]
    assert call["request"]["url"].startswith(
        env["OAUTHCLI_SANDBOX_URL"] + "/api/now/table/incident"
    )
    assert call["response"]["status"] == 200
    assert json.loads(call["response"]["content"]["text"])["result"]  # level all: the body
    assert {h["name"].lower() for h in call["request"]["headers"]} >= {"authorization"}
    auth = [h["value"] for h in call["request"]["headers"] if h["name"].lower() == "authorization"]
    assert auth == ["Bearer ****"]

    everything = shown.out + stored.out + archive.read_text() + log_files.decode("utf-8", "replace")
    for form in secret_forms(BASIC_CLIENT_SECRET, access_token):
        assert form not in everything, form
    assert oct(os.stat(archive).st_mode & 0o777) == "0o600"


def test_a_batch_that_rotates_the_log_reads_back_whole(env: dict[str, str], tmp_path: Path) -> None:
    """``send --each`` with 8 workers and a log bound small enough to rotate it many times:
    what is left reads back with no line that is not a record, the rows' in order."""
    rows = tmp_path / "rows.csv"
    rows.write_text("limit\n" + "".join(f"{n % 5 + 1}\n" for n in range(40)))
    done = cli(
        env, "send", "incidents.list", "--each", rows, "--concurrency", "8",
        OAUTHCLI_LOG_MAX_BYTES="3000",
    )  # fmt: skip
    assert done.code == 0, done
    files = sorted(p.name for p in (tmp_path / "log").iterdir())
    assert "outbound.jsonl.5" in files, files  # it rotated past its last backup
    stored = cli(env, "log", "--json")
    assert stored.code == 0 and stored.err == "", stored
    records = [json.loads(x) for x in stored.out.splitlines()]
    assert 5 <= len(records) < 40 and {r["message"] for r in records} == {"incidents.list"}
    last = cli(env, "log", "--last", "3", "--json")
    assert [json.loads(x) for x in last.out.splitlines()] == records[-3:]
