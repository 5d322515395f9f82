"""``send --each``: one call per row of a CSV or JSONL file; the flags and the output.

The rows are run by the batch engine (:mod:`oauthcli.transport.batch`): read one at
a time, at most ``2 × concurrency`` in flight or waiting for an earlier row, each
row's result delivered in row order. This module says what a row's result is (one
JSON line on stdout), shows progress (a rich bar on a terminal) and the summary on
stderr, and turns the first Ctrl-C or SIGTERM into a clean stop (no new rows, a
result for every row sent; exit 130 or 143). The exit code is the worst row's (the
highest).

Up to ``--concurrency 32`` the rows are sent by threads of this process, through
one ``Sender`` (one pooled session, one token, one shared 401 renewal); above it,
on a machine with more than one CPU, by worker processes (:mod:`oauthcli.cli.batchworker`),
each with threads and a ``Sender`` of its own, sharing the token through the token
cache (see :func:`oauthcli.transport.batch.processes_for`). ``-v`` keeps every row
in this process.

A malformed row stops the reading: the rows already started finish and are
reported, then the error is raised (exit 2), since the rest of the file cannot
be trusted either.
"""

from __future__ import annotations

import base64
import json
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from oauthcli.errors import ExitCode, OAuthCliError
from oauthcli.present import console
from oauthcli.request.rows import RateLimiter, Rows, parse_rate
from oauthcli.secret import scrub
from oauthcli.transport import batch as engine

if TYPE_CHECKING:
    from oauthcli.present.junit import Report
    from oauthcli.present.query import Query
    from oauthcli.request.resolved import ResolvedRequest
    from oauthcli.transport.sending import Sender

#: A row's result: its exit code, its JSON object (or, from a worker process, the line
#: already made of it), and the explanation when it failed. The object is made a line
#: only when it is written, one at a time: a body of NULs is six times its size as JSON.
Outcome = tuple[int, "dict[str, Any] | str", "list[str] | None"]

#: Results held before they are written (the main thread writes them every tick too).
_LINES_PER_WRITE = 256
#: ... or fewer, once they hold this many characters (rows of big bodies).
_CHARS_PER_WRITE = 4 << 20
#: What the bodies of the rows in the window may hold together: each row's body is kept
#: up to this over the window's size (at most the Sender's limit, at least 256 KiB), so a
#: gzip bomb in every row costs the same memory at --concurrency 256 as at 4.
_WINDOW_BODIES = 128 << 20
_MIN_ROW_BODY = 256 << 10
_TICK = engine.TICK
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
    query: Query | None = None  # --query: each line's body is its result
    report: Path | None = None  # --report FILE: JUnit XML (present/junit.py)
    report_name: str = ""  # MESSAGE.METHOD, the report's test class
    log_level: str | None = None  # --log-level: the outbound log's, for every row


# -- the run -----------------------------------------------------------------

Build = Callable[[dict[str, str]], "ResolvedRequest"]


def run_batch(
    build: Build, spec: str, options: BatchOptions, recipe: dict[str, Any] | None = None
) -> int:
    """Send one request per row of ``spec``; ``build`` makes a row's request. The exit code.

    ``recipe`` is what a worker process needs to build the same requests itself (see
    :mod:`oauthcli.cli.batchworker`); without it every row is sent from this process.
    """
    limiter = RateLimiter(parse_rate(options.rate))
    rows = Rows(spec)
    try:
        if options.dry_run:
            return _dry_run(build, rows, options.as_json)
        return _Batch(build, rows, options, limiter, recipe).run()
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


def body_limit(concurrency: int) -> int:
    """What each row's body is kept up to, so that the window's bodies stay bounded."""
    from oauthcli.transport.sending import BODY_LIMIT

    window = engine.WINDOW_PER_WORKER * concurrency
    return min(BODY_LIMIT, max(_MIN_ROW_BODY, _WINDOW_BODIES // window))


def send_row(
    sender: Sender,
    build: Build,
    number: int,
    row: dict[str, str],
    *,
    no_fail: bool,
    verbose: bool = False,
    query: Query | None = None,
) -> Outcome:
    """Send one row: its exit code, JSON line and (when it failed) explanation."""
    from oauthcli.present import output

    try:
        req = build(row)
        trace = output.VerboseTrace(f"[{number}] ") if verbose else None
        result = sender.send(req, trace)
        code = output.exit_code(result, no_fail)
        explained = None
        if result.status >= 400:
            from oauthcli.present.explain import failure_lines

            explained = failure_lines(result)
        queried: Any = None
        use_query = query is not None and query.applies_to(result)
        if query is not None and use_query:
            try:
                queried = output.query_value(result, query)
            except OAuthCliError as exc:  # a body that cannot be queried: the row's failure
                code, explained, use_query = int(exc.exit_code), [str(exc)], False
        error = explained[0] if explained else None
        if use_query:
            shown = {**output.result_object(result, body=False), "body": queried}
        else:
            shown = output.result_object(result)
        obj = {"row": number, **shown, "exit_code": code, "error": error}
    except OAuthCliError as exc:
        return error_outcome(number, int(exc.exit_code), str(exc))
    except Exception as exc:  # a bug: keep the other rows going, report it in the row
        return error_outcome(number, 1, f"internal error: {type(exc).__name__}: {exc}")
    return code, obj, explained


def serve(
    rows_in: IO[bytes],
    out: IO[bytes],
    build: Build,
    *,
    no_fail: bool,
    concurrency: int,
    body_limit: int,
    cpu: int | None,
    query: Query | None = None,
    log_level: str | None = None,
) -> None:
    """A worker process's run: rows ``NUMBER<TAB>{json}`` in, answers out, in that order.

    Each answer is ``NUMBER<TAB>EXIT<TAB>[explanation as JSON]<TAB>json line``,
    scrubbed here of every secret this process knows (the parent may never have seen
    the token it fetched). Returns once ``rows_in`` ends and every row is answered.
    """
    from oauthcli.outlog.calls import LoggingSender

    lock = threading.Lock()

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for line in rows_in:
            number, _, row = line.decode("utf-8").partition("\t")
            yield int(number), json.loads(row)

    def work(_: int, numbered: tuple[int, dict[str, str]]) -> tuple[int, Outcome]:
        number, row = numbered
        try:
            return number, send_row(sender, build, number, row, no_fail=no_fail, query=query)
        except Exception as exc:  # every row given gets its answer
            message = f"internal error: {type(exc).__name__}: {exc}"
            return number, error_outcome(number, int(ExitCode.INTERNAL), message)

    def bug(_: int, exc: Exception) -> tuple[int, Outcome]:
        raise exc  # work() answers every row itself: never called

    def deliver(_: int, answer: tuple[int, Outcome]) -> None:
        number, (code, obj, explained) = answer
        text = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
        line = f"{number}\t{code}\t{json.dumps(explained) if explained else ''}\t{scrub(text)}\n"
        with lock:
            out.write(line.encode("utf-8"))
            out.flush()

    with LoggingSender(
        pool_size=concurrency,
        body_limit=body_limit,
        warn=console.warn,
        log_level=log_level,
        no_fail=no_fail,
    ) as sender:
        pool: engine.Threads[tuple[int, dict[str, str]], tuple[int, Outcome]] = engine.Threads(
            rows(), work, concurrency, on_bug=bug, deliver=deliver, name="oauthcli-worker", cpu=cpu
        )
        pool.start()
        while not pool.finished():
            pool.over.wait()


def error_outcome(number: int, code: int, message: str) -> Outcome:
    return code, error_row(number, code, message), None


class _Batch:
    """One ``--each`` run: the engine's workers, its results written, Ctrl-C, the summary.

    Finished rows are delivered in row order by whichever worker completes the gap
    before them and held here; the main thread writes what is held every tick (so
    results reach a pipe within a tenth of a second while workers write without a
    system call per row) and turns the first Ctrl-C into a clean stop. A second
    Ctrl-C aborts at once.
    """

    def __init__(
        self,
        build: Build,
        rows: Rows,
        options: BatchOptions,
        limiter: RateLimiter,
        recipe: dict[str, Any] | None,
    ) -> None:
        self.build = build
        self.rows = rows
        self.options = options
        self.limiter = limiter
        self.recipe = recipe
        self.codes: Counter[int] = Counter()
        self.done = 0  # rows sent and printed
        self.first_failure: tuple[int, list[str]] | None = None
        self.interrupted = threading.Event()
        self.stopped_by = "interrupted"  # or "terminated": which signal set `interrupted`
        self._signalled: int | None = None  # the first SIGINT/SIGTERM, noted by its handler
        self.progress: _Progress | None = None
        self._out = threading.Lock()  # the two below
        self._lines: list[str] = []  # results delivered but not yet written
        self._held = 0  # characters in _lines
        self._write_error: BaseException | None = None
        self.worker_lost: str | None = None  # why a worker process ended with rows it held
        self.report: Report | None = None  # --report: a test case per row delivered
        self._report_rows: dict[int, dict[str, str]] = {}  # rows read, not yet delivered
        self.source: Iterator[dict[str, str]] | Rows = rows
        if options.report is not None:
            from oauthcli.present.junit import Report

            self.report = Report(options.report, options.report_name, options.report_name)
            self.source = self._recorded(rows)

    def _recorded(self, rows: Rows) -> Iterator[dict[str, str]]:
        """The rows, each kept (by its number: the engine reads one at a time, in order)
        until its result is delivered, for its test case's name."""
        for number, row in enumerate(rows, 1):
            self._report_rows[number] = row
            yield row

    def run(self) -> int:
        if self.report is None:
            return self._run()
        finished = False
        try:
            code = self._run()
            finished = True
        finally:
            if not finished:  # an error or a second Ctrl-C: the rows done so far, all the same
                self._write_report()
        return code if self._write_report() else max(code, int(ExitCode.USAGE))

    def _write_report(self) -> bool:
        """Write the report; whether it could be (if not, said in one line)."""
        assert self.report is not None
        try:
            self.report.write()
        except OSError as exc:
            console.error(f"--report {self.report.path}: cannot write it: {exc.strerror or exc}")
            return False
        return True

    def _run(self) -> int:
        started = time.monotonic()
        concurrency = self.options.concurrency
        limit = body_limit(concurrency)
        spread = 1
        if self.recipe is not None and not self.options.verbose and sys.executable:
            spread = engine.processes_for(concurrency, self.rows.total)
        sender: Sender | None = None
        pool: engine.Threads[dict[str, str], Outcome] | engine.Processes[dict[str, str], Outcome]
        if spread > 1:
            pool = self._processes(spread, limit)
        else:
            from oauthcli.outlog.calls import LoggingSender

            sender = LoggingSender(
                pool_size=concurrency,
                body_limit=limit,
                warn=console.warn,
                log_level=self.options.log_level,
                no_fail=self.options.no_fail,
            )
            pool = engine.Threads(
                self.source,
                self._one(sender),
                concurrency,
                on_bug=lambda n, exc: error_outcome(
                    n, int(ExitCode.INTERNAL), f"internal error: {type(exc).__name__}: {exc}"
                ),
                deliver=self._emit,
            )
        restore = self._catch_ctrl_c(pool)
        clean = False
        try:
            pool.start()  # first: forked workers must be forked before rich's thread starts
            if sys.stderr.isatty() and not self.options.verbose:
                self.progress = _Progress(self.rows.total)
            self._watch(pool)
            clean = True
        finally:
            restore()
            pool.stop()
            if isinstance(pool, engine.Processes):
                pool.close(kill=not clean)
            if sender is not None:
                sender.close()
            if self.progress is not None:
                self.progress.stop()
        error = self._write_error or pool.error
        if isinstance(error, (console.OutputError, BrokenPipeError)):
            raise error  # stdout is gone: no summary pretends the results arrived
        self._write()
        console.err(summary(self.codes, time.monotonic() - started))
        if self.first_failure is not None:
            number, lines = self.first_failure
            prefix = f"row {number}: "
            if self.options.no_fail:
                console.warn(prefix + lines[0])
            else:
                console.error(prefix + lines[0])
            for line in lines[1:]:
                console.err(line)
        if self.worker_lost is not None and not self.interrupted.is_set():
            # The engine takes no further row once a worker is gone: say so, and why.
            total = self.rows.total if self.rows.total is not None else self.rows.read
            console.error(
                f"{self.worker_lost}: the run stopped after {self.done} of {total} rows"
                + ("" if self.rows.total is not None else f" read from {self.rows.name}")
            )
        if self.interrupted.is_set():
            total = self.rows.total if self.rows.total is not None else self.rows.read
            more = (
                ""
                if self.rows.total is not None
                else f" (more may have followed on {self.rows.name})"
            )
            console.err(f"{self.stopped_by} after {self.done} of {total} rows sent{more}", "yellow")
            return ExitCode.TERMINATED if self.stopped_by == "terminated" else ExitCode.INTERRUPTED
        if pool.error is not None:
            raise pool.error
        return max(self.codes, default=int(ExitCode.OK))

    def _one(self, sender: Sender) -> Callable[[int, dict[str, str]], Outcome | None]:
        build, limiter, interrupted = self.build, self.limiter, self.interrupted
        no_fail, verbose, query = self.options.no_fail, self.options.verbose, self.options.query

        def one(number: int, row: dict[str, str]) -> Outcome | None:
            if not limiter.wait(interrupted):
                return None  # Ctrl-C while waiting for --rate: not sent
            return send_row(
                sender, build, number, row, no_fail=no_fail, verbose=verbose, query=query
            )

        return one

    def _processes(self, spread: int, limit: int) -> engine.Processes[dict[str, str], Outcome]:
        concurrency = self.options.concurrency
        shares = [concurrency // spread + (i < concurrency % spread) for i in range(spread)]
        recipe = {
            **(self.recipe or {}),
            "no_fail": self.options.no_fail,
            "body_limit": limit,
            "log_level": self.options.log_level,
        }
        if isinstance(recipe.get("body"), bytes):
            recipe["body"] = base64.b64encode(recipe["body"]).decode("ascii")

        def first(share: int, cpu: int | None) -> bytes:
            line = json.dumps({**recipe, "concurrency": share, "cpu": cpu})
            return line.encode("utf-8") + b"\n"

        def encode(number: int, row: dict[str, str]) -> bytes:
            return f"{number}\t{json.dumps(row, ensure_ascii=False)}\n".encode()

        def decode(line: bytes) -> tuple[int, Outcome]:
            number, code, explained, text = line.decode("utf-8").rstrip("\n").split("\t", 3)
            return int(number), (int(code), text, json.loads(explained) if explained else None)

        def lost(number: int, why: str) -> Outcome:
            self.worker_lost = self.worker_lost or why
            return error_outcome(number, int(ExitCode.INTERNAL), f"internal error: {why}")

        return engine.Processes(
            self.source,
            [sys.executable, "-m", "oauthcli.cli.batchworker"],
            first,
            shares,
            encode=encode,
            decode=decode,
            lost=lost,
            deliver=self._emit,
            before_each=lambda: self.limiter.wait(self.interrupted),
            fork=lambda rows_in, out, share, cpu: serve(
                rows_in,
                out,
                self.build,
                no_fail=self.options.no_fail,
                concurrency=share,
                body_limit=limit,
                cpu=cpu,
                query=self.options.query,
                log_level=self.options.log_level,
            ),
        )

    def _watch(self, pool: engine.Threads[Any, Any] | engine.Processes[Any, Any]) -> None:
        """Write every tick until no more rows are taken and none is in flight.

        A worker blocked reading stdin after Ctrl-C is left behind (it is a daemon).
        """
        while True:
            pool.over.wait(_TICK)
            if self._signalled is not None and not self.interrupted.is_set():
                self.stopped_by = (
                    "terminated" if self._signalled == signal.SIGTERM else "interrupted"
                )
                self.interrupted.set()  # rows waiting for their --rate turn give up
            self._write()
            if self.interrupted.is_set() and not pool.stopped:
                pool.stop()
            if pool.finished() or not pool.alive():  # (not alive: cannot happen; never hang)
                return

    def _write(self) -> None:
        """Write the results held so far in one go.

        Results are held here, not in stdout's buffer, so that one system call
        carries many rows even when stdout is unbuffered (``PYTHONUNBUFFERED``,
        set in many CI images): each call lets the other threads take the
        interpreter lock.
        """
        with self._out:
            if self._lines:
                text = "\n".join(self._lines)
                self._lines.clear()
                self._held = 0
                console.out(text)
            console.flush()

    def _catch_ctrl_c(
        self, pool: engine.Threads[Any, Any] | engine.Processes[Any, Any]
    ) -> Callable[[], None]:
        """Turn the first SIGINT or SIGTERM into :attr:`interrupted`; what undoes it.

        SIGTERM (``kill``, a CI job cancelled, ``timeout``) stops the run as Ctrl-C
        does: every request already sent gets its result line, then the summary.
        """
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        caught = (signal.SIGINT, signal.SIGTERM)
        previous: dict[int, Any] = {signum: signal.getsignal(signum) for signum in caught}

        def first(signum: int, frame: Any) -> None:
            # A handler runs in the main thread between two of its bytecodes, maybe while
            # it holds the lock of an Event (setting one here hung the run for good): it
            # only notes the signal, and the watching loop acts on it within a tick.
            if self._signalled is None:
                self._signalled = signum
            signal.signal(signum, previous[signum])  # a second one is not polite

        def restore() -> None:
            for signum in caught:
                signal.signal(signum, previous[signum])

        for signum in caught:
            signal.signal(signum, first)
        return restore

    def _emit(self, number: int, outcome: Outcome) -> None:
        """Hold one row's result (called in row order, holding the engine's lock)."""
        code, obj, explained = outcome
        line = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
        with self._out:
            self._lines.append(line)
            self._held += len(line)
            full = len(self._lines) >= _LINES_PER_WRITE or self._held >= _CHARS_PER_WRITE
        if full:
            try:
                self._write()
            except Exception as exc:
                self._write_error = self._write_error or exc
                raise
        self.codes[code] += 1
        self.done += 1
        if explained and self.first_failure is None:
            self.first_failure = (number, explained)
        if self.report is not None:
            self._report_case(number, code, obj, explained)
        if self.progress is not None:
            self.progress.advance(self.done)

    def _report_case(
        self, number: int, code: int, obj: dict[str, Any] | str, explained: list[str] | None
    ) -> None:
        assert self.report is not None
        shown = json.loads(obj) if isinstance(obj, str) else obj  # a worker process's line
        lines = explained or ([shown["error"]] if shown.get("error") else [])
        if code and shown.get("status"):
            lines = [
                *lines,
                f"{shown['status']} {shown['reason']} · {shown['http_method']} {shown['url']}",
            ]
        seconds = (shown.get("elapsed_ms") or 0) / 1000
        row = self._report_rows.pop(number, None)
        self.report.add(number, row, code, seconds, _LABELS.get(code, f"exit {code}"), lines)


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
