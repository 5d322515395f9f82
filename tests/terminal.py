"""Reading what a child process wrote to a pseudo-terminal."""

from __future__ import annotations

import os


def drain(fd: int) -> bytes:
    """Everything written to the terminal whose controlling side is ``fd``, until the child closes it."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the child side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def on_terminal(
    argv: list[str], env: dict[str, str] | None = None, timeout: float = 30
) -> tuple[int, bytes]:
    """Run ``argv`` with stdout and stderr on one pseudo-terminal, as a person sees it:
    its exit code and everything it wrote there. ``env`` is laid over this environment."""
    import pty
    import subprocess

    main, child = pty.openpty()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=child,
            stderr=child,
            env={**os.environ, **(env or {})},
        )
        os.close(child)
        screen = drain(main)
        return proc.wait(timeout=timeout), screen
    finally:
        os.close(main)
