"""Fixtures of the end-to-end harness: a real OAuth server (oidc-provider), a test API, a
DPoP-verifying API, a fake GitHub Actions ID-token endpoint and a headless browser.

The servers run for the whole session on free 127.0.0.1 ports; see servers.py for the objects
handed out and README.md for what each does. State that tests may change (counters, the resource server's revocation cutoff, injected
failures, the access token TTL) is shared: reset what you rely on, or compare deltas.

The ``cli`` fixture (see cli.py) runs the installed oauthcli against them. At the end of the
run a terminal summary section lists the outcome of every test in this folder and the facts
the tests reported with ``e2e_note`` (the concurrency test's counted token requests), and
what oidc-provider itself logged that it served (``OidcProvider.grants_served()`` over the
whole session: per grant type the clients, client auth methods and DPoP-bound tokens, and
the CI-assertion client), so that the CI log shows them without ``-v``. A grant of
``EXPECTED_GRANTS`` the provider never served is named on an ``e2e: NOT served`` line; when
every e2e test was selected and ran (none deselected, skipped or cut short by ``-x``), it
also fails the run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

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
            try:
                yield servers
            finally:
                _record_grants(servers.op)
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


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    """A requests session for the tests that speak to the components without oauthcli."""
    with requests.Session() as session:
        session.trust_env = False  # loopback only, no proxy from the environment
        yield session


@pytest.fixture
def fresh_stats(oidc_provider: OidcProvider, resource_server: ResourceServer) -> Iterator[None]:
    """The provider's and the API's counters at zero before and after the test (a module
    takes it for every test with ``pytest.mark.usefixtures("fresh_stats")``)."""
    oidc_provider.reset_stats()
    resource_server.reset_stats()
    yield
    oidc_provider.reset_stats()
    resource_server.reset_stats()


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
_served: list[dict[str, str]] = []  # the provider's grant log, read at the session's end
_e2e_deselected: list[str] = []
_full_run_missing: list[str] = []
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


def pytest_deselected(items: list[pytest.Item]) -> None:
    _e2e_deselected.extend(
        item.nodeid for item in items if Path(item.path).resolve().parent == E2E_DIR
    )


def _record_grants(op: OidcProvider) -> None:
    try:
        _served.extend(op.grants_served())
    except OSError:  # no log to read: the summary says the provider served nothing
        pass


EXPECTED_GRANTS = (
    "client_credentials",
    "authorization_code",
    "refresh_token",
    "urn:ietf:params:oauth:grant-type:device_code",
    "urn:ietf:params:oauth:grant-type:token-exchange",
)
CI_ASSERTION_CLIENT = "cli-ci"
_SHORT = {
    "urn:ietf:params:oauth:grant-type:device_code": "device_code",
    "urn:ietf:params:oauth:grant-type:token-exchange": "token-exchange",
    "-": "requests with no grant it knows (refused on purpose by the tests)",
}


def grant_summary(served: list[dict[str, str]]) -> tuple[list[str], list[str]]:
    """The summary's lines for the provider's grant log ``served`` (``grants_served()``
    entries), and the ``EXPECTED_GRANTS`` it holds no successful (status 200) line of."""
    ok = [entry for entry in served if entry.get("status") == "200"]
    lines = []
    order = list(EXPECTED_GRANTS)
    order += sorted({entry.get("grant_type", "-") for entry in served} - set(order))
    for grant in order:
        of_grant = [e for e in served if e.get("grant_type", "-") == grant]
        if not of_grant:
            continue
        issued = [e for e in of_grant if e.get("status") == "200"]
        refused = len(of_grant) - len(issued)
        clients = sorted({e.get("client", "-") for e in issued})
        auths = sorted({e.get("auth", "-") for e in issued})
        bound = sum(1 for e in issued if e.get("token_type", "").lower() == "dpop")
        proofs = sum(1 for e in of_grant if e.get("dpop_proof") == "yes")
        lines.append(
            f"provider served {_SHORT.get(grant, grant)}: {len(issued)} token(s)"
            + (f" ({refused} refused)" if refused else "")
            + f"; clients {', '.join(clients) or '-'}; client auth {', '.join(auths) or '-'}"
            + f"; {bound} DPoP-bound ({proofs} request(s) with a proof)"
        )
    ci = [e for e in ok if e.get("client") == CI_ASSERTION_CLIENT]
    if ci:
        auths = sorted({e.get("auth", "-") for e in ci})
        lines.append(
            f"provider served the CI-assertion client {CI_ASSERTION_CLIENT}: {len(ci)} "
            f"token(s), client auth {', '.join(auths)} (assertions of the fake CI issuer)"
        )
    else:
        lines.append(f"provider served the CI-assertion client {CI_ASSERTION_CLIENT}: nothing")
    missing = [g for g in EXPECTED_GRANTS if not any(e.get("grant_type") == g for e in ok)]
    if not any(e.get("token_type", "").lower() == "dpop" for e in ok):
        missing.append("a DPoP-bound token")
    if missing:
        lines.append(f"NOT served by the provider: {', '.join(_SHORT.get(g, g) for g in missing)}")
    return lines, missing


def _ran_in_full(session: pytest.Session) -> bool:
    """Every e2e test file collected, none of its tests deselected or skipped, and the run
    not stopped early."""
    if _e2e_deselected or session.shouldstop or session.shouldfail:
        return False
    files = {Path(nodeid.split("::")[0]).name for nodeid in _outcomes}
    every = {path.name for path in E2E_DIR.glob("test_*.py")}
    if not every <= files:
        return False
    return all(outcome in {"PASSED", "FAILED", "ERROR"} for outcome, _ in _outcomes.values())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _outcomes or not _served and not _ran_in_full(session):
        return
    _, missing = grant_summary(_served)
    if missing and _ran_in_full(session):
        _full_run_missing.extend(missing)
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
    if _served or _full_run_missing:
        for line in grant_summary(_served)[0]:
            terminalreporter.write_line(f"e2e: {line}")
        if _full_run_missing:
            terminalreporter.write_line(
                "e2e: every e2e test ran, yet the provider never served the grants above: "
                "the run fails"
            )
    passed = sum(1 for outcome, _ in _outcomes.values() if outcome == "PASSED")
    total = sum(seconds for _, seconds in _outcomes.values())
    terminalreporter.write_line(
        f"e2e: {passed} of {len(_outcomes)} tests passed, {total:.1f} s including fixtures"
    )
