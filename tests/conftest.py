"""Fixtures shared by every test module."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret, forget_all
from tests.redisserver import RedisServer, missing_reason
from tests.servers import LoopbackServer, Recorded, Reply, TokenServer, serve

# Test modules import the servers from tests.servers; these names stay importable from
# here for the modules that still do.
__all__ = ["LoopbackServer", "Recorded", "Reply"]


@pytest.fixture(autouse=True)
def isolated_oauthcli(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """No test reads or writes the real ~: a fresh token cache and outbound log folder, no
    OAUTHCLI_* from outside."""
    for name in list(os.environ):
        if name.startswith("OAUTHCLI_"):
            monkeypatch.delenv(name)
    base = tmp_path_factory.mktemp("home")
    cache_dir = base / "oauthcli-cache"
    monkeypatch.setenv("OAUTHCLI_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "xdg-cache"))
    monkeypatch.setenv("OAUTHCLI_LOG_DIR", str(base / "oauthcli-log"))
    monkeypatch.setenv("XDG_STATE_HOME", str(base / "xdg-state"))
    yield cache_dir
    # Secrets are remembered for the process: one test's token must not mask the next's text.
    forget_all()


@pytest.fixture
def token_profile(tmp_path: Path) -> Callable[..., ResolvedProfile]:
    """Build a ResolvedProfile for token tests: client_credentials at login.test by default."""

    def make(**changes: Any) -> ResolvedProfile:
        base = ResolvedProfile(
            name="acme",
            source=tmp_path / "profiles" / "acme.yaml",
            grant_type="client_credentials",
            token_url="https://login.test/oauth2/token",
            client_id="app",
            client_auth="client_secret_basic",
            client_secret=Secret("s3cr3t-value"),
            scope=("api.read", "api.write"),
            timeout=5.0,
        )
        return replace(base, **changes)

    return make


# -- loopback servers (tests/servers.py) --------------------------------------------------


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    server = LoopbackServer("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def loopback2() -> Iterator[LoopbackServer]:
    """A second origin (another host on loopback) for cross-origin redirects."""
    server = LoopbackServer("127.0.0.2")
    yield server
    server.close()


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    """A token endpoint on 127.0.0.1 that counts requests (``delay`` slows each answer)."""
    yield from serve()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real redis-server of this test's own (tests/redisserver.py), stopped by PID after;
    no redis-server installed: the test is skipped (fails in CI, where .ci/run installs it)."""
    reason = missing_reason()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    server = RedisServer(tmp_path / "redis-server").start()
    try:
        yield server
    finally:
        server.stop()
        from oauthcli.tokens import backend

        backend.forget()  # this process's connections to it
