"""send through the installed CLI: oidc-provider issues the token, the resource server checks
its signature against the provider's JWKS, its audience and its scope.

Token requests are counted at the provider: a cached token is reused across invocations, a
401 on a cached token costs exactly one new token, and twelve processes started at once with
an empty cache make one token request between them.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from .cli import AUTH_METHODS, Cli

pytestmark = pytest.mark.e2e

PARALLEL = 12


@pytest.mark.parametrize("auth", AUTH_METHODS)
def test_send_e2e(cli: Cli, auth: str) -> None:
    client = next(c for c in cli.op.clients.values() if c.auth_method == auth)
    message = f"api_{auth}"

    listed = cli.run("send", f"{message}.list")
    created = cli.run("send", "--json", f"{message}.create", "-V", f"title=from {auth}")
    me = cli.run("send", "--json", f"{message}.me")

    assert listed.code == 0, listed
    incidents = json.loads(listed.out)  # piped: the body exactly as the API sent it
    assert {"id": 1, "title": "Database latency above SLO", "severity": "high"} in incidents
    assert created.code == 0, created
    result = created.json()
    assert (result["status"], result["http_method"], result["attempts"]) == (201, "POST", 1)
    assert result["body"]["title"] == f"from {auth}" and isinstance(result["body"]["id"], int)
    assert me.code == 0, me
    claims = me.json()["body"]
    assert (claims["client_id"], claims["aud"]) == (client.client_id, cli.op.resource)
    assert claims["scope"] == "api.read api.write"

    # One token for the three invocations, obtained the configured way.
    assert cli.token_requests() == 1
    [request] = cli.op.token_history()
    assert (request["client_auth"], request["status"]) == (auth, 200)
    api = cli.rs.stats()
    assert api["by_status"] == {"200": 2, "201": 1}
    assert {r["client_id"] for r in api["requests"]} == {client.client_id}
    assert len({r["jti"] for r in api["requests"]}) == 1  # the same token each time


def test_401_on_a_cached_token_costs_one_new_token(cli: Cli) -> None:
    message = "api_private_key_jwt.list"
    assert cli.run("send", message).code == 0
    old = cli.cached_tokens()
    assert cli.token_requests() == 1

    cli.rs.reject_before_now()  # the API now refuses the cached token
    recovered = cli.run("send", "--json", "-v", message)

    assert recovered.code == 0, recovered
    result = recovered.json()
    assert (result["status"], result["attempts"]) == (200, 2)
    assert "401" in recovered.err and "dropping it" in recovered.err
    assert cli.token_requests() == 2  # exactly one extra token request
    assert cli.rs.stats()["by_status"] == {"200": 2, "401": 1}
    new = cli.cached_tokens()
    assert len(new) == 1 and new != old

    again = cli.run("send", "--json", message)
    assert again.code == 0 and again.json()["attempts"] == 1, again
    assert cli.token_requests() == 2


def test_parallel_sends_make_one_token_request(cli: Cli, e2e_note: Callable[[str], None]) -> None:
    """Twelve processes, empty cache: one asks the provider (slowed to 0.5 s so that all of
    them are waiting for it), the others wait on the cache entry's lock and reuse its token."""
    auth = "client_secret_basic"
    assert cli.cache_entries() == []
    cli.op.fail_next_token_requests(1, status=0, delay=0.5)

    runs = cli.run_parallel([["send", "--json", f"api_{auth}.list"]] * PARALLEL)

    counted = cli.token_requests()
    e2e_note(f"{PARALLEL} parallel sends ({auth}, empty cache) -> {counted} token request(s)")
    failed = [str(r) for r in runs if r.code != 0]
    assert not failed, "\n".join(failed)
    assert [r.json()["status"] for r in runs] == [200] * PARALLEL
    assert counted == 1, f"{PARALLEL} parallel sends made {counted} token requests, not 1"
    api = cli.rs.stats()
    assert api["by_status"] == {"200": PARALLEL}
    assert len({r["jti"] for r in api["requests"]}) == 1
