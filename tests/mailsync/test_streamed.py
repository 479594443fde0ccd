"""Messages of STREAM_MESSAGE_BYTES or more go from the source's FETCH literal into the target's
APPEND in chunks, never held whole: the copy is still exact, every kind of message is still read
back, and a kill -9 or a dropped link in the middle of one loses and duplicates nothing."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from cutover.connectors.imap.store import (
    STREAM_MESSAGE_BYTES,
    STREAMED_APPEND,
    ImapMailStore,
    message_kinds,
    parse_endpoint,
)
from cutover.connectors.mailstore import INBOX, NewMessage
from cutover.mailsync.engine import Account, SyncOptions
from cutover.mailsync.verify import compare
from tests.mailsync.corpus import (
    assert_copied_exactly,
    imap_store,
    load,
    message,
    run_sync,
)
from tests.mailsync.proxy import DroppingProxy

WHEN = datetime(2019, 5, 4, 3, 2, 1, tzinfo=UTC)


def _big(n: int, eight_bit: bool = False) -> bytes:
    content = message(n, random.Random(n), eight_bit=eight_bit,
                      body_size=STREAM_MESSAGE_BYTES + 4321 * n)
    if eight_bit:
        content += "Grüße aus Zürich\r\n".encode()
    return content


def _corpus() -> dict[str, list[NewMessage]]:
    """Big messages between small ones (order kept), an 8-bit one, two in a folder alone."""
    small = [NewMessage(message(n, random.Random(n)), frozenset({"\\Seen"}), WHEN)
             for n in range(1, 4)]
    return {
        INBOX: [small[0], NewMessage(_big(1), frozenset({"\\Flagged", "$Label1"}), WHEN),
                small[1], NewMessage(_big(2, eight_bit=True), frozenset(), WHEN), small[2]],
        "Attachments": [NewMessage(_big(3), frozenset({"\\Seen"}), WHEN),
                        NewMessage(_big(4), frozenset({"\\Answered"}), WHEN)],
    }


@pytest.fixture
def source(dovecot, tmp_path):
    user = dovecot.add_user(f"ssrc-{tmp_path.name}")
    with imap_store(dovecot).open(user) as session:
        load(session, _corpus())
    return user


def test_big_messages_are_streamed_exactly_and_read_back_by_kind(dovecot, source, tmp_path):
    target = dovecot.add_user(f"sdst-{tmp_path.name}")
    store = imap_store(dovecot)
    [result] = run_sync(tmp_path / "state.db", SyncOptions(jobs=2),
                        [Account(imap_store(dovecot), source, store, target)])
    assert result.copied == 7
    assert "8-bit body" in message_kinds(_big(2, eight_bit=True))
    assert store.stored_check.checked.get("8-bit body", 0) >= 1  # the streamed one's kinds
    assert_copied_exactly(dovecot, source, target, in_order=("INBOX", "Attachments"))


def test_big_messages_are_streamed_exactly_between_cyrus_accounts(cyrus, tmp_path):
    source, target = (cyrus.add_user(f"{side}-{tmp_path.name}") for side in ("cs", "cd"))
    with imap_store(cyrus).open(source) as session:
        load(session, _corpus())
    store = imap_store(cyrus)
    [result] = run_sync(tmp_path / "state.db", SyncOptions(jobs=2),
                        [Account(imap_store(cyrus), source, store, target)])
    assert result.copied == 7
    with store.open(source) as left, store.open(target) as right:
        assert STREAMED_APPEND in right.capabilities  # LITERAL+ and MULTIAPPEND: streamed
        assert [d.describe() for d in compare(left, right).differences] == []


def test_a_link_dropped_inside_a_streamed_message_then_copy_is_exact(dovecot, source, tmp_path):
    target = dovecot.add_user(f"sdrop-{tmp_path.name}")
    proxy = DroppingProxy((dovecot.host, dovecot.imap_port),
                          upload_bytes=STREAM_MESSAGE_BYTES // 2)
    try:
        through_proxy = ImapMailStore(parse_endpoint(f"imap://x@127.0.0.1:{proxy.port}")[0],
                                      lambda: "secret")
        account = Account(imap_store(dovecot), source, through_proxy, target)
        run_sync(tmp_path / "state.db", SyncOptions(jobs=1), [account])
    finally:
        proxy.close()
    assert proxy.dropped.is_set()
    assert_copied_exactly(dovecot, source, target, in_order=("INBOX", "Attachments"))


def _cli(dovecot, source, target, state, crash_at=None):
    env = dict(os.environ, CUTOVER_SOURCE_PASSWORD="secret", CUTOVER_TARGET_PASSWORD="secret")
    env.pop("CUTOVER_CRASH_AT", None)
    if crash_at:
        env["CUTOVER_CRASH_AT"] = crash_at
    url = f"imap://{{}}@{dovecot.host}:{dovecot.imap_port}"
    return subprocess.run([sys.executable, "-m", "cutover", "mailbox", "sync",
                           url.format(source), url.format(target), "--state", str(state),
                           "--json", "--jobs", "1", "--folders", "Attachments"],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize("crash_at, rematched", [
    ("mid-stream:1", 0),  # half of the first message sent: the server stores nothing
    ("before-append:2", 0),  # both sent, the command not ended: nothing stored
    ("after-append:1", 2),  # stored, not recorded: found again by digest, not sent again
])
def test_kill_9_inside_a_streamed_append_then_rerun_is_exact_without_duplicates(
        dovecot, source, tmp_path, crash_at, rematched):
    target = dovecot.add_user(f"skill-{tmp_path.name}")
    state = tmp_path / "state.db"
    killed = _cli(dovecot, source, target, state, crash_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    rerun = _cli(dovecot, source, target, state)
    assert rerun.returncode == 0, rerun.stderr
    [account] = json.loads(rerun.stdout)["accounts"]
    assert account["rematched"] == rematched
    assert account["copied"] == 2 - rematched
    with imap_store(dovecot).open(source) as left, imap_store(dovecot).open(target) as right:
        assert sorted(m.size for m in right.list_messages("Attachments")) == \
            sorted(m.size for m in left.list_messages("Attachments"))
