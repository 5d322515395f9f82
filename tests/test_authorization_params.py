"""authorization_params go to the authorization request only (the sign-in URL), extra_params
to the token request only (SPEC §1.1); authorization_params are for authorization_code
profiles, may not replace what oauthcli sets, and are part of the token's identity."""

from __future__ import annotations

import socket
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from oauthcli.registry.declaration import AUTHORIZATION_SET
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.tokens import authcode, cache
from tests.clirun import run
from tests.registry_factory import make_registry
from tests.servers import TokenServer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _profile(server_url: str, redirect: str, more: str) -> str:
    return (
        "grant_type: authorization_code\n"
        f"token_url: {server_url}/token\n"
        f"authorization_url: {server_url}/authorize\n"
        f"redirect_url: {redirect}\n"
        "client_id: app\nclient_auth: none\nscope: openid api.read\n" + more
    )


def test_each_goes_only_where_it_belongs(
    tmp_path: Path, token_server: TokenServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    redirect = f"http://127.0.0.1:{_free_port()}/callback"
    more = (
        "authorization_params: {prompt: consent, login_hint: alice@example.test}\n"
        "extra_params: {tenant: blue}\n"
    )
    root = make_registry(
        tmp_path, {"profiles/acme.yaml": _profile(token_server.url, redirect, more)}
    )
    seen: dict[str, list[str]] = {}

    def browser(url: str) -> bool:
        seen.update(parse_qs(urlsplit(url).query))
        requests.get(redirect, params={"code": "c-1", "state": seen["state"][0]}, timeout=5)
        return True

    monkeypatch.setattr(authcode.webbrowser, "open", browser)
    monkeypatch.setattr(authcode, "interactive", lambda: True)
    result = run("-r", str(root), "get-token", "--raw", "acme")
    assert result.code == 0, result.both
    assert seen["prompt"] == ["consent"] and seen["login_hint"] == ["alice@example.test"]
    assert "tenant" not in seen
    form = token_server.forms[0]
    assert form["tenant"] == ["blue"]
    assert "prompt" not in form and "login_hint" not in form


def test_validate_and_show(tmp_path: Path) -> None:
    profile = _profile(
        "http://127.0.0.1:9",
        "http://127.0.0.1:8976/callback",
        "authorization_params: {prompt: consent}\n",
    )
    root = make_registry(tmp_path, {"profiles/acme.yaml": profile})
    assert run("-r", str(root), "validate").code == 0
    shown = run("-r", str(root), "show", "acme")
    assert "authorization_params" in shown.out and "prompt" in shown.out


@pytest.mark.parametrize("name", AUTHORIZATION_SET)
def test_a_parameter_oauthcli_sets_is_refused(tmp_path: Path, name: str) -> None:
    profile = _profile(
        "http://127.0.0.1:9",
        "http://127.0.0.1:8976/callback",
        f"authorization_params:\n  {name}: x\n",
    )
    root = make_registry(tmp_path, {"profiles/acme.yaml": profile})
    result = run("-r", str(root), "validate")
    assert result.code == 3, result.both
    assert f"acme.yaml:9: authorization_params.{name}: set by oauthcli from the profile" in (
        result.both
    )
    assert "Traceback" not in result.both


def test_only_for_authorization_code(tmp_path: Path) -> None:
    root = make_registry(
        tmp_path,
        {
            "profiles/p.yaml": (
                "client_id: c\nclient_secret: s\ntoken_url: http://127.0.0.1:9/token\n"
                "authorization_params: {prompt: consent}\n"
            )
        },
    )
    result = run("-r", str(root), "validate")
    assert result.code == 3
    assert "p.yaml:4: authorization_params: only used with grant_type authorization_code" in (
        result.both
    )


def test_they_are_part_of_the_token_identity(token_profile) -> None:
    base: ResolvedProfile = token_profile(
        grant_type="authorization_code",
        authorization_url="https://login.test/authorize",
        redirect_url="http://127.0.0.1:8976/callback",
    )
    alice = replace(base, authorization_params={"login_hint": "alice"})
    bob = replace(base, authorization_params={"login_hint": "bob"})
    keys = {cache.entry_key(p) for p in (base, alice, bob)}
    assert len(keys) == 3
