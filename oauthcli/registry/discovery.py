"""Finding a registry folder and the profiles, messages and environments in it (SPEC §1, §6).

Names are indexed from a quick scan of each file's top-level ``name:`` line,
so looking up one message parses one file, not the whole registry; a file
whose name line is not a simple scalar is parsed in full to learn its name.

An environment (``environments/NAME.yaml``, SPEC §6) is selected when the registry is
opened (``--env/-e``, else ``$OAUTHCLI_ENV``); with none, ``environments/`` is not read.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from oauthcli.errors import Problem, RegistryError, RegistryProblems
from oauthcli.registry import yamlsrc
from oauthcli.registry.models import (
    Environment,
    Message,
    Profile,
    item_name,
    parse_environment,
    parse_message,
    parse_profile,
)
from oauthcli.registry.templates import TemplateError

Kind = Literal["profiles", "messages", "environments"]
#: The kinds of item a registry is made of (and ``validate`` resolves); environments are
#: the values they are resolved with.
KINDS: tuple[Kind, ...] = ("profiles", "messages")
ENVIRONMENTS: Kind = "environments"
_NAME_LINE = re.compile(r"^name:[ \t]*(.*?)[ \t]*$", re.M)
_SIMPLE = re.compile(r"[A-Za-z0-9_.@/+-]+")
_QUOTED = re.compile(r"""(?:'([^'\n]*)'|"([^"\\\n]*)")(?:[ \t]+#.*)?""")


def discover(
    option: str | None,
    environ: Mapping[str, str] = os.environ,
    env: str | None = None,
    env_from: str = "--env",
) -> Registry:
    """The registry named by ``--registry``, else ``$OAUTHCLI_REGISTRY``, else the cwd, with
    the environment named by ``env`` (``--env``), else ``$OAUTHCLI_ENV``, selected."""
    if option:
        root, how = Path(option), "--registry"
    elif environ.get("OAUTHCLI_REGISTRY"):
        root, how = Path(environ["OAUTHCLI_REGISTRY"]), "OAUTHCLI_REGISTRY"
    else:
        root, how = Path.cwd(), "the current directory"
    root = root.expanduser()
    if not root.is_dir():
        raise RegistryError.at(
            None, None, None, f"registry folder {root} (from {how}) does not exist"
        )
    if not any((root / kind).is_dir() for kind in KINDS):
        raise RegistryError.at(
            None,
            None,
            None,
            f"no registry in {root} (from {how}): expected a profiles/ or messages/ folder; "
            "use --registry DIR or OAUTHCLI_REGISTRY",
        )
    registry = Registry(root)
    if env is not None:
        registry.select(env, env_from)
    elif environ.get("OAUTHCLI_ENV"):
        registry.select(environ["OAUTHCLI_ENV"], "OAUTHCLI_ENV")
    return registry


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._index: dict[Kind, dict[str, list[Path]]] = {}
        self._items: dict[Path, Profile | Message | Environment] = {}
        #: The selected environment and its values, rendered (``${env:…}``, ``${file:…}``).
        self.environment: Environment | None = None
        self.environment_values: dict[str, str] = {}
        # Profiles as oauthcli.request.resolve renders them, once per run: a batch resolves
        # one message per row, and would otherwise read env and key files each time.
        self.resolved_profiles: dict[str, Any] = {}

    def files(self, kind: Kind) -> list[Path]:
        folder = self.root / kind
        try:
            with os.scandir(folder) as entries:  # no stat per file: d_type says what it is
                names = [
                    e.name
                    for e in entries
                    if os.path.splitext(e.name)[1] in (".yaml", ".yml") and e.is_file()
                ]
        except (FileNotFoundError, NotADirectoryError):
            return []
        return [folder / name for name in sorted(names)]

    def index(self, kind: Kind) -> dict[str, list[Path]]:
        if kind not in self._index:
            names: dict[str, list[Path]] = {}
            for path in self.files(kind):
                names.setdefault(self._scan_name(path), []).append(path)
            self._index[kind] = names
        return self._index[kind]

    def _scan_name(self, path: Path) -> str:
        try:
            text = _read_bytes(path).decode("utf-8-sig")
        except (OSError, UnicodeDecodeError):
            return path.stem
        match = _NAME_LINE.search(text)
        if match is None and not text.lstrip().startswith("{"):
            return path.stem
        if match is not None:
            value = match.group(1)
            if _SIMPLE.fullmatch(value):
                return value
            quoted = _QUOTED.fullmatch(value)
            if quoted and (quoted.group(1) or quoted.group(2)):
                return quoted.group(1) or quoted.group(2)
        try:
            return item_name(yamlsrc.loads(text, path))
        except yamlsrc.YamlProblem:
            return path.stem

    def names(self, kind: Kind) -> list[str]:
        return sorted(self.index(kind))

    def profile(self, name: str) -> Profile:
        item = self._lookup("profiles", name)
        assert isinstance(item, Profile)
        return item

    def message(self, name: str) -> Message:
        item = self._lookup("messages", name)
        assert isinstance(item, Message)
        return item

    def select(self, name: str, how: str = "env=") -> Environment:
        """Make ``name`` the environment every profile and message is resolved with."""
        item = self._lookup(ENVIRONMENTS, name, how)
        assert isinstance(item, Environment)
        values = {}
        problems = []
        for key, text in item.variables.items():
            try:
                values[key] = text.template.render(None, base_dir=item.source.parent)
            except TemplateError as exc:
                problems.append(Problem(item.source, text.line, text.key or None, str(exc)))
        if problems:
            raise RegistryProblems(problems)
        self.environment, self.environment_values = item, values
        self.resolved_profiles.clear()
        return item

    def environment_problems(self) -> tuple[list[Problem], list[str], int]:
        """Every environment file's problems (``validate``), the names of the usable
        environments, and how many files were read."""
        problems: list[Problem] = []
        usable: list[str] = []
        count = 0
        for name, paths in self.index(ENVIRONMENTS).items():
            count += len(paths)
            if len(paths) > 1:
                problems += duplicate_problems("environment", name, paths)
                continue
            try:
                Registry(self.root).select(name)
            except RegistryProblems as exc:
                problems += exc.problems
                continue
            usable.append(name)
        return problems, sorted(usable), count

    def environment_file(self, name: str) -> Environment:
        item = self._lookup(ENVIRONMENTS, name)
        assert isinstance(item, Environment)
        return item

    def has(self, kind: Kind, name: str) -> bool:
        return name in self.index(kind)

    def _lookup(
        self, kind: Kind, name: str, how: str | None = None
    ) -> Profile | Message | Environment:
        paths = self.index(kind).get(name)
        singular = kind[:-1]
        if not paths:
            known = self.names(kind)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            listing = f" (known: {', '.join(known)})" if known and len(known) <= 12 else ""
            if kind == ENVIRONMENTS:
                listing = f" (known: {', '.join(known)})" if known else " (there are none)"
            origin = f" (from {how})" if how else ""
            raise RegistryError.at(
                None,
                None,
                None,
                f"unknown {singular} '{name}'{origin} in {self.root / kind}{hint}{listing}",
            )
        if len(paths) > 1:
            raise RegistryProblems(duplicate_problems(singular, name, paths))
        return self._parse(kind, paths[0])

    def load(self, kind: Kind, path: Path) -> Profile | Message:
        """Parse one profile or message file (once); raises RegistryProblems with all of its
        problems."""
        item = self._parse(kind, path)
        assert not isinstance(item, Environment)
        return item

    def _parse(self, kind: Kind, path: Path) -> Profile | Message | Environment:
        if path not in self._items:
            try:
                doc = yamlsrc.load(path)
            except yamlsrc.YamlProblem as exc:
                raise RegistryProblems([exc.problem]) from None
            item: Profile | Message | Environment
            if kind == "profiles":
                item = parse_profile(doc)
            elif kind == "messages":
                item = parse_message(doc)
            else:
                item = parse_environment(doc)
            self._items[path] = item
        return self._items[path]


def _read_bytes(path: Path) -> bytes:
    """The file's bytes; plain os calls, as every file of the registry is read to index it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def duplicate_problems(singular: str, name: str, paths: list[Path]) -> list[Problem]:
    first, *others = paths
    return [
        Problem(
            other, _name_line(other), "name", f"{singular} '{name}' is also defined in {first.name}"
        )
        for other in others
    ]


def _name_line(path: Path) -> int | None:
    """The line of a file's top-level ``name:`` key, if it has one."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    match = _NAME_LINE.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None
