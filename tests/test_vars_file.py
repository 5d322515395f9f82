"""--vars-file: YAML or JSON objects of call variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from oauthcli.cli.send import read_vars_file
from oauthcli.errors import UsageError


def test_yaml_values_are_taken_as_written(tmp_path: Path) -> None:
    path = tmp_path / "vars.yaml"
    path.write_text(
        "id: 012345\nday: 2026-01-02\nn: 3\nok: true\ntext: 'quoted'\nlist: [1, 2]\nnothing:\n"
    )
    assert read_vars_file(path) == {
        "id": "012345",
        "day": "2026-01-02",
        "n": "3",
        "ok": "true",
        "text": "quoted",
        "list": "[1, 2]",
        "nothing": "",
    }


def test_json_values(tmp_path: Path) -> None:
    path = tmp_path / "vars.json"
    path.write_text('{"id": "012345", "n": 3, "nested": {"a": [1, "x"]}}')
    assert read_vars_file(path) == {"id": "012345", "n": "3", "nested": '{"a": [1, "x"]}'}


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("loop.yaml", "a: &a [*a]\n", "an alias refers to itself"),
        ("bad.yaml", "a: [\n", "invalid YAML"),
        ("bad.json", "{nope", "not valid JSON"),
        ("list.yaml", "- a\n", "expected an object"),
    ],
)
def test_bad_files_are_usage_errors_naming_the_file(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(UsageError, match=message) as info:
        read_vars_file(path)
    assert name in str(info.value)
