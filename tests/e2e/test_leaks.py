"""No command, in any output mode or on any error path, prints a secret.

Runs the installed CLI through every command and output mode against oidc-provider and the
resource server, including the failure paths (wrong secret, token endpoint 500, 401 after the
API revoked the cached token, a final 401 with a stale token, 403), and greps stdout and
stderr of every run for: the client secrets (as configured, form-encoded and inside a Basic
header), a wrong secret, every line of the private key's PEM body, and every access token the
provider issued (read from the cache after each run), whole or its signature. Only
``get-token --raw`` may print a token, on stdout, and only its own.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import quote, quote_plus

import pytest

from .cli import AUTH_METHODS, Cli, Run, secret_env_name
from .servers import DpopServer, FakeCi

pytestmark = pytest.mark.e2e

WRONG_SECRET = "wr0ng-s3cret+for:cli-basic/LEAK"


def _secret_forms(client_id: str, secret: str) -> dict[str, str]:
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}"
    return {
        "as configured": secret,
        "form-encoded": quote_plus(secret),
        "percent-encoded": quote(secret, safe=""),
        "in a Basic header": base64.b64encode(pair.encode()).decode(),
        "raw in a Basic header": base64.b64encode(f"{client_id}:{secret}".encode()).decode(),
    }


def test_no_output_holds_a_secret_or_a_token(cli: Cli, e2e_note: Callable[[str], None]) -> None:
    op, rs = cli.op, cli.rs
    tokens: set[str] = set()
    raw_runs: list[Run] = []

    def run(code: int, *args: str) -> Run:
        result = cli.run(*args)
        tokens.update(cli.cached_tokens())
        assert result.code == code, result
        return result

    readonly = cli.add_profile("readonly", "client_secret_post", scope="api.read")
    # Its own scope: a profile of the same client, scope and resource shares the cached token.
    wrong = cli.add_profile("wrong", "client_secret_basic", scope="api.read")
    wrong_yaml = cli.root / "profiles" / f"{wrong}.yaml"
    wrong_yaml.write_text(
        wrong_yaml.read_text().replace(secret_env_name(op.basic), "E2E_WRONG_SECRET")
    )
    cli.env["E2E_WRONG_SECRET"] = WRONG_SECRET
    cli.env["E2E_STALE_TOKEN"] = "set-once-a-token-is-stale"
    cli.add_message(
        "stale",
        f"endpoint: {rs.incidents_url}\n"
        "auth: {type: bearer, token: '${env:E2E_STALE_TOKEN}'}\n"
        "retry: {attempts: 1}\n",
    )
    rows = cli.root / "rows.jsonl"
    rows.write_text('{"title": "row one"}\n{"title": "row two"}\n')

    def run_all(code: int, *argvs: list[str]) -> None:
        for result in cli.run_parallel(argvs):
            assert result.code == code, result
        tokens.update(cli.cached_tokens())

    # The registry, shown.
    run_all(
        0,
        ["list"],
        ["validate"],
        *[["show", auth] for auth in AUTH_METHODS],
        ["show", "api_client_secret_post"],
        ["show", "api_client_secret_basic.create", "-V", "title=x"],
    )

    # Tokens, every output mode.
    run_all(0, *[["get-token", auth] for auth in AUTH_METHODS])
    run(0, "get-token", "--json", "client_secret_basic")
    run(0, "get-token", "--json", "--force", "client_secret_jwt")
    raw_runs.append(run(0, "get-token", "--raw", "private_key_jwt"))
    run(0, "token", "list")

    # send, every output mode.
    run(0, "send", "api_client_secret_basic.list")
    run(0, "send", "-v", "api_client_secret_basic.create")
    run(0, "send", "--json", "api_client_secret_post.me")
    run(0, "send", "-v", "--json", "api_private_key_jwt.me")
    run(0, "send", "--dry-run", "api_client_secret_jwt.create")
    run(0, "send", "--dry-run", "-v", "api_client_secret_basic.list")
    run(0, "send", "--each", str(rows), "api_client_secret_post.create")

    # 401 on the cached tokens: recovered with new ones; a stale token sent anyway is refused.
    stale = next(t for t in tokens if t in cli.cached_tokens())
    rs.reject_before_now()
    run(0, "send", "-v", "api_client_secret_basic.list")
    run(0, "send", "--json", "api_client_secret_post.list")
    cli.env["E2E_STALE_TOKEN"] = stale
    run(4, "send", "stale")
    run(4, "send", "-v", "--json", "stale")
    run(4, "send", "-v", "-H", f"Authorization: Bearer {stale}", "api_client_secret_post.list")

    # 403: the token lacks api.write.
    run(4, "send", f"api_{readonly}.create")
    run(4, "send", "-v", "--json", f"api_{readonly}.create")

    # The token endpoint refuses or fails.
    run(6, "get-token", wrong)
    run(6, "send", "-v", f"api_{wrong}.list")
    op.fail_next_token_requests(1, status=500, error="server_error")
    run(6, "get-token", "--force", "--json", "client_secret_jwt")

    # Discovery (issuer:): validate, show, get-token -v and --json, a refused client_auth.
    from .test_e2e_discovery import issuer_profile

    found = issuer_profile(cli, "found", "client_secret_jwt")
    misfit = issuer_profile(cli, "misfit", "client_secret_post")
    misfit_yaml = cli.root / "profiles" / f"{misfit}.yaml"
    misfit_yaml.write_text(misfit_yaml.read_text().replace("_post", "_basic"))
    run(0, "validate")
    run(0, "show", found)
    run(0, "get-token", "-v", "--force", found)
    run(0, "get-token", "--json", found)
    run(6, "get-token", "-v", misfit)
    run(0, "token", "revoke", found)

    # Revoke and clear.
    run(0, "token", "revoke", "client_secret_post")
    run(0, "token", "clear")

    secrets: dict[str, str] = {}
    for client in op.clients.values():
        if client.client_secret is not None:
            for form, value in _secret_forms(client.client_id, client.client_secret).items():
                secrets[f"{client.client_id}'s secret {form}"] = value
    for form, value in _secret_forms(op.basic.client_id, WRONG_SECRET).items():
        secrets[f"the wrong secret {form}"] = value
    pem_lines = [
        line for line in op.jwt.private_key_pem.splitlines() if line and "-----" not in line
    ]
    assert len(pem_lines) > 20
    for number, line in enumerate(pem_lines, 1):
        secrets[f"line {number} of the private key PEM"] = line
    assert len(tokens) >= 6, "fewer tokens than the runs above must have been issued"
    for n, token in enumerate(sorted(tokens), 1):
        secrets[f"issued token #{n}"] = token
        secrets[f"issued token #{n}'s signature"] = token.rsplit(".", 1)[1]

    leaks = []
    for result in cli.runs:
        shown = result.err if any(result is r for r in raw_runs) else result.both
        for what, value in secrets.items():
            if value in shown:
                leaks.append(f"oauthcli {' '.join(result.args)}: {what}")
    assert not leaks, "secrets in the output:\n" + "\n".join(leaks)
    [raw] = raw_runs
    assert raw.out.strip() in tokens and raw.out.count(".") == 2  # only the token, whole

    e2e_note(
        f"leak scan: {len(cli.runs)} runs, {len(secrets)} secret values "
        f"({len(tokens)} issued tokens) -> none printed"
    )


def test_device_flow_outputs_hold_no_device_code(cli: Cli) -> None:
    """The device flow's output paths (issue 13): refused without a terminal, and with --wait
    -v until the code expires; every device_code in the -v trace is masked, no token printed."""
    import re

    op = cli.op
    (cli.root / "profiles" / "dev.yaml").write_text(
        "grant_type: device_code\n"
        f"token_url: {op.token_url}\n"
        f"device_authorization_url: {op.device_authorization_url}\n"
        "client_id: cli-device\nclient_auth: none\nscope: openid offline_access api.read\n"
    )
    refused = cli.run("get-token", "dev")
    assert refused.code == 6, refused
    op.configure(device_code_ttl=2)
    for args in (["get-token", "dev", "--wait", "-v"], ["get-token", "dev", "--wait", "--json"]):
        run = cli.run(*args)
        assert run.code == 6 and "enter the code" in run.err, run
        values = re.findall(r"device_code=([^&\s]*)", run.both)
        assert values or "-v" not in args, "the -v trace shows the poll's form"
        for value in values:
            assert set(value) <= {"*"}, "a device code in the -v trace was not masked"
        for token in cli.cached_tokens():
            assert token not in run.both


def test_no_exchange_or_workload_output_holds_a_token_assertion_or_request_token(
    cli: Cli, fake_ci: FakeCi, e2e_note: Callable[[str], None]
) -> None:
    """Token exchange (``${token:…}`` subject and actor) and client_assertion (a projected
    token file, GitHub Actions), every output mode and error path: no token, assertion or
    GitHub request token is printed, in any of the encodings it travels in."""
    op, rs = cli.op, cli.rs
    exchange = op.exchange
    assert exchange.client_secret is not None
    cli.env["E2E_SECRET_CLI_EXCHANGE"] = exchange.client_secret
    cli.env.update(fake_ci.actions_env())
    token_file = cli.root / "projected-token"
    assertions: list[str] = []
    common = (
        f"grant_type: client_credentials\ntoken_url: {op.token_url}\nscope: api.read\n"
        f"resource: {op.resource}\n"
    )
    profiles = {
        "exchanged": "grant_type: token_exchange\nclient_id: cli-exchange\n"
        "client_secret: ${env:E2E_SECRET_CLI_EXCHANGE}\nsubject_token: ${token:client_secret_basic}\n"
        "actor_token: ${token:client_secret_post}\n"
        "actor_token_type: urn:ietf:params:oauth:token-type:access_token\n"
        f"token_url: {op.token_url}\naudience: {rs.api_base_url}\nscope: api.read\n",
        "projected": f"client_id: cli-ci\nclient_auth: client_assertion\n"
        f"client_assertion: ${{file:{token_file}}}\n{common}",
        "github": f"client_id: cli-ci\nclient_auth: client_assertion\n"
        f"client_assertion: {{github_actions: {{audience: '{op.token_url}'}}}}\n{common}",
    }
    for name, text in profiles.items():
        (cli.root / "profiles" / f"{name}.yaml").write_text(text)
        cli.add_message(
            f"api_{name}",
            f"endpoint: {rs.incidents_url}\nauth: {{type: oauth2, profile: {name}}}\n"
            "retry: {attempts: 1}\n",
        )
    tokens: set[str] = set()
    shown = [["show", name] for name in profiles] + [
        ["send", f"api_{n}", "--dry-run"] for n in profiles
    ]
    for result in cli.run_parallel([*shown, ["validate"]]):
        assert result.code == 0, result
    for name in profiles:
        for args in (
            ["get-token", name, "-v"],
            ["get-token", name, "--json", "--force"],
            ["send", f"api_{name}", "-v", "--json"],
        ):
            if name == "projected":  # rewritten as the kubelet does: each JWT is used once
                assertions.append(fake_ci.issue(op.token_url))
                token_file.write_text(assertions[-1] + "\n")
            result = cli.run(*args)
            assert result.code == 0, result
            tokens.update(cli.cached_tokens())
    assert cli.run("token", "list").code == 0
    # The error paths: not a JWT, GitHub refusing the request token, an inner token refused.
    token_file.write_text("x" * 40 + "\n")
    assert cli.run("get-token", "projected", "--force", "-v").code == 6
    fake_ci.fail_next(1, status=500, body={"message": "down"})
    assert cli.run("get-token", "github", "--force", "-v").code == 6
    cli.env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] += "-wrong"
    assert cli.run("get-token", "github", "--force", "-v").code == 6
    cli.env["E2E_SECRET_CLI_EXCHANGE"] = WRONG_SECRET
    assert cli.run("get-token", "exchanged", "--force", "-v").code == 6

    secrets = {"the GitHub request token": fake_ci.request_token, "the bad assertion": "x" * 40}
    for n, assertion in enumerate(assertions, 1):
        secrets[f"projected assertion #{n}"] = assertion
        secrets[f"projected assertion #{n}'s signature"] = assertion.rsplit(".", 1)[1]
    for form, value in _secret_forms(exchange.client_id, exchange.client_secret).items():
        secrets[f"cli-exchange's secret {form}"] = value
    for form, value in _secret_forms(exchange.client_id, WRONG_SECRET).items():
        secrets[f"the wrong secret {form}"] = value
    assert len(tokens) >= 5
    for n, token in enumerate(sorted(tokens), 1):
        secrets[f"issued token #{n}"] = token
        secrets[f"issued token #{n}'s signature"] = token.rsplit(".", 1)[1]
        secrets[f"issued token #{n} form-encoded"] = quote_plus(token)
    leaks = [
        f"oauthcli {' '.join(result.args)}: {what}"
        for result in cli.runs
        for what, value in secrets.items()
        if value in result.both
    ]
    assert not leaks, "secrets in the output:\n" + "\n".join(leaks)
    e2e_note(
        f"leak scan (exchange, workload): {len(cli.runs)} runs, {len(secrets)} secret values "
        "-> none printed"
    )


def test_no_dpop_output_holds_a_key_proof_or_token(cli: Cli, dpop_server: DpopServer) -> None:
    """DPoP's output paths: send (plain, --json, -v, --dry-run, --each), get-token (text,
    --json, -v), a nonce loop at the API and at the token endpoint, a key file of mode 0644:
    no private key, no signed proof (whole or its signature), no token, no client secret."""
    import json as _json

    from .test_e2e_dpop import add_dpop_profile

    add_dpop_profile(cli, dpop_server)
    rows = cli.root / "rows.jsonl"
    rows.write_text("".join(_json.dumps({"title": f"r{i}"}) + "\n" for i in range(6)))
    tokens: set[str] = set()
    runs: list[Run] = []

    def run(code: int, *args: str) -> None:
        result = cli.run(*args)
        tokens.update(cli.cached_tokens())
        assert result.code == code, result
        runs.append(result)

    run(0, "send", "dapi.me")
    run(0, "send", "--json", "-v", "dapi.me")
    run(0, "send", "--dry-run", "dapi.create", "-V", "title=x")
    run(0, "send", "--dry-run", "--json", "dapi.list", "-V", "page=1")
    run(0, "send", "-v", "dapi.create", "--each", str(rows), "--concurrency", "3")
    run(0, "get-token", "dpop")
    run(0, "get-token", "dpop", "--json")
    run(0, "get-token", "dpop", "--force", "-v")
    dpop_server.configure(nonce_loop=True)
    run(4, "send", "-v", "dapi.me")
    dpop_server.configure(nonce_loop=False)
    cli.op.fail_next_token_requests(2, status=400, error="use_dpop_nonce")
    run(6, "get-token", "dpop", "--force", "-v")
    [key] = sorted(cli.cache_dir.glob("*.dpop"))
    private = _json.loads(key.read_text())["d"]
    key.chmod(0o644)
    run(3, "send", "-v", "dapi.me")
    key.chmod(0o600)

    secret = cli.op.dpop.client_secret or ""
    forbidden = {"the private key": private, **_secret_forms(cli.op.dpop.client_id, secret)}
    forbidden.update({f"token …{t[-6:]}": t for t in tokens})
    forbidden.update({f"signature of …{t[-6:]}": t.rsplit(".", 1)[-1] for t in tokens})
    leaks = [
        f"{name} in the output of oauthcli {' '.join(r.args)}"
        for r in runs
        for name, value in forbidden.items()
        if value and value in r.both
    ]
    # A signed proof is a compact JWS whose header says typ dpop+jwt: none may appear.
    proof_header = base64.urlsafe_b64encode(b'{"typ":"dpop+jwt"').decode()[:16]
    leaks += [
        f"a DPoP proof in oauthcli {' '.join(r.args)}" for r in runs if proof_header in r.both
    ]
    assert tokens and not leaks, "secrets in the output:\n" + "\n".join(leaks)
