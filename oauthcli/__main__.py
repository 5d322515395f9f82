from __future__ import annotations

from oauthcli.entry import main

main()
