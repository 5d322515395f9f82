from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest

from oauthcli.registry.templates import Env, File, MissingVariable, Template, TemplateError, Var


def test_parse_parts() -> None:
    t = Template.parse("a ${x} ${env:HOME_X:-d} ${file:k.pem} $${y} end")
    assert t.parts == (
        "a ",
        Var("x"),
        " ",
        Env("HOME_X", "d"),
        " ",
        File("k.pem"),
        " ",
        "${",
        "y} end",
    )
    assert t.variables == ["x"]
    assert not t.is_literal
    assert Template.parse("plain").is_literal


@pytest.mark.parametrize(
    "text, message",
    [
        ("${oops", "unterminated"),
        ("${foo:bar}", "unknown reference"),
        ("${ }", "bad variable name"),
        ("${env:1BAD}", "bad environment reference"),
        ("${file:}", "needs a path"),
    ],
)
def test_syntax_errors(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        Template.parse(text)


def test_unterminated_does_not_echo_the_value() -> None:
    with pytest.raises(TemplateError) as info:
        Template.parse("hunter2-secret${oops")
    assert "hunter2" not in str(info.value)


def test_env_default_and_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OAUTHCLI_T_UNSET", raising=False)
    monkeypatch.setenv("OAUTHCLI_T_EMPTY", "")
    assert Template.parse("${env:OAUTHCLI_T_UNSET:-fallback}").render() == "fallback"
    assert Template.parse("${env:OAUTHCLI_T_EMPTY:-fallback}").render() == "fallback"
    assert Template.parse("${env:OAUTHCLI_T_EMPTY}").render() == ""
    with pytest.raises(TemplateError, match="OAUTHCLI_T_UNSET is not set"):
        Template.parse("${env:OAUTHCLI_T_UNSET}").render()


def test_file_relative_to_yaml_and_trailing_newline(tmp_path: Path) -> None:
    (tmp_path / "key.txt").write_text("value\n")
    assert Template.parse("${file:key.txt}").render(base_dir=tmp_path) == "value"
    with pytest.raises(TemplateError, match="file missing.txt not found"):
        Template.parse("${file:missing.txt}").render(base_dir=tmp_path)


def test_file_home_expansion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "k").write_text("home-value")
    assert Template.parse("${file:~/k}").render(base_dir=Path("/nonexistent")) == "home-value"


def test_values_are_never_expanded_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHCLI_T_X", "${env:HOME}")
    rendered = Template.parse("${v}|${env:OAUTHCLI_T_X}").render({"v": "${other}"})
    assert rendered == "${other}|${env:HOME}"


def test_encode_applies_to_call_variables_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHCLI_T_BASE", "http://h/a b")
    t = Template.parse("${env:OAUTHCLI_T_BASE}/${id}")
    assert t.render({"id": "a/b c"}, encode=lambda v: quote(v, safe="")) == "http://h/a b/a%2Fb%20c"


def test_missing_variable_names_itself() -> None:
    with pytest.raises(MissingVariable, match="variable 'sys_id' has no value"):
        Template.parse("/${sys_id}").render({})
