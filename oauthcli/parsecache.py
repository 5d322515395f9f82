"""Parsed registry files, kept between runs so that a warm ``send`` need not parse YAML.

Importing PyYAML alone is ~10 ms of a ~160 ms warm ``send``. Each entry holds
what parsing a file gave (plain values, the line of each key, the text of
reinterpreted scalars) in :mod:`marshal` format, which holds nothing but plain
data, with the SHA-256 of the file's bytes: an entry is used only for the same
bytes, so an edit is never missed, whatever the clock or file system does with
modification times.

Entries live in ``parsed/`` under the token cache folder (0700), written
atomically (a temporary file renamed over the entry). One is read only if this
user owns it, nobody else may write it, and the SHA-256 of its contents
matches the one it starts with (marshal can crash on damaged input). Anything
unexpected (no folder, no home, a damaged or foreign entry, a value marshal
cannot hold, such as a YAML date) is a miss, never an error.

An entry holds what the file says, so a secret written inline in a registry
file is in its entry too: with the protection of the token cache beside it
(which holds live tokens), and gone with ``oauthcli token clear``.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import stat
from pathlib import Path
from typing import Any

from oauthcli import __version__

#: Bumped whenever what parsing gives changes; entries of another format are ignored.
FORMAT = f"oauthcli-parse-2/{__version__}"
_DIGEST = 32  # bytes of SHA-256 at the start of an entry

Parsed = tuple[Any, dict[Any, int], dict[Any, str]]


def digest(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


def get(path: Path, source: bytes) -> Parsed | None:
    """What parsing the bytes with SHA-256 ``source`` (the file ``path``) gave, or None."""
    try:
        blob = _read_own(_entry(path))
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
    try:
        payload = marshal.dumps((FORMAT, str(path), source, *parsed))
        entry = _entry(path)
    except Exception:  # noqa: BLE001 - a value marshal cannot hold (a date), no home folder
        return
    tmp = entry.with_name(f".{entry.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        from oauthcli.tokens.cache import ensure_dir

        ensure_dir()  # 0700, as for tokens
        entry.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(hashlib.sha256(payload).digest() + payload)
        os.replace(tmp, entry)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def clear() -> None:
    """Remove every entry (``oauthcli token clear`` resets the whole cache folder)."""
    from oauthcli.tokens.cache import cache_dir

    folder = cache_dir() / "parsed"
    if not folder.is_dir():
        return
    for leftover in folder.iterdir():
        try:
            leftover.unlink()
        except OSError:
            pass  # another process's entry being written, or something that is not ours
    try:
        folder.rmdir()
    except OSError:
        pass  # not empty: a run wrote an entry meanwhile


def _read_own(entry: Path) -> bytes | None:
    """The entry's bytes, if this user owns it and only this user can write it."""
    fd = os.open(entry, os.O_RDONLY)
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


def _entry(path: Path) -> Path:
    from oauthcli.tokens.cache import cache_dir

    name = hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return cache_dir() / "parsed" / f"{name}.marshal"
