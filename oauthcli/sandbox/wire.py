"""What travels between the stdlib HTTP handler and the sandbox's endpoints.

The handler turns each HTTP exchange into a :class:`Request`, a route turns it
into a :class:`Response`, and the handler writes that back. Nothing here knows
about OAuth; it only keeps the endpoints free of ``http.server`` details.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qsl

FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"


@dataclass
class Request:
    """One HTTP request as received, with the body already read."""

    method: str
    target: str  # path and query exactly as on the request line
    path: str  # percent-decoded path, without the query
    query: str  # raw query string, without "?"
    headers: Message
    body: bytes = b""
    url: str = ""  # absolute URL (scheme, host and port of the sandbox)
    params: dict[str, str] = field(default_factory=dict)  # path parameters of the route

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()

    def query_items(self) -> list[tuple[str, str]]:
        return parse_qsl(self.query, keep_blank_values=True)

    def query_dict(self) -> dict[str, str]:
        """Query parameters, the first value of each name."""
        result: dict[str, str] = {}
        for key, value in self.query_items():
            result.setdefault(key, value)
        return result

    def form_items(self) -> list[tuple[str, str]]:
        """The urlencoded body's fields (none when the body is something else)."""
        if self.content_type != FORM_TYPE:
            return []
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            return []
        return parse_qsl(text, keep_blank_values=True)

    def json(self) -> Any:
        """The body parsed as JSON; ``ValueError`` when it is not JSON."""
        return json.loads(self.body.decode("utf-8"))


@dataclass
class Response:
    """A response to write; ``client_id`` only feeds the request log."""

    status: int
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    client_id: str | None = None

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


def json_response(
    status: int,
    payload: Any,
    headers: Mapping[str, str] | list[tuple[str, str]] | None = None,
    client_id: str | None = None,
) -> Response:
    """A JSON response; extra ``headers`` are added after the content type."""
    items = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
    if not any(key.lower() == "content-type" for key, _ in items):
        items.insert(0, ("Content-Type", JSON_TYPE))
    body = json.dumps(payload, indent=None, separators=(",", ":")).encode("utf-8")
    return Response(status, body, items, client_id)


def sn_error(status: int, message: str, detail: str = "") -> Response:
    """An error in the ServiceNow table API's shape."""
    return json_response(
        status, {"error": {"message": message, "detail": detail}, "status": "failure"}
    )
