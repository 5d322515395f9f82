"""Typed profiles, messages and environments built from YAML documents (SPEC §1.1, §1.2, §6).

``parse_profile`` / ``parse_message`` / ``parse_environment`` check one :class:`~oauthcli.registry.yamlsrc.Document`
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

from oauthcli.registry.declaration import (
    ACCESS_TOKEN_TYPE,
    AUTH,
    AUTH_REQUIRES,
    AUTH_SCHEME_PATTERN,
    AUTH_TYPES,
    AUTHORIZATION_SET,
    ENVIRONMENT,
    MESSAGE,
    METHOD,
    PROFILE,
    SETTINGS,
    SIGNING_ALGS,
    Key,
    auth_keys,
    children,
    top,
)
from oauthcli.registry.document import Document
from oauthcli.registry.reader import Reader, Text

_AUTH_SCHEME = re.compile(AUTH_SCHEME_PATTERN)
# What each block is read with: its keys as written, in declaration order.
_PROFILE_TOP = top(PROFILE)
_PROFILE_KEYS = tuple(k.name for k in _PROFILE_TOP)
_PROFILE_VALUES = tuple(k for k in _PROFILE_TOP if k.kind != "mapping" and k.name != "name")
_PROFILE_REQUIRED_IF = tuple(k for k in PROFILE if k.required_if)
_PROFILE_ONLY_IF = tuple(k for k in _PROFILE_TOP if k.only_if)
_SIGNING_ALG = next(k for k in PROFILE if k.name == "signing_alg")
_MESSAGE_KEYS = tuple(k.name for k in top(MESSAGE))
_ENVIRONMENT_KEYS = tuple(k.name for k in ENVIRONMENT)
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")  # what ${name} can refer to
_METHOD_TOP = top(METHOD)
_METHOD_KEYS = tuple(k.name for k in _METHOD_TOP)
_METHOD_VALUES = tuple(k for k in _METHOD_TOP if k not in SETTINGS and k.name != "http_method")
_HTTP_METHOD = next(k for k in METHOD if k.name == "http_method")
_BODIES = ("json", "content", "form")
_SETTINGS_VALUES = tuple(k for k in top(SETTINGS) if k.kind != "mapping")
_TLS_KEYS = children(PROFILE, "tls")
_RETRY_KEYS = children(SETTINGS, "retry")
_AUTH_TYPE = AUTH[0]
_AUTH_KEYS = {kind: tuple(k.leaf for k in auth_keys(kind)) for kind in AUTH_TYPES}
_AUTH_VALUES = tuple(k for k in AUTH if k is not _AUTH_TYPE)


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
class GitHubActions:
    """``client_assertion: {github_actions: {audience: …}}``: GitHub Actions' OIDC ID token."""

    audience: Text


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
    issuer: Text | None = None
    client_secret: Text | None = None
    private_key: Text | None = None
    key_id: Text | None = None
    signing_alg: str | None = None
    client_assertion: Text | GitHubActions | None = None
    scope: tuple[Text, ...] = ()
    audience: Text | None = None
    resource: tuple[Text, ...] = ()
    extra_params: dict[str, Text] = field(default_factory=dict)
    authorization_params: dict[str, Text] = field(default_factory=dict)
    username: Text | None = None
    password: Text | None = None
    refresh_token: Text | None = None
    assertion: Text | None = None
    subject_token: Text | None = None
    subject_token_type: str = ACCESS_TOKEN_TYPE
    actor_token: Text | None = None
    actor_token_type: str | None = None
    requested_token_type: str | None = None
    authorization_url: Text | None = None
    redirect_url: Text | None = None
    device_authorization_url: Text | None = None
    revocation_url: Text | None = None
    refresh_token_lifespan: int | None = None
    token_leeway: int = 60
    token_scheme: str | None = None
    dpop: bool = False
    timeout: float = 30.0
    tls: TLS = TLS()
    allow_insecure_http: bool = False
    log_level: str | None = None
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
    log_level: str | None = None


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


@dataclass(frozen=True, repr=False, eq=False)
class Environment:
    """An ``environments/NAME.yaml``: the values of ``${name}`` when it is selected."""

    name: str
    source: Path
    variables: dict[str, Text]
    description: str | None = None


def item_name(doc: Document) -> str:
    name = doc.data.get("name") if isinstance(doc.data, dict) else None
    return name if isinstance(name, str) and name else doc.path.stem


def _read(r: Reader, m: dict[str, Any], path: tuple[str, ...], key: Key) -> Any:
    """One key's value, read and checked as its declaration says; its default when absent."""
    name, kind = key.leaf, key.kind
    if kind == "template":
        required = key.required and not (key.unless and key.unless in m)
        text = r.text(m, path, name, required=required, secret=key.secret, url=key.url)
        return Text.empty() if text is None and key.required else text
    if kind == "string":
        read = r.header_name if key.header_names else r.plain
        value = read(m, path, name)
        return key.default if value is None else value
    if kind == "choice":
        value = r.choice(m, path, name, key.choices, required=key.required)
        return key.default if value is None else value
    if kind == "level":
        return r.level(m, path, name, key.choices)
    if kind == "map":
        if name not in m and key.name in _OPTIONAL_MAPS:
            return None
        return r.text_map(m, path, name, header_names=key.header_names)
    if kind == "words":
        return r.words(m, path, name, split=key.split)
    if kind == "integer":
        assert key.maximum is not None
        return r.integer(
            m,
            path,
            name,
            minimum=int(key.minimum or 0),
            maximum=int(key.maximum),
            default=key.default,
        )
    if kind == "number":
        assert key.maximum is not None
        return r.number(
            m, path, name, minimum=key.minimum or 0, maximum=key.maximum, default=key.default
        )
    if kind == "boolean":
        flag = r.boolean(m, path, name)
        return key.default if flag is None else flag
    if kind == "json":
        return r.json_body(m, path, name)
    if kind == "statuses":
        return r.statuses(m, path, name)
    if kind == "assertion":
        return _assertion(r, m, path, key)
    raise AssertionError(f"{key.name}: no reader for kind {kind}")  # pragma: no cover


def _assertion(
    r: Reader, m: dict[str, Any], path: tuple[str, ...], key: Key
) -> Text | GitHubActions | None:
    """A template, or ``{github_actions: {audience: …}}``."""
    raw = m.get(key.leaf)
    if not isinstance(raw, dict):
        return r.text(m, path, key.leaf, secret=key.secret)
    where = (*path, key.leaf)
    block = r.mapping(where, raw, ("github_actions",))
    if block is None:
        return None
    if "github_actions" not in block:
        r.fail(
            where, "github_actions: missing; write a template or {github_actions: {audience: …}}"
        )
        return None
    where = (*where, "github_actions")
    inner = r.mapping(where, block["github_actions"], ("audience",))
    if inner is None:
        return None
    audience = r.text(inner, where, "audience", required=True)
    return None if audience is None else GitHubActions(audience)


_OPTIONAL_MAPS = frozenset({"form"})  # None when absent, so an empty form is still a body


def parse_profile(doc: Document) -> Profile:
    r = Reader(doc)
    m = r.root(_PROFILE_KEYS)
    r.plain(m, (), "name")  # a name that is not a string is a problem, not ignored
    values = {key.name: _read(r, m, (), key) for key in _PROFILE_VALUES}
    grant_known = values["grant_type"] is not None
    values["grant_type"] = values["grant_type"] or "client_credentials"
    profile = Profile(
        name=item_name(doc),
        source=doc.path,
        tls=_tls(r, m, ()),
        key_lines={str(key[0]): line for key, line in doc.lines.items() if len(key) == 1},
        **values,
    )
    if profile.token_scheme is not None and not _AUTH_SCHEME.fullmatch(profile.token_scheme):
        r.fail(("token_scheme",), "must be one word of letters, digits or !#$%&'*+-.^_`|~")
    _check_profile(r, m, values, grant_known)
    r.raise_problems()
    return profile


def _check_profile(r: Reader, m: dict[str, Any], values: dict[str, Any], grant_known: bool) -> None:
    """The requirements between keys: what a grant_type or client_auth needs, and what
    signing_alg may be used with (all declared in declaration.py)."""
    for key in _PROFILE_REQUIRED_IF:
        if key.name in m or (key.unless and key.unless in m):
            continue
        for on, value in key.required_if:
            if values[on] == value and (on != "grant_type" or grant_known):
                r.fail((), f"{key.name}: missing; {on} {value} needs it")
                break
    if "actor_token" in m and "actor_token_type" not in m:
        r.fail((), "actor_token_type: missing; actor_token needs it (RFC 8693 §2.1)")
    refused = _check_only_if(r, m, values)
    for name in values["authorization_params"]:
        if name in AUTHORIZATION_SET:
            r.fail(
                ("authorization_params", name),
                "set by oauthcli from the profile (client_id, redirect_url, scope, audience, "
                "resource, PKCE and state): remove it here",
            )
    alg, client_auth = values["signing_alg"], values["client_auth"]
    if alg is not None and _SIGNING_ALG not in refused and client_auth in SIGNING_ALGS:
        if alg not in SIGNING_ALGS[client_auth]:
            r.fail(("signing_alg",), f"must be one of {', '.join(SIGNING_ALGS[client_auth])}")


def _check_only_if(r: Reader, m: dict[str, Any], values: dict[str, Any]) -> set[Key]:
    """A key written where it has no meaning (its declaration's ``only_if``: another
    grant_type or client_auth) is a problem at the key, not ignored; the keys refused.
    A grant_type or client_auth that is itself wrong decides nothing (it has its own line)."""
    refused = set()
    for key in _PROFILE_ONLY_IF:
        if key.leaf not in m:
            continue
        on = key.only_if[0][0]  # one key decides, in every table
        if on in m and m[on] != values[on]:
            continue
        if not any(values[on] == value for _, value in key.only_if):
            used = " or ".join(value for _, value in key.only_if)
            r.fail((key.leaf,), f"only used with {on} {used}")
            refused.add(key)
    return refused


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
    description = r.plain(m, (), "description")  # read before the problems are raised
    r.raise_problems()
    return Message(item_name(doc), doc.path, settings, methods, description)


def _method(r: Reader, name: str, body: Any) -> Method | None:
    key = ("methods", name)
    if body is None:
        body = {}
    m = r.mapping(key, body, _METHOD_KEYS)
    if m is None:
        return None
    verb = _read(r, m, key, _HTTP_METHOD).upper()
    if verb not in _HTTP_METHOD.choices:
        r.fail((*key, "http_method"), f"must be one of {', '.join(_HTTP_METHOD.choices)}")
    bodies = [k for k in _BODIES if k in m]
    if len(bodies) > 1:
        r.fail(key, f"{' and '.join(bodies)}: a method has one body; keep one of them")
    settings = _settings(r, m, key)
    return Method(
        name=name,
        http_method=verb,
        settings=settings,
        line=r.doc.line(key),
        has_json="json" in m,
        **{k.name: _read(r, m, key, k) for k in _METHOD_VALUES},
    )


def _settings(r: Reader, m: dict[str, Any], key: tuple[str, ...]) -> Settings:
    return Settings(
        auth=_auth(r, m, key),
        retry=_retry(r, m, key),
        tls=_tls(r, m, key),
        **{k.name: _read(r, m, key, k) for k in _SETTINGS_VALUES},
    )


def _auth(r: Reader, m: dict[str, Any], key: tuple[str, ...]) -> Auth | None:
    if "auth" not in m:
        return None
    key = (*key, "auth")
    raw = m["auth"]
    if not r.expect_mapping(key, raw):
        return None
    kind = _read(r, raw, key, _AUTH_TYPE)
    if kind is None:
        return None
    a = r.mapping(key, raw, _AUTH_KEYS[kind])
    if a is None:
        return None
    for name in AUTH_REQUIRES[kind]:
        if name not in a:
            r.fail(key, f"{name}: missing; auth type {kind} needs it")
    return Auth(
        type=kind,
        line=r.doc.line(key),
        **{k.leaf: _read(r, a, key, k) for k in _AUTH_VALUES},
    )


def _tls(r: Reader, m: dict[str, Any], key: tuple[str, ...]) -> TLS:
    raw = m.get("tls")
    t = r.mapping((*key, "tls"), raw, _TLS_NAMES) if raw is not None else None
    if t is None:
        return TLS()
    key = (*key, "tls")
    return TLS(**{k.leaf: _read_unset(r, t, key, k) for k in _TLS_KEYS})


def _retry(r: Reader, m: dict[str, Any], key: tuple[str, ...]) -> Retry:
    raw = m.get("retry")
    t = r.mapping((*key, "retry"), raw, _RETRY_NAMES) if raw is not None else None
    if t is None:
        return Retry()
    key = (*key, "retry")
    return Retry(**{k.leaf: _read_unset(r, t, key, k) for k in _RETRY_KEYS})


def _read_unset(r: Reader, m: dict[str, Any], path: tuple[str, ...], key: Key) -> Any:
    """Like :func:`_read`, but ``None`` when absent: a ``tls`` or ``retry`` key left out
    is inherited (a method's from its message), its default applied only when resolving."""
    value = _read(r, m, path, key)
    return None if key.leaf not in m else value


_TLS_NAMES = tuple(k.leaf for k in _TLS_KEYS)
_RETRY_NAMES = tuple(k.leaf for k in _RETRY_KEYS)


def parse_environment(doc: Document) -> Environment:
    r = Reader(doc)
    m = r.root(_ENVIRONMENT_KEYS)
    r.plain(m, (), "name")
    variables = r.text_map(m, (), "variables")
    for name, text in variables.items():
        if not _VARIABLE_NAME.fullmatch(name):
            r.fail(("variables", name), "is not a name ${…} can use (letters, digits, _ . -)")
        elif text.variables:
            r.fail(
                text.key_path,
                "an environment's values take ${env:…} and ${file:…}, not ${name} variables",
            )
    description = r.plain(m, (), "description")
    r.raise_problems()
    return Environment(item_name(doc), doc.path, variables, description)
