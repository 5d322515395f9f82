"""Who tells the user a sign-in URL: injected by the caller, so tokens/ prints nothing.

A browser sign-in (``authorization_code``) shows one line the user may need to act
on (the URL to open when no browser opens). The token code never writes it
itself: the CLI injects where it goes (``console.err``) for the run of a command
with :func:`shown_by`; without one (the Python API, which prints nothing) it goes
to the ``oauthcli`` logger at INFO, for a script that wants it. A module of its
own, standard library only, so that setting it costs the CLI's start nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Show = Callable[[str], None]

_show: Show | None = None


def _logged(text: str) -> None:
    import logging  # only here: the CLI's start does not pay for it

    logging.getLogger("oauthcli").info("%s", text)


def current() -> Show:
    """Where a line for the user goes now: the injected callback, else the logger."""
    return _show or _logged


@contextmanager
def shown_by(show: Show) -> Iterator[None]:
    """Send the lines for the user to ``show`` while the block runs (the CLI's command).

    Process-wide, not per thread: the workers of ``send --each`` sign in for the command.
    """
    global _show
    before, _show = _show, show
    try:
        yield
    finally:
        _show = before
