"""Loopback servers that misbehave on purpose, written at the socket level.

Each answers every connection with a handler given the socket and the request head;
they stream, dribble and bomb in ways http.server cannot. 127.0.0.1 only.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager

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
