"""``oauthcli send`` as a process against loopback servers that misbehave on purpose.

Requests go where the user meant; piped bodies are byte-exact and streamed; the
timeout bounds the whole response; header values that cannot be sent are refused.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cliproc import Done, oauthcli
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, dribbling, gzip_bomb, serving, streaming
from tests.timing import assert_cut_off

OAUTHCLI = Path(sys.executable).parent / "oauthcli"
JSON = {"Content-Type": "application/json"}


def cli(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30) -> Done:
    return oauthcli(*args, registry=root, env=env, timeout=timeout)


# -- requests go where the user meant -----------------------------------------------------


@pytest.fixture
def items(loopback: LoopbackServer, tmp_path: Path) -> Path:
    loopback.routes["/api/items"] = lambda rec: (200, JSON, b"[]")
    return make_registry(
        tmp_path / "reg",
        {
            "messages/items.yaml": f"""\
                endpoint: {loopback.base}/api/items
                retry: {{attempts: 1}}
                methods:
                  delete:
                    http_method: DELETE
                    path: /${{id}}
                  nested:
                    http_method: GET
                    path: /${{id}}/children/${{child}}
                """,
        },
    )


def catch_all(loopback: LoopbackServer) -> None:
    """Answer 200 on any path."""
    loopback.fallback = lambda rec: (200, JSON, b"{}")


@pytest.mark.parametrize("value", ["..", "."])
def test_a_dot_segment_value_is_refused_naming_the_variable(
    items: Path, loopback: LoopbackServer, value: str
) -> None:
    catch_all(loopback)
    for extra in ([], ["--dry-run"], ["--dry-run", "--json"]):
        done = cli(items, "send", "items.delete", "-V", f"id={value}", *extra)
        assert done.code == 3, done
        assert "'id'" in done.err and "items.yaml" in done.err, done.err
        assert len(done.err.strip().splitlines()) == 1, done.err
    done = cli(items, "send", "items.nested", "-V", "id=7", "-V", f"child={value}")
    assert done.code == 3 and "'child'" in done.err
    assert loopback.requests == []


HOSTILE = [
    "%2e%2e",
    "%2E",
    "a/b",
    "?x=1",
    "#frag",
    "a b",
    "été ☃ 𝄞",
    "%",
    "..;",
    "...",
    ".%2e",
    "~x",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_dry_run_shows_exactly_the_url_the_server_receives(
    items: Path, loopback: LoopbackServer, value: str
) -> None:
    catch_all(loopback)
    text = cli(items, "send", "items.delete", "-V", f"id={value}", "--dry-run")
    assert text.code == 0, text
    planned = text.out.splitlines()[0]
    as_json = cli(items, "send", "items.delete", "-V", f"id={value}", "--dry-run", "--json")
    assert json.loads(as_json.out)["url"] == planned.partition(" ")[2]
    sent = cli(items, "send", "items.delete", "-V", f"id={value}")
    assert sent.code == 0, sent
    [received] = loopback.requests
    assert f"{received.method} {loopback.base}{received.path}" == planned
    # and the value stayed in its one segment, as written
    from urllib.parse import unquote

    assert received.path.startswith("/api/items/")
    assert unquote(received.path.removeprefix("/api/items/")) == value


def test_an_endpoint_requests_cannot_send_to_is_a_registry_error(tmp_path: Path) -> None:
    root = make_registry(
        tmp_path / "reg",
        {"messages/snow.yaml": "endpoint: https://☃.test/x\nmethods: {get: {http_method: GET}}\n"},
    )
    for extra in ([], ["--dry-run"], ["--dry-run", "--json"]):
        done = cli(root, "send", "snow", *extra)
        assert done.code == 3, done
        assert "snow.yaml" in done.err and "endpoint" in done.err


# -- piped stdout is the API's data, byte for byte ----------------------------------------


def test_a_piped_body_is_byte_exact_even_when_it_holds_a_secret(
    loopback: LoopbackServer, tmp_path: Path
) -> None:
    download = b"x" * 64
    loopback.reply("/blob", 200, download, Content_Type="application/octet-stream")
    loopback.reply("/flag", 200, b'{"enabled": true, "id": "pw-9f2"}', **JSON)
    root = make_registry(
        tmp_path / "reg",
        {
            "messages/blob.yaml": f"""\
                endpoint: {loopback.base}/blob
                auth: {{type: api_key, header: X-Api-Key, value: xxxxxxxx}}
                methods: {{get: {{http_method: GET}}}}
                """,
            "messages/flag.yaml": f"""\
                endpoint: {loopback.base}/flag
                auth: {{type: basic, username: alice, password: "true"}}
                methods: {{get: {{http_method: GET}}}}
                """,
        },
    )
    done = cli(root, "send", "blob")
    assert (done.code, done.data, done.err) == (0, download, "")
    done = cli(root, "send", "flag")
    assert (done.code, done.data, done.err) == (0, b'{"enabled": true, "id": "pw-9f2"}', "")
    # what oauthcli renders itself still masks: -v on stderr, the --json object
    done = cli(root, "send", "blob", "-v", "--json")
    assert "xxxxxxxx" not in done.err and "X-Api-Key: ****" in done.err
    assert "xxxxxxxx" not in json.loads(done.out)["body"]


# -- bounded memory ------------------------------------------------------------------------


# The child reports its own peak (VmHWM of its address space) as it exits. Not wait4()'s
# ru_maxrss: Linux carries the forking parent's peak across exec() into the child's
# (signal->maxrss), so a pytest process grown past 100 MiB made every child look that big.
_PEAK_PROBE = """\
import atexit, sys
def report():
    with open("/proc/self/status") as status:
        line = next(l for l in status if l.startswith("VmHWM:"))
    sys.stderr.write("\\nPEAK_KIB:" + line.split()[1] + "\\n")
atexit.register(report)
from oauthcli.entry import main
main(sys.argv[1:])
"""


def peak_rss_mib(root: Path, *args: str, timeout: float = 60) -> tuple[int, float, str]:
    """Run the CLI with stdout to /dev/null; its exit code, peak RSS (MiB) and stderr."""
    with open(os.devnull, "wb") as null:
        done = subprocess.run(
            [sys.executable, "-c", _PEAK_PROBE, "-r", str(root), *args],
            stdin=subprocess.DEVNULL,
            stdout=null,
            stderr=subprocess.PIPE,
            timeout=timeout,
        )
    err, _, peak = done.stderr.decode("utf-8", "replace").rstrip("\n").rpartition("\nPEAK_KIB:")
    assert "Traceback" not in err, err
    return done.returncode, int(peak) / 1024, err


def one_message(tmp_path: Path, base: str) -> Path:
    return make_registry(
        tmp_path / "reg",
        {
            "messages/big.yaml": f"""\
                endpoint: {base}/big
                retry: {{attempts: 1}}
                methods: {{get: {{http_method: GET}}}}
                """
        },
    )


def test_a_2_gib_body_streams_to_a_pipe_in_bounded_memory(tmp_path: Path) -> None:
    import time

    size = 2 << 30
    with serving(streaming(size)) as server:
        root = one_message(tmp_path, server.base)
        started = time.monotonic()
        done = subprocess.run(
            f"{OAUTHCLI} -r {root} send big | wc -c",
            shell=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.stdout.strip() == str(size), done.stderr
        if time.monotonic() - started > 20:
            pytest.skip("this machine moves 2 GiB over loopback too slowly to measure more")
        code, peak, err = peak_rss_mib(root, "send", "big")
    assert code == 0, err
    assert 10 < peak <= 100, f"peak RSS {peak:.0f} MiB for a 2 GiB body"


@pytest.mark.parametrize("layers", [1, 2])
def test_a_gzip_bomb_is_decoded_only_up_to_the_cap(tmp_path: Path, layers: int) -> None:
    # 1 GiB (one layer, 1 MiB on the wire) or 10 GiB (gzip, gzip; a few KiB on the wire)
    decoded = (1 << 30) if layers == 1 else (10 << 30)
    with serving(gzip_bomb(decoded, layers=layers)) as server:
        root = one_message(tmp_path, server.base)
        for args in (["--json"], ["--each", "-"]):
            done = subprocess.run(
                [str(OAUTHCLI), "-r", str(root), "send", "big", *args],
                input=b'{"n": 1}\n' if "--each" in args else None,
                capture_output=True,
                timeout=30,
            )
            err = done.stderr.decode()
            assert done.returncode == 0 and "Traceback" not in err, err
            line = json.loads(done.stdout if "--json" in args else done.stdout.splitlines()[0])
            assert line["body_truncated"] is True
            assert len(line["body"]) <= 8 << 20
        code, peak, err = peak_rss_mib(root, "send", "big", "--json")
        assert code == 0 and "larger than 8 MiB" in err, err
    assert peak <= 400, f"peak RSS {peak:.0f} MiB for a gzip bomb"


# -- the timeout bounds the whole response ---------------------------------------------------


@pytest.mark.parametrize("headers", [True, False], ids=["headers dribbled", "body dribbled"])
@pytest.mark.parametrize("mode", [[], ["--json"], ["-v"]], ids=["piped", "json", "verbose"])
def test_timeout_bounds_a_dribbled_response(tmp_path: Path, headers: bool, mode: list[str]) -> None:
    with serving(dribbling(headers=headers)) as server:
        root = one_message(tmp_path, server.base)
        done = cli(root, "send", "big", "--timeout", "1", *mode)
    assert done.code == 7, done
    assert_cut_off(done, 1)
    assert "within 1 s" in done.err
    assert done.err.count("\n") == 1 or "-v" in mode, done.err


def test_timeout_is_per_try_and_retries_follow_retry(tmp_path: Path) -> None:
    with serving(dribbling(headers=False)) as server:
        root = make_registry(
            tmp_path / "reg",
            {
                "messages/big.yaml": f"""\
                    endpoint: {server.base}/big
                    retry: {{attempts: 2, backoff: 0.01}}
                    methods: {{get: {{http_method: GET}}}}
                    """
            },
        )
        done = cli(root, "send", "big", "--timeout", "0.5")
        assert len(server.requests) == 2
    assert done.code == 7 and "no complete response within 0.5 s" in done.err
    assert_cut_off(done, 2 * 0.5)


# -- header values that cannot be sent ----------------------------------------------------


@pytest.fixture
def creds(loopback: LoopbackServer, tmp_path: Path) -> Path:
    loopback.reply("/echo", 200, b"ok")
    base = loopback.base
    return make_registry(
        tmp_path / "reg",
        {
            "messages/bearer.yaml": f"""\
                endpoint: {base}/echo
                auth: {{type: bearer, token: "${{env:API_TOKEN}}"}}
                methods: {{get: {{http_method: GET}}}}
                """,
            "messages/keyed.yaml": f"""\
                endpoint: {base}/echo
                auth: {{type: api_key, header: X-Api-Key, value: "${{env:API_KEY}}"}}
                methods: {{get: {{http_method: GET}}}}
                """,
            "messages/basic.yaml": f"""\
                endpoint: {base}/echo
                auth: {{type: basic, username: "${{env:BASIC_USER:-alice}}", password: "${{env:PW}}"}}
                methods: {{get: {{http_method: GET}}}}
                """,
            "messages/headed.yaml": f"""\
                endpoint: {base}/echo
                headers: {{X-Note: "${{note}}"}}
                methods: {{get: {{http_method: GET}}}}
                """,
            "messages/pinned.yaml": f"""\
                endpoint: https://127.0.0.1:{loopback.port}/echo
                tls: {{ca_bundle: no-such-ca.pem}}
                methods: {{get: {{http_method: GET}}}}
                """,
        },
    )


BAD_CREDENTIALS = [
    ("bearer", {"API_TOKEN": "tok-LEAK-4f1e\n"}, "auth.token", "line break"),
    ("bearer", {"API_TOKEN": "tok-LEAK-4f1e\r\nX-Evil: 1"}, "auth.token", "line break"),
    ("bearer", {"API_TOKEN": "tok-LEAK-ключ"}, "auth.token", "Latin-1"),
    ("bearer", {"API_TOKEN": "tok-LEAK-\x01"}, "auth.token", "control character"),
    ("keyed", {"API_KEY": "ak-LEAK-77c2\r\n"}, "auth.value", "line break"),
    ("keyed", {"API_KEY": " ak-LEAK-77c2"}, "auth.value", "white space"),
    ("basic", {"PW": "pw-LEAK-пароль"}, "auth.password", "Latin-1"),
    ("basic", {"PW": "pw-LEAK-ok", "BASIC_USER": "ali:ce"}, "auth.username", "':'"),
]


@pytest.mark.parametrize(("message", "env", "key", "why"), BAD_CREDENTIALS)
def test_a_credential_that_cannot_go_in_a_header_is_a_registry_error(
    creds: Path, loopback: LoopbackServer, message: str, env: dict[str, str], key: str, why: str
) -> None:
    for extra in ([], ["-v"], ["--json"], ["--dry-run"]):
        done = cli(creds, "send", message, *extra, env=env)
        assert done.code == 3, done
        assert f"{message}.yaml" in done.err and key in done.err and why in done.err, done.err
        assert "LEAK" not in done.both, done.both
        assert len(done.err.strip().splitlines()) == 1, done.err
    assert loopback.requests == []


def test_a_latin1_basic_password_still_works(creds: Path, loopback: LoopbackServer) -> None:
    done = cli(creds, "send", "basic", env={"PW": "pässwörd"})
    assert done.code == 0, done
    assert loopback.requests[0].headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize(
    ("value", "why"),
    [("☃ snow", "Latin-1"), ("a\x01b", "control character"), ("a\x7fb", "control character")],
)
def test_a_header_value_that_cannot_be_sent(
    creds: Path, loopback: LoopbackServer, value: str, why: str
) -> None:
    done = cli(creds, "send", "headed", "-V", f"note={value}")
    assert done.code == 3 and "X-Note" in done.err and why in done.err, done
    done = cli(creds, "send", "headed", "-V", "note=fine", "-H", f"X-Other: {value}")
    assert done.code == 2 and "X-Other" in done.err and why in done.err, done
    assert loopback.requests == []
    done = cli(creds, "send", "headed", "-V", "note=tab\tinside and été")
    assert done.code == 0, done
    assert loopback.requests[0].headers["x-note"] == "tab\tinside and été"


@pytest.mark.parametrize("option", ["Bad Name: x", "Bad\x01: x", "Nöme: x", ": x", "novalue"])
def test_a_header_option_that_is_no_header_is_a_usage_error(creds: Path, option: str) -> None:
    done = cli(creds, "send", "headed", "-V", "note=x", "-H", option)
    assert done.code == 2 and "--header" in done.err, done
    assert len(done.err.strip().splitlines()) == 1


def test_a_header_option_in_another_encoding_is_a_usage_error(creds: Path) -> None:
    done = subprocess.run(
        [
            os.fsencode(str(OAUTHCLI)),
            b"-r",
            os.fsencode(str(creds)),
            b"send",
            b"headed",
            b"-V",
            b"note=x",
            b"-H",
            b"X-Token: tok-LEAK-\xe9\xff",
        ],
        capture_output=True,
        timeout=30,
    )
    err = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2 and "X-Token" in err and "Traceback" not in err, err
    assert b"LEAK" not in done.stdout + done.stderr


def test_a_missing_ca_bundle_is_a_registry_error_naming_it(creds: Path) -> None:
    for extra in ([], ["--dry-run"]):
        done = cli(creds, "send", "pinned", *extra)
        assert done.code == 3, done
        assert "pinned.yaml" in done.err and "ca_bundle" in done.err, done.err


@pytest.mark.parametrize(
    "value", ["²".encode(), "٣".encode(), b"\xb2", b"1e3", b"-5", b"9" * 5000, b"soon", b""]
)
def test_a_garbage_retry_after_is_never_a_crash(tmp_path: Path, value: bytes) -> None:
    def busy(conn: socket.socket, head: bytes) -> None:
        conn.sendall(
            b"HTTP/1.1 503 Busy\r\nRetry-After: " + value + b"\r\nContent-Length: 4\r\n"
            b"Connection: close\r\n\r\nbusy"
        )

    with serving(busy) as server:
        root = make_registry(
            tmp_path / "reg",
            {
                "messages/busy.yaml": f"""\
                    endpoint: {server.base}/busy
                    retry: {{attempts: 2, backoff: 0.01, max_delay: 0.3}}
                    methods: {{get: {{http_method: GET}}}}
                    """
            },
        )
        done = cli(root, "send", "busy")
        assert len(server.requests) == 2
    assert done.code == 5, done
    assert_cut_off(done, 2)  # two tries and a wait of at most 0.3 s, not the header's


def test_timeout_bounds_a_body_that_keeps_flowing(tmp_path: Path) -> None:
    with serving(streaming(64 << 30)) as server:  # far more than can arrive in 0.5 s
        root = one_message(tmp_path, server.base)
        done = cli(root, "send", "big", "--timeout", "0.5")  # piped: all of it is wanted
        assert done.code == 7, done
        assert "incomplete response from" in done.err and "within 0.5 s" in done.err
        assert_cut_off(done, 0.5)
        # --json needs only what it shows: reading stops there, well before the deadline
        done = cli(root, "send", "big", "--timeout", "0.5", "--json")
        assert done.code == 0 and json.loads(done.out)["body_truncated"] is True


def test_a_terminal_shows_a_huge_body_cut_and_says_so(tmp_path: Path) -> None:
    from tests.terminal import on_terminal

    with serving(streaming(1 << 30, fill=b"\x00")) as server:  # binary: only its size is shown
        root = one_message(tmp_path, server.base)
        code, raw = on_terminal([str(OAUTHCLI), "-r", str(root), "send", "big"], {"NO_COLOR": "1"})
    screen = raw.decode("utf-8", "replace")
    assert code == 0, screen
    assert f"binary body ({1 << 30} bytes" in screen, screen[-2000:]
    assert "warning" not in screen, screen[-2000:]
    assert "Traceback" not in screen and len(screen) < 2000


def test_a_finished_deadline_is_not_kept_until_its_time() -> None:
    """Every request of a batch has a deadline a whole timeout away; keeping the finished
    ones that long grew a 100,000-row batch by 29 MiB."""
    import gc

    from oauthcli.transport.adapter import Deadline

    for _ in range(5000):
        Deadline(60).finish()
    gc.collect()
    alive = sum(isinstance(o, Deadline) for o in gc.get_objects())
    assert alive < 50, f"{alive} finished deadlines still held"
