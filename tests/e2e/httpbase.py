"""What the e2e test servers written in Python share: a JSON handler base and a serve loop.

``resource_server.py``, ``dpop_server.py`` and ``fake_ci.py`` each run as a subprocess
(``python -m tests.e2e.<name>`` from the repository root) on 127.0.0.1 only: one log line per
request on stderr (never a query string, a header or a token), JSON answers, shut down on
SIGTERM/SIGINT or when the test process that started them is gone.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOST = "127.0.0.1"
MAX_BODY = 1024 * 1024


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False  # a taken port must fail loudly, the fixture then retries


class JsonHandler(BaseHTTPRequestHandler):
    """HTTP/1.1, JSON answers, its own log line; each method handler calls dispatch()."""

    protocol_version = "HTTP/1.1"
    sys_version = ""
    content_type = "application/json"
    cache_control: str | None = "no-store"
    max_body = MAX_BODY

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        pass  # replaced by log_line(): never a query string, a header, a token

    def log_line(self, status: int, extra: str = "") -> None:
        path = self.path.split("?", 1)[0]
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        sys.stderr.write(f"{stamp} {self.command} {path} {status}{extra}\n")
        sys.stderr.flush()

    def read_body(self) -> bytes:
        """The request body; empty (and the connection closed after) when over max_body."""
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.max_body:
            self.close_connection = True
            return b""
        return self.rfile.read(length) if length > 0 else b""

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", self.content_type)
        self.send_header("Content-Length", str(len(data)))
        if self.cache_control:
            self.send_header("Cache-Control", self.cache_control)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def dispatch(self) -> None:
        raise NotImplementedError

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        self.dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self.dispatch()


def watch_parent(pid: int, server: Server, name: str = "e2e-server") -> None:
    """Shut down when the test process that started us is gone (no orphan after a crash)."""
    while True:
        time.sleep(1)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.stderr.write(f"{name}: parent {pid} gone, shutting down\n")
            server.shutdown()
            return
        except PermissionError:
            pass


def serve(
    name: str,
    port: int,
    handler: type[BaseHTTPRequestHandler],
    parent_pid: int | None,
    banner: str,
) -> int:
    """Listen on HOST:port until a signal or the parent's end; 2 when the port is taken."""
    try:
        server = Server((HOST, port), handler)
    except OSError as exc:
        sys.stderr.write(f"{name}: cannot listen on {HOST}:{port}: {exc}\n")
        return 2

    def stop(signum: int, frame: object) -> None:
        sys.stderr.write(f"{name}: signal {signum}, shutting down\n")
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if parent_pid:
        threading.Thread(target=watch_parent, args=(parent_pid, server, name), daemon=True).start()
    sys.stderr.write(f"{name}: {banner}\n")
    sys.stderr.flush()
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
    return 0
