"""``send --query EXPR`` (JMESPath) through the CLI, against a loopback API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cliproc import oauthcli
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, TokenServer

DOC = {
    "result": [
        {"number": "INC1", "state": "new", "priority": 1},
        {"number": "INC2", "state": "closed", "priority": 3},
    ],
    "count": 2,
}


@pytest.fixture
def registry(loopback: LoopbackServer, token_server: TokenServer, tmp_path: Path) -> Path:
    loopback.reply("/doc", 200, json.dumps(DOC).encode(), Content_Type="application/json")
    loopback.reply("/text", 200, b"<html>hi</html>", Content_Type="text/html")
    loopback.reply("/empty", 204)
    loopback.reply(
        "/denied", 403, b'{"error": {"message": "no access"}}', Content_Type="application/json"
    )
    loopback.reply(
        "/echo",
        200,
        json.dumps({"token": "at-1-from-server", "name": "x"}).encode(),
        Content_Type="application/json",
    )
    methods = "\n".join(
        f"  {name}: {{http_method: GET, path: /{name}}}"
        for name in ("doc", "text", "empty", "denied", "echo")
    )
    return make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": f"""\
                grant_type: client_credentials
                token_url: {token_server.url}/token
                client_id: app
                client_secret: query-client-secret
                """,
            "messages/api.yaml": f"endpoint: {loopback.base}\n"
            "auth: {type: oauth2, profile: acme}\nmethods:\n" + methods + "\n",
        },
    )


def test_an_object_or_array_result_prints_as_json(registry: Path) -> None:
    done = oauthcli("send", "api.doc", "--query", "result[?state=='new']", registry=registry)
    assert done.code == 0, done
    assert json.loads(done.out) == [{"number": "INC1", "state": "new", "priority": 1}]
    done = oauthcli("send", "api.doc", "--query", "{n: count}", registry=registry)
    assert json.loads(done.out) == {"n": 2}
    done = oauthcli("send", "api.doc", "--query", "count", registry=registry)
    assert done.out == "2\n"


def test_a_string_result_prints_raw(registry: Path) -> None:
    done = oauthcli("send", "api.doc", "--query", "result[0].number", registry=registry)
    assert done.code == 0, done
    assert done.out == "INC1\n"
    done = oauthcli("send", "api.doc", "--query", "join(',', result[].number)", registry=registry)
    assert done.out == "INC1,INC2\n"


def test_nothing_found_is_null(registry: Path) -> None:
    done = oauthcli("send", "api.doc", "--query", "nosuch.key", registry=registry)
    assert (done.code, done.out) == (0, "null\n")
    done = oauthcli("send", "api.empty", "--query", "a", registry=registry)  # 204: no body
    assert (done.code, done.out) == (0, "null\n")


def test_with_json_the_envelope_body_is_the_result(registry: Path) -> None:
    done = oauthcli("send", "api.doc", "--json", "--query", "result[].number", registry=registry)
    assert done.code == 0, done
    envelope = json.loads(done.out)
    assert envelope["status"] == 200 and envelope["body"] == ["INC1", "INC2"]
    assert envelope["http_method"] == "GET"


@pytest.mark.parametrize("expr", ["result[", "a.b.", "`unclosed", "foo(", "[?a==]"])
def test_an_invalid_expression_is_exit_2_before_any_request(
    registry: Path, loopback: LoopbackServer, token_server: TokenServer, expr: str
) -> None:
    done = oauthcli("send", "api.doc", "--query", expr, registry=registry)
    assert done.code == 2, done
    lines = done.err.strip().splitlines()
    assert len(lines) == 1, done
    assert repr(expr) in lines[0] and "not a JMESPath expression" in lines[0], done
    assert done.out == ""
    assert loopback.requests == [] and token_server.forms == []


def test_an_empty_expression_is_refused(registry: Path) -> None:
    done = oauthcli("send", "api.doc", "--query", " ", registry=registry)
    assert done.code == 2 and "empty" in done.err, done


def test_an_unknown_function_is_exit_2_naming_it(registry: Path) -> None:
    done = oauthcli("send", "api.doc", "--query", "nosuchfn(@)", registry=registry)
    assert done.code == 2, done
    assert "nosuchfn" in done.err and len(done.err.strip().splitlines()) == 1, done


def test_a_type_error_in_a_function_is_exit_2(registry: Path) -> None:
    done = oauthcli("send", "api.doc", "--query", "length(count)", registry=registry)
    assert done.code == 2, done
    assert "length" in done.err and len(done.err.strip().splitlines()) == 1, done


def test_a_body_that_is_not_json_is_one_line_exit_2(registry: Path) -> None:
    done = oauthcli("send", "api.text", "--query", "a", registry=registry)
    assert done.code == 2, done
    assert done.out == ""
    (line,) = done.err.strip().splitlines()
    assert "not JSON" in line and "text/html" in line, done


def test_an_error_answer_is_shown_as_received_not_queried(registry: Path) -> None:
    done = oauthcli("send", "api.denied", "--query", "result[0]", registry=registry)
    assert done.code == 4, done
    assert json.loads(done.out) == {"error": {"message": "no access"}}
    assert "403" in done.err


def test_a_query_result_is_masked_of_secrets(registry: Path) -> None:
    """The token the API echoes is oauthcli's rendering once queried (SPEC §2)."""
    done = oauthcli("send", "api.echo", "--query", "token", registry=registry)
    assert done.code == 0, done
    assert "at-1-from-server" not in done.out and "****" in done.out


def test_each_line_body_is_the_query_result(registry: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"x": "1"}\n{"x": "2"}\n')
    done = oauthcli(
        "send", "api.doc", "--each", rows, "--query", "result[].number", registry=registry
    )
    assert done.code == 0, done
    lines = [json.loads(line) for line in done.out.splitlines()]
    assert [line["body"] for line in lines] == [["INC1", "INC2"]] * 2


def test_each_with_a_body_that_is_not_json_fails_the_row(registry: Path, tmp_path: Path) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("x\n1\n")
    done = oauthcli("send", "api.text", "--each", rows, "--query", "a", registry=registry)
    assert done.code == 2, done
    (line,) = [json.loads(line) for line in done.out.splitlines()]
    assert line["exit_code"] == 2 and "not JSON" in line["error"]
    assert line["body"] == "<html>hi</html>"  # what came back, unqueried


def test_the_api_is_queried_without_jmespath_on_the_plain_path(registry: Path) -> None:
    """jmespath (and the --query code) is imported only when --query is given."""
    from tests.clirun import run_watching

    probed = run_watching(
        ("jmespath", "oauthcli.present.query"), "-r", str(registry), "send", "api.doc"
    )
    assert probed.code == 0, probed
    assert probed.loaded == []
