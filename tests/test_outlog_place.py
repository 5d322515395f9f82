"""Where the outbound log is and which of its files are trusted (oauthcli.outlog.place)."""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

import platformdirs
import pytest

from oauthcli.errors import RegistryError
from oauthcli.outlog import place


def test_the_folder_is_the_variable_when_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OAUTHCLI_LOG_DIR", str(tmp_path / "logs"))
    assert place.log_dir() == tmp_path / "logs"
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    monkeypatch.setenv("OAUTHCLI_LOG_DIR", "~/x")
    assert place.log_dir() == tmp_path / "h" / "x"


@pytest.mark.parametrize("xdg", [None, "", "relative/state", "/abs/state"])
def test_the_default_folder_is_what_platformdirs_answers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xdg: str | None
) -> None:
    monkeypatch.delenv("OAUTHCLI_LOG_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    if xdg is None:
        monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_STATE_HOME", xdg)
    expected = platformdirs.user_state_path("oauthcli") / "log"
    assert place.log_dir() == expected
    if sys.platform.startswith("linux"):
        base = xdg if xdg and xdg.startswith("/") else str(tmp_path / "home" / ".local/state")
        assert expected == Path(base) / "oauthcli" / "log"


def test_no_home_folder_is_a_registry_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OAUTHCLI_LOG_DIR", "~nobody-such-user-x/logs")
    with pytest.raises(RegistryError, match=r"OAUTHCLI_LOG_DIR='~nobody-such-user-x/logs'"):
        place.log_dir()


def test_the_files_oldest_first() -> None:
    assert place.file_names() == [
        "outbound.jsonl.5",
        "outbound.jsonl.4",
        "outbound.jsonl.3",
        "outbound.jsonl.2",
        "outbound.jsonl.1",
        "outbound.jsonl",
    ]
    assert place.LOCK not in place.file_names()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, 10 * 1024 * 1024), ("", 10 * 1024 * 1024), ("4096", 4096), (" 1 ", 1)],
)
def test_the_size_bound(monkeypatch: pytest.MonkeyPatch, raw: str | None, expected: int) -> None:
    if raw is not None:
        monkeypatch.setenv("OAUTHCLI_LOG_MAX_BYTES", raw)
    assert place.max_bytes() == expected


@pytest.mark.parametrize("raw", ["0", "-5", "10MiB", "1e6", "x" * 200])
def test_a_bad_size_bound_names_the_variable(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("OAUTHCLI_LOG_MAX_BYTES", raw)
    with pytest.raises(RegistryError, match="^OAUTHCLI_LOG_MAX_BYTES=") as caught:
        place.max_bytes()
    assert caught.value.exit_code == 3 and "x" * 41 not in str(caught.value)


def test_a_folder_is_created_0700_and_trusted(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b" / "log"
    assert not place.check_folder(folder)
    assert place.ensure_folder(folder) == folder
    assert (folder.stat().st_mode & 0o777) == 0o700 and place.check_folder(folder)


def test_a_loose_folder_is_refused_naming_the_log_variable(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    folder.mkdir(mode=0o700)
    folder.chmod(0o770)
    with pytest.raises(RegistryError) as caught:
        place.check_folder(folder)
    text = str(caught.value)
    assert text.startswith(f"the outbound log folder {folder} is writable by group (mode 0770)")
    assert "set OAUTHCLI_LOG_DIR" in text and "OAUTHCLI_CACHE_DIR" not in text
    assert "token" not in text


def _ours(tmp_path: Path) -> Path:
    folder = tmp_path / "log"
    folder.mkdir(mode=0o700)
    return folder


def test_reading_a_missing_file_is_none_and_a_good_one_its_bytes(tmp_path: Path) -> None:
    folder = _ours(tmp_path)
    assert place.open_for_reading(folder, place.CURRENT) is None
    (folder / place.CURRENT).write_bytes(b'{"v": 1}\n')
    (folder / place.CURRENT).chmod(0o600)
    handle = place.open_for_reading(folder, place.CURRENT)
    assert handle is not None
    with handle:
        assert handle.read() == b'{"v": 1}\n'


def test_a_linked_log_file_is_refused(tmp_path: Path) -> None:
    folder = _ours(tmp_path)
    target = tmp_path / "elsewhere"
    target.write_text("secret lines\n")
    (folder / place.CURRENT).symlink_to(target)
    with pytest.raises(RegistryError, match=r"outbound\.jsonl is a symbolic link"):
        place.open_for_reading(folder, place.CURRENT)


def test_a_loose_log_file_is_refused(tmp_path: Path) -> None:
    folder = _ours(tmp_path)
    (folder / place.backup(2)).write_text("{}\n")
    (folder / place.backup(2)).chmod(0o622)
    with pytest.raises(RegistryError, match=r"outbound\.jsonl\.2 is writable by group and others"):
        place.open_for_reading(folder, place.backup(2))


def test_a_fifo_in_place_of_the_log_is_refused_without_waiting(tmp_path: Path) -> None:
    folder = _ours(tmp_path)
    os.mkfifo(folder / place.CURRENT, 0o600)
    done = threading.Event()

    def read() -> None:
        with pytest.raises(RegistryError, match="is not a regular file"):
            place.open_for_reading(folder, place.CURRENT)
        done.set()

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(10)
    assert done.is_set(), "opening a FIFO must not wait for a writer"


@pytest.mark.skipif(not hasattr(os, "getuid"), reason="no owners on this platform")
def test_another_users_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _ours(tmp_path)
    (folder / place.CURRENT).write_text("{}\n")
    (folder / place.CURRENT).chmod(0o600)
    uid = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: uid + 1)
    with pytest.raises(RegistryError, match=rf"belongs to uid {uid}, not to you \(uid {uid + 1}\)"):
        place.open_for_reading(folder, place.CURRENT)
