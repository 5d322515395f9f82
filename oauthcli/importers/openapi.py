"""``oauthcli import openapi FILE``: a message (and a profile) from an OpenAPI 3.x document.

The document is read with the YAML loader of ``jsonschema-path`` (the one
``openapi-spec-validator`` reads files with), checked by ``openapi-spec-validator`` against
the OpenAPI schema of its version, and walked through a ``jsonschema_path.SchemaPath``,
which resolves each ``$ref`` (``referencing``) as it is followed. References may name files
in the document's folder; a remote one (``http:``) is refused rather than fetched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from oauthcli.errors import Problem, RegistryError, RegistryProblems
from oauthcli.importers.write import File, Plan, env_prefix, item_name, literal

if TYPE_CHECKING:
    from jsonschema_path import SchemaPath

#: A document larger than this is not read (a description, not a data dump).
MAX_BYTES = 20 * 1024 * 1024
#: ... nor one holding more values than this (a large public API has about 300,000).
MAX_VALUES = 2_000_000
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
#: How deep a request body is built from its schema (a recursive schema ends here).
MAX_DEPTH = 6
_VAR = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]*")
_DEFAULT_REDIRECT = "http://127.0.0.1:8976/callback"


class _Refused(Exception):
    """A ``$ref`` this importer does not follow (remote, or outside the folder)."""


def import_openapi(path: Path, name: str | None = None) -> Plan:
    """The message (and for an OAuth 2.0 security scheme, the profile) ``path`` describes."""
    spec = _read(path)
    root = _checked(path, spec)
    try:
        return _Importer(path, spec, root, name).plan()
    except _Refused as exc:
        raise RegistryError.at(path, None, None, str(exc)) from None
    except RegistryError:
        raise
    except Exception as exc:  # a $ref that does not resolve, met while walking
        raise RegistryError.at(path, None, None, _reason(exc)) from None


# -- reading and checking ------------------------------------------------------------------


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_BYTES + 1)
    except OSError as exc:
        raise RegistryError.at(path, None, None, f"cannot read file: {exc.strerror}") from None
    if len(raw) > MAX_BYTES:
        raise RegistryError.at(path, None, None, f"larger than {MAX_BYTES // 2**20} MiB")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RegistryError.at(path, line, None, "not UTF-8 text") from None
    data = _parse(path, text)
    if not _within(data, MAX_VALUES):
        raise RegistryError.at(
            path, None, None, f"holds more than {MAX_VALUES:,} values (YAML aliases that expand?)"
        )
    if not isinstance(data, dict):
        raise RegistryError.at(path, None, None, "not an OpenAPI document (not a mapping)")
    version = data.get("openapi")
    if "swagger" in data and version is None:
        raise RegistryError.at(
            path,
            _line(text, ("swagger",)),
            "swagger",
            "a Swagger 2.0 document, not OpenAPI 3.x; convert it first "
            "(swagger2openapi, or editor.swagger.io's Convert to OpenAPI 3)",
        )
    if not isinstance(version, str) or not re.match(r"3\.\d", version):
        where = _line(text, ("openapi",)) if version is not None else None
        raise RegistryError.at(
            path, where, "openapi", f"not an OpenAPI 3.x document (openapi: {version!r})"
        )
    data["\0text"] = text  # for the lines of validation errors; dropped before checking
    return data


def _within(data: Any, limit: int) -> bool:
    """Whether ``data`` has at most ``limit`` values, each alias counted where it is used
    (the validator walks them all: a few lines of aliases can expand to billions)."""
    stack, seen = [data], 0
    while stack:
        value = stack.pop()
        seen += 1
        if seen > limit:
            return False
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return True


def _parse(path: Path, text: str) -> Any:
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            if path.suffix.lower() == ".json":
                raise RegistryError.at(path, exc.lineno, None, f"not JSON: {exc.msg}") from None
    import yaml
    from jsonschema_path.loaders import JsonschemaSafeLoader

    try:
        return yaml.load(text, Loader=JsonschemaSafeLoader)  # type: ignore[arg-type]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise RegistryError.at(path, line, None, f"not YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise RegistryError.at(path, None, None, f"not YAML: {exc}") from None
    except RecursionError:
        raise RegistryError.at(path, None, None, "nested too deeply to read") from None


def _checked(path: Path, spec: dict[str, Any]) -> SchemaPath:
    """The document as a ``SchemaPath``, after ``openapi-spec-validator`` found it valid."""
    from jsonschema_path import SchemaPath
    from openapi_spec_validator.shortcuts import get_validator_cls

    text = spec.pop("\0text")
    root = SchemaPath.from_dict(
        spec, base_uri=path.resolve().as_uri(), handlers=_handlers(path.resolve().parent)
    )
    validator = get_validator_cls(spec)(root)
    problems = []
    try:
        for error in validator.iter_errors():
            where = tuple(error.absolute_path)
            key = "/".join(str(p) for p in where) or None
            problems.append(Problem(path, _line(text, where), key, _cut(error.message)))
            if len(problems) == 5:
                break
    except _Refused as exc:
        raise RegistryError.at(path, None, None, str(exc)) from None
    except Exception as exc:  # an unresolvable $ref, which the validator does not wrap
        raise RegistryError.at(path, None, None, _reason(exc)) from None
    if problems:
        raise RegistryProblems(problems)
    return root


def _handlers(folder: Path) -> dict[str, Any]:
    def local(uri: str) -> Any:
        from jsonschema_path.handlers.file import FileHandler
        from jsonschema_path.handlers.utils import uri_to_path

        target = Path(uri_to_path(uri)).resolve()
        if not target.is_relative_to(folder):
            raise _Refused(f"$ref to {target} outside the document's folder is not followed")
        with target.open(encoding="utf-8") as stream:
            return FileHandler()(stream)

    def remote(uri: str) -> Any:
        raise _Refused(f"$ref to {_cut(uri, 100)} is not fetched: save it beside the document")

    return {"file": local, "http": remote, "https": remote}


def _reason(exc: BaseException) -> str:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, _Refused):
            return str(cause)
        cause = cause.__cause__ or cause.__context__
    ref = getattr(exc, "ref", None)
    if ref is not None:
        return f"$ref {_cut(str(ref), 100)} cannot be resolved"
    return f"cannot be read: {_cut(str(exc) or type(exc).__name__)}"


def _cut(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "…"


def _line(text: str, where: tuple[Any, ...]) -> int | None:
    """The line of the node at ``where`` (the deepest one found), from PyYAML's marks."""
    import yaml

    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except (yaml.YAMLError, RecursionError):
        return None
    line = None
    for part in where:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if found is None:
                break
            line = found[0].start_mark.line + 1
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


# -- the walk ------------------------------------------------------------------------------


class _Importer:
    def __init__(self, path: Path, spec: dict[str, Any], root: SchemaPath, name: str | None):
        info: dict[str, Any] = spec["info"] if isinstance(spec.get("info"), dict) else {}
        self.path = path
        self.spec = spec
        self.root = root
        self.title = str(info.get("title") or path.stem)
        self.version = str(info.get("version") or "")
        self.name = item_name(name or self.title, item_name(path.stem))
        self.env = env_prefix(self.name)
        self.warnings: list[str] = []

    def plan(self) -> Plan:
        endpoint, variables = self._endpoint()
        auth, profile = self._auth(endpoint)
        methods: dict[str, Any] = {}
        for operation_id, method in self._operations():
            key = _unique(_method_name(operation_id), methods)
            methods[key] = method
        if not methods:
            raise RegistryError.at(self.path, None, "paths", "the document has no operations")
        message: dict[str, Any] = {"name": self.name}
        if self.title:
            message["description"] = literal(_cut(self.title, 100))
        message["endpoint"] = endpoint
        if auth is not None:
            message["auth"] = auth
        message["headers"] = {"Accept": "application/json"}
        if variables:
            message["variables"] = variables
        message["methods"] = methods
        source = f"{self.path.name} ({_cut(self.title, 60)} {self.version}, OpenAPI {self.spec['openapi']})"
        files = [File("messages", self.name, message, self._header(source, methods))]
        if profile is not None:
            files.insert(0, File("profiles", self.name, profile, self._profile_header(source)))
        return Plan(files, self.warnings)

    def _header(self, source: str, methods: dict[str, Any]) -> list[str]:
        lines = [f"Imported by `oauthcli import openapi` from {source}.", "Try:"]
        for key in list(methods)[:3]:
            lines.append(f"  oauthcli send {self.name}.{key} --dry-run")
        return lines

    def _profile_header(self, source: str) -> list[str]:
        return [
            f"Imported by `oauthcli import openapi` from {source}.",
            f"Set {self.env}_CLIENT_ID and {self.env}_CLIENT_SECRET (or edit the keys)",
            f"before `oauthcli get-token {self.name}`.",
        ]

    # servers

    def _endpoint(self) -> tuple[str, dict[str, str]]:
        servers = self.spec.get("servers")
        server = servers[0] if isinstance(servers, list) and servers else {}
        url = str(server.get("url") or "/")
        variables: dict[str, str] = {}
        for var, body in (server.get("variables") or {}).items():
            if _VAR.fullmatch(var) and isinstance(body, dict) and "default" in body:
                variables[var] = literal(str(body["default"]))
        template = re.sub(
            r"\{([^{}]*)\}", lambda m: "${" + m.group(1) + "}", url.replace("${", "$${")
        )
        if not urlsplit(url).scheme:
            self.warnings.append(
                f"the server URL {url!r} is relative: set {self.env}_BASE_URL to the API's origin"
            )
            template = f"${{env:{self.env}_BASE_URL}}" + (
                "" if url == "/" else template.rstrip("/")
            )
        return template.rstrip("/"), variables

    # security

    def _auth(self, endpoint: str) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        schemes_path = self.root / "components" / "securitySchemes"
        if not schemes_path.exists():
            return None, None
        schemes: dict[str, dict[str, Any]] = {}
        for key, node in schemes_path.str_items():
            with node.open() as body:
                value = _plain(body)
            if isinstance(value, dict):
                schemes[key] = value
        order = self._used_schemes() + [k for k in schemes if k not in self._used_schemes()]
        wanted = {k: scopes for k, scopes in self._requirements()}
        base = endpoint if urlsplit(endpoint).scheme in ("http", "https") else ""
        for key in order:
            scheme = schemes.get(key)
            if scheme is None:
                continue
            kind = scheme.get("type")
            if kind == "oauth2":
                profile = self._oauth2_profile(scheme, wanted.get(key), base)
                if profile is not None:
                    return {"type": "oauth2", "profile": self.name}, profile
            elif kind == "openIdConnect" and scheme.get("openIdConnectUrl"):
                return {"type": "oauth2", "profile": self.name}, self._oidc_profile(
                    str(scheme["openIdConnectUrl"]), wanted.get(key)
                )
            elif kind == "http" and str(scheme.get("scheme", "")).lower() == "bearer":
                return {"type": "bearer", "token": f"${{env:{self.env}_TOKEN}}"}, None
            elif kind == "http" and str(scheme.get("scheme", "")).lower() == "basic":
                user, password = f"${{env:{self.env}_USERNAME}}", f"${{env:{self.env}_PASSWORD}}"
                return {"type": "basic", "username": user, "password": password}, None
            elif kind == "apiKey" and scheme.get("in") == "header":
                header = literal(str(scheme.get("name") or "X-Api-Key"))
                value = f"${{env:{self.env}_API_KEY}}"
                return {"type": "api_key", "header": header, "value": value}, None
            else:
                self.warnings.append(
                    f"security scheme {key!r} ({kind}) is not imported: add an auth block by hand"
                )
        return None, None

    def _requirements(self) -> Iterator[tuple[str, list[str]]]:
        requirements = list(self.spec.get("security") or [])
        for _, _, operation in self._raw_operations():
            requirements += operation.get("security") or []
        for requirement in requirements:
            if isinstance(requirement, dict):
                for key, scopes in requirement.items():
                    yield key, [str(s) for s in scopes or []]

    def _used_schemes(self) -> list[str]:
        return list(dict.fromkeys(k for k, _ in self._requirements()))

    def _oauth2_profile(
        self, scheme: dict[str, Any], wanted: list[str] | None, base: str
    ) -> dict[str, Any] | None:
        flows = scheme.get("flows") or {}
        for flow, grant in (
            ("clientCredentials", "client_credentials"),
            ("authorizationCode", "authorization_code"),
            ("password", "password"),
        ):
            body = flows.get(flow)
            if not isinstance(body, dict):
                continue
            profile: dict[str, Any] = {"name": self.name, "grant_type": grant}
            profile["token_url"] = self._url(body.get("tokenUrl"), base)
            if grant == "authorization_code":
                profile["authorization_url"] = self._url(body.get("authorizationUrl"), base)
                profile["redirect_url"] = _DEFAULT_REDIRECT
            self._client(profile)
            if grant == "password":
                profile["username"] = f"${{env:{self.env}_USERNAME}}"
                profile["password"] = f"${{env:{self.env}_PASSWORD}}"
            scopes = wanted or [str(s) for s in (body.get("scopes") or {})]
            if scopes:
                profile["scope"] = literal(" ".join(scopes))
            return profile
        if "implicit" in flows:
            self.warnings.append("the implicit flow is not supported (OAuth 2.0 Security BCP)")
        return None

    def _oidc_profile(self, url: str, wanted: list[str] | None) -> dict[str, Any]:
        issuer = re.sub(r"/\.well-known/openid-configuration/?$", "", url)
        profile: dict[str, Any] = {
            "name": self.name,
            "grant_type": "authorization_code",
            "issuer": literal(issuer),
            "redirect_url": _DEFAULT_REDIRECT,
        }
        self._client(profile)
        profile["scope"] = literal(" ".join(wanted or ["openid"]))
        return profile

    def _client(self, profile: dict[str, Any]) -> None:
        profile["client_id"] = f"${{env:{self.env}_CLIENT_ID}}"
        profile["client_secret"] = f"${{env:{self.env}_CLIENT_SECRET}}"

    def _url(self, url: Any, base: str) -> str:
        text = str(url or "")
        if not urlsplit(text).scheme and base:
            text = urljoin(base + "/", text)  # OpenAPI 3.1: relative to the server
        return literal(text)

    # operations

    def _raw_operations(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        paths = self.spec.get("paths") or {}
        for route, item in paths.items() if isinstance(paths, dict) else ():
            for verb in HTTP_METHODS:
                operation = item.get(verb) if isinstance(item, dict) else None
                if isinstance(operation, dict):
                    yield str(route), verb, operation

    def _operations(self) -> Iterator[tuple[str, dict[str, Any]]]:
        paths = self.root / "paths"
        if not paths.exists():
            return
        for route, item in paths.str_items():
            shared = self._parameters(item)
            for verb in HTTP_METHODS:
                op = item / verb
                if not op.exists():
                    continue
                parameters = {**shared, **self._parameters(op)}
                yield self._operation(route, verb, op, parameters)

    def _parameters(self, node: SchemaPath) -> dict[tuple[str, str], dict[str, Any]]:
        found = {}
        if (node / "parameters").exists():
            for _, parameter in (node / "parameters").items():
                with parameter.open() as body:
                    value = _plain(body)
                schema = parameter / "schema"
                if schema.exists():
                    with schema.open() as resolved:
                        value["schema"] = _plain(resolved)
                found[(str(value.get("in")), str(value.get("name")))] = value
        return found

    def _operation(
        self,
        route: str,
        verb: str,
        op: SchemaPath,
        parameters: dict[tuple[str, str], dict[str, Any]],
    ) -> tuple[str, dict[str, Any]]:
        with op.open() as body:
            operation = dict(body)
        operation_id = str(operation.get("operationId") or f"{verb}_{route}")
        method: dict[str, Any] = {}
        summary = operation.get("summary") or operation.get("description")
        names: dict[str, str] = {}  # a parameter's name → its variable's
        variables: dict[str, Any] = {}
        optional: list[str] = []
        path = route.replace("${", "$${")
        query: dict[str, str] = {}
        headers: dict[str, str] = {}
        for (where, pname), parameter in parameters.items():
            var = _unique(_var_name(pname), names.values())
            names[pname] = var
            value = _default(parameter)
            required = bool(parameter.get("required")) or where == "path"
            if where == "path":
                path = path.replace("{" + pname + "}", "${" + var + "}")
            elif where in ("query", "header"):
                if not required and value is None:
                    optional.append(f"{pname} ({where})")
                    continue
                target = query if where == "query" else headers
                target[literal(pname)] = "${" + var + "}"
            else:
                optional.append(f"{pname} ({where}, not imported)")
                continue
            if value is not None:
                variables[var] = value
        if summary:
            method["description"] = literal(_cut(str(summary).splitlines()[0], 100))
        if optional:
            note = f"optional, not sent: {', '.join(optional)}"
            method["description"] = (method.get("description", "") + f" ({note})").strip()
        method["http_method"] = verb.upper()
        method["path"] = path
        if query:
            method["query"] = query
        if headers:
            method["headers"] = headers
        self._body(op, method, variables, names)
        if variables:
            method["variables"] = variables
        return operation_id, method

    def _body(
        self,
        op: SchemaPath,
        method: dict[str, Any],
        variables: dict[str, Any],
        names: dict[str, str],
    ) -> None:
        content = op / "requestBody" / "content"
        if not content.exists():
            return
        types = list(content.str_keys())
        media = (
            next((t for t in types if _is_json(t)), None)
            or next((t for t in types if t.startswith("application/x-www-form-urlencoded")), None)
            or (types[0] if types else None)
        )
        if media is None:
            return
        node = content / media
        with node.open() as body:
            media_type = _plain(body)
        example = self._example(node, media_type)
        schema = _resolved(node / "schema", MAX_DEPTH)
        if _is_json(media):
            if example is not None:
                method["json"] = self._literal(example)
            elif isinstance(schema, dict):
                method["json"] = _template(schema, variables, names)
        elif media.startswith("application/x-www-form-urlencoded") and isinstance(schema, dict):
            form = _template(schema, variables, names)
            if isinstance(form, dict):
                method["form"] = {
                    k: v if isinstance(v, str) else json.dumps(v) for k, v in form.items()
                }
        elif isinstance(example, str):
            method["content"] = literal(example)
            method.setdefault("headers", {})["Content-Type"] = literal(media)
        else:
            self.warnings.append(f"a {media} request body is not imported: give it with --body")

    def _example(self, node: SchemaPath, media_type: dict[str, Any]) -> Any:
        if "example" in media_type:
            return media_type["example"]
        examples = node / "examples"
        if examples.exists():
            for _, example in examples.items():
                with example.open() as body:
                    if isinstance(body, dict) and "value" in body:
                        return _plain(body["value"])
        schema = _resolved(node / "schema", 1)
        if isinstance(schema, dict) and "example" in schema:
            return schema["example"]
        return None

    def _literal(self, value: Any) -> Any:
        try:
            return literal(value)
        except (ValueError, RecursionError):
            self.warnings.append("an example too large to copy was left out")
            return {}


def _plain(value: Any) -> Any:
    """A resolved node as plain dicts and lists (the accessor may hand out mappings)."""
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _resolved(node: SchemaPath, depth: int) -> Any:
    """The schema at ``node`` with its ``$ref``s followed ``depth`` levels deep."""
    if not node.exists():
        return None
    with node.open() as body:
        if not isinstance(body, dict) and not hasattr(body, "items"):
            return _plain(body)
        keys = list(body.keys())
    out: dict[str, Any] = {}
    for key in keys:
        child = node / key
        if depth > 0 and key in ("properties",):
            out[key] = {k: _resolved(node / key / k, depth - 1) for k in (node / key).str_keys()}
        elif depth > 0 and key in ("items", "additionalProperties") and (child).is_traversable():
            out[key] = _resolved(child, depth - 1)
        elif depth > 0 and key in ("allOf", "oneOf", "anyOf"):
            out[key] = [_resolved(child / i, depth - 1) for i, _ in enumerate(child.keys())]
        else:
            with child.open() as value:
                out[key] = _plain(value) if key not in ("properties", "items") else {}
    return out


def _template(schema: dict[str, Any], variables: dict[str, Any], names: dict[str, str]) -> Any:
    """A ``json:`` template from a schema: each top-level string property a variable
    (its example or default as the variable's value), everything else a typed value."""
    schema = _merged(schema)
    properties = schema.get("properties")
    if schema.get("type") not in (None, "object") or not isinstance(properties, dict):
        return _placeholder(schema, MAX_DEPTH)
    required = set(schema.get("required") or [])
    out: dict[str, Any] = {}
    for prop, sub in properties.items():
        sub = _merged(sub if isinstance(sub, dict) else {})
        if sub.get("readOnly"):
            continue
        if sub.get("type") == "string" and "enum" not in sub:
            var = _unique(_var_name(prop), list(names.values()) + list(variables))
            names[prop] = var
            out[literal(prop)] = "${" + var + "}"
            value = _default(sub)
            if value is not None:
                variables[var] = value
            elif prop not in required:
                variables[var] = _placeholder(sub, 0)
        else:
            out[literal(prop)] = _placeholder(sub, MAX_DEPTH)
    return out


def _merged(schema: dict[str, Any]) -> dict[str, Any]:
    """``allOf`` parts folded into one schema (their properties and required joined)."""
    parts = [p for p in schema.get("allOf") or [] if isinstance(p, dict)]
    if not parts:
        return schema
    out = {k: v for k, v in schema.items() if k != "allOf"}
    for part in map(_merged, parts):
        out.setdefault("properties", {}).update(part.get("properties") or {})
        out["required"] = list(out.get("required") or []) + list(part.get("required") or [])
        for key, value in part.items():
            out.setdefault(key, value)
    return out


def _placeholder(schema: Any, depth: int) -> Any:
    """A value of the schema's type, as Swagger UI's examples are: its example, default,
    first enum value, else ``"string"``, ``0``, ``true``, one item, each property."""
    if not isinstance(schema, dict):
        return None
    schema = _merged(schema)
    for key in ("example", "default"):
        if key in schema:
            return literal(schema[key])
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return literal(schema["enum"][0])
    for key in ("oneOf", "anyOf"):
        if isinstance(schema.get(key), list) and schema[key]:
            return _placeholder(schema[key][0], depth)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        props = schema.get("properties") if depth > 0 else None
        return {
            literal(k): _placeholder(v, depth - 1)
            for k, v in (props or {}).items()
            if not (isinstance(v, dict) and v.get("readOnly"))
        }
    if kind == "array":
        return [_placeholder(schema.get("items"), depth - 1)] if depth > 0 else []
    if kind == "integer":
        return 0
    if kind == "number":
        return 0.0
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return {
        "date-time": "2024-01-01T00:00:00Z",
        "date": "2024-01-01",
        "email": "user@example.com",
        "uuid": "00000000-0000-0000-0000-000000000000",
        "uri": "https://example.com",
    }.get(str(schema.get("format")), "string")


def _default(parameter: dict[str, Any]) -> str | None:
    """A parameter's (or property's) value when none is given: its example or default."""
    schema: dict[str, Any] = (
        parameter["schema"] if isinstance(parameter.get("schema"), dict) else {}
    )
    for source in (parameter, schema):
        for key in ("example", "default"):
            value = source.get(key)
            if value is not None and not isinstance(value, (dict, list)):
                text = str(value).lower() if isinstance(value, bool) else str(value)
                return literal(text)
    return None


def _is_json(media: str) -> bool:
    base = media.split(";")[0].strip().lower()
    return base == "application/json" or base.endswith("+json")


def _method_name(operation_id: str) -> str:
    """``listPets`` → ``list_pets``, ``get_/pets/{petId}`` → ``get_pets_pet_id``."""
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", operation_id)
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "call"


def _var_name(name: str) -> str:
    if _VAR.fullmatch(name):
        return name
    text = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_")
    return text if _VAR.fullmatch(text) else f"v_{text}" if text else "value"


def _unique(name: str, taken: Any) -> str:
    taken = set(taken)
    candidate, n = name, 2
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    return candidate
