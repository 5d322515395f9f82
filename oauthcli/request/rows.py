"""The input side of ``send --each``: the rows of a CSV or JSONL file, and ``--rate``.

Rows are read one at a time, from a file or stdin, so a file of any size costs
the same memory; a file (not a pipe) is counted first in one cheap pass so that
progress has an end. A malformed row raises a UsageError naming the file and
line; :mod:`oauthcli.cli.batch` decides what the run does about it.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from oauthcli.errors import UsageError

_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
#: The longest CSV field (csv's own default is 128 KiB); a field is one call variable.
MAX_FIELD = 16 << 20
#: The slowest --rate: one call a day. Slower is a typo (1e-320 is an infinite wait).
MIN_RATE = 1 / 86_400


class Rows:
    """The rows of ``--each FILE`` (``-`` is stdin), read lazily; ``total`` when countable."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.name = "stdin" if spec == "-" else str(Path(spec).expanduser())
        self.total: int | None = None
        self.read = 0
        self._stream: IO[str] = sys.stdin if spec == "-" else self._open()
        self._skipped = 0  # blank lines before the first one
        try:
            self._first = self._first_line()
        except UsageError:
            self.close()
            raise
        suffix = Path(spec).suffix.lower() if spec != "-" else ""
        self.jsonl = suffix in _JSONL_SUFFIXES or (
            suffix != ".csv" and self._first.lstrip().startswith("{")
        )
        if spec != "-" and Path(self.name).is_file():  # not a pipe: it can be read twice
            self.total = self._count()

    def _open(self) -> IO[str]:
        try:
            return open(self.name, encoding="utf-8-sig", newline="")
        except OSError as exc:
            raise UsageError(f"--each {self.name}: cannot read it: {exc.strerror or exc}") from None

    def _first_line(self) -> str:
        """The first non-blank line, kept so that stdin need not be rewound."""
        try:
            for line in self._stream:
                if line.strip():
                    return line
                self._skipped += 1
        except UnicodeDecodeError as exc:
            raise UsageError(f"--each {self.name}: cannot read it: {exc}") from None
        return ""

    def _lines(self) -> Iterator[str]:
        if self._first:
            yield self._first
        try:
            yield from self._stream
        except UnicodeDecodeError as exc:
            raise UsageError(f"--each {self.name}: cannot read it: {exc}") from None

    def _count(self) -> int | None:
        """How many rows the file holds: one cheap pass, so progress has an end and an ETA."""
        import csv

        csv.field_size_limit(MAX_FIELD)
        try:
            with open(self.name, encoding="utf-8-sig", newline="") as f:
                if self.jsonl:
                    return sum(1 for line in f if line.strip())
                return max(sum(1 for row in csv.reader(f) if row) - 1, 0)
        except (OSError, UnicodeDecodeError, ValueError, csv.Error):
            return None  # the real pass reports the problem with its line

    def __iter__(self) -> Iterator[dict[str, str]]:
        rows = self._jsonl() if self.jsonl else self._csv()
        for row in rows:
            self.read += 1
            yield row

    def _jsonl(self) -> Iterator[dict[str, str]]:
        for number, line in enumerate(self._lines(), self._skipped + 1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                if not isinstance(doc, dict):
                    raise UsageError(
                        f"--each {self.name}:{number}: expected a JSON object per line"
                    )
                row = {str(k): variable_text(v) for k, v in doc.items()}
                problem = not_text(row)
                if problem:
                    raise UsageError(f"--each {self.name}:{number}: {problem}")
            except json.JSONDecodeError as exc:
                raise UsageError(
                    f"--each {self.name}:{number}: not valid JSON: {exc.msg}"
                ) from None
            except (ValueError, RecursionError) as exc:  # 4300+ digit numbers, deep nesting
                raise UsageError(
                    f"--each {self.name}:{number}: cannot be read: {json_problem(exc)}"
                ) from None
            yield row

    def _csv(self) -> Iterator[dict[str, str]]:
        import csv

        csv.field_size_limit(MAX_FIELD)
        reader = csv.DictReader(self._lines())
        if not reader.fieldnames or not all(f and f.strip() for f in reader.fieldnames):
            raise UsageError(f"--each {self.name}: the first line must name the columns")
        try:
            for row in reader:
                if None in row:
                    line = reader.line_num + self._skipped
                    raise UsageError(f"--each {self.name}:{line}: more values than columns")
                yield {k.strip(): v for k, v in row.items() if v is not None}
        except csv.Error as exc:
            line = reader.line_num + self._skipped
            reason = str(exc)
            if "field larger than field limit" in reason:  # raised before its line is counted
                line += 1
                reason = f"a field is longer than {MAX_FIELD >> 20} MiB"
            raise UsageError(f"--each {self.name}:{line}: {reason}") from None

    def close(self) -> None:
        if self._stream is not sys.stdin:
            self._stream.close()


def variable_text(value: Any) -> str:
    """A JSON or YAML value as the text of a call variable."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def not_text(variables: dict[str, str]) -> str | None:
    """Why a variable read from JSON cannot be sent: a lone surrogate (``"\\ud800"``) is
    valid JSON but no Unicode text, so it has no UTF-8 bytes to go on the wire."""
    for name, value in variables.items():
        try:
            name.encode("utf-8")
            value.encode("utf-8")
        except UnicodeEncodeError:
            shown = name.encode("utf-8", "backslashreplace").decode("utf-8")[:40]
            return f"variable '{shown}' holds a lone surrogate escape (not Unicode text)"
    return None


def json_problem(exc: BaseException) -> str:
    """Why a JSON text that parses could still not be used, in a few words."""
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if "integer string conversion" in str(exc):
        return "a number has more than 4300 digits"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def parse_rate(rate: str | None) -> float | None:
    """``10``, ``10/s``, ``600/m`` or ``3600/h`` → calls per second."""
    if rate is None:
        return None
    number, _, unit = rate.strip().partition("/")
    per = {"": 1.0, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}.get(unit.strip().lower())
    try:
        value = float(number)
    except ValueError:
        value = -1.0
    if per is None or not value > 0 or value == float("inf"):
        raise UsageError(f"--rate takes N/s, N/m or N/h with N > 0, got {rate[:40]!r}")
    if value / per < MIN_RATE:
        raise UsageError(f"--rate {rate[:40]}: slower than one call a day; is it a typo?")
    return value / per


class RateLimiter:
    """Spaces call starts at least ``1/per_second`` apart, across threads."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, stop: threading.Event | None = None) -> bool:
        """Wait for this call's turn; False when ``stop`` was set first (Ctrl-C)."""
        if not self.interval:
            return True
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start <= now:
            return True
        if stop is None:
            time.sleep(start - now)
            return True
        return not stop.wait(start - now)
