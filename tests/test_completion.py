"""``oauthcli completion bash|zsh|fish`` and what a shell is offered through it.

The scripts are click's (as typer ships them); a shell runs ``oauthcli`` again with
``_OAUTHCLI_COMPLETE=complete_SHELL`` and the words typed so far. These tests speak that
protocol as each shell's script does, and run the bash script's own function in bash.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cliproc import Done, oauthcli
from tests.clirun import run, run_watching
from tests.registry_factory import MESSAGE, PROFILE, make_registry

INCIDENTS = """\
endpoint: http://127.0.0.1:9/api/incidents
auth: {type: oauth2, profile: acme}
methods:
  list: {http_method: GET}
  get: {path: "/${sys_id}"}
  create: {http_method: POST, json: {a: b}}
"""


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    return make_registry(
        tmp_path / "reg",
        {
            "profiles/acme.yaml": PROFILE,
            "profiles/acme-prod.yaml": PROFILE,
            "profiles/other.yaml": "name: beta\n" + PROFILE,
            "messages/incidents.yaml": INCIDENTS,
            "messages/items.yaml": MESSAGE,
            "messages/users.yaml": "endpoint: http://127.0.0.1:9/u\n",
            "environments/dev.yaml": "variables: {base: http://127.0.0.1:9}\n",
            "environments/prod.yaml": "variables: {base: http://127.0.0.1:9}\n",
        },
    )


def bash(
    line: str,
    registry: Path | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> list[str]:
    """The candidates for the last word of ``line`` (a trailing space: a new word), as
    bash's script asks for them."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    done = complete(
        {"_OAUTHCLI_COMPLETE": "complete_bash", "COMP_WORDS": line, "COMP_CWORD": str(cword)},
        registry,
        env,
        cwd,
    )
    return [word for word in done.out.splitlines() if word]


def complete(
    protocol: dict[str, str],
    registry: Path | None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Done:
    full = {**protocol, **(env or {})}
    if registry is not None:
        full["OAUTHCLI_REGISTRY"] = str(registry)
    if cwd is not None:
        done = subprocess.run(
            [sys.executable, "-m", "oauthcli"],
            capture_output=True,
            env={**os.environ, **full, "PYTHONPATH": str(Path(__file__).parent.parent)},
            cwd=cwd,
            timeout=30,
            check=False,
        )
        result = Done((), done.returncode, done.stdout, done.stderr.decode(), 0)
    else:
        result = oauthcli(env=full)
    assert result.code == 0 and result.err == "", result
    return result


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script_of_each_shell(shell: str) -> None:
    done = oauthcli("completion", shell)
    assert done.code == 0 and done.err == "", done
    assert f"_OAUTHCLI_COMPLETE=complete_{shell}" in done.out
    assert done.out.endswith("\n") and "oauthcli" in done.out


def test_an_unknown_shell_is_a_usage_error() -> None:
    done = oauthcli("completion", "tcsh")
    assert done.code == 2 and done.out == "", done
    assert done.err.strip() == "error: completion takes bash, zsh, fish, not 'tcsh'"


def test_commands_and_options(registry: Path) -> None:
    assert bash("oauthcli s", registry) == ["show", "send", "sandbox", "schema"]
    assert "completion" in bash("oauthcli ", registry)
    options = bash("oauthcli send --d", registry)
    assert options == ["--dry-run"]
    assert {"--registry", "--env", "--no-color"} <= set(bash("oauthcli --", registry))


def test_messages_and_their_methods(registry: Path) -> None:
    assert bash("oauthcli send ", registry) == ["incidents", "items", "users"]
    assert bash("oauthcli send inc", registry) == [
        "incidents",
        "incidents.list",
        "incidents.get",
        "incidents.create",
    ]
    assert bash("oauthcli send incidents.", registry) == [
        "incidents.list",
        "incidents.get",
        "incidents.create",
    ]
    assert bash("oauthcli send incidents.c", registry) == ["incidents.create"]
    assert bash("oauthcli send i", registry) == ["incidents", "items"]
    assert bash("oauthcli send users", registry) == ["users", "users.default"]
    assert bash("oauthcli send nope", registry) == []


def test_the_method_option_completes_the_typed_message_s_methods(registry: Path) -> None:
    assert bash("oauthcli send incidents -m ", registry) == ["list", "get", "create"]
    assert bash("oauthcli send incidents --json --method g", registry) == ["get"]
    assert bash("oauthcli send -m ", registry) == []
    assert bash("oauthcli send nope -m ", registry) == []


def test_profiles_environments_and_shown_names(registry: Path) -> None:
    assert bash("oauthcli get-token acme", registry) == ["acme", "acme-prod"]
    assert bash("oauthcli get-token b", registry) == ["beta"]  # its name: line, not its file
    assert bash("oauthcli token revoke ", registry) == ["acme", "acme-prod", "beta"]
    assert bash("oauthcli token clear a", registry) == ["acme", "acme-prod"]
    assert bash("oauthcli -e ", registry) == ["dev", "prod"]
    assert bash("oauthcli --env p", registry) == ["prod"]
    assert bash("oauthcli show i", registry) == ["incidents", "items"]
    assert bash("oauthcli show a", registry) == ["acme", "acme-prod"]
    assert bash("oauthcli doctor a", registry) == ["acme", "acme-prod"]
    assert bash("oauthcli doctor incidents.", registry) == [
        "incidents.create",
        "incidents.get",
        "incidents.list",
    ]
    assert bash("oauthcli list ", registry) == ["profiles", "messages", "environments"]
    assert bash("oauthcli schema ", registry) == ["profile", "message", "environment"]
    assert bash("oauthcli completion ", registry) == ["bash", "zsh", "fish"]


def test_send_profile_option_completes_profiles(registry: Path) -> None:
    offered = bash("oauthcli send items --profile acme", registry)
    if offered == [] and "--profile" not in bash("oauthcli send --p", registry):
        pytest.skip("send has no --profile option yet")
    assert offered == ["acme", "acme-prod"]


def test_the_registry_is_found_as_the_command_would(registry: Path, tmp_path: Path) -> None:
    assert bash(f"oauthcli -r {registry} send us") == ["users", "users.default"]
    assert bash(f"oauthcli --registry {registry} get-token be") == ["beta"]
    assert bash("oauthcli send us", cwd=registry) == ["users", "users.default"]  # the cwd
    # -r beats OAUTHCLI_REGISTRY, as it does for every command
    other = make_registry(tmp_path / "other", {"messages/items2.yaml": MESSAGE})
    assert bash(f"oauthcli -r {other} send it", registry) == ["items2", "items2.list"]


def test_no_registry_offers_nothing_and_says_nothing(tmp_path: Path) -> None:
    assert bash("oauthcli send ", tmp_path / "missing") == []
    assert bash("oauthcli send ", cwd=tmp_path) == []
    assert bash("oauthcli send ", tmp_path) == []  # a folder without profiles/ or messages/


def test_names_come_from_the_name_lines_not_from_parsing_every_file(registry: Path) -> None:
    (registry / "messages" / "broken.yaml").write_text("name: broken\nendpoint: [unclosed\n")
    assert bash("oauthcli send b", registry) == ["broken"]  # named, though it does not parse
    assert bash("oauthcli send broken.", registry) == []  # its methods need the file: none
    assert bash("oauthcli send broken -m ", registry) == []
    assert bash("oauthcli send inc", registry)[1:] == [
        "incidents.list",
        "incidents.get",
        "incidents.create",
    ]


def test_a_name_that_is_not_one_plain_word_is_never_offered(registry: Path) -> None:
    """zsh's script evals what it is given; the registry may be someone else's."""
    hostile = {
        "evil1.yaml": 'name: "x$(touch PWNED)"\nendpoint: http://127.0.0.1:9/\n',
        "evil2.yaml": "name: \"x'; touch PWNED; '\"\nendpoint: http://127.0.0.1:9/\n",
        "evil3.yaml": 'name: "x`touch PWNED`"\nendpoint: http://127.0.0.1:9/\n',
        "evil4.yaml": 'name: "x y"\nendpoint: http://127.0.0.1:9/\n',
        "evil5.yaml": "name: xok\nendpoint: http://127.0.0.1:9/\nmethods: {'a;b': {}, 'c d': {}, ok: {}}\n",
    }
    for name, text in hostile.items():
        (registry / "messages" / name).write_text(text)
    assert bash("oauthcli send x", registry) == ["xok", "xok.ok"]
    zsh = complete(
        {"_OAUTHCLI_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "oauthcli send x"}, registry
    )
    assert "PWNED" not in zsh.out and "xok.ok" in zsh.out


def test_zsh_and_fish_protocols(registry: Path) -> None:
    zsh = complete(
        {"_OAUTHCLI_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": "oauthcli send incidents."},
        registry,
    )
    assert zsh.out.startswith("_arguments") and '"incidents.get"' in zsh.out
    fish = complete(
        {
            "_OAUTHCLI_COMPLETE": "complete_fish",
            "_TYPER_COMPLETE_FISH_ACTION": "get-args",
            "_TYPER_COMPLETE_ARGS": "oauthcli get-token acme",
        },
        registry,
    )
    assert fish.out.split() == ["acme", "acme-prod"]


def test_the_bash_script_s_own_function_completes(registry: Path, tmp_path: Path) -> None:
    """Source the script in bash and call its function as bash's ``complete -F`` would."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    shim = bindir / "oauthcli"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m oauthcli "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IEXEC)
    script = tmp_path / "oauthcli.bash"
    script.write_text(run("completion", "bash").out)
    program = (
        f"source {script}\n"
        "complete -p oauthcli\n"
        "COMP_WORDS=(oauthcli send inc); COMP_CWORD=2\n"
        "_oauthcli_completion oauthcli\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        [shutil.which("bash") or "bash", "--norc", "--noprofile", "-c", program],
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "PATH": f"{bindir}:{os.environ['PATH']}",
            "OAUTHCLI_REGISTRY": str(registry),
            "PYTHONPATH": str(Path(__file__).parent.parent),
        },
        timeout=30,
        check=False,
    )
    assert done.returncode == 0 and done.stderr == "", done
    first, *candidates = done.stdout.splitlines()
    assert first == "complete -o default -F _oauthcli_completion oauthcli"
    assert candidates == ["incidents", "incidents.list", "incidents.get", "incidents.create"]


def test_send_does_not_load_the_completion_or_schema_code(registry: Path) -> None:
    probed = run_watching(
        ("oauthcli.cli.completion", "oauthcli.cli.schema", "oauthcli.registry.reference"),
        "-r",
        str(registry),
        "send",
        "items.list",
        "--dry-run",
    )
    assert probed.code == 0, probed
    assert probed.loaded == []


def test_an_alias_bomb_message_offers_its_name_only_and_quickly(registry: Path) -> None:
    bomb = "name: bomb\nendpoint: http://127.0.0.1:9/\na: &a [x, x, x, x, x, x, x, x, x]\n"
    previous = "a"
    for name in "bcdefghi":
        bomb += f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
        previous = name
    (registry / "messages" / "bomb.yaml").write_text(bomb)
    assert bash("oauthcli send bo", registry) == ["bomb"]
    assert bash("oauthcli send bomb.", registry) == []


def test_words_a_shell_left_unbalanced_still_complete(registry: Path) -> None:
    assert bash('oauthcli send "inc', registry)[:1] == ["incidents"]
    assert bash("oauthcli send 'it", registry) == ["items", "items.list"]


def test_schema_and_completion_to_a_full_disk_say_so(registry: Path) -> None:
    for args in (("schema", "profile"), ("completion", "zsh")):
        done = oauthcli(*args, prefix=("sh", "-c", '"$@" >/dev/full', "-"))
        assert done.code == 1, done
        assert done.err.strip() == "error: cannot write to standard output: No space left on device"
