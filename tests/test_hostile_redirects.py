"""A 307/308 to another origin never re-sends a body holding a secret, in any spelling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from oauthcli.auth import NoAuth
from oauthcli.request.resolved import ResolvedRequest, ResolvedRetry, ResolvedTLS
from oauthcli.secret import Secret
from oauthcli.transport.http import carries_secret
from oauthcli.transport.sending import Sender
from tests.servers import LoopbackServer

SECRET = "mot-de-passe-été-ключ-🔑"


def post(url: str, body: bytes) -> ResolvedRequest:
    return ResolvedRequest(
        message="m",
        method="x",
        http_method="POST",
        url=url,
        params=[],
        headers={"Content-Type": "application/json"},
        body=body,
        auth=NoAuth(),
        timeout=3.0,
        retry=ResolvedRetry(),
        tls=ResolvedTLS(),
        source=Path("messages/m.yaml"),
    )


BODIES = {
    "json utf-8": json.dumps({"password": SECRET}, ensure_ascii=False).encode(),
    "json escaped": json.dumps({"password": SECRET}).encode(),
    "form": urlencode({"password": SECRET}).encode(),
    "percent": ("password=" + quote(SECRET, safe="")).encode(),
    "latin-1": "password=mot-de-passe-ét".encode("latin-1"),
}


@pytest.fixture
def sender() -> Any:
    Secret(SECRET)
    Secret("mot-de-passe-ét")
    with Sender(sleep=lambda s: None, warn=lambda text: None) as s:
        yield s


@pytest.mark.parametrize("name", BODIES)
def test_a_non_ascii_secret_is_seen_in_every_encoding(sender: Sender, name: str) -> None:
    assert carries_secret(BODIES[name])
    assert not carries_secret('{"name": "été"}'.encode())


@pytest.mark.parametrize("status", [307, 308])
@pytest.mark.parametrize("name", BODIES)
def test_307_308_to_another_origin_keeps_a_body_with_a_non_ascii_secret(
    loopback: LoopbackServer, loopback2: LoopbackServer, sender: Sender, name: str, status: int
) -> None:
    loopback2.reply("/steal", 200, b"got it")
    loopback.reply("/p", status, Location=loopback2.url("/steal"))
    result = sender.send(post(loopback.url("/p"), BODIES[name]))
    assert result.status == status
    assert loopback2.requests == []


def test_307_still_re_sends_a_body_without_secrets(
    loopback: LoopbackServer, loopback2: LoopbackServer, sender: Sender
) -> None:
    loopback2.reply("/there", 201, b"made")
    loopback.reply("/p", 307, Location=loopback2.url("/there"))
    body = json.dumps({"name": "été"}, ensure_ascii=False).encode()
    assert sender.send(post(loopback.url("/p"), body)).status == 201
    assert loopback2.requests[0].body == body
