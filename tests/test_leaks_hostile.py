"""No output oauthcli renders holds a secret, in any spelling, for secrets that are hard to spell.

The CLI runs as a subprocess against loopback servers that misbehave on purpose: a token
endpoint and an API that echo the request they got (headers and body) in their answers and
error descriptions. The secrets hold non-ASCII letters, ``+ % : / " \\`` and spaces, and every
run's stdout and stderr is searched for each of them raw, form- and percent-encoded, in base64
(standard and URL-safe, with and without padding), JSON-escaped, and inside a Basic header.
A piped response body is the API's data and is written byte for byte (SPEC §2): only there
may a secret the API echoed appear, so a piped plain ``send`` is checked on stderr only.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_plus

import pytest

from tests.cliproc import Done, oauthcli
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded

CLIENT_ID = "hostile app/ü"
CLIENT_SECRET = 'cl ié+nt%2F:/"\\sécret'
API_KEY = 'ak+%:/ "\\clé-42'
BASIC_USER = "bob"
BASIC_PASSWORD = 'pw é+%:/"\\ x'
STATIC_TOKEN = "st/at+ic=tok%en:42"
URL_PASSWORD = "url+p@ss:wörd"
ISSUED_TOKEN = "issued+acc/ess=tok.en-ÿ"[:-2] + "42"  # ASCII only: it must fit a header
ISSUED_REFRESH = "refresh+tok/en=rot:1"

SECRETS = {
    "client secret": CLIENT_SECRET,
    "api key": API_KEY,
    "basic password": BASIC_PASSWORD,
    "static bearer token": STATIC_TOKEN,
    "password in a URL": URL_PASSWORD,
    "issued access token": ISSUED_TOKEN,
    "issued refresh token": ISSUED_REFRESH,
}


def spellings(value: str) -> dict[str, str]:
    raw = value.encode()
    forms = {
        "raw": value,
        "form-encoded": quote_plus(value),
        "percent-encoded": quote(value, safe=""),
        "JSON-escaped": json.dumps(value)[1:-1],
        "JSON-escaped (ASCII)": json.dumps(value, ensure_ascii=True)[1:-1],
        "base64": base64.b64encode(raw).decode(),
        "base64 unpadded": base64.b64encode(raw).decode().rstrip("="),
        "URL-safe base64": base64.urlsafe_b64encode(raw).decode(),
    }
    return {k: v for k, v in forms.items() if len(v) >= 4}


def all_forms() -> dict[str, str]:
    forms = {f"{what} {form}": v for what, s in SECRETS.items() for form, v in spellings(s).items()}
    for name, (user, password) in {
        "client": (CLIENT_ID, CLIENT_SECRET),
        "basic auth": (BASIC_USER, BASIC_PASSWORD),
    }.items():
        pair = f"{quote_plus(user)}:{quote_plus(password)}".encode()
        forms[f"{name} Basic credential (form-encoded pair)"] = base64.b64encode(pair).decode()
        pair = f"{user}:{password}".encode()
        forms[f"{name} Basic credential (raw pair)"] = base64.b64encode(pair).decode()
        forms[f"{name} Basic credential (Latin-1 pair)"] = base64.b64encode(
            f"{user}:{password}".encode("latin-1", "replace")
        ).decode()
    return forms


def _echo(rec: Recorded) -> str:
    return f"headers={json.dumps(rec.headers, ensure_ascii=False)} body={rec.body.decode('utf-8', 'replace')}"


def _token(rec: Recorded) -> tuple[int, dict[str, str], bytes]:
    answer = {
        "access_token": ISSUED_TOKEN,
        "token_type": "Bearer",
        "expires_in": 3600,
        "refresh_token": ISSUED_REFRESH,
        "scope": "api.read",
        "echo": _echo(rec),  # an unknown member a provider adds: never printed anyway
    }
    return 200, {"Content-Type": "application/json"}, json.dumps(answer).encode()


def _token_echo_refusal(rec: Recorded) -> tuple[int, dict[str, str], bytes]:
    answer = {"error": "invalid_client", "error_description": "bad client: " + _echo(rec)}
    return 400, {"Content-Type": "application/json"}, json.dumps(answer).encode()


def _api_echo(status: int) -> Callable[[Recorded], tuple[int, dict[str, str], bytes]]:
    def reply(rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        body = {"detail": "you sent " + _echo(rec), "query": parse_qs(rec.path.partition("?")[2])}
        headers = {
            "Content-Type": "application/json",
            "X-Echo-Auth": rec.headers.get("authorization", "-").encode().decode("latin-1"),
        }
        if status == 401:
            auth = rec.headers.get("authorization", "").replace('"', "'")
            headers["WWW-Authenticate"] = (
                f'Bearer error="invalid_token", error_description="{auth}"'
            )
        return status, headers, json.dumps(body, ensure_ascii=False).encode()

    return reply


@pytest.fixture
def registry(loopback: LoopbackServer, tmp_path: Path) -> Path:
    loopback.routes["/token"] = _token
    loopback.routes["/token-echo"] = _token_echo_refusal
    loopback.routes["/api/items"] = _api_echo(200)
    loopback.routes["/api/denied"] = _api_echo(403)
    loopback.routes["/api/unauthorized"] = _api_echo(401)
    loopback.routes["/api/broken"] = _api_echo(500)
    base = loopback.base
    return make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": f"""\
                grant_type: client_credentials
                token_url: {base}/token
                client_id: {json.dumps(CLIENT_ID)}
                client_secret: ${{env:HOSTILE_CLIENT_SECRET}}
                client_auth: client_secret_basic
                scope: api.read
                """,
            "profiles/posted.yaml": f"""\
                grant_type: client_credentials
                token_url: {base}/token
                client_id: {json.dumps(CLIENT_ID)}
                client_secret: {json.dumps(CLIENT_SECRET)}
                client_auth: client_secret_post
                scope: api.write
                """,
            "profiles/echo_basic.yaml": f"""\
                grant_type: client_credentials
                token_url: {base}/token-echo
                client_id: {json.dumps(CLIENT_ID)}
                client_secret: ${{env:HOSTILE_CLIENT_SECRET}}
                client_auth: client_secret_basic
                """,
            "profiles/echo_post.yaml": f"""\
                grant_type: client_credentials
                token_url: {base}/token-echo
                client_id: {json.dumps(CLIENT_ID)}
                client_secret: ${{env:HOSTILE_CLIENT_SECRET}}
                client_auth: client_secret_post
                """,
            "messages/items.yaml": f"""\
                endpoint: {base}/api/items
                auth: {{type: oauth2, profile: acme}}
                methods:
                  list: {{http_method: GET}}
                  create: {{http_method: POST, json: {{title: "${{title}}"}}}}
                  denied: {{http_method: GET, endpoint: {base}/api/denied}}
                  unauthorized: {{http_method: GET, endpoint: {base}/api/unauthorized}}
                  broken: {{http_method: GET, endpoint: {base}/api/broken}}
                """,
            "messages/posted.yaml": f"""\
                endpoint: {base}/api/items
                auth: {{type: oauth2, profile: posted}}
                """,
            "messages/echo_basic.yaml": f"""\
                endpoint: {base}/api/items
                auth: {{type: oauth2, profile: echo_basic}}
                """,
            "messages/echo_post.yaml": f"""\
                endpoint: {base}/api/items
                auth: {{type: oauth2, profile: echo_post}}
                """,
            "messages/keyed.yaml": f"""\
                endpoint: {base}/api/items
                auth: {{type: api_key, header: X-Api-Key, value: "${{env:HOSTILE_API_KEY}}"}}
                methods:
                  list: {{http_method: GET}}
                  denied: {{http_method: GET, endpoint: {base}/api/denied}}
                """,
            "messages/basic.yaml": f"""\
                endpoint: {base}/api/items
                auth: {{type: basic, username: {BASIC_USER}, password: "${{env:HOSTILE_BASIC_PASSWORD}}"}}
                methods:
                  list: {{http_method: GET}}
                  broken: {{http_method: GET, endpoint: {base}/api/broken}}
                """,
            "messages/static.yaml": f"""\
                endpoint: {base}/api/items
                auth: {{type: bearer, token: "${{env:HOSTILE_STATIC_TOKEN}}"}}
                methods:
                  list: {{http_method: GET}}
                  unauthorized: {{http_method: GET, endpoint: {base}/api/unauthorized}}
                """,
            "messages/closed.yaml": f"""\
                endpoint: http://127.0.0.1:9/api/items
                auth: {{type: basic, username: {BASIC_USER}, password: "${{env:HOSTILE_BASIC_PASSWORD}}"}}
                timeout: 2
                retry: {{attempts: 1}}
                methods:
                  list: {{http_method: GET}}
                """,
            "rows.jsonl": '{"title": "one"}\n{"title": "two"}\n',
        },
    )


def cli(
    registry: Path, *args: str, debug: bool = False, extra_env: dict[str, str] | None = None
) -> Done:
    env = {
        "HOSTILE_CLIENT_SECRET": CLIENT_SECRET,
        "HOSTILE_API_KEY": API_KEY,
        "HOSTILE_BASIC_PASSWORD": BASIC_PASSWORD,
        "HOSTILE_STATIC_TOKEN": STATIC_TOKEN,
        **(extra_env or {}),
    }
    if debug:
        env["OAUTHCLI_DEBUG"] = "1"
    return oauthcli(*args, registry=registry, env=env)


def leaks(run: Done, *, stdout_is_body: bool = False) -> list[str]:
    shown = run.err if stdout_is_body else run.out + run.err
    return [
        f"oauthcli {' '.join(run.args)}: {what}" for what, v in all_forms().items() if v in shown
    ]


def _piped_body(args: tuple[str, ...]) -> bool:
    """``send`` with its body on stdout, piped: written byte for byte (SPEC §2)."""
    rendered = {"--json", "--dry-run", "--each"}
    return bool(args) and args[0] == "send" and not rendered & set(args)


def check(run: Done, code: int, *, stdout_is_body: bool = False, traceback: bool = False) -> None:
    stdout_is_body = stdout_is_body or _piped_body(run.args)
    assert run.code == code, (run.args, run.code, run.out[-2000:], run.err[-2000:])
    assert ("Traceback (most recent call last)" in run.err) == traceback, run.err[-3000:]
    found = leaks(run, stdout_is_body=stdout_is_body)
    assert not found, "secrets in the output:\n" + "\n".join(found) + "\n" + run.out + run.err


REGISTRY_VIEWS = [
    ("validate",),
    ("list",),
    ("show", "acme"),
    ("show", "posted"),
    ("show", "items.create", "-V", "title=x"),
    ("show", "keyed.list"),
    ("show", "basic.list"),
    ("show", "static.list"),
]


@pytest.mark.parametrize("args", REGISTRY_VIEWS, ids=" ".join)
def test_registry_views_mask_every_secret(registry: Path, args: tuple[str, ...]) -> None:
    check(cli(registry, *args), 0)


SENDS = [
    ("send", "--json", "items.list"),
    ("send", "-v", "--json", "items.list"),
    ("send", "--json", "posted"),
    ("send", "--json", "keyed.list"),
    ("send", "-v", "--json", "basic.list"),
    ("send", "--json", "static.list"),
    ("send", "--dry-run", "items.create", "-V", "title=x"),
    ("send", "--dry-run", "--json", "keyed.list"),
    ("send", "--dry-run", "-v", "basic.list"),
    ("send", "--dry-run", "--json", "static.list"),
    ("send", "--each", "rows.jsonl", "items.create"),
    ("send", "--each", "rows.jsonl", "-v", "keyed.list"),
    ("send", "--each", "rows.jsonl", "--dry-run", "--json", "basic.list"),
]


@pytest.mark.parametrize("args", SENDS, ids=" ".join)
def test_sends_mask_every_secret(registry: Path, args: tuple[str, ...]) -> None:
    args = tuple(str(registry / a) if a == "rows.jsonl" else a for a in args)
    check(cli(registry, *args), 0)


@pytest.mark.parametrize("message", ["items.list", "keyed.list", "basic.list", "static.list"])
def test_a_piped_body_may_echo_a_secret_but_nothing_else_does(registry: Path, message: str) -> None:
    check(cli(registry, "send", "-v", message), 0, stdout_is_body=True)


EXCHANGES = [
    ("get-token", "-v", "--force", "acme"),
    ("get-token", "-v", "--force", "--json", "posted"),
    ("send", "-v", "posted"),
    ("send", "-v", "--json", "items.list"),
]


@pytest.mark.parametrize("args", EXCHANGES, ids=" ".join)
def test_the_token_exchange_shown_with_v_masks_every_secret(
    registry: Path, args: tuple[str, ...]
) -> None:
    check(cli(registry, *args), 0)


OVERRIDE = 'Bearer ov+er/ri%de "tø\\ken"'


@pytest.mark.parametrize(
    "args",
    [
        ("send", "-v", "-H", f"Authorization: {OVERRIDE}", "items.list"),
        ("send", "--json", "-H", f"Authorization: {OVERRIDE}", "keyed.list"),
        ("send", "--dry-run", "-H", f"Authorization: {OVERRIDE}", "items.list"),
        ("send", "--dry-run", "--json", "-H", f"X-Api-Key: {OVERRIDE}", "keyed.list"),
    ],
    ids=lambda a: " ".join(a[:-3] + a[-1:]),
)
def test_a_header_given_with_h_is_masked_like_the_configured_one(
    registry: Path, args: tuple[str, ...]
) -> None:
    run = cli(registry, *args)
    check(run, 0)
    shown = run.err if _piped_body(args) else run.out + run.err
    for form, value in spellings(OVERRIDE.partition(" ")[2]).items():
        assert value not in shown, form


FAILURES = [
    (4, ("send", "items.denied")),
    (4, ("send", "-v", "--json", "items.denied")),
    (4, ("send", "keyed.denied")),
    (4, ("send", "items.unauthorized")),
    (4, ("send", "--json", "static.unauthorized")),
    (5, ("send", "--json", "basic.broken")),
    (6, ("send", "echo_post")),
    (6, ("get-token", "echo_post")),
    (6, ("get-token", "--json", "echo_post")),
]


@pytest.mark.parametrize(
    "code, args", FAILURES, ids=lambda v: " ".join(v) if isinstance(v, tuple) else str(v)
)
def test_failures_mask_every_secret(registry: Path, code: int, args: tuple[str, ...]) -> None:
    check(cli(registry, *args), code)


@pytest.mark.parametrize(
    "code, args",
    [
        (6, ("send", "echo_post")),
        (6, ("get-token", "-v", "echo_post")),
        (6, ("get-token", "--json", "echo_basic")),
        (7, ("send", "-v", "closed.list")),
        (3, ("send", "items.create")),  # no value for ${title}
    ],
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else str(v),
)
def test_debug_tracebacks_mask_every_secret(
    registry: Path, code: int, args: tuple[str, ...]
) -> None:
    check(cli(registry, *args, debug=True), code, traceback=True)


@pytest.mark.parametrize(
    "variable, value",
    [
        ("HOSTILE_API_KEY", API_KEY + "\r\nX-Injected: 1"),
        ("HOSTILE_API_KEY", API_KEY + "\n"),
        ("HOSTILE_API_KEY", "ключ-" + API_KEY),  # cannot go in a header (not Latin-1)
        ("HOSTILE_BASIC_PASSWORD", BASIC_PASSWORD + "\n"),
        ("HOSTILE_STATIC_TOKEN", STATIC_TOKEN + "\r\n"),
    ],
    ids=["api key CRLF", "api key LF", "api key non-Latin-1", "password LF", "token CRLF"],
)
@pytest.mark.parametrize("debug", [False, True], ids=["", "debug"])
def test_a_credential_that_cannot_go_in_a_header_is_masked_and_exit_3(
    registry: Path, variable: str, value: str, debug: bool
) -> None:
    message = {"HOSTILE_API_KEY": "keyed", "HOSTILE_BASIC_PASSWORD": "basic"}.get(
        variable, "static"
    )
    run = cli(registry, "send", "-v", f"{message}.list", debug=debug, extra_env={variable: value})
    assert ("Traceback (most recent call last)" in run.err) == (debug and run.code != 0), run.err
    shown = run.err if run.code == 0 else run.out + run.err
    for form, spelled in spellings(value.rstrip("\r\n")).items():
        assert spelled not in shown, (form, run.err)
    assert len(run.err.strip().splitlines()[-1]) < 500
    assert run.code == 3, run.err


@pytest.mark.parametrize("debug", [False, True])
def test_a_token_endpoint_echoing_the_basic_credential(registry: Path, debug: bool) -> None:
    check(cli(registry, "get-token", "echo_basic", debug=debug), 6, traceback=debug)


def test_tokens_views_mask_every_secret(registry: Path) -> None:
    check(cli(registry, "get-token", "acme"), 0)
    check(cli(registry, "get-token", "--json", "--force", "acme"), 0)
    check(cli(registry, "get-token", "--json", "posted"), 0)
    check(cli(registry, "token", "list"), 0)
    check(cli(registry, "token", "clear"), 0)
    raw = cli(registry, "get-token", "--raw", "acme")
    assert raw.code == 0 and raw.out == ISSUED_TOKEN + "\n"
    check(Done(raw.args, raw.code, b"", raw.err, raw.seconds), 0)


# -- a password written into a URL that cannot be used -------------------------------

BAD_URLS = {
    "bad_port": "https://u:{pw}@127.0.0.1:99999/x",
    "plain_http": "http://u:{pw}@api.example.test/x",
    "white_space": "https://u:{pw}@127.0.0.1/a b",
    "bad_ipv6": "https://u:{pw}@[::1/x",
}
URL_PASSWORDS = {"normal": "Hunter2+Url/Pass", "short": "pw"}


@pytest.fixture
def bad_url_registry(tmp_path: Path) -> Path:
    files: dict[str, str | bytes] = {}
    for name, url in BAD_URLS.items():
        for kind, pw in URL_PASSWORDS.items():
            files[f"messages/{name}_{kind}.yaml"] = (
                f"endpoint: {json.dumps(url.format(pw=pw))}\nauth: {{type: none}}\n"
            )
        files[f"messages/{name}_env.yaml"] = (
            f"endpoint: {json.dumps(url.format(pw='${env:URL_PW}'))}\nauth: {{type: none}}\n"
        )
    return make_registry(tmp_path / "bad", files)


def _url_password_shown(run: Done, password: str) -> bool:
    shown = run.out + run.err
    return any(f"u:{form}@" in shown for form in {password, quote(password, safe="")}) or (
        len(password) >= 4 and any(v in shown for v in spellings(password).values())
    )


def test_validate_never_prints_a_password_in_a_bad_url(bad_url_registry: Path) -> None:
    run = cli(bad_url_registry, "validate", extra_env={"URL_PW": URL_PW_FROM_ENV})
    assert run.code == 3 and "Traceback" not in run.err, run.err
    assert run.out.count("u:****@") >= 8, run.out
    for password in URL_PASSWORDS.values():
        assert not _url_password_shown(run, password), run.out + run.err


@pytest.mark.parametrize("kind", [*URL_PASSWORDS, "env"])
@pytest.mark.parametrize("name", BAD_URLS)
@pytest.mark.parametrize("command", [("show",), ("send",), ("send", "--dry-run")], ids=" ".join)
def test_show_and_send_never_print_a_password_in_a_bad_url(
    bad_url_registry: Path, command: tuple[str, ...], name: str, kind: str
) -> None:
    password = URL_PASSWORDS.get(kind, URL_PW_FROM_ENV)
    run = cli(bad_url_registry, *command, f"{name}_{kind}", extra_env={"URL_PW": URL_PW_FROM_ENV})
    assert run.code == 3, (run.code, run.out, run.err)
    assert "Traceback" not in run.err and len(run.err.strip().splitlines()) == 1, run.err
    if name != "plain_http":  # that reason names only the host
        assert "u:****@" in run.err, run.err
    assert not _url_password_shown(run, password), run.err


URL_PW_FROM_ENV = 'env pä/ss:"w'
