"""A small deterministic mail corpus with the oddities a real account has, and helpers to load
it into any MailboxSession (real Dovecot over IMAP, or a Maildir)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from cutover.connectors.imap.store import ImapMailStore, parse_endpoint
from cutover.connectors.mailstore import MailboxSession, NewMessage

FOLDERS = ["INBOX", "Sent", "Archive/2024", "Entwürfe & Co", "Projects/Alpha"]
FLAG_CHOICES = [frozenset(), frozenset({"\\Seen"}), frozenset({"\\Seen", "\\Answered"}),
                frozenset({"\\Flagged"}), frozenset({"\\Draft"}),
                frozenset({"\\Seen", "$Label1"}), frozenset({"\\Seen", "$Forwarded", "$Label1"})]


def message(n: int, rng: random.Random, message_id: bool = True, eight_bit: bool = False,
            body_size: int = 0) -> bytes:
    subject = f"Report {n} Grüße".encode() if eight_bit else f"Report {n}".encode()
    headers = [b"From: Station Aks <station-aks01@example.org>",
               b"To: datarequest@example.org",
               b"Subject: " + subject,
               f"Date: Mon, {1 + n % 27:02d} Jan 2024 10:{n % 60:02d}:00 +0100".encode()]
    if message_id:
        headers.append(f"Message-ID: <msg{n}.{rng.randrange(10**9)}@example.org>".encode())
    body = (b"line %d of the report\r\n" % n) * (1 + rng.randrange(40))
    if body_size:
        chunk = b"0123456789abcdef" * 4 + b"\r\n"
        body += chunk * (body_size // len(chunk))
    return b"\r\n".join(headers) + b"\r\n\r\n" + body


def build(seed: int = 1, per_folder: int = 12, large: bool = False) -> dict[str, list[NewMessage]]:
    """Folder -> messages: no Message-ID, exact duplicates in one folder, the same message in
    two folders, raw 8-bit headers, keywords, spread INTERNALDATEs, optionally one 10+ MB mail."""
    rng = random.Random(seed)
    start = datetime(2015, 3, 1, 8, 0, tzinfo=UTC)
    corpus: dict[str, list[NewMessage]] = {}
    n = 0
    for folder in FOLDERS:
        items = []
        for _ in range(per_folder):
            n += 1
            content = message(n, rng, message_id=n % 7 != 0, eight_bit=n % 5 == 0)
            when = start + timedelta(days=rng.randrange(3000), seconds=rng.randrange(86400))
            items.append(NewMessage(content, rng.choice(FLAG_CHOICES), when))
        items.append(items[0])  # an exact duplicate in the same folder
        corpus[folder] = items
    corpus["Sent"].append(corpus["INBOX"][1])  # the same message in two folders
    if large:
        big = message(10**6, rng, body_size=10 * 1024 * 1024 + 123)
        corpus["INBOX"].append(NewMessage(big, frozenset({"\\Seen"}), start))
    return corpus


def load(session: MailboxSession, corpus: dict[str, list[NewMessage]]) -> None:
    for folder, items in corpus.items():
        session.create_folder(folder)
        session.append(folder, items)


def imap_store(dovecot, password: str = "secret") -> ImapMailStore:
    endpoint, _ = parse_endpoint(f"imap://x@{dovecot.host}:{dovecot.imap_port}")
    return ImapMailStore(endpoint, lambda: password)


def count(session: MailboxSession) -> int:
    return sum(f.messages for f in session.folders() if f.selectable)


def run_sync(state_path, options, accounts):
    """One engine run on the state DB at `state_path`, opened (and closed) as a command does."""
    from cutover.mailsync.engine import MailSync
    from cutover.mailsync.identity import IdentityMap
    from cutover.state import State

    state = State.open(state_path)
    try:
        return MailSync(IdentityMap.of(state), options).run(accounts)
    finally:
        state.close()


def assert_copied_exactly(dovecot, source: str, target: str,
                          in_order: tuple[str, ...] = ()) -> None:
    """`target` holds what `source` holds (the verifier finds no difference, as many messages),
    and in the folders of `in_order`, the messages in the order they arrived in."""
    from cutover.mailsync.verify import compare

    store = imap_store(dovecot)
    with store.open(source) as left, store.open(target) as right:
        assert [d.describe() for d in compare(left, right).differences] == []
        assert count(left) == count(right)
        for folder in in_order:
            sizes = [m.size for m in left.list_messages(folder)]
            assert [m.size for m in right.list_messages(folder)] == sizes

