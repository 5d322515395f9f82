"""Run the CLI in-process and keep exit code, stdout and stderr apart."""

from __future__ import annotations

from dataclasses import dataclass

from typer.testing import CliRunner

from oauthcli.cli.app import app


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


def run(*args: str, input: str | bytes | None = None) -> Result:
    result = CliRunner().invoke(app, list(args), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Result(result.exit_code, result.stdout, result.stderr)


@dataclass
class Probed:
    code: int
    out: str
    err: str
    loaded: list[str]  # which of the modules asked about the run imported


_PROBE = """\
import atexit, sys
watched = sys.argv.pop(1).split(",")
atexit.register(lambda: sys.stderr.write(
    "\\nLOADED:" + ",".join(m for m in watched if m in sys.modules) + "\\n"))
from oauthcli.cli.app import main
main(sys.argv[1:])
"""


def run_watching(modules: tuple[str, ...], *args: str) -> Probed:
    """Run the CLI in a fresh interpreter; which of ``modules`` did it import?"""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(modules), *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    err, _, loaded = done.stderr.rstrip("\n").rpartition("\nLOADED:")
    return Probed(done.returncode, done.stdout, err, [m for m in loaded.split(",") if m])
