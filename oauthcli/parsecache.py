"""Parsed registry files, kept between runs so that a warm ``send`` need not parse YAML.

Importing PyYAML alone is ~10 ms of a ~160 ms warm ``send``. Each entry holds
a file's exact bytes and what parsing them gave (plain values, the line of each
key, the text of reinterpreted scalars) in :mod:`marshal` format, which holds
nothing but plain data. An entry is used only when the file's bytes are the
same as when it was written, so an edit is never missed, whatever the clock or
file system does with modification times.

Entries live in ``parsed/`` under the token cache folder (0700). They are
written atomically (a temporary file renamed over the entry); anything
unexpected (no folder, a corrupt or foreign entry, a value marshal cannot
hold, such as a YAML date) is simply a miss, never an error.
"""

from __future__ import annotations

import hashlib
import marshal
import os
from pathlib import Path
from typing import Any

from oauthcli import __version__

#: Entries from another oauthcli version or another layout are ignored.
FORMAT = f"oauthcli-parse-1/{__version__}"

Parsed = tuple[Any, dict[Any, int], dict[Any, str]]


def get(path: Path, raw: bytes) -> Parsed | None:
    """What parsing ``raw`` (the bytes of ``path``) gave last time, or None."""
    try:
        with open(_entry(path), "rb") as f:
            entry = marshal.load(f)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not (isinstance(entry, tuple) and len(entry) == 6):
        return None
    fmt, name, source, data, lines, scalars = entry
    if fmt != FORMAT or name != str(path) or source != raw:
        return None
    return data, lines, scalars


def put(path: Path, raw: bytes, data: Any, lines: dict[Any, int], scalars: dict[Any, str]) -> None:
    """Keep what parsing ``raw`` gave, for the next run; silently skipped when it cannot."""
    try:
        blob = marshal.dumps((FORMAT, str(path), raw, data, lines, scalars))
    except ValueError:
        return  # a value marshal cannot hold (a date, say): this file is parsed every time
    entry = _entry(path)
    tmp = entry.with_name(f".{entry.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        from oauthcli.tokens.cache import ensure_dir

        ensure_dir()  # 0700, as for tokens
        entry.parent.mkdir(mode=0o700, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
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
        leftover.unlink(missing_ok=True)
    folder.rmdir()


def _entry(path: Path) -> Path:
    from oauthcli.tokens.cache import cache_dir

    digest = hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:32]
    return cache_dir() / "parsed" / f"{digest}.marshal"
