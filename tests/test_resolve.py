"""Inheritance, overrides and hostile values landing intact where they go."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from oauthcli.auth import BasicAuth, BearerAuth, OAuth2Auth
from oauthcli.errors import RegistryError, UsageError
from oauthcli.registry.discovery import Registry
from oauthcli.request.resolve import (
    RequestPlan,
    is_loopback,
    resolve_profile,
    resolve_request,
    split_target,
)
from oauthcli.request.resolved import ResolvedRequest
from oauthcli.secret import Secret
from tests.registry_factory import PROFILE, make_registry

INHERIT = """\
endpoint: https://api.example.test/base
auth: {type: oauth2, profile: acme}
headers: {Accept: application/json, X-Team: blue}
query: {display: "true", limit: "5"}
variables: {limit: "10", who: message-default}
timeout: 12
retry: {attempts: 3, backoff: 0.1, on_status: [503]}
tls: {verify: true, ca_bundle: ca.pem}
methods:
  list:
    query: {limit: "${limit}", who: "${who}"}
    headers: {accept: text/csv}
    variables: {who: method-default}
  get:
    path: /${sys_id}
    timeout: 3
    retry: {attempts: 1}
    tls: {verify: false}
  create:
    http_method: POST
    json: {short_description: "${text}", urgency: "${urgency}", n: 3, tags: ["${text}", x]}
  raw:
    http_method: PUT
    endpoint: https://other.example.test/x/${item}
    headers: {Content-Type: text/xml}
    content: "<x>${text}</x>"
    auth: {type: basic, username: bob, password: "${env:OAUTHCLI_T_PASSWORD}"}
  form:
    http_method: POST
    form: {q: "${text}"}
    auth: {type: api_key, header: X-Key, value: key-value-123}
  nothing:
    auth: {type: none}
"""

HOSTILE = [
    "quote \" and ' apostrophe",
    "back\\slash \\n not-a-newline",
    "real\nnewline\r\n",
    "/ ? # % & = +",
    "unicode é ☃ 𝄞",
    "${env:HOME} ${other} $${x}",
    "",
]


@pytest.fixture
def registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Registry:
    monkeypatch.setenv("OAUTHCLI_T_PASSWORD", "pw-from-env")
    make_registry(
        tmp_path,
        # the CA file the message names must exist: a missing one is a registry error
        {"profiles/acme.yaml": PROFILE, "messages/things.yaml": INHERIT, "messages/ca.pem": ""},
    )
    return Registry(tmp_path)


def resolve(registry: Registry, target: str, **variables: str) -> ResolvedRequest:
    message, method = split_target(registry, target, None)
    return resolve_request(registry, message, method, variables)


def test_method_inherits_and_overrides(registry: Registry) -> None:
    req = resolve(registry, "things.list")
    assert req.http_method == "GET"
    assert req.url == "https://api.example.test/base"
    assert req.headers == {"X-Team": "blue", "accept": "text/csv"}
    assert dict(req.params) == {"display": "true", "limit": "10", "who": "method-default"}
    assert req.timeout == 12
    assert (req.retry.attempts, req.retry.backoff, req.retry.on_status) == (3, 0.1, (503,))
    assert req.tls.verify is True and req.tls.ca_bundle == str(
        registry.root / "messages" / "ca.pem"
    )
    assert isinstance(req.auth, OAuth2Auth) and req.auth.type == "oauth2"
    assert req.auth.profile.name == "acme"


def test_call_variables_beat_defaults(registry: Registry) -> None:
    req = resolve(registry, "things.list", limit="99", who="cli")
    assert dict(req.params)["limit"] == "99" and dict(req.params)["who"] == "cli"


def test_method_level_overrides(registry: Registry) -> None:
    req = resolve(registry, "things.get", sys_id="abc")
    assert req.url == "https://api.example.test/base/abc"
    assert req.timeout == 3
    assert req.retry.attempts == 1 and req.retry.on_status == (503,)  # key by key
    assert req.tls.verify is False and req.tls.ca_bundle is not None


def test_method_auth_replaces_message_auth(registry: Registry) -> None:
    raw = resolve(registry, "things.raw", item="i", text="t")
    assert isinstance(raw.auth, BasicAuth) and raw.auth.username == "bob"
    assert isinstance(raw.auth.password, Secret) and raw.auth.password.reveal() == "pw-from-env"
    assert "pw-from-env" not in repr(raw) and "pw-from-env" not in str(raw.auth)
    assert resolve(registry, "things.nothing").auth.type == "none"
    form = resolve(registry, "things.form", text="t")
    assert form.auth.type == "api_key" and form.auth.header == "X-Key"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_in_path_is_one_segment(registry: Registry, value: str) -> None:
    req = resolve(registry, "things.get", sys_id=value)
    path = urlsplit(req.url).path
    assert path.startswith("/base/")
    segment = path[len("/base/") :]
    assert "/" not in segment and "?" not in req.url and "#" not in req.url
    from urllib.parse import unquote

    assert unquote(segment) == value


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_in_endpoint_is_one_segment(registry: Registry, value: str) -> None:
    req = resolve(registry, "things.raw", item=value, text="t")
    assert urlsplit(req.url).netloc == "other.example.test"
    from urllib.parse import unquote

    assert unquote(urlsplit(req.url).path) == "/x/" + value


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_in_query_round_trips(registry: Registry, value: str) -> None:
    req = resolve(registry, "things.list", who=value)
    query = dict(parse_qsl(urlsplit(req.full_url).query, keep_blank_values=True))
    assert query["who"] == value
    assert query["display"] == "true"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_in_json_stays_a_string(registry: Registry, value: str) -> None:
    req = resolve(registry, "things.create", text=value, urgency="2")
    assert req.body is not None
    document = json.loads(req.body)
    assert document == {"short_description": value, "urgency": "2", "n": 3, "tags": [value, "x"]}
    assert req.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_in_content_is_raw(registry: Registry, value: str) -> None:
    req = resolve(registry, "things.raw", item="i", text=value)
    assert req.body == f"<x>{value}</x>".encode()
    assert req.headers == {
        "Accept": "application/json",
        "X-Team": "blue",
        "Content-Type": "text/xml",
    }


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_value_in_form_round_trips(registry: Registry, value: str) -> None:
    req = resolve(registry, "things.form", text=value)
    assert req.body is not None
    assert dict(parse_qsl(req.body.decode(), keep_blank_values=True)) == {"q": value}


def test_header_injection_is_refused(tmp_path: Path) -> None:
    make_registry(
        tmp_path,
        {"messages/m.yaml": "endpoint: https://a.test/\nheaders: {X-A: '${v}'}\n"},
    )
    registry = Registry(tmp_path)
    with pytest.raises(RegistryError, match="m.yaml:2: headers.X-A: value contains a line break"):
        resolve(registry, "m", v="a\r\nX-Evil: 1")


def test_method_selection(tmp_path: Path) -> None:
    make_registry(
        tmp_path,
        {
            "messages/one.yaml": "endpoint: https://a.test/\nmethods: {only: {http_method: DELETE}}\n",
            "messages/dflt.yaml": "endpoint: https://a.test/\nmethods: {default: {}, other: {}}\n",
            "messages/many.yaml": "endpoint: https://a.test/\nmethods: {a: {}, b: {}}\n",
            "messages/bare.yaml": "endpoint: https://a.test/\n",
            "messages/dotted.yaml": "name: v1.items\nendpoint: https://a.test/\n",
        },
    )
    registry = Registry(tmp_path)
    assert resolve(registry, "one").http_method == "DELETE"
    assert resolve(registry, "dflt").method == "default"
    assert resolve(registry, "bare").method == "default"
    assert resolve(registry, "v1.items").message == "v1.items"
    assert resolve(registry, "many.b").method == "b"
    with pytest.raises(UsageError, match="has methods a, b: name one"):
        resolve(registry, "many")
    with pytest.raises(RegistryError, match="has no method 'c'"):
        resolve(registry, "many.c")
    message, method = split_target(registry, "many", "b")
    assert method.name == "b"
    with pytest.raises(UsageError, match="--method says"):
        split_target(registry, "many.a", "b")


def test_profile_resolution_wraps_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHCLI_T_SECRET", "from-env-secret")
    (tmp_path / "profiles").mkdir()
    (tmp_path / "profiles" / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nabc\n")
    make_registry(
        tmp_path,
        {
            "profiles/p.yaml": """\
            grant_type: password
            token_url: https://login.example.test/token
            client_id: app
            client_auth: private_key_jwt
            private_key: ${file:key.pem}
            signing_alg: ES256
            username: bob
            password: ${env:OAUTHCLI_T_SECRET}
            scope: [a, b]
            resource: [https://r1.test, https://r2.test]
            extra_params: {tenant: blue, n: 1}
            """
        },
    )
    p = resolve_profile(Registry(tmp_path).profile("p"))
    assert p.scope == ("a", "b") and p.resource == ("https://r1.test", "https://r2.test")
    assert p.extra_params == {"tenant": "blue", "n": "1"}
    assert isinstance(p.password, Secret) and p.password.reveal() == "from-env-secret"
    assert isinstance(p.private_key, Secret) and p.private_key.reveal().startswith("-----BEGIN")
    assert "from-env-secret" not in repr(p) and "BEGIN" not in repr(p)


def test_http_allowed_for_loopback_and_opt_in(tmp_path: Path) -> None:
    make_registry(
        tmp_path,
        {
            "messages/a.yaml": "endpoint: http://localhost:8080/x\n",
            "messages/b.yaml": "endpoint: http://api.example.test/x\nallow_insecure_http: true\n",
            "messages/c.yaml": "endpoint: http://api.example.test/x\n",
        },
    )
    registry = Registry(tmp_path)
    assert resolve(registry, "a").url.startswith("http://localhost")
    assert resolve(registry, "b").url.startswith("http://api")
    with pytest.raises(RegistryError, match="plain http:// to api.example.test is refused"):
        resolve(registry, "c")


@pytest.mark.parametrize(
    "host, expected",
    [
        ("127.0.0.1", True),
        ("127.3.4.5", True),
        ("::1", True),
        ("localhost", True),
        ("10.0.0.1", False),
        ("example.test", False),
        (None, False),
    ],
)
def test_is_loopback(host: str | None, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_a_profile_is_resolved_once_per_registry(
    registry: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch resolves one request per row; env and key files are read once."""
    import oauthcli.request.resolve

    calls: list[str] = []
    real = oauthcli.request.resolve.resolve_profile

    def counting(profile, **kw):
        calls.append(profile.name)
        return real(profile, **kw)

    monkeypatch.setattr(oauthcli.request.resolve, "resolve_profile", counting)
    first = resolve(registry, "things.list")
    second = resolve(registry, "things.get", sys_id="x")
    assert calls == ["acme"]
    assert isinstance(first.auth, OAuth2Auth) and isinstance(second.auth, OAuth2Auth)
    assert first.auth.profile is second.auth.profile


def test_plain_yaml_scalars_are_taken_as_written(tmp_path: Path) -> None:
    """YAML 1.1 would read 012345 as octal 5349 and 2.50 as 2.5; a template keeps the text."""
    make_registry(
        tmp_path,
        {
            "messages/m.yaml": """\
            endpoint: https://a.test/items
            variables: {id: 012345, day: 2026-01-02}
            query: {price: 2.50, at: 12:30:00, flag: yes}
            methods:
              get: {path: "/${id}/${day}"}
            """
        },
    )
    req = resolve(Registry(tmp_path), "m")
    assert req.url == "https://a.test/items/012345/2026-01-02"
    assert dict(req.params) == {"price": "2.50", "at": "12:30:00", "flag": "yes"}


def test_a_plan_renders_each_call_with_its_own_variables(registry: Registry) -> None:
    """``--each`` plans once and resolves per row: nothing of one row leaks into the next."""
    message, method = split_target(registry, "things.raw", None)
    plan = RequestPlan(registry, message, method)
    first = plan.resolve({"item": "a/b", "text": "one"})
    second = plan.resolve({"item": "c", "text": "two"})
    assert first.url == "https://other.example.test/x/a%2Fb" and first.body == b"<x>one</x>"
    assert second.url == "https://other.example.test/x/c" and second.body == b"<x>two</x>"
    assert second.headers == {
        "Accept": "application/json",
        "X-Team": "blue",
        "Content-Type": "text/xml",
    }
    assert first.headers is not second.headers
    assert first.auth is second.auth  # no call variable in it: resolved once
    assert plan.resolve({"item": "d"}, lenient=True).missing == ["text"]
    with pytest.raises(RegistryError, match="variable 'text' has no value"):
        plan.resolve({"item": "d"})
    alone = resolve(registry, "things.raw", item="c", text="two")
    assert (alone.url, alone.headers, alone.body) == (second.url, second.headers, second.body)


def test_auth_that_uses_a_call_variable_is_rendered_per_call(tmp_path: Path) -> None:
    make_registry(
        tmp_path,
        {
            "messages/m.yaml": 'endpoint: https://a.example.test/\nauth: {type: bearer, token: "${t}"}\n'
        },
    )
    registry = Registry(tmp_path)
    message, method = split_target(registry, "m", None)
    plan = RequestPlan(registry, message, method)
    auths = [plan.resolve({"t": t}).auth for t in ("tok-one", "tok-two")]
    assert [a.token.reveal() for a in auths if isinstance(a, BearerAuth) and a.token] == [
        "tok-one",
        "tok-two",
    ]


@pytest.mark.parametrize(
    "endpoint, problem",
    [
        ("http://${host}/x", "plain http:// to api.example.test is refused"),
        ("https://${host}/x y", "contains white space"),
        ("https://${host}:99999/x", "is not a valid URL"),
    ],
)
def test_the_url_check_is_made_for_every_call(tmp_path: Path, endpoint: str, problem: str) -> None:
    """The check remembers good origins; a bad one is still refused on any row."""
    make_registry(tmp_path, {"messages/m.yaml": f'endpoint: "{endpoint}"\n'})
    registry = Registry(tmp_path)
    message, method = split_target(registry, "m", None)
    plan = RequestPlan(registry, message, method)
    if endpoint.startswith("http:"):
        assert plan.resolve({"host": "127.0.0.1"}).url == "http://127.0.0.1/x"
    with pytest.raises(RegistryError, match=problem):
        plan.resolve({"host": "api.example.test"})
    with pytest.raises(RegistryError, match=problem):
        plan.resolve({"host": "api.example.test"})


def test_a_password_in_a_url_is_remembered_on_every_call(tmp_path: Path) -> None:
    from oauthcli.secret import scrub

    make_registry(tmp_path, {"messages/m.yaml": 'endpoint: "https://bob:${pw}@a.example.test/"\n'})
    registry = Registry(tmp_path)
    message, method = split_target(registry, "m", None)
    plan = RequestPlan(registry, message, method)
    for pw in ("first-url-secret", "second-url-secret"):
        plan.resolve({"pw": pw})
        assert pw not in scrub(f"x {pw} y")
