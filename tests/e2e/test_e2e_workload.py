"""Workload identity (``client_auth: client_assertion``) through the installed CLI against
oidc-provider's ``cli-ci`` client, which trusts the fake CI issuer's keys: an assertion from a
file (a projected token) read anew for each token request, and GitHub Actions' ID token from
the fake ``ACTIONS_ID_TOKEN_REQUEST_URL``. The provider's grant log says it served each."""

from __future__ import annotations

import pytest

from .cli import Cli
from .servers import FakeCi

pytestmark = pytest.mark.e2e


def _ci_profile(cli: Cli, assertion: str) -> None:
    lines = [
        "grant_type: client_credentials",
        f"token_url: {cli.op.token_url}",
        "client_id: cli-ci",
        "client_auth: client_assertion",
        f"client_assertion: {assertion}",
        "scope: api.read",
        f"resource: {cli.op.resource}",
    ]
    (cli.root / "profiles" / "ci.yaml").write_text("\n".join(lines) + "\n")
    cli.add_message(
        "api_ci",
        f"endpoint: {cli.rs.incidents_url}\nauth: {{type: oauth2, profile: ci}}\n"
        "retry: {attempts: 1}\n",
    )


def _ci_grants(cli: Cli, before: int) -> list[tuple[str, str]]:
    served = [g for g in cli.op.grants_served() if g.get("client") == "cli-ci"]
    return [(g["status"], g["auth"]) for g in served[before:]]


def _served_before(cli: Cli) -> int:
    return len([g for g in cli.op.grants_served() if g.get("client") == "cli-ci"])


def _nothing_secret(cli: Cli, *secrets: str) -> None:
    tokens = cli.cached_tokens()
    for run in cli.runs:
        for value in (*secrets, *tokens):
            assert value not in run.both, run
            assert value.rsplit(".", 1)[-1] not in run.both, run


def test_a_projected_token_file_is_read_anew_for_each_token_request(
    cli: Cli, fake_ci: FakeCi
) -> None:
    token_file = cli.root / "run" / "azure-identity-token"
    token_file.parent.mkdir()
    first_assertion = fake_ci.issue(cli.op.token_url)
    token_file.write_text(first_assertion + "\n")
    _ci_profile(cli, f"${{file:{token_file}}}")
    before = _served_before(cli)

    assert cli.run("validate").code == 0
    first = cli.run("get-token", "--json", "ci")
    assert first.code == 0, first
    assert first.json()["jwt"]["claims"]["client_id"] == "cli-ci"

    # Rewritten with an assertion for another audience: the provider refuses what is read now.
    wrong = fake_ci.issue("api://AzureADTokenExchange")
    token_file.write_text(wrong + "\n")
    refused = cli.run("get-token", "ci", "--force")
    assert refused.code == 6 and "invalid_client" in refused.err, refused

    # Rewritten again, as the kubelet does before expiry: the next request carries the new one.
    second_assertion = fake_ci.issue(cli.op.token_url)
    token_file.write_text(second_assertion + "\n")
    again = cli.run("get-token", "ci", "--force")
    assert again.code == 0, again
    sent = cli.run("send", "api_ci")
    assert sent.code == 0, sent

    assert _ci_grants(cli, before) == [
        ("200", "private_key_jwt"),
        ("401", "private_key_jwt"),
        ("200", "private_key_jwt"),
    ]
    token_file.unlink()
    missing = cli.run("get-token", "ci", "--force")
    assert missing.code == 6 and str(token_file) in missing.err, missing
    token_file.write_text("not-a-jwt-but-long-enough\n")
    garbage = cli.run("get-token", "ci", "--force")
    assert garbage.code == 6 and "is not a JWT" in garbage.err, garbage
    assert _served_before(cli) == before + 3  # neither was sent
    _nothing_secret(cli, first_assertion, wrong, second_assertion, "not-a-jwt-but-long-enough")


def test_github_actions_id_token(cli: Cli, fake_ci: FakeCi) -> None:
    _ci_profile(cli, f"{{github_actions: {{audience: '{cli.op.token_url}'}}}}")
    env = fake_ci.actions_env()
    cli.env.update(env)
    before = _served_before(cli)

    got = cli.run("get-token", "--json", "-v", "ci")
    assert got.code == 0, got
    assert got.json()["jwt"]["claims"]["client_id"] == "cli-ci"
    again = cli.run("get-token", "ci", "--force")
    assert again.code == 0, again
    asked = fake_ci.stats()["requests"]
    assert [(r["audience"], r["authorized"], r["status"]) for r in asked] == [
        (cli.op.token_url, True, 200),
        (cli.op.token_url, True, 200),
    ]
    assert all(r["api_version"] == "2.0" for r in asked)
    assert _ci_grants(cli, before) == [("200", "private_key_jwt")] * 2

    # An answer without "value", a refused request token, and no variables at all.
    fake_ci.fail_next(1, status=200, body={})
    empty = cli.run("get-token", "ci", "--force")
    assert empty.code == 6 and 'expected JSON with a "value"' in empty.err, empty
    cli.env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "a-request-token-GitHub-does-not-know"
    wrong = cli.run("get-token", "ci", "--force")
    assert wrong.code == 6 and "HTTP 401" in wrong.err and "id-token: write" in wrong.err, wrong
    del cli.env["ACTIONS_ID_TOKEN_REQUEST_URL"]
    unset = cli.run("get-token", "ci", "--force")
    assert unset.code == 6 and "ACTIONS_ID_TOKEN_REQUEST_URL is not set" in unset.err, unset
    assert _served_before(cli) == before + 2
    _nothing_secret(cli, env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"], "a-request-token-GitHub-does-not")
