"""Every key a registry file may hold, declared once (SPEC §1.1, §1.2, §3, §4, §6).

A :class:`Key` says what a key is: its dotted name (``tls.client_key``), the kind of
value it holds (how :class:`~oauthcli.registry.reader.Reader` reads it), its default,
whether it is secret, whether it takes ``${…}`` templates, its allowed values and range,
which ``grant_type``/``client_auth``/auth ``type`` requires it or allows it, and what it
means, in one sentence. Everything else is derived from these tables: the unknown-key
and per-key checks of :mod:`oauthcli.registry.models`, the ``show`` view of
:mod:`oauthcli.present.render`, and, in :mod:`oauthcli.registry.reference`, the key reference in README.md
(``python -m oauthcli.registry.reference --markdown``) and the JSON Schema of each file.

The module is a leaf: plain objects built once at import, nothing imported; it is on
the path of every ``send``, so what only the reference and the schema need lives there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

GRANT_TYPES = (
    "client_credentials",
    "password",
    "refresh_token",
    "jwt_bearer",
    "authorization_code",
    "device_code",
    "token_exchange",
)
CLIENT_AUTHS = (
    "client_secret_basic",
    "client_secret_post",
    "private_key_jwt",
    "client_secret_jwt",
    "none",
    "client_assertion",
)
AUTH_TYPES = ("oauth2", "basic", "bearer", "api_key", "none")
#: The outbound log's levels (SPEC §7, docs/outbound-log.md), least first.
LOG_LEVELS = ("off", "basic", "elevated", "all")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ASYMMETRIC_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
HMAC_ALGS = ("HS256", "HS384", "HS512")
#: The algorithms ``signing_alg`` may name, by the ``client_auth`` that signs with it.
SIGNING_ALGS = {"private_key_jwt": ASYMMETRIC_ALGS, "client_secret_jwt": HMAC_ALGS}
#: Authorization request parameters oauthcli sets itself: not for authorization_params.
AUTHORIZATION_SET = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "code_verifier",
    "audience",
    "resource",
)

#: Bounds of numbers with a unit: beyond them a value is a slip, not a wish (and
#: a float too large for the socket layer or the clock would end as a crash).
MAX_TIMEOUT = 86_400.0  # seconds: a day
MAX_ATTEMPTS = 100
MAX_LIFESPAN = 10 * 366 * 86_400  # seconds: ten years

#: An RFC 9110 auth-scheme (a token), for ``token_scheme``.
AUTH_SCHEME_PATTERN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"

#: Kinds of value, as the Reader reads them, and their JSON type.
_JSON_TYPES: dict[str, str | list[str]] = {
    "string": "string",  # a plain string, no template
    "choice": "string",  # one of ``choices``
    "template": "string",  # a ``${…}`` template (numbers and booleans are taken as written)
    "words": ["string", "array"],  # a template, or a list of them (split at spaces if ``split``)
    "map": "object",  # name → template
    "json": ["object", "array", "string", "number", "boolean", "null"],  # templates inside
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
    "statuses": "array",  # HTTP status codes, 100 to 599
    "mapping": "object",  # a block of its own keys (``tls``, ``retry``, ``auth``, ``methods``)
    "assertion": ["string", "object"],  # a template, or {github_actions: {audience: …}}
    "level": ["string", "boolean"],  # one of ``choices``; false (YAML 1.1's bare off) is off
}
_TEMPLATE_KINDS = frozenset({"template", "words", "map", "json", "assertion"})
#: The default ``subject_token_type`` (RFC 8693 §3).
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"

Condition = tuple[str, str]  # (key, value): "when ``key`` is ``value``"


class Key:
    """One key of a profile, message, method or ``auth`` block."""

    __slots__ = (
        "name",
        "kind",
        "meaning",
        "default",
        "secret",
        "url",
        "required",
        "choices",
        "minimum",
        "maximum",
        "split",
        "header_names",
        "pattern",
        "required_if",
        "only_if",
        "auth_types",
        "unless",
    )

    def __init__(
        self,
        name: str,
        kind: str,
        meaning: str,
        *,
        default: Any = None,
        secret: bool = False,
        url: bool = False,
        required: bool = False,
        choices: tuple[str, ...] = (),
        minimum: float | None = None,
        maximum: float | None = None,
        split: bool = True,
        header_names: bool = False,
        pattern: str | None = None,
        required_if: tuple[Condition, ...] = (),
        only_if: tuple[Condition, ...] = (),
        auth_types: tuple[str, ...] = (),
        unless: str | None = None,
    ) -> None:
        self.name = name  # dotted inside a block: tls.client_key, retry.attempts, auth.token
        self.kind = kind  # a key of _JSON_TYPES
        self.meaning = meaning
        self.default = default  # the value when the key is absent (None: nothing, or inherited)
        self.secret = secret  # wrapped in Secret once rendered; masked wherever shown
        self.url = url  # an http(s) URL, checked when written literally
        self.required = required  # always required
        self.choices = choices  # the allowed values, when they are a closed set
        self.minimum = minimum
        self.maximum = maximum
        self.split = split  # words: a string is split at white space
        self.header_names = header_names  # map: its names, string: itself, are header names
        self.pattern = pattern  # a regular expression the whole value matches
        self.required_if = required_if  # required when any of these holds
        self.only_if = only_if  # only allowed when one of these holds
        self.auth_types = auth_types  # auth block: the auth types that take this key
        self.unless = unless  # not required (nor required_if) when this key is set: issuer

    @property
    def leaf(self) -> str:
        """The key as written in its block: ``client_key`` of ``tls.client_key``."""
        return self.name.rpartition(".")[2]

    @property
    def template(self) -> bool:
        """Whether the value may use ``${…}``."""
        return self.kind in _TEMPLATE_KINDS

    def __repr__(self) -> str:
        return f"Key({self.name!r}, {self.kind!r})"


def json_type(key: Key) -> str | list[str]:
    """The JSON Schema ``type`` of the key's value."""
    return _JSON_TYPES[key.kind]


_TLS = (
    Key(
        "tls",
        "mapping",
        "TLS settings: verify, ca_bundle, client_cert and client_key.",
    ),
    Key(
        "tls.verify",
        "boolean",
        "Whether the server's certificate is verified; false prints a warning each time.",
        default=True,
    ),
    Key(
        "tls.ca_bundle",
        "template",
        "A PEM file of the certificate authorities to trust instead of the system's.",
    ),
    Key("tls.client_cert", "template", "A PEM client certificate for mutual TLS."),
    Key(
        "tls.client_key",
        "template",
        "The PEM private key of client_cert, when it is not in the same file.",
    ),
)

#: The keys of a profile file (SPEC §1.1), in the order the file lists them.
PROFILE: tuple[Key, ...] = (
    Key("name", "string", "The profile's name; defaults to the file name without extension."),
    Key("description", "string", "A one-line description shown by list and show."),
    Key(
        "grant_type",
        "choice",
        "How the token is obtained from the token endpoint.",
        required=True,
        choices=GRANT_TYPES,
    ),
    Key(
        "issuer",
        "template",
        "The authorization server's issuer: its RFC 8414 (else OpenID) metadata fills "
        "token_url, revocation_url, authorization_url and device_authorization_url when "
        "they are not given.",
        url=True,
    ),
    Key(
        "token_url",
        "template",
        "The token endpoint.",
        required=True,
        url=True,
        unless="issuer",
    ),
    Key("client_id", "template", "The client's id.", required=True),
    Key(
        "client_secret",
        "template",
        "The client's secret.",
        secret=True,
        required_if=(
            ("client_auth", "client_secret_basic"),
            ("client_auth", "client_secret_post"),
            ("client_auth", "client_secret_jwt"),
        ),
    ),
    Key(
        "client_auth",
        "choice",
        "How the client's credentials are sent: HTTP Basic header, form body, "
        "an RFC 7523 assertion signed with private_key or client_secret, or none.",
        default="client_secret_basic",
        choices=CLIENT_AUTHS,
    ),
    Key(
        "private_key",
        "template",
        "The PEM private key (RSA or EC) that signs private_key_jwt assertions.",
        secret=True,
        required_if=(("client_auth", "private_key_jwt"),),
    ),
    Key(
        "client_assertion",
        "assertion",
        "The client assertion issued elsewhere (workload identity), read anew for each token "
        "request: a template (${file:…} of a projected token, ${env:…}) or "
        "{github_actions: {audience: …}} for GitHub Actions' ID token.",
        secret=True,
        required_if=(("client_auth", "client_assertion"),),
        only_if=(("client_auth", "client_assertion"),),
    ),
    Key("key_id", "template", 'The JWS "kid" of the client assertion.'),
    Key(
        "signing_alg",
        "string",
        "The client assertion's JWS algorithm: RS256 by default for private_key_jwt, "
        "HS256 for client_secret_jwt.",
        choices=ASYMMETRIC_ALGS + HMAC_ALGS,
        only_if=(("client_auth", "private_key_jwt"), ("client_auth", "client_secret_jwt")),
    ),
    Key("scope", "words", "The scopes asked for, a string or a list."),
    Key("audience", "template", "Sent as audience in the token request."),
    Key(
        "resource",
        "words",
        "The RFC 8707 resource indicator(s), a string or a list.",
        split=False,
    ),
    Key("extra_params", "map", "Further parameters added to the token request."),
    Key(
        "username",
        "template",
        "The resource owner's user name.",
        required_if=(("grant_type", "password"),),
    ),
    Key(
        "password",
        "template",
        "The resource owner's password.",
        secret=True,
        required_if=(("grant_type", "password"),),
    ),
    Key(
        "refresh_token",
        "template",
        "The refresh token to start from; one held in the cache wins over it.",
        secret=True,
        required_if=(("grant_type", "refresh_token"),),
    ),
    Key(
        "assertion",
        "template",
        "The RFC 7523 JWT exchanged for a token.",
        secret=True,
        required_if=(("grant_type", "jwt_bearer"),),
    ),
    Key(
        "subject_token",
        "template",
        "The RFC 8693 token exchanged: ${token:PROFILE} is that profile's access token.",
        secret=True,
        required_if=(("grant_type", "token_exchange"),),
        only_if=(("grant_type", "token_exchange"),),
    ),
    Key(
        "subject_token_type",
        "string",
        "The RFC 8693 type of subject_token.",
        default=ACCESS_TOKEN_TYPE,
        only_if=(("grant_type", "token_exchange"),),
    ),
    Key(
        "actor_token",
        "template",
        "The RFC 8693 token of the party acting for the subject (with actor_token_type).",
        secret=True,
        only_if=(("grant_type", "token_exchange"),),
    ),
    Key(
        "actor_token_type",
        "string",
        "The RFC 8693 type of actor_token; needed with it.",
        only_if=(("grant_type", "token_exchange"),),
    ),
    Key(
        "requested_token_type",
        "string",
        "The RFC 8693 type of token asked for; the server's choice unless set.",
        only_if=(("grant_type", "token_exchange"),),
    ),
    Key(
        "authorization_url",
        "template",
        "The authorization endpoint the browser sign-in opens (PKCE S256 always).",
        url=True,
        required_if=(("grant_type", "authorization_code"),),
        unless="issuer",
    ),
    Key(
        "redirect_url",
        "template",
        "The loopback URL the sign-in redirects back to.",
        url=True,
        required_if=(("grant_type", "authorization_code"),),
    ),
    Key(
        "authorization_params",
        "map",
        "Further parameters added to the authorization request only (the sign-in URL: "
        "prompt, login_hint, acr_values, …), never to the token request; not those "
        "oauthcli sets (client_id, redirect_uri, response_type, scope, state, code_challenge…).",
        only_if=(("grant_type", "authorization_code"),),
    ),
    Key(
        "device_authorization_url",
        "template",
        "The RFC 8628 device authorization endpoint: it gives the user code to enter at "
        "its verification URI while oauthcli polls the token endpoint.",
        url=True,
        required_if=(("grant_type", "device_code"),),
        unless="issuer",
    ),
    Key(
        "revocation_url",
        "template",
        "The RFC 7009 endpoint token revoke calls.",
        url=True,
    ),
    Key(
        "refresh_token_lifespan",
        "integer",
        "Seconds a refresh token stays usable.",
        minimum=1,
        maximum=MAX_LIFESPAN,
    ),
    Key(
        "token_leeway",
        "integer",
        "Renew the token this many seconds before it expires (at most a quarter of its lifetime).",
        default=60,
        minimum=0,
        maximum=MAX_LIFESPAN,
    ),
    Key(
        "token_scheme",
        "string",
        "The Authorization scheme the token is sent with; Bearer unless set.",
        pattern=AUTH_SCHEME_PATTERN,
    ),
    Key(
        "dpop",
        "boolean",
        "Asks for DPoP-bound tokens (RFC 9449) when true: a P-256 key kept 0600 in the cache "
        "folder signs a fresh proof for every token and API request; a DPoP token is sent as "
        "Authorization: DPoP.",
        default=False,
    ),
    Key(
        "timeout",
        "number",
        "Seconds each token endpoint call may take.",
        default=30.0,
        minimum=0.001,
        maximum=MAX_TIMEOUT,
    ),
    *_TLS,
    Key(
        "allow_insecure_http",
        "boolean",
        "Permits an http:// URL to a host that is not loopback when true.",
        default=False,
    ),
    Key(
        "log_level",
        "level",
        "What the outbound log records of this profile's calls and token requests: off, "
        "basic (status, timing, token decisions), elevated (and headers) or all (and "
        "bodies up to 64 KiB); a message's or method's log_level wins.",
        choices=LOG_LEVELS,
    ),
)

#: The keys a message and each of its methods can both hold; the method's win.
SETTINGS: tuple[Key, ...] = (
    Key(
        "headers",
        "map",
        "Request headers; a method's are merged over the message's.",
        header_names=True,
    ),
    Key(
        "query",
        "map",
        "Query parameters, form-encoded; a method's are merged over the message's.",
    ),
    Key(
        "variables",
        "map",
        "Default values of call variables, overridable per call.",
    ),
    Key(
        "timeout",
        "number",
        "Seconds the request may take (each attempt); 30 unless set.",
        minimum=0.001,
        maximum=MAX_TIMEOUT,
    ),
    Key(
        "retry",
        "mapping",
        "When a failed request is sent again: attempts, backoff, max_delay, on_status, "
        "idempotent_only.",
    ),
    Key(
        "retry.attempts",
        "integer",
        "How many times the request may be sent in all.",
        default=1,
        minimum=1,
        maximum=MAX_ATTEMPTS,
    ),
    Key(
        "retry.backoff",
        "number",
        "Seconds before the first retry, doubled for each next one.",
        default=0.5,
        minimum=0,
        maximum=MAX_TIMEOUT,
    ),
    Key(
        "retry.max_delay",
        "number",
        "The longest wait between attempts, Retry-After included.",
        default=30.0,
        minimum=0,
        maximum=MAX_TIMEOUT,
    ),
    Key(
        "retry.on_status",
        "statuses",
        "The response statuses that are retried.",
        default=(429, 502, 503, 504),
    ),
    Key(
        "retry.idempotent_only",
        "boolean",
        "Whether only idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS) are retried.",
        default=True,
    ),
    *_TLS,
    Key(
        "allow_insecure_http",
        "boolean",
        "Permits an http:// endpoint on a host that is not loopback when true.",
    ),
    Key(
        "auth",
        "mapping",
        "How the request is authorised: an auth block with its type.",
    ),
    Key(
        "endpoint",
        "template",
        "The URL called; a method's replaces the message's.",
        url=True,
    ),
    Key(
        "log_level",
        "level",
        "What the outbound log records of the call: off, basic (status, timing, token "
        "decisions), elevated (and headers) or all (and bodies up to 64 KiB); a method's "
        "wins over the message's, which wins over the profile's.",
        choices=LOG_LEVELS,
    ),
)

#: The keys of a message file (SPEC §1.2), in the order the file lists them.
MESSAGE: tuple[Key, ...] = (
    Key("name", "string", "The message's name; defaults to the file name without extension."),
    Key("description", "string", "A one-line description shown by list and show."),
    Key(
        "methods",
        "mapping",
        "The message's methods by name; without it, one method default (GET).",
    ),
    *SETTINGS,
)

#: The keys of an environment file (SPEC §6): the values of ``${name}`` in profiles and
#: messages when it is selected (``--env/-e NAME``, ``OAUTHCLI_ENV``).
ENVIRONMENT: tuple[Key, ...] = (
    Key("name", "string", "The environment's name; defaults to the file name without extension."),
    Key("description", "string", "A one-line description shown by list."),
    Key(
        "variables",
        "map",
        "The values of ${name} in profiles and messages (scalars; ${env:…} and ${file:…} "
        "allowed); in messages above message and method variables, below --vars-file and "
        "--var; into URLs as written, not percent-encoded.",
    ),
)

#: The keys of one method under ``methods:``.
METHOD: tuple[Key, ...] = (
    Key("description", "string", "A one-line description of the method."),
    Key(
        "http_method",
        "string",
        "The HTTP method, in any case.",
        default="GET",
        choices=HTTP_METHODS,
    ),
    Key("path", "template", "Appended to the endpoint, its values percent-encoded."),
    Key("json", "json", "A JSON body; each value is placed as a string, so none can break it."),
    Key("content", "template", "A raw text body."),
    Key("form", "map", "A form-encoded body."),
    *SETTINGS,
)

#: The keys of an ``auth:`` block of a message or method.
AUTH: tuple[Key, ...] = (
    Key(
        "auth.type",
        "choice",
        "The kind of credentials the request carries.",
        required=True,
        choices=AUTH_TYPES,
        auth_types=AUTH_TYPES,
    ),
    Key(
        "auth.profile",
        "string",
        "The profile whose token is sent.",
        required_if=(("type", "oauth2"),),
        auth_types=("oauth2",),
    ),
    Key(
        "auth.username",
        "template",
        "The user name of HTTP Basic authentication.",
        required_if=(("type", "basic"),),
        auth_types=("basic",),
    ),
    Key(
        "auth.password",
        "template",
        "The password of HTTP Basic authentication.",
        secret=True,
        required_if=(("type", "basic"),),
        auth_types=("basic",),
    ),
    Key(
        "auth.token",
        "template",
        "A static token sent as Authorization: Bearer.",
        secret=True,
        required_if=(("type", "bearer"),),
        auth_types=("bearer",),
    ),
    Key(
        "auth.header",
        "string",
        "The header the API key goes in.",
        default="X-Api-Key",
        header_names=True,
        auth_types=("api_key",),
    ),
    Key(
        "auth.value",
        "template",
        "The API key.",
        secret=True,
        required_if=(("type", "api_key"),),
        auth_types=("api_key",),
    ),
)


def top(keys: Iterable[Key]) -> tuple[Key, ...]:
    """The keys written at the top of their block (no dot in their name)."""
    return tuple(k for k in keys if "." not in k.name)


def children(keys: Iterable[Key], parent: str) -> tuple[Key, ...]:
    """The keys of the block ``parent`` (``tls`` → ``tls.verify``, …)."""
    prefix = parent + "."
    return tuple(k for k in keys if k.name.startswith(prefix) and "." not in k.name[len(prefix) :])


def requires(keys: Iterable[Key], on: str, value: str) -> tuple[str, ...]:
    """The keys (as written) required when ``on`` is ``value``, in declaration order."""
    return tuple(k.leaf for k in keys if (on, value) in k.required_if)


def auth_keys(kind: str) -> tuple[Key, ...]:
    """The keys an ``auth:`` block of type ``kind`` may hold."""
    return tuple(k for k in AUTH if kind in k.auth_types)


#: grant_type → the profile keys it requires.
GRANT_REQUIRES = {g: requires(PROFILE, "grant_type", g) for g in GRANT_TYPES}
#: client_auth → the profile keys it requires.
CLIENT_AUTH_REQUIRES = {c: requires(PROFILE, "client_auth", c) for c in CLIENT_AUTHS}
#: auth type → the keys its block requires (besides ``type``).
AUTH_REQUIRES = {t: requires(AUTH, "type", t) for t in AUTH_TYPES}
