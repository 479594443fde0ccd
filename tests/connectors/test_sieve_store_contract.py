"""One contract, two Sieve stores: ManageSieve against a real Dovecot, and the sieve directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from cutover.connectors.dovecot.managesieve import ManageSieveStore
from cutover.connectors.dovecot.sievedir import SieveDirectory
from cutover.connectors.sieve_store import (
    ProgramDirectory,
    SieveScriptRejected,
    program_uses,
    required_extensions,
)
from cutover.errors import AuthenticationFailed, ConnectionFailed, NotFound, UsageError
from cutover.workspace import Workspace

SCRIPT = ('require ["fileinto", "mailbox"];\n'
          'if header :contains "subject" "REB" { fileinto :create "REB"; }\n')
OTHER = "keep;\n"


@pytest.fixture(params=["sievedir", "managesieve"])
def store_and_account(request, tmp_path: Path):
    if request.param == "sievedir":
        return SieveDirectory(tmp_path / "sieve"), "datarequest@verify.example.org"
    dovecot = request.getfixturevalue("dovecot")
    user = request.getfixturevalue("dovecot_user")
    return ManageSieveStore(dovecot.host, dovecot.managesieve_port, "{address}", "secret"), user


def test_a_new_account_has_no_scripts_and_none_active(store_and_account):
    store, account = store_and_account
    assert (store.scripts(account), store.active(account)) == ([], None)


def test_put_then_get_returns_the_script(store_and_account):
    store, account = store_and_account
    store.put(account, "rules", SCRIPT)
    assert store.get(account, "rules") == SCRIPT
    assert store.get(account, "absent") is None
    assert store.scripts(account) == ["rules"]


def test_put_replaces_an_existing_script(store_and_account):
    store, account = store_and_account
    store.put(account, "rules", SCRIPT)
    store.put(account, "rules", OTHER)
    assert store.get(account, "rules") == OTHER


def test_activate_switches_and_none_deactivates(store_and_account):
    store, account = store_and_account
    store.put(account, "one", SCRIPT)
    store.put(account, "two", OTHER)
    store.activate(account, "one")
    assert store.active(account) == "one"
    store.activate(account, "two")
    assert store.active(account) == "two"
    store.activate(account, None)
    assert store.active(account) is None
    assert store.scripts(account) == ["one", "two"]


def test_activating_a_missing_script_is_not_found(store_and_account):
    store, account = store_and_account
    with pytest.raises(NotFound):
        store.activate(account, "missing")


def test_delete_removes_the_script_and_its_activation(store_and_account):
    store, account = store_and_account
    store.put(account, "rules", SCRIPT)
    store.activate(account, "rules")
    store.delete(account, "rules")
    assert (store.scripts(account), store.active(account)) == ([], None)
    store.delete(account, "rules")  # deleting again changes nothing


def test_invalid_script_names_are_refused(store_and_account):
    store, account = store_and_account
    with pytest.raises(SieveScriptRejected):
        store.put(account, "../escape", SCRIPT)


def test_managesieve_server_refuses_a_script_that_does_not_compile(dovecot, dovecot_user):
    store = ManageSieveStore(dovecot.host, dovecot.managesieve_port, "{address}", "secret")
    with pytest.raises(SieveScriptRejected, match="refused"):
        store.put(dovecot_user, "broken", "if header :bogus {\n")


def test_managesieve_wrong_password_is_an_authentication_failure(dovecot, dovecot_user):
    store = ManageSieveStore(dovecot.host, dovecot.managesieve_port, "{address}", "wrong")
    with pytest.raises(AuthenticationFailed):
        store.scripts(dovecot_user)


def test_managesieve_unreachable_server_is_a_connection_failure():
    store = ManageSieveStore("127.0.0.1", 1, "{address}", "secret")
    with pytest.raises(ConnectionFailed):
        store.scripts("someone@example.org")


def test_managesieve_activation_is_what_dovecot_delivers_with(dovecot, dovecot_user):
    store = ManageSieveStore(dovecot.host, dovecot.managesieve_port, "{address}", "secret")
    store.put(dovecot_user, "rules", SCRIPT)
    store.activate(dovecot_user, "rules")
    dovecot.deliver(dovecot_user, b"From: a@example.net\r\nSubject: REB 1\r\n\r\nbody\r\n")
    assert list((dovecot.maildir(dovecot_user) / "REB" / "new").iterdir())


def test_sievedir_reads_a_dovecot_style_active_symlink(tmp_path: Path):
    account_dir = tmp_path / "sieve" / "a@example.org"
    account_dir.mkdir(parents=True)
    (account_dir / "rules.sieve").write_text(SCRIPT)
    (account_dir / "active").symlink_to("rules.sieve")
    assert SieveDirectory(tmp_path / "sieve").active("a@example.org") == "rules"


def test_both_kinds_are_built_from_cutover_yaml(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SIEVE_PASSWORD", "secret")
    (tmp_path / "cutover.yaml").write_text(
        "sieve:\n  twin: {kind: sievedir, path: sieve/}\n"
        "  linux: {kind: managesieve, host: 127.0.0.1, port: 4190, user: '{local}',\n"
        "          password: env/SIEVE_PASSWORD}\n")
    workspace = Workspace(tmp_path)
    assert workspace.connector("sieve", "twin").root == tmp_path / "sieve"
    linux = workspace.connector("sieve", "linux")
    assert (linux.port, linux.login_of("bulletin@verify.example.org")) == (4190, "bulletin")


# --- what deploying a script needs: its extensions and the programs it runs ------------------

def test_managesieve_extensions_are_those_enabled_for_personal_scripts(dovecot, dovecot_user):
    store = ManageSieveStore(dovecot.host, dovecot.managesieve_port, "{address}", "secret")
    enabled = store.extensions(dovecot_user)
    # the fixture: sieve_extensions = +vnd.dovecot.pipe over Pigeonhole's defaults
    assert {"fileinto", "vnd.dovecot.pipe", "duplicate"} <= enabled
    assert not enabled & {"vnd.dovecot.filter", "vnd.dovecot.execute", "editheader"}


def test_sievedir_says_nothing_of_extensions_unless_told(tmp_path: Path):
    assert SieveDirectory(tmp_path / "sieve").extensions("a@example.org") is None
    (tmp_path / "cutover.yaml").write_text(
        "sieve:\n  twin: {kind: sievedir, path: sieve/, extensions: [fileinto, mailbox]}\n")
    twin = Workspace(tmp_path).connector("sieve", "twin")
    assert twin.extensions("a@example.org") == {"fileinto", "mailbox"}


def test_program_directories_come_from_cutover_yaml(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SIEVE_PASSWORD", "secret")
    (tmp_path / "cutover.yaml").write_text(
        "sieve:\n  twin: {kind: sievedir, path: sieve/, filter_bin_dir: /srv/filter}\n"
        "  linux: {kind: managesieve, host: 127.0.0.1, password: env/SIEVE_PASSWORD,\n"
        "          pipe_bin_dir: mnt/sieve-pipe}\n")
    workspace = Workspace(tmp_path)
    twin, linux = workspace.connector("sieve", "twin"), workspace.connector("sieve", "linux")
    assert twin.program_directory("pipe") == tmp_path / "sieve" / ".programs" / "pipe"
    assert twin.program_directory("filter") == Path("/srv/filter")
    assert linux.program_directory("pipe") == tmp_path / "mnt" / "sieve-pipe"
    assert linux.program_directory("filter") is None  # ManageSieve cannot upload programs


@pytest.mark.parametrize(("script", "uses"), [
    ('require "vnd.dovecot.pipe";\npipe "ingest.body";\n', {"ingest.body": {"pipe"}}),
    ('pipe :copy :try "a" ["-x"];\n', {"a": {"pipe"}}),
    ('filter "spamc.body" ["-f"];\n', {"spamc.body": {"filter"}}),
    ('if execute :pipe "notify.body" { stop; }\n', {"notify.body": {"execute"}}),
    ('execute :input "pipe" :output "out" "lookup";\n', {"lookup": {"execute"}}),
    ('# pipe "commented-out"\n/* filter "nor-this" */\npipe "x";\nfilter "x";\n',
     {"x": {"pipe", "filter"}}),
    ('pipe "${name}.body";\n', {}),  # known only when the script runs
    ('pipe text:\nmultiline\n.\n;\n', {"multiline": {"pipe"}}),
], ids=["pipe", "tags", "filter", "execute-test", "execute-tags", "comments-and-two-uses",
        "variable", "multiline"])
def test_program_uses_reads_how_the_script_runs_each_program(script: str, uses: dict):
    assert program_uses(script) == uses


def test_required_extensions_collect_every_require_and_skip_comments():
    script = ('# require "not-this";\nrequire ["fileinto", "vnd.dovecot.filter"];\n'
              'require "copy";\nkeep;\n')
    assert required_extensions(script) == ["copy", "fileinto", "vnd.dovecot.filter"]


def test_program_directory_knows_what_cutover_wrote_and_for_whom(tmp_path: Path):
    directory = ProgramDirectory(tmp_path / "pipe")
    directory.install("a.body", b"#!/bin/sh\nexit 0\n", "a@example.org")
    assert directory.read("a.body") == (b"#!/bin/sh\nexit 0\n", 0o755)
    assert directory.written_for("a.body", b"#!/bin/sh\nexit 0\n") == "a@example.org"
    assert directory.written_for("a.body", b"#!/bin/sh\nexit 1\n") is None
    (tmp_path / "pipe" / "b").write_bytes(b"#!/bin/sh\n")
    assert directory.written_for("b", b"#!/bin/sh\n") is None
    directory.use("a.body", "c@example.org")
    assert directory.users("a.body") == ["a@example.org", "c@example.org"]
    assert directory.release("a.body", "a@example.org") == ["c@example.org"]
    directory.restore("a.body", None, None)
    assert directory.read("a.body") is None
    with pytest.raises(UsageError):
        directory.file("../escape")
