"""docs/servicenow.md names only keys, values and commands that exist."""

from __future__ import annotations

import re
from pathlib import Path

from oauthcli.registry import declaration as decl
from tests.clirun import run

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "servicenow.md"
TABLES = (decl.PROFILE, decl.MESSAGE, decl.METHOD, decl.AUTH, decl.ENVIRONMENT)


def _commands() -> set[str]:
    help_text = run("--help").out + run("token", "--help").out
    return set(re.findall(r"^\s{2}([a-z][a-z-]+)\s", help_text, re.M))


def _mapping_rows(text: str) -> list[list[str]]:
    """The rows of the field → key tables: their cells after the ServiceNow field."""
    rows, inside = [], False
    for line in text.splitlines():
        if line.startswith("| ") and (" key |" in line):
            inside = True
            continue
        if inside and line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not set(cells[0]) <= set("-"):
                rows.append(cells[1:])
        else:
            inside = False
    return rows


#: Backticked words in the notes that are not keys: what a token endpoint answers.
_NOT_KEYS = {"expires_in"}


def test_every_key_and_value_the_tables_name_is_declared() -> None:
    keys = {k.name: k for table in TABLES for k in table}
    keys.update({k.leaf: k for table in TABLES for k in table if k.leaf not in keys})
    choices = {str(c) for k in keys.values() for c in k.choices}
    rows = _mapping_rows(PAGE.read_text(encoding="utf-8"))
    assert len(rows) >= 30
    named, wrong = set(), []
    for column, cell in ((c, cell) for row in rows for c, cell in enumerate(row[:2])):
        for code in re.findall(r"`([^`\n]+)`", cell):
            if "${" in code or "://" in code:
                continue  # a placeholder, a URL
            pairs = re.findall(r"([a-z_][a-z0-9_.]*):\s*([A-Za-z0-9_.-]+)?", code)
            for key, value in pairs or [(code, "")]:
                if not re.fullmatch(r"[a-z_]+(\.[a-z_]+)?", key):
                    continue
                if column == 1 and not pairs and "_" not in key:
                    continue  # a note's `incidents.list`: a name, not a key
                named.add(key)
                if key not in keys and not (column == 1 and (key in choices or key in _NOT_KEYS)):
                    wrong.append(key)
                elif key in keys and keys[key].choices and value and value not in keys[key].choices:
                    wrong.append(f"{key}: {value}")
    assert {"client_id", "client_secret", "grant_type", "token_url", "redirect_url"} <= named
    assert {"refresh_token_lifespan", "client_auth", "scope", "tls.client_cert"} <= named
    assert {"endpoint", "http_method", "variables", "headers", "query", "auth", "methods"} <= named
    assert wrong == [], f"docs/servicenow.md names what the declaration does not: {wrong}"


def test_every_oauthcli_command_on_the_page_exists() -> None:
    text = PAGE.read_text(encoding="utf-8")
    used = set(re.findall(r"`oauthcli (?:-e \w+ )?([a-z-]+)", text))
    assert {"get-token", "send", "schema"} <= used
    assert used <= _commands() | {"token"}, used - _commands()


def test_the_readme_links_the_page() -> None:
    assert "(docs/servicenow.md)" in (ROOT / "README.md").read_text(encoding="utf-8")
