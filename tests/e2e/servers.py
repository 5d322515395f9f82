"""Start and drive the end-to-end servers: a real OAuth 2.0 authorization server (panva's
``oidc-provider`` on Node, see ``provider/server.mjs``), the test API (``resource_server.py``),
the DPoP-verifying API (``dpop_server.py``) and the fake GitHub Actions ID-token endpoint of
the "CI issuer" (``fake_ci.py``), all as subprocesses on free 127.0.0.1 ports; and the headless
browser (``browser/``) that signs in at the provider. See README.md in this folder.

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
REPO_ROOT = E2E_DIR.parent.parent
BROWSER_DIR = E2E_DIR / "browser"
BROWSER_WRAPPER = BROWSER_DIR / "open-url"
CHROMIUM = Path("/usr/bin/chromium")
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


def _pinned_version(folder: Path, package: str) -> str:
    manifest = json.loads((folder / "package.json").read_text())
    return str(manifest["dependencies"][package])


def _installed_version(folder: Path, package: str) -> str | None:
    installed = folder / "node_modules" / package / "package.json"
    try:
        return str(json.loads(installed.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def _pinned_provider_version() -> str:
    return _pinned_version(PROVIDER_DIR, "oidc-provider")


def _installed_provider_version() -> str | None:
    return _installed_version(PROVIDER_DIR, "oidc-provider")


def ensure_node_modules(folder: Path = PROVIDER_DIR, package: str = "oidc-provider") -> None:
    """Run ``npm ci`` in ``folder`` unless its pinned ``package`` is installed."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise HarnessError(
                f"`{tool}` is not on PATH: the e2e tests need Node.js >= 20 and npm "
                "(or deselect them with -m 'not e2e')"
            )
    pinned = _pinned_version(folder, package)
    if _installed_version(folder, package) == pinned:
        return
    from filelock import FileLock  # a dependency of oauthcli

    lock = Path(tempfile.gettempdir()) / f"oauthcli-e2e-npm-ci-{folder.name}.lock"
    with FileLock(str(lock), timeout=NPM_CI_TIMEOUT):
        if _installed_version(folder, package) == pinned:  # done by another process meanwhile
            return
        # playwright-core downloads nothing at install; this makes sure of it
        env = {**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"}
        with tempfile.TemporaryFile(mode="w+") as out:
            try:
                proc = subprocess.run(
                    ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                    cwd=folder,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=NPM_CI_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise HarnessError(f"npm ci in {folder} timed out") from None
            out.seek(0)
            output = out.read()
        if proc.returncode != 0 or _installed_version(folder, package) != pinned:
            raise HarnessError(f"npm ci in {folder} failed ({proc.returncode}):\n{output}")


# --------------------------------------------------------------------------------------------
# the private_key_jwt client's key pair


@dataclass(frozen=True)
class ClientKey:
    private_key_path: Path
    public_jwks_path: Path
    kid: str


def _rsa_key(kid_prefix: str = "") -> tuple[bytes, str, dict[str, Any]]:
    """A new RSA key: its PKCS#8 PEM, its kid (prefix + RFC 7638 thumbprint) and public JWKS."""
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
    thumbprint = jwk.thumbprint()
    kid = f"{kid_prefix}{thumbprint[:16]}" if kid_prefix else thumbprint
    public = {**jwk.as_dict(private=False), "kid": kid, "alg": "RS256", "use": "sig"}
    return pem, kid, {"keys": [public]}


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def generate_client_key(directory: Path) -> ClientKey:
    """An RSA key pair for cli-jwt: PKCS#8 PEM (0600) and the public JWKS."""
    pem, kid, jwks = _rsa_key()
    directory.mkdir(parents=True, exist_ok=True)
    private_key_path = directory / "cli-jwt-private.pem"
    _write_private(private_key_path, pem)
    public_jwks_path = directory / "cli-jwt-public.jwks.json"
    public_jwks_path.write_text(json.dumps(jwks))
    return ClientKey(private_key_path, public_jwks_path, kid)


@dataclass(frozen=True)
class CiIssuerKey:
    """The fake CI issuer's signing key (the provider trusts its public JWKS for cli-ci)."""

    private_key_path: Path
    public_jwks_path: Path
    kid: str
    request_token_path: Path  # what GitHub Actions puts in ACTIONS_ID_TOKEN_REQUEST_TOKEN


def generate_ci_issuer_key(directory: Path) -> CiIssuerKey:
    import secrets

    pem, kid, jwks = _rsa_key("ci-")
    directory.mkdir(parents=True, exist_ok=True)
    private_key_path = directory / "ci-issuer-private.pem"
    request_token_path = directory / "ci-request-token"
    _write_private(private_key_path, pem)
    _write_private(request_token_path, f"ghs_e2e{secrets.token_urlsafe(24)}".encode())
    public_jwks_path = directory / "ci-issuer-public.jwks.json"
    public_jwks_path.write_text(json.dumps(jwks))
    return CiIssuerKey(private_key_path, public_jwks_path, kid, request_token_path)


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
    """A client registered at the provider (see provider/server.mjs for its grants)."""

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
    dpop_resource: str | None = None  # the DPoP API's resource indicator (cli-dpop's default)
    ci_key: CiIssuerKey | None = None
    oauth_metadata_url: str = field(
        init=False
    )  # RFC 8414 (served after configure(oauth_metadata=True))
    authorization_url: str = field(init=False)
    device_authorization_url: str = field(init=False)
    dpop: Client = field(init=False)  # client_credentials, DPoP-bound tokens only
    exchange: Client = field(init=False)  # token exchange (and client_credentials)
    ci: Client = field(init=False)  # private_key_jwt by the CI issuer's assertion
    device: Client = field(init=False)  # public, device_code + refresh_token
    authcode: Client = field(init=False)  # public native, authorization_code + refresh_token
    authcode_secret: Client = field(init=False)  # the same, client_secret_basic

    #: The redirect URI the authorization_code clients have registered; any port is accepted.
    REDIRECT_PATH = "/callback"
    #: Any login name signs in (dev interactions); the browser uses this one by default.
    USER = "alice"
    INTERACTIVE_SCOPE = "openid offline_access " + " ".join(SCOPES)

    def __post_init__(self) -> None:
        self.issuer = f"http://{HOST}:{self.port}"
        self.discovery_url = f"{self.issuer}/.well-known/openid-configuration"
        self.oauth_metadata_url = f"{self.issuer}/.well-known/oauth-authorization-server"
        self.token_url = f"{self.issuer}/token"
        self.revocation_url = f"{self.issuer}/token/revocation"
        self.introspection_url = f"{self.issuer}/token/introspection"
        self.jwks_url = f"{self.issuer}/jwks"
        self.authorization_url = f"{self.issuer}/auth"
        self.device_authorization_url = f"{self.issuer}/device/auth"
        interactive = self.INTERACTIVE_SCOPE
        self.dpop = Client("cli-dpop", "client_secret_basic", "dp0p-s3cret+with%odd:chars/too")
        self.exchange = Client(
            "cli-exchange", "client_secret_basic", "exch4nge-s3cret+with%odd:chars/too"
        )
        self.ci = Client("cli-ci", "private_key_jwt")
        self.device = Client("cli-device", "none", scope=interactive)
        self.authcode = Client("cli-authcode", "none", scope=interactive)
        self.authcode_secret = Client(
            "cli-authcode-secret",
            "client_secret_basic",
            "c0de-s3cret+with%odd:chars/too",
            scope=interactive,
        )
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
        """The client_credentials clients of the four client auth methods."""
        return {c.client_id: c for c in (self.basic, self.post, self.jwt, self.secret_jwt)}

    @property
    def all_clients(self) -> dict[str, Client]:
        every = (
            *self.clients.values(),
            self.dpop,
            self.exchange,
            self.ci,
            self.device,
            self.authcode,
            self.authcode_secret,
        )
        return {c.client_id: c for c in every}

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def grants_served(self) -> list[dict[str, str]]:
        """Every ``oidc-provider-e2e: grant ...`` line of the provider's log (all since start,
        not reset by reset_stats), parsed: grant_type, client, status, auth, token_type,
        dpop_proof, error (and audience, actor for token exchange)."""
        served = []
        for line in self.log_text().splitlines():
            if line.startswith("oidc-provider-e2e: grant "):
                fields = line.split(" ", 2)[2].split()
                served.append(dict(f.split("=", 1) for f in fields if "=" in f))
        return served

    def served(self, grant_type: str, client: str, since: int = 0) -> list[dict[str, str]]:
        """grants_served()[since:] of one grant type and client."""
        return [
            g
            for g in self.grants_served()[since:]
            if g["grant_type"] == grant_type and g["client"] == client
        ]

    def configure(self, **settings: Any) -> dict[str, Any]:
        """POST /__config: device_code_ttl, device_interval, dpop_require_nonce, ignore_dpop,
        structured_token_errors, oauth_metadata (access_token_ttl: use set_access_token_ttl).
        reset_stats() puts them back to their defaults."""
        if "access_token_ttl" in settings:
            self.access_token_ttl = int(settings["access_token_ttl"])
        return dict(http_json("POST", f"{self.issuer}/__config", settings))

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
        """Zero the counters and history, cancel pending fail_next_token_requests(), and put
        the configure() settings back to their defaults (the access token TTL stays)."""
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
        self.configure(access_token_ttl=int(seconds))

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


@dataclass
class DpopServer:
    """The running DPoP-verifying API; tokens must be DPoP-bound with aud == api_base_url."""

    port: int
    log_path: Path
    base_url: str = field(init=False)
    api_base_url: str = field(init=False)
    incidents_url: str = field(init=False)
    me_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = f"http://{HOST}:{self.port}"
        self.api_base_url = f"{self.base_url}/api"
        self.incidents_url = f"{self.api_base_url}/incidents"
        self.me_url = f"{self.api_base_url}/me"

    def stats(self) -> dict[str, Any]:
        """{"total", "accepted", "challenged", "unauthorized", "forbidden", "by_status",
        "by_reason", "requests": [{method, path, status, reason, scheme, proofs, jkt, cnf_jkt,
        client_id, proof: {htm, htu, iat, jti, ath, nonce, typ, alg}}], "settings"}"""
        return dict(http_json("GET", f"{self.base_url}/__stats"))

    def reset(self) -> None:
        """Zero the counters, forget every nonce and jti, default settings."""
        http_json("POST", f"{self.base_url}/__reset")

    def configure(self, **settings: Any) -> dict[str, Any]:
        """require_nonce, nonce_loop, strict_htu, iat_window (see dpop_server.py)."""
        return dict(http_json("POST", f"{self.base_url}/__config", settings))

    def rotate_nonce(self) -> None:
        """Every key's next proof is challenged again (use_dpop_nonce with a new nonce)."""
        http_json("POST", f"{self.base_url}/__rotate_nonce")


@dataclass
class FakeCi:
    """The fake GitHub Actions ID-token endpoint; its tokens authenticate client cli-ci."""

    port: int
    key: CiIssuerKey
    subject: str
    log_path: Path
    base_url: str = field(init=False)
    #: what ACTIONS_ID_TOKEN_REQUEST_URL holds (callers append ``&audience=...``)
    request_url: str = field(init=False)

    def __post_init__(self) -> None:
        self.base_url = f"http://{HOST}:{self.port}"
        self.request_url = f"{self.base_url}/_apis/idtoken?api-version=2.0"

    @property
    def request_token(self) -> str:
        """What ACTIONS_ID_TOKEN_REQUEST_TOKEN holds (a secret: never to be printed)."""
        return self.key.request_token_path.read_text().strip()

    def actions_env(self) -> dict[str, str]:
        """ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN of a CI job."""
        return {
            "ACTIONS_ID_TOKEN_REQUEST_URL": self.request_url,
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.request_token,
        }

    def issue(self, audience: str, lifetime: int = 300, **claims: Any) -> str:
        """An assertion as the CI issuer signs it (iss = sub = cli-ci), made here without HTTP:
        what a Kubernetes projected token file or AZURE_FEDERATED_TOKEN_FILE would hold."""
        from joserfc import jwt
        from joserfc.jwk import RSAKey

        from .fake_ci import github_claims

        body = github_claims(self.subject, audience)
        body["exp"] = body["iat"] + lifetime
        body.update(claims)
        key = RSAKey.import_key(self.key.private_key_path.read_bytes())
        return jwt.encode({"alg": "RS256", "typ": "JWT", "kid": self.key.kid}, body, key)

    def stats(self) -> dict[str, Any]:
        """{"total", "ok", "unauthorized", "requests": [{at, audience, api_version,
        authorized, status}]}"""
        return dict(http_json("GET", f"{self.base_url}/__stats"))

    def reset(self) -> None:
        http_json("POST", f"{self.base_url}/__reset")

    def fail_next(self, count: int = 1, status: int = 500, body: Any = None) -> None:
        """The next ``count`` authorized requests answer ``status`` with ``body`` (JSON)."""
        payload: dict[str, Any] = {"count": count, "status": status}
        if body is not None:
            payload["body"] = body
        http_json("POST", f"{self.base_url}/__fail", payload)


@dataclass
class E2eServers:
    op: OidcProvider
    rs: ResourceServer
    dpop: DpopServer
    ci: FakeCi


# --------------------------------------------------------------------------------------------
# the browser


def chromium_missing_reason() -> str | None:
    """Why the browser tests cannot run here, or None. In CI (``CI`` set) nothing is missing:
    the caller fails instead of skipping."""
    if not CHROMIUM.exists():
        return (
            f"{CHROMIUM} is not installed (apt-get install -y --no-install-recommends chromium;"
            " .ci/run does it)"
        )
    if shutil.which("node") is None:
        return "`node` is not on PATH"
    return None


def open_with_webbrowser(url: str, env: dict[str, str]) -> None:
    """What oauthcli does (and the person on the other device): Python's webbrowser.open(url),
    with BROWSER (see Browser.env()) in the environment."""
    code = "import sys, webbrowser; sys.exit(0 if webbrowser.open(sys.argv[1]) else 1)"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("E2E_BROWSER")}
    done = subprocess.run(
        [sys.executable, "-c", code, url],
        env={**clean, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert done.returncode == 0, done.stderr


class Browser:
    """The headless browser as Python's webbrowser meets it: ``env()`` gives ``BROWSER`` (the
    open-url wrapper) and the E2E_BROWSER_* settings for a process that opens a sign-in URL;
    ``events()`` is what drive.mjs logged; ``stop()`` ends any run still going, by its PID."""

    def __init__(self, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = workdir / "browser.jsonl"
        self.output_path = workdir / "browser-output.log"
        self.pid_dir = workdir / "browser-pids"
        self.pid_dir.mkdir(exist_ok=True)

    def env(
        self,
        mode: str = "approve",
        login: str = OidcProvider.USER,
        user_code: str | None = None,
        timeout: float = 30.0,
    ) -> dict[str, str]:
        """mode: approve | deny | open (see browser/drive.mjs)."""
        env = {
            "BROWSER": str(BROWSER_WRAPPER),
            "E2E_BROWSER_MODE": mode,
            "E2E_BROWSER_LOGIN": login,
            "E2E_BROWSER_LOG": str(self.log_path),
            "E2E_BROWSER_OUTPUT": str(self.output_path),
            "E2E_BROWSER_PID_DIR": str(self.pid_dir),
            "E2E_BROWSER_TIMEOUT_MS": str(int(timeout * 1000)),
            "E2E_CHROMIUM": str(CHROMIUM),
        }
        if user_code is not None:
            env["E2E_BROWSER_USER_CODE"] = user_code
        return env

    def events(self) -> list[dict[str, Any]]:
        try:
            lines = self.log_path.read_text().splitlines()
        except OSError:
            return []
        return [json.loads(line) for line in lines if line.strip()]

    def results(self) -> list[dict[str, Any]]:
        """The ``done`` event of every finished run: outcome (callback, device_success,
        device_denied, opened, stuck, error), and for a callback: url (query names only),
        code, state (present or not), error."""
        return [e for e in self.events() if e.get("event") == "done"]

    def running(self) -> list[int]:
        return [int(p.name) for p in self.pid_dir.iterdir() if p.name.isdigit()]

    def wait_done(self, count: int = 1, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Wait until ``count`` runs have finished (bounded), return their results."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.results()
            if len(done) >= count and not self.running():
                return done
            time.sleep(0.1)
        raise HarnessError(
            f"the browser did not finish {count} run(s) within {timeout} s; events: {self.events()}"
        )

    def stop(self) -> None:
        """Stop every run still going (its process group: node and chromium), by PID."""
        import signal

        for pid in self.running():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            (self.pid_dir / str(pid)).unlink(missing_ok=True)


# --------------------------------------------------------------------------------------------
# start / stop them all


@contextlib.contextmanager
def run_servers(
    workdir: Path, access_token_ttl: int = DEFAULT_ACCESS_TOKEN_TTL, attempts: int = 3
) -> Iterator[E2eServers]:
    """Start oidc-provider, the resource server, the DPoP API and the fake CI endpoint, yield
    them, stop them (by PID)."""
    ensure_node_modules()
    workdir.mkdir(parents=True, exist_ok=True)
    client_key = generate_client_key(workdir / "keys")
    ci_key = generate_ci_issuer_key(workdir / "keys")
    for attempt in range(1, attempts + 1):
        try:
            servers, processes = _start(workdir, client_key, ci_key, access_token_ttl)
        except AddressInUse:
            if attempt == attempts:
                raise
            continue
        try:
            yield servers
        finally:
            for process in processes:
                process.stop()
        return


def _free_ports(count: int) -> list[int]:
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


def _start(
    workdir: Path, client_key: ClientKey, ci_key: CiIssuerKey, access_token_ttl: int
) -> tuple[E2eServers, list[ServerProcess]]:
    op_port, rs_port, dpop_port, ci_port = _free_ports(4)
    rs = ResourceServer(rs_port, f"http://{HOST}:{op_port}", workdir / "resource-server.log")
    dpop = DpopServer(dpop_port, workdir / "dpop-server.log")
    ci = FakeCi(ci_port, ci_key, "cli-ci", workdir / "fake-ci.log")
    op = OidcProvider(
        op_port,
        rs.api_base_url,
        client_key,
        workdir / "oidc-provider.log",
        access_token_ttl,
        dpop_resource=dpop.api_base_url,
        ci_key=ci_key,
    )
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    parent = str(os.getpid())
    op_env = {
        **env,
        "OP_PORT": str(op_port),
        "OP_RESOURCE": op.resource,
        "OP_DPOP_RESOURCE": dpop.api_base_url,
        "OP_ACCESS_TOKEN_TTL": str(access_token_ttl),
        "OP_CLI_JWT_JWKS": str(client_key.public_jwks_path),
        "OP_CI_JWKS": str(ci_key.public_jwks_path),
        "OP_PARENT_PID": parent,
    }
    verify_args = ["--issuer", op.issuer, "--jwks-url", op.jwks_url, "--parent-pid", parent]
    # The Python servers share tests/e2e/httpbase.py: each runs as a module of the tests package.
    py_env = {**env, "PYTHONPATH": str(REPO_ROOT)}
    rs_args = [sys.executable, "-m", "tests.e2e.resource_server", "--port", str(rs_port)]
    dpop_args = [sys.executable, "-m", "tests.e2e.dpop_server", "--port", str(dpop_port)]
    ci_args = [
        sys.executable,
        "-m",
        "tests.e2e.fake_ci",
        "--port",
        str(ci_port),
        "--key-file",
        str(ci_key.private_key_path),
        "--kid",
        ci_key.kid,
        "--request-token-file",
        str(ci_key.request_token_path),
        "--subject",
        ci.subject,
        "--parent-pid",
        parent,
    ]
    processes: list[ServerProcess] = []
    try:
        op_proc = ServerProcess(
            "oidc-provider", ["node", str(PROVIDER_SCRIPT)], op_env, op.log_path
        )
        processes.append(op_proc)
        rs_proc = ServerProcess("resource server", [*rs_args, *verify_args], py_env, rs.log_path)
        processes.append(rs_proc)
        dpop_proc = ServerProcess(
            "DPoP resource server", [*dpop_args, *verify_args], py_env, dpop.log_path
        )
        processes.append(dpop_proc)
        ci_proc = ServerProcess("fake CI endpoint", ci_args, py_env, ci.log_path)
        processes.append(ci_proc)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        op_proc.wait_ready(op.discovery_url, deadline)
        rs_proc.wait_ready(f"{rs.base_url}/__health", deadline)
        dpop_proc.wait_ready(f"{dpop.base_url}/__health", deadline)
        ci_proc.wait_ready(f"{ci.base_url}/__health", deadline)
        discovery = http_json("GET", op.discovery_url)
        for key, expected in (
            ("issuer", op.issuer),
            ("token_endpoint", op.token_url),
            ("revocation_endpoint", op.revocation_url),
            ("introspection_endpoint", op.introspection_url),
            ("jwks_uri", op.jwks_url),
            ("authorization_endpoint", op.authorization_url),
            ("device_authorization_endpoint", op.device_authorization_url),
        ):
            if discovery.get(key) != expected:
                raise HarnessError(f"discovery {key} is {discovery.get(key)!r}, not {expected!r}")
    except BaseException:
        for process in processes:
            process.stop()
        raise
    return E2eServers(op, rs, dpop, ci), processes
