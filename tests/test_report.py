"""``send --each … --report FILE``: a JUnit XML report, read back as CI systems read it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest
from junitparser import Error, Failure, JUnitXml

from tests.cliproc import oauthcli
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded, TokenServer

SECRET = "report-client-secret"


@pytest.fixture
def registry(loopback: LoopbackServer, token_server: TokenServer, tmp_path: Path) -> Path:
    def answer(rec: Recorded) -> Any:
        number = rec.path.rpartition("/")[2].partition("?")[0]
        if number == "404":
            body = {"error": {"message": "No Record found", "detail": "echo " + SECRET}}
            return 404, {"Content-Type": "application/json"}, json.dumps(body).encode()
        if number == "slow":
            time.sleep(3)
        return 200, {"Content-Type": "application/json"}, json.dumps({"n": number}).encode()

    loopback.fallback = answer
    return make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": f"""\
                grant_type: client_credentials
                token_url: {token_server.url}/token
                client_id: app
                client_secret: {SECRET}
                """,
            "messages/incidents.yaml": f"""\
                endpoint: {loopback.base}/api/incidents
                auth: {{type: oauth2, profile: acme}}
                methods:
                  get: {{http_method: GET, path: "/${{number}}"}}
                """,
        },
    )


def _rows(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rows.csv"
    path.write_text(text)
    return path


def test_passing_and_failing_rows(registry: Path, tmp_path: Path) -> None:
    rows = _rows(tmp_path, "number,api_token,note\n1,tok-AAAA-1111,first\n404,tok-BBBB,x\n3,t,y\n")
    report = tmp_path / "out" / "junit.xml"
    report.parent.mkdir()
    done = oauthcli("send", "incidents.get", "--each", rows, "--report", report, registry=registry)
    assert done.code == 4, done
    xml = JUnitXml.fromfile(str(report))
    (suite,) = list(xml)
    assert suite.name == "oauthcli send incidents.get"
    assert (suite.tests, suite.failures, suite.errors) == (3, 1, 0)
    cases = list(suite)
    assert [c.name for c in cases] == [
        "row 1: number=1, api_token=****, note=first",
        "row 2: number=404, api_token=****, note=x",
        "row 3: number=3, api_token=****, note=y",
    ]
    assert {c.classname for c in cases} == {"incidents.get"}
    assert [c.is_passed for c in cases] == [True, False, True]
    (failure,) = cases[1].result
    assert isinstance(failure, Failure)
    assert "404" in failure.message
    assert "404" in (failure.text or "") and "/api/incidents/404" in (failure.text or "")
    assert all(float(c.time) >= 0 for c in cases)
    text = report.read_text()
    assert SECRET not in text and "at-1-from-server" not in text
    assert "tok-AAAA-1111" not in text  # a variable named like a credential
    # the shape GitLab and Jenkins read
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    assert [e.tag for e in root] == ["testsuite"]
    assert root[0].get("time") is not None and root[0].get("timestamp") is not None


def test_all_passing_and_a_registry_error_row(registry: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"number": "1"}\n{"other": "x"}\n')
    report = tmp_path / "r.xml"
    done = oauthcli("send", "incidents.get", "--each", rows, "--report", report, registry=registry)
    assert done.code == 3, done
    (suite,) = list(JUnitXml.fromfile(str(report)))
    cases = list(suite)
    assert cases[0].is_passed
    (failure,) = cases[1].result
    assert "number" in failure.message and "exit 3" in failure.type


def test_the_report_replaces_a_file_and_never_writes_through_a_link(
    registry: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    report = tmp_path / "r.xml"
    report.symlink_to(victim)
    rows = _rows(tmp_path, "number\n1\n")
    done = oauthcli("send", "incidents.get", "--each", rows, "--report", report, registry=registry)
    assert done.code == 0, done
    assert victim.read_text() == "keep me"
    assert not report.is_symlink() and "testsuite" in report.read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_report_that_cannot_be_written_is_refused_before_any_row(
    registry: Path, loopback: LoopbackServer, tmp_path: Path
) -> None:
    rows = _rows(tmp_path, "number\n1\n")
    refused: list[tuple[str | Path, str]] = [
        (tmp_path / "no" / "r.xml", "does not exist"),
        (tmp_path, "folder"),
        ("-", "stdout holds the rows' JSON lines"),
    ]
    for where, why in refused:
        done = oauthcli(
            "send", "incidents.get", "--each", rows, "--report", where, registry=registry
        )
        assert done.code == 2, done
        assert why in done.err and len(done.err.strip().splitlines()) == 1, done
    done = oauthcli("send", "incidents.get", "--report", tmp_path / "r.xml", registry=registry)
    assert done.code == 2 and "--report only applies with --each" in done.err, done
    assert loopback.requests == []


def test_an_interrupted_run_reports_the_rows_done(registry: Path, tmp_path: Path) -> None:
    rows = _rows(tmp_path, "number\n1\n2\nslow\n4\n5\n6\n7\n8\n")
    report = tmp_path / "r.xml"
    env = {**os.environ, "NO_COLOR": "1", "PYTHONIOENCODING": "utf-8"}
    env = {k: v for k, v in env.items() if not k.lower().endswith("_proxy")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "oauthcli",
            "-r",
            str(registry),
            "send",
            "incidents.get",
            "--each",
            str(rows),
            "--concurrency",
            "1",
            "--report",
            str(report),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 10
    seen = b""
    while seen.count(b"\n") < 2 and time.monotonic() < deadline:
        seen += proc.stdout.read1(4096)  # type: ignore[attr-defined]
    time.sleep(0.3)  # the slow row is in flight
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    assert proc.returncode == 130, err
    (suite,) = list(JUnitXml.fromfile(str(report)))
    names = [c.name for c in suite]
    assert names[:2] == ["row 1: number=1", "row 2: number=2"]
    assert 2 <= len(names) <= 3 and suite.tests == len(names)
    assert "interrupted" in err.decode()


def test_with_no_fail_a_4xx_row_passes(registry: Path, tmp_path: Path) -> None:
    rows = _rows(tmp_path, "number\n404\n")
    report = tmp_path / "r.xml"
    done = oauthcli(
        "send",
        "incidents.get",
        "--each",
        rows,
        "--no-fail",
        "--report",
        report,
        registry=registry,
    )
    assert done.code == 0, done
    (suite,) = list(JUnitXml.fromfile(str(report)))
    assert suite.failures == 0 and [c.is_passed for c in suite] == [True]


def test_values_xml_cannot_hold_are_replaced_and_names_are_escaped(
    registry: Path, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"number": "1", "note": '<&"\x01 é>'}) + "\n")
    report = tmp_path / "r.xml"
    done = oauthcli("send", "incidents.get", "--each", rows, "--report", report, registry=registry)
    assert done.code == 0, done
    (suite,) = list(JUnitXml.fromfile(str(report)))
    (case,) = list(suite)
    assert case.name == 'row 1: number=1, note=<&"\ufffd é>'


def test_a_bug_in_a_row_is_an_error_element() -> None:
    import tempfile

    from oauthcli.present.junit import Report

    with tempfile.TemporaryDirectory() as folder:
        report = Report(Path(folder) / "r.xml", "m.get", "m.get")
        report.add(1, {"a": "1"}, 1, 0.01, "internal error", ["internal error: KeyError: 'x'"])
        report.add(2, {"a": "2"}, 6, 0.02, "token error", ["the token endpoint refused"])
        report.write()
        (suite,) = list(JUnitXml.fromfile(str(Path(folder) / "r.xml")))
        first, second = list(suite)
        assert isinstance(first.result[0], Error) and isinstance(second.result[0], Failure)
        assert (suite.failures, suite.errors) == (1, 1)
