"""``oauthcli send`` as a process against loopback servers that misbehave on purpose.

Requests go where the user meant; piped bodies are byte-exact and streamed; the
timeout bounds the whole response; header values that cannot be sent are refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import LoopbackServer
from tests.registry_factory import make_registry

OAUTHCLI = Path(sys.executable).parent / "oauthcli"
JSON = {"Content-Type": "application/json"}


@dataclass
class Done:
    code: int
    out: bytes
    err: str
    seconds: float

    @property
    def text(self) -> str:
        return self.out.decode("utf-8", "replace") + self.err


def cli(root: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 30) -> Done:
    import time

    started = time.monotonic()
    done = subprocess.run(
        [str(OAUTHCLI), "-r", str(root), *args],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )
    err = done.stderr.decode("utf-8", "replace")
    assert "Traceback" not in err, err
    return Done(done.returncode, done.stdout, err, time.monotonic() - started)


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


class _EveryPath(dict):  # type: ignore[type-arg]
    """Routes that answer 200 on any path (the server looks a route up with .get)."""

    def get(self, key: object, default: object = None) -> object:
        return lambda rec: (200, JSON, b"{}")


def catch_all(loopback: LoopbackServer) -> None:
    loopback.routes = _EveryPath()


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
    planned = text.out.decode().splitlines()[0]
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
