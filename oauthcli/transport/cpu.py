"""Keeping a batch's worker threads on one CPU.

CPython runs one thread's Python code at a time (the interpreter lock). When
``send --each`` workers are spread over several CPUs, the lock moves between
CPUs at every system call (each send, receive, poll and timeout change lets
another worker take it), and every move is a cross-CPU wake-up with cold
caches. Against a fast server that costs more than the second CPU gives back.
Measured on 2 cores against a loopback server, ``--concurrency 8`` (see
BENCHMARKS.md for how): 3,000 rows over plain HTTP took 2.2-2.3 s spread and
1.35-1.5 s on one CPU; 1,000 rows over TLS 0.86-0.97 s and 0.56-0.71 s; and
no difference against a server that answers in 20 ms, where workers wait on
the network, not on each other.

Measured again for issue 12 (``bench/audit.py``, BENCHMARKS.md "Mechanisms
audit"): 1,000 rows at ``--concurrency 8`` against the fast loopback API took
1.23-1.46× as long unpinned, and 25,600 rows at 128 in flight against an API
answering in 50 ms 1.17× as long. The one case it loses: when the CPU a batch
starts on is busy with other work (a load average of 24 on 2 cores), the pinned
workers cannot move. Worker processes (:mod:`oauthcli.transport.batch`) are each
given a CPU of their own.

The CPU is the one the process is running on when the batch starts, so that
parallel jobs stay where the scheduler spread them. Linux only: elsewhere, or
when the process may use only one CPU anyway, nothing is changed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

#: The CPUs the process could use before any worker was pinned (set by :func:`choose`).
_allowed: set[int] | None = None


def choose() -> int | None:
    """The CPU to keep the workers on, or None to leave them where the scheduler puts them."""
    if "pin" in os.environ.get("OAUTHCLI_BENCH_WITHOUT", "").split(","):
        return None
    getaffinity = getattr(os, "sched_getaffinity", None)
    if getaffinity is None or not hasattr(os, "sched_setaffinity"):
        return None
    try:
        allowed = getaffinity(0)
    except OSError:
        return None
    if len(allowed) < 2:
        return None
    global _allowed
    _allowed = set(allowed)
    cpu = current_cpu()
    return cpu if cpu in allowed else min(allowed)


def current_cpu() -> int | None:
    """The CPU the calling thread last ran on (``processor``, field 39 of its stat file)."""
    try:
        with open("/proc/thread-self/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # Field 2 is "(comm)" and may hold spaces or parentheses: count from the last ")".
    fields = stat.rpartition(b")")[2].split()
    try:
        return int(fields[36])
    except (IndexError, ValueError):
        return None


def pin_thread(cpu: int) -> None:
    """Keep the calling thread on ``cpu`` (on Linux, pid 0 means this thread, not the process)."""
    try:
        os.sched_setaffinity(0, {cpu})
    except (OSError, AttributeError):
        pass  # a sandbox may refuse; the batch works the same, only slower


@contextmanager
def unpinned() -> Iterator[None]:
    """Let the calling thread use every CPU again for a while.

    For starting another program from a worker (a browser for the
    authorization_code grant): a child inherits its thread's affinity.
    """
    if _allowed is None:
        yield
        return
    try:
        pinned = os.sched_getaffinity(0)
        os.sched_setaffinity(0, _allowed)
    except (OSError, AttributeError):
        yield
        return
    try:
        yield
    finally:
        try:
            os.sched_setaffinity(0, pinned)
        except OSError:
            pass
