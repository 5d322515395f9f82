"""Fixtures of the end-to-end harness: a real OAuth server (oidc-provider) and a test API.

Both run for the whole session on free 127.0.0.1 ports; see servers.py for the objects handed
out. State that tests may change (counters, the resource server's revocation cutoff, injected
failures, the access token TTL) is shared: reset what you rely on, or compare deltas.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .servers import HarnessError, OidcProvider, ResourceServer, run_servers


@pytest.fixture(scope="session")
def _e2e_servers(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[OidcProvider, ResourceServer]]:
    workdir = tmp_path_factory.mktemp("e2e-servers")
    try:
        with run_servers(workdir) as servers:
            yield servers
    except HarnessError as exc:
        pytest.fail(f"e2e harness: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def oidc_provider(_e2e_servers: tuple[OidcProvider, ResourceServer]) -> OidcProvider:
    """The authorization server (issuer, token_url, clients, token_requests(), ...)."""
    return _e2e_servers[0]


@pytest.fixture(scope="session")
def resource_server(_e2e_servers: tuple[OidcProvider, ResourceServer]) -> ResourceServer:
    """The API accepting the provider's JWTs (api_base_url, incidents_url, stats(), ...)."""
    return _e2e_servers[1]
