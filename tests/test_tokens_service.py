"""When a token comes from the cache, a refresh or the grant (SPEC §3), on a fake clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import responses

from oauthcli.errors import ExitCode, TokenError
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret
from oauthcli.tokens import Token, cache, drop, obtain, service
from oauthcli.trace import Trace
from tests.wire import body_text

URL = "https://login.test/oauth2/token"
T0 = 1_800_000_000.0
Make = Callable[..., ResolvedProfile]


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(service, "clock", fake)
    return fake


@pytest.fixture
def rsps() -> Any:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def answer(rsps: responses.RequestsMock, token: str = "at-one-123456", **extra: Any) -> None:
    body: dict[str, Any] = {"access_token": token, "token_type": "bearer", "expires_in": 300}
    body.update(extra)
    rsps.post(URL, json={k: v for k, v in body.items() if v is not None})


def grant_types(rsps: responses.RequestsMock) -> list[str]:
    return [parse_qs(body_text(c.request))["grant_type"][0] for c in rsps.calls]


def stored(profile: ResolvedProfile) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cache.entry_path(cache.entry_key(profile)).read_text())
    return data


def test_second_call_uses_the_cache_without_a_request(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    answer(rsps)
    first = obtain(token_profile())
    clock.now += 200
    second = obtain(token_profile())
    assert (first.source, second.source) == ("grant", "cache")
    assert second.token.access_token == Secret("at-one-123456")
    assert first.token.token_type == "Bearer" and first.token.expires_at == T0 + 300
    assert len(rsps.calls) == 1 and first.warnings == second.warnings == []


def test_valid_cached_token_takes_no_lock(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer(rsps)
    obtain(token_profile())

    def no_lock(*args: Any) -> None:
        raise AssertionError("a valid cached token must be read without a lock")

    monkeypatch.setattr(cache, "lock", no_lock)
    assert obtain(token_profile()).source == "cache"


def test_inside_the_leeway_the_grant_runs_again(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    answer(rsps)
    obtain(token_profile(token_leeway=60))
    clock.now += 239
    assert obtain(token_profile(token_leeway=60)).source == "cache"
    clock.now += 2
    renewed = obtain(token_profile(token_leeway=60))
    assert renewed.source == "grant" and grant_types(rsps) == ["client_credentials"] * 2
    assert renewed.token.obtained_at == clock.now


def test_refresh_token_is_used_and_kept_when_not_rotated(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    answer(rsps, refresh_token="rt-first-0001")
    obtain(token_profile())
    clock.now += 250
    answer(rsps, token="at-two-123456")
    renewed = obtain(token_profile())
    assert renewed.source == "refresh"
    assert grant_types(rsps) == ["client_credentials", "refresh_token"]
    assert parse_qs(body_text(rsps.calls[1].request))["refresh_token"] == ["rt-first-0001"]
    assert stored(token_profile())["refresh_token"] == "rt-first-0001"
    assert renewed.token.access_token == Secret("at-two-123456")


def test_rotated_refresh_token_replaces_the_old_one(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    answer(rsps, refresh_token="rt-first-0001")
    obtain(token_profile())
    clock.now += 250
    answer(rsps, token="at-two-123456", refresh_token="rt-second-0002")
    obtain(token_profile())
    assert stored(token_profile())["refresh_token"] == "rt-second-0002"
    clock.now += 250
    answer(rsps, token="at-three-12345")
    obtain(token_profile())
    assert parse_qs(body_text(rsps.calls[2].request))["refresh_token"] == ["rt-second-0002"]


def test_refresh_token_past_its_lifespan_is_not_used(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    profile = token_profile(refresh_token_lifespan=400)
    answer(rsps, refresh_token="rt-first-0001")
    obtain(profile)
    assert stored(profile)["refresh_expires_at"] == T0 + 400
    clock.now += 250
    obtain(profile)
    clock.now += 300  # 550 s after the refresh token was issued
    obtain(profile)
    assert grant_types(rsps) == ["client_credentials", "refresh_token", "client_credentials"]


def test_invalid_grant_on_refresh_drops_it_and_runs_the_grant(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    answer(rsps, refresh_token="rt-first-0001")
    obtain(token_profile())
    clock.now += 250
    rsps.post(URL, status=400, json={"error": "invalid_grant", "error_description": "expired"})
    answer(rsps, token="at-two-123456")
    renewed = obtain(token_profile())
    assert grant_types(rsps) == ["client_credentials", "refresh_token", "client_credentials"]
    assert renewed.source == "grant" and "invalid_grant" in renewed.warnings[0]
    assert (
        "refresh_token" not in stored(token_profile())
        or not stored(token_profile())["refresh_token"]
    )


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 503, "body": "<html>down</html>", "content_type": "text/html"},
        {"status": 400, "json": {"error": "temporarily_unavailable"}},
        {"body": requests.ConnectionError("[Errno 111] Connection refused")},
        {"body": requests.Timeout("read timed out")},
    ],
)
def test_transient_failure_inside_the_leeway_uses_the_old_token(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock, failure: dict[str, Any]
) -> None:
    answer(rsps)
    obtain(token_profile())
    before = cache.entry_path(cache.entry_key(token_profile())).read_bytes()
    clock.now += 270
    rsps.replace(responses.POST, URL, **failure)
    result = obtain(token_profile())
    assert result.source == "cache" and result.token.access_token == Secret("at-one-123456")
    assert len(result.warnings) == 1 and "still valid for 30 s" in result.warnings[0]
    assert cache.entry_path(cache.entry_key(token_profile())).read_bytes() == before


def test_transient_refresh_failure_inside_the_leeway_uses_the_old_token(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    answer(rsps, refresh_token="rt-first-0001")
    obtain(token_profile())
    clock.now += 270
    rsps.replace(responses.POST, URL, status=502, body="bad gateway")
    result = obtain(token_profile())
    assert result.source == "cache" and "token refresh" in result.warnings[0]
    assert grant_types(rsps) == ["client_credentials", "refresh_token"]


def test_transient_failure_past_expiry_is_an_error(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    answer(rsps)
    obtain(token_profile())
    before = cache.entry_path(cache.entry_key(token_profile())).read_bytes()
    clock.now += 301
    rsps.replace(responses.POST, URL, status=503, body="down")
    with pytest.raises(TokenError) as caught:
        obtain(token_profile())
    assert caught.value.exit_code == ExitCode.TOKEN and "HTTP 503" in str(caught.value)
    assert cache.entry_path(cache.entry_key(token_profile())).read_bytes() == before


def test_refusal_inside_the_leeway_is_an_error(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    answer(rsps)
    obtain(token_profile())
    clock.now += 270
    rsps.replace(responses.POST, URL, status=401, json={"error": "invalid_client"})
    with pytest.raises(TokenError, match="invalid_client"):
        obtain(token_profile())


def test_failure_with_an_empty_cache_writes_nothing(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    rsps.post(URL, status=400, json={"error": "invalid_scope"})
    with pytest.raises(TokenError, match="invalid_scope"):
        obtain(token_profile())
    assert not cache.entry_path(cache.entry_key(token_profile())).exists()


def test_token_without_expires_in_lives_the_default(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    answer(rsps, expires_in=None, token_type="BEARER", scope=["a", "b"])
    token = obtain(token_profile()).token
    assert token.expires_at == T0 + service.DEFAULT_LIFETIME
    assert token.token_type == "Bearer" and token.scope == "a b"
    assert stored(token_profile())["expires_assumed"] is True


def test_force_runs_the_grant_even_with_a_valid_token(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    answer(rsps)
    obtain(token_profile())
    clock.now += 1
    answer(rsps, token="at-two-123456")
    forced = obtain(token_profile(), force=True)
    assert forced.source == "grant" and forced.token.access_token == Secret("at-two-123456")


def test_drop_removes_only_the_token_it_was_given(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    answer(rsps)
    old = obtain(token_profile()).token
    answer(rsps, token="at-two-123456")
    obtain(token_profile(), force=True)
    drop(token_profile(), old)  # another process already renewed it: keep the new one
    assert stored(token_profile())["access_token"] == "at-two-123456"
    current = obtain(token_profile()).token
    drop(token_profile(), current)
    assert not cache.entry_path(cache.entry_key(token_profile())).exists()


def test_drop_keeps_the_refresh_token(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    answer(rsps, refresh_token="rt-first-0001")
    token = obtain(token_profile()).token
    drop(token_profile(), token)
    answer(rsps, token="at-two-123456")
    again = obtain(token_profile())
    assert again.source == "refresh" and grant_types(rsps)[-1] == "refresh_token"


def test_refresh_token_grant_uses_the_profiles_then_the_rotated_token(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    profile = token_profile(grant_type="refresh_token", refresh_token=Secret("rt-seed-00001"))
    answer(rsps, refresh_token="rt-rotated-002")
    obtain(profile)
    clock.now += 250
    obtain(profile)
    sent = [parse_qs(body_text(c.request))["refresh_token"][0] for c in rsps.calls]
    assert sent == ["rt-seed-00001", "rt-rotated-002"]


def test_refused_profile_refresh_token_says_what_to_do(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    profile = token_profile(grant_type="refresh_token", refresh_token=Secret("rt-seed-00001"))
    answer(rsps)
    obtain(profile)
    clock.now += 250
    rsps.replace(responses.POST, URL, status=400, json={"error": "invalid_grant"})
    with pytest.raises(TokenError, match="invalid_grant"):
        obtain(profile)


def test_entries_are_keyed_by_what_identifies_a_token(token_profile: Make) -> None:
    base = cache.entry_key(token_profile())
    assert cache.entry_key(token_profile(name="other")) == base
    for change in (
        {"scope": ("api.read",)},
        {"audience": "https://x.test"},
        {"resource": ("https://r.test",)},
        {"client_id": "other"},
        {"token_url": "https://other.test/token"},
        {"grant_type": "password", "username": "ann"},
    ):
        assert cache.entry_key(token_profile(**change)) != base
    ann = token_profile(grant_type="password", username="ann")
    bob = token_profile(grant_type="password", username="bob")
    assert cache.entry_key(ann) != cache.entry_key(bob)


def test_entry_records_the_profile_and_url(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock, isolated_oauthcli: Path
) -> None:
    answer(rsps)
    obtain(token_profile())
    data = stored(token_profile())
    assert data["profile"] == "acme" and data["token_url"] == URL
    assert cache.entry_path(cache.entry_key(token_profile())).parent == isolated_oauthcli


def test_verify_false_warns_on_every_token_request(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    from oauthcli.request.resolved import ResolvedTLS

    answer(rsps)
    result = obtain(token_profile(tls=ResolvedTLS(verify=False)))
    assert any("verification is off" in w for w in result.warnings)


# -- SPEC §4: lifetime, identity, rotation --------------------------------------------------


@pytest.mark.parametrize(
    ("expires_in", "leeway", "reused_for"),
    [(30, 60, 22.5), (5, 60, 3.75), (3600, 60, 3540), (3600, 1, 3599), (120, 10, 110)],
)
def test_a_token_is_renewed_at_min_of_leeway_and_a_quarter_of_its_lifetime(
    token_profile: Make,
    clock: Clock,
    rsps: responses.RequestsMock,
    expires_in: int,
    leeway: int,
    reused_for: float,
) -> None:
    profile = token_profile(token_leeway=leeway)
    answer(rsps, expires_in=expires_in)
    obtain(profile)
    clock.now = T0 + reused_for - 0.01
    assert obtain(profile).source == "cache"
    clock.now = T0 + reused_for
    assert obtain(profile).source == "grant"
    assert stored(profile)["lifetime"] == expires_in


def test_the_sender_and_the_cache_share_one_due_rule(token_profile: Make) -> None:

    token = Token(Secret("at-x-123456"), "Bearer", T0 + 30, None, None, None, T0, lifetime=30)
    assert not token.due(60, T0 + 22.49) and token.due(60, T0 + 22.5)
    # An entry written before lifetimes were stored: from obtained_at to expires_at.
    old = Token(Secret("at-x-123456"), "Bearer", T0 + 300, None, None, None, T0)
    assert not old.due(60, T0 + 239.9) and old.due(60, T0 + 240)


def _jwt(claims: dict[str, Any]) -> str:
    import base64

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize(
    ("claims", "expires_at", "lifetime"),
    [
        ({"exp": T0 + 600, "iat": T0}, T0 + 600, 600),
        ({"exp": T0 + 600}, T0 + 600, 600),
        ({"exp": T0 + 600, "iat": T0 - 3000}, T0 + 600, 3600),  # issued earlier, cached there
        ({"exp": "soon"}, T0 + 300, 300),
        ({"exp": True}, T0 + 300, 300),
        ({"exp": 10**400}, T0 + 300, 300),
        ({"exp": float("inf")}, T0 + 300, 300),
    ],
    ids=["exp-iat", "exp", "old-iat", "string", "bool", "huge", "inf"],
)
def test_without_expires_in_a_sane_jwt_exp_is_the_expiry(
    token_profile: Make,
    clock: Clock,
    rsps: responses.RequestsMock,
    claims: dict[str, Any],
    expires_at: float,
    lifetime: float,
) -> None:
    body = json.dumps({"access_token": _jwt(claims)}).replace("Infinity", "1e999")
    rsps.post(URL, body=body, content_type="application/json")
    token = obtain(token_profile()).token
    assert (token.expires_at, token.lifetime) == (expires_at, lifetime)
    assert stored(token_profile())["expires_assumed"] is (expires_at == T0 + 300)


def test_a_jwt_issued_already_expired_is_used_once_not_cached(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    """No expires_in and an exp in the past (the machine's clock runs ahead, say): the
    token is not cached as good for 300 s, and the warning says what to check."""
    body = json.dumps({"access_token": _jwt({"exp": T0 - 5, "iat": T0 - 65})})
    rsps.post(URL, body=body, content_type="application/json")
    obtained = obtain(token_profile())
    assert obtained.token.expires_at == T0 - 5
    assert any("expired 5 s ago" in w and "clock" in w for w in obtained.warnings)
    assert not cache.entry_path(cache.entry_key(token_profile())).exists()
    rsps.post(URL, body=body, content_type="application/json")
    assert obtain(token_profile()).source == "grant"  # asked again, not served from a cache


@pytest.mark.parametrize(
    ("lifespan", "refresh_expires_in", "until"),
    [(None, 1800, T0 + 1800), (400, 1800, T0 + 400), (4000, 1800, T0 + 1800), (None, None, None)],
)
def test_refresh_expires_in_bounds_the_refresh_token_like_its_lifespan(
    token_profile: Make,
    clock: Clock,
    rsps: responses.RequestsMock,
    lifespan: int | None,
    refresh_expires_in: int | None,
    until: float | None,
) -> None:
    profile = token_profile(refresh_token_lifespan=lifespan)
    answer(rsps, refresh_token="rt-first-0001", refresh_expires_in=refresh_expires_in)
    assert obtain(profile).token.refresh_expires_at == until


def test_the_key_covers_every_credential_and_never_holds_one(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    base = token_profile()
    key = cache.entry_key(base)
    for change in (
        {"client_auth": "client_secret_post"},
        {"client_secret": Secret("another-secret")},
        {"private_key": Secret("-----BEGIN PRIVATE KEY-----")},
        {"extra_params": {"tenant": "red"}},
        {"assertion": Secret("eyJ.a.b")},
        {"refresh_token": Secret("rt-x")},
        {"password": Secret("pw")},
        {"username": "ann"},
    ):
        assert cache.entry_key(token_profile(**change)) != key, change
    assert cache.entry_key(token_profile(scope=("api.write", "api.read"))) == key
    answer(rsps)
    obtain(base)
    text = cache.entry_path(key).read_text()
    assert "s3cr3t-value" not in text and "s3cr3t-value" not in key


def test_the_key_is_worked_out_once_per_resolved_profile(
    token_profile: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = token_profile()
    cache.entry_key(profile)
    monkeypatch.setattr(cache, "_identity", lambda p: pytest.fail("hashed again"))
    assert cache.entry_key(profile) == cache.entry_key(profile)


@pytest.mark.parametrize("grant", ["refresh_token", "authorization_code"])
def test_force_uses_the_cached_refresh_token_for_rotating_grants(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock, grant: str
) -> None:
    profile = token_profile(grant_type=grant, refresh_token=Secret("rt-seed-00001"))
    if grant == "authorization_code":
        profile = token_profile(grant_type=grant)
        cache.write(
            cache.entry_path(cache.entry_key(profile)),
            cache.Entry(
                token=Token(
                    Secret("at-0-1234567"),
                    "Bearer",
                    T0 + 300,
                    None,
                    Secret("rt-rotated-002"),
                    None,
                    T0,
                    300.0,
                ),
                profile="acme",
                token_url=URL,
            ),
        )
    else:
        answer(rsps, refresh_token="rt-rotated-002")
        obtain(profile)
    answer(rsps, token="at-two-123456", refresh_token="rt-rotated-003")
    assert obtain(profile, force=True).source == "refresh"
    answer(rsps, token="at-three-1234", refresh_token="rt-rotated-004")
    assert obtain(profile, force=True).source == "refresh"
    sent = [parse_qs(body_text(c.request))["refresh_token"][0] for c in rsps.calls]
    expected = ["rt-rotated-002", "rt-rotated-003"]
    assert sent[-2:] == expected and grant_types(rsps)[-2:] == ["refresh_token"] * 2


def test_force_runs_the_grant_for_other_grants_even_with_a_refresh_token(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    answer(rsps, refresh_token="rt-first-0001")
    obtain(token_profile())
    answer(rsps, token="at-two-123456")
    assert obtain(token_profile(), force=True).source == "grant"
    assert grant_types(rsps) == ["client_credentials"] * 2


def test_a_refused_cached_refresh_token_falls_back_to_a_new_one_in_the_profile(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    """The user pasted a new refresh token into the profile after the old chain died."""
    old = token_profile(grant_type="refresh_token", refresh_token=Secret("rt-seed-00001"))
    answer(rsps, refresh_token="rt-rotated-002")
    obtain(old)
    new = token_profile(grant_type="refresh_token", refresh_token=Secret("rt-pasted-0003"))
    answer(rsps, token="at-two-123456", refresh_token="rt-rotated-004")
    assert obtain(new).source == "grant"  # its own entry: another credential, another key
    assert parse_qs(body_text(rsps.calls[-1].request))["refresh_token"] == ["rt-pasted-0003"]


def test_a_spent_profile_refresh_token_says_what_to_do(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    profile = token_profile(grant_type="refresh_token", refresh_token=Secret("rt-seed-00001"))
    rsps.post(URL, status=400, json={"error": "invalid_grant"})
    with pytest.raises(TokenError, match="obtain a new one and update refresh_token"):
        obtain(profile)


class Notes(Trace):
    def __init__(self) -> None:
        self.notes: list[str] = []

    def request(self, *args: Any) -> None:
        pass

    def response(self, *args: Any) -> None:
        pass

    def note(self, text: str) -> None:
        self.notes.append(text)


def test_the_trace_is_told_each_decision(
    token_profile: Make, clock: Clock, rsps: responses.RequestsMock
) -> None:
    trace = Notes()
    profile = token_profile(token_leeway=60)
    answer(rsps, expires_in=60, refresh_token="rt-first-0001")
    obtain(profile, trace=trace)
    clock.now += 10
    obtain(profile, trace=trace)
    clock.now += 40
    answer(rsps, token="at-two-123456", expires_in=60)
    obtain(profile, trace=trace)
    assert trace.notes == [
        "token: none cached for profile 'acme'",
        "token: running the client_credentials grant",
        "token: cached for profile 'acme', 50 s of 60 s left, renewed under 15 s",
        "token: renewing, 10 s left < min(token_leeway 60, lifetime/4 = 15 s)",
        "token: refreshing with the cached refresh token",
    ]
