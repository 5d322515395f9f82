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
from pathlib import Path
from typing import Any

from oauthcli import __version__
from oauthcli.cachedir import Subfolder

#: Bumped whenever what parsing gives changes; entries of another format are ignored.
FORMAT = f"oauthcli-parse-2/{__version__}"
_DIGEST = 32  # bytes of SHA-256 at the start of an entry
#: ``parsed/`` of the cache folder; the names oauthcli gives entries, the only ones it removes.
_FOLDER = Subfolder("parsed", r"[0-9a-f]{32}\.marshal")

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
        blob = _FOLDER.read(_name(path))
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
    except Exception:  # noqa: BLE001 - a value marshal cannot hold (a date)
        return
    _FOLDER.write(_name(path), hashlib.sha256(payload).digest() + payload)


def clear() -> None:
    """Remove every entry (``oauthcli token clear`` resets the whole cache folder)."""
    _FOLDER.clear()


def _name(path: Path) -> str:
    return (
        hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:32] + ".marshal"
    )
