"""The outbound log's reader (oauthcli/outlog/reader.py): files oldest first, filters,
bounded reading forwards and backwards, lines that are not records, and the folder and
file trust rules of docs/outbound-log.md."""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oauthcli.errors import RegistryError
from oauthcli.outlog import reader
from oauthcli.outlog.reader import OutboundLog, Selection
from tests.outlog_records import at, line, record, write_log

NOBODY = 65534
as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="a file owned by another user can only be planted as root (os.chown)",
)


def pids(records: Iterable[Any]) -> list[int]:
    return [r.get("pid") for r in records]


def opened(folder: Path) -> OutboundLog:
    log = OutboundLog.open(folder)
    assert log is not None
    return log


# -- where, and which files in which order --------------------------------------------


def test_rotated_files_are_read_oldest_first_forwards_and_backwards(tmp_path: Path) -> None:
    files: dict[str, list[Any]] = {"outbound.jsonl": [at(50), at(51)]}
    for n in range(1, 6):  # .1 is the newest backup, .5 the oldest
        base = (5 - n) * 10
        files[f"outbound.jsonl.{n}"] = [at(base + i) for i in range(3)]
    files["outbound.jsonl.6"] = [at(99)]  # not one of the log's files
    folder = write_log(tmp_path / "log", files)
    expected = [10_000 + s for s in (0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42)]
    expected += [10_050, 10_051]
    with opened(folder) as log:
        assert pids(list(log.records())) == expected
        assert pids(log.last(4)) == expected[-4:]
        assert pids(log.last(100)) == expected
        assert log.skipped_note() is None


def test_missing_backups_and_a_log_of_backups_only(tmp_path: Path) -> None:
    folder = write_log(
        tmp_path / "log", {"outbound.jsonl.3": [at(1)], "outbound.jsonl.1": [at(2), at(3)]}
    )
    with opened(folder) as log:
        assert pids(list(log.records())) == [10_001, 10_002, 10_003]
        assert pids(log.last(2)) == [10_002, 10_003]


def test_no_folder_or_no_file_is_no_log(tmp_path: Path) -> None:
    assert OutboundLog.open(tmp_path / "nowhere") is None
    assert OutboundLog.open(tmp_path / "a-file" / "below") is None
    empty = write_log(tmp_path / "log", {})
    (empty / "outbound.lock").write_bytes(b"")
    assert OutboundLog.open(empty) is None


def test_an_empty_file_has_no_records_and_nothing_to_warn_of(tmp_path: Path) -> None:
    folder = write_log(tmp_path / "log", {"outbound.jsonl": [], "outbound.jsonl.1": [b"\n\n"]})
    with opened(folder) as log:
        assert list(log.records()) == [] and list(log.last(3)) == []
        assert log.skipped_note() is None


def test_the_same_file_under_two_names_is_read_once(tmp_path: Path) -> None:
    folder = write_log(tmp_path / "log", {"outbound.jsonl": [at(1), at(2)]})
    os.link(folder / "outbound.jsonl", folder / "outbound.jsonl.1")
    with opened(folder) as log:
        assert pids(list(log.records())) == [10_001, 10_002]


# -- filters ---------------------------------------------------------------------------


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    return write_log(
        tmp_path / "log",
        {
            "outbound.jsonl.1": [
                at(1, message="incidents.list"),
                at(2, message="incidents.get", status=404, reason="Not Found", exit_code=4),
                at(3, message="incidentsx.list"),
                at(4, kind="token", message=None, profile="incidents", token_requests=[]),
            ],
            "outbound.jsonl": [
                at(5, message="users.get", profile="other"),
                at(6, message="incidents.list", status=None, reason=None, exit_code=7,
                   error="connection refused"),
                at(7, kind="revoke", message=None, profile="acme", url="http://127.0.0.1:9/revoke"),
                at(8, message="incidents.create", exit_code=None, error="boom"),
            ],
        },
    )  # fmt: skip


@pytest.mark.parametrize(
    ("selection", "expected"),
    [
        (Selection(), [1, 2, 3, 4, 5, 6, 7, 8]),
        (Selection(message="incidents"), [1, 2, 4, 6, 8]),  # 4: get-token of that profile
        (Selection(message="incidents.list"), [1, 6]),
        (Selection(message="incidents.lis"), []),
        (Selection(message="acme"), [7]),  # a revoke names its profile
        (Selection(profile="acme"), [1, 2, 3, 6, 7, 8]),
        (Selection(failed=True), [2, 6, 8]),
        (Selection(message="incidents", failed=True), [2, 6, 8]),
        (Selection(profile="other", failed=True), []),
    ],
)
def test_filters(mixed: Path, selection: Selection, expected: list[int]) -> None:
    with opened(mixed) as log:
        assert pids(list(log.records(selection))) == [10_000 + n for n in expected]
        assert pids(log.last(2, selection)) == [10_000 + n for n in expected[-2:]]


def test_last_counts_after_the_filters_across_files(mixed: Path) -> None:
    with opened(mixed) as log:
        assert pids(log.last(3, Selection(failed=True))) == [10_002, 10_006, 10_008]
        assert list(log.last(0)) == []


# -- what is not a record --------------------------------------------------------------


NOT_RECORDS = [
    b"not json at all\n",
    b"[1, 2, 3]\n",
    b'"a string"\n',
    b"{}\n",
    b'{"v": "1", "time": "2026-12-02T05:40:00Z", "kind": "send"}\n',
    b'{"v": true, "time": "2026-12-02T05:40:00Z", "kind": "send"}\n',
    b'{"v": 0, "time": "2026-12-02T05:40:00Z", "kind": "send"}\n',
    b'{"v": 1, "kind": "send"}\n',
    b'{"v": 1, "time": "yesterday", "kind": "send"}\n',
    b'{"v": 1, "time": "2026-12-02T05:40:00Z"}\n',
    b'{"v": 1, "time": "2026-12-02T05:40:00Z", "kind": "send", "elapsed_ms": NaN}\n',
    b"\xff\xfe\x00garbage\n",
    b'{"v": 1, "time": "2026-12-02T05:40:00Z", "kind": "send", "x": "\xe9"}\n',  # latin-1
    b"[" * 200_000 + b"\n",  # nested past the parser's limit
    b'{"v": 1, "time": "2026-12-02T05:40:00Z", "kind": "send"',  # cut, in a backup
]


def test_lines_that_are_not_records_are_skipped_and_counted(tmp_path: Path) -> None:
    folder = write_log(
        tmp_path / "log",
        {"outbound.jsonl.1": [at(1), *NOT_RECORDS], "outbound.jsonl": [at(2), b"\n", at(3)]},
    )
    backup = folder / "outbound.jsonl.1"
    with opened(folder) as log:
        assert pids(list(log.records())) == [10_001, 10_002, 10_003]
        assert (
            log.skipped_note() == f"{len(NOT_RECORDS)} lines of {backup} were not records; skipped"
        )
    with opened(folder) as log:
        assert pids(log.last(5)) == [10_001, 10_002, 10_003]
        assert (
            log.skipped_note() == f"{len(NOT_RECORDS)} lines of {backup} were not records; skipped"
        )
    with opened(folder) as log:  # --last reads no further than it needs
        assert pids(log.last(2)) == [10_002, 10_003]
        assert log.skipped_note() is None


def test_the_note_names_each_file_and_counts_one_as_one(tmp_path: Path) -> None:
    folder = write_log(
        tmp_path / "log",
        {"outbound.jsonl.2": [b"x\n", b"y\n"], "outbound.jsonl": [b"z\n", at(1)]},
    )
    with opened(folder) as log:
        list(log.records())
        assert log.skipped_note() == (
            f"2 lines of {folder / 'outbound.jsonl.2'} and 1 line of "
            f"{folder / 'outbound.jsonl'} were not records; skipped"
        )
    single = write_log(tmp_path / "one", {"outbound.jsonl": [b"z\n", at(1)]})
    with opened(single) as log:
        list(log.records())
        assert (
            log.skipped_note() == f"1 line of {single / 'outbound.jsonl'} was not a record; skipped"
        )


def test_records_of_a_later_format_are_counted_apart(tmp_path: Path) -> None:
    later = json.dumps({"v": 2, "when": 1}).encode() + b"\n"
    folder = write_log(tmp_path / "log", {"outbound.jsonl": [at(1), later, later, b"junk\n"]})
    path = folder / "outbound.jsonl"
    with opened(folder) as log:
        assert pids(list(log.records())) == [10_001]
        assert log.skipped_note() == (
            f"1 line of {path} was not a record; skipped; 2 records of {path} (format v2) are "
            "of a later format than this oauthcli reads (v1); skipped: a newer oauthcli shows them"
        )


def test_members_the_reader_does_not_know_are_kept(tmp_path: Path) -> None:
    folder = write_log(tmp_path / "log", {"outbound.jsonl": [record(future={"a": [1]})]})
    with opened(folder) as log:
        (found,) = log.records()
        assert found.get("future") == {"a": [1]}
        assert json.loads(found.line) == record(future={"a": [1]})


def test_a_line_over_the_cap_is_skipped_without_being_kept(tmp_path: Path) -> None:
    huge = record(pid=1, error="x" * (reader.LINE_CAP + 10))
    folder = write_log(tmp_path / "log", {"outbound.jsonl": [at(1), huge, at(2), b"y" * 3_000_000]})
    path = folder / "outbound.jsonl"
    note = f"2 lines of {path} (2 over 1 MiB) were not records; skipped"
    with opened(folder) as log:
        assert pids(list(log.records())) == [10_001, 10_002]
        assert log.skipped_note() == note  # the unterminated last one too: 3 MB is no writer's
    with opened(folder) as log:
        assert pids(log.last(5)) == [10_001, 10_002]
        assert log.skipped_note() == note


def test_a_last_line_without_its_newline_is_one_being_written(tmp_path: Path) -> None:
    cut = line(at(9))[:40]
    folder = write_log(
        tmp_path / "log", {"outbound.jsonl.1": [at(1), cut], "outbound.jsonl": [at(2), cut]}
    )
    with opened(folder) as log:
        assert pids(list(log.records())) == [10_001, 10_002]
        # in a backup it stays cut forever: counted; in the current file it is being written
        assert log.skipped_note() == (
            f"1 line of {folder / 'outbound.jsonl.1'} was not a record; skipped"
        )
    whole = write_log(tmp_path / "whole", {"outbound.jsonl": [at(1), line(at(2))[:-1]]})
    with opened(whole) as log:  # a complete record without its newline is still read
        assert pids(list(log.records())) == [10_001, 10_002]
        assert pids(log.last(1)) == [10_002]


def test_a_binary_file_is_only_lines_that_are_not_records(tmp_path: Path) -> None:
    noise = bytes(range(256)) * 4000 + os.urandom(300_000)
    folder = write_log(
        tmp_path / "log", {"outbound.jsonl.1": [noise + b"\n"], "outbound.jsonl": [at(1)]}
    )
    with opened(folder) as log:
        assert pids(list(log.records())) == [10_001]
        note = log.skipped_note()
        assert note is not None and "outbound.jsonl.1" in note and note.endswith("skipped")


# The line reader against a plain reference, with blocks and cap shrunk so that every
# boundary (a newline at a block's edge, a line of exactly the cap) comes up.
piece = st.one_of(
    st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")),
    st.sampled_from([b"", b"\r", b"x" * 15, b"x" * 16, b"x" * 17, b"y" * 33]),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(piece, max_size=25),
    terminated=st.booleans(),
    block=st.integers(1, 9),
)
def test_lines_forwards_and_backwards_agree_with_a_reference(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    lines: list[bytes],
    terminated: bool,
    block: int,
) -> None:
    monkeypatch.setattr(reader, "_BLOCK", block)
    monkeypatch.setattr(reader, "LINE_CAP", 16)
    data = b"\n".join(lines) + (b"\n" if terminated and lines else b"")
    path = tmp_path / "lines"
    path.write_bytes(data)
    expected = data.split(b"\n")
    if data.endswith(b"\n") or not data:
        expected = expected[:-1]
    expected_shown = [x if len(x) <= 16 else "long" for x in expected]
    with open(path, "rb") as handle:
        f = reader._File(path, handle, len(data), newest=True)
        forward = [x if isinstance(x, bytes) else "long" for x, _ in reader._lines_forward(f)]
        backward = [x if isinstance(x, bytes) else "long" for x, _, _ in reader._lines_backward(f)]
        partial_f = [p for _, p in reader._lines_forward(f)]
        partial_b = [p for _, p, _ in reader._lines_backward(f)]
        starts = [o for _, _, o in reader._lines_backward(f)][::-1]
        # from each line's start, forwards, the rest of the file
        for i, start in enumerate(starts):
            rest = [
                x if isinstance(x, bytes) else "long" for x, _ in reader._lines_forward(f, start)
            ]
            assert rest == expected_shown[i:]
        if starts:  # and up to the last line's start, all but the last line
            before = reader._lines_forward(f, 0, starts[-1])
            assert [x if isinstance(x, bytes) else "long" for x, _ in before] == expected_shown[:-1]
    assert forward == expected_shown
    assert backward == expected_shown[::-1]
    cut = bool(data) and not data.endswith(b"\n")
    assert partial_f == [cut and i == len(expected) - 1 for i in range(len(expected))]
    assert partial_b == partial_f[::-1]


# -- trust: the folder and the files, as the writer's rules ------------------------------


def refused(folder: Path, *said: str) -> str:
    with pytest.raises(RegistryError) as caught:
        OutboundLog.open(folder)
    message = str(caught.value)
    assert "\n" not in message
    for part in said:
        assert part in message, message
    return message


def test_a_linked_folder_of_yours_is_followed_one_of_another_user_is_refused(
    tmp_path: Path,
) -> None:
    real = write_log(tmp_path / "real", {"outbound.jsonl": [at(1)]})
    (tmp_path / "log").symlink_to(real)
    with opened(tmp_path / "log") as log:  # as ~/.local/state often is: the cache's rule
        assert pids(list(log.records())) == [10_001]
    if os.geteuid() != 0:
        return
    os.lchown(tmp_path / "log", NOBODY, NOBODY)
    refused(tmp_path / "log", f"{tmp_path / 'log'} is a symbolic link owned by uid {NOBODY}")


def test_a_symlinked_file_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_bytes(line(at(1)))
    os.chmod(elsewhere, 0o600)
    folder = write_log(tmp_path / "log", {"outbound.jsonl": [at(2)]})
    (folder / "outbound.jsonl.2").symlink_to(elsewhere)
    refused(folder, f"the outbound log file {folder / 'outbound.jsonl.2'} is a symbolic link")


@pytest.mark.parametrize(
    ("mode", "who"), [(0o770, "group"), (0o707, "others"), (0o777, "group and others")]
)
def test_a_folder_writable_by_others_is_refused(tmp_path: Path, mode: int, who: str) -> None:
    folder = write_log(tmp_path / "log", {"outbound.jsonl": [at(1)]})
    os.chmod(folder, mode)
    refused(folder, f"{folder} is writable by {who} (mode {mode:04o})", "OAUTHCLI_LOG_DIR")


def test_a_folder_others_may_read_is_read(tmp_path: Path) -> None:
    folder = write_log(tmp_path / "log", {"outbound.jsonl": [at(1)]})
    os.chmod(folder, 0o755)
    os.chmod(folder / "outbound.jsonl", 0o644)
    with opened(folder) as log:
        assert pids(list(log.records())) == [10_001]


def test_a_file_writable_by_others_is_refused(tmp_path: Path) -> None:
    folder = write_log(tmp_path / "log", {"outbound.jsonl": [at(1)], "outbound.jsonl.4": [at(0)]})
    os.chmod(folder / "outbound.jsonl.4", 0o622)
    refused(folder, f"{folder / 'outbound.jsonl.4'} is writable by group and others (mode 0622)")


def test_a_fifo_or_a_folder_in_place_of_a_file_is_refused_without_hanging(tmp_path: Path) -> None:
    folder = write_log(tmp_path / "log", {})
    os.mkfifo(folder / "outbound.jsonl", 0o600)
    refused(folder, f"{folder / 'outbound.jsonl'} is not a regular file")
    os.unlink(folder / "outbound.jsonl")
    (folder / "outbound.jsonl").mkdir(0o700)
    refused(folder, f"{folder / 'outbound.jsonl'} is not a regular file")


def test_a_file_in_place_of_the_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "log").write_bytes(line(at(1)))
    refused(tmp_path / "log", f"the outbound log folder {tmp_path / 'log'} is not a folder")


@as_root
def test_a_folder_or_file_of_another_user_is_refused(tmp_path: Path) -> None:
    folder = write_log(tmp_path / "log", {"outbound.jsonl": [at(1)], "outbound.jsonl.1": [at(0)]})
    os.chown(folder / "outbound.jsonl.1", NOBODY, NOBODY)
    refused(folder, f"{folder / 'outbound.jsonl.1'} belongs to uid {NOBODY}, not to you (uid 0)")
    os.chown(folder / "outbound.jsonl.1", 0, 0)
    os.chown(folder, NOBODY, NOBODY)
    refused(folder, f"{folder} belongs to uid {NOBODY}")


def test_a_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.getuid() == 0:  # as root, a folder root owns is its own: plant one (above)
        pytest.skip("as root, see test_a_folder_or_file_of_another_user_is_refused")
    refused(Path("/"), "/ belongs to uid 0")


# -- rotation while the files are opened -----------------------------------------------


def test_the_files_are_opened_between_rotations_not_during_one(tmp_path: Path) -> None:
    """A writer rotating (under an exclusive lock of outbound.lock, as docs/outbound-log.md
    says) while the reader opens the files: each record is read once, none missed."""
    folder = write_log(
        tmp_path / "log",
        {"outbound.jsonl.2": [at(1)], "outbound.jsonl.1": [at(2)], "outbound.jsonl": [at(3)]},
    )
    lock = os.open(folder / "outbound.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    got: list[int] = []

    def read() -> None:
        with opened(folder) as log:
            got.extend(pids(list(log.records())))

    reading = threading.Thread(target=read)
    reading.start()
    time.sleep(0.2)  # the reader is waiting for the lock now
    for n in (2, 1):
        os.rename(folder / f"outbound.jsonl.{n}", folder / f"outbound.jsonl.{n + 1}")
    os.rename(folder / "outbound.jsonl", folder / "outbound.jsonl.1")
    write_log(folder, {"outbound.jsonl": [at(4)]})
    fcntl.flock(lock, fcntl.LOCK_UN)
    os.close(lock)
    reading.join(10)
    assert got == [10_001, 10_002, 10_003, 10_004]


def test_a_lock_held_for_ever_delays_the_reader_only_briefly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reader, "_LOCK_WAIT_S", 0.2)
    folder = write_log(tmp_path / "log", {"outbound.jsonl": [at(1)]})
    lock = os.open(folder / "outbound.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        started = time.monotonic()
        with opened(folder) as log:
            assert pids(list(log.records())) == [10_001]
        assert time.monotonic() - started < 5
    finally:
        os.close(lock)


def test_records_appended_while_reading_forwards_are_read_too(tmp_path: Path) -> None:
    folder = write_log(tmp_path / "log", {"outbound.jsonl": [at(1)]})
    with opened(folder) as log:
        records = log.records()
        assert next(records).get("pid") == 10_001
        with open(folder / "outbound.jsonl", "ab") as f:
            f.write(line(at(2)))
        assert [r.get("pid") for r in records] == [10_002]
        # --last counts what the files held when opened: the line appended is not one
        assert pids(log.last(5)) == [10_001]


_WRITER = """\
import fcntl, json, os, sys
folder, writer, count, bound = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
lock = os.open(os.path.join(folder, "outbound.lock"), os.O_RDWR | os.O_CREAT, 0o600)
current = os.path.join(folder, "outbound.jsonl")
for seq in range(count):
    line = json.dumps({"v": 1, "time": "2026-12-02T05:40:00.000Z", "kind": "send",
                       "pid": writer, "attempts": seq, "pad": "x" * (seq % 200)}) + "\\n"
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        try:
            size = os.stat(current).st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(line) > bound:  # rotate as docs/outbound-log.md says
            for n in range(4, 0, -1):
                try:
                    os.replace(f"{current}.{n}", f"{current}.{n + 1}")
                except FileNotFoundError:
                    pass
            os.replace(current, current + ".1")
        fd = os.open(current, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.write(fd, line.encode())
        os.close(fd)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
"""


_REAL_WRITER = """\
import json, os, sys
folder, writer, count, bound = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
os.environ.update(OAUTHCLI_LOG_DIR=folder, OAUTHCLI_LOG_MAX_BYTES=bound)
from oauthcli.outlog import writer as log
for seq in range(count):
    line = json.dumps({"v": 1, "time": "2026-12-02T05:40:00.000Z", "kind": "send",
                       "pid": writer, "attempts": seq, "pad": "x" * (seq % 200)}) + "\\n"
    assert log.append(line.encode(), lambda text: sys.exit(text))
"""


@pytest.mark.parametrize("script", [_WRITER, _REAL_WRITER], ids=["contract", "oauthcli"])
def test_reading_while_twelve_writers_write_and_rotate(tmp_path: Path, script: str) -> None:
    """Writers as docs/outbound-log.md has them (one write() per line with O_APPEND, under an
    exclusive flock of outbound.lock that also guards rotation), the doc's and oauthcli's
    own (outlog/writer.py): every read meanwhile sees
    whole records only, none twice, each writer's in the order written and none missing
    between its first and its last."""
    import subprocess
    import sys

    folder = write_log(tmp_path / "log", {})
    writers = [
        subprocess.Popen([sys.executable, "-c", script, str(folder), str(w), "400", "20000"])
        for w in range(12)
    ]
    reads = 0
    try:
        while any(p.poll() is None for p in writers) or reads < 3:
            log = OutboundLog.open(folder)
            if log is None:
                assert any(p.poll() is None for p in writers), "the writers wrote nothing"
                continue
            with log:
                got = [(r.get("pid"), r.get("attempts")) for r in log.records()]
                assert log.skipped_note() is None
            assert len(got) == len(set(got))
            for w in range(12):
                seqs = [seq for pid, seq in got if pid == w]
                # in order, and without a gap: a file missed in a rotation would leave one
                assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) if seqs else True
            reads += 1
    finally:
        for p in writers:
            p.wait(60)
    assert [p.returncode for p in writers] == [0] * 12
    assert reads >= 3
    with opened(folder) as log:  # the newest records of every writer are there at the end
        last = [(r.get("pid"), r.get("attempts")) for r in log.last(12)]
        assert len(set(last)) == 12 and max(seq for _, seq in last) == 399
