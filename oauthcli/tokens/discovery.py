"""The issuer's metadata (RFC 8414, OpenID Connect Discovery 1.0): endpoints from ``issuer:``.

A profile with ``issuer`` gets the endpoints it does not write itself from the
authorization server's metadata, when a token is needed (:func:`complete`, called
by :mod:`oauthcli.tokens.grants` before each token request and by ``token revoke``):
``token_url``, ``revocation_url``, ``authorization_url`` and
``device_authorization_url`` (:data:`ENDPOINTS`); the profile's own values win.
The metadata is asked for at RFC 8414's ``/.well-known/oauth-authorization-server``
(inserted between host and path for an issuer with a path, §3.1), then at OpenID's
``{issuer}/.well-known/openid-configuration``. Its ``issuer`` must be the configured
one exactly (§3.3), and every endpoint it gives must be a URL oauthcli would send to
(https, or http to loopback or with ``allow_insecure_http``), else it is a
:class:`GrantError` (exit 6) naming both.

The fetch goes through the transport's adapter with the profile's TLS settings and
``timeout`` (for the whole answer), a body cap of :data:`MAX_BYTES`, and redirects
followed only within the issuer's origin. Known members beyond the endpoints are kept
on the profile (``ResolvedProfile.metadata``: ``jwks_uri``,
``token_endpoint_auth_methods_supported``, ...): after ``invalid_client`` with a
``client_auth`` the server does not list, :func:`hint` says so.

Metadata is cached for :data:`MAX_AGE` seconds in ``issuers/`` of the token cache
folder, under the trust rules of :mod:`oauthcli.cachedir` (the folders ours, entries
0600 and ours, opened without following links); an entry that cannot be read or used is
a miss, never an error. ``get-token --force`` fetches it anew; ``token clear`` removes
it. Nothing here prints: what was done goes to the caller's :class:`~oauthcli.trace.Trace`.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from oauthcli.cachedir import Subfolder
from oauthcli.errors import GrantError
from oauthcli.trace import Trace
from oauthcli.urls import is_loopback, origin

if TYPE_CHECKING:
    import requests

    from oauthcli.request.resolved import ResolvedProfile

#: Profile key → the metadata member that fills it.
ENDPOINTS = {
    "token_url": "token_endpoint",
    "revocation_url": "revocation_endpoint",
    "authorization_url": "authorization_endpoint",
    "device_authorization_url": "device_authorization_endpoint",
}
#: URL members kept beside the endpoints, checked like them.
_OTHER_URLS = ("introspection_endpoint", "jwks_uri", "pushed_authorization_request_endpoint")
#: List-of-strings members kept for the token code (client auth hint, grants, DPoP).
_LISTS = (
    "token_endpoint_auth_methods_supported",
    "grant_types_supported",
    "dpop_signing_alg_values_supported",
    "code_challenge_methods_supported",
    "scopes_supported",
)
#: Seconds a fetched document is used before it is asked for again.
MAX_AGE = 3600.0
#: Bytes beyond which an answer is not metadata (real ones are a few KiB).
MAX_BYTES = 256 * 1024
MAX_REDIRECTS = 3
#: What a client_auth of oauthcli is called in ``token_endpoint_auth_methods_supported``.
_WIRE_METHODS = {"client_assertion": "private_key_jwt"}
#: RFC 8414 §2: without the member, the server takes client_secret_basic.
_DEFAULT_METHODS = ("client_secret_basic",)
_FORMAT = "oauthcli-issuer-metadata-1"
#: ``issuers/`` of the cache folder; the names oauthcli gives entries, the only ones it removes.
_FOLDER = Subfolder("issuers", r"[0-9a-f]{32}\.json")
_CONTROLS = re.compile(r"[\x00-\x20\x7f-\x9f]")
_SHOWN_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")

clock: Callable[[], float] = time.time


class _Missing(Exception):
    """This well-known URL has no metadata (a 404, an HTML page): the next one is tried."""

    def __init__(self, reason: str, *, transient: bool = False) -> None:
        super().__init__(reason)
        self.transient = transient


def well_known(issuer: str) -> list[str]:
    """The metadata URLs asked, in order: RFC 8414 §3.1's, then OpenID's."""
    parts = urlsplit(issuer)
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path.rstrip("/")
    return [
        f"{base}/.well-known/oauth-authorization-server{path}",
        f"{base}{path}/.well-known/openid-configuration",
    ]


def complete(
    profile: ResolvedProfile,
    trace: Trace | None = None,
    *,
    needs: Iterable[str] = ("token_url",),
    force: bool = False,
) -> ResolvedProfile:
    """The profile with the endpoints it lacks filled from its issuer's metadata.

    Without ``issuer`` the profile itself; with metadata already on it, no fetch (unless
    ``force``). Raises :class:`GrantError` when the metadata cannot be had, is not the
    issuer's, or lacks an endpoint of ``needs`` the profile does not give.
    """
    if not profile.issuer:
        return profile
    if profile.metadata is None or force:
        trace = trace or Trace()
        metadata = None if force else _cached(profile, MAX_AGE)
        if metadata is None:
            metadata = fetch(profile, trace)
            _store(profile, metadata)
        else:
            trace.note(f"discovery: metadata of issuer {profile.issuer} from the cache")
        profile = fill(profile, metadata)
    for key in needs:
        member = ENDPOINTS.get(key)
        if member is not None and not getattr(profile, key, None):
            raise GrantError(
                f"issuer metadata has no {member}: {profile.issuer} does not say where "
                f"profile '{profile.name}' finds its {key}; set {key} in {profile.source.name}"
            )
    return profile


def known(profile: ResolvedProfile) -> ResolvedProfile:
    """The profile filled from cached metadata of any age, with no network; else itself."""
    if not profile.issuer or profile.metadata is not None:
        return profile
    metadata = _cached(profile, None)
    return profile if metadata is None else fill(profile, metadata)


def fill(profile: ResolvedProfile, metadata: Mapping[str, Any]) -> ResolvedProfile:
    """The profile with each endpoint it leaves out taken from ``metadata``."""
    values = {
        key: metadata[member]
        for key, member in ENDPOINTS.items()
        if not getattr(profile, key, None) and isinstance(metadata.get(member), str)
    }
    return replace(profile, **values, discovered=tuple(values), metadata=dict(metadata))


def origins(profile: ResolvedProfile) -> list[tuple[str, str | None, str]]:
    """Each endpoint key the profile has or could discover: (key, URL or None, where from)."""
    rows: list[tuple[str, str | None, str]] = []
    for key in ENDPOINTS:
        if not hasattr(profile, key):
            continue
        value = getattr(profile, key) or None
        if key in profile.discovered:
            rows.append((key, value, "from issuer metadata"))
        elif value:
            rows.append((key, value, "profile"))
        elif profile.issuer and profile.metadata is None:
            rows.append((key, None, "from issuer, discovered when used"))
        elif profile.issuer:
            rows.append((key, None, "not in the issuer's metadata"))
    return rows


def hint(profile: ResolvedProfile, exc: GrantError) -> GrantError:
    """``exc`` with a line on the server's client auth methods after ``invalid_client``,
    when its metadata lists them without the profile's ``client_auth``; else ``exc``."""
    if exc.error != "invalid_client" or profile.metadata is None:
        return exc
    methods = auth_methods(profile.metadata)
    if wire_method(profile.client_auth) in methods:
        return exc
    known_methods = ", ".join(_clean(m, 40) for m in methods[:12]) or "none listed"
    hinted = GrantError(
        f"{exc}; client_auth {profile.client_auth} is not among the server's methods "
        f"({known_methods})",
        error=exc.error,
        transient=exc.transient,
        retry_after=exc.retry_after,
    )
    return hinted


def auth_methods(metadata: Mapping[str, Any]) -> tuple[str, ...]:
    """The client auth methods the server takes: its list, else RFC 8414's default."""
    listed = metadata.get("token_endpoint_auth_methods_supported")
    return tuple(listed) if isinstance(listed, list) else _DEFAULT_METHODS


def wire_method(client_auth: str) -> str:
    """What ``token_endpoint_auth_methods_supported`` calls a ``client_auth`` of oauthcli."""
    return _WIRE_METHODS.get(client_auth, client_auth)


# -- the fetch -------------------------------------------------------------------------------


def fetch(profile: ResolvedProfile, trace: Trace, *, at: str | None = None) -> dict[str, Any]:
    """The issuer's checked metadata, asked for at each well-known URL in turn.

    ``at``: look for metadata at this origin instead (``oauthcli doctor`` for a profile
    without ``issuer``); the document may then name any issuer, and is checked otherwise.
    """
    import requests

    from oauthcli.transport.adapter import PooledAdapter
    from oauthcli.transport.http import DEFAULT_HEADERS

    issuer = at or profile.issuer
    assert issuer
    what = f"discovery for profile '{profile.name}'"
    if not profile.tls.verify:
        import warnings

        from urllib3.exceptions import InsecureRequestWarning

        # oauthcli prints its own warning for verify: false (as the token endpoint's does).
        warnings.filterwarnings("ignore", category=InsecureRequestWarning)
    session = requests.Session()
    session.auth = _no_credentials  # else requests sends a ~/.netrc entry for the issuer's host
    session.headers["User-Agent"] = DEFAULT_HEADERS["User-Agent"]
    session.headers["Accept"] = "application/json"
    session.mount("https://", PooledAdapter())
    session.mount("http://", PooledAdapter())
    misses: list[str] = []
    transient = False
    try:
        for url in well_known(issuer):
            try:
                data = _transport(
                    profile, what, url, partial(_get, session, profile, url, trace, what)
                )
            except _Missing as miss:
                misses.append(f"{url} {miss}")
                transient = transient or miss.transient
                continue
            trace.note(f"discovery: metadata of issuer {issuer} from {url}")
            return _checked(profile, data, url, what, any_issuer=at is not None)
    finally:
        session.close()
    raise GrantError(
        f"{what} failed: issuer {issuer} serves no metadata: {'; '.join(misses)}; check issuer",
        transient=transient,
    )


def _no_credentials(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """An auth that adds nothing: metadata is public, and a ``~/.netrc`` entry is never sent."""
    return request


def _transport(profile: ResolvedProfile, what: str, url: str, fn: Callable[[], Any]) -> Any:
    """``fn()``, its transport failures as a GrantError naming ``url`` (as the token
    endpoint's are)."""
    import requests

    from oauthcli.errors import RegistryError
    from oauthcli.transport.http import describe_failure

    try:
        return fn()
    except requests.exceptions.SSLError as exc:
        raise GrantError(f"{what} failed: TLS error talking to {url}: {_cause(exc)}") from None
    except (requests.ConnectionError, requests.Timeout) as exc:
        cause = describe_failure(exc, profile.timeout, urlsplit(url).hostname)
        raise GrantError(
            f"{what} failed: cannot connect to {url}: {cause}", transient=True
        ) from None
    except requests.RequestException as exc:
        raise GrantError(f"{what} failed: {url}: {_cause(exc)}") from None
    except OSError as exc:  # an unreadable ca_bundle or client cert/key
        raise RegistryError.at(profile.source, None, "tls", str(exc)) from None


def _cause(exc: Exception) -> str:
    from oauthcli.transport.http import innermost

    return _clean(innermost(exc), 160)


def _get(
    session: requests.Session, profile: ResolvedProfile, url: str, trace: Trace, what: str
) -> Any:
    """The JSON document at ``url`` (same-origin redirects followed), or :class:`_Missing`."""
    import requests

    from oauthcli.transport.adapter import Deadline, watching

    deadline = Deadline(profile.timeout)
    start = origin(url)
    try:
        for _ in range(MAX_REDIRECTS + 1):
            request = session.prepare_request(requests.Request("GET", url))
            trace.token_request(request, frozenset())
            with watching(deadline):
                resp = session.send(
                    request,
                    stream=True,
                    allow_redirects=False,
                    timeout=profile.timeout,
                    verify=profile.tls.requests_verify,
                    cert=profile.tls.requests_cert,
                )
                try:
                    body = resp._content = _bounded(resp, url, what)
                finally:
                    resp.close()
            trace.token_response(resp)
            location = resp.headers.get("Location")
            if 300 <= resp.status_code < 400 and location:
                target = urljoin(url, location)
                if origin(target) != start:
                    raise GrantError(
                        f"{what} failed: {url} redirects to another origin "
                        f"({_clean(target, 120)}); metadata is read from the issuer's own"
                    )
                url = target
                continue
            break
        else:
            raise _Missing(f"redirected more than {MAX_REDIRECTS} times")
    except requests.RequestException:
        if deadline.expired:
            raise GrantError(
                f"{what} failed: no complete answer from {url} within {profile.timeout:g} s",
                transient=True,
            ) from None
        raise
    finally:
        deadline.finish()
    status = resp.status_code
    if status != 200:
        raise _Missing(f"answered HTTP {status}", transient=status >= 500 or status == 429)
    try:
        return json.loads(body)
    except RecursionError:
        raise _Missing("answered JSON nested too deeply to be metadata") from None
    except ValueError:
        ctype = resp.headers.get("Content-Type", "").split(";")[0].strip() or "no content type"
        raise _Missing(f"answered HTTP 200 ({_clean(ctype, 60)}), not JSON") from None


def _bounded(resp: requests.Response, url: str, what: str) -> bytes:
    from oauthcli.transport.http import bounded_body

    body = bounded_body(resp, MAX_BYTES)
    if body is None:
        raise GrantError(
            f"{what} failed: {url} answered more than {MAX_BYTES // 1024} KiB; "
            "metadata is a few KiB"
        )
    return body


def _checked(
    profile: ResolvedProfile, data: Any, url: str, what: str, *, any_issuer: bool = False
) -> dict[str, Any]:
    """The members oauthcli uses, each checked; a GrantError for a document not to trust."""
    if not isinstance(data, dict):
        raise GrantError(f"{what} failed: {url} answered JSON that is not an object")
    problem = _problem(profile, data, any_issuer=any_issuer)
    if problem:
        raise GrantError(f"{what} failed: {url} {problem}")
    return _kept(data)


def _problem(
    profile: ResolvedProfile, data: Mapping[str, Any], *, any_issuer: bool = False
) -> str | None:
    """Why the document is not the issuer's usable metadata, or None."""
    theirs = data.get("issuer")
    if any_issuer:  # a document found by looking, not one named by the profile's issuer
        if not isinstance(theirs, str) or _url_problem(theirs, True):
            return "names no usable issuer"
    elif theirs != profile.issuer:
        said = _clean(theirs, 120) if isinstance(theirs, str) else "no issuer"
        return (
            f"names issuer {said}, not {profile.issuer}: RFC 8414 §3.3 wants them "
            "identical (check issuer)"
        )
    for member in (*ENDPOINTS.values(), *_OTHER_URLS):
        value = data.get(member)
        if value is None:
            continue
        refused = _url_problem(value, profile.allow_insecure_http)
        if refused:
            shown = _clean(value, 120) if isinstance(value, str) else type(value).__name__
            return f"gives {member} {shown}, which is refused: {refused}"
    return None


def _kept(data: Mapping[str, Any]) -> dict[str, Any]:
    kept: dict[str, Any] = {"issuer": data["issuer"]}
    for member in (*ENDPOINTS.values(), *_OTHER_URLS):
        if isinstance(data.get(member), str):
            kept[member] = data[member]
    for member in _LISTS:
        value = data.get(member)
        if isinstance(value, list):
            kept[member] = [v for v in value if isinstance(v, str)][:64]
    return kept


def _url_problem(value: Any, allow_insecure_http: bool) -> str | None:
    if not isinstance(value, str):
        return "not a string"
    if _CONTROLS.search(value) or len(value) > 2048:
        return "not a URL"
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "not an http(s) URL"
    if "@" in parts.netloc:
        return "a URL with credentials in it"
    if parts.fragment:
        return "a URL with a fragment"
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        return f"plain http:// to {parts.hostname}, which is not loopback"
    return None


def _clean(value: Any, limit: int) -> str:
    """One line of at most ``limit`` characters, scrubbed of secrets, without controls."""
    from oauthcli.secret import scrub_spread

    text = " ".join(_SHOWN_CONTROLS.sub(" ", scrub_spread(str(value)[: limit * 8])).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- the cache -------------------------------------------------------------------------------


def _name(profile: ResolvedProfile) -> str:
    """One entry per issuer and TLS trust: what one profile fetched unverified is never
    what another, verifying, uses."""
    tls = profile.tls
    who = json.dumps(
        [_FORMAT, profile.issuer, tls.verify, tls.ca_bundle, profile.allow_insecure_http]
    )
    return hashlib.sha256(who.encode("utf-8", "surrogatepass")).hexdigest()[:32] + ".json"


def _cached(profile: ResolvedProfile, max_age: float | None) -> dict[str, Any] | None:
    """The cached metadata, if not older than ``max_age`` (None: any age) and still good."""
    try:
        raw = _FOLDER.read(_name(profile), MAX_BYTES)
        if raw is None:
            return None
        entry = json.loads(raw)
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(entry, dict) or entry.get("format") != _FORMAT:
        return None
    fetched, metadata = entry.get("fetched_at"), entry.get("metadata")
    if not isinstance(fetched, (int, float)) or not isinstance(metadata, dict):
        return None
    age = clock() - fetched
    if age < -60 or (max_age is not None and age > max_age):  # stale, or the clock went back
        return None
    if _problem(profile, metadata) is not None:
        return None
    return _kept(metadata)


def _store(profile: ResolvedProfile, metadata: Mapping[str, Any]) -> None:
    """Keep the metadata for :data:`MAX_AGE`; silently skipped when the folder is not usable."""
    entry = {"format": _FORMAT, "fetched_at": clock(), "metadata": dict(metadata)}
    _FOLDER.write(_name(profile), json.dumps(entry, indent=1).encode())


def clear() -> None:
    """Remove every cached document (``token clear``); only files named as oauthcli names them."""
    _FOLDER.clear()
