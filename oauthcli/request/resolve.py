"""From a message (or profile) and call variables to one concrete request.

Inheritance (SPEC §1.2, "inherit from parent"): a method's ``auth``,
``endpoint``, ``timeout`` and ``allow_insecure_http`` replace the message's;
``headers`` and ``query`` are merged over it; ``retry`` and ``tls`` key by key.
Values are encoded for where they land (SPEC §1.3), and every secret leaves
here wrapped in :class:`~oauthcli.secret.Secret`.

The registry's selected environment (SPEC §6) gives ``${name}`` its values: in a
profile the only ones; in a message above its ``variables``, below the call's. Like
``${env:…}`` they are configuration, so they go into a URL as written (a base URL, an
instance name), where a call variable is percent-encoded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from oauthcli.auth import ApiKeyAuth, BasicAuth, BearerAuth, NoAuth, OAuth2Auth
from oauthcli.auth.base import Auth as ResolvedAuth
from oauthcli.errors import MissingVariable, Problem, RegistryError, UsageError
from oauthcli.headers import header_value_problem
from oauthcli.registry.discovery import ENVIRONMENTS, Registry
from oauthcli.registry.models import TLS, Auth, GitHubActions, Message, Method, Profile, Retry
from oauthcli.registry.reader import Text, url_problem
from oauthcli.registry.templates import File, Part, Template, TemplateError, TokenRef, Var
from oauthcli.request.resolved import (
    AssertionSource,
    ResolvedProfile,
    ResolvedRequest,
    ResolvedRetry,
    ResolvedTLS,
    WithTokens,
)
from oauthcli.secret import Secret, reveal
from oauthcli.urls import is_loopback


class _Renderer:
    """Renders one item's templates, turning template errors into registry errors.

    With ``problems`` (``validate``) a problem is recorded and rendering goes on with an
    empty value, so that one bad key hides no other key's problem.
    """

    def __init__(
        self,
        source: Path,
        variables: Mapping[str, str] | None = None,
        problems: list[Problem] | None = None,
        *,
        raw: frozenset[str] = frozenset(),
        missing: Callable[[str], str] | None = None,
    ) -> None:
        self.source = source
        self.variables = variables
        self.problems = problems
        self.raw = raw  # variables whose values are configuration: never percent-encoded
        self.missing = missing  # what a variable with no value is told as, if not a call's

    def __call__(self, text: Text, encode: Callable[[str], str] | None = None) -> str:
        try:
            return text.template.render(
                self.variables, base_dir=self.source.parent, encode=encode, raw=self.raw
            )
        except MissingVariable as exc:
            reason = self.missing(exc.name) if self.missing else str(exc)
            return self._fail(RegistryError.at(self.source, text.line, text.key or None, reason))
        except TemplateError as exc:
            return self._fail(RegistryError.at(self.source, text.line, text.key or None, str(exc)))

    def _fail(self, exc: RegistryError) -> str:
        if self.problems is None:
            raise exc
        self.problems += getattr(exc, "problems", [])
        return ""

    def url(self, text: Text, allow_insecure_http: bool) -> str:
        url = self(text)
        try:
            if self.variables:  # a profile's values are all the environment's, as written
                _check_places(text, self.variables, None, self.source)
            check_url(url, allow_insecure_http, self.source, text)
        except RegistryError as exc:
            self._fail(exc)
        return url

    def opt(self, text: Text | None) -> str | None:
        return None if text is None else self(text)

    def secret(self, text: Text | None) -> Secret | None:
        return None if text is None else Secret(self(text))

    def path(self, text: Text | None) -> str | None:
        if text is None:
            return None
        path = Path(self(text)).expanduser()
        path = path if path.is_absolute() else self.source.parent / path
        if not path.is_file():  # found now, not as a crash inside the TLS layer
            missing = "is not a file" if path.exists() else "not found"
            self._fail(
                RegistryError.at(self.source, text.line, text.key or None, f"{path} {missing}")
            )
        return str(path)


def resolve_profile(
    profile: Profile,
    *,
    problems: list[Problem] | None = None,
    registry: Registry | None = None,
    _chain: tuple[str, ...] = (),
) -> ResolvedProfile:
    """The profile with its values rendered; raises RegistryError at the first problem, or,
    given ``problems``, records every one there and goes on.

    ``registry`` resolves the profiles that ``${token:PROFILE}`` names (their tokens are
    fetched only when the token exchange runs); ``_chain`` is the profiles being resolved
    that lead here, so a cycle is named instead of followed.

    ``${name}`` takes the value of the registry's selected environment, and only that."""
    values = registry.environment_values if registry is not None else {}
    r = _Renderer(
        profile.source,
        values,
        problems,
        missing=lambda name: _no_environment_value(registry, name),
    )
    tokens = _TokenRefs(r, registry, (*_chain, profile.name))
    issuer = None if profile.issuer is None else r.url(profile.issuer, profile.allow_insecure_http)
    if issuer and ("?" in issuer or "#" in issuer):
        assert profile.issuer is not None
        r._fail(RegistryError.at(profile.source, profile.issuer.line, "issuer", _ISSUER_FORM))
    # Without token_url (an empty Text), the issuer's metadata gives it when a token is needed.
    token_url = (
        ""
        if issuer is not None and not profile.token_url.key_path
        else r.url(profile.token_url, profile.allow_insecure_http)
    )
    for text in (
        profile.revocation_url,
        profile.authorization_url,
        profile.device_authorization_url,
    ):
        if text is not None:
            r.url(text, profile.allow_insecure_http)
    return ResolvedProfile(
        name=profile.name,
        source=profile.source,
        grant_type=profile.grant_type,
        issuer=issuer,
        token_url=token_url,
        client_id=r(profile.client_id),
        client_auth=profile.client_auth,
        client_secret=r.secret(profile.client_secret),
        private_key=r.secret(profile.private_key),
        key_id=r.opt(profile.key_id),
        signing_alg=profile.signing_alg,
        scope=tuple(r(t) for t in profile.scope),
        audience=r.opt(profile.audience),
        resource=tuple(r(t) for t in profile.resource),
        extra_params={k: r(v) for k, v in profile.extra_params.items()},
        authorization_params={k: r(v) for k, v in profile.authorization_params.items()},
        username=r.opt(profile.username),
        password=r.secret(profile.password),
        refresh_token=r.secret(profile.refresh_token),
        assertion=r.secret(profile.assertion),
        subject_token=tokens(profile.subject_token),
        subject_token_type=profile.subject_token_type,
        actor_token=tokens(profile.actor_token),
        actor_token_type=profile.actor_token_type,
        requested_token_type=profile.requested_token_type,
        client_assertion=_assertion_source(r, profile),
        authorization_url=r.opt(profile.authorization_url),
        redirect_url=r.opt(profile.redirect_url),
        device_authorization_url=r.opt(profile.device_authorization_url),
        revocation_url=r.opt(profile.revocation_url),
        refresh_token_lifespan=profile.refresh_token_lifespan,
        token_leeway=profile.token_leeway,
        token_scheme=profile.token_scheme,
        dpop=profile.dpop,
        timeout=profile.timeout,
        tls=_tls(r, profile.tls, TLS()),
        allow_insecure_http=profile.allow_insecure_http,
        log_level=profile.log_level,
        description=profile.description,
    )


def _no_environment_value(registry: Registry | None, name: str) -> str:
    """Why a profile's ``${name}`` has no value: no environment, or not in the selected one."""
    env = registry.environment if registry is not None else None
    if env is not None:
        return (
            f"${{{name}}} has no value: environment '{env.name}' ({env.source.name}) has no "
            f"variable '{name}' (a profile takes ${{name}} from the environment only)"
        )
    known = registry.names(ENVIRONMENTS) if registry is not None else []
    among = f" ({', '.join(known)})" if known else ""
    return (
        f"${{{name}}} has no value: a profile takes ${{name}} from an environment; select "
        f"one{among} with --env/-e NAME or OAUTHCLI_ENV"
    )


_ISSUER_FORM = "an issuer is an https URL without query or fragment (RFC 8414 §2)"


class _TokenRefs:
    """Renders ``subject_token``/``actor_token``: ``${token:PROFILE}`` parts become that
    profile, resolved now (so an unknown one or a cycle is a registry error before anything
    is sent), its token fetched later; the other parts are rendered now."""

    def __init__(self, r: _Renderer, registry: Registry | None, chain: tuple[str, ...]) -> None:
        self.r, self.registry, self.chain = r, registry, chain

    def __call__(self, text: Text | None) -> Secret | WithTokens | None:
        if text is None:
            return None
        if not any(isinstance(p, TokenRef) for p in text.template.parts):
            return self.r.secret(text)
        parts: list[Secret | ResolvedProfile] = []
        pending: list[Part] = []
        for part in (*text.template.parts, None):
            if isinstance(part, TokenRef) or part is None:
                if pending:
                    parts.append(Secret(self.r(replace(text, template=Template(tuple(pending))))))
                    pending = []
                if part is not None:
                    inner = self._profile(text, part.profile)
                    if inner is not None:
                        parts.append(inner)
            else:
                pending.append(part)
        return WithTokens(tuple(parts))

    def _profile(self, text: Text, name: str) -> ResolvedProfile | None:
        r = self.r
        ref = "${token:" + name + "}"
        if self.registry is None:
            r._fail(RegistryError.at(r.source, text.line, text.key, f"{ref} needs the registry"))
            return None
        if name in self.chain:
            cycle = " → ".join((*self.chain[self.chain.index(name) :], name))
            r._fail(
                RegistryError.at(
                    r.source, text.line, text.key, f"{ref} makes a cycle of profiles: {cycle}"
                )
            )
            return None
        if not self.registry.has("profiles", name):
            r._fail(
                RegistryError.at(r.source, text.line, text.key, f"{ref}: no profile named '{name}'")
            )
            return None
        cached: ResolvedProfile | None = self.registry.resolved_profiles.get(name)
        if cached is not None:
            return cached
        try:
            resolved = resolve_profile(
                self.registry.profile(name), registry=self.registry, _chain=self.chain
            )
        except RegistryError as exc:
            r._fail(exc)
            return None
        if r.problems is None:
            self.registry.resolved_profiles[name] = resolved
        return resolved


def _assertion_source(r: _Renderer, profile: Profile) -> Secret | AssertionSource | None:
    """``client_assertion``: a file (a projected token) is read at each token request, not now;
    GitHub Actions' token is asked for then too; a literal or ``${env:…}`` is rendered now."""
    spec = profile.client_assertion
    if spec is None:
        return None
    if isinstance(spec, GitHubActions):
        return AssertionSource(profile.source, github_audience=r(spec.audience))
    if any(isinstance(p, File) for p in spec.template.parts):
        return AssertionSource(profile.source, template=spec.template)
    return r.secret(spec)


def split_target(registry: Registry, target: str, method: str | None) -> tuple[Message, Method]:
    """``incidents.list`` or ``incidents`` with ``--method list`` → message and method."""
    name, method_name = target, method
    if not registry.has("messages", target) and "." in target:
        name, _, dotted = target.rpartition(".")
        if method_name and method_name != dotted:
            raise UsageError(
                f"'{target}' names method '{dotted}' but --method says '{method_name}'"
            )
        method_name = dotted
    message = registry.message(name)
    return message, pick_method(message, method_name)


def pick_method(message: Message, name: str | None) -> Method:
    methods = message.methods
    if name is None:
        if len(methods) == 1:
            return next(iter(methods.values()))
        if "default" in methods:
            return methods["default"]
        raise UsageError(
            f"message '{message.name}' has methods {', '.join(methods)}: name one, "
            f"e.g. {message.name}.{next(iter(methods))}"
        )
    if name not in methods:
        raise RegistryError.at(
            message.source,
            None,
            "methods",
            f"message '{message.name}' has no method '{name}' (it has: {', '.join(methods)})",
        )
    return methods[name]


class Placeholder(str):
    """Stands for a variable with no value when a request is only shown."""

    __slots__ = ()


class _Lenient(dict[str, str]):
    def __missing__(self, name: str) -> str:
        return Placeholder("${" + name + "}")


def resolve_request(
    registry: Registry,
    message: Message,
    method: Method,
    variables: Mapping[str, str] | None = None,
    *,
    lenient: bool = False,
) -> ResolvedRequest:
    """The request a call would send; ``lenient`` leaves missing variables as ``${name}``."""
    return RequestPlan(registry, message, method).resolve(variables, lenient=lenient)


class RequestPlan:
    """A message's method with everything that no call variable changes worked out once.

    ``send --each`` resolves one request per row: the merged headers, the
    defaults, auth, retry, TLS and every value that uses no ``${name}`` are the
    same for all rows, so only the values that use the row's variables are
    rendered per call. Errors are the same either way (file, line, key).
    """

    def __init__(self, registry: Registry, message: Message, method: Method) -> None:
        mine, theirs = method.settings, message.settings
        self.message, self.method = message, method
        source = message.source
        defaults = _Renderer(source)
        self.defaults: dict[str, str] = {}
        for name, text in {**theirs.variables, **mine.variables}.items():
            if text.variables:
                raise RegistryError.at(
                    source, text.line, text.key, "variable defaults cannot use ${name} variables"
                )
            self.defaults[name] = defaults(text)
        endpoint = mine.endpoint or theirs.endpoint
        if endpoint is None:
            raise RegistryError.at(source, None, "endpoint", "missing required key")
        self.endpoint = endpoint
        self.allow_http = _first(mine.allow_insecure_http, theirs.allow_insecure_http, False)
        self.log_level = mine.log_level or theirs.log_level
        self.headers = _merge_ci(theirs.headers, mine.headers)
        self.query = {**theirs.query, **mine.query}
        self.auth_spec = mine.auth or theirs.auth or Auth("none")
        self.used = _variables_used(method, message, self.auth_spec)
        self.timeout = _first(mine.timeout, theirs.timeout, 30.0)
        self.retry = _retry(mine.retry, theirs.retry)
        self.tls_texts = (mine.tls, theirs.tls)
        # Rendered now when nothing in them depends on the call's variables.
        self._static = not any(
            t.variables for t in (*_auth_texts(self.auth_spec), *_tls_texts(mine.tls, theirs.tls))
        )
        self._auth: ResolvedAuth | None = None
        self._tls: ResolvedTLS | None = None
        if self._static:
            self._auth = resolve_auth(registry, self.auth_spec, defaults, source)
            self._tls = _tls(defaults, mine.tls, theirs.tls)
        self.registry = registry

    def resolve(
        self, variables: Mapping[str, str] | None = None, *, lenient: bool = False
    ) -> ResolvedRequest:
        message, method = self.message, self.method
        given = variables or {}
        environment = self.registry.environment_values
        values = {**self.defaults, **environment, **given}
        call_vars: dict[str, str] = _Lenient(values) if lenient else values
        raw = frozenset(n for n in environment if n not in given) if environment else frozenset()
        r = _Renderer(message.source, call_vars, raw=raw)

        url = _render_url(r, self.endpoint, values)
        if raw:
            _check_places(self.endpoint, values, raw, message.source)
        if method.path is not None:
            url = _join(url, _render_url(r, method.path, values))
            if raw:
                _check_places(method.path, values, raw, message.source, in_path=True)
        if not (lenient and "${" in url):
            check_url(url, self.allow_http, message.source, self.endpoint)

        headers: dict[str, str] = {}
        for name, text in self.headers.items():
            value = r(text)
            problem = header_value_problem(value)
            if problem:
                raise RegistryError.at(message.source, text.line, text.key, f"value {problem}")
            headers[name] = value
        params = [(name, r(text)) for name, text in self.query.items()]

        body, body_json, content_type = _body(r, method)
        if content_type and not any(h.lower() == "content-type" for h in headers):
            headers["Content-Type"] = content_type

        auth, tls = self._auth, self._tls
        if auth is None or tls is None:
            auth = resolve_auth(self.registry, self.auth_spec, r, message.source)
            tls = _tls(r, *self.tls_texts)
        return ResolvedRequest(
            message=message.name,
            method=method.name,
            http_method=method.http_method,
            url=url,
            params=params,
            headers=headers,
            body=body,
            auth=auth,
            timeout=self.timeout,
            retry=self.retry,
            tls=tls,
            source=message.source,
            json=body_json,
            variables={n: values[n] for n in self.used if n in values},
            missing=[n for n in self.used if n not in values],
            log_level=self.log_level,
            environment=env.name if (env := self.registry.environment) is not None else None,
        )


def profile_named(registry: Registry, name: str) -> ResolvedProfile:
    """The profile ``name``, resolved once per registry (and environment)."""
    resolved: ResolvedProfile | None = registry.resolved_profiles.get(name)
    if resolved is None:
        resolved = resolve_profile(registry.profile(name), registry=registry)
        registry.resolved_profiles[name] = resolved
    return resolved


def use_profile(registry: Registry, req: ResolvedRequest, name: str, asked: str) -> ResolvedRequest:
    """``req`` with the token of profile ``name`` instead of its own (``send --profile``,
    ``Registry.send(profile=…)``); only an ``oauth2`` message has a profile to replace."""
    if not isinstance(req.auth, OAuth2Auth):
        raise RegistryError.at(
            req.source,
            None,
            "auth",
            f"message '{req.message}' uses auth {req.auth.type}, not oauth2: {asked} cannot apply",
        )
    req.auth = OAuth2Auth(profile_named(registry, name))
    return req


def resolve_auth(registry: Registry, auth: Auth, r: _Renderer, source: Path) -> ResolvedAuth:
    """The :mod:`oauthcli.auth` object of a message's ``auth:``, its templates rendered."""
    if auth.type == "oauth2":
        assert auth.profile is not None
        if not registry.has("profiles", auth.profile):
            raise RegistryError.at(
                source, auth.line, "auth.profile", f"no profile named '{auth.profile}'"
            )
        return OAuth2Auth(profile_named(registry, auth.profile))
    if auth.type == "basic":
        username, password = r.opt(auth.username), r.secret(auth.password)
        if username and ":" in username:
            _refuse(r, auth, auth.username, "contains ':', which Basic auth cannot carry")
        for text, plain in ((auth.username, username), (auth.password, reveal(password))):
            if plain and not plain.isascii() and not _latin1(plain):
                _refuse(r, auth, text, "contains a character outside Latin-1 (Basic auth)")
            if plain and _CONTROL.search(plain):  # a stray "\n" from $(cat file) or an env var
                what = "a line break" if "\r" in plain or "\n" in plain else "a control character"
                _refuse(r, auth, text, f"contains {what} (Basic auth)")
        return BasicAuth(username, password)
    if auth.type == "bearer":
        token = r.secret(auth.token)
        _header_safe(r, auth, auth.token, reveal(token))
        return BearerAuth(token)
    if auth.type == "api_key":
        key = r.secret(auth.value)
        _header_safe(r, auth, auth.value, reveal(key))
        return ApiKeyAuth(auth.header, key)
    return NoAuth()


def _header_safe(r: _Renderer, auth: Auth, text: Text | None, value: str | None) -> None:
    problem = header_value_problem(value) if value else None
    if problem:
        _refuse(r, auth, text, problem)


def _refuse(r: _Renderer, auth: Auth, text: Text | None, problem: str) -> None:
    """A credential that cannot be sent; the message names the key, never the value."""
    line = text.line if text is not None else auth.line
    key = text.key if text is not None and text.key else None
    raise RegistryError.at(r.source, line, key or "auth", f"the value {problem}")


_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")  # a tab may stay


def _latin1(value: str) -> bool:
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


# A call variable whose whole value is one of these would not stay in its path
# segment: requests (urllib3) removes "." and ".." segments, so `/items/${id}`
# with id=.. would go to the parent (and "%2E" is decoded back to "." first).
_WHOLE_SEGMENT = {".": "\x00dot\x00", "..": "\x00dotdot\x00"}
_SEGMENT_VALUE = {marker: value for value, marker in _WHOLE_SEGMENT.items()}


def _segment_quote(value: str) -> str:
    if isinstance(value, Placeholder):
        return value
    return _WHOLE_SEGMENT.get(value) or quote(value, safe="")


def _render_url(r: _Renderer, text: Text, values: Mapping[str, str]) -> str:
    """An endpoint or path with call variables percent-encoded, each inside its segment.

    A variable whose value is ``.`` or ``..`` and that forms a path segment on its
    own is refused: that request would go somewhere else than the one named.
    """
    rendered = r(text, _segment_quote)
    if "\x00" not in rendered:
        return rendered
    end = min((i for i in (rendered.find("?"), rendered.find("#")) if i >= 0), default=None)
    path = rendered[:end]
    if "://" in path:  # an endpoint: its path starts after the authority
        slash = path.find("/", path.index("://") + 3)
        path = path[slash:] if slash >= 0 else ""
    for segment in path.split("/"):
        value = _SEGMENT_VALUE.get(segment)
        if value is None:
            continue
        name = next((n for n in text.variables if values.get(n) == value), "?")
        raise RegistryError.at(
            r.source,
            text.line,
            text.key or None,
            f"variable '{name}' is {value!r}: as a whole path segment it would send the call "
            "to another path (dot segments are removed before sending)",
        )
    for marker, value in _SEGMENT_VALUE.items():
        rendered = rendered.replace(marker, quote(value, safe=""))
    return rendered


#: What an environment value may not hold where it goes: in a URL's host it would move
#: the call to another host (or add a user:password); in its path, end the path early.
_NOT_IN_AUTHORITY = re.compile(r"[/?#@\\\s]")
_NOT_IN_PATH = re.compile(r"[?#\\\s]")


def _check_places(
    text: Text,
    values: Mapping[str, str],
    raw: frozenset[str] | None,
    source: Path,
    *,
    in_path: bool = False,
) -> None:
    """Refuse an environment value (inserted as written, SPEC §6) that would change what
    the URL written in the file fixes: a value inside its host that holds ``/ ? # @``
    (another host, a user:password), or a value inside its path that holds ``?``, ``#``
    or a ``.``/``..`` segment (another path). A value that starts the URL (a whole
    ``${base_url}``) may hold anything a URL may. ``raw`` None: every variable is raw."""
    skeleton = "".join(p if isinstance(p, str) else "\x01" for p in text.template.parts)

    def first(chars: str, begin: int) -> int:
        return min((i for i in (skeleton.find(c, begin) for c in chars) if i >= 0), default=-1)

    if in_path:
        host_start = host_end = 0
    elif (scheme := skeleton.find("://")) >= 0:
        host_start = scheme + 3
        host_end = first("/?#", host_start)
        host_end = len(skeleton) if host_end < 0 else host_end
    else:  # it starts with a whole base URL: the host is the value's
        host_start = host_end = len(skeleton) if first("/?#", 0) < 0 else first("/?#", 0)
    query = first("?#", host_end)
    query = len(skeleton) if query < 0 else query
    position = 0
    for part in text.template.parts:
        at = position
        position += len(part) if isinstance(part, str) else 1
        if not isinstance(part, Var) or (raw is not None and part.name not in raw):
            continue
        value = values.get(part.name)
        if value is None or at < host_start or at >= query:
            continue  # the scheme or a whole base URL, or the query: as written
        bad: str | None = None
        if at < host_end:
            found = _NOT_IN_AUTHORITY.search(value)
            where = "the host of"
        else:
            found = _NOT_IN_PATH.search(value)
            where = "the path of"
            if found is None and {".", ".."} & set(value.split("/")):
                bad = "a dot segment"
        if found is not None:
            bad = repr(found.group(0))
        if bad is None:
            continue
        raise RegistryError.at(
            source,
            text.line,
            text.key or None,
            f"environment variable '{part.name}' holds {bad}: inserted as written "
            f"into {where} this URL it would send the call elsewhere than the file names",
        )


def _body(r: _Renderer, method: Method) -> tuple[bytes | None, Any, str | None]:
    if method.has_json:
        document = _render_json(r, method.json)
        return json.dumps(document, ensure_ascii=False).encode(), document, "application/json"
    if method.content is not None:
        return r(method.content).encode(), None, "text/plain; charset=utf-8"
    if method.form is not None:
        form = [(name, r(text)) for name, text in method.form.items()]
        return urlencode(form).encode(), None, "application/x-www-form-urlencoded"
    return None, None, None


def _render_json(r: _Renderer, value: Any) -> Any:
    if isinstance(value, Text):
        return r(value)
    if isinstance(value, dict):
        return {k: _render_json(r, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_json(r, v) for v in value]
    return value


def _join(base: str, path: str) -> str:
    if not path:
        return base
    if path.startswith(("?", "#")):
        return base + path
    return base.rstrip("/") + "/" + path.lstrip("/")


def _merge_ci(base: Mapping[str, Text], over: Mapping[str, Text]) -> dict[str, Text]:
    """Header merge where ``accept`` in a method replaces ``Accept`` in its message."""
    merged = {k: v for k, v in base.items() if k.lower() not in {o.lower() for o in over}}
    merged.update(over)
    return merged


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _retry(mine: Retry, theirs: Retry) -> ResolvedRetry:
    d = ResolvedRetry()
    return ResolvedRetry(
        attempts=_first(mine.attempts, theirs.attempts, d.attempts),
        backoff=_first(mine.backoff, theirs.backoff, d.backoff),
        max_delay=_first(mine.max_delay, theirs.max_delay, d.max_delay),
        on_status=_first(mine.on_status, theirs.on_status, d.on_status),
        idempotent_only=_first(mine.idempotent_only, theirs.idempotent_only, d.idempotent_only),
    )


def _tls(r: _Renderer, mine: TLS, theirs: TLS) -> ResolvedTLS:
    return ResolvedTLS(
        verify=_first(mine.verify, theirs.verify, True),
        ca_bundle=r.path(mine.ca_bundle or theirs.ca_bundle),
        client_cert=r.path(mine.client_cert or theirs.client_cert),
        client_key=r.path(mine.client_key or theirs.client_key),
    )


def _auth_texts(auth: Auth) -> list[Text]:
    return [t for t in (auth.username, auth.password, auth.token, auth.value) if t]


def _tls_texts(*tls: TLS) -> list[Text]:
    return [t for x in tls for t in (x.ca_bundle, x.client_cert, x.client_key) if t]


def _variables_used(method: Method, message: Message, auth: Auth) -> list[str]:
    texts: list[Text] = []
    for s in (message.settings, method.settings):
        texts += [t for t in (s.endpoint,) if t is not None]
        texts += [*s.headers.values(), *s.query.values()]
    texts += [t for t in (method.path, method.content, auth.username, auth.password) if t]
    texts += [t for t in (auth.token, auth.value) if t]
    texts += list((method.form or {}).values())
    texts += list(_json_texts(method.json))
    seen: dict[str, None] = {}
    for text in texts:
        for name in text.variables:
            seen.setdefault(name)
    return list(seen)


def _json_texts(value: Any) -> list[Text]:
    if isinstance(value, Text):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _json_texts(v)]
    if isinstance(value, list):
        return [t for v in value for t in _json_texts(v)]
    return []


@lru_cache(maxsize=256)
def check_url(url: str, allow_insecure_http: bool, source: Path, text: Text) -> None:
    """Refuse what cannot be an http(s) URL, or plain http to a non-loopback host.

    A password written into the URL (``https://user:pw@host``) is a secret from
    here on: every printed line is scrubbed of it.
    """
    scheme, sep, rest = url.partition("://")
    authority = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if (
        sep
        and _good_origin(scheme + sep + authority, allow_insecure_http)
        and not _SPACE.search(url)
        and "@" not in authority  # a password in it is remembered as a secret below
    ):
        return  # the usual case, and the one a batch repeats: no need to look closer
    problem = url_problem(url)  # remembers a password written into the URL, and masks it
    if problem is None and urlsplit(url).scheme == "http" and not allow_insecure_http:
        host = urlsplit(url).hostname
        if not is_loopback(host):
            problem = (
                f"plain http:// to {host} is refused: use https://, "
                "or set allow_insecure_http: true"
            )
    if problem:
        raise RegistryError.at(source, text.line, text.key or None, problem)


_SPACE = re.compile(r"\s")


@lru_cache(maxsize=256)
def _good_origin(origin: str, allow_insecure_http: bool) -> bool:
    """``scheme://authority`` is fine to send to, with no password in it to remember."""
    if "@" in origin or url_problem(origin) is not None:
        return False
    parts = urlsplit(origin)
    return parts.scheme == "https" or allow_insecure_http or is_loopback(parts.hostname)
