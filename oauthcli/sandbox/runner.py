"""Running the sandbox: the stdlib HTTP server, :class:`Sandbox` and :func:`serve`.

One ``ThreadingHTTPServer`` on a loopback address serves the authorization
server and the API together, a thread per connection (HTTP/1.1 keep-alive).
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_address
from types import FrameType, TracebackType
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

from .app import Application
from .clients import CLIENTS
from .wire import Request, Response, sn_error

DEFAULT_PORT = 8976
_MAX_BODY = 10 * 1024 * 1024


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024  # a burst of connections must queue, not be refused
    app: Application

    def __init__(self, address: tuple[str, int], log: TextIO | None) -> None:
        self.log = log
        self._log_lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End idle keep-alive connections so their threads can be joined."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def write_log(self, line: str) -> None:
        if self.log is None:
            return
        with self._log_lock:
            self.log.write(line + "\n")
            self.log.flush()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "oauthcli-sandbox"
    timeout = 30  # idle keep-alive connections end after this many seconds
    server: _Server

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
                if sum(map(len, chunks)) > _MAX_BODY:
                    raise ValueError("body too large")
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > _MAX_BODY:
            raise ValueError("bad Content-Length")
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        started = time.perf_counter()
        split = urlsplit(self.path)
        path = unquote(split.path)
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            response = sn_error(400, "Bad request", "The request body could not be read")
        else:
            request = Request(
                method=self.command,
                target=self.path,
                path=path,
                query=split.query,
                headers=self.headers,
                body=body,
                url=self.server.app.issuer + self.path,
            )
            try:
                response = self.server.app.dispatch(request)
            except Exception as exc:  # a sandbox bug must not kill the connection thread
                response = sn_error(500, "Sandbox error", type(exc).__name__)
        self._send(response)
        elapsed = (time.perf_counter() - started) * 1000
        stamp = time.strftime("%H:%M:%S")
        client = _printable(response.client_id or "-")
        status = response.status
        line = (
            f"[{stamp}] {self.command} {_printable(path)} {status} client={client} {elapsed:.0f}ms"
        )
        self.server.write_log(line)

    def _send(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            for name, value in response.headers:
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def version_string(self) -> str:
        return self.server_version

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle

    def log_message(self, format: str, *args: Any) -> None:
        """Silence http.server's own stderr lines: ``_handle`` logs each request."""


def _printable(text: str, limit: int = 200) -> str:
    """``text`` safe for a one-line log entry: no control characters, bounded length."""
    return "".join(c if c.isprintable() else "?" for c in text[:limit])


def _check_host(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the sandbox only listens on loopback addresses, not {host!r}")


class Sandbox:
    """The sandbox in a background thread: ``with Sandbox(port=0) as sandbox: ...``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        token_ttl: int = 300,
        log: TextIO | None = None,
    ) -> None:
        _check_host(host)
        if token_ttl < 1:
            raise ValueError("token_ttl must be at least one second")
        self.host = host
        self.token_ttl = token_ttl
        self.log = log
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one the OS chose, once started with port 0)."""
        return int(self._server.server_address[1]) if self._server else self._port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def app(self) -> Application:
        if self._server is None:
            raise RuntimeError("the sandbox is not running")
        return self._server.app

    def start(self) -> Sandbox:
        """Listen and serve in a daemon thread; returns once connections are accepted."""
        if self._server is not None:
            raise RuntimeError("the sandbox is already running")
        server = _Server((self.host, self._port), self.log)
        try:
            server.app = Application(
                f"http://{self.host}:{server.server_address[1]}", self.token_ttl
            )
        except BaseException:
            server.server_close()
            raise
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"oauthcli-sandbox-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every connection and join the threads."""
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if thread is not None:
            thread.join()
        self._server = self._thread = None

    def stats(self) -> dict[str, Any]:
        """Counts of token, revocation and API requests since start-up."""
        return self.app.store.stats()

    def urls(self) -> dict[str, str]:
        return self.app.urls()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _banner(sandbox: Sandbox, out: TextIO) -> None:
    out.write(f"oauthcli sandbox running on {sandbox.url} (tokens last {sandbox.token_ttl} s)\n")
    for name, url in sandbox.urls().items():
        out.write(f"  {name:<14} {url}\n")
    clients = ", ".join(f"{c.client_id} ({c.auth_method})" for c in CLIENTS.values())
    out.write(f"  {'clients':<14} {clients}\n")
    env = "" if sandbox.port == DEFAULT_PORT else f"OAUTHCLI_SANDBOX_URL={sandbox.url} "
    out.write(
        f"hint: from the repository folder, in another terminal: "
        f"{env}oauthcli send incidents.list   (Ctrl-C stops the sandbox)\n"
    )
    out.flush()


def serve(host: str, port: int, token_ttl: int, out: TextIO, err: TextIO) -> int:
    """Run the sandbox in the foreground until Ctrl-C or SIGTERM; return the exit code."""
    try:
        sandbox = Sandbox(host, port, token_ttl, log=err).start()
    except ValueError as exc:
        err.write(f"error: {exc}\n")
        return 2
    except OSError as exc:
        err.write(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}\n")
        return 2
    stopping = threading.Event()
    previous: Any = None
    in_main = threading.current_thread() is threading.main_thread()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    if in_main:
        previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        _banner(sandbox, out)
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
        sandbox.stop()
        err.write("sandbox stopped\n")
        err.flush()
    return 0
