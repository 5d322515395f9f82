"""The ``oauthcli`` command: a start-up setting, then the CLI.

With the collector's default threshold (a young collection every 700 new
objects) it runs dozens of times while typer, requests and the registry are
imported, each time walking objects that live until the process exits. The
command raises the threshold before anything else is imported: 25 interleaved
warm ``send`` runs took ~5 % less CPU. Cycles are still collected, only less
often, so a long ``send --each`` keeps flat memory. Importing :mod:`oauthcli.cli.app`
(tests, other programs) leaves the collector alone.
"""

from __future__ import annotations

import gc
import os

if "gc" not in os.environ.get("OAUTHCLI_BENCH_WITHOUT", "").split(","):  # bench/audit.py
    gc.set_threshold(50_000, 20, 100)

from oauthcli.cli.app import main  # noqa: E402

__all__ = ["main"]
