"""What resolving gives: one concrete request, its profile, retry and TLS settings.

The request's ``auth`` is an object of :mod:`oauthcli.auth` (``OAuth2Auth``,
``BasicAuth``, ...).

:mod:`oauthcli.request.resolve` builds these from the registry's messages and profiles;
sending, the token code, output and rendering read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from oauthcli.secret import Secret

if TYPE_CHECKING:
    from oauthcli.auth.base import Auth

IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})


# These records are compared by identity, never by value: without the generated
# __eq__, __hash__ and __repr__ every run starts ~9 ms sooner (BENCHMARKS.md).
@dataclass(frozen=True, repr=False, eq=False)
class ResolvedTLS:
    verify: bool = True
    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    @property
    def requests_verify(self) -> bool | str:
        return self.ca_bundle if self.verify and self.ca_bundle else self.verify

    @property
    def requests_cert(self) -> str | tuple[str, str] | None:
        if self.client_cert and self.client_key:
            return (self.client_cert, self.client_key)
        return self.client_cert


@dataclass(frozen=True, repr=False, eq=False)
class ResolvedRetry:
    attempts: int = 1
    backoff: float = 0.5
    max_delay: float = 30.0
    on_status: tuple[int, ...] = (429, 502, 503, 504)
    idempotent_only: bool = True


@dataclass(frozen=True, repr=False, eq=False)
class ResolvedProfile:
    name: str
    source: Path
    grant_type: str
    token_url: str
    client_id: str
    client_auth: str
    client_secret: Secret | None = None
    private_key: Secret | None = None
    key_id: str | None = None
    signing_alg: str | None = None
    scope: tuple[str, ...] = ()
    audience: str | None = None
    resource: tuple[str, ...] = ()
    extra_params: dict[str, str] = field(default_factory=dict)
    username: str | None = None
    password: Secret | None = None
    refresh_token: Secret | None = None
    assertion: Secret | None = None
    authorization_url: str | None = None
    redirect_url: str | None = None
    device_authorization_url: str | None = None
    revocation_url: str | None = None
    refresh_token_lifespan: int | None = None
    token_leeway: int = 60
    token_scheme: str | None = None  # the Authorization scheme; None: Bearer
    timeout: float = 30.0
    tls: ResolvedTLS = ResolvedTLS()
    allow_insecure_http: bool = False  # already applied to its URLs; kept for show
    description: str | None = None

    @property
    def authorization_scheme(self) -> str:
        """The scheme the token goes with: ``token_scheme``, else Bearer (SPEC §4)."""
        return self.token_scheme or "Bearer"


@dataclass(repr=False, eq=False)
class ResolvedRequest:
    message: str
    method: str
    http_method: str
    url: str
    params: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes | None
    auth: Auth  # one of oauthcli.auth's classes, made by request.resolve
    timeout: float
    retry: ResolvedRetry
    tls: ResolvedTLS
    source: Path
    json: Any = None
    variables: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)

    @property
    def full_url(self) -> str:
        if not self.params:
            return self.url
        return f"{self.url}{'&' if '?' in self.url else '?'}{urlencode(self.params)}"
