"""``oauthcli schema KIND``, the committed ``schema/*.json`` and the example files' modelines."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from oauthcli.cli.schema import kinds
from tests.cliproc import oauthcli
from tests.clirun import run

ROOT = Path(__file__).resolve().parent.parent
SCHEMAS = ROOT / "schema"
MODELINE = re.compile(r"# yaml-language-server: \$schema=(\S+)\n")
#: The example folders and the kind of file each holds.
FOLDERS = {"profiles": "profile", "messages": "message", "environments": "environment"}


def example_files() -> list[Path]:
    found = [p for folder in FOLDERS for p in sorted((ROOT / folder).glob("*.y*ml"))]
    return found + sorted((ROOT / "examples").rglob("*.y*ml"))


def test_the_kinds_are_at_least_profile_and_message() -> None:
    assert kinds()[:2] == ("profile", "message")
    assert set(kinds()) <= {"profile", "message", "environment"}


@pytest.mark.parametrize("kind", kinds())
def test_schema_prints_stable_draft_2020_12_json_with_an_id(kind: str) -> None:
    first = run("schema", kind)
    assert first.code == 0 and first.err == "", first
    assert run("schema", kind).out == first.out  # stable: byte for byte, run after run
    schema = json.loads(first.out)
    assert list(schema)[:2] == ["$schema", "$id"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"urn:oauthcli:schema:{kind}"
    Draft202012Validator.check_schema(schema)  # a schema the reference validator accepts
    assert first.out.startswith("{\n  ") and first.out.endswith("}\n")


@pytest.mark.parametrize("kind", kinds())
def test_the_committed_schema_file_is_the_command_output(kind: str) -> None:
    committed = SCHEMAS / f"{kind}.json"
    assert committed.is_file(), f"schema/{kind}.json is missing"
    assert committed.read_text(encoding="utf-8") == run("schema", kind).out, (
        f"schema/{kind}.json differs from the declaration: regenerate it with "
        f"`oauthcli schema {kind} > schema/{kind}.json`"
    )


def test_every_committed_schema_file_is_a_kind() -> None:
    assert sorted(p.stem for p in SCHEMAS.glob("*.json")) == sorted(kinds())


def test_an_unknown_kind_is_a_usage_error_naming_the_known_ones() -> None:
    done = oauthcli("schema", "profiles")
    assert done.code == 2, done
    assert done.err.strip() == f"error: schema takes {', '.join(kinds())}, not 'profiles'"
    assert done.out == ""
    missing = oauthcli("schema")
    assert missing.code == 2 and "Missing argument" in missing.err, missing


def test_schema_needs_no_registry(tmp_path: Path) -> None:
    done = oauthcli("schema", "message", env={"OAUTHCLI_REGISTRY": str(tmp_path / "none")})
    assert done.code == 0 and json.loads(done.out)["title"] == "oauthcli message", done


def test_schema_into_a_closed_pipe_ends_quietly() -> None:
    done = oauthcli("schema", "profile", prefix=("sh", "-c", '"$@" | head -c 10 >/dev/null', "-"))
    assert done.code == 0 and "Traceback" not in done.err and "error" not in done.err, done


@pytest.mark.parametrize("path", example_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_each_example_file_starts_with_its_schema_modeline(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    match = MODELINE.match(text)
    assert match, (
        f"{path.relative_to(ROOT)}: the first line is not the yaml-language-server modeline"
    )
    target = (path.parent / match.group(1)).resolve()
    assert target.is_file(), f"{path}: {match.group(1)} does not exist"
    assert target.parent == SCHEMAS
    if path.parent.name in FOLDERS:
        assert target.stem == FOLDERS[path.parent.name]


def test_the_modeline_changes_nothing_for_the_loader() -> None:
    done = oauthcli("validate", registry=ROOT)
    assert done.code == 0, done
