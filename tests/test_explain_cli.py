"""A refusal explained from the outside: the CLI in a subprocess against an API that refuses
in the shapes real ones use (DRF's required_scopes, an nginx HTML page)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.registry_factory import make_registry
from tests.servers import LoopbackServer, Recorded


@pytest.fixture
def registry(loopback: LoopbackServer, tmp_path: Path) -> Path:
    def token(rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        body = {
            "access_token": "opaque-token-1234567",
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "read",
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()

    loopback.routes["/token"] = token
    drf = {
        "detail": "You do not have permission to perform this action.",
        "required_scopes": ["write"],
    }
    loopback.reply("/drf", 403, json.dumps(drf).encode(), Content_Type="application/json")
    nginx = (
        b"<html><head><title>403 Forbidden</title></head><body><center><h1>403 Forbidden"
        b"</h1></center><hr><center>nginx</center></body></html>"
    )
    loopback.reply("/nginx", 403, nginx, Content_Type="text/html")
    return make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": f"""\
                grant_type: client_credentials
                token_url: {loopback.base}/token
                client_id: app
                client_secret: explain-secret-1
                scope: read write
                """,
            "messages/items.yaml": f"""\
                endpoint: {loopback.base}
                auth: {{type: oauth2, profile: acme}}
                methods:
                  drf: {{http_method: POST, path: /drf}}
                  nginx: {{http_method: GET, path: /nginx}}
                """,
        },
    )


def _send(registry: Path, method: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oauthcli", "-r", str(registry), "send", f"items.{method}"],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "NO_COLOR": "1"},
    )


def test_a_drf_refusal_names_the_scope_the_token_lacks(registry: Path) -> None:
    done = _send(registry, "drf")
    assert done.returncode == 4, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0].startswith("error: 403 Forbidden from POST http://127.0.0.1:")
    assert lines[0].endswith("/drf: You do not have permission to perform this action.")
    assert "  the API says this call requires scope write" in lines
    assert "  - scope write is not in the token" in lines
    assert "  - the profile asks for scope write but it was not granted" in lines
    assert any("lacks a scope this call needs (the API asks for: write)" in x for x in lines)
    assert "Traceback" not in done.stderr and "opaque-token-1234567" not in done.stderr


def test_an_html_error_page_is_said_to_be_one(registry: Path) -> None:
    done = _send(registry, "nginx")
    assert done.returncode == 4, done.stderr
    first = done.stderr.splitlines()[0]
    assert first.endswith("/nginx: the API answered an HTML page"), first
