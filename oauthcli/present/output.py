"""Showing what ``send`` did: status line, body, ``--json``, ``-v`` traces, ``--dry-run``.

Every line of text goes through :mod:`oauthcli.present.console` (which scrubs known
secrets); credential headers are masked by name. A piped body is the API's
data: it is streamed to stdout byte for byte as received, secrets or not (SPEC
§2). What is shown on a terminal, in ``--json`` and in ``--each`` lines is at
most the Sender's body limit, with a note when cut. rich is imported only to
colour JSON on a terminal.
"""

from __future__ import annotations

import json
import shlex
import sys
import threading
from typing import TYPE_CHECKING, Any

import requests

from oauthcli.errors import ExitCode, RegistryError
from oauthcli.masking import RESPONSE_SECRET_HEADERS, mask_header, masked_headers, scrub_value
from oauthcli.present import console
from oauthcli.request.resolved import ResolvedRequest
from oauthcli.secret import MASK, scrub, url_password
from oauthcli.trace import Trace
from oauthcli.transport.http import base_headers
from oauthcli.transport.sending import Result

if TYPE_CHECKING:
    from oauthcli.present.query import Query

_BINARY_NOTE = "binary body ({n} bytes{ctype}) not shown on a terminal: redirect it to a file"
_CUT_NOTE = (
    "the response body is larger than {limit}: {where} shows its first {limit} "
    "(redirect stdout to a file for all of it)"
)
_STATUS_COLORS = {2: "green", 3: "cyan", 4: "yellow", 5: "red"}
_print_lock = threading.Lock()


def exit_code(result: Result, no_fail: bool) -> int:
    return int(ExitCode.OK if no_fail else ExitCode.for_status(result.status))


def status_line(result: Result) -> str:
    return (
        f"{result.status} {result.reason} · {result.elapsed_ms:.0f} ms · "
        f"{result.http_method} {result.url}"
    )


# -- the response ----------------------------------------------------------


def show_result(
    result: Result,
    *,
    as_json: bool,
    no_fail: bool,
    query: Query | None = None,
    lines: bool = False,
) -> None:
    """Print the result per the output mode, then the explanation of a failure.

    ``query`` (``--query``) replaces a success's body by the expression's result; with
    ``lines`` (``--paginate``) a ``--json`` object or a query result piped is one line.
    """
    if sys.stderr.isatty() and not as_json:
        color = _STATUS_COLORS.get(result.status // 100)
        console.err(status_line(result), color)
    if query is not None and query.applies_to(result):
        value = query.value(result)  # a UsageError when the body cannot be queried
        if as_json:
            shown = {**result_object(result, body=False), "body": scrub_value(value)}
            console.out(json.dumps(shown, indent=None if lines else 2, ensure_ascii=False))
        else:
            from oauthcli.present.query import render

            console.out(render(value, pretty=sys.stdout.isatty()))
    elif as_json:
        console.out(
            json.dumps(result_object(result), indent=None if lines else 2, ensure_ascii=False)
        )
        if result.body_cut:
            console.warn(_CUT_NOTE.format(limit=_size(len(result.body)), where="--json"))
    elif sys.stdout.isatty():
        _show_body_on_terminal(result)
    elif not result.streamed:
        write_body(result.body)
    if result.status >= 400:
        show_failure(result, no_fail=no_fail)


def show_failure(result: Result, *, no_fail: bool, prefix: str = "") -> None:
    from oauthcli.present.explain import failure_lines

    lines = failure_lines(result)
    if no_fail:
        console.warn(prefix + lines[0])
    else:
        console.error(prefix + lines[0])
    for line in lines[1:]:
        console.err(line)


def result_object(result: Result, *, body: bool = True) -> dict[str, Any]:
    """The ``--json`` object (SPEC §2): body parsed when the response is JSON, else text
    (``body=False``: None, for a caller that puts a ``--query`` result there)."""
    shown = {
        "status": result.status,
        "reason": result.reason,
        "url": scrub(result.url),
        "http_method": result.http_method,
        "headers": masked_headers(result.headers, result.secret_headers),
        "body": _body_for_json(result) if body else None,
        "elapsed_ms": round(result.elapsed_ms),
        "attempts": result.attempts,
    }
    if result.body_cut:  # only then: "body" is the start of the text, not all of it
        shown["body_truncated"] = True
    return shown


def body_value(result: Result) -> Any:
    if not result.body:
        return "" if not is_json(result) else None
    if is_json(result) and not result.body_cut:
        document = _json_document(result.body)
        if document is not None:
            return document
    return result.body.decode(_charset(result), "replace")


def _json_document(body: bytes) -> Any:
    """The body parsed as JSON; None if it is not JSON, or nested too deep to handle."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


def _body_for_json(result: Result) -> Any:
    try:
        return scrub_value(body_value(result))
    except RecursionError:  # nested deeper than Python recurses: the text instead
        return scrub(result.body.decode(_charset(result), "replace"))


def is_json(result: Result) -> bool:
    media = result.headers.get("Content-Type", "").split(";")[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def query_value(result: Result, query: Query) -> Any:
    """``--query``'s result on a success's body, secrets masked (a ``--each`` line's body)."""
    return scrub_value(query.value(result))


class PageSink:
    """A piped ``--paginate``'s sink: each page's body streamed as it arrives, then a line
    break unless the body ended with one, so that each page is a line of its own."""

    def __init__(self) -> None:
        self._last = b"\n"

    def __call__(self, chunk: bytes) -> None:
        if chunk:
            self._last = chunk[-1:]
        write_body(chunk)

    def end(self) -> None:
        if self._last != b"\n":
            write_body(b"\n")
        self._last = b"\n"


def write_body(body: bytes) -> None:
    """Body bytes on stdout exactly as received: the API's data, secrets or not (SPEC §2).

    Also the ``sink`` a piped ``send`` streams the body to, a chunk at a time.
    """
    console.write_bytes(body)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    return f"{n / 1024:.0f} KiB" if n < 1024**2 else f"{n / 1024**2:.0f} MiB"


def _show_body_on_terminal(result: Result) -> None:
    if not result.body:
        return
    if is_json(result) and not result.body_cut:
        document = _json_document(result.body)
        if document is not None:
            text = scrub(json.dumps(document, indent=2, ensure_ascii=False))
            if console.color_enabled(sys.stdout):
                from rich.console import Console
                from rich.json import JSON

                Console(file=sys.stdout, soft_wrap=True).print(JSON(text))
            else:
                console.out(text)
            return
    if _looks_binary(result.body):
        ctype = result.headers.get("Content-Type")
        console.err(_BINARY_NOTE.format(n=_full_size(result), ctype=f", {ctype}" if ctype else ""))
        return
    if result.body_cut:
        console.warn(_CUT_NOTE.format(limit=_size(len(result.body)), where="the terminal"))
    console.out(result.body.decode(_charset(result), "replace").removesuffix("\n"))


def _full_size(result: Result) -> str:
    """The body's size: as received, or for a cut body what Content-Length announced."""
    if not result.body_cut:
        return str(result.body_size or len(result.body))
    announced = result.headers.get("Content-Length", "")
    if announced.isascii() and announced.isdigit() and len(announced) < 20:
        return announced
    return f"over {result.body_size}"


def _looks_binary(body: bytes) -> bool:
    head = body[:8192]
    if b"\x00" in head:
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(head) - 4  # a character cut at the sample's end is fine
    return False


def _charset(result: Result) -> str:
    for part in result.headers.get("Content-Type", "").split(";")[1:]:
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset" and value:
            charset = value.strip("\"'")
            try:
                b"\xff".decode(charset, "replace")  # a text codec that can replace (not idna)
            except (LookupError, UnicodeError, TypeError):
                break
            return charset
    return "utf-8"


# -- -v ----------------------------------------------------------------------


class VerboseTrace(Trace):
    """Request and response lines and headers on stderr, curl-style, secrets masked."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix

    def _lines(self, lines: list[str]) -> None:
        with _print_lock:
            for line in lines:
                console.err(self.prefix + line, "dim" if line.startswith("*") else None)

    def request(self, prepared: requests.PreparedRequest, secret_headers: frozenset[str]) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(prepared.url or "")
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # The Host header carries no userinfo: requests sends user:password as Basic auth.
        host = parts.netloc.rpartition("@")[2]
        lines = [f"> {prepared.method} {target} HTTP/1.1", f"> Host: {host}"]
        lines += [
            f"> {k}: {mask_header(k, v, secret_headers)}" for k, v in prepared.headers.items()
        ]
        lines.append(">")
        body = prepared.body
        if isinstance(body, str):
            body = body.encode()
        if body:
            lines += _body_preview(body)
        self._lines(lines)

    def response(self, response: requests.Response) -> None:
        version = {10: "HTTP/1.0", 11: "HTTP/1.1", 20: "HTTP/2"}.get(
            getattr(response.raw, "version", 11), "HTTP/1.1"
        )
        lines = [f"< {version} {response.status_code} {response.reason}"]
        secret = RESPONSE_SECRET_HEADERS
        lines += [f"< {k}: {mask_header(k, v, secret)}" for k, v in response.headers.items()]
        lines.append("<")
        self._lines(lines)

    def note(self, text: str) -> None:
        self._lines([f"* {text}"])


def _body_preview(body: bytes) -> list[str]:
    if len(body) > 4096 or _looks_binary(body):
        return [f"> ({len(body)} bytes of body)"]
    return [f"> {line}" for line in body.decode("utf-8", "replace").splitlines()]


# -- --dry-run ---------------------------------------------------------------


def dry_run_lines(req: ResolvedRequest) -> list[str]:
    """The request as it would be sent (credentials masked), then an equivalent curl."""
    headers = _planned_headers(req)
    secret_names = req.auth.secret_headers()
    lines = [f"{req.http_method} {planned_url(req)}"]
    lines += [f"{k}: {mask_header(k, v, secret_names)}" for k, v in headers.items()]
    if req.body:
        lines.append("")
        if _looks_binary(req.body):
            lines.append(f"({len(req.body)} bytes of binary body)")
        else:
            lines.append(req.body.decode("utf-8", "replace"))
    lines += ["", *curl_lines(req)]
    return lines


def dry_run_object(req: ResolvedRequest) -> dict[str, Any]:
    """``--dry-run --json``: what :func:`dry_run_lines` shows, as one JSON object."""
    secret_names = req.auth.secret_headers()
    body: str | None = None
    if req.body:
        body = (
            f"({len(req.body)} bytes of binary body)"
            if _looks_binary(req.body)
            else scrub(req.body.decode("utf-8", "replace"))
        )
    return {
        "dry_run": True,
        "http_method": req.http_method,
        "url": scrub(planned_url(req)),
        "headers": {k: mask_header(k, v, secret_names) for k, v in _planned_headers(req).items()},
        "body": body,
        "curl": [scrub(line) for line in curl_lines(req)],
    }


def planned_url(req: ResolvedRequest) -> str:
    """The URL the request line will carry: prepared as the Sender prepares it."""
    from oauthcli.transport.adapter import UnsendableURL, wire_url

    try:
        return wire_url(req.full_url)
    except UnsendableURL as exc:
        raise RegistryError.at(
            req.source, None, "endpoint", f"cannot send to {req.full_url}: {exc}"
        ) from None


def _planned_headers(req: ResolvedRequest) -> dict[str, str]:
    """The headers the Sender sends: the same defaults, then the request's auth flow
    run as a dry run (its credentials attached masked, nothing obtained)."""
    from oauthcli.auth import AuthState, Outgoing

    outgoing = Outgoing(req.headers, base_headers(req), Trace())
    flow = req.auth.auth_flow(outgoing, AuthState(dry_run=True))
    planned = next(flow)
    headers = dict(planned.headers)
    flow.close()
    if planned.signer is not None:  # a DPoP proof, as the first hop would carry it
        planned.signer.sign(req.http_method, planned_url(req), headers)
    if "Authorization" not in headers and url_password(req.full_url) is not None:
        headers["Authorization"] = "Basic " + MASK  # user:password in the URL, as requests sends it
    return headers


def curl_lines(req: ResolvedRequest) -> list[str]:
    """``curl`` doing the same call, reading credentials from $TOKEN and friends."""
    auth = req.auth
    lines: list[str] = []
    args = ["curl"]
    if req.http_method == "HEAD":
        args.append("--head")
    elif req.http_method != "GET" or req.body:
        args += ["-X", req.http_method]
    if req.http_method in ("GET", "HEAD"):
        args.append("--location")
    args.append(shlex.quote(planned_url(req)))
    secret_names = auth.secret_headers()
    given = {h.lower() for h in req.headers}
    for name, value in base_headers(req).items():
        if name.lower() not in given:
            continue  # curl's own defaults do
        if name.lower() in secret_names:
            var = "$" + "".join(c if c.isalnum() else "_" for c in name.upper())
            args += ["-H", f'"{_dq(name)}: {var}"']
        else:
            args += ["-H", shlex.quote(f"{name}: {value}")]
    if not auth.overridden(req.headers):
        comments, auth_args = auth.curl()
        lines += comments
        args += auth_args
    if req.body:
        if _looks_binary(req.body):
            args += ["--data-binary", "@BODY_FILE"]
            lines.append(f"# BODY_FILE: the {len(req.body)}-byte binary body")
        else:
            args += ["--data-binary", shlex.quote(req.body.decode("utf-8", "replace"))]
    if not req.tls.verify:
        args.append("--insecure")
    elif req.tls.ca_bundle:
        args += ["--cacert", shlex.quote(req.tls.ca_bundle)]
    if req.tls.client_cert:
        args += ["--cert", shlex.quote(req.tls.client_cert)]
    if req.tls.client_key:
        args += ["--key", shlex.quote(req.tls.client_key)]
    args += ["--connect-timeout", f"{req.timeout:g}"]
    lines.append(" ".join(args))
    return lines


def _dq(text: str) -> str:
    """Text safe inside a double-quoted shell word."""
    return "".join("\\" + c if c in '\\"$`' else c for c in text)
