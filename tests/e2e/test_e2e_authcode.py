"""authorization_code + PKCE of the installed oauthcli against oidc-provider, signed in by the
headless chromium that Python's webbrowser opens through BROWSER, oauthcli on a pseudo-terminal
as a person runs it; ``--no-browser`` (the URL printed, opened by the person); a refused consent;
then refreshes with rotation, the old refresh token refused by the provider. Every test asserts
from the provider's log that it served the grant."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from urllib.parse import quote_plus

import pytest
import requests

from .cli import Cli
from .servers import Browser, Client, OidcProvider, open_with_webbrowser

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def authcode_profile(cli: Cli, client_id: str = "cli-authcode", name: str = "web") -> str:
    op = cli.op
    lines = [
        "grant_type: authorization_code",
        f"token_url: {op.token_url}",
        f"authorization_url: {op.authorization_url}",
        f"redirect_url: http://127.0.0.1:{free_port()}/callback",
        f"client_id: {client_id}",
        "scope: openid offline_access api.read",
        f"resource: {op.resource}",
        # oidc-provider issues a refresh token (offline_access) only after a consent prompt
        "authorization_params: {prompt: consent}",
    ]
    client = _client(op, client_id)
    if client.client_secret is None:
        lines.append("client_auth: none")
    else:
        lines += ["client_auth: client_secret_basic", f"client_secret: {client.client_secret!r}"]
    (cli.root / "profiles" / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    return name


def _client(op: OidcProvider, client_id: str) -> Client:
    return op.authcode if client_id == op.authcode.client_id else op.authcode_secret


class Terminal:
    """oauthcli with stdin, stdout and stderr on one pseudo-terminal, read as it writes."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str) -> None:
        import pty

        self.main, child = pty.openpty()
        self.proc = subprocess.Popen(
            argv, stdin=child, stdout=child, stderr=child, env=env, cwd=cwd, start_new_session=True
        )
        os.close(child)
        self.screen = b""
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.main, 65536)
            except OSError:  # EIO: the child side is closed
                return
            if not chunk:
                return
            self.screen += chunk

    @property
    def text(self) -> str:
        return self.screen.decode("utf-8", "replace").replace("\r\n", "\n")

    def wait_for(self, pattern: str, timeout: float = 15) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text)
            if match:
                return match
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} on the terminal: {self.text}")

    def finish(self, timeout: float = 40) -> tuple[int, str]:
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.reader.join(5)
            os.close(self.main)
        assert "Traceback" not in self.text, self.text
        return code, self.text


def on_terminal(cli: Cli, env: dict[str, str], *args: str) -> Terminal:
    clean = {k: v for k, v in cli.env.items() if not k.startswith("E2E_BROWSER")}
    return Terminal(cli.command(*args), {**clean, **env}, str(cli.root))


def refresh_status(op: OidcProvider, client_id: str, refresh_token: str) -> requests.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    client = _client(op, client_id)
    if client.client_secret is None:
        return requests.post(op.token_url, data={**form, "client_id": client_id}, timeout=5)
    # RFC 6749 2.3.1: each form-urlencoded before the Basic encoding (the secret has "+%:/")
    auth = (quote_plus(client_id), quote_plus(client.client_secret))
    return requests.post(op.token_url, data=form, auth=auth, timeout=5)


@pytest.mark.parametrize("client_id", ["cli-authcode", "cli-authcode-secret"])
def test_browser_sign_in_with_pkce_then_refreshes_rotate(
    cli: Cli, browser: Browser, client_id: str, e2e_note: Callable[[str], None]
) -> None:
    op = cli.op
    name = authcode_profile(cli, client_id)
    before = len(op.grants_served())
    term = on_terminal(cli, browser.env(), "get-token", name, "--json")
    code, screen = term.finish()
    assert code == 0, screen
    assert "Opening a browser to sign in for profile 'web'" in screen
    assert browser.wait_done()[0]["outcome"] == "callback"
    history = op.stats()["authorization_history"]
    assert history[-1]["code_challenge_method"] == "S256" and history[-1]["code_challenge"]
    assert [g["status"] for g in op.served("authorization_code", client_id, before)] == ["200"]
    first = cli.cache_entries()[0]["refresh_token"]
    assert first and first not in screen

    # Later runs need no terminal and no browser: the cached refresh token, rotated each time.
    seen = [first]
    for _ in range(2):
        again = cli.run("get-token", name, "--force", "--json")
        assert again.code == 0, again
        assert again.json()["source"] == "refresh"
        seen.append(cli.cache_entries()[0]["refresh_token"])
        assert not any(t in again.both for t in seen)
    assert len(set(seen)) == 3
    assert [g["status"] for g in op.served("refresh_token", client_id, before)] == ["200", "200"]
    assert browser.wait_done()[0:] and len(browser.results()) == 1, "no second sign-in"
    spent = refresh_status(op, client_id, seen[0])
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"
    e2e_note(f"authorization_code ({client_id}): browser sign-in, S256, 2 rotating refreshes")


def test_no_browser_prints_the_url_and_waits_for_the_redirect(cli: Cli, browser: Browser) -> None:
    op = cli.op
    name = authcode_profile(cli)
    before = len(op.grants_served())
    # BROWSER set to something that would fail the test if it were ever run
    term = on_terminal(cli, {"BROWSER": "/bin/false"}, "get-token", name, "--no-browser")
    url = term.wait_for(re.escape(op.authorization_url) + r"\?\S+").group(0)
    assert "forward that port first (ssh -L" in term.text
    open_with_webbrowser(url, browser.env())  # the person opens it, e.g. on their laptop
    code, screen = term.finish()
    assert code == 0, screen
    assert "Opening a browser" not in screen
    assert f"Token for profile '{name}' obtained from {op.token_url}" in screen
    assert op.served("authorization_code", "cli-authcode", before)[-1]["status"] == "200"


def test_a_refused_consent_is_one_line_exit_6(cli: Cli, browser: Browser) -> None:
    op = cli.op
    name = authcode_profile(cli)
    before = len(op.grants_served())
    term = on_terminal(cli, browser.env(mode="deny"), "get-token", name)
    code, screen = term.finish()
    assert code == 6, screen
    assert "authorization for profile 'web' failed: access_denied" in screen
    assert op.served("authorization_code", "cli-authcode", before) == []
    assert cli.cache_entries() == []


def test_without_a_terminal_it_fails_at_once_and_later_runs_use_the_refresh_token(
    cli: Cli, browser: Browser
) -> None:
    op = cli.op
    name = authcode_profile(cli)
    counted = op.stats()["authorization"]
    plain = cli.run("get-token", name, "--wait")  # --wait is for the device flow only
    assert plain.code == 6 and "interactively" in plain.err and plain.seconds < 10, plain
    assert op.stats()["authorization"] == counted
    term = on_terminal(cli, browser.env(), "get-token", name)
    assert term.finish()[0] == 0
    sent = cli.run("get-token", name, "--json")
    assert sent.code == 0 and json.loads(sent.out)["source"] == "cache", sent
