"""Parsed registry files, kept between runs so that a warm ``send`` need not parse YAML.

Importing PyYAML alone is ~10 ms of a ~160 ms warm ``send``; measured for issue 12
(``bench/audit.py``, BENCHMARKS.md "Mechanisms audit"), a warm send without the
cache took 1.06-1.08× as long, three runs out of three. Each entry holds
what parsing a file gave (plain values, the line of each key, the text of
reinterpreted scalars) in :mod:`marshal` format, which holds nothing but plain
data, with the SHA-256 of the file's bytes: an entry is used only for the same
bytes, so an edit is never missed, whatever the clock or file system does with
modification times.

Entries live in ``parsed/`` under the token cache folder, written atomically
(a temporary file renamed over the entry). Both folders must be ours, as the
token cache's rule says (SPEC §4: owned by this user, not writable by group or
others); ``parsed/`` is opened once with ``O_NOFOLLOW`` and every entry through
that handle, so a link planted in its place is never followed, written through
or deleted through. An entry is read only if this user owns it, nobody else may
write it, and the SHA-256 of its contents matches the one it starts with
(marshal can crash on damaged input). Anything unexpected (no folder, no home,
a foreign folder or entry, a value marshal cannot hold, such as a YAML date) is
a miss, never an error.

An entry holds what the file says, so a secret written inline in a registry
file is in its entry too: with the protection of the token cache beside it
(which holds live tokens), and gone with ``oauthcli token clear``.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import re
import stat
from pathlib import Path
from typing import Any

from oauthcli import __version__

#: Bumped whenever what parsing gives changes; entries of another format are ignored.
FORMAT = f"oauthcli-parse-2/{__version__}"
_DIGEST = 32  # bytes of SHA-256 at the start of an entry
#: The names oauthcli gives entries and their temporary files: the only ones it removes.
_OURS = re.compile(r"[0-9a-f]{32}\.marshal|\.[0-9a-f]{32}\.marshal\.\d+\.[0-9a-f]{8}\.tmp")
_FOLDER_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_DIRECTORY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)

Parsed = tuple[Any, dict[Any, int], dict[Any, str]]
#: ``OAUTHCLI_BENCH_WITHOUT=parsecache`` (bench/audit.py only): every read is a miss.
_OFF = "parsecache" in os.environ.get("OAUTHCLI_BENCH_WITHOUT", "").split(",")


def digest(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


def get(path: Path, source: bytes) -> Parsed | None:
    """What parsing the bytes with SHA-256 ``source`` (the file ``path``) gave, or None."""
    if _OFF:
        return None
    try:
        folder = _folder(create=False)
        if folder is None:
            return None
        try:
            blob = _read_own(folder, _name(path))
        finally:
            os.close(folder)
        if blob is None or hashlib.sha256(blob[_DIGEST:]).digest() != blob[:_DIGEST]:
            return None
        entry = marshal.loads(blob[_DIGEST:])
    except Exception:  # noqa: BLE001 - a cache: whatever goes wrong is a miss
        return None
    if not (isinstance(entry, tuple) and len(entry) == 6):
        return None
    fmt, name, kept, data, lines, scalars = entry
    if fmt != FORMAT or name != str(path) or kept != source:
        return None
    return data, lines, scalars


def put(path: Path, source: bytes, parsed: Parsed) -> None:
    """Keep what parsing gave, for the next run; silently skipped when it cannot."""
    if _OFF:
        return
    try:
        payload = marshal.dumps((FORMAT, str(path), source, *parsed))
        name = _name(path)
        folder = _folder(create=True)
    except Exception:  # noqa: BLE001 - a value marshal cannot hold (a date), no home folder
        return
    if folder is None:
        return
    tmp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW
        fd = os.open(tmp, flags, 0o600, dir_fd=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(hashlib.sha256(payload).digest() + payload)
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except OSError:
        try:
            os.unlink(tmp, dir_fd=folder)
        except OSError:
            pass
    finally:
        os.close(folder)


def clear() -> None:
    """Remove every entry (``oauthcli token clear`` resets the whole cache folder).

    Only files named as entries are, through the handle of ``parsed/`` itself: a link
    in its place, or anything else put in it, is left alone.
    """
    folder = _folder(create=False)
    if folder is None:
        return
    try:
        for name in os.listdir(folder):
            if _OURS.fullmatch(name):
                try:
                    os.unlink(name, dir_fd=folder)
                except OSError:
                    pass  # another process's entry being written or swept
    finally:
        os.close(folder)
    from oauthcli.cachedir import cache_dir

    try:
        os.rmdir(cache_dir() / "parsed")  # rmdir never follows a link
    except OSError:
        pass  # not empty: a run wrote an entry meanwhile, or something not ours is in it


def _folder(*, create: bool) -> int | None:
    """A handle of ``parsed/`` if it and the cache folder are ours, else None."""
    from oauthcli.cachedir import cache_dir, check_folder, ensure_dir
    from oauthcli.errors import RegistryError

    try:
        top = cache_dir()
        if not check_folder(top):
            if not create:
                return None
            ensure_dir()
    except (RegistryError, OSError, RuntimeError):  # not ours, unusable, no home folder
        return None
    where = top / "parsed"
    try:
        fd = os.open(where, _FOLDER_FLAGS)
    except FileNotFoundError:
        if not create:
            return None
        try:
            os.mkdir(where, 0o700)
            fd = os.open(where, _FOLDER_FLAGS)
        except OSError:
            return None
    except OSError:  # a link (ELOOP), not a folder, not readable
        return None
    st = os.fstat(fd)
    foreign = hasattr(os, "getuid") and st.st_uid != os.getuid()
    if foreign or not stat.S_ISDIR(st.st_mode) or st.st_mode & 0o022:
        os.close(fd)
        return None
    return fd


def _read_own(folder: int, name: str) -> bytes | None:
    """The entry's bytes, if this user owns it and only this user can write it."""
    try:
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0), dir_fd=folder)
    except FileNotFoundError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_mode & 0o022:
            return None
        if hasattr(os, "getuid") and st.st_uid != os.getuid():
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _name(path: Path) -> str:
    return (
        hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:32] + ".marshal"
    )
