"""``oauthcli import openapi|curl``: registry files from an OpenAPI document or a curl command."""

# No ``from __future__ import annotations``: typer reads these annotations (see app.py).

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from oauthcli.present import console

if TYPE_CHECKING:
    from oauthcli.importers.write import Plan

import_app = typer.Typer(
    help="Write registry files from an OpenAPI document or a curl command.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)

_NAME_HELP = "The message's (and profile's) name; default: from the document or URL."
_FORCE_HELP = "Replace files that already exist."


@import_app.command("openapi")
def import_openapi(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="An OpenAPI 3.x document.")],
    name: Annotated[str | None, typer.Option("--name", metavar="NAME", help=_NAME_HELP)] = None,
    force: Annotated[bool, typer.Option("--force", help=_FORCE_HELP)] = False,
) -> None:
    """Write a message (and a profile) from an OpenAPI 3.x document."""
    from oauthcli.importers.openapi import import_openapi as plan_of

    _write(ctx, plan_of(file.expanduser(), name), force)


@import_app.command("curl")
def import_curl(
    ctx: typer.Context,
    command: Annotated[str, typer.Argument(metavar="'curl …'", help="The curl command, quoted.")],
    name: Annotated[str | None, typer.Option("--name", metavar="NAME", help=_NAME_HELP)] = None,
    force: Annotated[bool, typer.Option("--force", help=_FORCE_HELP)] = False,
) -> None:
    """Write a message from a curl command; credentials become ${env:…} placeholders."""
    from oauthcli.importers.curl import import_curl as plan_of

    _write(ctx, plan_of(command, name), force)


def _write(ctx: typer.Context, plan: "Plan", force: bool) -> None:
    from oauthcli.importers.write import write

    for warning in plan.warnings:
        console.warn(warning)
    for path in write(_root(ctx.find_root().params.get("registry")), plan, force=force):
        console.err(f"wrote {path}", "green")
    console.err("check them with: oauthcli validate")


def _root(option: "str | None") -> Path:
    """The registry folder as SPEC §1 finds it; an empty one is fine to import into."""
    chosen = option or os.environ.get("OAUTHCLI_REGISTRY") or "."
    return Path(chosen).expanduser()
