"""``${…}`` substitution (SPEC §1.3).

A template is parsed once into literal text and references:

* ``${name}``: a variable: in a message a call variable (given at send time) or the
  selected environment's value; in a profile the environment's only (SPEC §6);
* ``${env:NAME}`` / ``${env:NAME:-default}``: the environment;
* ``${file:path}``: a file's text (``~`` expanded, relative to the YAML file,
  trailing newlines dropped);
* ``${token:PROFILE}``: that profile's access token, obtained through the token cache
  when the token request that needs it is made (``subject_token``, ``actor_token``);
  :mod:`oauthcli.request.resolve` resolves the profile, the token code fetches it;
* ``$${``: a literal ``${``.

Rendering inserts each value once, so a value that itself holds ``${`` is never
expanded a second time. Call variable values pass through ``encode`` (per
place: percent-encoding for URLs); env and file values, and the variables named in
``raw`` (an environment's, SPEC §6), are configuration and go in as written.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Container, Mapping
from dataclasses import dataclass
from pathlib import Path

from oauthcli.errors import MissingVariable, TemplateError


@dataclass(frozen=True)
class Var:
    name: str


@dataclass(frozen=True)
class Env:
    name: str
    default: str | None


@dataclass(frozen=True)
class File:
    path: str


@dataclass(frozen=True)
class TokenRef:
    profile: str


Part = str | Var | Env | File | TokenRef

_NAME = r"[A-Za-z_][A-Za-z0-9_.-]*"
_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REF = re.compile(r"\$\$\{|\$\{([^}]*)(\})?")
_VAR_RE = re.compile(_NAME)
_ENV_RE = re.compile(rf"env:({_ENV_NAME})(?::-(.*))?", re.S)


@dataclass(frozen=True)
class Template:
    parts: tuple[Part, ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        if "${" not in text:
            return cls((text,))
        parts: list[Part] = []
        position = 0
        for match in _REF.finditer(text):
            if match.start() > position:
                parts.append(text[position : match.start()])
            position = match.end()
            if match.group(0) == "$${":
                parts.append("${")
                continue
            body = match.group(1)
            if match.group(2) is None:
                raise TemplateError("unterminated '${' (write '$${' for a literal '${')")
            parts.append(_reference(body))
        if position < len(text):
            parts.append(text[position:])
        return cls(tuple(parts))

    @property
    def variables(self) -> list[str]:
        return [p.name for p in self.parts if isinstance(p, Var)]

    @property
    def is_literal(self) -> bool:
        return all(isinstance(p, str) for p in self.parts)

    def render(
        self,
        variables: Mapping[str, str] | None = None,
        *,
        base_dir: Path | None = None,
        encode: Callable[[str], str] | None = None,
        raw: Container[str] = (),
    ) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, Var):
                try:
                    value = variables[part.name]  # type: ignore[index]
                except (KeyError, TypeError):
                    raise MissingVariable(part.name) from None
                out.append(encode(value) if encode and part.name not in raw else value)
            elif isinstance(part, Env):
                out.append(read_env(part))
            elif isinstance(part, TokenRef):
                raise TemplateError(
                    f"${{token:{part.profile}}} is taken only by subject_token and actor_token "
                    "(another profile's token, fetched when the token exchange runs)"
                )
            else:
                out.append(read_file(part, base_dir))
        return "".join(out)


def _reference(body: str) -> Part:
    if body.startswith("env:"):
        match = _ENV_RE.fullmatch(body)
        if not match:
            raise TemplateError(f"bad environment reference '${{{body}}}'")
        return Env(match.group(1), match.group(2))
    if body.startswith("file:"):
        if not body[5:].strip():
            raise TemplateError("'${file:}' needs a path")
        return File(body[5:])
    if body.startswith("token:"):
        name = body[6:].strip()
        if not name:
            raise TemplateError("'${token:}' needs a profile name")
        return TokenRef(name)
    if _VAR_RE.fullmatch(body):
        return Var(body)
    if ":" in body:
        raise TemplateError(
            f"unknown reference '${{{body}}}' (use ${{env:…}}, ${{file:…}} or ${{token:…}})"
        )
    raise TemplateError(f"bad variable name '${{{body}}}'")


def read_env(ref: Env) -> str:
    value = os.environ.get(ref.name)
    if value is None or (value == "" and ref.default is not None):
        if ref.default is not None:
            return ref.default
        raise TemplateError(f"environment variable {ref.name} is not set")
    return value


#: Bytes beyond which a ``${file:…}`` is not read (keys, secrets and tokens are a few KiB).
MAX_FILE_BYTES = 16 * 1024 * 1024


def read_file(ref: File, base_dir: Path | None) -> str:
    """The file's text; only a regular file, of at most :data:`MAX_FILE_BYTES`: a FIFO no one
    writes to would block the call for good, and ``/dev/zero`` fill the memory."""
    path = Path(ref.path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise TemplateError(f"file {ref.path} is not a regular file (looked at {path})")
            chunks: list[bytes] = []
            size = 0
            while size <= MAX_FILE_BYTES:
                chunk = os.read(fd, min(1 << 20, MAX_FILE_BYTES + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
        if size > MAX_FILE_BYTES:
            raise TemplateError(f"file {ref.path} is larger than {MAX_FILE_BYTES >> 20} MiB")
        text = b"".join(chunks).decode("utf-8")
    except FileNotFoundError:
        raise TemplateError(f"file {ref.path} not found (looked at {path})") from None
    except UnicodeDecodeError:
        raise TemplateError(f"file {ref.path} is not UTF-8 text") from None
    except OSError as exc:
        raise TemplateError(f"cannot read file {ref.path}: {exc.strerror}") from None
    # As a text read has it (universal newlines), trailing line breaks dropped.
    return text.replace("\r\n", "\n").replace("\r", "\n").rstrip("\r\n")
