"""A real redis-server (Debian's package, ``scripts/redis.sh``) for the Redis cache's tests.

``RedisServer.start()`` runs ``redis-server`` on a free 127.0.0.1 port (never 6379, which
Debian's own service may hold) with persistence off, optionally with ``--requirepass``,
waits for PING and is stopped by its PID (``stop``, or ``kill`` for a SIGKILL). The
``redis_server`` fixture of tests/test_rediscache.py hands one out per test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def missing_reason() -> str | None:
    """Why no redis-server can run here, or None (in CI the caller fails instead)."""
    if not Path(REDIS_SERVER).exists():
        return "redis-server is not installed (scripts/redis.sh, make redis: apt-get install redis-server)"
    return None


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port != 6379:
            return port


@dataclass
class RedisServer:
    folder: Path
    password: str | None = None
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.folder.mkdir(parents=True, exist_ok=True)
        args = [
            REDIS_SERVER,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.folder),
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.folder / "redis.log"),
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                log = (self.folder / "redis.log").read_text(errors="replace")[-500:]
                self.stop()
                raise RuntimeError(f"redis-server did not start on {self.port}: {log}")
            time.sleep(0.02)
        return self

    def ping(self) -> bool:
        """Whether it answers PING (with AUTH when it has a password)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                if self.password:
                    sock.sendall(f"AUTH {self.password}\r\n".encode())
                    if not sock.recv(64).startswith(b"+OK"):
                        return False
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def client(self) -> redis.Redis:
        """A client of its own, to look at what oauthcli stored."""
        return redis.Redis(host="127.0.0.1", port=self.port, password=self.password)

    def kill(self) -> None:
        """SIGKILL: Redis gone mid-run, as when its machine dies."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signum)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(10)
