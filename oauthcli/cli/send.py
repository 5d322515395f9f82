"""``oauthcli send``: build the request from the options, send it, show the result.

With ``--each FILE`` the rows go to :mod:`oauthcli.cli.batch`, which calls
:func:`build_request` once per row with the row's values as call variables.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from oauthcli.errors import ExitCode, RegistryError, UsageError, YamlProblem
from oauthcli.present import console
from oauthcli.registry.discovery import Registry
from oauthcli.registry.models import Auth, Message, Method
from oauthcli.request.build import RequestBuilder as _Builder
from oauthcli.request.resolve import split_target
from oauthcli.request.resolved import ResolvedProfile, ResolvedRequest

if TYPE_CHECKING:
    from oauthcli.outlog.calls import LoggingSender
    from oauthcli.present.query import Query


@dataclass(repr=False, eq=False)
class SendOptions:
    variables: dict[str, str] = field(default_factory=dict)
    vars_file: Path | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str | None = None
    as_json: bool = False
    verbose: bool = False
    dry_run: bool = False
    timeout: float | None = None
    retries: int | None = None
    no_fail: bool = False
    each: str | None = None
    concurrency: int = 4
    rate: str | None = None
    query: str | None = None  # --query: a JMESPath expression (present/query.py)
    paginate: bool = False  # --paginate: follow Link rel="next" (transport/pages.py)
    max_pages: int | None = None
    report: Path | None = None  # --each … --report FILE: JUnit XML (present/junit.py)
    profile: str | None = None  # --profile: another profile's token on an oauth2 message
    wait: bool = False  # --wait: a device-code sign-in waits without a terminal too
    browser: bool = True  # --no-browser: a browser sign-in prints the URL only
    log_level: str | None = None  # --log-level: what the outbound log records (outlog/)


def send_command(registry: Registry, target: str, method: str | None, options: SendOptions) -> int:
    from oauthcli.tokens import signin

    with signin.using(wait=options.wait, browser=options.browser):
        return _send_command(registry, target, method, options)


def _send_command(registry: Registry, target: str, method: str | None, options: SendOptions) -> int:
    if options.rate is not None and options.each is None:
        raise UsageError("--rate only applies with --each")
    if options.each == "-" and options.body == "-":
        raise UsageError("--each - and --body - cannot both read stdin")
    query = _check_script_options(options)
    message, meth = split_target(registry, target, method)
    variables = dict(options.variables)
    if options.vars_file is not None:
        variables = {**read_vars_file(options.vars_file), **variables}
    body = read_body(options.body)
    if options.each is not None:
        from oauthcli.cli.batch import BatchOptions, run_batch

        build = RequestBuilder(registry, message, meth, body, options)
        # What a worker process needs to build the same requests (cli/batchworker.py).
        recipe = {
            "registry": str(registry.root),
            "env": registry.environment.name if registry.environment else None,
            "profile": options.profile,
            "target": target,
            "method": method,
            "variables": variables,
            "headers": options.headers,
            "body": body,
            "timeout": options.timeout,
            "retries": options.retries,
            "query": options.query,
        }
        return run_batch(
            lambda row: build({**variables, **row}),
            options.each,
            BatchOptions(
                concurrency=options.concurrency,
                rate=options.rate,
                verbose=options.verbose,
                no_fail=options.no_fail,
                dry_run=options.dry_run,
                as_json=options.as_json,
                query=query,
                report=options.report,
                report_name=f"{message.name}.{meth.name}",
                log_level=options.log_level,
            ),
            recipe,
        )

    req = build_request(registry, message, meth, variables, body, options)
    from oauthcli.present import output

    if options.dry_run:
        if options.as_json:
            shown = output.dry_run_object(req)
            if registry.environment is not None:
                shown["environment"] = registry.environment.name
            console.out(json.dumps(shown, ensure_ascii=False))
        else:
            if registry.environment is not None:
                env = registry.environment
                console.out(f"# environment: {env.name} ({env.source.relative_to(registry.root)})")
            for line in output.dry_run_lines(req):
                console.out(line)
        return int(ExitCode.OK)
    if options.paginate:
        return _send_pages(req, options, query)
    # Piped, the body streams to stdout as it arrives (whatever its size); else the
    # Sender keeps what a terminal, --json or --query can show.
    stream = not options.as_json and not sys.stdout.isatty() and query is None
    with _sender(options) as sender:
        result = sender.send(
            req,
            output.VerboseTrace() if options.verbose else None,
            sink=output.write_body if stream else None,
        )
    output.show_result(result, as_json=options.as_json, no_fail=options.no_fail, query=query)
    return output.exit_code(result, options.no_fail)


def _sender(options: SendOptions) -> LoggingSender:
    """The Sender of one ``send``: every call it makes is a record of the outbound log."""
    from oauthcli.outlog.calls import LoggingSender

    return LoggingSender(
        pool_size=1, warn=console.warn, log_level=options.log_level, no_fail=options.no_fail
    )


def _check_script_options(options: SendOptions) -> Query | None:
    """The combinations --query, --paginate and --report refuse; the compiled --query."""
    if options.paginate and options.each is not None:
        raise UsageError("--paginate cannot be used with --each: send one paged call at a time")
    if options.max_pages is not None and not options.paginate:
        raise UsageError("--max-pages only applies with --paginate")
    if options.report is not None:
        if options.each is None:
            raise UsageError("--report only applies with --each")
        from oauthcli.present.junit import check_writable

        check_writable(options.report)
    if options.query is None:
        return None  # a plain send imports nothing of --query
    from oauthcli.present.query import compile_query

    return compile_query(options.query)


def _send_pages(req: ResolvedRequest, options: SendOptions, query: Query | None) -> int:
    """``--paginate``: every page shown as it comes, each on its own line when piped."""
    from oauthcli.present import output
    from oauthcli.transport.pages import DEFAULT_MAX_PAGES, pages

    piped = not options.as_json and not sys.stdout.isatty() and query is None
    sink = output.PageSink() if piped else None
    code = int(ExitCode.OK)
    with _sender(options) as sender:
        for result in pages(
            sender,
            req,
            max_pages=options.max_pages or DEFAULT_MAX_PAGES,
            trace=lambda n: output.VerboseTrace(f"[page {n}] ") if options.verbose else None,
            sink=lambda n: sink,
        ):
            output.show_result(
                result, as_json=options.as_json, no_fail=options.no_fail, query=query, lines=True
            )
            if sink is not None:
                sink.end()
            code = output.exit_code(result, options.no_fail)
    return code


def build_request(
    registry: Registry,
    message: Message,
    method: Method,
    variables: dict[str, str],
    body: bytes | None,
    options: SendOptions,
) -> ResolvedRequest:
    """The resolved request with -H, --body, --timeout and --retries applied."""
    return RequestBuilder(registry, message, method, body, options)(variables)


class RequestBuilder(_Builder):
    """:func:`build_request` for many calls (``--each``): planned once, rendered per row."""

    def __init__(
        self,
        registry: Registry,
        message: Message,
        method: Method,
        body: bytes | None,
        options: SendOptions,
    ) -> None:
        super().__init__(
            registry,
            message,
            method,
            body,
            headers=options.headers,
            timeout=options.timeout,
            retries=options.retries,
        )
        self.profile: ResolvedProfile | None = None
        if options.profile is not None:
            self.profile = _other_profile(registry, message, self.plan.auth_spec, options.profile)

    def __call__(self, variables: Mapping[str, str]) -> ResolvedRequest:
        req = super().__call__(variables)
        if self.profile is not None:
            from oauthcli.auth import OAuth2Auth

            req.auth = OAuth2Auth(self.profile)
        return req


def _other_profile(registry: Registry, message: Message, auth: Auth, name: str) -> ResolvedProfile:
    """``--profile NAME``: the profile whose token an ``oauth2`` message is sent with instead
    of its own; any other auth has no profile to replace (checked before any row is sent)."""
    from oauthcli.request.resolve import profile_named

    if auth.type != "oauth2":
        raise RegistryError.at(
            message.source,
            auth.line,
            "auth",
            f"message '{message.name}' uses auth {auth.type}, not oauth2: "
            f"--profile {name} cannot apply",
        )
    return profile_named(registry, name)


def read_body(spec: str | None) -> bytes | None:
    if spec is None:
        return None
    if spec == "-":
        return sys.stdin.buffer.read()
    if not spec.startswith("@") or len(spec) == 1:
        raise UsageError(f"--body takes @FILE or - (stdin), got {spec[:20]!r}")
    path = Path(spec[1:]).expanduser()
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"--body: cannot read {path}: {exc.strerror or exc}") from None


def read_vars_file(path: Path) -> dict[str, str]:
    """A YAML or JSON object of call variables; anything else is a usage error naming the file."""
    try:
        text = path.expanduser().read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"--vars-file {path}: cannot read it: {reason}") from None
    written: dict[tuple[str | int, ...], str] = {}
    try:
        if path.suffix.lower() == ".json":
            doc = json.loads(text)
        else:
            from oauthcli.registry import yamlsrc

            document = yamlsrc.loads(text, path)
            doc, written = document.data, document.scalars
    except json.JSONDecodeError as exc:
        raise UsageError(f"--vars-file {path}: not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:  # a 4300+ digit number, deep nesting
        from oauthcli.request.rows import json_problem

        raise UsageError(f"--vars-file {path}: cannot be read: {json_problem(exc)}") from None
    except YamlProblem as exc:
        raise UsageError(f"--vars-file {exc.problem}") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise UsageError(
            f"--vars-file {path}: expected an object of NAME: value, got {type(doc).__name__}"
        )
    from oauthcli.request.rows import not_text, variable_text

    # A plain YAML scalar is taken as written (012345 stays 012345, not 5349).
    variables = {str(k): written.get((k,)) or variable_text(v) for k, v in doc.items()}
    problem = not_text(variables)
    if problem:
        raise UsageError(f"--vars-file {path}: {problem}")
    return variables
