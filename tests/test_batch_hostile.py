"""``send --each`` under hostile rows, absurd rates and SIGTERM: every row read gets a result."""

# ruff: noqa: F811 - tests take the imported `api` fixture as a parameter

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from tests.test_batch import Api, api, results, rows_file  # noqa: F401 - api: the fixture

SENT = "/api/items"


def sent(api: Api) -> int:
    return sum(1 for r in api.server.requests if r.path.startswith(SENT))


def test_sigterm_stops_like_ctrl_c_with_a_result_for_every_request_sent(
    api: Api, tmp_path: Path
) -> None:
    api.delays = {i: 0.3 for i in range(1, 1001)}
    path = rows_file(tmp_path, range(1, 1001))
    with api.start("--each", str(path), "--concurrency", "8") as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = [proc.stdout.readline() for _ in range(10)]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.stdout.read(), proc.stderr.read()
        assert proc.wait(timeout=30) == 143, err
    got = results("".join(first) + out)
    assert len(got) == sent(api), (len(got), sent(api))
    assert [x["row"] for x in got] == list(range(1, len(got) + 1))
    assert all(x["exit_code"] == 0 for x in got)
    assert f"{len(got)} row(s) in" in err  # the summary
    assert f"terminated after {len(got)} of 1000 rows sent" in err
    assert "Traceback" not in err and len(got) < 1000


def test_a_second_sigterm_ends_the_run_at_once(api: Api, tmp_path: Path) -> None:
    api.delays = {i: 5 for i in range(1, 101)}
    path = rows_file(tmp_path, range(1, 101))
    with api.start("--each", str(path), "--concurrency", "2") as proc:
        deadline = time.monotonic() + 5
        while sent(api) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=3) == -signal.SIGTERM


@pytest.mark.parametrize("rate", ["1e-320", "1e-300/s", "1/1e6h", "inf", "nan", "1e999", "-0"])
def test_an_absurd_rate_is_refused_before_any_row(api: Api, tmp_path: Path, rate: str) -> None:
    path = rows_file(tmp_path, range(1, 4))
    r = api.send("--each", str(path), "--rate", rate)
    assert r.code == 2, r.both
    assert "--rate" in r.err and "Traceback" not in r.both
    assert sent(api) == 0 and r.out == ""


def test_deeply_nested_or_huge_number_jsonl_rows_are_usage_errors(api: Api, tmp_path: Path) -> None:
    for bad, reason in (
        ('{"id": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
        ('{"id": 1' + "0" * 5000 + "}", "a number has more than 4300 digits"),
    ):
        path = tmp_path / "rows.jsonl"
        path.write_text('{"id": 1}\n' + bad + "\n")
        r = api.send("--each", str(path))
        assert r.code == 2, r.both
        assert f"rows.jsonl:2: cannot be read: {reason}" in r.err
        assert [x["row"] for x in results(r.out)] == [1]
        assert "internal error" not in r.both and "Traceback" not in r.both


def test_csv_fields_up_to_16_mib_are_read_and_longer_ones_named(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("id,note\n1," + "x" * (200 << 10) + "\n")
    r = api.send("--each", str(path))
    assert r.code == 0, r.err
    path.write_text("id,note\n1,short\n2," + "x" * ((16 << 20) + 1) + "\n")
    r = api.send("--each", str(path))
    assert r.code == 2, r.both
    assert "rows.csv:3: a field is longer than 16 MiB" in r.err
    assert [x["row"] for x in results(r.out)] == [1]


def test_a_bug_outside_the_send_still_gives_the_row_a_result(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from oauthcli.request.rows import RateLimiter

    def broken(self: RateLimiter, stop: object = None) -> bool:
        raise OverflowError("timeout value is too large")

    monkeypatch.setattr(RateLimiter, "wait", broken)
    r = api.send("--each", str(rows_file(tmp_path, range(1, 4))))
    got = results(r.out)
    assert [x["row"] for x in got] == [1, 2, 3]
    assert all(x["exit_code"] == 1 and "OverflowError" in x["error"] for x in got)
    assert r.code == 1 and "3 internal error" in r.err
    assert json.dumps(got)  # nothing dropped, nothing unprintable


def test_a_gzip_bomb_in_every_row_stays_bounded_with_worker_processes(tmp_path: Path) -> None:
    """At --concurrency 64 the rows go through worker processes; the parent holds a row
    waiting for an earlier one as its JSON line (a NUL is six characters there)."""
    from tests.test_attack_careless import gzip_bomb_each

    code, peak, err = gzip_bomb_each(tmp_path, rows=128, concurrency=64, timeout=120)
    assert code == 4 and "128 4xx" in err, err[-500:]
    assert peak <= 600, f"peak RSS {peak:.0f} MiB"
