"""Attacks on the surfaces issue 13 added (DPoP files, discovery, client assertions, the
device flow, token exchange, the batch workers), as another user on the machine or a
careless user would make them; each test failed before its fix."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.cliproc import oauthcli
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer
from tests.test_client_assertion import assertion_registry, ok_token


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_an_assertion_file_that_is_a_fifo_is_refused_not_waited_on(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    # A FIFO no one writes to: a plain open() blocks for good.
    ok_token(loopback)
    fifo = tmp_path / "token.fifo"
    os.mkfifo(fifo)
    root = assertion_registry(tmp_path, loopback, f"${{file:{fifo}}}")
    done = oauthcli("get-token", "ci", registry=root, timeout=8)
    assert done.code == 6, done
    assert "not a regular file" in done.err, done
    assert len(done.err.strip().splitlines()) == 1, done
    assert not [r for r in loopback.requests if r.path == "/token"]


def test_an_assertion_file_that_is_dev_zero_is_refused_not_read_forever(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    ok_token(loopback)
    root = assertion_registry(tmp_path, loopback, "${file:/dev/zero}")
    done = oauthcli("get-token", "ci", registry=root, timeout=8)
    assert done.code == 6, done
    assert "not a regular file" in done.err, done


def test_a_huge_file_is_refused_with_its_size(tmp_path: Path, loopback: LoopbackServer) -> None:
    ok_token(loopback)
    big = tmp_path / "huge.jwt"
    with open(big, "wb") as f:
        f.truncate(3 * 1024 * 1024 * 1024)  # sparse: 3 GiB of NULs costs no disk
    root = assertion_registry(tmp_path, loopback, f"${{file:{big}}}")
    done = oauthcli("get-token", "ci", registry=root, timeout=8)
    assert done.code == 6, done
    assert "larger than" in done.err, done


def test_github_actions_dribbling_its_answer_is_cut_off_at_the_profile_timeout(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    # requests' timeout bounds each read: a byte every 0.3 s kept the job waiting for ever.
    from tests.servers import dribbling, serving

    ok_token(loopback)
    root = make_registry(
        tmp_path,
        {
            "profiles/ci.yaml": f"""\
                grant_type: client_credentials
                token_url: {loopback.url("/token")}
                client_id: ci-app
                client_auth: client_assertion
                client_assertion: {{github_actions: {{audience: api://AzureADTokenExchange}}}}
                timeout: 1
                """
        },
    )
    with serving(dribbling(headers=False, every=0.3, limit=20)) as github:
        done = oauthcli(
            "get-token",
            "ci",
            registry=root,
            timeout=9,
            env={
                "ACTIONS_ID_TOKEN_REQUEST_URL": f"{github.base}/token?api-version=2.0",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "gh-request-token-5eCr3t",
            },
        )
    assert done.code == 6, done
    assert "within 1 s" in done.err, done
    assert done.seconds < 6, done
    assert "gh-request-token-5eCr3t" not in done.both


def test_a_batch_worker_killed_mid_run_is_named_and_the_early_stop_said(tmp_path: Path) -> None:
    """SIGKILL of one worker process (the OOM killer): its rows are errors naming the signal,
    and the run, which takes no further row, says it stopped early (it said nothing)."""
    import signal
    import subprocess
    import sys
    import time

    def slow(rec: object) -> tuple[int, dict[str, str], bytes]:
        time.sleep(0.05)
        return 200, {}, b"ok"

    api = LoopbackServer()
    api.fallback = slow
    try:
        root = make_registry(
            tmp_path,
            {
                "messages/s.yaml": f"""\
                    endpoint: {api.url("/x/")}${{n}}
                    auth: {{type: bearer, token: sekrit-bearer-token-1234}}
                    methods:
                      default: {{http_method: GET}}
                    """
            },
        )
        rows = tmp_path / "rows.csv"
        rows.write_text("n\n" + "".join(f"{i}\n" for i in range(5000)))
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "oauthcli", "-r", str(root), "send", "s"]
            + ["--each", str(rows), "--concurrency", "64"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        try:
            assert proc.stdout is not None
            proc.stdout.readline()  # rows are being answered: the workers run
            kids = subprocess.run(
                ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
            ).stdout.split()
            assert kids, "no worker process"
            os.kill(int(kids[0]), signal.SIGKILL)
            out, err = proc.communicate(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    finally:
        api.close()
    assert proc.returncode == 1, err
    assert b'"error": "internal error: the batch worker was killed by SIGKILL"' in out
    last = err.decode().strip().splitlines()[-1]
    assert last.startswith("error: the batch worker was killed by SIGKILL: the run stopped after")
    assert "of 5000 rows" in last, err
    assert b"sekrit-bearer-token-1234" not in out + err
