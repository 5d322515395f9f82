"""Build small registries in a temporary folder for tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

PROFILE = """\
grant_type: client_credentials
token_url: http://127.0.0.1:9/token
client_id: app
client_secret: s3cr3t-value
scope: api.read api.write
"""

MESSAGE = """\
endpoint: http://127.0.0.1:9/api/items
auth: {type: oauth2, profile: acme}
methods:
  list:
    http_method: GET
"""


def make_registry(root: Path, files: dict[str, str | bytes]) -> Path:
    (root / "profiles").mkdir(parents=True, exist_ok=True)
    (root / "messages").mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content), encoding="utf-8")
    return root
