"""Plain-text views of registry items for ``list`` and ``show``; secrets masked."""

from __future__ import annotations

import json
from typing import Any

from oauthcli.auth.base import Auth
from oauthcli.registry.declaration import PROFILE
from oauthcli.registry.models import Message, Profile
from oauthcli.request.resolved import ResolvedProfile, ResolvedRequest
from oauthcli.secret import MASK, Secret
from oauthcli.tokens.discovery import ENDPOINTS, known, origins


def profile_summary(profile: Profile) -> str:
    summary = f"{profile.grant_type}, {profile.client_auth}"
    return f"{summary} — {profile.description}" if profile.description else summary


def message_summary(message: Message) -> str:
    methods = ", ".join(f"{m.name} ({m.http_method})" for m in message.methods.values())
    return f"{message.description} — {methods}" if message.description else methods


def profile_lines(p: ResolvedProfile) -> list[str]:
    """Every declared profile key that is set, in declaration order (secrets masked)."""
    rows: list[tuple[str, Any]] = [("profile", p.name), ("file", p.source)]
    p = known(p)  # what the issuer's cached metadata says, if any: no network
    endpoints = endpoint_origins(p)
    for key in _SHOWN_PROFILE_KEYS:
        if key.only_if and not any(getattr(p, on) == want for on, want in key.only_if):
            continue  # a default of another grant_type or client_auth (subject_token_type)
        value: Any = p
        for part in key.name.split("."):
            value = getattr(value, part)
        if isinstance(value, tuple):
            value = " ".join(value) or None
        elif isinstance(value, dict):
            value = value or None
        elif value is False and key.default is False:
            value = None  # not set
        if key.name in ENDPOINTS:
            value = endpoints.get(key.name)
        rows.append((key.name, value))
    return _rows(rows)


def endpoint_origins(p: ResolvedProfile) -> dict[str, str]:
    """Each endpoint the profile has or discovers, with where it comes from:
    ``https://… (profile)``, ``(from issuer, discovered when used)``."""
    return {key: f"{url} ({where})" if url else f"({where})" for key, url, where in origins(p)}


def issuer_note(p: ResolvedProfile) -> str | None:
    """``validate``'s line for a profile with issuer: which endpoints it will discover."""
    if not p.issuer:
        return None
    waiting = [key for key, url, _ in origins(p) if url is None]
    given = [key for key, url, _ in origins(p) if url is not None]
    text = f"{p.source.parent.name}/{p.source.name}: issuer {p.issuer}: "
    text += f"{', '.join(waiting)} from issuer (discovered when used)" if waiting else ""
    text += "; " if waiting and given else ""
    text += f"{', '.join(given)} from the profile" if given else ""
    return text


_SHOWN_PROFILE_KEYS = tuple(k for k in PROFILE if k.kind != "mapping" and k.name != "name")


def auth_summary(auth: Auth) -> str:
    """One line for ``show``: the auth object's own summary, secrets masked."""
    return auth.summary()


def request_lines(req: ResolvedRequest) -> list[str]:
    rows: list[tuple[str, Any]] = [
        ("message", f"{req.message}.{req.method}"),
        ("file", req.source),
        ("request", f"{req.http_method} {req.full_url}"),
        ("auth", auth_summary(req.auth)),
    ]
    rows += [(f"header {k}", v) for k, v in req.headers.items()]
    if req.json is not None:
        rows.append(("json", json.dumps(req.json, ensure_ascii=False)))
    elif req.body is not None:
        rows.append(("body", req.body.decode("utf-8", "replace")))
    rows += [
        ("timeout", f"{req.timeout:g} s"),
        (
            "retry",
            f"{req.retry.attempts} attempt(s), backoff {req.retry.backoff:g} s, "
            f"on {', '.join(map(str, req.retry.on_status))}",
        ),
        ("tls.verify", req.tls.verify),
        ("log_level", _log_level(req)),
    ]
    needed = [f"{n} = {req.variables[n]!r}" for n in req.variables] + [
        f"{n} (missing: --var {n}=VALUE)" for n in req.missing
    ]
    rows.append(("variables", "; ".join(needed) if needed else "none"))
    return _rows(rows)


def _log_level(req: ResolvedRequest) -> str:
    """The outbound log's level of the call as the files declare it, and which one says
    so (``--log-level`` and ``$OAUTHCLI_LOG_LEVEL`` come on top: docs/outbound-log.md)."""
    if req.log_level is not None:
        return f"{req.log_level} (message)"
    profile = getattr(req.auth, "profile", None)  # an oauth2 message's profile
    if profile is not None and profile.log_level is not None:
        return f"{profile.log_level} (profile {profile.name})"
    return "basic (default)"


def _rows(rows: list[tuple[str, Any]]) -> list[str]:
    shown = [(k, v) for k, v in rows if v is not None]
    width = max(len(k) for k, _ in shown)
    return [f"{k + ':':<{width + 1}} {MASK if isinstance(v, Secret) else v}" for k, v in shown]
