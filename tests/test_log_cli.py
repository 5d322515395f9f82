"""``oauthcli log`` from the command line: lines, ``--json``, ``--har``, filters, exit codes,
hostile records, untrusted folders, and a 200 MiB log read in bounded time and memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cliproc import oauthcli
from tests.clirun import run
from tests.outlog_records import API_URL, TOKEN_URL, at, elevated, line, record, write_log
from tests.terminal import on_terminal

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def logdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "log"
    monkeypatch.setenv("OAUTHCLI_LOG_DIR", str(folder))
    return folder


def test_one_line_per_call_like_the_status_line(logdir: Path) -> None:
    write_log(
        logdir,
        {
            "outbound.jsonl": [
                record(),
                at(
                    5,
                    message="incidents.get",
                    url="http://127.0.0.1:8976/api/now/table/incident/x",
                    status=503,
                    reason="Service Unavailable",
                    elapsed_ms=1503.6,
                    attempts=3,
                    exit_code=5,
                    decisions=[{"kind": "cached", "text": "cached", "expires_in_s": 250.4}],
                    token_requests=[],
                ),
                at(
                    6,
                    message="incidents.list",
                    status=None,
                    reason=None,
                    exit_code=7,
                    error="cannot connect to 127.0.0.1:8976: connection refused",
                    decisions=[],
                    token_requests=[],
                ),
                at(
                    7,
                    kind="token",
                    message=None,
                    url=TOKEN_URL,
                    method="POST",
                    status=200,
                    reason=None,
                    elapsed_ms=21,
                    decisions=[
                        {"kind": "none_cached", "text": "no token in the cache"},
                        {
                            "kind": "grant",
                            "text": "client_credentials",
                            "grant": "client_credentials",
                        },
                    ],
                ),
                at(
                    8,
                    kind="token",
                    message=None,
                    url=TOKEN_URL,
                    method=None,
                    status=None,
                    reason=None,
                    elapsed_ms=3,
                    attempts=0,
                    decisions=[{"kind": "cached", "text": "cached", "expires_in_s": 299.7}],
                    token_requests=[],
                ),
                at(
                    9,
                    kind="revoke",
                    message=None,
                    url="http://127.0.0.1:8976/oauth/revoke",
                    method="POST",
                    status=200,
                    reason=None,
                    elapsed_ms=41,
                    decisions=[],
                    token_requests=[
                        {
                            "url": "http://127.0.0.1:8976/oauth/revoke",
                            "method": "POST",
                            "grant": None,
                            "status": 200,
                            "elapsed_ms": 40,
                        }
                    ],
                ),
                at(
                    10,
                    message=None,
                    url="http://127.0.0.1:9/x",
                    elapsed_ms=9,
                    decisions=[],
                    token_requests=[],
                ),
            ]
        },
    )
    done = run("log")
    assert done.code == 0 and done.err == "", done
    assert done.out.splitlines() == [
        f"2026-12-02 05:40:00  200 OK  84 ms  GET {API_URL}  incidents.list  "
        "token: renewed (12 s left < 60 s window); 1 token request (200)",
        "2026-12-02 05:40:05  503 Service Unavailable  1504 ms  GET "
        "http://127.0.0.1:8976/api/now/table/incident/x  incidents.get  3 attempts  "
        "token: cached (250.4 s left)  exit 5",
        f"2026-12-02 05:40:06  ---  84 ms  GET {API_URL}  incidents.list  "
        "exit 7: cannot connect to 127.0.0.1:8976: connection refused",
        f"2026-12-02 05:40:07  200  21 ms  POST {TOKEN_URL}  token acme  "
        "token: none cached; grant client_credentials",
        f"2026-12-02 05:40:08  cached  3 ms  {TOKEN_URL}  token acme  token: cached (299.7 s left)",
        "2026-12-02 05:40:09  200  41 ms  POST http://127.0.0.1:8976/oauth/revoke  revoke acme",
        "2026-12-02 05:40:10  200 OK  9 ms  GET http://127.0.0.1:9/x  profile acme",
    ]


def test_json_prints_the_records_as_stored(logdir: Path) -> None:
    stored = [line(at(1)), line(elevated(pid=2, future=[1, "x"])), line(at(3, message="é.x"))]
    write_log(logdir, {"outbound.jsonl.1": [stored[0]], "outbound.jsonl": stored[1:]})
    done = oauthcli("log", "--json")
    assert done.code == 0 and done.err == "", done
    assert done.data == b"".join(stored)


def test_last_and_filters(logdir: Path) -> None:
    write_log(
        logdir,
        {
            "outbound.jsonl.1": [at(1), at(2, exit_code=4, status=404, reason="Not Found")],
            "outbound.jsonl": [at(3, message="users.get"), at(4), at(5, exit_code=6)],
        },
    )

    def pids(*args: str) -> list[int]:
        done = run("log", "--json", *args)
        assert done.code == 0, done
        return [json.loads(x)["pid"] - 10_000 for x in done.out.splitlines()]

    assert pids() == [1, 2, 3, 4, 5]
    assert pids("--last", "2") == [4, 5]
    assert pids("--failed") == [2, 5]
    assert pids("--failed", "--last", "1") == [5]
    assert pids("--message", "users") == [3]
    assert pids("--message", "incidents.list", "--last", "3") == [2, 4, 5]
    assert pids("--profile", "acme", "--failed") == [2, 5]


def test_nothing_matching_says_so_on_stderr(logdir: Path) -> None:
    write_log(logdir, {"outbound.jsonl": [at(1)]})
    done = run("log", "--failed", "--message", "users")
    assert done.code == 0 and done.out == ""
    assert done.err == "no recorded call matches --message users --failed\n"


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_last_must_be_above_0(logdir: Path, value: str) -> None:
    write_log(logdir, {"outbound.jsonl": [at(1)]})
    done = oauthcli("log", "--last", value)
    assert done.code == 2 and done.out == "", done
    assert "--last" in done.err and "Traceback" not in done.err


def test_json_and_har_together_is_a_usage_error(logdir: Path, tmp_path: Path) -> None:
    done = oauthcli("log", "--json", "--har", tmp_path / "x.har")
    assert done.code == 2 and done.err == "error: --json and --har cannot be used together\n"
    done = oauthcli("log", "--har", "")
    assert done.code == 2 and "--har takes a file name" in done.err


def test_no_log_yet_is_a_note_and_exit_0(logdir: Path, tmp_path: Path) -> None:
    done = oauthcli("log")
    assert done.code == 0 and done.out == "", done
    assert done.err == (
        f"no outbound log yet in {logdir} (calls are recorded there as they are made; "
        "OAUTHCLI_LOG_DIR chooses the folder)\n"
    )
    done = oauthcli("log", "--har", tmp_path / "empty.har")
    assert done.code == 0
    assert json.loads((tmp_path / "empty.har").read_text())["log"]["entries"] == []


def test_without_log_dir_the_user_state_folder_is_read(tmp_path: Path) -> None:
    state = tmp_path / "state"
    write_log(state / "oauthcli" / "log", {"outbound.jsonl": [at(1)]})
    done = oauthcli("log", "--json", env={"XDG_STATE_HOME": str(state), "OAUTHCLI_LOG_DIR": ""})
    assert done.code == 0 and json.loads(done.out)["pid"] == 10_001, done


def test_lines_that_are_not_records_are_one_warning_at_the_end(logdir: Path) -> None:
    write_log(
        logdir, {"outbound.jsonl": [b"garbage\n", at(1), b"\x00\xff\n", b"[" * 100_000 + b"\n"]}
    )
    done = oauthcli("log")
    assert done.code == 0 and len(done.out.splitlines()) == 1, done
    assert done.err == (
        f"warning: 3 lines of {logdir / 'outbound.jsonl'} were not records; skipped\n"
    )


@pytest.mark.parametrize(
    ("setup", "said"),
    [
        (lambda d: os.chmod(d, 0o777), "is writable by group and others (mode 0777)"),
        (lambda d: os.chmod(d / "outbound.jsonl", 0o660), "outbound.jsonl is writable by group"),
        (lambda d: (d / "outbound.jsonl.1").symlink_to("/etc/passwd"), "is a symbolic link"),
    ],
)
def test_an_untrusted_folder_or_file_is_exit_3_naming_it(logdir: Path, setup, said: str) -> None:
    write_log(logdir, {"outbound.jsonl": [at(1)]})
    setup(logdir)
    done = oauthcli("log")
    assert done.code == 3 and done.out == "", done
    assert len(done.err.splitlines()) == 1 and done.err.startswith("error: the outbound log ")
    assert str(logdir) in done.err
    assert said in done.err and "Traceback" not in done.err


def test_a_log_folder_linked_by_another_user_is_exit_3(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("a link owned by another user can only be planted as root (os.lchown)")
    real = write_log(tmp_path / "real", {"outbound.jsonl": [at(1)]})
    (tmp_path / "link").symlink_to(real)
    os.lchown(tmp_path / "link", 65534, 65534)
    done = oauthcli("log", env={"OAUTHCLI_LOG_DIR": str(tmp_path / "link")})
    assert done.code == 3 and done.out == ""
    assert f"{tmp_path / 'link'} is a symbolic link owned by uid 65534" in done.err


HOSTILE = "\x1b]0;owned\x07\x1b[2J\rred\x9b31m\u202e\ttab\nnext"


def test_server_strings_cannot_act_on_the_terminal(logdir: Path) -> None:
    write_log(
        logdir,
        {
            "outbound.jsonl": [
                record(
                    reason=HOSTILE,
                    url="http://127.0.0.1:9/\x1b[1m",
                    error=HOSTILE,
                    exit_code=4,
                    message="m\x1bx",
                    decisions=[{"kind": "new\x1b[5m", "text": HOSTILE}],
                )
            ]
        },
    )
    code, screen = on_terminal(
        [sys.executable, "-m", "oauthcli", "log"], env={"PYTHONPATH": str(ROOT)}
    )
    text = screen.decode()
    assert code == 0, text
    assert "\x1b]" not in text and "\x1b[2J" not in text and "\x9b" not in text
    assert "\r" not in text.replace("\r\n", "\n") and "\x07" not in text
    assert "\\x1b]0;owned\\x07\\x1b[2J\\x0dred\\x9b31m" in text
    assert len([x for x in text.splitlines() if x.strip()]) == 1  # one call, one line
    code, screen = on_terminal(
        [sys.executable, "-m", "oauthcli", "log", "--json"], env={"PYTHONPATH": str(ROOT)}
    )
    shown = screen.decode()
    assert code == 0 and "\x9b" not in shown and "\x1b" not in shown, shown
    assert json.loads(shown)["reason"] == HOSTILE  # escaped, and still the same JSON


def test_colour_only_on_a_terminal(logdir: Path) -> None:
    write_log(logdir, {"outbound.jsonl": [record(), at(1, status=500, reason="x", exit_code=5)]})
    code, screen = on_terminal(
        [sys.executable, "-m", "oauthcli", "log"], env={"PYTHONPATH": str(ROOT), "TERM": "xterm"}
    )
    assert code == 0 and "\x1b[32m200 OK\x1b[0m" in screen.decode()
    assert "\x1b[31m500 x\x1b[0m" in screen.decode()
    code, screen = on_terminal(
        [sys.executable, "-m", "oauthcli", "--no-color", "log"], env={"PYTHONPATH": str(ROOT)}
    )
    assert code == 0 and "\x1b[" not in screen.decode()
    assert "\x1b[" not in oauthcli("log").out


def test_a_closed_pipe_ends_quietly(logdir: Path) -> None:
    write_log(logdir, {"outbound.jsonl": [at(n % 3000) for n in range(20_000)]})
    with subprocess.Popen(
        [sys.executable, "-m", "oauthcli", "log"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()
        proc.stdout.close()
        err = proc.stderr.read().decode()
        assert proc.wait(30) == 141 and err == "", err


# -- --har ------------------------------------------------------------------------------


def test_har_writes_the_file_and_says_how_many_entries(logdir: Path, tmp_path: Path) -> None:
    write_log(logdir, {"outbound.jsonl": [record(), at(1, token_requests=[])]})
    target = tmp_path / "out" / "calls.har"
    target.parent.mkdir()
    done = oauthcli("log", "--har", target)
    assert done.code == 0 and done.out == "", done
    assert done.err == f"wrote 3 HAR entries to {target}\n"
    assert oct(os.stat(target).st_mode & 0o777) == "0o600"
    entries = json.loads(target.read_text())["log"]["entries"]
    assert [e["request"]["method"] for e in entries] == ["POST", "GET", "GET"]
    done = oauthcli("log", "--har", target, "--last", "1")
    assert done.err == f"wrote 1 HAR entry to {target}\n"


def test_har_dash_is_stdout(logdir: Path) -> None:
    write_log(logdir, {"outbound.jsonl": [record()]})
    done = oauthcli("log", "--har", "-")
    assert done.code == 0 and done.err == "", done
    document = json.loads(done.out)
    assert document["log"]["version"] == "1.2" and len(document["log"]["entries"]) == 2


@pytest.mark.parametrize("where", ["missing/calls.har", "a-file/calls.har", "."])
def test_har_to_an_unwritable_place_is_exit_3_naming_it(
    logdir: Path, tmp_path: Path, where: str
) -> None:
    write_log(logdir, {"outbound.jsonl": [record()]})
    (tmp_path / "a-file").write_text("")
    target = tmp_path / where
    done = oauthcli("log", "--har", target)
    assert done.code == 3 and done.out == "", done
    assert done.err.startswith(f"error: cannot write the HAR file {target}: "), done
    assert len(done.err.splitlines()) == 1


def test_har_to_a_read_only_folder_is_exit_3(logdir: Path, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes into a read-only folder")
    write_log(logdir, {"outbound.jsonl": [record()]})
    locked = tmp_path / "locked"
    locked.mkdir(0o500)
    done = oauthcli("log", "--har", locked / "x.har")
    assert done.code == 3 and "Permission denied" in done.err


# -- a large log ---------------------------------------------------------------------------


def _big_log(folder: Path, size: int) -> None:
    """``size`` bytes of records in outbound.jsonl, the last five told apart by pid."""
    folder.mkdir(mode=0o700)
    block = b"".join(line(elevated(pid=n)) for n in range(2000))
    path = folder / "outbound.jsonl"
    with open(path, "wb") as f:
        written = 0
        while written < size:
            f.write(block)
            written += len(block)
        f.write(b"".join(line(at(n, exit_code=4)) for n in range(5)))
    os.chmod(path, 0o600)


_MEASURE = """\
import resource, subprocess, sys, time
started = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True)
seconds = time.monotonic() - started
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
sys.stdout.write(f"{done.returncode} {seconds} {rss} {len(done.stdout)} {done.stderr!r}\\n")
sys.stdout.buffer.write(done.stdout[-4000:])
"""


def _measured(*args: str, env: dict[str, str]) -> tuple[int, float, float, str, str]:
    """Run ``oauthcli ARGS``: exit code, seconds, peak RSS in MiB, stdout's end, stderr."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", "oauthcli", *args],
        capture_output=True,
        env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
        timeout=170,
    )
    head, _, tail = done.stdout.partition(b"\n")
    code, seconds, rss, _, err = head.decode().split(" ", 4)
    return int(code), float(seconds), int(rss) / 1024, tail.decode(), err


def test_last_5_of_a_200_mib_log_in_bounded_time_and_memory(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    _big_log(folder, 200 << 20)
    env = {"OAUTHCLI_LOG_DIR": str(folder)}
    code, seconds, rss_mib, out, err = _measured("log", "--last", "5", "--json", env=env)
    assert code == 0 and err == "b''", err
    assert [json.loads(x)["pid"] for x in out.splitlines()] == [10_000 + n for n in range(5)]
    assert rss_mib < 100, f"{rss_mib:.0f} MiB"
    assert seconds < 20, f"{seconds:.1f} s"
    # every line read (only the five fail), backwards: memory stays bounded
    code, seconds, rss_mib, out, err = _measured("log", "--failed", "--last", "6", env=env)
    assert code == 0 and len(out.splitlines()) == 5 and err == "b''", err
    assert rss_mib < 100, f"{rss_mib:.0f} MiB"


def test_streaming_a_large_log_whole_keeps_memory_bounded(tmp_path: Path) -> None:
    folder = tmp_path / "log"
    _big_log(folder, 40 << 20)
    env = {"OAUTHCLI_LOG_DIR": str(folder)}
    started = time.monotonic()
    code, seconds, rss_mib, _, err = _measured("log", "--har", str(tmp_path / "all.har"), env=env)
    assert code == 0 and "wrote" in err, err
    assert rss_mib < 100, f"{rss_mib:.0f} MiB for {time.monotonic() - started:.1f} s"
    code, seconds, rss_mib, _, err = _measured("log", "--failed", env=env)
    assert code == 0 and err == "b''" and rss_mib < 100, f"{rss_mib:.0f} MiB"
    # --last of more calls than the log holds: found backwards, then streamed forwards
    har = tmp_path / "last.har"
    code, seconds, rss_mib, _, err = _measured(
        "log", "--last", "10000000", "--har", str(har), env=env
    )
    assert code == 0 and rss_mib < 100, f"{rss_mib:.0f} MiB"
    assert har.stat().st_size == (tmp_path / "all.har").stat().st_size


def test_message_and_profile_complete_from_the_registry(tmp_path: Path) -> None:
    from tests.registry_factory import MESSAGE, PROFILE, make_registry
    from tests.test_completion import bash

    registry = make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": PROFILE,
            "messages/incidents.yaml": "endpoint: http://127.0.0.1:9/i\n"
            "methods:\n  list: {http_method: GET}\n  get: {http_method: GET}\n",
            "messages/items.yaml": MESSAGE,
        },
    )
    assert bash("oauthcli log --message inc", registry) == [
        "incidents",
        "incidents.get",
        "incidents.list",
    ]
    assert bash("oauthcli log --message a", registry) == ["acme"]
    assert bash("oauthcli log --profile ", registry) == ["acme"]
    assert "--failed" in bash("oauthcli log --", registry)


def test_har_to_dev_stdout_and_to_a_home_that_does_not_exist(logdir: Path) -> None:
    write_log(logdir, {"outbound.jsonl": [record()]})
    done = oauthcli("log", "--har", "/dev/stdout")
    assert done.code == 0 and json.loads(done.out)["log"]["entries"], done
    done = oauthcli("log", "--har", "~no-such-user-here/x.har")
    assert done.code == 3 and "cannot write the HAR file ~no-such-user-here/x.har" in done.err
