import shutil
from pathlib import Path

import pytest
import yaml

from cutover.connectors.postfix.maps import (
    PostfixCommandFailed,
    PostfixMapDirectory,
    transport_keys,
)
from cutover.errors import CapabilityMissing, ValidationFailed
from cutover.workspace import Workspace

POSTMAP = "/usr/sbin/postmap"


@pytest.fixture(autouse=True)
def _postfix_installed():
    if shutil.which("postmap") is None and not Path(POSTMAP).exists():
        pytest.fail("postmap is missing: apt-get install postfix")


def maps(tmp_path: Path, **config) -> PostfixMapDirectory:
    workspace = Workspace(tmp_path)
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump(
        {"postfix": {"linux-mx": {"kind": "postfix-maps", "path": "postfix/", **config}}}))
    (tmp_path / "postfix").mkdir(exist_ok=True)
    return workspace.connector("postfix", "linux-mx")


def test_write_compiles_with_postmap_and_lookup_uses_postmap_q(tmp_path):
    directory = maps(tmp_path, postmap=True)
    directory.write_source("virtual",
                           "# aliases\nDataRequest@example.org datarequest@verify.example.org\n")
    assert (tmp_path / "postfix" / "virtual.db").exists()
    # the source says nothing about case; postmap folds keys, and so does the lookup
    (tmp_path / "postfix" / "virtual").write_text("# emptied behind postmap's back\n")
    assert directory.lookup("virtual", "datarequest@example.org") == \
        "datarequest@verify.example.org"


def test_lookup_of_missing_key_is_none(tmp_path):
    directory = maps(tmp_path, postmap=True)
    directory.write_source("virtual", "a@example.org b@example.org\n")
    assert directory.lookup("virtual", "nobody@example.org") is None
    assert directory.lookup("transport", "example.org") is None


def test_auto_without_the_binary_reads_the_source_text(tmp_path):
    directory = maps(tmp_path, postmap="auto", postmap_command=str(tmp_path / "no-postmap"))
    assert not directory.compiles
    directory.write_source("virtual", "a@example.org b@verify.example.org\n")
    assert not (tmp_path / "postfix" / "virtual.db").exists()
    assert directory.lookup("virtual", "A@example.org") == "b@verify.example.org"


def test_postmap_true_without_the_binary_names_the_package(tmp_path):
    with pytest.raises(CapabilityMissing, match="install the postfix package"):
        maps(tmp_path, postmap=True, postmap_command=str(tmp_path / "no-postmap"))


def test_unknown_postmap_mode_is_a_located_config_error(tmp_path):
    # cutover.yaml is checked as a whole before any connector is built
    with pytest.raises(ValidationFailed, match=r"cutover.yaml:\d+: postfix.linux-mx.postmap"):
        maps(tmp_path, postmap="sometimes")


def test_transport_lookup_follows_postfix_order(tmp_path):
    directory = maps(tmp_path, postmap=True)
    directory.write_source("transport", (
        "special@verify.example.org  smtp:[special.example.net]\n"
        "verify.example.org          smtp:[filter.verify.example.org]:10025\n"
        ".example.org                relay:[exchange.example.org]\n"
        "*                           smtp:\n"))
    assert directory.transport_for("special@verify.example.org") == "smtp:[special.example.net]"
    assert directory.transport_for("x@verify.example.org") == \
        "smtp:[filter.verify.example.org]:10025"
    assert directory.transport_for("lab.example.org") == "relay:[exchange.example.org]"
    assert directory.transport_for("elsewhere.net") == "smtp:"


def test_transport_keys_go_from_address_to_wildcard():
    assert transport_keys("a@b.c.org") == ["a@b.c.org", "b.c.org", ".c.org", ".org", "*"]


@pytest.fixture
def host_without_postfix_configuration(tmp_path, monkeypatch):
    """As on a machine whose postfix package was installed with "No configuration": a Postfix
    program run without `-c` finds no main.cf (MAIL_CONFIG is where it looks)."""
    monkeypatch.setenv("MAIL_CONFIG", str(tmp_path / "no-etc-postfix"))


@pytest.mark.usefixtures("host_without_postfix_configuration")
def test_postmap_needs_no_main_cf_of_the_host(tmp_path):
    directory = maps(tmp_path, postmap=True)
    directory.write_source("virtual", "a@example.org b@verify.example.org\n")
    assert directory.lookup("virtual", "a@example.org") == "b@verify.example.org"
    assert directory.content_filter() is None  # nothing read from any main.cf


@pytest.mark.usefixtures("host_without_postfix_configuration")
def test_config_directory_names_the_instance_postmap_uses(tmp_path):
    config_dir = tmp_path / "etc-postfix"
    config_dir.mkdir()
    (config_dir / "main.cf").write_text("# this instance's main.cf\n")
    directory = maps(tmp_path, postmap=True, config_directory=str(config_dir))
    assert directory.config_dir == config_dir
    directory.write_source("virtual", "a@example.org b@example.org\n")
    assert directory.lookup("virtual", "a@example.org") == "b@example.org"
    (config_dir / "main.cf").unlink()  # postmap reads this instance's main.cf, nobody else's
    with pytest.raises(PostfixCommandFailed, match="main.cf"):
        directory.lookup("virtual", "a@example.org")


def test_old_setting_name_postfix_config_dir_still_works(tmp_path):
    directory = maps(tmp_path, postmap=False, postfix_config_dir="etc-postfix")
    assert directory.config_dir == tmp_path / "etc-postfix"


def test_content_filter_comes_from_main_cf(tmp_path):
    config_dir = tmp_path / "etc"
    config_dir.mkdir()
    (config_dir / "main.cf").write_text("content_filter = amavis:[127.0.0.1]:10024\n")
    directory = maps(tmp_path, postmap=True, config_directory=str(config_dir))
    directory.write_source("virtual", "a@example.org b@example.org\n")
    route = directory.route("verify.example.org")
    assert route.content_filter == "amavis:[127.0.0.1]:10024"
    assert route.includes("amavis:[127.0.0.1]:10024")
    assert route.includes("[127.0.0.1]:10024")
    assert not route.includes("smtp:[filter.verify.example.org]:10025")


def test_removing_a_map_removes_its_database(tmp_path):
    directory = maps(tmp_path, postmap=True)
    directory.write_source("virtual", "a@example.org b@example.org\n")
    directory.write_source("virtual", None)
    assert not (tmp_path / "postfix" / "virtual").exists()
    assert not (tmp_path / "postfix" / "virtual.db").exists()


def test_write_keeps_the_file_mode(tmp_path):
    directory = maps(tmp_path, postmap=False)
    path = tmp_path / "postfix" / "virtual"
    path.write_text("a@example.org b@example.org\n")
    path.chmod(0o640)
    directory.write_source("virtual", "a@example.org c@example.org\n")
    assert path.stat().st_mode & 0o777 == 0o640


def reload_recorder(tmp_path: Path, exit_status: int) -> tuple[Path, Path]:
    """A stand-in `postfix` program (never reload the machine's own Postfix from a test)."""
    calls = tmp_path / "postfix-calls"
    (tmp_path / "bin").mkdir()
    program = tmp_path / "bin" / "postfix"
    program.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexit {exit_status}\n')
    program.chmod(0o755)
    return program, calls


def test_reload_runs_postfix_reload_after_postmap(tmp_path):
    program, calls = reload_recorder(tmp_path, 0)
    directory = maps(tmp_path, postmap=True, reload=True, postfix_command=str(program))
    directory.write_source("virtual", "a@example.org b@example.org\n")
    # without config_directory, Postfix's own default instance (never the private defaults)
    assert calls.read_text() == "reload\n"
    assert (tmp_path / "postfix" / "virtual.db").exists()


def test_reload_failure_is_one_line_naming_the_command(tmp_path):
    program, _ = reload_recorder(tmp_path, 1)
    directory = maps(tmp_path, postmap=True, reload=True, postfix_command=str(program))
    with pytest.raises(PostfixCommandFailed) as raised:
        directory.write_source("virtual", "a@example.org b@example.org\n")
    assert str(raised.value) == "postfix reload: exit status 1 (details in the mail log)"


def test_map_names_list_sources_only(tmp_path):
    directory = maps(tmp_path, postmap=True)
    directory.write_source("virtual", "a@example.org b@example.org\n")
    directory.write_source("transport", "example.org smtp:\n")
    assert directory.map_names() == ["transport", "virtual"]


def test_map_name_with_a_slash_is_refused(tmp_path):
    directory = maps(tmp_path, postmap=False)
    with pytest.raises(Exception, match="file name"):
        directory.read_source("../etc/passwd")


def test_compile_if_stale_rebuilds_only_an_outdated_database(tmp_path):
    directory = maps(tmp_path, postmap=True)
    directory.write_source("virtual", "a@example.org b@example.org\n")
    database = tmp_path / "postfix" / "virtual.db"
    compiled = database.stat().st_mtime_ns
    directory.compile_if_stale("virtual")
    assert database.stat().st_mtime_ns == compiled
    database.unlink()  # as if the process died between the write and postmap
    directory.compile_if_stale("virtual")
    assert directory.lookup("virtual", "a@example.org") == "b@example.org"
