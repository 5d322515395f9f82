"""When output is coloured."""

from __future__ import annotations

import io

import pytest

from oauthcli import console


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
