"""The calls that are logged: a :class:`LoggingSender` for ``send`` (every call site of
the CLI and the Python API sends through one) and :func:`recorded` for ``get-token`` and
``token revoke``.

The level of a call is the first that says one: the command's ``--log-level`` (or the
API's ``log_level``), ``$OAUTHCLI_LOG_LEVEL``, the method, the message, the profile,
else ``basic`` (:func:`level_of`). ``off`` records nothing and costs nothing more.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from oauthcli.errors import ExitCode, OAuthCliError, RegistryError, UsageError
from oauthcli.outlog import record as rec
from oauthcli.outlog import writer
from oauthcli.trace import Trace
from oauthcli.transport.sending import Result, Sender

if TYPE_CHECKING:
    import requests

    from oauthcli.request.resolved import ResolvedProfile, ResolvedRequest

LEVEL_VARIABLE = "OAUTHCLI_LOG_LEVEL"


def check_level(value: str, where: str = "--log-level") -> str:
    """``value`` if it is a level, else a UsageError (exit 2) naming ``where``."""
    if value not in rec.LEVELS:
        shown = value if len(value) <= 40 else value[:40] + "…"
        raise UsageError(f"{where} {shown!r} is not one of {', '.join(rec.LEVELS)}")
    return value


def level_of(override: str | None, *declared: str | None) -> int:
    """The level of a call: ``override``, ``$OAUTHCLI_LOG_LEVEL``, the first of
    ``declared`` given (method, message, profile), else basic.

    A bad ``$OAUTHCLI_LOG_LEVEL`` is a RegistryError (exit 3) naming it.
    """
    if override is not None:
        return rec.LEVELS.index(check_level(override))
    env = os.environ.get(LEVEL_VARIABLE, "").strip().lower()
    if env:
        if env == "false":  # as YAML 1.1 reads a bare off: the same spelling in both places
            env = "off"
        if env not in rec.LEVELS:
            shown = env if len(env) <= 40 else env[:40] + "…"
            raise RegistryError(f"{LEVEL_VARIABLE}={shown!r} is not one of {', '.join(rec.LEVELS)}")
        return rec.LEVELS.index(env)
    for level in declared:
        if level is not None:
            return rec.LEVELS.index(level)
    return rec.BASIC


def write(make: Callable[[], dict[str, Any]], warn: Callable[[str], None]) -> None:
    """Make one record and append it; a problem is one warning per process, never the
    call's: whatever happens here, the call's result and exit code stay as they are."""
    import json

    try:
        record = make()
        # allow_nan=False: a line the reader cannot parse is never written (NaN, Infinity);
        # a lone surrogate (an odd byte of argv) goes as a \u escape: still valid JSON.
        text = json.dumps(record, ensure_ascii=False, separators=(", ", ": "), allow_nan=False)
        line = (text + "\n").encode("utf-8", "backslashreplace")
    except Exception as exc:  # noqa: BLE001 - a bug in a record must not fail the call
        writer.warn_once(warn, f"an outbound log record could not be made ({exc!r})")
        return
    writer.append(line, warn)


def _profile_of(req: ResolvedRequest) -> ResolvedProfile | None:
    profile = getattr(req.auth, "profile", None)  # OAuth2Auth's, without importing auth/
    return profile if profile is not None and hasattr(profile, "grant_type") else None


def _failure(exc: BaseException) -> tuple[int, str]:
    if isinstance(exc, OAuthCliError):
        return int(exc.exit_code), str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return int(ExitCode.INTERRUPTED), "interrupted (Ctrl-C)"
    return int(ExitCode.INTERNAL), f"internal error: {type(exc).__name__}: {exc}"


class LoggingSender(Sender):
    """A :class:`~oauthcli.transport.sending.Sender` whose every call is one record.

    ``log_level`` is the command's ``--log-level`` (None: as the environment, the message
    and the profile say); ``no_fail`` makes a 4xx/5xx answer's exit code 0, as
    ``--no-fail`` does.
    """

    def __init__(self, *, log_level: str | None = None, no_fail: bool = False, **kw: Any) -> None:
        super().__init__(**kw)
        if log_level is not None:
            check_level(log_level)
        self.log_level = log_level
        self.no_fail = no_fail

    def send(
        self,
        req: ResolvedRequest,
        trace: Trace | None = None,
        *,
        sink: Callable[[bytes], None] | None = None,
    ) -> Result:
        profile = _profile_of(req)
        level = level_of(self.log_level, req.log_level, profile.log_level if profile else None)
        if level == rec.OFF:
            return super().send(req, trace, sink=sink)
        recording = rec.Recording(level, trace)
        started = time.monotonic()
        members: dict[str, Any] = {
            "message": f"{req.message}.{req.method}",
            "profile": profile.name if profile is not None else None,
            "environment": req.environment,
            "method": req.http_method,
            "url": req.full_url,
        }
        try:
            result = super().send(req, recording, sink=sink)
        except BaseException as exc:
            code, error = _failure(exc)
            members.update(
                status=None,
                reason=None,
                elapsed_ms=rec.ms(time.monotonic() - started),
                attempts=None,
                exit_code=code,
                error=error,
                **recording.http_members(None, None, None),
            )
            write(lambda: recording.record("send", **members), self.warn)
            raise
        code = 0 if self.no_fail else int(ExitCode.for_status(result.status))
        members.update(
            method=result.http_method,
            url=result.url,
            status=result.status,
            reason=result.reason,
            elapsed_ms=round(result.elapsed_ms, 1),
            attempts=result.attempts,
            exit_code=code,
            error=None,
            **recording.http_members(list(result.headers.items()), result.body, result.body_size),
        )
        write(lambda: recording.record("send", **members), self.warn)
        return result


@contextmanager
def recorded(
    kind: str,
    profile: ResolvedProfile,
    *,
    log_level: str | None,
    trace: Trace | None,
    warn: Callable[[str], None],
) -> Iterator[Trace]:
    """A ``token`` (get-token) or ``revoke`` record around the block, which runs with the
    trace yielded: its token requests and decisions, and its failure's exit code."""
    level = level_of(log_level, profile.log_level)
    if level == rec.OFF:
        yield trace or Trace()
        return
    recording = rec.Recording(level, trace)
    started = time.monotonic()
    members: dict[str, Any] = {
        "message": None,
        "profile": profile.name,
        "environment": None,
        "method": None,
        "url": profile.revocation_url if kind == "revoke" else profile.token_url,
    }
    try:
        yield recording
    except BaseException as exc:
        code, error = _failure(exc)
        members.update(exit_code=code, error=error)
        raise
    else:
        members.update(exit_code=0, error=None)
    finally:
        last = recording.token_requests[-1] if recording.token_requests else None
        members.update(
            method=last["method"] if last else None,
            url=last["url"] if last else members["url"],
            status=last["status"] if last else None,
            reason=None,
            elapsed_ms=rec.ms(time.monotonic() - started),
            attempts=len(recording.token_requests),
        )
        write(lambda: recording.record(kind, **members), warn)


def record_exchange(
    recording: rec.Recording | None,
    profile: ResolvedProfile,
    *,
    started: float,
    response: requests.Response | None = None,
    attempts: int = 1,
    exc: BaseException | None = None,
    warn: Callable[[str], None],
    secret_headers: frozenset[str] | None = None,
) -> None:
    """The record of a request a ``requests`` session sent with a profile's token (the
    Python API's ``auth``): its answer, or the failure that left it without one.
    ``secret_headers`` are the auth's (a DPoP proof's among them), masked by name."""
    if recording is None:
        return
    members: dict[str, Any] = {
        "message": None,
        "profile": profile.name,
        "environment": None,
        "method": None,
        "url": "",
        "status": None,
        "reason": None,
        "elapsed_ms": rec.ms(time.monotonic() - started),
        "attempts": attempts if response is not None else None,
        "exit_code": 0,
        "error": None,
    }
    if response is not None:
        recording.sent = response.request
        if secret_headers is not None:
            recording.secret_headers = secret_headers
        members.update(
            method=response.request.method,
            url=response.url,
            status=response.status_code,
            reason=response.reason,
            exit_code=int(ExitCode.for_status(response.status_code)),
            **recording.http_members(
                list(response.headers.items()), response.content, len(response.content or b"")
            ),
        )
    if exc is not None:
        members["exit_code"], members["error"] = _failure(exc)
    write(lambda: recording.record("send", **members), warn)
