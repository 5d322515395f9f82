"""The one declaration of registry keys, and everything derived from it.

Each test here fails when something that should follow the declaration
(``oauthcli/registry/declaration.py``) drifts from it: the models, the checks
``validate`` runs, ``show``, the resolved profile, the README reference, the
grant table of ``oauthcli.tokens.grants``.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oauthcli.registry import declaration as decl
from oauthcli.registry import models, reference
from oauthcli.registry.discovery import Registry
from oauthcli.request.resolve import resolve_profile
from oauthcli.request.resolved import ResolvedProfile
from oauthcli.secret import Secret
from tests.clirun import run
from tests.registry_factory import make_registry

ROOT = Path(__file__).resolve().parent.parent

PLAIN = {"name", "source", "key_lines"}  # Profile fields that are not keys of the file


def names(keys: tuple[decl.Key, ...]) -> list[str]:
    return [k.name for k in decl.top(keys)]


def fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


# --- the declaration itself ------------------------------------------------


@pytest.mark.parametrize("keys", [decl.PROFILE, decl.MESSAGE, decl.METHOD, decl.AUTH])
def test_every_key_is_whole(keys: tuple[decl.Key, ...]) -> None:
    seen = set()
    for key in keys:
        assert key.name not in seen, f"{key.name} declared twice"
        seen.add(key.name)
        assert decl.json_type(key), key
        assert key.meaning.endswith((".", ")")) and key.meaning[0].isupper(), key
        if "." in key.name:  # a block's key follows its block
            parent = key.name.rpartition(".")[0]
            assert parent in seen or keys is decl.AUTH, key
        for on, value in (*key.required_if, *key.only_if):
            decider = next(k for k in (*keys, *decl.AUTH) if k.leaf == on)
            assert value in decider.choices, (key, on, value)
        if key.choices and key.default is not None:
            assert key.default in key.choices, key


def test_secret_keys_are_the_credentials() -> None:
    secret = {k.name for k in (*decl.PROFILE, *decl.AUTH) if k.secret}
    assert secret == {
        "client_secret",
        "private_key",
        "password",
        "refresh_token",
        "assertion",
        "subject_token",
        "actor_token",
        "client_assertion",
        "auth.password",
        "auth.token",
        "auth.value",
    }


def test_requirement_tables() -> None:
    assert decl.GRANT_REQUIRES == {
        "client_credentials": (),
        "password": ("username", "password"),
        "refresh_token": ("refresh_token",),
        "jwt_bearer": ("assertion",),
        "authorization_code": ("authorization_url", "redirect_url"),
        "device_code": ("device_authorization_url",),
        "token_exchange": ("subject_token",),
    }
    assert decl.CLIENT_AUTH_REQUIRES == {
        "client_secret_basic": ("client_secret",),
        "client_secret_post": ("client_secret",),
        "private_key_jwt": ("private_key",),
        "client_secret_jwt": ("client_secret",),
        "none": (),
        "client_assertion": ("client_assertion",),
    }
    assert decl.AUTH_REQUIRES == {
        "oauth2": ("profile",),
        "basic": ("username", "password"),
        "bearer": ("token",),
        "api_key": ("value",),
        "none": (),
    }


def test_the_declaration_holds_what_a_json_schema_needs() -> None:
    for key in (*decl.PROFILE, *decl.MESSAGE, *decl.METHOD, *decl.AUTH):
        assert decl.json_type(key)
        if key.kind in ("integer", "number"):
            assert key.maximum is not None and key.minimum is not None, key
        if key.kind == "choice":
            assert key.choices, key


def test_grant_names_match_the_token_code() -> None:
    """The declaration's grant_type and client_auth values are those the token code runs
    (``oauthcli.tokens.grants.GRANTS`` and ``CLIENT_AUTHS``, name → how Authlib is called)."""
    from oauthcli.tokens import grants

    assert tuple(grants.GRANTS) == decl.GRANT_TYPES
    assert set(grants.CLIENT_AUTHS) == set(decl.CLIENT_AUTHS)


def test_the_declaration_imports_nothing_heavy() -> None:
    code = (
        "import sys, oauthcli.registry.declaration as d\n"
        "loaded = [m for m in sys.modules if m.startswith(('yaml', 'requests', 'authlib', "
        "'typer', 'rich'))]\n"
        "print(loaded)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"


# --- the models follow it --------------------------------------------------


def test_models_have_a_field_per_declared_key() -> None:
    assert fields(models.Profile) - PLAIN == set(names(decl.PROFILE)) - {"name"}
    assert fields(models.Settings) == set(names(decl.SETTINGS))
    method = set(names(decl.METHOD)) - set(names(decl.SETTINGS))
    assert method <= fields(models.Method)
    assert fields(models.TLS) == {k.leaf for k in decl.children(decl.PROFILE, "tls")}
    assert fields(models.Retry) == {k.leaf for k in decl.children(decl.SETTINGS, "retry")}
    assert fields(models.Auth) - {"line"} == {k.leaf for k in decl.AUTH}


def _unknown_hint(tmp_path: Path, kind: str, text: str) -> str:
    make_registry(tmp_path, {f"{kind}/x.yaml": text})
    result = run("-r", str(tmp_path), "validate")
    assert result.code == 3, result.both
    return result.out


def test_unknown_key_lists_the_declared_keys_in_order(tmp_path: Path) -> None:
    err = _unknown_hint(tmp_path, "profiles", "zzzzzz: 1\n")
    assert f"expected one of: {', '.join(names(decl.PROFILE))}" in err
    err = _unknown_hint(
        tmp_path, "messages", "endpoint: http://127.0.0.1/x\nmethods: {a: {zzzzzz: 1}}\n"
    )
    assert f"expected one of: {', '.join(names(decl.METHOD))}" in err
    err = _unknown_hint(tmp_path, "messages", "endpoint: http://127.0.0.1/x\nzzzzzz: 1\n")
    assert f"expected one of: {', '.join(names(decl.MESSAGE))}" in err


@pytest.mark.parametrize("grant", [g for g, keys in decl.GRANT_REQUIRES.items() if keys])
def test_each_grant_requires_its_declared_keys(tmp_path: Path, grant: str) -> None:
    make_registry(
        tmp_path,
        {
            "profiles/p.yaml": f"grant_type: {grant}\ntoken_url: http://127.0.0.1/t\n"
            "client_id: c\nclient_auth: none\n"
        },
    )
    result = run("-r", str(tmp_path), "validate")
    assert result.code == 3
    for key in decl.GRANT_REQUIRES[grant]:
        assert f"{key}: missing; grant_type {grant} needs it" in result.out


@pytest.mark.parametrize("client_auth", [c for c, ks in decl.CLIENT_AUTH_REQUIRES.items() if ks])
def test_each_client_auth_requires_its_declared_keys(tmp_path: Path, client_auth: str) -> None:
    make_registry(
        tmp_path,
        {
            "profiles/p.yaml": "grant_type: client_credentials\n"
            f"token_url: http://127.0.0.1/t\nclient_id: c\nclient_auth: {client_auth}\n"
        },
    )
    result = run("-r", str(tmp_path), "validate")
    assert result.code == 3
    for key in decl.CLIENT_AUTH_REQUIRES[client_auth]:
        assert f"{key}: missing; client_auth {client_auth} needs it" in result.out


@pytest.mark.parametrize("kind", [t for t, ks in decl.AUTH_REQUIRES.items() if ks])
def test_each_auth_type_requires_its_declared_keys(tmp_path: Path, kind: str) -> None:
    make_registry(
        tmp_path,
        {"messages/m.yaml": f"endpoint: http://127.0.0.1/x\nauth: {{type: {kind}}}\n"},
    )
    result = run("-r", str(tmp_path), "validate")
    assert result.code == 3
    for key in decl.AUTH_REQUIRES[kind]:
        assert f"{key}: missing; auth type {kind} needs it" in result.out


# --- every profile key reaches the resolved profile and show ---------------


# Each profile of a grant_type and client_auth holds every key that has meaning there (a
# key's only_if); together they write every declared key.
FULL_PROFILES = (("authorization_code", "private_key_jwt"), ("token_exchange", "client_assertion"))


def _allowed(key: decl.Key, grant_type: str, client_auth: str) -> bool:
    chosen = {"grant_type": grant_type, "client_auth": client_auth}
    return not key.only_if or any(chosen[on] == value for on, value in key.only_if)


def _value_for(
    key: decl.Key,
    tmp_path: Path,
    grant_type: str = "authorization_code",
    client_auth: str = "private_key_jwt",
) -> Any:
    """A value to write for ``key`` that a full profile of that grant and client auth accepts."""
    if key.name == "grant_type":
        return grant_type
    if key.name == "client_auth":
        return client_auth
    if key.name == "signing_alg":
        return "ES256"
    if key.name == "token_scheme":
        return "MAC"
    if key.name.startswith("tls.") and key.kind == "template":
        path = tmp_path / f"{key.leaf}.pem"
        path.write_text("pem\n")
        return str(path)
    if key.url:
        return f"http://127.0.0.1:9/{key.name}"
    if key.kind == "words":
        return [f"w1-{key.name}", f"w2-{key.name}"]
    if key.kind == "map":
        return {"k": f"v-{key.name}"}
    if key.kind == "integer":
        return 1234
    if key.kind == "number":
        return 12.5
    if key.kind == "boolean":
        return not key.default
    if key.kind == "level":
        return key.choices[-1]
    assert key.kind in ("template", "string", "assertion"), key
    return f"v-{key.name}"


def _full_profile(
    tmp_path: Path, grant_type: str = "authorization_code", client_auth: str = "private_key_jwt"
) -> tuple[Path, dict[str, Any]]:
    values = {
        k.name: _value_for(k, tmp_path, grant_type, client_auth)
        for k in decl.PROFILE
        if k.kind != "mapping" and k.name != "name" and _allowed(k, grant_type, client_auth)
    }
    lines = ["name: full"]
    for name, value in values.items():
        head, _, leaf = name.rpartition(".")
        if head and f"{head}:" not in lines:
            lines.append(f"{head}:")
        indent = "  " if head else ""
        written = repr(value) if isinstance(value, (list, dict)) else value
        if isinstance(value, bool):
            written = str(value).lower()
        lines.append(f"{indent}{leaf or name}: {written}")
    root = make_registry(tmp_path, {"profiles/full.yaml": "\n".join(lines) + "\n"})
    return root, values


def test_the_full_profiles_together_write_every_declared_profile_key() -> None:
    written = {
        k.name for grant, auth in FULL_PROFILES for k in decl.PROFILE if _allowed(k, grant, auth)
    }
    assert written == {k.name for k in decl.PROFILE}


@pytest.mark.parametrize(("grant_type", "client_auth"), FULL_PROFILES)
def test_every_declared_profile_key_reaches_the_resolved_profile(
    tmp_path: Path, grant_type: str, client_auth: str
) -> None:
    root, values = _full_profile(tmp_path, grant_type, client_auth)
    resolved = resolve_profile(Registry(root).profile("full"))
    assert resolved.name == "full"
    for name, written in values.items():
        got: Any = resolved
        for part in name.split("."):
            got = getattr(got, part)
        if isinstance(got, Secret):
            got = got.reveal()
        if isinstance(written, list):
            written = tuple(written)
        assert got == written, name
    declared = set(names(decl.PROFILE)) - {"tls"}
    assert declared <= fields(ResolvedProfile), declared - fields(ResolvedProfile)


@pytest.mark.parametrize(("grant_type", "client_auth"), FULL_PROFILES)
def test_show_lists_every_declared_profile_key_in_order_secrets_masked(
    tmp_path: Path, grant_type: str, client_auth: str
) -> None:
    root, values = _full_profile(tmp_path, grant_type, client_auth)
    result = run("-r", str(root), "show", "full")
    assert result.code == 0, result.both
    shown = [line.split(":", 1)[0] for line in result.out.splitlines()]
    # and the keys with a default; not those of another grant (subject_token_type)
    chosen = {"grant_type": grant_type, "client_auth": client_auth}
    defaults = [
        k.name
        for k in decl.PROFILE
        if k.default not in (None, False, ())
        and k.name != "name"
        and (not k.only_if or any(chosen[on] == want for on, want in k.only_if))
    ]
    expected = [k.name for k in decl.PROFILE if k.name in values or k.name in defaults]
    assert shown == ["profile", "file", *expected]
    by_key = {line.split(":", 1)[0]: line for line in result.out.splitlines()}
    for key in decl.PROFILE:
        if key.name in values and key.secret:
            assert by_key[key.name].endswith(" ****"), key.name
            assert str(values[key.name]) not in result.both
    assert by_key["tls.client_key"].endswith("client_key.pem")


@pytest.mark.parametrize("key", [k for k in decl.PROFILE if k.only_if], ids=lambda k: k.name)
def test_a_key_written_where_it_has_no_meaning_is_a_registry_error(
    tmp_path: Path, key: decl.Key
) -> None:
    """Every key with only_if, written on a profile whose grant_type/client_auth is none of
    those: one line naming the file, the key's line and what it is used with (exit 3)."""
    on = key.only_if[0][0]
    allowed = {value for _, value in key.only_if}
    choices = decl.GRANT_TYPES if on == "grant_type" else decl.CLIENT_AUTHS
    other = next(
        value
        for value in ("client_credentials", "client_secret_basic", *choices)
        if value in choices and value not in allowed
    )
    lines = [
        "client_id: c",
        "client_secret: s",
        "token_url: http://127.0.0.1:9/token",
        f"{on}: {other}",
        f"{key.leaf}: {_value_for(key, tmp_path)}",
    ]
    if key.name == "actor_token":
        lines.append("actor_token_type: urn:ietf:params:oauth:token-type:access_token")
    root = make_registry(tmp_path, {"profiles/p.yaml": "\n".join(lines) + "\n"})
    result = run("-r", str(root), "validate")
    used = " or ".join(value for _, value in key.only_if)
    assert result.code == 3, result.both
    assert f"p.yaml:5: {key.leaf}: only used with {on} {used}" in result.both
    assert "Traceback" not in result.both


def test_a_wrong_grant_type_decides_no_only_if(tmp_path: Path) -> None:
    """A misspelt grant_type has its own line; subject_token is not also refused for it."""
    root = make_registry(
        tmp_path,
        {
            "profiles/p.yaml": (
                "client_id: c\ntoken_url: http://127.0.0.1:9/token\ngrant_type: token_exchang\n"
                "subject_token: x\n"
            )
        },
    )
    result = run("-r", str(root), "validate")
    assert result.code == 3 and "grant_type: 'token_exchang' is not one of" in result.both
    assert "only used with" not in result.both


def test_signing_alg_line_is_unchanged(tmp_path: Path) -> None:
    root = make_registry(
        tmp_path,
        {
            "profiles/p.yaml": (
                "client_id: c\nclient_secret: s\ntoken_url: http://127.0.0.1:9/token\n"
                "signing_alg: ES256\n"
            )
        },
    )
    result = run("-r", str(root), "validate")
    assert result.code == 3
    assert (
        "p.yaml:4: signing_alg: only used with client_auth private_key_jwt or "
        "client_secret_jwt" in result.both
    )


# --- the README reference --------------------------------------------------


def test_readme_reference_is_the_declaration() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(reference.MARK_START)
    end = readme.index(reference.MARK_END) + len(reference.MARK_END) + 1
    assert readme[start:end] == reference.markdown(), (
        "README.md's key reference differs from oauthcli/registry/declaration.py: "
        "paste the output of `python -m oauthcli.registry.reference --markdown` "
        "between its markers"
    )


def test_markdown_command() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "oauthcli.registry.reference", "--markdown"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout == reference.markdown()
    wrong = subprocess.run(
        [sys.executable, "-m", "oauthcli.registry.reference"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert wrong.returncode == 2 and "usage:" in wrong.stderr


# --- the JSON Schema ---------------------------------------------------------


def _errors(schema: dict[str, Any], value: Any, at: str = "") -> list[str]:
    """The subset of draft 2020-12 the generated schema uses (no library needed)."""
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{at}: not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{at}: not {schema['const']}")
    if isinstance(value, dict):
        for name in schema.get("required", ()):
            if name not in value:
                errors.append(f"{at}.{name}: missing")
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            if name in props:
                errors += _errors(props[name], item, f"{at}.{name}")
            elif extra is False:
                errors.append(f"{at}.{name}: unknown")
            elif isinstance(extra, dict):
                errors += _errors(extra, item, f"{at}.{name}")
        if "propertyNames" in schema:
            errors += [
                f"{at}.{n}: unknown" for n in value if n not in schema["propertyNames"]["enum"]
            ]
    for rule in schema.get("allOf", ()):
        if "if" not in rule:
            errors += _errors(rule, value, at)
        elif not _errors(rule["if"], value, at):
            errors += _errors(rule["then"], value, at)
    if "not" in schema and not _errors(schema["not"], value, at):
        errors.append(f"{at}: matches what it must not")
    if "anyOf" in schema and all(_errors(s, value, at) for s in schema["anyOf"]):
        errors.append(f"{at}: matches none of {schema['anyOf']}")
    return errors


def _yaml(path: Path) -> Any:
    import yaml

    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize("kind", ["profile", "message"])
def test_json_schema_covers_every_declared_key(kind: str) -> None:
    schema = reference.json_schema(kind)
    keys = decl.PROFILE if kind == "profile" else decl.MESSAGE
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert list(schema["properties"]) == names(keys)
    assert schema["additionalProperties"] is False
    assert list(schema["properties"]["tls"]["properties"]) == [
        "verify",
        "ca_bundle",
        "client_cert",
        "client_key",
    ]
    json.dumps(schema)  # plain JSON


def test_json_schema_accepts_the_example_registry() -> None:
    for kind, folder in (("profile", "profiles"), ("message", "messages")):
        schema = reference.json_schema(kind)
        for path in sorted((ROOT / folder).glob("*.yaml")):
            assert _errors(schema, _yaml(path)) == [], path


@pytest.mark.parametrize(
    ("kind", "text", "problem"),
    [
        (
            "profile",
            "grant_type: password\ntoken_url: u\nclient_id: c\nclient_secret: s\n",
            ".username: missing",
        ),
        (
            "profile",
            "grant_type: client_credentials\ntoken_url: u\nclient_id: c\n",
            ".client_secret: missing",
        ),
        (
            "profile",
            "grant_type: nope\ntoken_url: u\nclient_id: c\nclient_auth: none\n",
            ".grant_type: not one of",
        ),
        (
            "profile",
            "grant_type: client_credentials\ntoken_url: u\nclient_id: c\nclient_auth: none\nscopes: x\n",
            ".scopes: unknown",
        ),
        ("message", "endpoint: u\nauth: {type: basic, username: u}\n", ".auth.password: missing"),
        (
            "message",
            "endpoint: u\nauth: {type: bearer, token: t, header: X}\n",
            ".auth.header: unknown",
        ),
        (
            "message",
            "endpoint: u\nmethods: {a: {tls: {verfy: true}}}\n",
            ".methods.a.tls.verfy: unknown",
        ),
    ],
)
def test_json_schema_refuses_what_validate_refuses(kind: str, text: str, problem: str) -> None:
    import yaml

    errors = _errors(reference.json_schema(kind), yaml.safe_load(text))
    assert any(e.startswith(problem) for e in errors), errors


def test_an_empty_string_is_kept_as_written_not_replaced_by_the_default(tmp_path: Path) -> None:
    make_registry(
        tmp_path,
        {"messages/m.yaml": 'endpoint: http://127.0.0.1:9/x\nauth: {type: oauth2, profile: ""}\n'},
    )
    result = run("-r", str(tmp_path), "send", "m", "--dry-run")
    assert result.code == 3 and "auth.profile: no profile named ''" in result.err, result.both
