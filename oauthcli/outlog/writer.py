"""Appending records to the outbound log, safely from many processes at once.

Each record is one line, written by one ``write()`` on the current file opened with
``O_APPEND | O_NOFOLLOW``, while this process holds an exclusive ``flock`` of
``outbound.lock``; the size check and the rotation (``outbound.jsonl`` →
``outbound.jsonl.1`` … ``.5``) happen under the same lock, so no line is interleaved with
another, cut by a rotation or written to a file just renamed away.
:class:`logging.handlers.RotatingFileHandler` is not used: each process rotates on its
own idea of the size and keeps writing to the file it opened, which another process
has renamed (the logging cookbook says to log from one process for that reason).

The lock file and the folder stay open for the process (a batch writes a line per
row); a forked child opens its own (an inherited ``flock`` would be its parent's: the
lock belongs to the open file, which both would share), and threads take a
:class:`threading.Lock` first, since ``flock`` does not tell threads apart.

What cannot be written (a folder that is not ours, a file that is a link, a full disk)
is said once per process through ``warn``; the call goes on, its result and exit code
unchanged. A line half written when the disk filled is cut off again.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from oauthcli.errors import RegistryError
from oauthcli.outlog import place

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO planted as the file is never waited on
_FILE_FLAGS = os.O_RDWR | os.O_APPEND | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _NONBLOCK
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | _NOFOLLOW | _CLOEXEC | _NONBLOCK
#: What the writer needs: flock, and files opened and renamed relative to the folder's handle.
_POSIX = (
    os.name == "posix"
    and os.open in os.supports_dir_fd
    and os.rename in os.supports_dir_fd
    and os.stat in os.supports_dir_fd
)


class _Opened:
    """This process's handles: the folder and its lock file (``pid`` says whose)."""

    __slots__ = ("folder", "folder_fd", "lock_fd", "pid")

    def __init__(self, folder: Path, folder_fd: int, lock_fd: int) -> None:
        self.folder = folder
        self.folder_fd = folder_fd
        self.lock_fd = lock_fd
        self.pid = os.getpid()

    def close(self) -> None:
        for fd in (self.lock_fd, self.folder_fd):
            try:
                os.close(fd)
            except OSError:
                pass


_guard = threading.Lock()
_opened: _Opened | None = None
_failed_folder: str | None = None  # the folder that could not be opened (not tried again)
_warned: str | None = None  # the folder a warning was given for: one per process (and folder)


def _after_fork() -> None:
    global _guard, _opened, _failed_folder, _warned
    _guard = threading.Lock()  # another thread may have held it at the fork
    if _opened is not None:
        _opened.close()  # the parent's lock: never this process's
    _opened = None
    _failed_folder = None
    _warned = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def append(line: bytes, warn: Callable[[str], None]) -> bool:
    """Append ``line`` (one record and its ``\\n``); False, said once, when it cannot be."""
    try:
        with _guard:
            opened = _open()
            if opened is None:
                return False
            _append_locked(opened, line)
        return True
    except _Refused as exc:
        warn_once(warn, str(exc))
    except OSError as exc:
        warn_once(warn, f"cannot write the outbound log in {_where()} ({exc.strerror or exc})")
    return False


def _where() -> str:
    try:
        return str(place.log_dir())
    except RegistryError:
        return "its folder"


class _Refused(Exception):
    """A log folder or file that must not be written to; the message says why."""


def warn_once(warn: Callable[[str], None], why: str) -> None:
    """Say ``why`` the log is not written, if nothing was said yet in this process (of
    this folder: ``OAUTHCLI_LOG_DIR`` may change under a process that runs many calls)."""
    global _warned
    where = os.environ.get(place.LOG.variable, "")
    if _warned != where:
        _warned = where
        warn(f"{why}; calls are not logged")


_where_from: tuple[str | None, ...] = ()
_folder: Path | None = None


def _log_dir() -> Path:
    """:func:`place.log_dir`, worked out again only when a variable it reads has changed
    (a batch appends a line per row)."""
    global _where_from, _folder
    key = tuple(os.environ.get(name) for name in (place.LOG.variable, "XDG_STATE_HOME", "HOME"))
    if _folder is None or key != _where_from:
        _folder, _where_from = place.log_dir(), key
    return _folder


def _open() -> _Opened | None:
    global _opened, _failed_folder
    if not _POSIX:
        raise _Refused(
            "the outbound log is written only where POSIX file locks (flock) and folder "
            "handles are: not on this platform"
        )
    try:
        folder = _log_dir()
    except RegistryError as exc:
        raise _Refused(str(exc)) from None
    if _opened is not None:
        if _opened.pid == os.getpid() and _opened.folder == folder:
            return _opened
        if _opened.pid == os.getpid():
            _opened.close()  # another folder now: this one's handles are not needed
        _opened = None
    if _failed_folder == str(folder):
        return None
    try:
        _opened = _open_folder(folder)
    except BaseException:
        _failed_folder = str(folder)
        raise
    return _opened


def _open_folder(folder: Path) -> _Opened:
    try:
        place.ensure_folder(folder)
    except RegistryError as exc:
        raise _Refused(str(exc)) from None
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | _CLOEXEC
    folder_fd = os.open(folder, flags)
    try:
        st = os.fstat(folder_fd)
        if not stat.S_ISDIR(st.st_mode) or not _mine(st) or st.st_mode & 0o022:
            # swapped since it was checked: checked again, to say why
            place.check_folder(folder)
            raise _Refused(f"the outbound log folder {folder} changed while it was opened")
        lock_fd = _open_file(folder, folder_fd, place.LOCK, _LOCK_FLAGS)
    except RegistryError as exc:
        os.close(folder_fd)
        raise _Refused(str(exc)) from None
    except BaseException:
        os.close(folder_fd)
        raise
    return _Opened(folder, folder_fd, lock_fd)


def _open_file(folder: Path, folder_fd: int, name: str, flags: int) -> int:
    """A file of the log folder, created 0600; _Refused when it is not one of ours."""
    try:
        fd = os.open(name, flags, 0o600, dir_fd=folder_fd)
    except OSError:
        try:
            st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
        except OSError:
            st = None
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise _Refused(f"the outbound log file {folder / name} is a symbolic link") from None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise _Refused(f"the outbound log file {folder / name} is not a regular file") from None
        raise
    problem = place.file_problem(os.fstat(fd))
    if problem:
        os.close(fd)
        raise _Refused(f"the outbound log file {folder / name} {problem}")
    return fd


def _mine(st: os.stat_result) -> bool:
    return not hasattr(os, "getuid") or st.st_uid == os.getuid()


def _append_locked(opened: _Opened, line: bytes) -> None:
    import fcntl

    bound = _bound()
    fcntl.flock(opened.lock_fd, fcntl.LOCK_EX)
    try:
        fd = _open_file(opened.folder, opened.folder_fd, place.CURRENT, _FILE_FLAGS)
        try:
            size = os.fstat(fd).st_size
            if size and size + len(line) > bound:
                os.close(fd)
                fd = -1
                _rotate(opened.folder_fd)
                fd = _open_file(opened.folder, opened.folder_fd, place.CURRENT, _FILE_FLAGS)
                size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # A line left unfinished (a writer killed mid-line, another program): this
                # record starts a line of its own rather than being glued to it.
                line = b"\n" + line
            _write_all(fd, line, size)
        finally:
            if fd >= 0:
                os.close(fd)
    finally:
        fcntl.flock(opened.lock_fd, fcntl.LOCK_UN)


def _bound() -> int:
    try:
        return place.max_bytes()
    except RegistryError as exc:
        raise _Refused(str(exc)) from None


def _rotate(folder_fd: int) -> None:
    """``.4`` → ``.5`` (the old ``.5`` dropped) … current → ``.1``, under the lock."""
    for n in range(place.BACKUPS - 1, 0, -1):
        try:
            os.replace(
                place.backup(n), place.backup(n + 1), src_dir_fd=folder_fd, dst_dir_fd=folder_fd
            )
        except FileNotFoundError:
            pass
    os.replace(place.CURRENT, place.backup(1), src_dir_fd=folder_fd, dst_dir_fd=folder_fd)


def _write_all(fd: int, line: bytes, size: int) -> None:
    """One ``write()`` (more only if the kernel took part of it); on a failure the part
    written is cut off, so that no half line is left for the next one to run into."""
    done = 0
    try:
        while done < len(line):
            done += os.write(fd, line[done:] if done else line)
    except OSError:
        if done:
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass
        raise
