"""Each auth type (oauthcli.auth): what goes on the wire, what --dry-run, show and curl say.

Every auth is one class behind one interface; these tests hold each class to it through
the CLI (``send``, ``send --dry-run``) against a loopback API, and through the
interface itself (a new auth type needs nothing but its class).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import ClassVar

import pytest

from oauthcli.auth import (
    ApiKeyAuth,
    Auth,
    AuthState,
    BasicAuth,
    BearerAuth,
    NoAuth,
    OAuth2Auth,
    Outgoing,
)
from oauthcli.secret import MASK, Secret
from oauthcli.trace import Trace
from oauthcli.transport.sending import Sender
from tests.clirun import run
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded
from tests.test_sending import PROFILE, request

BASIC_PASSWORD = "pw-auth-LEAK-3b1"
STATIC_TOKEN = "bt-auth-LEAK-77a"
API_KEY = "ak-auth-LEAK-c09"
ACCESS_TOKEN = "at-auth-LEAK-e52"
SECRETS = (BASIC_PASSWORD, STATIC_TOKEN, API_KEY, ACCESS_TOKEN)

AUTHS = {
    "none": "{type: none}",
    "basic": "{type: basic, username: alice, password: '${env:AUTH_PW}'}",
    "bearer": "{type: bearer, token: '${env:AUTH_TOKEN}'}",
    "api_key": "{type: api_key, header: X-Api-Key, value: '${env:AUTH_KEY}'}",
    "oauth2": "{type: oauth2, profile: acme}",
    "oauth2-mac": "{type: oauth2, profile: mac}",
}
#: The credential header as the server must receive it, and as --dry-run must show it.
WIRE = {
    "none": (None, None, None),
    "basic": (
        "authorization",
        "Basic " + base64.b64encode(f"alice:{BASIC_PASSWORD}".encode()).decode(),
        f"Basic {MASK}",
    ),
    "bearer": ("authorization", f"Bearer {STATIC_TOKEN}", f"Bearer {MASK}"),
    "api_key": ("x-api-key", API_KEY, MASK),
    "oauth2": ("authorization", f"Bearer {ACCESS_TOKEN}", f"Bearer {MASK}"),
    "oauth2-mac": ("authorization", f"MAC {ACCESS_TOKEN}", f"MAC {MASK}"),
}


def profile(server: LoopbackServer, extra: str = "") -> str:
    return (
        "grant_type: client_credentials\n"
        f"token_url: {server.url('/token')}\n"
        "client_id: app\n"
        "client_secret: cs-auth-LEAK-1\n" + extra
    )


def registry(tmp_path: Path, server: LoopbackServer, kind: str) -> Path:
    return make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": profile(server),
            "profiles/mac.yaml": profile(server, "token_scheme: MAC\n"),
            "messages/items.yaml": (
                f"endpoint: {server.url('/api/items')}\n"
                f"auth: {AUTHS[kind]}\n"
                "headers: {X-Team: blue}\n"
                "methods:\n  list: {http_method: GET}\n"
                "  create: {http_method: POST, json: {name: x}}\n"
            ),
        },
    )


@pytest.fixture
def api(loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch) -> LoopbackServer:
    monkeypatch.setenv("AUTH_PW", BASIC_PASSWORD)
    monkeypatch.setenv("AUTH_TOKEN", STATIC_TOKEN)
    monkeypatch.setenv("AUTH_KEY", API_KEY)
    token = json.dumps({"access_token": ACCESS_TOKEN, "token_type": "bearer", "expires_in": 300})
    loopback.reply("/token", 200, token.encode(), Content_Type="application/json")
    loopback.reply("/api/items", 200, b"{}", Content_Type="application/json")
    return loopback


def dry_run_headers(out: str) -> dict[str, str]:
    """The header lines of --dry-run: after the request line, up to the first blank line."""
    lines = out.splitlines()[1:]
    headers = {}
    for line in lines[: lines.index("")]:
        name, _, value = line.partition(": ")
        headers[name.lower()] = value
    return headers


def api_calls(server: LoopbackServer) -> list[Recorded]:
    return [r for r in server.requests if r.path == "/api/items"]


@pytest.mark.parametrize("kind", list(AUTHS))
@pytest.mark.parametrize("method", ["list", "create"])
def test_a_dry_run_shows_exactly_the_headers_sent_masked(
    tmp_path: Path, api: LoopbackServer, kind: str, method: str
) -> None:
    root = registry(tmp_path, api, kind)
    dry = run("-r", str(root), "send", f"items.{method}", "--dry-run")
    assert dry.code == 0, dry
    assert not [s for s in SECRETS if s in dry.out + dry.err]
    assert [r for r in api.requests if r.path == "/token"] == []  # a dry run obtains nothing
    shown = dry_run_headers(dry.out)
    sent = run("-r", str(root), "send", f"items.{method}")
    assert sent.code == 0, sent
    [received] = api_calls(api)
    # Every header sent is shown (but those http.client adds itself), and no other.
    assert set(shown) == set(received.headers) - {"host", "content-length", "connection"}
    name, wire, masked = WIRE[kind]
    for header, value in shown.items():
        if header == name:
            assert (value, received.headers[header]) == (masked, wire)
        else:
            assert received.headers[header] == value, header
    if name is None:
        assert "authorization" not in received.headers


@pytest.mark.parametrize("kind", list(AUTHS))
def test_a_header_given_with_h_takes_the_credentials_place(
    tmp_path: Path, api: LoopbackServer, kind: str
) -> None:
    root = registry(tmp_path, api, kind)
    name = WIRE[kind][0] or "authorization"
    mine = "Mine own-LEAK-value"
    dry = run("-r", str(root), "send", "items.list", "-H", f"{name}: {mine}", "--dry-run")
    shown = dry_run_headers(dry.out)[name]  # masked, the scheme word kept on Authorization
    assert dry.code == 0 and shown == (f"Mine {MASK}" if name == "authorization" else MASK), dry
    assert "own-LEAK-value" not in dry.out
    sent = run("-r", str(root), "send", "items.list", "-H", f"{name}: {mine}")
    assert sent.code == 0, sent
    assert api_calls(api)[0].headers[name] == mine
    assert [r for r in api.requests if r.path == "/token"] == []


@pytest.mark.parametrize(
    ("kind", "curl", "comment"),
    [
        ("none", None, None),
        ("basic", '-u "alice:$PASSWORD"', None),
        ("bearer", '-H "Authorization: Bearer $TOKEN"', None),
        ("api_key", '-H "X-Api-Key: $API_KEY"', None),
        ("oauth2", '-H "Authorization: Bearer $TOKEN"', "# TOKEN=$(oauthcli get-token acme --raw)"),
        ("oauth2-mac", '-H "Authorization: MAC $TOKEN"', "# TOKEN=$(oauthcli get-token mac --raw)"),
    ],
)
def test_the_curl_line_reads_the_credentials_from_the_shell(
    tmp_path: Path, api: LoopbackServer, kind: str, curl: str | None, comment: str | None
) -> None:
    root = registry(tmp_path, api, kind)
    dry = run("-r", str(root), "send", "items.list", "--dry-run")
    lines = dry.out.splitlines()
    curl_line = next(line for line in lines if line.startswith("curl "))
    if curl is None:
        assert "$TOKEN" not in curl_line and "-u " not in curl_line
    else:
        assert curl in curl_line
    assert (comment in lines) if comment else not any(line.startswith("# TOKEN") for line in lines)


def test_each_auth_summarises_itself_with_its_secrets_masked() -> None:
    auths: list[Auth] = [
        NoAuth(),
        BasicAuth("alice", Secret(BASIC_PASSWORD)),
        BearerAuth(Secret(STATIC_TOKEN)),
        ApiKeyAuth("X-Api-Key", Secret(API_KEY)),
        OAuth2Auth(PROFILE),
    ]
    summaries = [a.summary() for a in auths]
    assert summaries[:4] == [
        "none",
        f"basic as alice (password {MASK})",
        f"bearer {MASK}",
        f"api_key in header X-Api-Key ({MASK})",
    ]
    assert summaries[4].startswith("oauth2 via profile acme (client_credentials")
    for auth in auths:
        assert not [s for s in SECRETS if s in repr(auth) or s in auth.summary()]
    assert auths[3].secret_headers() >= {"x-api-key", "authorization", "cookie"}
    assert auths[1].secret_headers() == auths[0].secret_headers()
    assert [a.header for a in auths] == [
        None,
        "Authorization",
        "Authorization",
        "X-Api-Key",
        "Authorization",
    ]


def test_a_dry_run_flow_attaches_the_masked_value_and_obtains_nothing() -> None:
    for auth, value in (
        (BasicAuth("alice", Secret("pw-x")), f"Basic {MASK}"),
        (OAuth2Auth(PROFILE), f"Bearer {MASK}"),  # PROFILE's token_url answers nothing
    ):
        out = Outgoing({}, {}, Trace())
        flow = auth.auth_flow(out, AuthState(dry_run=True))
        assert next(flow).headers == {"Authorization": value}
        with pytest.raises(StopIteration):
            flow.send(None)  # type: ignore[arg-type]


class _Signed(Auth):
    """A new auth type, as a plugin would write it: a header of its own, one class."""

    __slots__ = ()
    type: ClassVar[str] = "signed"

    @property
    def header(self) -> str:
        return "X-Signature"

    def value(self) -> str:
        return "sig-LEAK-9"

    def secret_headers(self) -> frozenset[str]:
        return super().secret_headers() | {"x-signature"}

    def summary(self) -> str:
        return f"signed ({MASK})"


def test_a_new_auth_type_is_one_class(loopback: LoopbackServer) -> None:
    loopback.reply("/x", 200, b"ok")
    auth = _Signed()
    with Sender(warn=lambda text: None) as sender:
        result = sender.send(request(loopback.url("/x"), auth=auth))
    assert loopback.requests[0].headers["x-signature"] == "sig-LEAK-9"
    assert result.credentials_sent and "x-signature" in result.secret_headers
