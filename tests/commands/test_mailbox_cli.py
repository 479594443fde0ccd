"""`cutover mailbox sync|verify` as operators run it: URLs, passwords from env or files, exit
codes, one-line errors, and no password anywhere it should not be."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cutover.connectors.dovecot.maildir import MaildirMailStore
from cutover.connectors.mailstore import INBOX, NewMessage
from tests.mailsync.corpus import build, imap_store, load

PASSWORD = "Pw-4711-never-shown"


def run(*args: str, cwd: Path, env: dict[str, str] | None = None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "cutover", "--workspace", str(cwd), "mailbox",
                           *args], capture_output=True, text=True, cwd=cwd, env=full_env,
                          timeout=120)


@pytest.fixture
def source(dovecot, tmp_path):
    user = dovecot.add_user(f"clisrc-{tmp_path.name}", PASSWORD)
    store = imap_store(dovecot, PASSWORD)
    with store.open(user) as session:
        load(session, build(seed=21, per_folder=3))
    return f"imap://{user}@{dovecot.host}:{dovecot.imap_port}"


def test_sync_to_maildir_then_verify_exit_0_and_no_password_anywhere(source, tmp_path):
    env = {"CUTOVER_SOURCE_PASSWORD": PASSWORD}
    synced = run("sync", source, "maildir:mail/bob", "--json", cwd=tmp_path, env=env)
    assert synced.returncode == 0, synced.stderr
    assert json.loads(synced.stdout)["accounts"][0]["copied"] == 5 * 4 + 1
    verified = run("verify", source, "maildir:mail/bob", cwd=tmp_path, env=env)
    assert verified.returncode == 0 and "equal" in verified.stdout
    assert (tmp_path / "state" / "cutover.db").exists()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert PASSWORD.encode() not in path.read_bytes(), path
    for output in (synced.stdout, synced.stderr, verified.stdout, verified.stderr):
        assert PASSWORD not in output


def test_password_file_and_state_option(source, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    secret.chmod(0o600)
    result = run("sync", source, f"maildir://{tmp_path}/out/bob", "--source-password-file",
                 str(secret), "--state", str(tmp_path / "own.db"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "own.db").exists() and not (tmp_path / "state").exists()


def test_verify_lists_differences_per_folder_and_exits_1(source, tmp_path):
    env = {"CUTOVER_SOURCE_PASSWORD": PASSWORD}
    assert run("sync", source, "maildir:mail/bob", cwd=tmp_path, env=env).returncode == 0
    with MaildirMailStore(tmp_path / "mail").open("bob") as session:
        session.append(INBOX, [NewMessage(b"Subject: stray\r\n\r\nx\r\n")])
        uid = session.list_messages("Sent")[0].uid
        session.set_flags("Sent", [uid], frozenset({"$Other"}))
    human = run("verify", source, "maildir:mail/bob", cwd=tmp_path, env=env)
    assert human.returncode == 1
    assert "INBOX -> INBOX: 1 extra" in human.stdout and "Sent -> Sent" in human.stdout
    machine = run("verify", source, "maildir:mail/bob", "--json", cwd=tmp_path, env=env)
    assert machine.returncode == 1
    report = json.loads(machine.stdout)
    assert not report["equal"] and {d["source"] for d in report["differences"]} == {
        INBOX, "Sent"}


@pytest.mark.parametrize("case", ["wrong-password", "unknown-host", "missing-folder",
                                  "no-password", "bad-url"])
def test_failures_are_one_error_line_and_exit_2(dovecot, source, tmp_path, case):
    env = {"CUTOVER_SOURCE_PASSWORD": PASSWORD}
    args = ["sync", source, "maildir:mail/bob"]
    if case == "wrong-password":
        env["CUTOVER_SOURCE_PASSWORD"] = "wrong-" + PASSWORD
    elif case == "unknown-host":
        args[1] = "imap://bob@no-such-host.invalid:143"
    elif case == "missing-folder":
        args += ["--folders", "Nope"]
    elif case == "no-password":
        env = {}
    else:
        args[1] = "pop3://bob@host"
    result = run(*args, cwd=tmp_path, env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr and PASSWORD not in result.stderr + result.stdout


def test_dry_run_reports_counts_and_writes_no_mail(source, tmp_path):
    env = {"CUTOVER_SOURCE_PASSWORD": PASSWORD}
    result = run("sync", source, "maildir:mail/bob", "--dry-run", "--json", "--max-bandwidth",
                 "10M", "--max-msgs-per-s", "500", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dry_run"] and sum(report["accounts"][0]["to_copy"].values()) == 21
    assert not (tmp_path / "mail" / "bob" / "Sent").exists()


def test_bad_rate_is_a_usage_error(source, tmp_path):
    result = run("sync", source, "maildir:mail/bob", "--max-bandwidth", "fast", cwd=tmp_path,
                 env={"CUTOVER_SOURCE_PASSWORD": PASSWORD})
    assert result.returncode == 2 and result.stderr.startswith("error: --max-bandwidth")


def test_verify_of_maildirs_that_do_not_exist_is_an_error_not_equal(tmp_path):
    result = run("verify", "maildir:mail/nobody", "maildir:mail/noone", cwd=tmp_path)
    assert result.returncode == 2 and "equal" not in result.stdout
    assert result.stderr.startswith("error: mailbox nobody does not exist")
    assert not (tmp_path / "mail").exists()


def test_sync_from_a_misspelt_maildir_creates_nothing_and_exits_2(source, tmp_path):
    with MaildirMailStore(tmp_path / "mail").open("bob") as session:
        load(session, build(seed=4, per_folder=2))
    result = run("sync", "maildir:mail/bbo", source, cwd=tmp_path,
                 env={"CUTOVER_TARGET_PASSWORD": PASSWORD})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: mailbox bbo does not exist (no Maildir at {tmp_path / 'mail' / 'bbo'})"]
    assert sorted(p.name for p in (tmp_path / "mail").iterdir()) == ["bob"]
