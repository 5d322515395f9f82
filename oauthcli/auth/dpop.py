"""DPoP toward the API (RFC 9449 §7): what :class:`~oauthcli.auth.oauth2.OAuth2Auth` adds for a
``dpop: true`` profile.

A DPoP-bound token (``token_type: DPoP``) goes as ``Authorization: DPoP <token>`` with a
:class:`ProofSigner` on the request: the transport asks it for a fresh proof (``ath`` of
the token, the origin's nonce) on every hop it sends, and shows it every answer's headers,
whose ``DPoP-Nonce`` replaces the nonce held (:data:`oauthcli.tokens.dpop.NONCES`). A 401
``WWW-Authenticate: DPoP error="use_dpop_nonce"`` is answered by sending once more
(:func:`asks_nonce`); a second one is the answer, explained.

A server that answers a DPoP token request with ``token_type: Bearer`` ignores DPoP
(RFC 9449 §5 lets the client tell): oauthcli warns once per Sender and sends that token
as Bearer, without proofs, rather than failing a call the server would accept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING

from oauthcli.auth.base import AuthState, Reply

if TYPE_CHECKING:
    from oauthcli.request.resolved import ResolvedProfile
    from oauthcli.tokens.dpop import DPoPKey
    from oauthcli.tokens.model import Token
    from oauthcli.trace import Trace

#: ``error="use_dpop_nonce"`` in a ``WWW-Authenticate`` header (quoted or not).
_USE_NONCE = re.compile(r"""\berror\s*=\s*"?use_dpop_nonce\b""", re.IGNORECASE)
_DPOP_SCHEME = re.compile(r"(?:^|,)\s*DPoP(?:\s|,|$)", re.IGNORECASE)
#: The placeholder ``--dry-run`` shows for ``ath``: no token is obtained.
DRY_ATH = "(SHA-256 of the token)"


class ProofSigner:
    """The DPoP proofs of one request: a fresh one per hop, with the token's ``ath``."""

    __slots__ = ("_access_token", "_dry", "_key", "_trace")

    def __init__(
        self, key: DPoPKey, access_token: str | None, trace: Trace, *, dry: bool = False
    ) -> None:
        self._key = key
        self._access_token = access_token
        self._trace = trace
        self._dry = dry

    def sign(self, method: str, url: str, headers: MutableMapping[str, str]) -> None:
        from oauthcli.tokens.dpop import NONCES

        # A dry run's proof is shown, never sent: the token's place in it is held.
        proof, _ = self._key.proof(
            method,
            url,
            nonce=NONCES.get(url),
            access_token=self._access_token,
            ath=DRY_ATH if self._dry else None,
        )
        headers["DPoP"] = proof

    def answered(self, url: str, headers: Mapping[str, str]) -> None:
        from oauthcli.tokens.dpop import NONCES

        if "DPoP-Nonce" in headers and not NONCES.answered(url, headers):
            self._trace.note("ignoring a DPoP-Nonce that is not RFC 9449 nonce text")


def asks_nonce(reply: Reply) -> bool:
    """A 401 asking for a proof with the server's nonce, which it gave (RFC 9449 §9); a
    nonce no proof may carry is no reason to send again."""
    from oauthcli.tokens.dpop import usable_nonce

    if reply.status_code != 401 or not usable_nonce(reply.headers.get("DPoP-Nonce") or ""):
        return False
    challenge = reply.headers.get("WWW-Authenticate") or ""
    return bool(_DPOP_SCHEME.search(challenge) and _USE_NONCE.search(challenge))


def signer(
    profile: ResolvedProfile, token: Token | None, state: AuthState, trace: Trace
) -> ProofSigner | None:
    """The signer for a request carrying ``token`` (None: dry run), or None when the token
    is not DPoP-bound (the server ignored DPoP: warned once per Sender)."""
    from oauthcli.tokens.dpop import is_dpop, key_for

    key = key_for(profile)
    if key.note is not None:
        _once(state, f"note:{profile.name}", f"profile '{profile.name}': {key.note}")
    if token is None:
        return ProofSigner(key, None, trace, dry=True)
    if not is_dpop(token):
        _once(
            state,
            f"bearer:{profile.name}",
            f"profile '{profile.name}' asks for DPoP-bound tokens (dpop: true), but "
            f"{profile.token_url} answered token_type {token.token_type}: the server ignores "
            "DPoP, so the token goes as Bearer, without proofs",
        )
        return None
    return ProofSigner(key, token.access_token.reveal(), trace)


def _once(state: AuthState, what: str, text: str) -> None:
    said = state.slot("dpop-warned", lambda _: set[str]())
    if what not in said:
        said.add(what)
        state.warn(text)
