"""Another process's sign-in: how long a second oauthcli waits for the entry's lock follows
the grant (a device code's lifetime bound, a browser's answer), it says that it waits, and it
waits without a terminal too (it needs the other's token, not a person of its own). Short
bounds and a holder thread in this process (flock: another open file conflicts) stand in for
minutes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import responses

import oauthcli.tokens.authcode as authcode
import oauthcli.tokens.device as device
from oauthcli.errors import TokenError
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret
from oauthcli.tokens import Token, cache, obtain, service, signin

Make = Callable[..., ResolvedProfile]


def _device(token_profile: Make, timeout: float = 1.0) -> ResolvedProfile:
    return token_profile(
        grant_type="device_code",
        client_auth="none",
        client_secret=None,
        device_authorization_url="https://login.test/oauth2/device",
        timeout=timeout,
    )


def test_the_wait_follows_the_grant(token_profile: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = token_profile(timeout=5.0)
    assert service._lock_wait(plain) == 2 * 5 + service.LOCK_MARGIN
    dev = _device(token_profile, timeout=5.0)
    # a device code may live 30 min: the old fixed 330 s gave up during a sign-in
    assert service._lock_wait(dev) == device.MAX_WAIT + 2 * 5 + service.LOCK_MARGIN
    assert service._lock_wait(dev) > 1800
    monkeypatch.setattr(device, "MAX_WAIT", 7)
    assert service._lock_wait(dev) == 7 + 2 * 5 + service.LOCK_MARGIN
    code = token_profile(
        grant_type="authorization_code",
        authorization_url="https://login.test/authorize",
        redirect_url="http://127.0.0.1:8765/callback",
        timeout=5.0,
    )
    assert service._lock_wait(code) == authcode.WAIT + 2 * 5 + service.LOCK_MARGIN


def _token(access: str) -> Token:
    now = time.time()
    return Token(
        access_token=Secret(access),
        token_type="Bearer",
        expires_at=now + 300,
        scope=None,
        refresh_token=None,
        refresh_expires_at=None,
        obtained_at=now,
    )


def test_a_second_process_without_a_terminal_waits_for_the_device_sign_in(
    token_profile: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = _device(token_profile, timeout=0.5)
    monkeypatch.setattr(device, "MAX_WAIT", 3)
    monkeypatch.setattr(service, "LOCK_MARGIN", 0)
    path = cache.entry_path(cache.entry_key(profile))
    held, release = threading.Event(), threading.Event()

    def sign_in_elsewhere() -> None:
        with cache.lock(path, 1):
            held.set()
            release.wait(5)
            entry = cache.Entry(
                token=_token("at-from-the-device-sign-in"),
                profile=profile.name,
                token_url=profile.token_url,
                client_id=profile.client_id,
            )
            cache.write(path, entry)

    holder = threading.Thread(target=sign_in_elsewhere)
    holder.start()
    shown: list[str] = []
    try:
        assert held.wait(5)
        threading.Timer(0.5, release.set).start()
        # no terminal here (pytest's stdin), and no request may be made: responses refuses
        with responses.RequestsMock(), signin.using(show=shown.append):
            started = time.monotonic()
            got = obtain(profile)
        assert got.source == "cache"
        assert got.token.access_token.reveal() == "at-from-the-device-sign-in"
        assert 0.3 < time.monotonic() - started < 4
    finally:
        release.set()
        holder.join(5)
    assert shown == [
        "another oauthcli process is signing in for profile 'acme'; waiting for its token "
        "(up to 4 s; Ctrl-C stops)"
    ]
    assert "at-from" not in "".join(shown)


def test_a_sign_in_past_its_bound_gives_a_readable_line(
    token_profile: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = _device(token_profile, timeout=0.1)
    monkeypatch.setattr(device, "MAX_WAIT", 0.2)
    monkeypatch.setattr(service, "LOCK_MARGIN", 0)
    path = cache.entry_path(cache.entry_key(profile))
    with cache.lock(path, 1), signin.using(show=lambda line: None):
        started = time.monotonic()
        with pytest.raises(TokenError) as caught:
            obtain(profile)
    assert time.monotonic() - started < 2
    assert str(caught.value).startswith(
        "another oauthcli process has been renewing the token of profile 'acme' for over 0.4 s"
    )


def test_a_free_lock_says_nothing(token_profile: Make, tmp_path: Path) -> None:
    profile = _device(token_profile)
    shown: list[str] = []
    with signin.using(show=shown.append), service._locked(profile, service._Cache(profile, [])):
        pass
    assert shown == []
