"""The Sender against real loopback servers: auth, retries, redirects, 401 recovery, failures."""

from __future__ import annotations

import base64
import socket
import threading
import time
import traceback
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

import oauthcli.tokens
import oauthcli.transport.sending
from oauthcli.auth import ApiKeyAuth, Auth, BasicAuth, BearerAuth, NoAuth, OAuth2Auth
from oauthcli.auth.oauth2 import TRANSIENT_TOKEN_FAILURE
from oauthcli.errors import NetworkError
from oauthcli.request.resolved import (
    ResolvedProfile,
    ResolvedRequest,
    ResolvedRetry,
    ResolvedTLS,
)
from oauthcli.secret import Secret
from oauthcli.tokens import Obtained, Token
from oauthcli.transport.http import backoff_delay
from oauthcli.transport.sending import Sender
from tests.servers import LoopbackServer, Recorded

PROFILE = ResolvedProfile(
    name="acme",
    source=Path("profiles/acme.yaml"),
    grant_type="client_credentials",
    token_url="http://127.0.0.1:9/token",
    client_id="app",
    client_auth="client_secret_basic",
    client_secret=Secret("client-secret-xyz"),
    scope=("api.read",),
)
OAUTH2 = OAuth2Auth(PROFILE)
NO_AUTH = NoAuth()


def request(
    url: str,
    *,
    http_method: str = "GET",
    auth: Auth = NO_AUTH,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    retry: ResolvedRetry | None = None,
    timeout: float = 3.0,
) -> ResolvedRequest:
    return ResolvedRequest(
        message="m",
        method="x",
        http_method=http_method,
        url=url,
        params=[],
        headers=headers or {},
        body=body,
        auth=auth,
        timeout=timeout,
        retry=retry or ResolvedRetry(),
        tls=ResolvedTLS(),
        source=Path("messages/m.yaml"),
    )


def token(value: str, ttl: float = 300) -> Token:
    now = time.time()
    return Token(Secret(value), "Bearer", now + ttl, "api.read", None, None, now)


class FakeTokens:
    """Stands in for oauthcli.tokens: a cached token first, then fresh ones on force."""

    def __init__(self, first: str, first_source: str = "cache") -> None:
        self.first = (first, first_source)
        self.forced = 0
        self.calls = 0
        self.dropped: list[str] = []
        self.lock = threading.Lock()

    def obtain(
        self, profile: ResolvedProfile, *, force: bool = False, trace: Any = None
    ) -> Obtained:
        with self.lock:
            self.calls += 1
            if force:
                self.forced += 1
                time.sleep(0.05)  # a token endpoint takes a while: others must wait, not fetch
                return Obtained(token(f"fresh-token-{self.forced}"), "grant", [])
            return Obtained(token(self.first[0]), self.first[1], [])

    def drop(self, profile: ResolvedProfile, tok: Token) -> None:
        self.dropped.append(tok.access_token.reveal())


@pytest.fixture
def tokens(monkeypatch: pytest.MonkeyPatch) -> FakeTokens:
    fake = FakeTokens("cached-token-0")
    monkeypatch.setattr(oauthcli.tokens, "obtain", fake.obtain)
    monkeypatch.setattr(oauthcli.tokens, "drop", fake.drop)
    return fake


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def sender(sleeps: list[float]) -> Any:
    with Sender(sleep=sleeps.append, warn=lambda text: None) as s:
        yield s


def accept_only(*good: str) -> Any:
    def route(rec: Recorded) -> Any:
        if rec.headers.get("authorization") in {f"Bearer {g}" for g in good}:
            return 200, {"Content-Type": "application/json"}, b'{"ok": true}'
        return 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, b""

    return route


# -- credentials ---------------------------------------------------------------


def test_each_auth_type_goes_on_the_wire(loopback: LoopbackServer, sender: Sender) -> None:
    loopback.reply("/x", 200, b"ok")
    url = loopback.url("/x")
    sender.send(request(url, auth=BasicAuth("alice", Secret("p:w%d"))))
    sender.send(request(url, auth=BearerAuth(Secret("static-bearer"))))
    sender.send(request(url, auth=ApiKeyAuth("X-Key", Secret("k-123"))))
    sender.send(request(url))
    basic, bearer, key, none = loopback.requests
    assert basic.headers["authorization"] == "Basic " + base64.b64encode(b"alice:p:w%d").decode()
    assert bearer.headers["authorization"] == "Bearer static-bearer"
    assert key.headers["x-key"] == "k-123" and "authorization" not in key.headers
    assert "authorization" not in none.headers


def test_oauth2_token_is_obtained_once_and_reused(
    loopback: LoopbackServer, sender: Sender, tokens: FakeTokens
) -> None:
    loopback.reply("/x", 200, b"ok")
    for _ in range(3):
        sender.send(request(loopback.url("/x"), auth=OAUTH2))
    assert tokens.calls == 1
    assert {r.headers["authorization"] for r in loopback.requests} == {"Bearer cached-token-0"}
    assert len({r.client for r in loopback.requests}) == 1  # one pooled connection


@pytest.mark.parametrize("transient", [False, True])
def test_a_token_failure_stands_refusals_for_good_blips_for_a_while(
    loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch, transient: bool
) -> None:
    from oauthcli.errors import GrantError

    calls: list[int] = []

    def failing(profile: ResolvedProfile, *, force: bool = False, trace: Any = None) -> Obtained:
        calls.append(1)
        raise GrantError(f"token request failed #{len(calls)}", transient=transient)

    monkeypatch.setattr(oauthcli.tokens, "obtain", failing)
    clock = [100.0]
    monkeypatch.setattr("oauthcli.auth.oauth2.time.monotonic", lambda: clock[0])
    raised: list[BaseException] = []
    with Sender() as sender:
        for _ in range(50):
            with pytest.raises(GrantError, match="#1") as caught:
                sender.send(request(loopback.url("/x"), auth=OAUTH2))
            raised.append(caught.value)
        # A copy each time: one object raised again would chain every call's frames to it.
        assert len({id(e) for e in raised}) == 50
        assert max(len(traceback.extract_tb(e.__traceback__)) for e in raised) < 10
        clock[0] += TRANSIENT_TOKEN_FAILURE + 0.1
        with pytest.raises(GrantError, match="#2" if transient else "#1"):
            sender.send(request(loopback.url("/x"), auth=OAUTH2))
    assert len(calls) == (2 if transient else 1)
    assert loopback.requests == []


def test_a_token_failure_that_may_pass_is_not_remembered(
    loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oauthcli.errors import TokenError

    calls: list[int] = []

    def busy(profile: ResolvedProfile, *, force: bool = False, trace: Any = None) -> Obtained:
        calls.append(1)
        raise TokenError("another oauthcli process has been renewing the token")

    monkeypatch.setattr(oauthcli.tokens, "obtain", busy)
    with Sender() as sender:
        for _ in range(3):
            with pytest.raises(TokenError, match="another oauthcli process"):
                sender.send(request(loopback.url("/x"), auth=OAUTH2))
    assert len(calls) == 3


def test_user_authorization_header_wins_and_no_token_is_fetched(
    loopback: LoopbackServer, sender: Sender, tokens: FakeTokens
) -> None:
    loopback.reply("/x", 200, b"ok")
    sender.send(request(loopback.url("/x"), auth=OAUTH2, headers={"authorization": "Bearer mine"}))
    assert loopback.requests[0].headers["authorization"] == "Bearer mine"
    assert tokens.calls == 0


def test_netrc_never_replaces_the_configured_auth(
    loopback: LoopbackServer, sender: Sender, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-pass\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    loopback.reply("/x", 200, b"ok")
    sender.send(request(loopback.url("/x"), auth=BearerAuth(Secret("mine-1"))))
    sender.send(request(loopback.url("/x")))
    assert loopback.requests[0].headers["authorization"] == "Bearer mine-1"
    assert "authorization" not in loopback.requests[1].headers


def test_proxies_still_come_from_the_environment(
    loopback2: LoopbackServer, sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", loopback2.base)
    monkeypatch.setenv("http_proxy", loopback2.base)
    loopback2.routes["http://127.0.0.3:1/via-proxy"] = lambda rec: (200, {}, b"proxied")
    result = sender.send(request("http://127.0.0.3:1/via-proxy"))
    assert result.body == b"proxied"
    assert loopback2.requests[0].path == "http://127.0.0.3:1/via-proxy"


def test_proxy_settings_are_per_origin_through_one_sender(
    loopback: LoopbackServer,
    loopback2: LoopbackServer,
    sender: Sender,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The environment's proxy settings are remembered per origin, never one origin's for another."""
    monkeypatch.setenv("HTTP_PROXY", loopback2.base)
    monkeypatch.setenv("http_proxy", loopback2.base)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    loopback.reply("/direct", 200, b"direct")
    loopback2.routes["http://127.0.0.3:1/via-proxy"] = lambda rec: (200, {}, b"proxied")
    for _ in range(2):
        assert sender.send(request(loopback.url("/direct"))).body == b"direct"
        assert sender.send(request("http://127.0.0.3:1/via-proxy")).body == b"proxied"
    assert [r.path for r in loopback.requests] == ["/direct", "/direct"]
    assert [r.path for r in loopback2.requests] == ["http://127.0.0.3:1/via-proxy"] * 2


# -- retries -------------------------------------------------------------------


def flaky(*replies: Any) -> Any:
    """Answer with each reply in turn, then repeat the last."""
    queue = list(replies)

    def route(rec: Recorded) -> Any:
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return route


def test_retry_after_seconds_is_honoured(
    loopback: LoopbackServer, sender: Sender, sleeps: list[float]
) -> None:
    loopback.routes["/x"] = flaky((503, {"Retry-After": "2"}, b""), (200, {}, b"ok"))
    result = sender.send(request(loopback.url("/x"), retry=ResolvedRetry(attempts=3)))
    assert (result.status, result.attempts, sleeps) == (200, 2, [2.0])


def test_retry_after_date_is_honoured_and_capped(
    loopback: LoopbackServer, sender: Sender, sleeps: list[float]
) -> None:
    soon = formatdate(time.time() + 10, usegmt=True)
    late = formatdate(time.time() + 3600, usegmt=True)
    loopback.routes["/x"] = flaky(
        (429, {"Retry-After": soon}, b""), (429, {"Retry-After": late}, b""), (200, {}, b"ok")
    )
    retry = ResolvedRetry(attempts=3, max_delay=30)
    result = sender.send(request(loopback.url("/x"), retry=retry))
    assert result.attempts == 3
    assert 7 <= sleeps[0] <= 10.5 and sleeps[1] == 30.0


def test_backoff_is_full_jitter_under_the_exponential_cap(
    loopback: LoopbackServer, sender: Sender, sleeps: list[float]
) -> None:
    loopback.reply("/x", 503)
    retry = ResolvedRetry(attempts=4, backoff=0.5, max_delay=1.5)
    result = sender.send(request(loopback.url("/x"), retry=retry))
    assert (result.status, result.attempts) == (503, 4)
    assert len(sleeps) == 3
    assert all(0 <= s <= cap for s, cap in zip(sleeps, (0.5, 1.0, 1.5), strict=True))
    assert backoff_delay(retry, 10, rand=lambda: 1.0) == 1.5


def test_post_is_not_retried_unless_idempotent_only_is_false(
    loopback: LoopbackServer, sender: Sender, sleeps: list[float]
) -> None:
    loopback.reply("/x", 503)
    url = loopback.url("/x")
    assert (
        sender.send(request(url, http_method="POST", retry=ResolvedRetry(attempts=3))).attempts == 1
    )
    loose = ResolvedRetry(attempts=3, idempotent_only=False)
    assert sender.send(request(url, http_method="POST", retry=loose)).attempts == 3


# -- network failures ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_connection_refused_is_retried_then_a_network_error(
    sender: Sender, sleeps: list[float]
) -> None:
    url = f"http://127.0.0.1:{free_port()}/x"
    with pytest.raises(NetworkError, match=r"cannot reach .*/x: connection refused"):
        sender.send(request(url, retry=ResolvedRetry(attempts=3)))
    assert len(sleeps) == 2


def test_reset_connection_is_a_network_error(loopback: LoopbackServer, sender: Sender) -> None:
    loopback.routes["/x"] = lambda rec: "reset"
    with pytest.raises(NetworkError, match="reset|closed the connection"):
        sender.send(request(loopback.url("/x")))


def test_read_timeout_is_a_network_error(loopback: LoopbackServer, sender: Sender) -> None:
    def slow(rec: Recorded) -> Any:
        time.sleep(0.4)
        return 200, {}, b"late"

    loopback.routes["/x"] = slow
    with pytest.raises(NetworkError, match=r"no response within 0.1 s"):
        sender.send(request(loopback.url("/x"), timeout=0.1))


def test_dns_failure_is_a_network_error(sender: Sender, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: Any, **kwargs: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    with pytest.raises(NetworkError, match="DNS lookup failed for nohost.invalid"):
        sender.send(request("http://nohost.invalid/x"))


# -- redirects ---------------------------------------------------------------------


def test_same_origin_redirect_keeps_credentials_and_cookies(
    loopback: LoopbackServer, sender: Sender
) -> None:
    loopback.reply("/a", 302, Location="/b", Set_Cookie="session=s1; Path=/")
    loopback.reply("/b", 200, b"there")
    auth = BearerAuth(Secret("bearer-1"))
    result = sender.send(request(loopback.url("/a"), auth=auth))
    assert (result.status, result.body, result.url) == (200, b"there", loopback.url("/b"))
    second = loopback.requests[1]
    assert second.headers["authorization"] == "Bearer bearer-1"
    assert second.headers["cookie"] == "session=s1"


@pytest.mark.parametrize("auth_header", ["authorization", "x-key"])
def test_cross_origin_redirect_drops_credentials_and_cookies(
    loopback: LoopbackServer, loopback2: LoopbackServer, sender: Sender, auth_header: str
) -> None:
    loopback.reply("/a", 302, Location=loopback2.url("/b"), Set_Cookie="session=s1; Path=/")
    loopback2.reply("/b", 200, b"elsewhere")
    auth = (
        BearerAuth(Secret("bearer-1"))
        if auth_header == "authorization"
        else ApiKeyAuth("X-Key", Secret("key-1"))
    )
    result = sender.send(
        request(loopback.url("/a"), auth=auth, headers={"Cookie": "pref=1", "Accept": "text/x"})
    )
    assert result.status == 200 and result.redirected_from_origin and not result.credentials_sent
    assert auth_header in loopback.requests[0].headers
    moved = loopback2.requests[0].headers
    assert auth_header not in moved and "cookie" not in moved
    assert moved["accept"] == "text/x"


def test_other_port_is_another_origin(loopback: LoopbackServer, sender: Sender) -> None:
    with_port = LoopbackServer("127.0.0.1")
    try:
        loopback.reply("/a", 301, Location=with_port.url("/b"))
        with_port.reply("/b", 200)
        sender.send(request(loopback.url("/a"), auth=BearerAuth(Secret("b-2"))))
        assert "authorization" not in with_port.requests[0].headers
    finally:
        with_port.close()


def test_post_follows_only_307_and_308(loopback: LoopbackServer, sender: Sender) -> None:
    loopback.reply("/p302", 302, Location="/target")
    loopback.reply("/p307", 307, Location="/target")
    loopback.reply("/target", 201, b"made")
    url = loopback.url
    first = sender.send(request(url("/p302"), http_method="POST", body=b"data"))
    assert (first.status, len(loopback.requests)) == (302, 1)
    second = sender.send(request(url("/p307"), http_method="POST", body=b"data"))
    assert second.status == 201
    assert (loopback.requests[-1].method, loopback.requests[-1].body) == ("POST", b"data")


def test_307_never_resends_a_body_carrying_credentials(
    loopback: LoopbackServer, sender: Sender
) -> None:
    Secret("hunter2-password")  # a secret known to this process, e.g. from a message's auth
    loopback.reply("/p", 307, Location="/elsewhere")
    result = sender.send(
        request(loopback.url("/p"), http_method="POST", body=b"user=a&password=hunter2-password")
    )
    assert result.status == 307
    assert [r.path for r in loopback.requests] == ["/p"]


def test_get_303_and_redirect_limit(loopback: LoopbackServer, sender: Sender) -> None:
    loopback.reply("/loop", 302, Location="/loop")
    with pytest.raises(NetworkError, match="too many redirects"):
        sender.send(request(loopback.url("/loop")))
    assert len(loopback.requests) == 11


# -- 401 recovery -------------------------------------------------------------------


def test_401_with_cached_token_renews_once_and_succeeds(
    loopback: LoopbackServer, sender: Sender, tokens: FakeTokens
) -> None:
    loopback.routes["/x"] = accept_only("fresh-token-1")
    result = sender.send(request(loopback.url("/x"), auth=OAUTH2))
    assert (result.status, result.attempts, result.token_renewed) == (200, 2, True)
    assert tokens.dropped == ["cached-token-0"] and tokens.forced == 1
    assert [r.headers["authorization"] for r in loopback.requests] == [
        "Bearer cached-token-0",
        "Bearer fresh-token-1",
    ]


def test_second_401_is_final(loopback: LoopbackServer, sender: Sender, tokens: FakeTokens) -> None:
    loopback.routes["/x"] = accept_only()
    result = sender.send(request(loopback.url("/x"), auth=OAUTH2))
    assert (result.status, result.attempts, result.token_renewed) == (401, 2, True)
    assert tokens.forced == 1


def test_401_on_a_fresh_token_is_not_retried(
    loopback: LoopbackServer, sender: Sender, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeTokens("fresh-from-grant", first_source="grant")
    monkeypatch.setattr(oauthcli.tokens, "obtain", fake.obtain)
    loopback.routes["/x"] = accept_only()
    result = sender.send(request(loopback.url("/x"), auth=OAUTH2))
    assert (result.status, result.attempts, result.token_renewed) == (401, 1, False)
    assert fake.calls == 1


def test_threads_share_one_renewal(loopback: LoopbackServer, tokens: FakeTokens) -> None:
    loopback.routes["/x"] = accept_only("fresh-token-1")
    results: list[int] = []
    with Sender(pool_size=8, warn=lambda text: None) as shared:
        shared.send(request(loopback.url("/ping"), auth=OAUTH2))  # takes the cached token

        def work() -> None:
            results.append(shared.send(request(loopback.url("/x"), auth=OAUTH2)).status)

        workers = [threading.Thread(target=work) for _ in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    assert results == [200] * 8
    assert tokens.forced == 1 and tokens.dropped == ["cached-token-0"]


def test_a_401_goes_to_the_auth_before_a_retry_that_lists_it(
    loopback: LoopbackServer, sender: Sender, tokens: FakeTokens, sleeps: list[float]
) -> None:
    loopback.routes["/x"] = accept_only("fresh-token-1")
    retry = ResolvedRetry(attempts=3, on_status=(401, 503))
    result = sender.send(request(loopback.url("/x"), auth=OAUTH2, retry=retry))
    assert (result.status, result.attempts, result.token_renewed, sleeps) == (200, 2, True, [])
    # A 401 the auth cannot help with (a fresh token refused again) is then retried.
    loopback.requests.clear()
    loopback.routes["/x"] = accept_only()
    with Sender(sleep=sleeps.append, warn=lambda text: None) as other:
        result = other.send(request(loopback.url("/x"), auth=OAUTH2, retry=retry))
    assert (result.status, result.token_renewed) == (401, True)
    assert result.attempts == 4 and len(sleeps) == 2  # one renewal, then two retries
