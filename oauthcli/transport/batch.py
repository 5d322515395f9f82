"""The batch engine: rows in, one outcome per row out in row order, N at a time.

``send --each`` (:mod:`oauthcli.cli.batch`) and :meth:`oauthcli.Registry.send_each`
both run here; what a row's outcome is (a JSON line, a :class:`~oauthcli.Response`)
is theirs to say::

    rows, read one at a time ──► window of at most 2×N rows ──► N workers ──► outcomes
                                                                               │
                                  delivered in row order as the oldest completes ◄┘

Memory stays flat whatever the number of rows: rows are read lazily (one reader at
a time), at most ``window`` rows are read and not yet delivered, and nothing of a
delivered row is kept. :meth:`stop` takes no further row; the rows in flight finish
and are delivered. A row the reader cannot read (a malformed line) ends the reading:
the rows before it finish, and :attr:`error` holds the exception.

Two kinds of workers, one window:

* :class:`Threads`: N threads in this process, each taking a row, working it and
  delivering what is due. Against a fast API the threads share one interpreter
  lock, so they are kept on one CPU (:mod:`oauthcli.transport.cpu`).
* :class:`Processes`: K worker processes, each running its own :class:`Threads` on a
  share of the concurrency, fed rows over a pipe and answering one line per row in
  the order given. At high concurrency one process runs out of CPU before the API
  does (on 2 cores, 128 rows in flight against an API answering in 50 ms reached
  0.67–0.88 of the ideal throughput in one process, see BENCHMARKS.md "Mechanisms
  audit"); the processes share the token through the token cache and its lock.

:func:`processes_for` says when the second pays.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Generic, TypeVar

from oauthcli.secret import scrub
from oauthcli.transport.cpu import choose as choose_cpu
from oauthcli.transport.cpu import pin_thread

R = TypeVar("R")  # a row, as the reader gives it
T = TypeVar("T")  # a row's outcome

#: Rows kept in flight or waiting to be delivered, per unit of concurrency.
WINDOW_PER_WORKER = 2
#: Concurrency one worker process is given at most before a second pays (see processes_for).
PER_PROCESS = 32
#: Rows known to come (a file's) from which two or more in flight are spread too.
ROWS_FOR_PROCESSES = int(os.environ.get("OAUTHCLI_BENCH_ROWS_FOR_PROCESSES", "") or 500)
#: Seconds between checks when a waiting thread may have to notice a stop.
TICK = 0.1

_WITHOUT = frozenset(os.environ.get("OAUTHCLI_BENCH_WITHOUT", "").split(","))


def processes_for(concurrency: int, rows: int | None = None) -> int:
    """How many worker processes a run is best spread over (1: threads of this process).

    More than one when more than :data:`PER_PROCESS` rows are in flight (one process
    runs out of CPU first), or when at least :data:`ROWS_FOR_PROCESSES` rows are known
    to come and two or more are in flight (the rows' CPU time is then larger than a
    forked worker's start); at most one per CPU this process may use. Measured in
    BENCHMARKS.md ("Mechanisms audit").
    """
    if concurrency < 2 or "processes" in _WITHOUT:
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    if concurrency > PER_PROCESS:
        return max(1, min(cpus, -(-concurrency // PER_PROCESS)))
    if rows is not None and rows >= ROWS_FOR_PROCESSES:
        return max(1, min(cpus, concurrency // 2))
    return 1


def _cpus() -> list[int | None]:
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return [None]
    return list(allowed) if len(allowed) > 1 and "pin" not in _WITHOUT else [None]


class _Window(Generic[R, T]):
    """Rows taken in order, finished in any order, delivered in order; the shared state."""

    def __init__(
        self,
        rows: Iterable[R],
        window: int,
        deliver: Callable[[int, T], None] | None,
    ) -> None:
        self._rows = iter(rows)
        self._window = window
        self._deliver = deliver
        self._reading = threading.Lock()  # one reader: a blocked stdin read holds only this
        self._state = threading.Condition()  # everything below
        self.taken = 0  # rows read and numbered
        self._released = 0  # the last row delivered (or yielded): its place is free
        self._done = 0  # the last row finished with every row before it
        self._in_flight = 0
        self._finished: dict[int, T | None] = {}  # done, waiting for an earlier row
        self._ready: deque[tuple[int, T]] = deque()  # delivered with no callback: results()
        self._end = False  # no more rows will be taken: end of input, error or stop()
        self.error: BaseException | None = None  # the reader's, or the callback's
        self.over = threading.Event()  # set once no row is wanted and none is in flight

    # -- what the owner calls --------------------------------------------------------

    def stop(self) -> None:
        """Take no further row; the rows in flight finish and are delivered."""
        with self._state:
            self._end = True
            self._state.notify_all()
            self._check_over()

    @property
    def stopped(self) -> bool:
        return self._end

    def finished(self) -> bool:
        """Whether the run is over; if not, :attr:`over` is cleared (a wake-up, not the end)."""
        with self._state:
            if self._end and not self._in_flight:
                return True
            self.over.clear()
            return False

    def results(self) -> Iterator[tuple[int, T]]:
        """Without a ``deliver`` callback: the outcomes in row order, as they are due.

        Each one yielded frees its place in the window. Ends when the run is over.
        """
        while True:
            with self._state:
                while not self._ready and not (self._end and not self._in_flight):
                    self._state.wait(TICK)
                if not self._ready:
                    return
                number, outcome = self._ready.popleft()
                self._released = number
                self._state.notify_all()
            yield number, outcome

    # -- what workers call -----------------------------------------------------------

    def _take(self) -> tuple[int, R] | None:
        """The next row and its number, once the window has room; None when no more are wanted."""
        with self._reading:
            with self._state:
                while not self._end and self.taken - self._released >= self._window:
                    self._state.wait(TICK)
                if self._end:
                    return None
            error: BaseException | None = None
            row: R | None
            try:
                row = next(self._rows, None)
            except Exception as exc:  # a malformed row (or a bug): the owner reports it
                row, error = None, exc
            with self._state:
                if row is None or self._end:  # the end of the input, or stop() while reading
                    self.error = self.error or error
                    self._end = True
                    self._state.notify_all()
                    self._check_over()
                    return None
                self.taken += 1
                self._in_flight += 1
                return self.taken, row

    def _finish(self, number: int, outcome: T | None) -> None:
        """Row ``number`` is done (``None``: never worked); deliver what is now due."""
        with self._state:
            self._in_flight -= 1
            self._finished[number] = outcome
            self._deliver_due()
            self._state.notify_all()
            self._check_over()

    def _deliver_due(self) -> None:
        nxt = self._done
        try:
            while nxt + 1 in self._finished:
                nxt += 1
                self._done = nxt
                due = self._finished.pop(nxt)
                if self._deliver is None:  # results() yields it, and frees its place then
                    if due is not None:
                        self._ready.append((nxt, due))
                    continue
                self._released = nxt
                if due is not None:
                    self._deliver(nxt, due)
        except Exception as exc:  # the callback's (stdout closed): take no further row
            self.error = self.error or exc
            self._end = True

    def _check_over(self) -> None:
        if self._end and not self._in_flight:
            self.over.set()


class Threads(_Window[R, T]):
    """N threads in this process: each takes a row, calls ``work`` and delivers what is due.

    ``work(number, row)`` gives the row's outcome, or None when the row was not worked
    after all (a stop while it waited for ``--rate``); an exception it raises becomes
    ``on_bug(number, exc)``'s outcome, so the run never hangs on a row. ``deliver``
    is called in row order, holding the engine's lock; without it, iterate
    :meth:`results`.
    """

    def __init__(
        self,
        rows: Iterable[R],
        work: Callable[[int, R], T | None],
        concurrency: int,
        *,
        on_bug: Callable[[int, Exception], T],
        deliver: Callable[[int, T], None] | None = None,
        window: int | None = None,
        name: str = "oauthcli-send",
        cpu: int | None = -1,
    ) -> None:
        super().__init__(rows, window or WINDOW_PER_WORKER * concurrency, deliver)
        self._work_one = work
        self._on_bug = on_bug
        # Workers share one interpreter lock: on one CPU it does not bounce between them.
        # -1: the CPU this process runs on now; a worker process is told which one.
        if cpu == -1:
            cpu = choose_cpu() if concurrency > 1 else None
        self.workers = [
            threading.Thread(
                target=self._work,
                args=(cpu,),
                name=f"{name}-{n}",
                daemon=True,  # one may be blocked reading stdin when the run is stopped
            )
            for n in range(concurrency)
        ]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()

    def alive(self) -> bool:
        return any(w.is_alive() for w in self.workers)

    def _work(self, cpu: int | None) -> None:
        if cpu is not None:
            pin_thread(cpu)
        while (taken := self._take()) is not None:
            number, row = taken
            outcome: T | None = None
            try:
                outcome = self._work_one(number, row)
            except Exception as exc:  # a bug outside the row's own handling: still its outcome
                outcome = self._on_bug(number, exc)
            finally:  # whatever happened, the row leaves the window: the run never hangs on it
                self._finish(number, outcome)


class Processes(_Window[R, T]):
    """K worker processes, each given rows over its stdin and answering a line per row.

    ``command`` starts one worker; ``first(share, cpu)`` is written to each worker's
    stdin before any row (its recipe, its concurrency and the CPU to keep its threads
    on: each worker a different one), ``encode(number, row)`` is a
    row's line and ``decode(line)`` turns an answer line into ``(number, outcome)``.
    Worker ``i`` is given at most ``2 × shares[i]`` rows not yet answered: as many in
    flight and as many waiting, so that a worker finishing a row starts the next at
    once. After :meth:`stop` no further row is given; each worker sends and answers
    every row it holds, so the results stay one unbroken run of rows. A worker that
    ends with rows outstanding gives them ``lost(number, why)``.
    """

    def __init__(
        self,
        rows: Iterable[R],
        command: list[str],
        first: Callable[[int, int | None], bytes],
        shares: list[int],
        *,
        encode: Callable[[int, R], bytes],
        decode: Callable[[bytes], tuple[int, T]],
        lost: Callable[[int, str], T],
        deliver: Callable[[int, T], None] | None = None,
        before_each: Callable[[], bool] | None = None,
        env: dict[str, str] | None = None,
        fork: Callable[[IO[bytes], IO[bytes], int, int | None], None] | None = None,
    ) -> None:
        super().__init__(rows, WINDOW_PER_WORKER * sum(shares), deliver)
        self._fork = fork
        self._command = command
        self._first = first
        self._shares = shares
        self._encode = encode
        self._decode = decode
        self._lost = lost
        self._before_each = before_each
        self._env = env
        self.procs: list[subprocess.Popen[bytes] | _Forked] = []
        self._threads: list[threading.Thread] = []

    @property
    def forking(self) -> bool:
        """Whether workers are forked (no thread but this one runs, so forking is safe)."""
        return (
            self._fork is not None
            and hasattr(os, "fork")
            and threading.active_count() == 1
            and "fork" not in _WITHOUT
        )

    def start(self) -> None:
        cpus = _cpus()
        pipes: list[tuple[subprocess.Popen[bytes] | _Forked, IO[bytes], IO[bytes]]] = []
        forking = self.forking
        for n, share in enumerate(self._shares):
            cpu = cpus[n % len(cpus)]
            if forking:
                assert self._fork is not None
                pipes.append(_fork(self._fork, share, cpu, [p for _, *ends in pipes for p in ends]))
                continue
            proc = subprocess.Popen(
                self._command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=self._env,
            )
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(self._first(share, cpu))
            pipes.append((proc, proc.stdin, proc.stdout))
        # Threads only once every worker is forked: a fork copies no thread but its own.
        for n, (worker, stdin, stdout) in enumerate(pipes):
            self.procs.append(worker)
            share = self._shares[n]
            # A share waiting in the worker as well as in flight: a worker that finishes a
            # row starts the next at once, not after a round trip through this process.
            credits = threading.Semaphore(WINDOW_PER_WORKER * share)
            sent: deque[int] = deque()
            for target, args in (
                (self._feed, (stdin, credits, sent)),
                (self._read, (worker, stdout, credits, sent)),
            ):
                thread = threading.Thread(
                    target=target, args=args, name=f"oauthcli-batch-{n}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def alive(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def close(self, *, kill: bool = False) -> None:
        """Wait for the workers (they end once their stdin is closed), or kill them."""
        self.stop()
        for proc in self.procs:
            if kill and proc.poll() is None:
                proc.kill()
        for proc in self.procs:
            try:
                proc.wait(5 if not kill else 1)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def _feed(
        self,
        stdin: IO[bytes],
        credits: threading.Semaphore,
        sent: deque[int],
    ) -> None:
        try:
            stdin.flush()
            while True:
                while not credits.acquire(timeout=TICK):
                    if self._end:
                        return
                if self._before_each is not None and not self._before_each():
                    credits.release()
                    self.stop()  # a stop while waiting for --rate
                    return
                taken = self._take()
                if taken is None:
                    return
                number, row = taken
                with self._state:
                    sent.append(number)
                stdin.write(self._encode(number, row))
                stdin.flush()
        except OSError:  # the worker is gone: its reader gives its rows `lost`
            return
        finally:
            try:
                stdin.close()
            except OSError:
                pass

    def _read(
        self,
        proc: subprocess.Popen[bytes] | _Forked,
        stdout: IO[bytes],
        credits: threading.Semaphore,
        sent: deque[int],
    ) -> None:
        with stdout:
            for line in stdout:
                number, outcome = self._decode(line)
                with self._state:
                    if sent and sent[0] == number:
                        sent.popleft()
                    elif number in sent:
                        sent.remove(number)
                credits.release()
                self._finish(number, outcome)
        code = proc.wait()
        with self._state:
            left = list(sent)
            sent.clear()
        for number in left:  # the worker ended without answering these
            self._finish(number, self._lost(number, _ended(code)))
        self.stop()  # one worker gone: the others finish what they hold


def _ended(code: int) -> str:
    """How a worker ended, in words (a negative code is the signal that killed it)."""
    if code < 0:
        try:
            return f"the batch worker was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"the batch worker was killed by signal {-code}"
    return f"the batch worker exited {code}"


class _Forked:
    """A forked worker, waited for as a :class:`subprocess.Popen` is."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self._lock = threading.Lock()  # its reader and close() may both wait for it

    def poll(self) -> int | None:
        with self._lock:
            if self.returncode is None:
                try:
                    pid, status = os.waitpid(self.pid, os.WNOHANG)
                except ChildProcessError:  # reaped by someone else (SIGCHLD ignored)
                    self.returncode = 0
                    return 0
                if pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
            return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"batch worker {self.pid}", timeout or 0)
            time.sleep(0.01)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _fork(
    main: Callable[[IO[bytes], IO[bytes], int, int | None], None],
    share: int,
    cpu: int | None,
    siblings: list[IO[bytes]],
) -> tuple[_Forked, IO[bytes], IO[bytes]]:
    """Fork a worker running ``main(rows_in, answers_out, share, cpu)``; its pipes' other ends."""
    rows_r, rows_w = os.pipe()
    answers_r, answers_w = os.pipe()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()  # or the child would write what is buffered a second time
        except (OSError, ValueError):
            pass
    pid = os.fork()
    if pid == 0:  # the worker: it never returns, and runs no exit handler of the parent
        code = 1
        try:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, signal.SIG_IGN)  # the parent's to handle
            os.close(rows_w)
            os.close(answers_r)
            for other in siblings:  # or an earlier worker would never see its input end
                os.close(other.fileno())
            with os.fdopen(rows_r, "rb") as rows_in, os.fdopen(answers_w, "wb") as out:
                main(rows_in, out, share, cpu)
            code = 0
        except BrokenPipeError:
            code = 141
        except BaseException as exc:  # noqa: BLE001 - one line, never a traceback
            try:
                line = f"oauthcli batch worker: {type(exc).__name__}: {scrub(str(exc))}\n"
                os.write(2, line.encode())
            except OSError:
                pass
        finally:
            os._exit(code)
    os.close(rows_r)
    os.close(answers_w)
    return _Forked(pid), os.fdopen(rows_w, "wb"), os.fdopen(answers_r, "rb")
