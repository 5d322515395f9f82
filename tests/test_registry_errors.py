"""A corpus of broken registries: each gives exit 3, the file, a line, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clirun import run
from tests.registry_factory import MESSAGE, PROFILE, make_registry

CASES: list[tuple[str, dict[str, str | bytes], str, str]] = [
    # id, files, expected location, expected message fragment
    (
        "yaml-syntax",
        {"profiles/acme.yaml": "grant_type: [client_credentials\ntoken_url: x\n"},
        "profiles/acme.yaml:2",
        "invalid YAML: did not find expected ',' or ']'",
    ),
    (
        "tab-indent",
        {"profiles/acme.yaml": PROFILE + "tls:\n\tverify: true\n"},
        "profiles/acme.yaml:7",
        "not tabs",
    ),
    ("empty-file", {"profiles/acme.yaml": ""}, "profiles/acme.yaml", "file is empty"),
    (
        "binary-garbage",
        {"profiles/acme.yaml": b"\x89PNG\r\n\x1a\n\xff\xfe\x00garbage"},
        "profiles/acme.yaml:1",
        "not UTF-8 text",
    ),
    (
        "control-characters",
        {"profiles/acme.yaml": "grant_type: client\x00credentials\n"},
        "profiles/acme.yaml:1",
        "is not allowed",
    ),
    (
        "not-a-mapping",
        {"profiles/acme.yaml": "- a\n- b\n"},
        "profiles/acme.yaml:1",
        "expected a mapping",
    ),
    (
        "unknown-key-profile",
        {"profiles/acme.yaml": PROFILE + "client_secert: x\n"},
        "profiles/acme.yaml:6: client_secert",
        "did you mean 'client_secret'",
    ),
    (
        "unknown-key-tls",
        {"profiles/acme.yaml": PROFILE + "tls:\n  verfy: false\n"},
        "profiles/acme.yaml:7: tls.verfy",
        "did you mean 'verify'",
    ),
    (
        "unknown-key-message",
        {"profiles/acme.yaml": PROFILE, "messages/m.yaml": MESSAGE + "header: {A: b}\n"},
        "messages/m.yaml:6: header",
        "did you mean 'headers'",
    ),
    (
        "unknown-key-method",
        {"profiles/acme.yaml": PROFILE, "messages/m.yaml": MESSAGE + "    qeury: {a: b}\n"},
        "messages/m.yaml:6: methods.list.qeury",
        "did you mean 'query'",
    ),
    (
        "unknown-key-auth",
        {
            "profiles/acme.yaml": PROFILE,
            "messages/m.yaml": MESSAGE
            + "    auth:\n      type: basic\n      username: u\n      password: p\n      realm: x\n",
        },
        "messages/m.yaml:10: methods.list.auth.realm",
        "unknown key",
    ),
    (
        "unknown-key-retry",
        {"profiles/acme.yaml": PROFILE, "messages/m.yaml": MESSAGE + "retry: {tries: 3}\n"},
        "messages/m.yaml:6: retry.tries",
        "unknown key",
    ),
    (
        "wrong-type-timeout",
        {"profiles/acme.yaml": PROFILE + "timeout: soon\n"},
        "profiles/acme.yaml:6: timeout",
        "expected a number, got a string",
    ),
    (
        "wrong-type-headers",
        {"profiles/acme.yaml": PROFILE, "messages/m.yaml": MESSAGE + "headers: [Accept]\n"},
        "messages/m.yaml:6: headers",
        "expected a mapping, got a list",
    ),
    (
        "wrong-type-verify",
        {"profiles/acme.yaml": PROFILE + "tls: {verify: 'no'}\n"},
        "profiles/acme.yaml:6: tls.verify",
        "expected true or false",
    ),
    (
        "unknown-grant",
        {"profiles/acme.yaml": PROFILE.replace("client_credentials", "implicit")},
        "profiles/acme.yaml:1: grant_type",
        "'implicit' is not one of",
    ),
    (
        "unknown-auth-type",
        {
            "profiles/acme.yaml": PROFILE,
            "messages/m.yaml": MESSAGE.replace("type: oauth2", "type: digest"),
        },
        "messages/m.yaml:2: auth.type",
        "'digest' is not one of",
    ),
    (
        "missing-profile",
        {
            "profiles/acme.yaml": PROFILE,
            "messages/m.yaml": MESSAGE.replace("profile: acme", "profile: nope"),
        },
        "messages/m.yaml:2: auth.profile",
        "no profile named 'nope'",
    ),
    (
        "duplicate-names",
        {"profiles/acme.yaml": PROFILE, "profiles/other.yaml": "name: acme\n" + PROFILE},
        "profiles/other.yaml:1: name",
        "also defined in acme.yaml",
    ),
    (
        "name-not-a-string",
        {"profiles/acme.yaml": "name: [x]\n" + PROFILE},
        "profiles/acme.yaml:1: name",
        "expected a string, got a list",
    ),
    (
        "duplicate-key",
        {"profiles/acme.yaml": PROFILE + "scope: again\n"},
        "profiles/acme.yaml:6: scope",
        "key appears twice",
    ),
    (
        "unset-env",
        {
            "profiles/acme.yaml": PROFILE.replace(
                "s3cr3t-value", "${env:OAUTHCLI_TEST_UNSET_SECRET}"
            )
        },
        "profiles/acme.yaml:4: client_secret",
        "environment variable OAUTHCLI_TEST_UNSET_SECRET is not set",
    ),
    (
        "unreadable-file",
        {"profiles/acme.yaml": PROFILE.replace("s3cr3t-value", "${file:nowhere/secret.txt}")},
        "profiles/acme.yaml:4: client_secret",
        "file nowhere/secret.txt not found",
    ),
    (
        "missing-required",
        {"profiles/acme.yaml": "grant_type: client_credentials\nclient_id: a\nclient_secret: b\n"},
        "profiles/acme.yaml: token_url",
        "missing required key",
    ),
    (
        "secret-missing-for-auth",
        {"profiles/acme.yaml": PROFILE.replace("client_secret: s3cr3t-value\n", "")},
        "profiles/acme.yaml",
        "client_secret: missing; client_auth client_secret_basic needs it",
    ),
    (
        "bad-url",
        {"profiles/acme.yaml": PROFILE.replace("http://127.0.0.1:9/token", "ftp://x/token")},
        "profiles/acme.yaml:2: token_url",
        "is not an http:// or https:// URL",
    ),
    (
        "http-non-loopback",
        {
            "profiles/acme.yaml": PROFILE.replace(
                "http://127.0.0.1:9/token", "http://login.example.test/token"
            )
        },
        "profiles/acme.yaml:2: token_url",
        "plain http:// to login.example.test is refused",
    ),
    (
        "http-non-loopback-from-env",
        {
            "profiles/acme.yaml": PROFILE.replace(
                "http://127.0.0.1:9/token", "${env:OAUTHCLI_TEST_URL}"
            )
        },
        "profiles/acme.yaml:2: token_url",
        "plain http:// to api.example.test is refused",
    ),
    (
        "recursive-alias",
        {"profiles/acme.yaml": PROFILE, "messages/m.yaml": MESSAGE + "variables: &v {a: *v}\n"},
        "messages/m.yaml:6: variables.a",
        "an alias refers to itself",
    ),
    (
        "bad-template",
        {"profiles/acme.yaml": PROFILE, "messages/m.yaml": MESSAGE + "    path: /${id\n"},
        "messages/m.yaml:6: methods.list.path",
        "unterminated",
    ),
    (
        "unquoted-template-in-flow",
        {
            "profiles/acme.yaml": PROFILE,
            "messages/m.yaml": MESSAGE + "auth: {type: bearer, token: ${env:T}}\n",
        },
        "messages/m.yaml:6",
        "quote values holding ${…}",
    ),
    (
        "bad-http-method",
        {"profiles/acme.yaml": PROFILE, "messages/m.yaml": MESSAGE.replace("GET", "FETCH")},
        "messages/m.yaml:5: methods.list.http_method",
        "must be one of",
    ),
    (
        "two-bodies",
        {
            "profiles/acme.yaml": PROFILE,
            "messages/m.yaml": MESSAGE + "    json: {a: 1}\n    content: x\n",
        },
        "messages/m.yaml:4: methods.list",
        "a method has one body",
    ),
    (
        "bad-status-list",
        {
            "profiles/acme.yaml": PROFILE,
            "messages/m.yaml": MESSAGE + "retry: {on_status: [503, 999]}\n",
        },
        "messages/m.yaml:6: retry.on_status.1",
        "999 is not an HTTP status code",
    ),
]


@pytest.mark.parametrize(
    "files, where, fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_validate_reports_each_broken_registry(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    files: dict[str, str | bytes],
    where: str,
    fragment: str,
) -> None:
    monkeypatch.delenv("OAUTHCLI_TEST_UNSET_SECRET", raising=False)
    monkeypatch.setenv("OAUTHCLI_TEST_URL", "http://api.example.test/token")
    make_registry(tmp_path, files)
    monkeypatch.chdir(tmp_path)
    result = run("validate")
    assert result.code == 3, result.both
    lines = result.out.splitlines()
    assert any(line.startswith(where) and fragment in line for line in lines), result.out
    assert "Traceback" not in result.both
    assert "s3cr3t-value" not in result.both


def test_validate_reports_every_problem_in_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_registry(
        tmp_path,
        {"profiles/acme.yaml": PROFILE + "timeout: soon\nbogus: 1\ntoken_leeway: -1\n"},
    )
    monkeypatch.chdir(tmp_path)
    result = run("validate")
    assert result.code == 3
    assert [line.split(":")[1] for line in result.out.splitlines()] == ["6", "7", "8"]
    assert "3 problem(s) in 1 of 1 file(s)" in result.err


def test_send_of_a_broken_message_is_exit_3_with_location(tmp_path: Path) -> None:
    make_registry(
        tmp_path, {"profiles/acme.yaml": PROFILE, "messages/m.yaml": MESSAGE + "bogus: 1\n"}
    )
    result = run("-r", str(tmp_path), "show", "m")
    assert result.code == 3
    assert "m.yaml:6: bogus: unknown key" in result.err
    assert "Traceback" not in result.err


def test_missing_variable_names_variable_and_message(tmp_path: Path) -> None:
    make_registry(
        tmp_path,
        {"profiles/acme.yaml": PROFILE, "messages/m.yaml": MESSAGE + "    path: /${sys_id}\n"},
    )
    from oauthcli.registry.discovery import Registry
    from oauthcli.request.resolve import resolve_request, split_target

    registry = Registry(tmp_path)
    message, method = split_target(registry, "m.list", None)
    with pytest.raises(
        Exception, match=r"m.yaml:6: methods.list.path: variable 'sys_id' has no value"
    ):
        resolve_request(registry, message, method, {})


def test_unknown_message_suggests(tmp_path: Path) -> None:
    make_registry(tmp_path, {"profiles/acme.yaml": PROFILE, "messages/incidents.yaml": MESSAGE})
    result = run("-r", str(tmp_path), "show", "incidnets")
    assert result.code == 3
    assert "unknown message 'incidnets'" in result.err
    assert "did you mean 'incidents'" in result.err


def test_no_registry_here(tmp_path: Path) -> None:
    result = run("-r", str(tmp_path), "list")
    assert result.code == 3
    assert "no registry in" in result.err


def test_registry_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_registry(tmp_path, {"profiles/acme.yaml": PROFILE})
    monkeypatch.setenv("OAUTHCLI_REGISTRY", str(tmp_path))
    result = run("list", "profiles")
    assert result.code == 0
    assert result.out.startswith("acme")


def test_option_beats_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_registry(tmp_path / "a", {"profiles/from-option.yaml": PROFILE})
    make_registry(tmp_path / "b", {"profiles/from-env.yaml": PROFILE})
    monkeypatch.setenv("OAUTHCLI_REGISTRY", str(tmp_path / "b"))
    result = run("-r", str(tmp_path / "a"), "list", "profiles")
    assert "from-option" in result.out and "from-env" not in result.out


def test_debug_shows_traceback_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_registry(tmp_path, {"profiles/acme.yaml": "x: [\n"})
    assert "Traceback" not in run("-r", str(tmp_path), "show", "acme").err


def test_validate_checks_the_signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What get-token would refuse, validate reports first, with the key's line."""
    repo_key = Path(__file__).resolve().parent.parent / "profiles" / "keys" / "sandbox-client.pem"
    base = "grant_type: client_credentials\ntoken_url: https://a.test/t\nclient_id: c\nclient_auth: private_key_jwt\n"
    make_registry(
        tmp_path,
        {
            "profiles/badkey.yaml": base + "private_key: not a pem\n",
            "profiles/algmis.yaml": base
            + f"private_key: ${{file:{repo_key}}}\nsigning_alg: ES256\n",
        },
    )
    monkeypatch.chdir(tmp_path)
    result = run("validate")
    assert result.code == 3
    assert "profiles/algmis.yaml:6: signing_alg: ES256 needs an EC private_key" in result.out
    assert "profiles/badkey.yaml:5: private_key: is not PEM text" in result.out
    assert "BEGIN" not in result.both
