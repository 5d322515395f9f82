"""How a grant that needs a person reaches one: injected by the caller, so tokens/ prints nothing.

A browser sign-in (``authorization_code``) shows one line the user may need to act
on (the URL to open when no browser opens); the device flow (``device_code``)
shows the user code and where to enter it. The token code never writes these
itself: the CLI injects where they go (``console.err``) for the run of a command
with :func:`shown_by`; without one (the Python API, which prints nothing) they go
to the ``oauthcli`` logger at INFO, for a script that wants them.

:func:`using` sets the rest of what the command line decides: whether to wait for
a person when there is no terminal (``--wait``, the device flow only: someone may
read the code in a CI log) and whether to open a browser (``--no-browser`` prints
the URL only, for a remote shell with the redirect port forwarded).

A module of its own, standard library only, so that setting it costs the CLI's
start nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

Show = Callable[[str], None]


@dataclass(frozen=True)
class Settings:
    """What the caller decided about reaching the user, for the grants that need one."""

    #: Where a line for the user goes; None: the ``oauthcli`` logger (nobody may see it).
    show: Show | None = None
    #: Wait for a person even without a terminal (``--wait``).
    wait: bool = False
    #: Open the system browser (``--no-browser``: print the URL only).
    browser: bool = True
    #: A person may be asked to sign in at all; False (``oauthcli doctor``): a grant that
    #: needs one raises :class:`~oauthcli.errors.SignInNeeded` before it shows or opens anything.
    sign_in: bool = True


_settings = Settings()


def _logged(text: str) -> None:
    import logging  # only here: the CLI's start does not pay for it

    logging.getLogger("oauthcli").info("%s", text)


def current() -> Show:
    """Where a line for the user goes now: the injected callback, else the logger."""
    return _settings.show or _logged


def settings() -> Settings:
    """Everything the caller decided (:class:`Settings`)."""
    return _settings


@contextmanager
def using(
    *,
    show: Show | None = None,
    wait: bool | None = None,
    browser: bool | None = None,
    sign_in: bool | None = None,
) -> Iterator[None]:
    """Change what is given (not None) while the block runs; the rest stays as it was.

    Process-wide, not per thread: the workers of ``send --each`` sign in for the command.
    """
    global _settings
    before = _settings
    _settings = Settings(
        show=before.show if show is None else show,
        wait=before.wait if wait is None else wait,
        browser=before.browser if browser is None else browser,
        sign_in=before.sign_in if sign_in is None else sign_in,
    )
    try:
        yield
    finally:
        _settings = before


@contextmanager
def shown_by(show: Show) -> Iterator[None]:
    """Send the lines for the user to ``show`` while the block runs (the CLI's command)."""
    with using(show=show):
        yield


def refuse_if_barred(profile_name: str, how: str) -> None:
    """Raise :class:`~oauthcli.errors.SignInNeeded` when no sign-in may start now."""
    if not _settings.sign_in:
        from oauthcli.errors import SignInNeeded

        raise SignInNeeded(
            f"profile '{profile_name}' signs in {how} and no token is cached; "
            f"sign in first: oauthcli get-token {profile_name}",
            profile=profile_name,
        )


def interactive() -> bool:
    """Whether someone is at a terminal to act (stdin and stderr are ttys)."""
    try:
        return sys.stdin.isatty() and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed streams
        return False
