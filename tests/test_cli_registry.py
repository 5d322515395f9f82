"""list, show, validate and global options as a user runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from oauthcli import __version__
from tests.clirun import run
from tests.registry_factory import MESSAGE, PROFILE, make_registry

SHOWN = (
    MESSAGE
    + """\
  get:
    path: /${sys_id}
    headers: {X-Trace: "${trace}"}
variables: {trace: t-1}
description: Items of the acme API
"""
)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return make_registry(
        tmp_path,
        {"profiles/acme.yaml": PROFILE, "messages/items.yaml": SHOWN},
    )


def test_version() -> None:
    result = run("--version")
    assert result.code == 0 and result.out.strip() == f"oauthcli {__version__}"


def test_python_dash_m_works(root: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "oauthcli", "-r", str(root), "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "acme" in proc.stdout and "items" in proc.stdout


def test_list(root: Path) -> None:
    result = run("-r", str(root), "list")
    assert result.code == 0
    assert result.out.splitlines() == [
        "profiles:",
        "  acme  client_credentials, client_secret_basic",
        "messages:",
        "  items  Items of the acme API — list (GET), get (GET)",
    ]
    assert run("-r", str(root), "list", "messages").out.startswith("items")
    bad = run("-r", str(root), "list", "things")
    assert bad.code == 2 and "list takes 'profiles', 'messages' or 'environments'" in bad.err


def test_list_marks_broken_items_without_failing(root: Path) -> None:
    (root / "messages" / "broken.yaml").write_text("endpoint: [\n")
    result = run("-r", str(root), "list", "messages")
    assert result.code == 0
    assert "broken  (invalid: " in result.out


def test_show_profile_masks_secret(root: Path) -> None:
    result = run("-r", str(root), "show", "acme")
    assert result.code == 0
    assert "client_secret:" in result.out and "****" in result.out
    assert "s3cr3t-value" not in result.both
    assert "token_url:" in result.out and "http://127.0.0.1:9/token" in result.out


def test_show_message_lists_variables(root: Path) -> None:
    result = run("-r", str(root), "show", "items.get", "--var", "trace=abc")
    assert result.code == 0
    assert "GET http://127.0.0.1:9/api/items/${sys_id}" in result.out
    assert "trace = 'abc'" in result.out
    assert "sys_id (missing: --var sys_id=VALUE)" in result.out
    assert "oauth2 via profile acme" in result.out


def test_show_whole_message_shows_each_method(root: Path) -> None:
    result = run("-r", str(root), "show", "items")
    assert result.out.count("message:") == 2


def test_validate_ok(root: Path) -> None:
    result = run("-r", str(root), "validate")
    assert result.code == 0, result.both
    assert result.out == ""
    assert "2 file(s) OK" in result.err


def test_bad_var_syntax_is_usage_error(root: Path) -> None:
    result = run("-r", str(root), "show", "items.get", "--var", "novalue")
    assert result.code == 2
    assert "--var takes NAME=VALUE" in result.err


def test_unknown_option_is_usage_error(root: Path) -> None:
    assert run("-r", str(root), "list", "--bogus").code == 2


def test_example_registry_validates() -> None:
    repo = Path(__file__).resolve().parent.parent
    if not (repo / "profiles").is_dir() or not any((repo / "profiles").glob("*.yaml")):
        pytest.skip("no example registry yet")
    result = run("-r", str(repo), "validate")
    assert result.code == 0, result.both


def test_closed_pipe_is_quiet(root: Path) -> None:
    """`oauthcli ... | head -1` ends without a traceback or an 'internal error'."""
    script = (
        "import subprocess, sys\n"
        f"cmd = [sys.executable, '-m', 'oauthcli', '-r', {str(root)!r}]\n"
        "for args in (['send', '--help'], ['show', 'items']):\n"
        "    p = subprocess.Popen(cmd + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
        "    p.stdout.close()\n"
        "    err = p.stderr.read().decode()\n"
        "    p.stderr.close()\n"
        "    print(p.wait(), repr(err))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    for line in proc.stdout.splitlines():
        code, err = line.split(" ", 1)
        assert code in ("0", "1", "141"), line  # click ends --help on EPIPE with 1
        assert err == "''", line


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["show", "items"], ["list"], ["send", "items.list", "--dry-run"]])
def test_a_full_disk_is_a_one_line_error(root: Path, args: list[str]) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [sys.executable, "-m", "oauthcli", "-r", str(root), *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
        )
    assert proc.returncode == 1
    assert proc.stderr == "error: cannot write to standard output: No space left on device\n"


def test_a_password_in_a_url_is_masked(tmp_path: Path) -> None:
    make_registry(tmp_path, {"messages/ui.yaml": "endpoint: http://u:urlPASSWORD9@127.0.0.1:1/x\n"})
    for args in (["show", "ui"], ["send", "ui", "--dry-run"], ["send", "ui"]):
        result = run("-r", str(tmp_path), *args)
        assert "urlPASSWORD9" not in result.both, args
        assert "u:****@127.0.0.1" in result.both, args


def test_a_closed_stdout_is_a_one_line_error() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "oauthcli", "--help"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.close(1),
    )
    assert proc.returncode == 1
    assert proc.stderr == "error: cannot write to standard output: it is closed\n"


def test_validate_reports_every_problem_of_a_profile_in_one_run(tmp_path: Path) -> None:
    """A refused token_url used to hide the missing CA file and the unset variable after it."""
    root = make_registry(
        tmp_path,
        {
            "profiles/acme.yaml": """\
                grant_type: client_credentials
                token_url: http://login.example.test/token
                revocation_url: ${env:OAUTHCLI_TEST_UNSET_URL:-http://login.example.test/r}
                client_id: app
                client_secret: ${env:OAUTHCLI_TEST_UNSET_SECRET}
                tls: {ca_bundle: no-such-ca.pem}
                """
        },
    )
    result = run("-r", str(root), "validate")
    assert result.code == 3
    lines = result.out.splitlines()
    assert any(":2: token_url: plain http:// to login.example.test is refused" in x for x in lines)
    assert any(":3: revocation_url: plain http://" in x for x in lines)
    assert any(":5: client_secret: environment variable" in x for x in lines)
    assert any(":6: tls.ca_bundle:" in x and "no-such-ca.pem not found" in x for x in lines)
    assert len(lines) == len(set(lines)) == 4, lines
