"""``send --each``: streamed rows, row order, one token, shared 401 renewal, Ctrl-C."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from oauthcli.cli.batch import summary
from oauthcli.errors import UsageError
from oauthcli.request.rows import Rows, parse_rate
from oauthcli.transport.batch import Threads
from tests.clirun import Result, run
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded
from tests.terminal import drain

OAUTHCLI = Path(sys.executable).parent / "oauthcli"
JSON = {"Content-Type": "application/json"}


@dataclass
class Api:
    """A token endpoint and ``/api/items?id=N`` that records which token each call carried."""

    server: LoopbackServer
    root: Path
    expires_in: int = 300
    issued: list[str] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)
    used: list[tuple[int, str]] = field(default_factory=list)  # (id, token)
    delays: dict[int, float] = field(default_factory=dict)
    gate: threading.Event | None = None  # calls wait for it when set
    lock: threading.Lock = field(default_factory=threading.Lock)

    def token(self, rec: Recorded) -> Any:
        with self.lock:
            value = f"tok-{len(self.issued) + 1}"
            self.issued.append(value)
        body = {"access_token": value, "token_type": "Bearer", "expires_in": self.expires_in}
        return 200, JSON, json.dumps(body).encode()

    def items(self, rec: Recorded) -> Any:
        number = int(parse_qs(urlsplit(rec.path).query)["id"][0])
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.delays.get(number, 0))
        token = rec.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in self.issued or token in self.revoked:
            return 401, {**JSON, "WWW-Authenticate": 'Bearer error="invalid_token"'}, b"{}"
        with self.lock:
            self.used.append((number, token))
        if number < 0:
            return 404, JSON, b'{"message": "no such item"}'
        return 200, JSON, json.dumps({"id": number}).encode()

    def send(self, *args: str, input: str | None = None) -> Result:
        return run("-r", str(self.root), "send", "items", *args, input=input)

    def start(self, *args: str, stdin: Any = subprocess.DEVNULL) -> subprocess.Popen[str]:
        """``oauthcli send items ARGS`` as a process of its own (for signals and streaming)."""
        return subprocess.Popen(
            [str(OAUTHCLI), "-r", str(self.root), "send", "items", *args],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def token_requests(self) -> int:
        return sum(1 for r in self.server.requests if r.path == "/token")


@pytest.fixture
def api(loopback: LoopbackServer, tmp_path: Path) -> Api:
    root = make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": f"""\
                grant_type: client_credentials
                token_url: {loopback.base}/token
                client_id: app
                client_secret: batch-secret
                token_leeway: 60
                """,
            "messages/items.yaml": f"""\
                endpoint: {loopback.base}/api/items
                auth: {{type: oauth2, profile: acme}}
                retry: {{attempts: 1}}
                methods: {{get: {{http_method: GET, query: {{id: "${{id}}"}}}}}}
                """,
        },
    )
    state = Api(loopback, root)
    loopback.routes["/token"] = state.token
    loopback.routes["/api/items"] = state.items
    return state


def rows_file(tmp_path: Path, ids: Iterable[int], name: str = "rows.csv") -> Path:
    path = tmp_path / name
    path.write_text("id\n" + "".join(f"{i}\n" for i in ids))
    return path


def results(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


# -- order, one token, one pool -------------------------------------------------


def test_results_come_in_row_order_when_calls_finish_out_of_order(api: Api, tmp_path: Path) -> None:
    api.delays = {1: 0.4, 2: 0.2}
    r = api.send("--each", str(rows_file(tmp_path, range(1, 9))), "--concurrency", "4")
    assert r.code == 0, r.err
    got = results(r.out)
    assert [x["row"] for x in got] == list(range(1, 9))
    assert [x["body"]["id"] for x in got] == list(range(1, 9))
    assert [n for n, _ in api.used][:2] != [1, 2]  # they really finished out of order
    assert "8 row(s)" in r.err and "8 ok" in r.err


def test_many_rows_share_one_token_and_a_few_connections(api: Api, tmp_path: Path) -> None:
    r = api.send("--each", str(rows_file(tmp_path, range(200))), "--concurrency", "8")
    assert r.code == 0, r.err
    assert len(results(r.out)) == 200
    assert api.token_requests() == 1
    calls = [c for c in api.server.requests if c.path.startswith("/api/items")]
    assert len({c.client for c in calls}) <= 8  # pooled: connections are reused


def test_exit_code_is_the_worst_row_and_the_first_failure_is_explained(
    api: Api, tmp_path: Path
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"id": 1}\n{"id": -5}\n{"id": 2}\n{"nope": 1}\n')
    r = api.send("--each", str(path))
    assert r.code == 4  # the 404; the missing variable (3) is lower
    got = results(r.out)
    assert [x["exit_code"] for x in got] == [0, 4, 0, 3]
    assert got[1]["error"].endswith("no such item")
    assert "row 2: 404 Not Found" in r.err
    assert "1 registry error" in r.err and "1 4xx" in r.err


# -- above 32 in flight: worker processes ----------------------------------------------


def test_above_32_in_flight_worker_processes_keep_the_order_the_token_and_the_exit_code(
    api: Api, tmp_path: Path
) -> None:
    """--concurrency 64 spreads the rows over worker processes (on 2+ CPUs): same output."""
    ids = [*range(1, 150), -7, *range(150, 300)]
    r = api.send("--each", str(rows_file(tmp_path, ids)), "--concurrency", "64")
    assert r.code == 4, r.err
    got = results(r.out)
    assert [x["row"] for x in got] == list(range(1, 301))
    assert [x["body"]["id"] for x in got if x["exit_code"] == 0] == [i for i in ids if i > 0]
    assert got[149]["exit_code"] == 4 and got[149]["error"].endswith("no such item")
    assert "row 150: 404 Not Found" in r.err and "299 ok, 1 4xx" in r.err
    assert api.token_requests() == 1  # one token for every worker process
    assert all(x["headers"] is not None for x in got) and "Traceback" not in r.err


def test_worker_processes_blank_the_token_they_fetched_in_what_they_print(
    api: Api, tmp_path: Path
) -> None:
    """The token is obtained in a worker process: its lines are scrubbed there."""

    def echo(rec: Recorded) -> Any:
        return 200, JSON, json.dumps({"auth": rec.headers.get("authorization", "")}).encode()

    api.server.routes["/api/items"] = echo
    r = api.send("--each", str(rows_file(tmp_path, range(1, 101))), "--concurrency", "40")
    assert r.code == 0, r.err
    assert api.issued and not any(t in r.out + r.err for t in api.issued)
    assert {x["body"]["auth"] for x in results(r.out)} == {"Bearer ****"}


def test_a_file_of_600_rows_goes_through_forked_workers_with_the_same_output(
    api: Api, tmp_path: Path
) -> None:
    """As a command of its own (no other thread), 500+ rows at 2+ in flight are forked."""
    ids = [*range(1, 300), -3, *range(300, 600)]
    with api.start("--each", str(rows_file(tmp_path, ids)), "--no-fail") as proc:
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    got = results(out)
    assert [x["row"] for x in got] == list(range(1, 601))
    assert [x["exit_code"] for x in got] == [0] * 600  # --no-fail
    assert got[299]["status"] == 404 and "row 300: 404 Not Found" in err
    assert api.token_requests() == 1 and "Traceback" not in err


def test_worker_processes_keep_to_the_rate(api: Api, tmp_path: Path) -> None:
    started = time.monotonic()
    r = api.send(
        "--each", str(rows_file(tmp_path, range(1, 21))), "--concurrency", "64", "--rate", "20/s"
    )
    took = time.monotonic() - started
    assert r.code == 0, r.err
    assert [x["row"] for x in results(r.out)] == list(range(1, 21))
    assert took >= 19 / 20 - 0.05  # 20 starts, 1/20 s apart


def test_sigterm_stops_worker_processes_cleanly(api: Api, tmp_path: Path) -> None:
    api.delays = {i: 0.05 for i in range(1, 5001)}
    path = rows_file(tmp_path, range(1, 5001))
    with api.start("--each", str(path), "--concurrency", "64") as proc:
        assert proc.stdout is not None and proc.stderr is not None
        lines = [proc.stdout.readline() for _ in range(100)]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.wait(timeout=30)
    assert proc.returncode == 143, err
    got = results("".join(lines) + out)
    assert [x["row"] for x in got] == list(range(1, len(got) + 1))
    assert all(x["exit_code"] == 0 for x in got)
    assert f"terminated after {len(got)} of 5000 rows sent" in err
    assert len(got) < 5000 and "Traceback" not in err
    assert len(api.used) <= len(got) + 1  # nothing started after the signal


# -- tokens during a run ------------------------------------------------------------


def test_a_token_expiring_mid_run_is_renewed_once_for_all_workers(api: Api, tmp_path: Path) -> None:
    # A 2-second token is due after 1.5 s: a quarter of its lifetime before expiry (SPEC §4).
    api.expires_in = 2
    path = rows_file(tmp_path, range(1, 31))
    r = api.send("--each", str(path), "--concurrency", "4", "--rate", "12/s")
    assert r.code == 0, r.err
    used = [token for _, token in sorted(api.used)]
    assert len(set(used)) >= 2, "the run outlived its first token"
    assert api.token_requests() == len(set(used)), "one renewal per expiry, not one per worker"
    order = [api.issued.index(t) for t in used]
    assert order == sorted(order), "once renewed, the old token is not used again"


@pytest.mark.parametrize(
    "status, body",
    [
        (401, b'{"error": "invalid_client", "error_description": "bad secret"}'),
        (503, b'{"error": "temporarily_unavailable"}'),
    ],
)
def test_a_failed_token_request_is_made_once_not_once_per_row(
    api: Api, tmp_path: Path, status: int, body: bytes
) -> None:
    api.server.reply("/token", status, body, Content_Type="application/json")
    r = api.send("--each", str(rows_file(tmp_path, range(1, 41))), "--concurrency", "4")
    assert r.code == 6
    got = results(r.out)
    assert [x["exit_code"] for x in got] == [6] * 40
    assert all(x["error"] == got[0]["error"] for x in got)
    assert api.token_requests() == 1  # a 503 would be asked again after a few seconds
    assert "40 token error" in r.err and api.used == []


def test_a_refused_token_is_renewed_once_and_every_worker_resends(api: Api, tmp_path: Path) -> None:
    assert api.send("-V", "id=1").code == 0  # caches tok-1
    api.revoked.add("tok-1")
    api.gate = threading.Event()
    threading.Timer(0.3, api.gate.set).start()  # let all four workers hit the 401 together
    r = api.send("--each", str(rows_file(tmp_path, range(1, 21))), "--concurrency", "4")
    assert r.code == 0, r.err
    assert api.token_requests() == 2
    assert {token for _, token in api.used[1:]} == {"tok-2"}
    assert all(x["status"] == 200 for x in results(r.out))


# -- streaming ----------------------------------------------------------------------


def test_rows_from_stdin_are_sent_as_they_arrive(api: Api) -> None:
    with api.start("--each", "-", stdin=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write("id\n1\n")
            proc.stdin.flush()
            first = json.loads(proc.stdout.readline())  # before the input is complete
            assert (first["row"], first["status"]) == (1, 200)
            proc.stdin.write("2\n")
            proc.stdin.close()
            rest = proc.stdout.read()
            assert proc.wait(timeout=30) == 0
        finally:
            proc.kill()
    assert [x["row"] for x in results(rest)] == [2]


def test_rows_are_read_no_further_than_the_window(tmp_path: Path) -> None:
    """The engine reads a row only while fewer than 2 × N are read and not delivered."""
    gate = threading.Event()
    started: list[int] = []
    rows = Rows(str(rows_file(tmp_path, range(1, 1001))))
    assert rows.total == 1000

    def work(number: int, row: dict[str, str]) -> int:
        started.append(number)
        gate.wait(10)
        return int(row["id"])

    delivered: list[int] = []
    pool = Threads(
        rows, work, 2, on_bug=lambda n, exc: -1, deliver=lambda n, v: delivered.append(v)
    )
    pool.start()
    deadline = time.monotonic() + 5
    while len(started) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    assert rows.read <= 2 * 2 + 1  # the window, plus the row waiting for a place in it
    gate.set()
    assert pool.over.wait(30) and pool.finished()
    rows.close()
    assert rows.read == 1000 and delivered == list(range(1, 1001))


def test_the_engine_yields_in_row_order_and_frees_the_window_as_it_yields() -> None:
    """Without a callback (Registry.send_each), a slow consumer holds the reading back."""
    read: list[int] = []

    def rows() -> Any:
        for n in range(1, 101):
            read.append(n)
            yield n

    pool = Threads(rows(), lambda number, row: row * 10, 4, on_bug=lambda n, exc: -1, window=8)
    pool.start()
    out = pool.results()
    first = next(out)
    time.sleep(0.2)
    assert first == (1, 10) and len(read) <= 8 + 2
    assert [v for _, v in out] == [n * 10 for n in range(2, 101)]


def test_the_engine_turns_a_bug_into_that_rows_outcome_and_stops_on_a_bad_row() -> None:
    def rows() -> Any:
        yield from (1, 2, 3)
        raise UsageError("rows.csv:5: more values than columns")

    def work(number: int, row: int) -> int:
        if row == 2:
            raise RuntimeError("boom")
        return row

    pool = Threads(rows(), work, 3, on_bug=lambda n, exc: -n)
    pool.start()
    assert list(pool.results()) == [(1, 1), (2, -2), (3, 3)]
    assert isinstance(pool.error, UsageError)


def test_a_stopped_engine_takes_no_further_row() -> None:
    gate = threading.Event()
    pool = Threads(range(1, 1001), lambda n, r: gate.wait(10) and r, 4, on_bug=lambda n, e: -1)
    pool.start()
    time.sleep(0.1)
    pool.stop()
    gate.set()
    got = [n for n, _ in pool.results()]
    assert 1 <= len(got) <= 8 and got == list(range(1, len(got) + 1))


# -- bad input, dry run, Ctrl-C, progress --------------------------------------------


def test_a_malformed_row_stops_the_run_after_the_rows_before_it(api: Api, tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('\n{"id": 1}\n{"id": 2}\n[3]\n{"id": 4}\n')
    r = api.send("--each", str(path))
    assert r.code == 2
    assert "rows.jsonl:4: expected a JSON object per line" in r.err
    assert [x["row"] for x in results(r.out)] == [1, 2]
    csv = tmp_path / "rows.csv"
    csv.write_text("id\n1\n2,3\n")
    r = api.send("--each", str(csv))
    assert r.code == 2 and "rows.csv:3: more values than columns" in r.err


def test_a_registry_error_no_row_can_fix_stops_the_run_before_any_row(
    api: Api, tmp_path: Path
) -> None:
    """A message whose profile is missing fails the same way for every row: said once."""
    items = api.root / "messages" / "items.yaml"
    items.write_text(items.read_text().replace("profile: acme", "profile: nobody"))
    r = api.send("--each", str(rows_file(tmp_path, range(1, 4))))
    assert r.code == 3
    assert r.out == ""
    assert "items.yaml:2: auth.profile: no profile named 'nobody'" in r.err
    assert api.server.requests == []


def test_a_bug_while_building_a_result_is_that_rows_error_not_a_hang(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import oauthcli.present.output

    real = oauthcli.present.output.result_object

    def flaky(result: Any) -> Any:
        if result.url.endswith("id=3"):
            raise RuntimeError("cannot show row 3")
        return real(result)

    monkeypatch.setattr(oauthcli.present.output, "result_object", flaky)
    r = api.send("--each", str(rows_file(tmp_path, range(1, 7))), "--concurrency", "2")
    assert r.code == 1
    got = results(r.out)
    assert [x["row"] for x in got] == [1, 2, 3, 4, 5, 6]
    assert got[2]["error"] == "internal error: RuntimeError: cannot show row 3"
    assert [x["exit_code"] for x in got] == [0, 0, 1, 0, 0, 0]


def test_answers_that_are_hard_to_show_still_give_one_result_each(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    """A body nested deeper than Python recurses, a charset that cannot replace: no hang."""
    deep = b"[" * 5000 + b"]" * 5000
    loopback.reply("/api/deep", 200, deep, Content_Type="application/json")
    loopback.reply("/api/idna", 200, b"caf\xc3\xa9", Content_Type="text/plain; charset=idna")
    root = make_registry(
        tmp_path / "reg",
        {
            "messages/odd.yaml": f'endpoint: {loopback.base}/api\nmethods: {{get: {{path: "/${{kind}}"}}}}\n'
        },
    )
    path = tmp_path / "rows.csv"
    path.write_text("kind\ndeep\nidna\ndeep\nidna\n")
    r = run("-r", str(root), "send", "odd", "--each", str(path), "--concurrency", "2")
    assert r.code == 0, r.err
    got = results(r.out)
    assert [x["row"] for x in got] == [1, 2, 3, 4]
    assert got[0]["body"] == deep.decode() and got[1]["body"] == "café"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_stops_the_run_with_one_line(api: Api, tmp_path: Path) -> None:
    path = rows_file(tmp_path, range(1, 2001))
    with open("/dev/full", "w") as full:
        proc = subprocess.run(
            [str(OAUTHCLI), "-r", str(api.root), "send", "items", "--each", str(path)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    assert proc.stderr == "error: cannot write to standard output: No space left on device\n"
    assert len(api.used) < 2000  # no more rows were read once the output failed


def test_dry_run_prints_each_row_and_sends_nothing(api: Api, tmp_path: Path) -> None:
    r = api.send("--each", str(rows_file(tmp_path, [7, 8])), "--dry-run")
    assert r.code == 0, r.err
    assert "# row 1" in r.out and "id=7" in r.out and "# row 2" in r.out and "id=8" in r.out
    assert api.server.requests == []
    r = api.send("--each", str(rows_file(tmp_path, [7, 8])), "--dry-run", "--json")
    got = results(r.out)
    assert [(x["row"], x["url"].rsplit("=", 1)[1]) for x in got] == [(1, "7"), (2, "8")]
    assert all(x["dry_run"] and x["headers"]["Authorization"] == "Bearer ****" for x in got)
    assert api.server.requests == []


def test_ctrl_c_stops_cleanly_and_says_how_many_rows_were_sent(api: Api, tmp_path: Path) -> None:
    api.delays = {i: 0.05 for i in range(1, 2001)}
    path = rows_file(tmp_path, range(1, 2001))
    with api.start("--each", str(path)) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        lines = [proc.stdout.readline() for _ in range(5)]
        proc.send_signal(signal.SIGINT)
        out, err = proc.stdout.read(), proc.stderr.read()  # not communicate(): lines are buffered
        proc.wait(timeout=30)
    assert proc.returncode == 130, err
    got = results("".join(lines) + out)
    assert [x["row"] for x in got] == list(range(1, len(got) + 1))
    assert f"interrupted after {len(got)} of 2000 rows sent" in err
    assert len(got) < 2000 and "Traceback" not in err
    sent = [n for n, _ in api.used]
    assert len(sent) <= len(got) + 1  # nothing started after the interrupt but in-flight rows


@pytest.mark.parametrize("delay", [0.0, 0.01, 0.03, 0.07, 0.15, 0.3])
def test_a_signal_at_any_moment_ends_the_run(api: Api, tmp_path: Path, delay: float) -> None:
    """The signal handler takes no lock: one that set an Event while the main thread held
    that Event's lock (every tick of the watching loop does) hung the run for good."""
    path = rows_file(tmp_path, range(1, 3001))
    with api.start("--each", str(path), "--concurrency", "8") as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=20)  # reading on: a full pipe holds no one up
        except subprocess.TimeoutExpired:
            proc.kill()
            pytest.fail(f"the run did not end within 20 s of SIGTERM (after {delay} s)")
    assert proc.returncode in (0, 143), err  # 0: the rows were all sent before the signal came
    assert "Traceback" not in err


def test_ctrl_c_while_rows_wait_for_their_rate_turn_sends_no_more(api: Api, tmp_path: Path) -> None:
    path = rows_file(tmp_path, range(1, 101))
    with api.start("--each", str(path), "--rate", "6/m", "--concurrency", "4") as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()  # row 1 went at once; rows 2-4 wait 10, 20 and 30 s
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        out, err = proc.stdout.read(), proc.stderr.read()
        assert proc.wait(timeout=30) == 130
        took = time.monotonic() - started
    # Generous for a loaded runner, and still well short of the next row's 10 s turn.
    assert took < 6, "rows waiting for their turn should not hold the exit"
    assert results(first + out) == results(first) and len(api.used) == 1
    assert "interrupted after 1 of 100 rows sent" in err


def test_ctrl_c_while_waiting_for_stdin(api: Api) -> None:
    with api.start("--each", "-", stdin=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        proc.stdin.write("id\n1\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["row"] == 1
        proc.send_signal(signal.SIGINT)  # the input is still open: more rows could come
        err = proc.stderr.read()
        assert proc.wait(timeout=30) == 130
        proc.stdin.close()
    assert "interrupted after 1 of 1 rows sent (more may have followed on stdin)" in err


def test_progress_bar_on_a_terminal(api: Api, tmp_path: Path) -> None:
    path = rows_file(tmp_path, range(1, 41))
    main, child = pty.openpty()
    try:
        with subprocess.Popen(
            [str(OAUTHCLI), "-r", str(api.root), "send", "items", "--each", str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=child,
            env={**os.environ, "COLUMNS": "120"},
        ) as proc:
            os.close(child)
            assert proc.stdout is not None
            screen = drain(main)  # read the terminal first: the bar's redraws would fill it
            out = proc.stdout.read().decode()
            assert proc.wait(timeout=30) == 0
    finally:
        os.close(main)
    err = screen.decode()
    assert len(out.splitlines()) == 40
    assert "40 row(s) in" in err and "40 ok" in err
    assert "rows/s" in err and "/40" in err


# -- small parts ----------------------------------------------------------------------


def test_rates_and_summary() -> None:
    assert parse_rate("10") == parse_rate("10/s") == 10
    assert parse_rate("600/m") == 10 and parse_rate("3600/h") == 1
    for bad in ("fast", "0/s", "-1", "5/day"):
        with pytest.raises(UsageError):
            parse_rate(bad)
    from collections import Counter

    assert summary(Counter({0: 3, 4: 1}), 2.0) == "4 row(s) in 2.0 s (2/s): 3 ok, 1 4xx"
    assert summary(Counter(), 0.0) == "0 row(s) in 0.0 s: nothing to do"


def test_row_count_for_progress(tmp_path: Path) -> None:
    jsonl = tmp_path / "r.jsonl"
    jsonl.write_text('{"a": 1}\n\n{"a": 2}\n')
    rows = Rows(str(jsonl))
    assert rows.total == 2
    rows.close()
    csv = tmp_path / "r.csv"
    csv.write_text('a,b\n1,"x\ny"\n\n2,z\n')
    rows = Rows(str(csv))
    assert rows.total == 2
    assert list(rows) == [{"a": "1", "b": "x\ny"}, {"a": "2", "b": "z"}]
    rows.close()
