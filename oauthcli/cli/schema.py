"""``oauthcli schema KIND``: the JSON Schema (draft 2020-12) of a registry file.

The schema is :func:`oauthcli.registry.reference.json_schema`, derived from the same
declaration that ``validate`` checks; this module only names it and prints it. Its
``$id`` is a URN (``urn:oauthcli:schema:profile``): oauthcli has no web site to serve
schemas from, and editors find them through the repository's ``schema/*.json``
(the ``# yaml-language-server: $schema=…`` line of each example file), not by ``$id``.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from oauthcli.errors import UsageError

#: The kinds of file there may be a schema of; those :func:`kinds` finds in
#: ``reference`` are offered (an environment's lands with the environments).
_CANDIDATES = ("profile", "message", "environment")


@cache
def kinds() -> tuple[str, ...]:
    """The kinds ``reference.json_schema`` knows, in :data:`_CANDIDATES` order."""
    return tuple(k for k in _CANDIDATES if _schema(k) is not None)


def _schema(kind: str) -> dict[str, Any] | None:
    from oauthcli.registry import reference

    try:
        return reference.json_schema(kind)
    except (KeyError, ValueError):
        return None


def schema_id(kind: str) -> str:
    return f"urn:oauthcli:schema:{kind}"


def schema_text(kind: str) -> str:
    """The schema of ``kind`` as ``oauthcli schema`` prints it: stable, pretty JSON."""
    schema = _schema(kind) if kind in _CANDIDATES else None
    if schema is None:
        raise UsageError(f"schema takes {', '.join(kinds())}, not {kind!r}")
    schema = {"$schema": schema.pop("$schema"), "$id": schema_id(kind), **schema}
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def schema_command(kind: str) -> int:
    from oauthcli.present import console

    console.out(schema_text(kind).removesuffix("\n"))
    return 0
