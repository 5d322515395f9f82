"""The token cache: where entries live, how they are read, written and locked.

One JSON file per entry, ``<key>.json``, where the key is the SHA-256 of what
identifies a token (SPEC §3 and §4, :func:`entry_key`)::

    {"version": 1, "profile": "acme", "token_url": "https://…/token",
     "client_id": "…", "grant_type": "client_credentials",
     "access_token": "…", "token_type": "Bearer", "expires_at": 1767225600.0,
     "lifetime": 300, "expires_assumed": false, "scope": "api.read",
     "refresh_token": null, "refresh_expires_at": null, "obtained_at": 1767225300.0}

The folder is trusted only if it is ours (SPEC §4): owned by this user and not
writable by group or others, else every use of it is a :class:`RegistryError`.
Its mode is set only when oauthcli creates it. No symbolic link inside it is
followed: entries are opened with ``O_NOFOLLOW``, and only files named as
oauthcli names them are listed or removed.

Files are 0600 in a 0700 folder, written to a temporary file in the same
folder, fsynced and renamed over the old one, so a reader sees the old entry
or the new one, never half of one. Reading takes no lock and imports only the
standard library; the per-entry lock (``<key>.lock``, :mod:`filelock`) is
taken by writers only. Whatever is wrong with an entry (a damaged file, a
link, a huge or deeply nested document) makes it a :class:`CorruptEntry`,
which callers treat as a miss.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import stat
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oauthcli.cachedir import cache_dir, check_folder, ensure_dir
from oauthcli.errors import CorruptEntry, RegistryError
from oauthcli.headers import header_value_problem
from oauthcli.secret import Secret
from oauthcli.tokens.model import Token

if TYPE_CHECKING:
    from filelock import BaseFileLock

    from oauthcli.request.resolved import ResolvedProfile

VERSION = 1
#: Bytes beyond which a file is not an entry (a token answer is a few KiB).
MAX_ENTRY = 1 << 20
_MAX_TIME = 253402300799  # 9999-12-31T23:59:59Z
_KEY = re.compile(r"[0-9a-f]{64}")
#: The files oauthcli writes in the folder, and the only ones it ever removes.
_OURS = re.compile(r"[0-9a-f]{64}\.(?:json|lock|dpop|nonce)|\.[0-9a-f]{64}\.\d+\.[0-9a-f]{8}\.tmp")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
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
    "lifetime": (int, float),
    "expires_assumed": bool,
}
#: Values that may go in an HTTP header: visible Latin-1 and spaces, no line breaks.


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
            "lifetime": t.lifetime,
            "expires_assumed": self.expires_assumed,
            "scope": t.scope,
            "refresh_token": t.refresh_token.reveal() if t.refresh_token else None,
            "refresh_expires_at": t.refresh_expires_at,
            "obtained_at": t.obtained_at,
        }


# -- whose token it is -----------------------------------------------------------------------

#: The profile keys whose values decide whose token is issued: only their digests are kept.
IDENTITY_CREDENTIALS = (
    "client_secret",
    "private_key",
    "username",
    "password",
    "assertion",
    "refresh_token",
    "subject_token",
    "subject_token_type",
    "actor_token",
    "actor_token_type",
    "requested_token_type",
    "client_assertion",
)
_keys: weakref.WeakKeyDictionary[ResolvedProfile, str] = weakref.WeakKeyDictionary()


def entry_key(profile: ResolvedProfile) -> str:
    """The token identity of ``profile`` (SPEC §4): one cache entry and one held token per key.

    Covers the token URL, client, grant, scope, audience, resources, extra parameters,
    client_auth and a SHA-256 of each of :data:`IDENTITY_CREDENTIALS`, so profiles with
    other credentials never share a token. Worked out once per resolved profile: a batch
    asks for it on every row.
    """
    key = _keys.get(profile)
    if key is None:
        key = _identity(profile)
        _keys[profile] = key
    return key


def _identity(profile: ResolvedProfile) -> str:
    credentials = {}
    for name in IDENTITY_CREDENTIALS:
        value = getattr(profile, name)
        if name == "subject_token_type" and profile.subject_token is None:
            continue  # its default, on every profile: not part of a token's identity then
        value = _credential(value)
        if value is not None:
            credentials[name] = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()
    parts: list[Any] = [
        "oauthcli-token-identity-2",
        profile.token_server,
        profile.client_id,
        profile.grant_type,
        profile.client_auth,
        sorted(profile.scope),
        profile.audience or "",
        sorted(profile.resource),
        sorted(profile.extra_params.items()),
        credentials,
    ]
    if profile.dpop:  # a DPoP-bound token is another token (and has its own key, tokens.dpop)
        parts.append("dpop")
    if profile.authorization_params:  # login_hint, acr_values: maybe another user's token
        parts.append(sorted(profile.authorization_params.items()))
    text = json.dumps(parts, ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _credential(value: Any) -> str | None:
    """The text a credential's digest is taken of.

    ``${token:PROFILE}`` stands for that profile's token identity, not its current token:
    the exchanged token is the same party's however often the subject token is renewed (and
    knowing the cache entry needs no token fetched). A client assertion read per request
    (a projected file, GitHub Actions) stands for where it is read: each read is a new JWT
    proving the same workload.
    """
    from oauthcli.request.resolved import AssertionSource, WithTokens

    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, WithTokens):
        return json.dumps(
            [p.reveal() if isinstance(p, Secret) else "token:" + entry_key(p) for p in value.parts]
        )
    if isinstance(value, AssertionSource):
        return f"{value.source.parent}|{value.github_audience}|{value.template}"
    return value


def entry_path(key: str) -> Path:
    return cache_dir() / f"{key}.json"


# -- entries ---------------------------------------------------------------------------------


def read(path: Path) -> Entry | None:
    """The entry at ``path``, None if there is none; raises CorruptEntry or RegistryError."""
    if not check_folder(path.parent):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if not stat.S_ISREG(_lstat_mode(path)):
            raise CorruptEntry(f"cache entry {path} is not a regular file") from None
        raise CorruptEntry(f"cannot read cache entry {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise CorruptEntry(f"cache entry {path} is not a regular file")
        if hasattr(os, "getuid") and (st.st_uid != os.getuid() or st.st_mode & 0o022):
            raise CorruptEntry(f"cache entry {path} was not written by oauthcli for you")
        raw = os.read(fd, MAX_ENTRY + 1)
    except OSError as exc:
        raise CorruptEntry(f"cannot read cache entry {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_ENTRY:
        raise CorruptEntry(f"cache entry {path} is over {MAX_ENTRY // 1024} KiB, not an entry")
    return parse(raw, path)


def _lstat_mode(path: Path) -> int:
    try:
        return os.lstat(path).st_mode
    except OSError:
        return 0


def parse(raw: bytes, path: Path | str) -> Entry:
    """The entry ``raw`` holds; ``path`` names it in the CorruptEntry raised otherwise."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise CorruptEntry(f"cache entry {path} is not valid JSON") from None
    except RecursionError:
        raise CorruptEntry(f"cache entry {path} is nested too deeply to be an entry") from None
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
    for name in ("access_token", "token_type"):
        # Whoever wrote it, it goes into a header: never a line break or a non-Latin-1 letter.
        if header_value_problem(data[name], word=True) is not None:
            raise CorruptEntry(f"cache entry {path}: '{name}' cannot go in an HTTP header")
    for name in ("expires_at", "obtained_at", "refresh_expires_at", "lifetime"):
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
        lifetime=_float_or_none(data.get("lifetime")),
    )
    return Entry(
        token=token,
        profile=data["profile"],
        token_url=data["token_url"],
        client_id=data.get("client_id") or "",
        grant_type=data.get("grant_type") or "",
        expires_assumed=bool(data.get("expires_assumed")),
        path=path if isinstance(path, Path) else None,
    )


def _float_or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


def write(path: Path, entry: Entry) -> None:
    """Atomically replace ``path`` with ``entry``: temp file 0600, fsync, rename."""
    folder = ensure_dir()
    data = json.dumps(entry.to_json(), indent=1).encode()
    tmp = folder / f".{path.stem}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600)
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
            if leftover.lstat().st_mtime < cutoff:
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
        path.unlink()  # a link named as an entry is removed itself, never what it points at
    except FileNotFoundError:
        return False
    return True


def lock(path: Path, timeout: float) -> BaseFileLock:
    """The per-entry lock; flock-based, so the OS releases it when its holder dies."""
    from filelock import FileLock

    ensure_dir()
    lock_file = path.with_suffix(".lock")
    mode = _lstat_mode(lock_file)
    if mode and not stat.S_ISREG(mode):
        # filelock opens with O_TRUNC and would follow a link: remove the link instead.
        lock_file.unlink()
    return FileLock(lock_file, timeout=timeout, mode=0o600)


def entries() -> Iterator[tuple[Path, Entry | None, str | None]]:
    """Every cache entry: its path, the entry or None, and why it is unreadable."""
    folder = cache_dir()
    if not check_folder(folder):
        return
    for name in sorted(os.listdir(folder)):
        if not (name.endswith(".json") and _KEY.fullmatch(name[:-5])):
            continue
        path = folder / name
        try:
            entry = read(path)
        except CorruptEntry as exc:
            yield path, None, str(exc)
            continue
        if entry is not None:
            yield path, entry, None


def clear(profile: str | None = None, also: Path | None = None) -> int:
    """Remove every entry, or those recorded for ``profile`` (and ``also``); how many.

    Only files named as oauthcli names its own are touched, whatever else the folder holds.
    """
    removed = 0
    for path, entry, _ in list(entries()):
        mine = profile is None or path == also or (entry is not None and entry.profile == profile)
        if mine and _clear_one(path):
            removed += 1
    if profile is None:
        folder = cache_dir()
        if not check_folder(folder):
            return removed
        # Lock files too: a clear is a reset, run when no other oauthcli is renewing.
        for name in os.listdir(folder):
            if _OURS.fullmatch(name) and not name.endswith(".json"):
                _clear_one(folder / name)
    return removed


def _clear_one(path: Path) -> bool:
    """Remove one file of ours (a link itself, an empty folder by that name); whether it was."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            os.rmdir(path)  # only if empty: whatever someone put in it is not ours
        else:
            path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno == errno.ENOTEMPTY:
            return False
        raise RegistryError(f"cannot remove {path} from the token cache: {exc.strerror}") from None
    return True
