"""The command line: parse options, call the core, print, map errors to exit codes.

The only place that imports typer. ``BoundaryGroup.invoke`` is the one error
boundary: an :class:`~oauthcli.errors.OAuthCliError` becomes a one-line
message on stderr and its exit code; anything else is reported as a bug
(exit 1), with a traceback only when ``OAUTHCLI_DEBUG=1``.
"""

# No ``from __future__ import annotations`` here: typer reads the annotations of
# every command on every run, and string annotations would each be eval()ed
# (10 ms per run); evaluated once at import they cost almost nothing.

import errno
import gc
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from oauthcli import __version__
from oauthcli.errors import ExitCode, OAuthCliError, OutputError, RegistryProblems, UsageError
from oauthcli.present import console

if TYPE_CHECKING:
    from oauthcli.registry.discovery import Kind, Registry


class BoundaryGroup(TyperGroup):
    def invoke(self, ctx: Any) -> Any:
        from oauthcli.tokens import signin

        try:
            with signin.shown_by(console.err):  # a browser sign-in's URL goes to stderr
                result = super().invoke(ctx)
            console.flush()  # here, so that a full disk is reported like any other failure
            return result
        except OAuthCliError as exc:
            _report(exc)
            raise typer.Exit(int(exc.exit_code)) from None
        except BrokenPipeError:
            _quiet_stdout()
            raise typer.Exit(int(ExitCode.BROKEN_PIPE)) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if type(exc).__module__.startswith("typer"):
                raise  # usage errors: typer prints them and exits 2
            raise typer.Exit(int(_unexpected(exc))) from None

    def _main_shell_completion(
        self, ctx_args: Any, prog_name: str, complete_var: Any = None
    ) -> None:
        if os.environ.get("_OAUTHCLI_COMPLETE"):  # a shell asks: attach the registry's names
            from oauthcli.cli.completion import prepare

            prepare(self)
        super()._main_shell_completion(ctx_args, prog_name, complete_var)


def _report(exc: OAuthCliError) -> None:
    _debug_traceback(exc)
    if isinstance(exc, RegistryProblems):
        for problem in exc.problems:
            console.error(_one_line(str(problem)))
    else:
        console.error(_one_line(_describe(exc)))


def _report_bug(exc: BaseException, where: str = "") -> None:
    """An exception nobody expected: one line saying it is a bug (traceback only with
    ``OAUTHCLI_DEBUG=1``), secrets masked either way."""
    _debug_traceback(exc)
    message = _one_line(f"{type(exc).__name__}: {_describe(exc)}")
    console.error(f"internal error (a bug in oauthcli, please report it){where}: {message}")


def _describe(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # a message that cannot even be built
        return f"<{type(exc).__name__} with an unprintable message>"


# A message longer than this is cut: a reason is a line, not a dump of a body.
_MAX_LINE = 2000


def _one_line(text: str) -> str:
    """``text`` on one line: line breaks (a body echoed in a message) become spaces."""
    line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return line if len(line) <= _MAX_LINE else line[:_MAX_LINE] + "…"


def _debug_traceback(exc: BaseException) -> None:
    """With ``OAUTHCLI_DEBUG=1``: the traceback, formatted here so that every known
    secret in it is masked (a message or a source line may hold one). Only what
    :func:`traceback.format_exception` prints: frames, messages, the chain; never
    the values of locals."""
    if os.environ.get("OAUTHCLI_DEBUG") != "1":
        return
    import traceback

    from oauthcli.secret import scrub

    try:
        text = "".join(traceback.format_exception(exc))
    except Exception:  # a frame or message that cannot be formatted
        text = f"{type(exc).__name__} (its traceback could not be formatted)\n"
    try:
        sys.stderr.write(scrub(text))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def _thread_excepthook(args: Any) -> None:
    """A worker thread died of an exception: one masked line, never Python's raw traceback."""
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    name = getattr(args.thread, "name", "")
    _report_bug(args.exc_value, f" in thread {name}" if name else " in a worker thread")


app = typer.Typer(
    cls=BoundaryGroup,
    name="oauthcli",
    help="Call OAuth-protected REST APIs from files in git: tokens fetched, cached and refreshed for you.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
    # Plain click help and usage errors unless main() sees a terminal: typer's rich
    # formatting costs ~70 ms of imports, paid by every script that runs --help.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
token_app = typer.Typer(
    cls=BoundaryGroup,
    help="Inspect and manage the token cache.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    pretty_exceptions_show_locals=False,
)
app.add_typer(token_app, name="token")

from oauthcli.cli.imports import import_app  # noqa: E402 (the group is registered here)

app.add_typer(import_app, name="import")

_state: dict[str, Any] = {"registry": None, "env": None}


def _version(value: bool) -> None:
    if value:
        console.out(f"oauthcli {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            "-r",
            metavar="DIR",
            help="Registry folder (default: $OAUTHCLI_REGISTRY, else the current directory).",
        ),
    ] = None,
    env: Annotated[
        str | None,
        typer.Option(
            "--env",
            "-e",
            metavar="NAME",
            help="The environment (environments/NAME.yaml) whose variables fill ${name} "
            "(default: $OAUTHCLI_ENV, else none).",
        ),
    ] = None,
    no_color: Annotated[bool, typer.Option("--no-color", help="Never colour output.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    _state["registry"] = registry
    _state["env"] = env
    console.disable_color(no_color)


def open_registry() -> "Registry":
    from oauthcli.registry.discovery import discover

    return discover(_state["registry"], env=_state["env"])


@app.command("list")
def list_items(
    kind: Annotated[str | None, typer.Argument(metavar="[profiles|messages|environments]")] = None,
) -> None:
    """List profiles, messages and environments with a one-line summary each."""
    from oauthcli.present.render import message_summary, profile_summary

    if kind not in (None, "profiles", "messages", "environments"):
        raise UsageError(f"list takes 'profiles', 'messages' or 'environments', not {kind!r}")
    registry = open_registry()
    sections: list[tuple[Kind, Callable[[str], str]]] = [
        ("profiles", lambda name: profile_summary(registry.profile(name))),
        ("messages", lambda name: message_summary(registry.message(name))),
        ("environments", lambda name: _environment_summary(registry, name)),
    ]
    for section, summarise in sections:
        if kind is not None and section != kind:
            continue
        names = registry.names(section)
        if kind is None and section == "environments" and not names:
            continue  # a registry without environments lists as before
        if kind is None:
            console.out(f"{section}:")
        width = max((len(n) for n in names), default=0)
        for name in names:
            try:
                summary = summarise(name)
            except OAuthCliError as exc:
                summary = f"(invalid: {str(exc).splitlines()[0]})"
            console.out(f"{'  ' if kind is None else ''}{name:<{width}}  {summary}")


def _environment_summary(registry: "Registry", name: str) -> str:
    env = registry.environment_file(name)
    count = len(env.variables)
    summary = env.description or f"{count} variable{'' if count == 1 else 's'}"
    selected = registry.environment
    chosen = selected is not None and selected.source == env.source
    return summary + (" (selected)" if chosen else "")


@app.command()
def show(
    name: Annotated[str, typer.Argument(metavar="NAME[.METHOD]")],
    var: Annotated[
        list[str] | None, typer.Option("--var", "-V", metavar="NAME=VALUE", help="A call variable.")
    ] = None,
) -> None:
    """Show a resolved profile or message, secrets masked, with the variables it needs."""
    from oauthcli.present.render import profile_lines, request_lines
    from oauthcli.request.resolve import resolve_profile, resolve_request, split_target

    registry = open_registry()
    is_profile = registry.has("profiles", name)
    is_message = registry.has("messages", name) or (
        "." in name and registry.has("messages", name.rpartition(".")[0])
    )
    if not is_profile and not is_message:
        registry.message(name)  # raises "unknown message" with suggestions
    blocks: list[list[str]] = []
    if is_profile:
        blocks.append(profile_lines(resolve_profile(registry.profile(name), registry=registry)))
    if is_message:
        message, method = split_target(registry, name, None) if "." in name else (None, None)
        if message is None:
            message = registry.message(name)
            methods = list(message.methods.values())
        else:
            assert method is not None
            methods = [method]
        variables = parse_vars(var or [])
        for m in methods:
            blocks.append(
                request_lines(resolve_request(registry, message, m, variables, lenient=True))
            )
    shown = environment_shown(registry)
    if shown is not None:
        for block in blocks:
            _add_line(block, "environment:", shown)
    console.out("\n\n".join("\n".join(block) for block in blocks))


def environment_shown(registry: "Registry") -> str | None:
    """Which environment an item was resolved with, as ``show`` and ``--dry-run`` say it."""
    env = registry.environment
    if env is not None:
        return f"{env.name} ({env.source.relative_to(registry.root)})"
    known = registry.names("environments")
    return f"none (known: {', '.join(known)}; select one with -e NAME)" if known else None


def _add_line(block: list[str], label: str, value: str) -> None:
    """``label value`` after a ``show`` block's file line, aligned as its other lines."""
    import re

    first = re.match(r"[^:]+:\s+", block[0]) if block else None
    width = max(first.end() if first else 0, len(label) + 1)
    block.insert(min(2, len(block)), label.ljust(width) + value)


@app.command()
def validate() -> None:
    """Check every registry file; print each problem as file:line: message."""
    from oauthcli.request.validate import validate_registry

    registry = open_registry()
    problems, envs, files = _validate_environments(registry)
    runs = [registry] if registry.environment or not envs else _with_each(registry, envs)
    found = []
    for run in runs:
        problems_of_run, count = validate_registry(run)
        found.append(problems_of_run)
    files += count
    for problem in dict.fromkeys(p for run_found in found for p in run_found):
        # A problem with only some of the environments says which.
        everywhere = all(problem in run_found for run_found in found)
        problems.append(problem if everywhere else _under(problem, runs, found))
    problems = sorted(dict.fromkeys(problems), key=lambda p: (str(p.file or ""), p.line or 0))
    for problem in problems:
        console.out(str(problem))
    if problems:
        bad = len({p.file for p in problems})
        console.err(f"{len(problems)} problem(s) in {bad} of {files} file(s)", "red")
        raise typer.Exit(int(ExitCode.REGISTRY))
    _issuer_notes(registry)  # where endpoints will come from; validate makes no network call
    console.err(f"{files} file(s) OK", "green")


def _validate_environments(registry: "Registry") -> tuple[list[Any], list[str], int]:
    """The environment files' problems, the usable ones, and how many files: with ``-e``
    only the selected one is used; without, every profile and message is resolved with
    each environment in turn (a profile's ``${name}`` needs one)."""
    problems, usable, count = registry.environment_problems()
    if registry.environment is not None:
        usable = [registry.environment.name]
    return problems, usable, count


def _with_each(registry: "Registry", names: list[str]) -> list["Registry"]:
    from oauthcli.registry.discovery import Registry

    runs = []
    for name in names:
        run = Registry(registry.root)
        run.select(name)
        runs.append(run)
    return runs


def _under(problem: Any, runs: list["Registry"], found: list[list[Any]]) -> Any:
    """A problem found with some of the environments only says with which."""
    from dataclasses import replace

    names = [
        r.environment.name
        for r, f in zip(runs, found, strict=True)
        if r.environment is not None and problem in f
    ]
    return replace(problem, message=f"{problem.message} (environment {', '.join(names)})")


def _issuer_notes(registry: "Registry") -> None:
    from oauthcli.present.render import issuer_note
    from oauthcli.request.resolve import resolve_profile

    for name in registry.index("profiles"):
        try:
            note = issuer_note(resolve_profile(registry.profile(name), registry=registry))
        except OAuthCliError:
            continue
        if note:
            console.err(note)


_WAIT_HELP = "Without a terminal, wait for the device-code sign-in all the same."
_LOG_LEVEL_HELP = "What the outbound log records: off, basic, elevated (headers) or all (bodies)."


def _log_level(value: str | None) -> str | None:
    from oauthcli.registry.declaration import LOG_LEVELS

    if value is not None and value not in LOG_LEVELS:
        raise typer.BadParameter(f"{value[:40]!r} is not one of {', '.join(LOG_LEVELS)}")
    return value


LogLevel = Annotated[
    str | None,
    typer.Option("--log-level", metavar="LEVEL", help=_LOG_LEVEL_HELP, callback=_log_level),
]
_NO_BROWSER_HELP = "Print the sign-in URL instead of opening a browser."


@app.command("get-token")
def get_token(
    profile: Annotated[str, typer.Argument(metavar="PROFILE")],
    force: Annotated[
        bool, typer.Option("--force", help="Run the grant even if a cached token is valid.")
    ] = False,
    raw: Annotated[bool, typer.Option("--raw", help="Print only the access token.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON object.")] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Show the token decision and exchange (secrets masked)."
        ),
    ] = False,
    wait: Annotated[bool, typer.Option("--wait", help=_WAIT_HELP)] = False,
    no_browser: Annotated[bool, typer.Option("--no-browser", help=_NO_BROWSER_HELP)] = False,
    log_level: LogLevel = None,
) -> None:
    """Get a token for a profile, as the "Get OAuth token" button does."""
    from oauthcli.cli.tokens import get_token_command

    raise typer.Exit(
        get_token_command(
            open_registry(),
            profile,
            force=force,
            raw=raw,
            as_json=as_json,
            verbose=verbose,
            wait=wait,
            browser=not no_browser,
            log_level=log_level,
        )
    )


@token_app.command("list")
def token_list() -> None:
    """List cached tokens (masked) and until when they are valid."""
    from oauthcli.cli.tokens import token_list_command

    raise typer.Exit(token_list_command())


@token_app.command("clear")
def token_clear(profile: Annotated[str | None, typer.Argument(metavar="[PROFILE]")] = None) -> None:
    """Remove cached tokens: all of them, or one profile's."""
    from oauthcli.cli.tokens import token_clear_command

    raise typer.Exit(token_clear_command(open_registry() if profile else None, profile))


@token_app.command("revoke")
def token_revoke(
    profile: Annotated[str, typer.Argument(metavar="PROFILE")], log_level: LogLevel = None
) -> None:
    """Revoke a profile's cached tokens at its revocation_url, then remove them."""
    from oauthcli.cli.tokens import token_revoke_command

    raise typer.Exit(token_revoke_command(open_registry(), profile, log_level=log_level))


@app.command("log")
def log(
    last: Annotated[
        int | None,
        typer.Option("--last", metavar="N", help="Only the last N calls (after filters).", min=1),
    ] = None,
    message: Annotated[
        str | None,
        typer.Option(
            "--message",
            metavar="NAME",
            help="Only calls of this message (or MESSAGE.METHOD; a profile for get-token).",
        ),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option("--profile", metavar="NAME", help="Only calls made with this profile."),
    ] = None,
    failed: Annotated[
        bool, typer.Option("--failed", help="Only calls whose exit code is not 0.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the records as JSON lines, as stored.")
    ] = False,
    har: Annotated[
        str | None,
        typer.Option("--har", metavar="FILE", help="Write a HAR 1.2 archive ('-' for stdout)."),
    ] = None,
) -> None:
    """Show the outbound log: what was sent, and why each token was used or renewed."""
    from oauthcli.cli.log import log_command

    raise typer.Exit(
        log_command(
            last=last, message=message, profile=profile, failed=failed, as_json=as_json, har=har
        )
    )


@app.command()
def doctor(
    target: Annotated[str, typer.Argument(metavar="PROFILE|MESSAGE[.METHOD]")],
    force: Annotated[
        bool, typer.Option("--force", help="Get a new token even if a cached one is valid.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
    var: Annotated[
        list[str] | None,
        typer.Option("--var", "-V", metavar="NAME=VALUE", help="A call variable (repeatable)."),
    ] = None,
) -> None:
    """Check why a profile or message does not work: DNS, TLS, discovery, clock, token, call."""
    from oauthcli.cli.doctor import doctor_command

    raise typer.Exit(
        doctor_command(
            open_registry(), target, force=force, as_json=as_json, variables=parse_vars(var or [])
        )
    )


def _finite(value: float | None) -> float | None:
    """click's FloatRange lets nan through: every comparison with it is false."""
    if value is not None and value != value:
        raise typer.BadParameter("must be a number of seconds, not nan")
    return value


@app.command()
def send(
    target: Annotated[str, typer.Argument(metavar="MESSAGE[.METHOD]")],
    method: Annotated[
        str | None, typer.Option("--method", "-m", metavar="NAME", help="The method to call.")
    ] = None,
    var: Annotated[
        list[str] | None,
        typer.Option("--var", "-V", metavar="NAME=VALUE", help="A call variable (repeatable)."),
    ] = None,
    vars_file: Annotated[
        Path | None,
        typer.Option(
            "--vars-file", metavar="FILE", help="Call variables from a YAML or JSON object."
        ),
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header", "-H", metavar="'Name: value'", help="An extra request header (repeatable)."
        ),
    ] = None,
    body: Annotated[
        str | None,
        typer.Option("--body", metavar="@FILE|-", help="Send this body instead of the method's."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON result object.")] = False,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Show request and response lines and headers (secrets masked)."
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the resolved request; fetch no token, send nothing."),
    ] = False,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            metavar="S",
            help="Seconds to wait for the API.",
            min=0.001,
            max=86_400,
            callback=_finite,
        ),
    ] = None,
    retries: Annotated[
        int | None,
        typer.Option("--retries", metavar="N", help="Retries after the first attempt.", min=0),
    ] = None,
    no_fail: Annotated[
        bool, typer.Option("--no-fail", help="Exit 0 whatever the HTTP status.")
    ] = False,
    each: Annotated[
        str | None,
        typer.Option("--each", metavar="FILE", help="One call per CSV/JSONL row ('-' for stdin)."),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency", metavar="N", help="Parallel calls with --each.", min=1, max=256
        ),
    ] = 4,
    rate: Annotated[
        str | None,
        typer.Option("--rate", metavar="N/s", help="At most N calls a second with --each."),
    ] = None,
    query: Annotated[
        str | None,
        typer.Option(
            "--query", metavar="EXPR", help="A JMESPath expression applied to the JSON body."
        ),
    ] = None,
    paginate: Annotated[
        bool, typer.Option("--paginate", help='Follow Link: <…>; rel="next" from page to page.')
    ] = False,
    max_pages: Annotated[
        int | None,
        typer.Option(
            "--max-pages", metavar="N", help="Pages --paginate fetches at most (100).", min=1
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option("--report", metavar="FILE", help="With --each: write a JUnit XML report."),
    ] = None,
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            metavar="NAME",
            help="Send an oauth2 message with this profile's token instead of its own.",
        ),
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help=_WAIT_HELP)] = False,
    no_browser: Annotated[bool, typer.Option("--no-browser", help=_NO_BROWSER_HELP)] = False,
    log_level: LogLevel = None,
) -> None:
    """Resolve a message, authorise it and send it."""
    from oauthcli.cli.send import SendOptions, send_command

    options = SendOptions(
        variables=parse_vars(var or []),
        vars_file=vars_file,
        headers=parse_headers(header or []),
        body=body,
        as_json=as_json,
        verbose=verbose,
        dry_run=dry_run,
        timeout=timeout,
        retries=retries,
        no_fail=no_fail,
        each=each,
        concurrency=concurrency,
        rate=rate,
        query=query,
        paginate=paginate,
        max_pages=max_pages,
        report=report,
        profile=profile,
        wait=wait,
        browser=not no_browser,
        log_level=log_level,
    )
    raise typer.Exit(send_command(open_registry(), target, method, options))


@app.command()
def sandbox(
    port: Annotated[
        int,
        typer.Option("--port", help="Port on 127.0.0.1 (0 picks a free one).", min=0, max=65535),
    ] = 8976,
    token_ttl: Annotated[
        int,
        typer.Option("--token-ttl", metavar="S", help="Access token lifetime in seconds.", min=1),
    ] = 300,
) -> None:
    """Run a local OAuth server and sample API on 127.0.0.1 to try oauthcli against."""
    from oauthcli.sandbox import serve

    raise typer.Exit(serve("127.0.0.1", port, token_ttl, sys.stdout, sys.stderr))


@app.command()
def schema(
    kind: Annotated[str, typer.Argument(metavar="profile|message|environment")],
) -> None:
    """Print the JSON Schema (draft 2020-12) of a profile, message or environment file."""
    from oauthcli.cli.schema import schema_command

    raise typer.Exit(schema_command(kind))


@app.command()
def completion(shell: Annotated[str, typer.Argument(metavar="bash|zsh|fish")]) -> None:
    """Print a shell completion script (eval "$(oauthcli completion bash)")."""
    from oauthcli.cli.completion import script

    console.out(script(shell))


def parse_vars(items: list[str]) -> dict[str, str]:
    variables = {}
    for item in items:
        name, sep, value = item.partition("=")
        shown = _shown(name.strip())
        if not sep or not name.strip():
            raise UsageError(f"--var takes NAME=VALUE, got {_shown(item)!r}")
        if not _is_text(item):  # bytes that are not UTF-8 reach argv as lone surrogates
            raise UsageError(f"--var {shown}: not UTF-8 text (bytes in another encoding?)")
        variables[name.strip()] = value
    return variables


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(text: str, limit: int = 40) -> str:
    """``text`` as it can be printed: undecodable bytes as escapes, cut to ``limit``."""
    try:
        raw = text.encode("utf-8", "surrogateescape")  # argv's undecodable bytes, back as bytes
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    text = raw.decode("utf-8", "backslashreplace")
    return text if len(text) <= limit else text[:limit] + "…"


def parse_headers(items: list[str]) -> list[tuple[str, str]]:
    """``-H 'Name: value'`` options; a name or value that cannot be sent is a usage error
    naming the header, never showing the value (it may be a credential)."""
    import re

    from oauthcli.headers import header_value_problem

    headers = []
    for item in items:
        name, sep, value = item.partition(":")
        name = name.strip()
        if not sep or not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
            shown = item.split(":")[0][:40].encode("ascii", "backslashreplace").decode()
            raise UsageError(f"--header takes 'Name: value' (an HTTP header name), got {shown!r}")
        value = value.strip(" \t")
        problem = header_value_problem(value)
        if problem:
            raise UsageError(f"--header {name}: the value {problem}")
        headers.append((name, value))
    return headers


#: What writing to stdout fails with when the disk (or the quota) is full: not a bug.
_WRITE_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def _unexpected(exc: Exception) -> ExitCode:
    """Report an exception no command turned into an OAuthCliError; its exit code."""
    if isinstance(exc, OSError) and exc.errno in _WRITE_FAILURES:
        # typer writing --help or a usage message to a full disk: not a bug
        _quiet_stdout()
        _report(OutputError(exc))
        return OutputError.exit_code
    _report_bug(exc)
    return ExitCode.INTERNAL


def _quiet_stdout() -> None:
    """The reader went away (``oauthcli … | head``): stop quietly, as a program
    killed by SIGPIPE would, and keep Python from complaining when it flushes."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def main(argv: list[str] | None = None) -> NoReturn:
    if sys.stdout is None:  # started with stdout closed (>&-): nowhere for a result to go
        if sys.stderr is not None:
            console.error("cannot write to standard output: it is closed")
        sys.exit(int(ExitCode.INTERNAL))
    if sys.stdout.isatty():
        app.rich_markup_mode = "rich"
    import threading

    threading.excepthook = _thread_excepthook
    try:
        app(args=argv, prog_name="oauthcli")
    except KeyboardInterrupt:
        console.err("interrupted", "yellow")
        sys.exit(int(ExitCode.INTERRUPTED))
    except BrokenPipeError:
        _quiet_stdout()
        sys.exit(int(ExitCode.BROKEN_PIPE))
    except OAuthCliError as exc:  # raised while the command line was parsed (an eager option)
        _report(exc)
        sys.exit(int(exc.exit_code))
    except Exception as exc:
        sys.exit(int(_unexpected(exc)))
    finally:
        # The process ends here. Frozen objects are skipped by the collections that
        # interpreter shutdown runs, which otherwise walk every object that typer,
        # requests and the registry created: 15-20 ms, a tenth of a warm send.
        if "freeze" not in os.environ.get("OAUTHCLI_BENCH_WITHOUT", ""):  # bench/audit.py
            gc.freeze()
    sys.exit(0)
