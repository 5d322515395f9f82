"""The Redis token cache (SPEC §7) against a real redis-server on a loopback port.

Each test gets its own redis-server (tests/redisserver.py: persistence off, a free port,
stopped by PID). The token service talks to it through ``OAUTHCLI_CACHE_URL`` exactly as a
fleet's runners do; "another machine" is another cache folder and home.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import responses
from cryptography.fernet import Fernet

from oauthcli.errors import RegistryError
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret, scrub
from oauthcli.tokens import backend, cache, obtain, rediscache, service
from oauthcli.tokens.model import Token
from tests.clirun import run
from tests.redisserver import RedisServer
from tests.registry_factory import make_registry
from tests.servers import TokenServer

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parent.parent
URL = "https://login.test/oauth2/token"
Make = Callable[..., ResolvedProfile]


@pytest.fixture(autouse=True)
def _fresh_backends() -> Iterator[None]:
    backend.forget()
    yield
    backend.forget()


@pytest.fixture
def shared(redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> RedisServer:
    """This process uses ``redis_server`` as its token cache."""
    monkeypatch.setenv("OAUTHCLI_CACHE_URL", redis_server.url)
    return redis_server


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def answer(rsps: responses.RequestsMock, token: str = "at-redis-0001", **extra: Any) -> None:
    rsps.post(URL, json={"access_token": token, "token_type": "bearer", "expires_in": 300, **extra})


def stored(server: RedisServer, profile: ResolvedProfile) -> bytes | None:
    value = server.client().get("oauthcli:" + cache.entry_key(profile))
    assert value is None or isinstance(value, bytes)
    return value


def other_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> Path:
    """Another runner: its own cache folder and home (and a process that starts anew)."""
    home = tmp_path / name
    monkeypatch.setenv("OAUTHCLI_CACHE_DIR", str(home / "cache"))
    monkeypatch.setenv("HOME", str(home))
    backend.forget()
    return home


# -- OAUTHCLI_CACHE_URL and OAUTHCLI_CACHE_KEY -----------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6390", "redis://127.0.0.1:6390/0"),
        ("redis://:pw-secret-1@cache.internal/3", "redis://cache.internal:6379/3"),
        ("rediss://ci:pw%2Fsecret@[::1]:7000/0?timeout=0.5", "rediss://ci@[::1]:7000/0"),
        ("  REDIS://h:1/  ", "redis://h:1/0"),
    ],
)
def test_a_cache_url_is_read_and_shown_without_its_password(url: str, shown: str) -> None:
    settings = rediscache.Settings.parse(url)
    assert settings.url == shown and settings.where == f"the Redis cache {shown}"
    if "pw%2Fsecret" in url:
        assert settings.password == Secret("pw/secret") and settings.username == "ci"
        assert settings.tls and settings.timeout == 0.5 and settings.port == 7000


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://h:pw-secret-2@cache:6379/0", "must start with redis:// or rediss://"),
        ("redis://:pw-secret-2@", "names no host"),
        ("redis://u:pw-secret-2@h:notaport/0", "port that is not a number"),
        ("redis://u:pw/secret-2@h:6379/0", "port that is not a number"),
        ("redis://:pw-secret-2@h:99999/0", "port that is not a number"),
        ("redis://:pw-secret-2@h:6379/zero", "not a database number"),
        ("redis://:pw-secret-2@h:6379/0?timeout=-1", "timeout that is not"),
        ("redis://:pw-secret-2@h:6379/0?timeout=nan", "timeout that is not"),
        ("redis://:pw-secret-2@h:6379/0?ssl=1", "unknown parameter 'ssl'"),
        ("redis://:pw-secret-2@h:6379/0#x", "'#' part"),
        ("redis://:pw-secret-2@[::1/0", "is not a URL"),
        ("unix:///run/redis.sock", "unix sockets"),
        ("redis://:pw-secret-2@h\u00e9:6379/0", "host name"),
    ],
)
def test_a_malformed_cache_url_is_exit_3_naming_the_variable_not_the_password(
    url: str, why: str
) -> None:
    with pytest.raises(RegistryError) as caught:
        rediscache.Settings.parse(url)
    text = str(caught.value)
    assert caught.value.exit_code == 3 and text.startswith("OAUTHCLI_CACHE_URL ")
    assert why in text and "secret" not in text and "\n" not in text


def test_a_bad_cache_key_is_exit_3_naming_the_variable_never_the_key() -> None:
    good = Fernet.generate_key().decode()
    assert len(rediscache.Settings.parse("redis://h", f"{good}, {good}").keys) == 2
    for key in ("not-a-key-at-all", good[:-2], good + "AAAA", f"{good},short-key-1"):
        with pytest.raises(RegistryError) as caught:
            rediscache.Settings.parse("redis://h", key)
        text = str(caught.value)
        assert text.startswith("OAUTHCLI_CACHE_KEY: ") and "Fernet.generate_key()" in text
        assert key not in text and good not in text and "short-key-1" not in text
        assert scrub(f"x {key} y") != f"x {key} y"  # remembered as a secret


def test_the_cli_says_a_bad_url_in_one_line_with_exit_3(tmp_path: Path) -> None:
    from tests.cliproc import oauthcli

    done = oauthcli("token", "list", env={"OAUTHCLI_CACHE_URL": "redis://:hunter2pw@h:port/0"})
    assert done.code == 3 and done.out == "", done
    assert done.err.count("\n") == 1 and "OAUTHCLI_CACHE_URL" in done.err
    assert "hunter2pw" not in done.err and "Traceback" not in done.err


# -- the token service on Redis ---------------------------------------------------------------


def test_a_token_is_shared_by_machines_and_expires_with_the_token(
    shared: RedisServer,
    token_profile: Make,
    rsps: responses.RequestsMock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer(rsps)
    first = obtain(token_profile())
    assert (first.source, first.warnings) == ("grant", [])
    value = stored(shared, token_profile())
    assert value is not None and json.loads(value)["access_token"] == "at-redis-0001"
    ttl = shared.client().pttl("oauthcli:" + cache.entry_key(token_profile()))
    assert 295_000 < ttl <= 300_000  # ends with the token
    assert not list(Path(os.environ["OAUTHCLI_CACHE_DIR"]).glob("*.json"))  # not in the files
    other_machine(tmp_path, monkeypatch, "runner-2")
    second = obtain(token_profile())
    assert second.source == "cache" and second.token.access_token == Secret("at-redis-0001")
    assert len(rsps.calls) == 1


def test_a_held_refresh_token_keeps_the_entry_past_the_access_token(
    shared: RedisServer, token_profile: Make, rsps: responses.RequestsMock
) -> None:
    answer(rsps, refresh_token="rt-redis-0001", expires_in=60, refresh_expires_in=3600)
    obtain(token_profile())
    key = "oauthcli:" + cache.entry_key(token_profile())
    assert 3_595_000 < shared.client().pttl(key) <= 3_600_000
    entry = backend.current().read(cache.entry_key(token_profile()))
    assert entry is not None
    unbounded = replace(entry.token, refresh_expires_at=None)
    keep = rediscache.ttl(replace(entry, token=unbounded), time.time())
    assert rediscache.REFRESH_KEEP - 5 < keep <= rediscache.REFRESH_KEEP


def test_renewal_on_redis_refreshes_and_rewrites_the_entry(
    shared: RedisServer, token_profile: Make, rsps: responses.RequestsMock
) -> None:
    answer(rsps, refresh_token="rt-redis-0002", expires_in=40)
    obtain(token_profile())
    key = cache.entry_key(token_profile())
    entry = backend.current().read(key)
    assert entry is not None
    # Make it due: 5 s left of 40 (renewed under 10 s).
    due = replace(entry.token, expires_at=time.time() + 5)
    backend.current().write(key, replace(entry, token=due))
    answer(rsps, token="at-redis-0003", expires_in=300)
    renewed = obtain(token_profile())
    assert renewed.source == "refresh" and renewed.token.access_token == Secret("at-redis-0003")
    assert rsps.calls[-1].request.body is not None and "refresh_token" in str(
        rsps.calls[-1].request.body
    )
    again = backend.current().read(key)
    assert again is not None and again.token.access_token == Secret("at-redis-0003")
    assert again.token.refresh_token == Secret("rt-redis-0002")


def test_a_token_renewed_elsewhere_while_waiting_for_the_lock_is_used(
    shared: RedisServer, token_profile: Make, rsps: responses.RequestsMock
) -> None:
    """The re-read after taking the lock: another machine renewed it meanwhile."""
    profile = token_profile()
    key = cache.entry_key(profile)
    store = backend.current()
    lock = store.lock(key, 5, 5)
    lock.acquire()
    fresh = cache.Entry(
        token=Token(Secret("at-from-elsewhere"), "Bearer", time.time() + 300, None, None, None,
                    time.time(), 300.0),
        profile="acme",
        token_url=profile.token_server,
        client_id="app",
        grant_type="client_credentials",
    )  # fmt: skip

    def other_machine_renews() -> None:
        time.sleep(0.3)
        store.write(key, fresh)
        lock.release()

    thread = threading.Thread(target=other_machine_renews)
    thread.start()
    got = obtain(profile)
    thread.join(5)
    assert got.source == "cache" and got.token.access_token == Secret("at-from-elsewhere")
    assert len(rsps.calls) == 0


def test_entries_are_encrypted_with_the_cache_key_and_a_wrong_key_is_a_miss(
    shared: RedisServer,
    token_profile: Make,
    rsps: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("OAUTHCLI_CACHE_KEY", key)
    answer(rsps, token="at-encrypted-0001")
    obtain(token_profile())
    value = stored(shared, token_profile())
    assert value is not None and value.startswith(b"gAAAAA")
    assert b"at-encrypted" not in value and b"acme" not in value
    assert json.loads(Fernet(key.encode()).decrypt(value))["access_token"] == "at-encrypted-0001"
    assert obtain(token_profile()).source == "cache"
    # Another fleet key: a miss with a note, a new token, no crash.
    monkeypatch.setenv("OAUTHCLI_CACHE_KEY", Fernet.generate_key().decode())
    answer(rsps, token="at-encrypted-0002")
    other = obtain(token_profile())
    assert other.source == "grant" and other.token.access_token == Secret("at-encrypted-0002")
    [note] = other.warnings
    assert "does not decrypt with OAUTHCLI_CACHE_KEY" in note and note.endswith("discarded")
    # No key at all: an encrypted entry is a miss that says why.
    monkeypatch.delenv("OAUTHCLI_CACHE_KEY")
    answer(rsps, token="at-plain-0003")
    plain = obtain(token_profile())
    assert plain.source == "grant" and "is encrypted; set OAUTHCLI_CACHE_KEY" in plain.warnings[0]
    # Key rotation: old key second still reads what the new first key did not write.
    monkeypatch.setenv("OAUTHCLI_CACHE_KEY", f"{Fernet.generate_key().decode()},{key}")
    shared.client().set("oauthcli:" + cache.entry_key(token_profile()),
                        Fernet(key.encode()).encrypt(value and Fernet(key.encode()).decrypt(value)))  # fmt: skip
    rotated = obtain(token_profile())
    assert rotated.source == "cache" and rotated.token.access_token == Secret("at-encrypted-0001")


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (b"{not json", "is not valid JSON"),
        (b'{"version": 1, "profile": "acme"}', "is missing or of the wrong type"),
        (b"[" * 100_000, "nested too deeply"),
        (b"x" * (cache.MAX_ENTRY + 10), "is over 1024 KiB"),
    ],
)
def test_a_corrupt_or_huge_value_is_a_miss(
    shared: RedisServer,
    token_profile: Make,
    rsps: responses.RequestsMock,
    value: bytes,
    why: str,
) -> None:
    shared.client().set("oauthcli:" + cache.entry_key(token_profile()), value)
    answer(rsps)
    got = obtain(token_profile())
    assert got.source == "grant" and len(got.warnings) == 1 and why in got.warnings[0]
    assert "cache entry oauthcli:" in got.warnings[0] and "in the Redis cache" in got.warnings[0]
    assert stored(shared, token_profile()) is not None
    assert json.loads(stored(shared, token_profile()) or b"")["access_token"] == "at-redis-0001"


def test_a_value_of_another_type_is_a_miss(
    shared: RedisServer, token_profile: Make, rsps: responses.RequestsMock
) -> None:
    shared.client().hset("oauthcli:" + cache.entry_key(token_profile()), "a", "b")
    answer(rsps)
    got = obtain(token_profile())
    assert got.source == "grant" and "a Redis value of another type" in got.warnings[0]


def test_a_planted_entry_of_another_client_is_a_miss(
    shared: RedisServer, token_profile: Make, rsps: responses.RequestsMock
) -> None:
    answer(rsps)
    obtain(token_profile(client_id="someone-else"))
    planted = stored(shared, token_profile(client_id="someone-else"))
    assert planted is not None
    shared.client().set("oauthcli:" + cache.entry_key(token_profile()), planted)
    answer(rsps, token="at-mine-0002")
    got = obtain(token_profile())
    assert got.source == "grant" and "records a token of another client" in got.warnings[0]


# -- the lock ------------------------------------------------------------------------------------


def test_the_lock_is_released_only_by_its_owner(shared: RedisServer) -> None:
    store = backend.current()
    client = shared.client()
    name = "oauthcli:" + "a" * 64 + ":lock"
    first = store.lock("a" * 64, 1, 0.3)
    first.acquire()
    owner = client.get(name)
    assert owner is not None and len(owner) == 32  # a random token, not a uuid1
    assert 0 < client.pttl(name) <= 300
    time.sleep(0.6)  # still held: the lease is renewed while its holder lives
    assert client.get(name) == owner
    first.release()
    assert client.get(name) is None
    # A lock that expired and was taken by another is not freed by the first holder.
    stale = store.lock("a" * 64, 1, 5)
    stale.acquire()
    client.set(name, b"another-owner-token", px=5000)  # its lease ran out; another took it
    stale.release()
    assert client.get(name) == b"another-owner-token"


def test_a_waiter_gives_up_at_its_deadline(shared: RedisServer) -> None:
    store = backend.current()
    holder = store.lock("b" * 64, 5, 30)
    holder.acquire()
    waiter = store.lock("b" * 64, 0.5, 30)
    started = time.monotonic()
    with pytest.raises(backend.LockTimeout):
        waiter.acquire()
    assert 0.45 < time.monotonic() - started < 1.5
    holder.release()
    waiter.acquire()
    waiter.release()


LOCK_HOLDER = """
import sys, time
from oauthcli.tokens import backend
lock = backend.current().lock(sys.argv[1], 5, float(sys.argv[2]))
lock.acquire()
print("locked", flush=True)
time.sleep(120)
"""


def test_a_sigkilled_holder_lets_the_others_proceed_within_the_lease(
    shared: RedisServer, token_profile: Make, rsps: responses.RequestsMock
) -> None:
    profile = token_profile()
    lease = 1.5
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, cache.entry_key(profile), str(lease)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "OAUTHCLI_CACHE_URL": shared.url},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        time.sleep(lease)  # alive, it keeps renewing its lease: the lock is still held
        assert shared.client().exists("oauthcli:" + cache.entry_key(profile) + ":lock")
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(5)
        killed = time.monotonic()
        answer(rsps, token="at-after-the-kill")
        got = obtain(profile)  # waits for the lock (up to 2·timeout + 30 s)
        waited = time.monotonic() - killed
        assert got.source == "grant" and got.token.access_token == Secret("at-after-the-kill")
        assert waited < lease + 1.0, f"waited {waited:.2f} s for a lease of {lease} s"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(5)
        if holder.stdout is not None:
            holder.stdout.close()


def test_the_lease_outlives_a_slow_token_request(
    shared: RedisServer, token_profile: Make, rsps: responses.RequestsMock
) -> None:
    profile = token_profile(timeout=7.0)
    lease_ms = (2 * 7.0 + service.LOCK_MARGIN) * 1000
    seen: list[int] = []
    name = "oauthcli:" + cache.entry_key(profile) + ":lock"

    def token_endpoint(request: Any) -> tuple[int, dict[str, str], str]:
        seen.append(shared.client().pttl(name))  # what the lock has left mid-request
        return 200, {}, json.dumps({"access_token": "at-slow-0001", "expires_in": 300})

    rsps.add_callback(responses.POST, URL, callback=token_endpoint)
    obtain(profile)
    [left] = seen
    assert lease_ms - 2000 < left <= lease_ms
    assert not shared.client().exists(name)  # released after


# -- falling back to the file cache --------------------------------------------------------------


class Recorder(service.Trace):
    def __init__(self) -> None:
        self.decisions: list[tuple[str, str, dict[str, Any]]] = []

    def decision(self, kind: str, text: str, **facts: Any) -> None:
        self.decisions.append((kind, text, facts))


@contextmanager
def fake_redis(answer: bytes | None) -> Iterator[int]:
    """A TCP server that answers every read with ``answer`` (None: never answers)."""
    sock = socket.create_server(("127.0.0.1", 0))
    sock.settimeout(0.1)
    stop = threading.Event()
    conns: list[socket.socket] = []

    def one(conn: socket.socket) -> None:
        conn.settimeout(0.2)
        while not stop.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            if answer is not None:
                try:
                    conn.sendall(answer)
                except OSError:
                    return

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except (TimeoutError, OSError):
                continue
            conns.append(conn)
            threading.Thread(target=one, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for conn in conns:
            conn.close()
        sock.close()


def _falls_back(
    profile: ResolvedProfile, rsps: responses.RequestsMock, why: str, within: float = 3.0
) -> None:
    """The first call warns once and uses the file cache; the next ones say nothing more."""
    answer(rsps, token="at-fallback-0001")
    trace = Recorder()
    started = time.monotonic()
    first = obtain(profile, trace=trace)
    assert time.monotonic() - started < within
    assert first.source == "grant" and first.token.access_token == Secret("at-fallback-0001")
    [warning] = first.warnings
    assert warning.startswith("cannot use the Redis cache redis://") and why in warning, warning
    assert "the token cache folder" in warning and "OAUTHCLI_CACHE_URL" in warning
    [(kind, text, facts)] = [d for d in trace.decisions if d[0] == "cache_fallback"]
    assert why in facts["reason"] and why in text
    assert list(Path(os.environ["OAUTHCLI_CACHE_DIR"]).glob("*.json"))  # in the file cache
    second = obtain(profile, trace=Recorder())
    assert (second.source, second.warnings) == ("cache", [])
    assert len(rsps.calls) == 1


def test_a_wrong_redis_password_falls_back_to_the_file_cache_once(
    redis_server: RedisServer,
    token_profile: Make,
    rsps: responses.RequestsMock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    redis_server.client().config_set("requirepass", "right-password-1")
    port = redis_server.port
    monkeypatch.setenv("OAUTHCLI_CACHE_URL", f"redis://:wrong-password-1@127.0.0.1:{port}/0")
    _falls_back(token_profile(), rsps, "Redis refused the credentials")
    backend.forget()
    monkeypatch.setenv("OAUTHCLI_CACHE_URL", f"redis://127.0.0.1:{port}/0")
    answer(rsps, token="at-noauth-0002")
    got = obtain(token_profile(client_id="no-password"))  # NOAUTH: refused too
    assert "Redis refused the credentials" in got.warnings[0]
    assert not any("wrong-password-1" in w or "right-password-1" in w for w in got.warnings)


def test_an_unreachable_redis_falls_back(
    token_profile: Make, rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.redisserver import free_port

    monkeypatch.setenv("OAUTHCLI_CACHE_URL", f"redis://127.0.0.1:{free_port()}/0")
    _falls_back(token_profile(), rsps, "cannot connect")


def test_a_server_answering_garbage_falls_back(
    token_profile: Make, rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_redis(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n") as port:
        monkeypatch.setenv("OAUTHCLI_CACHE_URL", f"redis://127.0.0.1:{port}/0")
        _falls_back(token_profile(), rsps, "not Redis's protocol")


def test_a_silent_server_falls_back_after_the_timeout(
    token_profile: Make, rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fake_redis(None) as port:
        monkeypatch.setenv("OAUTHCLI_CACHE_URL", f"redis://127.0.0.1:{port}/0?timeout=0.3")
        _falls_back(token_profile(), rsps, "no answer from Redis within 0.3 s", within=1.5)


def test_redis_failing_mid_run_falls_back_once(
    shared: RedisServer, token_profile: Make, rsps: responses.RequestsMock
) -> None:
    answer(rsps, token="at-before-0001")
    assert obtain(token_profile()).source == "grant"
    assert obtain(token_profile()).source == "cache"
    shared.kill()
    answer(rsps, token="at-after-0002")
    after = obtain(token_profile())
    assert after.source == "grant" and "cannot connect" in after.warnings[0]
    assert len(after.warnings) == 1
    again = obtain(token_profile())
    assert (again.source, again.warnings) == ("cache", [])
    forced = obtain(token_profile(), force=True)
    assert forced.source == "grant" and forced.warnings == []


MISSING_PACKAGE = """
import sys
sys.modules["redis"] = None  # as if oauthcli[redis] was not installed
from pathlib import Path
import responses
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret
from oauthcli.tokens import obtain
p = ResolvedProfile(name="acme", source=Path("acme.yaml"), grant_type="client_credentials",
    token_url=%r, client_id="app", client_auth="client_secret_basic",
    client_secret=Secret("s3cr3t-value"), timeout=5.0)
with responses.RequestsMock() as rsps:
    rsps.post(p.token_url, json={"access_token": "at-nopackage-1", "expires_in": 60})
    first = obtain(p)
second = obtain(p)
print(first.source, second.source, first.warnings, second.warnings)
"""


def test_without_the_redis_package_the_file_cache_is_used_with_one_warning(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", MISSING_PACKAGE % URL],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=30,
        env={**os.environ, "OAUTHCLI_CACHE_URL": "redis://127.0.0.1:1/0"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("grant cache [\"cannot use the Redis cache redis://127.0.0.1:1/0 "
                                  "(the redis package is not installed: pip install 'oauthcli[redis]')")  # fmt: skip
    assert done.stdout.rstrip().endswith("[]")


# -- token list | clear | revoke on Redis ---------------------------------------------------------


def _registry(tmp_path: Path, server: TokenServer, name: str = "acme") -> Path:
    profile = f"""\
        grant_type: client_credentials
        token_url: {server.url}/token
        revocation_url: {server.url}/revoke
        client_id: app-{name}
        client_secret: s3cr3t-value
        """
    return make_registry(tmp_path / "reg", {f"profiles/{name}.yaml": profile})


def test_token_list_clear_and_revoke_work_on_the_fleet_cache(
    shared: RedisServer,
    tmp_path: Path,
    token_server: TokenServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = _registry(tmp_path, token_server)
    make_registry(root, {"profiles/beta.yaml": (root / "profiles/acme.yaml").read_text().replace("app-acme", "app-beta")})  # fmt: skip
    assert run("-r", str(root), "get-token", "acme").code == 0
    assert run("-r", str(root), "get-token", "beta").code == 0
    client = shared.client()
    client.set("oauthcli:" + "c" * 64, b"{garbage")
    client.set("oauthcli:unrelated", b"not ours")
    other_machine(tmp_path, monkeypatch, "runner-2")  # sees the fleet's entries
    listed = run("token", "list")
    assert listed.code == 0, listed
    rows = listed.out.splitlines()
    assert sorted(r.split("\t")[0] for r in rows) == ["acme", "beta"]
    assert f"tokens in the Redis cache {shared.url}, shared by every machine" in listed.err
    assert "oauthcli:" + "c" * 64 in listed.err and "is not valid JSON" in listed.err
    # Not the plain 'token clear' that would empty every machine's entries.
    assert "check OAUTHCLI_CACHE_KEY on this machine" in listed.err
    assert "'oauthcli token clear' removes it" not in listed.err
    assert "at-1-from-server" not in listed.out + listed.err
    one = run("-r", str(root), "token", "clear", "beta")
    assert one.code == 0 and one.out.startswith(
        "removed 1 cached token(s) of profile 'beta' from the Redis cache"
    )
    # Revoke on another machine than the one that fetched it.
    token_server.answer = (200, "application/json", "{}")
    revoked = run("-r", str(root), "token", "revoke", "acme")
    assert revoked.code == 0 and "revoked the access token of profile 'acme'" in revoked.out
    assert token_server.forms[-1]["token_type_hint"] == ["access_token"]
    everything = run("token", "clear")
    assert everything.code == 0, everything
    assert everything.out == (
        f"removed 1 cached token(s) from the Redis cache {shared.url}, for every machine that "
        f"uses it, and 0 from the token cache folder {os.environ['OAUTHCLI_CACHE_DIR']}\n"
    )
    assert sorted(client.keys("*")) == [b"oauthcli:unrelated"]  # only entries are ours
    empty = run("token", "list")
    assert empty.code == 0 and empty.out == ""
    assert empty.err == f"no cached tokens in the Redis cache {shared.url}\n"


def test_token_list_on_an_unreachable_redis_lists_the_file_cache_with_one_warning(
    token_profile: Make, rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.redisserver import free_port

    answer(rsps)
    obtain(token_profile())  # in the file cache
    monkeypatch.setenv("OAUTHCLI_CACHE_URL", f"redis://127.0.0.1:{free_port()}/0")
    listed = run("token", "list")
    assert listed.code == 0 and listed.out.startswith("acme\t")
    assert listed.err.count("warning:") == 1 and "cannot connect" in listed.err


def test_a_dpop_bound_token_stays_in_this_machines_file_cache(
    shared: RedisServer, token_profile: Make, rsps: responses.RequestsMock
) -> None:
    """Bound to this machine's DPoP key (in its cache folder), it is of no use to another."""
    profile = token_profile(dpop=True)
    answer(rsps, token="at-bound-0001", token_type="DPoP")
    got = obtain(profile)
    assert got.source == "grant" and got.token.token_type == "DPoP"
    assert "DPoP" in rsps.calls[0].request.headers
    assert stored(shared, profile) is None and shared.client().keys("oauthcli:*") == []
    assert (Path(os.environ["OAUTHCLI_CACHE_DIR"]) / f"{cache.entry_key(profile)}.json").exists()
    assert obtain(profile).source == "cache"


def test_the_redis_password_never_shows_in_a_verbose_run_that_falls_back(
    redis_server: RedisServer,
    tmp_path: Path,
    token_server: TokenServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import base64
    from urllib.parse import quote

    password = "pw+never/shown:1"
    redis_server.client().config_set("requirepass", "the-right-one")
    url = f"redis://fleet:{quote(password, safe='')}@127.0.0.1:{redis_server.port}/0"
    monkeypatch.setenv("OAUTHCLI_CACHE_URL", url)
    root = _registry(tmp_path, token_server)
    done = run("-r", str(root), "get-token", "-v", "acme")
    assert done.code == 0, done
    assert done.err.count("warning: cannot use the Redis cache") == 1, done.err
    assert f"redis://fleet@127.0.0.1:{redis_server.port}/0" in done.err
    for form in (password, quote(password, safe=""), base64.b64encode(password.encode()).decode()):
        assert form not in done.out + done.err


def test_a_batchs_threads_share_one_redis_cache_and_so_one_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``send --each`` runs rows on threads, which ask for the cache at once."""
    monkeypatch.setenv("OAUTHCLI_CACHE_URL", "redis://127.0.0.1:1/0")
    made: list[object] = []
    connect = backend._connect

    def slow(url: str, key: str) -> backend.Fallback:
        time.sleep(0.05)  # the window in which another thread would make its own
        made.append(url)
        return connect(url, key)

    monkeypatch.setattr(backend, "_connect", slow)
    start = threading.Barrier(8)
    got: list[object] = []

    def ask() -> None:
        start.wait()
        got.append(backend.current())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == 1 and len({id(g) for g in got}) == 1
