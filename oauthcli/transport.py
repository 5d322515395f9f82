"""requests' machinery under :class:`~oauthcli.sending.Sender`, without the work it repeats.

requests works out again for every request what does not change in a run (the
connection pool, the CA bundle check) and prepares a request through steps that
do nothing here. Over thousands of calls in a batch that cost showed in each
call's CPU time, so the adapter remembers its pools and requests are prepared
by hand. Which headers, credentials and redirects go out is decided in
:mod:`oauthcli.sending` (by the rules in :mod:`oauthcli.http`), not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict


class PooledAdapter(HTTPAdapter):
    """requests' adapter, remembering the connection pool per origin and TLS settings.

    requests works the pool out again for every request: it parses the URL,
    ``stat()``s the CA bundle and looks the pool up in its manager. In a batch of
    thousands of calls to one origin that was a tenth of each call's CPU time,
    and each ``stat()`` let another thread take the interpreter lock.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._pools: dict[tuple[Any, ...], Any] = {}

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: Any,
        proxies: Mapping[str, str] | None = None,
        cert: Any = None,
    ) -> Any:
        key = _pool_key(request.url or "", verify, cert, proxies)
        pool = self._pools.get(key)
        if pool is None or pool.pool is None:  # pool.pool is None once the manager closed it
            pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
            self._pools[key] = pool
        return pool

    def request_url(
        self, request: requests.PreparedRequest, proxies: Mapping[str, str] | None
    ) -> str:
        if not proxies:  # what requests works out, without parsing the URL three times
            return request.path_url
        return super().request_url(request, proxies)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # Once per pool: it checks that the CA bundle exists and sets it on the pool.
        if getattr(conn, "_oauthcli_verified", None) != (verify, cert):
            super().cert_verify(conn, url, verify, cert)
            conn._oauthcli_verified = (verify, cert)

    def close(self) -> None:
        self._pools.clear()
        super().close()


def _pool_key(
    url: str, verify: Any, cert: Any, proxies: Mapping[str, str] | None
) -> tuple[Any, ...]:
    proxy_items = tuple(sorted(proxies.items())) if proxies else ()
    return scheme_authority(url), verify, cert, proxy_items


def scheme_authority(url: str) -> str:
    """``http://host:port`` of a prepared URL, as a cache key: cheaper than urlsplit."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0].split('#', 1)[0]}".lower()


class UnsendableURL(ValueError):
    """requests cannot send to this URL (a host that is no valid IDNA name, say)."""


def wire_url(url: str) -> str:
    """The URL exactly as :func:`prepare` puts it on the wire, without its fragment.

    requests turns a Unicode host into IDNA, percent-encodes what is unsafe, decodes
    percent-encoded unreserved characters and removes ``.``/``..`` segments; what
    ``--dry-run`` shows is what this returns, so it is what the server receives.
    """
    prepared = requests.PreparedRequest()
    _prepare_url(prepared, url)
    return (prepared.url or url).partition("#")[0]


def _prepare_url(prepared: requests.PreparedRequest, url: str) -> None:
    try:
        prepared.prepare_url(url, None)
    except (requests.exceptions.RequestException, ValueError, UnicodeError) as exc:
        reason = str(exc).removeprefix("Failed to parse: ") or type(exc).__name__
        raise UnsendableURL(reason) from None


def prepare(
    method: str, url: str, headers: CaseInsensitiveDict[str], body: bytes | None
) -> requests.PreparedRequest:
    """What ``requests.Request(...).prepare()`` gives, without the steps that do nothing here.

    The cookie step is left out (the call's own jar is applied in Sender._exchange) and
    so is the Request object: together they were half the cost of preparing. A URL
    requests cannot send to raises :class:`UnsendableURL`.
    """
    prepared = requests.PreparedRequest()
    prepared.prepare_method(method)
    _prepare_url(prepared, url)
    prepared.prepare_headers(headers)
    prepared.prepare_body(body, None)
    if "@" in url:  # requests turns user:password in a URL into basic auth
        prepared.prepare_auth(None, url)
    return prepared
