"""Typed profiles and messages built from YAML documents (SPEC §1.1, §1.2).

``parse_profile`` / ``parse_message`` check one :class:`~oauthcli.registry.yamlsrc.Document`
against the schema: unknown keys, wrong types, missing or contradictory keys.
Every problem in the file is collected (``file:line: key: message``) before
:class:`~oauthcli.errors.RegistryProblems` is raised. String values stay
``${…}`` templates here; they are rendered in :mod:`oauthcli.request.resolve`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oauthcli.registry.document import Document
from oauthcli.registry.reader import Reader, Text

GRANT_TYPES = (
    "client_credentials",
    "password",
    "refresh_token",
    "jwt_bearer",
    "authorization_code",
)
CLIENT_AUTHS = (
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "client_secret_jwt",
    "none",
)
ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
HMAC_ALGS = ("HS256", "HS384", "HS512")
AUTH_TYPES = ("oauth2", "basic", "bearer", "api_key", "none")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

#: Bounds of numbers with a unit: beyond them a value is a slip, not a wish (and
#: a float too large for the socket layer or the clock would end as a crash).
MAX_TIMEOUT = 86_400.0  # seconds: a day
MAX_ATTEMPTS = 100
MAX_LIFESPAN = 10 * 366 * 86_400  # seconds: ten years

_AUTH_SCHEME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_PROFILE_KEYS = (
    "name description grant_type token_url client_id client_secret client_auth private_key "
    "key_id signing_alg scope audience resource extra_params username password refresh_token "
    "assertion authorization_url redirect_url revocation_url refresh_token_lifespan "
    "token_leeway token_scheme timeout tls allow_insecure_http"
).split()
_SHARED_KEYS = "headers query variables timeout retry tls allow_insecure_http auth endpoint".split()
_MESSAGE_KEYS = ["name", "description", "methods", *_SHARED_KEYS]
_METHOD_KEYS = ["description", "http_method", "path", "json", "content", "form", *_SHARED_KEYS]
_TLS_KEYS = ("verify", "ca_bundle", "client_cert", "client_key")
_RETRY_KEYS = ("attempts", "backoff", "max_delay", "on_status", "idempotent_only")
_AUTH_KEYS = {
    "oauth2": ("type", "profile"),
    "basic": ("type", "username", "password"),
    "bearer": ("type", "token"),
    "api_key": ("type", "header", "value"),
    "none": ("type",),
}


# These records are compared by identity, never by value: without the generated
# __eq__, __hash__ and __repr__ every run starts ~9 ms sooner (BENCHMARKS.md).
@dataclass(frozen=True, repr=False, eq=False)
class TLS:
    verify: bool | None = None
    ca_bundle: Text | None = None
    client_cert: Text | None = None
    client_key: Text | None = None


@dataclass(frozen=True, repr=False, eq=False)
class Retry:
    attempts: int | None = None
    backoff: float | None = None
    max_delay: float | None = None
    on_status: tuple[int, ...] | None = None
    idempotent_only: bool | None = None


@dataclass(frozen=True, repr=False, eq=False)
class Auth:
    type: str
    line: int | None = None
    profile: str | None = None
    username: Text | None = None
    password: Text | None = None
    token: Text | None = None
    header: str = "X-Api-Key"
    value: Text | None = None


@dataclass(frozen=True, repr=False, eq=False)
class Profile:
    name: str
    source: Path
    grant_type: str
    token_url: Text
    client_id: Text
    client_auth: str = "client_secret_basic"
    description: str | None = None
    client_secret: Text | None = None
    private_key: Text | None = None
    key_id: Text | None = None
    signing_alg: str | None = None
    scope: tuple[Text, ...] = ()
    audience: Text | None = None
    resource: tuple[Text, ...] = ()
    extra_params: dict[str, Text] = field(default_factory=dict)
    username: Text | None = None
    password: Text | None = None
    refresh_token: Text | None = None
    assertion: Text | None = None
    authorization_url: Text | None = None
    redirect_url: Text | None = None
    revocation_url: Text | None = None
    refresh_token_lifespan: int | None = None
    token_leeway: int = 60
    token_scheme: str | None = None
    timeout: float = 30.0
    tls: TLS = TLS()
    allow_insecure_http: bool = False
    key_lines: dict[str, int] = field(default_factory=dict)  # for problems found later


@dataclass(frozen=True, repr=False, eq=False)
class Settings:
    """What a message and a method can both say; the method's wins."""

    endpoint: Text | None = None
    auth: Auth | None = None
    headers: dict[str, Text] = field(default_factory=dict)
    query: dict[str, Text] = field(default_factory=dict)
    variables: dict[str, Text] = field(default_factory=dict)
    timeout: float | None = None
    retry: Retry = Retry()
    tls: TLS = TLS()
    allow_insecure_http: bool | None = None


@dataclass(frozen=True, repr=False, eq=False)
class Method:
    name: str
    http_method: str
    settings: Settings
    line: int | None = None
    description: str | None = None
    path: Text | None = None
    json: Any = None
    has_json: bool = False
    content: Text | None = None
    form: dict[str, Text] | None = None


@dataclass(frozen=True, repr=False, eq=False)
class Message:
    name: str
    source: Path
    settings: Settings
    methods: dict[str, Method]
    description: str | None = None


def item_name(doc: Document) -> str:
    name = doc.data.get("name") if isinstance(doc.data, dict) else None
    return name if isinstance(name, str) and name else doc.path.stem


def parse_profile(doc: Document) -> Profile:
    r = Reader(doc)
    m = r.root(_PROFILE_KEYS)
    r.plain(m, (), "name")  # a name that is not a string is a problem, not ignored
    grant = r.choice(m, (), "grant_type", GRANT_TYPES, required=True)
    client_auth = r.choice(m, (), "client_auth", CLIENT_AUTHS) or "client_secret_basic"
    profile = Profile(
        name=item_name(doc),
        source=doc.path,
        grant_type=grant or "client_credentials",
        token_url=r.text(m, (), "token_url", required=True, url=True) or Text.empty(),
        client_id=r.text(m, (), "client_id", required=True) or Text.empty(),
        client_auth=client_auth,
        description=r.plain(m, (), "description"),
        client_secret=r.text(m, (), "client_secret", secret=True),
        private_key=r.text(m, (), "private_key", secret=True),
        key_id=r.text(m, (), "key_id"),
        signing_alg=r.plain(m, (), "signing_alg"),
        scope=r.words(m, (), "scope"),
        audience=r.text(m, (), "audience"),
        resource=r.words(m, (), "resource", split=False),
        extra_params=r.text_map(m, (), "extra_params"),
        username=r.text(m, (), "username"),
        password=r.text(m, (), "password", secret=True),
        refresh_token=r.text(m, (), "refresh_token", secret=True),
        assertion=r.text(m, (), "assertion", secret=True),
        authorization_url=r.text(m, (), "authorization_url", url=True),
        redirect_url=r.text(m, (), "redirect_url", url=True),
        revocation_url=r.text(m, (), "revocation_url", url=True),
        refresh_token_lifespan=r.integer(
            m, (), "refresh_token_lifespan", minimum=1, maximum=MAX_LIFESPAN
        ),
        token_leeway=r.integer(m, (), "token_leeway", minimum=0, maximum=MAX_LIFESPAN, default=60)
        or 0,
        token_scheme=_token_scheme(r, m),
        timeout=r.number(m, (), "timeout", minimum=0.001, maximum=MAX_TIMEOUT, default=30.0)
        or 30.0,
        tls=_tls(r, m, ()),
        allow_insecure_http=bool(r.boolean(m, (), "allow_insecure_http")),
        key_lines={str(key[0]): line for key, line in doc.lines.items() if len(key) == 1},
    )
    for text in (profile.token_url, profile.client_id):
        if text.variables:
            r.fail(text.key_path, "profiles take ${env:…} and ${file:…}, not call variables")
    _check_profile(r, m, profile, grant is not None)
    r.raise_problems()
    return profile


def _token_scheme(r: Reader, m: dict[str, Any]) -> str | None:
    """``token_scheme``: an RFC 9110 auth-scheme (a token), e.g. ``Bearer`` or ``MAC``."""
    scheme = r.plain(m, (), "token_scheme")
    if scheme is not None and not _AUTH_SCHEME.fullmatch(scheme):
        r.fail(("token_scheme",), "must be one word of letters, digits or !#$%&'*+-.^_`|~")
        return None
    return scheme


def _check_profile(r: Reader, m: dict[str, Any], p: Profile, grant_known: bool) -> None:
    needs = {
        "client_secret_basic": "client_secret",
        "client_secret_post": "client_secret",
        "client_secret_jwt": "client_secret",
        "private_key_jwt": "private_key",
    }.get(p.client_auth)
    if needs and needs not in m:
        r.fail((), f"{needs}: missing; client_auth {p.client_auth} needs it")
    by_grant = {
        "password": ("username", "password"),
        "refresh_token": ("refresh_token",),
        "jwt_bearer": ("assertion",),
        "authorization_code": ("authorization_url", "redirect_url"),
    }
    for key in by_grant.get(p.grant_type, ()) if grant_known else ():
        if key not in m:
            r.fail((), f"{key}: missing; grant_type {p.grant_type} needs it")
    if p.signing_alg is not None:
        allowed = HMAC_ALGS if p.client_auth == "client_secret_jwt" else ASYMMETRIC_ALGS
        if p.client_auth not in ("private_key_jwt", "client_secret_jwt"):
            r.fail(
                ("signing_alg",), "only used with client_auth private_key_jwt or client_secret_jwt"
            )
        elif p.signing_alg not in allowed:
            r.fail(("signing_alg",), f"must be one of {', '.join(allowed)}")


def parse_message(doc: Document) -> Message:
    r = Reader(doc)
    m = r.root(_MESSAGE_KEYS)
    r.plain(m, (), "name")
    settings = _settings(r, m, ())
    if settings.endpoint is None:
        r.fail((), "endpoint: missing required key")
    methods: dict[str, Method] = {}
    raw_methods = m.get("methods")
    if raw_methods is None:
        methods["default"] = Method("default", "GET", Settings(), doc.line(()))
    elif r.expect_mapping(("methods",), raw_methods):
        if not raw_methods:
            r.fail(("methods",), "needs at least one method")
        for name, body in raw_methods.items():
            method = _method(r, str(name), body)
            if method is not None:
                methods[str(name)] = method
    r.raise_problems()
    return Message(item_name(doc), doc.path, settings, methods, r.plain(m, (), "description"))


def _method(r: Reader, name: str, body: Any) -> Method | None:
    key = ("methods", name)
    if body is None:
        body = {}
    m = r.mapping(key, body, _METHOD_KEYS)
    if m is None:
        return None
    verb = (r.plain(m, key, "http_method") or "GET").upper()
    if verb not in HTTP_METHODS:
        r.fail((*key, "http_method"), f"must be one of {', '.join(HTTP_METHODS)}")
    bodies = [k for k in ("json", "content", "form") if k in m]
    if len(bodies) > 1:
        r.fail(key, f"{' and '.join(bodies)}: a method has one body; keep one of them")
    return Method(
        name=name,
        http_method=verb,
        settings=_settings(r, m, key),
        line=r.doc.line(key),
        description=r.plain(m, key, "description"),
        path=r.text(m, key, "path"),
        json=r.json_body(m, key, "json"),
        has_json="json" in m,
        content=r.text(m, key, "content"),
        form=r.text_map(m, key, "form") if "form" in m else None,
    )


def _settings(r: Reader, m: dict[str, Any], key: tuple[str, ...]) -> Settings:
    return Settings(
        endpoint=r.text(m, key, "endpoint", url=True),
        auth=_auth(r, m, key),
        headers=r.text_map(m, key, "headers", header_names=True),
        query=r.text_map(m, key, "query"),
        variables=r.text_map(m, key, "variables"),
        timeout=r.number(m, key, "timeout", minimum=0.001, maximum=MAX_TIMEOUT),
        retry=_retry(r, m, key),
        tls=_tls(r, m, key),
        allow_insecure_http=r.boolean(m, key, "allow_insecure_http"),
    )


def _auth(r: Reader, m: dict[str, Any], key: tuple[str, ...]) -> Auth | None:
    if "auth" not in m:
        return None
    key = (*key, "auth")
    raw = m["auth"]
    if not r.expect_mapping(key, raw):
        return None
    kind = r.choice(raw, key, "type", AUTH_TYPES, required=True)
    if kind is None:
        return None
    a = r.mapping(key, raw, _AUTH_KEYS[kind])
    if a is None:
        return None
    secret_key = {"basic": "password", "bearer": "token", "api_key": "value"}.get(kind)
    required = {"oauth2": ("profile",), "basic": ("username", "password")}.get(kind, ())
    required += (secret_key,) if secret_key and secret_key not in required else ()
    for name in required:
        if name not in a:
            r.fail(key, f"{name}: missing; auth type {kind} needs it")
    return Auth(
        type=kind,
        line=r.doc.line(key),
        profile=r.plain(a, key, "profile"),
        username=r.text(a, key, "username"),
        password=r.text(a, key, "password", secret=True),
        token=r.text(a, key, "token", secret=True),
        header=r.header_name(a, key, "header") or "X-Api-Key",
        value=r.text(a, key, "value", secret=True),
    )


def _tls(r: Reader, m: dict[str, Any], key: tuple[str, ...]) -> TLS:
    raw = m.get("tls")
    t = r.mapping((*key, "tls"), raw, _TLS_KEYS) if raw is not None else None
    if t is None:
        return TLS()
    key = (*key, "tls")
    return TLS(
        verify=r.boolean(t, key, "verify"),
        ca_bundle=r.text(t, key, "ca_bundle"),
        client_cert=r.text(t, key, "client_cert"),
        client_key=r.text(t, key, "client_key", secret=False),
    )


def _retry(r: Reader, m: dict[str, Any], key: tuple[str, ...]) -> Retry:
    raw = m.get("retry")
    t = r.mapping((*key, "retry"), raw, _RETRY_KEYS) if raw is not None else None
    if t is None:
        return Retry()
    key = (*key, "retry")
    return Retry(
        attempts=r.integer(t, key, "attempts", minimum=1, maximum=MAX_ATTEMPTS),
        backoff=r.number(t, key, "backoff", minimum=0, maximum=MAX_TIMEOUT),
        max_delay=r.number(t, key, "max_delay", minimum=0, maximum=MAX_TIMEOUT),
        on_status=r.statuses(t, key, "on_status"),
        idempotent_only=r.boolean(t, key, "idempotent_only"),
    )
