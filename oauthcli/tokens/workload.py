"""Workload identity: a client assertion issued elsewhere (``client_auth: client_assertion``).

A CI job or a pod holds no client secret: the platform issues it a short-lived JWT that the
authorization server trusts for this client (Entra ID federated credentials, Kubernetes
projected service account tokens, GitHub Actions' OIDC token). :func:`assertion` gets it
anew for every token request, as RFC 7521 §4.2 ``client_assertion`` with the ``jwt-bearer``
type (:mod:`oauthcli.tokens.clientauth` sends it):

- a ``${file:…}`` template is read again each time, never kept from an earlier read: the
  kubelet and the Azure workload identity webhook rewrite the file before it expires;
- a literal or ``${env:…}`` value is the one rendered when the profile was resolved;
- ``{github_actions: {audience: AUD}}`` asks GitHub Actions' ID-token endpoint:
  ``GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=AUD`` with ``Authorization: bearer
  $ACTIONS_ID_TOKEN_REQUEST_TOKEN``; the answer's ``value`` is the JWT.

Whatever it is, it must look like a JWT (three base64url parts, a JSON header with ``alg``)
before it is sent. Every failure is a :class:`~oauthcli.errors.GrantError` (exit 6) naming the
file or variable, never the assertion or the request token, which are known secrets from the
moment they are read.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from oauthcli.errors import GrantError, TemplateError
from oauthcli.request.resolved import AssertionSource
from oauthcli.secret import Secret, remember
from oauthcli.urls import is_loopback

if TYPE_CHECKING:
    import requests

    from oauthcli.request.resolved import ResolvedProfile

#: RFC 7523 §2.2's client_assertion_type.
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
URL_VARIABLE = "ACTIONS_ID_TOKEN_REQUEST_URL"
TOKEN_VARIABLE = "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
PERMISSION = "the job needs `permissions: id-token: write`"
#: Bytes of GitHub's answer read at most: it is one JWT of a few KiB.
MAX_ANSWER_BYTES = 256 * 1024

_B64URL = re.compile(r"[A-Za-z0-9_-]+")


def assertion(profile: ResolvedProfile) -> str:
    """The client assertion for one token request, read now."""
    source = profile.client_assertion
    what = f"token request for profile '{profile.name}' failed"
    if source is None:
        raise GrantError(f"{what}: client_auth client_assertion needs client_assertion")
    if isinstance(source, Secret):
        value, origin = source.reveal(), "client_assertion"
    elif source.github_audience is not None:
        value, origin = github_actions(profile, source.github_audience, what), "GitHub Actions"
    else:
        value, origin = _read(source, what), f"client_assertion file {source.files()}"
    value = value.strip()
    remember(value)
    problem = jwt_problem(value)
    if problem:
        raise GrantError(f"{what}: the assertion from {origin} is not a JWT ({problem})")
    return value


def _read(source: AssertionSource, what: str) -> str:
    assert source.template is not None
    try:
        value = source.template.render({}, base_dir=source.source.parent)
    except TemplateError as exc:
        raise GrantError(
            f"{what}: client_assertion: {exc}; a projected token file appears when the "
            "workload runs (check the volume mount, or AZURE_FEDERATED_TOKEN_FILE)"
        ) from None
    if not value.strip():
        raise GrantError(f"{what}: client_assertion file {source.files()} is empty")
    return value


def jwt_problem(value: str) -> str | None:
    """Why ``value`` is not a compact JWS, or None."""
    parts = value.split(".")
    if len(parts) != 3 or not all(_B64URL.fullmatch(p) for p in parts[:2]):
        return "a JWT is three base64url parts joined by dots"
    if parts[2] and not _B64URL.fullmatch(parts[2]):
        return "its signature is not base64url"
    try:
        header = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    except (ValueError, binascii.Error):
        return "its header is not base64url JSON"
    if not isinstance(header, dict) or not isinstance(header.get("alg"), str):
        return "its header names no alg"
    if not parts[2] or header["alg"].lower() == "none":
        return "it is unsigned"
    return None


def github_actions(profile: ResolvedProfile, audience: str, what: str) -> str:
    """GitHub Actions' OIDC ID token for ``audience`` (the ``value`` of its answer)."""
    import requests

    from oauthcli.transport.adapter import Deadline, PooledAdapter, watching
    from oauthcli.transport.http import DEFAULT_HEADERS

    url = os.environ.get(URL_VARIABLE, "").strip()
    if not url:
        raise GrantError(
            f"{what}: {URL_VARIABLE} is not set: client_assertion github_actions works inside "
            f"a GitHub Actions job, and {PERMISSION}"
        )
    request_token = os.environ.get(TOKEN_VARIABLE, "").strip()
    if not request_token:
        raise GrantError(f"{what}: {TOKEN_VARIABLE} is not set; {PERMISSION}")
    remember(request_token)
    parts = urlsplit(url)
    where = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if parts.scheme != "https" and not (parts.scheme == "http" and is_loopback(parts.hostname)):
        raise GrantError(f"{what}: {URL_VARIABLE} is not an https URL ({where[:120]})")
    full = f"{url}{'&' if '?' in url else '?'}audience={quote(audience, safe='')}"
    # The profile's timeout bounds the whole answer (requests' bounds each read: a byte
    # every few seconds would keep the job waiting for ever).
    deadline = Deadline(profile.timeout)
    session = requests.Session()
    session.mount("https://", PooledAdapter())
    session.mount("http://", PooledAdapter())
    try:
        with (
            watching(deadline),
            session.get(
                full,
                headers={
                    "Authorization": f"bearer {request_token}",
                    "Accept": "application/json",
                    "User-Agent": DEFAULT_HEADERS["User-Agent"],
                },
                timeout=profile.timeout,
                allow_redirects=False,  # the request token goes to GitHub's host only
                stream=True,
            ) as resp,
        ):
            status = resp.status_code
            body = _bounded(resp, what, where)
        if deadline.expired:
            raise requests.Timeout()
    except requests.RequestException as exc:
        if not (deadline.expired or isinstance(exc, requests.Timeout)):
            raise GrantError(
                f"{what}: cannot reach GitHub Actions' ID-token endpoint {where}: "
                f"{type(exc).__name__}",
                transient=True,
            ) from None
        raise GrantError(
            f"{what}: GitHub Actions' ID-token endpoint {where} gave no answer within "
            f"{profile.timeout:g} s",
            transient=True,
        ) from None
    finally:
        deadline.finish()
        session.close()
    if status in (401, 403):
        raise GrantError(
            f"{what}: GitHub Actions refused the ID-token request (HTTP {status} from {where}): "
            f"{TOKEN_VARIABLE} was not accepted; {PERMISSION}"
        )
    if status != 200:
        raise GrantError(
            f"{what}: GitHub Actions' ID-token endpoint {where} answered HTTP {status}",
            transient=status >= 500 or status == 429,
        )
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    value = data.get("value") if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise GrantError(
            f"{what}: GitHub Actions' ID-token endpoint {where} answered without a token "
            '(expected JSON with a "value")'
        )
    remember(value)
    return value


def _bounded(resp: requests.Response, what: str, where: str) -> bytes:
    from oauthcli.transport.http import bounded_body

    body = bounded_body(resp, MAX_ANSWER_BYTES)
    if body is None:
        raise GrantError(
            f"{what}: GitHub Actions' ID-token endpoint {where} answered more than "
            f"{MAX_ANSWER_BYTES // 1024} KiB"
        )
    return body
