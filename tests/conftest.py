"""Fixtures shared by every test module."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_oauthcli(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """No test reads or writes the real ~: a fresh token cache, no OAUTHCLI_* from outside."""
    for name in list(os.environ):
        if name.startswith("OAUTHCLI_"):
            monkeypatch.delenv(name)
    base = tmp_path_factory.mktemp("home")
    cache_dir = base / "oauthcli-cache"
    monkeypatch.setenv("OAUTHCLI_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(base / "xdg-cache"))
    return cache_dir
