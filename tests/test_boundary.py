"""The CLI's error boundary and the console: one masked line per failure, tracebacks only
with OAUTHCLI_DEBUG=1 and masked too, no control characters from a server on the terminal,
and a diagnostic never runs on from a body that ended mid-line."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from oauthcli.cli import app as cli
from oauthcli.errors import TokenError
from oauthcli.present import console
from oauthcli.secret import MASK, Secret

SECRET = 'dbg+sé cret/%:"\\x'


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _fail_with(exc: BaseException, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise exc

    monkeypatch.setattr(cli, "open_registry", boom)


@pytest.mark.parametrize("debug", [False, True])
def test_a_bug_is_one_masked_line_and_a_masked_traceback_only_in_debug(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str], debug: bool
) -> None:
    Secret(SECRET)
    if debug:
        monkeypatch.setenv("OAUTHCLI_DEBUG", "1")
    try:
        raise KeyError(f"no key {SECRET}")
    except KeyError as cause:
        exc = RuntimeError(f"it broke on {SECRET!r}\nsecond line {SECRET}")
        exc.__cause__ = cause
    _fail_with(exc, monkeypatch)
    with pytest.raises(SystemExit) as done:
        cli.main(["list"])
    assert done.value.code == 1
    out, err = capfd.readouterr()
    assert out == ""
    last = err.rstrip("\n").splitlines()[-1]
    assert last.startswith(
        "error: internal error (a bug in oauthcli, please report it): RuntimeError: "
    )
    assert "second line" in last  # one line, not two
    assert ("Traceback (most recent call last)" in err) == debug
    assert ("KeyError" in err) == debug  # the chain, in debug
    for form in (SECRET, repr(SECRET)[1:-1], "dbg+s\\xe9"):
        assert form not in err
    assert MASK in last


def test_a_registry_error_in_debug_has_a_masked_traceback(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    Secret(SECRET)
    monkeypatch.setenv("OAUTHCLI_DEBUG", "1")
    _fail_with(TokenError(f"the token endpoint said: {SECRET}"), monkeypatch)
    with pytest.raises(SystemExit) as done:
        cli.main(["list"])
    assert done.value.code == 6
    err = capfd.readouterr().err
    assert "Traceback (most recent call last)" in err and "TokenError" in err
    assert SECRET not in err and f"error: the token endpoint said: {MASK}" in err


def test_a_worker_thread_that_dies_prints_one_masked_line(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    Secret(SECRET)
    monkeypatch.setattr(threading, "excepthook", cli._thread_excepthook)

    def work() -> None:
        raise ValueError(f"row had {SECRET}")

    thread = threading.Thread(target=work, name="row-worker")
    thread.start()
    thread.join(5)
    err = capfd.readouterr().err
    assert "Traceback" not in err and SECRET not in err
    assert err == (
        "error: internal error (a bug in oauthcli, please report it) in thread row-worker: "
        f"ValueError: row had {MASK}\n"
    )


def test_an_exception_with_an_unprintable_message_is_still_one_line(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    class Nasty(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    _fail_with(Nasty(), monkeypatch)
    with pytest.raises(SystemExit) as done:
        cli.main(["list"])
    assert done.value.code == 1
    assert "Nasty with an unprintable message" in capfd.readouterr().err


def test_server_control_characters_never_act_on_the_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    console.err("denied: \x1b[2J\x1b]0;pwned\x07 ok\rerror: fake\x9b1m")
    assert err.getvalue() == "denied: \\x1b[2J\\x1b]0;pwned\\x07 ok\\x0derror: fake\\x9b1m\n"


def test_a_diagnostic_after_a_body_without_a_final_newline_starts_a_new_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    screen = Tty()

    class TtyOut(Tty):
        buffer = io.BytesIO()

        def write(self, s: str) -> int:
            screen.write(s)
            return len(s)

    monkeypatch.setenv("NO_COLOR", "1")
    out = TtyOut()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", screen)
    console.write_bytes(b"partial body")
    screen.write(out.buffer.getvalue().decode())
    console.error("4xx")
    console.err("second")
    assert screen.getvalue() == "partial body\nerror: 4xx\nsecond\n"
    console.out("line")
    console.err("third")
    assert screen.getvalue().endswith("line\nthird\n")


def test_on_a_pipe_no_newline_is_added(monkeypatch: pytest.MonkeyPatch) -> None:
    class PipeOut(io.StringIO):
        buffer = io.BytesIO()

    monkeypatch.setattr(sys, "stdout", PipeOut())
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    console.write_bytes(b"partial body")
    console.err("note")
    assert err.getvalue() == "note\n"


def test_terminal_error_line_starts_on_its_own_line_in_a_real_pty(tmp_path: Path) -> None:
    from tests.terminal import on_terminal

    program = (
        "from oauthcli.present import console\n"
        "console.write_bytes(b'{\"a\": 1}')\n"
        "console.error('the API answered 403')\n"
    )
    code, screen = on_terminal([sys.executable, "-c", program], {"NO_COLOR": "1"}, timeout=10)
    assert code == 0, screen
    assert screen.replace(b"\r\n", b"\n") == b'{"a": 1}\nerror: the API answered 403\n'


@pytest.mark.parametrize("how", ["closed", "full"])
def test_a_failing_stderr_does_not_change_the_exit_code(tmp_path: Path, how: str) -> None:

    reg = tmp_path / "reg"
    (reg / "profiles").mkdir(parents=True)
    (reg / "messages").mkdir()
    (reg / "messages" / "bad.yaml").write_text("endpoint: [\n")
    args = [sys.executable, "-m", "oauthcli", "-r", str(reg), "validate"]
    if how == "closed":
        closing = ["sh", "-c", 'exec "$@" 2>&-', "sh", *args]
        done = subprocess.run(closing, stdout=subprocess.PIPE, timeout=30, stdin=subprocess.DEVNULL)
    else:
        if not Path("/dev/full").exists():
            pytest.skip("no /dev/full here")
        with open("/dev/full", "w") as full:
            done = subprocess.run(
                args, stdout=subprocess.PIPE, stderr=full, timeout=30, stdin=subprocess.DEVNULL
            )
    assert done.returncode == 3, done


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("argv", [["--help"], ["send", "--help"]])
def test_help_to_a_full_disk_is_a_write_failure_not_a_bug(argv: list[str]) -> None:
    """typer writes --help itself, outside the command's error boundary."""
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "oauthcli", *argv],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
    err = done.stderr.decode()
    assert done.returncode == 1
    assert err == "error: cannot write to standard output: No space left on device\n"
    assert "bug" not in err and "Traceback" not in err
