"""oauthcli's benchmarks: start-up, cold start, concurrent processes, batch, memory, fleet.

Run with ``make bench`` (or ``.venv/bin/python bench/run.py``). Everything talks
to ``bench/server.py`` on 127.0.0.1, a token endpoint and an API in their own
process, with a throw-away registry and token cache. Each timing is the median
of several interleaved runs (rounds run every command once, so a burst of load
on the machine hits all of them alike); ratios are of medians. The table is
printed and written to ``bench/results/latest.md``; copy it into BENCHMARKS.md
when the numbers are to be kept.

Only the standard library is used here; HTTPie comes from ``.[bench]``.
"""

from __future__ import annotations

import argparse
import compileall
import datetime
import importlib.util
import json
import os
import platform
import pty
import resource
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
PY = Path(sys.executable)
BIN = PY.parent
OAUTHCLI = BIN / "oauthcli"
HTTPIE = BIN / "http"
CURL = shutil.which("curl")
FLOOR = "import requests; requests.get({url!r})"


@dataclass
class Sample:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.wall)


@dataclass
class Bench:
    tmp: Path
    base: str
    env: dict[str, str]
    server: subprocess.Popen[bytes]
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)  # name, value, target, ok
    notes: list[str] = field(default_factory=list)
    commands: list[tuple[str, str]] = field(default_factory=list)

    @property
    def cache(self) -> Path:
        return Path(self.env["OAUTHCLI_CACHE_DIR"])

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.base + "/_stats", timeout=5) as r:
            return dict(json.load(r))

    def reset(self) -> None:
        req = urllib.request.Request(self.base + "/_reset", data=b"", method="POST")
        urllib.request.urlopen(req, timeout=5).close()

    def clear_cache(self) -> None:
        shutil.rmtree(self.cache, ignore_errors=True)

    def server_cpu(self) -> float:
        """Seconds of CPU the server process has used (utime + stime)."""
        fields = Path(f"/proc/{self.server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def record(self, name: str, value: str, target: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("yes" if ok else "**no**")
        self.rows.append((name, value, target, verdict))
        print(f"  {name:<58} {value:>18}  {target:<10} {verdict}", flush=True)


def run_once(
    argv: list[str], env: dict[str, str], stdout: int | None = subprocess.DEVNULL
) -> tuple[float, float, subprocess.CompletedProcess[bytes]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(
            f"bench: {' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}"
        )
    return wall, cpu, done


def interleaved(cases: dict[str, list[str]], env: dict[str, str], runs: int) -> dict[str, Sample]:
    """Run every case once per round, rotating who goes first; one warm-up round first."""
    samples = {name: Sample() for name in cases}
    names = list(cases)
    for round_ in range(runs + 1):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            wall, cpu, _ = run_once(cases[name], env)
            if round_:
                samples[name].wall.append(wall)
                samples[name].cpu.append(cpu)
    return samples


def on_terminal(argv: list[str], env: dict[str, str]) -> float:
    """Wall time of ``argv`` with its stdout on a pseudo-terminal (drained as it writes)."""
    main, child = pty.openpty()
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=child)
    os.close(child)
    while True:
        try:
            if not os.read(main, 65536):
                break
        except OSError:  # EIO once the child side is closed
            break
    proc.wait()
    wall = time.perf_counter() - started
    os.close(main)
    return wall


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


# -- set-up --------------------------------------------------------------------


def start_server(tmp: Path, delay_ms: float = 0) -> tuple[subprocess.Popen[bytes], str]:
    port_file = tmp / (f"port-{delay_ms:g}" if delay_ms else "port")
    argv = [str(PY), str(HERE / "server.py"), str(port_file)]
    if delay_ms:
        argv += ["--delay", f"{delay_ms:g}"]
    server = subprocess.Popen(argv)
    deadline = time.monotonic() + 10
    while not port_file.exists():
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit("bench: the loopback server did not start")
        time.sleep(0.02)
    return server, f"http://127.0.0.1:{port_file.read_text()}"


PROFILE = """\
grant_type: client_credentials
token_url: {base}/token
client_id: bench
client_secret: bench-secret
"""

MESSAGE = """\
name: {name}
description: benchmark message {i}
endpoint: {base}/api/{name}
auth: {{type: oauth2, profile: bench}}
headers: {{Accept: application/json}}
variables: {{limit: "10"}}
methods:
  list:
    http_method: GET
    query: {{limit: "${{limit}}"}}
  get:
    http_method: GET
    path: /${{id}}
"""


def make_registry(root: Path, base: str, messages: int) -> Path:
    (root / "profiles").mkdir(parents=True)
    (root / "messages").mkdir()
    (root / "profiles" / "bench.yaml").write_text(PROFILE.format(base=base))
    for i in range(messages):
        name = f"msg{i:04d}"
        (root / "messages" / f"{name}.yaml").write_text(MESSAGE.format(base=base, name=name, i=i))
    return root


def compile_package() -> None:
    """pip byte-compiles what it installs; an editable checkout is compiled here instead."""
    spec = importlib.util.find_spec("oauthcli")
    assert spec is not None and spec.submodule_search_locations
    for location in spec.submodule_search_locations:
        compileall.compile_dir(location, quiet=1)


# -- the benchmarks ------------------------------------------------------------------


def bench_startup(b: Bench, runs: int, reg10: Path, reg500: Path) -> None:
    url = b.base + "/api/ping"
    send = [str(OAUTHCLI), "-r", str(reg10), "send", "msg0005.list"]
    cases = {
        "python -c pass": [str(PY), "-c", "pass"],
        "floor": [str(PY), "-c", FLOOR.format(url=url)],
        "oauthcli send (10 messages)": send,
        "oauthcli send (500 messages)": [str(OAUTHCLI), "-r", str(reg500), "send", "msg0250.list"],
        "oauthcli --help": [str(OAUTHCLI), "--help"],
    }
    if HTTPIE.exists():
        cases["http GET"] = [str(HTTPIE), "--ignore-stdin", "GET", url]
    else:
        b.notes.append("HTTPie is not installed (pip install -e '.[bench]'): its rows are missing.")
    if CURL:
        cases["curl"] = [CURL, "-s", url]
    b.commands += [(k, shlex.join(v)) for k, v in cases.items()]

    # Warm: the token is in the cache, the registry read once; check what oauthcli sends.
    b.clear_cache()
    b.reset()
    _, _, first = run_once(send, b.env, stdout=subprocess.PIPE)
    assert json.loads(first.stdout)["bearer"] is True, first.stdout
    assert b.stats()["token"] == 1
    run_once([str(OAUTHCLI), "-r", str(reg500), "send", "msg0250.list"], b.env)

    print(f"\nstart-up: {runs} interleaved runs each, medians", flush=True)
    s = interleaved(cases, b.env, runs)
    assert b.stats()["token"] == 1, "a warm send fetched a token"
    floor = s["floor"].median
    for name, sample in s.items():
        b.record(
            f"{name} (min {ms(min(sample.wall))}, cpu {ms(statistics.median(sample.cpu))})",
            ms(sample.median),
        )
    warm = s["oauthcli send (10 messages)"].median
    b.record("warm send / floor", f"{warm / floor:.2f}×", "≤ 1.4×", warm / floor <= 1.4)
    if "http GET" in s:
        ratio = warm / s["http GET"].median
        b.record("warm send / HTTPie", f"{ratio:.2f}×", "≤ 0.6×", ratio <= 0.6)
    ratio = s["oauthcli --help"].median / floor
    b.record("--help / floor", f"{ratio:.2f}×", "≤ 1.2×", ratio <= 1.2)
    tty = [on_terminal([str(OAUTHCLI), "--help"], b.env) for _ in range(max(runs // 2, 3))]
    b.commands.append(("oauthcli --help on a terminal", f"{OAUTHCLI} --help  # stdout a pty"))
    b.record("oauthcli --help on a terminal (rich), not a target", ms(statistics.median(tty)))
    ratio = s["oauthcli send (500 messages)"].median / warm
    b.record("send with 500 messages / with 10", f"{ratio:.2f}×")
    if "curl" in s:
        b.record("warm send − curl (what Python costs)", ms(warm - s["curl"].median))


def bench_cold(b: Bench, runs: int, reg10: Path) -> None:
    send = [str(OAUTHCLI), "-r", str(reg10), "send", "msg0005.list"]
    b.commands.append(("cold send (empty cache)", shlex.join(send)))
    cold, warm = Sample(), Sample()
    b.reset()
    print(f"\ncold start (empty token cache): {runs} runs", flush=True)
    for _ in range(runs):
        b.clear_cache()
        wall, cpu, _ = run_once(send, b.env)
        cold.wall.append(wall)
        cold.cpu.append(cpu)
        wall, cpu, _ = run_once(send, b.env)
        warm.wall.append(wall)
        warm.cpu.append(cpu)
    tokens = b.stats()["token"]
    b.record("cold send (token fetched)", ms(cold.median))
    b.record("cold / warm", f"{cold.median / warm.median:.2f}×")
    b.record("token requests, one per cold run", f"{tokens} / {runs}", f"= {runs}", tokens == runs)


def bench_concurrent(b: Bench, rounds: int, reg10: Path, processes: int = 12) -> None:
    send = [str(OAUTHCLI), "-r", str(reg10), "send", "msg0005.list"]
    b.commands.append((f"{processes} processes at once, empty cache", shlex.join(send)))
    print(f"\n{processes} processes at once on an empty cache: {rounds} rounds", flush=True)
    walls, tokens = [], []
    for _ in range(rounds):
        b.clear_cache()
        b.reset()
        started = time.perf_counter()
        procs = [
            subprocess.Popen(send, env=b.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            for _ in range(processes)
        ]
        codes = [p.wait() for p in procs]
        walls.append(time.perf_counter() - started)
        assert codes == [0] * processes, codes
        tokens.append(b.stats()["token"])
    b.record(f"{processes} sends at once, wall for all", ms(statistics.median(walls)))
    b.record(
        "token requests per round", ", ".join(map(str, tokens)), "1", all(t == 1 for t in tokens)
    )


def bench_batch(b: Bench, rounds: int, reg10: Path, rows: int, concurrency: int = 8) -> None:
    csv = b.tmp / f"rows{rows}.csv"
    csv.write_text("id\n" + "".join(f"{i}\n" for i in range(1, rows + 1)))
    urls = b.tmp / "urls.txt"
    urls.write_text("".join(f"{b.base}/api/msg0005/{i}\n" for i in range(1, rows + 1)))
    batch = [str(OAUTHCLI), "-r", str(reg10), "send", "msg0005.get"]
    batch += ["--each", str(csv), "--concurrency", str(concurrency)]
    get_token = f"{OAUTHCLI} -r {reg10} get-token bench --raw"
    curl = (
        f"T=$({get_token}) && xargs -P{concurrency} -n1 {CURL} -s -o /dev/null "
        f'-H "Authorization: Bearer $T" < {urls}'
    )
    b.commands += [("batch", shlex.join(batch)), ("xargs + curl", curl)]
    print(f"\nbatch of {rows} rows at concurrency {concurrency}: {rounds} rounds", flush=True)
    ours, theirs = Sample(), Sample()
    tokens, busy = [], []
    for _ in range(rounds):
        b.clear_cache()
        b.reset()
        cpu0 = b.server_cpu()
        wall, cpu, done = run_once(batch, b.env, stdout=subprocess.PIPE)
        busy.append((b.server_cpu() - cpu0) / wall)
        lines = done.stdout.splitlines()
        assert len(lines) == rows and json.loads(lines[-1])["row"] == rows
        stats = b.stats()
        assert stats["bearer"] == rows, stats
        tokens.append(stats["token"])
        ours.wall.append(wall)
        ours.cpu.append(cpu)
        if CURL:
            b.clear_cache()
            b.reset()
            wall, cpu, _ = run_once(["/bin/sh", "-c", curl], b.env)
            assert b.stats()["bearer"] == rows
            theirs.wall.append(wall)
            theirs.cpu.append(cpu)
    b.record(f"oauthcli --each, {rows} rows", ms(ours.median))
    b.record("batch: rows per second", f"{rows / ours.median:.0f}/s")
    b.record("batch: server busy (its CPU / wall)", f"{statistics.median(busy):.0%}")
    b.record(
        "batch: token requests per run",
        ", ".join(map(str, tokens)),
        "1",
        all(t == 1 for t in tokens),
    )
    if theirs.wall:
        b.record(f"xargs -P{concurrency} curl, {rows} calls", ms(theirs.median))
        ratio = theirs.median / ours.median
        b.record("batch speed-up over xargs + curl", f"{ratio:.1f}×", "≥ 5×", ratio >= 5)


def bench_dpop(b: Bench, rounds: int, reg10: Path, rows: int, concurrency: int = 8) -> None:
    """``send --each`` with a DPoP profile (a fresh ES256 proof for every row, ``ath`` bound
    to the token) against the same batch with the Bearer profile; the server accepts any
    ``Authorization: DPoP`` + ``DPoP`` header without verifying, so the client's proofs are
    what the difference measures. Rounds interleave the two; the ratio is of medians."""
    reg = b.tmp / "reg-dpop"
    if not reg.exists():
        shutil.copytree(reg10, reg)
        (reg / "profiles" / "bench.yaml").write_text(PROFILE.format(base=b.base) + "dpop: true\n")
    csv = b.tmp / f"dpop-rows{rows}.csv"
    csv.write_text("id\n" + "".join(f"{i}\n" for i in range(1, rows + 1)))
    cases = {
        "bearer": (reg10, "bearer"),
        "dpop": (reg, "dpop"),
    }
    print(f"\nDPoP vs Bearer, --each {rows} rows at concurrency {concurrency}: {rounds} rounds")
    samples = {name: Sample() for name in cases}
    for round_ in range(rounds):
        order = list(cases) if round_ % 2 == 0 else list(cases)[::-1]
        for name in order:
            root, counted = cases[name]
            argv = [str(OAUTHCLI), "-r", str(root), "send", "msg0005.get"]
            argv += ["--each", str(csv), "--concurrency", str(concurrency)]
            if round_ == 0:
                b.commands.append((f"--each, {name} profile", shlex.join(argv)))
            b.clear_cache()
            b.reset()
            wall, cpu, done = run_once(argv, b.env, stdout=subprocess.PIPE)
            assert len(done.stdout.splitlines()) == rows
            stats = b.stats()
            assert stats[counted] == rows and stats["token"] == 1, (name, stats)
            samples[name].wall.append(wall)
            samples[name].cpu.append(cpu)
    bearer, dpop = samples["bearer"].median, samples["dpop"].median
    b.record(f"--each {rows} rows, Bearer profile", ms(bearer))
    b.record(f"--each {rows} rows, DPoP profile (a proof per row)", ms(dpop))
    b.record("DPoP / Bearer wall time", f"{dpop / bearer:.2f}×")
    cpu_ratio = statistics.median(samples["dpop"].cpu) / statistics.median(samples["bearer"].cpu)
    b.record("DPoP / Bearer CPU time", f"{cpu_ratio:.2f}×")
    b.record("DPoP: proofs per second of the batch", f"{rows / dpop:.0f}/s")


REDIS_SERVER = shutil.which("redis-server")


def start_redis(tmp: Path) -> tuple[subprocess.Popen[bytes], int]:
    """A redis-server of its own on a free 127.0.0.1 port (never 6379), persistence off."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    assert REDIS_SERVER is not None
    argv = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(tmp), "--loglevel", "warning"]  # fmt: skip
    server = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while redis_command(port, "PING") != b"+PONG\r\n":
        if time.monotonic() > deadline or server.poll() is not None:
            raise SystemExit("bench: redis-server did not start")
        time.sleep(0.02)
    return server, port


def redis_command(port: int, *words: str) -> bytes:
    """One command's raw answer (RESP), or b"" when Redis does not answer."""
    request = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(request.encode())
            return sock.recv(4096)
    except OSError:
        return b""


def bench_fleet(b: Bench, rounds: int, reg10: Path, machines: int = 4, processes: int = 8) -> None:
    """``machines`` simulated machines (a cache folder and home each) × ``processes`` sends
    started at once on empty caches: token requests and wall time, with each machine's
    file cache, then with one Redis cache (OAUTHCLI_CACHE_URL) for the fleet."""
    print(f"\n{machines} machines × {processes} processes at once: {rounds} rounds", flush=True)
    if REDIS_SERVER is None:
        b.notes.append("fleet: skipped, redis-server is not installed (make redis)")
        print("  skipped: redis-server is not installed (make redis)")
        return
    send = [str(OAUTHCLI), "-r", str(reg10), "send", "msg0005.list"]
    b.commands.append((f"fleet: {machines}×{processes} at once", shlex.join(send)))
    redis, port = start_redis(b.tmp)
    try:
        for mode in ("file", "redis"):
            walls, tokens = [], []
            for _ in range(rounds):
                redis_command(port, "FLUSHALL")
                b.reset()
                envs = []
                for m in range(machines):
                    home = b.tmp / "fleet" / f"machine-{m}"
                    shutil.rmtree(home, ignore_errors=True)
                    home.mkdir(parents=True)
                    env = b.env | {"HOME": str(home), "OAUTHCLI_CACHE_DIR": str(home / "cache")}
                    if mode == "redis":
                        env["OAUTHCLI_CACHE_URL"] = f"redis://127.0.0.1:{port}/0"
                    envs.append(env)
                started = time.perf_counter()
                procs = [
                    subprocess.Popen(
                        send, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL
                    )
                    for env in envs
                    for _ in range(processes)
                ]
                codes = [p.wait() for p in procs]
                walls.append(time.perf_counter() - started)
                assert codes == [0] * len(procs), codes
                tokens.append(b.stats()["token"])
            want = machines if mode == "file" else 1
            label = "a file cache per machine" if mode == "file" else "one Redis cache"
            b.record(f"fleet, {label}: wall for all", ms(statistics.median(walls)))
            b.record(
                f"fleet, {label}: token requests per round",
                ", ".join(map(str, tokens)),
                str(want),
                all(t == want for t in tokens),
            )
    finally:
        redis.terminate()
        redis.wait(10)


def process_cpu(pid: int) -> float:
    """Seconds of CPU process ``pid`` has used (utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_concurrency(
    b: Bench,
    rounds: int,
    levels: list[int],
    ideal_s: float = 10.0,
    delay_ms: float = 50.0,
    oauthcli: Path | None = None,
) -> None:
    """``--each`` against an API that answers every call ``delay_ms`` late.

    The ideal is rows × delay / concurrency: the workers only ever wait for the API.
    Rows are chosen so that the ideal is ``ideal_s`` at every level, so that the
    process's start (~0.1 s) and the token request do not dominate. The whole
    command's wall time is measured. A server of its own (another process) answers
    late; its CPU over the run's wall time says whether it could keep up.
    """
    exe = oauthcli or OAUTHCLI
    server, base = start_server(b.tmp, delay_ms)
    try:
        reg = make_registry(b.tmp / f"reg-delay{delay_ms:g}", base, 1)
        stats_url = base + "/_stats"
        print(f"\n--each against an API answering in {delay_ms:g} ms: {rounds} round(s)")
        for level in levels:
            rows = int(ideal_s * level / (delay_ms / 1000))
            csv = b.tmp / f"conc{rows}.csv"
            csv.write_text("id\n" + "".join(f"{i}\n" for i in range(1, rows + 1)))
            argv = [str(exe), "-r", str(reg), "send", "msg0000.get", "--each", str(csv)]
            argv += ["--concurrency", str(level)]
            b.commands.append(
                (f"--each at concurrency {level}, {delay_ms:g} ms API", shlex.join(argv))
            )
            ideal = rows * delay_ms / 1000 / level
            walls, busy, tokens = [], [], []
            for _ in range(rounds):
                shutil.rmtree(b.cache, ignore_errors=True)
                req = urllib.request.Request(base + "/_reset", data=b"", method="POST")
                urllib.request.urlopen(req, timeout=5).close()
                cpu0 = process_cpu(server.pid)
                wall, _, done = run_once(argv, b.env, stdout=subprocess.PIPE)
                busy.append((process_cpu(server.pid) - cpu0) / wall)
                lines = done.stdout.splitlines()
                assert len(lines) == rows, (len(lines), rows)
                assert [json.loads(x)["row"] for x in lines[:: max(rows // 50, 1)]] == list(
                    range(1, rows + 1, max(rows // 50, 1))
                ), "rows out of order"
                with urllib.request.urlopen(stats_url, timeout=5) as r:
                    stats = json.load(r)
                assert stats["bearer"] == rows, stats
                tokens.append(stats["token"])
                walls.append(wall)
            wall = statistics.median(walls)
            share = ideal / wall
            b.record(
                f"--each {rows} rows at concurrency {level}: wall (ideal {ideal:.1f} s)",
                f"{wall:.2f} s",
            )
            b.record(
                f"  share of the ideal at {level} (server busy {statistics.median(busy):.0%})",
                f"{share:.2f}",
                "≥ 0.90",
                share >= 0.90,
            )
            b.record(
                f"  token requests per run at {level}",
                ", ".join(map(str, tokens)),
                "1",
                all(t == 1 for t in tokens),
            )
    finally:
        server.terminate()
        server.wait(10)


def peak_rss(argv: list[str], env: dict[str, str], out: Path) -> tuple[float, float]:
    """(peak resident MiB, wall seconds) of one process, from its own rusage."""
    started = time.perf_counter()
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.PIPE
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err = proc.stderr.read() if proc.stderr else b""
        if proc.stderr:
            proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} exited {proc.returncode}: {err.decode()[-500:]}")
    return usage.ru_maxrss / 1024, time.perf_counter() - started


def bench_memory(b: Bench, reg10: Path, sizes: list[int], concurrency: int = 8) -> None:
    print(f"\npeak memory of a batch (concurrency {concurrency})", flush=True)
    peaks = {}
    for rows in sizes:
        csv = b.tmp / f"mem{rows}.csv"
        csv.write_text("id\n" + "".join(f"{i}\n" for i in range(1, rows + 1)))
        argv = [str(OAUTHCLI), "-r", str(reg10), "send", "msg0005.get", "--each", str(csv)]
        argv += ["--concurrency", str(concurrency)]
        b.commands.append((f"memory, {rows} rows", shlex.join(argv) + " > out.jsonl"))
        out = b.tmp / "out.jsonl"
        peak, wall = peak_rss(argv, b.env, out)
        with out.open("rb") as f:
            count = sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
        assert count == rows, (count, rows)
        peaks[rows] = peak
        target, ok = ("≤ 100 MiB", peak <= 100) if rows >= 100_000 else ("", None)
        b.record(f"peak RSS, {rows} rows ({rows / wall:.0f} rows/s)", f"{peak:.1f} MiB", target, ok)
    if len(peaks) > 1:
        small, large = min(peaks), max(peaks)
        b.record(
            f"memory growth from {small} to {large} rows", f"{peaks[large] - peaks[small]:+.1f} MiB"
        )


# -- the report ------------------------------------------------------------------------


def machine() -> list[tuple[str, str]]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    system = platform.platform()
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                system = f"{line.split('=', 1)[1].strip(chr(34))} ({platform.release()})"
    except OSError:
        pass
    versions = {}
    for name in ("requests", "typer", "rich", "PyYAML", "httpie"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "-"
    curl = (
        subprocess.run([CURL, "--version"], capture_output=True, text=True).stdout.split()[:2]
        if CURL
        else ["curl", "-"]
    )
    return [
        ("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{cpu}, {os.cpu_count()} cores"),
        ("OS", system),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("packages", ", ".join(f"{k} {v}" for k, v in versions.items()) + f", {' '.join(curl)}"),
        ("load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
    ]


def report(b: Bench, info: list[tuple[str, str]], args: argparse.Namespace, seconds: float) -> str:
    info = [*info, ("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg()))]
    lines = ["# oauthcli benchmark results", ""]
    lines += [f"- {k}: {v}" for k, v in info]
    lines += [
        f"- runs: {args.runs} per start-up case, {args.rounds} batch rounds; took {seconds:.0f} s",
        "",
    ]
    lines += ["| measure | value | target | met |", "|---|---:|---|---|"]
    lines += [f"| {n.strip()} | {v} | {t} | {ok} |" for n, v, t, ok in b.rows]
    if b.notes:
        lines += ["", *[f"Note: {n}" for n in b.notes]]
    lines += ["", "Commands (URLs and folders are temporary):", "", "```"]
    lines += [f"# {name}\n{cmd}" for name, cmd in b.commands]
    lines += ["```", ""]
    return "\n".join(lines)


SECTIONS = ("startup", "cold", "processes", "batch", "dpop", "memory", "concurrency", "fleet")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="runs per start-up case")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the batch comparison")
    parser.add_argument("--batch-rows", type=int, default=1000)
    parser.add_argument("--memory-rows", type=int, default=100_000)
    parser.add_argument(
        "--levels",
        default="8,32,128",
        help="concurrency levels of the 50 ms API case (comma-separated)",
    )
    parser.add_argument(
        "--ideal", type=float, default=10.0, help="ideal seconds per level of the 50 ms API case"
    )
    parser.add_argument(
        "--quick", action="store_true", help="few runs, small batches: a smoke test"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        help="run only this part (repeatable); the default is all of them",
    )
    args = parser.parse_args()
    if args.quick:
        args.runs, args.rounds, args.batch_rows, args.memory_rows = 3, 1, 200, 2000
        args.ideal = 2.0
    if not OAUTHCLI.exists():
        raise SystemExit(f"bench: {OAUTHCLI} not found; run `make venv` first")
    info = machine()
    started = time.monotonic()
    compile_package()
    with tempfile.TemporaryDirectory(prefix="oauthcli-bench-") as tmp_name:
        tmp = Path(tmp_name)
        server, base = start_server(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTHCLI_")}
        env |= {
            "OAUTHCLI_CACHE_DIR": str(tmp / "cache"),
            "OAUTHCLI_LOG_DIR": str(tmp / "log"),
            "NO_COLOR": "1",
        }
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        b = Bench(tmp, base, env, server)
        try:
            print(f"oauthcli benchmarks against {base} ({info[1][1]}, {info[3][1]})")
            reg10 = make_registry(tmp / "reg10", base, 10)
            reg500 = make_registry(tmp / "reg500", base, 500)
            only = set(args.only or SECTIONS)
            if "startup" in only:
                bench_startup(b, args.runs, reg10, reg500)
            if "cold" in only:
                bench_cold(b, max(args.runs // 2, 3), reg10)
            if "processes" in only:
                bench_concurrent(b, max(args.rounds, 3), reg10)
            if "batch" in only:
                bench_batch(b, args.rounds, reg10, args.batch_rows)
            if "dpop" in only:
                bench_dpop(b, max(args.rounds, 5), reg10, args.batch_rows)
            if "memory" in only:
                bench_memory(b, reg10, sorted({min(1000, args.memory_rows), args.memory_rows}))
            if "concurrency" in only:
                levels = [int(x) for x in args.levels.split(",")]
                bench_concurrency(b, max(args.rounds // 3, 1), levels, args.ideal)
            if "fleet" in only:
                bench_fleet(b, max(args.rounds, 3), reg10)
        finally:
            server.terminate()
            server.wait(10)
    text = report(b, info, args, time.monotonic() - started)
    out = HERE / "results" / "latest.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(f"\nwritten to {out.relative_to(HERE.parent)}; to keep these numbers, copy its table,")
    print("machine and commands into BENCHMARKS.md (see the section there on updating it).")


if __name__ == "__main__":
    main()
