"""``oauthcli send``: build the request from the options, send it, show the result.

With ``--each FILE`` one call is made per row of a CSV (header line) or JSONL
file, ``--concurrency`` at a time through one shared :class:`Sender`; each row's
result is one JSON line on stdout in row order, the summary goes to stderr and
the exit code is the worst row's (the highest code).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from oauthcli import console
from oauthcli.errors import ExitCode, OAuthCliError, UsageError
from oauthcli.models import Message, Method
from oauthcli.registry import Registry
from oauthcli.resolve import ResolvedRequest, resolve_request, split_target
from oauthcli.secret import remember, scrub

_BODY_TYPES = {
    "json": "application/json",
    "content": "text/plain; charset=utf-8",
    "form": "application/x-www-form-urlencoded",
    "": None,
}


@dataclass
class SendOptions:
    variables: dict[str, str] = field(default_factory=dict)
    vars_file: Path | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str | None = None
    as_json: bool = False
    verbose: bool = False
    dry_run: bool = False
    timeout: float | None = None
    retries: int | None = None
    no_fail: bool = False
    each: str | None = None
    concurrency: int = 4
    rate: str | None = None


def send_command(registry: Registry, target: str, method: str | None, options: SendOptions) -> int:
    if options.rate is not None and options.each is None:
        raise UsageError("--rate only applies with --each")
    if options.each == "-" and options.body == "-":
        raise UsageError("--each - and --body - cannot both read stdin")
    message, meth = split_target(registry, target, method)
    variables = dict(options.variables)
    if options.vars_file is not None:
        variables = {**read_vars_file(options.vars_file), **variables}
    body = read_body(options.body)
    if options.each is not None:
        return run_batch(registry, message, meth, variables, body, options)

    req = build_request(registry, message, meth, variables, body, options)
    from oauthcli import output

    if options.dry_run:
        for line in output.dry_run_lines(req):
            console.out(line)
        return int(ExitCode.OK)
    from oauthcli.sending import Sender

    with Sender(pool_size=1) as sender:
        result = sender.send(req, output.VerboseTrace() if options.verbose else None)
    output.show_result(result, as_json=options.as_json, no_fail=options.no_fail)
    return output.exit_code(result, options.no_fail)


def build_request(
    registry: Registry,
    message: Message,
    method: Method,
    variables: dict[str, str],
    body: bytes | None,
    options: SendOptions,
) -> ResolvedRequest:
    """The resolved request with -H, --body, --timeout and --retries applied."""
    body_type = None
    if body is not None:
        # The method's body template is not rendered (its variables are not needed),
        # but the type it declares still describes the bytes that replace it.
        body_type = _BODY_TYPES[
            "json"
            if method.has_json
            else "content"
            if method.content
            else "form"
            if method.form is not None
            else ""
        ]
        method = replace(method, json=None, has_json=False, content=None, form=None)
    req = resolve_request(registry, message, method, variables)
    from oauthcli.sending import secret_header_names

    secret_names = secret_header_names(req)
    headers = dict(req.headers)
    for name, value in options.headers:
        for existing in [h for h in headers if h.lower() == name.lower()]:
            del headers[existing]
        if value:  # curl's -H 'Name:' removes a header
            headers[name] = value
        if name.lower() in secret_names:
            remember(value)
            remember(value.partition(" ")[2])
    if body_type and not any(h.lower() == "content-type" for h in headers):
        headers["Content-Type"] = body_type
    req = replace(req, headers=headers)
    if body is not None:
        req = replace(req, body=body, json=None)
    if options.timeout is not None:
        req = replace(req, timeout=options.timeout)
    if options.retries is not None:
        req = replace(req, retry=replace(req.retry, attempts=options.retries + 1))
    return req


def read_body(spec: str | None) -> bytes | None:
    if spec is None:
        return None
    if spec == "-":
        return sys.stdin.buffer.read()
    if not spec.startswith("@") or len(spec) == 1:
        raise UsageError(f"--body takes @FILE or - (stdin), got {spec[:20]!r}")
    path = Path(spec[1:]).expanduser()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--body: cannot read {path}: {exc.strerror or exc}") from None


def read_vars_file(path: Path) -> dict[str, str]:
    """A YAML or JSON object of call variables; anything else is a usage error naming the file."""
    try:
        text = path.expanduser().read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"--vars-file {path}: cannot read it: {reason}") from None
    try:
        if path.suffix.lower() == ".json":
            doc = json.loads(text)
        else:
            import yaml

            doc = yaml.safe_load(text)
    except Exception as exc:  # json.JSONDecodeError or yaml.YAMLError
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"--vars-file {path}: not valid YAML or JSON: {first}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise UsageError(
            f"--vars-file {path}: expected an object of NAME: value, got {type(doc).__name__}"
        )
    return {str(k): variable_text(v) for k, v in doc.items()}


def variable_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, ensure_ascii=False)


# -- --each ------------------------------------------------------------------


def read_rows(spec: str) -> list[dict[str, str]]:
    """Rows of a CSV file with a header line, or of a JSONL file; ``-`` is stdin."""
    if spec == "-":
        name, text = "stdin", sys.stdin.read()
    else:
        path = Path(spec).expanduser()
        name = str(path)
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise UsageError(f"--each {path}: cannot read it: {reason}") from None
    suffix = Path(spec).suffix.lower() if spec != "-" else ""
    jsonl = suffix in (".jsonl", ".ndjson", ".json") or (
        suffix != ".csv" and text.lstrip().startswith("{")
    )
    return _jsonl_rows(name, text) if jsonl else _csv_rows(name, text)


def _jsonl_rows(name: str, text: str) -> list[dict[str, str]]:
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            doc = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UsageError(f"--each {name}:{number}: not valid JSON: {exc.msg}") from None
        if not isinstance(doc, dict):
            raise UsageError(f"--each {name}:{number}: expected a JSON object per line")
        rows.append({str(k): variable_text(v) for k, v in doc.items()})
    return rows


def _csv_rows(name: str, text: str) -> list[dict[str, str]]:
    import csv
    import io

    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not all(f and f.strip() for f in reader.fieldnames):
        raise UsageError(f"--each {name}: the first line must name the columns")
    rows = []
    for row in reader:
        if None in row:
            raise UsageError(f"--each {name}:{reader.line_num}: more values than columns")
        rows.append({k.strip(): v for k, v in row.items() if v is not None})
    return rows


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
    if per is None or not value > 0:
        raise UsageError(f"--rate takes N/s, N/m or N/h with N > 0, got {rate!r}")
    return value / per


class RateLimiter:
    """Spaces call starts at least ``1/per_second`` apart, across threads."""

    def __init__(self, per_second: float | None) -> None:
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


def run_batch(
    registry: Registry,
    message: Message,
    method: Method,
    variables: dict[str, str],
    body: bytes | None,
    options: SendOptions,
) -> int:
    assert options.each is not None
    limiter = RateLimiter(parse_rate(options.rate))
    rows = read_rows(options.each)
    from concurrent.futures import ThreadPoolExecutor

    from oauthcli import output
    from oauthcli.sending import Result, Sender

    if options.dry_run:
        for number, row in enumerate(rows, 1):
            req = build_request(registry, message, method, {**variables, **row}, body, options)
            console.out(f"# row {number}")
            for line in output.dry_run_lines(req):
                console.out(line)
        return int(ExitCode.OK)

    def one(number: int, row: dict[str, str]) -> tuple[dict[str, Any], Result | None]:
        limiter.wait()
        try:
            req = build_request(registry, message, method, {**variables, **row}, body, options)
            trace = output.VerboseTrace(f"[{number}] ") if options.verbose else None
            result = sender.send(req, trace)
        except OAuthCliError as exc:
            return _error_row(number, int(exc.exit_code), str(exc)), None
        except Exception as exc:  # a bug: keep the other rows going, report it in the row
            return _error_row(number, 1, f"internal error: {type(exc).__name__}: {exc}"), None
        code = output.exit_code(result, options.no_fail)
        error = None
        if result.status >= 400:
            from oauthcli.explain import failure_lines

            error = failure_lines(result)[0]
        return {"row": number, **output.result_object(result), "exit_code": code, "error": error}, (
            result if result.status >= 400 else None
        )

    started = time.monotonic()
    codes: list[int] = []
    first_failure: tuple[int, Result] | None = None
    progress = sys.stderr.isatty() and not options.verbose
    with (
        Sender(pool_size=options.concurrency) as sender,
        ThreadPoolExecutor(max_workers=options.concurrency) as pool,
    ):
        futures = [pool.submit(one, n, row) for n, row in enumerate(rows, 1)]
        try:
            for number, future in enumerate(futures, 1):
                obj, failed = future.result()
                console.out(json.dumps(obj, ensure_ascii=False))
                sys.stdout.flush()
                codes.append(obj["exit_code"])
                if failed is not None and first_failure is None:
                    first_failure = (number, failed)
                if progress:
                    sys.stderr.write(f"\r{_bar(number, len(rows))}")
                    sys.stderr.flush()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    if progress:
        sys.stderr.write("\r\x1b[2K")
    console.err(_summary(codes, time.monotonic() - started))
    if first_failure is not None:
        output.show_failure(
            first_failure[1], no_fail=options.no_fail, prefix=f"row {first_failure[0]}: "
        )
    return max(codes, default=int(ExitCode.OK))


def _error_row(number: int, code: int, message: str) -> dict[str, Any]:
    empty = dict.fromkeys(
        ("status", "reason", "url", "http_method", "headers", "body", "elapsed_ms", "attempts")
    )
    return {"row": number, **empty, "exit_code": code, "error": scrub(message)}


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // max(total, 1)
    return f"[{'#' * filled}{'-' * (width - filled)}] {done}/{total}"


def _summary(codes: list[int], seconds: float) -> str:
    labels = {
        0: "ok",
        1: "internal error",
        2: "usage error",
        3: "registry error",
        4: "4xx",
        5: "5xx",
        6: "token error",
        7: "network error",
    }
    counts: dict[int, int] = {}
    for code in codes:
        counts[code] = counts.get(code, 0) + 1
    parts = [f"{counts[c]} {labels.get(c, f'exit {c}')}" for c in sorted(counts)]
    return f"{len(codes)} row(s) in {seconds:.1f} s: {', '.join(parts) or 'nothing to do'}"
