"""Explanations of refusals: the API's own message, WWW-Authenticate, the token's claims."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from typing import Any

import pytest
from requests.structures import CaseInsensitiveDict

from oauthcli.auth import ApiKeyAuth, Auth, BasicAuth, OAuth2Auth
from oauthcli.present.explain import api_message, failure_lines, jwt_claims, parse_www_authenticate
from oauthcli.secret import Secret
from oauthcli.tokens import Token
from oauthcli.transport.sending import Result
from tests.test_sending import OAUTH2, PROFILE, request

NOW = 1_800_000_000.0


def jwt(claims: dict[str, Any]) -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


def result(
    status: int,
    *,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    token: str | None = None,
    url: str = "https://api.acme.test/incidents",
    auth: Auth = OAUTH2,
    renewed: bool = True,
    scope: str | None = None,
) -> Result:
    tok = Token(Secret(token), "Bearer", NOW + 60, scope, None, None, NOW) if token else None
    return Result(
        request=request(url, auth=auth),
        status=status,
        reason={401: "Unauthorized", 403: "Forbidden", 404: "Not Found"}.get(status, "Error"),
        url=url,
        http_method="GET",
        headers=CaseInsensitiveDict(headers or {}),
        body=body,
        elapsed_ms=5,
        attempts=2,
        token=tok,
        token_renewed=renewed,
        credentials_sent=True,
    )


def test_jwt_claims_without_verification() -> None:
    assert jwt_claims(jwt({"aud": "x", "n": 1})) == {"aud": "x", "n": 1}
    assert jwt_claims("opaque-token") is None
    assert jwt_claims("a.b.c") is None
    assert jwt_claims("a." + base64.urlsafe_b64encode(b"[1]").decode() + ".c") is None


def test_www_authenticate_parameters() -> None:
    value = 'Bearer realm="api", error="invalid_token", error_description="bad \\"aud\\", sorry"'
    assert parse_www_authenticate(value) == {
        "realm": "api",
        "error": "invalid_token",
        "error_description": 'bad "aud", sorry',
    }
    assert parse_www_authenticate("Bearer scope=api.write") == {"scope": "api.write"}
    assert parse_www_authenticate(None) == {}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"error": {"code": "E42", "message": "quota used up"}}, "E42: quota used up"),
        (
            {"error": "invalid_request", "error_description": "sys_id is bad"},
            "invalid_request: sys_id is bad",
        ),
        ({"error_description": "only a description"}, "only a description"),
        ({"message": "Incident not found"}, "Incident not found"),
        (
            {"title": "Bad Request", "detail": "urgency must be 1-3"},
            "Bad Request: urgency must be 1-3",
        ),
        ({"detail": [{"loc": ["body"], "msg": "field required"}]}, "field required"),
        ({"errors": ["first problem", "second"]}, "first problem"),
        ({"errors": [{"message": "Name taken"}]}, "Name taken"),
        ({"title": "Gone"}, "Gone"),
        ({"status": "nothing useful"}, None),
    ],
)
def test_api_message_shapes(body: dict[str, Any], expected: str | None) -> None:
    assert api_message(json.dumps(body).encode(), "application/json") == expected


def test_api_message_text_and_html() -> None:
    assert api_message(b"Service down for maintenance\nsecond line", "text/plain") == (
        "Service down for maintenance"
    )
    # An HTML page's <title> restates the status at best: no reason is read from it.
    html = b"<html><head><title>502 Bad Gateway</title></head><body>x</body></html>"
    assert api_message(html, "text/html", 502) == "the API answered an HTML page"
    assert api_message(b"", None) is None
    assert len(api_message(b"x" * 5000, "text/plain") or "") <= 400


def test_401_explains_audience_scope_and_expiry() -> None:
    token = jwt(
        {
            "iss": "https://login.acme.test",
            "sub": "app",
            "aud": "https://api.other.test",
            "scope": "api.read",
            "exp": NOW - 180,
        }
    )
    challenge = 'Bearer error="invalid_token", error_description="jwt expired", scope="api.write"'
    lines = failure_lines(
        result(401, headers={"WWW-Authenticate": challenge}, token=token), now=NOW
    )
    text = "\n".join(lines)
    assert lines[0] == "401 Unauthorized from GET https://api.acme.test/incidents"
    assert "WWW-Authenticate says invalid_token: jwt expired" in text
    assert "dropped and a new one obtained" in text
    assert "issuer https://login.acme.test" in text and "aud https://api.other.test" in text
    assert (
        "the token's aud is https://api.other.test but you are calling host api.acme.test" in text
    )
    assert "scope api.write is not in the token" in text
    assert "token expired 3 min ago: check the clock" in text
    assert "check profile acme (acme.yaml): audience/resource" in text
    assert token not in text


def test_401_matching_audience_and_opaque_token() -> None:
    token = jwt({"aud": ["https://api.acme.test"], "scp": ["api.read"], "exp": NOW + 600})
    text = "\n".join(failure_lines(result(401, token=token, renewed=False), now=NOW))
    assert "aud is" not in text and "expires in 10 min" in text
    assert "just obtained" in text
    opaque = "\n".join(failure_lines(result(401, token="opaque-abcdef", scope="api.read"), now=NOW))
    assert "token (opaque, Bearer)" in opaque and "scope api.read" in opaque
    unknown = "\n".join(failure_lines(result(403, token="opaque-abcdef"), now=NOW))
    assert "scope not stated" in unknown


def test_profile_scope_not_granted() -> None:
    req = request(
        "https://api.acme.test/x",
        auth=OAuth2Auth(replace(PROFILE, scope=("api.read", "api.write"))),
    )
    res = replace(result(401, token=jwt({"scope": "api.read"})), request=req)
    assert "the profile asks for scope api.write but it was not granted" in "\n".join(
        failure_lines(res, now=NOW)
    )


def test_insufficient_scope_has_its_own_explanation() -> None:
    challenge = 'Bearer error="insufficient_scope", scope="incidents.admin"'
    lines = failure_lines(
        result(
            403,
            headers={"WWW-Authenticate": challenge, "Content-Type": "application/json"},
            body=b'{"message": "admin only"}',
            token=jwt({"scope": "api.read", "sub": "app"}),
        ),
        now=NOW,
    )
    assert lines[0].endswith(": admin only")
    text = "\n".join(lines)
    assert "scope incidents.admin is not in the token" in text
    assert "lacks a scope this call needs (the API asks for: incidents.admin)" in text


def test_403_shows_identity() -> None:
    text = "\n".join(
        failure_lines(result(403, token=jwt({"sub": "svc-1", "scope": "a b"})), now=NOW)
    )
    assert "subject svc-1" in text and "scope a b" in text and "roles or permissions" in text


def test_401_for_other_auth_types() -> None:
    basic = BasicAuth("alice", Secret("pw-123456"))
    assert "username 'alice'" in "\n".join(failure_lines(result(401, auth=basic), now=NOW))
    key = ApiKeyAuth("X-Key", Secret("k-123456"))
    assert "header X-Key" in "\n".join(failure_lines(result(401, auth=key), now=NOW))
    moved = replace(result(401), credentials_sent=False, redirected_from_origin=True)
    assert "never sent to another origin" in "\n".join(failure_lines(moved, now=NOW))


def test_5xx_shows_the_message_only() -> None:
    res = result(
        503, body=b'{"detail": "maintenance"}', headers={"Content-Type": "application/json"}
    )
    assert failure_lines(res, now=NOW) == [
        "503 Error from GET https://api.acme.test/incidents: maintenance"
    ]


def test_lines_never_hold_the_token() -> None:
    token = jwt({"aud": "x", "scope": "s", "exp": time.time()})
    res = result(401, token=token, headers={"WWW-Authenticate": "Bearer"})
    assert all(token not in line for line in failure_lines(res))


# -- reasons in the shapes real APIs send ----------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (  # Django REST framework
            403,
            {
                "detail": "You do not have permission to perform this action.",
                "required_scopes": ["write"],
            },
            "You do not have permission to perform this action.",
        ),
        (  # Okta
            403,
            {
                "errorCode": "E0000006",
                "errorSummary": "You do not have permission to perform the requested action",
                "errorLink": "E0000006",
                "errorId": "oae1",
                "errorCauses": [{"errorSummary": "missing okta.users.read"}],
            },
            "E0000006: You do not have permission to perform the requested action"
            " (missing okta.users.read)",
        ),
        (  # RFC 9457 problem+json: a title that is the status phrase says nothing more
            403,
            {
                "type": "about:blank",
                "title": "Forbidden",
                "status": 403,
                "detail": "not your tenant",
            },
            "not your tenant",
        ),
        (403, {"title": "Tenant locked", "detail": "ask an admin"}, "Tenant locked: ask an admin"),
        (  # ServiceNow
            403,
            {
                "error": {"message": "Insufficient rights", "detail": "ACL rejected the read"},
                "status": "failure",
            },
            "Insufficient rights: ACL rejected the read",
        ),
        (  # Microsoft Graph / Azure
            403,
            {
                "error": {
                    "code": "Authorization_RequestDenied",
                    "message": "Insufficient privileges",
                }
            },
            "Authorization_RequestDenied: Insufficient privileges",
        ),
        (  # Spring Boot: "error" restates the status, "message" says why
            403,
            {"status": 403, "error": "Forbidden", "message": "Access Denied", "path": "/x"},
            "Access Denied",
        ),
        (401, {"ok": False, "error": "not_authed"}, "not_authed"),
    ],
)
def test_api_message_in_real_shapes(status: int, body: dict[str, Any], expected: str) -> None:
    assert api_message(json.dumps(body).encode(), "application/json", status) == expected


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (
            b"<html><head><title>403 Forbidden</title></head><body><center><h1>403 Forbidden"
            b"</h1></center><hr><center>nginx</center></body></html>",
            "the API answered an HTML page",
        ),
        (
            b"<!DOCTYPE html><html><head><title>Error 403</title><style>p{x}</style>"
            b"<script>var p='<p>no</p>'</script></head><body><h1>Forbidden</h1>"
            b"<p>Your IP 10.1.2.3 is not on the &quot;allow&quot; list.</p></body></html>",
            'the API answered an HTML page: Your IP 10.1.2.3 is not on the "allow" list.',
        ),
        (b"<html><body><p>  </p><p>403</p></body></html>", "the API answered an HTML page"),
    ],
)
def test_an_html_page_title_is_not_a_reason(page: bytes, expected: str) -> None:
    assert api_message(page, "text/html; charset=utf-8", 403) == expected


def test_plain_text_that_restates_the_status_is_no_reason() -> None:
    assert api_message(b"Forbidden", "text/plain", 403) is None
    assert api_message(b"403 Forbidden\n", "text/plain", 403) is None
    assert api_message(b"Forbidden: tenant locked", "text/plain", 403) == "Forbidden: tenant locked"


def _drf_403(token: str | None, scope: str | None = None) -> Result:
    body = {
        "detail": "You do not have permission to perform this action.",
        "required_scopes": ["write"],
    }
    return result(
        403,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        token=token,
        scope=scope,
    )


def test_drf_required_scopes_are_compared_with_the_token() -> None:
    lines = failure_lines(_drf_403(jwt({"scope": "read", "sub": "app"})), now=NOW)
    assert lines[0].endswith(": You do not have permission to perform this action.")
    text = "\n".join(lines)
    assert "the API says this call requires scope write" in text
    assert "scope write is not in the token" in text
    assert "lacks a scope this call needs (the API asks for: write)" in text


def test_drf_required_scopes_the_token_has_point_elsewhere() -> None:
    text = "\n".join(failure_lines(_drf_403("opaque-abcdef", scope="read write"), now=NOW))
    assert "requires scope write" in text and "not in the token" not in text
    assert "roles or permissions" in text


def test_401_insufficient_scope_is_explained_as_a_scope_problem() -> None:
    challenge = 'Bearer error="insufficient_scope", scope="incidents.write"'
    lines = failure_lines(
        result(401, headers={"WWW-Authenticate": challenge}, token=jwt({"scope": "api.read"})),
        now=NOW,
    )
    text = "\n".join(lines)
    assert "WWW-Authenticate says insufficient_scope" in text
    assert "scope incidents.write is not in the token" in text
    assert "lacks a scope this call needs (the API asks for: incidents.write)" in text
    assert "audience/resource" not in text  # not the refused-token advice


def test_hostile_bodies_give_one_bounded_line() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    assert api_message(deep, "application/json", 403) is None
    huge = json.dumps({"message": "x\n" * 100_000}).encode()
    said = api_message(huge, "application/json", 403) or ""
    assert "\n" not in said and len(said) <= 400
    scopes = {"required_scopes": ["ok", "bad scope", 'q"x', {"a": 1}, "z" * 300]}
    res = result(
        403, body=json.dumps(scopes).encode(), headers={"Content-Type": "application/json"}
    )
    assert "requires scope ok\n" in "\n".join(failure_lines(res, now=NOW)) + "\n"
