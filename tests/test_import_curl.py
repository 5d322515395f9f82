"""oauthcli import curl: each option, credentials never written or printed, bad commands."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import yaml

from tests.cliproc import oauthcli
from tests.clirun import run

SECRETS = ("tok-S3CRET-1", "pw-S3CRET-2", "key-S3CRET-3", "body-S3CRET-4", "q-S3CRET-5")


def _import(tmp_path: Path, command: str, *extra: str):
    return run("-r", str(tmp_path), "import", "curl", command, *extra)


def _message(tmp_path: Path, name: str) -> dict:
    return yaml.safe_load((tmp_path / "messages" / f"{name}.yaml").read_text())


def test_post_json_with_bearer_and_options(tmp_path, monkeypatch):
    command = (
        "curl -sSL --compressed -X POST 'https://api.example.com/v2/pets?limit=5&api_key=q-S3CRET-5' \\\n"
        "  -H 'Authorization: Bearer tok-S3CRET-1' -H 'X-Trace: ${abc}' -A probe/1 \\\n"
        "  -H 'Content-Type: application/json' "
        '-d \'{"name": "Rex", "password": "body-S3CRET-4", "age": 3}\' -m 12'
    )
    done = _import(tmp_path, command, "--name", "pets")
    assert done.code == 0, done
    message = _message(tmp_path, "pets")
    assert message["endpoint"] == "https://api.example.com/v2/pets"
    assert message["auth"] == {"type": "bearer", "token": "${env:PETS_TOKEN}"}
    assert message["headers"] == {
        "X-Trace": "$${abc}",  # a literal ${, never a variable
        "User-Agent": "probe/1",
        "Content-Type": "application/json",
    }
    assert message["timeout"] == 12.0
    method = message["methods"]["default"]
    assert method["http_method"] == "POST"
    assert method["query"] == {"limit": "5", "api_key": "${env:PETS_API_KEY}"}
    assert method["json"] == {"name": "Rex", "password": "${env:PETS_PASSWORD}", "age": 3}
    assert "PETS_TOKEN" in done.err
    for name, value in (("PETS_TOKEN", "t"), ("PETS_API_KEY", "k"), ("PETS_PASSWORD", "p")):
        monkeypatch.setenv(name, value)
    assert run("-r", str(tmp_path), "validate").code == 0


def test_form_data_basic_user_and_insecure(tmp_path, monkeypatch):
    command = (
        "curl -k -u alice:pw-S3CRET-2 https://10.1.2.3:8443/login "
        "-d grant=1 -d client_secret=body-S3CRET-4 --data-urlencode 'q=a b&c'"
    )
    done = _import(tmp_path, command, "--name", "login")
    assert done.code == 0, done
    assert "does not verify the server's certificate" in done.err
    message = _message(tmp_path, "login")
    assert message["endpoint"] == "https://10.1.2.3:8443/login"
    assert message["tls"] == {"verify": False}
    assert message["auth"] == {
        "type": "basic",
        "username": "${env:LOGIN_USERNAME}",
        "password": "${env:LOGIN_PASSWORD}",
    }
    assert message["methods"]["default"]["form"] == {
        "grant": "1",
        "client_secret": "${env:LOGIN_CLIENT_SECRET}",
        "q": "a b&c",
    }
    for name in ("LOGIN_USERNAME", "LOGIN_PASSWORD", "LOGIN_CLIENT_SECRET"):
        monkeypatch.setenv(name, "x")
    shown = run("-r", str(tmp_path), "send", "login", "--dry-run")
    assert shown.code == 0, shown
    assert "grant=1&client_secret=" in shown.out and "q=a+b%26c" in shown.out


def test_get_with_data_json_flag_api_key_and_raw_body(tmp_path):
    assert _import(tmp_path, "curl -G https://x.test/search -d q=cats -d page=2").code == 0
    search = _message(tmp_path, "x-search")
    assert search["methods"]["default"] == {
        "http_method": "GET",
        "query": {"q": "cats", "page": "2"},
    }
    done = _import(
        tmp_path,
        "curl --json '[1, 2]' -H 'X-API-Key: key-S3CRET-3' --url https://x.test/bulk",
        "--name", "bulk",
    )  # fmt: skip
    assert done.code == 0, done
    bulk = _message(tmp_path, "bulk")
    assert bulk["auth"] == {
        "type": "api_key",
        "header": "X-API-Key",
        "value": "${env:BULK_API_KEY}",
    }
    assert bulk["headers"] == {"Accept": "application/json"}
    assert bulk["methods"]["default"]["json"] == [1, 2]
    raw = _import(tmp_path, "curl -XPUT https://x.test/n --data-raw '@not a file'", "--name", "n")
    assert raw.code == 0, raw
    n = _message(tmp_path, "n")
    assert n["methods"]["default"]["content"] == "@not a file"
    assert n["headers"] == {"Content-Type": "application/x-www-form-urlencoded"}
    body = tmp_path / "body.xml"
    body.write_text("<a/>")
    fromfile = run(
        "-r", str(tmp_path), "import", "curl",
        f"curl -H 'Content-Type: text/xml' -d @{body} https://x.test/x", "--name", "xml",
    )  # fmt: skip
    assert fromfile.code == 0, fromfile
    assert _message(tmp_path, "xml")["methods"]["default"]["content"] == f"${{file:{body}}}"


def test_basic_header_and_url_credentials_never_written_or_printed(tmp_path):
    basic = base64.b64encode(b"bob:pw-S3CRET-2").decode()
    commands = [
        f"curl -H 'Authorization: Basic {basic}' https://x.test/a",
        "curl https://bob:pw-S3CRET-2@x.test/b -v",
        "curl -H 'Cookie: sid=tok-S3CRET-1' -H 'X-Auth-Token: key-S3CRET-3' https://x.test/c",
        "curl --oauth2-bearer tok-S3CRET-1 https://x.test/d -d 'token=q-S3CRET-5'",
    ]
    outputs = []
    for i, command in enumerate(commands):
        done = oauthcli("import", "curl", command, "--name", f"m{i}", registry=tmp_path)
        assert done.code == 0, done
        outputs.append(done.both)
    assert _message(tmp_path, "m0")["auth"]["type"] == "basic"
    assert _message(tmp_path, "m1")["endpoint"] == "https://x.test/b"  # userinfo dropped
    assert _message(tmp_path, "m2")["headers"] == {"Cookie": "${env:M2_COOKIE}"}
    written = "".join(p.read_text() for p in tmp_path.rglob("*.yaml"))
    for secret in (*SECRETS, basic):
        assert secret not in written
        assert all(secret not in out for out in outputs)


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("curl --proxy http://p:3128 https://x.test", "curl option --proxy is not supported"),
        ("curl -Z https://x.test", "curl option -Z is not supported"),
        ("curl -sZ https://x.test", "curl option -Z is not supported"),
        ("curl --form=tok-S3CRET-1 https://x.test", "curl option --form is not supported"),
        ("curl -H", "curl option -H needs a value"),
        ("curl -s", "the curl command has no URL"),
        ("curl 'https://x.test", "cannot be split as a shell would"),
        ("curl ftp://x.test/f", "not an http(s) URL"),
        ("curl https://a.test https://b.test", "more than one URL"),
        ("curl -d @- https://x.test", "from stdin"),
        ("", "the curl command is empty"),
    ],
)
def test_bad_commands(tmp_path, command, reason):
    done = oauthcli("import", "curl", command, registry=tmp_path)
    assert done.code == 2, done
    assert reason in done.err, done
    assert "S3CRET" not in done.both
    assert not (tmp_path / "messages").exists()


def test_overwrite_refused_then_forced(tmp_path):
    assert _import(tmp_path, "curl https://x.test/a", "--name", "a").code == 0
    again = _import(tmp_path, "curl https://x.test/other", "--name", "a")
    assert again.code == 2 and "--force" in again.err
    assert _message(tmp_path, "a")["endpoint"] == "https://x.test/a"
    assert _import(tmp_path, "curl https://x.test/other", "--name", "a", "--force").code == 0
    assert _message(tmp_path, "a")["endpoint"] == "https://x.test/other"
