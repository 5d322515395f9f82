"""Why the API refused a call, in words: its own message, the token's claims, what to check.

Everything here is secret-free by construction: the token's payload is decoded
(base64 and JSON, no signature check, no JWT library) only to read audience,
scope, issuer and expiry; the token itself is never part of a line.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from oauthcli.auth.oauth2 import OAuth2Auth

if TYPE_CHECKING:
    from oauthcli.auth.base import Auth
    from oauthcli.request.resolved import ResolvedProfile
    from oauthcli.tokens.model import Token
    from oauthcli.transport.sending import Result

_PARAM = re.compile(r'([A-Za-z0-9_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)')
_MAX_MESSAGE = 400


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a compact JWS, unverified; None when ``token`` is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        return None
    return claims if isinstance(claims, dict) else None


def parse_www_authenticate(value: str | None) -> dict[str, str]:
    """``Bearer error="invalid_token", error_description="…"`` → its parameters."""
    if not value:
        return {}
    params: dict[str, str] = {}
    for name, raw in _PARAM.findall(value):
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        params.setdefault(name.lower(), raw)
    return params


def api_message(body: bytes, content_type: str | None, status: int | None = None) -> str | None:
    """The API's own explanation from the common error shapes, on one line; text that
    only restates ``status`` ("403 Forbidden") is no explanation."""
    return api_reason(body, content_type, status).message


@dataclass(frozen=True)
class ApiReason:
    """What a refusal's body says: its message, and the scopes it asks for (DRF's
    ``required_scopes``, a body's ``scope`` beside ``insufficient_scope``)."""

    message: str | None = None
    required_scopes: tuple[str, ...] = ()


def api_reason(body: bytes, content_type: str | None, status: int | None = None) -> ApiReason:
    text = body[:65536].decode("utf-8", "replace").strip()
    if not text:
        return ApiReason()
    media = (content_type or "").split(";")[0].strip().lower()
    if text[0] in "{[" or "json" in media:
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            pass  # not JSON after all (or cut at 64 KiB): read it as text
        else:
            try:
                found = _message_in(doc, status)
                scopes = _required_scopes(doc)
            except RecursionError:
                return ApiReason()
            return ApiReason(_one_line(found) if found else None, scopes)
    if "html" in media or _HTML_START.match(text):
        return ApiReason(_html_reason(text, status))
    line = _one_line(text.splitlines()[0])
    return ApiReason(None if _restates_status(line, status) else line)


_HTML_START = re.compile(r"<(!doctype\s+html|html|head|body|\?xml[^>]*>\s*<html)", re.I)
_HTML_DROP = re.compile(r"<(script|style|head|noscript)\b.*?</\1\s*>|<!--.*?-->", re.I | re.S)
_HTML_TEXT = re.compile(r"<(h1|h2|p)\b[^>]*>(.*?)</\1\s*>", re.I | re.S)
_HTML_PAGE = "the API answered an HTML page"


def _html_reason(text: str, status: int | None) -> str:
    """An HTML error page: its <title> restates the status at best, so no reason is read
    from it; the first heading or paragraph that says more than the status is."""
    import html

    page = _HTML_DROP.sub(" ", text)
    for match in _HTML_TEXT.finditer(page):
        said = _one_line(html.unescape(re.sub(r"<[^>]+>", " ", match.group(2))))
        if len(said) >= 3 and not _restates_status(said, status):
            return f"{_HTML_PAGE}: {said}"
    return _HTML_PAGE


def _restates_status(text: str, status: int | None) -> bool:
    """``text`` says no more than the status line does: "403", "Forbidden", "Error 403 -
    Forbidden", "HTTP 403 Forbidden"."""
    if status is None:
        return False
    from http import HTTPStatus

    words = re.sub(r"[^a-z0-9]+", " ", text.lower()).split()
    try:
        phrase = HTTPStatus(status).phrase.lower().split()
    except ValueError:
        phrase = []
    rest = [w for w in words if w not in ("http", "error", "status", "code", str(status))]
    return not rest or rest == phrase or rest == [w for w in phrase if w != "error"]


def _message_in(doc: Any, status: int | None = None) -> str | None:
    if isinstance(doc, list):
        return _message_in(doc[0], status) if doc else None
    if not isinstance(doc, dict):
        return doc if isinstance(doc, str) else None
    error = doc.get("error")
    if isinstance(error, dict):  # Graph/Azure {code, message}, ServiceNow {message, detail}
        inner = _first_str(error, "message", "description", "detail", "title")
        if inner:
            detail = _first_str(error, "detail")
            if detail and detail != inner and detail not in inner:
                inner = f"{inner}: {detail}"
            code = error.get("code")
            return f"{code}: {inner}" if isinstance(code, str) and code not in inner else inner
    summary = _first_str(doc, "errorSummary")  # Okta
    if summary:
        causes = doc.get("errorCauses")
        said = [
            c["errorSummary"]
            for c in (causes if isinstance(causes, list) else [])
            if isinstance(c, dict)
            and isinstance(c.get("errorSummary"), str)
            and c["errorSummary"].strip()
            and c["errorSummary"] != summary
        ]
        code = doc.get("errorCode")
        head = f"{code}: {summary}" if isinstance(code, str) and code.strip() else summary
        return f"{head} ({'; '.join(said)})" if said else head
    description = _first_str(doc, "error_description")
    message = _first_str(doc, "message")
    if isinstance(error, str) and error.strip():
        if description:
            return f"{error}: {description}"
        if message and _restates_status(error, status):
            return message  # Spring's {"error": "Forbidden", "message": "Access Denied"}
        return error
    if description:
        return description
    if message:
        return message
    detail = doc.get("detail")
    title = _first_str(doc, "title")
    if title and _restates_status(title, status):
        title = None  # problem+json's title is often just the status phrase
    if isinstance(detail, str) and detail:
        return f"{title}: {detail}" if title and title not in detail else detail
    if isinstance(detail, list) and detail:
        first = detail[0]
        return _first_str(first, "msg", "message") if isinstance(first, dict) else str(first)
    errors = doc.get("errors")
    if isinstance(errors, list) and errors:
        first = errors[0]
        if isinstance(first, str):
            return first
        if isinstance(first, dict):
            return _first_str(first, "message", "detail", "title", "msg")
    return title


_SCOPE_KEYS = ("required_scopes", "requiredScopes", "required_scope", "missing_scopes")


def _required_scopes(doc: Any) -> tuple[str, ...]:
    if not isinstance(doc, dict):
        return ()
    for key in _SCOPE_KEYS:
        if key in doc:
            return tuple(s for s in _as_list(doc[key]) if _SCOPE_TOKEN.fullmatch(s))
    error = doc.get("error")
    if error == "insufficient_scope" and "scope" in doc:
        return tuple(s for s in _as_list(doc["scope"]) if _SCOPE_TOKEN.fullmatch(s))
    return ()


# RFC 6749 §3.3 scope-token: printable ASCII but space, " and \ (and bounded here).
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,200}")


def _first_str(doc: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _one_line(text: str) -> str:
    from oauthcli.secret import scrub_spread

    # Scrubbed before it is cut: half a secret is no longer one that scrub recognises.
    text = " ".join(scrub_spread(" ".join(text.split())[: 1 << 16]).split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _cut(text: str | None, limit: int = 300) -> str:
    """A URL or reason phrase fit for one line: a 1 MiB URL (a huge path variable that the
    server answered 414 to) is not repeated in full on the error line (-v shows it)."""
    from oauthcli.secret import scrub

    text = text or ""
    # Scrubbed before it is cut: half a secret is no longer one that scrub recognises.
    return text if len(text) <= limit else scrub(text)[: limit - 1] + "…"


def failure_lines(result: Result, now: float | None = None) -> list[str]:
    """What to print for a 4xx/5xx: the status and message, then the explanation."""
    now = time.time() if now is None else now
    req = result.request
    head = f"{result.status} {_cut(result.reason)} from {result.http_method} {_cut(result.url)}"
    reason = api_reason(result.body, result.headers.get("Content-Type"), result.status)
    message = reason.message
    lines = [f"{head}: {message}" if message else head]
    challenge = parse_www_authenticate(result.headers.get("WWW-Authenticate"))
    if challenge.get("error"):
        said = challenge["error"]
        if challenge.get("error_description"):
            said += f": {challenge['error_description']}"
        lines.append(f"  WWW-Authenticate says {_one_line(said)}")
    needed = _needed_scopes(challenge, reason)
    if reason.required_scopes:
        lines.append(f"  the API says this call requires scope {' '.join(reason.required_scopes)}")
    insufficient = challenge.get("error") == "insufficient_scope"
    if result.status == 401 and not (insufficient and result.credentials_sent):
        lines += _unauthorized(result, challenge, now)
    elif insufficient or (result.status == 403 and needed and _lacks(result, needed)):
        lines += _insufficient_scope(result, needed, now)
    elif result.status == 403 and isinstance(req.auth, OAuth2Auth):
        lines += _token_lines(result, challenge, now, needed)
        lines.append(
            f"  the API knows who you are but refuses: check the client's roles or permissions "
            f"at the authorization server, and scope in profile {_profile_ref(req.auth)}"
        )
    return lines


def _needed_scopes(challenge: dict[str, str], reason: ApiReason) -> list[str]:
    needed = [s for s in challenge.get("scope", "").split() if _SCOPE_TOKEN.fullmatch(s)]
    return needed + [s for s in reason.required_scopes if s not in needed]


def _lacks(result: Result, needed: list[str]) -> bool:
    """Whether the token lacks one of ``needed`` (True when its scope is unknown)."""
    token = result.token
    if token is None:
        return True
    scopes, known = _token_scopes(token)
    return not known or any(s not in scopes for s in needed)


def _token_scopes(token: Any) -> tuple[list[str], bool]:
    """The token's scopes (its JWT's ``scope``/``scp``, else the token answer's), and
    whether its scope is known at all."""
    claims = jwt_claims(token.access_token.reveal()) or {}
    scopes = _as_list(claims.get("scope")) or _as_list(claims.get("scp"))
    if not scopes and token.scope:
        scopes = token.scope.split()
    known = bool(scopes) or "scope" in claims or "scp" in claims or token.scope is not None
    return scopes, known


def _unauthorized(result: Result, challenge: dict[str, str], now: float) -> list[str]:
    auth = result.request.auth
    if not result.credentials_sent:
        if result.redirected_from_origin:
            return [
                f"  the 401 came from {_origin(result.url)} after a redirect: credentials are "
                "never sent to another origin (scheme, host or port)"
            ]
        if auth.header is None:
            return [f"  the message sends no credentials (auth: {{type: {auth.type}}})"]
        return ["  the credentials sent came from -H (or the message's headers), not from its auth"]
    if challenge.get("error") == "use_dpop_nonce" and isinstance(auth, OAuth2Auth):
        return [
            "  the API asked for a new DPoP nonce again after oauthcli sent its proof with "
            "the nonce it gave (RFC 9449 §9): the API keeps changing its nonce; it is the "
            "server to fix, not the profile"
        ]
    refused = auth.refusal()
    if refused is not None or not isinstance(auth, OAuth2Auth):
        return [f"  {refused or 'the API refused the credentials sent'}"]
    lines = []
    if result.token_renewed:
        lines.append(
            "  the cached token was dropped and a new one obtained; it was refused as well"
        )
    else:
        lines.append("  the token was just obtained from the token endpoint and was refused")
    lines += _token_lines(result, challenge, now)
    lines.append(
        f"  check profile {_profile_ref(auth)}: audience/resource (the API must accept the "
        "token's aud), scope, client_auth, and that the API trusts this token_url's issuer"
    )
    return lines


def _insufficient_scope(result: Result, needed: list[str], now: float) -> list[str]:
    auth = result.request.auth
    oauth = isinstance(auth, OAuth2Auth)
    lines = _token_lines(result, {}, now, needed) if oauth else []
    hint = f" (the API asks for: {' '.join(needed)})" if needed else ""
    where = f"scope in profile {_profile_ref(auth)}" if oauth else "the credentials"
    lines.append(f"  the token lacks a scope this call needs{hint}: check {where}")
    return lines


def _token_lines(
    result: Result, challenge: dict[str, str], now: float, needed: list[str] | None = None
) -> list[str]:
    """The token's identity, audience, scope and expiry, and what disagrees with the call."""
    if result.token is None:
        return []
    auth = result.request.auth
    profile = auth.profile if isinstance(auth, OAuth2Auth) else None
    return token_lines(result.token, result.url, profile, now, challenge=challenge, needed=needed)


def token_lines(
    token: Token,
    url: str | None,
    profile: ResolvedProfile | None,
    now: float,
    *,
    challenge: Mapping[str, str] | None = None,
    needed: list[str] | None = None,
) -> list[str]:
    """:func:`token_findings` as the lines of an explanation."""
    found = token_findings(token, url, profile, now, challenge=challenge, needed=needed)
    return [f"  {found.summary}", *(f"  - {p}" for p in found.problems)]


@dataclass(frozen=True)
class TokenFindings:
    """What a token says of itself (``summary``: kind, type, issuer, aud, scope, expiry) and
    each way it disagrees with a call to ``url`` for ``profile`` (``problems``); ``missing``
    are the scopes asked for (by the API or the profile) that the token lacks."""

    summary: str
    problems: tuple[str, ...]
    missing: tuple[str, ...] = ()


def token_findings(
    token: Token,
    url: str | None,
    profile: ResolvedProfile | None,
    now: float,
    *,
    challenge: Mapping[str, str] | None = None,
    needed: list[str] | None = None,
) -> TokenFindings:
    """The token's claims against the call: its ``aud`` against the host of ``url`` (None:
    no call), the scopes ``needed`` (else the challenge's) and the profile's ``scope``
    against what was granted, its expiry and ``nbf``/``iat`` against this machine's clock.

    Shared by the 401/403 explanation and ``oauthcli doctor``; never holds the token itself.
    """
    challenge = challenge or {}
    claims = jwt_claims(token.access_token.reveal()) or {}
    facts: list[str] = []
    for label, key in (("issuer", "iss"), ("subject", "sub"), ("client", "client_id")):
        if isinstance(claims.get(key), str):
            facts.append(f"{label} {claims[key]}")
    auds = _as_list(claims.get("aud"))
    if auds:
        facts.append(f"aud {' '.join(auds)}")
    scopes, scope_known = _token_scopes(token)
    roles = _as_list(claims.get("roles"))
    if scopes:
        facts.append(f"scope {' '.join(scopes)}")
    else:
        facts.append("scope (none)" if scope_known else "scope not stated")
    if roles:
        facts.append(f"roles {' '.join(roles)}")
    exp = claims.get("exp") if isinstance(claims.get("exp"), (int, float)) else token.expires_at
    if exp is not None:
        left = exp - now
        facts.append(f"expires in {_span(left)}" if left >= 0 else f"expired {_span(-left)} ago")
    kind = "JWT" if claims else "opaque"
    summary = f"token ({kind}, {token.token_type}): {', '.join(facts)}"

    problems: list[str] = []
    missing: list[str] = []
    if url is not None and auds and not any(_aud_matches(a, url) for a in auds):
        host = urlsplit(url).netloc
        problems.append(f"the token's aud is {' '.join(auds)} but you are calling host {host}")
    if needed is None:
        needed = challenge.get("scope", "").split()
    if needed and scope_known:
        for scope in needed:
            if scope not in scopes:
                missing.append(scope)
                problems.append(f"scope {scope} is not in the token")
    if profile is not None and profile.scope and scopes:
        asked = [s for s in " ".join(profile.scope).split() if s not in scopes]
        if asked:
            missing += [s for s in asked if s not in missing]
            problems.append(f"the profile asks for scope {' '.join(asked)} but it was not granted")
    if exp is not None and exp < now:
        problems.append(f"token expired {_span(now - exp)} ago: check the clock")
    nbf = claims.get("nbf", claims.get("iat"))
    if isinstance(nbf, (int, float)) and nbf > now + 5:
        problems.append(
            f"token is not valid for another {_span(nbf - now)}: check this machine's clock"
        )
    if challenge.get("error") == "invalid_token" and exp is not None and exp > now:
        if "expir" in challenge.get("error_description", "").lower():
            problems.append(
                f"the API says expired, but by this machine's clock it has {_span(exp - now)} "
                "left: check the clock"
            )
    return TokenFindings(summary, tuple(problems), tuple(missing))


def _aud_matches(aud: str, url: str) -> bool:
    called = urlsplit(url)
    target = urlsplit(aud)
    if target.hostname:
        if target.hostname != called.hostname:
            return False
        return target.port is None or target.port == called.port
    # An identifier such as "api://orders" cannot be compared with a host: no verdict.
    return True


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _profile_ref(auth: Auth) -> str:
    if not isinstance(auth, OAuth2Auth):
        return "(none)"
    return f"{auth.profile.name} ({auth.profile.source.name})"
