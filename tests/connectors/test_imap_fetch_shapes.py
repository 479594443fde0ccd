"""The IMAP store reads the usual FETCH responses without imapclient's general parser: bytes
in, values out, and anything shaped otherwise handed back (None) for the general parser."""

from datetime import UTC, datetime, timedelta, timezone

from cutover.connectors.imap.store import fetched_bodies, internaldate, listing_refs
from cutover.connectors.mailstore import MessageRef

LINE = (b'7 (UID 41 RFC822.SIZE 1234 FLAGS (\\Seen \\RECENT $Label1) '
        b'INTERNALDATE " 2-Jan-2020 03:04:05 -0700" MODSEQ (19))')


def test_a_listing_line_gives_uid_size_flags_date_and_modseq():
    [ref] = listing_refs([LINE])
    assert ref == MessageRef(41, 1234, frozenset({"\\Seen", "$Label1"}),
                             datetime(2020, 1, 2, 10, 4, 5, tzinfo=UTC), 19)
    assert ref.internaldate.utcoffset() == timedelta(hours=-7)  # the zone is kept for APPEND


def test_listing_lines_come_back_in_uid_order_and_modseq_is_optional():
    second = b'1 (UID 3 RFC822.SIZE 10 FLAGS () INTERNALDATE "01-Mar-2024 00:00:00 +0000")'
    refs = listing_refs([LINE, second])
    assert [r.uid for r in refs] == [3, 41] and refs[0].modseq == 0 and not refs[0].flags


def test_a_listing_shaped_otherwise_is_left_to_the_general_parser():
    with_literal = (b'7 (UID 41 RFC822.SIZE 1234 FLAGS () INTERNALDATE {26}',
                    b'02-Jan-2020 03:04:05 -0700')
    assert listing_refs([with_literal, b")"]) is None
    assert listing_refs([b"7 (UID 41 FLAGS ())"]) is None
    assert listing_refs([LINE.replace(b"Jan", b"Foo")]) is None


def test_bodies_are_read_from_their_literals_and_flag_updates_are_skipped():
    data = [(b"1 (UID 5 BODY[] {5}", b"hello"), b")", b"2 (FLAGS (\\Seen))",
            (b"3 (UID 9 BODY[] {0}", b""), b")"]
    assert fetched_bodies(data) == {5: b"hello", 9: b""}
    assert fetched_bodies([None]) == {} and listing_refs([None]) == []  # nothing matched


def test_bodies_sent_another_way_are_left_to_the_general_parser():
    assert fetched_bodies([b'1 (UID 5 BODY[] "")']) is None
    assert fetched_bodies([(b"1 (BODY[] {5}", b"hello"), b" UID 5)"]) is None


def test_internaldate_keeps_the_instant_and_the_offset():
    moment = internaldate(b"31-Dec-1999 23:59:59 +0130")
    assert moment == datetime(1999, 12, 31, 23, 59, 59,
                              tzinfo=timezone(timedelta(hours=1, minutes=30)))
    assert internaldate(b"31-Dec-1999 23:59:59 CET") is None
