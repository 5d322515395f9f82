"""Exceptions and exit codes: every exception that crosses a module boundary is here.

Every failure the CLI reports is an :class:`OAuthCliError`; the CLI's single
error boundary turns it into one line on stderr and ``exit_code``::

    OAuthCliError                 (1, a bug unless a subclass says otherwise)
    ├── OutputError               (1) stdout cannot be written (a full disk, a closed descriptor)
    ├── UsageError                (2) bad flag value, malformed --var or -H
    ├── RegistryError             (3) bad YAML, unknown key, missing variable,
    │   └── RegistryProblems          unset ${env:…}; carries every Problem found
    ├── TokenError                (6) no token: a lock timeout, a sign-in that did not come,
    │   ├── TokenEndpointError        the token endpoint refused, answered garbage, unreachable
    │   │   └── GrantError            ... as Authlib's call of it reported (retry_after of a 429/503)
    │   └── SignInNeeded              a person must sign in and the caller bars it (doctor)
    ├── NetworkError              (7) the API could not be reached
    └── HTTPStatusError           (4/5) the API answered 4xx/5xx; raised only by the Python
                                  API's Response.raise_for_status(), the CLI's explanation

    OAuthCliWarning (UserWarning) what the CLI writes as "warning:", from the Python API

Raised by one module and caught by another inside the library, never shown as
such (the catcher turns each into one of the above, or a warning)::

    YamlProblem                   a YAML file that cannot be used at all (carries its Problem)
    TemplateError                 a ${…} reference that cannot be resolved
    └── MissingVariable           a call variable with no value
    UnsendableURL (ValueError)    a URL requests cannot send to
    UnusableAnswer (ValueError)   a token answer that cannot be used
    CorruptEntry                  a token cache file that is not a valid entry (a miss)
    CacheUnavailable              the shared (Redis) token cache cannot be used (the file
                                  cache is, from then on)
    LockTimeout                   a token cache entry's lock was not had in time (a TokenError)

HTTP answers from the API (exit 4 and 5) are results, not exceptions (unless a script
asks for one with ``raise_for_status()``); 130, 141
and 143 (Ctrl-C, a closed pipe, SIGTERM) are :class:`ExitCode` members the CLI
exits with, not exceptions.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path


class ExitCode(enum.IntEnum):
    OK = 0
    INTERNAL = 1
    USAGE = 2
    REGISTRY = 3
    API_CLIENT_ERROR = 4
    API_SERVER_ERROR = 5
    TOKEN = 6
    NETWORK = 7
    #: What a shell reports for a program ended by Ctrl-C (128 + SIGINT).
    INTERRUPTED = 130
    #: ... by SIGPIPE (128 + 13): the reader of stdout went away.
    BROKEN_PIPE = 141
    #: ... by SIGTERM (128 + 15).
    TERMINATED = 143

    @classmethod
    def for_status(cls, status: int) -> ExitCode:
        if status >= 500:
            return cls.API_SERVER_ERROR
        if status >= 400:
            return cls.API_CLIENT_ERROR
        return cls.OK


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one registry file, printed as ``file:line: key: message``."""

    file: Path | None
    line: int | None
    key: str | None
    message: str

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = _display_path(self.file)
            if self.line is not None:
                where += f":{self.line}"
            where += ": "
        key = f"{self.key}: " if self.key else ""
        return f"{where}{key}{self.message}"


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# -- raised and caught inside the library, between its modules; never reach the user as such --


class YamlProblem(Exception):
    """A YAML file that cannot be used at all; the registry reports its ``problem``."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


class TemplateError(Exception):
    """A reference that cannot be resolved; the caller adds file, line and key."""


class MissingVariable(TemplateError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"variable '{name}' has no value (give it with --var {name}=VALUE)")


class UnsendableURL(ValueError):
    """requests cannot send to this URL (a host that is no valid IDNA name, say)."""


class UnusableAnswer(ValueError):
    """The answer cannot be used; the message says which field and why, never its value."""


class CorruptEntry(Exception):
    """A cache file that is not a valid entry; the caller discards it with a warning."""


class CacheUnavailable(Exception):
    """A token cache cannot be used (Redis unreachable, refusing the password, answering
    garbage); the message is the reason, one line, with no password in it."""


class LockTimeout(Exception):
    """An entry's lock was not had within its timeout: someone else holds it. The message
    names the lock."""


class OAuthCliError(Exception):
    exit_code: ExitCode = ExitCode.INTERNAL


class OutputError(OAuthCliError):
    """stdout cannot be written: a full disk, a closed descriptor (exit 1, not a bug)."""

    def __init__(self, exc: OSError) -> None:
        super().__init__(f"cannot write to standard output: {exc.strerror or exc}")


class UsageError(OAuthCliError):
    exit_code = ExitCode.USAGE


class RegistryError(OAuthCliError):
    exit_code = ExitCode.REGISTRY

    @classmethod
    def at(
        cls, file: Path | None, line: int | None, key: str | None, message: str
    ) -> RegistryError:
        return RegistryProblems([Problem(file, line, key, message)])


class RegistryProblems(RegistryError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class TokenError(OAuthCliError):
    exit_code = ExitCode.TOKEN


class TokenEndpointError(TokenError):
    """The token endpoint refused, answered garbage or could not be reached.

    ``transient``: worth asking again later (a timeout, a 5xx, ``slow_down``).
    """

    def __init__(self, message: str, *, error: str | None = None, transient: bool = False) -> None:
        super().__init__(message)
        self.error = error
        self.transient = transient


class GrantError(TokenEndpointError):
    """The token endpoint refused, answered garbage or could not be reached.

    ``retry_after``: seconds a 429/503 answer asked to wait (``Retry-After``), if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        transient: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, error=error, transient=transient)
        self.retry_after = retry_after


class SignInNeeded(TokenError):
    """A grant needs a person to sign in and the caller said none may start
    (:func:`oauthcli.tokens.signin.using` with ``sign_in=False``: ``oauthcli doctor``)."""

    def __init__(self, message: str, *, profile: str) -> None:
        super().__init__(message)
        self.profile = profile


class NetworkError(OAuthCliError):
    exit_code = ExitCode.NETWORK


class HTTPStatusError(OAuthCliError):
    """The API answered 4xx (exit 4) or 5xx (exit 5); the message is the CLI's explanation.

    ``status`` is the HTTP status, ``response`` the :class:`oauthcli.api.Response`.
    """

    def __init__(self, message: str, *, status: int, response: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.response = response
        self.exit_code = ExitCode.for_status(status)


class OAuthCliWarning(UserWarning):
    """What the CLI would write as ``warning: ...`` on stderr, from the Python API."""
