"""``issuer:``: RFC 8414 / OpenID discovery of a profile's endpoints (SPEC §5), against
loopback servers that serve metadata as real servers do, and as hostile ones do."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from oauthcli.errors import GrantError
from oauthcli.request.resolve import resolve_profile
from oauthcli.tokens import discovery
from tests.clirun import Result, run
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded

SECRET = "s3cr3t-discovery-value"
TOKEN = "at-discovered-0123456789"
JSON = {"Content-Type": "application/json"}
RFC8414 = "/.well-known/oauth-authorization-server"
OPENID = "/.well-known/openid-configuration"


def metadata(server: LoopbackServer, path: str = "", **members: Any) -> dict[str, Any]:
    base = server.base + path
    doc = {
        "issuer": base,
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "authorization_endpoint": f"{base}/oauth/authorize",
        "device_authorization_endpoint": f"{base}/oauth/device",
        "jwks_uri": f"{base}/jwks",
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "grant_types_supported": ["client_credentials"],
    }
    doc.update(members)
    return {k: v for k, v in doc.items() if v is not None}


def serve(server: LoopbackServer, doc: Any, where: str = OPENID, path: str = "") -> None:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    target = f"{RFC8414}{path}" if where == RFC8414 else f"{path}{OPENID}"
    server.routes[target] = lambda rec: (200, JSON, body)


def token_route(server: LoopbackServer, path: str = "/oauth/token", **answer: Any) -> None:
    body = json.dumps(
        answer or {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600}
    ).encode()
    server.routes[path] = lambda rec: (200, JSON, body)


def registry(tmp_path: Path, issuer: str, extra: str = "") -> Path:
    profile = (
        "grant_type: client_credentials\n"
        f"issuer: {issuer}\n"
        "client_id: app\n"
        f"client_secret: {SECRET}\n"
        "timeout: 5\n" + extra
    )
    return make_registry(tmp_path / "reg", {"profiles/acme.yaml": profile})


def get_token(root: Path, *args: str) -> Result:
    result = run("-r", str(root), "get-token", "acme", *args)
    assert "Traceback" not in result.err
    for value in (SECRET, TOKEN):
        assert value not in result.out and value not in result.err
    return result


def paths(server: LoopbackServer) -> list[str]:
    return [r.path for r in server.requests]


# -- the well-known URLs ---------------------------------------------------------------------


def test_well_known_urls_insert_rfc8414_between_host_and_path() -> None:
    assert discovery.well_known("https://login.test") == [
        "https://login.test/.well-known/oauth-authorization-server",
        "https://login.test/.well-known/openid-configuration",
    ]
    assert discovery.well_known("https://login.test/tenant/v2.0/") == [
        "https://login.test/.well-known/oauth-authorization-server/tenant/v2.0",
        "https://login.test/tenant/v2.0/.well-known/openid-configuration",
    ]


# -- get-token through discovery ------------------------------------------------------------


def test_openid_metadata_after_rfc8414_404_fills_the_token_url(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    serve(loopback, metadata(loopback))
    token_route(loopback)
    result = get_token(registry(tmp_path, loopback.base))
    assert result.code == 0, result.err
    assert paths(loopback) == [RFC8414, OPENID, "/oauth/token"]
    out = result.out
    assert f"obtained from {loopback.base}/oauth/token" in out
    assert (
        f"token_url     {loopback.base}/oauth/token (from issuer metadata)"
        in " ".join(out.split("  "))
        or f"{loopback.base}/oauth/token (from issuer metadata)" in out
    )
    assert "grant" in out and "client_credentials" in out
    assert f"{loopback.base}/oauth/revoke (from issuer metadata)" in out
    # The token request is the grant's, with the client's credentials, at the discovered URL.
    assert loopback.requests[-1].method == "POST"
    assert "authorization" in loopback.requests[-1].headers


def test_rfc8414_metadata_wins_and_an_issuer_path_is_kept(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    serve(loopback, metadata(loopback, "/realms/x"), RFC8414, "/realms/x")
    serve(loopback, {"issuer": "wrong"}, OPENID, "/realms/x")  # never asked
    token_route(loopback, "/realms/x/oauth/token")
    result = get_token(registry(tmp_path, loopback.base + "/realms/x"), "--json")
    assert result.code == 0, result.err
    assert paths(loopback) == [f"{RFC8414}/realms/x", "/realms/x/oauth/token"]
    data = json.loads(result.out)
    assert data["token_url"] == f"{loopback.base}/realms/x/oauth/token"
    assert data["issuer"] == loopback.base + "/realms/x"
    assert data["grant_type"] == "client_credentials"
    assert data["endpoints"]["token_url"]["from"] == "from issuer metadata"


def test_metadata_is_cached_and_force_fetches_it_again(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    serve(loopback, metadata(loopback), RFC8414)
    token_route(loopback)
    root = registry(tmp_path, loopback.base)
    assert get_token(root).code == 0
    assert get_token(root, "--force").code == 0
    assert paths(loopback).count(RFC8414) == 2  # --force asked again
    # A new token (another scope: another cache entry) reuses the cached metadata.
    (root / "profiles/acme.yaml").write_text(
        (root / "profiles/acme.yaml").read_text() + "scope: other\n"
    )
    assert get_token(root).code == 0
    assert paths(loopback).count(RFC8414) == 2
    folder = Path(os.environ["OAUTHCLI_CACHE_DIR"]) / "issuers"
    entries = list(folder.iterdir())
    assert len(entries) == 1 and entries[0].stat().st_mode & 0o777 == 0o600
    assert folder.stat().st_mode & 0o777 == 0o700
    assert SECRET not in entries[0].read_text()


def test_a_cached_token_needs_no_metadata(tmp_path: Path, loopback: LoopbackServer) -> None:
    serve(loopback, metadata(loopback), RFC8414)
    token_route(loopback)
    root = registry(tmp_path, loopback.base)
    assert get_token(root).code == 0
    loopback.routes.clear()  # the issuer is gone; the token in the cache is still good
    result = get_token(root)
    assert result.code == 0 and "from the cache" in result.out
    # show uses what the cache says, with no request.
    shown = run("-r", str(root), "show", "acme")
    assert f"{loopback.base}/oauth/token (from issuer metadata)" in shown.out
    assert len(loopback.requests) == 2  # the metadata and the token, once


def test_stale_or_corrupt_metadata_is_a_miss(
    tmp_path: Path, loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve(loopback, metadata(loopback), RFC8414)
    root = registry(tmp_path, loopback.base)
    profile = resolve_profile(_profile(root))
    assert discovery.complete(profile).token_url == f"{loopback.base}/oauth/token"
    assert discovery.complete(profile).discovered  # from the cache
    assert paths(loopback) == [RFC8414]
    now = discovery.clock()
    monkeypatch.setattr(discovery, "clock", lambda: now + discovery.MAX_AGE + 1)
    discovery.complete(profile)
    assert paths(loopback) == [RFC8414, RFC8414]
    (entry,) = (Path(os.environ["OAUTHCLI_CACHE_DIR"]) / "issuers").iterdir()
    for garbage in (b"{not json", b"[]", b'{"format": "x"}', b"\xff" * 10):
        entry.write_bytes(garbage)
        assert discovery.complete(profile).token_url == f"{loopback.base}/oauth/token"
    assert paths(loopback).count(RFC8414) == 6
    # An entry another user could write is not read.
    entry.chmod(0o666)
    discovery.complete(profile)
    assert paths(loopback).count(RFC8414) == 7


def test_token_clear_removes_cached_metadata(tmp_path: Path, loopback: LoopbackServer) -> None:
    serve(loopback, metadata(loopback), RFC8414)
    token_route(loopback)
    root = registry(tmp_path, loopback.base)
    assert get_token(root).code == 0
    assert run("-r", str(root), "token", "clear").code == 0
    assert not (Path(os.environ["OAUTHCLI_CACHE_DIR"]) / "issuers").exists()


def test_the_profile_s_own_endpoints_win(tmp_path: Path, loopback: LoopbackServer) -> None:
    serve(loopback, metadata(loopback), RFC8414)
    token_route(loopback, "/mine")
    root = registry(tmp_path, loopback.base, f"token_url: {loopback.url('/mine')}\n")
    result = get_token(root)
    assert result.code == 0, result.err
    assert paths(loopback) == [RFC8414, "/mine"]
    assert f"{loopback.url('/mine')} (profile)" in result.out
    assert f"{loopback.base}/oauth/revoke (from issuer metadata)" in result.out


def test_token_revoke_at_the_discovered_revocation_endpoint(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    serve(loopback, metadata(loopback), RFC8414)
    token_route(loopback)
    loopback.reply("/oauth/revoke", 200, b"")
    root = registry(tmp_path, loopback.base)
    assert get_token(root).code == 0
    result = run("-r", str(root), "token", "revoke", "acme")
    assert result.code == 0, result.err
    assert f"at {loopback.base}/oauth/revoke" in result.out
    assert "/oauth/revoke" in paths(loopback)


# -- the invalid_client hint ---------------------------------------------------------------


def test_invalid_client_names_the_server_s_methods(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    serve(loopback, metadata(loopback, token_endpoint_auth_methods_supported=["private_key_jwt"]))
    body = json.dumps({"error": "invalid_client", "error_description": "no"}).encode()
    loopback.routes["/oauth/token"] = lambda rec: (401, JSON, body)
    result = get_token(registry(tmp_path, loopback.base))
    assert result.code == 6
    (line,) = result.err.strip().splitlines()
    assert "invalid_client" in line
    assert line.endswith(
        "client_auth client_secret_basic is not among the server's methods (private_key_jwt)"
    )


def test_no_hint_when_the_method_is_listed(tmp_path: Path, loopback: LoopbackServer) -> None:
    serve(loopback, metadata(loopback))
    body = json.dumps({"error": "invalid_client"}).encode()
    loopback.routes["/oauth/token"] = lambda rec: (401, JSON, body)
    result = get_token(registry(tmp_path, loopback.base))
    assert result.code == 6 and "not among" not in result.err


# -- bad input: one line, exit 6 or 3, no traceback ------------------------------------------


def _one_line(result: Result, code: int) -> str:
    assert result.code == code, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1, result.err
    return lines[0]


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        (b"<html>login</html>", "not JSON"),
        (b"[1, 2]", "not an object"),
        (b"", "not JSON"),
    ],
)
def test_metadata_that_is_not_a_json_object(
    tmp_path: Path, loopback: LoopbackServer, doc: bytes, words: str
) -> None:
    serve(loopback, doc, RFC8414)
    serve(loopback, doc, OPENID)
    line = _one_line(get_token(registry(tmp_path, loopback.base)), 6)
    assert words in line and loopback.base in line


def test_an_issuer_without_metadata_names_both_urls(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    line = _one_line(get_token(registry(tmp_path, loopback.base)), 6)
    assert f"{loopback.base}{RFC8414} answered HTTP 404" in line
    assert f"{loopback.base}{OPENID} answered HTTP 404" in line


def test_an_unreachable_issuer(tmp_path: Path, loopback: LoopbackServer) -> None:
    loopback.close()
    line = _one_line(get_token(registry(tmp_path, loopback.base)), 6)
    assert f"cannot connect to {loopback.base}{RFC8414}" in line


def test_metadata_of_another_issuer(tmp_path: Path, loopback: LoopbackServer) -> None:
    serve(loopback, metadata(loopback, issuer="https://evil.example"), RFC8414)
    line = _one_line(get_token(registry(tmp_path, loopback.base)), 6)
    assert "names issuer https://evil.example, not " + loopback.base in line
    assert "RFC 8414" in line


def test_metadata_without_the_needed_endpoint(tmp_path: Path, loopback: LoopbackServer) -> None:
    serve(loopback, metadata(loopback, token_endpoint=None), RFC8414)
    line = _one_line(get_token(registry(tmp_path, loopback.base)), 6)
    assert line.endswith(
        f"issuer metadata has no token_endpoint: {loopback.base} does not say where profile "
        "'acme' finds its token_url; set token_url in acme.yaml"
    )


def test_revoke_without_a_revocation_endpoint(tmp_path: Path, loopback: LoopbackServer) -> None:
    serve(loopback, metadata(loopback, revocation_endpoint=None), RFC8414)
    token_route(loopback)
    root = registry(tmp_path, loopback.base)
    assert get_token(root).code == 0
    line = _one_line(run("-r", str(root), "token", "revoke", "acme"), 6)
    assert "issuer metadata has no revocation_endpoint" in line


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://attacker.example/token",
        "https://user:pw@attacker.example/token",
        "javascript:alert(1)",
        "https://x.example/token\r\nX-Injected: 1",
        42,
    ],
)
def test_metadata_pointing_where_oauthcli_would_not_send(
    tmp_path: Path, loopback: LoopbackServer, endpoint: Any
) -> None:
    serve(loopback, metadata(loopback, token_endpoint=endpoint), RFC8414)
    line = _one_line(get_token(registry(tmp_path, loopback.base)), 6)
    assert "gives token_endpoint" in line and "refused" in line
    assert "pw" not in line.split("refused")[0].replace("pw@", "") or "pw@" not in line
    assert paths(loopback) == [RFC8414]  # the client secret went nowhere


def test_a_redirect_within_the_issuer_is_followed_one_elsewhere_is_not(
    tmp_path: Path, loopback: LoopbackServer, loopback2: LoopbackServer
) -> None:
    loopback.routes[RFC8414] = lambda rec: (302, {"Location": "/meta"}, b"")
    serve(loopback, metadata(loopback), "/meta")
    loopback.routes["/meta"] = loopback.routes.pop(f"{OPENID}")
    token_route(loopback)
    assert get_token(registry(tmp_path, loopback.base)).code == 0
    assert paths(loopback)[:2] == [RFC8414, "/meta"]

    loopback.requests.clear()
    loopback.routes[RFC8414] = lambda rec: (302, {"Location": loopback2.url(OPENID)}, b"")
    serve(loopback2, metadata(loopback))
    line = _one_line(get_token(registry(tmp_path, loopback.base), "--force"), 6)
    assert "redirects to another origin" in line
    assert loopback2.requests == []


def test_an_endless_metadata_answer_is_cut_off(tmp_path: Path, loopback: LoopbackServer) -> None:
    huge = b'{"issuer": "' + b"x" * (discovery.MAX_BYTES + 10) + b'"}'
    serve(loopback, huge, RFC8414)
    line = _one_line(get_token(registry(tmp_path, loopback.base)), 6)
    assert "more than 256 KiB" in line


def _slow(rec: Recorded) -> Any:
    import time

    time.sleep(3)
    return (200, JSON, b"{}")


def test_the_profile_timeout_bounds_the_fetch(tmp_path: Path, loopback: LoopbackServer) -> None:
    loopback.routes[RFC8414] = _slow
    root = registry(tmp_path, loopback.base)
    text = (root / "profiles/acme.yaml").read_text().replace("timeout: 5", "timeout: 0.5")
    (root / "profiles/acme.yaml").write_text(text)
    line = _one_line(get_token(root), 6)
    assert "within 0.5 s" in line


# -- validate and show: no network ------------------------------------------------------------


def test_validate_says_where_endpoints_come_from_without_asking(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    root = registry(tmp_path, loopback.base, f"revocation_url: {loopback.url('/rev')}\n")
    result = run("-r", str(root), "validate")
    assert result.code == 0, result.out + result.err
    assert (
        f"profiles/acme.yaml: issuer {loopback.base}: token_url, authorization_url, "
        "device_authorization_url from issuer (discovered when used); revocation_url from "
        "the profile"
    ) in result.err
    shown = run("-r", str(root), "show", "acme")
    assert "token_url:" in shown.out and "(from issuer, discovered when used)" in shown.out
    assert f"{loopback.url('/rev')} (profile)" in shown.out
    assert loopback.requests == []


@pytest.mark.parametrize(
    ("issuer", "words"),
    [
        ("http://login.example", "plain http:// to login.example is refused"),
        ("https://login.example/?tenant=1", "without query or fragment"),
        ("not a url", ""),
    ],
)
def test_validate_refuses_a_bad_issuer(tmp_path: Path, issuer: str, words: str) -> None:
    result = run("-r", str(registry(tmp_path, issuer)), "validate")
    assert result.code == 3
    assert "acme.yaml:2: issuer:" in result.out and words in result.out


def test_token_url_is_required_without_issuer(tmp_path: Path) -> None:
    root = make_registry(
        tmp_path, {"profiles/acme.yaml": "grant_type: client_credentials\nclient_id: a\n"}
    )
    result = run("-r", str(root), "validate")
    assert result.code == 3 and "token_url" in result.out


def test_a_grant_s_endpoint_is_required_unless_issuer(tmp_path: Path) -> None:
    text = "grant_type: authorization_code\nclient_id: a\nclient_auth: none\n"
    text += "redirect_url: http://127.0.0.1:8976/callback\n"
    root = make_registry(tmp_path / "a", {"profiles/acme.yaml": text})
    result = run("-r", str(root), "validate")
    assert result.code == 3 and "authorization_url: missing" in result.out
    root = make_registry(
        tmp_path / "b", {"profiles/acme.yaml": text + "issuer: https://login.example\n"}
    )
    assert run("-r", str(root), "validate").code == 0


# -- in-process ------------------------------------------------------------------------------


def _profile(root: Path) -> Any:
    from oauthcli.registry.discovery import Registry

    return Registry(root).profile("acme")


def test_metadata_fetched_without_verification_is_not_used_with_it(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    serve(loopback, metadata(loopback), RFC8414)
    root = registry(tmp_path, loopback.base)
    strict = resolve_profile(_profile(root))
    discovery.complete(strict)
    text = (root / "profiles/acme.yaml").read_text() + "tls: {verify: false}\n"
    (root / "profiles/acme.yaml").write_text(text)
    loose = resolve_profile(_profile(root))
    discovery.complete(loose)
    assert paths(loopback) == [RFC8414, RFC8414]


def test_complete_raises_a_grant_error_that_is_transient_for_5xx(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    loopback.reply(RFC8414, 503)
    loopback.reply(OPENID, 503)
    profile = resolve_profile(_profile(registry(tmp_path, loopback.base)))
    with pytest.raises(GrantError) as caught:
        discovery.complete(profile)
    assert caught.value.transient
