"""The token cache in Redis, shared by a fleet (SPEC §7, ``OAUTHCLI_CACHE_URL``).

``OAUTHCLI_CACHE_URL=redis://[[USER]:PASSWORD@]HOST[:PORT][/DB][?timeout=SECONDS]`` (or
``rediss://`` for TLS, checked against the system's CAs). ``timeout`` bounds each
exchange with Redis, connecting included (default :data:`DEFAULT_TIMEOUT`).

- An entry is ``oauthcli:<key>``: the file cache's JSON (:meth:`Entry.to_json`), or,
  with ``OAUTHCLI_CACHE_KEY``, that JSON encrypted with Fernet (``cryptography``): the
  key is what ``Fernet.generate_key()`` prints (32 bytes, URL-safe base64), or several,
  comma-separated, to rotate (the first encrypts, any decrypts). An entry that does not
  decrypt with it, or is not an entry, or is over :data:`~oauthcli.tokens.cache.MAX_ENTRY`
  bytes, is a miss (read with ``GETRANGE``, so a huge value is never fetched whole).
- An entry expires with what it holds (:func:`ttl`): the access token, or a refresh token
  that outlives it (its known end, else :data:`REFRESH_KEEP`).
- The lock of an entry is ``oauthcli:<key>:lock``, redis-py's :class:`redis.lock.Lock`:
  ``SET lock owner NX PX lease`` with a random owner, released by a Lua
  compare-and-delete, so only its owner frees it. Its lease is renewed (owner-checked)
  every third of a lease while it is held, so a sign-in of minutes keeps it, and a
  holder that dies (SIGKILL, a lost machine) loses it ``lease`` seconds later; waiters
  poll with a growing, jittered delay until their deadline.

Every failure to talk to Redis (refused, a wrong password, a timeout, an answer that is
not Redis's) is an :class:`~oauthcli.tokens.backend.Unavailable`: the caller falls back
to the file cache. A malformed URL or key is a :class:`RegistryError` (exit 3) naming the
variable, never echoing the password or the key.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from oauthcli.errors import CacheUnavailable as Unavailable
from oauthcli.errors import CorruptEntry, LockTimeout, RegistryError
from oauthcli.secret import Secret, remember_url
from oauthcli.tokens.cache import MAX_ENTRY, Entry, parse

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

#: Seconds each exchange with Redis may take, connecting included, unless ``?timeout=``.
DEFAULT_TIMEOUT = 3.0
#: Seconds a refresh token whose end is unknown is kept (Entra ID's and Okta's default
#: refresh-token inactivity limit is 90 days).
REFRESH_KEEP = 90 * 86400
#: Seconds no entry outlives (a token "valid until 9999" is renewed at least this often).
MAX_KEEP = 400 * 86400
PREFIX = "oauthcli:"
_ENTRY = re.compile(r"oauthcli:([0-9a-f]{64})")
_FERNET_KEY = re.compile(r"[A-Za-z0-9_-]{43}=")
_URL_VAR = "OAUTHCLI_CACHE_URL"
_KEY_VAR = "OAUTHCLI_CACHE_KEY"

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    db: int
    username: str | None
    password: Secret | None
    tls: bool
    timeout: float
    keys: tuple[Secret, ...]  # OAUTHCLI_CACHE_KEY's Fernet keys, first encrypts
    url: str  # as shown: no password

    @property
    def where(self) -> str:
        return f"the Redis cache {self.url}"

    @classmethod
    def parse(cls, url: str, key: str = "") -> Settings:
        """Read ``OAUTHCLI_CACHE_URL`` and ``OAUTHCLI_CACHE_KEY``; RegistryError (exit 3)
        naming what is wrong, quoting nothing that may be the password or the key."""
        remember_url(url)
        keys = _keys(key)
        url = url.strip()
        try:
            parts = urlsplit(url)
        except ValueError:  # an unbalanced '[' of an IPv6 host
            raise _bad("is not a URL") from None
        scheme = parts.scheme.lower()
        if scheme not in ("redis", "rediss"):
            shown = f"'{scheme}://'" if re.fullmatch(r"[a-z][a-z0-9+.-]{0,15}", scheme) else "it"
            raise _bad(
                f"must start with redis:// or rediss:// ({shown} does not); "
                "unix sockets and clusters are not supported"
            )
        if parts.fragment:
            raise _bad("has a '#' part, which a Redis URL does not")
        host = parts.hostname
        try:
            port = parts.port or 6379
        except ValueError:
            raise _bad("has a port that is not a number from 1 to 65535") from None
        if not host or port == 0:
            raise _bad("names no host (write redis://HOST:PORT/DB)" if not host else "has port 0")
        if not re.fullmatch(r"[A-Za-z0-9._:-]+", host):
            raise _bad("has a host name with characters a host name cannot have")
        path = parts.path.strip("/")
        if path and not (path.isascii() and path.isdigit() and int(path) < 1 << 31):
            raise _bad("has a path that is not a database number (write /0, /1, …)")
        db = int(path) if path else 0
        timeout = DEFAULT_TIMEOUT
        try:
            query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError:
            raise _bad("has a query that is not NAME=VALUE pairs") from None
        for name, value in query:
            if name != "timeout":
                known = re.fullmatch(r"[A-Za-z_]{1,32}", name)
                raise _bad(
                    f"has an unknown parameter{f' {name!r}' if known else ''}; "
                    "only ?timeout=SECONDS is read"
                )
            try:
                timeout = float(value)
            except ValueError:
                timeout = math.nan
            if not 0 < timeout <= 300:
                raise _bad("has a timeout that is not a number of seconds from 0 to 300")
        username = unquote(parts.username) if parts.username else None
        password = Secret(unquote(parts.password)) if parts.password is not None else None
        user = f"{username}@" if username else ""
        shown_host = f"[{host}]" if ":" in host else host
        shown = f"{scheme}://{user}{shown_host}:{port}/{db}"
        return cls(host, port, db, username, password, scheme == "rediss", timeout, keys, shown)


def _bad(why: str) -> RegistryError:
    return RegistryError(f"{_URL_VAR} {why}")


def _keys(text: str) -> tuple[Secret, ...]:
    """OAUTHCLI_CACHE_KEY's Fernet keys; checked here, imported from cryptography only then."""
    parts = [part.strip() for part in text.split(",")] if text.strip() else []
    for part in parts:
        Secret(part)  # never shown, in any spelling, from now on
    if not parts:
        return ()
    from cryptography.fernet import Fernet

    for n, part in enumerate(parts, 1):
        try:
            if not _FERNET_KEY.fullmatch(part):  # base64 alone would take trailing junk
                raise ValueError
            Fernet(part.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            which = f"key {n} of " if len(parts) > 1 else ""
            raise RegistryError(
                f"{_KEY_VAR}: {which}the value is not a Fernet key (32 bytes in URL-safe "
                "base64, 44 characters, as Fernet.generate_key() makes: python -c "
                "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
            ) from None
    return tuple(Secret(part) for part in parts)


def ttl(entry: Entry, now: float) -> float:
    """Seconds to keep ``entry``: until its access token expires, or, when it holds a
    refresh token, until that one ends (else :data:`REFRESH_KEEP`), if that is later;
    never over :data:`MAX_KEEP`."""
    token = entry.token
    ends = [token.expires_at if token.expires_at is not None else now + REFRESH_KEEP]
    if token.refresh_token is not None:
        refresh_end = token.refresh_expires_at
        ends.append(refresh_end if refresh_end is not None else now + REFRESH_KEEP)
    return min(max(ends) - now, MAX_KEEP)


class RedisBackend:
    """The cache interface (:class:`~oauthcli.tokens.backend.Store`) on Redis."""

    shared = True

    def __init__(self, settings: Settings) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError:
            raise Unavailable(
                "the redis package is not installed: pip install 'oauthcli[redis]'"
            ) from None
        self.settings = settings
        self.where = settings.where
        self._redis = redis
        password = settings.password.reveal() if settings.password is not None else None
        self.client = redis.Redis(
            host=settings.host,
            port=settings.port,
            db=settings.db,
            username=settings.username,
            password=password,
            ssl=settings.tls,
            socket_timeout=settings.timeout,
            socket_connect_timeout=settings.timeout,
            retry=Retry(NoBackoff(), 0),  # a failure falls back at once: no retries
            client_name="oauthcli",
        )
        self._fernet: MultiFernet | None = None
        if settings.keys:
            from cryptography.fernet import Fernet, MultiFernet

            self._fernet = MultiFernet([Fernet(k.reveal().encode()) for k in settings.keys])

    def close(self) -> None:
        self.client.close()

    def describe(self, key: str) -> str:
        return f"{PREFIX}{key} in the Redis cache {self.settings.url}"

    def call(self, what: Callable[[], T], label: str = "") -> T:
        """``what()``, with every failure to talk to Redis made an Unavailable (and a key
        of another type than ours, at ``label``, a CorruptEntry)."""
        errors = self._redis.exceptions
        try:
            return what()
        except errors.LockError:
            raise
        except (errors.AuthenticationError, errors.AuthorizationError) as exc:
            raise Unavailable(f"Redis refused the credentials: {_said(exc)}") from None
        except errors.TimeoutError:
            raise Unavailable(f"no answer from Redis within {self.settings.timeout:g} s") from None
        except errors.ConnectionError as exc:
            raise Unavailable(f"cannot connect: {_said(exc)}") from None
        except errors.InvalidResponse:
            raise Unavailable("the server's answers are not Redis's protocol") from None
        except errors.ResponseError as exc:
            text = _said(exc)
            if label and text.startswith("WRONGTYPE"):
                raise CorruptEntry(
                    f"cache entry {label} is a Redis value of another type"
                ) from None
            if text.startswith(("NOAUTH", "WRONGPASS", "NOPERM")):
                raise Unavailable(f"Redis refused the credentials: {text}") from None
            raise Unavailable(f"Redis answered an error: {text}") from None
        except errors.RedisError as exc:
            raise Unavailable(f"Redis failed: {_said(exc)}") from None
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            # ssl errors, an answer redis-py cannot decode
            raise Unavailable(f"cannot talk to Redis: {type(exc).__name__}") from None

    def read(self, key: str) -> Entry | None:
        label = self.describe(key)
        raw = self.call(lambda: self.client.getrange(PREFIX + key, 0, MAX_ENTRY), label)
        if not isinstance(raw, bytes):
            raise Unavailable("the server's answers are not Redis's protocol")
        if not raw:
            return None  # no such key (or an empty value, which is no entry either)
        if len(raw) > MAX_ENTRY:
            raise CorruptEntry(f"cache entry {label} is over {MAX_ENTRY // 1024} KiB, not an entry")
        return parse(self._open(raw, label), label)

    def _open(self, raw: bytes, label: str) -> bytes:
        if self._fernet is None:
            if raw.startswith(b"gAAAAA"):  # a Fernet token's version byte and timestamp
                raise CorruptEntry(
                    f"cache entry {label} is encrypted; set {_KEY_VAR} to the key the fleet uses"
                )
            return raw
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(raw)
        except InvalidToken:
            raise CorruptEntry(
                f"cache entry {label} does not decrypt with {_KEY_VAR} (written with another key, "
                "or unencrypted)"
            ) from None

    def write(self, key: str, entry: Entry) -> None:
        data = json.dumps(entry.to_json()).encode()
        if self._fernet is not None:
            data = self._fernet.encrypt(data)
        keep = ttl(entry, time.time())
        if len(data) > MAX_ENTRY or keep < 0.001:
            # Not an entry any reader would take (over the cap), or nothing left to keep.
            self.call(lambda: self.client.delete(PREFIX + key))
            return
        self.call(lambda: self.client.set(PREFIX + key, data, px=max(1, int(keep * 1000))))

    def remove(self, key: str) -> bool:
        return bool(self.call(lambda: self.client.delete(PREFIX + key)))

    def lock(self, key: str, timeout: float, lease: float) -> RedisLock:
        return RedisLock(self, key, timeout, lease)

    def entries(self) -> Iterator[tuple[str, Entry | None, str | None]]:
        found = self.call(
            lambda: sorted(
                {
                    m.group(1)
                    for name in self.client.scan_iter(match=PREFIX + "*", count=1000)
                    if (m := _ENTRY.fullmatch(os.fsdecode(name)))
                }
            )
        )
        for key in found:
            try:
                entry = self.read(key)
            except CorruptEntry as exc:
                yield key, None, str(exc)
                continue
            if entry is not None:
                yield key, entry, None

    def clear(self, profile: str | None = None, also: str | None = None) -> int:
        """Remove the fleet's entries (all, or ``profile``'s); locks are left to expire:
        another machine may be renewing under one."""
        doomed = [
            key
            for key, entry, _ in list(self.entries())
            if profile is None or key == also or (entry is not None and entry.profile == profile)
        ]
        if not doomed:
            return 0
        removed = self.call(lambda: self.client.delete(*(PREFIX + key for key in doomed)))
        return int(removed)


def _said(exc: BaseException) -> str:
    """An exception's message on one line, bounded: a hostile server chooses its words."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:200] + "…"


class RedisLock:
    """One entry's lock in Redis (see the module's docstring)."""

    #: Seconds between two polls of a held lock, at first and at most.
    FIRST_POLL = 0.01
    LAST_POLL = 0.5

    def __init__(self, backend: RedisBackend, key: str, timeout: float, lease: float) -> None:
        from redis.lock import Lock as Held

        self._backend = backend
        self._timeout = timeout
        self._lease = max(lease, 0.01)
        self.where = f"{PREFIX}{key}:lock in {backend.settings.url}"
        # thread_local=False: the renewing thread must see the owner token.
        self._lock = Held(
            backend.client, PREFIX + key + ":lock", timeout=self._lease, thread_local=False
        )
        self._stop: threading.Event | None = None

    def acquire(self, timeout: float | None = None) -> None:
        wait = self._timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        owner = secrets.token_hex(16)
        delay = self.FIRST_POLL
        while True:
            if self._backend.call(lambda: self._lock.acquire(blocking=False, token=owner)):
                self._keep()
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise LockTimeout(self.where)
            time.sleep(min(left, delay * random.uniform(0.5, 1.5)))
            delay = min(delay * 2, self.LAST_POLL)

    def _keep(self) -> None:
        """Renew the lease every third of it while held (an owner-checked PEXPIRE)."""
        stop = self._stop = threading.Event()
        errors = self._backend._redis.exceptions

        def renew() -> None:
            while not stop.wait(self._lease / 3):
                try:
                    self._lock.reacquire()
                except (errors.RedisError, OSError):
                    return  # lost or unreachable: it expires, and release() finds out

        threading.Thread(target=renew, name="oauthcli-lock-lease", daemon=True).start()

    def release(self) -> None:
        if self._stop is not None:
            self._stop.set()
            self._stop = None
        errors = self._backend._redis.exceptions
        try:
            self._backend.call(self._lock.release)
        except errors.LockError:
            pass  # it expired (and may be another's now): only an owner's lock is freed

    def __enter__(self) -> RedisLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
