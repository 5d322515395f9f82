"""When output is coloured."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from oauthcli.present import console
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def colour_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    console.disable_color(False)


def test_colour_only_on_a_terminal() -> None:
    assert console.style("x", "red", Tty()) == "\x1b[31mx\x1b[0m"
    assert console.style("x", "red", io.StringIO()) == "x"


@pytest.mark.parametrize("variable, value", [("NO_COLOR", "1"), ("NO_COLOR", ""), ("TERM", "dumb")])
def test_environment_turns_colour_off(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    assert console.style("x", "red", Tty()) == "x"


def test_no_color_option_turns_colour_off() -> None:
    console.disable_color(True)
    try:
        assert console.style("x", "red", Tty()) == "x"
    finally:
        console.disable_color(False)


def test_an_error_after_a_body_without_newline_starts_a_line_in_a_shared_log(
    tmp_path: Path, loopback: LoopbackServer
) -> None:
    """stdout and stderr into one pipe (``2>&1``, a CI log): the error line is not glued
    to the body, and stdout's own bytes stay exactly the body's."""
    loopback.reply("/api", 403, b'{"detail": "no"}', Content_Type="application/json")
    root = make_registry(tmp_path, {"messages/m.yaml": f"endpoint: {loopback.url('/api')}\n"})
    shared = subprocess.run(
        [sys.executable, "-m", "oauthcli", "-r", str(root), "send", "m"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=30,
    )
    assert shared.returncode == 4
    assert shared.stdout.startswith(b'{"detail": "no"}\nerror: 403 Forbidden')
    apart = subprocess.run(
        [sys.executable, "-m", "oauthcli", "-r", str(root), "send", "m"],
        capture_output=True,
        timeout=30,
    )
    assert apart.stdout == b'{"detail": "no"}'
    assert apart.stderr.startswith(b"error: 403")
