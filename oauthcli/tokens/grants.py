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
  :class:`GrantError` instead of a parser exception.
"""

from __future__ import annotations

import re
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

from oauthcli.errors import RegistryError, TokenEndpointError
from oauthcli.resolved import ResolvedProfile
from oauthcli.secret import Secret
from oauthcli.tokens import answer, keys
from oauthcli.tokens.answer import TokenAnswer
from oauthcli.tokens.service import MAX_LIFETIME

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "slow_down"})
_HINTS = {
    "invalid_client": "check client_id, the client secret or key, and client_auth",
    "invalid_scope": "check the profile's scope",
    "unauthorized_client": "the client may not use this grant_type",
    "unsupported_grant_type": "the server does not offer this grant_type",
}


class GrantError(TokenEndpointError):
    """The token endpoint refused, answered garbage or could not be reached."""


def _encode_client_secret_basic(
    client: Any, method: str, uri: str, headers: dict[str, str], body: str
) -> tuple[str, dict[str, str], str]:
    import base64

    secret = client.client_secret or ""
    pair = f"{quote_plus(client.client_id, safe='')}:{quote_plus(secret, safe='')}"
    headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
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
        self, client_id: str, client_secret: Any, *, verify: Any, cert: Any, **kw: Any
    ) -> None:
        requests.Session.__init__(self)
        self.verify = verify
        self.cert = cert
        OAuth2Client.__init__(
            self, session=self, client_id=client_id, client_secret=client_secret, **kw
        )

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


def session(profile: ResolvedProfile, what: str) -> _Session:
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
    check = _answer_check(profile, what)
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


def fetch(profile: ResolvedProfile) -> TokenAnswer:
    """Run the profile's grant; the token endpoint's answer."""
    if profile.grant_type == "refresh_token":
        assert profile.refresh_token is not None
        return refresh(profile, profile.refresh_token)
    what = f"token request for profile '{profile.name}'"
    s = session(profile, what)
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
        raise GrantError(f"{what}: grant_type {profile.grant_type} is not supported")
    return answer.read(_call(profile, what, lambda: s.fetch_token(profile.token_url, **args)))


def refresh(profile: ResolvedProfile, refresh_token: Secret) -> TokenAnswer:
    """Exchange a refresh token; the token endpoint's answer."""
    what = f"token refresh for profile '{profile.name}'"
    s = session(profile, what)
    return answer.read(
        _call(
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
    )


def revoke(profile: ResolvedProfile, token: Secret, hint: str) -> None:
    """Revoke one token at the profile's revocation_url (RFC 7009)."""
    url = profile.revocation_url
    assert url is not None
    what = f"revocation of the {hint.replace('_', ' ')} for profile '{profile.name}'"
    s = session(profile, what)

    def call() -> dict[str, Any]:
        resp = s.revoke_token(
            url, token=token.reveal(), token_type_hint=hint, **_request_options(profile)
        )
        if resp.status_code != 200:
            _refusal(resp, url, what)
        return {}

    _call(profile, what, call, url)


def _reveal(secret: Secret | None) -> str | None:
    return secret.reveal() if secret else None


def _call(
    profile: ResolvedProfile,
    what: str,
    fn: Callable[[], Any],
    url: str | None = None,
) -> dict[str, Any]:
    """Run one Authlib call, turning transport failures into a GrantError naming ``url``."""
    url = url or profile.token_url
    try:
        result = fn()
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
    return dict(result) if isinstance(result, dict) else {}


def _reason(exc: Exception) -> str:
    text = str(exc)
    for pattern in (
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
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _answer_check(profile: ResolvedProfile, what: str) -> Callable[[Any], Any]:
    def check(resp: requests.Response) -> requests.Response:
        url = profile.token_url
        if 300 <= resp.status_code < 400:
            where = resp.headers.get("Location")
            raise GrantError(
                f"{what} failed: {url} answered HTTP {resp.status_code} redirect"
                f"{f' to {where}' if where else ''}; token requests are never redirected, "
                "check token_url"
            )
        data = _refusal(resp, url, what)
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            keys_seen = ", ".join(sorted(data)) or "none"
            raise GrantError(
                f"{what} failed: {url} answered JSON without an access_token (keys: {keys_seen})"
            )
        if "error" in data:  # not a string (those are refusals): Authlib would fail on it
            raise GrantError(
                f"{what} failed: {url} answered an access_token together with "
                f"error={_truncate(repr(data['error']), 40)}; a token answer has no error member"
            )
        expires_in = data.get("expires_in")
        if expires_in is not None and _seconds(expires_in) is None:
            raise GrantError(
                f"{what} failed: {url} answered expires_in={_truncate(repr(expires_in), 40)}, "
                "not seconds"
            )
        return resp

    return check


def _refusal(resp: requests.Response, url: str, what: str) -> dict[str, Any]:
    """The JSON object answered, or a GrantError describing what came instead."""
    status = resp.status_code
    transient = status >= 500 or status == 429
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        error = data["error"]
        desc = data.get("error_description")
        text = f"{what} failed: {error}"
        if isinstance(desc, str) and desc.strip():
            text += f": {_truncate(desc, 300)}"
        text += f" (HTTP {status} from {url})"
        if error in _HINTS:
            text += f"; {_HINTS[error]}"
        raise GrantError(text, error=error, transient=transient or error in _TRANSIENT_ERRORS)
    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"
    if not isinstance(data, dict):
        first = next((line for line in resp.text.splitlines() if line.strip()), "")
        body = f": {_truncate(first, 120)}" if first else " (empty body)"
        raise GrantError(
            f"{what} failed: {url} answered HTTP {status} ({ctype}), not a JSON object{body}",
            transient=transient,
        )
    if status >= 400:
        raise GrantError(
            f"{what} failed: {url} answered HTTP {status} without an OAuth error: "
            f"{_truncate(resp.text, 120)}",
            transient=transient,
        )
    return data


def _seconds(value: Any) -> int | None:
    """``expires_in`` as Authlib reads it (``int(value)``), None if it cannot or if it is
    beyond :data:`~oauthcli.tokens.service.MAX_LIFETIME`."""
    if isinstance(value, bool):
        return None
    try:
        seconds = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return seconds if abs(seconds) <= MAX_LIFETIME else None
