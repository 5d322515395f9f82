"""``oauthcli doctor``: each check against real servers on loopback (the sandbox, TLS servers
with certificates made here, token endpoints and metadata that misbehave on purpose), the
exit code of the worst failure, and nothing secret on any line."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from oauthcli.diagnose import Check, exit_code
from oauthcli.sandbox import Sandbox
from tests.clirun import Result, run
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded

ROOT = Path(__file__).resolve().parents[1]
SECRET = "doctor-s3cr3t-Value+/%:"


# -- helpers -----------------------------------------------------------------------------------


def jwt(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJlLW5vdC1jaGVja2Vk"


def token_answer(scope: str = "api.read api.write", aud: str = "http://127.0.0.1") -> bytes:
    now = int(time.time())
    access = jwt({"iss": "https://login.test", "aud": aud, "scope": scope, "iat": now,
                  "exp": now + 600, "sub": "app"})  # fmt: skip
    answer = {"access_token": access, "token_type": "Bearer", "expires_in": 600, "scope": scope}
    return json.dumps(answer).encode()


def dated(
    body: bytes = b"{}", status: int = 200, offset: float = 0.0, date: str | None = None
) -> Callable[[Recorded], Any]:
    """A route answering ``body`` with a Date header ``offset`` seconds off (or ``date``)."""

    def reply(rec: Recorded) -> Any:
        stamp = date if date is not None else formatdate(time.time() + offset, usegmt=True)
        return status, {"Content-Type": "application/json", "Date": stamp}, body

    return reply


def doctor(root: Path, *args: str) -> Result:
    return run("-r", str(root), "doctor", *args)


def lines(result: Result, name: str) -> list[str]:
    return [line for line in result.out.splitlines() if line[5:].startswith(name + " ")]


def statuses(result: Result) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for line in result.out.splitlines():
        word, name = line[:4].strip(), line[5:18].strip()
        found.setdefault(name, set()).add(word)
    return found


def profile_yaml(token_url: str, **extra: str) -> str:
    text = (
        "grant_type: client_credentials\n"
        f"token_url: {token_url}\n"
        "client_id: app\n"
        f"client_secret: '{SECRET}'\n"
        "scope: api.read api.write\n"
        "timeout: 3\n"
    )
    return text + "".join(f"{k}: {v}\n" for k, v in extra.items())


def message_yaml(endpoint: str, profile: str = "acme", **extra: str) -> str:
    text = (
        f"endpoint: {endpoint}\n"
        f"auth: {{type: oauth2, profile: {profile}}}\n"
        "methods:\n  list: {http_method: GET}\n"
    )
    return text + "".join(f"{k}: {v}\n" for k, v in extra.items())


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the test's folder, so files are named as ``profiles/acme.yaml``."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def token_api(loopback: LoopbackServer) -> LoopbackServer:
    """A token endpoint and an API on one loopback server; no metadata (404)."""
    loopback.routes["/token"] = dated(token_answer())
    loopback.routes["/"] = dated(b"root")
    return loopback


# -- the sandbox ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(port=0, token_ttl=300) as running:
        yield running


def test_the_sandbox_profiles_and_messages_pass(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHCLI_SANDBOX_URL", sandbox.url)
    got = doctor(ROOT, "sandbox-basic")
    assert got.code == 0, got
    assert "FAIL" not in got.out and "warn" not in got.out
    seen = statuses(got)
    for name in ("registry", "dns", "discovery", "client auth", "grant", "clock", "token"):
        assert seen[name] == {"pass"}, (name, got.out)
    assert seen["tls"] == {"skip"} and "plain http on loopback" in got.out
    [token] = lines(got, "token")
    assert "new from" in token and "aud " in token and "scope incident.read" in token
    assert "doctor sandbox-basic: " in got.err and "exit 0" in got.err

    again = doctor(ROOT, "incidents")
    assert again.code == 0, again
    assert "cached, valid for" in lines(again, "token")[0]  # reused, not asked for again
    dry = lines(again, "dry run")
    assert len(dry) == 3 and all(line.endswith("(not sent)") for line in dry)
    assert any(f"POST {sandbox.url}/api/now/table/incident " in line for line in dry)
    assert len(lines(again, "call")) == 3 and "FAIL" not in again.out

    # The token is on no line, masked or JSON: only its shape.
    import oauthcli

    with oauthcli.open_registry(ROOT) as reg:
        raw = reg.get_token("sandbox-basic").access_token.reveal()
    as_json = doctor(ROOT, "incidents.list", "--json")
    for result in (got, again, as_json):
        assert raw not in result.both and raw[:40] not in result.both
        assert "basic+secret" not in result.both  # the sandbox client's secret


def test_an_interactive_grant_without_a_cached_token_is_skipped_never_signed_in(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("OAUTHCLI_SANDBOX_URL", sandbox.url)
    opened = tmp_path / "browser-was-opened"
    monkeypatch.setenv("BROWSER", f"touch {opened}")
    monkeypatch.setattr("oauthcli.tokens.signin.interactive", lambda: True)  # as at a terminal
    got = doctor(ROOT, "sandbox-authcode")
    assert got.code == 0, got
    [token] = lines(got, "token")
    assert (
        token.startswith("skip") and "sign in first: oauthcli get-token sandbox-authcode" in token
    )
    assert not opened.exists()


# -- the registry --------------------------------------------------------------------------------


def test_an_unknown_name_fails_with_exit_3_and_the_rest_is_skipped(tmp_path: Path) -> None:
    root = make_registry(tmp_path, {"profiles/acme.yaml": profile_yaml("http://127.0.0.1:9/t")})
    got = doctor(root, "acm")
    assert got.code == 3, got
    [line] = lines(got, "registry")
    assert line.startswith("FAIL") and "no profile or message named 'acm'" in line
    assert "did you mean 'acme'" in line
    others = {name: words for name, words in statuses(got).items() if name != "registry"}
    assert set(others) == {"dns", "tls", "clock", "token"}
    assert all(words == {"skip"} for words in others.values()), got.out


def test_a_registry_problem_names_file_and_line(tmp_path: Path) -> None:
    root = make_registry(
        tmp_path,
        {"profiles/acme.yaml": profile_yaml("http://127.0.0.1:9/t") + "colour: blue\n"},
    )
    got = doctor(root, "acme")
    assert got.code == 3, got
    [line] = lines(got, "registry")
    assert "profiles/acme.yaml:7" in line and "colour" in line


# -- DNS -----------------------------------------------------------------------------------------


def test_a_host_that_does_not_resolve_fails_with_exit_7(tmp_path: Path) -> None:
    root = make_registry(
        tmp_path,
        {"profiles/acme.yaml": profile_yaml("https://login.doctor-test.invalid/oauth/token")},
    )
    got = doctor(root, "acme")
    assert got.code == 7, got
    [dns] = lines(got, "dns")
    assert dns.startswith("FAIL") and "login.doctor-test.invalid (token endpoint)" in dns
    assert "token_url in profiles/acme.yaml" in dns
    assert lines(got, "tls")[0].startswith("skip")
    assert lines(got, "token")[0].startswith("skip")  # not asked again: DNS said why


def test_an_issuer_that_does_not_resolve_is_not_asked_again_for_the_token(
    tmp_path: Path,
) -> None:
    root = make_registry(
        tmp_path,
        {
            "profiles/acme.yaml": "grant_type: client_credentials\n"
            "issuer: https://login.doctor-test.invalid\n"
            f"client_id: app\nclient_secret: '{SECRET}'\ntimeout: 3\n"
        },
    )
    got = doctor(root, "acme")
    assert got.code == 7, got
    assert lines(got, "dns")[0].startswith("FAIL")
    [token] = lines(got, "token")
    assert token.startswith("skip") and "issuer login.doctor-test.invalid" in token, token
    assert "does not resolve" in token and SECRET not in got.both


# -- the token -----------------------------------------------------------------------------------


def test_a_refused_token_request_fails_with_exit_6_and_the_servers_error(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    refusal = {"error": "invalid_client", "error_description": "client authentication failed"}
    loopback.routes["/token"] = dated(json.dumps(refusal).encode(), status=401)
    root = make_registry(tmp_path, {"profiles/acme.yaml": profile_yaml(loopback.url("/token"))})
    got = doctor(root, "acme")
    assert got.code == 6, got
    [token] = lines(got, "token")
    assert token.startswith("FAIL") and "invalid_client" in token
    assert "client authentication failed" in token and "client_auth in profiles/acme.yaml" in token
    assert SECRET not in got.both


def test_a_message_whose_scope_the_token_lacks_fails_naming_the_scope(
    tmp_path: Path, token_api: LoopbackServer
) -> None:
    token_api.routes["/token"] = dated(token_answer(scope="api.read"))
    root = make_registry(
        tmp_path,
        {
            "profiles/acme.yaml": profile_yaml(token_api.url("/token")),
            "messages/items.yaml": message_yaml(token_api.url("/api/items")),
        },
    )
    got = doctor(root, "items.list")
    assert got.code == 4, got
    [call] = lines(got, "call")
    assert call.startswith("FAIL") and "api.write" in call and "not granted" in call
    assert [r.path for r in token_api.requests if r.path.startswith("/api")] == []  # never sent
    assert lines(got, "dry run")[0].startswith("pass")


def test_a_token_for_another_audience_fails_the_call(
    tmp_path: Path, token_api: LoopbackServer
) -> None:
    token_api.routes["/token"] = dated(token_answer(aud="https://api.elsewhere.test"))
    root = make_registry(
        tmp_path,
        {
            "profiles/acme.yaml": profile_yaml(token_api.url("/token")),
            "messages/items.yaml": message_yaml(token_api.url("/api/items")),
        },
    )
    got = doctor(root, "items")
    assert got.code == 4, got
    assert "aud is https://api.elsewhere.test but you are calling host 127.0.0.1" in got.out


def test_force_gets_a_new_token(tmp_path: Path, token_api: LoopbackServer) -> None:
    root = make_registry(tmp_path, {"profiles/acme.yaml": profile_yaml(token_api.url("/token"))})
    assert "new from" in lines(doctor(root, "acme"), "token")[0]
    assert "cached" in lines(doctor(root, "acme"), "token")[0]
    assert "new from" in lines(doctor(root, "acme", "--force"), "token")[0]
    assert sum(r.method == "POST" for r in token_api.requests) == 2


def test_missing_variables_warn_and_name_the_flag(
    tmp_path: Path, token_api: LoopbackServer
) -> None:
    root = make_registry(
        tmp_path,
        {
            "profiles/acme.yaml": profile_yaml(token_api.url("/token")).replace(
                "api.read api.write", "api.read"
            ),
            "messages/items.yaml": (
                f"endpoint: {token_api.url('/api/items')}\n"
                "auth: {type: oauth2, profile: acme}\n"
                "methods:\n  get: {http_method: GET, path: '/${id}'}\n"
            ),
        },
    )
    token_api.routes["/token"] = dated(token_answer(scope="api.read"))
    got = doctor(root, "items.get")
    assert got.code == 0, got
    [dry] = lines(got, "dry run")
    assert dry.startswith("warn") and "no value for id" in dry and "-V id=VALUE" in dry
    given = doctor(root, "items.get", "-V", "id=42")
    assert lines(given, "dry run")[0].startswith("pass") and "/api/items/42" in given.out


# -- the clock -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "word", "code"), [(600.0, "FAIL", 6), (-600.0, "FAIL", 6), (20.0, "warn", 0)]
)
def test_a_server_clock_off_by_minutes_fails(
    tmp_path: Path, token_api: LoopbackServer, offset: float, word: str, code: int
) -> None:
    token_api.routes["/token"] = dated(token_answer(), offset=offset)
    root = make_registry(tmp_path, {"profiles/acme.yaml": profile_yaml(token_api.url("/token"))})
    got = doctor(root, "acme")
    assert got.code == code, got
    [line] = lines(got, "clock")
    assert line.startswith(word), line
    side = "behind" if offset > 0 else "ahead of"
    assert f"{abs(offset):.0f} s" in line or f"{abs(offset) - 1:.0f} s" in line
    assert side in line


def test_a_clock_behind_by_more_than_the_leeway_fails(
    tmp_path: Path, token_api: LoopbackServer
) -> None:
    token_api.routes["/token"] = dated(token_answer(), offset=30)
    profile = profile_yaml(token_api.url("/token"), token_leeway="10")
    root = make_registry(tmp_path, {"profiles/acme.yaml": profile})
    got = doctor(root, "acme")
    assert got.code == 6, got
    assert "token_leeway" in lines(got, "clock")[0]


@pytest.mark.parametrize("date", ["yesterday at noon", "\x1b[2J\x1b[31mnot a date\r\n"])
def test_a_date_header_that_is_not_a_date_warns(
    tmp_path: Path, token_api: LoopbackServer, date: str
) -> None:
    token_api.routes["/token"] = dated(token_answer(), date=date.strip())
    root = make_registry(tmp_path, {"profiles/acme.yaml": profile_yaml(token_api.url("/token"))})
    got = doctor(root, "acme")
    assert got.code == 0, got
    [line] = lines(got, "clock")
    assert line.startswith("warn") and "is not a date" in line
    assert "\x1b" not in got.both
    assert ("\\x1b" in line) == ("\x1b" in date)


def test_a_slow_server_is_bounded_by_the_profile_timeout(tmp_path: Path) -> None:
    """A server that takes connections and never answers: each check gives up after the
    profile's timeout, and doctor ends."""
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    port = silent.getsockname()[1]
    try:
        root = make_registry(
            tmp_path,
            {"profiles/acme.yaml": profile_yaml(f"http://127.0.0.1:{port}/token").replace(
                "timeout: 3", "timeout: 1")},
        )  # fmt: skip
        started = time.monotonic()
        got = doctor(root, "acme")
        took = time.monotonic() - started
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        silent.close()
    assert got.code == 7, got
    assert "within 1 s" in lines(got, "clock")[0]
    assert lines(got, "token")[0].startswith("skip")
    assert took < 15, took  # discovery (two URLs) and the clock, a second each, not 30 s each


# -- discovery -----------------------------------------------------------------------------------


def metadata(base: str, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "issuer": base,
        "token_endpoint": f"{base}/token",
        "revocation_endpoint": f"{base}/revoke",
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
        "grant_types_supported": ["client_credentials", "refresh_token"],
        "scopes_supported": ["api.read", "api.write"],
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


def issuer_registry(tmp_path: Path, server: LoopbackServer, doc: Any, **extra: str) -> Path:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    server.routes["/.well-known/oauth-authorization-server"] = dated(body)
    server.routes["/.well-known/openid-configuration"] = dated(body)
    text = (
        "grant_type: client_credentials\n"
        f"issuer: {server.base}\n"
        "client_id: app\n"
        f"client_secret: '{SECRET}'\n"
        "scope: api.read api.write\n"
        "timeout: 3\n"
    ) + "".join(f"{k}: {v}\n" for k, v in extra.items())
    return make_registry(tmp_path, {"profiles/acme.yaml": text})


def test_metadata_that_agrees_passes(tmp_path: Path, token_api: LoopbackServer) -> None:
    root = issuer_registry(tmp_path, token_api, metadata(token_api.base))
    got = doctor(root, "acme")
    assert got.code == 0, got
    seen = statuses(got)
    assert seen["discovery"] == seen["client auth"] == seen["grant"] == {"pass"}, got.out
    assert f"token_url from the metadata: {token_api.base}/token" in got.out
    assert "new from" in lines(got, "token")[0]


def test_a_client_auth_the_server_does_not_take_fails_with_the_ones_it_does(
    tmp_path: Path, token_api: LoopbackServer
) -> None:
    root = issuer_registry(
        tmp_path, token_api, metadata(token_api.base), client_auth="client_secret_post"
    )
    got = doctor(root, "acme")
    assert got.code == 6, got
    [line] = lines(got, "client auth")
    assert line.startswith("FAIL") and "client_secret_post is not among" in line
    assert "set client_auth in profiles/acme.yaml to one the server takes" in line
    assert "client_secret_basic, private_key_jwt" in line


def test_grant_dpop_scope_and_endpoint_disagreements(
    tmp_path: Path, token_api: LoopbackServer
) -> None:
    doc = metadata(
        token_api.base,
        grant_types_supported=["authorization_code"],
        dpop_signing_alg_values_supported=["RS256"],
        scopes_supported=["api.read"],
        revocation_endpoint=f"{token_api.base}/other-revoke",
    )
    root = issuer_registry(
        tmp_path, token_api, doc, dpop="true", revocation_url=f"{token_api.base}/revoke"
    )
    got = doctor(root, "acme")
    assert got.code == 6, got
    assert lines(got, "grant")[0].startswith("FAIL")
    assert "lack ES256" in lines(got, "dpop")[0]
    assert lines(got, "scope")[0].startswith("warn") and "api.write" in lines(got, "scope")[0]
    assert any(
        line.startswith("warn") and "revocation_url" in line for line in lines(got, "endpoints")
    )


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"<html><body>Sign in</body></html>", "not JSON"),
        (b"[1, 2, 3]", "not an object"),
        (json.dumps({"issuer": "https://evil.test"}).encode(), "names issuer https://evil.test"),
        (b"{" * 100000, "not JSON"),
        (json.dumps({"issuer": "X", "pad": "x" * 300_000}).encode(), "more than 256 KiB"),
    ],
    ids=["html", "array", "other-issuer", "deep", "huge"],
)
def test_garbage_metadata_fails_discovery_with_exit_6(
    tmp_path: Path, token_api: LoopbackServer, body: bytes, said: str
) -> None:
    root = issuer_registry(tmp_path, token_api, body)
    got = doctor(root, "acme")
    assert got.code == 6, got
    [line] = lines(got, "discovery")
    assert line.startswith("FAIL") and said in line, line
    assert len(line) < 1200


def test_control_characters_from_the_server_are_escaped(
    tmp_path: Path, token_api: LoopbackServer
) -> None:
    evil = "https://x.test/\x1b]0;owned\x07\x1b[2J\u202e"
    root = issuer_registry(tmp_path, token_api, {"issuer": evil})
    refusal = {"error": "invalid_client", "error_description": "bad\x1b[31m red\r\nInjected: yes"}
    token_api.routes["/token"] = dated(json.dumps(refusal).encode(), status=401)
    got = doctor(root, "acme")
    assert "\x1b" not in got.both and "\x07" not in got.both and "\u202e" not in got.both
    as_json = doctor(root, "acme", "--json")
    assert "\x1b" not in as_json.out
    json.loads(as_json.out)


# -- TLS -----------------------------------------------------------------------------------------


@dataclass
class Pki:
    folder: Path
    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate

    @property
    def ca_pem(self) -> Path:
        return self.folder / "ca.pem"

    def leaf(
        self,
        stem: str,
        *,
        days: float = 90,
        names: tuple[str, ...] = ("127.0.0.1",),
        signer: Pki | None = None,
    ) -> ssl.SSLContext:
        """A server context for a certificate valid ``days`` more days (negative: expired)."""
        issuer = signer or self
        now = datetime.datetime.now(datetime.timezone.utc)
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        for name in names:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                sans.append(x509.DNSName(name))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, stem)]))
            .issuer_name(issuer.ca.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=max(1, -days + 1)))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .sign(issuer.ca_key, hashes.SHA256())
        )
        pem, key_pem = self.folder / f"{stem}.pem", self.folder / f"{stem}.key"
        pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_pem.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pem, key_pem)
        return context


def make_pki(folder: Path, name: str) -> Pki:
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    ca = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=30))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    (folder / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    return Pki(folder, key, ca)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"), "doctor test ca")


@pytest.fixture
def tls_server() -> Iterator[Callable[[ssl.SSLContext], LoopbackServer]]:
    started: list[LoopbackServer] = []

    def start(context: ssl.SSLContext) -> LoopbackServer:
        server = LoopbackServer("127.0.0.1", tls=context)
        server.routes["/token"] = dated(token_answer())
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def tls_doctor(tmp_path: Path, server: LoopbackServer, **tls: str) -> Result:
    block = ", ".join(f"{k}: {v}" for k, v in tls.items())
    extra = {"tls": f"{{{block}}}"} if tls else {}
    root = make_registry(
        tmp_path, {"profiles/acme.yaml": profile_yaml(server.url("/token"), **extra)}
    )
    return doctor(root, "acme")


def test_a_certificate_from_the_profiles_ca_bundle_verifies(
    tmp_path: Path, pki: Pki, tls_server: Callable[[ssl.SSLContext], LoopbackServer]
) -> None:
    server = tls_server(pki.leaf("valid"))
    got = tls_doctor(tmp_path, server, ca_bundle=str(pki.ca_pem))
    assert got.code == 0, got
    [line] = lines(got, "tls")
    assert line.startswith("pass") and f"verified against tls.ca_bundle {pki.ca_pem}" in line
    assert "TLSv1.3" in line or "TLSv1.2" in line
    assert "for 127.0.0.1" in line
    assert lines(got, "token")[0].startswith("pass")


def test_a_certificate_expiring_in_3_days_warns(
    tmp_path: Path, pki: Pki, tls_server: Callable[[ssl.SSLContext], LoopbackServer]
) -> None:
    server = tls_server(pki.leaf("soon", days=3))
    got = tls_doctor(tmp_path, server, ca_bundle=str(pki.ca_pem))
    assert got.code == 0, got
    [line] = lines(got, "tls")
    assert line.startswith("warn") and "expires in 3 days" in line


def test_an_expired_certificate_fails_with_exit_7(
    tmp_path: Path, pki: Pki, tls_server: Callable[[ssl.SSLContext], LoopbackServer]
) -> None:
    server = tls_server(pki.leaf("old", days=-2))
    got = tls_doctor(tmp_path, server, ca_bundle=str(pki.ca_pem))
    assert got.code == 7, got
    [line] = lines(got, "tls")
    assert line.startswith("FAIL") and "expired 2 days ago" in line and "renewed" in line
    assert lines(got, "clock")[0].startswith("skip")


def test_a_certificate_for_another_host_fails(
    tmp_path: Path, pki: Pki, tls_server: Callable[[ssl.SSLContext], LoopbackServer]
) -> None:
    server = tls_server(pki.leaf("elsewhere", names=("api.elsewhere.test",)))
    got = tls_doctor(tmp_path, server, ca_bundle=str(pki.ca_pem))
    assert got.code == 7, got
    [line] = lines(got, "tls")
    assert line.startswith("FAIL") and "is for api.elsewhere.test, not 127.0.0.1" in line


def test_an_untrusted_ca_fails_with_the_hint_to_set_ca_bundle(
    tmp_path: Path, pki: Pki, tls_server: Callable[[ssl.SSLContext], LoopbackServer]
) -> None:
    server = tls_server(pki.leaf("private"))
    got = tls_doctor(tmp_path, server)
    assert got.code == 7, got
    [line] = lines(got, "tls")
    assert line.startswith("FAIL") and "issued by CN=doctor test ca" in line
    assert "set tls: {ca_bundle: CA.pem} in profiles/acme.yaml" in line
    # Another CA's bundle is named as the one that does not hold it.
    other = make_pki(tmp_path / "other", "other ca")
    wrong = tls_doctor(tmp_path / "2", server, ca_bundle=str(other.ca_pem))
    assert wrong.code == 7 and f"tls.ca_bundle {other.ca_pem}" in lines(wrong, "tls")[0]


def test_verify_false_warns_and_still_reads_the_certificate(
    tmp_path: Path, pki: Pki, tls_server: Callable[[ssl.SSLContext], LoopbackServer]
) -> None:
    server = tls_server(pki.leaf("unverified"))
    got = tls_doctor(tmp_path, server, verify="false")
    assert got.code == 0, got
    [line] = lines(got, "tls")
    assert line.startswith("warn") and "not verified" in line and "for 127.0.0.1" in line
    assert lines(got, "clock")[0].startswith("pass")


def test_a_server_that_does_not_speak_tls_fails(tmp_path: Path, loopback: LoopbackServer) -> None:
    root = make_registry(
        tmp_path,
        {"profiles/acme.yaml": profile_yaml(f"https://127.0.0.1:{loopback.port}/token")},
    )
    got = doctor(root, "acme")
    assert got.code == 7, got
    assert lines(got, "tls")[0].startswith("FAIL")


# -- rendering, JSON, the exit code ------------------------------------------------------------


def test_json_is_a_list_of_checks(tmp_path: Path, token_api: LoopbackServer) -> None:
    root = make_registry(tmp_path, {"profiles/acme.yaml": profile_yaml(token_api.url("/token"))})
    got = doctor(root, "acme", "--json")
    assert got.code == 0, got
    checks = json.loads(got.out)
    assert [c["name"] for c in checks][:3] == ["registry", "dns", "tls"]
    assert set(checks[0]) == {"name", "status", "detail", "hint", "exit_code"}
    assert {c["status"] for c in checks} <= {"ok", "warn", "fail", "skip"}
    assert SECRET not in got.both


def test_the_exit_code_is_the_highest_failure() -> None:
    def check(status: str, code: int) -> Check:
        return Check("x", status, "", "", code)  # type: ignore[arg-type]

    assert exit_code([]) == 0
    assert exit_code([check("ok", 0), check("warn", 0), check("skip", 0)]) == 0
    assert exit_code([check("fail", 3), check("fail", 7), check("fail", 6)]) == 7
    assert exit_code([check("fail", 4), check("ok", 0)]) == 4


def test_on_a_terminal_marks_and_colour(tmp_path: Path, token_api: LoopbackServer) -> None:
    import sys

    from tests.terminal import on_terminal

    root = make_registry(tmp_path, {"profiles/acme.yaml": profile_yaml(token_api.url("/token"))})
    env = {"OAUTHCLI_CACHE_DIR": str(tmp_path / "cache"), "TERM": "xterm"}
    code, screen = on_terminal(
        [sys.executable, "-m", "oauthcli", "-r", str(root), "doctor", "acme"], env
    )
    text = screen.decode()
    assert code == 0, text
    import re

    assert "\x1b[32m✓\x1b[0m registry" in text
    assert "- tls" in re.sub("\x1b\\[[0-9;]*m", "", text)
    assert "pass " not in text
    code, screen = on_terminal(
        [sys.executable, "-m", "oauthcli", "--no-color", "-r", str(root), "doctor", "acme"], env
    )
    assert "✓ registry" in screen.decode() and "\x1b[32m" not in screen.decode()


def test_a_device_code_profile_without_a_cached_token_asks_nothing(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    loopback.routes["/token"] = dated(token_answer())
    loopback.routes["/device"] = dated(b"{}")
    root = make_registry(
        tmp_path,
        {
            "profiles/tv.yaml": (
                "grant_type: device_code\n"
                f"token_url: {loopback.url('/token')}\n"
                f"device_authorization_url: {loopback.url('/device')}\n"
                "client_id: tv\nclient_auth: none\n"
            )
        },
    )
    got = doctor(root, "tv")
    assert got.code == 0, got
    [token] = lines(got, "token")
    assert token.startswith("skip") and "sign in first: oauthcli get-token tv" in token
    assert [r.path for r in loopback.requests if r.method == "POST"] == []


def test_without_issuer_metadata_that_names_none_is_skipped(
    tmp_path: Path, token_api: LoopbackServer
) -> None:
    token_api.routes["/.well-known/oauth-authorization-server"] = dated(b'{"token_endpoint": 1}')
    root = make_registry(tmp_path, {"profiles/acme.yaml": profile_yaml(token_api.url("/token"))})
    got = doctor(root, "acme")
    assert got.code == 0, got
    [line] = lines(got, "discovery")
    assert line.startswith("skip") and "names no usable issuer" in line


def test_a_netrc_entry_for_the_servers_host_is_never_sent(
    tmp_path: Path, token_api: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login netrc-user password netrc-pass-9\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    root = issuer_registry(tmp_path, token_api, metadata(token_api.base))
    got = doctor(root, "acme")
    assert got.code == 0, got
    gets = [r for r in token_api.requests if r.method == "GET"]
    assert {r.path for r in gets} >= {"/.well-known/oauth-authorization-server", "/token"}
    assert all("authorization" not in r.headers for r in gets), gets


def test_a_server_that_does_not_speak_tls_is_not_asked_again(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    root = make_registry(
        tmp_path,
        {"profiles/acme.yaml": profile_yaml(f"https://127.0.0.1:{loopback.port}/token")},
    )
    got = doctor(root, "acme")
    assert got.code == 7, got
    for name in ("discovery", "clock", "token"):
        assert lines(got, name)[0].startswith("skip"), got.out


def test_methods_with_their_own_auth_are_each_checked_with_theirs(
    tmp_path: Path, token_api: LoopbackServer
) -> None:
    token_api.routes["/token"] = dated(token_answer())
    root = make_registry(
        tmp_path,
        {
            "profiles/acme.yaml": profile_yaml(token_api.url("/token")),
            "profiles/other.yaml": profile_yaml(token_api.url("/token")).replace(
                "client_id: app", "client_id: other"
            ),
            "messages/mixed.yaml": (
                f"endpoint: {token_api.url('/api/items')}\n"
                "auth: {type: basic, username: u, password: doctor-basic-pw}\n"
                "methods:\n"
                "  plain: {http_method: GET}\n"
                "  first: {http_method: GET, auth: {type: oauth2, profile: acme}}\n"
                "  second: {http_method: GET, auth: {type: oauth2, profile: other}}\n"
            ),
        },
    )
    got = doctor(root, "mixed")
    assert got.code == 0, got
    assert "auth basic" in lines(got, "registry")[0]
    assert "cached" in lines(got, "token")[0] or "new from" in lines(got, "token")[0]
    first, second = lines(got, "call")
    assert first.startswith("pass") and "mixed.first" in first
    assert second.startswith("skip") and "oauthcli doctor other" in second
    assert len(lines(got, "dry run")) == 3
    assert "doctor-basic-pw" not in got.both
    assert [r.path for r in token_api.requests if r.path.startswith("/api")] == []
