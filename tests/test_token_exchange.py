"""RFC 8693 token exchange and ``${token:PROFILE}``, through the CLI against a loopback token
endpoint: what goes on the wire, the cache, and every bad input as one line and its exit code.

The e2e proof against oidc-provider is tests/e2e/test_e2e_exchange.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from oauthcli.request.resolved import ResolvedProfile, WithTokens
from oauthcli.secret import Secret
from oauthcli.tokens import cache
from tests.clirun import run
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
INNER = "inner-access-token-4711aa"
EXCHANGED = "exchanged-token-0815bb"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"


def _form(rec: Recorded) -> dict[str, list[str]]:
    return parse_qs(rec.body.decode())


def _token_endpoint(server: LoopbackServer, *, inner_status: int = 200) -> None:
    def answer(rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        form = _form(rec)
        headers = {"Content-Type": "application/json"}
        body: dict[str, object]
        if form["grant_type"] == ["client_credentials"]:
            if inner_status != 200:
                body = {"error": "invalid_client", "error_description": "who are you"}
                return inner_status, headers, json.dumps(body).encode()
            body = {"access_token": INNER, "token_type": "Bearer", "expires_in": 3600}
            return 200, headers, json.dumps(body).encode()
        assert form["grant_type"] == [EXCHANGE]
        body = {
            "access_token": EXCHANGED,
            "issued_token_type": form.get("requested_token_type", [ACCESS])[0],
            "token_type": "N_A",
            "expires_in": 600,
        }
        return 200, headers, json.dumps(body).encode()

    server.routes["/token"] = answer


def _registry(tmp_path: Path, server: LoopbackServer, exchange: str, **more: str) -> Path:
    files: dict[str, str | bytes] = {
        "profiles/inner.yaml": f"""\
            grant_type: client_credentials
            token_url: {server.url("/token")}
            client_id: inner-app
            client_secret: inner-secret-value
            """,
        "profiles/outer.yaml": f"""\
            grant_type: token_exchange
            token_url: {server.url("/token")}
            client_id: outer-app
            client_secret: outer-secret-value
            audience: https://api.test
            resource: [https://api.test/one, https://api.test/two]
            {exchange}
            """,
        **more,
    }
    return make_registry(tmp_path, files)


def test_subject_token_is_another_profiles_token_obtained_through_the_cache(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    _token_endpoint(loopback)
    root = _registry(tmp_path, loopback, "subject_token: ${token:inner}")

    first = run("-r", str(root), "get-token", "outer")
    assert first.code == 0, first.both
    inner_call, exchange_call = loopback.requests
    assert _form(inner_call)["grant_type"] == ["client_credentials"]
    form = _form(exchange_call)
    assert form["grant_type"] == [EXCHANGE]
    assert form["subject_token"] == [INNER] and form["subject_token_type"] == [ACCESS]
    assert form["audience"] == ["https://api.test"]
    assert form["resource"] == ["https://api.test/one", "https://api.test/two"]
    assert not {"actor_token", "actor_token_type", "requested_token_type"} & form.keys()
    assert "N_A" in first.out  # the token type as issued; sent as Bearer (token_scheme unset)
    assert INNER not in first.both and EXCHANGED not in first.both

    # The inner token is cached like any other: a second exchange (forced) reuses it.
    again = run("-r", str(root), "get-token", "outer", "--force")
    assert again.code == 0, again.both
    assert [_form(r)["grant_type"] for r in loopback.requests[2:]] == [[EXCHANGE]]
    cached = run("-r", str(root), "get-token", "outer")
    assert cached.code == 0 and len(loopback.requests) == 3, cached.both
    raw = run("-r", str(root), "get-token", "outer", "--raw")
    assert raw.out == EXCHANGED + "\n"


def test_actor_token_its_type_and_the_requested_type_go_on_the_wire(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    _token_endpoint(loopback)
    root = _registry(
        tmp_path,
        loopback,
        "subject_token: literal-subject-9999\n"
        "            subject_token_type: urn:ietf:params:oauth:token-type:id_token\n"
        "            actor_token: ${token:inner}\n"
        f"            actor_token_type: {ACCESS}\n"
        f"            requested_token_type: {JWT_TYPE}\n",
    )
    result = run("-r", str(root), "get-token", "outer", "-v")
    assert result.code == 0, result.both
    form = _form(loopback.requests[-1])
    assert form["subject_token"] == ["literal-subject-9999"]
    assert form["subject_token_type"] == ["urn:ietf:params:oauth:token-type:id_token"]
    assert form["actor_token"] == [INNER] and form["actor_token_type"] == [ACCESS]
    assert form["requested_token_type"] == [JWT_TYPE]
    assert "needs profile 'inner's token (actor_token)" in result.err
    for secret in ("literal-subject-9999", INNER, EXCHANGED, "outer-secret-value"):
        assert secret not in result.both


def test_actor_token_without_its_type_is_a_registry_error(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    root = _registry(tmp_path, loopback, "subject_token: s-1234\n            actor_token: a-5678")
    result = run("-r", str(root), "get-token", "outer")
    assert result.code == 3 and "outer.yaml" in result.err
    assert "actor_token_type: missing; actor_token needs it" in result.err
    assert "Traceback" not in result.both and not loopback.requests


def test_an_unknown_profile_is_exit_3_naming_the_file_and_key(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    root = _registry(tmp_path, loopback, "subject_token: ${token:nobody}")
    for args in (("get-token", "outer"), ("validate",), ("show", "outer")):
        result = run("-r", str(root), *args)
        assert result.code == 3, (args, result.both)
        assert "outer.yaml" in result.both and "subject_token" in result.both
        assert "no profile named 'nobody'" in result.both
    assert not loopback.requests


def test_a_cycle_is_exit_3_naming_the_cycle(tmp_path: Path, loopback: LoopbackServer) -> None:
    root = _registry(
        tmp_path,
        loopback,
        "subject_token: ${token:middle}",
        **{
            "profiles/middle.yaml": f"""\
                grant_type: token_exchange
                token_url: {loopback.url("/token")}
                client_id: m
                client_secret: middle-secret
                subject_token: ${{token:outer}}
                """
        },
    )
    result = run("-r", str(root), "get-token", "outer")
    assert result.code == 3, result.both
    assert "makes a cycle of profiles: outer → middle → outer" in result.err
    checked = run("-r", str(root), "validate")
    assert checked.code == 3 and "cycle of profiles" in checked.out
    itself = _registry(tmp_path / "self", loopback, "subject_token: x${token:outer}")
    alone = run("-r", str(itself), "get-token", "outer")
    assert alone.code == 3 and "outer → outer" in alone.err
    assert not loopback.requests


def test_a_failing_inner_token_request_is_exit_6_naming_the_inner_profile(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    _token_endpoint(loopback, inner_status=401)
    root = _registry(tmp_path, loopback, "subject_token: ${token:inner}")
    result = run("-r", str(root), "get-token", "outer")
    assert result.code == 6, result.both
    line = result.err.strip().splitlines()[-1]
    assert "profile 'outer'" in line and "profile 'inner'" in line and "invalid_client" in line
    assert "Traceback" not in result.both
    assert [_form(r)["grant_type"] for r in loopback.requests] == [["client_credentials"]]


def test_token_references_are_refused_outside_subject_and_actor_token(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    root = _registry(
        tmp_path,
        loopback,
        "subject_token: ${token:inner}",
        **{
            "messages/api.yaml": f"""\
                endpoint: {loopback.url("/api")}
                auth: {{type: oauth2, profile: outer}}
                headers: {{X-Other: "${{token:inner}}"}}
                """
        },
    )
    result = run("-r", str(root), "send", "api", "--dry-run")
    assert result.code == 3, result.both
    assert "api.yaml" in result.err and "headers.X-Other" in result.err
    assert "taken only by subject_token and actor_token" in result.err
    assert not loopback.requests


def test_validate_show_and_dry_run_fetch_no_token(tmp_path: Path, loopback: LoopbackServer) -> None:
    _token_endpoint(loopback)
    root = _registry(
        tmp_path,
        loopback,
        "subject_token: ${token:inner}",
        **{
            "messages/api.yaml": f"""\
                endpoint: {loopback.url("/api")}
                auth: {{type: oauth2, profile: outer}}
                """
        },
    )
    assert run("-r", str(root), "validate").code == 0
    shown = run("-r", str(root), "show", "outer")
    assert shown.code == 0 and "${token:inner}" in shown.out
    dry = run("-r", str(root), "send", "api", "--dry-run")
    assert dry.code == 0, dry.both
    assert not loopback.requests


def test_token_identity_covers_subject_and_actor_tokens(
    token_profile: Callable[..., ResolvedProfile],
) -> None:
    base = token_profile(grant_type="token_exchange", subject_token=Secret("subject-one-11"))
    key = cache.entry_key
    assert key(base) != key(token_profile(grant_type="token_exchange", subject_token=Secret("x2")))
    with_actor = token_profile(
        grant_type="token_exchange",
        subject_token=Secret("subject-one-11"),
        actor_token=Secret("actor-1234"),
        actor_token_type=ACCESS,
    )
    assert key(base) != key(with_actor)
    requested = token_profile(
        grant_type="token_exchange",
        subject_token=Secret("subject-one-11"),
        requested_token_type=JWT_TYPE,
    )
    assert key(base) != key(requested)
    # ${token:PROFILE} stands for that profile's token identity, never a fetched token.
    inner_a = token_profile(name="a", client_id="a")
    inner_b = token_profile(name="b", client_id="b")
    via_a = token_profile(grant_type="token_exchange", subject_token=WithTokens((inner_a,)))
    via_b = token_profile(grant_type="token_exchange", subject_token=WithTokens((inner_b,)))
    assert key(via_a) != key(via_b)
    same = token_profile(grant_type="token_exchange", subject_token=WithTokens((inner_a,)))
    assert key(via_a) == key(same)
    # The default subject_token_type changes no other grant's identity.
    assert key(token_profile()) == key(token_profile(subject_token_type=ACCESS))


@pytest.mark.parametrize("value", ['""', "${env:EMPTY_SUBJECT_TOKEN:-}"])
def test_an_empty_subject_token_is_refused_before_sending(
    tmp_path: Path, loopback: LoopbackServer, value: str
) -> None:
    root = _registry(tmp_path, loopback, f"subject_token: {value}")
    result = run("-r", str(root), "get-token", "outer")
    assert result.code == 6 and "subject_token is empty" in result.err, result.both
    assert not loopback.requests
