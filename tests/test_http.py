"""HTTP rules without a session: Retry-After, backoff, origins, failure causes."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest
import requests

from oauthcli.request.resolved import ResolvedRetry
from oauthcli.secret import Secret
from oauthcli.transport.http import (
    backoff_delay,
    carries_secret,
    describe_failure,
    retry_after,
)
from oauthcli.urls import is_loopback, origin


def test_retry_after_seconds_and_dates() -> None:
    assert retry_after("5", 30) == 5.0
    assert retry_after(" 120 ", 30) == 30.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 30) == 0.0  # in the past
    now = float(int(time.time()))  # HTTP-dates have whole seconds
    assert retry_after(formatdate(now + 20, usegmt=True), 30, now=now) == 20.0
    assert retry_after(formatdate(now + 99, usegmt=True), 30, now=now) == 30.0
    assert retry_after("soon", 30) is None
    assert retry_after("", 30) is None
    assert retry_after(None, 30) is None


def test_backoff_is_full_jitter() -> None:
    retry = ResolvedRetry(backoff=0.5, max_delay=3)
    assert [backoff_delay(retry, n, rand=lambda: 1.0) for n in (1, 2, 3, 4)] == [0.5, 1, 2, 3]
    assert backoff_delay(retry, 4, rand=lambda: 0.0) == 0.0


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.255.0.9", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("128.0.0.1", False),
        ("10.0.0.1", False),
        ("localhost.example", False),
        ("", False),
        (None, False),
    ],
)
def test_one_loopback_rule_for_every_stage(host: str | None, loopback: bool) -> None:
    """127.0.0.0/8, ::1 and localhost: the same rule for the registry, discovery,
    CI assertions and redirects (they import it from oauthcli.urls)."""
    assert is_loopback(host) is loopback


def test_origin_compares_scheme_host_and_port() -> None:
    assert origin("https://API.test/x") == origin("https://api.test:443/y")
    assert origin("http://api.test/") != origin("https://api.test/")
    assert origin("http://api.test:8080/") != origin("http://api.test/")


def test_carries_secret() -> None:
    Secret("body-secret-value")
    assert carries_secret(b"password=body-secret-value")
    assert not carries_secret(b"name=harmless")
    assert not carries_secret(bytes(range(256)))


def test_describe_failure_names_the_cause() -> None:
    refused = requests.exceptions.ConnectionError(ConnectionRefusedError(111, "refused"))
    assert describe_failure(refused, 5) == "connection refused"
    reset = requests.exceptions.ConnectionError(ConnectionResetError(104, "reset"))
    assert describe_failure(reset, 5) == "connection reset by peer"
    assert describe_failure(requests.exceptions.ConnectTimeout(), 2.5) == (
        "connection timed out after 2.5 s"
    )
    assert describe_failure(requests.exceptions.ReadTimeout(), 3) == (
        "no response within 3 s (read timeout)"
    )
