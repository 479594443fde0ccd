"""A Maildir account copied to Exchange Online (the `graph` store) and verified there.

Graph is played by `responses`: the recorded folder tree, token and batch payloads of
tests/recorded/graph/, and a mailbox that keeps what the copy created and serves it back the way
Exchange Online does: JSON listings, and MIME rebuilt from the stored properties
(multipart/alternative, dates in UTC, base64 bodies, a Message-ID of its own when there was
none), shaped like tests/recorded/graph/message-value.eml. Never the bytes that were sent.
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from email.header import Header
from email.utils import format_datetime, parsedate_to_datetime

import pytest

from cutover.connectors.dovecot.maildir import MaildirMailStore
from cutover.connectors.m365.graph import GraphMailStore
from cutover.connectors.mailstore import INBOX, NewMessage
from cutover.mailsync import engine
from cutover.mailsync.engine import Account, SyncOptions
from cutover.mailsync.verify import BY_CONTENT, BY_IDENTITY, compare
from cutover.state import State
from cutover.workspace import Workspace
from tests.graph_recordings import (
    CLIENT,
    GRAPH,
    IDS,
    MAILBOX,
    SECRET,
    TENANT,
    USER,
    recorded,
    register_sign_in,
)
from tests.mailsync.corpus import run_sync

SOURCE_USER = "anna.berg"
ID_PREFIX = "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0AmxdTOCXSx0OHh4MjS-ScrwAAMDAA"
PROJECT = ("From: Erik Lund <erik@example.net>\r\nTo: Anna Berg <anna.berg@example.org>\r\n"
           "Subject: =?utf-8?q?R=C3=A9sultats_du_lot_42?=\r\n"
           "Date: Sun, 5 Nov 2023 08:14:00 +0100\r\nMessage-ID: <lot42.1699168440@example.net>\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
           "Résultats en pièce jointe.\r\n").encode()
STATION = (b"From: \"Labor Station 3\" <station3@labor.example.org>\r\n"
           b"To: anna.berg@example.org\r\nSubject: Messwerte KW 12\r\n"
           b"Date: Tue, 19 Mar 2024 06:00:00 +0100\r\n\r\npH 7.1\r\nT 21.4\r\n")
REPLY = (b"From: Anna Berg <anna.berg@example.org>\r\nTo: erik@example.net\r\n"
         b"Subject: Re: Lieferung 17\r\nDate: Wed, 20 Mar 2024 10:02:11 +0100\r\n"
         b"Message-ID: <a1b2c3@example.org>\r\n\r\nDanke, ist angekommen.\r\n")
ORDER = (b"From: einkauf@lieferant.example.com\r\nTo: anna.berg@example.org\r\n"
         b"Subject: Bestellung 2024-031\r\nDate: Thu, 21 Mar 2024 14:30:00 +0000\r\n"
         b"Message-ID: <order-2024-031@lieferant.example.com>\r\n\r\nAnbei die Bestellung.\r\n")


def when(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (folder, content, flags, INTERNALDATE): a duplicate, a message without Message-ID, keywords,
# a reply, a forward, and a special-use folder whose Exchange name differs.
SOURCE = [
    (INBOX, PROJECT, {"\\Seen", "$Label1"}, when("2023-11-05T07:14:58")),
    (INBOX, PROJECT, {"\\Seen", "$Label1"}, when("2023-11-05T07:14:58")),
    (INBOX, STATION, {"\\Flagged"}, when("2024-03-19T05:00:07")),
    (INBOX, REPLY, {"\\Seen", "\\Answered"}, when("2024-03-20T09:02:12")),
    ("INBOX/Lieferanten", ORDER, {"$Forwarded", "Projekt Cutover"}, when("2024-03-21T14:30:05")),
    ("Sent", REPLY, {"\\Seen"}, when("2024-03-20T09:02:11")),
]


class ExchangeOnlineMailbox:
    """The messages of one mailbox as Exchange Online keeps them: properties, not MIME."""

    def __init__(self):
        self.messages: dict[str, dict] = {}  # Graph id -> stored properties and folder
        self.created = 0

    def register(self, mock) -> None:
        folder = r"mailFolders/([^/?]+)/messages"
        mock.add_callback("POST", re.compile(rf"{re.escape(MAILBOX)}/{folder}$"), self.create)
        mock.add_callback("GET", re.compile(rf"{re.escape(MAILBOX)}/{folder}(\?.*)?$"),
                          self.listing)
        mock.add_callback("GET", re.compile(rf"{re.escape(MAILBOX)}/messages/([^/]+)/\$value$"),
                          self.mime)

    def create(self, request):
        folder_id = re.search(r"mailFolders/([^/?]+)/messages", request.url).group(1)
        body = json.loads(request.body)
        self.created += 1
        message_id = f"{ID_PREFIX}{self.created:03d}="
        props = {p["id"]: p["value"] for p in body.get("singleValueExtendedProperties", [])}
        # Exchange gives every message a Message-ID; one it made up looks like this
        internet_id = body.get("internetMessageId") or \
            f"<AM0PR07MB6321{self.created:04X}@AM0PR07MB6321.eurprd07.prod.outlook.com>"
        self.messages[message_id] = dict(body, id=message_id, folder=folder_id,
                                         internetMessageId=internet_id,
                                         receivedDateTime=props["SystemTime 0x0E06"],
                                         sentDateTime=props["SystemTime 0x0039"],
                                         verb=props.get("Integer 0x1081"))
        created = json.loads(recorded("message-created.json"))
        created.update({key: self.messages[message_id][key] for key in (
            "id", "subject", "categories", "isRead", "flag", "internetMessageId",
            "receivedDateTime", "sentDateTime")})
        return 201, {"Content-Type": "application/json"}, json.dumps(created)

    def listing(self, request):
        folder_id = re.search(r"mailFolders/([^/?]+)/messages", request.url).group(1)
        value = []
        for item in self.messages.values():
            if item["folder"] != folder_id:
                continue
            props = [{"id": "Integer 0xe08", "value": str(len(self.rebuilt(item)))}]
            if item["verb"]:
                props.append({"id": "Integer 0x1081", "value": item["verb"]})
            value.append({
                "@odata.etag": "W/\"CQAAABYAAACbF1M4JdLHQ4eHgyNL+JyvAAAwLvB\"",
                "id": item["id"], "receivedDateTime": item["receivedDateTime"],
                "isRead": item["isRead"], "isDraft": False,
                "internetMessageId": item["internetMessageId"],
                "categories": item["categories"], "flag": item["flag"],
                "singleValueExtendedProperties": props})
        return 200, {"Content-Type": "application/json"}, json.dumps({
            "@odata.context": f"{GRAPH}/$metadata#users('anna.berg%40example.org')/"
                              f"mailFolders('{folder_id}')/messages", "value": value})

    def mime(self, request):
        message_id = re.search(r"/messages/([^/]+)/\$value", request.url).group(1)
        item = self.messages.get(message_id)
        if item is None:
            return 404, {}, json.dumps({"error": {"code": "ErrorItemNotFound",
                                                  "message": "The specified object was not "
                                                             "found in the store."}})
        return 200, {"Content-Type": "text/plain"}, self.rebuilt(item)

    @staticmethod
    def rebuilt(item: dict) -> bytes:
        """MIME as Exchange Online generates it on read (cf. recorded message-value.eml)."""
        def address(entry: dict) -> str:
            mailbox = entry["emailAddress"]
            name = mailbox.get("name")
            return f"{name} <{mailbox['address']}>" if name and name != mailbox["address"] \
                else mailbox["address"]

        subject = Header(item["subject"], "utf-8").encode() if not item["subject"].isascii() \
            else item["subject"]
        sent = format_datetime(parsedate_to_datetime(
            format_datetime(datetime.fromisoformat(item["sentDateTime"].replace("Z", "+00:00")))))
        text = item["body"]["content"].replace("\r\n", "\n").replace("\n", "\r\n").encode()
        boundary = "_000_" + item["id"][-12:-1] + "_"
        lines = [f"From: {address(item['from'])}" if item.get("from") else None,
                 "To: " + ", ".join(address(r) for r in item["toRecipients"]),
                 f"Subject: {subject}", f"Thread-Topic: {subject}",
                 "Thread-Index: AQHaD7Y0rTGY/ZjUTEeNefSn3HyxXg==",
                 f"Date: {sent}", f"Message-ID: {item['internetMessageId']}",
                 "Content-Language: de-DE", "X-MS-Has-Attach:", "X-MS-TNEF-Correlator:",
                 f"Content-Type: multipart/alternative;\r\n\tboundary=\"{boundary}\"",
                 "MIME-Version: 1.0", "",
                 f"--{boundary}", "Content-Type: text/plain; charset=\"utf-8\"",
                 "Content-Transfer-Encoding: base64", "",
                 base64.encodebytes(text).decode().replace("\n", "\r\n"),
                 f"--{boundary}", "Content-Type: text/html; charset=\"utf-8\"",
                 "Content-Transfer-Encoding: base64", "",
                 base64.encodebytes(b"<html><body><div>" + text + b"</div></body></html>")
                 .decode().replace("\n", "\r\n"), f"--{boundary}--", ""]
        return "\r\n".join(line for line in lines if line is not None).encode()

    def in_folder(self, key: str) -> list[dict]:
        return [m for m in self.messages.values() if m["folder"] == IDS[key]]



def with_state(workspace: Workspace) -> Workspace:
    """The workspace as the runner hands it to connectors: with its State."""
    workspace.state = State.open(workspace.state_path)
    return workspace

@pytest.fixture
def cloud(monkeypatch):
    import responses

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        register_sign_in(mock)
        mock.post(f"{GRAPH}/$batch", body=recorded("well-known-batch.json"),
                  content_type="application/json")
        mock.get(f"{MAILBOX}/mailFolders", body=recorded("mailfolders-page1.json"),
                 match=[lambda r: ("skip" not in r.url, "first page")])
        mock.get(f"{MAILBOX}/mailFolders", body=recorded("mailfolders-page2.json"),
                 match=[lambda r: ("skip" in r.url, "a later page")])
        for key, name in [("inbox", "childfolders-inbox.json"),
                          ("labor", "childfolders-labor.json"),
                          ("projekte", "childfolders-projekte.json")]:
            mock.get(f"{MAILBOX}/mailFolders/{IDS[key]}/childFolders", body=recorded(name))
        mailbox = ExchangeOnlineMailbox()
        mailbox.register(mock)
        mailbox.mock = mock  # type: ignore[attr-defined]
        yield mailbox


@pytest.fixture
def target(tmp_path, monkeypatch) -> GraphMailStore:
    monkeypatch.setenv("CUTOVER_GRAPH_SECRET", SECRET)
    store = GraphMailStore.from_config(
        {"kind": "graph", "tenant_id": TENANT, "client_id": CLIENT,
         "client_secret": "env/CUTOVER_GRAPH_SECRET"},
        with_state(Workspace(tmp_path / "workspace")))
    store.client.sleep = lambda seconds: None  # throttling is tested in test_graph.py
    return store


@pytest.fixture
def source(tmp_path) -> MaildirMailStore:
    store = MaildirMailStore(tmp_path / "maildir")
    with store.open(SOURCE_USER) as session:
        for folder in ("INBOX/Lieferanten", "Sent"):
            session.create_folder(folder)
        for folder, content, flags, date in SOURCE:
            session.append(folder, [NewMessage(content, frozenset(flags), date)])
    return store


def sync(source, target, tmp_path):
    account = Account(source, SOURCE_USER, target, USER)
    return run_sync(tmp_path / "sync.db", SyncOptions(jobs=1), [account])


def verify(source, target):
    with source.open(SOURCE_USER) as left, target.open(USER) as right:
        return compare(left, right)


def test_maildir_copied_to_graph_verifies_equal_by_normalised_identity(cloud, source, target,
                                                                        tmp_path):
    [result] = sync(source, target, tmp_path)

    assert result.copied == len(SOURCE) and cloud.created == len(SOURCE)
    comparison = verify(source, target)
    assert [d.describe() for d in comparison.differences] == []
    assert comparison.method == BY_IDENTITY
    assert comparison.to_json()["comparison"] == "normalised-identity"
    assert comparison.messages == len(SOURCE)
    # what makes a digest comparison useless: nothing came back byte for byte
    with source.open(SOURCE_USER) as left, target.open(USER) as right:
        assert not {c for _, c in left.fetch(INBOX, [m.uid for m in left.list_messages(INBOX)])} \
            & {c for _, c in right.fetch(INBOX, [m.uid for m in right.list_messages(INBOX)])}


def test_maildir_to_maildir_still_compares_content_digests(source, tmp_path):
    copy = MaildirMailStore(tmp_path / "copy")
    run_sync(tmp_path / "sync.db", SyncOptions(), [Account(source, SOURCE_USER, copy, "a")])

    with source.open(SOURCE_USER) as left, copy.open("a") as right:
        comparison = compare(left, right)
    assert comparison.equal and comparison.method == BY_CONTENT


def test_a_message_missing_on_graph_is_reported(cloud, source, target, tmp_path):
    sync(source, target, tmp_path)
    duplicate = [m for m in cloud.in_folder("inbox")
                 if m["internetMessageId"] == "<lot42.1699168440@example.net>"][0]
    del cloud.messages[duplicate["id"]]

    comparison = verify(source, target)

    assert [d.describe() for d in comparison.differences] == ["INBOX -> INBOX: 1 missing"]


def test_a_flag_or_keyword_changed_on_graph_is_reported(cloud, source, target, tmp_path):
    sync(source, target, tmp_path)
    [sent] = cloud.in_folder("sentitems")
    sent["isRead"] = False
    [order] = cloud.in_folder("lieferanten")
    order["categories"] = ["Projekt Übergabe"]

    comparison = verify(source, target)

    assert sorted(d.describe() for d in comparison.differences) == [
        "INBOX/Lieferanten -> INBOX/Lieferanten: 1 with other flags",
        "Sent -> Sent Items: 1 with other flags"]


def test_a_message_without_message_id_is_matched_by_its_headers(cloud, source, target,
                                                                 tmp_path):
    sync(source, target, tmp_path)
    [station] = [m for m in cloud.in_folder("inbox") if m["subject"] == "Messwerte KW 12"]
    assert station["internetMessageId"].endswith("prod.outlook.com>")  # made up by Exchange
    station["receivedDateTime"] = "2024-03-19T05:00:09Z"

    comparison = verify(source, target)

    assert [d.describe() for d in comparison.differences] == [
        "INBOX -> INBOX: 1 with another INTERNALDATE"]


class Killed(BaseException):
    """Stands for kill -9 between the APPEND and recording its UIDs."""


def test_interrupted_copy_to_graph_is_rematched_not_copied_twice(cloud, source, target,
                                                                 tmp_path, monkeypatch):
    def crash(phase: str) -> None:
        if phase == "after-append":
            raise Killed()

    monkeypatch.setattr(engine, "_crash_point", crash)
    with pytest.raises(Killed):
        sync(source, target, tmp_path)
    interrupted = cloud.created
    assert interrupted > 0
    monkeypatch.undo()
    monkeypatch.setenv("CUTOVER_GRAPH_SECRET", SECRET)

    [result] = sync(source, target, tmp_path)

    assert result.rematched == interrupted
    assert cloud.created == len(SOURCE)
    assert verify(source, target).equal
    [again] = sync(source, target, tmp_path)
    assert (again.copied, cloud.created) == (0, len(SOURCE))


def test_flags_graph_cannot_hold_are_not_patched_again_on_every_run(cloud, source, target,
                                                                    tmp_path):
    with source.open(SOURCE_USER) as session:  # \Deleted: a flag Exchange Online does not keep
        session.append(INBOX, [NewMessage(STATION,
                                          frozenset({"\\Seen", "\\Deleted"}),
                                          when("2024-03-22T08:00:00"))])
    sync(source, target, tmp_path)
    [again] = sync(source, target, tmp_path)
    assert again.copied == 0 and again.flags_updated == 0
    assert verify(source, target).differences == []


def test_a_rerun_with_another_state_db_finds_the_graph_copies_by_identity(cloud, source, target,
                                                                          tmp_path):
    sync(source, target, tmp_path)
    account = Account(source, SOURCE_USER, target, USER)
    [again] = run_sync(tmp_path / "other.db", SyncOptions(jobs=1), [account])
    assert (again.copied, again.rematched) == (0, len(SOURCE))
    assert cloud.created == len(SOURCE) and verify(source, target).equal
