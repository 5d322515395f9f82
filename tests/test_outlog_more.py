"""The outbound log from the Python API, under a full disk, and what a logged send imports."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import requests

import oauthcli
from oauthcli.outlog import place, writer
from tests.clirun import run_watching
from tests.servers import LoopbackServer
from tests.test_outlog_send import API_KEY, CLIENT_SECRET, Api, kinds, log_text, records

pytest_plugins: list[str] = []


@pytest.fixture
def api(loopback: LoopbackServer, tmp_path: Path) -> Api:
    from tests.test_outlog_send import _registry

    a = Api(loopback, _registry(tmp_path / "reg", loopback.base))
    loopback.routes["/token"] = a.token
    loopback.routes["/api/items"] = a.items
    writer._after_fork()
    return a


def test_the_python_api_writes_the_log_and_prints_nothing(
    api: Api, capfd: pytest.CaptureFixture[str]
) -> None:
    with oauthcli.open_registry(api.root) as reg:
        assert reg.send("items.list").status == 200
        assert [
            r.status for r in reg.send_each("items.create", [{"name": "a"}, {"name": "b"}])
        ] == [
            200,
            200,
        ]
        token = reg.get_token("acme", force=True)
        with requests.Session() as session:
            session.auth = reg.auth("acme")
            assert session.get(api.server.url("/api/items")).status_code == 200
    got = records()
    assert [(r["kind"], r["message"]) for r in got] == [
        ("send", "items.list"),
        ("send", "items.create"),
        ("send", "items.create"),
        ("token", None),
        ("send", None),
    ]
    assert kinds(got[3]) == ["forced", "grant"] and got[3]["profile"] == "acme"
    assert got[4]["url"] == api.server.url("/api/items") and got[4]["status"] == 200
    assert token.access_token.reveal() not in log_text()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_the_python_api_takes_a_level(api: Api) -> None:
    with oauthcli.open_registry(api.root, log_level="elevated") as reg:
        reg.send("items.list")
    with oauthcli.open_registry(api.root, log_level="off") as reg:
        reg.send("items.list")
    got = records()
    assert [r["level"] for r in got] == ["elevated"] and "request_headers" in got[0]
    with pytest.raises(oauthcli.errors.UsageError, match="log_level 'loud' is not one of"):
        oauthcli.open_registry(api.root, log_level="loud")


def test_the_api_auths_records_mask_cookies_and_credential_headers_by_name(api: Api) -> None:
    """A requests session's own Cookie and Proxy-Authorization are no known secret values:
    they are masked by name, as the auth's secret headers (a DPoP proof's too) are."""
    with oauthcli.open_registry(api.root, log_level="elevated") as reg:
        with requests.Session() as session:
            session.auth = reg.auth("acme")
            headers = {"Cookie": "sid=cookie-value-1", "Proxy-Authorization": "Basic cHJveHk6cHc="}
            assert session.get(api.server.url("/api/items"), headers=headers).status_code == 200
    [got] = records()
    sent = dict(got["request_headers"])
    assert sent["Cookie"] != headers["Cookie"] and "cookie-value-1" not in log_text()
    assert "cHJveHk6cHc=" not in log_text() and sent["Authorization"].startswith("Bearer ")
    assert api.issued and api.issued[-1] not in log_text()


def test_a_full_disk_is_one_warning_and_the_same_exit_code(api: Api, tmp_path: Path) -> None:
    """A real EFBIG from the kernel (RLIMIT_FSIZE: what a full disk is to a writer)."""
    folder = Path(os.environ["OAUTHCLI_LOG_DIR"])
    folder.mkdir(mode=0o700)
    filler = json.dumps({"v": 1, "kind": "send", "pad": "x" * 200}) + "\n"
    (folder / place.CURRENT).write_text(filler * 20)  # 4 KiB and more: at the limit
    (folder / place.CURRENT).chmod(0o600)
    before = (folder / place.CURRENT).read_bytes()
    limit = len(before)

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    oauthcli_bin = Path(sys.executable).parent / "oauthcli"
    for args, code in ((["items.list"], 0), (["items.list", "--each", "-"], 0)):
        done = subprocess.run(
            [str(oauthcli_bin), "-r", str(api.root), "send", *args],
            input="name\na\nb\n",
            capture_output=True,
            text=True,
            timeout=60,
            preexec_fn=small_files,
        )
        assert done.returncode == code, done.stderr
        lines = [line for line in done.stderr.splitlines() if "outbound log" in line]
        assert len(lines) == 1 and "File too large" in lines[0], done.stderr
        assert "Traceback" not in done.stderr
    assert (folder / place.CURRENT).read_bytes() == before  # no half line was left


def test_a_logged_warm_send_imports_nothing_heavy_for_the_log(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BENCHMARKS.md: the log costs a warm send a few modules of its own, nothing heavy."""
    args = ("-r", str(api.root), "send", "items.list")
    watched = (
        "logging.handlers", "platformdirs", "datetime", "uuid", "fcntl", "json",
        "oauthcli.outlog.record", "oauthcli.outlog.writer", "oauthcli.masking",
    )  # fmt: skip
    assert run_watching(watched, *args).code == 0  # the token, cached
    monkeypatch.setenv("OAUTHCLI_LOG_LEVEL", "off")
    off = run_watching(watched, *args)
    monkeypatch.delenv("OAUTHCLI_LOG_LEVEL")
    logged = run_watching(watched, *args)
    assert off.code == logged.code == 0, (off.err, logged.err)
    assert "logging.handlers" not in logged.loaded and "platformdirs" not in logged.loaded
    assert set(logged.loaded) - set(off.loaded) <= {"fcntl", "oauthcli.outlog.writer"}, (
        off.loaded,
        logged.loaded,
    )
    assert len(records()) == 2 and CLIENT_SECRET not in log_text() and API_KEY not in log_text()
