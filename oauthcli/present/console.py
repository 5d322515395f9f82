"""Where output goes and whether it is coloured.

Results go to stdout, diagnostics to stderr (SPEC §2). Colour only when the
stream is a terminal, ``--no-color`` was not given, ``NO_COLOR`` is unset and
``TERM`` is not ``dumb``.
Plain ANSI here keeps rich off the paths that only print a line or two.
"""

from __future__ import annotations

import os
import re
import sys
from typing import TextIO

from oauthcli.errors import OutputError
from oauthcli.secret import scrub

_no_color = False
# Whether the last thing written to stdout left its line open (a body without a
# final newline): the next diagnostic then starts on a line of its own.
_stdout_line_open = False
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
    global _stdout_line_open
    line = scrub(text) + "\n"
    try:
        try:
            sys.stdout.write(line)
        except UnicodeEncodeError:  # a value from a non-UTF-8 argv, or a terminal that is not UTF-8
            sys.stdout.flush()
            encoding = sys.stdout.encoding or "utf-8"
            sys.stdout.buffer.write(line.encode(encoding, "backslashreplace"))
    except BrokenPipeError:
        raise  # the reader went away: the CLI ends quietly with 141
    except OSError as exc:
        raise OutputError(exc) from None
    _stdout_line_open = False


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
    wrote_stdout(data)


def wrote_stdout(data: bytes | str) -> None:
    """Note what was just written to stdout by other means (``get-token --raw``, rich),
    so that a diagnostic after a body without a final newline starts a new line."""
    global _stdout_line_open
    if data:
        _stdout_line_open = not (
            data.endswith(b"\n") if isinstance(data, bytes) else data.endswith("\n")
        )


def err(text: str, color: str | None = None) -> None:
    """A diagnostic line on stderr; secrets seen in this process are blanked, and control
    characters (a server's text may carry escape sequences or a carriage return that
    rewrites the line) are shown as escapes instead of acting on the terminal."""
    global _stdout_line_open
    text = escaped(scrub(text).replace("\r\n", "\n"))
    line = (style(text, color, sys.stderr) if color else text) + "\n"
    if _stdout_line_open and _same_place(sys.stdout, sys.stderr):
        line = "\n" + line  # the body shown just before, in the same place, ended mid-line
    _stdout_line_open = False
    try:
        sys.stderr.write(line)
    except (AttributeError, OSError, ValueError):
        pass  # stderr closed (2>&-) or full: a diagnostic lost must not change the outcome


# C0 controls but tab and newline, DEL, and the C1 controls (U+0080-U+009F: CSI is one).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escaped(text: str) -> str:
    """``text`` with its control characters (but tab and newline) shown as escapes: for a
    server's text put on a terminal, where an escape sequence would act."""
    return _CONTROL.sub(_escape_control, text)


def _escape_control(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def _same_place(out: TextIO | None, err: TextIO | None) -> bool:
    """Both streams end up before one reader: two terminals, or one file or pipe (``2>&1``,
    a CI log). The newline then goes to stderr, so stdout's bytes stay exactly the body's."""
    if _isatty(out) and _isatty(err):
        return True
    try:
        a, b = os.fstat(out.fileno()), os.fstat(err.fileno())  # type: ignore[union-attr]
    except (AttributeError, OSError, ValueError):
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _isatty(stream: TextIO | None) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def error(text: str) -> None:
    err(f"error: {text}", "red")


def warn(text: str) -> None:
    err(f"warning: {text}", "yellow")
