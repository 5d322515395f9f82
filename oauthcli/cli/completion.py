"""Shell completion: ``oauthcli completion bash|zsh|fish`` and the names it completes.

The mechanism is click's, as typer ships it: the script a shell sources runs
``oauthcli`` again with ``_OAUTHCLI_COMPLETE=complete_SHELL`` and the words typed so
far, and click answers with the commands and options. This module adds the
registry's names: messages (``incidents``, ``incidents.list``), methods, profiles and
environments. It is imported only when a script is asked for or a completion runs
(:meth:`oauthcli.cli.app.BoundaryGroup` calls :func:`prepare` then), so a ``send``
pays nothing for it: the names are attached to the already built commands here, not
declared on every option.

Names come from the registry that ``-r``/``OAUTHCLI_REGISTRY``/the current directory
name, through the index of name lines (``Registry.names``: no YAML parsed); a
message's methods need that one message file, read through the parse cache. A name
that could not be typed as one plain shell word is never offered: the zsh script
``eval``s what it is given, and a registry may come from someone else's repository.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from oauthcli.errors import OAuthCliError, UsageError

SHELLS = ("bash", "zsh", "fish")
PROG = "oauthcli"
COMPLETE_VAR = "_OAUTHCLI_COMPLETE"
#: What a completion may offer: a word a shell takes as it is, quoting nothing.
_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.@+-]*")

Names = Callable[[Any, str], list[str]]


def script(shell: str) -> str:
    """The completion script for ``shell``, to be sourced (``eval "$(oauthcli completion bash)"``)."""
    if shell not in SHELLS:
        raise UsageError(f"completion takes {', '.join(SHELLS)}, not {shell!r}")
    from typer._completion_shared import get_completion_script

    return get_completion_script(prog_name=PROG, complete_var=COMPLETE_VAR, shell=shell)


def _registry(ctx: Any) -> Any:
    from oauthcli.registry.discovery import discover

    return discover(ctx.find_root().params.get("registry"))


def _plain(names: list[str], incomplete: str) -> list[str]:
    return [n for n in names if n.startswith(incomplete) and _PLAIN.fullmatch(n)]


def _names(kind: str) -> Names:
    def names(ctx: Any, incomplete: str) -> list[str]:
        return _plain(_registry(ctx).names(kind), incomplete)

    return names


def _methods(registry: Any, message: str) -> list[str]:
    try:
        return list(registry.message(message).methods)
    except OAuthCliError:  # a file that does not parse: its name is offered, no methods
        return []


def targets(ctx: Any, incomplete: str) -> list[str]:
    """``MESSAGE[.METHOD]``: message names, and a message's methods once it is the only
    one matching (``send inc`` → ``incidents``, ``incidents.list``, ``incidents.get``)."""
    registry = _registry(ctx)
    messages = registry.names("messages")
    name, dot, _ = incomplete.rpartition(".")
    if dot and registry.has("messages", name) and not registry.has("messages", incomplete):
        return _plain([f"{name}.{m}" for m in _methods(registry, name)], incomplete)
    found = _plain(messages, incomplete)
    if len(found) == 1:
        found += _plain([f"{found[0]}.{m}" for m in _methods(registry, found[0])], incomplete)
    return found


def methods(ctx: Any, incomplete: str) -> list[str]:
    """``--method``: the methods of the message already typed."""
    # ``send incidents -m <TAB>``: the option waiting for its value stops the parse, so
    # the message is still among the unparsed words
    words = [w for w in ctx.args if not w.startswith("-")]
    target = ctx.params.get("target") or (words[0] if words else None)
    if not target:
        return []
    registry = _registry(ctx)
    if not registry.has("messages", target):
        return []
    return _plain(_methods(registry, target), incomplete)


def shown(ctx: Any, incomplete: str) -> list[str]:
    """``show NAME[.METHOD]``: a profile or a message."""
    profiles = _plain(_registry(ctx).names("profiles"), incomplete)
    return sorted(set(profiles) | set(targets(ctx, incomplete)))


def _choices(values: tuple[str, ...]) -> Names:
    return lambda ctx, incomplete: [v for v in values if v.startswith(incomplete)]


def schema_kinds(ctx: Any, incomplete: str) -> list[str]:
    from oauthcli.cli.schema import kinds

    return [k for k in kinds() if k.startswith(incomplete)]


#: (command path, parameter name) → what completes it. A parameter not yet in the
#: command tree (another part of the CLI adds it later) is simply not completed.
COMPLETERS: dict[tuple[str, str], Names] = {
    ("", "env"): _names("environments"),
    ("send", "target"): targets,
    ("send", "method"): methods,
    ("send", "profile"): _names("profiles"),
    ("show", "name"): shown,
    ("doctor", "target"): shown,
    ("get-token", "profile"): _names("profiles"),
    ("token clear", "profile"): _names("profiles"),
    ("token revoke", "profile"): _names("profiles"),
    ("list", "kind"): _choices(("profiles", "messages", "environments")),
    ("schema", "kind"): schema_kinds,
    ("log", "message"): shown,
    ("log", "profile"): _names("profiles"),
    ("completion", "shell"): _choices(SHELLS),
}


def prepare(root: Any) -> None:
    """Ready ``root`` (the built click group) to answer a completion request."""
    from typer._completion_classes import completion_init

    completion_init()  # typer registers its bash/zsh/fish classes only when asked
    for path, command in _walk(root, ""):
        for param in command.params:
            names = COMPLETERS.get((path, param.name))
            if names is not None:
                # click asks ``param.shell_complete(ctx, incomplete)``; the instance's own
                # function answers instead of the type's (a str completes nothing).
                param.shell_complete = _items(names)


def _walk(command: Any, path: str) -> list[tuple[str, Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += _walk(sub, f"{path} {name}".strip())
    return found


def _items(names: Names) -> Callable[[Any, str], list[Any]]:
    def complete(ctx: Any, incomplete: str) -> list[Any]:
        from typer._click.shell_completion import CompletionItem

        try:
            return [CompletionItem(n) for n in names(ctx, incomplete)]
        except (OAuthCliError, OSError):
            return []  # no registry here, an unreadable file: nothing to offer, nothing said

    return complete
