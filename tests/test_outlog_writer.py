"""The outbound log's writer: many processes at once, rotation, folders and files that are
not ours, a full disk (oauthcli.outlog.writer)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from oauthcli.outlog import place, writer


@pytest.fixture
def log_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "state" / "log"
    monkeypatch.setenv("OAUTHCLI_LOG_DIR", str(folder))
    writer._after_fork()  # this process's handles and warning start afresh for each test
    yield folder
    writer._after_fork()


class Warnings(list[str]):
    def __call__(self, text: str) -> None:
        self.append(text)


def _lines(folder: Path) -> list[dict[str, object]]:
    out = []
    for name in place.file_names():
        path = folder / name
        if path.exists():
            out += [json.loads(line) for line in path.read_text().splitlines()]
    return out


def test_the_folder_and_files_are_made_0700_and_0600(log_dir: Path) -> None:
    warned = Warnings()
    assert writer.append(b'{"n": 1}\n', warned)
    assert writer.append(b'{"n": 2}\n', warned)
    assert warned == []
    assert (log_dir.stat().st_mode & 0o777) == 0o700
    for name in (place.CURRENT, place.LOCK):
        assert ((log_dir / name).stat().st_mode & 0o777) == 0o600
    assert (log_dir / place.CURRENT).read_bytes() == b'{"n": 1}\n{"n": 2}\n'


def test_a_file_is_rotated_before_a_line_would_take_it_past_the_bound(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHCLI_LOG_MAX_BYTES", "100")
    warned = Warnings()
    line = b'{"pad": "' + b"x" * 30 + b'"}\n'  # 42 bytes: two fit in 100, not three
    for _ in range(20):
        assert writer.append(line, warned)
    sizes = {n: (log_dir / n).stat().st_size for n in place.file_names() if (log_dir / n).exists()}
    assert set(sizes) == set(place.file_names()), sizes  # .1 to .5 and the current one
    assert all(size <= 100 for size in sizes.values()) and warned == []
    # Six files of two lines: the oldest of the twenty lines were dropped with the old .5.
    assert len(_lines(log_dir)) == 12


def test_a_line_larger_than_the_bound_gets_a_file_of_its_own(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHCLI_LOG_MAX_BYTES", "10")
    warned = Warnings()
    assert writer.append(b'{"a": "' + b"y" * 50 + b'"}\n', warned)
    assert writer.append(b'{"b": "' + b"z" * 50 + b'"}\n', warned)
    assert (log_dir / place.CURRENT).read_text().startswith('{"b"')
    assert (log_dir / place.backup(1)).read_text().startswith('{"a"')
    assert warned == []


def _warned_once(folder: Path, why: str) -> None:
    warned = Warnings()
    assert not writer.append(b'{"n": 1}\n', warned)
    assert not writer.append(b'{"n": 2}\n', warned)
    assert len(warned) == 1, warned
    assert why in warned[0] and warned[0].endswith("; calls are not logged"), warned
    assert str(folder) in warned[0]


def test_a_folder_writable_by_others_is_not_written_to(log_dir: Path) -> None:
    log_dir.mkdir(parents=True)
    log_dir.chmod(0o777)
    _warned_once(log_dir, "is writable by group and others (mode 0777)")
    assert list(log_dir.iterdir()) == []


def test_another_users_folder_is_not_written_to(log_dir: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("giving a folder to another user needs root")
    log_dir.mkdir(parents=True, mode=0o700)
    os.chown(log_dir, 65534, 65534)
    _warned_once(log_dir, "belongs to uid 65534")
    assert list(log_dir.iterdir()) == []


def test_a_folder_that_cannot_be_made_is_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("OAUTHCLI_LOG_DIR", str(blocker / "log"))
    writer._after_fork()
    _warned_once(blocker / "log", "cannot write the outbound log in")


def test_a_linked_log_file_is_never_written_through(log_dir: Path, tmp_path: Path) -> None:
    log_dir.mkdir(parents=True, mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    (log_dir / place.CURRENT).symlink_to(victim)
    _warned_once(log_dir, "outbound.jsonl is a symbolic link")
    assert victim.read_text() == "keep me\n"


def test_a_linked_lock_file_is_never_followed(log_dir: Path, tmp_path: Path) -> None:
    log_dir.mkdir(parents=True, mode=0o700)
    (log_dir / place.LOCK).symlink_to(tmp_path / "elsewhere")
    _warned_once(log_dir, "outbound.lock is a symbolic link")
    assert not (tmp_path / "elsewhere").exists()


def test_a_fifo_in_place_of_the_log_is_not_waited_on(log_dir: Path) -> None:
    log_dir.mkdir(parents=True, mode=0o700)
    os.mkfifo(log_dir / place.CURRENT, 0o600)
    _warned_once(log_dir, "outbound.jsonl is not a regular file")


def test_a_loose_log_file_is_not_appended_to(log_dir: Path) -> None:
    log_dir.mkdir(parents=True, mode=0o700)
    (log_dir / place.CURRENT).write_text("")
    (log_dir / place.CURRENT).chmod(0o666)
    _warned_once(log_dir, "is writable by group and others (mode 0666)")


def test_a_bad_size_bound_is_one_warning_naming_it(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHCLI_LOG_MAX_BYTES", "ten")
    warned = Warnings()
    assert not writer.append(b"{}\n", warned) and not writer.append(b"{}\n", warned)
    assert len(warned) == 1 and "OAUTHCLI_LOG_MAX_BYTES='ten'" in warned[0]


def test_a_full_disk_leaves_no_half_line_and_is_one_warning(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    warned = Warnings()
    assert writer.append(b'{"n": 1}\n', warned)
    real_write = os.write

    def half_then_full(fd: int, data: bytes) -> int:
        if data.startswith(b'{"n": 2'):
            real_write(fd, data[:5])  # the disk fills in the middle of the line
            monkeypatch.setattr(os, "write", full)
            return 5
        return real_write(fd, data)

    def full(fd: int, data: bytes) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    assert not writer.append(b'{"n": 2, "pad": "xxxxxxxx"}\n', warned)
    assert not writer.append(b'{"n": 3}\n', warned)
    monkeypatch.setattr(os, "write", real_write)
    assert len(warned) == 1 and "No space left on device" in warned[0], warned
    assert (log_dir / place.CURRENT).read_bytes() == b'{"n": 1}\n'


_WRITER = textwrap.dedent(
    """
    import json, os, sys, time
    from oauthcli.outlog import writer
    me, lines, start = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    while time.time() < start:
        time.sleep(0.001)
    warned = []
    for n in range(lines):
        pad = "x" * ((me * 37 + n * 11) % 700)  # lines of many sizes, some over PIPE_BUF
        line = json.dumps({"w": me, "n": n, "pad": pad}) + "\\n"
        writer.append(line.encode(), warned.append)
    sys.stdout.write(json.dumps(warned))
    """
)


def test_twelve_processes_at_once_lose_and_interleave_no_line_across_rotations(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writers, per = 12, 300
    # Small enough that the files rotate many times during the run, large enough that
    # the five backups and the current file keep every line written.
    monkeypatch.setenv("OAUTHCLI_LOG_MAX_BYTES", str(300_000))
    import time

    start = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(w), str(per), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=170)
        assert proc.returncode == 0 and json.loads(out) == [], err
    seen: dict[int, list[int]] = {w: [] for w in range(writers)}
    rotated = 0
    for name in place.file_names():
        path = log_dir / name
        if not path.exists():
            continue
        rotated += name != place.CURRENT
        data = path.read_bytes()
        assert data.endswith(b"\n") and len(data) <= 300_000
        for line in data.splitlines():
            record = json.loads(line)  # an interleaved or cut line would not parse
            assert record["pad"] == "x" * ((record["w"] * 37 + record["n"] * 11) % 700)
            seen[record["w"]].append(record["n"])
    assert rotated >= 3, "the bound was meant to rotate the files during the run"
    for w, numbers in seen.items():
        # Oldest file first, each writer's lines come in the order it wrote them.
        assert numbers == list(range(per)), f"writer {w} lost or reordered lines"


def test_a_forked_child_takes_a_lock_of_its_own(log_dir: Path) -> None:
    warned = Warnings()
    assert writer.append(b'{"who": "parent"}\n', warned)
    parent_lock = writer._opened.lock_fd if writer._opened else None
    pid = os.fork()
    if pid == 0:  # the child: its own handles, not the parent's (flock is per open file)
        code = 0
        try:
            writer.append(b'{"who": "child"}\n', warned.append)
            opened = writer._opened
            if opened is None or opened.pid != os.getpid():
                code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert writer._opened is not None and writer._opened.lock_fd == parent_lock
    names = [r["who"] for r in _lines(log_dir)]
    assert names == ["parent", "child"]


def test_without_posix_file_locks_the_log_is_one_warning(
    log_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer, "_POSIX", False)
    warned = Warnings()
    assert not writer.append(b"{}\n", warned) and not writer.append(b"{}\n", warned)
    assert len(warned) == 1 and "POSIX file locks" in warned[0]
    assert not log_dir.exists()


def test_a_record_that_is_no_json_is_one_warning_never_a_broken_line(log_dir: Path) -> None:
    from oauthcli.outlog import calls
    from oauthcli.outlog.record import BASIC, Recording

    warned = Warnings()
    recording = Recording(BASIC)
    recording.decision("due", "token: renewing", expires_in_s=float("inf"))
    calls.write(lambda: recording.record("send", url="http://127.0.0.1/x"), warned)
    calls.write(lambda: {"v": 1, "url": "http://127.0.0.1/\udcff\ud800"}, warned)

    def broken() -> dict[str, object]:
        raise KeyError("a bug in a record")

    calls.write(broken, warned)
    assert len(warned) == 1 and "could not be made" in warned[0], warned
    [line] = (log_dir / place.CURRENT).read_text().splitlines()
    assert json.loads(line)["url"] == "http://127.0.0.1/\udcff\ud800"


def test_a_line_left_unfinished_does_not_swallow_the_next_record(log_dir: Path) -> None:
    log_dir.mkdir(parents=True, mode=0o700)
    (log_dir / place.CURRENT).write_bytes(b'{"v": 1}\n{"v": 1, "cut": "in the mi')
    (log_dir / place.CURRENT).chmod(0o600)
    assert writer.append(b'{"n": 1}\n', Warnings())
    lines = (log_dir / place.CURRENT).read_bytes().split(b"\n")
    assert lines[-2:] == [b'{"n": 1}', b""] and json.loads(lines[-2]) == {"n": 1}


def test_another_users_log_file_is_not_appended_to(log_dir: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("giving a file to another user needs root")
    log_dir.mkdir(parents=True, mode=0o700)
    (log_dir / place.CURRENT).write_text("")
    (log_dir / place.CURRENT).chmod(0o600)
    os.chown(log_dir / place.CURRENT, 65534, 65534)
    _warned_once(log_dir, "belongs to uid 65534")
    assert (log_dir / place.CURRENT).read_text() == ""
