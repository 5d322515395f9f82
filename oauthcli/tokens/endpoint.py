"""The token endpoint through Authlib's OAuth 2.0 client: one exchange and its failures.

Authlib builds every request (``OAuth2Client.fetch_token``, ``refresh_token``,
``revoke_token``); which request, with which parameters, is
:mod:`oauthcli.tokens.grants`' table, and how the client authenticates is
:mod:`oauthcli.tokens.clientauth`'s. :class:`Session` puts that client on a
requests session the way Authlib's ``OAuth2Session`` does, without importing
``authlib.integrations``: its OAuth 1, OpenID Connect, joserfc and cryptography
imports cost ~70 ms that a client secret never needs. Two things are adjusted
on top of Authlib:

- Authlib posts the form as ``data=dict(url_decode(body))``, which keeps one of
  several ``resource`` values (RFC 8707 §2 allows repeating it; Authlib has no
  RFC 8707 support, authlib/authlib#524): :meth:`Session._fetch_token` and
  :meth:`Session._http_post` post the decoded pairs as they are.
- Each answer is checked by a compliance hook before Authlib parses it, so a
  redirect, an HTML page or JSON without ``access_token`` becomes one readable
  :class:`GrantError` instead of a parser exception. The hook reads the answer
  with :mod:`oauthcli.tokens.answer` (JSON in any content type, form-encoded,
  numbers as strings) and hands Authlib only the normalised result.

Every exchange goes through :meth:`Session.send`: it sends ``User-Agent:
oauthcli/<version>``, shows the exchange on the caller's :class:`~oauthcli.trace.Trace`
(``-v``), reads at most :data:`~oauthcli.tokens.answer.MAX_ANSWER_BYTES` of an
answer within the profile's ``timeout``, and makes every secret value sent or
issued known to :func:`oauthcli.secret.scrub` before anything can print it. For a
``dpop: true`` profile each request to the token endpoint carries a fresh DPoP proof
(:mod:`oauthcli.tokens.dpop`), each answer's ``DPoP-Nonce`` is remembered, and a
``use_dpop_nonce`` refusal is asked once more with it (:func:`transport`).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Callable
from typing import Any

import requests
from authlib.common.urls import url_decode
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.client import OAuth2Client
from requests.auth import AuthBase

import oauthcli.tokens.answer as answer
from oauthcli.errors import GrantError, RegistryError
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import remember, scrub_spread
from oauthcli.tokens.answer import TokenAnswer
from oauthcli.tokens.clientauth import CLIENT_AUTHS
from oauthcli.trace import Trace
from oauthcli.transport.adapter import Deadline, PooledAdapter, watching
from oauthcli.transport.http import DEFAULT_HEADERS, retry_after

_TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "slow_down"})
_HINTS = {
    "invalid_client": "check client_id, the client secret or key, and client_auth",
    "invalid_scope": "check the profile's scope",
    "unauthorized_client": "the client may not use this grant_type",
    "unsupported_grant_type": "the server does not offer this grant_type",
    "invalid_dpop_proof": "the server refused oauthcli's DPoP proof (RFC 9449); check the clock",
    "use_dpop_nonce": "the server wants DPoP-bound tokens: set dpop: true in the profile",
}
RETRY_STATUSES = frozenset({429, 503})
# Members of an answer that carry a credential, remembered before any of it is shown.
_SECRET_MEMBERS = ("access_token", "refresh_token", "id_token", "issued_token")
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class _ClientAuth(AuthBase, ClientAuth):
    """Authlib's client authentication as a requests auth, as ``OAuth2ClientAuth`` is."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.url, r.headers, r.body = self.prepare(r.method, r.url, r.headers, r.body)
        return r


class Session(OAuth2Client, requests.Session):
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
        proving = self.profile.dpop and _same_endpoint(request.url, self.profile.token_url)
        if proving:
            from oauthcli.tokens.dpop import NONCES, key_for

            url = request.url or self.profile.token_url
            proof, _ = key_for(self.profile).proof(
                request.method or "POST", url, nonce=NONCES.get(url)
            )
            request.headers["DPoP"] = proof
        self.trace.token_request(request, frozenset({"authorization", "dpop"}))
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
        if proving:
            NONCES.answered(request.url or self.profile.token_url, resp.headers)
        data = answer.decode(resp.content, resp.headers.get("Content-Type"))
        for name in _SECRET_MEMBERS:
            value = data.get(name) if data else None
            if isinstance(value, str):
                remember(value)
        self.trace.token_response(resp)
        return resp

    def _timed_out(self, request: requests.PreparedRequest) -> GrantError:
        return GrantError(
            f"{self.what} failed: no complete answer from {request.url} within "
            f"{self.profile.timeout:g} s",
            transient=True,
        )

    def _bounded_body(self, resp: requests.Response) -> bytes:
        # A server sending without end is cut off here; one sending slowly, by the deadline.
        from oauthcli.transport.http import bounded_body

        limit = answer.MAX_ANSWER_BYTES
        body = bounded_body(resp, limit)
        if body is None:
            raise GrantError(
                f"{self.what} failed: {resp.url} answered more than {limit // 1024} KiB; "
                "a token answer is a few KiB"
            )
        return body

    # Authlib passes data=dict(url_decode(body)), which keeps one of repeated form fields
    # (several RFC 8707 resource values); authlib/authlib#524 tracks RFC 8707 in Authlib.
    def _fetch_token(self, url: str, body: str = "", **kwargs: Any) -> Any:
        kwargs.pop("method", None)
        headers, auth = kwargs.pop("headers", None), kwargs.pop("auth", None)
        resp = self.post(url, data=url_decode(body), headers=headers, auth=auth, **kwargs)
        for hook in self.compliance_hook["access_token_response"]:
            resp = hook(resp)
        return self.parse_response_token(resp)

    def _http_post(self, url: str, body: str | None = None, **kwargs: Any) -> Any:
        return self.post(url, data=url_decode(body or ""), **kwargs)


def session(
    profile: ResolvedProfile,
    what: str,
    trace: Trace | None = None,
    *,
    read: Callable[[dict[str, Any]], TokenAnswer] = answer.read,
) -> Session:
    """An Authlib session with the profile's client auth (:data:`CLIENT_AUTHS`), TLS options
    and answer check; ``read`` turns a checked answer into a :class:`TokenAnswer`.

    Authlib's JWT code is imported only for the client_auth methods that sign assertions.
    """
    auth = CLIENT_AUTHS[profile.client_auth]
    secret = auth.credential(profile)
    if not profile.tls.verify:
        from urllib3.exceptions import InsecureRequestWarning

        # oauthcli prints its own warning for verify: false, once per call.
        warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    s = Session(
        profile.client_id,
        secret,
        token_endpoint_auth_method=auth.name,
        revocation_endpoint_auth_method=auth.name,
        scope=" ".join(profile.scope) or None,
        verify=profile.tls.requests_verify,
        cert=profile.tls.requests_cert,
        profile=profile,
        what=what,
        trace=trace or Trace(),
    )
    s.register_client_auth_method((auth.name, auth.method(profile, secret)))
    check = _answer_check(profile, what, s.answers, read)
    s.register_compliance_hook("access_token_response", check)
    s.register_compliance_hook("refresh_token_response", check)
    return s


def transport(profile: ResolvedProfile, what: str, fn: Callable[[], Any], url: str) -> None:
    """Run ``fn``, turning transport failures into a GrantError naming ``url``; for a
    ``dpop: true`` profile a ``use_dpop_nonce`` refusal (RFC 9449 §8) is asked once more,
    with the nonce the server gave, and a second one is a nonce loop."""
    try:
        _transport(profile, what, fn, url)
    except GrantError as exc:
        if exc.error != "use_dpop_nonce" or not profile.dpop:
            raise
        from oauthcli.tokens.dpop import NONCES

        if NONCES.get(url) is None:
            raise GrantError(
                f"{what} failed: {url} answered use_dpop_nonce without a usable DPoP-Nonce "
                "header, so no proof can carry the nonce it wants"
            ) from None
        try:
            _transport(profile, what, fn, url)
        except GrantError as again:
            if again.error != "use_dpop_nonce":
                raise
            raise GrantError(
                f"{what} failed: {url} asked for a new DPoP nonce (use_dpop_nonce) again after "
                "the retry that carried the one it gave: a nonce loop; the server's nonces "
                "change faster than they can be used"
            ) from None


def _same_endpoint(url: str | None, token_url: str) -> bool:
    """``url`` is the token endpoint (a proof goes there; not to revocation or device URLs)."""
    from oauthcli.tokens.dpop import htu

    return url is not None and bool(token_url) and htu(url) == htu(token_url)


def _transport(profile: ResolvedProfile, what: str, fn: Callable[[], Any], url: str) -> None:
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
    profile: ResolvedProfile,
    what: str,
    answers: list[TokenAnswer],
    read: Callable[[dict[str, Any]], TokenAnswer],
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
        data = refusal(resp, url, what)
        if "error" in data:  # not a string (those are refusals): Authlib would fail on it
            raise GrantError(
                f"{what} failed: {url} answered an access_token together with "
                f"error={_truncate(repr(data['error']), 40)}; a token answer has no error member"
            )
        if data.get("ok") is False:  # Slack's {"ok": false, ...} without an error
            raise GrantError(f"{what} failed: {url} answered ok: false (HTTP {resp.status_code})")
        try:
            answers.append(read(data))
        except answer.UnusableAnswer as exc:
            raise GrantError(f"{what} failed: {url} answered {exc}") from None
        # Authlib parses the answer again (and int()s expires_in): it gets the checked one.
        resp._content = json.dumps({"access_token": "-", "token_type": "Bearer"}).encode()
        return resp

    return check


def refusal(resp: requests.Response, url: str, what: str) -> dict[str, Any]:
    """The answer's members, or a GrantError describing what came instead."""
    status = resp.status_code
    transient = status >= 500 or status == 429
    wait = _retry_after(resp) if status in RETRY_STATUSES else None
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
