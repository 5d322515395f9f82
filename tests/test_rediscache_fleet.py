"""A fleet on one Redis token cache (SPEC §7), as real processes on simulated machines.

Each "machine" is a cache folder and a home of its own; its processes are real
``oauthcli`` runs started at once against one token endpoint on 127.0.0.1 that counts
requests. With ``OAUTHCLI_CACHE_URL`` the fleet asks for one token; Redis killed in the
middle of a ``send --each`` batch costs no row, only one warning.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.redisserver import RedisServer
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded, TokenServer

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
MACHINES = 4
PROCESSES = 8


def _items_registry(tmp_path: Path, base: str, secret: str) -> Path:
    """Profile acme (client_credentials at ``base``/token) and message items.get?id=…"""
    return make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": f"""\
                grant_type: client_credentials
                token_url: {base}/token
                client_id: app
                client_secret: {secret}
                """,
            "messages/items.yaml": f"""\
                endpoint: {base}/api/items
                auth: {{type: oauth2, profile: acme}}
                methods: {{get: {{http_method: GET, query: {{id: "${{id}}"}}}}}}
                """,
        },
    )


def _fleet(
    tmp_path: Path, root: Path, env: dict[str, str], argv: list[str]
) -> list[subprocess.CompletedProcess[str]]:
    """MACHINES × PROCESSES runs of ``oauthcli ARGV``, all started at once."""
    base = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    procs = []
    for machine in range(MACHINES):
        home = tmp_path / f"machine-{machine}"
        home.mkdir()
        machine_env = {
            **base,
            **env,
            "HOME": str(home),
            "OAUTHCLI_CACHE_DIR": str(home / "cache"),
            "XDG_CACHE_HOME": str(home / "xdg"),
        }
        for _ in range(PROCESSES):
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "oauthcli", "-r", str(root), *argv],
                    env=machine_env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    cwd=ROOT,
                )
            )
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def _profile(tmp_path: Path, token_url: str, extra: str = "") -> Path:
    return make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": f"""\
                grant_type: client_credentials
                token_url: {token_url}
                client_id: app
                client_secret: fleet-secret-1
                {extra}"""
        },
    )


def test_four_machines_of_eight_processes_make_one_token_request(
    redis_server: RedisServer, token_server: TokenServer, tmp_path: Path
) -> None:
    token_server.delay = 0.2
    root = _profile(tmp_path, f"{token_server.url}/token")
    runs = _fleet(
        tmp_path, root, {"OAUTHCLI_CACHE_URL": redis_server.url}, ["get-token", "--raw", "acme"]
    )
    assert [r.returncode for r in runs] == [0] * MACHINES * PROCESSES, [r.stderr for r in runs]
    assert len(token_server.forms) == 1
    assert {r.stdout for r in runs} == {"at-1-from-server\n"}
    assert all(r.stderr == "" for r in runs), [r.stderr for r in runs if r.stderr]
    for machine in range(MACHINES):  # nothing in any machine's own cache
        assert not list((tmp_path / f"machine-{machine}" / "cache").glob("*.json"))


def test_without_redis_each_machine_asks_for_its_own_token(
    token_server: TokenServer, tmp_path: Path
) -> None:
    """The control: the file cache is per machine, so the fleet makes one request per machine."""
    token_server.delay = 0.2
    root = _profile(tmp_path, f"{token_server.url}/token")
    runs = _fleet(tmp_path, root, {}, ["get-token", "--raw", "acme"])
    assert [r.returncode for r in runs] == [0] * MACHINES * PROCESSES, [r.stderr for r in runs]
    assert len(token_server.forms) == MACHINES


def test_encrypted_fleet_entries_make_one_token_request_too(
    redis_server: RedisServer, token_server: TokenServer, tmp_path: Path
) -> None:
    from cryptography.fernet import Fernet

    token_server.delay = 0.2
    root = _profile(tmp_path, f"{token_server.url}/token")
    env = {
        "OAUTHCLI_CACHE_URL": redis_server.url,
        "OAUTHCLI_CACHE_KEY": Fernet.generate_key().decode(),
    }
    runs = _fleet(tmp_path, root, env, ["get-token", "--raw", "acme"])
    assert [r.returncode for r in runs] == [0] * MACHINES * PROCESSES, [r.stderr for r in runs]
    assert len(token_server.forms) == 1
    [key] = redis_server.client().keys("oauthcli:*")
    value = redis_server.client().get(key)
    assert isinstance(value, bytes) and value.startswith(b"gAAAAA")
    assert b"at-1-from-server" not in value


# -- Redis killed in the middle of a batch -----------------------------------------------------


def test_redis_killed_mid_batch_costs_no_row_and_warns_once(
    redis_server: RedisServer, loopback: LoopbackServer, tmp_path: Path
) -> None:
    issued: list[str] = []
    lock = threading.Lock()

    def token(rec: Recorded) -> Any:
        with lock:
            issued.append(f"tok-{len(issued) + 1}")
            value = issued[-1]
        # 2-second tokens: renewed every 1.5 s, so the batch goes back to the cache often
        body = {"access_token": value, "token_type": "Bearer", "expires_in": 2}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def items(rec: Recorded) -> Any:
        number = int(parse_qs(urlsplit(rec.path).query)["id"][0])
        auth = rec.headers.get("authorization", "").removeprefix("Bearer ")
        status = 200 if auth in issued else 401
        return status, {"Content-Type": "application/json"}, json.dumps({"id": number}).encode()

    loopback.routes["/token"] = token
    loopback.routes["/api/items"] = items
    root = _items_registry(tmp_path, loopback.base, "batch-secret-1")
    rows = tmp_path / "rows.csv"
    rows.write_text("id\n" + "".join(f"{i}\n" for i in range(1, 201)))
    env = {
        **{k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
        "OAUTHCLI_CACHE_URL": redis_server.url,
        "NO_COLOR": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "oauthcli", "-r", str(root), "send", "items", "--each", str(rows),
         "--rate", "40/s", "--concurrency", "4"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, cwd=ROOT,
    )  # fmt: skip
    time.sleep(2.0)  # a token or two from Redis first
    assert proc.poll() is None, proc.communicate()
    before = len(issued)
    redis_server.kill()
    out, err = proc.communicate(timeout=60)
    lines = [json.loads(line) for line in out.splitlines()]
    assert proc.returncode == 0, err
    assert len(lines) == 200 and all(line["status"] == 200 for line in lines), err
    assert [line["body"]["id"] for line in lines] == list(range(1, 201))
    assert err.count("warning:") == 1, err
    assert "cannot use the Redis cache" in err and "cannot connect" in err
    assert len(issued) > before  # renewed after the kill, through the file cache


def test_a_batchs_worker_processes_use_the_redis_cache_too(
    redis_server: RedisServer, loopback: LoopbackServer, tmp_path: Path
) -> None:
    """Above 32 in flight the rows go to worker processes: they inherit OAUTHCLI_CACHE_URL."""
    tokens: list[str] = []

    def token(rec: Recorded) -> Any:
        tokens.append(f"tok-{len(tokens) + 1}")
        body = {"access_token": tokens[-1], "token_type": "Bearer", "expires_in": 300}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def items(rec: Recorded) -> Any:
        ok = rec.headers.get("authorization", "").removeprefix("Bearer ") in tokens
        return (200 if ok else 401), {"Content-Type": "application/json"}, b"{}"

    loopback.routes["/token"] = token
    loopback.routes["/api/items"] = items
    root = _items_registry(tmp_path, loopback.base, "batch-secret-2")
    rows = tmp_path / "rows.csv"
    rows.write_text("id\n" + "".join(f"{i}\n" for i in range(300)))
    cache_dir = tmp_path / "machine" / "cache"
    env = {
        **{k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")},
        "OAUTHCLI_CACHE_URL": redis_server.url,
        "OAUTHCLI_CACHE_DIR": str(cache_dir),
    }
    done = subprocess.run(
        [sys.executable, "-m", "oauthcli", "-r", str(root), "send", "items", "--each", str(rows),
         "--concurrency", "64"],
        env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 300 and done.stderr.count("warning") == 0
    assert len(tokens) == 1
    assert redis_server.client().keys("oauthcli:*") != []
    assert not list(cache_dir.glob("*.json"))  # no worker wrote this machine's file cache
