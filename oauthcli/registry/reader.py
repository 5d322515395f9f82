"""Reading a YAML document against a schema, collecting every problem.

:class:`Reader` is the small vocabulary the models are written in: ``text``
(a ``${…}`` template), ``choice``, ``integer``, ``text_map``… Each call checks
one key, records a :class:`~oauthcli.errors.Problem` with the key's own line
when it is wrong, and returns ``None`` so parsing goes on to find the rest.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from oauthcli.errors import Problem, RegistryProblems
from oauthcli.registry.document import Document, Key
from oauthcli.registry.templates import Template, TemplateError

#: What a misspelt key looks like; anything else is not echoed in an error.
_KEY_LIKE = re.compile(r"[A-Za-z_$][A-Za-z0-9_.$-]{0,63}")

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class Text:
    """A string value from YAML: its template and where it was written."""

    template: Template
    key_path: Key = ()
    line: int | None = None
    secret: bool = False

    @classmethod
    def empty(cls) -> Text:
        return cls(Template(("",)))

    @property
    def key(self) -> str:
        return ".".join(str(k) for k in self.key_path)

    @property
    def variables(self) -> list[str]:
        return self.template.variables


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


class Reader:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def fail(self, key: Key, message: str) -> None:
        self.problems.append(self.doc.problem(key, message))

    def raise_problems(self) -> None:
        if self.problems:
            raise RegistryProblems(sorted(self.problems, key=lambda p: p.line or 0))

    def root(self, allowed: Iterable[str]) -> dict[str, Any]:
        data = self.doc.data
        if data is None:
            self.problems.append(Problem(self.doc.path, None, None, "file is empty; expected keys"))
            self.raise_problems()
        if not isinstance(data, dict):
            self.problems.append(
                Problem(self.doc.path, 1, None, f"expected a mapping of keys, got {kind_of(data)}")
            )
            self.raise_problems()
        return self.mapping((), data, allowed) or {}

    def expect_mapping(self, key: Key, value: Any) -> bool:
        if isinstance(value, dict):
            return True
        self.fail(key, f"expected a mapping, got {kind_of(value)}")
        return False

    def mapping(self, key: Key, value: Any, allowed: Iterable[str]) -> dict[str, Any] | None:
        if not self.expect_mapping(key, value):
            return None
        allowed = list(allowed)
        for name in value:
            if name not in allowed:
                if not (isinstance(name, str) and _KEY_LIKE.fullmatch(name)):
                    # Not shown: a file that is no registry file (a link to ~/.aws/credentials,
                    # /etc/shadow) would otherwise have its lines printed, into a CI log too.
                    problem = self.doc.problem((*key, name), "")
                    dotted = ".".join(str(k) for k in key)
                    self.problems.append(
                        Problem(
                            problem.file,
                            problem.line,
                            dotted or None,
                            "a key that is no key name (not shown); expected one of: "
                            + ", ".join(allowed),
                        )
                    )
                    continue
                close = difflib.get_close_matches(str(name), allowed, n=1)
                hint = (
                    f"did you mean '{close[0]}'?"
                    if close
                    else f"expected one of: {', '.join(allowed)}"
                )
                self.fail((*key, name), f"unknown key; {hint}")
        return value

    def _get(self, m: dict[str, Any], key: Key, name: str, required: bool) -> Any:
        value = m.get(name)
        if value is None:
            if required:
                self.fail(key, f"{name}: missing required key")
            elif name in m:
                self.fail((*key, name), "has no value")
        return value

    def plain(self, m: dict[str, Any], key: Key, name: str) -> str | None:
        value = self._get(m, key, name, False)
        if value is None:
            return None
        if not isinstance(value, str):
            self.fail((*key, name), f"expected a string, got {kind_of(value)}")
            return None
        return value

    def text(
        self,
        m: dict[str, Any],
        key: Key,
        name: str,
        *,
        required: bool = False,
        secret: bool = False,
        url: bool = False,
    ) -> Text | None:
        value = self._get(m, key, name, required)
        if value is None:
            return None
        return self.template((*key, name), value, secret=secret, url=url)

    def template(
        self, key: Key, value: Any, *, secret: bool = False, url: bool = False
    ) -> Text | None:
        if not isinstance(value, str) and key in self.doc.scalars:
            value = self.doc.scalars[key]  # as written: 012345 stays 012345
        elif isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (int, float)):
            value = str(value)
        elif not isinstance(value, str):
            self.fail(key, f"expected a string, got {kind_of(value)}")
            return None
        try:
            template = Template.parse(value)
        except TemplateError as exc:
            self.fail(key, str(exc))
            return None
        if url and template.is_literal:
            problem = url_problem(value)
            if problem:
                self.fail(key, problem)
        return Text(template, key, self.doc.line(key), secret)

    def header_name(self, m: dict[str, Any], key: Key, name: str) -> str | None:
        """A header name: an RFC 9110 token (no space, colon or control character)."""
        value = self.plain(m, key, name)
        if value is not None and not _HEADER_NAME.fullmatch(value):
            self.fail((*key, name), f"{value[:40]!r} is not a valid HTTP header name")
            return None
        return value

    def choice(
        self,
        m: dict[str, Any],
        key: Key,
        name: str,
        choices: Iterable[str],
        *,
        required: bool = False,
    ) -> str | None:
        value = self._get(m, key, name, required)
        if value is None:
            return None
        choices = tuple(choices)
        if value not in choices:
            self.fail((*key, name), f"{value!r} is not one of {', '.join(choices)}")
            return None
        return str(value)

    def level(self, m: dict[str, Any], key: Key, name: str, choices: Iterable[str]) -> str | None:
        """A log level, one of ``choices``: an unquoted ``off``, which YAML 1.1 reads as
        false, is ``off``."""
        value = self._get(m, key, name, False)
        if value is False:
            return "off"
        if value is None:
            return None
        choices = tuple(choices)
        if not isinstance(value, str) or value not in choices:
            shown = str(value).lower() if isinstance(value, bool) else repr(value)
            self.fail((*key, name), f"{shown[:40]} is not one of {', '.join(choices)}")
            return None
        return value

    def integer(
        self,
        m: dict[str, Any],
        key: Key,
        name: str,
        *,
        minimum: int = 0,
        maximum: int,
        default: int | None = None,
    ) -> int | None:
        value = self._get(m, key, name, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail((*key, name), f"expected a whole number, got {kind_of(value)}")
            return default
        if not minimum <= value <= maximum:
            self.fail((*key, name), f"must be from {minimum} to {maximum}")
            return default
        return value

    def number(
        self,
        m: dict[str, Any],
        key: Key,
        name: str,
        *,
        minimum: float = 0,
        maximum: float,
        default: float | None = None,
    ) -> float | None:
        value = self._get(m, key, name, False)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail((*key, name), f"expected a number, got {kind_of(value)}")
            return default
        if not minimum <= value <= maximum:  # also refuses .nan, whose comparisons are all false
            shown = "not a number" if value != value else f"{value:g}"
            self.fail((*key, name), f"must be from {minimum:g} to {maximum:g}, got {shown}")
            return default
        return float(value)

    def boolean(self, m: dict[str, Any], key: Key, name: str) -> bool | None:
        value = self._get(m, key, name, False)
        if value is None:
            return None
        if not isinstance(value, bool):
            self.fail((*key, name), f"expected true or false, got {kind_of(value)}")
            return None
        return value

    def words(
        self, m: dict[str, Any], key: Key, name: str, *, split: bool = True
    ) -> tuple[Text, ...]:
        value = self._get(m, key, name, False)
        if value is None:
            return ()
        key = (*key, name)
        if isinstance(value, str):
            items: list[Any] = value.split() if split else [value]
        elif isinstance(value, list):
            items = value
        else:
            self.fail(key, f"expected a string or a list of strings, got {kind_of(value)}")
            return ()
        texts = []
        for index, item in enumerate(items):
            if not isinstance(item, str):
                self.fail((*key, index), f"expected a string, got {kind_of(item)}")
                continue
            text = self.template((*key, index) if isinstance(value, list) else key, item)
            if text is not None:
                texts.append(text)
        return tuple(texts)

    def text_map(
        self, m: dict[str, Any], key: Key, name: str, *, header_names: bool = False
    ) -> dict[str, Text]:
        value = self._get(m, key, name, False)
        if value is None:
            return {}
        key = (*key, name)
        if not self.expect_mapping(key, value):
            return {}
        result = {}
        for item_name, item in value.items():
            if header_names and not _HEADER_NAME.fullmatch(item_name):
                self.fail((*key, item_name), "is not a valid HTTP header name")
                continue
            if item is None or isinstance(item, (dict, list)):
                self.fail((*key, item_name), f"expected a string, got {kind_of(item)}")
                continue
            text = self.template((*key, item_name), item)
            if text is not None:
                result[item_name] = text
        return result

    def json_body(self, m: dict[str, Any], key: Key, name: str) -> Any:
        if name not in m:
            return None
        return self._json((*key, name), m[name])

    def _json(self, key: Key, value: Any) -> Any:
        if isinstance(value, str):
            return self.template(key, value)
        if isinstance(value, dict):
            return {str(k): self._json((*key, str(k)), v) for k, v in value.items()}
        if isinstance(value, list):
            return [self._json((*key, i), v) for i, v in enumerate(value)]
        if value is None or isinstance(value, (bool, int, float)):
            return value
        self.fail(key, f"cannot be sent as JSON ({kind_of(value)})")
        return None

    def statuses(self, m: dict[str, Any], key: Key, name: str) -> tuple[int, ...] | None:
        value = self._get(m, key, name, False)
        if value is None:
            return None
        key = (*key, name)
        if not isinstance(value, list):
            self.fail(key, f"expected a list of HTTP status codes, got {kind_of(value)}")
            return None
        codes = []
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, int) or not 100 <= item <= 599:
                self.fail((*key, index), f"{item!r} is not an HTTP status code")
            else:
                codes.append(item)
        return tuple(codes)


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be an http(s) URL, or ``None``. The reason never shows a
    password written into the URL: it is masked, and remembered as a secret."""
    import re
    from urllib.parse import unquote

    from oauthcli.secret import MASK, mask_url, remember, remember_url, url_password

    password = url_password(url)
    remember_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a malformed port
        problem = None
        if parts.scheme not in ("http", "https"):
            problem = "is not an http:// or https:// URL"
        elif not parts.hostname:
            problem = "has no host"
        elif any(c.isspace() for c in url):
            problem = "contains white space"
    except ValueError as exc:
        problem = f"is not a valid URL ({exc})"
    if problem is None:
        return None
    # The URL is unusable, so it may be misread: ``https://u:a/b@host`` is host ``u``
    # with the port ``a``. Mask anything that can be a password, parsed or not.
    loose = url_password(url, loose=True)
    for hidden in {p for p in (password, loose) if p}:
        remember(hidden)
        remember(unquote(hidden))
        problem = problem.replace(hidden, MASK)

        # A parser's message quotes a piece of it ('Port could not be cast … as 'a'').
        def masked(match: re.Match[str], hidden: str = hidden) -> str:
            quoted = match.group(1) or match.group(2)
            return f"'{MASK}'" if quoted in hidden else match.group(0)

        problem = re.sub(r"'([^']+)'|\"([^\"]+)\"", masked, problem)
    shown = mask_url(url, loose=bool(loose))
    return f"{shown!r} {problem}"
