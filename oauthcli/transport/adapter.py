"""requests' machinery under :class:`~oauthcli.transport.sending.Sender`, without the work it repeats.

requests works out again for every request what does not change in a run (the
connection pool, the CA bundle check) and prepares a request through steps that
do nothing here. Over thousands of calls in a batch that cost showed in each
call's CPU time, so the adapter remembers its pools and requests are prepared
by hand. Which headers, credentials and redirects go out is decided in
:mod:`oauthcli.transport.sending` (by the rules in :mod:`oauthcli.transport.http`), not here.

What each override of requests, urllib3 or http.client pays, or why it is there
(issue 12's audit, ``bench/audit.py``, BENCHMARKS.md "Mechanisms audit"):

* the pool memo (``get_connection_with_tls_context``, ``request_url``,
  ``cert_verify`` of requests' ``HTTPAdapter``): ``--each`` of 1,000 rows took
  1.13× as long without it;
* :func:`prepare`, a ``PreparedRequest`` without the steps that do nothing here:
  1.05-1.12× as long without it;
* ``_Watched`` connections and the :class:`Deadline` watchdog: not speed but the
  ``timeout`` of a whole response (a server dribbling a byte at a time);
* ``_FinalResponse._read_status`` (http.client's private method): interim 1xx
  answers skipped, as curl does, instead of being taken for the answer.

All are exercised through the ``Sender`` by the tests of sending, timeouts and
batches, not by calling them.
"""

from __future__ import annotations

import heapq
import http.client
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection

from oauthcli.errors import UnsendableURL

#: ``OAUTHCLI_BENCH_WITHOUT=pools`` (bench/audit.py only) turns the pool memo off and
#: ``=prepare`` the hand-made PreparedRequest, so that the benchmark can say what they pay.
_WITHOUT = frozenset(os.environ.get("OAUTHCLI_BENCH_WITHOUT", "").split(","))


class PooledAdapter(HTTPAdapter):
    """requests' adapter, remembering the connection pool per origin and TLS settings.

    requests works the pool out again for every request: it parses the URL,
    ``stat()``s the CA bundle and looks the pool up in its manager. In a batch of
    thousands of calls to one origin that was a tenth of each call's CPU time,
    and each ``stat()`` let another thread take the interpreter lock.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pools: dict[tuple[Any, ...], Any] = {}

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: Any,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> Any:
        key = _pool_key(request.url or "", verify, cert, proxies)
        pool = None if "pools" in _WITHOUT else self._pools.get(key)
        if pool is None or pool.pool is None:  # pool.pool is None once the manager closed it
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            # Connections that a Deadline can cut off (see below).
            cls: Any = getattr(pool, "ConnectionCls", None)
            pool.ConnectionCls = _WATCHED.get(cls, cls)  # type: ignore[attr-defined]
            self._pools[key] = pool
        return pool

    def request_url(
        self, request: requests.PreparedRequest, proxies: Mapping[str, str] | None
    ) -> str:
        if not proxies and "pools" not in _WITHOUT:  # what requests works out, parsing less
            return request.path_url
        return super().request_url(request, proxies)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # Once per pool: it checks that the CA bundle exists and sets it on the pool.
        if getattr(conn, "_oauthcli_verified", None) != (verify, cert) or "pools" in _WITHOUT:
            super().cert_verify(conn, url, verify, cert)
            conn._oauthcli_verified = (verify, cert)

    def close(self) -> None:
        self._pools.clear()
        super().close()


def _pool_key(
    url: str, verify: Any, cert: Any, proxies: Mapping[str, str] | None
) -> tuple[Any, ...]:
    proxy_items = tuple(sorted(proxies.items())) if proxies else ()
    return scheme_authority(url), verify, cert, proxy_items


def scheme_authority(url: str) -> str:
    """``http://host:port`` of a prepared URL, as a cache key: cheaper than urlsplit."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0].split('#', 1)[0]}".lower()


def wire_url(url: str) -> str:
    """The URL exactly as :func:`prepare` puts it on the wire, without its fragment.

    requests turns a Unicode host into IDNA, percent-encodes what is unsafe, decodes
    percent-encoded unreserved characters and removes ``.``/``..`` segments; what
    ``--dry-run`` shows is what this returns, so it is what the server receives.
    """
    prepared = requests.PreparedRequest()
    _prepare_url(prepared, url)
    return (prepared.url or url).partition("#")[0]


def _prepare_url(prepared: requests.PreparedRequest, url: str) -> None:
    try:
        prepared.prepare_url(url, None)
    except (requests.exceptions.RequestException, ValueError, UnicodeError) as exc:
        reason = str(exc).removeprefix("Failed to parse: ") or type(exc).__name__
        raise UnsendableURL(reason) from None


def prepare(
    method: str, url: str, headers: CaseInsensitiveDict[str], body: bytes | None
) -> requests.PreparedRequest:
    """What ``requests.Request(...).prepare()`` gives, without the steps that do nothing here.

    The cookie step is left out (the call's own jar is applied in Sender._exchange) and
    so is the Request object: together they were half the cost of preparing. A URL
    requests cannot send to raises :class:`UnsendableURL`.
    """
    if "prepare" in _WITHOUT:
        try:
            return requests.Request(method, url, headers, data=body).prepare()
        except (requests.exceptions.RequestException, ValueError, UnicodeError) as exc:
            raise UnsendableURL(str(exc)) from None
    prepared = requests.PreparedRequest()
    prepared.prepare_method(method)
    _prepare_url(prepared, url)
    prepared.prepare_headers(headers)
    prepared.prepare_body(body, None)
    if "@" in url and "Authorization" not in prepared.headers:
        # requests turns user:password in a URL into Basic auth, over any Authorization
        # header: the configured auth (a bearer token) wins, as a -H does with curl.
        prepared.prepare_auth(None, url)
    return prepared


# -- a deadline for the whole response ------------------------------------------------------
#
# requests' timeout bounds each socket operation, so a server sending one byte every
# half second keeps a call alive for ever. A Deadline bounds the whole exchange: when
# it passes, the watchdog shuts the connection's socket down, and whatever read was
# blocked (the status line, a header, the body) returns at once.


class Deadline:
    """When one request must have its complete response; :meth:`expire` cuts it off."""

    __slots__ = ("at", "expired", "_connection", "_lock", "_done")

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.expired = False
        self._done = False
        self._connection: HTTPConnection | None = None
        self._lock = threading.Lock()
        _watchdog.watch(self)

    def remaining(self) -> float:
        return max(self.at - time.monotonic(), 0.001)

    def attach(self, connection: HTTPConnection) -> None:
        with self._lock:
            self._connection = connection
            if self.expired:
                _shut(connection)

    def expire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.expired = True
            if self._connection is not None:
                _shut(self._connection)

    def finish(self) -> None:
        """The response is complete (or given up): nothing more to cut off."""
        with self._lock:
            self._done = True
            self._connection = None

    @property
    def done(self) -> bool:
        return self._done


def _shut(connection: HTTPConnection) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:  # the plain socket's shutdown, also under TLS: no TLS close to wait for
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        except OSError:
            pass


_current = threading.local()


@contextmanager
def watching(deadline: Deadline) -> Iterator[None]:
    """Connections opened or used by this thread meanwhile are cut off at ``deadline``."""
    _current.deadline = deadline
    try:
        yield
    finally:
        _current.deadline = None


class _FinalResponse(http.client.HTTPResponse):
    """http.client skips only ``100 Continue``; a ``102 Processing`` or ``103 Early Hints``
    would be taken as the answer (exit 0 for a call the server then answered 500, the
    real response left unread). Interim 1xx responses are skipped, as curl does; their
    number is bounded only by the call's Deadline, like the rest of the response."""

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if 101 < status < 200:
                http.client._read_headers(self.fp)  # type: ignore[attr-defined]
                continue
            return version, status, reason


class _Watched:
    """A urllib3 connection that tells the current :class:`Deadline` it is the one in use."""

    response_class: Any = _FinalResponse

    def request(self, *args: Any, **kwargs: Any) -> None:
        deadline: Deadline | None = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.attach(self)  # type: ignore[arg-type]
        super().request(*args, **kwargs)  # type: ignore[misc]

    def getresponse(self) -> Any:
        deadline: Deadline | None = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.attach(self)  # type: ignore[arg-type]  # expired meanwhile: shut now
        return super().getresponse()  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


_WATCHED: dict[type, type] = {
    HTTPConnection: _WatchedHTTPConnection,
    HTTPSConnection: _WatchedHTTPSConnection,
}


#: Deadlines watched between two sweeps of the finished ones out of the whole heap.
_COMPACT_EVERY = 1024


class _Watchdog:
    """One daemon thread expiring deadlines in order; started on first use."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, Deadline]] = []
        self._thread: threading.Thread | None = None
        self._count = 0

    def watch(self, deadline: Deadline) -> None:
        with self._cond:
            self._count += 1
            # Finished deadlines are dropped here, not only when the thread wakes at the
            # first one's time: with one timeout for every request that is a whole
            # timeout away, and a batch would hold each request's deadline that long
            # (30 s of rows: +29 MiB over 100,000 rows).
            heap = self._heap
            while heap and heap[0][2].done:
                heapq.heappop(heap)
            if self._count % _COMPACT_EVERY == 0:  # finished ones behind a long download
                self._heap = heap = [entry for entry in heap if not entry[2].done]
                heapq.heapify(heap)
            sooner = not self._heap or deadline.at < self._heap[0][0]
            heapq.heappush(self._heap, (deadline.at, self._count, deadline))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="oauthcli-deadlines", daemon=True
                )
                self._thread.start()
            elif sooner:
                self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][2].done or self._heap[0][0] <= now):
                    _, _, deadline = heapq.heappop(self._heap)
                    deadline.expire()
                self._cond.wait(self._heap[0][0] - now if self._heap else None)


_watchdog = _Watchdog()


def _new_watchdog() -> None:
    """In a forked batch worker: the parent's watchdog thread was not copied; a new one."""
    global _watchdog
    _watchdog = _Watchdog()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_watchdog)
