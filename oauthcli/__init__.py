"""oauthcli: call OAuth-protected REST APIs from files in git.

The Python API (SPEC §8) is :func:`open_registry` and what it returns; see
:mod:`oauthcli.api`. Importing this package stays light: the API's modules load on
first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oauthcli.errors import (
    HTTPStatusError,
    NetworkError,
    OAuthCliError,
    OAuthCliWarning,
    RegistryError,
    TokenError,
    UsageError,
)

if TYPE_CHECKING:
    from oauthcli.api import AccessToken, Failed, ProfileAuth, Registry, Response, open_registry

__version__ = "0.1.0"

__all__ = [
    "AccessToken",
    "Failed",
    "HTTPStatusError",
    "NetworkError",
    "OAuthCliError",
    "OAuthCliWarning",
    "ProfileAuth",
    "Registry",
    "RegistryError",
    "Response",
    "TokenError",
    "UsageError",
    "__version__",
    "open_registry",
]

_API = frozenset({"AccessToken", "Failed", "ProfileAuth", "Registry", "Response", "open_registry"})


def __getattr__(name: str) -> Any:
    # The CLI imports oauthcli on every run; requests and the registry load only for a script.
    if name in _API:
        from oauthcli import api

        return getattr(api, name)
    raise AttributeError(f"module 'oauthcli' has no attribute {name!r}")
