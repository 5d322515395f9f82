"""What the declaration of every key gives a reader: the README's key reference and
the JSON Schema (draft 2020-12) of profile, message and environment files.

Both derive from :mod:`oauthcli.registry.declaration` alone, so neither can drift from
what ``validate`` checks; a test compares the README's copy with :func:`markdown`, and
another runs files through the schema and the loader alike.
``python -m oauthcli.registry.reference --markdown`` prints the reference.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from oauthcli.registry.declaration import (
    AUTH,
    AUTH_REQUIRES,
    AUTH_TYPES,
    CLIENT_AUTH_REQUIRES,
    ENVIRONMENT,
    GRANT_REQUIRES,
    MESSAGE,
    METHOD,
    PROFILE,
    SETTINGS,
    Key,
    auth_keys,
    children,
    json_type,
    top,
)

# The JSON Schema (draft 2020-12) ---------------------------------------------

_SCHEMA = "https://json-schema.org/draft/2020-12/schema"
_SCALAR = ["string", "number", "boolean"]  # what a template may be written as


def _property(key: Key, keys: tuple[Key, ...]) -> dict[str, Any]:
    prop: dict[str, Any] = {"description": key.meaning}
    if key.kind == "mapping":
        if key.name == "auth":
            return {**prop, **_auth_schema()}
        if key.name == "methods":
            method = _object(METHOD)
            method["type"] = ["object", "null"]
            return {**prop, "type": "object", "additionalProperties": method, "minProperties": 1}
        return {**prop, **_object(children(keys, key.name))}
    kind = key.kind
    prop["type"] = _SCALAR if kind == "template" else json_type(key)
    if kind == "words":
        prop["type"] = [*_SCALAR, "array"]
        prop["items"] = {"type": _SCALAR}
    elif kind == "map":
        prop["additionalProperties"] = {"type": _SCALAR}
    elif kind == "statuses":
        prop["items"] = {"type": "integer", "minimum": 100, "maximum": 599}
    elif kind == "json":
        del prop["type"]  # any JSON
    elif kind == "assertion":
        prop["type"] = [*_SCALAR, "object"]
        audience: dict[str, Any] = {
            "type": "object",
            "properties": {"audience": {"type": _SCALAR}},
            "required": ["audience"],
            "additionalProperties": False,
        }
        prop["properties"] = {"github_actions": audience}
        prop["required"] = ["github_actions"]
        prop["additionalProperties"] = False
    if key.choices and kind != "string" or key.name == "signing_alg":
        prop["enum"] = list(key.choices)
    if kind == "level":
        prop["enum"].append(False)  # YAML 1.1 reads a bare off as false
    if key.pattern:
        prop["pattern"] = f"^{key.pattern}$"
    if key.minimum is not None:
        prop["minimum"] = key.minimum
    if key.maximum is not None:
        prop["maximum"] = key.maximum
    if key.default is not None:
        prop["default"] = list(key.default) if isinstance(key.default, tuple) else key.default
    if key.secret:
        prop["writeOnly"] = True
    return prop


def _object(keys: tuple[Key, ...]) -> dict[str, Any]:
    shown = top(keys) if not keys or "." not in keys[0].name else keys
    required = [k.leaf for k in shown if k.required and not k.unless]
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {k.leaf: _property(k, keys) for k in shown},
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    rules = [
        {"if": {"not": {"required": [k.unless]}}, "then": {"required": [k.leaf]}}
        for k in shown
        if k.required and k.unless
    ]
    for on in dict.fromkeys(on for k in shown for on, _ in k.required_if):
        decider = next(k for k in shown if k.leaf == on)
        for value in decider.choices:
            needs = [k for k in shown if (on, value) in k.required_if]
            if needs:
                then = _requiring(needs)
                rules.append(_when(on, value, then, decider.default == value))
    if rules:
        schema["allOf"] = rules
    return schema


def _requiring(needs: list[Key]) -> dict[str, Any]:
    """``required`` of the keys always needed; each one ``unless`` another key is set, or it."""
    then: dict[str, Any] = {}
    plain = [k.leaf for k in needs if not k.unless]
    if plain:
        then["required"] = plain
    either = [
        {"anyOf": [{"required": [k.leaf]}, {"required": [k.unless]}]} for k in needs if k.unless
    ]
    if either:
        then["allOf"] = either
    return then


def _when(on: str, value: str, then: dict[str, Any], default: bool = False) -> dict[str, Any]:
    """``then`` applies when ``on`` is ``value`` (or, for its default, left out)."""
    condition: dict[str, Any] = {"properties": {on: {"const": value}}}
    if not default:
        condition["required"] = [on]
    return {"if": condition, "then": then}


def _auth_schema() -> dict[str, Any]:
    schema = _object(AUTH)
    schema["allOf"] = [
        _when(
            "type",
            kind,
            {
                "required": list(AUTH_REQUIRES[kind]),
                "propertyNames": {"enum": [k.leaf for k in auth_keys(kind)]},
            },
        )
        for kind in AUTH_TYPES
    ]
    return schema


def json_schema(kind: str) -> dict[str, Any]:
    """The draft 2020-12 JSON Schema of a ``profile``, ``message`` or ``environment`` file.

    It says what the declaration says; some checks stay in code only (a literal URL's
    shape, a header name, one body per method, ``signing_alg`` by ``client_auth``).
    """
    keys = {"profile": PROFILE, "message": MESSAGE, "environment": ENVIRONMENT}[kind]
    schema = _object(keys)
    if kind == "message":
        schema["required"] = ["endpoint"]
    if kind == "environment":
        # A name ${…} can refer to (models.parse_environment checks it too).
        schema["properties"]["variables"]["propertyNames"] = {
            "pattern": "^[A-Za-z_][A-Za-z0-9_.-]*$"
        }
    return {"$schema": _SCHEMA, "title": f"oauthcli {kind}", **schema}


# The README reference -------------------------------------------------------

MARK_START = "<!-- reference: generated by python -m oauthcli.registry.reference --markdown -->"
MARK_END = "<!-- reference: end -->"

_KIND_WORDS = {
    "string": "string",
    "choice": "one of",
    "template": "template",
    "words": "template or list",
    "map": "mapping of templates",
    "json": "JSON with templates",
    "integer": "whole number",
    "number": "number",
    "boolean": "true/false",
    "statuses": "list of statuses",
    "mapping": "block",
    "assertion": "template or {github_actions: {audience}}",
    "level": "one of (a bare off: off)",
}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default(key: Key) -> str:
    value = key.default
    if value is None:
        return ""
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple):
        return "`[" + ", ".join(map(str, value)) + "]`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _notes(key: Key) -> str:
    notes = []
    unless = f" unless `{key.unless}` is set" if key.unless else ""
    if key.required:
        notes.append("required" + unless)
    for word, conditions in (("required", key.required_if), ("only", key.only_if)):
        if conditions:
            on = conditions[0][0]  # one key decides, in every table
            values = [f"`{value}`" for _, value in conditions]
            listed = ", ".join(values[:-1]) + " or " + values[-1] if len(values) > 1 else values[0]
            notes.append(
                f"{word} with {'auth ' if on == 'type' else ''}{on} {listed}"
                + (unless if word == "required" else "")
            )
    if key.secret:
        notes.append("secret")
    if key.url:
        notes.append("http(s) URL")
    if key.minimum is not None and key.maximum is not None:
        notes.append(f"{_number(key.minimum)} to {_number(key.maximum)}")
    return "; ".join(notes)


def _table(keys: Iterable[Key]) -> list[str]:
    lines = ["| key | value | default | meaning |", "|---|---|---|---|"]
    for key in keys:
        kind = _KIND_WORDS[key.kind]
        if key.choices:
            kind = "one of " + ", ".join(f"`{c}`" for c in key.choices)
        notes = _notes(key)
        meaning = f"{key.meaning} ({notes})" if notes else key.meaning
        lines.append(f"| `{key.name}` | {_cell(kind)} | {_default(key)} | {_cell(meaning)} |")
    return lines


def markdown() -> str:
    """The README's key reference, from the tables above."""
    out = [
        MARK_START,
        "",
        "#### Profile keys (`profiles/*.yaml`)",
        "",
        *_table(PROFILE),
        "",
        "Required keys by `grant_type`: "
        + "; ".join(f"`{g}`: {', '.join(ks) or 'nothing more'}" for g, ks in GRANT_REQUIRES.items())
        + ".",
        "By `client_auth`: "
        + "; ".join(
            f"`{c}`: {', '.join(ks) or 'nothing more'}" for c, ks in CLIENT_AUTH_REQUIRES.items()
        )
        + ".",
        "",
        "#### Message keys (`messages/*.yaml`)",
        "",
        *_table(k for k in MESSAGE if k not in SETTINGS),
        "",
        "A message and each of its methods may both hold these; the method's win "
        "(`headers` and `query` merged, `retry` and `tls` key by key):",
        "",
        *_table(SETTINGS),
        "",
        "#### Method keys (`methods: NAME:`)",
        "",
        *_table(k for k in METHOD if k not in SETTINGS),
        "",
        "A method holds at most one body: `json`, `content` or `form`.",
        "",
        "#### Auth (`auth:` of a message or method)",
        "",
        *_table(AUTH),
        "",
        "Keys by type: "
        + "; ".join(f"`{t}`: {', '.join(k.leaf for k in auth_keys(t))}" for t in AUTH_TYPES)
        + ".",
        "",
        "#### Environment keys (`environments/*.yaml`)",
        "",
        *_table(ENVIRONMENT),
        "",
        "Selected with `--env/-e NAME` (before the command) or `OAUTHCLI_ENV`. A profile takes "
        "`${name}` from the selected environment only; a message from, lowest first: its "
        "`variables`, its method's, the environment, `--vars-file`, `--var`.",
        "",
        MARK_END,
    ]
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if argv != ["--markdown"]:
        sys.stderr.write("usage: python -m oauthcli.registry.reference --markdown\n")
        return 2
    sys.stdout.write(markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
