"""The in-process servers the tests talk to, all on loopback (127.0.0.0/8 only).

- ``LoopbackServer``: an ``http.server`` on 127.0.0.x whose routes a test sets; it records
  every request (``Recorded``). The ``loopback`` and ``loopback2`` fixtures in conftest.py
  start one.
- ``RawServer`` (``serving``) with the handlers ``streaming``, ``dribbling`` and
  ``gzip_bomb``: socket-level servers that stream, dribble and bomb in ways http.server
  cannot.
- ``Dribbler``: a token endpoint that sends its answer a byte (or a line) at a time.
- ``TokenServer`` (``serve``): a token endpoint that counts and can slow its answers.

The end-to-end harness (oidc-provider and the resource server as subprocesses) is
tests/e2e/servers.py.
"""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import struct
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

# -- LoopbackServer: routes set by the test, every request recorded ---------------------

#: A route's answer: (status, headers, body), or "reset" (TCP RST), or "close" (no answer).
Reply = Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    client: tuple[str, int]  # the client's address: the same one means a reused connection


class _QuietServer(ThreadingHTTPServer):
    """A client that goes away mid-connection (a killed or interrupted CLI) is no error."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


@dataclass
class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.x: tests set routes, it records every request."""

    host: str = "127.0.0.1"
    tls: ssl.SSLContext | None = None
    routes: dict[str, Callable[[Recorded], Reply]] = field(default_factory=dict)
    #: What answers a path that has no route: 404 when unset.
    fallback: Callable[[Recorded], Reply] | None = None
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                rec = Recorded(
                    self.command,
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length) if length else b"",
                    self.client_address,
                )
                server.requests.append(rec)
                route = server.routes.get(self.path.split("?")[0]) or server.fallback
                reply = route(rec) if route else (404, {}, b"no route")
                if reply in ("reset", "close"):
                    if reply == "reset":
                        linger = struct.pack("ii", 1, 0)
                        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
                    self.close_connection = True
                    self.connection.close()
                    return
                status, headers, body = reply
                self.send_response_only(status)
                items = headers.items() if isinstance(headers, dict) else headers
                for name, value in items:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _handle  # noqa: N815

            def finish(self) -> None:
                try:
                    super().finish()
                except OSError:
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = _QuietServer((self.host, 0), Handler)
        self.httpd.daemon_threads = True
        if self.tls is not None:
            self.httpd.socket = self.tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def base(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def reply(self, path: str, status: int = 200, body: bytes = b"", **headers: str) -> None:
        """Answer ``path`` always the same way (header names: underscores become dashes)."""
        fixed = {k.replace("_", "-"): v for k, v in headers.items()}
        self.routes[path] = lambda rec: (status, fixed, body)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


# -- socket-level servers that misbehave on purpose -------------------------------------

#: Given the socket and the request head, answers (or misbehaves on) one connection.
Handler = Callable[[socket.socket, bytes], None]


class RawServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(30)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                data = conn.recv(4096)
                if not data:
                    return
                head += data
            self.requests.append(head)
            self.handler(conn, head)
        except OSError:
            pass  # the client went away: what these tests often make it do
        finally:
            conn.close()

    def stopped(self) -> bool:
        return self._stop.is_set()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(5)


@contextmanager
def serving(handler: Handler) -> Iterator[RawServer]:
    server = RawServer(handler)
    try:
        yield server
    finally:
        server.close()


def streaming(size: int, chunk: int = 1 << 20, fill: bytes = b"Z") -> Handler:
    """``size`` bytes of body (Content-Length), written as fast as the client reads."""
    block = memoryview(fill * chunk)

    def handler(conn: socket.socket, head: bytes) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % size
        )
        left = size
        while left > 0:
            n = min(left, chunk)
            conn.sendall(block[:n])
            left -= n

    return handler


def dribbling(*, headers: bool, every: float = 0.5, limit: float = 30.0) -> Handler:
    """One byte every ``every`` seconds: of the headers, or of a body of 1000 bytes."""

    def handler(conn: socket.socket, head: bytes) -> None:
        if headers:
            text = b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"x" * 10000
        else:
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000\r\n\r\n"
            )
            text = b"y" * 1000
        ends = time.monotonic() + limit
        for i in range(len(text)):
            if time.monotonic() > ends:
                return
            conn.sendall(text[i : i + 1])
            time.sleep(every)

    return handler


def gzip_bomb(
    decoded: int, *, layers: int = 1, content_type: bytes = b"application/json"
) -> Handler:
    """A small gzip body that decodes to ``decoded`` bytes (gzip members, repeated)."""
    member_size = 16 << 20
    member = gzip.compress(b"\x00" * member_size, compresslevel=9)
    body = member * max(1, decoded // member_size)
    encoding = b"gzip"
    for _ in range(layers - 1):
        compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
        body = compressor.compress(body) + compressor.flush()
        encoding += b", gzip"

    def handler(conn: socket.socket, head: bytes) -> None:
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Encoding: %s\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n" % (content_type, encoding, len(body))
        )
        conn.sendall(body)

    return handler


# -- a token endpoint that dribbles ------------------------------------------------------


class Dribbler:
    """A token endpoint on 127.0.0.1 that sends its answer one byte every ``pause`` s,
    headers included (``from_headers``) or only the body."""

    def __init__(self, from_headers: bool, pause: float = 0.3, by_line: bool = False) -> None:
        body = json.dumps({"access_token": "at-dribbled-1", "expires_in": 60}).encode()
        # By line, a dozen header lines more: the whole answer takes far longer than the
        # timeout plus any start-up, so only a cut-off ends the run in time.
        pad = "".join(f"X-Slow-{i}: x\r\n" for i in range(12)) if by_line else ""
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{pad}Content-Length: {len(body)}\r\n\r\n"
        self.fast, self.slow = (
            (b"", head.encode() + body) if from_headers else (head.encode(), body)
        )
        self.pause = pause
        # By line: the status line at once, then one header line each pause (what a proxy
        # stalling upstream looks like); else one byte each pause.
        self.pieces = (
            [line + b"\r\n" for line in self.slow.split(b"\r\n")]
            if by_line
            else [self.slow[i : i + 1] for i in range(len(self.slow))]
        )
        self.stop = threading.Event()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    conn.recv(65536)
                    conn.sendall(self.fast)
                    for piece in self.pieces:
                        if self.stop.wait(self.pause):
                            return
                        conn.sendall(piece)
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


# -- a token endpoint that counts ---------------------------------------------------------


class TokenServer(ThreadingHTTPServer):
    """A token endpoint on 127.0.0.1 that counts requests; ``delay`` slows each answer."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _TokenHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"
        self.delay = 0.0
        self.forms: list[dict[str, list[str]]] = []
        self.answer: tuple[int, str, str] | None = None  # status, content type, body
        self._count = threading.Lock()


class _TokenHandler(BaseHTTPRequestHandler):
    server: TokenServer

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        with self.server._count:
            self.server.forms.append(parse_qs(body))
            n = len(self.server.forms)
        time.sleep(self.server.delay)
        if self.server.answer is not None:
            status, ctype, text = self.server.answer
        else:
            status, ctype = 200, "application/json"
            text = json.dumps(
                {
                    "access_token": f"at-{n}-from-server",
                    "token_type": "bearer",
                    "expires_in": 300,
                    "scope": "api.read",
                }
            )
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve() -> Iterator[TokenServer]:
    """Run a TokenServer for the length of a fixture."""
    server = TokenServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
