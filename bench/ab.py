"""Two builds of oauthcli side by side: warm ``send`` and a ``--each`` batch, one run.

``make bench`` measures this checkout against curl, HTTPie and a bare
``requests.get``; this script answers the question a change raises: is it
slower than before? Give it the ``oauthcli`` executables of two installs (each
in its own virtual environment, installed with ``pip install .`` rather than
editable, so neither imports from the other's folder)::

    python bench/ab.py --a /tmp/ref/venv/bin/oauthcli --b /tmp/cur/venv/bin/oauthcli

or one build against itself with a variable changed (``--a-env``/``--b-env NAME=VALUE``),
as the outbound log's cost is measured (BENCHMARKS.md)::

    python bench/ab.py --a .venv/bin/oauthcli --b .venv/bin/oauthcli \
        --a-env OAUTHCLI_LOG_LEVEL=off --b-env OAUTHCLI_LOG_LEVEL=basic

Both talk to ``bench/server.py`` on 127.0.0.1, each with a token cache of its
own (the cache format may differ between builds). Runs are interleaved, the
order rotating every round, so a burst of load on the machine hits both alike;
each figure is a median, and the ratios are B over A. The python+requests floor
(``python -c "import requests; requests.get(URL)"``) is timed in the same
rounds, with the Python of B's environment.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import FLOOR, make_registry, run_once, start_server  # noqa: E402


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, type=Path, help="oauthcli executable of build A")
    parser.add_argument("--b", required=True, type=Path, help="oauthcli executable of build B")
    parser.add_argument(
        "--a-env", action="append", default=[], metavar="NAME=VALUE", help="a variable for A"
    )
    parser.add_argument(
        "--b-env", action="append", default=[], metavar="NAME=VALUE", help="a variable for B"
    )
    parser.add_argument("--runs", type=int, default=30, help="rounds of warm sends")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the batch")
    parser.add_argument("--rows", type=int, default=1000, help="rows in the batch")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="oauthcli-ab-") as tmp_name:
        tmp = Path(tmp_name)
        server, base = start_server(tmp)
        try:
            registry = make_registry(tmp / "registry", base, 10)
            rows = tmp / "rows.csv"
            rows.write_text("id\n" + "".join(f"{i}\n" for i in range(args.rows)))
            envs = {}
            for name in ("a", "b"):
                env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTHCLI_")}
                env.update(
                    OAUTHCLI_REGISTRY=str(registry),
                    OAUTHCLI_CACHE_DIR=str(tmp / f"cache-{name}"),
                    OAUTHCLI_LOG_DIR=str(tmp / f"log-{name}"),
                    NO_COLOR="1",
                )
                env.update(_assignments(getattr(args, f"{name}_env")))
                envs[name] = env
            floor = [
                str(args.b.parent / "python"),
                "-c",
                FLOOR.format(url=f"{base}/api/msg0000?limit=10"),
            ]
            send = {name: [str(getattr(args, name)), "send", "msg0000.list"] for name in envs}
            batch = {
                name: [
                    str(getattr(args, name)),
                    "send",
                    "msg0000.get",
                    "--each",
                    str(rows),
                    "--concurrency",
                    "8",
                ]
                for name in envs
            }
            cases = {"floor": (floor, envs["b"])}
            cases |= {f"send {n}": (send[n], envs[n]) for n in envs}
            times = timed(cases, args.runs)
            batches = timed({f"batch {n}": (batch[n], envs[n]) for n in envs}, args.rounds)
        finally:
            server.terminate()
            server.wait(5)

    a, b, fl = (median_ms(times[k]) for k in ("send a", "send b", "floor"))
    ba, bb = (median_ms(batches[k]) for k in ("batch a", "batch b"))
    print(f"warm send   A {a:7.1f} ms ({a / fl:.2f}x floor)   B {b:7.1f} ms ({b / fl:.2f}x floor)")
    print(f"            B/A {b / a:.3f}   floor {fl:.1f} ms   ({args.runs} rounds)")
    print(f"--each {args.rows} rows, concurrency 8   A {ba:7.0f} ms   B {bb:7.0f} ms")
    print(f"            B/A {bb / ba:.3f}   ({args.rounds} rounds)")
    return 0


def _assignments(given: list[str]) -> dict[str, str]:
    """``--a-env NAME=VALUE`` (repeatable): one build against itself with a setting changed,
    e.g. ``--a-env OAUTHCLI_LOG_LEVEL=off --b-env OAUTHCLI_LOG_LEVEL=basic``."""
    out = {}
    for item in given:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise SystemExit(f"bench: --a-env/--b-env take NAME=VALUE, got {item!r}")
        out[name] = value
    return out


def timed(cases: dict[str, tuple[list[str], dict[str, str]]], runs: int) -> dict[str, list[float]]:
    """Wall times per case: one warm-up round, then ``runs`` rounds in rotating order."""
    names = list(cases)
    walls: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(runs + 1):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            argv, env = cases[name]
            wall, _, _ = run_once(argv, env, stdout=subprocess.DEVNULL)
            if round_:
                walls[name].append(wall)
        time.sleep(0.01)
    return walls


if __name__ == "__main__":
    raise SystemExit(main())
