"""The terminal summary's block of what oidc-provider served (conftest.grant_summary), from
grant log entries as ``OidcProvider.grants_served()`` parses them; no server needed."""

from __future__ import annotations

import pytest

from .conftest import EXPECTED_GRANTS, grant_summary

pytestmark = pytest.mark.e2e

DEVICE = "urn:ietf:params:oauth:grant-type:device_code"
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"


def _entry(grant: str, client: str, auth: str, status: str = "200", **more: str) -> dict:
    return {
        "grant_type": grant,
        "client": client,
        "status": status,
        "auth": auth,
        "token_type": more.pop("token_type", "Bearer"),
        "dpop_proof": more.pop("dpop_proof", "no"),
        "error": "-" if status == "200" else "invalid_grant",
        **more,
    }


def test_every_grant_served_gives_one_line_each_and_nothing_missing() -> None:
    served = [
        _entry("client_credentials", "cli-basic", "client_secret_basic"),
        _entry("client_credentials", "cli-ci", "private_key_jwt"),
        _entry(
            "client_credentials",
            "cli-dpop",
            "client_secret_basic",
            token_type="DPoP",
            dpop_proof="yes",
        ),
        _entry(
            "client_credentials", "cli-dpop", "client_secret_basic", status="400", dpop_proof="yes"
        ),
        _entry("authorization_code", "cli-authcode", "none"),
        _entry("refresh_token", "cli-device", "none"),
        _entry(DEVICE, "cli-device", "none"),
        _entry(DEVICE, "cli-device", "none", status="400"),
        _entry(EXCHANGE, "cli-exchange", "client_secret_basic", audience="api", actor="no"),
    ]
    lines, missing = grant_summary(served)
    assert missing == []
    assert lines[0] == (
        "provider served client_credentials: 3 token(s) (1 refused); clients cli-basic, "
        "cli-ci, cli-dpop; client auth client_secret_basic, private_key_jwt; "
        "1 DPoP-bound (2 request(s) with a proof)"
    )
    assert [line.split(":")[0] for line in lines] == [
        "provider served client_credentials",
        "provider served authorization_code",
        "provider served refresh_token",
        "provider served device_code",
        "provider served token-exchange",
        "provider served the CI-assertion client cli-ci",
    ]
    assert "1 token(s) (1 refused)" in lines[3]
    assert lines[-1].endswith(
        "1 token(s), client auth private_key_jwt (assertions of the fake CI issuer)"
    )
    assert not any(line.startswith("NOT served") for line in lines)


def test_a_grant_only_refused_or_never_seen_is_named_not_served() -> None:
    served = [
        _entry("client_credentials", "cli-basic", "client_secret_basic"),
        _entry(DEVICE, "cli-device", "none", status="400"),
    ]
    lines, missing = grant_summary(served)
    assert missing == [
        "authorization_code",
        "refresh_token",
        DEVICE,
        EXCHANGE,
        "a DPoP-bound token",
    ]
    assert lines[-1] == (
        "NOT served by the provider: authorization_code, refresh_token, device_code, "
        "token-exchange, a DPoP-bound token"
    )
    assert "provider served the CI-assertion client cli-ci: nothing" in lines


def test_nothing_served_names_every_expected_grant() -> None:
    lines, missing = grant_summary([])
    assert missing[: len(EXPECTED_GRANTS)] == list(EXPECTED_GRANTS)
    assert lines[-1].startswith("NOT served by the provider: client_credentials, ")
