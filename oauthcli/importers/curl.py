"""``oauthcli import curl 'curl …'``: one message from a curl command line.

The command is split as a POSIX shell would (``shlex``); the options curl users paste
most (``-X``, ``-H``, ``-d`` and its kin, ``--json``, ``-u``, ``-G``, ``-k``, the URL) are
read, harmless ones (``-s``, ``-L``, ``--compressed``, …) ignored, any other refused by
name. Every credential (an ``Authorization`` header, ``-u``, a key in a header, the URL
or the body) becomes an ``${env:…}`` placeholder: its value reaches no file and no output.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from oauthcli.errors import UsageError
from oauthcli.importers.write import File, Plan, env_prefix, item_name, literal

#: Options that take a value, by every name curl knows them by.
_VALUED = {
    "-X": "request", "--request": "request",
    "-H": "header", "--header": "header",
    "-d": "data", "--data": "data", "--data-raw": "data-raw", "--data-binary": "data",
    "--data-ascii": "data", "--data-urlencode": "data-urlencode", "--json": "json",
    "-u": "user", "--user": "user", "--url": "url",
    "-A": "agent", "--user-agent": "agent", "-e": "referer", "--referer": "referer",
    "-b": "cookie", "--cookie": "cookie", "--oauth2-bearer": "bearer",
    "-m": "max-time", "--max-time": "max-time", "--connect-timeout": "ignored-value",
    "-o": "ignored-value", "--output": "ignored-value", "-w": "ignored-value",
    "--write-out": "ignored-value", "--retry": "ignored-value",
}  # fmt: skip
#: Flags that take none.
_FLAGS = {
    "-G": "get", "--get": "get", "-k": "insecure", "--insecure": "insecure",
    "-I": "head", "--head": "head",
    **{f: "ignored" for f in (
        "--compressed", "-s", "--silent", "-S", "--show-error", "-L", "--location",
        "-i", "--include", "-v", "--verbose", "-f", "--fail", "--fail-with-body", "-#",
        "--progress-bar", "-N", "--no-buffer", "--http1.1", "--http2", "-g", "--globoff",
    )},
}  # fmt: skip
#: Header names that carry a credential.
_SECRET_HEADER = re.compile(
    r"(api[-_]?key|apikey|token|secret|auth|session|password|passwd|signature|cookie)", re.I
)
#: Query and form field names that do.
_SECRET_FIELD = re.compile(
    r"^(api[-_]?key|apikey|key|access[-_]?token|token|id[-_]?token|refresh[-_]?token|"
    r"client[-_]?secret|secret|password|passwd|pwd|sig|signature|assertion|code)$",
    re.I,
)


def import_curl(command: str, name: str | None = None, cwd: Path | None = None) -> Plan:
    """The message a curl command sends, its credentials as placeholders."""
    args = _split(command)
    options = _Options(args)
    if options.url is None:
        raise UsageError("the curl command has no URL")
    parts = urlsplit(options.url if "://" in options.url else f"http://{options.url}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"the curl URL is not an http(s) URL (scheme {_shown(parts.scheme)!r})")
    name = item_name(name or _default_name(parts.hostname, parts.path))
    env = env_prefix(name)
    plan = Plan()
    secrets = _Secrets(env)

    endpoint = urlunsplit((parts.scheme, _netloc(parts), parts.path, "", "")).rstrip("/")
    if not parts.path.strip("/"):
        endpoint += "/"
    message: dict[str, Any] = {"name": name, "endpoint": literal(endpoint)}
    auth = _auth(options, parts, secrets)
    query = {
        literal(k): secrets.field(k) if _SECRET_FIELD.match(k) else literal(v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    }
    headers: dict[str, str] = {}
    for key, value in options.headers:
        if key.lower() == "authorization" and auth is None:
            auth = _authorization(value, secrets)
            continue
        if key.lower() == "authorization" or _SECRET_HEADER.search(key):
            if auth is None and key.lower() not in ("cookie",):
                auth = {"type": "api_key", "header": key, "value": secrets.new("API_KEY")}
            else:
                headers[key] = secrets.new(key)
            continue
        headers[key] = literal(value)
    method: dict[str, Any] = {"http_method": options.method()}
    body = _body(options, headers, secrets, cwd or Path.cwd())
    if options.get and body is not None:
        if not isinstance(body[1], dict):
            raise UsageError("-G sends the data as the query: give it as name=value pairs")
        query.update(body[1])
        body = None
    if auth is not None:
        message["auth"] = auth
    if headers:
        message["headers"] = headers
    if options.insecure:
        message["tls"] = {"verify": False}
        plan.warnings.append("-k: the message does not verify the server's certificate")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        message["allow_insecure_http"] = True
        plan.warnings.append("the URL is http://: requests and credentials travel unencrypted")
    if options.timeout is not None:
        message["timeout"] = options.timeout
    if query:
        method["query"] = query
    if body is not None:
        method[body[0]] = body[1]
    message["methods"] = {"default": method}
    header = [f"Imported by `oauthcli import curl` ({options.method()} {_shown(endpoint, 80)})."]
    if secrets.names:
        header.append(f"Set {', '.join(secrets.names)} before sending; no credential was copied.")
        plan.warnings.append(
            f"credentials became placeholders: set {', '.join(secrets.names)} before sending"
        )
    header.append(f"  oauthcli send {name} --dry-run")
    plan.files.append(File("messages", name, message, header))
    return plan


def _split(command: str) -> list[str]:
    text = re.sub(r"\\\r?\n", " ", command)  # line continuations, as the shell joins them
    try:
        args = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"the curl command cannot be split as a shell would: {exc}") from None
    if args and args[0] in ("curl", "curl.exe") or args and args[0].endswith("/curl"):
        args = args[1:]
    if not args:
        raise UsageError("the curl command is empty")
    return args


class _Options:
    def __init__(self, args: list[str]) -> None:
        self.request: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.data: list[tuple[str, str]] = []  # (kind, value)
        self.user: str | None = None
        self.bearer: str | None = None
        self.url: str | None = None
        self.get = self.insecure = self.head = False
        self.timeout: float | None = None
        for option, value in self._read(args):
            self._take(option, value)

    def _read(self, args: list[str]) -> Iterator[tuple[str, str | None]]:
        items = iter(args)
        for arg in items:
            if arg == "--" or not arg.startswith("-") or arg == "-":
                yield ("url", arg) if arg != "--" else ("", None)
                continue
            if arg.startswith("--"):
                if arg in _VALUED:
                    yield _VALUED[arg], _next(items, arg)
                elif arg in _FLAGS:
                    yield _FLAGS[arg], None
                else:
                    shown = _shown(arg.split("=", 1)[0])  # never a value given as --opt=VALUE
                    raise UsageError(f"curl option {shown} is not supported by import curl")
                continue
            # short options: -sSL, -XPOST, -H'Name: value'
            for i, letter in enumerate(arg[1:], start=1):
                short = f"-{letter}"
                if short in _VALUED:
                    rest = arg[i + 1 :]
                    yield _VALUED[short], rest if rest else _next(items, short)
                    break
                if short not in _FLAGS:
                    raise UsageError(f"curl option {short} is not supported by import curl")
                yield _FLAGS[short], None

    def _take(self, option: str, value: str | None) -> None:
        if option == "url" and value is not None:
            if self.url is not None:
                raise UsageError("the curl command has more than one URL; import one at a time")
            self.url = value
        elif option == "request":
            if value is not None and not _TOKEN.fullmatch(value):
                raise UsageError(f"-X takes an HTTP method name, got {_shown(value)!r}")
            self.request = value
        elif option in ("header", "agent", "referer", "cookie") and value is not None:
            if option == "header":
                key, sep, text = value.partition(":")
                if not sep or not _TOKEN.fullmatch(key.strip()):
                    raise UsageError(f"-H takes 'Name: value', got {_shown(key)!r}")
                self.headers.append((key.strip(), text.strip()))
            else:
                label = {"agent": "User-Agent", "referer": "Referer", "cookie": "Cookie"}[option]
                self.headers.append((label, value))
        elif option in ("data", "data-raw", "data-urlencode", "json") and value is not None:
            self.data.append((option, value))
        elif option == "user":
            self.user = value
        elif option == "bearer":
            self.bearer = value
        elif option == "get":
            self.get = True
        elif option == "insecure":
            self.insecure = True
        elif option == "head":
            self.head = True
        elif option == "max-time" and value is not None:
            try:
                self.timeout = float(value)
            except ValueError:
                raise UsageError(f"--max-time takes seconds, got {_shown(value)!r}") from None

    def method(self) -> str:
        if self.request:
            return self.request.upper()
        if self.head:
            return "HEAD"
        return "POST" if self.data and not self.get else "GET"


#: An HTTP method or header name (RFC 9110 §5.6.2 token).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _next(items: Iterator[str], option: str) -> str:
    value = next(items, None)
    if value is None:
        raise UsageError(f"curl option {option} needs a value")
    return value


class _Secrets:
    """The ``${env:…}`` placeholders made so far, by name, never their values."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.names: list[str] = []

    def new(self, what: str) -> str:
        name = f"{self.prefix}_{re.sub(r'[^A-Z0-9]+', '_', what.upper()).strip('_')}"
        if name not in self.names:
            self.names.append(name)
        return f"${{env:{name}}}"

    def field(self, key: str) -> str:
        return self.new(key)


def _auth(options: _Options, parts: Any, secrets: _Secrets) -> dict[str, Any] | None:
    if options.user is not None or parts.username is not None:
        return {
            "type": "basic",
            "username": secrets.new("USERNAME"),
            "password": secrets.new("PASSWORD"),
        }
    if options.bearer is not None:
        return {"type": "bearer", "token": secrets.new("TOKEN")}
    return None


def _authorization(value: str, secrets: _Secrets) -> dict[str, Any]:
    scheme = value.split(" ", 1)[0].lower()
    if scheme == "bearer":
        return {"type": "bearer", "token": secrets.new("TOKEN")}
    if scheme == "basic":
        return {
            "type": "basic",
            "username": secrets.new("USERNAME"),
            "password": secrets.new("PASSWORD"),
        }
    return {"type": "api_key", "header": "Authorization", "value": secrets.new("AUTHORIZATION")}


def _body(
    options: _Options, headers: dict[str, str], secrets: _Secrets, cwd: Path
) -> tuple[str, Any] | None:
    if not options.data:
        return None
    content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    if any(kind == "json" for kind, _ in options.data):
        headers.setdefault("Accept", "application/json")
        content_type = content_type or "application/json"
    pieces = []
    form: dict[str, str] = {}
    urlencoded = True
    for kind, value in options.data:
        if kind != "data-raw" and value.startswith("@"):
            if value == "@-":
                raise UsageError("-d @- (the body from stdin) cannot be imported: give a file")
            path = (cwd / value[1:]).expanduser().resolve()
            if len(options.data) > 1:
                raise UsageError("-d @FILE with other data cannot be imported: give one body")
            return "content", "${file:" + str(path).replace("}", "%7D") + "}"
        if kind == "data-urlencode":
            key, sep, text = value.partition("=")
            if sep and key:
                form[key] = text
            else:
                urlencoded = False
            pieces.append(value)
            continue
        pieces.append(value)
        fields = parse_qsl(value, keep_blank_values=True)
        if fields and all(k and re.fullmatch(r"[^\s{}\[\]\"]+", k) for k, _ in fields):
            form.update(fields)
        else:
            urlencoded = False
    text = "&".join(pieces)
    if "json" in content_type.lower() or (not content_type and _looks_json(text)):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            data = None
        if isinstance(data, (dict, list)):
            return "json", _masked_json(literal(data), secrets)
        if "json" in content_type.lower():
            headers.setdefault("Content-Type", content_type)
            return "content", literal(text)
    if urlencoded and form and not options.get or options.get and form:
        return "form", {
            literal(k): secrets.field(k) if _SECRET_FIELD.match(k) else literal(v)
            for k, v in form.items()
        }
    if not content_type:
        headers["Content-Type"] = "application/x-www-form-urlencoded"  # what curl sends
    return "content", literal(text)


def _looks_json(text: str) -> bool:
    return text.lstrip()[:1] in ("{", "[")


def _masked_json(value: Any, secrets: _Secrets) -> Any:
    if isinstance(value, dict):
        return {
            k: secrets.field(k)
            if _SECRET_FIELD.match(k) and isinstance(v, str)
            else _masked_json(v, secrets)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_masked_json(v, secrets) for v in value]
    return value


def _netloc(parts: Any) -> str:
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port else host


def _loopback(host: str) -> bool:
    from oauthcli.urls import is_loopback

    return is_loopback(host)


def _default_name(host: str, path: str) -> str:
    labels = [x for x in host.split(".") if x not in ("www", "api")]
    labels = labels[:-1] if len(labels) > 1 else labels
    segments = [s for s in path.split("/") if s and not re.search(r"\d", s)]
    return "-".join(labels[-1:] + segments[-1:]) or host


def _shown(text: str, limit: int = 40) -> str:
    text = text.encode("ascii", "backslashreplace").decode()
    return text if len(text) <= limit else text[:limit] + "…"
