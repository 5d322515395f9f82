from __future__ import annotations

from oauthcli.cli import main

main()
