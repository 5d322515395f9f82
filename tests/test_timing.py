"""tests/timing.py: a slow run is judged against what starting costs now, or skipped."""

from __future__ import annotations

import pytest

from tests import timing
from tests.cliproc import Done


def run_of(seconds: float) -> Done:
    return Done(("send", "x"), 7, b"", "error: ...\n", seconds)


def test_a_quick_run_passes_without_measuring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timing, "start_cost", lambda command: pytest.fail("measured"))
    timing.assert_cut_off(run_of(3.9), 1)


def test_a_slow_run_on_a_loaded_machine_is_judged_against_the_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timing, "start_cost", lambda command: 2.5)
    timing.assert_cut_off(run_of(5.0), 1)
    with pytest.raises(AssertionError, match="9.0 s where 1 s were allowed"):
        timing.assert_cut_off(run_of(9.0), 1)


def test_a_machine_too_slow_to_start_skips_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timing, "start_cost", lambda command: 6.0)
    with pytest.raises(pytest.skip.Exception, match="6.0 s to start and fail `oauthcli send`"):
        timing.assert_cut_off(run_of(30.0), 1)


def test_the_start_cost_is_what_a_refused_connection_costs() -> None:
    for command in ("send", "get-token"):
        assert 0 < timing.start_cost(command) < 30
