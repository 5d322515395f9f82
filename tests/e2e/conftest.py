"""Fixtures of the end-to-end harness: a real OAuth server (oidc-provider), a test API, a
DPoP-verifying API, a fake GitHub Actions ID-token endpoint and a headless browser.

The servers run for the whole session on free 127.0.0.1 ports; see servers.py for the objects
handed out and README.md for what each does. State that tests may change (counters, the resource server's revocation cutoff, injected
failures, the access token TTL) is shared: reset what you rely on, or compare deltas.

The ``cli`` fixture (see cli.py) runs the installed oauthcli against them. At the end of the
run a terminal summary section lists the outcome of every test in this folder and the facts
the tests reported with ``e2e_note`` (the concurrency test's counted token requests), so that
the CI log shows them without ``-v``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .cli import AUTH_METHODS, Cli, cli_env, write_registry
from .servers import (
    BROWSER_DIR,
    E2E_DIR,
    Browser,
    DpopServer,
    E2eServers,
    FakeCi,
    HarnessError,
    OidcProvider,
    ResourceServer,
    _installed_provider_version,
    chromium_missing_reason,
    ensure_node_modules,
    run_servers,
)


@pytest.fixture(scope="session")
def _e2e_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2eServers]:
    workdir = tmp_path_factory.mktemp("e2e-servers")
    try:
        with run_servers(workdir) as servers:
            yield servers
    except HarnessError as exc:
        pytest.fail(f"e2e harness: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def oidc_provider(_e2e_servers: E2eServers) -> OidcProvider:
    """The authorization server (issuer, token_url, clients, token_requests(), ...)."""
    return _e2e_servers.op


@pytest.fixture(scope="session")
def resource_server(_e2e_servers: E2eServers) -> ResourceServer:
    """The API accepting the provider's JWTs (api_base_url, incidents_url, stats(), ...)."""
    return _e2e_servers.rs


@pytest.fixture
def dpop_server(_e2e_servers: E2eServers) -> Iterator[DpopServer]:
    """The DPoP-verifying API (api_base_url, incidents_url, stats(), configure(), ...), reset
    (counters, nonces, seen jti, settings) before and after the test."""
    server = _e2e_servers.dpop
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def fake_ci(_e2e_servers: E2eServers) -> Iterator[FakeCi]:
    """The fake GitHub Actions ID-token endpoint (request_url, actions_env(), issue(), ...),
    its counters reset before and after the test."""
    server = _e2e_servers.ci
    server.reset()
    yield server
    server.reset()


@pytest.fixture(scope="session")
def _browser_ready() -> None:
    """chromium and the driver's npm packages: skipped outside CI when chromium is absent,
    a failure in CI (``CI`` set), where .ci/run installs it."""
    missing = chromium_missing_reason()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"e2e browser: {missing}", pytrace=False)
        pytest.skip(f"e2e browser: {missing}")
    try:
        ensure_node_modules(BROWSER_DIR, "playwright-core")
    except HarnessError as exc:
        pytest.fail(f"e2e browser: {exc}", pytrace=False)


@pytest.fixture
def browser(_browser_ready: None, tmp_path: Path) -> Iterator[Browser]:
    """The headless browser: put ``browser.env()`` in the environment of what opens the
    sign-in URL (BROWSER=the open-url wrapper); ``wait_done()``/``results()`` tell how it went.
    Any run still going at the end is stopped by its PID."""
    driver = Browser(tmp_path / "browser")
    yield driver
    driver.stop()


@pytest.fixture
def cli(
    oidc_provider: OidcProvider,
    resource_server: ResourceServer,
    isolated_oauthcli: Path,
    tmp_path: Path,
) -> Iterator[Cli]:
    """The installed CLI with a fresh registry for every client and an empty token cache;
    the servers' counters start at zero."""
    root = tmp_path / "registry"
    write_registry(root, oidc_provider, resource_server)
    oidc_provider.reset_stats()
    resource_server.reset_stats()
    env = cli_env(root, isolated_oauthcli, oidc_provider)
    yield Cli(oidc_provider, resource_server, root, isolated_oauthcli, env)
    _settle(oidc_provider)
    oidc_provider.reset_stats()
    resource_server.reset_stats()


def _settle(op: OidcProvider, timeout: float = 5.0) -> None:
    """Wait for token requests still in flight (a delayed one whose client gave up), so that
    they do not land in the next test's counters."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        token = op.stats()["token"]
        if token["ok"] + token["error"] >= token["total"]:
            return
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# the summary in the CI log

_notes: list[str] = []
_outcomes: dict[str, tuple[str, float]] = {}  # nodeid -> (outcome, seconds with fixtures)


@pytest.fixture
def e2e_note() -> Callable[[str], None]:
    """``e2e_note("12 parallel sends -> 1 token request(s)")``: a line for the summary."""
    return _notes.append


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if Path(report.fspath).resolve().parent != E2E_DIR:
        return
    outcome, seconds = _outcomes.get(report.nodeid, ("", 0.0))
    if report.when == "call":
        outcome = report.outcome.upper()
    elif report.failed:
        outcome = "ERROR"
    elif report.skipped:
        outcome = "SKIPPED"
    _outcomes[report.nodeid] = (outcome, seconds + report.duration)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _outcomes:
        return
    version = _installed_provider_version() or "?"
    terminalreporter.write_sep(
        "=", f"e2e: installed oauthcli against oidc-provider {version} on 127.0.0.1"
    )
    for nodeid, (outcome, seconds) in _outcomes.items():
        terminalreporter.write_line(f"{outcome:<7} {nodeid} ({seconds:.1f} s)")
    for auth in AUTH_METHODS:
        per_test = [
            f"{nodeid.split('::')[-1].split('[')[0]} {outcome}"
            for nodeid, (outcome, _) in _outcomes.items()
            if nodeid.endswith(f"[{auth}]")
        ]
        if per_test:
            terminalreporter.write_line(f"e2e: {auth}: {', '.join(per_test)}")
    for note in _notes:
        terminalreporter.write_line(f"e2e: {note}")
    passed = sum(1 for outcome, _ in _outcomes.values() if outcome == "PASSED")
    total = sum(seconds for _, seconds in _outcomes.values())
    terminalreporter.write_line(
        f"e2e: {passed} of {len(_outcomes)} tests passed, {total:.1f} s including fixtures"
    )
