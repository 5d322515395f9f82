"""Reliability through the installed CLI: what a user sees when the token endpoint or the API
misbehaves, and what a SIGKILL in the middle of a run leaves in the token cache.

Every failure below must end with the documented exit code and one readable line on stderr,
never a traceback (the ``cli`` fixture checks every run for one).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from .cli import Cli, Run
from .servers import free_port

pytestmark = pytest.mark.e2e

KILL_LOOP_SECONDS = 3.0


def one_line(run: Run) -> str:
    """The run's only stderr line (fails when it printed more, or nothing)."""
    lines = [line for line in run.err.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr:\n{run}"
    assert run.out == "", run
    return lines[0]


# --------------------------------------------------------------------------------------------
# a token endpoint that answers garbage


class BadTokenEndpoint(ThreadingHTTPServer):
    """``POST /<case>`` on 127.0.0.1 answers as the case says."""

    daemon_threads = True
    CASES: dict[str, tuple[int, str, bytes]] = {
        "html": (200, "text/html", b"<!doctype html>\n<html><body>Sign in</body></html>"),
        "500-html": (500, "text/html", b"<html><body><h1>Internal Server Error</h1></body></html>"),
        "no-access-token": (
            200,
            "application/json",
            json.dumps({"token_type": "Bearer", "expires_in": 300}).encode(),
        ),
        # Was exit 1 "internal error" (and a poisoned cache entry) until expires_in was checked.
        "absurd-expires-in": (
            200,
            "application/json",
            json.dumps({"access_token": "at-0123456789", "expires_in": 1e30}).encode(),
        ),
    }

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _BadHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class _BadHandler(BaseHTTPRequestHandler):
    server: BadTokenEndpoint
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (stdlib name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, ctype, body = self.server.CASES[self.path.strip("/")]
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        pass


@pytest.fixture
def bad_endpoint() -> Iterator[BadTokenEndpoint]:
    server = BadTokenEndpoint()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _bad_profile(cli: Cli, name: str, token_url: str) -> str:
    cli.add_profile(name, "client_secret_post")
    path = cli.root / "profiles" / f"{name}.yaml"
    text = path.read_text().replace(f"token_url: {cli.op.token_url}", f"token_url: {token_url}")
    path.write_text(text)
    return name


def _hanging(cli: Cli, bad: BadTokenEndpoint) -> str:
    cli.op.fail_next_token_requests(2, status=0, delay=1.0)
    return cli.add_profile("slow", "client_secret_post", timeout=0.5)


def _provider_500(cli: Cli, bad: BadTokenEndpoint) -> str:
    cli.op.fail_next_token_requests(2, status=500, error="server_error")
    return "client_secret_basic"


# Each case: how to break the token endpoint, and what the one line must say.
TOKEN_FAILURES: dict[str, tuple[Callable[[Cli, BadTokenEndpoint], str], str]] = {
    "hangs": (
        _hanging,
        "no complete answer from {url} within 0.5 s",
    ),
    "provider-500": (
        _provider_500,
        "server_error: injected failure (test hook) (HTTP 500 from {url})",
    ),
    "500-html": (
        lambda cli, bad: _bad_profile(cli, "html500", f"{bad.url}/500-html"),
        "answered HTTP 500 (text/html), not a JSON object: <html><body><h1>Internal Server",
    ),
    "html": (
        lambda cli, bad: _bad_profile(cli, "html", f"{bad.url}/html"),
        "answered HTTP 200 (text/html), not a JSON object: <!doctype html>",
    ),
    "no-access-token": (
        lambda cli, bad: _bad_profile(cli, "noat", f"{bad.url}/no-access-token"),
        "answered JSON without an access_token (keys: expires_in, token_type)",
    ),
    "absurd-expires-in": (
        lambda cli, bad: _bad_profile(cli, "forever", f"{bad.url}/absurd-expires-in"),
        "answered expires_in as 1e+30, not seconds",
    ),
    "wrong-secret": (
        lambda cli, bad: (
            cli.env.update(E2E_SECRET_CLI_POST="not-the-secret-of-cli-post"),
            "client_secret_post",
        )[1],
        "invalid_client: client authentication failed (HTTP 401 from {url})",
    ),
    "unreachable": (
        lambda cli, bad: _bad_profile(cli, "down", f"http://127.0.0.1:{free_port()}/token"),
        "cannot connect to {url}",
    ),
}


@pytest.mark.parametrize("case", TOKEN_FAILURES)
def test_token_endpoint_failure_exits_6_with_one_line(
    cli: Cli, bad_endpoint: BadTokenEndpoint, case: str
) -> None:
    setup, expected = TOKEN_FAILURES[case]
    profile = setup(cli, bad_endpoint)
    token_url = next(
        line.split(": ", 1)[1]
        for line in (cli.root / "profiles" / f"{profile}.yaml").read_text().splitlines()
        if line.startswith("token_url: ")
    )

    # Both at once: the second waits for the first on the cache entry's lock, then tries too.
    for run in cli.run_parallel([["get-token", profile], ["send", f"api_{profile}.list"]]):
        assert run.code == 6, run
        line = one_line(run)
        assert line.startswith("error: "), line
        assert expected.format(url=token_url) in line, line
        assert "not-the-secret" not in line
    assert cli.rs.stats()["total"] == 0  # the API is never called without a token
    assert cli.cache_entries() == []


def test_api_connection_reset_or_refused_exits_7(cli: Cli) -> None:
    reset = cli.run("send", "api_client_secret_post.reset")
    assert reset.code == 7, reset
    line = one_line(reset)
    assert line.startswith(f"error: cannot reach {cli.rs.reset_connection_url}: "), line
    assert "reset" in line.lower(), line

    port = free_port()
    cli.add_message(
        "closed",
        f"endpoint: http://127.0.0.1:{port}/api\n"
        "auth: {type: oauth2, profile: client_secret_post}\n"
        "retry: {attempts: 1}\n",
    )
    refused = cli.run("send", "--json", "closed")
    assert refused.code == 7, refused
    line = one_line(refused)
    assert line.startswith(f"error: cannot reach http://127.0.0.1:{port}/api: "), line
    assert "refused" in line.lower(), line
    assert cli.token_requests() == 1  # the token was obtained once, then cached


def test_sigkill_of_the_process_renewing_the_token_frees_its_lock(cli: Cli) -> None:
    """The process that holds the cache entry's lock is killed while the provider is slow to
    answer it: the next process gets the lock at once (flock dies with its holder) instead of
    waiting out the lock timeout, and gets a token."""
    profile = "client_secret_basic"
    cli.op.fail_next_token_requests(1, status=0, delay=1.0)
    holder = subprocess.Popen(
        cli.command("get-token", profile),
        env=cli.env,
        cwd=cli.root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while cli.token_requests() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # until its token request is at the provider, lock held
        assert cli.token_requests() == 1
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)

    after = cli.run("get-token", "--json", profile)

    assert after.code == 0 and after.json()["cached"] is False, after
    assert after.seconds < 5, after
    assert cli.token_requests() == 2
    assert len(cli.cache_entries()) == 1


def test_sigkill_while_writing_the_cache_leaves_no_partial_entry(
    cli: Cli, e2e_note: Callable[[str], None]
) -> None:
    """Runs ``get-token --force`` two at a time for ~3 s and SIGKILLs each at a random moment,
    mostly late in its run, where it writes the cache; then every cache file must parse and
    the next calls must work. (The entry is written to a temporary file and renamed.)"""
    profile = "client_secret_post"
    probe = cli.run("get-token", "--force", profile)
    assert probe.code == 0, probe
    typical = probe.seconds
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    started, killed, finished = time.monotonic(), 0, 0
    while time.monotonic() - started < KILL_LOOP_SECONDS:
        procs = [
            subprocess.Popen(
                cli.command("get-token", "--force", "--raw", profile),
                env=cli.env,
                cwd=cli.root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        for proc in procs:
            deadline = time.monotonic() + rng.uniform(0.4, 1.1) * typical
            while proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            else:
                finished += 1
            proc.wait(10)
        cli.cache_entries()  # between rounds too, every entry parses

    note = f"seed {seed}: {killed} killed, {finished} finished"
    assert killed > 0, note
    entries = cli.cache_entries()  # each one parses, or this fails
    assert len(entries) == 1, note
    assert all(e["access_token"] and e["profile"] == profile for e in entries), note
    listed = cli.run("token", "list")
    assert listed.code == 0 and listed.err == "", listed
    after = cli.run("get-token", "--json", profile)
    assert after.code == 0 and after.json()["cached"] is True, after
    sent = cli.run("send", "--json", f"api_{profile}.list")
    assert sent.code == 0 and sent.json()["status"] == 200, sent
    # A temporary file left behind is a kill that landed inside a write: harmless, never read.
    torn = len(list(cli.cache_dir.glob(".*.tmp")))
    e2e_note(
        f"SIGKILL loop: {killed + finished} get-token --force processes, {killed} killed "
        f"mid-run ({torn} inside a cache write); every cache file parsed, the next call worked"
    )
