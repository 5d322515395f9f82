"""``oauthcli send`` as a real process: exact bytes on a pipe, a terminal's view, import cost."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clirun import run_watching
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer
from tests.terminal import on_terminal

OAUTHCLI = Path(sys.executable).parent / "oauthcli"
BINARY = bytes(range(256)) * 64 + b"\r\n\x00trailing"


@pytest.fixture
def registry(loopback: LoopbackServer, tmp_path: Path) -> Path:
    def token(rec: object) -> tuple[int, dict[str, str], bytes]:
        body = {"access_token": "pipe-test-token-1234", "token_type": "Bearer", "expires_in": 300}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    loopback.routes["/token"] = token
    loopback.reply("/blob", 200, BINARY, Content_Type="application/octet-stream")
    loopback.reply("/doc", 200, b'{"a": [1, 2], "b": "x"}', Content_Type="application/json")
    return make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": f"""\
                grant_type: client_credentials
                token_url: {loopback.base}/token
                client_id: app
                client_secret: pipe-client-secret
                """,
            "messages/blob.yaml": f"""\
                endpoint: {loopback.base}/blob
                auth: {{type: oauth2, profile: acme}}
                methods: {{get: {{http_method: GET}}}}
                """,
            "messages/doc.yaml": f"""\
                endpoint: {loopback.base}/doc
                auth: {{type: oauth2, profile: acme}}
                methods: {{get: {{http_method: GET}}}}
                """,
        },
    )


def test_piped_body_is_exactly_the_bytes_received(registry: Path) -> None:
    done = subprocess.run(
        [str(OAUTHCLI), "-r", str(registry), "send", "blob"],
        capture_output=True,
        timeout=30,
        env=os.environ.copy(),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == BINARY
    assert done.stderr == b""


def test_terminal_gets_status_line_and_pretty_json(registry: Path) -> None:
    argv = [str(OAUTHCLI), "-r", str(registry), "send", "doc"]
    code, screen = on_terminal(argv, {"NO_COLOR": "1", "COLUMNS": "100"})
    assert code == 0, screen
    text = screen.decode().replace("\r\n", "\n")
    assert re.search(r"^200 OK · \d+ ms · GET http://127\.0\.0\.1:\d+/doc$", text, re.M), text
    assert '{\n  "a": [\n    1,\n    2\n  ],\n  "b": "x"\n}' in text
    assert "pipe-test-token-1234" not in text and "pipe-client-secret" not in text


HEAVY = (
    "rich",
    "authlib",
    "oauthcli.sandbox",
    "oauthcli.tokens.grants",
    "filelock",
    "pydantic",
    "typer.rich_utils",
    "oauthcli.present.explain",
    "oauthcli.cli.batch",
    "joserfc",
    "cryptography",
    "oauthcli.tokens.jwtinfo",
    "oauthcli.tokens.keys",
    "yaml",
    "oauthcli.registry.yamlparse",
    "redis",  # only with OAUTHCLI_CACHE_URL
    "oauthcli.tokens.rediscache",
)


def test_send_with_a_cached_token_imports_no_rich_authlib_yaml_or_server(registry: Path) -> None:
    args = ("-r", str(registry), "send", "doc")
    first = run_watching(HEAVY, *args)
    assert first.code == 0, first.err
    assert "authlib" in first.loaded  # the grant ran: that path may pay for Authlib
    second = run_watching(HEAVY, *args)
    assert (second.code, second.loaded) == (0, []), second.err
    dry = run_watching(HEAVY, *args, "--dry-run")
    assert (dry.code, dry.loaded) == (0, []), dry.err


def test_help_on_a_pipe_is_plain_and_imports_no_rich_or_registry() -> None:
    done = run_watching(
        ("rich", "pydantic", "yaml", "requests", "oauthcli.registry.discovery"), "--help"
    )
    assert done.code == 0, done.err
    assert done.out.startswith("Usage: oauthcli [OPTIONS] COMMAND [ARGS]...")
    assert "send " in done.out and "╭" not in done.out
    assert done.loaded == [] and done.err == ""


def test_help_on_a_terminal_is_rich(tmp_path: Path) -> None:
    code, screen = on_terminal(
        [str(OAUTHCLI), "send", "--help"], {"COLUMNS": "100", "NO_COLOR": "1"}
    )
    assert code == 0, screen
    text = re.sub(r"\x1b\[[0-9;]*m", "", screen.decode())
    assert "╭" in text and "Options" in text and "--concurrency" in text


def test_option_values_still_parse_and_fail_as_before(registry: Path) -> None:
    base = [str(OAUTHCLI), "-r", str(registry), "send", "doc"]
    for flag, value, message in [
        ("--concurrency", "0", "0 is not in the range 1<=x<=256"),
        ("--concurrency", "x", "'x' is not a valid int"),
        ("--timeout", "abc", "'abc' is not a valid float"),
        ("--retries", "-1", "-1 is not in the range x>=0"),
    ]:
        done = subprocess.run([*base, flag, value], capture_output=True, text=True, timeout=30)
        assert done.returncode == 2, (flag, value, done.stderr)
        assert f"Invalid value for '{flag}'" in done.stderr and message in done.stderr
    ok = subprocess.run(
        [*base, "--timeout", "2.5", "--retries", "1", "-V", "a=1", "-V", "b=2", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == 200


def test_importing_oauthcli_leaves_the_garbage_collector_alone() -> None:
    """Only the ``oauthcli`` command tunes the collector (entry.py, BENCHMARKS.md
    "Mechanisms audit"); a program importing the library or the CLI keeps its own."""
    probe = (
        "import gc; before = gc.get_threshold(); import {0}; print(gc.get_threshold() == before)"
    )
    for module in ("oauthcli", "oauthcli.api", "oauthcli.cli.app"):
        done = subprocess.run(
            [sys.executable, "-c", probe.format(module)], capture_output=True, text=True, timeout=30
        )
        assert done.stdout.strip() == "True", (module, done.stderr)
