"""The device authorization grant (RFC 8628): a code to enter elsewhere, then polling.

:func:`start` asks the profile's ``device_authorization_url`` for a device code
(RFC 8628 §3.1: ``client_id``, ``scope``, and ``audience``/``resource`` as the token
request has them; the client authenticates as it does at the token endpoint,
through the session's ``client_auth`` method) and shows the user code and the
verification URI (and ``verification_uri_complete`` when given) through the
caller's ``show``: this module prints nothing. :func:`poll` then asks the token
endpoint every ``interval`` seconds (5 when not given): ``authorization_pending``
waits on, ``slow_down`` adds 5 s to the interval for good (§3.5),
``expired_token``, ``access_denied`` and the code's ``expires_in`` end it as
token errors (exit 6), and a transient failure (a timeout, a 5xx) is tried again
with the interval doubled, at most :data:`TRANSIENT_LIMIT` times in a row.

Nobody will enter a code that no one sees: without a terminal, or with no
``show`` injected (the Python API), it fails at once unless the caller said to
wait (``--wait``, :func:`oauthcli.tokens.signin.using`), as when a CI log shows
the code to someone who signs in elsewhere.

The device code is a credential: it is made known to
:func:`oauthcli.secret.scrub` before anything can show it (the ``-v`` trace of a
poll). The user code is meant to be read, and is shown.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import oauthcli.tokens.answer as answer
import oauthcli.tokens.endpoint as endpoint
import oauthcli.tokens.signin as signin
from oauthcli.errors import GrantError, RegistryError, TokenError
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret, remember

#: The ``grant_type`` of the token requests (RFC 8628 §3.4).
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
#: Seconds between polls when the server does not say (RFC 8628 §3.2).
DEFAULT_INTERVAL = 5
#: Seconds a ``slow_down`` adds to the interval (RFC 8628 §3.5).
SLOW_DOWN = 5
#: Seconds a code lives when the server does not say (its ``expires_in`` is required).
DEFAULT_EXPIRES_IN = 900
#: Never poll longer than this, whatever ``expires_in`` says.
MAX_WAIT = 1800
#: Transient failures in a row (a timeout, a 5xx) after which polling gives up.
TRANSIENT_LIMIT = 3
_FORM = {"Content-Type": "application/x-www-form-urlencoded;charset=UTF-8"}
_MAX_USER_CODE = 64
_PRINTABLE = re.compile(r"[\x21-\x7e]+")  # a user code is typed: visible ASCII, no spaces

#: The clock and the wait between polls (tests replace them).
clock: Callable[[], float] = time.monotonic
sleep: Callable[[float], None] = time.sleep


def interactive() -> bool:
    """Whether someone is at a terminal to read the code (stdin and stderr are ttys)."""
    return signin.interactive()


@dataclass(frozen=True, repr=False)
class Authorization:
    """The device authorization answer, checked (RFC 8628 §3.2)."""

    device_code: Secret
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    interval: float
    #: When the code expires, on :data:`clock`.
    expires_at: float


def start(
    profile: ResolvedProfile, session: Any, show: Callable[[str], None], options: dict[str, Any]
) -> Authorization:
    """Ask for a device code and show the user where to enter it; ``options`` are the
    request options of the profile (timeout, TLS, no redirects)."""
    _refuse_unattended(profile)
    url = profile.device_authorization_url
    if not url:
        raise RegistryError.at(
            profile.source,
            None,
            "device_authorization_url",
            "grant_type device_code needs the device authorization endpoint",
        )
    what = f"device authorization for profile '{profile.name}'"
    form: list[tuple[str, str]] = []  # client_id: added by the client auth method
    if profile.scope:
        form.append(("scope", " ".join(profile.scope)))
    if profile.audience:
        form.append(("audience", profile.audience))
    form.extend(("resource", r) for r in profile.resource)
    auth = session.client_auth(session.token_endpoint_auth_method)
    got: list[Any] = []

    def call() -> None:
        got.append(session.post(url, data=urlencode(form), headers=_FORM, auth=auth, **options))

    endpoint.transport(profile, what, call, url)
    found = _read(got[0], url, what)
    _show(profile, found, show)
    return found


def poll(
    profile: ResolvedProfile, found: Authorization, ask: Callable[[], None], what: str
) -> None:
    """Ask the token endpoint (``ask``) until the user has signed in, or say why not.

    ``ask`` makes one token request and returns when it was answered a token; the
    session's check reads the answer.
    """
    interval = found.interval
    failures = 0
    polled = False
    while True:
        now = clock()
        if now + interval > found.expires_at:
            if not polled:  # the server's own numbers leave no poll in time
                raise TokenError(
                    f"the device authorization server for profile '{profile.name}' asks "
                    f"for a poll every {interval:g} s, but its device code expires in "
                    f"{max(found.expires_at - now, 0):.0f} s: there is no time to sign in"
                )
            raise _expired(profile)
        sleep(interval)
        polled = True
        try:
            endpoint.transport(profile, what, ask, profile.token_url)
            return
        except GrantError as exc:
            error = exc.error
            if error == "authorization_pending":
                failures = 0
            elif error == "slow_down":
                failures = 0
                interval += SLOW_DOWN
            elif error == "expired_token":
                raise _expired(profile) from None
            elif error == "access_denied":
                raise TokenError(
                    f"access denied at {_origin(profile.token_url)}: the sign-in for profile "
                    f"'{profile.name}' was refused or cancelled"
                ) from None
            elif exc.transient and failures + 1 < TRANSIENT_LIMIT:
                failures += 1
                interval = max(interval * 2, exc.retry_after or 0)
            else:
                exc.retry_after = None  # polled already: not to be asked again from the start
                raise


def _refuse_unattended(profile: ResolvedProfile) -> None:
    signin.refuse_if_barred(profile.name, "with a device code (device_code)")
    settings = signin.settings()
    if settings.wait:
        return
    if settings.show is None:
        raise TokenError(
            f"profile '{profile.name}' signs in with a device code (device_code) and no one "
            "is shown the code here; from Python, run it inside "
            "oauthcli.tokens.signin.using(show=print, wait=True), or run "
            f"`oauthcli get-token {profile.name}` interactively first"
        )
    if not interactive():
        raise TokenError(
            f"profile '{profile.name}' signs in with a device code (device_code) and there is "
            f"no terminal to show it on; run `oauthcli get-token {profile.name}` interactively "
            "first (later runs use the refresh token it caches), or pass --wait to wait for "
            "someone to enter the code shown on stderr"
        )


def _read(resp: Any, url: str, what: str) -> Authorization:
    if 300 <= resp.status_code < 400:
        raise GrantError(
            f"{what} failed: {url} answered HTTP {resp.status_code} redirect; device "
            "authorization requests are never redirected, check device_authorization_url"
        )
    data = endpoint.refusal(resp, url, what)
    device_code = data.get("device_code")
    if isinstance(device_code, str) and device_code:
        remember(device_code)
    else:
        raise GrantError(f"{what} failed: {url} answered no device_code")
    user_code = data.get("user_code")
    if not isinstance(user_code, str) or not _is_code(user_code):
        raise GrantError(
            f"{what} failed: {url} answered {'no' if not user_code else 'an unusable'} user_code"
        )
    # Google's older endpoint answers verification_url.
    uri = _http_url(data.get("verification_uri") or data.get("verification_url"))
    if uri is None:
        raise GrantError(f"{what} failed: {url} answered no usable http(s) verification_uri")
    interval = answer.seconds(data.get("interval"))
    expires_in = answer.seconds(data.get("expires_in"))
    return Authorization(
        device_code=Secret(device_code),
        user_code=user_code,
        verification_uri=uri,
        verification_uri_complete=_http_url(data.get("verification_uri_complete")),
        interval=float(DEFAULT_INTERVAL if interval is None else max(interval, 1)),
        expires_at=clock() + min(expires_in or DEFAULT_EXPIRES_IN, MAX_WAIT),
    )


def _is_code(text: str) -> bool:
    return len(text) <= _MAX_USER_CODE and _PRINTABLE.fullmatch(text) is not None


def _http_url(value: Any) -> str | None:
    """The value if it is an http(s) URL that can be shown on one line, else None."""
    if not isinstance(value, str) or len(value) > 2048 or not _PRINTABLE.fullmatch(value):
        return None
    parts = urlsplit(value)
    return value if parts.scheme in ("https", "http") and parts.netloc else None


def _show(profile: ResolvedProfile, found: Authorization, show: Callable[[str], None]) -> None:
    left = max(0, int(found.expires_at - clock()))
    lines = [
        f"To sign in for profile '{profile.name}', open {found.verification_uri} "
        f"and enter the code {found.user_code}"
    ]
    if found.verification_uri_complete:
        lines.append(f"  or open {found.verification_uri_complete}")
    lines.append(f"Waiting for the sign-in (the code expires in {_duration(left)}; Ctrl-C to stop)")
    show("\n".join(lines))


def _duration(seconds: int) -> str:
    return f"{seconds} s" if seconds < 120 else f"{seconds // 60} min"


def _expired(profile: ResolvedProfile) -> TokenError:
    return TokenError(
        f"the device code for profile '{profile.name}' expired before the sign-in was "
        f"completed; run `oauthcli get-token {profile.name}` again"
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
