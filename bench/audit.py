"""Does each performance mechanism still pay? Every one measured with and without, one run.

Each mechanism can be turned off for the benchmark with ``OAUTHCLI_BENCH_WITHOUT``
(a comma-separated list; nothing else sets it, and the test suite clears every
``OAUTHCLI_*`` variable):

* ``parsecache``: the on-disk copy of parsed registry files (registry/parsecache.py)
* ``gc``: the collector threshold the ``oauthcli`` command sets (entry.py)
* ``freeze``: ``gc.freeze()`` before the interpreter exits (cli/app.py)
* ``pin``: batch workers kept on one CPU (transport/cpu.py)
* ``pools``: the adapter's remembered pool, URL and CA check (transport/adapter.py)
* ``prepare``: the hand-made PreparedRequest (transport/adapter.py ``prepare``)
* ``processes``: ``--each`` spread over worker processes (transport/batch.py
  ``processes_for``): without it, every row is sent by threads of one process
* ``fork``: worker processes forked rather than started as new interpreters

Runs are interleaved (every round runs every variant once, the order rotating),
after a warm-up round; figures are medians and ratios are "without / with", so
above 1 means the mechanism pays::

    .venv/bin/python bench/audit.py [--runs 30] [--rounds 7] [--slow-rounds 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import OAUTHCLI, compile_package, make_registry, run_once, start_server  # noqa: E402

WARM = ("parsecache", "gc", "freeze")
BATCH = ("pin", "pools", "prepare", "gc", "processes", "fork")


def variants(names: tuple[str, ...], env: dict[str, str]) -> dict[str, dict[str, str]]:
    out = {"with all": env}
    for name in names:
        out[f"without {name}"] = {**env, "OAUTHCLI_BENCH_WITHOUT": name}
    return out


def rounds_of(
    argv: list[str], envs: dict[str, dict[str, str]], runs: int, fresh_cache: Path | None = None
) -> dict[str, list[float]]:
    names = list(envs)
    walls: dict[str, list[float]] = {n: [] for n in names}
    for round_ in range(runs + 1):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            if fresh_cache is not None:  # a batch starts with no token: one is fetched
                shutil.rmtree(fresh_cache, ignore_errors=True)
            wall, _, _ = run_once(argv, envs[name], stdout=subprocess.DEVNULL)
            if round_:
                walls[name].append(wall)
        time.sleep(0.01)
    return walls


def show(title: str, walls: dict[str, list[float]]) -> None:
    base = statistics.median(walls["with all"])
    print(f"\n{title}  (load {' '.join(f'{x:.2f}' for x in os.getloadavg())})")
    for name, values in walls.items():
        med = statistics.median(values)
        ratio = "" if name == "with all" else f"   without/with {med / base:.3f}"
        print(f"  {name:<20} {med * 1000:8.1f} ms  (min {min(values) * 1000:.1f}){ratio}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="rounds of warm sends")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the fast batch")
    parser.add_argument("--rows", type=int, default=1000, help="rows of the fast batch")
    parser.add_argument("--slow-rounds", type=int, default=2, help="rounds of the 50 ms case")
    parser.add_argument("--only", choices=("warm", "batch", "slow"), action="append")
    args = parser.parse_args()
    only = set(args.only or ("warm", "batch", "slow"))
    compile_package()
    with tempfile.TemporaryDirectory(prefix="oauthcli-audit-") as tmp_name:
        tmp = Path(tmp_name)
        server, base = start_server(tmp)
        slow, slow_base = start_server(tmp, 50)
        try:
            env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTHCLI_")}
            cache = tmp / "cache"
            env |= {
                "OAUTHCLI_CACHE_DIR": str(cache),
                "OAUTHCLI_LOG_DIR": str(cache.parent / "log"),
                "NO_COLOR": "1",
            }
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            reg = make_registry(tmp / "reg", base, 10)
            slow_reg = make_registry(tmp / "slow", slow_base, 1)
            if "warm" in only:
                send = [str(OAUTHCLI), "-r", str(reg), "send", "msg0005.list"]
                run_once(send, env)  # the token and the parse cache, for every variant
                show(
                    f"warm send, {args.runs} rounds",
                    rounds_of(send, variants(WARM, env), args.runs),
                )
            if "batch" in only:
                csv = tmp / "rows.csv"
                csv.write_text("id\n" + "".join(f"{i}\n" for i in range(1, args.rows + 1)))
                batch = [str(OAUTHCLI), "-r", str(reg), "send", "msg0005.get"]
                batch += ["--each", str(csv), "--concurrency", "8"]
                show(
                    f"--each {args.rows} rows, concurrency 8, fast API, {args.rounds} rounds",
                    rounds_of(batch, variants(BATCH, env), args.rounds, cache),
                )
            if "slow" in only:
                rows = 25_600  # ideal 10 s at concurrency 128 against a 50 ms API
                csv = tmp / "slow.csv"
                csv.write_text("id\n" + "".join(f"{i}\n" for i in range(1, rows + 1)))
                batch = [str(OAUTHCLI), "-r", str(slow_reg), "send", "msg0000.get"]
                batch += ["--each", str(csv), "--concurrency", "128"]
                show(
                    f"--each {rows} rows, concurrency 128, 50 ms API (ideal 10 s), "
                    f"{args.slow_rounds} rounds",
                    rounds_of(
                        batch,
                        {
                            "with all": env,
                            "without pin": {**env, "OAUTHCLI_BENCH_WITHOUT": "pin"},
                            "without processes": {**env, "OAUTHCLI_BENCH_WITHOUT": "processes"},
                        },
                        args.slow_rounds,
                        cache,
                    ),
                )
        finally:
            for proc in (server, slow):
                proc.terminate()
                proc.wait(10)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
