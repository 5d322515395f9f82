"""Parsing YAML text with PyYAML (imported only when a file is not in the parse cache).

PyYAML's composer gives nodes with marks; plain Python values are built from
them here so that each mapping key's line is remembered under its path
(``("methods", "list", "query")``). Only the safe constructor is ever used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NoReturn

import yaml

from oauthcli.errors import Problem, YamlProblem
from oauthcli.registry.document import Document, Key

#: Values built for one file, aliases counted each time they are used. A registry
#: file holds hundreds; a "billion laughs" alias bomb of nine lines asks for 9**9.
MAX_NODES = 100_000
#: Mappings and lists inside one another; a registry file needs a handful.
MAX_DEPTH = 64
#: Characters of an unquoted whole number (Python refuses to convert more than 4300).
MAX_DIGITS = 100

try:  # the C parser is several times faster; the pure one is a fallback
    _Loader: Any = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


def parse(text: str, path: Path) -> Document:
    """The document ``text`` holds; raises :class:`YamlProblem` naming ``path`` and the line."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        doc = Document(path, None)
        if node is not None:
            doc.data = _Builder(loader, doc).build(node, ())
        return doc
    except _Refused as exc:
        raise YamlProblem(exc.problem) from None
    except yaml.MarkedYAMLError as exc:
        raise YamlProblem(_syntax_problem(path, text, exc)) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        code = ord(exc.character) if isinstance(exc.character, str) else exc.character
        message = f"invalid YAML: character #x{code:04x} is not allowed: {exc.reason}"
        raise YamlProblem(Problem(path, line, None, message)) from None
    except yaml.YAMLError as exc:
        raise YamlProblem(
            Problem(path, None, None, f"invalid YAML: {_one_line(str(exc))}")
        ) from None
    finally:
        loader.dispose()


class _Builder:
    """Plain values from one document's nodes, within :data:`MAX_NODES` and :data:`MAX_DEPTH`."""

    def __init__(self, loader: Any, doc: Document) -> None:
        self.loader = loader
        self.doc = doc
        self.built = 0
        self.open: set[int] = set()  # the mappings and lists being built around this node

    def fail(self, node: yaml.Node, key: Key, message: str) -> NoReturn:
        where = ".".join(str(k) for k in key) or None
        raise _Refused(Problem(self.doc.path, node.start_mark.line + 1, where, message))

    def build(self, node: yaml.Node, key: Key) -> Any:
        self.built += 1
        if self.built > MAX_NODES:  # named by its top-level key: the alias's own line is lost
            raise _Refused(
                self.doc.problem(
                    key[:1],
                    f"invalid YAML: more than {MAX_NODES} values (aliases counted each time they "
                    "are used): is it an alias bomb?",
                )
            )
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            return self.scalar(node, key)
        if id(node) in self.open:  # an alias inside the node it names
            self.fail(node, key, "invalid YAML: an alias refers to itself")
        if len(self.open) >= MAX_DEPTH:
            self.fail(node, key, f"invalid YAML: nested deeper than {MAX_DEPTH} levels")
        self.open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, key)
            return self.sequence(node, key)
        finally:
            self.open.discard(id(node))

    def mapping(self, node: yaml.MappingNode, key: Key) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self.fail(
                    key_node,
                    key,
                    "invalid YAML: a key must be a plain value, not a list or mapping",
                )
            name = self.scalar(key_node, key)
            if not isinstance(name, str):
                name = str(name)
            if name in result:
                where = ".".join(str(k) for k in (*key, name))
                raise _Refused(Problem(self.doc.path, line, where, "key appears twice"))
            child = (*key, name)
            self.doc.lines[child] = line
            result[name] = self.build(value_node, child)
        return result

    def sequence(self, node: yaml.SequenceNode, key: Key) -> list[Any]:
        items = []
        for index, item in enumerate(node.value):
            child = (*key, index)
            self.doc.lines[child] = item.start_mark.line + 1
            items.append(self.build(item, child))
        return items

    def scalar(self, node: yaml.Node, key: Key) -> Any:
        if node.tag == "tag:yaml.org,2002:int" and len(node.value) > MAX_DIGITS:
            self.fail(
                node,
                key,
                f"a number of {len(node.value)} characters is too long (quote it if it is text)",
            )
        try:
            value = self.loader.construct_object(node, deep=True)
        except (ValueError, OverflowError) as exc:  # 2026-02-30 is a date YAML cannot build
            self.fail(node, key, f"invalid YAML value: {_one_line(str(exc))}")
        if not isinstance(value, str) and value is not None and not getattr(node, "style", None):
            self.doc.scalars[key] = node.value
        return value


class _Refused(yaml.YAMLError):
    def __init__(self, problem: Problem) -> None:
        self.problem = problem


def _syntax_problem(path: Path, text: str, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else None
    what = exc.problem or exc.context or "invalid YAML"
    message = f"invalid YAML: {what}"
    source = text.splitlines()[line - 1] if line and line <= len(text.splitlines()) else ""
    if "\t" in source[: len(source) - len(source.lstrip())] or "'\\t'" in what:
        message += " (indent with spaces, not tabs)"
    elif "${" in source and ("{" in source.split("${")[0] or "[" in source.split("${")[0]):
        message += ' (quote values holding ${…} inside {…} or […]: key: "${name}")'
    return Problem(path, line, None, message)


def _one_line(text: str) -> str:
    return " ".join(text.split())
