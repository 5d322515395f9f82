"""oauthcli import openapi: the files it writes, through the CLI, and every bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.cliproc import oauthcli
from tests.clirun import run

DATA = Path(__file__).parent / "data" / "import"
ENV = {"SWAGGER_PETSTORE_CLIENT_ID": "cid", "SWAGGER_PETSTORE_CLIENT_SECRET": "csecret"}


def _import(tmp_path: Path, name: str, *extra: str):
    return run("-r", str(tmp_path), "import", "openapi", str(DATA / name), *extra)


def test_petstore_message_and_profile(tmp_path, monkeypatch):
    done = _import(tmp_path, "petstore.yaml")
    assert done.code == 0, done
    message_text = (tmp_path / "messages" / "swagger-petstore.yaml").read_text()
    profile_text = (tmp_path / "profiles" / "swagger-petstore.yaml").read_text()
    assert message_text.startswith("# Imported by `oauthcli import openapi` from petstore.yaml")
    message = yaml.safe_load(message_text)
    profile = yaml.safe_load(profile_text)
    assert profile == {
        "name": "swagger-petstore",
        "grant_type": "client_credentials",
        "token_url": "https://auth.petstore.example/oauth2/token",
        "client_id": "${env:SWAGGER_PETSTORE_CLIENT_ID}",
        "client_secret": "${env:SWAGGER_PETSTORE_CLIENT_SECRET}",
        "scope": "pets.read",  # the scopes the security requirement asks
    }
    assert message["endpoint"] == "https://${region}.petstore.example/v1"
    assert message["variables"] == {"region": "eu"}
    assert message["auth"] == {"type": "oauth2", "profile": "swagger-petstore"}
    methods = message["methods"]
    assert list(methods) == ["list_pets", "create_pet", "show_pet_by_id", "put_pets_pet_id"]
    listing = methods["list_pets"]
    assert listing["query"] == {"limit": "${limit}"}  # tags: optional without default
    assert listing["variables"] == {"limit": "20"}
    assert listing["headers"] == {"X-Request-Id": "${X-Request-Id}"}
    assert "tags (query)" in listing["description"]
    assert methods["show_pet_by_id"]["path"] == "/pets/${petId}"  # a $ref'd parameter
    # a body with only a schema ($ref'd, nested): string properties are variables
    assert methods["create_pet"]["json"] == {
        "name": "${name}",
        "tag": "${tag}",
        "age": 0,
        "vaccinated": True,
        "owner": {"email": "user@example.com"},
    }
    assert methods["create_pet"]["variables"] == {"tag": "cat"}
    # a body with an example, copied; its "${" is literal, never a variable
    assert methods["put_pets_pet_id"]["json"] == {
        "name": "Rex",
        "tag": "dog $${not_a_var}",
        "age": 3,
    }

    monkeypatch.setenv("SWAGGER_PETSTORE_CLIENT_ID", "cid")
    monkeypatch.setenv("SWAGGER_PETSTORE_CLIENT_SECRET", "csecret")
    checked = run("-r", str(tmp_path), "validate")
    assert checked.code == 0, checked
    shown = run(
        "-r", str(tmp_path), "send", "swagger-petstore.list_pets", "--dry-run",
        "-V", "X-Request-Id=r-1",
    )  # fmt: skip
    assert shown.code == 0, shown
    assert "GET https://eu.petstore.example/v1/pets?limit=20" in shown.out
    missing = run("-r", str(tmp_path), "send", "swagger-petstore.create_pet", "--dry-run")
    assert missing.code == 3 and "variable 'name' has no value" in missing.err


def test_split_document_relative_server_and_api_key(tmp_path, monkeypatch):
    done = _import(tmp_path, "split.yaml", "--name", "Items")
    assert done.code == 0, done
    assert "relative" in done.err and "ITEMS_BASE_URL" in done.err
    assert not (tmp_path / "profiles").exists()  # no OAuth scheme, no profile
    message = yaml.safe_load((tmp_path / "messages" / "items.yaml").read_text())
    assert message["endpoint"] == "${env:ITEMS_BASE_URL}/api"
    assert message["auth"] == {
        "type": "api_key",
        "header": "X-Service-Key",
        "value": "${env:ITEMS_API_KEY}",
    }
    methods = message["methods"]
    assert methods["get_items_item_id"]["path"] == "/items/${item-id}"  # from parts/params.yaml
    assert methods["add_item"]["form"] == {"label": "${label}", "count": "1"}
    monkeypatch.setenv("ITEMS_BASE_URL", "https://items.test")
    monkeypatch.setenv("ITEMS_API_KEY", "k")
    assert run("-r", str(tmp_path), "validate").code == 0


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("broken.yaml", "broken.yaml:9: not YAML"),
        ("invalid.yaml", "invalid.yaml:2: info: 'version' is a required property"),
        ("empty.yaml", "empty.yaml: paths: the document has no operations"),
        ("swagger.json", "swagger.json:1: swagger: a Swagger 2.0 document, not OpenAPI 3.x"),
        ("remote-ref.yaml", "$ref to http://127.0.0.1:9/params.yaml is not fetched"),
        ("missing.yaml", "missing.yaml: cannot read file"),
    ],
)
def test_bad_documents(tmp_path, name, expected):
    done = oauthcli("import", "openapi", DATA / name, registry=tmp_path)
    assert done.code == 3, done
    assert expected in done.err, done
    assert len(done.err.strip().splitlines()) == 1, done
    assert not any(tmp_path.rglob("*.yaml"))


def test_a_ref_outside_the_folder_is_not_followed(tmp_path):
    secret = tmp_path / "outside.yaml"
    secret.write_text("Limit: {name: limit, in: query, schema: {type: string}}\n")
    spec = tmp_path / "api" / "spec.yaml"
    spec.parent.mkdir()
    spec.write_text(
        (DATA / "remote-ref.yaml")
        .read_text()
        .replace("http://127.0.0.1:9/params.yaml", "../outside.yaml")
    )
    registry = tmp_path / "reg"
    registry.mkdir()
    done = run("-r", str(registry), "import", "openapi", str(spec))
    assert done.code == 3 and "outside the document's folder is not followed" in done.err


def test_overwrite_refused_then_forced(tmp_path):
    assert _import(tmp_path, "petstore.yaml").code == 0
    message = tmp_path / "messages" / "swagger-petstore.yaml"
    message.write_text("name: swagger-petstore\nendpoint: https://edited.test\n")
    (tmp_path / "profiles" / "swagger-petstore.yaml").unlink()
    again = _import(tmp_path, "petstore.yaml")
    assert again.code == 2
    assert "messages/swagger-petstore.yaml already exists" in again.err
    assert "--force" in again.err
    assert message.read_text().endswith("https://edited.test\n")  # nothing changed
    assert not (tmp_path / "profiles" / "swagger-petstore.yaml").exists()  # none written
    forced = _import(tmp_path, "petstore.yaml", "--force")
    assert forced.code == 0, forced
    assert "petstore.example" in message.read_text()


def test_registry_folder_cannot_be_written(tmp_path):
    (tmp_path / "messages").write_text("a file where the folder should be")
    done = oauthcli("import", "openapi", DATA / "split.yaml", registry=tmp_path)
    assert done.code == 3 and "cannot write" in done.err, done
    missing = oauthcli("import", "openapi", DATA / "split.yaml", registry=tmp_path / "nope")
    assert missing.code == 3 and "does not exist" in missing.err, missing


def test_alias_bomb_refused(tmp_path):
    spec = tmp_path / "bomb.yaml"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    spec.write_text(
        "openapi: 3.0.3\ninfo: {title: Bomb, version: '1'}\nx-bomb:\n"
        + "".join(f"  {line}\n" for line in bomb.splitlines())
        + "paths: {/x: {get: {responses: {'200': {description: ok}}}}}\n"
    )
    done = oauthcli("import", "openapi", spec, registry=tmp_path, timeout=10)
    assert done.code == 3 and "more than 2,000,000 values" in done.err, done


def test_hostile_example_and_names(tmp_path, monkeypatch):
    spec = tmp_path / "hostile.yaml"
    big = "[" + ", ".join(f"{{n: {i}}}" for i in range(11_000)) + "]"
    spec.write_text(
        "openapi: 3.0.3\n"
        "info: {title: '../../etc/Evil ${env:HOME}', version: '1'}\n"
        "paths:\n"
        "  /x:\n"
        "    post:\n"
        "      operationId: 'drop; rm -rf /'\n"
        "      requestBody:\n"
        "        content:\n"
        "          application/json:\n"
        f"            example: {big}\n"
        "      responses: {'200': {description: ok}}\n"
    )
    registry = tmp_path / "reg"
    registry.mkdir()
    done = run("-r", str(registry), "import", "openapi", str(spec))
    assert done.code == 0, done
    assert "too large" in done.err
    written = list(registry.rglob("*.yaml"))
    assert [p.name for p in written] == ["etc-evil-env-home.yaml"]
    message = yaml.safe_load(written[0].read_text())
    assert list(message["methods"]) == ["drop_rm_rf"]
    assert message["description"] == "../../etc/Evil $${env:HOME}"
    monkeypatch.setenv("ETC_EVIL_ENV_HOME_BASE_URL", "https://evil.test")
    assert run("-r", str(registry), "validate").code == 0


def test_copied_fixture_folder_is_self_contained(tmp_path):
    """The split document's $ref is relative to the document, not to the cwd."""
    copy = tmp_path / "copy"
    shutil.copytree(DATA, copy)
    registry = tmp_path / "reg"
    registry.mkdir()
    assert run("-r", str(registry), "import", "openapi", str(copy / "split.yaml")).code == 0
