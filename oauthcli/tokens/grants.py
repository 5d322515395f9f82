"""Token endpoint calls through Authlib's OAuth 2.0 client, and their failures.

Authlib builds every request (``OAuth2Client.fetch_token``, ``refresh_token``,
``revoke_token``) and signs client assertions (:mod:`oauthcli.tokens.assertions`,
imported only for private_key_jwt and client_secret_jwt). :class:`_Session`
puts that client on a requests session the way Authlib's ``OAuth2Session``
does, without importing ``authlib.integrations``: its OAuth 1, OpenID Connect,
joserfc and cryptography imports cost ~70 ms that a client secret never needs.
Three things are adjusted on top of Authlib:

- ``client_secret_basic``: Authlib joins id and secret unencoded; RFC 6749
  §2.3.1 form-urlencodes each first, so secrets with ``+ % : /`` work.
- Authlib posts the form as a dict, which keeps one of several ``resource``
  values (RFC 8707); :class:`_Session` posts the encoded pairs as they are.
- Each answer is checked by a compliance hook before Authlib parses it, so a
  redirect, an HTML page or JSON without ``access_token`` becomes one readable
  :class:`GrantError` instead of a parser exception. The hook reads the answer
  with :mod:`oauthcli.tokens.answer` (JSON in any content type, form-encoded,
  numbers as strings) and hands Authlib only the normalised result.

Every exchange goes through :meth:`_Session.send`: it sends ``User-Agent:
oauthcli/<version>``, shows the exchange on the caller's :class:`~oauthcli.trace.Trace`
(``-v``), reads at most :data:`~oauthcli.tokens.answer.MAX_ANSWER_BYTES` of an
answer within the profile's ``timeout``, and makes every secret value sent or
issued known to :func:`oauthcli.secret.scrub` before anything can print it.
A 429 or 503 with ``Retry-After`` is asked once more when the wait fits in
what remains of the profile's ``timeout``.
"""

from __future__ import annotations

import json
import math
import re
import time
import warnings
from collections.abc import Callable
from typing import Any
from urllib.parse import quote_plus, urlencode

import requests
from authlib.common.urls import url_decode
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.client import OAuth2Client
from requests.auth import AuthBase

import oauthcli.tokens.answer as answer
import oauthcli.tokens.keys as keys
from oauthcli.errors import GrantError, RegistryError
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret, remember, scrub_spread
from oauthcli.tokens.answer import TokenAnswer
from oauthcli.trace import Trace
from oauthcli.transport.adapter import Deadline, PooledAdapter, watching
from oauthcli.transport.http import DEFAULT_HEADERS, retry_after

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "slow_down"})
_HINTS = {
    "invalid_client": "check client_id, the client secret or key, and client_auth",
    "invalid_scope": "check the profile's scope",
    "unauthorized_client": "the client may not use this grant_type",
    "unsupported_grant_type": "the server does not offer this grant_type",
}


#: Waits for the one retry after a 429/503 (tests replace it).
sleep: Callable[[float], None] = time.sleep
_RETRY_STATUSES = frozenset({429, 503})
# Members of an answer that carry a credential, remembered before any of it is shown.
_SECRET_MEMBERS = ("access_token", "refresh_token", "id_token", "issued_token")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def _encode_client_secret_basic(
    client: Any, method: str, uri: str, headers: dict[str, str], body: str
) -> tuple[str, dict[str, str], str]:
    import base64

    secret = client.client_secret or ""
    pair = f"{quote_plus(client.client_id, safe='')}:{quote_plus(secret, safe='')}"
    credential = base64.b64encode(pair.encode()).decode()
    remember(credential)
    remember(pair)  # so its base64 without padding or URL-safe is masked too
    headers["Authorization"] = "Basic " + credential
    return uri, headers, body


class _ClientAuth(AuthBase, ClientAuth):
    """Authlib's client authentication as a requests auth, as ``OAuth2ClientAuth`` is."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.url, r.headers, r.body = self.prepare(r.method, r.url, r.headers, r.body)
        return r


class _Session(OAuth2Client, requests.Session):
    """Authlib's ``OAuth2Session`` rebuilt from its generic client and requests.

    Every call passes its client auth, so no access token is ever attached and
    ``OAuth2Session.request``'s token handling is not needed. Authlib raises
    ``oauth_error_class`` for an answer with an ``error`` member; by then
    :func:`_answer_check` has turned every string ``error`` into a :class:`GrantError`.
    """

    client_auth_class = _ClientAuth
    oauth_error_class = OAuth2Error
    SESSION_REQUEST_PARAMS = (
        "allow_redirects",
        "timeout",
        "cookies",
        "files",
        "proxies",
        "hooks",
        "stream",
        "verify",
        "cert",
        "json",
    )

    def __init__(
        self,
        client_id: str,
        client_secret: Any,
        *,
        verify: Any,
        cert: Any,
        profile: ResolvedProfile,
        what: str,
        trace: Trace,
        **kw: Any,
    ) -> None:
        requests.Session.__init__(self)
        self.verify = verify
        self.cert = cert
        self.headers["User-Agent"] = DEFAULT_HEADERS["User-Agent"]
        self.headers["Accept"] = "application/json"  # GitHub answers a form otherwise
        self.profile = profile
        self.what = what
        self.trace = trace
        self.answers: list[TokenAnswer] = []
        # Its connections can be cut off at a deadline (requests' timeout bounds each read).
        self.mount("https://", PooledAdapter())
        self.mount("http://", PooledAdapter())
        OAuth2Client.__init__(
            self, session=self, client_id=client_id, client_secret=client_secret, **kw
        )

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """One exchange: shown on the trace, its answer read whole but bounded in size and
        time (the profile's ``timeout`` bounds the whole answer, headers dribbled included)."""
        self.trace.request(request, frozenset({"authorization"}))
        kwargs["stream"] = True
        deadline = Deadline(self.profile.timeout)
        try:
            with watching(deadline):
                resp = super().send(request, **kwargs)
                try:
                    resp._content = self._bounded_body(resp)
                finally:
                    resp.close()
        except requests.RequestException:
            if deadline.expired:
                raise self._timed_out(request) from None
            raise
        finally:
            deadline.finish()
        if deadline.expired:  # cut off mid-headers, http.client may take what came as all
            raise self._timed_out(request)
        data = answer.decode(resp.content, resp.headers.get("Content-Type"))
        for name in _SECRET_MEMBERS:
            value = data.get(name) if data else None
            if isinstance(value, str):
                remember(value)
        self.trace.response(resp)
        return resp

    def _timed_out(self, request: requests.PreparedRequest) -> GrantError:
        return GrantError(
            f"{self.what} failed: no complete answer from {request.url} within "
            f"{self.profile.timeout:g} s",
            transient=True,
        )

    def _bounded_body(self, resp: requests.Response) -> bytes:
        # A server sending without end is cut off here; one sending slowly, by the deadline.
        limit = answer.MAX_ANSWER_BYTES
        body = bytearray()
        for chunk in resp.iter_content(64 * 1024):
            body += chunk
            if len(body) > limit:
                raise GrantError(
                    f"{self.what} failed: {resp.url} answered more than {limit // 1024} KiB; "
                    "a token answer is a few KiB"
                )
        return bytes(body)

    # Authlib passes data=dict(...), which keeps one of repeated form fields.
    def _fetch_token(self, url: str, body: str = "", **kwargs: Any) -> Any:
        kwargs.pop("method", None)
        headers, auth = kwargs.pop("headers", None), kwargs.pop("auth", None)
        resp = self.post(url, data=url_decode(body), headers=headers, auth=auth, **kwargs)
        for hook in self.compliance_hook["access_token_response"]:
            resp = hook(resp)
        return self.parse_response_token(resp)

    def _http_post(self, url: str, body: str | None = None, **kwargs: Any) -> Any:
        return self.post(url, data=url_decode(body or ""), **kwargs)


def session(profile: ResolvedProfile, what: str, trace: Trace | None = None) -> _Session:
    """An Authlib session with the profile's client auth, TLS options and answer check.

    Authlib's JWT code is imported only for the client_auth methods that sign assertions.
    """
    secret: Any = profile.client_secret.reveal() if profile.client_secret else None
    if profile.client_auth == "private_key_jwt":
        secret = keys.load_private_key(profile)
    elif profile.client_auth == "client_secret_jwt":
        secret = keys.load_hmac_key(profile)
    if not profile.tls.verify:
        from urllib3.exceptions import InsecureRequestWarning

        # oauthcli prints its own warning for verify: false, once per call.
        warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    s = _Session(
        profile.client_id,
        secret,
        token_endpoint_auth_method=profile.client_auth,
        revocation_endpoint_auth_method=profile.client_auth,
        scope=" ".join(profile.scope) or None,
        verify=profile.tls.requests_verify,
        cert=profile.tls.requests_cert,
        profile=profile,
        what=what,
        trace=trace or Trace(),
    )
    s.register_client_auth_method(("client_secret_basic", _encode_client_secret_basic))
    header = {"kid": profile.key_id} if profile.key_id else None
    if profile.client_auth == "private_key_jwt":
        from oauthcli.tokens.assertions import ShortLivedPrivateKeyJWT

        alg = profile.signing_alg or keys.default_alg(secret)
        s.register_client_auth_method(
            ShortLivedPrivateKeyJWT(profile.token_url, headers=header, alg=alg)
        )
    elif profile.client_auth == "client_secret_jwt":
        from oauthcli.tokens.assertions import ShortLivedClientSecretJWT

        alg = profile.signing_alg or "HS256"
        s.register_client_auth_method(
            ShortLivedClientSecretJWT(profile.token_url, headers=header, alg=alg)
        )
    check = _answer_check(profile, what, s.answers)
    s.register_compliance_hook("access_token_response", check)
    s.register_compliance_hook("refresh_token_response", check)
    return s


def _extras(profile: ResolvedProfile) -> str:
    pairs: list[tuple[str, str]] = []
    if profile.audience:
        pairs.append(("audience", profile.audience))
    pairs.extend(("resource", r) for r in profile.resource)
    pairs.extend(profile.extra_params.items())
    return urlencode(pairs)


def _request_options(profile: ResolvedProfile) -> dict[str, Any]:
    # verify and cert go with each request: set on the session only, requests lets
    # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE replace them (psf/requests#3829).
    return {
        "timeout": profile.timeout,
        "allow_redirects": False,
        "verify": profile.tls.requests_verify,
        "cert": profile.tls.requests_cert,
    }


def fetch(profile: ResolvedProfile, *, trace: Trace | None = None) -> TokenAnswer:
    """Run the profile's grant; the token endpoint's answer."""
    if profile.grant_type == "refresh_token":
        assert profile.refresh_token is not None
        return refresh(profile, profile.refresh_token, trace=trace)
    what = f"token request for profile '{profile.name}'"
    s = session(profile, what, trace)
    args: dict[str, Any] = {"body": _extras(profile), **_request_options(profile)}
    if profile.grant_type == "client_credentials":
        args["grant_type"] = "client_credentials"
    elif profile.grant_type == "password":
        args.update(
            grant_type="password", username=profile.username, password=_reveal(profile.password)
        )
    elif profile.grant_type == "jwt_bearer":
        args.update(grant_type=JWT_BEARER, assertion=_reveal(profile.assertion))
    elif profile.grant_type == "authorization_code":
        from oauthcli.tokens.authcode import authorize

        code, verifier = authorize(profile, s)
        args.update(
            grant_type="authorization_code",
            code=code,
            code_verifier=verifier,
            redirect_uri=profile.redirect_url,
        )
    else:
        raise GrantError(f"{what} failed: grant_type {profile.grant_type} is not supported")
    return _answered(s, profile, what, lambda: s.fetch_token(profile.token_url, **args))


def refresh(
    profile: ResolvedProfile, refresh_token: Secret, *, trace: Trace | None = None
) -> TokenAnswer:
    """Exchange a refresh token; the token endpoint's answer."""
    what = f"token refresh for profile '{profile.name}'"
    s = session(profile, what, trace)
    return _answered(
        s,
        profile,
        what,
        lambda: s.refresh_token(
            profile.token_url,
            refresh_token=refresh_token.reveal(),
            # RFC 8707 §2.2: the resources (and audience, extras) go with a refresh too.
            body=_extras(profile),
            **_request_options(profile),
        ),
    )


def revoke(
    profile: ResolvedProfile, token: Secret, hint: str, *, trace: Trace | None = None
) -> None:
    """Revoke one token at the profile's revocation_url (RFC 7009)."""
    url = profile.revocation_url
    assert url is not None
    what = f"revocation of the {hint.replace('_', ' ')} for profile '{profile.name}'"
    s = session(profile, what, trace)

    def call() -> None:
        resp = s.revoke_token(
            url, token=token.reveal(), token_type_hint=hint, **_request_options(profile)
        )
        if resp.status_code != 200:
            _refusal(resp, url, what)

    _call(s, profile, what, call, url)


def _reveal(secret: Secret | None) -> str | None:
    return secret.reveal() if secret else None


def _answered(
    s: _Session, profile: ResolvedProfile, what: str, fn: Callable[[], Any]
) -> TokenAnswer:
    """Run a token request; the answer :func:`_answer_check` read (not Authlib's dict)."""
    _call(s, profile, what, fn)
    return s.answers[-1]


def _call(
    s: _Session,
    profile: ResolvedProfile,
    what: str,
    fn: Callable[[], Any],
    url: str | None = None,
) -> None:
    """Run one Authlib call, asked once more after a 429/503 with a ``Retry-After`` that fits
    in the profile's timeout."""
    url = url or profile.token_url
    deadline = time.monotonic() + profile.timeout
    try:
        _transport(profile, what, fn, url)
    except GrantError as exc:
        if exc.retry_after is None:
            raise
        left = deadline - time.monotonic()
        if exc.retry_after > left:
            raise GrantError(
                f"{exc}; it asks to retry after {_wait(exc.retry_after)}, more than the "
                f"{max(left, 0):.1f} s left of the profile's timeout ({profile.timeout:g} s)",
                error=exc.error,
                transient=True,
            ) from None
        s.trace.note(f"{what}: retrying once in {exc.retry_after:.2f} s (Retry-After)")
        sleep(exc.retry_after)
        try:
            _transport(profile, what, fn, url)
        except GrantError as again:
            again.retry_after = None
            raise


def _wait(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 10**7 else "longer than anyone will wait"


def _transport(profile: ResolvedProfile, what: str, fn: Callable[[], Any], url: str) -> None:
    """Run ``fn``, turning transport failures into a GrantError naming ``url``."""
    try:
        fn()
    except requests.Timeout:
        raise GrantError(
            f"{what} failed: no answer from {url} within {profile.timeout:g} s", transient=True
        ) from None
    except requests.exceptions.SSLError as exc:
        raise GrantError(f"{what} failed: TLS error talking to {url}: {_reason(exc)}") from None
    except requests.ConnectionError as exc:
        raise GrantError(
            f"{what} failed: cannot connect to {url}: {_reason(exc)}", transient=True
        ) from None
    except requests.RequestException as exc:
        raise GrantError(f"{what} failed: {url}: {_reason(exc)}") from None
    except OSError as exc:
        # requests reports an unreadable ca_bundle or client cert/key as a bare OSError.
        raise RegistryError.at(profile.source, None, "tls", str(exc)) from None


def _reason(exc: Exception) -> str:
    text = str(exc)
    for pattern in (
        # Up to OpenSSL's "(_ssl.c:1006)": the host the certificate is not valid for is quoted.
        r"(certificate verify failed.*?)\.? \(_ssl\.c:\d+\)",
        r"(certificate verify failed[^'\")]*)",
        r"\[Errno -?\d+\] ([^'\")]+)",
        r"(Failed to resolve[^'\")(]*)",
        r"([A-Za-z]+Error: [^'\")]+)",
    ):
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip()
    return _truncate(text, 160)


def _truncate(text: str, limit: int) -> str:
    """One line of at most ``limit`` characters, without terminal control characters.

    Scrubbed before it is cut: a secret the server echoed, cut in half, is no longer
    one that :func:`~oauthcli.secret.scrub` would recognise when the line is printed.
    """
    text = " ".join(_CONTROLS.sub(" ", scrub_spread(text[: limit * 8])).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _answer_check(
    profile: ResolvedProfile, what: str, answers: list[TokenAnswer]
) -> Callable[[Any], Any]:
    def check(resp: requests.Response) -> requests.Response:
        url = profile.token_url
        if 300 <= resp.status_code < 400:
            where = resp.headers.get("Location")
            raise GrantError(
                f"{what} failed: {url} answered HTTP {resp.status_code} redirect"
                f"{f' to {_truncate(where, 120)}' if where else ''}; token requests are never "
                "redirected, check token_url"
            )
        data = _refusal(resp, url, what)
        if "error" in data:  # not a string (those are refusals): Authlib would fail on it
            raise GrantError(
                f"{what} failed: {url} answered an access_token together with "
                f"error={_truncate(repr(data['error']), 40)}; a token answer has no error member"
            )
        if data.get("ok") is False:  # Slack's {"ok": false, ...} without an error
            raise GrantError(f"{what} failed: {url} answered ok: false (HTTP {resp.status_code})")
        try:
            answers.append(answer.read(data))
        except answer.UnusableAnswer as exc:
            raise GrantError(f"{what} failed: {url} answered {exc}") from None
        # Authlib parses the answer again (and int()s expires_in): it gets the checked one.
        resp._content = json.dumps({"access_token": "-", "token_type": "Bearer"}).encode()
        return resp

    return check


def _refusal(resp: requests.Response, url: str, what: str) -> dict[str, Any]:
    """The answer's members, or a GrantError describing what came instead."""
    status = resp.status_code
    transient = status >= 500 or status == 429
    wait = _retry_after(resp) if status in _RETRY_STATUSES else None
    data = answer.decode(resp.content, resp.headers.get("Content-Type"))
    if data is not None and isinstance(data.get("error"), str):
        error = _truncate(data["error"], 60)
        desc = data.get("error_description")
        text = f"{what} failed: {error}"
        if isinstance(desc, str) and desc.strip():
            text += f": {_truncate(desc, 300)}"
        text += f" (HTTP {status} from {url})"
        if error in _HINTS:
            text += f"; {_HINTS[error]}"
        raise GrantError(
            text,
            error=error,
            transient=transient or error in _TRANSIENT_ERRORS,
            retry_after=wait,
        )
    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"
    if data is None:
        first = next((line for line in resp.text.splitlines() if line.strip()), "")
        body = f": {_truncate(first, 120)}" if first else " (empty body)"
        raise GrantError(
            f"{what} failed: {url} answered HTTP {status} ({_truncate(ctype, 60)}), "
            f"not a JSON object{body}",
            transient=transient,
            retry_after=wait,
        )
    if status >= 400:
        raise GrantError(
            f"{what} failed: {url} answered HTTP {status} without an OAuth error: "
            f"{_truncate(resp.text, 120)}",
            transient=transient,
            retry_after=wait,
        )
    return data


def _retry_after(resp: requests.Response) -> float | None:
    """``Retry-After`` in seconds (very large when absurdly long), None if absent or garbage."""
    value = resp.headers.get("Retry-After")
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return math.inf if len(value) > 12 else float(value)
    try:
        return retry_after(value, math.inf)
    except (ValueError, OverflowError):  # "²" passes str.isdigit()
        return None
