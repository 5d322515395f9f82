"""The Redis token cache against oidc-provider: a fleet's runners share one real token.

Two simulated machines (their own cache folders and homes) of three processes each call the
resource server through the installed CLI with ``OAUTHCLI_CACHE_URL`` set; oidc-provider
issues one token, which every call sends and the resource server accepts (its audience,
scope and signature checked). Entries are encrypted with ``OAUTHCLI_CACHE_KEY``.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.redisserver import RedisServer

from .cli import RUN_TIMEOUT, Cli

pytestmark = pytest.mark.e2e


def test_a_fleet_shares_one_oidc_provider_token_through_redis(
    cli: Cli, redis_server: RedisServer, tmp_path: Path
) -> None:
    key = Fernet.generate_key().decode()
    procs = []
    for machine in ("runner-a", "runner-b"):
        env = {
            **cli.env,
            "OAUTHCLI_CACHE_URL": redis_server.url,
            "OAUTHCLI_CACHE_KEY": key,
            "OAUTHCLI_CACHE_DIR": str(tmp_path / machine / "cache"),
            "HOME": str(tmp_path / machine),
        }
        for _ in range(3):
            procs.append(
                subprocess.Popen(
                    cli.command("send", "api_client_secret_basic.me", "--json"),
                    env=env,
                    cwd=cli.root,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
    outputs = [proc.communicate(timeout=RUN_TIMEOUT) for proc in procs]
    assert [p.returncode for p in procs] == [0] * 6, outputs
    assert all(err == "" for _, err in outputs), outputs
    assert cli.token_requests() == 1
    stats = cli.rs.stats()
    assert stats["total"] == 6 and stats["unauthorized"] == 0, stats  # one token, accepted
    [entry] = redis_server.client().keys("oauthcli:*")
    value = redis_server.client().get(entry)
    assert isinstance(value, bytes) and value.startswith(b"gAAAAA")
    listed = cli.run("token", "list")
    assert listed.code == 0 and listed.out == "", listed  # this machine's file cache: empty
    shared = subprocess.run(
        cli.command("token", "list"),
        env={**cli.env, "OAUTHCLI_CACHE_URL": redis_server.url, "OAUTHCLI_CACHE_KEY": key},
        cwd=cli.root,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert shared.returncode == 0 and shared.stdout.startswith("client_secret_basic\t"), shared
    assert cli.op.token_url in shared.stdout and "shared by every machine" in shared.stderr
