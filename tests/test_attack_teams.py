"""Attacks on issue 14's features (environments, --query, --paginate, --report, import,
completion, schema) that once got through; each test failed before its fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.clirun import run
from tests.registry_factory import make_registry

# --- Environments: a value goes into a URL as written, but not out of its place --------


def _env_registry(tmp: Path, variables: dict[str, str]) -> Path:
    return make_registry(
        tmp,
        {
            "profiles/tenant.yaml": """\
                grant_type: client_credentials
                token_url: https://${tenant}.auth.example.com/token
                client_id: app
                client_secret: s3cr3t-value
            """,
            "messages/fixed.yaml": (
                "endpoint: https://api.example.com/v1/${path}/records\nauth: {type: none}\n"
            ),
            "messages/inst.yaml": (
                "endpoint: https://${instance}.service-now.com/api\nauth: {type: none}\n"
            ),
            "messages/based.yaml": "endpoint: ${base}/items\nauth: {type: none}\n",
            "messages/tok.yaml": (
                "endpoint: https://api.example.com/\nauth: {type: oauth2, profile: tenant}\n"
            ),
            "environments/x.yaml": "variables: " + json.dumps(variables) + "\n",
        },
    )


@pytest.mark.parametrize(
    ("message", "name", "value", "said"),
    [
        ("inst", "instance", "evil.example/x?", "'/'"),
        ("inst", "instance", "evil.example#", "'#'"),
        ("inst", "instance", "user:pw@evil.example", "'@'"),
        ("inst", "instance", "evil.example\\", "'\\\\'"),
        ("fixed", "path", "../../admin", "a dot segment"),
        ("fixed", "path", "items?sysparm_query=x", "'?'"),
        ("fixed", "path", "x#", "'#'"),
        ("fixed", "path", "a\r\nX-Evil: 1", "'\\r'"),
    ],
)
def test_an_environment_value_cannot_move_a_message_to_another_host_or_path(
    tmp_path: Path, message: str, name: str, value: str, said: str
) -> None:
    reg = _env_registry(tmp_path, {name: value})
    result = run("-r", str(reg), "-e", "x", "send", message, "--dry-run")
    assert result.code == 3, result.both
    assert f"environment variable '{name}' holds {said}" in result.err
    assert f"messages/{message}.yaml:1: endpoint" in result.err
    assert "Traceback" not in result.both and "pw" not in result.both


def test_an_environment_value_cannot_move_a_profiles_token_url(tmp_path: Path) -> None:
    reg = _env_registry(tmp_path, {"tenant": "evil.example/"})
    for args in (("get-token", "tenant"), ("send", "tok", "--dry-run")):
        result = run("-r", str(reg), "-e", "x", *args)
        assert result.code == 3, result.both
        assert "tenant.yaml:2: token_url: environment variable 'tenant' holds '/'" in result.err
        assert "s3cr3t" not in result.both


def test_sane_environment_values_still_go_in_as_written(tmp_path: Path) -> None:
    reg = _env_registry(
        tmp_path,
        {"instance": "dev01", "path": "now/table", "base": "https://h.example/api?v=1#x"},
    )
    for message, url in (
        ("inst", "https://dev01.service-now.com/api"),
        ("fixed", "https://api.example.com/v1/now/table/records"),
    ):
        result = run("-r", str(reg), "-e", "x", "send", message, "--dry-run")
        assert result.code == 0, result.both
        assert f"GET {url}" in result.out
    # a whole base URL is the value's own: anything a URL may hold
    result = run("-r", str(reg), "-e", "x", "send", "based", "--dry-run", "--json")
    assert result.code == 0, result.both


# --- import: a value from the input never becomes a YAML key of its own -----------------


def test_curl_method_or_header_name_with_a_line_break_is_refused(tmp_path: Path) -> None:
    reg = make_registry(tmp_path, {})
    for command in (
        'curl -X "GET\nendpoint: https://evil.example/" https://api.example.com/q',
        'curl -H "X-A\nendpoint: https://evil.example/ x: y" https://api.example.com/q',
    ):
        result = run("-r", str(reg), "import", "curl", command)
        assert result.code == 2, result.both
        assert "takes" in result.err and "Traceback" not in result.both
        assert list((reg / "messages").iterdir()) == []


def test_an_imported_files_comment_stays_a_comment(tmp_path: Path) -> None:
    import shutil

    reg = make_registry(tmp_path / "reg", {})
    odd = tmp_path / "petstore\nendpoint: evil\n.yaml"
    shutil.copy(Path(__file__).parent / "data" / "import" / "petstore.yaml", odd)
    result = run("-r", str(reg), "import", "openapi", str(odd))
    assert result.code == 0, result.both
    for path in (reg / "messages").iterdir():
        lines = path.read_text().splitlines()
        assert not any(line.startswith("endpoint: evil") for line in lines)
