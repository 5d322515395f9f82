"""``oauthcli validate``: every file, every problem, nothing sent.

Beyond the schema this renders each ``${env:…}`` and ``${file:…}`` reference,
checks each URL that does not wait for a call variable, and that every
``auth.profile`` names a profile, so a registry that validates can be sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from oauthcli.errors import Problem, RegistryError, RegistryProblems
from oauthcli.models import Message, Profile
from oauthcli.registry import KINDS, Registry, duplicate_problems
from oauthcli.resolve import pick_method, resolve_profile, resolve_request
from oauthcli.resolved import ResolvedProfile
from oauthcli.schema import Text
from oauthcli.templates import Template, TemplateError, Var

_NO_VARIABLES: dict[str, str] = {}


def validate_registry(registry: Registry) -> tuple[list[Problem], int]:
    """All problems in the registry, and how many files were read."""
    problems: list[Problem] = []
    count = 0
    for kind in KINDS:
        for name, paths in registry.index(kind).items():
            if len(paths) > 1:
                problems += duplicate_problems(kind[:-1], name, paths)
            for path in paths:
                count += 1
                try:
                    item = registry.load(kind, path)
                except RegistryProblems as exc:
                    problems += exc.problems
                    continue
                problems += _check_references(item)
                if not problems or all(p.file != path for p in problems):
                    problems += _check_resolution(registry, item)
    return problems, count


def _texts(value: Any) -> Iterator[Text]:
    if isinstance(value, Text):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _texts(getattr(value, f.name))
    elif isinstance(value, dict):
        for v in value.values():
            yield from _texts(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _texts(v)


def _check_references(item: Profile | Message) -> list[Problem]:
    """Every ${env:…} and ${file:…} in the item can be read."""
    problems = []
    base = item.source.parent
    for text in _texts(item):
        only_refs = Template(tuple(p for p in text.template.parts if not isinstance(p, Var)))
        try:
            only_refs.render(_NO_VARIABLES, base_dir=base)
        except TemplateError as exc:
            problems.append(Problem(item.source, text.line, text.key or None, str(exc)))
    return problems


def _check_resolution(registry: Registry, item: Profile | Message) -> list[Problem]:
    try:
        if isinstance(item, Profile):
            _check_keys(resolve_profile(item))
        else:
            for name in item.methods:
                resolve_request(registry, item, pick_method(item, name), lenient=True)
    except RegistryProblems as exc:
        return _with_lines(exc.problems, item)
    except RegistryError as exc:
        return [Problem(item.source, None, None, str(exc))]
    return []


def _check_keys(profile: ResolvedProfile) -> None:
    """The signing key parses and fits signing_alg, as the grant will need it."""
    if profile.client_auth == "private_key_jwt":
        from oauthcli.tokens import keys

        keys.load_private_key(profile)


def _with_lines(problems: list[Problem], item: Profile | Message) -> list[Problem]:
    """Give a problem found after rendering the line of the key it names."""
    lines: dict[str, int | None] = {text.key: text.line for text in _texts(item)}
    if isinstance(item, Profile):
        lines = {**item.key_lines, **lines}
    return [
        replace(p, line=lines.get(p.key or "")) if p.line is None and p.file == item.source else p
        for p in problems
    ]
