"""``oauthcli doctor PROFILE|MESSAGE``: why a profile or message does not work, one check a line.

:func:`oauthcli.diagnose.checks.diagnose` runs the checks of SPEC §7 in order and yields each :class:`Check` as it
is made, so a slow one (a server that does not answer) shows where it is waiting:

1. ``registry``: the profile or message resolves (each problem as ``file:line: …``);
2. ``dns``: each host involved (issuer, token endpoint, API) resolves, with its addresses;
3. ``tls``: each https origin's handshake verifies against the trust the request would use,
   with the certificate's names, days to its expiry and the TLS version;
4. ``discovery`` and the metadata checks: the issuer's RFC 8414 / OpenID metadata against
   the profile (issuer, endpoints, ``client_auth``, grant, DPoP, scopes);
5. ``clock``: the token endpoint's (and the API's) ``Date`` against this machine's clock;
6. ``token``: a token, as ``get-token`` gets it (cached or new), masked, with its claims;
7. for a message, per method: ``call`` (the token's audience and scope against the call)
   and ``dry run`` (the resolved request, nothing sent).

Each check runs on its own: one that cannot run says why (``skip``) instead of failing
again for a reason already shown. A failed check carries the exit code of what it found
(:data:`EXIT_CODES`); :func:`exit_code` is the highest of them, as ``send --each`` exits
with its worst row's, and 0 when nothing failed (warnings and skips pass).

Nothing here prints, imports typer or rich, or sends a credential to anything but the
token endpoint (the token check is the token request ``get-token`` would make); a
sign-in is never started (``authorization_code``, ``device_code`` without a cached
token are skipped).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from oauthcli.errors import ExitCode

Status = Literal["ok", "warn", "fail", "skip"]

#: The exit code of a failed check of each kind: what the same failure exits with
#: elsewhere (SPEC §2): a registry problem 3, what makes the API refuse the call 4, what
#: costs the token 6 (discovery, the clock, the token request), the network 7.
EXIT_CODES: dict[str, ExitCode] = {
    "registry": ExitCode.REGISTRY,
    "dns": ExitCode.NETWORK,
    "tls": ExitCode.NETWORK,
    "discovery": ExitCode.TOKEN,
    "endpoints": ExitCode.TOKEN,
    "client auth": ExitCode.TOKEN,
    "grant": ExitCode.TOKEN,
    "dpop": ExitCode.TOKEN,
    "scope": ExitCode.TOKEN,
    "clock": ExitCode.TOKEN,
    "token": ExitCode.TOKEN,
    "call": ExitCode.API_CLIENT_ERROR,
    "dry run": ExitCode.REGISTRY,
}


@dataclass(frozen=True)
class Check:
    """One line of ``doctor``: what was checked, how it went, and what to do next."""

    name: str  # a key of EXIT_CODES
    status: Status
    detail: str  # one line: what was found
    hint: str = ""  # one line: the next step, when there is one
    exit_code: int = 0  # for a failed check: its EXIT_CODES entry (or the error's own code)

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "hint": self.hint or None,
            "exit_code": self.exit_code,
        }


def exit_code(checks: Iterable[Check]) -> int:
    """0 when no check failed, else the highest exit code of the failed ones."""
    return max((c.exit_code for c in checks if c.status == "fail"), default=int(ExitCode.OK))


__all__ = ["EXIT_CODES", "Check", "Status", "exit_code"]
