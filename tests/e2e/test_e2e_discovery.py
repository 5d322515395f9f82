"""``issuer:`` of the installed oauthcli against oidc-provider: its RFC 8414 metadata, the
fallback to OpenID's openid-configuration when the server has no RFC 8414 document, the
endpoints it fills (token, revocation), where ``show``/``validate``/``get-token`` say each came
from, and a wrong issuer. Every test asserts from the provider's log that it served the grant
(or that it served none)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .cli import Cli, profile_yaml, secret_env_name
from .servers import OidcProvider

pytestmark = pytest.mark.e2e


def issuer_profile(cli: Cli, name: str, auth: str = "client_secret_basic", **extra: str) -> str:
    """A profile of the client of ``auth`` that names only the issuer, no endpoint."""
    op = cli.op
    client = next(c for c in op.clients.values() if c.auth_method == auth)
    lines = [
        line
        for line in profile_yaml(op, client).splitlines()
        if not line.startswith(("token_url:", "revocation_url:"))
    ]
    lines.append(f"issuer: {extra.pop('issuer', op.issuer)}")
    lines += [f"{k}: {v}" for k, v in extra.items()]
    (cli.root / "profiles" / f"{name}.yaml").write_text("\n".join(lines) + "\n")
    return name


def served(op: OidcProvider, since: int, client: str) -> list[dict[str, str]]:
    return [g for g in op.grants_served()[since:] if g["client"] == client]


@pytest.fixture
def no_rfc8414(cli: Cli) -> Iterator[None]:
    cli.op.configure(oauth_metadata=False)
    yield
    cli.op.configure(oauth_metadata=True)


def test_rfc8414_metadata_gives_the_token_and_revocation_endpoints(cli: Cli) -> None:
    op = cli.op
    since = len(op.grants_served())
    name = issuer_profile(cli, "disc")

    validated = cli.run("validate")
    assert validated.code == 0, validated
    assert f"issuer {op.issuer}: token_url, revocation_url" in validated.err
    assert "(discovered when used)" in validated.err
    shown = cli.run("show", name)
    assert "token_url:" in shown.out and "(from issuer, discovered when used)" in shown.out
    assert served(op, since, "cli-basic") == []  # validate and show asked nothing

    got = cli.run("get-token", "-v", name)
    assert got.code == 0, got
    # RFC 8414's document first, and it was enough.
    assert f"discovery: metadata of issuer {op.issuer} from {op.oauth_metadata_url}" in got.err
    assert "openid-configuration" not in got.err
    assert f"obtained from {op.token_url}" in got.out
    assert f"{op.token_url} (from issuer metadata)" in got.out
    assert f"{op.revocation_url} (from issuer metadata)" in got.out
    assert "client_credentials" in got.out
    [grant] = served(op, since, "cli-basic")
    assert (grant["grant_type"], grant["status"], grant["auth"]) == (
        "client_credentials",
        "200",
        "client_secret_basic",
    )

    # The token is cached under the issuer; show now says what the metadata gave.
    again = cli.run("get-token", name)
    assert again.code == 0 and "from the cache" in again.out, again
    shown = cli.run("show", name)
    assert f"{op.token_url} (from issuer metadata)" in shown.out
    assert len(served(op, since, "cli-basic")) == 1

    revoked = cli.run("token", "revoke", name)
    assert revoked.code == 0, revoked
    assert f"at {op.revocation_url}" in revoked.out
    assert op.stats()["revocation"]["ok"] == 1


def test_openid_configuration_when_the_server_has_no_rfc8414_document(
    cli: Cli, no_rfc8414: None
) -> None:
    op = cli.op
    since = len(op.grants_served())
    name = issuer_profile(cli, "oidc", "client_secret_post")
    got = cli.run("get-token", "-v", "--json", name)
    assert got.code == 0, got
    assert (
        "> GET /.well-known/oauth-authorization-server" in got.err and "< HTTP/1.1 404" in got.err
    )
    assert f"discovery: metadata of issuer {op.issuer} from {op.discovery_url}" in got.err
    data = got.json()
    assert data["token_url"] == op.token_url
    assert data["endpoints"]["token_url"] == {"url": op.token_url, "from": "from issuer metadata"}
    [grant] = served(op, since, "cli-post")
    assert (grant["grant_type"], grant["status"]) == ("client_credentials", "200")
    assert secret_env_name(next(iter(op.clients.values()))) not in got.out

    # --force asks the issuer anew (the cached metadata is not used for it).
    forced = cli.run("get-token", "-v", "--force", name)
    assert forced.code == 0 and f"from {op.discovery_url}" in forced.err, forced
    assert len(served(op, since, "cli-post")) == 2


def test_send_through_a_discovered_token_endpoint(cli: Cli) -> None:
    op = cli.op
    since = len(op.grants_served())
    name = issuer_profile(cli, "disc_send")
    (cli.root / "messages" / "api_disc_send.yaml").write_text(
        (cli.root / "messages" / "api_client_secret_basic.yaml")
        .read_text()
        .replace("profile: client_secret_basic", f"profile: {name}")
    )
    sent = cli.run("send", "api_disc_send.list")
    assert sent.code == 0, sent
    assert len(served(op, since, "cli-basic")) == 1


def test_a_wrong_issuer_is_one_line_exit_6_and_no_grant(cli: Cli) -> None:
    op = cli.op
    since = len(op.grants_served())
    # The server's issuer has no trailing slash: RFC 8414 §3.3 wants them identical.
    name = issuer_profile(cli, "slash", issuer=op.issuer + "/")
    got = cli.run("get-token", name)
    assert got.code == 6, got
    [line] = got.err.strip().splitlines()
    assert f"names issuer {op.issuer}, not {op.issuer}/" in line

    # An issuer where nothing listens: exit 6, naming the URL tried.
    name = issuer_profile(cli, "gone", issuer="http://127.0.0.1:9")
    got = cli.run("get-token", name)
    assert got.code == 6, got
    [line] = got.err.strip().splitlines()
    assert "cannot connect to http://127.0.0.1:9/.well-known/oauth-authorization-server" in line

    # An issuer that is plain http off loopback: refused before anything is sent (exit 3).
    name = issuer_profile(cli, "plain", issuer="http://login.example")
    got = cli.run("get-token", name)
    assert got.code == 3 and "plain http:// to login.example is refused" in got.err, got
    assert served(op, since, "cli-basic") == []


def test_invalid_client_from_the_provider_is_reported_without_a_false_hint(cli: Cli) -> None:
    """cli-post is registered for client_secret_post: the provider refuses Basic for it, but
    it offers client_secret_basic to others, so no hint says the server lacks the method."""
    op = cli.op
    since = len(op.grants_served())
    name = issuer_profile(cli, "wrong_auth", "client_secret_post")
    text = (cli.root / "profiles" / f"{name}.yaml").read_text()
    (cli.root / "profiles" / f"{name}.yaml").write_text(
        text.replace("client_auth: client_secret_post", "client_auth: client_secret_basic")
    )
    got = cli.run("get-token", name)
    assert got.code == 6, got
    [line] = got.err.strip().splitlines()
    assert "invalid_client" in line and "not among the server's methods" not in line
    [grant] = served(op, since, "cli-post")
    assert grant["error"] == "invalid_client"
