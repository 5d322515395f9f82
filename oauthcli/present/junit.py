"""``send --each … --report FILE``: a JUnit XML report of the rows, for CI (SPEC §6).

The shape GitLab, Jenkins and GitHub's test reporters read: one ``<testsuites>`` holding
one ``<testsuite name="oauthcli send MESSAGE" tests= failures= errors= time=>``, and in it
one ``<testcase classname="MESSAGE.METHOD" name="row N: VARIABLES" time=>`` per row, in
row order. A row whose exit code is not 0 has a ``<failure message=… type=…>`` whose
message is the first line of its explanation and whose text is all of it; a row that
ended in an internal error (exit 1, a bug) has an ``<error>`` instead.

The XML is made by :mod:`xml.etree.ElementTree` (so every value is escaped), every text
is scrubbed of the secrets this process knows, and a variable whose name says it is a
credential shows as ``****``. The file is written at the end of the run, also of an
interrupted one (the rows done so far), to a temporary file in the same folder renamed
over ``FILE``: a reader never sees half a report, and a link at ``FILE`` is replaced,
never written through.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

from oauthcli.errors import ExitCode, UsageError
from oauthcli.secret import MASK, scrub

__all__ = ["Report", "check_writable"]

#: Variable names whose values are credentials: masked in a test case's name.
_SECRET_NAME = re.compile(r"pass|secret|token|key|assertion|credential|auth|cookie|session", re.I)
#: How many of a row's variables name its test case, and how much of each value.
_NAMED_VARIABLES = 3
_VALUE_CHARS = 40
#: Characters XML 1.0 cannot hold at all (ElementTree would write them as they are).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def check_writable(path: Path) -> None:
    """Refuse, before any row is sent, a report that could not be written at the end."""
    if str(path) == "-":
        raise UsageError(
            "--report -: the report goes to a file (stdout holds the rows' JSON lines); "
            "give a file name, e.g. --report report.xml"
        )
    target = path.expanduser()
    if target.is_dir():
        raise UsageError(f"--report {path}: is a folder, not a file")
    folder = target.parent
    if not folder.is_dir():
        raise UsageError(f"--report {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"--report {path}: the folder {folder} is not writable")


@dataclass
class _Case:
    name: str
    seconds: float
    code: int
    label: str
    lines: list[str]


@dataclass
class Report:
    """The test cases of one ``--each`` run, written to ``path`` by :meth:`write`."""

    path: Path
    message: str  # MESSAGE[.METHOD] as given
    classname: str  # MESSAGE.METHOD
    started: float = field(default_factory=time.time)
    _cases: list[_Case] = field(default_factory=list)

    def add(
        self,
        number: int,
        row: dict[str, str] | None,
        code: int,
        seconds: float,
        label: str,
        lines: list[str],
    ) -> None:
        """Row ``number`` (in row order): its variables, exit code, time and explanation."""
        self._cases.append(_Case(case_name(number, row), seconds, code, label, lines))

    def write(self) -> None:
        """The report, atomically; an OSError is the caller's to report."""
        target = self.path.expanduser()
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as file:
                ET.ElementTree(self._tree()).write(file, encoding="utf-8", xml_declaration=True)
                file.flush()
                os.fsync(file.fileno())
            umask = os.umask(0o077)
            os.umask(umask)
            os.chmod(temp, 0o666 & ~umask)  # a report, not a secret: as any file is made
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise

    def _tree(self) -> ET.Element:
        failures = sum(1 for c in self._cases if c.code not in (0, ExitCode.INTERNAL))
        errors = sum(1 for c in self._cases if c.code == ExitCode.INTERNAL)
        attrs = {
            "name": _text(f"oauthcli send {self.message}"),
            "tests": str(len(self._cases)),
            "failures": str(failures),
            "errors": str(errors),
            "skipped": "0",
            "time": _seconds(time.time() - self.started),
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(self.started)),
        }
        suites = ET.Element(
            "testsuites",
            {k: attrs[k] for k in ("name", "tests", "failures", "errors", "time")},
        )
        suite = ET.SubElement(suites, "testsuite", attrs)
        for case in self._cases:
            element = ET.SubElement(
                suite,
                "testcase",
                {
                    "classname": _text(self.classname),
                    "name": case.name,
                    "time": _seconds(case.seconds),
                },
            )
            if case.code == 0:
                continue
            lines = [_text(line) for line in case.lines if line.strip()] or [
                f"exit {case.code} ({case.label})"
            ]
            tag = "error" if case.code == ExitCode.INTERNAL else "failure"
            problem = ET.SubElement(
                element,
                tag,
                {"message": lines[0], "type": _text(f"exit {case.code}: {case.label}")},
            )
            problem.text = "\n".join(lines)
        return suites


def case_name(number: int, row: dict[str, str] | None) -> str:
    """``row N: name=value, …``: the row's first variables, credentials masked."""
    if not row:
        return f"row {number}"
    shown = []
    for name, value in list(row.items())[:_NAMED_VARIABLES]:
        value = str(value)
        if _SECRET_NAME.search(name):
            value = MASK
        elif len(value) > _VALUE_CHARS:
            value = value[:_VALUE_CHARS] + "…"
        shown.append(f"{name}={value}")
    more = ", …" if len(row) > _NAMED_VARIABLES else ""
    return " ".join(_text(f"row {number}: {', '.join(shown)}{more}").split())


def _text(text: str) -> str:
    """Text as it may go in the report: secrets blanked, on one line for a name, XML-safe."""
    return _NOT_XML.sub("\ufffd", scrub(text))


def _seconds(seconds: float) -> str:
    return f"{max(seconds, 0.0):.3f}"
