"""Keeping a batch's workers on one CPU: which CPU, and that failures change nothing."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from oauthcli.transport import cpu
from oauthcli.transport.batch import Threads


def _affinity(monkeypatch: pytest.MonkeyPatch, allowed: set[int], current: int | None) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: allowed, raising=False)
    monkeypatch.setattr(os, "sched_setaffinity", lambda pid, cpus: None, raising=False)
    monkeypatch.setattr(cpu, "current_cpu", lambda: current)


@pytest.mark.parametrize(
    "allowed, current, expected",
    [
        ({0, 1, 2, 3}, 2, 2),  # where the scheduler put us
        ({0, 1}, None, 0),  # not known: the first allowed one
        ({4, 5}, 1, 4),  # taskset moved us since: stay within what is allowed
        ({3}, 3, None),  # one CPU: nothing to keep together
    ],
)
def test_choose(
    monkeypatch: pytest.MonkeyPatch, allowed: set[int], current: int | None, expected: int | None
) -> None:
    _affinity(monkeypatch, allowed, current)
    assert cpu.choose() == expected


def test_choose_without_affinity_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert cpu.choose() is None


def test_current_cpu_reads_past_a_command_name_with_parentheses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rest = " ".join(["S"] + [str(n) for n in range(4, 39)] + ["7", "0", "0"])
    stat = tmp_path / "stat"
    stat.write_bytes(f"4242 (odd ) name) {rest}\n".encode())
    real_open = open
    monkeypatch.setattr(
        "builtins.open",
        lambda path, *a, **k: real_open(
            stat if path == "/proc/thread-self/stat" else path, *a, **k
        ),
    )
    assert cpu.current_cpu() == 7


@pytest.mark.skipif(not Path("/proc/thread-self/stat").exists(), reason="Linux /proc")
def test_current_cpu_is_one_we_may_run_on() -> None:
    assert cpu.current_cpu() in os.sched_getaffinity(0)


def test_pin_thread_ignores_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(pid: int, cpus: set[int]) -> None:
        raise PermissionError("not here")

    monkeypatch.setattr(os, "sched_setaffinity", refuse, raising=False)
    cpu.pin_thread(0)


@pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2,
    reason="needs Linux and two CPUs",
)
@pytest.mark.parametrize("concurrency", [3, 1])
def test_a_batchs_workers_run_on_one_cpu(concurrency: int) -> None:
    """With more than one worker they share one CPU; one worker is left where it is."""
    before = os.sched_getaffinity(0)
    seen: dict[str, set[int]] = {}
    lock = threading.Lock()

    def work(number: int, row: int) -> int:
        with lock:
            seen[threading.current_thread().name] = os.sched_getaffinity(0)
        return row

    pool = Threads(range(1, 41), work, concurrency, on_bug=lambda n, exc: -1)
    pool.start()
    assert [n for _, n in pool.results()] == list(range(1, 41))
    assert os.sched_getaffinity(0) == before  # the caller's thread is not pinned
    affinities = list(seen.values())
    if concurrency == 1:
        assert affinities == [before]
    else:
        assert len(affinities[0]) == 1 and affinities[0] <= before
        assert all(a == affinities[0] for a in affinities)


def test_unpinned_gives_the_thread_every_cpu_back_for_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    affinity = {"now": {1}}
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(affinity["now"]), raising=False)
    monkeypatch.setattr(
        os, "sched_setaffinity", lambda pid, cpus: affinity.update(now=set(cpus)), raising=False
    )
    monkeypatch.setattr(cpu, "_allowed", {0, 1, 2})
    with cpu.unpinned():
        assert affinity["now"] == {0, 1, 2}  # what a browser started here inherits
    assert affinity["now"] == {1}


def test_unpinned_does_nothing_when_nothing_was_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(pid: int, cpus: set[int]) -> None:
        raise AssertionError("affinity changed")

    monkeypatch.setattr(os, "sched_setaffinity", refuse, raising=False)
    monkeypatch.setattr(cpu, "_allowed", None)
    with cpu.unpinned():
        pass
