"""``oauthcli log``: the outbound log, as lines, as JSON lines, or as a HAR 1.2 archive.

Records go to stdout as they are read (a large log is never held whole); notes and the
warning about skipped lines to stderr. ``--json`` prints each record as stored, with its
control characters escaped on a terminal; ``--har FILE`` writes the archive (``-``:
stdout) and says on stderr how many entries it holds.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from oauthcli.errors import ExitCode, UsageError
from oauthcli.outlog.place import log_dir
from oauthcli.outlog.reader import OutboundLog, Record, Selection
from oauthcli.present import console


def log_command(
    *,
    last: int | None,
    message: str | None,
    profile: str | None,
    failed: bool,
    as_json: bool,
    har: str | None,
) -> int:
    if as_json and har is not None:
        raise UsageError("--json and --har cannot be used together")
    if last is not None and last < 1:
        raise UsageError(f"--last takes a number of calls above 0, not {last}")
    if har == "":
        raise UsageError("--har takes a file name, or '-' for standard output")
    selection = Selection(message=message, profile=profile, failed=failed)
    folder = log_dir()
    log = OutboundLog.open(folder)
    if log is None:
        console.err(
            f"no outbound log yet in {folder} (calls are recorded there as they are made; "
            "OAUTHCLI_LOG_DIR chooses the folder)"
        )
        if har is not None:
            _write_har(har, [])
        return int(ExitCode.OK)
    with log:
        records: Iterable[Record] = (
            log.records(selection) if last is None else log.last(last, selection)
        )
        counted = _Counted(records)
        if har is not None:
            _write_har(har, counted)
        elif as_json:
            _print_json(counted)
        else:
            for record in counted:
                _print_line(record)
        note = log.skipped_note()
    if note:
        console.warn(note)
    if not counted.count and _narrowed(selection):
        console.err(f"no recorded call matches {_described(selection)}")
    return int(ExitCode.OK)


class _Counted:
    def __init__(self, records: Iterable[Record]) -> None:
        self._records = records
        self.count = 0

    def __iter__(self) -> Iterator[Record]:
        for record in self._records:
            self.count += 1
            yield record


def _print_line(record: Record) -> None:
    from oauthcli.present.outbound import line

    console.out(line(record, sys.stdout))


def _print_json(records: Iterable[Record]) -> None:
    escape = sys.stdout.isatty()
    for record in records:
        # A stored line is valid JSON: a control character in it is white space between
        # members or (C1, DEL) inside a string, where its \\u escape means the same.
        console.out(_json_escaped(record.line) if escape else record.line)


def _json_escaped(text: str) -> str:
    out = []
    for char in text:
        code = ord(char)
        if code < 0x20:
            out.append(" ")
        elif 0x7F <= code <= 0x9F:
            out.append(f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def _write_har(target: str, records: Iterable[Record]) -> None:
    from oauthcli.outlog import har

    if target == "-":
        out = _Stdout()
        har.write(records, out)
        out.close()
        return
    try:
        path = Path(target).expanduser()
    except RuntimeError:  # '~nosuchuser/x': a name like any other
        path = Path(target)
    count = har.save(records, path)
    console.err(f"wrote {count} HAR entr{'y' if count == 1 else 'ies'} to {path}")


class _Stdout:
    """The archive on stdout through the console (secrets seen are masked, a closed pipe
    ends quietly), a line at a time."""

    def __init__(self) -> None:
        self._open = ""

    def write(self, text: str) -> int:
        lines = (self._open + text).split("\n")
        self._open = lines.pop()
        for piece in lines:
            console.out(piece)
        return len(text)

    def close(self) -> None:
        if self._open:
            console.out(self._open)
            self._open = ""


def _narrowed(selection: Selection) -> bool:
    return selection.failed or selection.message is not None or selection.profile is not None


def _described(selection: Selection) -> str:
    said = []
    if selection.message is not None:
        said.append(f"--message {selection.message}")
    if selection.profile is not None:
        said.append(f"--profile {selection.profile}")
    if selection.failed:
        said.append("--failed")
    return " ".join(said)
