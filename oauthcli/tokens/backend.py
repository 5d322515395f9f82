"""Where the token service keeps its entries: one interface, the file cache or Redis.

:class:`CacheBackend` is what :mod:`oauthcli.tokens.service` and ``token list | clear``
talk to, keyed by the 64-hex token identity (:func:`oauthcli.tokens.cache.entry_key`):
``read`` (an :class:`Entry`, None, or :class:`CorruptEntry`, which callers treat as a
miss), ``write``, ``remove``, ``lock`` (a per-key lock that times out), ``entries`` and
``clear``, and ``where`` (a display string that never holds a password).

- :class:`FileBackend` is :mod:`oauthcli.tokens.cache`: a JSON file per entry in the
  cache folder of this machine.
- With ``OAUTHCLI_CACHE_URL`` set, :func:`current` answers the Redis cache
  (:mod:`oauthcli.tokens.rediscache`, SPEC §7) behind a :class:`Fallback`: when Redis
  cannot be used (unreachable, a refused password, answers that are not Redis's, a
  timeout, a failure mid-run) the file cache is used for the rest of the process, and
  that is said once (:meth:`CacheBackend.notices`, kind ``cache_fallback``).

Without ``OAUTHCLI_CACHE_URL`` nothing beyond the standard library and the file cache is
imported: the warm ``send`` pays nothing for Redis.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import oauthcli.tokens.cache as cache
from oauthcli.errors import CacheUnavailable as Unavailable
from oauthcli.errors import CorruptEntry, LockTimeout
from oauthcli.tokens.cache import Entry

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "CacheBackend",
    "CorruptEntry",
    "Entry",
    "Fallback",
    "FileBackend",
    "Lock",
    "LockTimeout",
    "Notice",
    "Store",
    "Unavailable",
    "current",
]


@dataclass(frozen=True)
class Notice:
    """Something the caller should say once: a token decision ``kind`` of
    docs/outbound-log.md, its text, and its facts (JSON values, never a secret)."""

    kind: str
    text: str
    facts: dict[str, Any] = field(default_factory=dict)


class Lock(Protocol):
    """A per-key lock; ``where`` names it for a message."""

    @property
    def where(self) -> str: ...

    def acquire(self, timeout: float | None = None) -> None:
        """Take it within ``timeout`` seconds (None: the lock's own); raises
        :class:`LockTimeout`, or OSError when it cannot be made (an unwritable folder)."""

    def release(self) -> None: ...

    def __enter__(self) -> Lock: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class Store(Protocol):
    """The token cache, keyed by the 64-hex token identity."""

    @property
    def where(self) -> str:
        """What the cache is, for messages: "the token cache folder /…", "the Redis cache …"."""

    @property
    def shared(self) -> bool:
        """Whether other machines see its entries (``token list | clear`` say so)."""

    def describe(self, key: str) -> str:
        """Where the entry of ``key`` lives, for a message (a path, a Redis key)."""

    def read(self, key: str) -> Entry | None:
        """The entry, None if there is none; raises CorruptEntry (a miss to the caller)
        or RegistryError (a cache that is not to be trusted)."""

    def write(self, key: str, entry: Entry) -> None:
        """Replace the entry atomically; raises OSError when the cache cannot be written."""

    def remove(self, key: str) -> bool:
        """Forget the entry; whether there was one. Raises OSError like ``write``."""

    def lock(self, key: str, timeout: float, lease: float) -> Lock:
        """The lock of ``key``, waited for up to ``timeout`` seconds; a holder that dies
        loses it (the OS frees a file lock; a Redis lock expires ``lease`` seconds after
        its holder last showed it was alive)."""

    def entries(self) -> Iterator[tuple[str, Entry | None, str | None]]:
        """Every entry: its key, the entry or None, and why it is unreadable."""

    def clear(self, profile: str | None = None, also: str | None = None) -> int:
        """Remove every entry, or those recorded for ``profile`` (and the key ``also``)."""


class CacheBackend(Store, Protocol):
    """A :class:`Store` that may have something to say (a fallback)."""

    def notices(self) -> list[Notice]:
        """What happened since last asked that is to be said (once per process)."""


class FileBackend:
    """The file cache (:mod:`oauthcli.tokens.cache`) of this machine, in the cache folder
    (``OAUTHCLI_CACHE_DIR``, read anew on each use)."""

    shared = False

    @property
    def where(self) -> str:
        return f"the token cache folder {cache.cache_dir()}"

    def describe(self, key: str) -> str:
        return str(cache.entry_path(key))

    def read(self, key: str) -> Entry | None:
        return cache.read(cache.entry_path(key))

    def write(self, key: str, entry: Entry) -> None:
        cache.write(cache.entry_path(key), entry)

    def remove(self, key: str) -> bool:
        return cache.remove(cache.entry_path(key))

    def lock(self, key: str, timeout: float, lease: float) -> Lock:
        # The OS frees a flock when its holder dies: no lease to keep.
        return _FileLock(cache.lock(cache.entry_path(key), timeout))

    def entries(self) -> Iterator[tuple[str, Entry | None, str | None]]:
        for path, entry, problem in cache.entries():
            yield path.stem, entry, problem

    def clear(self, profile: str | None = None, also: str | None = None) -> int:
        return cache.clear(profile, cache.entry_path(also) if also else None)

    def notices(self) -> list[Notice]:
        return []


class _FileLock:
    def __init__(self, lock: Any) -> None:
        self._lock = lock  # a filelock.BaseFileLock (filelock is imported by cache.lock)
        self.where = str(lock.lock_file)

    def acquire(self, timeout: float | None = None) -> None:
        from filelock import Timeout

        try:
            self._lock.acquire(timeout=timeout)
        except Timeout:
            raise LockTimeout(self.where) from None

    def release(self) -> None:
        self._lock.release()

    def __enter__(self) -> _FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class Fallback:
    """A shared cache that gives way to the file cache, for good, when it fails.

    Each operation is tried on ``primary``; an :class:`Unavailable` from it switches
    this process to ``local`` (the operation is done there instead) and queues one
    ``cache_fallback`` notice. Results and exit codes are the file cache's from then on.
    """

    def __init__(self, primary: Store | None, local: Store, where: str | None = None) -> None:
        import threading  # a batch's threads share it: one of them says the fallback

        self._said = threading.Lock()
        self._primary = primary  # None: it cannot even be tried (fail() at once)
        self.local = local
        self.shared_where = where or (primary.where if primary is not None else "")
        self.failed: str | None = None  # the reason, once it failed
        self._pending: list[Notice] = []

    @property
    def primary(self) -> Store:
        assert self._primary is not None, "used only before fail()"
        return self._primary

    @property
    def active(self) -> Store:
        return self.local if self.failed is not None else self.primary

    @property
    def where(self) -> str:
        return self.active.where

    @property
    def shared(self) -> bool:
        return self.active.shared

    def fail(self, reason: str) -> None:
        """Give up on the shared cache for this process (said once)."""
        with self._said:
            if self.failed is not None:
                return
            self.failed = reason
            text = (
                f"cannot use {self.shared_where} ({reason}); using {self.local.where} for "
                "the rest of this run (check OAUTHCLI_CACHE_URL)"
            )
            self._pending.append(Notice("cache_fallback", text, {"reason": reason}))

    def _run(self, op: Callable[[Store], Any]) -> Any:
        if self.failed is None:
            try:
                return op(self.primary)
            except Unavailable as exc:
                self.fail(str(exc))
        return op(self.local)

    def describe(self, key: str) -> str:
        return self.active.describe(key)

    def read(self, key: str) -> Entry | None:
        entry: Entry | None = self._run(lambda b: b.read(key))
        return entry

    def write(self, key: str, entry: Entry) -> None:
        self._run(lambda b: b.write(key, entry))

    def remove(self, key: str) -> bool:
        removed: bool = self._run(lambda b: b.remove(key))
        return removed

    def lock(self, key: str, timeout: float, lease: float) -> Lock:
        return _FallbackLock(self, key, timeout, lease)

    def entries(self) -> Iterator[tuple[str, Entry | None, str | None]]:
        if self.failed is None:
            try:
                # Listed in full first: a failure half-way falls back to a whole listing.
                listed = list(self.primary.entries())
            except Unavailable as exc:
                self.fail(str(exc))
            else:
                yield from listed
                return
        yield from self.local.entries()

    def clear(self, profile: str | None = None, also: str | None = None) -> int:
        removed: int = self._run(lambda b: b.clear(profile, also))
        return removed

    def notices(self) -> list[Notice]:
        if not self._pending:
            return []
        with self._said:
            pending, self._pending = self._pending, []
        return pending


class _FallbackLock:
    """The shared cache's lock while it works; the file cache's once it has failed."""

    def __init__(self, owner: Fallback, key: str, timeout: float, lease: float) -> None:
        self._owner = owner
        self._key = key
        self._timeout = timeout
        self._lease = lease
        self._held: Lock | None = None
        self._lock = self._make()

    def _make(self) -> Lock:
        owner = self._owner
        if owner.failed is None:
            try:
                return owner.primary.lock(self._key, self._timeout, self._lease)
            except Unavailable as exc:
                owner.fail(str(exc))
        return owner.local.lock(self._key, self._timeout, self._lease)

    @property
    def where(self) -> str:
        return self._lock.where

    def acquire(self, timeout: float | None = None) -> None:
        try:
            self._lock.acquire(timeout)
        except Unavailable as exc:
            self._owner.fail(str(exc))
            self._lock = self._make()
            self._lock.acquire(timeout)
        self._held = self._lock

    def release(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        try:
            held.release()
        except Unavailable as exc:
            # The lock expires by itself; what matters now is the file cache.
            self._owner.fail(str(exc))

    def __enter__(self) -> _FallbackLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


_FILE = FileBackend()
# The shared cache of this process, by (OAUTHCLI_CACHE_URL, OAUTHCLI_CACHE_KEY): made once,
# so a fallback lasts for the process and is said once.
_shared: dict[tuple[str, str], Fallback] = {}
_making = threading.Lock()  # a batch's threads ask at once: one shared cache, one warning


def current(*, local: bool = False) -> CacheBackend:
    """The cache to use now: Redis when ``OAUTHCLI_CACHE_URL`` is set, else the files.

    ``local``: an entry only this machine can use (a DPoP-bound token, bound to this
    machine's key) stays in the file cache. Raises RegistryError (exit 3) for a malformed
    ``OAUTHCLI_CACHE_URL`` or ``OAUTHCLI_CACHE_KEY``.
    """
    url = os.environ.get("OAUTHCLI_CACHE_URL", "")
    if local or not url.strip():
        return _FILE
    key = os.environ.get("OAUTHCLI_CACHE_KEY", "")
    found = _shared.get((url, key))
    if found is None:
        with _making:
            found = _shared.get((url, key))
            if found is None:
                found = _shared[(url, key)] = _connect(url, key)
    return found


def _connect(url: str, key: str) -> Fallback:
    import oauthcli.tokens.rediscache as rediscache

    settings = rediscache.Settings.parse(url, key)  # RegistryError for what is malformed
    try:
        return Fallback(rediscache.RedisBackend(settings), _FILE)
    except Unavailable as exc:  # the redis package is not installed
        shared = Fallback(None, _FILE, where=settings.where)
        shared.fail(str(exc))
        return shared


def forget() -> None:
    """Forget the shared caches made in this process (tests; a new process starts anew)."""
    for shared in _shared.values():
        closing = getattr(shared._primary, "close", None)
        if closing is not None:
            closing()
    _shared.clear()
