"""A careless user and APIs that misbehave: ``oauthcli send`` as a process against
loopback servers (127.0.0.0/8 only), each test a defect the attack round found.
"""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
from pathlib import Path

import pytest

from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, serving
from tests.test_hostile_send import OAUTHCLI, cli, peak_rss_mib

JSON = {"Content-Type": "application/json"}


def reg(tmp_path: Path, base: str, extra: str = "") -> Path:
    return make_registry(
        tmp_path / "reg",
        {
            "messages/m.yaml": f"""\
                endpoint: {base}/api
                retry: {{attempts: 1}}
                {extra}
                methods:
                  get: {{http_method: GET}}
                  path: {{http_method: GET, path: "/items/${{v}}"}}
                  query: {{http_method: GET, query: {{q: "${{v}}"}}}}
                  json: {{http_method: POST, json: {{v: "${{v}}"}}}}
                  content: {{http_method: POST, content: "<x>${{v}}</x>"}}
                  form: {{http_method: POST, form: {{v: "${{v}}"}}}}
                  basic:
                    http_method: GET
                    auth: {{type: basic, username: "${{env:U:-alice}}", password: "${{env:P}}"}}
                """,
        },
    )


def answer(raw: bytes):
    """A raw server that answers every request on a connection with ``raw``."""

    def handler(conn: socket.socket, head: bytes) -> None:
        while True:
            conn.sendall(raw)
            head = b""
            while b"\r\n\r\n" not in head:
                data = conn.recv(65536)
                if not data:
                    return
                head += data

    return handler


# -- a careless user's credentials and variables -------------------------------------------


@pytest.mark.parametrize(
    ("env", "key", "why"),
    [
        ({"P": "pw-LEAK-1\n"}, "auth.password", "line break"),
        ({"P": "pw-LEAK-1\r\n"}, "auth.password", "line break"),
        ({"P": "pw-LEAK-\x1bx"}, "auth.password", "control character"),
        ({"P": "pw-LEAK-\x85x"}, "auth.password", "control character"),
        ({"P": "pw-LEAK-ok", "U": "alice\n"}, "auth.username", "line break"),
    ],
    ids=["LF", "CRLF", "ESC", "C1", "user LF"],
)
def test_a_basic_credential_with_a_line_break_is_a_registry_error(
    loopback: LoopbackServer, tmp_path: Path, env: dict[str, str], key: str, why: str
) -> None:
    root = reg(tmp_path, loopback.base)
    for extra in ([], ["-v"], ["--json"], ["--dry-run"]):
        done = cli(root, "send", "m.basic", *extra, env=env)
        assert done.code == 3, done
        assert "m.yaml" in done.err and key in done.err and why in done.err, done.err
        assert "LEAK" not in done.both and "cHctTEVBSy" not in done.both, done.both
        assert len(done.err.strip().splitlines()) == 1, done.err
    assert loopback.requests == []


def test_a_basic_password_with_a_tab_still_goes(loopback: LoopbackServer, tmp_path: Path) -> None:
    loopback.reply("/api", 200, b"ok")
    done = cli(reg(tmp_path, loopback.base), "send", "m.basic", env={"P": "tab\there"})
    assert done.code == 0, done
    assert loopback.requests[0].headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize("method", ["path", "query", "json", "content", "form"])
def test_a_lone_surrogate_from_json_input_is_a_usage_error(
    loopback: LoopbackServer, tmp_path: Path, method: str
) -> None:
    root = reg(tmp_path, loopback.base)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"v": "ok"}\n{"v": "x\\ud800"}\n', encoding="ascii")
    vars_file = tmp_path / "vars.json"
    vars_file.write_text('{"v": "\\udcff"}', encoding="ascii")
    done = cli(root, "send", f"m.{method}", "--vars-file", str(vars_file))
    assert done.code == 2 and "vars.json" in done.err and "'v'" in done.err, done
    assert len(done.err.strip().splitlines()) == 1
    done = cli(root, "send", f"m.{method}", "--each", str(rows))
    assert done.code == 2 and "rows.jsonl:2" in done.err and "'v'" in done.err, done
    assert "internal error" not in done.both
    [first] = [json.loads(line) for line in done.out.splitlines()]
    assert first["row"] == 1


def test_a_huge_path_variable_answered_414_gives_a_short_error_line(
    tmp_path: Path,
) -> None:
    with serving(answer(b"HTTP/1.1 414 URI Too Long\r\nContent-Length: 0\r\n\r\n")) as server:
        root = reg(tmp_path, server.base)
        vars_file = tmp_path / "big.json"
        vars_file.write_text(json.dumps({"v": "a" * (1 << 20)}))
        done = cli(root, "send", "m.path", "--vars-file", str(vars_file))
    assert done.code == 4, done.err[:300]
    assert "414" in done.err and len(done.err) < 1000, len(done.err)


# -- APIs that misbehave -------------------------------------------------------------------


@pytest.mark.parametrize("final", [b"500 Broken", b"404 Gone", b"200 OK"])
def test_interim_1xx_responses_are_skipped_not_taken_as_the_answer(
    tmp_path: Path, final: bytes
) -> None:
    raw = (
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
        b"HTTP/1.1 102 Processing\r\n\r\n"
        b"HTTP/1.1 " + final + b"\r\nContent-Type: application/json\r\n"
        b'Content-Length: 11\r\n\r\n{"real": 1}'
    )
    code = {b"5": 5, b"4": 4, b"2": 0}[final[:1]]
    with serving(answer(raw)) as server:
        root = reg(tmp_path, server.base)
        done = cli(root, "send", "m.get")
        assert done.code == code and done.data == b'{"real": 1}', done
        done = cli(root, "send", "m.get", "--json")
        assert json.loads(done.out)["status"] == int(final[:3]), done
        proc = subprocess.run(
            [str(OAUTHCLI), "-r", str(root), "send", "m.get", "--each", "-", "--concurrency", "1"],
            input=b'{"n": 1}\n{"n": 2}\n{"n": 3}\n',
            capture_output=True,
            timeout=30,
        )
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["status"], r["body"]) for r in rows] == [(int(final[:3]), {"real": 1})] * 3


def test_an_error_body_that_cannot_be_decoded_still_exits_for_its_status(tmp_path: Path) -> None:
    raw = (
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\n"
        b"Content-Encoding: gzip\r\nContent-Length: 10\r\n\r\nnot-gzip!!"
    )
    with serving(answer(raw)) as server:
        root = reg(tmp_path, server.base)
        for extra in ([], ["--json"], ["-v"], ["--no-fail"]):
            done = cli(root, "send", "m.get", *extra)
            assert done.code == (0 if extra == ["--no-fail"] else 4), done
            assert "403" in done.err and "decoded" not in done.err, done.err
    ok = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 10\r\n\r\nnot-gzip!!"
    with serving(answer(ok)) as server:
        done = cli(reg(tmp_path, server.base), "send", "m.get")
    assert done.code == 7 and "could not be decoded" in done.err, done


@pytest.mark.parametrize(
    "location",
    [b"http://[::1", b"http://127.0.0.1:99999/x", b"http://[zz]/x"],
    ids=["open bracket", "port", "bad IPv6"],
)
def test_a_redirect_to_an_invalid_url_is_a_network_error(tmp_path: Path, location: bytes) -> None:
    raw = b"HTTP/1.1 302 Found\r\nLocation: " + location + b"\r\nContent-Length: 0\r\n\r\n"
    with serving(answer(raw)) as server:
        done = cli(reg(tmp_path, server.base), "send", "m.get")
    assert done.code == 7, done
    assert "not a valid URL" in done.err and len(done.err.strip().splitlines()) == 1, done.err


def test_a_redirect_never_leaves_loopback_or_https_for_plain_http(tmp_path: Path) -> None:
    raw = (
        b"HTTP/1.1 302 Found\r\nLocation: http://api.example.invalid/x\r\nContent-Length: 0\r\n\r\n"
    )
    with serving(answer(raw)) as server:
        root = reg(tmp_path, server.base)
        done = cli(root, "send", "m.get")
        assert done.code == 0 and "not following the 302" in done.err, done.err
        assert "plain http://" in done.err and "DNS" not in done.err
        done = cli(root, "send", "m.get", "-v")
        assert done.code == 0 and "not following 302" in done.err, done.err
        assert "> GET /x" not in done.err
        done = cli(root, "send", "m.get", "--json")
        assert json.loads(done.out)["status"] == 302
        assert len(server.requests) == 3


def gzip_bomb_each(
    tmp_path: Path, rows: int, concurrency: int, timeout: float
) -> tuple[int, float, str]:
    """send --each of `rows` rows against an API whose every answer is a gzip bomb (128 MiB of
    NULs decoded, 130 KiB on the wire): exit code, peak RSS (MiB) and stderr."""
    member = gzip.compress(b"\x00" * (16 << 20), compresslevel=9)
    body = member * 8  # 128 MiB decoded, 130 KiB on the wire
    raw = (
        b"HTTP/1.1 400 Bad\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n" % len(body)
    ) + body
    rows_file = tmp_path / "rows.jsonl"
    rows_file.write_text("".join(f'{{"n": {i}}}\n' for i in range(rows)))
    with serving(answer(raw)) as server:
        root = reg(tmp_path, server.base)
        return peak_rss_mib(
            root,
            "send",
            "m.get",
            "--each",
            str(rows_file),
            "--concurrency",
            str(concurrency),
            timeout=timeout,
        )


def test_a_gzip_bomb_in_every_row_costs_no_more_at_high_concurrency(tmp_path: Path) -> None:
    code, peak, err = gzip_bomb_each(tmp_path, rows=32, concurrency=32, timeout=60)
    assert code == 4 and "32 4xx" in err, err[-500:]
    # before: about 90 MiB per row in the window (8 MiB of NULs, JSON-escaped six-fold)
    assert peak <= 600, f"peak RSS {peak:.0f} MiB"
