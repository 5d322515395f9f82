"""Where the outbound log is, the names of its files, and whether they are ours.

The one place the writer (:mod:`oauthcli.outlog.writer`) and the reader
(``oauthcli log``, ``--har``) both take these from; docs/outbound-log.md is the
contract. A leaf: it imports only :mod:`oauthcli.cachedir` and :mod:`oauthcli.errors`.

The folder is ``$OAUTHCLI_LOG_DIR``, else the platform's user state folder plus ``log``
(``platformdirs.user_state_path("oauthcli") / "log"``; on Linux computed as the cache
folder is, without importing platformdirs). It is trusted by the cache folder's rules
(:func:`oauthcli.cachedir.check_folder`): owned by this user, not writable by group or
others; a link at its own path is followed only when this user or root owns it. Files
in it are opened without following links, and are used only when they are regular files
of this user's that group and others cannot write.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from oauthcli import cachedir
from oauthcli.errors import RegistryError

LOG = cachedir.Place("the outbound log folder", "OAUTHCLI_LOG_DIR", "records")

CURRENT = "outbound.jsonl"
"""The file being written."""
LOCK = "outbound.lock"
"""Held (``flock``, exclusive) around every write, size check and rotation."""
BACKUPS = 5
"""Rotated files: ``outbound.jsonl.1`` (the newest) to ``.5`` (the oldest)."""
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
MAX_BYTES_VARIABLE = "OAUTHCLI_LOG_MAX_BYTES"
FORMAT_VERSION = 1
"""The records' ``v``."""

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def log_dir() -> Path:
    """``$OAUTHCLI_LOG_DIR``, else the user state folder's ``oauthcli/log``.

    Raises RegistryError naming the variable when no home folder can be found.
    """
    return cachedir.user_folder(LOG, "XDG_STATE_HOME", ".local/state", "user_state_dir", "log")


def backup(n: int) -> str:
    """The name of the ``n``-th rotated file (1 is the newest)."""
    return f"{CURRENT}.{n}"


def file_names() -> list[str]:
    """Every file of the log, oldest first: ``.5`` … ``.1``, then the current one."""
    return [backup(n) for n in range(BACKUPS, 0, -1)] + [CURRENT]


def max_bytes() -> int:
    """The size bound of a file: ``$OAUTHCLI_LOG_MAX_BYTES``, else 10 MiB.

    Raises RegistryError naming the variable when it is not a whole number of bytes ≥ 1.
    """
    raw = os.environ.get(MAX_BYTES_VARIABLE, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        raise RegistryError(
            f"{MAX_BYTES_VARIABLE}={shown!r} is not a size in bytes (a whole number, at least 1)"
        )
    return value


def check_folder(folder: Path) -> bool:
    """Whether the log folder exists; raises RegistryError (exit 3) naming it and why
    when it is not ours."""
    return cachedir.check_folder(folder, LOG)


def ensure_folder(folder: Path) -> Path:
    """The log folder, created 0700 (with its parents) if missing; RegistryError if not
    ours, OSError if it cannot be made."""
    return cachedir.ensure_folder(folder, LOG)


def file_problem(st: os.stat_result) -> str | None:
    """Why a log file with this ``fstat`` must not be read or written, or None."""
    if not stat.S_ISREG(st.st_mode):
        return "is not a regular file"
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return f"belongs to uid {st.st_uid}, not to you (uid {os.getuid()})"
    loose = st.st_mode & 0o022
    if loose:
        who = " and ".join(w for w, bit in (("group", 0o020), ("others", 0o002)) if loose & bit)
        return f"is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o})"
    return None


def open_for_reading(folder: Path, name: str) -> BinaryIO | None:
    """One of the log's files opened for reading, or None when it does not exist.

    Never through a link, never blocking on a FIFO; raises RegistryError (exit 3) naming
    the file and why when it is not one of ours.
    """
    path = folder / name
    flags = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if os.path.islink(path):
            raise _refused(path, "is a symbolic link") from None
        raise _refused(path, f"cannot be opened ({exc.strerror or exc})") from None
    try:
        problem = file_problem(os.fstat(fd))
        if problem:
            raise _refused(path, problem)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _refused(path: Path, why: str) -> RegistryError:
    return RegistryError(
        f"the outbound log file {path} {why}; oauthcli reads and writes only files of its own"
    )
