"""`mailbox sync` between servers that name folders differently: real Dovecot ("/", no prefix)
and real Cyrus IMAP ("." with an "INBOX." personal namespace, or "/" with "INBOX/"), each way,
verified exact (bytes, flags, keywords, INTERNALDATE, folder names), re-runs copying nothing;
and a Cyrus that rewrites what it stores (munge8bit) never lets `sync` exit 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cutover.connectors.mailstore import NewMessage
from cutover.mailsync.engine import Account, SyncOptions
from cutover.mailsync.verify import BY_CONTENT, compare
from tests.mailsync.corpus import build, count, imap_store, load, run_sync

#: Names a dialect has to get right, beside the corpus's own (nested, non-ASCII, special-use).
ODD_FOLDERS = ["Lists/ops.example.org", "INBOX/Station Reports"]


def corpus() -> dict[str, list[NewMessage]]:
    messages = build(seed=11, per_folder=6)
    for n, folder in enumerate(ODD_FOLDERS):
        messages[folder] = build(seed=20 + n, per_folder=3)["Sent"]
    return messages


def sync(source, source_user, target, target_user, state: Path):
    account = Account(source, source_user, target, target_user)
    [result] = run_sync(state, SyncOptions(jobs=3), [account])
    return result


def assert_exact(source, source_user, target, target_user) -> None:
    with source.open(source_user) as left, target.open(target_user) as right:
        comparison = compare(left, right)
        assert comparison.method == BY_CONTENT  # bytes, all flags and keywords, INTERNALDATE
        assert [d.describe() for d in comparison.differences] == []
        assert count(left) == count(right) == sum(len(v) for v in corpus().values())
        names = {f.name for f in right.folders()}
    assert {*corpus(), "Projects", "Archive", "Lists"} <= names


@pytest.mark.parametrize("layout", ["cyrus", "cyrus_slash"])
def test_dovecot_to_cyrus_is_exact_and_a_rerun_copies_nothing(request, dovecot, layout,
                                                              tmp_path):
    cyrus = request.getfixturevalue(layout)
    source, target = imap_store(dovecot), imap_store(cyrus)
    source_user = dovecot.add_user(f"dc-{tmp_path.name}")
    target_user = cyrus.add_user(f"dc-{tmp_path.name}")
    with source.open(source_user) as session:
        load(session, corpus())
    first = sync(source, source_user, target, target_user, tmp_path / "state.db")
    assert first.copied == sum(len(v) for v in corpus().values())
    assert_exact(source, source_user, target, target_user)
    stored, sizes, sep = cyrus.folders(target_user), corpus(), cyrus.separator
    dot_name = "ops\u2024example\u2024org" if sep == "." else "ops.example.org"
    for neutral, on_server in [("Archive/2024", f"INBOX{sep}Archive{sep}2024"),
                               ("INBOX/Station Reports", f"INBOX{sep}INBOX{sep}Station Reports"),
                               ("Lists/ops.example.org", f"INBOX{sep}Lists{sep}{dot_name}")]:
        assert stored[on_server] == len(sizes[neutral])
    again = sync(source, source_user, target, target_user, tmp_path / "state.db")
    assert (again.copied, again.flags_updated, again.deleted) == (0, 0, 0)
    assert not again.created_folders


def test_cyrus_to_dovecot_is_exact_and_a_rerun_copies_nothing(dovecot, cyrus, tmp_path):
    source, target = imap_store(cyrus), imap_store(dovecot)
    source_user = cyrus.add_user(f"cd-{tmp_path.name}")
    target_user = dovecot.add_user(f"cd-{tmp_path.name}")
    with source.open(source_user) as session:
        load(session, corpus())
    sync(source, source_user, target, target_user, tmp_path / "state.db")
    assert_exact(source, source_user, target, target_user)
    on_disk = dovecot.maildir(target_user)
    assert (on_disk / "Archive" / "2024").is_dir() and not (on_disk / "INBOX" / "Sent").exists()
    assert (on_disk / "Lists" / "ops.example.org").is_dir()
    again = sync(source, source_user, target, target_user, tmp_path / "state.db")
    assert (again.copied, again.flags_updated, again.deleted) == (0, 0, 0)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOVER_")}
    env.update(CUTOVER_SOURCE_PASSWORD="secret", CUTOVER_TARGET_PASSWORD="secret")
    return subprocess.run([sys.executable, "-m", "cutover", "--workspace", str(cwd), "mailbox",
                           *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=300)


def test_sync_to_a_server_that_rewrites_headers_fails_with_its_cause_never_exit_0(
        dovecot, cyrus_munging, tmp_path):
    source_user = dovecot.add_user(f"mg-{tmp_path.name}")
    target_user = cyrus_munging.add_user(f"mg-{tmp_path.name}")
    with imap_store(dovecot).open(source_user) as session:
        load(session, build(seed=4, per_folder=6))  # every 5th message has an 8-bit Subject
    src = f"imap://{source_user}@{dovecot.host}:{dovecot.imap_port}"
    dst = f"imap://{target_user}@{cyrus_munging.host}:{cyrus_munging.imap_port}"
    for _ in range(2):  # a re-run does not pretend either
        synced = _cli("sync", src, dst, cwd=tmp_path)
        assert synced.returncode == 2, synced.stdout + synced.stderr
        [line] = synced.stderr.strip().splitlines()
        assert line.startswith("error: ") and "munge8bit: no" in line
    verified = _cli("verify", src, dst, "--allow-extra", cwd=tmp_path)
    assert verified.returncode == 1 and "missing" in verified.stdout
    assert "extra" not in verified.stdout  # no altered copy was left behind


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_folder_renamed_for_the_target_is_said_and_a_clashing_one_refused_by_name(
        dovecot, cyrus, tmp_path, dry_run):
    source_user = dovecot.add_user(f"say-{tmp_path.name}")
    target_user = cyrus.add_user(f"say-{tmp_path.name}")
    message = NewMessage(b"Subject: list mail\r\n\r\nbody\r\n")
    with imap_store(dovecot).open(source_user) as session:
        session.create_folder("Lists/ops.example.org")
        session.append("Lists/ops.example.org", [message])
    src = f"imap://{source_user}@{dovecot.host}:{dovecot.imap_port}"
    dst = f"imap://{target_user}@{cyrus.host}:{cyrus.imap_port}"
    extra = ["--dry-run"] if dry_run else []
    said = _cli("sync", src, dst, *extra, cwd=tmp_path)
    assert said.returncode == 0, said.stderr
    assert ("note: folder 'Lists/ops.example.org' is stored as "
            "'Lists/ops\u2024example\u2024org'") in said.stdout
    with imap_store(dovecot).open(source_user) as session:
        session.create_folder("Lists/ops\u2024org")  # would read back as "Lists/ops.org"
        session.append("Lists/ops\u2024org", [message])
    refused = _cli("sync", src, dst, *extra, cwd=tmp_path)
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("error: folder 'Lists/ops\u2024org'")
