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
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from oauthcli.resolved import ResolvedAuth
    from oauthcli.sending import Result

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


def api_message(body: bytes, content_type: str | None) -> str | None:
    """The API's own explanation from the common error shapes, on one line."""
    text = body[:65536].decode("utf-8", "replace").strip()
    if not text:
        return None
    if text[0] in "{[" or "json" in (content_type or ""):
        try:
            found = _message_in(json.loads(text))
        except (ValueError, RecursionError):
            pass  # not JSON after all: read it as text
        else:
            return _one_line(found) if found else None
    if text.startswith("<"):
        match = re.search(r"<(title|h1)[^>]*>(.*?)</\1>", text, re.I | re.S)
        return _one_line(re.sub(r"<[^>]+>", "", match.group(2))) if match else None
    return _one_line(text.splitlines()[0])


def _message_in(doc: Any) -> str | None:
    if isinstance(doc, list):
        return _message_in(doc[0]) if doc else None
    if not isinstance(doc, dict):
        return doc if isinstance(doc, str) else None
    error = doc.get("error")
    if isinstance(error, dict):
        inner = _first_str(error, "message", "description", "detail", "title")
        if inner:
            code = error.get("code")
            return f"{code}: {inner}" if isinstance(code, str) and code not in inner else inner
    description = _first_str(doc, "error_description")
    if isinstance(error, str):
        return f"{error}: {description}" if description else error
    if description:
        return description
    message = _first_str(doc, "message")
    if message:
        return message
    detail = doc.get("detail")
    title = _first_str(doc, "title")
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


def _first_str(doc: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        value = doc.get(key)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _one_line(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def failure_lines(result: Result, now: float | None = None) -> list[str]:
    """What to print for a 4xx/5xx: the status and message, then the explanation."""
    now = time.time() if now is None else now
    req = result.request
    head = f"{result.status} {result.reason} from {result.http_method} {result.url}"
    message = api_message(result.body, result.headers.get("Content-Type"))
    lines = [f"{head}: {message}" if message else head]
    challenge = parse_www_authenticate(result.headers.get("WWW-Authenticate"))
    if challenge.get("error"):
        said = challenge["error"]
        if challenge.get("error_description"):
            said += f": {challenge['error_description']}"
        lines.append(f"  WWW-Authenticate says {said}")
    if result.status == 401:
        lines += _unauthorized(result, challenge, now)
    elif challenge.get("error") == "insufficient_scope":
        lines += _insufficient_scope(result, challenge, now)
    elif result.status == 403 and req.auth.type == "oauth2":
        lines += _token_lines(result, challenge, now)
        lines.append(
            f"  the API knows who you are but refuses: check the client's roles or permissions "
            f"at the authorization server, and scope in profile {_profile_ref(req.auth)}"
        )
    return lines


def _unauthorized(result: Result, challenge: dict[str, str], now: float) -> list[str]:
    auth = result.request.auth
    if not result.credentials_sent:
        if result.redirected_from_origin:
            return [
                f"  the 401 came from {_origin(result.url)} after a redirect: credentials are "
                "never sent to another origin (scheme, host or port)"
            ]
        if auth.type == "none":
            return ["  the message sends no credentials (auth: {type: none})"]
        return ["  the credentials sent came from -H (or the message's headers), not from its auth"]
    if auth.type == "basic":
        return [
            f"  the API refused username '{auth.username}' and its password: check auth in the message"
        ]
    if auth.type == "bearer":
        return ["  the API refused the bearer token configured in the message's auth"]
    if auth.type == "api_key":
        return [f"  the API refused the key sent in header {auth.header}"]
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


def _insufficient_scope(result: Result, challenge: dict[str, str], now: float) -> list[str]:
    auth = result.request.auth
    lines = _token_lines(result, challenge, now) if auth.type == "oauth2" else []
    needed = challenge.get("scope")
    hint = f" (the API asks for: {needed})" if needed else ""
    where = f"scope in profile {_profile_ref(auth)}" if auth.type == "oauth2" else "the credentials"
    lines.append(f"  the token lacks a scope this call needs{hint}: check {where}")
    return lines


def _token_lines(result: Result, challenge: dict[str, str], now: float) -> list[str]:
    """The token's identity, audience, scope and expiry, and what disagrees with the call."""
    token = result.token
    if token is None:
        return []
    claims = jwt_claims(token.access_token.reveal()) or {}
    facts: list[str] = []
    for label, key in (("issuer", "iss"), ("subject", "sub"), ("client", "client_id")):
        if isinstance(claims.get(key), str):
            facts.append(f"{label} {claims[key]}")
    auds = _as_list(claims.get("aud"))
    if auds:
        facts.append(f"aud {' '.join(auds)}")
    scopes = _as_list(claims.get("scope")) or _as_list(claims.get("scp"))
    if not scopes and token.scope:
        scopes = token.scope.split()
    roles = _as_list(claims.get("roles"))
    scope_known = bool(scopes) or "scope" in claims or "scp" in claims or token.scope is not None
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
    lines = [f"  token ({kind}, {token.token_type}): {', '.join(facts)}"]

    host = urlsplit(result.url).netloc
    if auds and not any(_aud_matches(a, result.url) for a in auds):
        lines.append(f"  - the token's aud is {' '.join(auds)} but you are calling host {host}")
    needed = challenge.get("scope", "").split()
    if needed and scope_known:
        missing = [s for s in needed if s not in scopes]
        for scope in missing:
            lines.append(f"  - scope {scope} is not in the token")
    profile = result.request.auth.profile
    if profile is not None and profile.scope and scopes:
        asked = [s for s in " ".join(profile.scope).split() if s not in scopes]
        if asked:
            lines.append(f"  - the profile asks for scope {' '.join(asked)} but it was not granted")
    if exp is not None and exp < now:
        lines.append(f"  - token expired {_span(now - exp)} ago: check the clock")
    nbf = claims.get("nbf", claims.get("iat"))
    if isinstance(nbf, (int, float)) and nbf > now + 5:
        lines.append(
            f"  - token is not valid for another {_span(nbf - now)}: check this machine's clock"
        )
    if challenge.get("error") == "invalid_token" and exp is not None and exp > now:
        if "expir" in challenge.get("error_description", "").lower():
            lines.append(
                f"  - the API says expired, but by this machine's clock it has {_span(exp - now)} "
                "left: check the clock"
            )
    return lines


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


def _profile_ref(auth: ResolvedAuth) -> str:
    if auth.profile is None:
        return "(none)"
    return f"{auth.profile.name} ({auth.profile.source.name})"
