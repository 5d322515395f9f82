"""Parsing YAML text with PyYAML (imported only when a file is not in the parse cache).

PyYAML's composer gives nodes with marks; plain Python values are built from
them here so that each mapping key's line is remembered under its path
(``("methods", "list", "query")``). Only the safe constructor is ever used.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from oauthcli.errors import Problem
from oauthcli.yamlsrc import Document, Key, YamlProblem

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
            doc.data = _build(loader, node, (), doc)
        return doc
    except _Duplicate as exc:
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


def _build(
    loader: Any, node: yaml.Node, key: Key, doc: Document, open_nodes: frozenset[int] = frozenset()
) -> Any:
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        if id(node) in open_nodes:  # an alias inside the node it names
            where = ".".join(str(k) for k in key) or None
            line = node.start_mark.line + 1
            raise _Duplicate(
                Problem(doc.path, line, where, "invalid YAML: an alias refers to itself")
            )
        open_nodes = open_nodes | {id(node)}
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            name = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if not isinstance(name, str):
                name = str(name)
            if name in result:
                where = ".".join(str(k) for k in (*key, name))
                raise _Duplicate(Problem(doc.path, line, where, "key appears twice"))
            child = (*key, name)
            doc.lines[child] = line
            result[name] = _build(loader, value_node, child, doc, open_nodes)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*key, index)
            doc.lines[child] = item.start_mark.line + 1
            items.append(_build(loader, item, child, doc, open_nodes))
        return items
    value = loader.construct_object(node, deep=True)
    if not isinstance(value, str) and value is not None and not getattr(node, "style", None):
        doc.scalars[key] = node.value
    return value


class _Duplicate(yaml.YAMLError):
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
