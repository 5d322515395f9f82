"""The token cache trusts only itself (SPEC §4), found by trying to break it.

The CLI runs as a subprocess (``python -m oauthcli``) against token endpoints and
APIs on 127.0.0.1 that misbehave on purpose: a token server that rotates refresh
tokens and rejects the reuse of an old one (RFC 9700 §4.14.2), an API that records
which ``Authorization`` it was sent. Cache folders are planted as another user
would plant them (as root, with ``os.chown``; skipped with a reason otherwise).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest

from oauthcli.registry.discovery import Registry
from oauthcli.request.resolve import resolve_profile
from oauthcli.secret import Secret
from oauthcli.tokens import Token, cache
from tests.cliproc import Done, oauthcli
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded

JSON = {"Content-Type": "application/json"}
SECRET = "cache-trust-s3cr3t"
NOBODY = 65534
as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="planting a folder owned by another user needs root (os.chown)",
)


@dataclass
class Cli:
    """``python -m oauthcli`` in a fresh process, with this test's cache folder."""

    root: Path
    cache: Path
    env: dict[str, str] = field(default_factory=dict)

    def run(self, *args: str, timeout: float = 20, prefix: tuple[str, ...] = ()) -> Done:
        env = {"OAUTHCLI_CACHE_DIR": str(self.cache), **self.env}
        return oauthcli(*args, registry=self.root, env=env, timeout=timeout, prefix=prefix)


@dataclass
class Provider:
    """A token endpoint and an API on one loopback server.

    Tokens are ``at-N``; a refresh token ``rt-N`` is issued with each, rotated on every
    refresh, and an old one presented again is refused (``invalid_grant``), as
    RFC 9700 asks of servers that rotate. The API accepts only tokens not yet superseded
    when ``only_latest`` is set, else any token issued.
    """

    server: LoopbackServer
    expires_in: int | None = 300
    rotate: bool = True
    only_latest: bool = False
    issued: list[str] = field(default_factory=list)
    live_refresh: set[str] = field(default_factory=set)
    spent_refresh: list[str] = field(default_factory=list)
    forms: list[dict[str, str]] = field(default_factory=list)
    auths: list[str] = field(default_factory=list)  # Authorization sent to the API
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.server.routes["/token"] = self.token
        self.server.routes["/api/items"] = self.items

    def seed_refresh(self, value: str) -> None:
        self.live_refresh.add(value)

    def token(self, rec: Recorded) -> Any:
        form = {k: v[0] for k, v in parse_qs(rec.body.decode()).items()}
        with self.lock:
            self.forms.append(form)
            if form.get("grant_type") == "refresh_token":
                presented = form.get("refresh_token", "")
                if presented not in self.live_refresh:
                    body = {"error": "invalid_grant", "error_description": "refresh token reused"}
                    return 400, JSON, json.dumps(body).encode()
                if self.rotate:
                    self.live_refresh.discard(presented)
                    self.spent_refresh.append(presented)
            n = len(self.issued) + 1
            access = f"at-{n}-{os.urandom(3).hex()}"
            self.issued.append(access)
            answer: dict[str, Any] = {"access_token": access, "token_type": "Bearer"}
            if self.expires_in is not None:
                answer["expires_in"] = self.expires_in
            if self.rotate or not self.live_refresh:
                fresh = f"rt-{n}-{os.urandom(3).hex()}"
                self.live_refresh.add(fresh)
                answer["refresh_token"] = fresh
        return 200, JSON, json.dumps(answer).encode()

    def items(self, rec: Recorded) -> Any:
        auth = rec.headers.get("authorization", "")
        with self.lock:
            self.auths.append(auth)
            good = self.issued[-1:] if self.only_latest else self.issued
        if auth.removeprefix("Bearer ") not in good:
            return 401, {**JSON, "WWW-Authenticate": 'Bearer error="invalid_token"'}, b"{}"
        return 200, JSON, b'{"items": []}'

    def token_requests(self) -> int:
        return len(self.forms)


@pytest.fixture
def provider(loopback: LoopbackServer) -> Provider:
    return Provider(loopback)


def registry(tmp_path: Path, server: LoopbackServer, **profiles: str) -> Path:
    """A registry whose message ``items`` uses profile ``acme`` (given, or client_credentials)."""
    files: dict[str, str | bytes] = {
        "messages/items.yaml": f"""\
            endpoint: {server.base}/api/items
            auth: {{type: oauth2, profile: acme}}
            retry: {{attempts: 1}}
            methods: {{list: {{http_method: GET}}}}
            """,
    }
    profiles.setdefault(
        "acme",
        f"""\
        grant_type: client_credentials
        token_url: {server.base}/token
        client_id: app
        client_secret: {SECRET}
        """,
    )
    for name, text in profiles.items():
        files[f"profiles/{name}.yaml"] = text
    return make_registry(tmp_path / "reg", files)


@pytest.fixture
def cli(tmp_path: Path, provider: Provider, isolated_oauthcli: Path) -> Cli:
    return Cli(registry(tmp_path, provider.server), isolated_oauthcli)


def entry_file(root: Path, profile: str = "acme") -> Path:
    """Where the cache keeps the token of ``profile`` (as the CLI would resolve it).

    Call it before planting anything: loading the registry here fills the parse cache,
    which is removed again so that each test starts from no cache folder at all.
    """
    resolved = resolve_profile(Registry(root).profile(profile))
    shutil.rmtree(cache.cache_dir(), ignore_errors=True)
    return cache.entry_path(cache.entry_key(resolved))


def planted_entry(profile: str, access: str, token_url: str, refresh: str | None = None) -> str:
    now = time.time()
    token = Token(
        access_token=Secret(access),
        token_type="Bearer",
        expires_at=now + 3000,
        scope=None,
        refresh_token=Secret(refresh) if refresh else None,
        refresh_expires_at=None,
        obtained_at=now,
        lifetime=3000,
    )
    entry = cache.Entry(token=token, profile=profile, token_url=token_url, client_id="app")
    return json.dumps(entry.to_json())


def no_secret(done: Done, *values: str) -> None:
    for value in (SECRET, *values):
        assert value not in done.out and value not in done.err, (value, done)


# -- 1. the folder is trusted only if it is ours --------------------------------------------


@as_root
def test_a_folder_owned_by_another_user_is_refused_and_its_token_never_sent(
    tmp_path: Path, provider: Provider, isolated_oauthcli: Path
) -> None:
    server = provider.server
    acme = _profile(server, revocation_url=f"{server.base}/revoke")
    cli = Cli(registry(tmp_path, server, acme=acme), isolated_oauthcli)
    path = entry_file(cli.root)
    cli.cache.mkdir(mode=0o700)
    path.write_text(planted_entry("acme", "at-planted-by-nobody", f"{provider.server.base}/token"))
    os.chown(path, NOBODY, NOBODY)
    os.chown(cli.cache, NOBODY, NOBODY)

    for args in (
        ("send", "items"),
        ("get-token", "acme"),
        ("token", "list"),
        ("token", "clear"),
        ("token", "clear", "acme"),
        ("token", "revoke", "acme"),
    ):
        done = cli.run(*args)
        assert done.code == 3, (args, done)
        assert str(cli.cache) in done.err and f"belongs to uid {NOBODY}" in done.err, done
        assert done.err.count("\n") == 1 and "OAUTHCLI_CACHE_DIR" in done.err
        no_secret(done, "at-planted-by-nobody")
    assert provider.auths == [] and provider.token_requests() == 0
    assert path.exists(), "token clear must not remove what is in a folder it does not trust"


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o775, 0o722])
def test_a_folder_others_may_write_is_refused(cli: Cli, provider: Provider, mode: int) -> None:
    """As OAUTHCLI_CACHE_DIR=/tmp/fixed would be, whoever created it first."""
    path = entry_file(cli.root)
    cli.cache.mkdir()
    path.write_text(planted_entry("acme", "at-planted-in-tmp", f"{provider.server.base}/token"))
    cli.cache.chmod(mode)
    done = cli.run("send", "items")
    assert done.code == 3 and "is writable by" in done.err and f"(mode {mode:04o})" in done.err
    assert provider.auths == [] and provider.token_requests() == 0
    assert oct(cli.cache.stat().st_mode & 0o7777) == oct(mode), "never chmod a folder not made"


def test_a_folder_oauthcli_creates_is_0700_and_one_of_ours_keeps_its_mode(
    cli: Cli, provider: Provider
) -> None:
    assert cli.run("send", "items").code == 0
    assert cli.cache.stat().st_mode & 0o777 == 0o700
    shutil.rmtree(cli.cache)
    cli.cache.mkdir()
    cli.cache.chmod(0o755)  # ours, readable by others: trusted, and left as it is
    assert cli.run("send", "items").code == 0
    assert cli.cache.stat().st_mode & 0o777 == 0o755
    [entry] = [p for p in cli.cache.iterdir() if p.suffix == ".json"]
    assert entry.stat().st_mode & 0o777 == 0o600


def test_a_planted_parsed_link_is_never_deleted_through(cli: Cli, tmp_path: Path) -> None:
    victim_dir = tmp_path / "victim-ssh"
    victim_dir.mkdir()
    victim = victim_dir / "id_ed25519"
    victim.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    named_like_ours = victim_dir / ("a" * 32 + ".marshal")
    named_like_ours.write_text("not a parse-cache entry")
    cli.cache.mkdir(mode=0o700)
    (cli.cache / "parsed").symlink_to(victim_dir)

    assert cli.run("send", "items").code == 0  # the parse cache is not written through it
    done = cli.run("token", "clear")
    assert done.code == 0, done
    assert victim.read_text() == "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    assert named_like_ours.exists() and sorted(p.name for p in victim_dir.iterdir()) == sorted(
        [victim.name, named_like_ours.name]
    )


@pytest.mark.parametrize("loose", ["top", "parsed"])
def test_the_parse_cache_keeps_the_same_rule_and_is_never_an_error(cli: Cli, loose: str) -> None:
    """A folder others may write is not used for parsed files either; commands that do not
    need a token (show, validate) still work, they just parse again."""
    cli.cache.mkdir(mode=0o700)
    parsed = cli.cache / "parsed"
    parsed.mkdir(mode=0o700)
    (cli.cache if loose == "top" else parsed).chmod(0o777)
    for args in (("show", "items"), ("validate",)):
        done = cli.run(*args)
        assert done.code == 0, (args, done)
    assert list(parsed.iterdir()) == []


def test_links_named_as_entries_are_never_followed(
    cli: Cli, provider: Provider, tmp_path: Path
) -> None:
    """A token entry or lock file that is a link: not read, not truncated, not written through."""
    path = entry_file(cli.root)
    cli.cache.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(
        planted_entry("acme", "at-through-a-link", f"{provider.server.base}/token")
    )
    before = elsewhere.read_text()
    path.symlink_to(elsewhere)
    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    path.with_suffix(".lock").symlink_to(victim)

    done = cli.run("send", "items")
    assert done.code == 0, done
    assert "not a regular file" in done.err and done.err.count("\n") == 1
    assert provider.auths == [f"Bearer {provider.issued[0]}"]
    assert elsewhere.read_text() == before and victim.read_text() == "keep me"
    assert not path.is_symlink() and path.is_file()  # replaced by a real entry


@as_root
def test_an_entry_another_user_wrote_in_our_folder_is_not_used(
    cli: Cli, provider: Provider
) -> None:
    path = entry_file(cli.root)
    cli.cache.mkdir(mode=0o700)
    path.write_text(planted_entry("acme", "at-planted-inside", f"{provider.server.base}/token"))
    os.chown(path, NOBODY, NOBODY)
    done = cli.run("send", "items")
    assert done.code == 0 and "was not written by oauthcli for you" in done.err, done
    assert provider.auths == [f"Bearer {provider.issued[0]}"]


@as_root
def test_a_cache_folder_reached_through_another_users_link_is_refused(
    cli: Cli, provider: Provider, tmp_path: Path
) -> None:
    """/tmp/fixed -> a folder of ours, planted by someone who may point it elsewhere later."""
    mine = tmp_path / "mine"
    mine.mkdir(mode=0o700)
    cli.cache.symlink_to(mine)
    os.lchown(cli.cache, NOBODY, NOBODY)
    done = cli.run("send", "items")
    assert done.code == 3 and "is a symbolic link owned by uid 65534" in done.err, done
    assert provider.token_requests() == 0


def test_a_folder_named_as_an_entry_is_a_miss_and_cleared_when_empty(
    cli: Cli, provider: Provider
) -> None:
    path = entry_file(cli.root)
    path.mkdir(parents=True)
    path.parent.chmod(0o700)
    sent = cli.run("send", "items")
    assert sent.code == 0 and "not a regular file" in sent.err, sent
    assert provider.auths == [f"Bearer {provider.issued[0]}"]
    cleared = cli.run("token", "clear")
    assert cleared.code == 0 and not path.exists(), cleared


# -- 2. token clear removes only entries it wrote ------------------------------------------


def test_token_clear_in_a_project_folder_removes_only_its_own_files(
    cli: Cli, provider: Provider
) -> None:
    cli.cache.mkdir()
    cli.cache.chmod(0o755)
    project = {
        "package.json": '{"name": "app"}',
        "tsconfig.json": "{}",
        "yarn.lock": "# yarn",
        ".env.tmp": "x",
        "README.md": "hi",
    }
    for name, text in project.items():
        (cli.cache / name).write_text(text)
    (cli.cache / "src").mkdir()
    (cli.cache / "parsed-notes").write_text("mine")
    assert cli.run("send", "items").code == 0
    assert cli.run("get-token", "acme").code == 0

    listed = cli.run("token", "list")
    assert listed.code == 0 and listed.out.startswith("acme\t") and listed.err == "", listed
    done = cli.run("token", "clear")
    assert done.code == 0 and done.out.startswith("removed 1 cached token(s)"), done
    left = sorted(p.name for p in cli.cache.iterdir())
    assert left == sorted([*project, "src", "parsed-notes"])
    assert all((cli.cache / n).read_text() == t for n, t in project.items())


# -- 3. one token identity ------------------------------------------------------------------


def _profile(server: LoopbackServer, **keys: str) -> str:
    base = {
        "grant_type": "client_credentials",
        "token_url": f"{server.base}/token",
        "client_id": "app",
        "client_secret": SECRET,
    }
    base.update(keys)
    return "".join(f"{k}: {v}\n" for k, v in base.items())


@pytest.mark.parametrize(
    "change",
    [
        {"client_auth": "client_secret_post"},
        {"client_secret": "another-s3cr3t"},
        {"extra_params": "{tenant: red}"},
    ],
    ids=["client_auth", "secret", "extra_params"],
)
def test_profiles_that_differ_in_credentials_never_share_a_token(
    tmp_path: Path, provider: Provider, isolated_oauthcli: Path, change: dict[str, str]
) -> None:
    """The seed's 'Get OAuth token says OK, the call fails': a misconfigured twin of a
    working profile must not report OK from the working one's cache entry."""
    root = registry(
        tmp_path,
        provider.server,
        acme=_profile(provider.server),
        twin=_profile(provider.server, **change),
    )
    cli = Cli(root, isolated_oauthcli)
    assert cli.run("get-token", "acme").code == 0
    twin = cli.run("get-token", "--json", "twin")
    assert twin.code == 0 and json.loads(twin.out)["source"] == "grant", twin
    assert provider.token_requests() == 2
    listed = cli.run("token", "list")
    assert sorted(line.split("\t")[0] for line in listed.out.splitlines()) == ["acme", "twin"]


def test_same_profile_under_two_names_shares_one_token(
    tmp_path: Path, provider: Provider, isolated_oauthcli: Path
) -> None:
    root = registry(
        tmp_path, provider.server, acme=_profile(provider.server), alias=_profile(provider.server)
    )
    cli = Cli(root, isolated_oauthcli)
    assert cli.run("get-token", "acme").code == 0
    alias = cli.run("get-token", "--json", "alias")
    assert json.loads(alias.out)["source"] == "cache" and provider.token_requests() == 1


@pytest.mark.parametrize("grant", ["jwt_bearer", "refresh_token", "password"])
def test_two_users_of_one_client_get_their_own_tokens(
    tmp_path: Path, provider: Provider, isolated_oauthcli: Path, grant: str
) -> None:
    def user(n: int) -> str:
        if grant == "jwt_bearer":
            return _profile(provider.server, grant_type="jwt_bearer", assertion=f"eyJ.user{n}.x")
        if grant == "refresh_token":
            provider.seed_refresh(f"rt-seed-user{n}")
            return _profile(
                provider.server, grant_type="refresh_token", refresh_token=f"rt-seed-user{n}"
            )
        return _profile(provider.server, grant_type="password", username="ann", password=f"pw{n}")

    root = registry(tmp_path, provider.server, ann=user(1), bob=user(2))
    cli = Cli(root, isolated_oauthcli)
    ann = cli.run("get-token", "--raw", "ann")
    bob = cli.run("get-token", "--raw", "bob")
    assert ann.code == bob.code == 0, (ann, bob)
    assert ann.out != bob.out and provider.token_requests() == 2
    again = cli.run("get-token", "--raw", "ann")
    assert again.out == ann.out and provider.token_requests() == 2


# -- 4. rotation: the cached refresh token wins ---------------------------------------------


def test_a_refresh_token_profile_follows_rotation_through_force_and_401(
    tmp_path: Path, provider: Provider, isolated_oauthcli: Path
) -> None:
    provider.seed_refresh("rt-seed-0")
    provider.only_latest = True
    root = registry(
        tmp_path,
        provider.server,
        acme=_profile(provider.server, grant_type="refresh_token", refresh_token="rt-seed-0"),
    )
    cli = Cli(root, isolated_oauthcli)
    assert cli.run("get-token", "acme").code == 0
    forced = cli.run("get-token", "--force", "acme")
    assert forced.code == 0, forced
    again = cli.run("get-token", "--force", "--raw", "acme")
    assert again.code == 0, again
    # Another client rotated the token: the API now refuses ours; the 401 recovery must
    # refresh with the cached (latest) refresh token, not the profile's spent seed.
    provider.issued.append("at-issued-to-someone-else")
    sent = cli.run("send", "items")
    assert sent.code == 0, sent
    presented = [f["refresh_token"] for f in provider.forms]
    assert presented[0] == "rt-seed-0" and len(presented) == len(set(presented)) == 4
    assert all(f["grant_type"] == "refresh_token" for f in provider.forms)
    no_secret(sent, *presented, *provider.issued)


BROWSER = """\
#!/bin/sh
echo "$@" >> "{log}"
exit 0
"""


def test_an_authorization_code_profile_refreshes_on_a_401_instead_of_a_browser(
    tmp_path: Path, provider: Provider, isolated_oauthcli: Path
) -> None:
    provider.only_latest = True
    root = registry(
        tmp_path,
        provider.server,
        acme=_profile(
            provider.server,
            grant_type="authorization_code",
            client_auth="none",
            authorization_url=f"{provider.server.base}/authorize",
            redirect_url="http://127.0.0.1:8976/callback",
        ),
    )
    log = tmp_path / "browser.log"
    browser = tmp_path / "browser.sh"
    browser.write_text(BROWSER.format(log=log))
    browser.chmod(0o755)
    provider.seed_refresh("rt-signed-in-earlier")
    path = entry_file(root)
    cache.ensure_dir()
    path.write_text(
        planted_entry("acme", "at-stale", f"{provider.server.base}/token", "rt-signed-in-earlier")
    )
    cli = Cli(root, isolated_oauthcli, env={"BROWSER": str(browser)})
    sent = cli.run("send", "items")
    assert sent.code == 0, sent
    assert not log.exists(), "no browser while a cached refresh token works"
    assert [f["grant_type"] for f in provider.forms] == ["refresh_token"]
    assert provider.auths == ["Bearer at-stale", f"Bearer {provider.issued[0]}"]
    forced = cli.run("get-token", "--force", "acme")
    assert forced.code == 0 and not log.exists(), forced
    assert [f["refresh_token"] for f in provider.forms][1] != "rt-signed-in-earlier"


# -- 5. any unreadable entry is a miss -------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b"[" * 100_000,
        b'{"a":' * 50_000,
        b"\xff\xfe\x00garbage",
        b'{"version": 1, "profile": 7}',
        b'{"version": 1, "profile": "acme", "token_url": "u", "access_token": "at\\r\\nX: y",'
        b' "token_type": "Bearer", "expires_at": 9999999999, "obtained_at": 1}',
        b" " * (cache.MAX_ENTRY + 10),
    ],
    ids=["nested-list", "nested-object", "bad-utf8", "wrong-types", "crlf-token", "huge"],
)
def test_an_unreadable_entry_is_a_miss_for_every_command(
    cli: Cli, provider: Provider, content: bytes
) -> None:
    path = entry_file(cli.root)
    cache.ensure_dir()
    path.write_bytes(content)
    sent = cli.run("send", "items")
    assert sent.code == 0 and sent.err.count("\n") <= 1, sent
    assert provider.auths == [f"Bearer {provider.issued[0]}"]
    path.write_bytes(content)
    got = cli.run("get-token", "acme")
    assert got.code == 0 and got.err.count("\n") <= 1, got
    path.write_bytes(content)
    listed = cli.run("token", "list")
    assert listed.code == 0 and listed.err.count("warning:") == 1 and "token clear" in listed.err
    cleared = cli.run("token", "clear")
    assert cleared.code == 0 and not path.exists(), cleared


def test_an_entry_that_is_a_fifo_is_a_miss_not_a_hang(cli: Cli, provider: Provider) -> None:
    path = entry_file(cli.root)
    cache.ensure_dir()
    os.mkfifo(path)
    sent = cli.run("send", "items", timeout=10)
    assert sent.code == 0 and "not a regular file" in sent.err, sent
    assert path.is_file()  # replaced by the entry written


# -- 6. a cache that cannot be written -------------------------------------------------------


def _unshare_mount(tmp: Path, options: str, then: str = "") -> tuple[str, ...]:
    """Run the CLI in a mount namespace of its own with a tmpfs cache folder."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare is not installed")
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {tmp}"],
        capture_output=True,
        timeout=10,
    )
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {probe.stderr.decode().strip()}")
    script = f'mount -t tmpfs -o {options} tmpfs "$0" && chmod 700 "$0" && {then} exec "$@"'
    return ("unshare", "-m", "sh", "-c", script, str(tmp))


@as_root
@pytest.mark.parametrize(
    ("options", "then", "why"),
    [
        ("size=64k", 'mount -o remount,ro "$0" &&', "Read-only file system"),
        ("size=8k", 'dd if=/dev/zero of="$0/filler" bs=4k count=8 2>/dev/null;', "No space left"),
    ],
    ids=["read-only", "full"],
)
def test_an_unwritable_cache_is_said_once_and_the_call_goes_on(
    cli: Cli, provider: Provider, tmp_path: Path, options: str, then: str, why: str
) -> None:
    cli.cache.mkdir(mode=0o700)
    prefix = _unshare_mount(cli.cache, options, then)
    rows = tmp_path / "rows.csv"
    rows.write_text("n\n1\n2\n3\n")
    provider.expires_in = 2  # each row may renew: the warning still comes once
    sent = cli.run("send", "items", prefix=prefix)
    assert sent.code == 0, sent
    assert sent.err.count("\n") == 1 and "cannot write the token cache folder" in sent.err
    assert why in sent.err and provider.auths == [f"Bearer {provider.issued[0]}"]
    got = cli.run("get-token", "--raw", "acme", prefix=prefix)
    assert got.code == 0 and got.out.startswith("at-") and got.err.count("\n") == 1, got
    batch = cli.run("send", "items", "--each", str(rows), prefix=prefix)
    assert batch.code == 0 and batch.err.count("cannot write the token cache") == 1, batch
    no_secret(batch, *provider.issued)


# -- 7. tokens live as long as they are good -------------------------------------------------


def test_a_batch_with_five_second_tokens_reuses_them(
    cli: Cli, provider: Provider, tmp_path: Path
) -> None:
    provider.expires_in = 5
    rows = tmp_path / "rows.csv"
    rows.write_text("n\n" + "".join(f"{i}\n" for i in range(50)))
    started = time.monotonic()
    done = cli.run("send", "items", "--each", str(rows))
    elapsed = time.monotonic() - started
    assert done.code == 0, done
    assert len(done.out.splitlines()) == 50
    # Renewed once 1.25 s (a quarter of 5 s) remain: one token per 3.75 s of the run.
    assert provider.token_requests() <= 2 + elapsed / 3.75, (provider.token_requests(), elapsed)


def test_twelve_sends_at_once_with_thirty_second_tokens_make_one_token_request(
    cli: Cli, provider: Provider
) -> None:
    provider.expires_in = 30
    env = {**os.environ, "OAUTHCLI_CACHE_DIR": str(cli.cache)}
    cmd = [sys.executable, "-m", "oauthcli", "-r", str(cli.root), "send", "items"]
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(12)
    ]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 12, outputs
    assert provider.token_requests() == 1


def _jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'at+jwt'})}.{part(claims)}.c2ln"


def test_without_expires_in_a_jwt_lives_until_its_exp(
    cli: Cli, provider: Provider, loopback: LoopbackServer
) -> None:
    now = int(time.time())
    access = _jwt({"exp": now + 3600, "iat": now, "sub": "app"})
    loopback.reply("/token", 200, json.dumps({"access_token": access}).encode(), **JSON)
    got = cli.run("get-token", "--json", "acme")
    data = json.loads(got.out)
    assert got.code == 0 and 3590 <= data["expires_in"] <= 3600, got
    [entry] = [json.loads(p.read_text()) for p in cli.cache.glob("*.json")]
    assert entry["lifetime"] == 3600 and entry["expires_assumed"] is False


# -- -v shows the token exchange ------------------------------------------------------------


def test_verbose_shows_the_token_decision_and_exchange_masked(cli: Cli, provider: Provider) -> None:
    sent = cli.run("send", "-v", "items")
    assert sent.code == 0, sent
    assert "* token: none cached for profile 'acme'" in sent.err
    assert "* token: running the client_credentials grant" in sent.err
    assert "> POST /token HTTP/1.1" in sent.err and "> GET /api/items HTTP/1.1" in sent.err
    got = cli.run("get-token", "-v", "acme")
    assert got.code == 0 and "* token: cached for profile 'acme', " in got.err, got
    assert "renewed under 60 s" in got.err and "> POST" not in got.err
    forced = cli.run("get-token", "-v", "--force", "acme")
    assert "> POST /token HTTP/1.1" in forced.err and "< HTTP/1.1 200" in forced.err
    basic = base64.b64encode(f"app:{SECRET}".encode()).decode()
    for done in (sent, got, forced):
        no_secret(done, basic, *provider.issued)
