"""Environments (SPEC §6): environments/NAME.yaml, --env/-e and OAUTHCLI_ENV, ${name} in
profiles and messages, list/show/--dry-run/validate, tokens kept apart; send --profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import oauthcli
from oauthcli.registry.reference import json_schema
from tests.cliproc import oauthcli as cli
from tests.clirun import run
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, TokenServer

PROFILE = """\
grant_type: client_credentials
token_url: ${token_base}/token
client_id: ${client}
client_secret: s3cr3t-value
client_auth: client_secret_post
scope: ${scope}
"""


def _registry(tmp: Path, api: str, token: str) -> Path:
    return make_registry(
        tmp,
        {
            "profiles/acme.yaml": PROFILE,
            "profiles/other.yaml": PROFILE.replace("${client}", "other-app"),
            "messages/items.yaml": """\
                endpoint: ${base}/api/${table}
                auth: {type: oauth2, profile: acme}
                variables: {table: items, limit: "5"}
                methods:
                  list:
                    query: {limit: "${limit}"}
                  get:
                    path: /${id}
            """,
            "messages/open.yaml": "endpoint: ${base}/open\nauth: {type: none}\n",
            "environments/dev.yaml": f"""\
                description: Development instance
                variables:
                  base: {api}/dev
                  token_base: {token}
                  client: dev-app
                  scope: api.read
                  table: dev_items
            """,
            "environments/prod.yaml": f"""\
                variables:
                  base: {api}/prod
                  token_base: {token}
                  client: prod-app
                  scope: api.read api.write
                  limit: 50
            """,
        },
    )


@pytest.fixture
def reg(tmp_path: Path, loopback: LoopbackServer, token_server: TokenServer) -> Path:
    return _registry(tmp_path, loopback.base, token_server.url)


def _dry(reg: Path, *args: str) -> dict[str, object]:
    result = run("-r", str(reg), *args, "--dry-run", "--json")
    assert result.code == 0, result.both
    shown: dict[str, object] = json.loads(result.out)
    return shown


def test_env_fills_profiles_and_messages_and_ranks_between_defaults_and_var(reg: Path) -> None:
    dev = _dry(reg, "-e", "dev", "send", "items.list")
    assert dev["environment"] == "dev"
    assert str(dev["url"]).endswith("/dev/api/dev_items?limit=5")  # env beats message variables
    prod = _dry(reg, "--env", "prod", "send", "items.list", "-V", "limit=7")
    assert str(prod["url"]).endswith("/prod/api/items?limit=7")  # --var beats the environment


def test_vars_file_beats_the_environment(reg: Path, tmp_path: Path) -> None:
    values = tmp_path / "v.yaml"
    values.write_text("table: from_file\n")
    shown = _dry(reg, "-e", "dev", "send", "items.list", "--vars-file", str(values))
    assert "/api/from_file?" in str(shown["url"])


def test_environment_values_go_into_urls_as_written_call_variables_encoded(reg: Path) -> None:
    shown = _dry(reg, "-e", "dev", "send", "items.get", "-V", "id=a/b c")
    assert str(shown["url"]).endswith("/dev/api/dev_items/a%2Fb%20c")  # base not encoded


def test_oauthcli_env_selects_and_the_option_beats_it(
    reg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHCLI_ENV", "prod")
    assert "/prod/" in str(_dry(reg, "send", "open")["url"])
    assert "/dev/" in str(_dry(reg, "-e", "dev", "send", "open")["url"])


def test_unknown_environment_is_exit_3_naming_the_known_ones(reg: Path) -> None:
    result = run("-r", str(reg), "-e", "staging", "send", "open", "--dry-run")
    assert result.code == 3
    assert "unknown environment 'staging' (from --env)" in result.err
    assert "known: dev, prod" in result.err and "Traceback" not in result.both


def test_unknown_environment_from_oauthcli_env_says_so(
    reg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHCLI_ENV", "nope")
    result = run("-r", str(reg), "list")
    assert result.code == 3 and "(from OAUTHCLI_ENV)" in result.err


def test_profile_variable_without_environment_is_a_registry_error(reg: Path) -> None:
    result = run("-r", str(reg), "send", "items.list", "--dry-run")
    assert result.code == 3
    assert "profiles/acme.yaml:2: token_url: ${token_base} has no value" in result.err
    assert "--env/-e NAME or OAUTHCLI_ENV" in result.err and "dev, prod" in result.err


def test_profile_variable_missing_from_the_environment_names_both(tmp_path: Path) -> None:
    root = make_registry(
        tmp_path,
        {
            "profiles/acme.yaml": PROFILE,
            "environments/dev.yaml": "variables: {token_base: 'http://127.0.0.1:9', client: c}\n",
        },
    )
    result = run("-r", str(root), "-e", "dev", "show", "acme")
    assert result.code == 3
    assert "acme.yaml:6: scope: ${scope} has no value: environment 'dev'" in result.err


def test_message_variables_do_not_reach_profiles(reg: Path) -> None:
    result = run("-r", str(reg), "send", "items.list", "--dry-run", "-V", "token_base=x")
    assert result.code == 3 and "${token_base} has no value" in result.err


def test_bad_environment_files_are_file_line_key_errors(tmp_path: Path) -> None:
    root = make_registry(
        tmp_path,
        {
            "messages/m.yaml": "endpoint: http://127.0.0.1:9/x\n",
            "environments/bad.yaml": "variables:\n  a: [1, 2]\n  b: ${c}\nextra: 1\n",
            "environments/unset.yaml": "variables:\n  a: ${env:OAUTHCLI_TEST_UNSET_X}\n",
        },
    )
    result = run("-r", str(root), "validate")
    assert result.code == 3, result.both
    assert "bad.yaml:2: variables.a: expected a string, got a list" in result.out
    assert "bad.yaml:3: variables.b: an environment's values take ${env:…}" in result.out
    assert "bad.yaml:4: extra:" in result.out
    assert "unset.yaml:2: variables.a: environment variable OAUTHCLI_TEST_UNSET_X" in result.out
    picked = run("-r", str(root), "-e", "unset", "send", "m", "--dry-run")
    assert picked.code == 3 and "OAUTHCLI_TEST_UNSET_X is not set" in picked.err


def test_list_show_and_dry_run_say_which_environment(reg: Path) -> None:
    listed = run("-r", str(reg), "-e", "dev", "list", "environments")
    assert listed.code == 0
    assert listed.out.splitlines() == ["dev   Development instance (selected)", "prod  5 variables"]
    assert "environments:" in run("-r", str(reg), "list").out
    shown = run("-r", str(reg), "-e", "prod", "show", "acme")
    assert shown.code == 0 and "environment:   prod (environments/prod.yaml)" in shown.out
    assert "prod-app" in shown.out
    text = run("-r", str(reg), "-e", "prod", "send", "open", "--dry-run")
    assert text.out.splitlines()[0] == "# environment: prod (environments/prod.yaml)"
    none = run("-r", str(reg), "show", "open")
    assert "none (known: dev, prod; select one with -e NAME)" in none.out


def test_a_registry_without_environments_lists_as_before(tmp_path: Path) -> None:
    root = make_registry(tmp_path, {"messages/m.yaml": "endpoint: http://127.0.0.1:9/x\n"})
    assert "environments" not in run("-r", str(root), "list").out
    assert "environment" not in run("-r", str(root), "show", "m").out


def test_validate_resolves_with_each_environment_or_the_selected_one(tmp_path: Path) -> None:
    root = make_registry(
        tmp_path,
        {
            "profiles/acme.yaml": PROFILE,
            "environments/dev.yaml": "variables: {token_base: 'http://127.0.0.1:9', "
            "client: c, scope: s}\n",
            "environments/prod.yaml": "variables: {token_base: 'http://acme.test', "
            "client: c, scope: s}\n",
        },
    )
    both = run("-r", str(root), "validate")
    assert both.code == 3
    assert "plain http:// to acme.test is refused" in both.out and "(environment prod)" in both.out
    assert run("-r", str(root), "-e", "dev", "validate").code == 0


def test_environments_keep_their_tokens_apart(reg: Path, token_server: TokenServer) -> None:
    for env in ("dev", "prod", "dev", "prod"):
        result = cli("-e", env, "get-token", "acme", "--json", registry=reg)
        assert result.code == 0, result.err
    assert len(token_server.forms) == 2  # one token per environment, each then reused
    scopes = {form["client_id"][0]: form["scope"][0] for form in token_server.forms}
    assert scopes == {"dev-app": "api.read", "prod-app": "api.read api.write"}
    listed = cli("token", "list", registry=reg)
    assert listed.code == 0 and listed.out.count("acme") >= 2, listed.out


def test_each_send_uses_its_environments_token(
    reg: Path, loopback: LoopbackServer, token_server: TokenServer
) -> None:
    loopback.reply("/dev/api/dev_items", 200, b"[]", **{"Content-Type": "application/json"})
    loopback.reply("/prod/api/items", 200, b"[]", **{"Content-Type": "application/json"})
    for env in ("dev", "prod", "dev"):
        result = cli("-e", env, "send", "items.list", registry=reg)
        assert result.code == 0, result.err
    tokens = [(r.path.split("?")[0], r.headers["authorization"]) for r in loopback.requests]
    assert tokens == [
        ("/dev/api/dev_items", "Bearer at-1-from-server"),
        ("/prod/api/items", "Bearer at-2-from-server"),
        ("/dev/api/dev_items", "Bearer at-1-from-server"),
    ]


# -- send --profile ---------------------------------------------------------


def test_send_profile_uses_the_other_profiles_token(
    reg: Path, loopback: LoopbackServer, token_server: TokenServer
) -> None:
    loopback.reply("/dev/api/dev_items", 200, b"[]", **{"Content-Type": "application/json"})
    result = cli("-e", "dev", "send", "items.list", "--profile", "other", registry=reg)
    assert result.code == 0, result.err
    assert [f["client_id"][0] for f in token_server.forms] == ["other-app"]


def test_send_profile_refuses_a_message_without_oauth2_and_an_unknown_profile(reg: Path) -> None:
    result = run("-r", str(reg), "-e", "dev", "send", "open", "--profile", "other")
    assert result.code == 3
    assert "uses auth none, not oauth2: --profile other cannot apply" in result.err
    unknown = run("-r", str(reg), "-e", "dev", "send", "items.list", "--profile", "acmee")
    assert unknown.code == 3 and "unknown profile 'acmee'" in unknown.err
    assert "did you mean 'acme'" in unknown.err


def test_send_profile_with_each_sends_every_row_with_it(
    reg: Path, loopback: LoopbackServer, token_server: TokenServer, tmp_path: Path
) -> None:
    loopback.fallback = lambda rec: (200, {"Content-Type": "application/json"}, b"{}")
    rows = tmp_path / "rows.csv"
    rows.write_text("id\n1\n2\n3\n")
    result = cli(
        "-e", "prod", "send", "items.get", "--each", rows, "--profile", "other", registry=reg
    )
    assert result.code == 0, result.err
    assert [f["client_id"][0] for f in token_server.forms] == ["other-app"]
    assert len(loopback.requests) == 3


# -- Python API -------------------------------------------------------------


def test_open_registry_env_selects_the_environment(
    reg: Path, loopback: LoopbackServer, token_server: TokenServer
) -> None:
    loopback.reply("/prod/api/items", 200, b"[1]", **{"Content-Type": "application/json"})
    with oauthcli.open_registry(reg, env="prod") as api:
        assert api.environment == "prod"
        r = api.send("items.list")
        assert r.status == 200 and r.json() == [1]
        assert r.url.endswith("/prod/api/items?limit=50")
        assert api.get_token("acme").scope == "api.read"  # the server's answer
    assert [f["client_id"][0] for f in token_server.forms] == ["prod-app"]
    with pytest.raises(oauthcli.RegistryError, match="known: dev, prod") as info:
        oauthcli.open_registry(reg, env="qa")
    assert info.value.exit_code == 3 and "(from env=)" in str(info.value)


def test_open_registry_without_env_takes_oauthcli_env(
    reg: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OAUTHCLI_ENV", "dev")
    assert oauthcli.open_registry(reg).environment == "dev"


# -- the schema -------------------------------------------------------------


def test_environment_schema_is_the_declaration() -> None:
    schema = json_schema("environment")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert set(schema["properties"]) == {"name", "description", "variables"}
    assert schema["additionalProperties"] is False
    variables = schema["properties"]["variables"]
    assert variables["type"] == "object" and "propertyNames" in variables


def test_the_repo_registry_validates_with_each_environment() -> None:
    root = Path(__file__).resolve().parent.parent
    result = run("-r", str(root), "validate")
    assert result.code == 0, result.both
    listed = run("-r", str(root), "list", "environments")
    assert {line.split()[0] for line in listed.out.splitlines()} >= {"dev", "prod"}
