"""``send --each``: one call per row of a CSV or JSONL file, streamed through one Sender.

::

    rows, read one at a time ──► window of at most 2×N rows ──► N threads ──► one Sender
                                       │                                   (one pooled session,
                                       ▼                                    one token, one shared
                     results written in row order as the oldest completes   401 renewal)

Memory stays flat whatever the number of rows: the input is read lazily, at most
``2 × concurrency`` rows are in flight or waiting for an earlier row to finish,
and of the finished rows only counts are kept. Each row's result is one JSON
line on stdout; progress (a rich bar on a terminal) and the summary go to
stderr; the exit code is the worst row's (the highest), 130 after Ctrl-C, 143 after
SIGTERM (both stop the run the same way: no new rows, a result for every row sent).

A malformed row stops the reading: the rows already started finish and are
reported, then the error is raised (exit 2), since the rest of the file cannot
be trusted either.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oauthcli.errors import ExitCode, OAuthCliError
from oauthcli.present import console
from oauthcli.request.rows import RateLimiter, Rows, parse_rate
from oauthcli.secret import scrub
from oauthcli.transport.cpu import choose as choose_cpu
from oauthcli.transport.cpu import pin_thread

if TYPE_CHECKING:
    from oauthcli.request.resolved import ResolvedRequest
    from oauthcli.transport.sending import Result, Sender

    #: A row's JSON result, and the Result to explain when it failed.
    _Outcome = tuple[dict[str, Any], Result | None]

#: Rows kept in flight or waiting to be printed, per unit of concurrency.
WINDOW_PER_WORKER = 2
#: Results held before they are written (the main thread writes them every tick too).
_LINES_PER_WRITE = 256
#: ... or fewer, once they hold this many characters (rows of big bodies).
_CHARS_PER_WRITE = 4 << 20
#: What the bodies of the rows in the window may hold together: each row's body is kept
#: up to this over the window's size (at most the Sender's limit, at least 256 KiB), so a
#: gzip bomb in every row costs the same memory at --concurrency 256 as at 4.
_WINDOW_BODIES = 128 << 20
_MIN_ROW_BODY = 256 << 10
#: Seconds between checks for Ctrl-C while waiting, and between writes of results.
_TICK = 0.1
_EMPTY_RESULT = dict.fromkeys(
    ("status", "reason", "url", "http_method", "headers", "body", "elapsed_ms", "attempts")
)
_LABELS = {
    0: "ok",
    1: "internal error",
    2: "usage error",
    3: "registry error",
    4: "4xx",
    5: "5xx",
    6: "token error",
    7: "network error",
}


@dataclass
class BatchOptions:
    concurrency: int = 4
    rate: str | None = None
    verbose: bool = False
    no_fail: bool = False
    dry_run: bool = False
    as_json: bool = False  # only changes --dry-run: results are JSON lines anyway


# -- the run -----------------------------------------------------------------

Build = Callable[[dict[str, str]], "ResolvedRequest"]


def run_batch(build: Build, spec: str, options: BatchOptions) -> int:
    """Send one request per row of ``spec``; ``build`` makes a row's request. The exit code."""
    limiter = RateLimiter(parse_rate(options.rate))
    rows = Rows(spec)
    try:
        if options.dry_run:
            return _dry_run(build, rows, options.as_json)
        return _Run(build, rows, options, limiter).run()
    finally:
        rows.close()


def _dry_run(build: Build, rows: Rows, as_json: bool) -> int:
    from oauthcli.present import output

    for number, row in enumerate(rows, 1):
        if as_json:
            obj = {"row": number, **output.dry_run_object(build(row))}
            console.out(json.dumps(obj, ensure_ascii=False))
            continue
        console.out(f"# row {number}")
        for line in output.dry_run_lines(build(row)):
            console.out(line)
    return int(ExitCode.OK)


class _Run:
    """One batch: N worker threads that each read a row, send it and print what is due.

    Rows are numbered as they are read (one reader at a time); a finished row is
    printed by whichever worker completes the gap before it, so results come out
    in row order with no thread in between. A worker reads a row only while
    fewer than ``2 × N`` rows are read and not yet printed.

    The main thread only watches: it flushes stdout every tick (so results reach
    a pipe within a tenth of a second while the workers write without a system
    call per row) and turns the first Ctrl-C into a clean stop: no new rows,
    the ones in flight finish and are printed. A second Ctrl-C aborts at once.
    """

    def __init__(self, build: Build, rows: Rows, options: BatchOptions, limiter: RateLimiter):
        self.build = build
        self.rows = rows
        self.options = options
        self.limiter = limiter
        self.codes: Counter[int] = Counter()
        self.done = 0  # rows sent and printed
        self._printed = 0  # the last row printed, or dropped unsent after Ctrl-C
        self.first_failure: tuple[int, Result] | None = None
        self.interrupted = threading.Event()
        self.stopped_by = "interrupted"  # or "terminated": which signal set `interrupted`
        self.progress: _Progress | None = None
        self._window = WINDOW_PER_WORKER * options.concurrency
        self._rows = iter(rows)
        self._reading = threading.Lock()  # one reader: a blocked stdin read holds only this
        self._state = threading.Condition()  # everything below
        self._taken = 0  # rows read and numbered
        self._in_flight = 0
        self._finished: dict[int, _Outcome | None] = {}  # done, waiting for an earlier row
        self._end = False  # no more rows will be taken: end of input, error or Ctrl-C
        self._error: BaseException | None = None  # a malformed row, a closed stdout
        self._over = threading.Event()  # wakes the main thread: all done, or Ctrl-C
        self._lines: list[str] = []  # results printed but not yet written
        self._held = 0  # characters in _lines

    def run(self) -> int:
        from oauthcli.transport.sending import Sender

        started = time.monotonic()
        from oauthcli.transport.sending import BODY_LIMIT

        body_limit = min(BODY_LIMIT, max(_MIN_ROW_BODY, _WINDOW_BODIES // self._window))
        sender = Sender(pool_size=self.options.concurrency, body_limit=body_limit)
        # Workers share one interpreter lock: on one CPU it does not bounce between them.
        cpu = choose_cpu() if self.options.concurrency > 1 else None
        workers = [
            threading.Thread(
                target=self._work,
                args=(sender, cpu),
                name=f"oauthcli-send-{n}",
                daemon=True,  # one may be blocked reading stdin when the run is interrupted
            )
            for n in range(self.options.concurrency)
        ]
        restore = self._catch_ctrl_c()
        try:
            if sys.stderr.isatty() and not self.options.verbose:
                self.progress = _Progress(self.rows.total)
            for worker in workers:
                worker.start()
            self._watch(workers)
        finally:
            restore()
            with self._state:
                self._end = True
                self._state.notify_all()
            sender.close()
            if self.progress is not None:
                self.progress.stop()
        if isinstance(self._error, (console.OutputError, BrokenPipeError)):
            raise self._error  # stdout is gone: no summary pretends the results arrived
        with self._state:
            self._write()
        console.err(summary(self.codes, time.monotonic() - started))
        if self.first_failure is not None:
            from oauthcli.present import output

            number, failed = self.first_failure
            output.show_failure(failed, no_fail=self.options.no_fail, prefix=f"row {number}: ")
        if self.interrupted.is_set():
            total = self.rows.total if self.rows.total is not None else self.rows.read
            more = (
                ""
                if self.rows.total is not None
                else f" (more may have followed on {self.rows.name})"
            )
            console.err(f"{self.stopped_by} after {self.done} of {total} rows sent{more}", "yellow")
            return ExitCode.TERMINATED if self.stopped_by == "terminated" else ExitCode.INTERRUPTED
        if self._error is not None:
            raise self._error
        return max(self.codes, default=int(ExitCode.OK))

    def _watch(self, workers: list[threading.Thread]) -> None:
        """Flush every tick until no more rows are taken and none is in flight.

        A worker blocked reading stdin after Ctrl-C is left behind (it is a daemon).
        """
        while True:
            self._over.wait(_TICK)
            with self._state:
                self._write()
                if self.interrupted.is_set() and not self._end:
                    self._end = True
                    self._state.notify_all()
                if self._end and not self._in_flight:
                    return
                if not any(w.is_alive() for w in workers):  # cannot happen; never hang on it
                    return
                self._over.clear()

    def _write(self) -> None:
        """Write the results held so far in one go (holding the state lock).

        Results are held here, not in stdout's buffer, so that one system call
        carries many rows even when stdout is unbuffered (``PYTHONUNBUFFERED``,
        set in many CI images): each call lets the other threads take the
        interpreter lock.
        """
        if self._lines:
            text = "\n".join(self._lines)
            self._lines.clear()
            self._held = 0
            console.out(text)
        console.flush()

    def _check_over(self) -> None:
        """Wake the main thread when the run is over (called holding the state lock)."""
        if self._end and not self._in_flight:
            self._over.set()

    def _catch_ctrl_c(self) -> Callable[[], None]:
        """Turn the first SIGINT or SIGTERM into :attr:`interrupted`; what undoes it.

        SIGTERM (``kill``, a CI job cancelled, ``timeout``) stops the run as Ctrl-C
        does: every request already sent gets its result line, then the summary.
        """
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        caught = (signal.SIGINT, signal.SIGTERM)
        previous: dict[int, Any] = {signum: signal.getsignal(signum) for signum in caught}

        def first(signum: int, frame: Any) -> None:
            if not self.interrupted.is_set():
                self.stopped_by = "terminated" if signum == signal.SIGTERM else "interrupted"
            self.interrupted.set()
            self._over.set()
            signal.signal(signum, previous[signum])  # a second one is not polite

        def restore() -> None:
            for signum in caught:
                signal.signal(signum, previous[signum])

        for signum in caught:
            signal.signal(signum, first)
        return restore

    def _work(self, sender: Sender, cpu: int | None) -> None:
        if cpu is not None:
            pin_thread(cpu)
        while (taken := self._take()) is not None:
            number, row = taken
            outcome: _Outcome | None = None  # None: not sent (Ctrl-C while waiting for --rate)
            try:
                outcome = self._one(sender, number, row)
            except Exception as exc:  # a bug outside the send itself: still the row's result
                message = f"internal error: {type(exc).__name__}: {exc}"
                outcome = error_row(number, int(ExitCode.INTERNAL), message), None
            finally:  # whatever happened, the row leaves the window: the run never hangs on it
                with self._state:
                    self._in_flight -= 1
                    self._finished[number] = outcome
                    self._print_due()
                    self._state.notify_all()
                    self._check_over()

    def _print_due(self) -> None:
        """Print the finished rows that are next in row order (holding the state lock)."""
        try:
            while self._printed + 1 in self._finished:
                self._printed += 1
                due = self._finished.pop(self._printed)
                if due is not None:
                    self._emit(self._printed, *due)
        except Exception as exc:  # stdout closed or broken: stop reading rows
            self._error = self._error or exc
            self._end = True

    def _take(self) -> tuple[int, dict[str, str]] | None:
        """The next row and its number, once the window has room; None when no more are wanted."""
        with self._reading:
            with self._state:
                while not self._end and self._taken - self._printed >= self._window:
                    self._state.wait(_TICK)
                if self._end:
                    return None
            error: Exception | None = None
            try:
                row = next(self._rows, None)
            except Exception as exc:  # a malformed row (or a bug): the run reports it at the end
                row, error = None, exc
            with self._state:
                if row is None or self._end:  # the end of the input, or Ctrl-C while reading
                    self._error = self._error or error
                    self._end = True
                    self._state.notify_all()
                    self._check_over()
                    return None
                self._taken += 1
                self._in_flight += 1
                return self._taken, row

    def _emit(self, number: int, obj: dict[str, Any], failed: Result | None) -> None:
        """Print one row's result (called in row order, holding the state lock)."""
        line = json.dumps(obj, ensure_ascii=False)
        self._lines.append(line)
        self._held += len(line)
        if len(self._lines) >= _LINES_PER_WRITE or self._held >= _CHARS_PER_WRITE:
            self._write()
        self.codes[obj["exit_code"]] += 1
        self.done += 1
        if failed is not None and self.first_failure is None:
            self.first_failure = (number, failed)
        if self.progress is not None:
            self.progress.advance(self.done)

    def _one(self, sender: Sender, number: int, row: dict[str, str]) -> _Outcome | None:
        """Send one row; its JSON result (and the Result to explain), None if never sent."""
        from oauthcli.present import output

        if not self.limiter.wait(self.interrupted):
            return None
        try:
            req = self.build(row)
            trace = output.VerboseTrace(f"[{number}] ") if self.options.verbose else None
            result = sender.send(req, trace)
            code = output.exit_code(result, self.options.no_fail)
            error = None
            if result.status >= 400:
                from oauthcli.present.explain import failure_lines

                error = failure_lines(result)[0]
            obj = {"row": number, **output.result_object(result), "exit_code": code, "error": error}
        except OAuthCliError as exc:
            return error_row(number, int(exc.exit_code), str(exc)), None
        except Exception as exc:  # a bug: keep the other rows going, report it in the row
            return error_row(number, 1, f"internal error: {type(exc).__name__}: {exc}"), None
        return obj, (result if result.status >= 400 else None)


def error_row(number: int, code: int, message: str) -> dict[str, Any]:
    return {"row": number, **_EMPTY_RESULT, "exit_code": code, "error": scrub(message)}


def summary(codes: Counter[int], seconds: float) -> str:
    total = sum(codes.values())
    parts = [f"{codes[c]} {_LABELS.get(c, f'exit {c}')}" for c in sorted(codes)]
    rate = f" ({total / seconds:.0f}/s)" if seconds > 0 and total else ""
    return f"{total} row(s) in {seconds:.1f} s{rate}: {', '.join(parts) or 'nothing to do'}"


# -- progress on a terminal ----------------------------------------------------


class _Progress:
    """rich's bar with rows done, rate and ETA, on stderr; imported only on a terminal."""

    def __init__(self, total: int | None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        no_color = not console.color_enabled(sys.stderr)
        self._progress = Progress(
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr, no_color=no_color),
            transient=True,
            redirect_stdout=False,  # results go to stdout untouched; warnings print above the bar
        )
        self._task = self._progress.add_task("rows", total=total, rate="")
        self._started = time.monotonic()
        self._progress.start()

    def advance(self, done: int) -> None:
        elapsed = time.monotonic() - self._started
        rate = f"{done / elapsed:.0f} rows/s" if elapsed > 0 else ""
        self._progress.update(self._task, completed=done, rate=rate)

    def stop(self) -> None:
        self._progress.stop()
