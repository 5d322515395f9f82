"""Start and drive the end-to-end servers: a real OAuth 2.0 authorization server (panva's
``oidc-provider`` on Node, see ``provider/server.mjs``) and the test API
(``resource_server.py``), both as subprocesses on free 127.0.0.1 ports.

Only the standard library plus ``cryptography``/``joserfc`` (installed with Authlib) and
``filelock`` are used here, so the harness does not depend on oauthcli itself.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

E2E_DIR = Path(__file__).resolve().parent
PROVIDER_DIR = E2E_DIR / "provider"
PROVIDER_SCRIPT = PROVIDER_DIR / "server.mjs"
RESOURCE_SERVER_SCRIPT = E2E_DIR / "resource_server.py"
HOST = "127.0.0.1"

STARTUP_TIMEOUT = 20.0
NPM_CI_TIMEOUT = 300.0
DEFAULT_ACCESS_TOKEN_TTL = 300
SCOPES = ("api.read", "api.write")

# Loopback only: never let an http_proxy from the environment see the test traffic.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class HarnessError(RuntimeError):
    """The e2e servers could not be prepared or started."""


class AddressInUse(HarnessError):
    """A picked port was taken in the meantime: pick others and retry."""


# --------------------------------------------------------------------------------------------
# small HTTP helpers for the test hooks


def http_json(method: str, url: str, body: Any = None, timeout: float = 5.0) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        exc.close()
        raise HarnessError(f"{method} {url} -> {exc.code}: {detail}") from None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------------------------
# node_modules


def _pinned_provider_version() -> str:
    package = json.loads((PROVIDER_DIR / "package.json").read_text())
    return str(package["dependencies"]["oidc-provider"])


def _installed_provider_version() -> str | None:
    installed = PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json"
    try:
        return str(json.loads(installed.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def ensure_node_modules() -> None:
    """Run ``npm ci`` in tests/e2e/provider unless the pinned oidc-provider is installed."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise HarnessError(
                f"`{tool}` is not on PATH: the e2e tests need Node.js >= 20 and npm "
                "(or deselect them with -m 'not e2e')"
            )
    pinned = _pinned_provider_version()
    if _installed_provider_version() == pinned:
        return
    from filelock import FileLock  # a dependency of oauthcli

    lock = Path(tempfile.gettempdir()) / "oauthcli-e2e-npm-ci.lock"
    with FileLock(str(lock), timeout=NPM_CI_TIMEOUT):
        if _installed_provider_version() == pinned:  # done by another process meanwhile
            return
        with tempfile.TemporaryFile(mode="w+") as out:
            try:
                proc = subprocess.run(
                    ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                    cwd=PROVIDER_DIR,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=NPM_CI_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise HarnessError(f"npm ci in {PROVIDER_DIR} timed out") from None
            out.seek(0)
            output = out.read()
        if proc.returncode != 0 or _installed_provider_version() != pinned:
            raise HarnessError(f"npm ci in {PROVIDER_DIR} failed ({proc.returncode}):\n{output}")


# --------------------------------------------------------------------------------------------
# the private_key_jwt client's key pair


@dataclass(frozen=True)
class ClientKey:
    private_key_path: Path
    public_jwks_path: Path
    kid: str


def generate_client_key(directory: Path) -> ClientKey:
    """An RSA key pair for cli-jwt: PKCS#8 PEM (0600) and the public JWKS."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from joserfc.jwk import RSAKey

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    jwk = RSAKey.import_key(pem)
    kid = jwk.thumbprint()
    public = {**jwk.as_dict(private=False), "kid": kid, "alg": "RS256", "use": "sig"}

    directory.mkdir(parents=True, exist_ok=True)
    private_key_path = directory / "cli-jwt-private.pem"
    fd = os.open(private_key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_jwks_path = directory / "cli-jwt-public.jwks.json"
    public_jwks_path.write_text(json.dumps({"keys": [public]}))
    return ClientKey(private_key_path, public_jwks_path, kid)


# --------------------------------------------------------------------------------------------
# subprocesses


class ServerProcess:
    """A server subprocess whose stderr goes to a log file (a pipe nobody reads would block)."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] | None = open(log_path, "ab")  # noqa: SIM115 (closed in stop())
        try:
            self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                args,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
                cwd=str(E2E_DIR),
            )
        except BaseException:
            self._log.close()
            raise

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def check_alive(self) -> None:
        assert self.proc is not None
        code = self.proc.poll()
        if code is None:
            return
        tail = self.log_tail()
        if "EADDRINUSE" in tail or "Address already in use" in tail:
            raise AddressInUse(f"{self.name}: port taken")
        raise HarnessError(f"{self.name} exited with code {code} while starting; log:\n{tail}")

    def wait_ready(self, url: str, deadline: float) -> None:
        while True:
            self.check_alive()
            try:
                with _OPENER.open(url, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise HarnessError(f"{self.name} not ready at {url}; log:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 5.0) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout)
        finally:
            self.proc = None
            if self._log is not None:
                self._log.close()
                self._log = None


# --------------------------------------------------------------------------------------------
# what the fixtures hand out


@dataclass(frozen=True)
class Client:
    """A client registered at the provider (all use grant client_credentials)."""

    client_id: str
    auth_method: str
    client_secret: str | None = None
    private_key_path: Path | None = None  # private_key_jwt only
    kid: str | None = None  # private_key_jwt only
    scope: str = " ".join(SCOPES)

    @property
    def private_key_pem(self) -> str:
        if self.private_key_path is None:
            raise AttributeError(f"{self.client_id} has no private key")
        return self.private_key_path.read_text()


@dataclass
class OidcProvider:
    """The running oidc-provider. URLs are exactly what its discovery document announces."""

    port: int
    resource: str  # the API resource indicator, also the tokens' aud
    client_key: ClientKey
    log_path: Path
    access_token_ttl: int = DEFAULT_ACCESS_TOKEN_TTL
    issuer: str = field(init=False)
    discovery_url: str = field(init=False)
    token_url: str = field(init=False)
    revocation_url: str = field(init=False)
    introspection_url: str = field(init=False)
    jwks_url: str = field(init=False)
    basic: Client = field(init=False)
    post: Client = field(init=False)
    jwt: Client = field(init=False)
    secret_jwt: Client = field(init=False)

    def __post_init__(self) -> None:
        self.issuer = f"http://{HOST}:{self.port}"
        self.discovery_url = f"{self.issuer}/.well-known/openid-configuration"
        self.token_url = f"{self.issuer}/token"
        self.revocation_url = f"{self.issuer}/token/revocation"
        self.introspection_url = f"{self.issuer}/token/introspection"
        self.jwks_url = f"{self.issuer}/jwks"
        # Must match the clients registered in provider/server.mjs.
        self.basic = Client("cli-basic", "client_secret_basic", "b4s1c+s3cr%t:with/odd")
        self.post = Client("cli-post", "client_secret_post", "p0st-s3cret+with%odd:chars/too")
        self.jwt = Client(
            "cli-jwt",
            "private_key_jwt",
            private_key_path=self.client_key.private_key_path,
            kid=self.client_key.kid,
        )
        self.secret_jwt = Client(
            "cli-secret-jwt",
            "client_secret_jwt",
            "hs256-shared-secret-for-cli-secret-jwt-0123456789abcdef",
        )

    @property
    def api_base_url(self) -> str:
        return self.resource

    @property
    def clients(self) -> dict[str, Client]:
        return {c.client_id: c for c in (self.basic, self.post, self.jwt, self.secret_jwt)}

    # -- test hooks ---------------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """{"token"|"revocation"|"introspection": {"total","ok","error"}, "token_history": [...]}"""
        return http_json("GET", f"{self.issuer}/__stats")

    def token_requests(self) -> int:
        """HTTP requests received by the token endpoint (successful or not) since the reset."""
        return int(self.stats()["token"]["total"])

    def revocation_requests(self) -> int:
        return int(self.stats()["revocation"]["total"])

    def token_history(self) -> list[dict[str, Any]]:
        """The last token requests: status, client_id, client_auth, grant_type, scope, resource
        (as sent, None when defaulted), error. Never a secret."""
        return list(self.stats()["token_history"])

    def reset_stats(self) -> None:
        """Zero the counters and history, and cancel pending fail_next_token_requests()."""
        http_json("POST", f"{self.issuer}/__reset")

    def fail_next_token_requests(
        self,
        count: int = 1,
        status: int = 503,
        error: str = "temporarily_unavailable",
        error_description: str = "injected failure (test hook)",
        delay: float = 0.0,
    ) -> None:
        """The next ``count`` token requests wait ``delay`` s, then answer ``status`` with an
        OAuth error body (``status=0``: only the delay, then normal handling). Still counted."""
        http_json(
            "POST",
            f"{self.issuer}/__fail",
            {
                "count": count,
                "status": status,
                "error": error,
                "error_description": error_description,
                "delay_ms": int(delay * 1000),
            },
        )

    def set_access_token_ttl(self, seconds: int) -> None:
        """Lifetime (s) of the access tokens issued from now on."""
        http_json("POST", f"{self.issuer}/__config", {"access_token_ttl": int(seconds)})
        self.access_token_ttl = int(seconds)

    @contextlib.contextmanager
    def short_lived_tokens(self, seconds: int = 3) -> Iterator[None]:
        """``with oidc_provider.short_lived_tokens(3): ...`` then back to the previous TTL."""
        previous = self.access_token_ttl
        self.set_access_token_ttl(seconds)
        try:
            yield
        finally:
            self.set_access_token_ttl(previous)


@dataclass
class ResourceServer:
    """The running test API; tokens must have aud == api_base_url."""

    port: int
    issuer: str
    log_path: Path
    base_url: str = field(init=False)
    api_base_url: str = field(init=False)
    incidents_url: str = field(init=False)
    me_url: str = field(init=False)
    reset_connection_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = f"http://{HOST}:{self.port}"
        self.api_base_url = f"{self.base_url}/api"
        self.incidents_url = f"{self.api_base_url}/incidents"
        self.me_url = f"{self.api_base_url}/me"
        self.reset_connection_url = f"{self.api_base_url}/reset-connection"

    def stats(self) -> dict[str, Any]:
        """{"total", "unauthorized", "forbidden", "by_status", "requests": [...]} of /api/*."""
        return http_json("GET", f"{self.base_url}/__stats")

    def reset_stats(self) -> None:
        """Zero the counters and forget the reject_before_now() cutoff."""
        http_json("POST", f"{self.base_url}/__reset")

    def reject_before_now(self) -> int:
        """Reject, from now on, every token issued before this call (simulated revocation).
        Tokens issued afterwards are accepted. Returns the cutoff in epoch milliseconds."""
        return int(http_json("POST", f"{self.base_url}/__reject_before_now")["reject_before_ms"])


# --------------------------------------------------------------------------------------------
# start / stop both


@contextlib.contextmanager
def run_servers(
    workdir: Path, access_token_ttl: int = DEFAULT_ACCESS_TOKEN_TTL, attempts: int = 3
) -> Iterator[tuple[OidcProvider, ResourceServer]]:
    """Start oidc-provider and the resource server, yield them, stop them."""
    ensure_node_modules()
    workdir.mkdir(parents=True, exist_ok=True)
    client_key = generate_client_key(workdir / "keys")
    for attempt in range(1, attempts + 1):
        try:
            started = _start(workdir, client_key, access_token_ttl)
        except AddressInUse:
            if attempt == attempts:
                raise
            continue
        op, rs, processes = started
        try:
            yield op, rs
        finally:
            for process in processes:
                process.stop()
        return


def _start(
    workdir: Path, client_key: ClientKey, access_token_ttl: int
) -> tuple[OidcProvider, ResourceServer, list[ServerProcess]]:
    op_port = free_port()
    rs_port = free_port()
    while rs_port == op_port:
        rs_port = free_port()
    rs = ResourceServer(rs_port, f"http://{HOST}:{op_port}", workdir / "resource-server.log")
    op = OidcProvider(
        op_port, rs.api_base_url, client_key, workdir / "oidc-provider.log", access_token_ttl
    )
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    op_env = {
        **env,
        "OP_PORT": str(op_port),
        "OP_RESOURCE": op.resource,
        "OP_ACCESS_TOKEN_TTL": str(access_token_ttl),
        "OP_CLI_JWT_JWKS": str(client_key.public_jwks_path),
        "OP_PARENT_PID": str(os.getpid()),
    }
    rs_args = [
        sys.executable,
        str(RESOURCE_SERVER_SCRIPT),
        "--port",
        str(rs_port),
        "--issuer",
        op.issuer,
        "--jwks-url",
        op.jwks_url,
        "--parent-pid",
        str(os.getpid()),
    ]
    processes: list[ServerProcess] = []
    try:
        op_proc = ServerProcess(
            "oidc-provider", ["node", str(PROVIDER_SCRIPT)], op_env, op.log_path
        )
        processes.append(op_proc)
        rs_proc = ServerProcess("resource server", rs_args, env, rs.log_path)
        processes.append(rs_proc)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        op_proc.wait_ready(op.discovery_url, deadline)
        rs_proc.wait_ready(f"{rs.base_url}/__health", deadline)
        discovery = http_json("GET", op.discovery_url)
        for key, expected in (
            ("issuer", op.issuer),
            ("token_endpoint", op.token_url),
            ("revocation_endpoint", op.revocation_url),
            ("introspection_endpoint", op.introspection_url),
            ("jwks_uri", op.jwks_url),
        ):
            if discovery.get(key) != expected:
                raise HarnessError(f"discovery {key} is {discovery.get(key)!r}, not {expected!r}")
    except BaseException:
        for process in processes:
            process.stop()
        raise
    return op, rs, processes
