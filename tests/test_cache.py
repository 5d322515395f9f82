"""The token cache on disk: location, permissions, atomic writes, corrupt entries, locks."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses

from oauthcli.errors import RegistryError, TokenError
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret
from oauthcli.tokens import Token, cache, obtain, service

URL = "https://login.test/oauth2/token"
KEY_A, KEY_B, KEY_C = (f"{c * 64}.json" for c in "abc")  # entries are named by a SHA-256
Make = Callable[..., ResolvedProfile]
ROOT = Path(__file__).resolve().parent.parent


def _entry(
    profile: str = "acme", access: str = "at-cached-1234", expires_in: float = 300
) -> cache.Entry:
    now = time.time()
    token = Token(
        access_token=Secret(access),
        token_type="Bearer",
        expires_at=now + expires_in,
        scope="api.read",
        refresh_token=None,
        refresh_expires_at=None,
        obtained_at=now,
    )
    return cache.Entry(token=token, profile=profile, token_url=URL, client_id="app")


@pytest.fixture
def umask0() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_folder_0700_and_files_0600_whatever_the_umask(
    umask0: None, isolated_oauthcli: Path
) -> None:
    path = isolated_oauthcli / "k.json"
    cache.write(path, _entry())
    assert _mode(isolated_oauthcli) == 0o700 and _mode(path) == 0o600
    with cache.lock(path, 1):
        pass
    assert _mode(path.with_suffix(".lock")) == 0o600


def test_a_folder_oauthcli_did_not_create_keeps_its_mode(isolated_oauthcli: Path) -> None:
    isolated_oauthcli.mkdir(mode=0o755)
    isolated_oauthcli.chmod(0o755)  # ours and only readable by others: trusted, left alone
    cache.write(isolated_oauthcli / KEY_A, _entry())
    assert _mode(isolated_oauthcli) == 0o755 and _mode(isolated_oauthcli / KEY_A) == 0o600


@pytest.mark.parametrize(("mode", "who"), [(0o777, "group and others"), (0o770, "group")])
def test_a_folder_others_may_write_is_refused_not_repaired(
    isolated_oauthcli: Path, mode: int, who: str
) -> None:
    isolated_oauthcli.mkdir()
    isolated_oauthcli.chmod(mode)
    with pytest.raises(RegistryError, match=f"is writable by {who} .*OAUTHCLI_CACHE_DIR"):
        cache.write(isolated_oauthcli / KEY_A, _entry())
    with pytest.raises(RegistryError):
        cache.read(isolated_oauthcli / KEY_A)
    assert _mode(isolated_oauthcli) == mode and list(isolated_oauthcli.iterdir()) == []


def test_round_trip(isolated_oauthcli: Path) -> None:
    path = isolated_oauthcli / "k.json"
    entry = _entry()
    cache.write(path, entry)
    again = cache.read(path)
    assert again is not None and again.token == entry.token and again.profile == "acme"
    assert json.loads(path.read_text())["version"] == cache.VERSION


def test_a_killed_writers_old_temp_file_is_swept(isolated_oauthcli: Path) -> None:
    cache.ensure_dir()
    path = isolated_oauthcli / "k.json"
    old = isolated_oauthcli / ".k.4242.deadbeef.tmp"
    recent = isolated_oauthcli / ".k.4343.cafebabe.tmp"
    other = isolated_oauthcli / ".other.4242.deadbeef.tmp"
    for leftover in (old, recent, other):
        leftover.write_text('{"version": 1, "acc')  # cut short by SIGKILL
    long_ago = time.time() - cache.ORPHAN_AGE - 5
    os.utime(old, (long_ago, long_ago))
    os.utime(other, (long_ago, long_ago))
    cache.write(path, _entry())
    assert not old.exists()
    assert recent.exists()  # may still be a live writer's
    assert other.exists()  # another entry's: swept when that entry is written


def test_write_is_atomic_and_fsynced(
    isolated_oauthcli: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = isolated_oauthcli / "k.json"
    cache.write(path, _entry(access="at-old-123456"))
    before = path.read_bytes()
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)

    def boom(src: Any, dst: Any) -> None:
        assert Path(src).parent == Path(dst).parent  # the temp file is in the same folder
        assert synced, "data must be fsynced before the rename"
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        cache.write(path, _entry(access="at-new-123456"))
    assert path.read_bytes() == before
    assert sorted(p.name for p in isolated_oauthcli.iterdir()) == ["k.json"]


def test_cache_dir_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OAUTHCLI_CACHE_DIR", str(tmp_path / "c"))
    assert cache.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("OAUTHCLI_CACHE_DIR")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "xdg" / "oauthcli"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "oauthcli"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert "oauthcli" in cache.cache_dir().parts


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not valid JSON"),
        (b'{"version": 1, "profile": "acme", "access_tok', "not valid JSON"),
        (b"[1, 2]", "not a version 1 entry"),
        (b'{"version": 99}', "not a version 1 entry"),
        (b"\xff\xfe", "not valid JSON"),
        (
            b'{"version": 1, "profile": "acme", "token_url": "u", "access_token": "x",'
            b' "token_type": "Bearer", "expires_at": "soon", "obtained_at": 1}',
            "'expires_at' is missing or of the wrong type",
        ),
        (
            b'{"version": 1, "profile": "acme", "token_url": "u", "access_token": "",'
            b' "token_type": "Bearer", "expires_at": 1, "obtained_at": 1}',
            "'access_token' is empty",
        ),
    ],
)
def test_corrupt_entry_is_discarded_with_a_warning(
    token_profile: Make, content: bytes, reason: str
) -> None:
    profile = token_profile()
    path = cache.entry_path(cache.entry_key(profile))
    cache.ensure_dir()
    path.write_bytes(content)
    with responses.RequestsMock() as rsps:
        rsps.post(URL, json={"access_token": "at-fresh-123456", "expires_in": 60})
        result = obtain(profile)
    assert result.source == "grant" and result.token.access_token == Secret("at-fresh-123456")
    assert len(result.warnings) == 1
    assert reason in result.warnings[0] and "discarded" in result.warnings[0]
    assert cache.read(path) is not None


def test_entries_lists_good_and_bad(isolated_oauthcli: Path) -> None:
    cache.write(isolated_oauthcli / KEY_A, _entry("one"))
    (isolated_oauthcli / KEY_B).write_text("garbage")
    (isolated_oauthcli / "package.json").write_text("{}")  # not ours: not an entry
    found = list(cache.entries())
    assert [(p.name, e.profile if e else None, bool(why)) for p, e, why in found] == [
        (KEY_A, "one", False),
        (KEY_B, None, True),
    ]


def test_clear_all_or_one_profile(isolated_oauthcli: Path) -> None:
    cache.write(isolated_oauthcli / KEY_A, _entry("one"))
    cache.write(isolated_oauthcli / KEY_B, _entry("two"))
    cache.write(isolated_oauthcli / KEY_C, _entry("two"))
    assert cache.clear("two") == 2
    assert [p.name for p in isolated_oauthcli.glob("*.json")] == [KEY_A]
    with cache.lock(isolated_oauthcli / KEY_A, 1):
        pass
    assert cache.clear() == 1
    assert list(isolated_oauthcli.iterdir()) == []


LOCK_HOLDER = """
import sys, time
from pathlib import Path
from oauthcli.tokens import cache
lock = cache.lock(Path(sys.argv[1]), 5)
lock.acquire()
print("locked", flush=True)
time.sleep(60)
"""


def test_a_held_lock_times_out_readably_and_a_dead_holder_releases_it(
    token_profile: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = token_profile()
    path = cache.entry_path(cache.entry_key(profile))
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        monkeypatch.setattr(service, "_lock_wait", lambda profile: 0.3)
        with pytest.raises(TokenError, match="another oauthcli process has been renewing"):
            obtain(profile)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(5)
        with responses.RequestsMock() as rsps:
            rsps.post(URL, json={"access_token": "at-after-death-1", "expires_in": 60})
            started = time.monotonic()
            assert obtain(profile).source == "grant"
        assert time.monotonic() - started < 2
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(5)
        if holder.stdout is not None:
            holder.stdout.close()


LIGHT = """
import sys
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret
from oauthcli.tokens import obtain
from pathlib import Path
p = ResolvedProfile(name="acme", source=Path("acme.yaml"), grant_type="client_credentials",
    token_url=%r, client_id="app", client_auth="client_secret_basic",
    client_secret=Secret("s3cr3t-value"), scope=("api.read", "api.write"), timeout=5.0)
result = obtain(p)
heavy = sorted({m.split(".")[0] for m in sys.modules} & {
    "authlib", "filelock", "requests", "joserfc", "cryptography", "rich", "typer", "platformdirs",
    "redis", "ssl"})
print(result.source, heavy)
"""


def test_reading_a_valid_cached_token_imports_nothing_heavy(token_profile: Make) -> None:
    profile = token_profile()
    cache.write(cache.entry_path(cache.entry_key(profile)), _entry())
    assert _python(LIGHT % URL).strip() == "cache []"


def _python(script: str) -> str:
    """What ``script`` prints, run by a fresh interpreter (so that its imports are its own)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
        timeout=30,
    ).stdout


COLD = """
import sys
from pathlib import Path
import responses
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret
from oauthcli.tokens import grants, obtain
def jwt_code():
    return sorted(m for m in sys.modules if m.startswith(
        ("authlib.integrations", "authlib.oauth2.rfc7523", "joserfc", "cryptography")))
print(jwt_code())
for auth in ("client_secret_basic", "client_secret_post"):
    p = ResolvedProfile(name="acme", source=Path("acme.yaml"), grant_type="client_credentials",
        token_url=%r, client_id=auth, client_auth=auth, client_secret=Secret("s3cr3t-value"))
    with responses.RequestsMock() as rsps:
        rsps.post(p.token_url, json={"access_token": "at-cold-1", "expires_in": 60})
        print(obtain(p).source, jwt_code())
"""


def test_a_cold_fetch_with_a_client_secret_imports_no_jwt_code() -> None:
    assert _python(COLD % URL).split("\n") == ["[]", "grant []", "grant []", ""]


def test_an_unusable_cache_folder_is_said_once_and_the_token_still_used(
    token_profile: Make, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("OAUTHCLI_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    monkeypatch.setattr(service, "_said_unwritable", set())
    with responses.RequestsMock() as rsps:
        rsps.post(URL, json={"access_token": "at-uncached-1", "expires_in": 60})
        rsps.post(URL, json={"access_token": "at-uncached-2", "expires_in": 60})
        first, second = obtain(token_profile()), obtain(token_profile())
    assert first.token.access_token == Secret("at-uncached-1") and first.source == "grant"
    [warning] = first.warnings
    assert "cannot write the token cache folder" in warning and "without caching" in warning
    assert second.warnings == [] and second.source == "grant"
