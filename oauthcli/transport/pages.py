"""``send --paginate``: following RFC 8288 ``Link: <…>; rel="next"`` from page to page.

ServiceNow's Table API and GitHub page their answers this way. Each page is sent as the
first one was (same method, headers, body and auth) through the same :class:`Sender`, so
one token serves every page and a 401 mid-way is renewed once, as for any call. The
header is read with requests' own parser (:func:`requests.utils.parse_header_links`,
which handles several links, quoted parameters and several headers joined); a ``rel``
may hold several relation types (``rel="next last"``), compared without case (RFC 8288
§3.3). A relative next URL is resolved against the URL of the page that named it.

Pagination stops, after the page that was fetched and yielded, with a
:class:`~oauthcli.errors.NetworkError` (exit 7: the pages could not all be fetched)
when:

- a next link leads to another origin (scheme, host, port) than the first request: the
  credentials go only where the message sends them, so it is not followed;
- a next link names a page already fetched (a loop);
- ``max_pages`` pages were fetched and the last still names a next one.

An answer that is not a success (below 200 or 300 and over) ends it too, without an
error here: the caller shows that page and its exit code as for any call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from urllib.parse import urljoin, urlsplit

from requests.structures import CaseInsensitiveDict
from requests.utils import parse_header_links

from oauthcli.errors import NetworkError
from oauthcli.request.resolved import ResolvedRequest
from oauthcli.trace import Trace
from oauthcli.transport.sending import Result, Sender
from oauthcli.urls import origin

__all__ = ["DEFAULT_MAX_PAGES", "next_link", "pages"]

#: ``--max-pages`` when not given: a bound on a server that never stops naming a next page.
DEFAULT_MAX_PAGES = 100


def next_link(headers: CaseInsensitiveDict[str], base: str) -> str | None:
    """The absolute URL of the ``rel="next"`` link of an answer's ``Link`` headers, if any."""
    value = headers.get("Link")
    if not value:
        return None
    for link in parse_header_links(value):
        rels = link.get("rel", "").strip("\"' ").lower().split()
        target = link.get("url", "").strip()
        if "next" in rels and target:
            parts = urlsplit(urljoin(base, target))
            # A user:password in it would replace the message's auth: never taken from a server.
            return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return None


def pages(
    sender: Sender,
    req: ResolvedRequest,
    *,
    max_pages: int = DEFAULT_MAX_PAGES,
    trace: Callable[[int], Trace | None] = lambda number: None,
    sink: Callable[[int], Callable[[bytes], None] | None] = lambda number: None,
) -> Iterator[Result]:
    """Each page's answer, the first one first; see the module's docstring for the stops.

    ``trace`` and ``sink`` give, for page number N (from 1), the trace and the body sink
    :meth:`Sender.send` takes for that page.
    """
    first = req.full_url
    home = _origin(first)
    fetched = {_key(first)}
    page, number = req, 1
    while True:
        result = sender.send(page, trace(number), sink=sink(number))
        yield result
        if not 200 <= result.status < 300:
            return
        nxt = next_link(result.headers, result.url)
        if nxt is None:
            return
        fetched.add(_key(result.url))  # where a redirect led counts as fetched too
        if _origin(nxt) != home:
            raise NetworkError(
                f"--paginate: page {number}'s next link leads to another origin "
                f"({_shown_origin(nxt)}), not followed: the credentials go only to "
                f"{_shown_origin(first)}"
            )
        if _key(nxt) in fetched:
            raise NetworkError(
                f"--paginate: page {number}'s next link ({_shown(nxt)}) names a page already "
                f"fetched: a pagination loop, stopped after {number} page(s)"
            )
        if number >= max_pages:
            raise NetworkError(
                f"--paginate: stopped at the page limit (--max-pages {max_pages}) with more "
                f"pages to fetch (next: {_shown(nxt)}); raise --max-pages to get them all"
            )
        fetched.add(_key(nxt))
        page = dataclasses.replace(req, url=nxt, params=[])
        number += 1


def _origin(url: str) -> tuple[str, str, int | None] | None:
    try:
        return origin(url)
    except ValueError:  # a port out of range: no origin we send to
        return None


def _key(url: str) -> str:
    """What makes two page URLs the same page: all but the fragment (never sent)."""
    return url.partition("#")[0]


def _shown_origin(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]  # never a user:password
    return f"{parts.scheme}://{host}" if parts.scheme else _shown(url)


def _shown(url: str, limit: int = 200) -> str:
    parts = urlsplit(url)
    if "@" in parts.netloc:
        url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return url if len(url) <= limit else url[:limit] + "…"
