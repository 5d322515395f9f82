"""``send --paginate``: RFC 8288 ``Link: <…>; rel="next"`` through the CLI, on loopback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from oauthcli.transport.pages import next_link
from tests.cliproc import oauthcli
from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded, TokenServer

Links = Callable[[int, LoopbackServer], list[tuple[str, str]]]


def _page(rec: Recorded) -> int:
    return int(parse_qs(urlsplit(rec.path).query).get("page", ["1"])[0])


def paged(server: LoopbackServer, links: Links, pages: int = 3, status: int = 200) -> None:
    """/items?page=N answers {"page": N}, with the Link headers ``links`` gives for N."""

    def answer(rec: Recorded) -> Any:
        n = _page(rec)
        headers = [("Content-Type", "application/json"), *links(n, server)]
        body = json.dumps({"page": n, "items": [f"item-{n}-a", f"item-{n}-b"]}).encode()
        return status if n == pages + 10 else 200, headers, body

    server.routes["/items"] = answer


def quoted(n: int, server: LoopbackServer) -> list[tuple[str, str]]:
    """As GitHub sends them: several links in one header, rel quoted."""
    if n >= 3:
        return [("Link", f'<{server.base}/items?page=1>; rel="first"')]
    return [
        (
            "Link",
            f'<{server.base}/items?page={n + 1}>; rel="next", '
            f'<{server.base}/items?page=3>; rel="last"',
        )
    ]


def multi_rel(n: int, server: LoopbackServer) -> list[tuple[str, str]]:
    """``rel="next last"`` (two relation types), unquoted rel, two Link header lines."""
    if n == 1:
        return [("Link", "</items?page=1>; rel=first"), ("Link", "</items?page=2>; rel=next")]
    if n == 2:
        return [("Link", '</items?page=3>; rel="Next Last"')]
    return []


@pytest.fixture
def registry(loopback: LoopbackServer, token_server: TokenServer, tmp_path: Path) -> Path:
    return make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": f"""\
                grant_type: client_credentials
                token_url: {token_server.url}/token
                client_id: app
                client_secret: paginate-client-secret
                """,
            "messages/items.yaml": f"""\
                endpoint: {loopback.base}/items
                auth: {{type: oauth2, profile: acme}}
                methods: {{list: {{http_method: GET, query: {{page: "1"}}}}}}
                """,
        },
    )


def _pages_of(out: str) -> list[int]:
    return [json.loads(line)["page"] for line in out.splitlines()]


@pytest.mark.parametrize("links", [quoted, multi_rel], ids=["quoted", "multi-rel-relative"])
def test_three_pages_one_line_each_with_one_token(
    registry: Path, loopback: LoopbackServer, token_server: TokenServer, links: Links
) -> None:
    paged(loopback, links)
    done = oauthcli("send", "items", "--paginate", registry=registry)
    assert done.code == 0, done
    assert _pages_of(done.out) == [1, 2, 3]
    assert len(token_server.forms) == 1  # one token for every page
    auths = {rec.headers["authorization"] for rec in loopback.requests}
    assert auths == {"Bearer at-1-from-server"}
    assert [_page(rec) for rec in loopback.requests] == [1, 2, 3]


def test_json_is_one_envelope_per_page_per_line(registry: Path, loopback: LoopbackServer) -> None:
    paged(loopback, quoted)
    done = oauthcli("send", "items", "--paginate", "--json", registry=registry)
    assert done.code == 0, done
    envelopes = [json.loads(line) for line in done.out.splitlines()]
    assert [e["body"]["page"] for e in envelopes] == [1, 2, 3]
    assert all(e["status"] == 200 for e in envelopes)
    assert envelopes[1]["url"].endswith("/items?page=2")


def test_query_applies_per_page(registry: Path, loopback: LoopbackServer) -> None:
    paged(loopback, quoted)
    done = oauthcli("send", "items", "--paginate", "--query", "items", registry=registry)
    assert done.code == 0, done
    assert [json.loads(line) for line in done.out.splitlines()] == [
        [f"item-{n}-a", f"item-{n}-b"] for n in (1, 2, 3)
    ]
    done = oauthcli("send", "items", "--paginate", "--query", "items[0]", registry=registry)
    assert done.out.splitlines() == ["item-1-a", "item-2-a", "item-3-a"]


def test_a_401_midway_renews_the_token_once_and_goes_on(
    registry: Path, loopback: LoopbackServer, token_server: TokenServer
) -> None:
    refused = {"done": False}

    def answer(rec: Recorded) -> Any:
        n = _page(rec)
        if n == 2 and not refused["done"]:
            refused["done"] = True
            return 401, {"WWW-Authenticate": 'Bearer error="invalid_token"'}, b""
        headers = [("Content-Type", "application/json"), *quoted(n, loopback)]
        return 200, headers, json.dumps({"page": n}).encode()

    loopback.routes["/items"] = answer
    done = oauthcli("send", "items", "--paginate", registry=registry)
    assert done.code == 0, done
    assert _pages_of(done.out) == [1, 2, 3]
    assert len(token_server.forms) == 2
    assert loopback.requests[-1].headers["authorization"] == "Bearer at-2-from-server"


def test_a_loop_stops_with_exit_7(registry: Path, loopback: LoopbackServer) -> None:
    def back(n: int, server: LoopbackServer) -> list[tuple[str, str]]:
        return [("Link", f"</items?page={1 if n == 2 else n + 1}>; rel=next")]

    paged(loopback, back)
    done = oauthcli("send", "items", "--paginate", registry=registry)
    assert done.code == 7, done
    assert _pages_of(done.out) == [1, 2]  # what was fetched is written
    (line,) = done.err.strip().splitlines()
    assert "loop" in line and "page 2" in line, done
    assert len(loopback.requests) == 2


def test_the_page_limit_is_said_and_is_not_success(
    registry: Path, loopback: LoopbackServer
) -> None:
    def endless(n: int, server: LoopbackServer) -> list[tuple[str, str]]:
        return [("Link", f"</items?page={n + 1}>; rel=next")]

    paged(loopback, endless)
    done = oauthcli("send", "items", "--paginate", "--max-pages", "4", registry=registry)
    assert done.code == 7, done
    assert _pages_of(done.out) == [1, 2, 3, 4]
    (line,) = done.err.strip().splitlines()
    assert "--max-pages 4" in line and "page=5" in line, done
    assert len(loopback.requests) == 4


def test_the_default_page_limit_bounds_an_endless_server(
    registry: Path, loopback: LoopbackServer
) -> None:
    def endless(n: int, server: LoopbackServer) -> list[tuple[str, str]]:
        return [("Link", f"</items?page={n + 1}>; rel=next")]

    paged(loopback, endless)
    done = oauthcli("send", "items", "--paginate", registry=registry)
    assert done.code == 7, done
    assert len(loopback.requests) == 100 and "--max-pages 100" in done.err


def test_a_next_link_to_another_origin_is_refused(
    registry: Path, loopback: LoopbackServer, loopback2: LoopbackServer
) -> None:
    loopback2.reply("/items", 200, b'{"page": "stolen"}', Content_Type="application/json")

    def elsewhere(n: int, server: LoopbackServer) -> list[tuple[str, str]]:
        return [("Link", f'<{loopback2.base}/items?page=2>; rel="next"')]

    paged(loopback, elsewhere)
    done = oauthcli("send", "items", "--paginate", registry=registry)
    assert done.code == 7, done
    assert _pages_of(done.out) == [1]
    (line,) = done.err.strip().splitlines()
    assert "another origin" in line and loopback2.base in line, done
    assert loopback2.requests == []  # the credentials never went there


def test_another_port_or_scheme_is_another_origin(registry: Path, loopback: LoopbackServer) -> None:
    def other(n: int, server: LoopbackServer) -> list[tuple[str, str]]:
        return [("Link", f"<https://127.0.0.1:{server.port}/items?page=2>; rel=next")]

    paged(loopback, other)
    done = oauthcli("send", "items", "--paginate", registry=registry)
    assert done.code == 7 and "another origin" in done.err, done


def test_an_error_page_stops_with_its_status(registry: Path, loopback: LoopbackServer) -> None:
    def answer(rec: Recorded) -> Any:
        n = _page(rec)
        if n == 2:
            return 503, {"Content-Type": "application/json"}, b'{"error": "busy"}'
        headers = [("Content-Type", "application/json"), *quoted(n, loopback)]
        return 200, headers, json.dumps({"page": n}).encode()

    loopback.routes["/items"] = answer
    done = oauthcli("send", "items", "--paginate", "--retries", "0", registry=registry)
    assert done.code == 5, done
    assert done.out.splitlines() == ['{"page": 1}', '{"error": "busy"}']


def test_no_link_header_is_one_page(registry: Path, loopback: LoopbackServer) -> None:
    paged(loopback, lambda n, s: [])
    done = oauthcli("send", "items", "--paginate", registry=registry)
    assert done.code == 0 and _pages_of(done.out) == [1], done


def test_paginate_with_each_or_max_pages_alone_is_a_usage_error(
    registry: Path, loopback: LoopbackServer, tmp_path: Path
) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("x\n1\n")
    done = oauthcli("send", "items", "--paginate", "--each", rows, registry=registry)
    assert done.code == 2 and "--paginate" in done.err, done
    done = oauthcli("send", "items", "--max-pages", "3", registry=registry)
    assert done.code == 2 and "--max-pages only applies with --paginate" in done.err, done
    done = oauthcli("send", "items", "--paginate", "--max-pages", "0", registry=registry)
    assert done.code == 2, done
    assert loopback.requests == []


def test_next_link_parsing() -> None:
    from requests.structures import CaseInsensitiveDict

    def link(value: str, base: str = "https://api.example/v1/items?page=1") -> str | None:
        return next_link(CaseInsensitiveDict({"Link": value}), base)

    assert link('<https://api.example/v1/items?page=2>; rel="next"') == (
        "https://api.example/v1/items?page=2"
    )
    assert link('<?page=2>; rel="next last"') == "https://api.example/v1/items?page=2"
    assert link("<page2>; rel=NEXT") == "https://api.example/v1/page2"
    assert link('<https://api.example/a>; rel="prev", <https://api.example/b>; rel="next"') == (
        "https://api.example/b"
    )
    assert link('<https://api.example/a>; rel="nextish"') is None
    assert link('<https://api.example/a>; rel="last"') is None
    assert link("garbage without brackets") is None
    # credentials in a server's link are never taken
    assert link('<https://user:pw@api.example/b>; rel="next"') == "https://api.example/b"
