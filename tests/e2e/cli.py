"""Drive the INSTALLED oauthcli (a subprocess, as a user or a CI job runs it) against the e2e
servers, with a registry written for the test and the test's own token cache.

The registry holds one profile per client of the provider, named for its client-auth method
(``client_secret_basic``, ``client_secret_post``, ``private_key_jwt``, ``client_secret_jwt``),
secrets read through ``${env:…}``, and one message per profile, ``api_<auth method>``, with the
methods ``list`` (GET /api/incidents), ``create`` (POST), ``me`` and ``reset`` (the route that
resets the connection).

Every run is checked for a Python traceback on stderr: no command may ever print one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .servers import Client, OidcProvider, ResourceServer

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "client_secret_jwt")
RUN_TIMEOUT = 60.0


def installed_cli() -> list[str]:
    """``.venv/bin/oauthcli`` next to the running interpreter, else ``python -m oauthcli``."""
    script = Path(sys.executable).parent / "oauthcli"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    found = shutil.which("oauthcli")
    if found and Path(found).resolve().parent == Path(sys.executable).resolve().parent:
        return [found]
    return [sys.executable, "-m", "oauthcli"]


def secret_env_name(client: Client) -> str:
    return "E2E_SECRET_" + client.client_id.upper().replace("-", "_")


@dataclass(repr=False)
class Run:
    args: tuple[str, ...]
    code: int
    out: str
    err: str
    seconds: float

    @property
    def both(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        return json.loads(self.out)

    def __repr__(self) -> str:  # what an assertion message shows
        return (
            f"oauthcli {' '.join(self.args)} -> {self.code}\nstdout: {self.out}\nstderr: {self.err}"
        )


@dataclass
class Cli:
    """One test's registry, cache and environment; ``run()`` calls the installed CLI."""

    op: OidcProvider
    rs: ResourceServer
    root: Path
    cache_dir: Path
    env: dict[str, str]
    runs: list[Run] = field(default_factory=list)

    # -- running ------------------------------------------------------------------------------
    def command(self, *args: str) -> list[str]:
        return [*installed_cli(), *args]

    def run(self, *args: str, input: str | None = None, timeout: float = RUN_TIMEOUT) -> Run:
        started = time.monotonic()
        proc = subprocess.run(
            self.command(*args),
            env=self.env,
            cwd=self.root,
            input=input,
            stdin=subprocess.DEVNULL if input is None else None,  # never pytest's stdin
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return self._record(args, proc.returncode, proc.stdout, proc.stderr, started)

    def run_parallel(self, argvs: Sequence[Sequence[str]]) -> list[Run]:
        """Start every command at once, then wait for all of them."""
        started = time.monotonic()
        procs = [
            subprocess.Popen(
                self.command(*argv),
                env=self.env,
                cwd=self.root,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for argv in argvs
        ]
        outputs: list[tuple[str, str]] = []
        try:
            for proc in procs:
                outputs.append(proc.communicate(timeout=RUN_TIMEOUT))
        finally:
            for proc in procs[len(outputs) :]:  # after a timeout: reap, close the pipes
                proc.kill()
                proc.communicate()
        runs = []
        for argv, proc, (out, err) in zip(argvs, procs, outputs, strict=True):
            runs.append(self._record(tuple(argv), proc.returncode, out, err, started))
        return runs

    def _record(self, args: Sequence[str], code: int, out: str, err: str, started: float) -> Run:
        run = Run(tuple(args), code, out, err, time.monotonic() - started)
        self.runs.append(run)
        assert "Traceback" not in err, f"a traceback on stderr:\n{run}"
        return run

    # -- the cache ----------------------------------------------------------------------------
    def cache_entries(self) -> list[dict[str, Any]]:
        """Every cache entry, parsed (a file that does not parse fails the test)."""
        if not self.cache_dir.is_dir():
            return []
        entries = []
        for path in sorted(self.cache_dir.glob("*.json")):
            text = path.read_text()
            try:
                entries.append(json.loads(text))
            except ValueError:
                raise AssertionError(f"cache file {path.name} does not parse: {text!r}") from None
        return entries

    def cached_tokens(self) -> set[str]:
        tokens = set()
        for entry in self.cache_entries():
            for key in ("access_token", "refresh_token"):
                if entry.get(key):
                    tokens.add(str(entry[key]))
        return tokens

    # -- the registry -------------------------------------------------------------------------
    def add_profile(self, name: str, auth_method: str, **settings: Any) -> str:
        """A profile ``name`` for the client of ``auth_method`` with extra ``settings`` (e.g.
        ``token_leeway=2``), and its message ``api_<name>``; returns ``name``."""
        client = next(c for c in self.op.clients.values() if c.auth_method == auth_method)
        settings = {"scope": client.scope, **settings}
        scope = settings.pop("scope")
        client = replace(client, scope=scope)
        (self.root / "profiles" / f"{name}.yaml").write_text(
            profile_yaml(self.op, client, **settings)
        )
        (self.root / "messages" / f"api_{name}.yaml").write_text(message_yaml(self.rs, name))
        return name

    def add_message(self, name: str, yaml_text: str) -> str:
        (self.root / "messages" / f"{name}.yaml").write_text(yaml_text)
        return name

    # -- the servers --------------------------------------------------------------------------
    def token_requests(self) -> int:
        return self.op.token_requests()


def profile_yaml(op: OidcProvider, client: Client, **extra: Any) -> str:
    lines = [
        "grant_type: client_credentials",
        f"token_url: {op.token_url}",
        f"revocation_url: {op.revocation_url}",
        f"client_id: {client.client_id}",
        f"client_auth: {client.auth_method}",
        f"scope: {client.scope}",
        f"resource: {op.resource}",
    ]
    if client.client_secret is not None:
        lines.append(f"client_secret: ${{env:{secret_env_name(client)}}}")
    if client.private_key_path is not None:
        lines += ["private_key: ${file:keys/client.pem}", f"key_id: {client.kid}"]
    lines += [f"{key}: {json.dumps(value)}" for key, value in extra.items()]
    return "\n".join(lines) + "\n"


def message_yaml(rs: ResourceServer, profile: str) -> str:
    return f"""\
endpoint: {rs.api_base_url}
auth: {{type: oauth2, profile: {profile}}}
headers: {{Accept: application/json}}
retry: {{attempts: 1}}
variables: {{title: "disk full"}}
methods:
  list:
    http_method: GET
    path: /incidents
  create:
    http_method: POST
    path: /incidents
    json: {{title: "${{title}}", severity: low}}
  me:
    http_method: GET
    path: /me
  reset:
    http_method: GET
    path: /reset-connection
"""


def write_registry(
    root: Path, op: OidcProvider, rs: ResourceServer, profiles: Iterable[str] = AUTH_METHODS
) -> None:
    """One profile and one ``api_<profile>`` message per client-auth method."""
    by_method = {c.auth_method: c for c in op.clients.values()}
    (root / "profiles" / "keys").mkdir(parents=True, exist_ok=True)
    (root / "messages").mkdir(parents=True, exist_ok=True)
    key = root / "profiles" / "keys" / "client.pem"
    key.write_text(op.jwt.private_key_pem)
    key.chmod(0o600)
    for name in profiles:
        (root / "profiles" / f"{name}.yaml").write_text(profile_yaml(op, by_method[name]))
        (root / "messages" / f"api_{name}.yaml").write_text(message_yaml(rs, name))


def cli_env(root: Path, cache_dir: Path, op: OidcProvider) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.lower().endswith("_proxy") and not k.startswith("OAUTHCLI_")
    }
    env.update(
        OAUTHCLI_REGISTRY=str(root),
        OAUTHCLI_CACHE_DIR=str(cache_dir),
        NO_COLOR="1",
    )
    for client in op.clients.values():
        if client.client_secret is not None:
            env[secret_env_name(client)] = client.client_secret
    return env
