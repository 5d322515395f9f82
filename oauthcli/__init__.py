"""oauthcli: call OAuth-protected REST APIs from files in git."""

from __future__ import annotations

__version__ = "0.1.0"
