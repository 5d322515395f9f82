"""When to use the cached token, refresh it or run the grant again (SPEC §3, §4).

- A cached token is used until it is due (:meth:`Token.due`: less than
  ``min(token_leeway, lifetime / 4)`` seconds left). This path takes no lock and
  imports nothing beyond the standard library.
- Then, under the entry's lock and after reading the entry again (another
  process may have renewed it meanwhile), the refresh token held in the cache
  is used if it is not past its lifespan, else the grant runs again. For
  rotating grants (``refresh_token``, ``authorization_code``: :attr:`Grant.rotating`
  in :data:`~oauthcli.tokens.grants.GRANTS`) the cached refresh token
  is used even when a new token is forced (``--force``, a 401): after a rotation
  the one the profile holds is spent, and a browser sign-in is not needed while
  a refresh token works.
- ``invalid_grant`` on a refresh drops the refresh token and runs the grant.
- A transient failure (timeout, refused connection, 5xx, 429,
  ``temporarily_unavailable``) while the old token is still valid returns the
  old token with a warning; past expiry it is an error.
- A token answered without ``expires_in`` lives until its JWT ``exp``, else
  :data:`DEFAULT_LIFETIME` seconds (RFC 6749 leaves its lifetime unknown).
- Others wait for the entry's lock as long as its holder may need: its token requests
  and, for a grant a person signs in to (:meth:`Grant.signin_bound`), the sign-in (a
  device code's lifetime, at most 30 min; a browser's answer). Such a wait is said on the
  sign-in channel; it needs no terminal, as only a sign-in of its own would.
- Nothing is written to the cache when renewal fails. When the cache cannot be
  written at all (read-only, full, no lock file), the token is used uncached and
  that is said once per process.
- The cache is :func:`oauthcli.tokens.backend.current`'s, keyed by the token identity:
  the file cache, or Redis shared by a fleet (``OAUTHCLI_CACHE_URL``), which gives way to
  the file cache, said once, when it fails. This module does not know which it has; a
  DPoP-bound token (bound to this machine's key) always stays in this machine's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import oauthcli.tokens.backend as backend
from oauthcli.errors import CorruptEntry, RegistryError, TokenError
from oauthcli.secret import Secret
from oauthcli.tokens.backend import CacheBackend, Entry
from oauthcli.tokens.cache import entry_key
from oauthcli.tokens.model import MAX_LIFETIME, Obtained, Token
from oauthcli.trace import Trace

if TYPE_CHECKING:
    from oauthcli.request.resolved import ResolvedProfile
    from oauthcli.tokens.answer import TokenAnswer

#: Seconds a token with neither ``expires_in`` nor a JWT ``exp`` is assumed to stay valid.
DEFAULT_LIFETIME = 300
#: Seconds the holder of an entry's lock may need beyond its token requests and sign-in.
LOCK_MARGIN = 30

clock: Callable[[], float] = time.time
# Caches already said to be unwritable: the warning comes once per process.
_said_unwritable: set[str] = set()


class _Cache:
    """The cache entry of one profile's token identity, and what was said about it."""

    def __init__(
        self,
        profile: ResolvedProfile,
        notes: list[str] | None,
        trace: Trace | None = None,
    ) -> None:
        self.store: CacheBackend = backend.current(local=profile.dpop)
        self.key = entry_key(profile)
        self.said = notes is not None  # None: nobody is told (drop); the next call says it
        self.notes = notes if notes is not None else []
        self.trace = trace or Trace()
        self.unwritable = False  # said as a decision of this call

    def heed(self) -> None:
        """Say what the cache has to say (a fallback from Redis), once."""
        if not self.said:
            return
        for notice in self.store.notices():
            if notice.text not in self.notes:
                self.notes.append(notice.text)
            self.trace.decision(notice.kind, f"token: {notice.text}", **notice.facts)


def obtain(
    profile: ResolvedProfile, *, force: bool = False, trace: Trace | None = None
) -> Obtained:
    trace = trace or Trace()
    started = clock()
    notes: list[str] = []
    entry_of = _Cache(profile, notes, trace)
    if force:
        trace.decision("forced", f"token: a new token for profile '{profile.name}' is asked for")
    else:
        entry = _read(entry_of, profile)
        now = clock()
        if entry is None:
            trace.decision("none_cached", f"token: none cached for profile '{profile.name}'")
        elif not entry.token.due(profile.token_leeway, now):
            trace.decision(
                "cached",
                f"token: cached for profile '{profile.name}', {_left(entry.token, profile, now)}",
                expires_in_s=_seconds_left(entry.token, now),
            )
            return Obtained(entry.token, "cache", notes)
        else:
            trace.decision(
                "due",
                f"token: renewing, {_why_due(entry.token, profile, now)}",
                expires_in_s=_seconds_left(entry.token, now),
                window_s=round(entry.token.renew_margin(profile.token_leeway), 1),
                leeway_s=profile.token_leeway,
            )
    return _renew(profile, entry_of, force, started, trace)


def drop(profile: ResolvedProfile, token: Token) -> None:
    """Forget ``token`` if the entry still holds it; a refresh token in it is kept."""
    entry_of = _Cache(profile, None)
    if not _holds(entry_of, token):
        return
    with _locked(profile, entry_of):
        entry = _read(entry_of)
        if entry is None or entry.token.access_token != token.access_token:
            return
        if entry.token.refresh_token is not None:
            expired = replace(entry.token, expires_at=0.0)
            _write(entry_of, replace(entry, token=expired))
        else:
            _remove(entry_of)


def revoke(profile: ResolvedProfile, *, trace: Trace | None = None) -> tuple[list[str], list[str]]:
    """Revoke the cached tokens at revocation_url, then forget them; (what was revoked, notes)."""
    if not profile.revocation_url and profile.issuer:
        import oauthcli.tokens.discovery as discovery

        profile = discovery.complete(profile, trace, needs=("revocation_url",))
    if not profile.revocation_url:
        raise RegistryError.at(
            profile.source, None, "revocation_url", "missing; token revoke needs it"
        )
    notes: list[str] = []
    entry_of = _Cache(profile, notes, trace)
    if _read(entry_of, profile) is None:
        return [], notes
    import oauthcli.tokens.grants as grants

    _tls_note(profile, notes)
    revoked: list[str] = []
    with _locked(profile, entry_of):
        entry = _read(entry_of, profile)
        if entry is None:
            return [], notes
        if entry.token.refresh_token is not None:
            grants.revoke(profile, entry.token.refresh_token, "refresh_token", trace=trace)
            revoked.append("refresh token")
            token = replace(entry.token, refresh_token=None, refresh_expires_at=None)
            _write(entry_of, replace(entry, token=token))
        grants.revoke(profile, entry.token.access_token, "access_token", trace=trace)
        revoked.append("access token")
        _remove(entry_of)
    return revoked, notes


def _left(token: Token, profile: ResolvedProfile, now: float) -> str:
    left = (token.expires_at or now) - now
    lifetime = token.renew_margin(math.inf) * 4
    margin = token.renew_margin(profile.token_leeway)
    return f"{_s(left)} of {_s(lifetime)} left, renewed under {_s(margin)}"


def _seconds_left(token: Token, now: float) -> float | None:
    """Seconds the token has left (a fact of a decision), None when its expiry is unknown."""
    return None if token.expires_at is None else round(token.expires_at - now, 1)


def _why_due(token: Token, profile: ResolvedProfile, now: float) -> str:
    left = (token.expires_at or now) - now
    if left <= 0:
        return f"expired {_s(-left)} ago"
    leeway = profile.token_leeway
    quarter = token.renew_margin(math.inf)
    return f"{_s(left)} left < min(token_leeway {leeway}, lifetime/4 = {_s(quarter)})"


def _s(seconds: float) -> str:
    return f"{seconds:.1f}".removesuffix(".0") + " s"


def _tls_note(profile: ResolvedProfile, notes: list[str]) -> None:
    if not profile.tls.verify:
        notes.append(
            f"TLS certificate verification is off for the token endpoint of profile "
            f"'{profile.name}' (tls.verify: false)"
        )


def _holds(entry_of: _Cache, token: Token) -> bool:
    entry = _read(entry_of, quiet=True)
    return entry is not None and entry.token.access_token == token.access_token


def _read(
    entry_of: _Cache, profile: ResolvedProfile | None = None, *, quiet: bool = False
) -> Entry | None:
    """The entry, or None; an unreadable one is a miss with a note (RegistryError if the
    folder is not ours). With ``profile``, an entry that records another token URL,
    client or grant (a file copied or renamed into place) is a miss too."""
    try:
        entry = entry_of.store.read(entry_of.key)
    except CorruptEntry as exc:
        note = f"{exc}; discarded"
    else:
        if entry is None or profile is None or _same_client(entry, profile):
            entry_of.heed()
            return entry
        note = (
            f"cache entry {entry_of.store.describe(entry_of.key)} records a token of another "
            f"client (profile '{entry.profile}'), not of profile '{profile.name}'; discarded"
        )
    entry_of.heed()
    if not quiet and note not in entry_of.notes:
        entry_of.notes.append(note)
    return None


def _same_client(entry: Entry, profile: ResolvedProfile) -> bool:
    return (
        entry.token_url == profile.token_server
        and entry.client_id in ("", profile.client_id)
        and entry.grant_type in ("", profile.grant_type)
    )


def _write(entry_of: _Cache, entry: Entry) -> None:
    try:
        entry_of.store.write(entry_of.key, entry)
    except OSError as exc:
        _unwritable(exc, entry_of)
    entry_of.heed()


def _remove(entry_of: _Cache) -> None:
    try:
        entry_of.store.remove(entry_of.key)
    except OSError as exc:
        _unwritable(exc, entry_of)
    entry_of.heed()


def _unwritable(exc: OSError, entry_of: _Cache) -> None:
    """Say once per process that the cache cannot be written; the call goes on without it.
    Each call it happens to records it as a decision (once per call)."""
    where = entry_of.store.where
    if not entry_of.unwritable:
        entry_of.unwritable = True
        entry_of.trace.decision(
            "cache_unwritable",
            f"token: cannot write {where} ({exc.strerror or exc}); the token is used uncached",
            folder=where.removeprefix("the token cache folder "),
        )
    if where in _said_unwritable:
        return
    _said_unwritable.add(where)
    entry_of.notes.append(
        f"cannot write {where} ({exc.strerror or exc}); "
        "going on without caching tokens (set OAUTHCLI_CACHE_DIR to a folder you can write)"
    )


def _valid(token: Token, now: float) -> bool:
    return token.expires_at is None or now < token.expires_at


def _lock_wait(profile: ResolvedProfile) -> float:
    from oauthcli.tokens.grants import GRANTS  # the table only: no Authlib

    # The holder makes at most a refresh and a grant, each bounded by the timeout; a
    # person's sign-in (a device code's lifetime, a browser's answer) comes on top, so a
    # second process started during a sign-in waits for its token instead of giving up.
    grant = GRANTS.get(profile.grant_type)
    bound = grant.signin_bound() if grant is not None and grant.interactive else 0.0
    return bound + _lock_lease(profile)


def _lock_lease(profile: ResolvedProfile) -> float:
    """Seconds a lock outlives a holder that stopped showing it is alive (a shared cache's
    lock; a file lock dies with its process): its refresh and grant, and a margin."""
    return 2 * profile.timeout + LOCK_MARGIN


def _interactive(profile: ResolvedProfile) -> bool:
    from oauthcli.tokens.grants import GRANTS

    grant = GRANTS.get(profile.grant_type)
    return grant is not None and grant.interactive


class _locked:
    """The entry's lock, with a readable error when it cannot be had in time.

    A lock file that cannot be created (a read-only or full cache folder) is no
    error: the token is then obtained without one, and not cached.
    """

    def __init__(self, profile: ResolvedProfile, entry_of: _Cache) -> None:
        self.profile = profile
        self.entry_of = entry_of
        self.wait = _lock_wait(profile)
        self.lock: backend.Lock | None = None
        try:
            self.lock = entry_of.store.lock(entry_of.key, self.wait, _lock_lease(profile))
        except OSError as exc:
            _unwritable(exc, entry_of)
        entry_of.heed()

    def __enter__(self) -> None:
        try:
            self._acquire()
        finally:
            self.entry_of.heed()

    def _acquire(self) -> None:
        if self.lock is None:
            return
        try:
            if _interactive(self.profile):
                try:
                    self.lock.acquire(timeout=0)
                    return
                except backend.LockTimeout:
                    # Someone is signing in (or refreshing) this profile elsewhere: wait for
                    # the token it caches, with or without a terminal here (only a sign-in
                    # of this process's own needs one), and say so, as it may be minutes.
                    import oauthcli.tokens.signin as signin

                    signin.current()(
                        f"another oauthcli process is signing in for profile "
                        f"'{self.profile.name}'; waiting for its token (up to "
                        f"{self.wait:g} s; Ctrl-C stops)"
                    )
            self.lock.acquire()
        except backend.LockTimeout:
            raise TokenError(
                f"another oauthcli process has been renewing the token of profile "
                f"'{self.profile.name}' for over {self.wait:g} s (lock {self.lock.where}); "
                "try again when it has finished"
            ) from None
        except OSError as exc:
            _unwritable(exc, self.entry_of)
            self.lock = None

    def __exit__(self, *exc: object) -> None:
        if self.lock is not None:
            self.lock.release()
            self.entry_of.heed()


def _renew(
    profile: ResolvedProfile,
    entry_of: _Cache,
    force: bool,
    started: float,
    trace: Trace,
) -> Obtained:
    notes = entry_of.notes
    with _locked(profile, entry_of):
        entry = _read(entry_of, profile)
        if entry is not None:
            token = entry.token
            # Renewed by another process while this one waited for the lock.
            if (force and token.obtained_at > started) or (
                not force and not token.due(profile.token_leeway, clock())
            ):
                trace.decision(
                    "renewed_elsewhere",
                    "token: another oauthcli renewed it meanwhile; using that one",
                )
                return Obtained(token, "cache", notes)
        return _renew_locked(profile, entry_of, entry, force, trace)


def _renew_locked(
    profile: ResolvedProfile,
    entry_of: _Cache,
    entry: Entry | None,
    force: bool,
    trace: Trace,
) -> Obtained:
    notes = entry_of.notes
    import oauthcli.tokens.grants as grants

    _tls_note(profile, notes)
    old = entry.token if entry is not None else None
    refused: Secret | None = None
    # SPEC §4: the cached refresh token wins over the profile's, forced or not.
    grant = grants.GRANTS.get(profile.grant_type)
    may_refresh = not force or (grant is not None and grant.rotating)
    if may_refresh and old is not None and old.refresh_token is not None:
        if _refresh_usable(old, clock()):
            trace.decision("refresh", "token: refreshing with the cached refresh token")
            try:
                answer = grants.refresh(profile, old.refresh_token, trace=trace)
            except grants.GrantError as exc:
                if exc.error == "invalid_grant":
                    refused = old.refresh_token
                    old = replace(old, refresh_token=None, refresh_expires_at=None)
                    assert entry is not None
                    _write(entry_of, replace(entry, token=old))
                    notes.append(
                        f"the refresh token of profile '{profile.name}' was refused "
                        "(invalid_grant); dropped it and ran the grant again"
                    )
                    trace.decision(
                        "refresh_refused",
                        "token: the refresh token was refused (invalid_grant); dropped it",
                    )
                elif exc.transient and not force and _valid(old, clock()):
                    return Obtained(old, "cache", [*notes, _still_valid(exc, old, trace)])
                else:
                    raise
            else:
                if answer.refresh_token and Secret(answer.refresh_token) != old.refresh_token:
                    trace.decision(
                        "rotated",
                        "token: the refresh answer carried a new refresh token; "
                        "it replaces the cached one",
                    )
                return Obtained(_store(profile, entry_of, answer, old), "refresh", notes)
        else:
            trace.decision(
                "refresh_expired", "token: the cached refresh token is past its lifespan"
            )
    # A grant whose credential is the profile's own refresh token: refused, it is spent.
    spendable = grant is not None and grant.spends_refresh_token
    if spendable:
        if refused is not None and profile.refresh_token == refused:
            raise _spent(profile)
        trace.decision(
            "grant",
            f"token: running the {profile.grant_type} grant with the profile's refresh token",
            grant=profile.grant_type,
        )
    else:
        trace.decision(
            "grant", f"token: running the {profile.grant_type} grant", grant=profile.grant_type
        )
    try:
        answer = grants.fetch(profile, trace=trace, obtain=obtain)
    except grants.GrantError as exc:
        if exc.transient and not force and old is not None and _valid(old, clock()):
            return Obtained(old, "cache", [*notes, _still_valid(exc, old, trace)])
        if spendable and exc.error == "invalid_grant":
            raise _spent(profile) from None
        raise
    return Obtained(_store(profile, entry_of, answer, None), "grant", notes)


def _spent(profile: ResolvedProfile) -> TokenError:
    return TokenError(
        f"the refresh token of profile '{profile.name}' was refused (invalid_grant) "
        "and it is the one the profile holds; obtain a new one and update refresh_token"
    )


def _refresh_usable(token: Token, now: float) -> bool:
    return token.refresh_expires_at is None or now < token.refresh_expires_at


def _still_valid(exc: Exception, token: Token, trace: Trace) -> str:
    left = max(0, int((token.expires_at or 0) - clock()))
    trace.decision(
        "stale_used",
        f"token: renewing failed ({exc}); using the cached token, still valid for {left} s",
        expires_in_s=left,
    )
    return f"{exc}; using the cached token, still valid for {left} s"


def _store(
    profile: ResolvedProfile,
    entry_of: _Cache,
    answer: TokenAnswer,
    previous: Token | None,
) -> Token:
    now = clock()
    lifetime, expires_at, assumed = _expiry(answer, now)
    token_type = answer.token_type
    refresh_token, refresh_expires_at = _refresh_of(profile, answer, previous, now)
    token = Token(
        access_token=Secret(answer.access_token),
        token_type="Bearer" if token_type.lower() == "bearer" else token_type,
        expires_at=expires_at,
        scope=answer.scope,
        refresh_token=refresh_token,
        refresh_expires_at=refresh_expires_at,
        obtained_at=now,
        lifetime=lifetime,
    )
    entry = Entry(
        token=token,
        profile=profile.name,
        token_url=profile.token_server,
        client_id=profile.client_id,
        grant_type=profile.grant_type,
        expires_assumed=assumed,
    )
    if expires_at > now:
        _write(entry_of, entry)
    else:
        entry_of.notes.append(
            f"the token endpoint answered profile '{profile.name}' a token that its JWT exp says "
            f"expired {int(now - expires_at)} s ago (and no expires_in); it is used for this call "
            "only, not cached: check this machine's clock against the server's"
        )
    return token


def _expiry(answer: TokenAnswer, now: float) -> tuple[float, float, bool]:
    """(lifetime, expires_at, whether assumed): ``expires_in``, else the JWT's ``exp``
    (its lifetime from ``iat``), else :data:`DEFAULT_LIFETIME` (SPEC §4)."""
    if answer.expires_in is not None:
        lifetime = float(max(0, min(answer.expires_in, MAX_LIFETIME)))
        return lifetime, now + lifetime, False
    claims = _claims(answer.access_token)
    exp = _time_claim(claims, "exp")
    if exp is not None and now < exp <= now + MAX_LIFETIME:
        iat = _time_claim(claims, "iat")
        issued = iat if iat is not None and iat < exp else now
        return exp - issued, exp, False
    if exp is not None and now - MAX_LIFETIME <= exp <= now:  # expired as issued: clock skew?
        return 0.0, exp, False
    return float(DEFAULT_LIFETIME), now + DEFAULT_LIFETIME, True


def _claims(access_token: str) -> dict[str, Any]:
    from oauthcli.tokens.jwtinfo import decode

    try:
        decoded = decode(access_token)
    except RecursionError:  # a token of deeply nested JSON is not a JWT to read
        return {}
    return decoded[1] if decoded is not None else {}


def _time_claim(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        seconds = float(value)
    except OverflowError:  # a 400-digit integer
        return None
    return seconds if math.isfinite(seconds) else None


def _refresh_of(
    profile: ResolvedProfile, answer: TokenAnswer, previous: Token | None, now: float
) -> tuple[Secret | None, float | None]:
    """The refresh token to keep and until when it may be used: the shorter of
    ``refresh_token_lifespan`` and the answer's ``refresh_expires_in``."""
    value = answer.refresh_token
    if not value:
        if previous is not None and previous.refresh_token is not None:
            return previous.refresh_token, previous.refresh_expires_at
        return None, None
    if previous is not None and previous.refresh_token == Secret(value):
        return previous.refresh_token, previous.refresh_expires_at
    bounds = [
        seconds
        for seconds in (profile.refresh_token_lifespan, answer.refresh_expires_in)
        if seconds is not None
    ]
    if not bounds:
        return Secret(value), None
    return Secret(value), now + min(*bounds, MAX_LIFETIME)
