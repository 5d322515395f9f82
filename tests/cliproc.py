"""The CLI as a user runs it: a fresh interpreter, no terminal, no proxy, output kept apart.

:func:`oauthcli` is the one way the hostile-input tests start the command; it fails the
test if the run printed a Python traceback (unless ``OAUTHCLI_DEBUG=1`` asked for one).
The e2e harness (``tests/e2e/cli.py``) has its own, which runs the installed console
script against oidc-provider and keeps its own registry and cache per test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(repr=False)
class Done:
    args: tuple[str, ...]
    code: int
    data: bytes  # stdout as bytes: a piped body must arrive byte for byte
    err: str
    seconds: float

    @property
    def out(self) -> str:
        return self.data.decode("utf-8", "replace")

    @property
    def both(self) -> str:
        return self.out + self.err

    def __repr__(self) -> str:  # what a failed assertion shows
        return (
            f"oauthcli {' '.join(self.args)} -> {self.code}\nstdout: {self.out}\nstderr: {self.err}"
        )


def oauthcli(
    *args: str | Path,
    registry: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30,
    input: bytes | None = None,
    prefix: Sequence[str] = (),
) -> Done:
    """Run ``oauthcli ARGS`` (after ``-r REGISTRY`` when given) in a fresh interpreter.

    ``env`` is laid over this process's environment (no ``*_proxy``, ``NO_COLOR=1``,
    UTF-8 streams); ``prefix`` runs it under another command (``unshare -m …``).
    """
    full = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    full.update(NO_COLOR="1", PYTHONIOENCODING="utf-8", **(env or {}))
    argv = [str(a) for a in ((*("-r", registry),) if registry is not None else ()) + args]
    started = time.monotonic()
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "oauthcli", *argv],
        capture_output=True,
        timeout=timeout,
        env=full,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        check=False,
    )
    result = Done(
        tuple(str(a) for a in args),
        done.returncode,
        done.stdout,
        done.stderr.decode("utf-8", "replace"),
        time.monotonic() - started,
    )
    if full.get("OAUTHCLI_DEBUG") != "1":
        assert "Traceback" not in result.both, result
    return result
