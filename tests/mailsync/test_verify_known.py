"""A comparison remembers the folders it found equal with both sides' counters; a later one
reads only the folders whose counters moved, and still finds every difference there."""

from __future__ import annotations

from cutover.mailsync.engine import Account, SyncOptions
from cutover.mailsync.verify import compare
from tests.mailsync.corpus import build, imap_store, load, run_sync


def test_only_folders_that_changed_since_an_equal_comparison_are_read_again(dovecot, tmp_path):
    store = imap_store(dovecot)
    source, target = (dovecot.add_user(f"{side}-{tmp_path.name}") for side in ("ksrc", "kdst"))
    with store.open(source) as session:
        load(session, build(seed=9, per_folder=3))
    run_sync(tmp_path / "s.db", SyncOptions(), [Account(store, source, store, target)])
    with store.open(source) as left, store.open(target) as right:
        first = compare(left, right)
        known = {src: (dst, strict, counters) for src, dst, strict, counters in first.verified}
        assert first.equal and first.unchanged == 0 and len(known) == 5  # 2 parents hold no mail
        again = compare(left, right, known=known)
        assert again.equal and again.unchanged == len(known)
        assert again.messages == first.messages
        uid = right.list_messages("Sent")[0].uid
        right.set_flags("Sent", [uid], frozenset({"$Other"}))
        changed = compare(left, right, known=known)
    assert [d.describe() for d in changed.differences] == ["Sent -> Sent: 1 with other flags"]
    assert changed.unchanged == len(known) - 1
