"""The normalised identity of a message: what survives Exchange Online rebuilding its MIME."""

from __future__ import annotations

from cutover.mailsync.normalised import (
    IdentityPool,
    MessageIdentity,
    body_size_bucket,
    compared_flags,
    message_identity,
    pair_up,
)
from tests.graph_recordings import LOT42_MIME as ORIGINAL
from tests.graph_recordings import RECORDED

NO_ID = (b"From: \"Labor Station 3\" <STATION3@Labor.Example.org>\r\n"
         b"Subject: Messwerte\r\n   KW 12\r\n"
         b"Date: Tue, 19 Mar 2024 06:00:00 +0100\r\n"
         b"\r\n"
         b"pH 7.1\r\nT 21.4\r\n")


def test_graph_rebuild_of_a_message_has_the_original_identity():
    rebuilt = (RECORDED / "message-value.eml").read_bytes()

    assert rebuilt != ORIGINAL
    assert message_identity(rebuilt) == message_identity(ORIGINAL)
    assert message_identity(ORIGINAL).message_id == "lot42.1699168440@example.net"


def test_without_message_id_the_headers_survive_a_rebuild_in_another_zone_and_encoding():
    rebuilt = (b"From: Labor Station 3 <station3@labor.example.org>\r\n"
               b"Subject: =?us-ascii?Q?Messwerte_KW_12?=\r\n"
               b"Date: Tue, 19 Mar 2024 05:00:00 +0000\r\n"
               b"Message-ID: <AM0PR07MB6321A1B2@AM0PR07MB6321.eurprd07.prod.outlook.com>\r\n"
               b"Content-Type: text/plain; charset=\"us-ascii\"\r\n"
               b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
               b"pH 7.1\r\n\r\nT 21.4\r\n")

    original, copy = message_identity(NO_ID), message_identity(rebuilt)
    assert original.message_id is None and copy.message_id is not None
    assert original.headers == copy.headers


def test_other_date_sender_subject_or_body_size_is_another_identity():
    base = message_identity(NO_ID).headers
    variants = [NO_ID.replace(b"06:00:00", b"06:00:01"),
                NO_ID.replace(b"STATION3@", b"station4@"),
                NO_ID.replace(b"KW 12", b"KW 13"),
                NO_ID.replace(b"pH 7.1\r\nT 21.4\r\n", b"pH 7.1\r\nT 21.4\r\n" * 8)]

    assert all(message_identity(v).headers != base for v in variants)


def test_body_size_bucket_is_coarse_and_ignores_whitespace():
    assert body_size_bucket(b"Subject: x\r\n\r\n") == 0
    assert body_size_bucket(b"Subject: x\r\n\r\nabcdefghij\r\n") == body_size_bucket(
        b"Subject: x\r\n\r\nab cd ef\r\n  gh ij\r\n\r\n")
    assert body_size_bucket(b"Subject: x\r\n\r\n" + b"a" * 10) < body_size_bucket(
        b"Subject: x\r\n\r\n" + b"a" * 40)


def test_malformed_mime_still_has_an_identity():
    broken = b"Subject: \xff\xfe\r\nContent-Type: multipart/mixed\r\n\r\n--\r\nno boundary"

    identity = message_identity(broken)
    assert identity.message_id is None and len(identity.headers) == 64


def test_compared_flags_keep_seen_flagged_answered_and_keywords_only():
    assert compared_flags({"\\Seen", "\\Draft", "\\Deleted", "\\Answered", "\\Flagged",
                           "$Label1", "Projekt"}) == {
        "\\Seen", "\\Answered", "\\Flagged", "$Label1", "Projekt"}


def test_pair_up_counts_duplicates_and_matches_a_made_up_message_id_by_headers():
    dup, lone = MessageIdentity("a@x", "h1"), MessageIdentity(None, "h2")
    made_up = MessageIdentity("generated@outlook.com", "h2")
    stray = MessageIdentity("stray@x", "h3")

    groups = pair_up([(dup, "s1"), (dup, "s2"), (lone, "s3")],
                     [(dup, "t1"), (made_up, "t3"), (stray, "t4")])

    assert sorted(groups) == sorted([(["s1", "s2"], ["t1"]), (["s3"], ["t3"]), ([], ["t4"])])


def test_identity_pool_gives_each_target_message_once():
    same = MessageIdentity("a@x", "h1")
    pool = IdentityPool([(same, 7), (same, 9), (MessageIdentity("z@x", "h2"), 11)])

    assert [pool.take(same), pool.take(same), pool.take(same)] == [7, 9, None]
    assert pool.take(MessageIdentity(None, "h2")) == 11
