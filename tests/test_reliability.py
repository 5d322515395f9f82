"""Numbers a token endpoint or a cache file may state are shown or refused, never a crash.

A server answering ``expires_in: 1e30`` made ``get-token`` and, the token being cached, every
later ``token list`` end with "internal error" (exit 1): the expiry could not be shown as a
date. A JWT with ``exp: 1e400`` did the same to ``get-token``, and a cache entry holding such
a time crashed ``token list`` instead of being discarded. (The end-to-end side of this is
the ``absurd-expires-in`` case in tests/e2e/test_reliability.py.)
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import responses

from oauthcli.request.resolved import ResolvedProfile
from oauthcli.tokens import cache, grants, jwtinfo, service

URL = "https://login.test/oauth2/token"
HUGE = 10**400  # json.loads reads such an integer exactly, and 1e400 as inf


def _answer(**fields: Any) -> None:
    body = {"access_token": "at-1234567890", "token_type": "bearer", **fields}
    responses.mock.post(URL, body=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("expires_in", [1e30, HUGE, -(10**11)], ids=["1e30", "10e400", "-10e11"])
@responses.activate
def test_an_absurd_expires_in_is_a_token_error(
    token_profile: Callable[..., ResolvedProfile], expires_in: Any
) -> None:
    _answer(expires_in=expires_in)

    with pytest.raises(grants.GrantError) as caught:
        grants.fetch(token_profile())

    message = str(caught.value)
    assert "answered expires_in as " in message and ", not seconds from 0 to " in message
    assert len(message) < 200  # a 400-digit number is cut short


@responses.activate
def test_a_long_but_plausible_expires_in_is_kept(
    token_profile: Callable[..., ResolvedProfile],
) -> None:
    _answer(expires_in=2**31 - 1, refresh_token="rt-1234567890", refresh_expires_in=HUGE)

    obtained = service.obtain(token_profile())

    token = obtained.token
    assert token.expires_at is not None
    assert token.expires_at == pytest.approx(time.time() + 2**31 - 1, abs=5)
    assert token.refresh_expires_at is not None
    assert token.refresh_expires_at <= time.time() + service.MAX_LIFETIME
    assert jwtinfo.local_time(token.expires_at).startswith("20")


@pytest.mark.parametrize(
    "value",
    [float("inf"), float("-inf"), float("nan"), HUGE, 1e30],
    ids=["inf", "-inf", "nan", "10e400", "1e30"],
)
def test_times_out_of_range_are_shown_not_raised(value: float) -> None:
    now = time.time()
    assert not jwtinfo.is_time(value)
    assert jwtinfo.claim_text("exp", value, now)  # shown as the number it is
    if value == value and abs(value) != HUGE:  # floats
        assert jwtinfo.local_time(value).endswith("(not a representable date)")
        assert jwtinfo.iso_time(value).endswith("(not a representable date)")
        assert jwtinfo.duration(value - now)


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def test_a_jwt_with_absurd_time_claims_is_displayed() -> None:
    token = ".".join([_b64('{"alg": "RS256"}'), _b64('{"exp": 1e400, "iat": NaN}'), "c2ln"])
    _, claims = jwtinfo.decode(token) or ({}, {})
    now = time.time()
    assert [jwtinfo.claim_text(c, claims[c], now) for c in ("exp", "iat")] == ["Infinity", "NaN"]


@pytest.mark.parametrize(
    "raw",
    ["Infinity", "-Infinity", "NaN", "1" + "0" * 400, "1e300"],
    ids=["inf", "-inf", "nan", "10e400", "1e300"],
)
def test_a_cache_entry_with_an_impossible_time_is_corrupt(tmp_path: Path, raw: str) -> None:
    entry = {
        "version": 1,
        "profile": "acme",
        "token_url": URL,
        "access_token": "at-1234567890",
        "token_type": "Bearer",
        "expires_at": 0,
        "obtained_at": 1.0,
    }
    text = json.dumps(entry).replace('"expires_at": 0', f'"expires_at": {raw}')

    with pytest.raises(cache.CorruptEntry, match="'expires_at' is not a time"):
        cache.parse(text.encode(), tmp_path / "x.json")
