"""YAML files read safely, with the line of every key kept for error messages.

A registry file's parse is kept in :mod:`oauthcli.registry.parsecache` and used again
while the file's bytes are unchanged, so a warm ``send`` does not import PyYAML
(~10 ms); :mod:`oauthcli.registry.yamlparse` parses the others.
"""

from __future__ import annotations

from pathlib import Path

from oauthcli.errors import Problem, YamlProblem
from oauthcli.registry.document import Document


def load(path: Path) -> Document:
    """Read one YAML file; raise :class:`YamlProblem` when it cannot be used at all."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise YamlProblem(Problem(path, None, None, f"cannot read file: {exc.strerror}")) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise YamlProblem(
            Problem(path, line, None, "not UTF-8 text (is it a binary file?)")
        ) from None
    from oauthcli.registry import parsecache

    source = parsecache.digest(raw)
    cached = parsecache.get(path, source)
    if cached is not None:
        data, lines, scalars = cached
        return Document(path, data, lines, scalars)
    doc = loads(text, path)
    parsecache.put(path, source, (doc.data, doc.lines, doc.scalars))
    return doc


def loads(text: str, path: Path) -> Document:
    """Parse ``text`` (read from ``path``); raises :class:`YamlProblem`."""
    from oauthcli.registry.yamlparse import parse

    return parse(text, path)
