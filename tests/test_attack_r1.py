"""Attack round 1: an attacker on the same machine, and hostile token servers.

Each test is a defect found by attacking the hardened CLI from the outside (a subprocess
against loopback servers that misbehave on purpose) and kept once fixed.
"""

from __future__ import annotations

import base64
import html
import json
import os
import shutil
from pathlib import Path
from urllib.parse import quote_plus

import pytest

from tests.cliproc import Done, oauthcli
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded

CLIENT_ID = "r1-app"
CLIENT_SECRET = "r1<Sëcret>&\"'/+%=x"
PASSWORD = "r1-pässwörd!X9"
ISSUED = "r1-issued-access-token-0123456789"


def cli(registry: Path, *args: str, env: dict[str, str] | None = None) -> Done:
    secrets = {"R1_SECRET": CLIENT_SECRET, "R1_PASSWORD": PASSWORD}
    return oauthcli(*args, registry=registry, env={**secrets, **(env or {})})


def _token(rec: Recorded) -> tuple[int, dict[str, str], bytes]:
    answer = {"access_token": ISSUED, "token_type": "Bearer", "expires_in": 3600}
    return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()


def _ok(rec: Recorded) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, b'{"ok": true}'


# -- a password in a URL, however short ---------------------------------------------------


@pytest.fixture
def userinfo_registry(loopback: LoopbackServer, tmp_path: Path) -> Path:
    loopback.routes["/token"] = _token
    loopback.routes["/x"] = _ok
    port = loopback.port
    return make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": f"""\
                grant_type: client_credentials
                token_url: http://tu:pw@127.0.0.1:{port}/token
                client_id: {CLIENT_ID}
                client_secret: ${{env:R1_SECRET}}
                """,
            "messages/m.yaml": f"""\
                endpoint: "http://eu:pw@127.0.0.1:{port}/x"
                auth: {{type: oauth2, profile: acme}}
                methods:
                  get: {{http_method: GET}}
                """,
            "messages/plain.yaml": f"""\
                endpoint: "http://eu:pw@127.0.0.1:{port}/x"
                methods:
                  get: {{http_method: GET}}
                """,
            "messages/dead.yaml": """\
                endpoint: "http://eu:pw@127.0.0.1:9/x"
                auth: {type: none}
                methods:
                  get: {http_method: GET}
                """,
        },
    )


def test_a_short_password_in_a_url_is_masked_in_every_output(
    userinfo_registry: Path, loopback: LoopbackServer
) -> None:
    runs = {
        "show profile": cli(userinfo_registry, "show", "acme"),
        "show message": cli(userinfo_registry, "show", "m"),
        "dry run": cli(userinfo_registry, "send", "m.get", "--dry-run"),
        "dry run json": cli(userinfo_registry, "send", "m.get", "--dry-run", "--json"),
        "verbose": cli(userinfo_registry, "send", "m.get", "-v"),
        "json": cli(userinfo_registry, "send", "m.get", "--json"),
        "refused": cli(userinfo_registry, "send", "dead.get"),
        "refused json": cli(userinfo_registry, "send", "dead.get", "--json"),
        "get-token -v": cli(userinfo_registry, "get-token", "acme", "--force", "-v"),
    }
    for what, run in runs.items():
        assert ":pw@" not in run.both, (what, run.both)
        if what in ("show profile", "show message", "dry run", "dry run json", "refused"):
            assert "u:****@" in run.both, (what, run.both)
    assert runs["refused"].code == 7
    # The Host line shows what goes on the wire: no userinfo in a Host header.
    assert f"> Host: 127.0.0.1:{loopback.port}" in runs["verbose"].err


def test_the_configured_auth_wins_over_userinfo_in_the_endpoint(
    userinfo_registry: Path, loopback: LoopbackServer
) -> None:
    run = cli(userinfo_registry, "send", "m.get", "-v")
    assert run.code == 0, run.err
    api = [r for r in loopback.requests if r.path == "/x"]
    # requests would turn eu:pw into Basic auth over the bearer token: the call failed.
    assert api[-1].headers["authorization"] == f"Bearer {ISSUED}"
    assert "> Authorization: Bearer ****" in run.err
    dry = cli(userinfo_registry, "send", "m.get", "--dry-run")
    assert "Authorization: Bearer ****" in dry.out


def test_userinfo_alone_is_basic_auth_and_dry_run_shows_it(
    userinfo_registry: Path, loopback: LoopbackServer
) -> None:
    run = cli(userinfo_registry, "send", "plain.get")
    assert run.code == 0, run.err
    sent = loopback.requests[-1].headers["authorization"]
    assert sent == "Basic " + base64.b64encode(b"eu:pw").decode()
    dry = cli(userinfo_registry, "send", "plain.get", "--dry-run", "--json")
    assert json.loads(dry.out)["headers"]["Authorization"] == "Basic ****"


# -- token endpoints that echo the request in other spellings ------------------------------


def _echoes(rec: Recorded) -> tuple[int, dict[str, str], bytes]:
    basic = rec.headers["authorization"].split()[-1]
    pair = base64.b64decode(basic).decode()
    secret = pair.partition(":")[2]
    from urllib.parse import unquote_plus

    plain = unquote_plus(secret)
    text = "\n".join(
        [
            "unpadded " + basic.rstrip("="),
            "url-safe " + base64.urlsafe_b64encode(pair.encode()).decode().rstrip("="),
            "wrapped\n" + "\n".join(basic[i : i + 7] for i in range(0, len(basic), 7)),
            "split\n" + "\n".join(plain[i : i + 4] for i in range(0, len(plain), 4)),
            "html " + html.escape(plain),
            "html-39 " + html.escape(plain).replace("&#x27;", "&#39;"),
        ]
    )
    answer = {"error": "invalid_client", "error_description": text}
    return 401, {"Content-Type": "application/json"}, json.dumps(answer).encode()


def _echo_html(rec: Recorded) -> tuple[int, dict[str, str], bytes]:
    from urllib.parse import parse_qs

    password = parse_qs(rec.body.decode())["password"][0]
    page = f"<html><head><title>Error</title></head><body><pre>password={html.escape(password)}"
    return 500, {"Content-Type": "text/html"}, (page + "</pre></body></html>").encode()


def test_a_token_endpoint_echoing_the_credential_in_other_spellings_shows_none(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    loopback.routes["/token"] = _echoes
    loopback.routes["/token-html"] = _echo_html
    base = loopback.base
    registry = make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": f"""\
                grant_type: client_credentials
                token_url: {base}/token
                client_id: {CLIENT_ID}
                client_secret: ${{env:R1_SECRET}}
                """,
            "profiles/pw.yaml": f"""\
                grant_type: password
                token_url: {base}/token-html
                client_id: {CLIENT_ID}
                client_auth: none
                username: bob
                password: 'a<b>&"c''d-r1'
                """,
        },
    )
    pair = f"{quote_plus(CLIENT_ID)}:{quote_plus(CLIENT_SECRET)}"
    basic = base64.b64encode(pair.encode()).decode()
    forbidden = {
        "basic unpadded": basic.rstrip("="),
        "url-safe": base64.urlsafe_b64encode(pair.encode()).decode().rstrip("="),
        "secret": CLIENT_SECRET,
        "html-escaped secret": html.escape(CLIENT_SECRET),
        "html-escaped password": html.escape("a<b>&\"c'd-r1"),
    }
    for args in (("get-token", "acme"), ("get-token", "acme", "-v"), ("get-token", "pw")):
        for debug in ("0", "1"):
            run = cli(registry, *args, env={"OAUTHCLI_DEBUG": debug})
            assert run.code == 6, run.both
            # Wrapped or split over lines, it is still the secret once the breaks are gone.
            joined = "".join(run.both.split())
            for what, form in forbidden.items():
                assert form not in joined, (args, what, run.both)


def test_an_explanation_cut_short_never_keeps_half_a_secret(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    def denied(rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        # The reason is cut at 400 characters: right through the echoed key.
        reason = "x" * 390 + " key " + rec.headers["x-api-key"]
        body = json.dumps({"message": reason}).encode()
        return 403, {"Content-Type": "application/json"}, body

    loopback.routes["/x"] = denied
    registry = make_registry(
        tmp_path / "reg",
        {
            "messages/m.yaml": f"""\
                endpoint: {loopback.base}/x
                auth: {{type: api_key, header: X-Api-Key, value: "${{env:R1_SECRET}}"}}
                methods:
                  get: {{http_method: GET}}
                """
        },
    )
    run = cli(registry, "send", "m.get")
    assert run.code == 4, run.both
    assert CLIENT_SECRET[:4] not in run.err, run.err


# -- the cache folder ---------------------------------------------------------------------


@pytest.fixture
def token_registry(loopback: LoopbackServer, tmp_path: Path) -> Path:
    loopback.routes["/token"] = _token
    loopback.routes["/other-token"] = _token
    base = loopback.base
    return make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": f"""\
                grant_type: client_credentials
                token_url: {base}/token
                client_id: {CLIENT_ID}
                client_secret: ${{env:R1_SECRET}}
                """,
            "profiles/other.yaml": f"""\
                grant_type: client_credentials
                token_url: {base}/other-token
                client_id: someone-else
                client_secret: ${{env:R1_SECRET}}
                """,
        },
    )


@pytest.mark.parametrize("folder", ["~r1-no-such-user/cache", "/tmp"])
def test_an_unusable_cache_folder_is_exit_3_with_a_reason(
    token_registry: Path, folder: str
) -> None:
    if folder == "/tmp" and os.stat("/tmp").st_uid != os.getuid():
        reason = "belongs to uid"
    else:
        reason = "it is a shared folder" if folder == "/tmp" else "cannot be found"
    for args in (("get-token", "acme"), ("token", "list"), ("token", "clear")):
        run = cli(token_registry, *args, env={"OAUTHCLI_CACHE_DIR": folder})
        assert run.code == 3, (args, run.both)
        assert reason in run.err, run.err
        assert "chmod go-w /tmp" not in run.err  # never advise opening up /tmp's sticky mode
        assert len(run.err.strip().splitlines()) == 1


def test_an_entry_of_another_client_moved_into_place_is_a_miss(
    token_registry: Path, loopback: LoopbackServer, isolated_oauthcli: Path
) -> None:
    assert cli(token_registry, "get-token", "other").code == 0
    (theirs,) = isolated_oauthcli.glob("*.json")
    data = json.loads(theirs.read_text())
    data["access_token"] = "r1-someone-elses-token-000000"
    theirs.write_text(json.dumps(data))
    # The key of profile acme: the entry its own run writes.
    assert cli(token_registry, "get-token", "acme").code == 0
    ours = next(p for p in isolated_oauthcli.glob("*.json") if p != theirs)
    shutil.copyfile(theirs, ours)
    os.chmod(ours, 0o600)
    run = cli(token_registry, "get-token", "acme", "--json")
    assert run.code == 0, run.err
    assert json.loads(run.out)["source"] == "grant"
    assert "of another client (profile 'other')" in run.err
    assert json.loads(ours.read_text())["client_id"] == CLIENT_ID


def test_masking_a_url_password_stays_linear_on_a_long_word() -> None:
    import time

    from oauthcli.secret import mask_userinfo

    started = time.monotonic()
    for text in ("Z" * (1 << 22) + "://", "a://b:" + "c" * (1 << 22), " a://b:c" * (1 << 19)):
        mask_userinfo(text)
    assert time.monotonic() - started < 3  # quadratic backtracking took minutes
    assert mask_userinfo("GET https://u:p@ss@h/x") == "GET https://u:****@h/x"


# -- TLS to loopback with a certificate that does not fit -----------------------------------

from tests.test_http_tls import _server, pki  # noqa: E402, F401 - the CA and server certificate


def test_a_token_endpoint_with_a_wrong_certificate_is_exit_6_with_the_whole_reason(
    pki: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    server = _server(pki, require_client_cert=False)
    try:
        registry = make_registry(
            tmp_path / "reg",
            {
                "profiles/unknown-ca.yaml": f"""\
                    grant_type: client_credentials
                    token_url: https://127.0.0.1:{server.port}/token
                    client_id: {CLIENT_ID}
                    client_secret: ${{env:R1_SECRET}}
                    timeout: 5
                    """,
                "profiles/wrong-host.yaml": f"""\
                    grant_type: client_credentials
                    token_url: https://localhost:{server.port}/token
                    client_id: {CLIENT_ID}
                    client_secret: ${{env:R1_SECRET}}
                    timeout: 5
                    tls: {{ca_bundle: {pki / "ca.pem"}}}
                    """,
            },
        )
        unknown = cli(registry, "get-token", "unknown-ca")
        wrong = cli(registry, "get-token", "wrong-host")
    finally:
        server.close()
    for run in (unknown, wrong):
        assert run.code == 6, run.err
        assert "certificate verify failed" in run.err and "(_ssl" not in run.err, run.err
        assert len(run.err.strip().splitlines()) == 1
    # The host the certificate does not fit is named (it was cut at its opening quote).
    assert "not valid for 'localhost'" in wrong.err, wrong.err
