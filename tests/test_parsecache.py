"""The parse cache: used only for the same bytes, and never an error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from oauthcli.errors import RegistryError
from oauthcli.registry import parsecache, yamlsrc
from oauthcli.registry.discovery import Registry
from tests.clirun import run_watching
from tests.registry_factory import make_registry

MESSAGE = """\
endpoint: https://api.example.test/things
headers: {X-Team: blue}
variables: {limit: 012345}
methods:
  list: {query: {limit: "${limit}"}}
"""


def entries(cache: Path) -> list[Path]:
    folder = cache / "parsed"
    return sorted(folder.glob("*.marshal")) if folder.is_dir() else []


def test_a_second_load_is_the_same_document_without_parsing(
    tmp_path: Path, isolated_oauthcli: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MESSAGE)
    first = yamlsrc.load(path)
    assert len(entries(isolated_oauthcli)) == 1

    def no_parsing(text: str, where: Path) -> yamlsrc.Document:
        raise AssertionError("parsed again")

    monkeypatch.setattr("oauthcli.registry.yamlparse.parse", no_parsing)
    again = yamlsrc.load(path)
    assert (again.data, again.lines, again.scalars) == (first.data, first.lines, first.scalars)
    assert again.scalars[("variables", "limit")] == "012345"
    assert again.line(("methods", "list", "query")) == 5


def test_an_edit_is_seen_even_with_the_same_size_and_time(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MESSAGE)
    stat = path.stat()
    assert yamlsrc.load(path).data["headers"] == {"X-Team": "blue"}
    path.write_text(MESSAGE.replace("blue", "pink"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and path.stat().st_mtime_ns == stat.st_mtime_ns
    assert yamlsrc.load(path).data["headers"] == {"X-Team": "pink"}


@pytest.mark.parametrize("junk", [b"", b"not marshal", b"\xe9\x00\x00\x00"])
def test_a_corrupt_entry_is_a_miss(tmp_path: Path, isolated_oauthcli: Path, junk: bytes) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MESSAGE)
    yamlsrc.load(path)
    (entry,) = entries(isolated_oauthcli)
    entry.write_bytes(junk)
    assert yamlsrc.load(path).data["endpoint"] == "https://api.example.test/things"
    assert entry.read_bytes() != junk  # written again


def test_a_damaged_entry_is_never_unmarshalled(tmp_path: Path, isolated_oauthcli: Path) -> None:
    """marshal can crash the interpreter on damaged input: the digest is checked first."""
    path = tmp_path / "m.yaml"
    path.write_text(MESSAGE)
    yamlsrc.load(path)
    (entry,) = entries(isolated_oauthcli)
    good = entry.read_bytes()
    for at in range(32, len(good), max(1, len(good) // 40)):
        entry.write_bytes(good[:at] + bytes([good[at] ^ 0xFF]) + good[at + 1 :])
        assert parsecache.get(path, parsecache.digest(path.read_bytes())) is None
    entry.write_bytes(good)
    assert parsecache.get(path, parsecache.digest(path.read_bytes())) is not None


def test_an_entry_others_may_write_is_ignored(tmp_path: Path, isolated_oauthcli: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MESSAGE)
    yamlsrc.load(path)
    (entry,) = entries(isolated_oauthcli)
    entry.chmod(0o620)
    assert parsecache.get(path, parsecache.digest(path.read_bytes())) is None


def test_no_home_folder_is_a_miss_not_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv("OAUTHCLI_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    path = tmp_path / "m.yaml"
    path.write_text(MESSAGE)
    assert yamlsrc.load(path).data["headers"] == {"X-Team": "blue"}


def test_values_marshal_cannot_hold_are_parsed_every_time(
    tmp_path: Path, isolated_oauthcli: Path
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("endpoint: https://a.example.test/\nvariables: {day: 2026-01-02}\n")
    assert yamlsrc.load(path).scalars[("variables", "day")] == "2026-01-02"
    assert entries(isolated_oauthcli) == []


def test_a_broken_file_is_reported_every_time_and_not_cached(
    tmp_path: Path, isolated_oauthcli: Path
) -> None:
    make_registry(tmp_path, {"messages/bad.yaml": "endpoint: [unclosed\n"})
    for _ in range(2):
        with pytest.raises(RegistryError, match=r"bad\.yaml:\d+: invalid YAML"):
            Registry(tmp_path).message("bad")
    assert entries(isolated_oauthcli) == []


def test_no_cache_folder_is_no_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    monkeypatch.setenv("OAUTHCLI_CACHE_DIR", str(blocker))
    path = tmp_path / "m.yaml"
    path.write_text(MESSAGE)
    assert yamlsrc.load(path).data["headers"] == {"X-Team": "blue"}
    assert yamlsrc.load(path).data["headers"] == {"X-Team": "blue"}


def test_an_entry_of_another_version_is_ignored(
    tmp_path: Path, isolated_oauthcli: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MESSAGE)
    yamlsrc.load(path)
    monkeypatch.setattr(parsecache, "FORMAT", "oauthcli-parse-1/9.9.9")
    assert parsecache.get(path, parsecache.digest(path.read_bytes())) is None


def test_entries_are_private(tmp_path: Path, isolated_oauthcli: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MESSAGE)
    yamlsrc.load(path)
    (entry,) = entries(isolated_oauthcli)
    assert entry.stat().st_mode & 0o077 == 0 and entry.parent.stat().st_mode & 0o077 == 0


def test_show_in_a_new_process_does_not_import_yaml_the_second_time(tmp_path: Path) -> None:
    make_registry(tmp_path, {"messages/things.yaml": MESSAGE})
    args = ("-r", str(tmp_path), "show", "things")
    first = run_watching(("yaml",), *args)
    second = run_watching(("yaml",), *args)
    assert first.code == second.code == 0, first.err
    assert first.out == second.out
    assert (first.loaded, second.loaded) == (["yaml"], [])
