"""What a fake HTTP call (``responses``) carried on the wire, in the types tests compare."""

from __future__ import annotations

from requests import PreparedRequest


def body_text(request: PreparedRequest) -> str:
    """The body as text: requests keeps a form body as str and a file or JSON body as bytes."""
    body = request.body
    assert body is not None, "the request had no body"
    return body.decode() if isinstance(body, bytes) else body
