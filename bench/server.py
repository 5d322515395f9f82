"""A loopback token endpoint and API for the benchmarks, fast enough not to be measured.

Run as its own process (``python bench/server.py PORT_FILE``) so its CPU does not
compete with the timing code's GIL. It is a bare asyncio protocol, not
``http.server``: one event loop, keep-alive, no thread per connection, a few
microseconds per request, so the clients are what the benchmarks time.

Routes:

* ``POST /token``: a client_credentials answer (``expires_in`` 3600); counted. A token
  request carrying a ``DPoP`` header gets ``token_type: DPoP`` (the proof is not verified:
  the benchmarks time the client's signing, not a server's checks).
* ``GET /api/...``: ``{"ok": true, "bearer": B, "n": N}``; counted, and those
  that carried an ``Authorization: Bearer`` header counted apart, as are those with
  ``Authorization: DPoP`` and a ``DPoP`` proof header (``dpop``). Calls without
  one are answered too, so that the floor can be exactly
  ``requests.get(URL)``.
* ``GET /_stats``: ``{"token": T, "api": A, "bearer": B, "dpop": D}``; ``POST /_reset``
  zeroes them.

The server writes its port to PORT_FILE once it listens and stops on SIGTERM.
``--delay MS`` answers every ``/api/`` call that many milliseconds late (a timer on the
event loop, not a sleep: thousands of calls can wait at once), as a remote API would.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys

COUNTS = {"token": 0, "api": 0, "bearer": 0, "dpop": 0}
DELAY = 0.0  # seconds before an /api/ call is answered (--delay)
TOKEN = json.dumps(
    {"access_token": "bench-token-0123456789", "token_type": "Bearer", "expires_in": 3600}
).encode()
DPOP_TOKEN = json.dumps(
    {"access_token": "bench-dpop-token-0123456789", "token_type": "DPoP", "expires_in": 3600}
).encode()


def reply(status: str, body: bytes, keep_alive: bool) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + body


def answer(method: str, path: str, headers: dict[str, str]) -> tuple[str, bytes]:
    if path == "/token" and method == "POST":
        COUNTS["token"] += 1
        return "200 OK", DPOP_TOKEN if headers.get("dpop") else TOKEN
    if path.startswith("/api/"):
        COUNTS["api"] += 1
        bearer = headers.get("authorization", "").startswith("Bearer ")
        COUNTS["bearer"] += bearer
        COUNTS["dpop"] += bool(
            headers.get("authorization", "").startswith("DPoP ") and headers.get("dpop")
        )
        return "200 OK", b'{"ok": true, "bearer": %s, "n": %d}' % (
            b"true" if bearer else b"false",
            COUNTS["api"],
        )
    if path == "/_stats":
        return "200 OK", json.dumps(COUNTS).encode()
    if path == "/_reset" and method == "POST":
        COUNTS.update(token=0, api=0, bearer=0, dpop=0)
        return "200 OK", b"{}"
    return "404 Not Found", b'{"error": "not found"}'


class Http(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            method, path, version = (head[0].split(" ") + ["", "", ""])[:3]
            keep_alive = headers.get("connection", "").lower() != "close" and version != "HTTP/1.0"
            status, body = answer(method, path.split("?")[0], headers)
            data = reply(status, body, keep_alive)
            if DELAY and path.startswith("/api/"):
                # One request at a time per connection (requests does not pipeline).
                asyncio.get_running_loop().call_later(DELAY, self.respond, data, keep_alive)
                if not keep_alive:
                    return
                continue
            self.respond(data, keep_alive)
            if not keep_alive:
                return

    def respond(self, data: bytes, keep_alive: bool) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(data)
        if not keep_alive:
            self.transport.close()


async def serve(port_file: str) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Http, "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    with open(port_file + ".tmp", "w") as f:
        f.write(str(port))
    os.replace(port_file + ".tmp", port_file)
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    loop.add_signal_handler(signal.SIGINT, stop.set_result, None)
    async with server:
        await stop


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 3 and args[1] == "--delay":
        DELAY = float(args[2]) / 1000
    asyncio.run(serve(args[0]))
