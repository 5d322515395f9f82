"""Hooks that show an exchange as it happens (``-v``) and record why (the outbound log).

:class:`Trace` does nothing; :class:`oauthcli.present.output.VerboseTrace` prints. The
sender passes the same trace to the token code, so ``-v`` shows the token
request a ``send`` makes as well as the call itself.

:meth:`Trace.decision` is a token decision (why a cached token was used, renewed,
refreshed, dropped after a 401, not cached): ``-v`` shows its text like any note, and
the outbound log (:mod:`oauthcli.outlog`) records its ``kind`` and facts. The kinds are
listed in ``docs/outbound-log.md``. The token code shows its own requests with
:meth:`Trace.token_request` and :meth:`Trace.token_response`, which ``-v`` shows as any
other and the outbound log records apart from the call's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests


class Trace:
    """Hooks for ``--verbose`` and the outbound log; the default does nothing."""

    def request(self, prepared: requests.PreparedRequest, secret_headers: frozenset[str]) -> None:
        """A request is about to go out (``secret_headers`` are lower-case names to mask)."""

    def response(self, response: requests.Response) -> None:
        """A response arrived (before any redirect is followed)."""

    def token_request(
        self, prepared: requests.PreparedRequest, secret_headers: frozenset[str]
    ) -> None:
        """A request of the token code (token endpoint, revocation, issuer metadata) is
        about to go out; by default shown as any request."""
        self.request(prepared, secret_headers)

    def token_response(self, response: requests.Response) -> None:
        """The answer to a :meth:`token_request`; by default shown as any response."""
        self.response(response)

    def note(self, text: str) -> None:
        """A retry, a redirect decision, a token renewal."""

    def decision(self, kind: str, text: str, **facts: Any) -> None:
        """A token decision: ``kind`` is one of docs/outbound-log.md's, ``facts`` are JSON
        values (numbers, strings, booleans; never a secret). By default only a note."""
        self.note(text)
