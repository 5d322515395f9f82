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
