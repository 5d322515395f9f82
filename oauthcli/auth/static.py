"""Auth types whose credentials are fixed in the message: none, basic, bearer, api_key."""

from __future__ import annotations

import base64
from typing import ClassVar

from oauthcli.auth.base import SECRET_HEADERS, Auth, dq
from oauthcli.secret import MASK, Secret, remember, reveal


class NoAuth(Auth):
    """``auth: {type: none}``: nothing is attached."""

    __slots__ = ()
    type: ClassVar[str] = "none"


class BasicAuth(Auth):
    """``auth: {type: basic}``: ``Authorization: Basic base64(username:password)``."""

    __slots__ = ("_value", "password", "username")
    type: ClassVar[str] = "basic"

    def __init__(self, username: str | None, password: Secret | None) -> None:
        self.username = username or ""
        self.password = password
        self._value: str | None = None

    @property
    def header(self) -> str:
        return "Authorization"

    def value(self) -> str:
        if self._value is None:
            self._value = basic_authorization(self.username, reveal(self.password) or "")
        return self._value

    def masked(self) -> str:
        return f"Basic {MASK}"

    def curl(self) -> tuple[list[str], list[str]]:
        return [], ["-u", f'"{dq(self.username)}:$PASSWORD"']

    def summary(self) -> str:
        return f"basic as {self.username} (password {MASK})"

    def refusal(self) -> str:
        return (
            f"the API refused username '{self.username}' and its password: "
            "check auth in the message"
        )


class BearerAuth(Auth):
    """``auth: {type: bearer}``: a static token, ``Authorization: Bearer <token>``."""

    __slots__ = ("token",)
    type: ClassVar[str] = "bearer"

    def __init__(self, token: Secret | None) -> None:
        self.token = token

    @property
    def header(self) -> str:
        return "Authorization"

    def value(self) -> str:
        return f"Bearer {reveal(self.token) or ''}"

    def masked(self) -> str:
        return f"Bearer {MASK}"

    def curl(self) -> tuple[list[str], list[str]]:
        return [], ["-H", '"Authorization: Bearer $TOKEN"']

    def summary(self) -> str:
        return f"bearer {MASK}"

    def refusal(self) -> str:
        return "the API refused the bearer token configured in the message's auth"


class ApiKeyAuth(Auth):
    """``auth: {type: api_key}``: a key in a header of the message's choosing."""

    __slots__ = ("_header", "_secret", "key")
    type: ClassVar[str] = "api_key"

    def __init__(self, header: str | None, key: Secret | None) -> None:
        self._header = header or None
        self.key = key
        self._secret = SECRET_HEADERS | {header.lower()} if header else SECRET_HEADERS

    @property
    def header(self) -> str | None:
        return self._header

    def secret_headers(self) -> frozenset[str]:
        return self._secret

    def value(self) -> str:
        return reveal(self.key) or ""

    def curl(self) -> tuple[list[str], list[str]]:
        if self._header is None:
            return [], []
        return [], ["-H", f'"{dq(self._header)}: $API_KEY"']

    def summary(self) -> str:
        return f"api_key in header {self._header} ({MASK})"

    def refusal(self) -> str:
        return f"the API refused the key sent in header {self._header}"


def basic_authorization(username: str, password: str) -> str:
    """The ``Authorization`` value requests' HTTPBasicAuth sends (Latin-1, as resolving
    checked), remembered as a secret in the forms it may be shown in."""
    encoded = base64.b64encode(f"{username}:{password}".encode("latin1")).decode("ascii")
    remember(encoded)
    remember(f"{username}:{password}")  # so its base64 without padding or URL-safe is masked too
    return f"Basic {encoded}"
