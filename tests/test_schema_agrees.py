"""The JSON Schema an editor checks with and the loader ``validate`` runs agree.

Every example file of the repository, and every mutation of it that matters (a key
dropped, a value of the wrong type, an unknown key, a value outside its choices or its
range), is given to both: the reference validator (``jsonschema``, draft 2020-12) over
``oauthcli schema KIND`` and the registry's loader. Each must refuse exactly what the
other refuses; a file both accept or both refuse is agreement.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from oauthcli.cli.schema import kinds, schema_text
from oauthcli.errors import RegistryProblems
from oauthcli.registry import models, yamlsrc

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"profile": "profiles", "message": "messages", "environment": "environments"}
Mutation = tuple[str, Any]  # what was done, the document it gave

#: A value of another JSON type than each schema type allows.
_WRONG = {
    "string": ["a", "list"],
    "number": {"a": "mapping"},
    "integer": "ten",
    "boolean": "maybe",
    "object": "a string",
    "array": {"a": "mapping"},
    "null": "a string",
}


def _examples(kind: str) -> list[Path]:
    folder = ROOT / FOLDERS[kind]
    return sorted(folder.glob("*.y*ml")) if folder.is_dir() else []


def _validator(kind: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_text(kind)))


def _wrong_value(prop: dict[str, Any]) -> Any:
    """A value no schema type of ``prop`` allows (``None`` when any JSON is allowed)."""
    types = prop.get("type")
    if types is None:
        return None
    allowed = {types} if isinstance(types, str) else set(types)
    if "number" in allowed:
        allowed.add("integer")
    for candidate in (["a", "list"], {"a": "mapping"}, "text", 7, True):
        kind = _json_type(candidate)
        if kind not in allowed and not (kind == "integer" and "number" in allowed):
            return candidate
    return None


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _mutations_of(obj: dict[str, Any], schema: dict[str, Any], at: str) -> Iterator[Mutation]:
    """Mutations of the mapping ``obj`` (described by ``schema``), each applied in place
    and undone after it is yielded, so the caller copies the whole document."""
    props = schema.get("properties", {})
    for key in list(obj):
        value = obj.pop(key)
        yield f"{at}{key} dropped", None
        obj[key] = value
    obj["bogus_key"] = "x"
    yield f"{at}bogus_key added", None
    del obj["bogus_key"]
    for key, prop in props.items():
        if key not in obj:
            continue
        value = obj[key]
        wrong = _wrong_value(prop)
        if wrong is not None:
            obj[key] = wrong
            yield f"{at}{key} = {wrong!r}", None
        if "enum" in prop:
            obj[key] = "not-one-of-them"
            yield f"{at}{key} = 'not-one-of-them'", None
        if "minimum" in prop:
            obj[key] = prop["minimum"] - 1
            yield f"{at}{key} below its minimum", None
        if "maximum" in prop:
            obj[key] = prop["maximum"] + 1
            yield f"{at}{key} above its maximum", None
        obj[key] = value
        if isinstance(value, dict):
            if "properties" in prop:
                yield from _mutations_of(value, prop, f"{at}{key}.")
            elif isinstance(prop.get("additionalProperties"), dict):
                inner = prop["additionalProperties"]
                for name, item in list(value.items()):
                    if isinstance(item, dict) and "properties" in inner:
                        yield from _mutations_of(item, inner, f"{at}{key}.{name}.")
                    else:
                        wrong = _wrong_value(inner)
                        if wrong is not None:
                            value[name] = wrong
                            yield f"{at}{key}.{name} = {wrong!r}", None
                        value[name] = item


def mutations(kind: str, data: dict[str, Any]) -> Iterator[Mutation]:
    schema = json.loads(schema_text(kind))
    work = copy.deepcopy(data)
    for what, _ in _mutations_of(work, schema, ""):
        yield what, copy.deepcopy(work)


def _loader_refuses(tmp_path: Path, kind: str, data: Any, name: str) -> list[str]:
    folder = tmp_path / FOLDERS[kind]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    parse = {
        "profile": models.parse_profile,
        "message": models.parse_message,
        "environment": models.parse_environment,
    }[kind]
    try:
        parse(yamlsrc.load(path))  # what Registry does with each file it is asked for
    except yamlsrc.YamlProblem as exc:
        return [str(exc.problem)]
    except RegistryProblems as exc:
        return [str(p) for p in exc.problems]
    return []


def _cases() -> list[tuple[str, Path]]:
    return [(kind, path) for kind in kinds() for path in _examples(kind)]


def test_there_are_examples_of_profiles_and_messages() -> None:
    assert {kind for kind, _ in _cases()} >= {"profile", "message"}


@pytest.mark.parametrize(
    ("kind", "path"), _cases(), ids=[str(p.relative_to(ROOT)) for _, p in _cases()]
)
def test_schema_and_loader_agree_on_an_example_and_its_mutations(
    tmp_path: Path, kind: str, path: Path
) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    validator = _validator(kind)
    assert not list(validator.iter_errors(data)), f"the schema refuses {path.name}"
    assert _loader_refuses(tmp_path, kind, data, "original") == [], path.name
    disagreements = []
    count = 0
    for count, (what, mutated) in enumerate(mutations(kind, data), 1):
        schema_says = [e.message for e in validator.iter_errors(mutated)]
        loader_says = _loader_refuses(tmp_path, kind, mutated, f"m{count}")
        if bool(schema_says) != bool(loader_says):
            disagreements.append(
                f"{what}: schema {'refuses' if schema_says else 'accepts'} "
                f"{schema_says[:1]}, loader {'refuses' if loader_says else 'accepts'} "
                f"{loader_says[:1]}"
            )
    assert count >= 5, f"only {count} mutations of {path.name}"
    assert disagreements == [], "\n".join(disagreements)


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        ("profile", "grant_type: password\ntoken_url: u\nclient_id: c\nclient_secret: s\n"),
        ("profile", "grant_type: client_credentials\ntoken_url: u\nclient_id: c\n"),
        ("profile", "grant_type: nope\ntoken_url: u\nclient_id: c\nclient_auth: none\n"),
        ("profile", "token_url: u\nclient_id: c\nclient_auth: none\ntoken_leeway: -1\n"),
        ("message", "endpoint: u\nauth: {type: basic, username: u}\n"),
        ("message", "endpoint: u\nauth: {type: bearer, token: t, header: X}\n"),
        ("message", "endpoint: u\nmethods: {a: {tls: {verfy: true}}}\n"),
        ("message", "endpoint: u\nretry: {attempts: many}\n"),
        ("message", "methods: {a: {http_method: GET}}\n"),
        ("environment", "variables: {base: [1, 2]}\n"),
        ("environment", "variables: {'bad name': x}\n"),
        ("environment", "variable: {base: x}\n"),
    ],
)
def test_schema_and_loader_both_refuse_a_hand_written_mistake(
    tmp_path: Path, kind: str, text: str
) -> None:
    if kind not in kinds():
        pytest.skip(f"no {kind} schema yet")
    data = yaml.safe_load(text)
    assert list(_validator(kind).iter_errors(data)), "the schema accepts it"
    assert _loader_refuses(tmp_path, kind, data, "mistake"), "the loader accepts it"
