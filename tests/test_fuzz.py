"""Fuzz: hostile registry files, ``--var`` values and ``--each`` rows never end in a bug.

The property, over generated profiles and messages (control characters, huge numbers,
``.nan``, deep nesting, aliases, unicode, ``${…}`` references, URLs with a password),
call variables (``..``, CR/LF, non-Latin-1, lone surrogates) and CSV / JSONL rows:

* the exit code is never 1 (a bug) and always one SPEC §2 names;
* no output holds a Python traceback;
* no output holds a secret (generated, given through ``${env:…}``) in any spelling it
  travels in: raw, percent- and form-encoded, base64, JSON-escaped.

Runs in-process (tests/clirun.py) for speed, plus a few subprocess runs; derandomized
with no example database, so a CI run is reproducible.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.clirun import run
from tests.servers import LoopbackServer, Recorded

FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
EXIT_CODES = {0, 2, 3, 4, 5, 6, 7}
SECRET_ENV = ("FUZZ_SECRET_A", "FUZZ_SECRET_B")

# -- what hostile input looks like ---------------------------------------------------------

_NASTY_CHARS = (
    "\x00\x01\x07\x08\t\n\r\x1b\x7f\x85\u2028\u202e\ufeff\ufffe é€😀/\\.%:;,#&?=+'\"${}[]*!|>@`~"
)
nasty_text = st.text(alphabet=st.sampled_from(_NASTY_CHARS) | st.characters(), max_size=30)
hostile_values = st.one_of(
    st.sampled_from(
        [
            "..",
            ".",
            "../../etc/passwd",
            "a\r\nX-Injected: 1",
            "\n",
            "€uro",
            "\udcff",
            "x" * 5000,
            "1" + "0" * 5000,
            "${env:FUZZ_SECRET_A}",
            "$${literal}",
            "${",
            "%2e%2e",
            "",
        ]
    ),
    nasty_text,
)


def mostly(
    benign: st.SearchStrategy[str], hostile: st.SearchStrategy[str]
) -> st.SearchStrategy[str]:
    """Two times in three ``benign``: a file with one hostile value, not twenty, is what
    gets past the schema to the parts further in."""
    return st.one_of(benign, benign, hostile)


hostile_numbers = st.sampled_from(
    [
        ".nan",
        ".inf",
        "-.inf",
        "1" + "0" * 5000,
        "-1",
        "0",
        "1.0e+30",
        "0x10",
        "1_000",
        "3",
        "'5'",
        "[]",
        "{}",
        "~",
    ]
)
numbers = mostly(st.sampled_from(["3", "5", "0.5"]), hostile_numbers)
hostile_snippets = st.sampled_from(
    [
        "",
        "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
        "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
        "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n",
        "deep: " + "[" * 500 + "]" * 500 + "\n",
        "variables: &v {a: *v}\n",
        "obj: !!python/object:os.system x\n",
        "<<: {timeout: 5}\n",
        "\tbad: tab\n",
        "when: 2026-02-30\n",
        "? [a, b]\n: c\n",
        "big: 1" + "0" * 5000 + "\n",
    ]
)
snippets = mostly(st.just(""), hostile_snippets)


def scalar(value: str) -> st.SearchStrategy[str]:
    """``value`` as YAML writes it: double-quoted (escaped), single-quoted, or plain."""
    double = json.dumps(value)  # JSON strings are YAML double-quoted scalars
    single = "'" + value.replace("'", "''") + "'"
    return st.sampled_from([double, single, value if value and value.isprintable() else double])


call_values = mostly(st.sampled_from(["1", "abc", "x y"]), hostile_values)


@st.composite
def quoted(draw: st.DrawFn, values: st.SearchStrategy[str] = call_values) -> str:
    return draw(scalar(draw(values)))


@st.composite
def secrets(draw: st.DrawFn) -> tuple[str, str]:
    tail = st.text(
        alphabet="abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789+%:/é€ ",
        min_size=10,
        max_size=16,
    )
    return "Zq" + draw(tail), "Wv" + draw(tail)


@st.composite
def registries(draw: st.DrawFn, base: str) -> dict[str, str]:
    auth = draw(
        st.sampled_from(
            [
                "{type: oauth2, profile: p}",
                '{type: basic, username: u, password: "${env:FUZZ_SECRET_A}"}',
                '{type: bearer, token: "${env:FUZZ_SECRET_B}"}',
                '{type: api_key, header: HEADER, value: "${env:FUZZ_SECRET_A}"}',
                "{type: none}",
            ]
        )
    ).replace(
        "HEADER",
        draw(quoted(st.sampled_from(["X-Key", "X:y", "X y", "X\nY", "€", ""]) | nasty_text)),
    )
    endpoint = draw(
        st.sampled_from(
            [
                base + "/api",
                base + "/api/${id}",
                base + "/api",
                base + "/api/${id}",
                "http://u:${env:FUZZ_SECRET_A}@127.0.0.1:99999/x",
                "https://u:${env:FUZZ_SECRET_B}@127.0.0.1/x y",
                "ftp://127.0.0.1/x",
                "http://[::1/x",
                "${env:FUZZ_UNSET}",
            ]
        )
    )
    depth = draw(st.integers(0, 80))
    message = [
        f"endpoint: {json.dumps(endpoint)}",
        f"auth: {auth}",
        f"timeout: {draw(numbers)}",
        f"retry: {{attempts: {draw(numbers)}, backoff: {draw(numbers)}}}",
        f"headers: {{X-Fuzz: {draw(quoted())}, {draw(quoted(mostly(st.just('X-B'), st.sampled_from(['B C', 'D:E', '']) | nasty_text)))}: v}}",
        f"variables: {{id: {draw(quoted())}}}",
        "methods:",
        "  get:",
        f"    path: {draw(quoted(st.sampled_from(['/${id}', '/${id}/x', '/${id}', '/${file:nope}', '/a?b=${id}'])))}",
        f"    query: {{q: {draw(quoted())}}}",
        "  post:",
        "    http_method: POST",
        f"    json: {{a: {draw(quoted())}, n: {draw(numbers)}, deep: {'[' * depth}1{']' * depth}}}",
    ]
    text = "\n".join(message) + "\n" + draw(snippets)
    profile = (
        "\n".join(
            [
                f"grant_type: {draw(st.sampled_from(['client_credentials', 'password', 'refresh_token', 'client_credentials', 'nope']))}",
                f"token_url: {json.dumps(draw(st.sampled_from([base + '/token', base + '/token', 'http://u:${env:FUZZ_SECRET_B}@127.0.0.1:99999/t', '${env:FUZZ_UNSET}'])))}",
                f"client_id: {draw(quoted())}",
                'client_secret: "${env:FUZZ_SECRET_A}"',
                "username: u",
                'password: "${env:FUZZ_SECRET_B}"',
                'refresh_token: "${env:FUZZ_SECRET_B}"',
                f"token_leeway: {draw(numbers)}",
                f"timeout: {draw(numbers)}",
                f"scope: {draw(quoted())}",
            ]
        )
        + "\n"
        + draw(snippets)
    )
    return {"profiles/p.yaml": profile, "messages/m.yaml": text}


# -- the property -------------------------------------------------------------------------------


def forms(secret: str) -> Iterator[str]:
    """The spellings ``secret`` travels in, as text that could show up in output."""
    yield secret
    yield quote(secret, safe="")
    yield quote_plus(secret)
    yield json.dumps(secret)[1:-1]
    yield json.dumps(secret, ensure_ascii=False)[1:-1]
    raw = secret.encode("utf-8")
    yield base64.b64encode(raw).decode()
    yield base64.urlsafe_b64encode(raw).decode().rstrip("=")
    for user in ("u", "app"):  # HTTP Basic, as client_secret_basic and auth: basic send it
        for pair in (f"{user}:{secret}", f"{quote_plus(user)}:{quote_plus(secret)}"):
            yield base64.b64encode(pair.encode("utf-8")).decode()


def check(out: str, secret_values: tuple[str, ...], what: Any) -> None:
    assert "Traceback" not in out, (what, out[-3000:])
    for secret in secret_values:
        for form in forms(secret):
            assert form not in out, (what, secret, form, out[-3000:])


def run_checked(
    args: list[str], secret_values: tuple[str, ...], input: str | bytes | None = None
) -> int:
    try:
        result = run(*args, input=input)
    except Exception as exc:  # noqa: BLE001 - the CLI let an exception out: a bug
        pytest.fail(f"{args!r}: {type(exc).__name__}: {exc}")
    assert result.code in EXIT_CODES, (args, result.code, result.both[-3000:])
    check(result.both, secret_values, args)
    return result.code


@pytest.fixture(scope="module")
def echo() -> Iterator[LoopbackServer]:
    """An API and token endpoint that echo what they were sent (headers, path, form)."""
    server = LoopbackServer("127.0.0.1")

    def answer(rec: Recorded) -> Any:
        body = json.dumps(
            {"path": rec.path, "headers": rec.headers, "form": rec.body.decode("latin-1")}
        )
        return 200, {"Content-Type": "application/json"}, body.encode()

    def token(rec: Recorded) -> Any:
        described = json.dumps(
            {
                "error": "invalid_client",
                "error_description": rec.body.decode("latin-1")
                + " "
                + rec.headers.get("authorization", ""),
            }
        )
        return 401, {"Content-Type": "application/json"}, described.encode()

    server.routes["/api"] = answer
    for n in range(4):
        server.routes[f"/api/{n}"] = answer
    server.routes["/token"] = token
    yield server
    server.close()


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", errors="surrogateescape")


class _Env:
    """The secrets in the environment for one example (hypothesis and monkeypatch do not mix)."""

    def __init__(self, values: tuple[str, str]) -> None:
        self.values = values

    def __enter__(self) -> _Env:
        for name, value in zip(SECRET_ENV, self.values, strict=True):
            os.environ[name] = value
        os.environ.pop("FUZZ_UNSET", None)
        return self

    def __exit__(self, *exc: object) -> None:
        for name in SECRET_ENV:
            os.environ.pop(name, None)


@FUZZ
@given(data=st.data())
def test_hostile_registries_never_end_in_a_bug(
    tmp_path_factory: pytest.TempPathFactory, echo: LoopbackServer, data: st.DataObject
) -> None:
    files = data.draw(registries(echo.base))  # every draw before anything runs
    secret_values = data.draw(secrets())
    var = data.draw(call_values)
    root = tmp_path_factory.mktemp("reg")
    _write(root, files)
    with _Env(secret_values):
        for args in (
            ["validate"],
            ["show", "m"],
            ["show", "p"],
            ["send", "m.get", "--dry-run", "-V", f"id={var}"],
            ["send", "m.post", "--dry-run", "--json", "-V", f"id={var}"],
            ["send", "m.get", "--json", "--timeout", "2", "--retries", "0", "-V", f"id={var}"],
            ["get-token", "p", "--json"],
        ):
            run_checked(["-r", str(root), *args], secret_values)


ROW_MESSAGE = """\
endpoint: {base}/api
auth: {{type: api_key, header: X-Key, value: "${{env:FUZZ_SECRET_A}}"}}
timeout: 2
retry: {{attempts: 1}}
methods:
  get:
    path: /${{id}}
    query: {{q: "${{q}}"}}
    headers: {{X-Q: "${{q}}"}}
"""


@st.composite
def row_files(draw: st.DrawFn) -> tuple[str, str]:
    ids = st.sampled_from(["0", "1", "..", ".", "%2e", "a/b", "\r\n", "€", ""]) | nasty_text
    if draw(st.booleans()):
        lines = []
        for _ in range(draw(st.integers(1, 4))):
            row: dict[str, Any] = {"id": draw(ids), "q": draw(hostile_values | st.just("ok"))}
            line = json.dumps(row, ensure_ascii=draw(st.booleans()))
            lines.append(
                draw(
                    st.sampled_from(
                        [
                            line,
                            '{"id": ' + "[" * 3000 + "]" * 3000 + ', "q": 1}',
                            '{"id": 1' + "0" * 5000 + ', "q": 1}',
                            '{"id": NaN, "q": Infinity}',
                            "[1, 2]",
                            "{bad json",
                        ]
                    )
                )
            )
        return "rows.jsonl", "\n".join(lines) + "\n"
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(draw(st.sampled_from([["id", "q"], ["id", ""], ["q", "id", "extra"]])))
    for _ in range(draw(st.integers(1, 4))):
        writer.writerow([draw(ids), draw(hostile_values | st.just("ok"))])
    text = buffer.getvalue() + draw(
        st.sampled_from(["", '"unterminated\n', "1,2,3,4\n", "x" * (200 << 10) + ",1\n"])
    )
    return "rows.csv", text


@settings(FUZZ, max_examples=100)
@given(files=row_files(), secret_values=secrets())
def test_hostile_each_rows_never_end_in_a_bug(
    tmp_path_factory: pytest.TempPathFactory,
    echo: LoopbackServer,
    files: tuple[str, str],
    secret_values: tuple[str, str],
) -> None:
    # Everything is drawn before anything runs: a failure is reported as itself, never as
    # "inconsistent data generation" (seen once on a loaded runner with draws in between).
    root = tmp_path_factory.mktemp("reg")
    _write(root, {"messages/m.yaml": ROW_MESSAGE.format(base=echo.base), "profiles/.keep": ""})
    name, text = files
    rows = root / name
    rows.write_text(text, encoding="utf-8", errors="surrogateescape")
    with _Env(secret_values):
        for extra in (["--dry-run"], ["--dry-run", "--json"], ["--concurrency", "2"]):
            run_checked(
                ["-r", str(root), "send", "m.get", "--each", str(rows), *extra], secret_values
            )
        # stdin gets the bytes the file holds (a lone surrogate stands for a byte not UTF-8)
        piped = text.encode("utf-8", "surrogateescape")
        run_checked(["-r", str(root), "send", "m.get", "--each", "-"], secret_values, input=piped)


# -- a few runs as a user runs them ------------------------------------------------------------


@pytest.mark.parametrize(
    "argv_var",
    [b"id=..", b"id=\xff\xfe", b"id=a\r\nb", "id=€".encode(), b"\xff=1", b"id=" + b"9" * 5000],
)
def test_hostile_vars_in_a_subprocess(
    tmp_path: Path, echo: LoopbackServer, argv_var: bytes
) -> None:
    secret = "ZqSubprocess-Secret-€"
    _write(tmp_path, {"messages/m.yaml": ROW_MESSAGE.format(base=echo.base), "profiles/.keep": ""})
    env = {**os.environ, "FUZZ_SECRET_A": secret}
    for extra in ([b"--dry-run"], [b"--json", b"--timeout", b"2"]):
        done = subprocess.run(
            [
                sys.executable.encode(),
                b"-m",
                b"oauthcli",
                b"-r",
                bytes(tmp_path),
                b"send",
                b"m.get",
                b"-V",
                argv_var,
                b"-V",
                b"q=ok",
                *extra,
            ],
            capture_output=True,
            timeout=20,
            env=env,
            check=False,
        )
        out = (done.stdout + done.stderr).decode("utf-8", "replace")
        assert done.returncode in EXIT_CODES, (argv_var, done.returncode, out)
        check(out, (secret,), argv_var)
