"""The two URL rules every stage shares: what is loopback, and what an origin is.

A leaf module (it imports nothing of oauthcli), so the registry checks, the token
endpoint's discovery, the CI assertion fetch and the redirect rules all apply the
same rule: plain ``http://`` is allowed only to a loopback host (SPEC §3), and
credentials stay behind once a redirect leaves the first origin.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["is_loopback", "origin"]


def is_loopback(host: str | None) -> bool:
    """``host`` is this machine: ``localhost`` or an address in 127.0.0.0/8 or ``::1``."""
    if not host:
        return False
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) of ``url``, lower case, the default port filled in.

    A port out of range raises ValueError (as :func:`urllib.parse.urlsplit` does).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port
