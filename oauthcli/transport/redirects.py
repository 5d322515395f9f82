"""Redirects, followed by hand, and the rules that decide which are followed and with what.

GET/HEAD follow any redirect; other methods only 307/308, and never with a body that
carries a secret; never more than :data:`MAX_REDIRECTS`. Only http and https are
followed, and never from https (or loopback) down to plain http:// to another host.
Once the chain leaves the first origin (scheme, host or port) the credential headers
and cookies stay behind (requests' own rule keeps them across ports and schemes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import cast
from urllib.parse import urldefrag, urljoin, urlsplit

import requests
from requests.cookies import RequestsCookieJar, get_cookie_header
from requests.structures import CaseInsensitiveDict

from oauthcli.auth.base import Outgoing
from oauthcli.errors import NetworkError, RegistryError
from oauthcli.request.resolved import ResolvedRequest
from oauthcli.transport.adapter import Deadline, UnsendableURL, prepare
from oauthcli.transport.exchange import Answer, discard
from oauthcli.transport.http import carries_secret
from oauthcli.urls import is_loopback, origin

MAX_REDIRECTS = 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

SendOne = Callable[[requests.PreparedRequest, ResolvedRequest], tuple[requests.Response, Deadline]]


def redirect_refusal(
    method: str, status: int, target: str, body: bytes | None, start: str = ""
) -> str | None:
    """Why a redirect from a call to ``start`` is not followed to ``target``, or None."""
    parts = urlsplit(target)
    if parts.scheme not in ("http", "https"):
        return "only http and https are followed"
    if parts.scheme == "http" and not _plain_http_allowed(parts.hostname, start):
        return "it would leave https or loopback for plain http:// to another host"
    if method in ("GET", "HEAD"):
        return None
    if status not in (307, 308):
        return f"a {method} is only re-sent on 307/308"
    if body and carries_secret(body):
        return "the request body carries credentials"
    return None


def _plain_http_allowed(host: str | None, start: str) -> bool:
    """A redirect may lead to plain http:// on loopback, or when the call itself went over
    plain http:// to a host that is not loopback (which takes ``allow_insecure_http``):
    an https call is never downgraded, nor a loopback one sent off the machine unencrypted."""

    if is_loopback(host):
        return True
    first = urlsplit(start)
    return first.scheme == "http" and not is_loopback(first.hostname)


def follow(
    send_one: SendOne, req: ResolvedRequest, request: Outgoing, warn: Callable[[str], None]
) -> Answer:
    """Send one attempt of ``req`` as its auth flow made it (``request``), following
    redirects; the final response's body is not read."""
    trace = request.trace
    url, method, body = req.full_url, req.http_method, req.body
    left = False
    jar = RequestsCookieJar()
    secret_names = req.auth.secret_headers()
    headers: Mapping[str, str] = request.headers
    for hop in range(MAX_REDIRECTS + 1):
        try:
            prepared = prepare(method, url, cast("CaseInsensitiveDict[str]", headers), body)
        except UnsendableURL as exc:
            if hop:
                raise NetworkError(f"cannot follow the redirect to {url}: {exc}") from None
            raise RegistryError.at(
                req.source, None, "endpoint", f"cannot send to {url}: {exc}"
            ) from None
        if not left and len(jar) and "Cookie" not in prepared.headers:
            cookie = get_cookie_header(jar, prepared)
            if cookie:
                prepared.headers["Cookie"] = cookie
        sent = request.credential is not None and not left
        signer = request.signer
        if signer is not None and not left:  # a fresh DPoP proof for this hop's URL
            signer.sign(prepared.method or method, prepared.url or url, prepared.headers)
        trace.request(prepared, secret_names)
        response, deadline = send_one(prepared, req)
        answer = Answer(response, deadline, sent, left)
        trace.response(response)
        if signer is not None:
            signer.answered(response.url or url, response.headers)
        if not left:
            jar.update(response.cookies)
        status = response.status_code
        location = response.headers.get("Location")
        if status not in REDIRECT_STATUSES or not location:
            return answer
        try:
            target = urldefrag(urljoin(url, location))[0]
            origin(target)  # a port out of range raises here
        except ValueError as exc:  # Location: http://[::1 or http://host:99999/
            discard(answer)
            shown = location if len(location) <= 200 else location[:199] + "…"
            raise NetworkError(
                f"cannot follow the {status} redirect from {url}: "
                f"Location {shown!r} is not a valid URL ({exc})"
            ) from None
        refusal = redirect_refusal(method, status, target, body, req.full_url)
        if refusal:
            trace.note(f"not following {status} to {target}: {refusal}")
            if "plain http" in refusal:
                warn(f"not following the {status} redirect to {target}: {refusal}")
            return answer
        if not left and origin(target) != origin(req.full_url):
            left = True
            trace.note(
                f"redirect to another origin {origin(target)}: credentials and cookies stay behind"
            )
            # A copy: the request's own headers are sent again on a retry or after a 401.
            drop = secret_names - {"proxy-authorization"}
            headers = CaseInsensitiveDict(
                {k: v for k, v in headers.items() if k.lower() not in drop}
            )
        trace.note(f"following {status} to {target}")
        discard(answer)
        url = target
        if status in (301, 302, 303):
            body = None
    raise NetworkError(f"too many redirects (more than {MAX_REDIRECTS}) from {req.full_url}")
