"""DPoP (RFC 9449, ``dpop: true``): the key file, the proofs on the wire, the nonces, and what
is shown, through the CLI against loopback servers that check every proof.

The end-to-end proof against oidc-provider and the DPoP API is tests/e2e/test_e2e_dpop.py.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jws
from joserfc.jwk import ECKey

from oauthcli.tokens import dpop
from tests.clirun import run
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded

ACCESS_TOKEN = "at-dpop-LEAK-5d1"
REFRESH_TOKEN = "rt-dpop-LEAK-0c2"
SECRET = "cs-dpop-LEAK-9e3"


@pytest.fixture(autouse=True)
def _fresh_dpop_state() -> Iterator[None]:
    dpop.NONCES.clear()
    dpop.forget_keys()
    yield
    dpop.NONCES.clear()
    dpop.forget_keys()


def verify(proof: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The proof's header and claims, its signature checked with its own jwk."""
    compact = jws.extract_compact(proof.encode())
    header = dict(compact.headers())
    assert header["typ"] == "dpop+jwt" and header["alg"] == "ES256"
    assert set(header["jwk"]) == {"kty", "crv", "x", "y"}  # public only
    jws.deserialize_compact(proof, ECKey.import_key(header["jwk"]), algorithms=["ES256"])
    return header, json.loads(compact.payload)


class DPoPServers:
    """A token endpoint and an API on one loopback server, each asking for a nonce once."""

    def __init__(self, server: LoopbackServer, api_server: LoopbackServer) -> None:
        self.server = server  # the token endpoint's
        self.api_server = api_server  # another origin: each has its own nonce
        self.token_nonce: str | None = "tn-1"
        self.api_nonce: str | None = "an-1"
        self.token_type = "DPoP"
        self.token_loop = False
        self.api_loop = False
        self.proofs: list[tuple[str, dict[str, Any], dict[str, Any]]] = []  # path, header, claims
        self.answer_nonce: str | None = None  # a DPoP-Nonce on every 200 of the API
        server.routes["/token"] = self.token
        api_server.routes["/api/items"] = self.api

    def _proof(self, rec: Recorded) -> tuple[dict[str, Any], dict[str, Any]] | None:
        proof = rec.headers.get("dpop")
        if proof is None:
            return None
        header, claims = verify(proof)
        self.proofs.append((rec.path.split("?")[0], header, claims))
        return header, claims

    def token(self, rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        got = self._proof(rec)
        if got is None:
            body = {"access_token": ACCESS_TOKEN, "token_type": "Bearer", "expires_in": 300}
            return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()
        _, claims = got
        if self.token_loop or (self.token_nonce and claims.get("nonce") != self.token_nonce):
            if self.token_loop:
                self.token_nonce = f"tn-{len(self.proofs)}"
            headers = {"Content-Type": "application/json"}
            if self.token_nonce:
                headers["DPoP-Nonce"] = self.token_nonce
            error = {"error": "use_dpop_nonce", "error_description": "nonce needed"}
            return 400, headers, json.dumps(error).encode()
        body = {
            "access_token": ACCESS_TOKEN,
            "token_type": self.token_type,
            "expires_in": 300,
            "refresh_token": REFRESH_TOKEN,
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    def api(self, rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        got = self._proof(rec)
        authz = rec.headers.get("authorization", "")
        if got is not None:
            _, claims = got
            if self.api_loop or (self.api_nonce and claims.get("nonce") != self.api_nonce):
                if self.api_loop:
                    self.api_nonce = f"an-{len(self.proofs)}"
                challenge = 'DPoP algs="ES256", error="use_dpop_nonce"'
                headers = {"WWW-Authenticate": challenge, "DPoP-Nonce": self.api_nonce or ""}
                return 401, headers, b'{"error": "use_dpop_nonce"}'
        headers = {"Content-Type": "application/json"}
        if self.answer_nonce:
            headers["DPoP-Nonce"] = self.answer_nonce
        return 200, headers, json.dumps({"authorization": authz.split(" ")[0]}).encode()

    def at(self, path: str) -> list[dict[str, Any]]:
        return [claims for p, _, claims in self.proofs if p == path]


@pytest.fixture
def servers(loopback: LoopbackServer, loopback2: LoopbackServer) -> DPoPServers:
    return DPoPServers(loopback, loopback2)


def registry(tmp_path: Path, servers: DPoPServers, extra: str = "") -> Path:
    server = servers.server
    return make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": (
                "grant_type: client_credentials\n"
                f"token_url: {server.url('/token')}\n"
                f"client_id: app\nclient_secret: {SECRET}\ndpop: true\n" + extra
            ),
            "messages/items.yaml": (
                f"endpoint: {servers.api_server.url('/api/items')}\n"
                "auth: {type: oauth2, profile: acme}\n"
                "retry: {attempts: 1}\n"
                "methods:\n  list: {http_method: GET, query: {q: x}}\n"
                "  create: {http_method: POST, json: {name: x}}\n"
            ),
        },
    )


def key_file(cache: Path) -> Path:
    [path] = cache.glob("*.dpop")
    return path


# -- htu and proofs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://API.Example.COM/a/b?x=1#f", "https://api.example.com/a/b"),
        ("HTTPS://api.example.com:443", "https://api.example.com/"),
        ("http://127.0.0.1:80/x", "http://127.0.0.1/x"),
        ("http://127.0.0.1:8080/x", "http://127.0.0.1:8080/x"),
        ("https://user:pw@api.example.com/p", "https://api.example.com/p"),
        ("https://api.example.com/%7euser/%2f", "https://api.example.com/~user/%2F"),
        ("http://[::1]:9/v1", "http://[::1]:9/v1"),
    ],
)
def test_htu_is_the_url_without_query_and_fragment_normalised(url: str, expected: str) -> None:
    assert dpop.htu(url) == expected


def test_each_proof_is_fresh_signed_and_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    key = dpop.DPoPKey(ECKey.generate_key("P-256"), None)
    monkeypatch.setattr(dpop, "clock", lambda: 1_700_000_000.5)
    proofs = [key.proof("POST", "https://as.test/token?x=1")[0] for _ in range(50)]
    claims = [verify(p)[1] for p in proofs]
    assert len({c["jti"] for c in claims}) == 50
    assert claims[0] == {
        "htm": "POST",
        "htu": "https://as.test/token",
        "iat": 1_700_000_000,
        "jti": claims[0]["jti"],
    }
    header, bound = verify(
        key.proof("GET", "https://api.test/x", nonce="n1", access_token="tok")[0]
    )
    assert bound["ath"] == dpop.token_hash("tok") and bound["nonce"] == "n1"
    assert dpop.thumbprint(header["jwk"]) == key.jkt == ECKey.import_key(header["jwk"]).thumbprint()
    private = key._key.as_dict(private=True)["d"]
    assert private not in repr(key) and repr(key) == f"<DPoPKey jkt={key.jkt}>"


# -- on the wire -----------------------------------------------------------------------------


def test_send_proves_at_the_token_endpoint_and_the_api(
    tmp_path: Path, servers: DPoPServers, isolated_oauthcli: Path
) -> None:
    root = registry(tmp_path, servers)
    result = run("-r", str(root), "send", "items.list")
    assert result.code == 0, result
    assert json.loads(result.out) == {"authorization": "DPoP"}
    token = servers.at("/token")
    assert [c.get("nonce") for c in token] == [None, "tn-1"]  # challenged once, one retry
    assert all(c["htm"] == "POST" and c["htu"] == servers.server.url("/token") for c in token)
    assert all("ath" not in c for c in token)
    api = servers.at("/api/items")
    assert [c.get("nonce") for c in api] == [None, "an-1"]
    assert all(c["htu"] == servers.api_server.url("/api/items") for c in api)  # no query
    assert all(c["ath"] == dpop.token_hash(ACCESS_TOKEN) for c in api)
    jtis = [c["jti"] for _, _, c in servers.proofs]
    assert len(set(jtis)) == len(jtis) == 4
    path = key_file(isolated_oauthcli)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert {servers.proofs[0][1]["jwk"]["x"]} == {h["jwk"]["x"] for _, h, _ in servers.proofs}

    # The next process: the same key, the nonces left in the cache folder, no challenge.
    dpop.NONCES.clear()
    dpop.forget_keys()
    before = len(servers.proofs)
    again = run("-r", str(root), "send", "items.create")
    assert again.code == 0, again
    [proof] = [c for _, _, c in servers.proofs[before:]]
    assert (proof["htm"], proof["nonce"]) == ("POST", "an-1")


def test_a_new_dpop_nonce_on_any_answer_replaces_the_one_held(
    tmp_path: Path, servers: DPoPServers
) -> None:
    root = registry(tmp_path, servers)
    servers.answer_nonce = "an-1"
    assert run("-r", str(root), "send", "items.list").code == 0
    servers.api_nonce = servers.answer_nonce = "an-2"  # rotated; said on a 401 and a 200
    assert run("-r", str(root), "send", "items.list").code == 0
    assert run("-r", str(root), "send", "items.list").code == 0
    assert [c.get("nonce") for c in servers.at("/api/items")][-3:] == ["an-1", "an-2", "an-2"]


def test_a_nonce_loop_at_the_token_endpoint_is_exit_6_in_one_line(
    tmp_path: Path, servers: DPoPServers
) -> None:
    servers.token_loop = True
    result = run("-r", str(root := registry(tmp_path, servers)), "send", "items.list")
    assert result.code == 6, result
    assert "nonce loop" in result.err and len(result.err.strip().splitlines()) == 1
    assert len(servers.at("/token")) == 2 and not servers.at("/api/items")
    assert SECRET not in result.both
    del root


def test_use_dpop_nonce_without_a_nonce_is_not_retried(
    tmp_path: Path, servers: DPoPServers
) -> None:
    error = json.dumps({"error": "use_dpop_nonce"}).encode()
    servers.server.routes["/token"] = lambda rec: (
        (servers._proof(rec) and None)
        or (
            400,
            {"Content-Type": "application/json"},
            error,
        )
    )
    result = run("-r", str(registry(tmp_path, servers)), "get-token", "acme")
    assert result.code == 6, result
    assert "without a usable DPoP-Nonce" in result.err
    assert len(servers.at("/token")) == 1


def test_a_nonce_loop_at_the_api_is_the_401_explained(tmp_path: Path, servers: DPoPServers) -> None:
    servers.api_loop = True
    result = run("-r", str(registry(tmp_path, servers)), "send", "items.list")
    assert result.code == 4, result
    assert "use_dpop_nonce" in result.err
    assert "keeps changing its nonce" in result.err  # not the audience/scope advice
    assert "audience/resource" not in result.err
    assert len(servers.at("/api/items")) == 2  # the first and the one retry
    assert ACCESS_TOKEN not in result.both


def test_a_hostile_nonce_is_not_taken(tmp_path: Path, servers: DPoPServers) -> None:
    servers.api_nonce = 'bad" nonce'
    result = run("-r", str(registry(tmp_path, servers)), "send", "items.list")
    assert result.code == 4, result
    assert [c.get("nonce") for c in servers.at("/api/items")] == [None]  # not retried


def test_a_server_that_ignores_dpop_gets_a_warning_and_bearer(
    tmp_path: Path, servers: DPoPServers
) -> None:
    servers.token_type = "Bearer"
    root = registry(tmp_path, servers)
    result = run("-r", str(root), "send", "items.list")
    assert result.code == 0, result
    assert json.loads(result.out) == {"authorization": "Bearer"}
    assert result.err.count("ignores DPoP") == 1
    assert not servers.at("/api/items")  # no proof with a Bearer token
    shown = run("-r", str(root), "get-token", "acme")
    assert "the server ignored DPoP" in shown.out


def test_refresh_carries_a_proof(tmp_path: Path, servers: DPoPServers) -> None:
    root = registry(tmp_path, servers)
    (root / "profiles" / "acme.yaml").write_text(
        "grant_type: refresh_token\n"
        f"token_url: {servers.server.url('/token')}\n"
        f"client_id: app\nclient_secret: {SECRET}\nrefresh_token: {REFRESH_TOKEN}\ndpop: true\n"
    )
    result = run("-r", str(root), "get-token", "acme")
    assert result.code == 0, result
    [first, retried] = servers.at("/token")
    assert retried["nonce"] == "tn-1" and first["jti"] != retried["jti"]
    assert b"refresh_token" in servers.server.requests[-1].body


def test_a_dpop_profile_has_a_token_of_its_own(tmp_path: Path, servers: DPoPServers) -> None:
    from oauthcli.registry.discovery import discover
    from oauthcli.request.resolve import resolve_profile
    from oauthcli.tokens.cache import entry_key

    root = registry(tmp_path, servers)
    (root / "profiles" / "plain.yaml").write_text(
        (root / "profiles" / "acme.yaml").read_text().replace("dpop: true\n", "")
    )
    reg = discover(str(root))
    keys = {entry_key(resolve_profile(reg.profile(n))) for n in ("acme", "plain")}
    assert len(keys) == 2


# -- the key file ----------------------------------------------------------------------------


def _get_token(root: Path) -> Any:
    dpop.forget_keys()
    return run("-r", str(root), "get-token", "acme", "--force")


def test_a_key_file_others_may_read_is_refused(
    tmp_path: Path, servers: DPoPServers, isolated_oauthcli: Path
) -> None:
    root = registry(tmp_path, servers)
    assert run("-r", str(root), "get-token", "acme").code == 0
    path = key_file(isolated_oauthcli)
    private = json.loads(path.read_text())["d"]
    path.chmod(0o644)
    result = _get_token(root)
    assert result.code == 3, result
    assert str(path) in result.err and "mode 0644" in result.err
    assert private not in result.both and len(result.err.strip().splitlines()) == 1


def test_a_key_file_of_another_user_is_refused(
    tmp_path: Path, servers: DPoPServers, isolated_oauthcli: Path
) -> None:
    if os.getuid() != 0:
        pytest.skip("only root can give a file to another user")
    root = registry(tmp_path, servers)
    assert run("-r", str(root), "get-token", "acme").code == 0
    path = key_file(isolated_oauthcli)
    os.chown(path, 65534, 65534)
    result = _get_token(root)
    assert result.code == 3, result
    assert "belongs to uid 65534" in result.err


@pytest.mark.parametrize(
    "plant",
    [
        pytest.param(lambda p, other: (p.unlink(), p.symlink_to(other)), id="symlink"),
        pytest.param(lambda p, other: p.write_text("{not json"), id="garbage"),
        pytest.param(
            lambda p, other: p.write_text(json.dumps({"kty": "RSA", "n": "x", "e": "AQAB"})),
            id="not-p256",
        ),
        pytest.param(lambda p, other: (p.unlink(), p.mkdir()), id="folder"),
    ],
)
def test_a_key_file_oauthcli_did_not_write_is_refused(
    tmp_path: Path,
    servers: DPoPServers,
    isolated_oauthcli: Path,
    plant: Callable[[Path, Path], Any],
) -> None:
    root = registry(tmp_path, servers)
    assert run("-r", str(root), "get-token", "acme").code == 0
    path = key_file(isolated_oauthcli)
    other = tmp_path / "elsewhere.json"
    other.write_text(path.read_text())
    other.chmod(0o600)
    plant(path, other)
    result = _get_token(root)
    assert result.code == 3, result
    assert str(path) in result.err and len(result.err.strip().splitlines()) == 1
    assert "Traceback" not in result.err


def test_two_makers_end_with_one_key(tmp_path: Path, isolated_oauthcli: Path) -> None:
    isolated_oauthcli.mkdir(mode=0o700)
    path = isolated_oauthcli / ("a" * 64 + ".dpop")
    first = dpop._make(path)
    assert first is not None
    assert dpop._make(path) is None  # the second finds the first's key and keeps it
    assert not list(isolated_oauthcli.glob(".*.tmp"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_token_clear_removes_the_keys_and_nonces(
    tmp_path: Path, servers: DPoPServers, isolated_oauthcli: Path
) -> None:
    root = registry(tmp_path, servers)
    assert run("-r", str(root), "send", "items.list").code == 0
    assert list(isolated_oauthcli.glob("*.dpop")) and list(isolated_oauthcli.glob("*.nonce"))
    assert run("-r", str(root), "token", "clear").code == 0
    assert not list(isolated_oauthcli.glob("*.dpop")) and not list(
        isolated_oauthcli.glob("*.nonce")
    )


# -- what is shown ---------------------------------------------------------------------------


def test_dry_run_shows_the_proofs_claims_and_thumbprint_never_the_proof(
    tmp_path: Path, servers: DPoPServers, isolated_oauthcli: Path
) -> None:
    root = registry(tmp_path, servers)
    result = run("-r", str(root), "send", "items.list", "--dry-run")
    assert result.code == 0, result
    assert not servers.server.requests  # nothing obtained, nothing sent
    [line] = [x for x in result.out.splitlines() if x.startswith("DPoP: ")]
    jkt = dpop.thumbprint(json.loads(key_file(isolated_oauthcli).read_text()))
    assert line.startswith("DPoP: **** (proof: htm=GET htu=" + servers.api_server.url("/api/items"))
    assert f"jkt={jkt}" in line and "ath=(SHA-256 of the token)" in line
    assert "Authorization: DPoP ****" in result.out
    assert "eyJ" not in result.out  # no JWS, whole or in part
    as_json = json.loads(run("-r", str(root), "send", "items.list", "--dry-run", "--json").out)
    assert as_json["headers"]["DPoP"].startswith("**** (proof: htm=GET")


def test_verbose_shows_each_proofs_claims_never_a_proof_or_key(
    tmp_path: Path, servers: DPoPServers, isolated_oauthcli: Path
) -> None:
    root = registry(tmp_path, servers)
    result = run("-r", str(root), "send", "-v", "items.list")
    assert result.code == 0, result
    shown = [x for x in result.err.splitlines() if x.startswith("> DPoP: ")]
    assert len(shown) == 4  # two token requests, two API requests
    assert all("(proof: htm=" in x and "jkt=" in x for x in shown)
    private = json.loads(key_file(isolated_oauthcli).read_text())["d"]
    for _, header, _ in servers.proofs:
        assert header["jwk"]["x"] not in result.both
    assert private not in result.both and "eyJ" not in result.err
    assert ACCESS_TOKEN not in result.both and SECRET not in result.both


def test_get_token_names_the_binding_and_a_key_that_is_not_its_own(
    tmp_path: Path, servers: DPoPServers, isolated_oauthcli: Path
) -> None:
    root = registry(tmp_path, servers)
    other = dpop.DPoPKey(ECKey.generate_key("P-256"), None)
    bound = _jwt({"cnf": {"jkt": other.jkt}, "exp": int(time.time()) + 300})
    servers.server.routes["/token"] = lambda rec: (
        200,
        {"Content-Type": "application/json"},
        json.dumps({"access_token": bound, "token_type": "DPoP", "expires_in": 300}).encode(),
    )
    result = run("-r", str(root), "get-token", "acme")
    assert result.code == 0, result
    assert f"cnf.jkt={other.jkt}: NOT this profile's key" in result.out
    data = json.loads(run("-r", str(root), "get-token", "acme", "--json").out)
    assert "NOT this profile's key" in data["binding"]


def _jwt(claims: dict[str, Any]) -> str:
    key = ECKey.generate_key("P-256")
    return jws.serialize_compact({"alg": "ES256", "typ": "at+jwt"}, json.dumps(claims), key)


def test_each_redirect_hop_gets_its_own_proof_and_none_leaves_the_origin(
    tmp_path: Path, servers: DPoPServers, loopback: LoopbackServer
) -> None:
    api = servers.api_server
    api.routes["/api/old"] = lambda rec: (
        (servers._proof(rec) and None) or (302, {"Location": "/api/items"}, b"")
    )
    api.routes["/api/away"] = lambda rec: (
        (servers._proof(rec) and None) or (302, {"Location": loopback.url("/elsewhere")}, b"")
    )
    loopback.reply("/elsewhere", 200, b"{}")
    root = registry(tmp_path, servers)
    (root / "messages" / "hops.yaml").write_text(
        f"endpoint: {api.url('/api')}\nauth: {{type: oauth2, profile: acme}}\n"
        "methods:\n  old: {http_method: GET, path: /old}\n  away: {http_method: GET, path: /away}\n"
    )
    assert run("-r", str(root), "send", "hops.old").code == 0
    hops = [(p, c["htu"]) for p, _, c in servers.proofs if p != "/token"]
    assert hops[:1] == [("/api/old", api.url("/api/old"))]
    assert ("/api/items", api.url("/api/items")) in hops
    assert run("-r", str(root), "send", "hops.away").code == 0
    [elsewhere] = [r for r in loopback.requests if r.path == "/elsewhere"]
    assert "dpop" not in elsewhere.headers and "authorization" not in elsewhere.headers
