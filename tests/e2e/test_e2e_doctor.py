"""``oauthcli doctor`` of the installed oauthcli against oidc-provider and the resource server:
the discovery checks read the provider's real metadata, the token is the provider's, and a
profile the provider refuses fails with exit 6 and the hint; nothing is sent to the API."""

from __future__ import annotations

import pytest

from .cli import Cli, Run
from .test_e2e_discovery import issuer_profile, served

pytestmark = pytest.mark.e2e


def changed(cli: Cli, name: str, **keys: str) -> str:
    """An issuer profile (test_e2e_discovery's) with ``keys`` written over its own."""
    issuer_profile(cli, name)
    path = cli.root / "profiles" / f"{name}.yaml"
    kept = [line for line in path.read_text().splitlines() if line.split(":", 1)[0] not in keys]
    path.write_text("\n".join([*kept, *(f"{k}: {v}" for k, v in keys.items())]) + "\n")
    return name


def lines(run: Run, name: str) -> list[str]:
    return [line for line in run.out.splitlines() if line[5:].startswith(name + " ")]


def words(run: Run) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for line in run.out.splitlines():
        found.setdefault(line[5:18].strip(), set()).add(line[:4].strip())
    return found


def test_a_message_of_the_provider_passes_and_nothing_is_sent_to_the_api(cli: Cli) -> None:
    op, rs = cli.op, cli.rs
    since = len(op.grants_served())
    got = cli.run("doctor", "api_client_secret_basic")
    assert got.code == 0, got
    seen = words(got)
    for name in ("registry", "dns", "discovery", "client auth", "grant", "clock", "token"):
        assert seen[name] == {"pass"}, (name, got)
    assert f"serves metadata of issuer {op.issuer}" in got.out
    assert "client_auth client_secret_basic is among the server's methods" in got.out
    [token] = lines(got, "token")
    assert f"new from {op.token_url}" in token and f"aud {op.resource}" in token
    assert all(line.startswith("pass") for line in lines(got, "call")), got
    dry = lines(got, "dry run")
    assert any(f"GET {rs.api_base_url}/incidents (not sent)" in line for line in dry), got
    [grant] = served(op, since, "cli-basic")
    assert (grant["grant_type"], grant["status"]) == ("client_credentials", "200")
    # The API was asked for its clock only: one GET of "/", with no credentials; no call.
    asked = rs.stats()["requests"]
    assert [(r["method"], r["path"]) for r in asked] == [("GET", "/")], asked
    assert not asked[0].get("client_id")
    for token_value in cli.cached_tokens():
        assert token_value not in got.out and token_value not in got.err


def test_an_issuer_profile_is_checked_against_the_real_metadata(cli: Cli) -> None:
    op = cli.op
    name = issuer_profile(cli, "doc-issuer")
    got = cli.run("doctor", name)
    assert got.code == 0, got
    assert f"metadata of issuer {op.issuer}: issuer matches" in got.out
    assert f"token_url from the metadata: {op.token_url}" in got.out
    assert lines(got, "grant")[0].startswith("pass")
    assert "from the cache" not in got.out and f"new from {op.token_url}" in got.out


def test_a_client_auth_the_client_is_not_registered_for_fails_with_exit_6(cli: Cli) -> None:
    op = cli.op
    since = len(op.grants_served())
    name = changed(cli, "doc-post", client_auth="client_secret_post")
    got = cli.run("doctor", name)
    assert got.code == 6, got
    [token] = lines(got, "token")
    assert token.startswith("FAIL") and "invalid_client" in token
    assert "client_auth in profiles/doc-post.yaml" in token
    [grant] = served(op, since, "cli-basic")
    assert grant["status"] != "200"


def test_a_grant_the_provider_does_not_offer_fails_the_grant_check(cli: Cli) -> None:
    name = changed(
        cli, "doc-password", grant_type="password", username="alice", password="wonderland-pw"
    )
    got = cli.run("doctor", name)
    assert got.code == 6, got
    [grant] = lines(got, "grant")
    assert grant.startswith("FAIL") and "grant password is not in grant_types_supported" in grant
    assert "client_credentials" in grant  # what the provider does offer
    assert "wonderland-pw" not in got.out + got.err
