"""The EWS mail store (a source) against recorded Exchange 2016 SOAP (tests/recorded/ews)."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
import responses

from cutover.connectors.dovecot.maildir import MaildirMailStore
from cutover.connectors.exchange.ews_store import EwsMailStore, flags_from_item
from cutover.connectors.mailstore import INBOX, NewMessage
from cutover.errors import AuthenticationFailed, CapabilityMissing
from cutover.mailsync.engine import Account, SyncOptions
from cutover.mailsync.verify import compare
from tests.mailsync.corpus import run_sync

RECORDED = Path(__file__).resolve().parent.parent / "recorded" / "ews"
EWS_URL = "https://mail.example.org/EWS/Exchange.asmx"
USER = "datarequest@example.org"


def exchange(request):
    body = request.body.decode() if isinstance(request.body, bytes) else request.body
    operation = re.search(r"<s:Body><m:(\w+)", body).group(1)
    key = (re.search(r'DistinguishedFolderId Id="(\w+)"', body)
           or re.search(r'<t:FolderId Id="([\w-]+)"', body)
           or re.search(r'<t:ItemId Id="([\w-]+)"', body))
    kind = "-mime" if "item:MimeContent" in body else ""
    return 200, {}, (RECORDED / f"{operation}{kind}-{key.group(1)}.xml").read_text()


@pytest.fixture
def ews():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, EWS_URL, callback=exchange)
        yield EwsMailStore("mail.example.org", lambda: "pw", username="EXAMPLE\\svc-cutover",
                           auth="basic")


def expected_mime() -> dict[str, list[bytes]]:
    data = json.loads((RECORDED / "expected-mime.json").read_text())
    return {folder: [base64.b64decode(m) for m in items] for folder, items in data.items()}


def test_mail_folders_with_special_uses_and_no_calendar(ews):
    with ews.open(USER) as session:
        folders = {f.name: f.special_use for f in session.folders()}
    assert folders == {INBOX: None, "INBOX/Station Reports": None, "Sent Items": "\\Sent",
                       "Deleted Items": "\\Trash", "Junk E-mail": "\\Junk",
                       "Drafts": "\\Drafts", "Übersicht & Daten": None}


def test_flags_and_internaldate_come_from_mapi_properties(ews):
    with ews.open(USER) as session:
        inbox = session.list_messages(INBOX)
        [draft] = session.list_messages("Drafts")
    by_date = sorted(inbox, key=lambda m: m.internaldate)
    assert [m.flags for m in by_date] == [
        {"\\Seen", "\\Answered"}, {"\\Flagged", "Label1"}, {"\\Seen", "$Forwarded", "Red_Category"}]
    assert [m.internaldate.isoformat() for m in by_date][0] == "2024-03-05T08:10:00+00:00"
    assert draft.flags == {"\\Seen", "\\Draft"}


def test_fetch_yields_the_exact_mime_export(ews):
    expected = expected_mime()
    with ews.open(USER) as session:
        refs = session.list_messages(INBOX)
        fetched = [content for _, content in session.fetch(INBOX, [r.uid for r in refs])]
    assert sorted(fetched) == sorted(expected["inbox"])


def test_copy_to_maildir_is_exact_with_exchange_folders_mapped(ews, tmp_path):
    target = MaildirMailStore(tmp_path / "mail")
    account = Account(ews, USER, target, "datarequest@verify.example.org")
    [result] = run_sync(tmp_path / "state.db", SyncOptions(jobs=2), [account])
    assert result.copied == 7
    with ews.open(USER) as left, target.open("datarequest@verify.example.org") as right:
        assert compare(left, right).equal
        names = {f.name for f in right.folders()}
    assert names == {INBOX, "INBOX/Station Reports", "Sent", "Trash", "Junk", "Drafts",
                     "Übersicht & Daten"}
    [again] = run_sync(tmp_path / "state.db", SyncOptions(), [account])
    assert again.copied == 0


def test_copy_to_dovecot_over_imap_is_exact(ews, dovecot, tmp_path):
    from tests.mailsync.corpus import imap_store

    target_user = dovecot.add_user("ews-target")
    account = Account(ews, USER, imap_store(dovecot), target_user)
    run_sync(tmp_path / "state.db", SyncOptions(), [account])
    with ews.open(USER) as left, imap_store(dovecot).open(target_user) as right:
        assert [d.describe() for d in compare(left, right).differences] == []


def test_the_store_is_read_only(ews):
    with ews.open(USER) as session, pytest.raises(CapabilityMissing):
        session.append(INBOX, [NewMessage(b"x")])


def test_wrong_password_is_authentication_failed():
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, EWS_URL, status=401, body="")
        store = EwsMailStore("mail.example.org", lambda: "wrong", username="EXAMPLE\\svc",
                             auth="basic")
        with pytest.raises(AuthenticationFailed), store.open(USER) as session:
            session.folders()


def test_flag_mapping_is_pure():
    assert flags_from_item(True, 0x8, 2, 104, ["Project X"]) == {
        "\\Seen", "\\Draft", "\\Flagged", "$Forwarded", "Project_X"}
    assert flags_from_item(False, 0, 1, None, None) == frozenset()


def test_command_line_ews_url_copies_to_a_maildir(ews, tmp_path, monkeypatch):
    from cutover.cli import main

    monkeypatch.setenv("CUTOVER_SOURCE_PASSWORD", "pw")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(["--workspace", str(tmp_path), "mailbox", "sync", f"ews://{USER}@mail.example.org",
              "maildir:mail/datarequest", "--json"])
    assert exit_info.value.code == 0
    with MaildirMailStore(tmp_path / "mail").open("datarequest") as session:
        assert sum(f.messages for f in session.folders()) == 7
