"""Run the CLI in-process and keep exit code, stdout and stderr apart."""

from __future__ import annotations

from dataclasses import dataclass

from typer.testing import CliRunner

from oauthcli.cli import app


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def both(self) -> str:
        return self.out + self.err


def run(*args: str, input: str | None = None) -> Result:
    result = CliRunner().invoke(app, list(args), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Result(result.exit_code, result.stdout, result.stderr)
