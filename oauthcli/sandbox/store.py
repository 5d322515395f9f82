"""In-memory, thread-safe record of what the sandbox issued and served.

Access tokens are self-contained JWTs, but the sandbox still remembers each
one's ``jti`` so that revocation (RFC 7009) and the "reject tokens issued
before now" test hook can take effect at the API.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, TokenMixin

from .clients import SandboxClient, User

REFRESH_TOKEN_LIFETIME = 24 * 3600
AUTHORIZATION_CODE_LIFETIME = 300


@dataclass
class AccessToken(TokenMixin):
    """An access token this sandbox issued, keyed by its ``jti``."""

    jti: str
    claims: dict[str, Any]
    issued_at: float  # precise, unlike the whole-second ``iat`` claim
    revoked: bool = False

    @property
    def client_id(self) -> str:
        return str(self.claims.get("client_id", ""))

    def check_client(self, client: SandboxClient) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return str(self.claims.get("scope") or "")

    def get_expires_in(self) -> int:
        return int(self.claims["exp"]) - int(self.claims["iat"])

    def is_expired(self) -> bool:
        return time.time() >= float(self.claims["exp"])

    def is_revoked(self) -> bool:
        return self.revoked


@dataclass
class RefreshToken(TokenMixin):
    """A refresh token; using it rotates it (the old one is revoked)."""

    value: str
    client_id: str
    user: User
    scope: str
    audience: str | list[str]
    expires_at: float
    revoked: bool = False

    def check_client(self, client: SandboxClient) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int(self.expires_at - time.time()))

    def is_expired(self) -> bool:
        return time.time() >= self.expires_at

    def is_revoked(self) -> bool:
        return self.revoked


@dataclass
class AuthorizationCode(AuthorizationCodeMixin):
    """A code from ``/oauth/authorize``, good for one exchange within minutes."""

    code: str
    client_id: str
    redirect_uri: str | None
    scope: str
    user: User
    code_challenge: str | None
    code_challenge_method: str | None
    expires_at: float

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class TokenStore:
    """Issued tokens, used assertion ids and the counters behind ``stats()``."""

    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    reject_before: float = 0.0
    counters: Counter[str] = field(default_factory=Counter)
    by_grant: Counter[str] = field(default_factory=Counter)
    _assertion_ids: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, name: str) -> None:
        with self._lock:
            self.counters[name] += 1

    def add_access(self, claims: dict[str, Any], grant_type: str) -> None:
        token = AccessToken(str(claims["jti"]), claims, time.time())
        with self._lock:
            self.access[token.jti] = token
            self.counters["tokens_issued"] += 1
            self.by_grant[grant_type] += 1

    def add_refresh(self, token: RefreshToken) -> None:
        with self._lock:
            self.refresh[token.value] = token

    def find_access(self, jti: str) -> AccessToken | None:
        with self._lock:
            return self.access.get(jti)

    def find_refresh(self, value: str) -> RefreshToken | None:
        with self._lock:
            return self.refresh.get(value)

    def consume_refresh(self, token: RefreshToken) -> bool:
        """Mark a refresh token used; False when another request used it first."""
        with self._lock:
            if token.revoked:
                return False
            token.revoked = True
            return True

    def add_code(self, code: AuthorizationCode) -> None:
        with self._lock:
            self.codes[code.code] = code

    def take_code(self, value: str) -> AuthorizationCode | None:
        """Remove and return a live code: a code is spent on its first exchange."""
        with self._lock:
            code = self.codes.pop(value, None)
        if code is None or time.time() >= code.expires_at:
            return None
        return code

    def revoke(self, token: AccessToken | RefreshToken) -> None:
        with self._lock:
            token.revoked = True

    def use_assertion_id(self, key: str) -> bool:
        """Record a client assertion's ``jti``; False when it was seen before."""
        with self._lock:
            if key in self._assertion_ids:
                return False
            self._assertion_ids.add(key)
            return True

    def reject_tokens_before_now(self) -> float:
        with self._lock:
            self.reject_before = time.time()
            return self.reject_before

    def is_rejected(self, jti: str) -> str | None:
        """Why the API must refuse the token with this ``jti``, or None."""
        with self._lock:
            token = self.access.get(jti)
            if token is None:
                return "The access token was not issued by this sandbox"
            if token.revoked:
                return "The access token was revoked"
            if token.issued_at < self.reject_before:
                return "The access token was issued before the server-side cut-off"
            return None

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "token_requests": self.counters["token_requests"],
                "tokens_issued": self.counters["tokens_issued"],
                "tokens_by_grant": dict(self.by_grant),
                "revocation_requests": self.counters["revocation_requests"],
                "revocations": self.counters["revocations"],
                "introspection_requests": self.counters["introspection_requests"],
                "api_requests": self.counters["api_requests"],
                "reject_tokens_before": self.reject_before or None,
            }
