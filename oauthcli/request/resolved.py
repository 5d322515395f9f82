"""What resolving gives: one concrete request, its profile, retry and TLS settings.

The request's ``auth`` is an object of :mod:`oauthcli.auth` (``OAuth2Auth``,
``BasicAuth``, ...).

:mod:`oauthcli.request.resolve` builds these from the registry's messages and profiles;
sending, the token code, output and rendering read them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from oauthcli.registry.declaration import ACCESS_TOKEN_TYPE
from oauthcli.secret import MASK, Secret

if TYPE_CHECKING:
    from oauthcli.auth.base import Auth
    from oauthcli.registry.templates import Template

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
    client_assertion: Secret | AssertionSource | None = None
    scope: tuple[str, ...] = ()
    audience: str | None = None
    resource: tuple[str, ...] = ()
    extra_params: dict[str, str] = field(default_factory=dict)
    authorization_params: dict[str, str] = field(default_factory=dict)
    username: str | None = None
    password: Secret | None = None
    refresh_token: Secret | None = None
    assertion: Secret | None = None
    subject_token: Secret | WithTokens | None = None
    subject_token_type: str = ACCESS_TOKEN_TYPE
    actor_token: Secret | WithTokens | None = None
    actor_token_type: str | None = None
    requested_token_type: str | None = None
    authorization_url: str | None = None
    redirect_url: str | None = None
    device_authorization_url: str | None = None
    revocation_url: str | None = None
    refresh_token_lifespan: int | None = None
    token_leeway: int = 60
    token_scheme: str | None = None  # the Authorization scheme; None: Bearer
    dpop: bool = False  # DPoP-bound tokens (RFC 9449): oauthcli.tokens.dpop
    timeout: float = 30.0
    tls: ResolvedTLS = ResolvedTLS()
    allow_insecure_http: bool = False  # already applied to its URLs; kept for show
    log_level: str | None = None  # the outbound log's level of its calls (oauthcli.outlog)
    description: str | None = None
    issuer: str | None = None
    #: The endpoint keys filled from the issuer's metadata (:mod:`oauthcli.tokens.discovery`).
    discovered: tuple[str, ...] = ()
    #: The issuer's metadata once fetched (RFC 8414 members: jwks_uri, ..._supported), else None.
    metadata: Mapping[str, Any] | None = None

    @property
    def token_server(self) -> str:
        """What names the token's server in the cache: token_url as written, else the issuer
        (discovering the token URL from it changes no token's identity)."""
        if self.issuer and (not self.token_url or "token_url" in self.discovered):
            return self.issuer
        return self.token_url

    @property
    def authorization_scheme(self) -> str:
        """The scheme the token goes with: ``token_scheme``, else Bearer (SPEC §4)."""
        return self.token_scheme or "Bearer"


@dataclass(frozen=True, repr=False, eq=False)
class WithTokens:
    """A secret holding other profiles' access tokens (``${token:PROFILE}``), put together
    by :mod:`oauthcli.tokens.exchange` when the token request that sends it is made.

    Each part is text (a :class:`Secret`) or the profile whose access token goes there.
    """

    parts: tuple[Secret | ResolvedProfile, ...]

    @property
    def profiles(self) -> tuple[ResolvedProfile, ...]:
        return tuple(p for p in self.parts if isinstance(p, ResolvedProfile))

    def __str__(self) -> str:
        return "".join(
            "${token:" + p.name + "}" if isinstance(p, ResolvedProfile) else MASK
            for p in self.parts
            if not isinstance(p, Secret) or p
        )


@dataclass(frozen=True, repr=False, eq=False)
class AssertionSource:
    """Where a client assertion issued elsewhere comes from, read anew for each token request
    (:mod:`oauthcli.tokens.workload`): a template with ``${file:…}`` (a projected token that
    is rewritten while the process runs), or GitHub Actions' ID token for ``github_audience``."""

    source: Path  # the profile file, for ${file:…} relative paths and messages
    template: Template | None = None
    github_audience: str | None = None

    def __str__(self) -> str:
        if self.github_audience is not None:
            return f"GitHub Actions ID token, audience {self.github_audience}"
        return "read per token request from " + self.files()

    def files(self) -> str:
        from oauthcli.registry.templates import File

        assert self.template is not None
        return ", ".join(p.path for p in self.template.parts if isinstance(p, File))


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
    #: The method's or message's log_level (the profile's is its own: oauthcli.outlog).
    log_level: str | None = None
    #: The environment selected when the registry was opened, by name.
    environment: str | None = None

    @property
    def full_url(self) -> str:
        if not self.params:
            return self.url
        return f"{self.url}{'&' if '?' in self.url else '?'}{urlencode(self.params)}"
