"""Reading the outbound log (``oauthcli log``): its files oldest first, streamed and bounded.

The log is ``outbound.jsonl`` and its rotated files ``outbound.jsonl.1`` (the newest) to
``.5`` in the log folder (``docs/outbound-log.md``; names and trust rules from
:mod:`oauthcli.outlog.place`). :meth:`OutboundLog.open` checks the folder and each file as
the writer does (ours, not writable by group or others, a file never a symbolic link:
else a :class:`~oauthcli.errors.RegistryError` naming it, exit 3) and opens
them all at once under a shared lock of ``outbound.lock``, the lock the writer holds to
rotate, so that a rotation meanwhile neither hides a file nor shows one twice; what
follows reads the open handles.

Nothing is read whole: :meth:`OutboundLog.records` reads line by line, and
:meth:`OutboundLog.last` reads from the end backwards in blocks, parsing only the lines it
needs. A line over :data:`LINE_CAP` bytes is skipped without being kept; a line that is
not UTF-8 JSON, or not an object of format version 1, is skipped and counted
(:meth:`OutboundLog.skipped_note`); a record of a later format is counted apart. A last
line without its newline that does not parse is one being written: skipped, not counted.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

from oauthcli.errors import RegistryError
from oauthcli.outlog import place

#: The record format this reader knows (the ``v`` member).
VERSION = place.FORMAT_VERSION
#: A line longer than this is not a record (the writer's bodies are cut at 64 KiB each).
LINE_CAP = 1 << 20
_BLOCK = 1 << 16
#: How long to wait for a writer's rotation before opening the files regardless.
_LOCK_WAIT_S = 2.0
_LOCK_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


@dataclass(frozen=True)
class Record:
    """One call as the log holds it: ``data`` parsed, ``line`` the stored text."""

    data: dict[str, Any]
    line: str
    time: datetime

    def get(self, key: str) -> Any:
        return self.data.get(key)


@dataclass(frozen=True)
class Selection:
    """Which records ``oauthcli log`` shows.

    ``message``: a send of that message (``incidents`` also matches ``incidents.list``;
    ``incidents.list`` only that method), or a token or revoke call (which names no
    message) for the profile of that name, the name it was asked for by. ``profile``:
    every call made with that profile's token. ``failed``: calls whose exit code is not 0.
    """

    message: str | None = None
    profile: str | None = None
    failed: bool = False

    def keeps(self, record: Record) -> bool:
        if self.failed and not failed(record):
            return False
        if self.profile is not None and record.get("profile") != self.profile:
            return False
        if self.message is not None:
            name = record.get("message")
            if isinstance(name, str) and name:
                return name == self.message or name.startswith(self.message + ".")
            return record.get("profile") == self.message
        return True


def failed(record: Record) -> bool:
    """The call did not succeed: its exit code is not 0 (or, without one, it has an error)."""
    code = record.get("exit_code")
    if isinstance(code, int) and not isinstance(code, bool):
        return code != 0
    return bool(record.get("error"))


@dataclass
class _Counts:
    not_records: int = 0
    too_long: int = 0
    later: int = 0
    later_versions: set[int] = field(default_factory=set)


@dataclass
class _File:
    path: Path
    handle: BinaryIO
    size: int
    newest: bool  # the current file, whose last line may still be being written

    @property
    def fd(self) -> int:
        return self.handle.fileno()


class _Later:
    """A record of a later format than :data:`VERSION`."""

    def __init__(self, version: int) -> None:
        self.version = version


class _TooLong:
    """A line over :data:`LINE_CAP`, whose bytes were not kept."""


_TOO_LONG = _TooLong()


class OutboundLog:
    """The log's files, open; :meth:`open` makes one, :meth:`close` (or ``with``) ends it."""

    def __init__(self, folder: Path, files: list[_File]) -> None:
        self.folder = folder
        self._files = files
        self._counts: dict[Path, _Counts] = {}

    @classmethod
    def open(cls, folder: Path) -> OutboundLog | None:
        """The log in ``folder``, or None when there is none yet (no folder, no file).

        Raises RegistryError when the folder or a file of the log is not ours, is
        writable by group or others, is a symbolic link or is not a regular file.
        """
        if not place.check_folder(folder):
            if os.path.lexists(folder):
                raise RegistryError(
                    f"{place.LOG.what} {folder} is not a folder; oauthcli uses only a folder "
                    f"of your own: set {place.LOG.variable} to one"
                )
            return None
        files: list[_File] = []
        try:
            with _SharedLock(folder):
                seen: set[tuple[int, int]] = set()
                for name in place.file_names():
                    handle = place.open_for_reading(folder, name)
                    if handle is None:
                        continue
                    st = os.fstat(handle.fileno())
                    if (st.st_dev, st.st_ino) in seen:  # the same file under two names
                        handle.close()
                        continue
                    seen.add((st.st_dev, st.st_ino))
                    files.append(_File(folder / name, handle, st.st_size, name == place.CURRENT))
        except BaseException:
            for f in files:
                f.handle.close()
            raise
        if not files:
            return None
        return cls(folder, files)

    def close(self) -> None:
        for f in self._files:
            f.handle.close()
        self._files = []

    def __enter__(self) -> OutboundLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def records(self, selection: Selection | None = None) -> Iterator[Record]:
        """Every record that ``selection`` keeps, oldest first, read as it is consumed."""
        for f in self._files:
            for line, partial in _lines_forward(f):
                record = self._record(f, line, partial)
                if record is not None and (selection is None or selection.keeps(record)):
                    yield record

    def last(self, n: int, selection: Selection | None = None) -> Iterator[Record]:
        """The last ``n`` records that ``selection`` keeps, oldest first.

        Read from the end backwards until the ``n``-th is found, keeping only where it
        starts; then forwards from there (to where the files ended when opened), so
        that memory stays bounded however large ``n`` is.
        """
        if n <= 0:
            return
        found = 0
        start = (0, 0)  # which file, at which offset
        for index in range(len(self._files) - 1, -1, -1):
            f = self._files[index]
            for line, partial, offset in _lines_backward(f):
                record = self._record(f, line, partial)
                if record is not None and (selection is None or selection.keeps(record)):
                    found += 1
                    if found == n:
                        start = (index, offset)
                        break
            if found == n:
                break
        index, offset = start
        for f in self._files[index:]:
            for line, partial in _lines_forward(f, offset, f.size):
                record = self._record(f, line, partial, count=False)  # counted on the way back
                if record is not None and (selection is None or selection.keeps(record)):
                    yield record
                    found -= 1
                    if found == 0:
                        return
            offset = 0

    def skipped_note(self) -> str | None:
        """One sentence on what was skipped so far (None when nothing was), naming the files."""
        bad = [(path, c) for path, c in self._counts.items() if c.not_records]
        later = [(path, c) for path, c in self._counts.items() if c.later]
        notes = []
        if bad:
            parts = [
                f"{_plural(c.not_records, 'line')} of {path}"
                + (f" ({c.too_long} over {LINE_CAP >> 20} MiB)" if c.too_long else "")
                for path, c in bad
            ]
            one = sum(c.not_records for _, c in bad) == 1
            notes.append(
                f"{_join(parts)} {'was not a record' if one else 'were not records'}; skipped"
            )
        if later:
            parts = [
                f"{_plural(c.later, 'record')} of {path} (format "
                + ", ".join(f"v{v}" for v in sorted(c.later_versions))
                + ")"
                for path, c in later
            ]
            one = sum(c.later for _, c in later) == 1
            notes.append(
                f"{_join(parts)} {'is' if one else 'are'} of a later format than this oauthcli "
                f"reads (v{VERSION}); skipped: a newer oauthcli shows {'it' if one else 'them'}"
            )
        return "; ".join(notes) if notes else None

    def _record(
        self, f: _File, line: bytes | _TooLong, partial: bool, *, count: bool = True
    ) -> Record | None:
        parsed = _TOO_LONG if isinstance(line, _TooLong) else parse(line)
        if isinstance(parsed, Record):
            return parsed
        if parsed is None and not isinstance(line, _TooLong) and not line.strip():
            return None  # a blank line holds nothing to lose
        if partial and parsed is None:
            return None  # the line a writer is writing now (over the cap it is no writer's)
        if not count:
            return None
        counts = self._counts.setdefault(f.path, _Counts())
        if isinstance(parsed, _Later):
            counts.later += 1
            counts.later_versions.add(parsed.version)
        else:
            counts.not_records += 1
            counts.too_long += parsed is _TOO_LONG
        return None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def parse(line: bytes) -> Record | _Later | None:
    """The record a line holds; a :class:`_Later` for a later format; else None."""
    try:
        text = line.decode("utf-8").rstrip("\r\n")
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, NaN, nested past the limit
        return None
    if not isinstance(data, dict):
        return None
    version = data.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        return None
    if version > VERSION:
        return _Later(version)
    if version != VERSION or not isinstance(data.get("kind"), str):
        return None
    when = parse_time(data.get("time"))
    if when is None:
        return None
    return Record(data, text, when)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_time(value: Any) -> datetime | None:
    """A record's ``time`` (ISO 8601, ``Z`` or an offset; UTC when it has none) as UTC."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        when = datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    try:
        return when.astimezone(timezone.utc)
    except (OverflowError, ValueError):  # year 1 with a positive offset
        return None


# -- reading lines, bounded ---------------------------------------------------


def _lines_forward(
    f: _File, offset: int = 0, stop: int | None = None
) -> Iterator[tuple[bytes | _TooLong, bool]]:
    """Each line of ``f`` from ``offset`` (the start of a line) to its end, or to ``stop``,
    and whether it is an unterminated last line."""
    pending = b""
    dropping = False  # the line being read is over the cap: its bytes are not kept
    while stop is None or offset < stop:
        size = _BLOCK if stop is None else min(_BLOCK, stop - offset)
        chunk = os.pread(f.fd, size, offset)
        if not chunk:
            break
        offset += len(chunk)
        start = 0
        while True:
            end = chunk.find(b"\n", start)
            if end < 0:
                break
            if dropping:
                yield _TOO_LONG, False
                dropping = False
            else:
                line = pending + chunk[start:end]
                yield (line if len(line) <= LINE_CAP else _TOO_LONG), False
            pending = b""
            start = end + 1
        if not dropping:
            pending += chunk[start:]
            if len(pending) > LINE_CAP:
                dropping, pending = True, b""
    if dropping:
        yield _TOO_LONG, f.newest
    elif pending:
        yield pending, f.newest


def _lines_backward(f: _File) -> Iterator[tuple[bytes | _TooLong, bool, int]]:
    """Each line of ``f`` from its end (as it was when opened), last line first: the line,
    whether it is an unterminated last line, and the offset it starts at."""
    pos = f.size
    pending = b""  # the end of a line whose start is not read yet
    dropping = False
    last = True  # the next line yielded is the file's last one
    terminated: bool | None = None
    while pos > 0:
        size = min(_BLOCK, pos)
        pos -= size
        chunk = os.pread(f.fd, size, pos)
        if len(chunk) < size:  # cut shorter meanwhile (never by the writer): blank lines
            chunk = chunk.ljust(size, b"\n")
        if terminated is None:
            terminated = chunk.endswith(b"\n")
            if terminated:
                chunk = chunk[:-1]
        pieces = chunk.split(b"\n")
        starts = [pos]
        for piece in pieces[:-1]:
            starts.append(starts[-1] + len(piece) + 1)
        for k in range(len(pieces) - 1, 0, -1):
            if dropping:
                line: bytes | _TooLong = _TOO_LONG
            else:
                joined = pieces[k] + pending
                line = joined if len(joined) <= LINE_CAP else _TOO_LONG
            yield line, last and not terminated and f.newest, starts[k]
            last = False
            pending, dropping = b"", False
        if not dropping:
            pending = pieces[0] + pending
            if len(pending) > LINE_CAP:
                dropping, pending = True, b""
    if f.size:  # the file's first line
        yield (_TOO_LONG if dropping else pending), last and not terminated and f.newest, 0


class _SharedLock:
    """``outbound.lock`` (never through a link) held shared while the files are opened: the writer holds it
    exclusively to rotate. Without the file (or a lock to wait for, within
    :data:`_LOCK_WAIT_S`, or a platform without ``flock``) the files are opened regardless:
    a record can then at worst be missed or shown twice, never misread."""

    def __init__(self, folder: Path) -> None:
        self._path = folder / place.LOCK
        self._fd: int | None = None

    def __enter__(self) -> None:
        try:
            import fcntl
        except ImportError:
            return
        try:
            fd = os.open(self._path, _LOCK_FLAGS)
        except OSError:
            return
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.01)
                    continue
            except OSError:
                pass
            else:
                self._fd = fd
                return
            os.close(fd)
            return

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the handle releases the lock
            self._fd = None
