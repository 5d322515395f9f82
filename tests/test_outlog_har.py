"""``oauthcli log --har``'s archive (oauthcli/outlog/har.py): HAR 1.2 as its spec says
(checked against tests/data/har-1.2.schema.json, written from the spec), entries in the
order they were sent, nothing in it the record did not hold, written atomically 0600,
and read by a browser tool (Playwright's routeFromHAR in Debian's chromium)."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from oauthcli import __version__
from oauthcli.errors import RegistryError
from oauthcli.outlog import har
from oauthcli.outlog.reader import Record, parse
from tests.outlog_records import API_URL, TOKEN_URL, at, elevated, full, line, record

SCHEMA = json.loads((Path(__file__).parent / "data" / "har-1.2.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def rec(data: dict[str, Any]) -> Record:
    parsed = parse(line(data))
    assert isinstance(parsed, Record)
    return parsed


def archive(*records: dict[str, Any]) -> dict[str, Any]:
    out = io.StringIO()
    count = har.write([rec(r) for r in records], out)
    document = json.loads(out.getvalue())
    VALIDATOR.validate(document)
    for entry in document["log"]["entries"]:
        timings = entry["timings"]
        total = sum(v for k, v in timings.items() if k != "comment" and v != -1)
        assert entry["time"] == pytest.approx(total)
        url = urlsplit(entry["request"]["url"])
        assert url.scheme in ("http", "https") and url.netloc
    assert count == len(document["log"]["entries"])
    return document


def entries(*records: dict[str, Any]) -> list[dict[str, Any]]:
    return archive(*records)["log"]["entries"]


def test_the_log_object() -> None:
    document = archive()
    assert document == {
        "log": {
            "version": "1.2",
            "creator": {"name": "oauthcli", "version": __version__},
            "entries": [],
        }
    }


def test_a_basic_record_is_its_token_request_then_its_call() -> None:
    token, call = entries(record())
    assert token["startedDateTime"] == "2026-12-02T05:40:00.123Z"
    assert token["time"] == 20.5 and token["timings"] == {"send": 0, "wait": 20.5, "receive": 0}
    assert token["request"] == {
        "method": "POST",
        "url": TOKEN_URL,
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": [],
        "queryString": [],
        "headersSize": -1,
        "bodySize": -1,
    }
    assert token["response"]["status"] == 200 and token["response"]["headers"] == []
    assert token["_oauthcli"]["kind"] == "token_request"
    assert token["_oauthcli"]["grant"] == "client_credentials"
    assert token["_oauthcli"]["decisions"][0]["kind"] == "due"
    # the call starts once its token came
    assert call["startedDateTime"] == "2026-12-02T05:40:00.143Z"
    assert call["request"]["method"] == "GET" and call["request"]["url"] == API_URL
    assert call["request"]["queryString"] == [{"name": "sysparm_limit", "value": "5"}]
    assert call["response"] == {
        "status": 200,
        "statusText": "OK",
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": [],
        "content": {"size": 0, "mimeType": ""},
        "redirectURL": "",
        "headersSize": -1,
        "bodySize": -1,
    }
    assert call["cache"] == {} and call["time"] == 84.2
    assert call["_oauthcli"] == {
        "kind": "send",
        "message": "incidents.list",
        "profile": "acme",
        "environment": None,
        "level": "basic",
        "attempts": 1,
        "exit_code": 0,
        "error": None,
        "pid": 4242,
        "decisions": record()["decisions"],
    }


def test_elevated_records_carry_headers_in_order() -> None:
    token, call = entries(elevated())
    assert call["request"]["headers"] == [
        {"name": "User-Agent", "value": "oauthcli/0.1.0"},
        {"name": "Accept", "value": "*/*"},
        {"name": "Authorization", "value": "Bearer ****"},
    ]
    assert call["response"]["headers"][1] == {"name": "Set-Cookie", "value": "****"}
    assert call["response"]["content"]["mimeType"] == "application/json"
    assert token["request"]["headers"][1] == {"name": "Authorization", "value": "Basic ****"}


def test_full_records_carry_bodies() -> None:
    body = '{"short_description": "disk full"}'
    token, call = entries(
        full(
            method="POST",
            request_body=body,
            request_headers=[["Content-Type", "application/json"]],
        )
    )
    assert call["request"]["postData"] == {"mimeType": "application/json", "text": body}
    assert call["request"]["bodySize"] == len(body)
    content = call["response"]["content"]
    assert content["text"] == '{"result": [{"number": "INC0010001"}]}'
    assert content["size"] == len(content["text"]) == call["response"]["bodySize"]
    assert "encoding" not in content
    assert token["request"]["postData"]["mimeType"] == "application/x-www-form-urlencoded"
    assert '"access_token": "****"' in token["response"]["content"]["text"]
    (get,) = entries(full(token_requests=[]))
    assert get["request"]["bodySize"] == 0 and "postData" not in get["request"]


def test_a_binary_body_is_base64_and_a_cut_one_keeps_the_size_received() -> None:
    raw = bytes(range(256))
    encoded = base64.b64encode(raw).decode()
    (call,) = entries(
        full(
            token_requests=[],
            method="PUT",
            request_body=encoded,
            request_body_encoding="base64",
            response_body=encoded[:100],
            response_body_encoding="base64",
            response_body_truncated=True,
            response_body_size=5_000_000,
            response_headers=[["Content-Type", "image/png"]],
        )
    )
    assert call["request"]["postData"] == {
        "mimeType": "",
        "text": encoded,
        "_encoding": "base64",
    }
    assert call["request"]["bodySize"] == 256
    content = call["response"]["content"]
    assert content == {
        "size": 5_000_000,
        "mimeType": "image/png",
        "text": encoded[:100],
        "encoding": "base64",
    }
    assert call["response"]["bodySize"] == 5_000_000


def test_no_answer_is_status_0_with_the_error() -> None:
    (call,) = entries(
        record(
            status=None,
            reason=None,
            exit_code=7,
            error="cannot connect to 127.0.0.1:9: connection refused",
            token_requests=[],
            decisions=[{"kind": "cached", "text": "cached", "expires_in_s": 200}],
        )
    )
    assert call["response"]["status"] == 0 and call["response"]["statusText"] == ""
    assert call["response"]["httpVersion"] == ""
    assert call["comment"] == "cannot connect to 127.0.0.1:9: connection refused"
    assert call["_oauthcli"]["exit_code"] == 7


def test_a_redirect_names_its_location() -> None:
    (call,) = entries(
        elevated(
            status=302,
            reason="Found",
            token_requests=[],
            response_headers=[["location", "http://127.0.0.1:9/next"]],
        )
    )
    assert call["response"]["redirectURL"] == "http://127.0.0.1:9/next"


def test_get_token_and_revoke_records_are_their_token_requests_only() -> None:
    # as the writer has them: the record's url, method and status are its last request's
    fetched = record(kind="token", message=None, method="POST", url=TOKEN_URL)
    (token,) = entries(fetched)
    assert token["request"]["url"] == TOKEN_URL and token["_oauthcli"]["for"] == "token"
    cached = record(kind="token", message=None, method=None, status=None, token_requests=[])
    assert entries(cached) == []
    revoke_url = "http://127.0.0.1:8976/oauth/revoke"
    revoke = record(
        kind="revoke", message=None, method="POST", url=revoke_url,
        token_requests=[{"url": revoke_url, "method": "POST", "grant": None, "status": 200,
                         "elapsed_ms": 4}],
    )  # fmt: skip
    (revoked,) = entries(revoke)
    assert revoked["request"]["url"] == revoke_url and revoked["_oauthcli"]["for"] == "revoke"


def test_a_call_never_sent_has_no_entry_of_its_own() -> None:
    no_token = record(
        status=None, reason=None, exit_code=6, error="token request failed",
        token_requests=[{"url": TOKEN_URL, "method": "POST", "status": None, "elapsed_ms": 3,
                         "error": "connection refused"}],
    )  # fmt: skip
    (token,) = entries(no_token)
    assert token["response"]["status"] == 0 and token["comment"] == "connection refused"
    assert entries(record(status=None, exit_code=3, token_requests=[])) == []
    (attempted,) = entries(record(status=None, exit_code=7, token_requests=[]))  # was sent
    assert attempted["response"]["status"] == 0


def test_a_token_request_with_its_own_time_keeps_it_and_entries_stay_in_order() -> None:
    two = record(
        token_requests=[
            {"url": TOKEN_URL, "method": "POST", "status": 400, "elapsed_ms": 10,
             "time": "2026-12-02T05:40:00.200Z"},
            {"url": TOKEN_URL, "method": "POST", "status": 200, "elapsed_ms": 30},
        ]
    )  # fmt: skip
    first, second, call = entries(two)
    assert first["startedDateTime"] == "2026-12-02T05:40:00.200Z"
    assert second["startedDateTime"] == "2026-12-02T05:40:00.210Z"
    assert call["startedDateTime"] == "2026-12-02T05:40:00.240Z"


def test_values_of_the_wrong_type_are_left_out_not_fatal() -> None:
    odd = record(
        method=7,
        status="200",
        reason=["OK"],
        elapsed_ms=-4,
        attempts="many",
        request_headers=[["a"], ["b", 1], "c: d", ["Accept", "*/*"]],
        response_headers={"x": "y"},
        response_body=12,
        response_body_size=-3,
        token_requests=[None, {"url": 5}, {"url": TOKEN_URL, "elapsed_ms": "fast"}],
        decisions=["due", {"kind": "cached"}],
    )
    token, call = entries(odd)
    assert call["request"]["method"] == "GET" and call["response"]["status"] == 0
    assert call["time"] == 0 and call["request"]["headers"] == [{"name": "Accept", "value": "*/*"}]
    assert call["_oauthcli"]["decisions"] == [{"kind": "cached"}]
    assert token["time"] == 0 and token["request"]["method"] == "GET"


def test_a_url_fragment_is_left_out() -> None:
    (call,) = entries(record(url="http://127.0.0.1:9/a?b=c%20d&e#frag", token_requests=[]))
    assert call["request"]["url"] == "http://127.0.0.1:9/a?b=c%20d&e"
    assert call["request"]["queryString"] == [
        {"name": "b", "value": "c d"},
        {"name": "e", "value": ""},
    ]


def _strings(value: Any) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(_strings(k) | _strings(v) for k, v in value.items()))
    if isinstance(value, list):
        return set().union(set(), *(_strings(v) for v in value))
    return set()


def test_the_archive_holds_nothing_the_record_did_not() -> None:
    """Every text in an entry is the record's own (as the writer masked it), a query value
    decoded from its URL, or HAR's vocabulary: the reader adds and unmasks nothing."""
    made = full(
        url="http://127.0.0.1:8976/api?q=a%2Bb&token=****",
        request_headers=[["Authorization", "Bearer ****"], ["Cookie", "****"]],
        response_headers=[["Set-Cookie", "****"], ["Content-Type", "text/plain"]],
        error="api said: ****",
    )
    document = archive(made)
    own = _strings(made) | {"q", "a+b", "token", "****"}  # the query, decoded
    vocabulary = {"1.2", "oauthcli", __version__, "HTTP/1.1", "", "token_request", "grant"}
    keys = {
        "log", "version", "creator", "name", "entries", "startedDateTime", "time", "request",
        "response", "cache", "timings", "method", "url", "httpVersion", "cookies", "headers",
        "queryString", "headersSize", "bodySize", "postData", "mimeType", "text", "status",
        "statusText", "content", "size", "redirectURL", "send", "wait", "receive", "value",
        "comment", "_oauthcli", "for", "encoding", "_encoding",
    }  # fmt: skip
    times = {e["startedDateTime"] for e in document["log"]["entries"]}
    assert _strings(document) - own - vocabulary - keys - times == set()
    assert "Bearer ****" in json.dumps(document) and "s3cr3t" not in json.dumps(document)


def test_write_streams_entry_by_entry() -> None:
    out = io.StringIO()
    seen: list[int] = []

    def records() -> Any:
        for n in range(3):
            seen.append(len(out.getvalue()))
            yield rec(at(n))

    assert har.write(records(), out) == 6
    assert seen[0] < seen[1] < seen[2]  # written before the next record was read


# -- saving the file ----------------------------------------------------------------


def test_save_writes_0600_atomically_over_an_old_file(tmp_path: Path) -> None:
    target = tmp_path / "calls.har"
    target.write_text("old")
    os.chmod(target, 0o644)
    assert har.save([rec(record())], target) == 2
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    VALIDATOR.validate(json.loads(target.read_text()))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.har"]


def test_save_replaces_a_link_instead_of_writing_through_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "calls.har").symlink_to(victim)
    har.save([rec(record())], tmp_path / "calls.har")
    assert victim.read_text() == "keep me"
    assert not (tmp_path / "calls.har").is_symlink()


@pytest.mark.parametrize(
    ("where", "why"),
    [
        ("missing/calls.har", "No such file or directory"),
        ("a-file/calls.har", "Not a directory"),
        ("a-folder", "it is a folder"),
    ],
)
def test_save_to_an_unwritable_place_names_it(tmp_path: Path, where: str, why: str) -> None:
    (tmp_path / "a-file").write_text("")
    (tmp_path / "a-folder").mkdir()
    with pytest.raises(RegistryError) as caught:
        har.save([rec(record())], tmp_path / where)
    assert str(caught.value) == f"cannot write the HAR file {tmp_path / where}: {why}"
    assert caught.value.exit_code == 3


def test_a_failure_midway_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "calls.har"
    target.write_text("old")

    def broken(records: Any) -> Any:
        yield rec(record())
        raise OSError(28, "No space left on device")

    with pytest.raises(RegistryError, match="No space left on device"):
        har.save(broken(None), target)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calls.har"]


# -- a browser tool reads it ----------------------------------------------------------------


REPLAY = Path(__file__).parent / "e2e" / "browser" / "har-replay.mjs"


@pytest.mark.e2e
def test_chromium_replays_the_archive(tmp_path: Path) -> None:
    """Playwright's HAR reader answers Chromium's requests from the archive: the page's
    GET and a fetch() POST to the token endpoint get the logged status, type and body."""
    from tests.e2e.servers import (
        BROWSER_DIR,
        HarnessError,
        chromium_missing_reason,
        ensure_node_modules,
    )

    missing = chromium_missing_reason()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"browser: {missing}")
        pytest.skip(f"browser: {missing}")
    try:
        ensure_node_modules(BROWSER_DIR, "playwright-core")
    except HarnessError as exc:
        pytest.fail(f"browser: {exc}", pytrace=False)
    page = "http://127.0.0.1:8976/api/now/table/incident?sysparm_limit=5"
    made = full(url=page)
    made["token_requests"][0]["response_headers"] = [["Content-Type", "application/json"]]
    made["response_headers"] = [["Content-Type", "application/json"], ["X-Trace", "t-1"]]
    failed = record(
        time="2026-12-02T05:41:00.000Z", url="http://127.0.0.1:8976/api/broken", status=503,
        reason="Service Unavailable", level="all", response_body="try later",
        response_headers=[["Content-Type", "text/plain"]], token_requests=[], exit_code=5,
    )  # fmt: skip
    target = tmp_path / "calls.har"
    har.save([rec(made), rec(failed)], target)
    requests = [
        {"method": "GET", "url": page, "body": None},
        {"method": "POST", "url": TOKEN_URL, "body": made["token_requests"][0]["request_body"]},
        {"method": "GET", "url": "http://127.0.0.1:8976/api/broken", "body": None},
        {"method": "GET", "url": "http://127.0.0.1:8976/not-in-the-archive", "body": None},
    ]
    asked = tmp_path / "requests.json"
    asked.write_text(json.dumps(requests))
    done = subprocess.run(
        [shutil.which("node") or "node", str(REPLAY), str(target), str(asked)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BROWSER_DIR,
    )
    assert done.returncode == 0, done.stderr
    navigation, get, token, broken, missing_one = json.loads(done.stdout)
    body = made["response_body"]
    assert navigation == {
        "navigation": True, "status": 200, "statusText": "OK",
        "contentType": "application/json", "body": body,
    }  # fmt: skip
    assert get == {
        "status": 200,
        "statusText": "OK",
        "contentType": "application/json",
        "body": body,
    }
    assert token["status"] == 200 and json.loads(token["body"])["access_token"] == "****"
    assert broken == {
        "status": 503, "statusText": "Service Unavailable", "contentType": "text/plain",
        "body": "try later",
    }  # fmt: skip
    assert "error" in missing_one  # notFound: abort: nothing left the browser


def test_times_at_the_end_of_the_calendar_do_not_overflow() -> None:
    late = record(
        time="9999-12-31T23:59:59.999Z",
        token_requests=[{"url": TOKEN_URL, "method": "POST", "elapsed_ms": 10**15}],
    )
    token, call = entries(late)
    assert token["startedDateTime"] == call["startedDateTime"] == "9999-12-31T23:59:59.999Z"


def test_save_into_a_pipe_writes_through_it(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []

    def drain() -> None:
        with open(fifo, "rb") as f:
            got.append(f.read())

    import threading

    reading = threading.Thread(target=drain)
    reading.start()
    assert har.save([rec(record())], fifo) == 2
    reading.join(10)
    VALIDATOR.validate(json.loads(got[0]))
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)  # still the pipe, not replaced
