"""``send --query EXPR``: a JMESPath expression applied to a JSON answer (SPEC §6).

The language is `JMESPath <https://jmespath.org>`_, through the ``jmespath`` package
(as ``az`` and ``aws`` use it), imported only when ``--query`` is given. The expression
is compiled before any request is sent, so a typo costs no call; a string result is
shown raw, anything else as JSON.

Only an answer the API gave as success (below 400) is queried: an error answer is shown
as received, since it is what explains the failure. A success whose body is not JSON,
or is too large to have been kept whole, cannot be queried: that is a usage error
(exit 2), said in one line, since what was asked for cannot be given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from oauthcli.errors import UsageError

if TYPE_CHECKING:
    from oauthcli.transport.sending import Result

__all__ = ["Query", "compile_query"]


@dataclass(frozen=True, repr=False, eq=False)
class Query:
    """A compiled expression and the text it was written as."""

    text: str
    parsed: Any  # jmespath.parser.ParsedResult

    def applies_to(self, result: Result) -> bool:
        return result.status < 400

    def value(self, result: Result) -> Any:
        """The expression's result on the answer's JSON body; UsageError when there is none."""
        if result.body_cut:
            raise UsageError(
                f"--query: the response body is larger than the {len(result.body)} bytes kept, "
                "so it cannot be queried (leave out --query and redirect it to a file)"
            )
        document = _document(result)
        import jmespath.exceptions

        try:
            return self.parsed.search(document)
        except jmespath.exceptions.JMESPathError as exc:  # a function given the wrong types
            raise UsageError(f"--query {self.text!r}: {_one_line(exc)}") from None

    def rendered(self, result: Result, *, pretty: bool) -> str:
        """The result as printed: a string raw, anything else as JSON."""
        return render(self.value(result), pretty=pretty)


def render(value: Any, *, pretty: bool) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2 if pretty else None)


def compile_query(text: str | None) -> Query | None:
    """``--query``'s expression, compiled; a usage error naming it and jmespath's reason."""
    if text is None:
        return None
    import jmespath
    import jmespath.exceptions

    if not text.strip():
        raise UsageError("--query: the expression is empty")
    try:
        return Query(text, jmespath.compile(text))
    except jmespath.exceptions.ParseError as exc:
        raise UsageError(f"--query {text!r}: not a JMESPath expression: {_reason(exc)}") from None
    except jmespath.exceptions.JMESPathError as exc:  # LexerError, an unknown function...
        raise UsageError(f"--query {text!r}: not a JMESPath expression: {_one_line(exc)}") from None


def _document(result: Result) -> Any:
    if not result.body.strip():
        return None  # 204 No Content: every expression gives null
    try:
        return json.loads(result.body)
    except (ValueError, RecursionError):
        ctype = result.headers.get("Content-Type") or "no Content-Type"
        raise UsageError(
            f"--query: the response body is not JSON ({ctype}, {len(result.body)} bytes), "
            "so there is nothing to query"
        ) from None


def _reason(exc: Any) -> str:
    """jmespath's reason without its drawing of the expression (which is multi-line)."""
    import jmespath.exceptions

    if isinstance(exc, jmespath.exceptions.IncompleteExpressionError):
        return f"incomplete expression (it ends at column {exc.lex_position})"
    if isinstance(exc, jmespath.exceptions.LexerError):
        return f"{exc.message} at column {exc.lex_position}"
    return f"{exc.msg} at column {exc.lex_position}"


def _one_line(exc: BaseException) -> str:
    return " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
