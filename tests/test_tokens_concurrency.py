"""Processes that run at once share the cache: N of them needing a token make ONE request.

Real processes against a real token endpoint on 127.0.0.1 that takes ~200 ms per
answer; the cache starts empty.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.registry_factory import make_registry
from tests.servers import TokenServer

ROOT = Path(__file__).resolve().parent.parent


CHILD = """
import sys, time
from pathlib import Path
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret
from oauthcli.tokens import obtain
profile = ResolvedProfile(name="acme", source=Path("acme.yaml"), grant_type="client_credentials",
    token_url=sys.argv[1] + "/token", client_id="app", client_auth="client_secret_basic",
    client_secret=Secret("s3cr3t-value"), timeout=10.0)
import filelock, oauthcli.tokens.grants  # pay imports before the start line
while time.time() < float(sys.argv[2]):
    time.sleep(0.002)
result = obtain(profile)
print(result.source, result.token.access_token.reveal())
"""


def _run_all(commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        for cmd in commands
    ]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def test_twelve_processes_at_once_make_one_token_request(token_server: TokenServer) -> None:
    token_server.delay = 0.2
    start = time.time() + 1.5  # every child has started and imported by then
    results = _run_all(
        [[sys.executable, "-c", CHILD, token_server.url, str(start)] for _ in range(12)]
    )
    assert [r.returncode for r in results] == [0] * 12, [r.stderr for r in results]
    assert len(token_server.forms) == 1
    lines = sorted(r.stdout.strip() for r in results)
    assert lines == ["cache at-1-from-server"] * 11 + ["grant at-1-from-server"]


def test_twelve_cli_runs_at_once_make_one_token_request(
    token_server: TokenServer, tmp_path: Path
) -> None:
    token_server.delay = 0.2
    profile = f"""\
        grant_type: client_credentials
        token_url: {token_server.url}/token
        client_id: app
        client_secret: s3cr3t-value
        """
    root = make_registry(tmp_path, {"profiles/acme.yaml": profile})
    cmd = [sys.executable, "-m", "oauthcli", "-r", str(root), "get-token", "--raw", "acme"]
    results = _run_all([cmd] * 12)
    assert [r.returncode for r in results] == [0] * 12, [r.stderr for r in results]
    assert len(token_server.forms) == 1
    assert {r.stdout for r in results} == {"at-1-from-server\n"}
    assert all(r.stderr == "" for r in results)
