"""Decoding JWT access tokens for display, times for people, and Token.is_jwt."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest

from oauthcli.secret import Secret
from oauthcli.tokens import Token, jwtinfo


def _seg(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _token(access: str) -> Token:
    return Token(Secret(access), "Bearer", time.time() + 60, None, None, None, time.time())


def test_decode_header_and_claims_without_verifying() -> None:
    token = f"{_seg({'alg': 'ES256', 'kid': 'k'})}.{_seg({'sub': 'me', 'exp': 1})}.not-checked"
    assert jwtinfo.decode(token) == ({"alg": "ES256", "kid": "k"}, {"sub": "me", "exp": 1})
    assert _token(token).is_jwt()


@pytest.mark.parametrize(
    "token",
    [
        "opaque-token-value",
        "a.b",
        "a.b.c.d.e",
        f"{_seg({'typ': 'JWT'})}.{_seg({'sub': 'x'})}.s",  # no alg: not a JWS header
        f"{_seg({'alg': 'none'})}.{_seg([1, 2])}.s",  # claims not an object
        f"{_seg({'alg': 'RS256'})}.!!!.s",
    ],
)
def test_not_a_jwt(token: str) -> None:
    assert jwtinfo.decode(token) is None
    assert not _token(token).is_jwt()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (45, "45 s"),
        (60, "1 min"),
        (299, "4 min 59 s"),
        (900, "15 min"),
        (3600, "1 h"),
        (3720, "1 h 2 min"),
        (86400 * 3 + 3600 * 4, "3 d 4 h"),
    ],
)
def test_duration(seconds: int, text: str) -> None:
    assert jwtinfo.duration(seconds) == text


def test_relative_and_claim_text() -> None:
    now = 1_800_000_000.0
    assert jwtinfo.relative(now + 90, now) == "in 1 min 30 s"
    assert jwtinfo.relative(now - 120, now) == "2 min ago"
    exp = jwtinfo.claim_text("exp", now + 300, now)
    assert exp.startswith(jwtinfo.iso_time(now + 300)) and exp.endswith("(in 5 min)")
    assert jwtinfo.claim_text("aud", ["a", "b"], now) == "a b"
    assert jwtinfo.claim_text("act", {"sub": "x"}, now) == '{"sub": "x"}'


def test_ordered_claims() -> None:
    shown, others = jwtinfo.ordered_claims({"zz": 1, "exp": 1, "iss": 1, "aud": 1, "jti": 1})
    assert shown == ["iss", "aud", "exp"] and others == ["jti", "zz"]
