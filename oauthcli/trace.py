"""Hooks that show an exchange as it happens (``-v``), for API and token requests alike.

:class:`Trace` does nothing; :class:`oauthcli.present.output.VerboseTrace` prints. The
sender passes the same trace to the token code, so ``-v`` shows the token
request a ``send`` makes as well as the call itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import requests


class Trace:
    """Hooks for ``--verbose``; the default does nothing."""

    def request(self, prepared: requests.PreparedRequest, secret_headers: frozenset[str]) -> None:
        """A request is about to go out (``secret_headers`` are lower-case names to mask)."""

    def response(self, response: requests.Response) -> None:
        """A response arrived (before any redirect is followed)."""

    def note(self, text: str) -> None:
        """A retry, a redirect decision, a token renewal."""
