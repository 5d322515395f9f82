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
stderr; the exit code is the worst row's (the highest), 130 after Ctrl-C.

A malformed row stops the reading: the rows already started finish and are
reported, then the error is raised (exit 2), since the rest of the file cannot
be trusted either.
"""

from __future__ import annotations

import json
import queue
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from oauthcli import console
from oauthcli.errors import ExitCode, OAuthCliError, UsageError
from oauthcli.secret import scrub

if TYPE_CHECKING:
    from concurrent.futures import Future
    from threading import Semaphore

    from oauthcli.resolve import ResolvedRequest
    from oauthcli.sending import Result, Sender

    #: A row's JSON result, and the Result to explain when it failed.
    _Outcome = tuple[dict[str, Any], Result | None]
    #: What the reader hands the printer: a submitted row, a reading error, or the end.
    _Pending = tuple[int, Future[_Outcome]] | BaseException | None

#: Rows kept in flight or waiting to be printed, per unit of concurrency.
WINDOW_PER_WORKER = 2
INTERRUPTED = 130
#: Seconds between checks for Ctrl-C while waiting.
_TICK = 0.1
_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
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


# -- input -------------------------------------------------------------------


class Rows:
    """The rows of ``--each FILE`` (``-`` is stdin), read lazily; ``total`` when countable."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.name = "stdin" if spec == "-" else str(Path(spec).expanduser())
        self.total: int | None = None
        self.read = 0
        self._stream: IO[str] = sys.stdin if spec == "-" else self._open()
        self._skipped = 0  # blank lines before the first one
        try:
            self._first = self._first_line()
        except UsageError:
            self.close()
            raise
        suffix = Path(spec).suffix.lower() if spec != "-" else ""
        self.jsonl = suffix in _JSONL_SUFFIXES or (
            suffix != ".csv" and self._first.lstrip().startswith("{")
        )
        if spec != "-" and Path(self.name).is_file():  # not a pipe: it can be read twice
            self.total = self._count()

    def _open(self) -> IO[str]:
        try:
            return open(self.name, encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise UsageError(f"--each {self.name}: cannot read it: {exc.strerror or exc}") from None

    def _first_line(self) -> str:
        """The first non-blank line, kept so that stdin need not be rewound."""
        try:
            for line in self._stream:
                if line.strip():
                    return line
                self._skipped += 1
        except UnicodeDecodeError as exc:
            raise UsageError(f"--each {self.name}: cannot read it: {exc}") from None
        return ""

    def _lines(self) -> Iterator[str]:
        if self._first:
            yield self._first
        try:
            yield from self._stream
        except UnicodeDecodeError as exc:
            raise UsageError(f"--each {self.name}: cannot read it: {exc}") from None

    def _count(self) -> int | None:
        """How many rows the file holds: one cheap pass, so progress has an end and an ETA."""
        try:
            with open(self.name, encoding="utf-8-sig", newline="") as f:
                if self.jsonl:
                    return sum(1 for line in f if line.strip())
                import csv

                return max(sum(1 for row in csv.reader(f) if row) - 1, 0)
        except (OSError, UnicodeDecodeError, ValueError):
            return None  # the real pass reports the problem with its line

    def __iter__(self) -> Iterator[dict[str, str]]:
        rows = self._jsonl() if self.jsonl else self._csv()
        for row in rows:
            self.read += 1
            yield row

    def _jsonl(self) -> Iterator[dict[str, str]]:
        for number, line in enumerate(self._lines(), self._skipped + 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(
                    f"--each {self.name}:{number}: not valid JSON: {exc.msg}"
                ) from None
            if not isinstance(doc, dict):
                raise UsageError(f"--each {self.name}:{number}: expected a JSON object per line")
            yield {str(k): variable_text(v) for k, v in doc.items()}

    def _csv(self) -> Iterator[dict[str, str]]:
        import csv

        reader = csv.DictReader(self._lines())
        if not reader.fieldnames or not all(f and f.strip() for f in reader.fieldnames):
            raise UsageError(f"--each {self.name}: the first line must name the columns")
        try:
            for row in reader:
                if None in row:
                    line = reader.line_num + self._skipped
                    raise UsageError(f"--each {self.name}:{line}: more values than columns")
                yield {k.strip(): v for k, v in row.items() if v is not None}
        except csv.Error as exc:
            line = reader.line_num + self._skipped
            raise UsageError(f"--each {self.name}:{line}: {exc}") from None

    def close(self) -> None:
        if self._stream is not sys.stdin:
            self._stream.close()


def variable_text(value: Any) -> str:
    """A JSON or YAML value as the text of a call variable."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def parse_rate(rate: str | None) -> float | None:
    """``10``, ``10/s``, ``600/m`` or ``3600/h`` → calls per second."""
    if rate is None:
        return None
    number, _, unit = rate.strip().partition("/")
    per = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}.get(unit.strip().lower())
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if per is None or not value > 0:
        raise UsageError(f"--rate takes N/s, N/m or N/h with N > 0, got {rate!r}")
    return value / per


class RateLimiter:
    """Spaces call starts at least ``1/per_second`` apart, across threads."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


# -- the run -----------------------------------------------------------------

Build = Callable[[dict[str, str]], "ResolvedRequest"]


def run_batch(build: Build, spec: str, options: BatchOptions) -> int:
    """Send one request per row of ``spec``; ``build`` makes a row's request. The exit code."""
    limiter = RateLimiter(parse_rate(options.rate))
    rows = Rows(spec)
    try:
        if options.dry_run:
            return _dry_run(build, rows)
        return _Run(build, rows, options, limiter).run()
    finally:
        rows.close()


def _dry_run(build: Build, rows: Rows) -> int:
    from oauthcli import output

    for number, row in enumerate(rows, 1):
        console.out(f"# row {number}")
        for line in output.dry_run_lines(build(row)):
            console.out(line)
    return int(ExitCode.OK)


class _Run:
    """One batch: a reader thread submits rows, the main thread prints results in order.

    Ctrl-C (the first one) only sets :attr:`interrupted`; the main thread notices
    it at its next wait, stops the reader, drops the rows not yet started and
    prints the ones in flight when they finish. A second Ctrl-C aborts at once.
    """

    def __init__(self, build: Build, rows: Rows, options: BatchOptions, limiter: RateLimiter):
        self.build = build
        self.rows = rows
        self.options = options
        self.limiter = limiter
        self.codes: Counter[int] = Counter()
        self.done = 0
        self.first_failure: tuple[int, Result] | None = None
        self.interrupted = threading.Event()
        self.stop = threading.Event()
        self.progress: _Progress | None = None

    def run(self) -> int:
        from concurrent.futures import ThreadPoolExecutor

        from oauthcli.sending import Sender

        started = time.monotonic()
        pending: queue.Queue[_Pending] = queue.Queue()
        slots = threading.Semaphore(WINDOW_PER_WORKER * self.options.concurrency)
        self.pool = ThreadPoolExecutor(self.options.concurrency, thread_name_prefix="oauthcli-send")
        sender = Sender(pool_size=self.options.concurrency)
        # Rows are read on their own thread so that results are printed as soon as
        # they are ready even while the input (a pipe, say) has nothing more to give.
        reader = threading.Thread(
            target=self._read,
            args=(sender, pending, slots),
            name="oauthcli-rows",
            daemon=True,  # it may be blocked reading stdin when the run is interrupted
        )
        stopped: BaseException | None = None
        restore = self._catch_ctrl_c()
        try:
            if sys.stderr.isatty() and not self.options.verbose:
                self.progress = _Progress(self.rows.total)
            reader.start()
            while (item := self._next(pending)) is not None:
                if isinstance(item, BaseException):
                    stopped = item
                    break
                self._emit(*item)
                slots.release()
            if self.interrupted.is_set():
                self._stop()
                self._emit_left(pending)
        finally:
            restore()
            self.stop.set()
            self.pool.shutdown(wait=True, cancel_futures=True)
            sender.close()
            if self.progress is not None:
                self.progress.stop()
        if self.interrupted.is_set():
            self._emit_left(pending)  # a row the reader submitted while it was told to stop
        sys.stdout.flush()
        console.err(summary(self.codes, time.monotonic() - started))
        if self.first_failure is not None:
            from oauthcli import output

            number, failed = self.first_failure
            output.show_failure(failed, no_fail=self.options.no_fail, prefix=f"row {number}: ")
        if self.interrupted.is_set():
            total = self.rows.total if self.rows.total is not None else self.rows.read
            more = (
                ""
                if self.rows.total is not None
                else f" (more may have followed on {self.rows.name})"
            )
            console.err(f"interrupted after {self.done} of {total} rows sent{more}", "yellow")
            return INTERRUPTED
        if stopped is not None:
            raise stopped
        return max(self.codes, default=int(ExitCode.OK))

    def _catch_ctrl_c(self) -> Callable[[], None]:
        """Turn the first SIGINT into :attr:`interrupted`; what undoes it."""
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = signal.getsignal(signal.SIGINT)

        def first(signum: int, frame: Any) -> None:
            self.interrupted.set()
            signal.signal(signal.SIGINT, previous)  # a second Ctrl-C is not polite

        def restore() -> None:
            signal.signal(signal.SIGINT, previous)

        signal.signal(signal.SIGINT, first)
        return restore

    def _stop(self) -> None:
        if not self.stop.is_set():
            self.stop.set()
            self.pool.shutdown(wait=False, cancel_futures=True)

    def _read(self, sender: Sender, pending: queue.Queue[_Pending], slots: Semaphore) -> None:
        """Read a row whenever the window has room, and submit it."""
        try:
            rows = iter(self.rows)
            number = 0
            while True:
                while not slots.acquire(timeout=_TICK):
                    if self.stop.is_set():
                        return
                if self.stop.is_set():
                    return
                row = next(rows, None)
                if row is None:
                    return
                number += 1
                pending.put((number, self.pool.submit(self._one, sender, number, row)))
        except Exception as exc:  # a malformed row (or a bug): the main thread raises it
            if not self.stop.is_set():
                pending.put(exc)
        finally:
            pending.put(None)

    def _next(self, pending: queue.Queue[_Pending]) -> _Pending:
        """The next submitted row in order; None at the end of the input or after Ctrl-C."""
        try:
            return pending.get_nowait()
        except queue.Empty:
            sys.stdout.flush()  # show what is done before waiting for more
        while not self.interrupted.is_set():
            try:
                return pending.get(timeout=_TICK)
            except queue.Empty:
                continue
        return None

    def _emit_left(self, pending: queue.Queue[_Pending]) -> None:
        """After Ctrl-C: rows already being sent finish and are printed, in row order."""
        while True:
            try:
                item = pending.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, tuple):
                self._emit(*item)

    def _emit(self, number: int, future: Future[_Outcome]) -> None:
        """Print one row's result once it is done (nothing for a row dropped by Ctrl-C)."""
        from concurrent.futures import wait

        if not future.done():
            sys.stdout.flush()
        while not future.done():
            if self.interrupted.is_set():
                self._stop()
            wait([future], timeout=_TICK)
        if future.cancelled():
            return
        obj, failed = future.result()
        console.out(json.dumps(obj, ensure_ascii=False))
        self.codes[obj["exit_code"]] += 1
        self.done += 1
        if failed is not None and self.first_failure is None:
            self.first_failure = (number, failed)
        if self.progress is not None:
            self.progress.advance(self.done)

    def _one(self, sender: Sender, number: int, row: dict[str, str]) -> _Outcome:
        from oauthcli import output

        self.limiter.wait()
        try:
            req = self.build(row)
            trace = output.VerboseTrace(f"[{number}] ") if self.options.verbose else None
            result = sender.send(req, trace)
        except OAuthCliError as exc:
            return error_row(number, int(exc.exit_code), str(exc)), None
        except Exception as exc:  # a bug: keep the other rows going, report it in the row
            return error_row(number, 1, f"internal error: {type(exc).__name__}: {exc}"), None
        code = output.exit_code(result, self.options.no_fail)
        error = None
        if result.status >= 400:
            from oauthcli.explain import failure_lines

            error = failure_lines(result)[0]
        obj = {"row": number, **output.result_object(result), "exit_code": code, "error": error}
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
