"""Fixtures shared by every test module."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret


@pytest.fixture(autouse=True)
def isolated_oauthcli(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No test reads or writes the real ~: a fresh token cache, no OAUTHCLI_* from outside."""
    for name in list(os.environ):
        if name.startswith("OAUTHCLI_"):
            monkeypatch.delenv(name)
    base = tmp_path_factory.mktemp("home")
    cache_dir = base / "oauthcli-cache"
    monkeypatch.setenv("OAUTHCLI_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "xdg-cache"))
    return cache_dir


@pytest.fixture
def token_profile(tmp_path: Path) -> Callable[..., ResolvedProfile]:
    """Build a ResolvedProfile for token tests: client_credentials at login.test by default."""

    def make(**changes: Any) -> ResolvedProfile:
        base = ResolvedProfile(
            name="acme",
            source=tmp_path / "profiles" / "acme.yaml",
            grant_type="client_credentials",
            token_url="https://login.test/oauth2/token",
            client_id="app",
            client_auth="client_secret_basic",
            client_secret=Secret("s3cr3t-value"),
            scope=("api.read", "api.write"),
            timeout=5.0,
        )
        return replace(base, **changes)

    return make


# -- Real HTTP servers on loopback for the send tests ------------------------

import socket  # noqa: E402
import ssl  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

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
                route = server.routes.get(self.path.split("?")[0])
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


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    server = LoopbackServer("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def loopback2() -> Iterator[LoopbackServer]:
    """A second origin (another host on loopback) for cross-origin redirects."""
    server = LoopbackServer("127.0.0.2")
    yield server
    server.close()
