"""The device authorization grant (RFC 8628) of the installed oauthcli against oidc-provider: the
user code on stderr, the headless browser entering it at verification_uri_complete (as a person
on another device would), polling through authorization_pending and slow_down, a refused
sign-in, an expired code, and refreshes with rotation. Every test asserts from the provider's
log that it served the grant."""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import requests

from .cli import Cli
from .servers import Browser, open_with_webbrowser

pytestmark = pytest.mark.e2e

DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
CLIENT = "cli-device"
COMPLETE = re.compile(r"or open (\S+)")


def device_profile(cli: Cli, name: str = "dev") -> str:
    op = cli.op
    (cli.root / "profiles" / f"{name}.yaml").write_text(
        "grant_type: device_code\n"
        f"token_url: {op.token_url}\n"
        f"device_authorization_url: {op.device_authorization_url}\n"
        f"revocation_url: {op.revocation_url}\n"
        "client_id: cli-device\n"
        "client_auth: none\n"
        "scope: openid offline_access api.read\n"
        f"resource: {op.resource}\n"
    )
    return name


@dataclass
class Running:
    """oauthcli running without a terminal; its stderr read line by line as it comes."""

    proc: subprocess.Popen[str]
    err_lines: list[str] = field(default_factory=list)
    out: str = ""

    def __post_init__(self) -> None:
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.err_lines.append(line)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 15) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.err_lines):
                match = pattern.search(line)
                if match:
                    return match
            if self.proc.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {pattern.pattern!r} on stderr: {''.join(self.err_lines)}")

    def finish(self, timeout: float = 40) -> tuple[int, str, str]:
        try:
            assert self.proc.stdout is not None
            self.out = self.proc.stdout.read()
            code = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        err = "".join(self.err_lines)
        assert "Traceback" not in err, err
        return code, self.out, err


def start(cli: Cli, *args: str) -> Running:
    proc = subprocess.Popen(
        cli.command(*args),
        env=cli.env,
        cwd=cli.root,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return Running(proc)


def no_secret_in(texts: list[str], cli: Cli, *more: str) -> None:
    secrets = {*cli.cached_tokens(), *more}
    for text in texts:
        for secret in secrets:
            assert secret not in text, "a token or code was printed"


def test_device_flow_approved_in_the_browser_through_slow_down_then_refresh_rotates(
    cli: Cli, browser: Browser, e2e_note: Callable[[str], None]
) -> None:
    op = cli.op
    name = device_profile(cli)
    before = len(op.grants_served())
    run = start(cli, "get-token", name, "--wait", "--json", "-v")
    complete = run.wait_for(COMPLETE).group(1)
    # Every poll from now on is early for the server (0.8 x 2 s > 1 s): one slow_down, after
    # which oauthcli polls every 6 s and the server asks for 7 x 0.8.
    op.configure(device_interval=2)
    open_with_webbrowser(complete, browser.env())
    code, out, err = run.finish()
    assert code == 0, err
    assert browser.wait_done()[0]["outcome"] == "device_success"
    assert "and enter the code" in err and "--wait" not in err
    assert re.search(r"device_code=\*+", err), "the -v trace shows the device code masked"
    errors = [g["error"] for g in op.served(DEVICE_CODE, CLIENT, before)]
    assert errors[0] == "authorization_pending" and "slow_down" in errors and errors[-1] == "-"
    assert [g["status"] for g in op.served(DEVICE_CODE, CLIENT, before)][-1] == "200"
    shown = json.loads(out)
    assert shown["source"] == "grant" and shown["refresh_token"] is True
    first_refresh = cli.cache_entries()[0]["refresh_token"]
    no_secret_in([out, err], cli, first_refresh)

    # --force refreshes with the cached refresh token (no new sign-in), twice: each answer
    # rotates it and the second refresh succeeds only with the rotated one.
    seen = [first_refresh]
    for _ in range(2):
        again = cli.run("get-token", name, "--force", "--json")
        assert again.code == 0, again
        assert again.json()["source"] == "refresh"
        seen.append(cli.cache_entries()[0]["refresh_token"])
        no_secret_in([again.out, again.err], cli, *seen)
    assert len(set(seen)) == 3, "every refresh rotated the refresh token in the cache"
    refreshes = op.served("refresh_token", CLIENT, before)
    assert [g["status"] for g in refreshes] == ["200", "200"]
    # the first one is spent at the provider
    spent = requests.post(
        op.token_url,
        data={"grant_type": "refresh_token", "refresh_token": seen[0], "client_id": "cli-device"},
        timeout=5,
    )
    assert spent.status_code == 400 and spent.json()["error"] == "invalid_grant"
    e2e_note(
        f"device_code: {len(op.served(DEVICE_CODE, CLIENT, before))} polls "
        f"({', '.join(errors)}), then {len(refreshes)} rotating refreshes"
    )


def test_device_flow_denied_in_the_browser(cli: Cli, browser: Browser) -> None:
    op = cli.op
    name = device_profile(cli)
    before = len(op.grants_served())
    run = start(cli, "get-token", name, "--wait")
    open_with_webbrowser(run.wait_for(COMPLETE).group(1), browser.env(mode="deny"))
    code, out, err = run.finish()
    assert code == 6, err
    assert browser.wait_done()[0]["outcome"] == "device_denied"
    last = err.strip().splitlines()[-1]
    assert "access denied at http://127.0.0.1:" in last and "profile 'dev'" in last
    assert op.served(DEVICE_CODE, CLIENT, before)[-1]["error"] == "access_denied"
    assert cli.cache_entries() == []


def test_device_code_expires(cli: Cli) -> None:
    op = cli.op
    name = device_profile(cli)
    op.configure(device_code_ttl=2)
    before = len(op.grants_served())
    run = cli.run("get-token", name, "--wait")
    assert run.code == 6, run
    assert "the device code for profile 'dev' expired" in run.err
    assert "get-token dev` again" in run.err
    assert len(run.err.strip().splitlines()) == 4  # the code (3 lines), the reason
    polls = op.served(DEVICE_CODE, CLIENT, before)
    assert polls and all(g["status"] == "400" for g in polls)
    no_secret_in([run.out, run.err], cli)


def test_without_a_terminal_the_device_flow_fails_at_once(cli: Cli) -> None:
    op = cli.op
    name = device_profile(cli)
    counted = op.stats()["device_authorization"]
    run = cli.run("get-token", name)
    assert run.code == 6, run
    assert "no terminal" in run.err and "--wait" in run.err and run.seconds < 10
    assert len(run.err.strip().splitlines()) == 1
    assert op.stats()["device_authorization"] == counted, "nothing was asked of the provider"
    sent = cli.run("send", "api_client_secret_basic.list")  # another profile: unaffected
    assert sent.code == 0, sent
