"""Token endpoint answers as real providers send them, and what the token request carries.

Wire-level: ``responses`` plays the token endpoint; :func:`oauthcli.tokens.grants.fetch`
and ``refresh`` are called as the token service calls them (SPEC §4).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses

from oauthcli import __version__
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret, scrub
from oauthcli.tokens import answer, grants
from oauthcli.trace import Trace
from tests.wire import body_text

URL = "https://login.test/oauth2/token"
Make = Callable[..., ResolvedProfile]
FORM = "application/x-www-form-urlencoded"


def _answer(rsps: responses.RequestsMock, body: str, ctype: str | None, status: int = 200) -> None:
    rsps.add(responses.POST, URL, body=body, status=status, content_type=ctype)


# -- shapes ------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("body", "ctype", "expected"),
    [
        (
            '{"access_token": "at-ans-1", "token_type": "Bearer", "expires_in": "3600"}',
            "application/json",
            ("Bearer", 3600, None),
        ),
        (
            '{"access_token": "at-ans-1", "expires_in": 3600.0}',
            "text/plain",
            ("Bearer", 3600, None),
        ),
        ('{"access_token": "at-ans-1", "expires_in": " 60 "}', None, ("Bearer", 60, None)),
        (
            '{"access_token": "at-ans-1", "token_type": "N_A", "scope": ["a", "b c"]}',
            "application/json; charset=utf-8",
            ("N_A", None, "a b c"),
        ),
        (
            '{"access_token": "at-ans-1", "token_type": "BEARER", "scope": "a,b, c"}',
            "application/json",
            ("BEARER", None, "a b c"),
        ),
        (
            "access_token=gho_16C7e42F292c6912E7710c838347Ae178B4a&scope=repo%2Cgist"
            "&token_type=bearer",
            FORM,
            ("bearer", None, "repo gist"),
        ),
        ("access_token=at-ans-1&token_type=mac&expires_in=120", "text/plain", ("mac", 120, None)),
        (
            '{"access_token": "at-ans-1", "expires_in": ""}',
            "application/json",
            ("Bearer", None, None),
        ),
    ],
)
def test_answers_as_providers_send_them(
    token_profile: Make, body: str, ctype: str | None, expected: tuple[Any, ...]
) -> None:
    _answer(responses.mock, body, ctype)
    got = grants.fetch(token_profile())
    assert got.access_token.startswith(("at-ans-1", "gho_"))
    assert (got.token_type, got.expires_in, got.scope) == expected


@responses.activate
@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ({"refresh_expires_in": "1800"}, 1800),
        ({"refresh_token_expires_in": 15897600}, 15897600),  # GitHub apps
        ({"refresh_expires_in": 0}, None),  # Keycloak offline token: no expiry
        ({"refresh_expires_in": "soon"}, None),
    ],
)
def test_refresh_token_lifetime(
    token_profile: Make, members: dict[str, Any], expected: Any
) -> None:
    body = {"access_token": "at-ans-1", "refresh_token": "rt-ans-1", "expires_in": 60, **members}
    responses.post(URL, json=body)
    assert grants.fetch(token_profile()).refresh_expires_in == expected


@responses.activate
def test_a_refresh_answer_without_refresh_token_does_not_echo_the_old_one(
    token_profile: Make,
) -> None:
    # Authlib puts the refresh token it sent into its result; the cache must keep its own.
    responses.post(URL, json={"access_token": "at-ans-2", "expires_in": 60})
    got = grants.refresh(token_profile(), Secret("rt-old-1234"))
    assert got.refresh_token is None and got.access_token == "at-ans-2"


# -- refusals ------------------------------------------------------------------


@responses.activate
@pytest.mark.parametrize(
    ("body", "ctype", "shown"),
    [
        ('{"error": "invalid_client", "error_description": "no"}', "application/json", "invalid_client: no"),
        ('{"ok": false, "error": "invalid_auth"}', "application/json", "invalid_auth"),
        ('{"ok": false}', "application/json", "answered ok: false"),
        ("error=bad_verification_code&error_description=The+code+is+wrong", FORM, "bad_verification_code: The code is wrong"),
        ("error=incorrect_client_credentials", "text/plain", "incorrect_client_credentials"),
    ],
)  # fmt: skip
def test_errors_in_an_http_200_answer_are_refusals(
    token_profile: Make, body: str, ctype: str, shown: str
) -> None:
    _answer(responses.mock, body, ctype)
    with pytest.raises(grants.GrantError) as caught:
        grants.fetch(token_profile())
    assert shown in str(caught.value) and "\n" not in str(caught.value)


BAD_VALUES = {
    "a line feed": "tok\nen-1",
    "a carriage return": "tok\ren-1",
    "CRLF at the end": "token-1\r\n",
    "NUL": "tok\x00en",
    "ESC": "tok\x1b[31men",
    "DEL": "tok\x7fen",
    "a C1 control": "tok\x85en",
    "non-Latin-1": "tok€en",
    "a trailing space": "token-1 ",
}


@responses.activate
@pytest.mark.parametrize("field", ["access_token", "token_type"])
@pytest.mark.parametrize("value", list(BAD_VALUES.values()), ids=list(BAD_VALUES))
def test_a_value_that_cannot_go_in_a_header_is_a_token_error(
    token_profile: Make, field: str, value: str
) -> None:
    body = {"access_token": "at-good-123", "token_type": "Bearer", field: value}
    responses.post(URL, json=body)
    with pytest.raises(grants.GrantError) as caught:
        grants.fetch(token_profile())
    message = str(caught.value)
    assert f"{field} that " in message and "cannot go in an HTTP header" in message
    assert value not in message and value.strip() not in message
    assert caught.value.exit_code == 6


@responses.activate
@pytest.mark.parametrize(
    "value",
    ["abc", -5, True, [], {}, "1e9", "9" * 5000, 10**11, "-1", "²"],
    ids=repr,
)
def test_garbage_expires_in_is_a_token_error(token_profile: Make, value: Any) -> None:
    responses.post(URL, json={"access_token": "at-ans-1", "expires_in": value})
    with pytest.raises(grants.GrantError, match="expires_in as .*, not seconds") as caught:
        grants.fetch(token_profile())
    assert len(str(caught.value)) < 300


@responses.activate
@pytest.mark.parametrize(
    "body",
    [
        '{"access_token": "at-ans-1", "expires_in": 1e400}',  # json reads inf
        '{"access_token": "at-ans-1", "expires_in": ' + "9" * 5000 + "}",  # over int's digit limit
        '{"access_token": "at-ans-1", "x": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"access_token": "at-ans-1", "expires_at": 1e400, "expires_in": 60}',  # Authlib int()s it
    ],
    ids=["inf", "5000 digits", "deep nesting", "expires_at inf"],
)
def test_answers_that_break_parsers_are_one_line_errors(token_profile: Make, body: str) -> None:
    _answer(responses.mock, body, "application/json")
    try:
        grants.fetch(token_profile())
    except grants.GrantError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 300


@responses.activate
def test_an_endless_answer_is_cut_off(token_profile: Make) -> None:
    big = '{"access_token": "at-ans-1", "pad": "' + "x" * (answer.MAX_ANSWER_BYTES + 10) + '"}'
    _answer(responses.mock, big, "application/json")
    with pytest.raises(grants.GrantError, match="answered more than 1024 KiB"):
        grants.fetch(token_profile())


@responses.activate
def test_hostile_error_text_cannot_drive_the_terminal(token_profile: Make) -> None:
    desc = "bad\x1b]0;owned\x07 \x1b[2J\u202eclient\r\nInjected: line"
    responses.post(
        URL, status=400, json={"error": "invalid\x1b[31m_client", "error_description": desc}
    )
    with pytest.raises(grants.GrantError) as caught:
        grants.fetch(token_profile())
    message = str(caught.value)
    assert "\x1b" not in message and "\r" not in message and "\n" not in message
    assert "\u202e" not in message and "Injected: line" in message


# -- Retry-After ---------------------------------------------------------------


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(grants, "sleep", slept.append)
    return slept


@responses.activate
@pytest.mark.parametrize("status", [429, 503])
def test_429_and_503_with_retry_after_are_asked_once_more(
    token_profile: Make, waits: list[float], status: int
) -> None:
    responses.post(URL, status=status, headers={"Retry-After": "2"}, body="slow down")
    responses.post(URL, json={"access_token": "at-after-wait", "expires_in": 60})
    got = grants.fetch(token_profile(timeout=5.0))
    assert got.access_token == "at-after-wait" and waits == [2.0]
    assert len(responses.calls) == 2


@responses.activate
def test_only_one_retry(token_profile: Make, waits: list[float]) -> None:
    for _ in range(3):
        responses.post(URL, status=429, headers={"Retry-After": "1"}, json={"error": "slow_down"})
    with pytest.raises(grants.GrantError) as caught:
        grants.fetch(token_profile(timeout=5.0))
    assert waits == [1.0] and len(responses.calls) == 2 and caught.value.transient


@responses.activate
@pytest.mark.parametrize("value", ["60", "9" * 5000, "Wed, 21 Oct 2099 07:28:00 GMT"])
def test_a_retry_after_beyond_the_timeout_fails_at_once(
    token_profile: Make, waits: list[float], value: str
) -> None:
    responses.post(URL, status=429, headers={"Retry-After": value}, body="")
    with pytest.raises(grants.GrantError) as caught:
        grants.fetch(token_profile(timeout=5.0))
    message = str(caught.value)
    assert waits == [] and len(responses.calls) == 1
    assert "asks to retry after" in message and "timeout (5 s)" in message
    assert caught.value.transient and caught.value.exit_code == 6 and len(message) < 400


@responses.activate
@pytest.mark.parametrize("value", ["²", "-1", "1e9", "soon", "\u0661\u0662", " "])
def test_a_retry_after_that_is_not_a_number_is_no_crash(
    token_profile: Make, waits: list[float], value: str
) -> None:
    responses.post(URL, status=503, headers={"Retry-After": value}, body="busy")
    with pytest.raises(grants.GrantError, match="HTTP 503") as caught:
        grants.fetch(token_profile(timeout=5.0))
    assert waits == [] and caught.value.transient


@responses.activate
def test_429_without_retry_after_is_not_retried(token_profile: Make, waits: list[float]) -> None:
    responses.post(URL, status=429, json={"error": "rate_limited"})
    with pytest.raises(grants.GrantError, match="rate_limited"):
        grants.fetch(token_profile())
    assert waits == [] and len(responses.calls) == 1


# -- what goes out ---------------------------------------------------------------


@responses.activate
def test_token_refresh_and_revocation_requests_say_who_sends_them(token_profile: Make) -> None:
    revocation = "https://login.test/oauth2/revoke"
    responses.post(URL, json={"access_token": "at-ans-1", "expires_in": 60})
    responses.post(revocation, body="")
    profile = token_profile(revocation_url=revocation)
    grants.fetch(profile)
    grants.refresh(profile, Secret("rt-1234567"))
    grants.revoke(profile, Secret("at-1234567"), "access_token")
    agents = {call.request.headers["User-Agent"] for call in responses.calls}
    assert agents == {f"oauthcli/{__version__}"}
    assert all(call.request.headers["Accept"] == "application/json" for call in responses.calls)


class Recording(Trace):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def request(self, prepared: requests.PreparedRequest, secret_headers: frozenset[str]) -> None:
        body = prepared.body if isinstance(prepared.body, str) else (prepared.body or b"").decode()
        auth = prepared.headers.get("Authorization", "")
        self.seen.append(
            f"> {prepared.method} {prepared.url} {auth} {body} {sorted(secret_headers)}"
        )

    def response(self, response: requests.Response) -> None:
        self.seen.append(f"< {response.status_code}")

    def note(self, text: str) -> None:
        self.seen.append(f"* {text}")


@responses.activate
def test_the_exchange_is_traced_with_its_final_headers_and_every_secret_is_known(
    token_profile: Make, waits: list[float]
) -> None:
    secret = "s3cr+et:/é"
    responses.post(URL, status=429, headers={"Retry-After": "1"}, body="")
    responses.post(URL, json={"access_token": "issued-at-98765", "refresh_token": "issued-rt-4321"})
    trace = Recording()
    grants.fetch(
        token_profile(grant_type="password", username="ann", password=Secret("pw-778899"),
                      client_secret=Secret(secret)),
        trace=trace,
    )  # fmt: skip
    kinds = [line[0] for line in trace.seen]
    assert kinds == [">", "<", "*", ">", "<"]
    assert "Basic " in trace.seen[0] and "['authorization', 'dpop']" in trace.seen[0]
    assert "Retry-After" in trace.seen[2]
    basic = trace.seen[0].split("Basic ")[1].split()[0]
    shown = scrub(" ".join(trace.seen))
    for value in (basic, "pw-778899", "issued-at-98765", "issued-rt-4321"):
        assert value not in shown


@responses.activate
def test_a_client_assertion_is_known_as_a_secret(token_profile: Make) -> None:
    responses.post(URL, json={"access_token": "at-ans-1", "expires_in": 60})
    grants.fetch(token_profile(client_auth="client_secret_jwt", client_secret=Secret("k" * 32)))
    body = body_text(responses.calls[0].request)
    assertion = dict(p.split("=", 1) for p in body.split("&"))["client_assertion"]
    assert assertion.count(".") == 2 and assertion not in scrub(f"echo: {assertion}")


@responses.activate
def test_a_jwt_bearer_assertion_is_masked_when_echoed(token_profile: Make) -> None:
    jwt_assertion = "eyJhbGciOi.eyJzdWIiOiJ1c2VyIn0.c2lnbmF0dXJl"
    responses.post(
        URL, status=400, json={"error": "invalid_grant", "error_description": jwt_assertion}
    )
    with pytest.raises(grants.GrantError) as caught:
        grants.fetch(token_profile(grant_type="jwt_bearer", assertion=Secret(jwt_assertion)))
    assert jwt_assertion not in scrub(str(caught.value))


def test_token_answer_repr_shows_no_token() -> None:
    got = answer.read({"access_token": "at-secret-1", "refresh_token": "rt-secret-2"})
    assert "secret" not in repr(got) and json.dumps(got.scope) == "null"


def test_any_answer_body_reads_or_is_refused_in_one_line() -> None:
    """Seeded fuzz: bodies built from the pieces providers and attackers send."""
    import random

    rng = random.Random(11)
    pieces = [
        '"access_token"', '"token_type"', '"expires_in"', '"scope"', '"refresh_token"',
        '"error"', '"ok"', ":", ",", "{", "}", "[", "]", '"', "\\n", "\\u0000", "\\ud800",
        "1e400", "-0", "9" * 40, "true", "null", '"a b"', '"\\r\\n"', "é", "€", "\x00",
        "=", "&", "%0A", "%E2%82%AC", "access_token=", "error=", " ",
    ]  # fmt: skip
    values: list[Any] = [
        "at-ans-1", "", " x", "x\r\n", "tok€", "\x85", "3600", "-1", "1e9", "²", 3600, -5, 1e300,
        float("nan"), True, None, [], ["a", 1, "b c"], {"a": 1}, "a,b", "9" * 5000, "N_A",
    ]  # fmt: skip
    names = ["access_token", "token_type", "expires_in", "scope", "refresh_token",
             "refresh_expires_in", "error", "ok"]  # fmt: skip
    bodies = []
    for _ in range(1500):
        doc = {rng.choice(names): rng.choice(values) for _ in range(rng.randint(0, 6))}
        if rng.random() < 0.7:
            doc["access_token"] = rng.choice(values)
        bodies.append(json.dumps(doc))
    for _ in range(1500):
        bodies.append("".join(rng.choice(pieces) for _ in range(rng.randint(0, 14))))
    read = 0
    for text in bodies:
        ctype = rng.choice([None, "application/json", "text/plain", FORM, "text/html"])
        data = answer.decode(text.encode("utf-8", "surrogatepass"), ctype)
        if data is None:
            continue
        try:
            got = answer.read(data)
        except answer.UnusableAnswer as exc:
            assert "\n" not in str(exc) and len(str(exc)) < 300
            continue
        read += 1
        for value in (got.access_token, got.token_type):
            assert value and value == value.strip()
            assert all(0x20 <= ord(c) <= 0x7E or 0xA0 <= ord(c) <= 0xFF for c in value)
        assert got.expires_in is None or 0 <= got.expires_in <= 10**10
        assert got.scope is None or (got.scope == got.scope.strip() and "," not in got.scope)
    assert read > 50  # the fuzz reached answers that are used
