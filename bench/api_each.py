"""``Registry.send_each`` of two builds side by side: the batch engine against another pool.

Give it the Python executables of two installs (each ``pip install .`` in a venv of
its own)::

    python bench/api_each.py --a OLD/venv/bin/python --b NEW/venv/bin/python

Each round runs, in each build, a script that opens a registry, sends ``--rows``
rows through ``send_each`` at ``--concurrency`` against ``bench/server.py`` and
prints the seconds the iteration took (start-up is not counted). Rounds are
interleaved; the figures are medians, the ratio B over A.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import make_registry, start_server  # noqa: E402

SCRIPT = """
import sys, time, oauthcli
rows = [{"id": str(i)} for i in range(int(sys.argv[2]))]
with oauthcli.open_registry(sys.argv[1]) as reg:
    reg.send("msg0005.list")  # the token, cached
    started = time.perf_counter()
    n = sum(1 for r in reg.send_each("msg0005.get", rows, concurrency=int(sys.argv[3])) if r.ok)
    took = time.perf_counter() - started
assert n == len(rows), n
print(took)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", required=True, type=Path)
    parser.add_argument("--b", required=True, type=Path)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="oauthcli-api-each-") as tmp_name:
        tmp = Path(tmp_name)
        server, base = start_server(tmp)
        try:
            reg = make_registry(tmp / "reg", base, 10)
            times: dict[str, list[float]] = {"a": [], "b": []}
            for round_ in range(args.rounds + 1):
                for name in ("a", "b") if round_ % 2 else ("b", "a"):
                    env = {k: v for k, v in os.environ.items() if not k.startswith("OAUTHCLI_")}
                    env["OAUTHCLI_CACHE_DIR"] = str(tmp / f"cache-{name}")
                    env["OAUTHCLI_LOG_DIR"] = str(tmp / f"log-{name}")
                    done = subprocess.run(
                        [str(getattr(args, name)), "-c", SCRIPT, str(reg), str(args.rows)]
                        + [str(args.concurrency)],
                        env=env,
                        capture_output=True,
                        text=True,
                        check=True,
                    )
                    if round_:
                        times[name].append(float(done.stdout.strip()))
        finally:
            server.terminate()
            server.wait(5)
    a, b = (statistics.median(times[k]) * 1000 for k in ("a", "b"))
    print(f"send_each {args.rows} rows, concurrency {args.concurrency}, {args.rounds} rounds")
    print(f"  A {a:7.0f} ms   B {b:7.0f} ms   B/A {b / a:.3f}   (load {os.getloadavg()[0]:.2f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
