"""Where output goes and whether it is coloured.

Results go to stdout, diagnostics to stderr (SPEC §2). Colour only when the
stream is a terminal, ``--no-color`` was not given, ``NO_COLOR`` is unset and
``TERM`` is not ``dumb``.
Plain ANSI here keeps rich off the paths that only print a line or two.
"""

from __future__ import annotations

import os
import sys
from typing import TextIO

from oauthcli.errors import OAuthCliError
from oauthcli.secret import scrub

_no_color = False
_STYLES = {"red": "31", "green": "32", "yellow": "33", "dim": "2", "bold": "1", "cyan": "36"}


def disable_color(disabled: bool = True) -> None:
    global _no_color
    _no_color = disabled


def color_enabled(stream: TextIO) -> bool:
    if _no_color or "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def style(text: str, name: str, stream: TextIO) -> str:
    if not color_enabled(stream):
        return text
    return f"\x1b[{_STYLES[name]}m{text}\x1b[0m"


def out(text: str = "") -> None:
    """A result line on stdout; secrets seen in this process are blanked."""
    try:
        sys.stdout.write(scrub(text) + "\n")
    except BrokenPipeError:
        raise  # the reader went away: the CLI ends quietly with 141
    except OSError as exc:
        raise OutputError(exc) from None


def flush() -> None:
    """Push what stdout holds to its reader."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(exc) from None


def write_bytes(data: bytes) -> None:
    """Bytes on stdout exactly as given (a response body), after any text written before."""
    flush()
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(exc) from None


class OutputError(OAuthCliError):
    """stdout cannot be written: a full disk, a closed descriptor (exit 1, not a bug)."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(f"cannot write to standard output: {exc.strerror or exc}")


def err(text: str, color: str | None = None) -> None:
    """A diagnostic line on stderr; secrets seen in this process are blanked."""
    text = scrub(text)
    sys.stderr.write((style(text, color, sys.stderr) if color else text) + "\n")


def error(text: str) -> None:
    err(f"error: {text}", "red")


def warn(text: str) -> None:
    err(f"warning: {text}", "yellow")
