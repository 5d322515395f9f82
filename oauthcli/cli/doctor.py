"""``oauthcli doctor PROFILE|MESSAGE[.METHOD]``: the checks of :mod:`oauthcli.diagnose`, a line each.

On a terminal each line starts with ✓, ✗, ! or - (coloured unless ``--no-color`` or
``NO_COLOR``); piped, with ``pass``, ``FAIL``, ``warn`` or ``skip``, so a script can grep
it. ``--json`` prints the checks as one JSON list instead. Each line is printed as its
check ends; a summary goes to stderr. The exit code is :func:`oauthcli.diagnose.exit_code`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping

from oauthcli.diagnose import Check, exit_code
from oauthcli.present import console
from oauthcli.registry.discovery import Registry

_MARKS = {"ok": "✓", "fail": "✗", "warn": "!", "skip": "-"}
_WORDS = {"ok": "pass", "fail": "FAIL", "warn": "warn", "skip": "skip"}
_COLORS = {"ok": "green", "fail": "red", "warn": "yellow", "skip": "dim"}
_WIDTH = max(len(name) for name in ("registry", "discovery", "client auth", "endpoints", "dry run"))


def doctor_command(
    registry: Registry,
    target: str,
    *,
    force: bool,
    as_json: bool,
    variables: Mapping[str, str],
) -> int:
    from oauthcli.diagnose.checks import diagnose

    checks: list[Check] = []
    for check in diagnose(registry, target, force=force, variables=variables):
        checks.append(check)
        if not as_json:
            console.out(line(check, terminal=_isatty()))
            console.flush()
    if as_json:
        console.out(json.dumps([c.as_dict() for c in checks], indent=2, ensure_ascii=False))
    code = exit_code(checks)
    counts = {status: sum(c.status == status for c in checks) for status in _WORDS}
    console.err(
        f"doctor {target}: {counts['ok']} passed, {counts['warn']} warning(s), "
        f"{counts['fail']} failed, {counts['skip']} skipped; exit {code}",
        "red" if code else "green",
    )
    return code


def line(check: Check, *, terminal: bool) -> str:
    """One check as ``doctor`` prints it: mark or word, name, detail, then ``→ next step``."""
    if terminal:
        mark = console.style(_MARKS[check.status], _COLORS[check.status], sys.stdout)
    else:
        mark = f"{_WORDS[check.status]:<4}"
    text = f"{mark} {check.name:<{_WIDTH}}  {check.detail}"
    return f"{text}  → {check.hint}" if check.hint else text


def _isatty() -> bool:
    isatty = getattr(sys.stdout, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:
        return False
