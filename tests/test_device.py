"""The device authorization grant (RFC 8628) through the grant table and the CLI: what goes on
the wire, what the user is shown, how polling honours interval, slow_down, authorization_pending,
expired_token, access_denied and expires_in, and that without a terminal it fails at once unless
told to wait. The clock and the sleep between polls are injected; nothing here waits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses

from oauthcli.errors import ExitCode, GrantError, RegistryError, TokenError
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret, scrub
from oauthcli.tokens import device, grants, signin
from tests.clirun import run
from tests.servers import LoopbackServer, Recorded

Make = Callable[..., ResolvedProfile]
TOKEN_URL = "https://login.test/oauth2/token"
DEVICE_URL = "https://login.test/oauth2/device"
DEVICE_CODE = "dc-SECRET-0123456789abcdef"
WIRE = "urn:ietf:params:oauth:grant-type:device_code"


class Clock:
    """The injected clock: sleeping moves it on at once, and every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(device, "clock", c)
    monkeypatch.setattr(device, "sleep", c.sleep)
    monkeypatch.setattr(device, "interactive", lambda: True)
    return c


@pytest.fixture
def shown() -> Iterator[list[str]]:
    lines: list[str] = []
    with signin.shown_by(lines.append):
        yield lines


def _profile(token_profile: Make, **changes: Any) -> ResolvedProfile:
    return token_profile(
        **{
            "grant_type": "device_code",
            "client_auth": "none",
            "client_secret": None,
            "device_authorization_url": DEVICE_URL,
            "scope": ("openid", "offline_access"),
            "resource": ("https://api.test/",),
            **changes,
        }
    )


def _authorization(**extra: Any) -> None:
    body = {
        "device_code": DEVICE_CODE,
        "user_code": "WDJB-MJHT",
        "verification_uri": "https://login.test/device",
        "verification_uri_complete": "https://login.test/device?user_code=WDJB-MJHT",
        "expires_in": 600,
        "interval": 2,
        **extra,
    }
    responses.post(DEVICE_URL, json={k: v for k, v in body.items() if v is not None})


def _error(error: str, status: int = 400) -> None:
    responses.post(TOKEN_URL, status=status, json={"error": error})


def _token() -> None:
    responses.post(
        TOKEN_URL,
        json={
            "access_token": "at-device-0001",
            "token_type": "Bearer",
            "expires_in": 300,
            "refresh_token": "rt-device-0001",
        },
    )


def _form(n: int) -> dict[str, list[str]]:
    return parse_qs(str(responses.calls[n].request.body))


@responses.activate
def test_the_code_is_shown_and_the_token_endpoint_polled_until_signed_in(
    token_profile: Make, clock: Clock, shown: list[str]
) -> None:
    _authorization()
    _error("authorization_pending")
    _error("slow_down")
    _error("authorization_pending")
    _token()

    answer = grants.fetch(_profile(token_profile))

    assert answer.access_token == "at-device-0001" and answer.refresh_token == "rt-device-0001"
    asked = _form(0)
    assert asked == {
        "client_id": ["app"],
        "scope": ["openid offline_access"],
        "resource": ["https://api.test/"],
    }
    assert responses.calls[0].request.url == DEVICE_URL
    for n in range(1, 5):
        form = _form(n)
        assert form["grant_type"] == [WIRE] and form["device_code"] == [DEVICE_CODE]
        assert form["client_id"] == ["app"] and "scope" not in form
    # interval 2, then 2 + 5 for good after slow_down
    assert clock.sleeps == [2, 2, 7, 7]
    assert len(shown) == 1
    text = shown[0]
    assert "open https://login.test/device and enter the code WDJB-MJHT" in text
    assert "or open https://login.test/device?user_code=WDJB-MJHT" in text
    assert "expires in 10 min" in text and DEVICE_CODE not in text
    assert DEVICE_CODE not in scrub(f"x {DEVICE_CODE} y")  # known as a secret before any -v line


@responses.activate
def test_without_interval_it_polls_every_5_seconds(
    token_profile: Make, clock: Clock, shown: list[str]
) -> None:
    _authorization(interval=None, verification_uri_complete=None)
    _error("authorization_pending")
    _token()
    grants.fetch(_profile(token_profile))
    assert clock.sleeps == [5, 5]
    assert "or open" not in shown[0]


@responses.activate
def test_google_style_answers_are_read(token_profile: Make, clock: Clock, shown: list[str]) -> None:
    # verification_url, numbers as strings
    _authorization(
        verification_uri=None,
        verification_url="https://www.google.com/device",
        interval="3",
        expires_in="1800",
    )
    _token()
    grants.fetch(_profile(token_profile))
    assert clock.sleeps == [3] and "open https://www.google.com/device" in shown[0]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("expired_token", r"device code for profile 'acme' expired .* get-token acme` again"),
        ("access_denied", r"^access denied at https://login.test: the sign-in for profile 'acme'"),
    ],
)
@responses.activate
def test_expired_and_denied_end_polling_as_token_errors(
    token_profile: Make, clock: Clock, shown: list[str], error: str, message: str
) -> None:
    _authorization()
    _error("authorization_pending")
    _error(error)
    with pytest.raises(TokenError, match=message) as caught:
        grants.fetch(_profile(token_profile))
    assert not isinstance(caught.value, GrantError) and caught.value.exit_code == ExitCode.TOKEN
    assert len(responses.calls) == 3


@responses.activate
def test_polling_stops_when_the_code_expires(
    token_profile: Make, clock: Clock, shown: list[str]
) -> None:
    _authorization(expires_in=11, interval=5)
    _error("authorization_pending")
    with pytest.raises(TokenError, match="expired before the sign-in was completed"):
        grants.fetch(_profile(token_profile))
    assert clock.sleeps == [5, 5]  # at 5 and 10 s; the next would be past 11 s
    assert "expires in 11 s" in shown[0]


@responses.activate
def test_an_interval_longer_than_the_code_lives_is_said_as_such(
    token_profile: Make, clock: Clock, shown: list[str]
) -> None:
    _authorization(expires_in=600, interval=10**6)
    with pytest.raises(
        TokenError, match=r"asks for a poll every 1e\+06 s, but its device code expires in 600 s"
    ):
        grants.fetch(_profile(token_profile))
    assert clock.sleeps == [] and len(responses.calls) == 1  # not one poll


@responses.activate
def test_an_absurd_expires_in_is_bounded(
    token_profile: Make, clock: Clock, shown: list[str]
) -> None:
    _authorization(expires_in=10**7, interval=600)
    _error("authorization_pending")
    with pytest.raises(TokenError, match="expired"):
        grants.fetch(_profile(token_profile))
    assert sum(clock.sleeps) <= device.MAX_WAIT


@responses.activate
def test_transient_failures_are_tried_again_with_backoff_then_given_up(
    token_profile: Make, clock: Clock, shown: list[str]
) -> None:
    _authorization(interval=1)
    responses.post(TOKEN_URL, status=502, body="bad gateway")
    responses.post(TOKEN_URL, status=503, json={"error": "temporarily_unavailable"})
    _token()
    grants.fetch(_profile(token_profile))
    assert clock.sleeps == [1, 2, 4]

    responses.reset()
    _authorization(interval=1)
    responses.post(TOKEN_URL, status=500, body="down")
    with pytest.raises(GrantError, match="HTTP 500") as caught:
        grants.fetch(_profile(token_profile))
    assert caught.value.retry_after is None
    assert len(responses.calls) == 1 + device.TRANSIENT_LIMIT


@responses.activate
def test_other_token_errors_end_polling_with_the_servers_words(
    token_profile: Make, clock: Clock, shown: list[str]
) -> None:
    _authorization()
    responses.post(
        TOKEN_URL, status=400, json={"error": "invalid_client", "error_description": "who?"}
    )
    with pytest.raises(GrantError, match="invalid_client: who"):
        grants.fetch(_profile(token_profile))


@responses.activate
def test_a_confidential_client_authenticates_at_the_device_endpoint(
    token_profile: Make, clock: Clock, shown: list[str]
) -> None:
    _authorization()
    _token()
    profile = _profile(
        token_profile, client_auth="client_secret_basic", client_secret=Secret("s3cr3t-value")
    )
    grants.fetch(profile)
    for call in responses.calls:
        assert call.request.headers["Authorization"].startswith("Basic ")


# -- no one to enter the code -------------------------------------------------------------


@responses.activate
def test_without_a_terminal_it_fails_at_once(
    token_profile: Make, clock: Clock, shown: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(device, "interactive", lambda: False)
    with pytest.raises(TokenError, match=r"no terminal .* get-token acme` interactively .*--wait"):
        grants.fetch(_profile(token_profile))
    assert len(responses.calls) == 0 and shown == []


@responses.activate
def test_without_a_terminal_it_waits_when_told_to(
    token_profile: Make, clock: Clock, shown: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(device, "interactive", lambda: False)
    _authorization()
    _token()
    with signin.using(wait=True):
        grants.fetch(_profile(token_profile))
    assert len(shown) == 1
    assert signin.settings().wait is False  # restored after the block


@responses.activate
def test_the_python_api_fails_at_once_unless_it_asks_to_wait(
    token_profile: Make, clock: Clock
) -> None:
    with pytest.raises(TokenError, match=r"no one is shown the code .*signin.using"):
        grants.fetch(_profile(token_profile))
    assert len(responses.calls) == 0


# -- hostile device authorization answers --------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"device_code": None}, "answered no device_code"),
        ({"user_code": None}, "answered no user_code"),
        ({"user_code": "AB\x1b[2J"}, "answered an unusable user_code"),
        ({"user_code": "X" * 100}, "answered an unusable user_code"),
        ({"verification_uri": "javascript:alert(1)"}, "no usable http"),
        ({"verification_uri": "https://ok.test/\n\x1b]0;pwned"}, "no usable http"),
    ],
)
@responses.activate
def test_an_unusable_device_answer_is_one_reason(
    token_profile: Make, clock: Clock, shown: list[str], change: dict[str, Any], message: str
) -> None:
    _authorization(**change)
    with pytest.raises(
        GrantError, match=f"^device authorization for profile 'acme' failed: .*{message}"
    ):
        grants.fetch(_profile(token_profile))
    assert shown == [] and len(responses.calls) == 1


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        ({"status": 302, "headers": {"Location": "https://evil.test/"}}, "never redirected"),
        ({"status": 200, "body": "<html>login</html>", "content_type": "text/html"}, "not a JSON"),
        ({"status": 401, "json": {"error": "invalid_client"}}, "invalid_client"),
        ({"status": 400, "json": {"error": "unauthorized_client"}}, "may not use this grant"),
        ({"status": 404, "json": {}}, "HTTP 404 without an OAuth error"),
    ],
)
@responses.activate
def test_a_refusing_device_endpoint_is_one_reason(
    token_profile: Make, clock: Clock, shown: list[str], reply: dict[str, Any], message: str
) -> None:
    responses.post(DEVICE_URL, **reply)
    with pytest.raises(GrantError, match=message):
        grants.fetch(_profile(token_profile))
    assert len(responses.calls) == 1 and shown == []


def test_no_device_authorization_url_is_a_registry_error(
    token_profile: Make, clock: Clock, shown: list[str]
) -> None:
    with pytest.raises(RegistryError, match="device_authorization_url"):
        grants.fetch(_profile(token_profile, device_authorization_url=None))


# -- the command line -------------------------------------------------------------------------


def _registry(tmp_path: Path, base: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "reg"
    (root / "profiles").mkdir(parents=True)
    (root / "messages").mkdir()
    (root / "profiles" / "dev.yaml").write_text(
        "grant_type: device_code\n"
        f"token_url: {base}/token\n"
        f"device_authorization_url: {base}/device\n"
        "client_id: cli-device\n"
        "client_auth: none\n"
        "scope: openid offline_access\n"
    )
    (root / "messages" / "api.yaml").write_text(
        f"endpoint: {base}/api\nauth: {{type: oauth2, profile: dev}}\n"
        "methods:\n  me:\n    http_method: GET\n    path: /me\n"
    )
    monkeypatch.setenv("OAUTHCLI_REGISTRY", str(root))
    return root


def test_cli_without_a_terminal_says_to_run_it_interactively(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer
) -> None:
    _registry(tmp_path, loopback.base, monkeypatch)
    result = run("get-token", "dev")
    assert result.code == ExitCode.TOKEN
    assert "run `oauthcli get-token dev` interactively" in result.err
    assert "--wait" in result.err and len(result.err.strip().splitlines()) == 1
    assert loopback.requests == []


def _device_server(loopback: LoopbackServer, polls: list[str]) -> None:
    """A device endpoint and a token endpoint answering ``polls`` in turn, then a token."""

    def device_route(rec: Recorded) -> Any:
        body = {
            "device_code": DEVICE_CODE,
            "user_code": "ABCD-EFGH",
            "verification_uri": f"{loopback.base}/activate",
            "expires_in": 60,
            "interval": 1,
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def token_route(rec: Recorded) -> Any:
        if polls:
            return (
                400,
                {"Content-Type": "application/json"},
                json.dumps({"error": polls.pop(0)}).encode(),
            )
        body = {"access_token": "at-cli-device-77", "token_type": "Bearer", "expires_in": 300}
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    loopback.routes["/device"] = device_route
    loopback.routes["/token"] = token_route


def _cli_env(tmp_path: Path) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("OAUTHCLI_")},
        "OAUTHCLI_REGISTRY": str(tmp_path / "reg"),
        "OAUTHCLI_CACHE_DIR": str(tmp_path / "cache"),
        "NO_COLOR": "1",
    }


def test_cli_with_wait_shows_the_code_on_stderr_and_polls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer
) -> None:
    _registry(tmp_path, loopback.base, monkeypatch)
    _device_server(loopback, ["authorization_pending"])
    done = subprocess.run(
        [sys.executable, "-m", "oauthcli", "get-token", "dev", "--wait", "--json"],
        env=_cli_env(tmp_path),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert f"open {loopback.base}/activate and enter the code ABCD-EFGH" in done.stderr
    assert json.loads(done.stdout)["source"] == "grant"
    for text in (done.stdout, done.stderr):
        assert DEVICE_CODE not in text and "at-cli-device-77" not in text
    assert [r.path for r in loopback.requests] == ["/device", "/token", "/token"]


def test_cli_ctrl_c_while_polling_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loopback: LoopbackServer
) -> None:
    _registry(tmp_path, loopback.base, monkeypatch)
    _device_server(loopback, ["authorization_pending"] * 100)
    proc = subprocess.Popen(
        [sys.executable, "-m", "oauthcli", "send", "--wait", "-v", "api.me"],
        env=_cli_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not loopback.requests:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == ExitCode.INTERRUPTED, err
    assert "Traceback" not in err and DEVICE_CODE not in out + err
