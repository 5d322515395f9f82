"""When to use the cached token, refresh it or run the grant again (SPEC §3).

- A cached token is used until ``token_leeway`` seconds before it expires.
  This path takes no lock and imports nothing beyond the standard library.
- Then, under the entry's lock and after reading the entry again (another
  process may have renewed it meanwhile), the refresh token is used if one is
  held and not past ``refresh_token_lifespan``, else the grant runs again.
- ``invalid_grant`` on a refresh drops the refresh token and runs the grant.
- A transient failure (timeout, refused connection, 5xx, 429,
  ``temporarily_unavailable``) while the old token is still valid, i.e. inside
  the leeway window, returns the old token with a warning; past expiry it is
  an error.
- A token answered without ``expires_in`` is taken to live
  :data:`DEFAULT_LIFETIME` seconds (RFC 6749 leaves its lifetime unknown).
- Nothing is written to the cache when renewal fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from oauthcli.errors import RegistryError, TokenError
from oauthcli.secret import Secret
from oauthcli.tokens import Obtained, Token, cache

if TYPE_CHECKING:
    from oauthcli.resolved import ResolvedProfile
    from oauthcli.tokens.answer import TokenAnswer

#: Seconds a token without ``expires_in`` is assumed to stay valid.
DEFAULT_LIFETIME = 300
#: Seconds beyond which a stated lifetime is garbage (over 300 years; dates end in 9999).
MAX_LIFETIME = 10**10
#: Seconds a browser sign-in (authorization_code) may take while others wait.
INTERACTIVE_WAIT = 300

clock: Callable[[], float] = time.time


def obtain(profile: ResolvedProfile, *, force: bool = False) -> Obtained:
    started = clock()
    notes: list[str] = []
    path = cache.entry_path(cache.entry_key(profile))
    if not force:
        entry = _read(path, notes)
        if entry is not None and _fresh(entry.token, profile, clock()):
            return Obtained(entry.token, "cache", notes)
    return _renew(profile, path, force, started, notes)


def drop(profile: ResolvedProfile, token: Token) -> None:
    """Forget ``token`` if the entry still holds it; a refresh token in it is kept."""
    path = cache.entry_path(cache.entry_key(profile))
    if not _holds(path, token):
        return
    with _locked(profile, path):
        entry = _read(path, [])
        if entry is None or entry.token.access_token != token.access_token:
            return
        if entry.token.refresh_token is not None:
            expired = replace(entry.token, expires_at=0.0)
            cache.write(path, replace(entry, token=expired))
        else:
            cache.remove(path)


def revoke(profile: ResolvedProfile) -> tuple[list[str], list[str]]:
    """Revoke the cached tokens at revocation_url, then forget them; (what was revoked, notes)."""
    if not profile.revocation_url:
        raise RegistryError.at(
            profile.source, None, "revocation_url", "missing; token revoke needs it"
        )
    notes: list[str] = []
    path = cache.entry_path(cache.entry_key(profile))
    if _read(path, notes) is None:
        return [], notes
    from oauthcli.tokens import grants

    _tls_note(profile, notes)
    revoked: list[str] = []
    with _locked(profile, path):
        entry = _read(path, notes)
        if entry is None:
            return [], notes
        if entry.token.refresh_token is not None:
            grants.revoke(profile, entry.token.refresh_token, "refresh_token")
            revoked.append("refresh token")
            token = replace(entry.token, refresh_token=None, refresh_expires_at=None)
            cache.write(path, replace(entry, token=token))
        grants.revoke(profile, entry.token.access_token, "access_token")
        revoked.append("access token")
        cache.remove(path)
    return revoked, notes


def _tls_note(profile: ResolvedProfile, notes: list[str]) -> None:
    if not profile.tls.verify:
        notes.append(
            f"TLS certificate verification is off for the token endpoint of profile "
            f"'{profile.name}' (tls.verify: false)"
        )


def _holds(path: Path, token: Token) -> bool:
    entry = _read(path, [])
    return entry is not None and entry.token.access_token == token.access_token


def _read(path: Path, notes: list[str]) -> cache.Entry | None:
    try:
        return cache.read(path)
    except cache.CorruptEntry as exc:
        note = f"{exc}; discarded"
        if note not in notes:
            notes.append(note)
        return None


def _fresh(token: Token, profile: ResolvedProfile, now: float) -> bool:
    return token.expires_at is not None and now < token.expires_at - profile.token_leeway


def _valid(token: Token, now: float) -> bool:
    return token.expires_at is None or now < token.expires_at


def _lock_wait(profile: ResolvedProfile) -> float:
    if profile.grant_type == "authorization_code":
        return INTERACTIVE_WAIT + 30
    # The holder makes at most a refresh and a grant, each bounded by the timeout.
    return 2 * profile.timeout + 30


class _locked:
    """The entry's lock, with a readable error when it cannot be had in time."""

    def __init__(self, profile: ResolvedProfile, path: Path) -> None:
        self.profile = profile
        self.wait = _lock_wait(profile)
        try:
            self.lock = cache.lock(path, self.wait)
        except OSError as exc:
            raise _unusable(exc) from None

    def __enter__(self) -> None:
        from filelock import Timeout

        try:
            self.lock.acquire()
        except Timeout:
            raise TokenError(
                f"another oauthcli process has been renewing the token of profile "
                f"'{self.profile.name}' for over {self.wait:g} s (lock {self.lock.lock_file}); "
                "try again when it has finished"
            ) from None
        except OSError as exc:  # after Timeout, which is an OSError too
            raise _unusable(exc) from None

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


def _unusable(exc: OSError) -> TokenError:
    return TokenError(
        f"cannot use the token cache folder {cache.cache_dir()}: {exc.strerror or exc}; "
        "set OAUTHCLI_CACHE_DIR to a folder you can write"
    )


def _renew(
    profile: ResolvedProfile, path: Path, force: bool, started: float, notes: list[str]
) -> Obtained:
    with _locked(profile, path):
        entry = _read(path, notes)
        if entry is not None:
            token = entry.token
            # Renewed by another process while this one waited for the lock.
            if (force and token.obtained_at > started) or (
                not force and _fresh(token, profile, clock())
            ):
                return Obtained(token, "cache", notes)
        return _renew_locked(profile, path, entry, force, notes)


def _renew_locked(
    profile: ResolvedProfile, path: Path, entry: cache.Entry | None, force: bool, notes: list[str]
) -> Obtained:
    from oauthcli.tokens import grants

    _tls_note(profile, notes)
    old = entry.token if entry is not None else None
    refused: Secret | None = None
    if not force and old is not None and old.refresh_token is not None:
        if _refresh_usable(old, clock()):
            try:
                answer = grants.refresh(profile, old.refresh_token)
            except grants.GrantError as exc:
                if exc.error == "invalid_grant":
                    refused = old.refresh_token
                    old = replace(old, refresh_token=None, refresh_expires_at=None)
                    assert entry is not None
                    cache.write(path, replace(entry, token=old))
                    notes.append(
                        f"the refresh token of profile '{profile.name}' was refused "
                        "(invalid_grant); dropped it and ran the grant again"
                    )
                elif exc.transient and _valid(old, clock()):
                    return Obtained(old, "cache", [*notes, _still_valid(exc, old)])
                else:
                    raise
            else:
                return Obtained(_store(profile, path, answer, old), "refresh", notes)
    if (
        profile.grant_type == "refresh_token"
        and refused is not None
        and profile.refresh_token == refused
    ):
        raise TokenError(
            f"the refresh token of profile '{profile.name}' was refused (invalid_grant) "
            "and it is the one the profile holds; obtain a new one and update refresh_token"
        )
    try:
        answer = grants.fetch(profile)
    except grants.GrantError as exc:
        if exc.transient and not force and old is not None and _valid(old, clock()):
            return Obtained(old, "cache", [*notes, _still_valid(exc, old)])
        raise
    return Obtained(_store(profile, path, answer, None), "grant", notes)


def _refresh_usable(token: Token, now: float) -> bool:
    return token.refresh_expires_at is None or now < token.refresh_expires_at


def _still_valid(exc: Exception, token: Token) -> str:
    left = max(0, int((token.expires_at or 0) - clock()))
    return f"{exc}; using the cached token, still valid for {left} s"


def _store(
    profile: ResolvedProfile, path: Path, answer: TokenAnswer, previous: Token | None
) -> Token:
    now = clock()
    lifetime = DEFAULT_LIFETIME if answer.expires_in is None else answer.expires_in
    token_type = answer.token_type
    refresh_token, refresh_expires_at = _refresh_of(profile, answer, previous, now)
    token = Token(
        access_token=Secret(answer.access_token),
        token_type="Bearer" if token_type.lower() == "bearer" else token_type,
        expires_at=now + lifetime,
        scope=answer.scope,
        refresh_token=refresh_token,
        refresh_expires_at=refresh_expires_at,
        obtained_at=now,
    )
    entry = cache.Entry(
        token=token,
        profile=profile.name,
        token_url=profile.token_url,
        client_id=profile.client_id,
        grant_type=profile.grant_type,
        expires_assumed=answer.expires_in is None,
    )
    try:
        cache.write(path, entry)
    except OSError as exc:
        raise _unusable(exc) from None
    return token


def _refresh_of(
    profile: ResolvedProfile, answer: TokenAnswer, previous: Token | None, now: float
) -> tuple[Secret | None, float | None]:
    """The refresh token to keep and until when it may be used."""
    value = answer.refresh_token
    if not value:
        if previous is not None and previous.refresh_token is not None:
            return previous.refresh_token, previous.refresh_expires_at
        return None, None
    if previous is not None and previous.refresh_token == Secret(value):
        return previous.refresh_token, previous.refresh_expires_at
    if profile.refresh_token_lifespan is not None:
        return Secret(value), now + profile.refresh_token_lifespan
    seconds = answer.refresh_expires_in
    if seconds is not None:
        return Secret(value), now + min(seconds, MAX_LIFETIME)
    return Secret(value), None
