"""get-token and token revoke end to end against a real oidc-provider on 127.0.0.1.

Every client-auth method the provider registers (its secrets carry ``+ % : /``,
so client_secret_basic proves the RFC 6749 §2.3.1 encoding), a transient
failure inside the leeway window, a refusal, and revocation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.clirun import run
from tests.e2e.servers import Client, HarnessError, OidcProvider, run_servers
from tests.registry_factory import make_registry

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    try:
        with run_servers(tmp_path_factory.mktemp("tokens-e2e")) as (op, _api):
            yield op
    except HarnessError as exc:
        pytest.fail(f"e2e harness: {exc}", pytrace=False)


def _registry(tmp_path: Path, op: OidcProvider, client: Client, extra: str = "") -> Path:
    lines = [
        "grant_type: client_credentials",
        f"token_url: {op.token_url}",
        f"revocation_url: {op.revocation_url}",
        f"client_id: {client.client_id}",
        f"client_auth: {client.auth_method}",
        "scope: api.read",
        f"resource: {op.resource}",
    ]
    files: dict[str, str] = {}
    if client.client_secret is not None:
        lines.append("client_secret: ${env:E2E_SECRET}")
    if client.private_key_path is not None:
        lines += ["private_key: ${file:client.pem}", f"key_id: {client.kid}"]
        files["profiles/client.pem"] = client.private_key_pem
    files["profiles/p.yaml"] = "\n".join(lines) + "\n" + extra
    return make_registry(tmp_path, files)


@pytest.mark.parametrize("name", ["basic", "post", "jwt", "secret_jwt"])
def test_each_client_auth_gets_a_token_once(
    tmp_path: Path, provider: OidcProvider, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client: Client = getattr(provider, name)
    monkeypatch.setenv("E2E_SECRET", client.client_secret or "")
    root = _registry(tmp_path, provider, client)
    before = provider.token_requests()
    first = run("-r", str(root), "get-token", "--json", "p")
    assert first.code == 0, first.err
    second = json.loads(run("-r", str(root), "get-token", "--json", "p").out)
    data = json.loads(first.out)
    assert data["cached"] is False and second["cached"] is True
    assert data["jwt"]["claims"]["aud"] == provider.resource
    assert data["jwt"]["header"]["typ"] == "at+jwt" and data["scope"] == "api.read"
    assert provider.token_requests() - before == 1
    history = provider.token_history()[-1]
    assert history["client_auth"] == client.auth_method and history["status"] == 200
    if client.client_secret:
        assert client.client_secret not in first.out + first.err


def test_transient_failure_inside_the_leeway_keeps_the_token(
    tmp_path: Path, provider: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E2E_SECRET", provider.basic.client_secret or "")
    with provider.short_lived_tokens(30):
        root = _registry(tmp_path, provider, provider.basic, "token_leeway: 29\n")
        token = run("-r", str(root), "get-token", "--raw", "p").out
        time.sleep(1.2)  # now inside the leeway window, the token still valid
        provider.fail_next_token_requests(1, status=503)
        again = run("-r", str(root), "get-token", "--raw", "p")
    assert again.code == 0 and again.out == token
    assert "temporarily_unavailable" in again.err and "still valid" in again.err


def test_a_refusal_exits_6_with_the_servers_error(
    tmp_path: Path, provider: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E2E_SECRET", "not-the-secret")
    root = _registry(tmp_path, provider, provider.basic)
    result = run("-r", str(root), "get-token", "p")
    assert result.code == 6 and result.out == ""
    assert "invalid_client" in result.err and "not-the-secret" not in result.err


def test_revoke_then_forget(
    tmp_path: Path, provider: OidcProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("E2E_SECRET", provider.post.client_secret or "")
    root = _registry(tmp_path, provider, provider.post)
    assert run("-r", str(root), "get-token", "p").code == 0
    before = provider.revocation_requests()
    result = run("-r", str(root), "token", "revoke", "p")
    assert result.code == 0 and "revoked the access token" in result.out
    assert provider.revocation_requests() - before == 1
    assert "no cached tokens" in run("token", "list").err
