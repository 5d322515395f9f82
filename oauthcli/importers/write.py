"""A plan of registry files, dumped as YAML and written without replacing one unasked."""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from oauthcli.errors import RegistryError, UsageError

Kind = Literal["profiles", "messages"]

#: How many values an example may hold before it is not copied (an alias bomb, a dump).
MAX_NODES = 10_000


@dataclass
class File:
    kind: Kind
    name: str
    data: dict[str, Any]
    header: list[str]


@dataclass
class Plan:
    files: list[File] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def item_name(text: str, fallback: str = "imported") -> str:
    """``text`` as a registry name: lower case, words joined by ``-``."""
    name = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60].strip("-")
    return name or fallback


def env_prefix(name: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", name.upper()).strip("_") or "API"


def literal(value: Any, budget: list[int] | None = None) -> Any:
    """A copy of a value taken from the input, safe as a template: each ``${`` in its
    text becomes the literal ``$${``; at most :data:`MAX_NODES` values (``ValueError``)."""
    budget = budget if budget is not None else [MAX_NODES]
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError("too many values")
    if isinstance(value, dict):
        return {str(k): literal(v, budget) for k, v in value.items()}
    if isinstance(value, list):
        return [literal(v, budget) for v in value]
    if isinstance(value, str):
        return value.replace("${", "$${")
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value).replace("${", "$${")  # a date PyYAML read, say


def dump(file: File) -> str:
    import yaml

    class _Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: Any) -> bool:  # the registry reads plain YAML
            return True

    body = yaml.dump(
        file.data,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    # Each line of the comment stays a comment, whatever line break a value taken from the
    # input held (a `-X $'GET\nendpoint: …'` wrote a key of its own).
    lines = (part for line in file.header for part in (line.splitlines() or [""]))
    header = "".join(f"# {line}".rstrip() + "\n" for line in lines)
    return header + body


def write(root: Path, plan: Plan, *, force: bool) -> list[Path]:
    """Write every file of ``plan`` under ``root``, or none: an existing file is
    replaced only with ``force``, and each is written to a temporary file and renamed."""
    if not root.is_dir():
        raise RegistryError.at(None, None, None, f"registry folder {root} does not exist")
    targets = [(root / f.kind / f"{f.name}.yaml", f) for f in plan.files]
    if not force:
        existing = [str(p) for p, f in targets if p.exists() or p.with_suffix(".yml").exists()]
        if existing:
            raise UsageError(
                f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
                "nothing was written "
                "(--force replaces it)"
            )
    texts = [(path, dump(f)) for path, f in targets]
    written = []
    for path, text in texts:
        try:
            path.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(text)
                os.chmod(tmp, 0o666 & ~_umask())  # as open() would have made it
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as exc:
            raise RegistryError.at(
                None, None, None, f"cannot write {path}: {exc.strerror or exc}"
            ) from None
        written.append(path)
    return written


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
