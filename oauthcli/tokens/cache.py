"""The token cache: where entries live, how they are read, written and locked.

One JSON file per entry, named by the SHA-256 of what identifies a token
(SPEC §3: token_url, client_id, grant, scope, audience, resource; plus the
username for the password grant, so two users never share a token)::

    {"version": 1, "profile": "acme", "token_url": "https://…/token",
     "client_id": "…", "grant_type": "client_credentials",
     "access_token": "…", "token_type": "Bearer", "expires_at": 1767225600.0,
     "expires_assumed": false, "scope": "api.read", "refresh_token": null,
     "refresh_expires_at": null, "obtained_at": 1767225300.0}

Files are 0600 in a 0700 folder, written to a temporary file in the same
folder, fsynced and renamed over the old one, so a reader sees the old entry
or the new one, never half of one. Reading takes no lock and imports only the
standard library; the per-entry lock (``<key>.lock``, :mod:`filelock`) is
taken by writers only.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oauthcli.secret import Secret
from oauthcli.tokens import Token

if TYPE_CHECKING:
    from filelock import BaseFileLock

    from oauthcli.resolved import ResolvedProfile

VERSION = 1
_MAX_TIME = 253402300799  # 9999-12-31T23:59:59Z
_REQUIRED: dict[str, type | tuple[type, ...]] = {
    "profile": str,
    "token_url": str,
    "access_token": str,
    "token_type": str,
    "expires_at": (int, float),
    "obtained_at": (int, float),
}
_OPTIONAL: dict[str, type | tuple[type, ...]] = {
    "client_id": str,
    "grant_type": str,
    "scope": str,
    "refresh_token": str,
    "refresh_expires_at": (int, float),
    "expires_assumed": bool,
}


class CorruptEntry(Exception):
    """A cache file that is not a valid entry; the caller discards it with a warning."""


@dataclass(frozen=True)
class Entry:
    token: Token
    profile: str
    token_url: str
    client_id: str = ""
    grant_type: str = ""
    expires_assumed: bool = False
    path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        t = self.token
        return {
            "version": VERSION,
            "profile": self.profile,
            "token_url": self.token_url,
            "client_id": self.client_id,
            "grant_type": self.grant_type,
            "access_token": t.access_token.reveal(),
            "token_type": t.token_type,
            "expires_at": t.expires_at,
            "expires_assumed": self.expires_assumed,
            "scope": t.scope,
            "refresh_token": t.refresh_token.reveal() if t.refresh_token else None,
            "refresh_expires_at": t.refresh_expires_at,
            "obtained_at": t.obtained_at,
        }


def cache_dir() -> Path:
    """``$OAUTHCLI_CACHE_DIR``, else the platform's user cache folder for oauthcli."""
    configured = os.environ.get("OAUTHCLI_CACHE_DIR")
    if configured:
        return Path(configured).expanduser()
    if sys.platform.startswith("linux"):
        # What platformdirs answers on Linux, without importing it on every run.
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
        return base / "oauthcli"
    import platformdirs

    return Path(platformdirs.user_cache_dir("oauthcli", appauthor=False))


def entry_key(profile: ResolvedProfile) -> str:
    parts: list[Any] = [
        profile.token_url,
        profile.client_id,
        profile.grant_type,
        " ".join(profile.scope),
        profile.audience or "",
        list(profile.resource),
    ]
    if profile.grant_type == "password":
        parts.append(profile.username or "")
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def entry_path(key: str) -> Path:
    return cache_dir() / f"{key}.json"


def read(path: Path) -> Entry | None:
    """The entry at ``path``, None if there is none; raises CorruptEntry."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CorruptEntry(f"cannot read cache entry {path}: {exc.strerror}") from None
    return parse(raw, path)


def parse(raw: bytes, path: Path) -> Entry:
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise CorruptEntry(f"cache entry {path} is not valid JSON") from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise CorruptEntry(f"cache entry {path} is not a version {VERSION} entry")
    for name, kind in _REQUIRED.items():
        if not isinstance(data.get(name), kind) or isinstance(data.get(name), bool):
            raise CorruptEntry(f"cache entry {path}: '{name}' is missing or of the wrong type")
    for name, kind in _OPTIONAL.items():
        if data.get(name) is not None and not isinstance(data[name], kind):
            raise CorruptEntry(f"cache entry {path}: '{name}' is of the wrong type")
    if not data["access_token"]:
        raise CorruptEntry(f"cache entry {path}: 'access_token' is empty")
    for name in ("expires_at", "obtained_at", "refresh_expires_at"):
        value = data.get(name)
        # Finite and a date (so ±inf, NaN and a 400-digit number are corrupt, not a crash).
        if value is not None and not -_MAX_TIME <= value <= _MAX_TIME:
            raise CorruptEntry(f"cache entry {path}: '{name}' is not a time")
    refresh = data.get("refresh_token")
    token = Token(
        access_token=Secret(data["access_token"]),
        token_type=data["token_type"],
        expires_at=float(data["expires_at"]),
        scope=data.get("scope"),
        refresh_token=Secret(refresh) if refresh else None,
        refresh_expires_at=_float_or_none(data.get("refresh_expires_at")),
        obtained_at=float(data["obtained_at"]),
    )
    return Entry(
        token=token,
        profile=data["profile"],
        token_url=data["token_url"],
        client_id=data.get("client_id") or "",
        grant_type=data.get("grant_type") or "",
        expires_assumed=bool(data.get("expires_assumed")),
        path=path,
    )


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


def ensure_dir() -> Path:
    """Create the cache folder 0700 (and tighten it if we own it and it is looser)."""
    folder = cache_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = folder.stat()
    if st.st_mode & 0o077 and st.st_uid == os.getuid():
        folder.chmod(0o700)
    return folder


def write(path: Path, entry: Entry) -> None:
    """Atomically replace ``path`` with ``entry``: temp file 0600, fsync, rename."""
    folder = ensure_dir()
    data = json.dumps(entry.to_json(), indent=1).encode()
    tmp = folder / f".{path.stem}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(folder)
    _sweep_orphans(folder, path.stem)


#: Seconds after which a temp file of an entry is taken to be a killed writer's.
ORPHAN_AGE = 60


def _sweep_orphans(folder: Path, stem: str) -> None:
    """Remove temp files left by writers of this entry that were killed mid-write."""
    cutoff = time.time() - ORPHAN_AGE
    for leftover in folder.glob(f".{stem}.*.tmp"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
        except OSError:
            pass  # another process swept it first


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a directory; the rename still happened
    finally:
        os.close(fd)


def remove(path: Path) -> bool:
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


def lock(path: Path, timeout: float) -> BaseFileLock:
    """The per-entry lock; flock-based, so the OS releases it when its holder dies."""
    from filelock import FileLock

    ensure_dir()
    return FileLock(path.with_suffix(".lock"), timeout=timeout, mode=0o600)


def entries() -> Iterator[tuple[Path, Entry | None, str | None]]:
    """Every cache file: its path, the entry or None, and why it is unreadable."""
    folder = cache_dir()
    if not folder.is_dir():
        return
    for path in sorted(folder.glob("*.json")):
        try:
            entry = read(path)
        except CorruptEntry as exc:
            yield path, None, str(exc)
            continue
        if entry is not None:
            yield path, entry, None


def clear(profile: str | None = None, also: Path | None = None) -> int:
    """Remove every entry, or those recorded for ``profile`` (and ``also``); how many."""
    removed = 0
    for path, entry, _ in list(entries()):
        mine = profile is None or path == also or (entry is not None and entry.profile == profile)
        if mine and remove(path):
            removed += 1
    if profile is None:
        folder = cache_dir()
        # Lock files too: a clear is a reset, run when no other oauthcli is renewing.
        for leftover in [*folder.glob("*.lock"), *folder.glob(".*.tmp")]:
            leftover.unlink(missing_ok=True)
        from oauthcli import parsecache

        parsecache.clear()
    return removed
