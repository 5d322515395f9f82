"""Create the project's virtual environment, even without Debian's python3-venv.

Debian's python3 leaves ``ensurepip`` out unless ``python3-venv`` is installed,
so a plain ``python3 -m venv`` fails on a fresh machine. Then the environment
is made without pip and pip is installed into it from its own wheel, fetched
from PyPI (the one registry the tool needs anyway).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path
from urllib.parse import urljoin

PYPI = "https://pypi.org/pypi/pip/json"


def main(target: str) -> int:
    venv = Path(target)
    python = venv / "bin" / "python"
    if subprocess.run([sys.executable, "-m", "venv", str(venv)]).returncode == 0:
        return 0
    print("make_venv: no ensurepip here; creating the venv without pip", file=sys.stderr)
    subprocess.run(
        [sys.executable, "-m", "venv", "--clear", "--without-pip", str(venv)], check=True
    )
    with urllib.request.urlopen(PYPI, timeout=60) as answer:
        release = json.load(answer)
    wheel = next(u for u in release["urls"] if u["filename"].endswith("-py3-none-any.whl"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / wheel["filename"]
        with urllib.request.urlopen(urljoin(PYPI, wheel["url"]), timeout=120) as answer:
            path.write_bytes(answer.read())
        # A wheel is a zip that Python can run from: pip installs itself from it.
        subprocess.run(
            [str(python), f"{path}/pip", "install", "--quiet", "--no-index", str(path)], check=True
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else ".venv"))
