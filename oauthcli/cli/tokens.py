"""``get-token`` and ``token list | clear | revoke``: the token cache from the command line.

Each function returns the exit code; failures are raised as
:class:`~oauthcli.errors.OAuthCliError` for the CLI's error boundary. Results
go to stdout (plain text unless stdout is a terminal), warnings to stderr.
Only ``--raw`` ever prints a token unmasked.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Any

from oauthcli.errors import ExitCode, OAuthCliError, UsageError
from oauthcli.present import console
from oauthcli.registry.discovery import Registry
from oauthcli.secret import mask_token
from oauthcli.tokens import Obtained, Token, backend, cache, jwtinfo

if TYPE_CHECKING:
    from oauthcli.request.resolved import ResolvedProfile


def get_token_command(
    registry: Registry,
    profile_name: str,
    *,
    force: bool,
    raw: bool,
    as_json: bool,
    verbose: bool = False,
    wait: bool = False,
    browser: bool = True,
    log_level: str | None = None,
) -> int:
    from oauthcli.outlog.calls import recorded
    from oauthcli.request.resolve import resolve_profile
    from oauthcli.tokens import obtain, signin

    if raw and as_json:
        raise UsageError("--raw and --json cannot be used together")
    profile = resolve_profile(registry.profile(profile_name), registry=registry)
    trace = None
    if verbose:
        from oauthcli.present.output import VerboseTrace

        trace = VerboseTrace()
    with (
        recorded("token", profile, log_level=log_level, trace=trace, warn=console.warn) as logged,
        signin.using(wait=wait, browser=browser),  # --wait, --no-browser
    ):
        if force and profile.issuer:  # --force asks the issuer for its metadata anew too
            from oauthcli.tokens import discovery

            profile = discovery.complete(profile, logged, force=True)
        obtained = obtain(profile, force=force, trace=logged)
    for note in obtained.warnings:
        console.warn(note)
    token = obtained.token
    profile = _known(profile)
    endpoints = _endpoints(profile)
    if raw:
        # The one place a token is printed whole, on purpose: for $(oauthcli get-token --raw p).
        sys.stdout.write(token.access_token.reveal() + "\n")
        return int(ExitCode.OK)
    now = time.time()
    if as_json:
        data = _as_json(profile.name, profile.token_url, obtained, now)
        data.update(grant_type=profile.grant_type, issuer=profile.issuer, endpoints=endpoints)
        data["binding"] = _binding(profile, token)
        console.out(json.dumps(data, indent=2))
        return int(ExitCode.OK)
    rows = [("grant", profile.grant_type)]
    rows += [(key, f"{e['url'] or '(none)'} ({e['from']})") for key, e in endpoints.items()]
    binding = _binding(profile, token)
    if binding is not None:
        rows.append(("binding", binding))
    for line in _lines(
        profile.name, profile.token_url or profile.token_server, obtained, now, rows
    ):
        console.out(line)
    return int(ExitCode.OK)


def _binding(profile: ResolvedProfile, token: Token) -> str | None:
    """What the token is bound to (DPoP ``cnf.jkt``) and whether it is the profile's key."""
    from oauthcli.tokens import dpop

    if not profile.dpop and not dpop.is_dpop(token) and "cnf" not in _claims(token):
        return None
    return dpop.binding(token, dpop.key_for(profile) if profile.dpop else None)


def _claims(token: Token) -> dict[str, Any]:
    decoded = jwtinfo.decode(token.access_token.reveal())
    return decoded[1] if decoded is not None else {}


def _known(profile: ResolvedProfile) -> ResolvedProfile:
    """The profile with what its issuer's cached metadata says (no network): for display."""
    if not profile.issuer:
        return profile
    from oauthcli.tokens import discovery

    return discovery.known(profile)


def _endpoints(profile: ResolvedProfile) -> dict[str, dict[str, str | None]]:
    """Each endpoint of the profile and where it came from (profile, issuer metadata)."""
    from oauthcli.tokens.discovery import origins

    return {key: {"url": url, "from": where} for key, url, where in origins(profile)}


def _headline(profile: str, token_url: str, obtained: Obtained, now: float) -> str:
    token = obtained.token
    if obtained.source == "cache":
        left = jwtinfo.duration((token.expires_at or now) - now)
        return f"Token for profile '{profile}' from the cache, valid for {left}"
    verb = "refreshed at" if obtained.source == "refresh" else "obtained from"
    return f"Token for profile '{profile}' {verb} {token_url}"


def _expiry(token: Token, now: float) -> str:
    if token.expires_at is None:
        return "unknown"
    return f"{jwtinfo.local_time(token.expires_at)} ({jwtinfo.relative(token.expires_at, now)})"


def _lines(
    profile: str,
    token_url: str,
    obtained: Obtained,
    now: float,
    endpoints: list[tuple[str, str]] | None = None,
) -> list[str]:
    token = obtained.token
    ok = console.style("OK", "green", sys.stdout)
    rows = [
        ("access token", mask_token(token.access_token.reveal())),
        ("type", token.token_type),
        ("expires", _expiry(token, now)),
        ("scope", token.scope or "(not stated by the server)"),
        ("refresh token", _refresh_text(token, now)),
        *(endpoints or []),  # the grant, and where each endpoint came from
    ]
    decoded = jwtinfo.decode(token.access_token.reveal())
    claim_rows: list[tuple[str, str]] = []
    if decoded is not None:
        header, claims = decoded
        rows.append(
            (
                "JWT header",
                " ".join(f"{k}={header[k]}" for k in ("alg", "kid", "typ") if k in header),
            )
        )
        shown, others = jwtinfo.ordered_claims(claims)
        claim_rows = [(c, jwtinfo.claim_text(c, claims[c], now)) for c in shown]
        if others:
            claim_rows.append(("others", ", ".join(others)))
    else:
        rows.append(("JWT", "no (opaque token)"))
    width = max(len(k) for k, _ in [*rows, *claim_rows]) + 2
    lines = [f"{ok} {_headline(profile, token_url, obtained, now)}"]
    lines += [f"  {k:<{width}}{v}" for k, v in rows]
    if claim_rows:
        lines.append("  JWT claims")
        lines += [f"    {k:<{width - 2}}{v}" for k, v in claim_rows]
    return lines


def _refresh_text(token: Token, now: float) -> str:
    if token.refresh_token is None:
        return "no"
    if token.refresh_expires_at is None:
        return "yes"
    return f"yes, usable until {jwtinfo.local_time(token.refresh_expires_at)}"


def _as_json(profile: str, token_url: str, obtained: Obtained, now: float) -> dict[str, Any]:
    token = obtained.token
    decoded = jwtinfo.decode(token.access_token.reveal())
    expires_at = token.expires_at
    return {
        "profile": profile,
        "token_url": token_url,
        "cached": obtained.source == "cache",
        "source": obtained.source,
        "access_token": mask_token(token.access_token.reveal()),
        "token_type": token.token_type,
        "expires_at": None if expires_at is None else jwtinfo.iso_time(expires_at),
        "expires_in": None if expires_at is None else int(expires_at - now),
        "scope": token.scope,
        "refresh_token": token.refresh_token is not None,
        "jwt": None if decoded is None else {"header": decoded[0], "claims": decoded[1]},
        "warnings": obtained.warnings,
    }


def _heed(store: backend.CacheBackend) -> None:
    for notice in store.notices():  # the shared cache gave way to the file cache
        console.warn(notice.text)


def token_list_command() -> int:
    now = time.time()
    rows: list[tuple[str, str, str, str, str]] = []
    store = backend.current()
    listed = list(store.entries())
    _heed(store)
    for _key, entry, problem in listed:
        if entry is None:
            # On a shared cache the likeliest cause is this machine's OAUTHCLI_CACHE_KEY, and
            # a plain 'token clear' would empty every machine's entries.
            fix = (
                "check OAUTHCLI_CACHE_KEY on this machine; 'oauthcli token clear PROFILE' "
                "removes one profile's entry from the shared cache"
                if store.shared
                else "'oauthcli token clear' removes it"
            )
            console.warn(f"{problem}; {fix}")
            continue
        t = entry.token
        expiry = _expiry(t, now)
        if t.expires_at is not None and t.expires_at <= now:
            expiry += " expired"
        refresh = "yes" if t.refresh_token is not None else "no"
        rows.append(
            (entry.profile, entry.token_url, mask_token(t.access_token.reveal()), expiry, refresh)
        )
    if not rows:
        console.err(f"no cached tokens in {store.where}")
        return int(ExitCode.OK)
    if store.shared:
        console.err(f"tokens in {store.where}, shared by every machine that uses it:")
    if console.color_enabled(sys.stdout):
        _print_table(rows, store.where)
        return int(ExitCode.OK)
    for profile, url, masked, expiry, refresh in rows:
        console.out(f"{profile}\t{url}\t{masked}\texpires {expiry}\trefresh: {refresh}")
    return int(ExitCode.OK)


def _print_table(rows: list[tuple[str, str, str, str, str]], where: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("profile", "token_url", "token", "expires", "refresh", title=where)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def token_clear_command(registry: Registry | None, profile_name: str | None) -> int:
    store = backend.current()
    # A shared cache is the fleet's; this machine's file cache keeps its DPoP-bound tokens
    # and what was cached while the shared one failed: both are cleared.
    local = backend.current(local=True)
    if profile_name is None:
        removed = store.clear()
        _heed(store)
        mine = local.clear() if store.shared else 0
        import oauthcli.tokens.discovery as discovery
        from oauthcli.registry import parsecache

        parsecache.clear()  # a reset of this machine's caches: parsed files, issuers
        discovery.clear()
        console.out(f"removed {removed} cached token(s) from {_whose(store, local, mine)}")
        return int(ExitCode.OK)
    also = None
    if registry is not None and registry.has("profiles", profile_name):
        try:
            from oauthcli.request.resolve import resolve_profile

            profile = resolve_profile(registry.profile(profile_name), registry=registry)
            also = cache.entry_key(profile)
        except OAuthCliError:
            pass  # an unresolvable profile can still have entries recorded under its name
    removed = store.clear(profile_name, also)
    _heed(store)
    mine = local.clear(profile_name, also) if store.shared else 0
    if removed + mine == 0 and registry is not None and not registry.has("profiles", profile_name):
        registry.profile(profile_name)  # raises "unknown profile", with suggestions
    where = f" from {_whose(store, local, mine)}" if store.shared else ""
    console.out(f"removed {removed} cached token(s) of profile '{profile_name}'{where}")
    return int(ExitCode.OK)


def _whose(store: backend.CacheBackend, local: backend.CacheBackend, mine: int) -> str:
    if not store.shared:
        return store.where
    return f"{store.where}, for every machine that uses it, and {mine} from {local.where}"


def token_revoke_command(
    registry: Registry, profile_name: str, *, log_level: str | None = None
) -> int:
    from oauthcli.outlog.calls import recorded
    from oauthcli.request.resolve import resolve_profile
    from oauthcli.tokens import service

    profile = resolve_profile(registry.profile(profile_name), registry=registry)
    with recorded("revoke", profile, log_level=log_level, trace=None, warn=console.warn) as logged:
        revoked, notes = service.revoke(profile, trace=logged)
    for note in notes:
        console.warn(note)
    if not revoked:
        console.out(f"no cached token for profile '{profile_name}'; nothing to revoke")
        return int(ExitCode.OK)
    console.out(
        f"revoked the {' and '.join(revoked)} of profile '{profile_name}' at "
        f"{_known(profile).revocation_url}; removed the cached entry"
    )
    return int(ExitCode.OK)
