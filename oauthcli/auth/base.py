"""The one interface every auth type has, and the request its flow works on.

An auth's :meth:`Auth.auth_flow` is an httpx-style generator::

    request = yield request        # send this, give me the reply
    # ...on a reply that calls for it (a 401), change the request and yield it again

The :class:`~oauthcli.transport.sending.Sender` sends each request it yields (with
its redirects and retries) and sends the reply back into it; when the generator
returns, the last reply is the answer. ``--dry-run`` runs the same first step with
:attr:`AuthState.dry_run` set, so it shows exactly the headers a call sends, the
secret part masked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Mapping, MutableMapping
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

from oauthcli.secret import MASK, remember

if TYPE_CHECKING:
    from oauthcli.tokens.model import Token  # what Outgoing.token holds; transport/ names it here
    from oauthcli.trace import Trace

__all__ = ["SECRET_HEADERS", "Auth", "AuthState", "Flow", "Outgoing", "Reply", "Signer", "dq"]

#: Headers whose values are masked wherever a request or response is shown.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})

_T = TypeVar("_T")


class Reply(Protocol):
    """What an auth flow is told about the answer to a request it yielded."""

    @property
    def status_code(self) -> int: ...

    @property
    def credentials_sent(self) -> bool:
        """The credentials went with the request that got this answer (no redirect
        to another origin left them behind)."""
        ...

    @property
    def headers(self) -> Mapping[str, str]:
        """The answer's headers (``WWW-Authenticate``, ``DPoP-Nonce``)."""
        ...


class Signer(Protocol):
    """What signs each request as it goes on the wire, every try and redirect hop at the
    credentials' origin (a DPoP proof, RFC 9449), and sees every answer's headers."""

    def sign(self, method: str, url: str, headers: MutableMapping[str, str]) -> None:
        """Add the headers this request needs (``url`` as sent on the wire)."""
        ...

    def answered(self, url: str, headers: Mapping[str, str]) -> None:
        """The headers of an answer from ``url`` (a ``DPoP-Nonce`` to remember)."""
        ...


class Outgoing:
    """A request on its way out, as an auth flow sees it: its headers (the defaults and
    the message's, then the credentials attached), the headers the message itself
    gives (``given``, to see whether one takes the credentials' place), and, for
    OAuth, the token attached."""

    __slots__ = ("credential", "given", "headers", "renewed", "signer", "token", "trace")

    def __init__(
        self, given: Mapping[str, str], headers: MutableMapping[str, str], trace: Trace
    ) -> None:
        self.given = given
        self.headers = headers
        self.trace = trace
        #: The header that carries the credentials, once attached (None: none were).
        self.credential: str | None = None
        self.token: Token | None = None
        #: The token was renewed after a 401 (SPEC §4).
        self.renewed = False
        #: Signs each hop on the wire (DPoP); None: the headers go as they are.
        self.signer: Signer | None = None

    def attach(self, name: str, value: str) -> None:
        self.headers[name] = value
        self.credential = name


class AuthState:
    """What auth flows keep between the calls of one Sender (one ``send``, one batch):
    a place per auth type (an OAuth profile's token), shared by all its threads."""

    def __init__(self, *, warn: Callable[[str], None] | None = None, dry_run: bool = False) -> None:
        self.warn: Callable[[str], None] = warn or (lambda text: None)
        #: Nothing is obtained or sent: credentials are attached masked.
        self.dry_run = dry_run
        self._slots: dict[str, object] = {}
        self._lock = threading.Lock()

    def slot(self, name: str, make: Callable[[AuthState], _T]) -> _T:
        """The state ``name`` of this Sender, made by ``make`` the first time."""
        held = self._slots.get(name)
        if held is None:
            with self._lock:
                held = self._slots.get(name)
                if held is None:
                    held = self._slots[name] = make(self)
        return held  # type: ignore[return-value]


Flow = Generator[Outgoing, Reply, None]


class Auth:
    """An ``auth:`` of a message, resolved: how its credentials go on a request.

    Subclasses set :attr:`type` and, when they send credentials, :attr:`header` and
    :meth:`value`; the rest has defaults that suit a credential in one header.
    """

    __slots__ = ()
    #: The ``auth: {type: ...}`` this class implements.
    type: ClassVar[str]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.summary()}>"  # summaries mask every secret

    @property
    def header(self) -> str | None:
        """The header the credentials travel in (None: no credentials)."""
        return None

    def secret_headers(self) -> frozenset[str]:
        """Names (lower case) of the headers masked wherever a request is shown."""
        return SECRET_HEADERS

    def overridden(self, headers: Mapping[str, str]) -> bool:
        """A header of the message (or ``-H``) takes the credentials' place."""
        name = self.header
        if name is None:
            return False
        name = name.lower()
        return any(h.lower() == name for h in headers)

    def auth_flow(self, request: Outgoing, state: AuthState) -> Flow:
        """Attach the credentials and yield the request; see the module's docstring."""
        name = self.header
        if name is not None and not self._given(request):
            request.attach(name, self.masked() if state.dry_run else self.value())
        yield request

    def _given(self, request: Outgoing) -> bool:
        """The credentials come from the request's own headers: remembered as secrets."""
        if not self.overridden(request.given):
            return False
        secret = self.secret_headers()
        for name, value in request.given.items():
            if name.lower() in secret:
                remember(value)
        return True

    def value(self) -> str:
        """The credential header's value."""
        raise NotImplementedError

    def masked(self) -> str:
        """The credential header's value as ``--dry-run`` shows it."""
        return MASK

    def curl(self) -> tuple[list[str], list[str]]:
        """For ``--dry-run``'s curl line: comment lines before it, and curl's arguments
        (credentials read from shell variables)."""
        return [], []

    def summary(self) -> str:
        """One line for ``oauthcli show``, secrets masked."""
        return self.type

    def refusal(self) -> str | None:
        """What to say when the API refused the credentials sent (None: the caller knows more)."""
        return None


def dq(text: str) -> str:
    """Text safe inside a double-quoted shell word."""
    return "".join("\\" + c if c in '\\"$`' else c for c in text)
