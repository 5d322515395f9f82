"""get-token, token list and token revoke through the installed CLI against oidc-provider.

Every client-auth method the provider registers; the secrets carry ``+ % : /``, so
client_secret_basic proves the RFC 6749 §2.3.1 encoding. Then expiry and the leeway window
with short-lived tokens. (oidc-provider issues no refresh token for client_credentials, so the
refresh path is proven against the sandbox and in the unit tests, not here.)
"""

from __future__ import annotations

import time

import pytest

from .cli import AUTH_METHODS, Cli

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("auth", AUTH_METHODS)
def test_get_token_e2e(cli: Cli, auth: str) -> None:
    op = cli.op
    client = next(c for c in op.clients.values() if c.auth_method == auth)

    first = cli.run("get-token", "--json", auth)

    assert first.code == 0, first
    data = first.json()
    assert (data["cached"], data["source"], data["profile"]) == (False, "grant", auth)
    assert data["scope"] == "api.read api.write"
    assert data["jwt"]["header"]["typ"] == "at+jwt"
    claims = data["jwt"]["claims"]
    assert (claims["aud"], claims["client_id"], claims["iss"]) == (
        op.resource,
        client.client_id,
        op.issuer,
    )
    [request] = op.token_history()
    assert request["status"] == 200, request
    assert (request["client_auth"], request["grant_type"]) == (auth, "client_credentials")
    assert (request["client_id"], request["resource"]) == (client.client_id, op.resource)

    # The next invocations reuse the cached token: no token request.
    second = cli.run("get-token", auth)
    raw = cli.run("get-token", "--raw", auth)
    assert second.code == 0 and "from the cache" in second.out, second
    assert raw.code == 0 and raw.err == "", raw
    assert raw.out == f"{next(iter(cli.cached_tokens()))}\n"
    assert raw.out.strip() not in second.out + first.out
    assert cli.token_requests() == 1

    # Revocation authenticates the same way; the entry is gone afterwards.
    revoked = cli.run("token", "revoke", auth)
    assert revoked.code == 0, revoked
    assert f"revoked the access token of profile '{auth}' at {op.revocation_url}" in revoked.out
    assert op.stats()["revocation"] == {"total": 1, "ok": 1, "error": 0}
    assert cli.cache_entries() == []
    assert cli.token_requests() == 1


def _obtained_at(cli: Cli) -> float:
    [entry] = cli.cache_entries()
    return float(entry["obtained_at"])


def _sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def test_expiry_and_the_leeway_window(cli: Cli) -> None:
    """Tokens live 5 s and are renewed min(token_leeway 2, 5 / 4) = 1.25 s before they
    expire (SPEC §4): cached while fresh, renewed inside the window, kept when renewal
    fails transiently there, an error once expired."""
    name = cli.add_profile("short", "client_secret_post", token_leeway=2)
    with cli.op.short_lived_tokens(5):
        first = cli.run("get-token", "--json", name)
        assert first.code == 0 and first.json()["expires_in"] in (4, 5), first
        t0 = _obtained_at(cli)
        cached = cli.run("get-token", "--json", name)
        assert time.time() < t0 + 3.75, "the machine is too slow for this test's timing"
        assert cached.json()["cached"] is True, cached
        assert cli.token_requests() == 1

        _sleep_until(t0 + 3.85)  # inside the renewal window, still valid for ~1.15 s
        renewed = cli.run("get-token", "--raw", name)
        assert renewed.code == 0, renewed
        t1 = _obtained_at(cli)
        assert t1 > t0 and cli.token_requests() == 2

        _sleep_until(t1 + 3.85)
        cli.op.fail_next_token_requests(1, status=503)
        kept = cli.run("get-token", "--raw", name)
        assert kept.code == 0 and kept.out == renewed.out, kept
        assert "temporarily_unavailable" in kept.err and "still valid" in kept.err
        assert _obtained_at(cli) == t1 and cli.token_requests() == 3

        _sleep_until(t1 + 5.1)  # expired now: a failure to renew is an error
        cli.op.fail_next_token_requests(1, status=503)
        failed = cli.run("get-token", name)
        assert failed.code == 6 and failed.out == "", failed
        assert "temporarily_unavailable" in failed.err and "still valid" not in failed.err
        assert cli.token_requests() == 4

        # A send with only an expired token in the cache gets a new one before calling the
        # API (no 401 first).
        sent = cli.run("send", "--json", f"api_{name}.list")
        assert sent.code == 0 and sent.json()["attempts"] == 1, sent
        assert cli.token_requests() == 5
        assert cli.rs.stats()["by_status"] == {"200": 1}
        assert renewed.out.strip() not in cli.cached_tokens()
