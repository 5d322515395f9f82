"""RFC 8693 token exchange through the installed CLI against oidc-provider's registered grant:
the subject (and actor) token is another profile's token through ``${token:PROFILE}``, and the
provider's grant log says it served each exchange."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from .cli import Cli

pytestmark = pytest.mark.e2e

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))


def _exchange_profile(cli: Cli, name: str, *extra: str) -> None:
    client = cli.op.exchange
    assert client.client_secret is not None
    cli.env["E2E_SECRET_CLI_EXCHANGE"] = client.client_secret
    lines = [
        "grant_type: token_exchange",
        f"token_url: {cli.op.token_url}",
        f"client_id: {client.client_id}",
        "client_secret: ${env:E2E_SECRET_CLI_EXCHANGE}",
        "subject_token: ${token:client_secret_basic}",
        f"audience: {cli.rs.api_base_url}",
        "scope: api.read",
        *extra,
    ]
    (cli.root / "profiles" / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    cli.add_message(
        f"api_{name}",
        f"endpoint: {cli.rs.api_base_url}\n"
        f"auth: {{type: oauth2, profile: {name}}}\n"
        "retry: {attempts: 1}\n"
        "methods:\n  list: {http_method: GET, path: /incidents}\n"
        "  create: {http_method: POST, path: /incidents, json: {title: x}}\n",
    )


def _exchanges(cli: Cli) -> list[dict[str, str]]:
    return [g for g in cli.op.grants_served() if g.get("grant_type") == TOKEN_EXCHANGE]


def test_token_exchange_of_another_profiles_token(cli: Cli) -> None:
    _exchange_profile(cli, "exchanged")
    before = len(_exchanges(cli))

    got = cli.run("get-token", "--json", "exchanged")
    assert got.code == 0, got
    claims = got.json()["jwt"]["claims"]
    # The subject is cli-basic's (its token came through the cache), the client cli-exchange.
    assert (claims["sub"], claims["client_id"]) == ("cli-basic", "cli-exchange")
    assert claims["aud"] == cli.rs.api_base_url and claims["scope"] == "api.read"
    history = cli.op.token_history()
    assert [h["grant_type"] for h in history] == ["client_credentials", TOKEN_EXCHANGE]
    assert history[0]["client_id"] == "cli-basic"

    served = _exchanges(cli)[before:]
    assert len(served) == 1, served
    assert served[0]["client"] == "cli-exchange" and served[0]["status"] == "200"
    assert served[0]["audience"] == cli.rs.api_base_url and served[0]["actor"] == "no"

    # The exchanged token calls the API; the inner token is reused from the cache on --force.
    listed = cli.run("send", "api_exchanged.list")
    assert listed.code == 0, listed
    refused = cli.run("send", "api_exchanged.create")
    assert refused.code == 4, refused  # api.read only: the exchange narrowed the scope
    forced = cli.run("get-token", "exchanged", "--force")
    assert forced.code == 0, forced
    assert [h["grant_type"] for h in cli.op.token_history()][2:] == [TOKEN_EXCHANGE]
    _no_token_printed(cli)


def test_token_exchange_with_an_actor(cli: Cli) -> None:
    _exchange_profile(
        cli,
        "delegated",
        "actor_token: ${token:client_secret_post}",
        f"actor_token_type: {ACCESS}",
        f"requested_token_type: {ACCESS}",
    )
    before = len(_exchanges(cli))
    got = cli.run("get-token", "--json", "delegated")
    assert got.code == 0, got
    claims = got.json()["jwt"]["claims"]
    assert claims["sub"] == "cli-basic" and claims["act"] == {"sub": "cli-post"}
    served = _exchanges(cli)[before:]
    assert [(g["status"], g["actor"]) for g in served] == [("200", "yes")]
    _no_token_printed(cli)


def test_the_provider_refusing_the_exchange_is_exit_6(cli: Cli) -> None:
    _exchange_profile(cli, "elsewhere")
    path = cli.root / "profiles" / "elsewhere.yaml"
    path.write_text(path.read_text().replace(cli.rs.api_base_url, "http://127.0.0.1:9/other"))
    before = len(_exchanges(cli))
    result = cli.run("get-token", "elsewhere")
    assert result.code == 6, result
    assert "invalid_target" in result.err and "profile 'elsewhere'" in result.err
    assert [g["status"] for g in _exchanges(cli)[before:]] == ["400"]
    _no_token_printed(cli)


def _no_token_printed(cli: Cli) -> None:
    """Neither the subject tokens nor the exchanged ones, whole or their signature."""
    tokens = cli.cached_tokens()
    assert tokens
    for run in cli.runs:
        for token in tokens:
            assert token not in run.both and token.rsplit(".", 1)[-1] not in run.both, run
