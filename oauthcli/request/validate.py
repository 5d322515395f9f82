"""``oauthcli validate``: every file, every problem, nothing sent, in one run.

Beyond the schema this renders each ``${env:…}`` and ``${file:…}`` reference,
checks each URL that does not wait for a call variable, and that every
``auth.profile`` names a profile, so a registry that validates can be sent.
A file with schema errors still has its references and profile names checked
(from the YAML as written), so fixing one round of problems does not reveal
another; each problem is reported once, sorted by file and line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from oauthcli.errors import Problem, RegistryError, RegistryProblems
from oauthcli.registry import yamlsrc
from oauthcli.registry.discovery import KINDS, Kind, Registry, duplicate_problems
from oauthcli.registry.document import Key
from oauthcli.registry.models import Message, Profile
from oauthcli.registry.reader import Text
from oauthcli.registry.templates import File, Template, TemplateError, TokenRef, Var
from oauthcli.request.resolve import pick_method, resolve_profile, resolve_request
from oauthcli.request.resolved import ResolvedProfile

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
                    problems += _check_written(registry, kind, path)
                    continue
                problems += _check_references(item)
                problems += _check_resolution(registry, item)
    unique = dict.fromkeys(problems)  # a profile's problem also surfaces through its messages
    return sorted(unique, key=lambda p: (str(p.file or ""), p.line or 0)), count


def _check_written(registry: Registry, kind: Kind, path: Path) -> list[Problem]:
    """What :func:`_check_references` and the profile lookup find, read from the YAML as
    written: for a file that the schema refused, so there is no item to resolve."""
    try:
        doc = yamlsrc.load(path)
    except yamlsrc.YamlProblem:
        return []  # not YAML at all: the one problem is already reported
    problems = []
    for key, value in _strings(doc.data, ()):
        try:
            template = Template.parse(value)
        except TemplateError:
            continue  # the schema's round reports a malformed ${…}
        refs = _now(template, str(key[0]) if key else "")
        try:
            refs.render(_NO_VARIABLES, base_dir=path.parent)
        except TemplateError as exc:
            problems.append(doc.problem(key, str(exc)))
    if kind == "messages" and isinstance(doc.data, dict):
        methods = doc.data.get("methods")
        places = [((), doc.data)] + [
            (("methods", name), body)
            for name, body in (methods.items() if isinstance(methods, dict) else ())
        ]
        for where, m in places:
            auth = m.get("auth") if isinstance(m, dict) else None
            name = auth.get("profile") if isinstance(auth, dict) else None
            if auth and auth.get("type") == "oauth2" and isinstance(name, str):
                if not registry.has("profiles", name):
                    line = doc.line((*where, "auth", "profile"))
                    problems.append(
                        Problem(path, line, "auth.profile", f"no profile named '{name}'")
                    )
    return problems


def _strings(value: Any, key: Key) -> Iterator[tuple[Key, str]]:
    if isinstance(value, str):
        yield key, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, (*key, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, (*key, i))


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
        only_refs = _now(text.template, text.key)
        try:
            only_refs.render(_NO_VARIABLES, base_dir=base)
        except TemplateError as exc:
            problems.append(Problem(item.source, text.line, text.key or None, str(exc)))
    return problems


#: Keys whose ${file:…} is read at each token request, not before: a projected token (a
#: Kubernetes service account token, AZURE_FEDERATED_TOKEN_FILE) appears when the job runs.
_READ_PER_REQUEST = frozenset({"client_assertion"})


def _now(template: Template, key: str) -> Template:
    """The references validate reads now: ${env:…} and ${file:…}, not call variables nor
    ${token:…} (whose profile resolving checks), nor the files read per token request."""
    later: tuple[type, ...] = (Var, TokenRef, File) if key in _READ_PER_REQUEST else (Var, TokenRef)
    return Template(tuple(p for p in template.parts if not isinstance(p, later)))


def _check_resolution(registry: Registry, item: Profile | Message) -> list[Problem]:
    if isinstance(item, Profile):
        found: list[Problem] = []
        resolved = resolve_profile(item, problems=found, registry=registry)
        if found:  # every key's problem at once; the key is only worth loading without them
            return _with_lines(found, item)
        return _problems_of(lambda: _check_keys(resolved), item)
    problems = []
    for name in item.methods:  # each method on its own: one's problem hides no other's
        problems += _problems_of(partial(_resolve_method, registry, item, name), item)
    return problems


def _resolve_method(registry: Registry, message: Message, name: str) -> None:
    resolve_request(registry, message, pick_method(message, name), lenient=True)


def _problems_of(check: Callable[[], object], item: Profile | Message) -> list[Problem]:
    try:
        check()
    except RegistryProblems as exc:
        return _with_lines(exc.problems, item)
    except RegistryError as exc:
        return [Problem(item.source, None, None, str(exc))]
    return []


def _check_keys(profile: ResolvedProfile) -> None:
    """The signing key parses and fits signing_alg, as the grant will need it."""
    from oauthcli.tokens.clientauth import CLIENT_AUTHS

    method = CLIENT_AUTHS.get(profile.client_auth)
    if method is not None:
        method.check(profile)


def _with_lines(problems: list[Problem], item: Profile | Message) -> list[Problem]:
    """Give a problem found after rendering the line of the key it names."""
    lines: dict[str, int | None] = {text.key: text.line for text in _texts(item)}
    if isinstance(item, Profile):
        lines = {**item.key_lines, **lines}
    return [
        replace(p, line=lines.get(p.key or "")) if p.line is None and p.file == item.source else p
        for p in problems
    ]
