"""Registry files and call values that try to break the CLI: each ends as exit 2 or 3, one line.

Run as a user runs it (a subprocess) where time or memory is what is at stake: an
alias bomb must be refused within a second, not after eating the machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.clirun import run
from tests.registry_factory import MESSAGE, PROFILE, make_registry

OAUTHCLI = [sys.executable, "-m", "oauthcli"]

ALIAS_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9 if prev else ['x'] * 9)}]\n"
    for name, prev in zip("abcdefghi", ["", *"abcdefgh"], strict=True)
)


def cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 10
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*OAUTHCLI, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )


# -- YAML that costs more than it says ---------------------------------------------------


def test_the_alias_bomb_really_is_one() -> None:
    assert len(ALIAS_BOMB.splitlines()) == 9 and "i: &i [*h, *h" in ALIAS_BOMB


@pytest.mark.parametrize("command", [["validate"], ["show", "bomb"], ["send", "bomb", "--dry-run"]])
def test_an_alias_bomb_is_refused_within_a_second(tmp_path: Path, command: list[str]) -> None:
    root = make_registry(tmp_path, {"messages/bomb.yaml": MESSAGE + ALIAS_BOMB})
    started = time.monotonic()
    done = cli("-r", str(root), *command)
    took = time.monotonic() - started
    assert done.returncode == 3, done.stderr
    out = done.stdout + done.stderr
    assert "messages/bomb.yaml:" in out and "alias bomb" in out
    assert "Traceback" not in out
    assert took < 1 + _startup_seconds(), took


def _startup_seconds() -> float:
    """What starting the CLI costs on this machine (so that a slow CI is not failed)."""
    started = time.monotonic()
    cli("--version")
    return time.monotonic() - started


def test_an_alias_bomb_is_not_kept_in_the_parse_cache(tmp_path: Path) -> None:
    root = make_registry(tmp_path / "reg", {"messages/bomb.yaml": MESSAGE + ALIAS_BOMB})
    for _ in range(2):
        result = run("-r", str(root), "validate")
        assert result.code == 3 and "alias bomb" in result.out
    parsed = Path(os.environ["OAUTHCLI_CACHE_DIR"]) / "parsed"
    assert not parsed.exists() or not any(parsed.iterdir())


def test_aliases_a_real_file_uses_still_work(tmp_path: Path) -> None:
    message = "headers: &h {Accept: application/json}\n" + MESSAGE
    message += "  get:\n    http_method: GET\n    headers: *h\n"
    root = make_registry(tmp_path, {"profiles/acme.yaml": PROFILE, "messages/m.yaml": message})
    result = run("-r", str(root), "show", "m.get")
    assert result.code == 0, result.both
    assert "Accept: application/json" in result.out


@pytest.mark.parametrize(
    "files, where, fragment",
    [
        (
            {"messages/m.yaml": MESSAGE + "json_deep: " + "[" * 900 + "]" * 900 + "\n"},
            "messages/m.yaml:6: json_deep",
            "nested deeper than 64 levels",
        ),
        (
            {"messages/m.yaml": MESSAGE + "timeout: 1" + "0" * 5000 + "\n"},
            "messages/m.yaml:6: timeout",
            "a number of 5001 characters is too long",
        ),
        (
            {"messages/m.yaml": MESSAGE + "    variables: {when: 2026-02-30}\n"},
            "messages/m.yaml:6: methods.list.variables.when",
            "invalid YAML value",
        ),
        (
            {"messages/m.yaml": MESSAGE + "? [a, b]\n: c\n"},
            "messages/m.yaml:6",
            "a key must be a plain value",
        ),
    ],
    ids=["deep-nesting", "5000-digit-integer", "impossible-date", "list-as-key"],
)
def test_yaml_no_registry_needs_is_a_registry_error(
    tmp_path: Path, files: dict[str, str], where: str, fragment: str
) -> None:
    root = make_registry(tmp_path, {"profiles/acme.yaml": PROFILE, **files})
    for args in (["validate"], ["show", "m"], ["send", "m", "--dry-run"]):
        result = run("-r", str(root), *args)
        assert result.code == 3, (args, result.both)
        assert where in result.both and fragment in result.both, result.both
        assert "Traceback" not in result.both and "internal error" not in result.both


# -- values the schema accepted, and the wire did not ---------------------------------------


@pytest.mark.parametrize(
    "extra, where, fragment",
    [
        ("timeout: .nan\n", "messages/m.yaml:6: timeout", "got not a number"),
        ("timeout: .inf\n", "messages/m.yaml:6: timeout", "must be from 0.001 to 86400"),
        ("timeout: 1.0e+30\n", "messages/m.yaml:6: timeout", "must be from 0.001 to 86400"),
        ("retry: {backoff: -.inf}\n", "messages/m.yaml:6: retry.backoff", "got -inf"),
        ("retry: {max_delay: .nan}\n", "messages/m.yaml:6: retry.max_delay", "not a number"),
        ("retry: {attempts: " + "9" * 99 + "}\n", "retry.attempts", "must be from 1 to 100"),
        (
            "    auth: {type: api_key, header: 'X:y', value: k}\n",
            "messages/m.yaml:6: methods.list.auth.header",
            "'X:y' is not a valid HTTP header name",
        ),
        (
            "    auth: {type: api_key, header: 'X y', value: k}\n",
            "messages/m.yaml:6: methods.list.auth.header",
            "'X y' is not a valid HTTP header name",
        ),
        ("tls: {ca_bundle: nothere.pem}\n", "messages/m.yaml:6: tls.ca_bundle", "not found"),
    ],
)
def test_a_message_value_the_wire_cannot_take_fails_validate_and_send(
    tmp_path: Path, extra: str, where: str, fragment: str
) -> None:
    root = make_registry(
        tmp_path, {"profiles/acme.yaml": PROFILE, "messages/m.yaml": MESSAGE + extra}
    )
    checked = run("-r", str(root), "validate")
    assert checked.code == 3 and where in checked.out and fragment in checked.out, checked.both
    sent = run("-r", str(root), "send", "m")
    assert sent.code == 3, sent.both
    assert where in sent.err and fragment in sent.err
    assert "internal error" not in sent.both and "Traceback" not in sent.both


@pytest.mark.parametrize(
    "extra, key",
    [
        ("token_leeway: " + "9" * 60 + "\n", "token_leeway"),
        ("refresh_token_lifespan: 1" + "0" * 5000 + "\n", "refresh_token_lifespan"),
        ("timeout: -.inf\n", "timeout"),
    ],
)
def test_a_profile_number_out_of_bounds_is_a_registry_error(
    tmp_path: Path, extra: str, key: str
) -> None:
    root = make_registry(
        tmp_path, {"profiles/acme.yaml": PROFILE + extra, "messages/m.yaml": MESSAGE}
    )
    for args in (["validate"], ["get-token", "acme"], ["send", "m"]):
        result = run("-r", str(root), *args)
        assert result.code == 3, (args, result.both)
        assert f"profiles/acme.yaml:6: {key}:" in result.both
        assert "internal error" not in result.both


def test_a_cli_timeout_that_is_not_a_finite_number_is_a_usage_error(tmp_path: Path) -> None:
    root = make_registry(tmp_path, {"profiles/acme.yaml": PROFILE, "messages/m.yaml": MESSAGE})
    for value in ("nan", "inf", "-nan", "1e30"):
        result = run("-r", str(root), "send", "m", "--timeout", value)
        assert result.code == 2, (value, result.both)
        assert "--timeout" in result.err and "internal error" not in result.both


# -- call values from argv and --vars-file ----------------------------------------------------


def _items_registry(tmp_path: Path) -> Path:
    message = MESSAGE + "  get:\n    path: /${id}\n"
    return make_registry(tmp_path, {"profiles/acme.yaml": PROFILE, "messages/m.yaml": message})


@pytest.mark.parametrize(
    "argument, shown",
    [(b"id=\xff\xfe", "--var id: not UTF-8 text"), (b"i\xffd=1", "--var i\\xffd: not UTF-8 text")],
)
def test_a_var_that_is_not_utf8_is_a_usage_error_naming_it(
    tmp_path: Path, argument: bytes, shown: str
) -> None:
    root = _items_registry(tmp_path)
    for command in (["send", "m.get", "--dry-run"], ["show", "m.get"]):
        done = subprocess.run(
            [
                *(a.encode() for a in OAUTHCLI),
                b"-r",
                bytes(root),
                *(c.encode() for c in command),
                b"-V",
                argument,
            ],
            capture_output=True,
            timeout=10,
            check=False,
        )
        err = done.stderr.decode("utf-8", "replace")
        assert done.returncode == 2, err
        assert shown in err and "Traceback" not in err


@pytest.mark.parametrize(
    "name, text, fragment",
    [
        ("v.json", '{"id": 1' + "0" * 5000 + "}", "more than 4300 digits"),
        ("v.json", '{"id": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
        ("v.yaml", "id: 1" + "0" * 5000 + "\n", "too long"),
        ("v.yaml", ALIAS_BOMB, "alias bomb"),
    ],
)
def test_a_vars_file_that_cannot_be_used_is_a_usage_error(
    tmp_path: Path, name: str, text: str, fragment: str
) -> None:
    root = _items_registry(tmp_path)
    path = tmp_path / name
    path.write_text(text)
    result = run("-r", str(root), "send", "m.get", "--vars-file", str(path), "--dry-run")
    assert result.code == 2, result.both
    assert name in result.err and fragment in result.err
    assert "internal error" not in result.both


# -- validate: everything in one run ----------------------------------------------------------


def test_validate_reports_schema_errors_references_and_profiles_in_one_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("E_UNSET_URL", raising=False)
    monkeypatch.delenv("E_UNSET_H", raising=False)
    root = make_registry(
        tmp_path,
        {
            "profiles/p.yaml": """\
                grant_type: client_credentials
                token_url: ${env:E_UNSET_URL}
                client_id: app
                client_secret: ${file:nope.txt}
                timeout: soon
                """,
            "messages/m.yaml": """\
                endpoint: http://127.0.0.1:9/x
                auth: {type: oauth2, profile: p}
                headers: {X-K: "${env:E_UNSET_H}"}
                bogus: 1
                methods:
                  a:
                    auth: {type: oauth2, profile: ghost}
                """,
        },
    )
    monkeypatch.chdir(root)
    result = run("validate")
    assert result.code == 3
    assert result.out.splitlines() == [
        "messages/m.yaml:3: headers.X-K: environment variable E_UNSET_H is not set",
        "messages/m.yaml:4: bogus: unknown key; expected one of: name, description, methods, "
        "headers, query, variables, timeout, retry, tls, allow_insecure_http, auth, endpoint, "
        "log_level",
        "messages/m.yaml:7: auth.profile: no profile named 'ghost'",
        "profiles/p.yaml:2: token_url: environment variable E_UNSET_URL is not set",
        f"profiles/p.yaml:4: client_secret: file nope.txt not found (looked at {root}/profiles/nope.txt)",
        "profiles/p.yaml:5: timeout: expected a number, got a string",
    ]
    assert "6 problem(s) in 2 of 2 file(s)" in result.err


def test_validate_reports_a_profile_problem_once_and_each_method_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("E_UNSET_SECRET", raising=False)
    root = make_registry(
        tmp_path,
        {
            "profiles/acme.yaml": PROFILE.replace("s3cr3t-value", "${env:E_UNSET_SECRET}"),
            "messages/m.yaml": MESSAGE
            + "  ghost:\n    auth: {type: oauth2, profile: ghost}\n"
            + "  plain:\n    auth: {type: none}\n    endpoint: http://api.example.test/x\n",
        },
    )
    monkeypatch.chdir(root)
    result = run("validate")
    lines = result.out.splitlines()
    assert (
        lines.count(
            "profiles/acme.yaml:4: client_secret: environment variable E_UNSET_SECRET is not set"
        )
        == 1
    )
    assert "messages/m.yaml:7: auth.profile: no profile named 'ghost'" in lines
    assert any(
        line.startswith("messages/m.yaml:10: methods.plain.endpoint") and "plain http://" in line
        for line in lines
    ), lines
    assert lines == sorted(lines, key=lambda x: (x.split(":")[0], int(x.split(":")[1])))


@pytest.mark.parametrize(
    ("kind", "content"),
    [
        (
            "profiles",
            "root:$6$saltsalt$HASHHASHHASH:20228:0:99999:7:::\nbin:*:20228:0:99999:7:::\n",
        ),
        ("messages", "[default]\naws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY\n"),
        ("environments", "machine api.example login u password ghp_SECRETSECRETSECRET\n"),
        ("profiles", "https://user:ghp_SECRETSECRETSECRET@example.test: 1\n"),
    ],
)
def test_a_registry_file_linked_to_a_foreign_file_does_not_print_it(
    tmp_path: Path, kind: str, content: str
) -> None:
    """A pull request may add ``profiles/x.yaml -> ~/.aws/credentials``; CI runs
    ``oauthcli validate`` and its log is public: the file's lines are never echoed."""
    root = make_registry(tmp_path / "reg", {"profiles/p.yaml": PROFILE, "messages/m.yaml": MESSAGE})
    (root / "environments").mkdir(exist_ok=True)
    foreign = tmp_path / "foreign"
    foreign.write_text(content)
    (root / kind / "x.yaml").symlink_to(foreign)
    result = run("-r", str(root), "validate")
    assert result.code == 3, result
    for secret in ("HASHHASHHASH", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", "ghp_SECRET", "20228"):
        assert secret not in result.both, result.both
    assert "x.yaml" in result.both
