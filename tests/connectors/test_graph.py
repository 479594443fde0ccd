"""GraphMailStore against recorded Microsoft Graph v1.0 payloads (tests/recorded/graph/)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses

from cutover.connectors.m365.graph import GraphMailStore, UidMap, retry_after_seconds
from cutover.connectors.mailstore import MailboxSession, MailStore, NewMessage
from cutover.errors import AuthenticationFailed, ConnectionFailed, NotFound
from cutover.state import State
from cutover.workspace import Workspace
from tests.graph_recordings import (
    CLIENT,
    GRAPH,
    IDS,
    LOGIN,
    MAILBOX,
    SECRET,
    TENANT,
    USER,
    recorded,
    register_sign_in,
)
from tests.graph_recordings import LOT42_MIME as MIME


def first_page(request) -> tuple[bool, str]:
    return "skip" not in (urlsplit(request.url).query), "first page"


def skip_page(request) -> tuple[bool, str]:
    return "skip" in (urlsplit(request.url).query), "a later page"



def with_state(workspace: Workspace) -> Workspace:
    """The workspace as the runner hands it to connectors: with its State."""
    workspace.state = State.open(workspace.state_path)
    return workspace

@pytest.fixture
def graph(monkeypatch):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        register_sign_in(mock)
        yield mock


@pytest.fixture
def with_folders(graph):
    graph.post(f"{GRAPH}/$batch", body=recorded("well-known-batch.json"),
               content_type="application/json")
    graph.get(f"{MAILBOX}/mailFolders", body=recorded("mailfolders-page1.json"),
              match=[first_page])
    graph.get(f"{MAILBOX}/mailFolders", body=recorded("mailfolders-page2.json"),
              match=[skip_page])
    for key, name in [("inbox", "childfolders-inbox.json"), ("labor", "childfolders-labor.json"),
                      ("projekte", "childfolders-projekte.json")]:
        graph.get(f"{MAILBOX}/mailFolders/{IDS[key]}/childFolders", body=recorded(name))
    return graph


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("CUTOVER_GRAPH_SECRET", SECRET)
    store = GraphMailStore.from_config(
        {"kind": "graph", "tenant_id": TENANT, "client_id": CLIENT,
         "client_secret": "env/CUTOVER_GRAPH_SECRET"}, with_state(Workspace(tmp_path)))
    # the wait is injected: retries are counted, never slept
    store.sleeps = []  # type: ignore[attr-defined]
    store.client.sleep = store.sleeps.append
    return store


def calls_to(mock, method: str, fragment: str) -> list:
    return [c for c in mock.calls if c.request.method == method and fragment in c.request.url]


# --- the protocol ---------------------------------------------------------------------------------
def test_store_and_session_satisfy_the_mailstore_protocol(graph, store):
    assert isinstance(store, MailStore)
    with store.open(USER) as session:
        assert isinstance(session, MailboxSession)
        assert {"SPECIAL-USE", "KEYWORDS", "INTERNALDATE"} <= session.capabilities
    assert store.describe(USER) == f"graph://{USER}@{TENANT}"


def test_token_comes_from_the_client_credentials_flow_and_is_asked_for_once(graph, store):
    with store.open(USER), store.open(USER):
        pass

    [token_call] = calls_to(graph, "POST", "/oauth2/v2.0/token")
    form = parse_qs(token_call.request.body)
    assert form["grant_type"] == ["client_credentials"]
    assert form["scope"] == ["https://graph.microsoft.com/.default"]
    assert form["client_id"] == [CLIENT]
    [inbox_call, *_] = calls_to(graph, "GET", "/mailFolders/inbox")
    assert inbox_call.request.headers["Authorization"].startswith("Bearer eyJ0eXAi")
    assert inbox_call.request.headers["Prefer"] == 'IdType="ImmutableId"'


# --- folders --------------------------------------------------------------------------------------
def test_folder_tree_follows_paging_and_child_folders_with_special_uses(with_folders, store):
    with store.open(USER) as session:
        folders = {f.name: f for f in session.folders()}

    assert sorted(folders) == sorted([
        "Archive", "Conversation History", "Deleted Items", "Drafts", "INBOX",
        "INBOX/Labor", "INBOX/Labor/2024", "INBOX/Lieferanten", "Junk Email", "Projekte",
        "Projekte/Übergabe", "Sent Items"])  # Outbox is mail in transit, not content
    uses = {name: f.special_use for name, f in folders.items() if f.special_use}
    assert uses == {"Archive": "\\Archive", "Deleted Items": "\\Trash", "Drafts": "\\Drafts",
                    "Junk Email": "\\Junk", "Sent Items": "\\Sent"}
    assert (folders["INBOX"].messages, folders["INBOX"].size_bytes) == (3, 158213)
    assert folders["INBOX/Labor/2024"].messages == 7
    validities = [f.uidvalidity for f in folders.values()]
    assert len(set(validities)) == len(validities) and min(validities) > 0
    names = [f.name for f in folders.values()]
    assert names.index("INBOX") < names.index("INBOX/Labor") < names.index("INBOX/Labor/2024")


def test_folder_listing_asks_for_size_property_and_pages(with_folders, store):
    with store.open(USER) as session:
        session.folders()

    first, second = calls_to(with_folders, "GET", f"{MAILBOX}/mailFolders?")
    query = parse_qs(urlsplit(first.request.url).query)
    assert query["$top"] == ["100"]
    assert query["$expand"] == ["singleValueExtendedProperties($filter=id eq 'Long 0x0E08')"]
    assert "skip" in second.request.url
    [batch] = calls_to(with_folders, "POST", "/$batch")
    urls = [r["url"] for r in json.loads(batch.request.body)["requests"]]
    assert f"/users/{USER}/mailFolders/sentitems?$select=id" in urls


def test_uidvalidity_is_stable_across_sessions(with_folders, store):
    with store.open(USER) as session:
        before = {f.name: f.uidvalidity for f in session.folders()}
    with store.open(USER) as session:
        after = {f.name: f.uidvalidity for f in session.folders()}

    assert before == after


def test_create_folder_creates_missing_parent_then_child(with_folders, store):
    parent = {"id": "AAMkNEWPARENT=", "displayName": "Kunden", "parentFolderId": "R",
              "childFolderCount": 0, "totalItemCount": 0}
    child = dict(parent, id="AAMkNEWCHILD=", displayName="Ärzte", parentFolderId="AAMkNEWPARENT=")
    with_folders.post(f"{MAILBOX}/mailFolders", json=parent, status=201)
    with_folders.post(f"{MAILBOX}/mailFolders/AAMkNEWPARENT=/childFolders", json=child,
                      status=201)

    with store.open(USER) as session:
        session.create_folder("Kunden/Ärzte")

    bodies = [json.loads(c.request.body) for c in with_folders.calls
              if c.request.method == "POST" and "/$batch" not in c.request.url
              and "/token" not in c.request.url]
    assert bodies == [{"displayName": "Kunden", "isHidden": False},
                      {"displayName": "Ärzte", "isHidden": False}]


def test_create_folder_for_an_existing_special_use_creates_nothing(with_folders, store):
    with store.open(USER) as session:
        session.create_folder("Sent", special_use="\\Sent")
        session.create_folder("INBOX/Lieferanten")

    assert calls_to(with_folders, "POST", f"{MAILBOX}/mailFolders") == []


# --- messages -------------------------------------------------------------------------------------
def register_inbox_messages(mock) -> None:
    url = f"{MAILBOX}/mailFolders/{IDS['inbox']}/messages"
    mock.get(url, body=recorded("messages-inbox-page1.json"), match=[first_page])
    mock.get(url, body=recorded("messages-inbox-page2.json"), match=[skip_page])


def test_list_messages_maps_flags_and_sizes_and_numbers_uids_in_arrival_order(with_folders, store):
    register_inbox_messages(with_folders)

    with store.open(USER) as session:
        refs = session.list_messages("INBOX")

    assert [r.uid for r in refs] == [1, 2, 3]
    assert [r.internaldate for r in refs] == [
        datetime(2024, 1, 15, 7, 59, 3, tzinfo=UTC), datetime(2024, 2, 28, 16, 5, 41, tzinfo=UTC),
        datetime(2024, 3, 1, 9, 30, 12, tzinfo=UTC)]
    assert [r.flags for r in refs] == [
        {"\\Seen", "$Forwarded", "Project Cutover"}, {"\\Seen", "\\Answered"},
        {"\\Flagged", "$Label1"}]
    assert [r.size for r in refs] == [101789, 8211, 48213]


def test_uids_survive_a_new_session_and_new_messages_get_higher_uids(with_folders, store):
    register_inbox_messages(with_folders)
    with store.open(USER) as session:
        first = {r.size: r.uid for r in session.list_messages("INBOX")}
    with store.open(USER) as session:
        again = {r.size: r.uid for r in session.list_messages("INBOX")}
        info = session.folder("INBOX")

    assert first == again
    assert info.uidnext == 4


def test_fetch_streams_the_mime_of_each_uid_and_skips_vanished_ones(with_folders, store):
    register_inbox_messages(with_folders)
    page = json.loads(recorded("messages-inbox-page2.json"))
    oldest = page["value"][0]["id"]
    mime = b"From: erik@example.net\r\nSubject: lot 41\r\n\r\nbody\r\n"
    with_folders.get(f"{MAILBOX}/messages/{oldest}/$value", body=mime,
                     content_type="text/plain")
    with_folders.get(f"{MAILBOX}/messages/{oldest[:-4]}", status=404)  # never asked
    with store.open(USER) as session:
        session.list_messages("INBOX")
        newest = json.loads(recorded("messages-inbox-page1.json"))["value"][0]["id"]
        with_folders.get(f"{MAILBOX}/messages/{newest}/$value", status=404,
                         json={"error": {"code": "ErrorItemNotFound",
                                         "message": "The specified object was not found in "
                                                    "the store."}})
        fetched = list(session.fetch("INBOX", [1, 3, 99]))

    assert fetched == [(1, mime)]





def test_append_creates_a_received_message_with_extended_properties(with_folders, store):
    url = f"{MAILBOX}/mailFolders/{IDS['lieferanten']}/messages"
    with_folders.post(url, body=recorded("message-created.json"), status=201,
                      content_type="application/json")
    when = datetime(2023, 11, 5, 7, 14, 58, tzinfo=UTC)

    with store.open(USER) as session:
        uids = session.append("INBOX/Lieferanten", [
            NewMessage(MIME, frozenset({"$Label1", "\\Answered"}), when)])

    assert uids == [1]
    [create] = calls_to(with_folders, "POST", url)
    assert create.request.headers["Content-Type"] == "application/json"
    body = json.loads(create.request.body)
    props = {p["id"]: p["value"] for p in body["singleValueExtendedProperties"]}
    assert props["Integer 0x0E07"] == "0"  # neither read nor MSGFLAG_UNSENT: a received message
    assert props["SystemTime 0x0E06"] == "2023-11-05T07:14:58Z"
    assert props["SystemTime 0x0039"] == "2023-11-05T07:14:00Z"
    assert props["Integer 0x1081"] == "102"
    assert props["String 0x007D"].startswith("Return-Path: <erik@example.net>\r\n")
    assert (body["subject"], body["isRead"], body["categories"]) == (
        "Résultats du lot 42", False, ["$Label1"])
    assert body["internetMessageId"] == "<lot42.1699168440@example.net>"


def test_append_of_a_draft_uses_the_mime_import_then_sets_flags_and_date(with_folders, store):
    url = f"{MAILBOX}/mailFolders/{IDS['drafts']}/messages"
    created = json.loads(recorded("message-created-draft.json"))
    with_folders.post(url, json=created, status=201)
    with_folders.patch(f"{MAILBOX}/messages/{created['id']}", json=created)
    when = datetime(2024, 5, 6, 12, 0, tzinfo=UTC)

    with store.open(USER) as session:
        uids = session.append("Drafts", [NewMessage(MIME, frozenset({"\\Draft", "\\Seen"}),
                                                    when)])

    assert uids == [1]
    [create] = calls_to(with_folders, "POST", url)
    assert create.request.headers["Content-Type"] == "text/plain"
    assert base64.b64decode(create.request.body) == MIME
    [patch] = calls_to(with_folders, "PATCH", created["id"])
    body = json.loads(patch.request.body)
    assert body["isRead"] is True
    assert {"id": "SystemTime 0x0E06", "value": "2024-05-06T12:00:00Z"} in \
        body["singleValueExtendedProperties"]


def test_draft_import_mode_sends_every_message_as_mime(with_folders, tmp_path, monkeypatch):
    monkeypatch.setenv("CUTOVER_GRAPH_SECRET", SECRET)
    store = GraphMailStore.from_config(
        {"kind": "graph", "tenant_id": TENANT, "client_id": CLIENT, "import": "draft",
         "client_secret": "env/CUTOVER_GRAPH_SECRET"}, with_state(Workspace(tmp_path)))
    url = f"{MAILBOX}/mailFolders/{IDS['lieferanten']}/messages"
    created = json.loads(recorded("message-created-draft.json"))
    with_folders.post(url, json=created, status=201)
    with_folders.patch(f"{MAILBOX}/messages/{created['id']}", json=created)

    with store.open(USER) as session:
        session.append("INBOX/Lieferanten", [NewMessage(MIME, frozenset())])

    assert calls_to(with_folders, "POST", url)[0].request.headers["Content-Type"] == "text/plain"


def seed_uids(store, folder_key: str, count: int) -> list[int]:
    uid_map = UidMap(store.uid_state(), USER)
    uids = uid_map.uids(IDS[folder_key], [f"AAkMSG{n:03d}=" for n in range(count)])
    uid_map.close()
    return sorted(uids.values())


def batch_echo(status: int = 200):
    def callback(request):
        asked = json.loads(request.body)["requests"]
        return 200, {}, json.dumps({"responses": [
            {"id": r["id"], "status": status, "body": {}} for r in asked]})
    return callback


def test_set_flags_sends_patches_in_batches_of_twenty(with_folders, store):
    uids = seed_uids(store, "lieferanten", 25)
    with store.open(USER) as session:
        session.folders()
        with_folders.remove(responses.POST, f"{GRAPH}/$batch")  # the folder batch is done
        with_folders.add_callback(responses.POST, f"{GRAPH}/$batch", callback=batch_echo())
        session.set_flags("INBOX/Lieferanten", uids, frozenset({"\\Seen", "$Label2"}))

    batches = [json.loads(c.request.body)["requests"]
               for c in calls_to(with_folders, "POST", "/$batch")][1:]
    assert [len(b) for b in batches] == [20, 5]
    first = batches[0][0]
    assert (first["method"], first["url"]) == ("PATCH", f"/users/{USER}/messages/AAkMSG000=")
    assert first["body"]["isRead"] is True and first["body"]["categories"] == ["$Label2"]


def test_delete_removes_for_good_and_forgets_the_uids(with_folders, store):
    uids = seed_uids(store, "lieferanten", 2)
    with store.open(USER) as session:
        session.folders()
        with_folders.replace(responses.POST, f"{GRAPH}/$batch", body=json.dumps({"responses": [
            {"id": "1", "status": 204}, {"id": "2", "status": 404, "body": {"error": {
                "code": "ErrorItemNotFound", "message": "The specified object was not found"}}}]}))
        session.delete("INBOX/Lieferanten", uids)

    requests_ = json.loads(calls_to(with_folders, "POST", "/$batch")[-1].request.body)["requests"]
    assert {r["url"] for r in requests_} == {f"/users/{USER}/messages/AAkMSG000=/permanentDelete",
                                              f"/users/{USER}/messages/AAkMSG001=/permanentDelete"}
    uid_map = UidMap(store.uid_state(), USER)
    assert uid_map.message_ids(IDS["lieferanten"], uids) == {}
    uid_map.close()


# --- throttling -----------------------------------------------------------------------------------
def test_throttled_request_is_retried_after_the_retry_after_seconds(graph, store):
    graph.replace(responses.GET, f"{MAILBOX}/mailFolders/inbox", body=recorded("throttled.json"),
                  status=429, headers={"Retry-After": "7"})
    graph.add(responses.GET, f"{MAILBOX}/mailFolders/inbox", body=recorded("inbox-id.json"))

    with store.open(USER):
        pass

    assert store.sleeps == [7.0]
    assert len(calls_to(graph, "GET", "/mailFolders/inbox")) == 2


def test_service_unavailable_without_retry_after_backs_off(graph, store):
    graph.replace(responses.GET, f"{MAILBOX}/mailFolders/inbox", status=503, body="")
    graph.add(responses.GET, f"{MAILBOX}/mailFolders/inbox", body=recorded("inbox-id.json"))

    with store.open(USER):
        pass

    assert store.sleeps == [2.0]


def test_throttled_batch_members_are_sent_again(with_folders, store):
    uids = seed_uids(store, "lieferanten", 3)
    rounds = []

    def callback(request):
        asked = json.loads(request.body)["requests"]
        rounds.append([r["id"] for r in asked])
        first = len(rounds) == 1
        return 200, {}, json.dumps({"responses": [
            {"id": r["id"], "status": 429 if first and r["id"] != "1" else 200,
             "headers": {"Retry-After": "3"}, "body": {}} for r in asked]})

    with store.open(USER) as session:
        session.folders()
        with_folders.remove(responses.POST, f"{GRAPH}/$batch")
        with_folders.add_callback(responses.POST, f"{GRAPH}/$batch", callback=callback)
        session.set_flags("INBOX/Lieferanten", uids, frozenset({"\\Seen"}))

    assert rounds == [["1", "2", "3"], ["2", "3"]]
    assert store.sleeps == [3.0]


def test_endless_throttling_becomes_connection_failed(graph, store):
    graph.replace(responses.GET, f"{MAILBOX}/mailFolders/inbox", body=recorded("throttled.json"),
                  status=429, headers={"Retry-After": "1"})

    with pytest.raises(ConnectionFailed, match="still throttling"):
        store.open(USER)
    assert store.sleeps == [1.0] * (store.client.max_attempts - 1)


def test_retry_after_accepts_seconds_and_http_dates():
    now = datetime(2026, 11, 20, 9, 20, 0, tzinfo=UTC)

    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Fri, 20 Nov 2026 09:20:30 GMT", now) == 30.0
    assert retry_after_seconds("soon") is None


# --- errors ---------------------------------------------------------------------------------------
def test_wrong_client_secret_is_authentication_failed_without_the_secret(graph, store):
    graph.replace(responses.POST, f"{LOGIN}/oauth2/v2.0/token", status=401,
                  body=recorded("token-invalid-client.json"), content_type="application/json")

    with pytest.raises(AuthenticationFailed) as caught:
        store.open(USER)

    message = str(caught.value)
    assert caught.value.exit_code == 2
    assert "\n" not in message and SECRET not in message
    assert "invalid_client" in message and "AADSTS7000215" in message


def test_expired_token_at_graph_is_authentication_failed(graph, store):
    graph.replace(responses.GET, f"{MAILBOX}/mailFolders/inbox", status=401,
                  body=recorded("unauthenticated.json"))

    with pytest.raises(AuthenticationFailed, match="InvalidAuthenticationToken"):
        store.open(USER)


def test_unknown_user_is_not_found(graph, store):
    graph.get(f"{GRAPH}/users/nobody@example.org/mailFolders/inbox", status=404,
              body=recorded("invalid-user.json"))

    with pytest.raises(NotFound, match="no Exchange Online mailbox for nobody@example.org"):
        store.open("nobody@example.org")


def test_user_without_cloud_mailbox_is_not_found(graph, store):
    graph.get(f"{GRAPH}/users/onprem@example.org/mailFolders/inbox", status=404,
              body=recorded("mailbox-not-enabled.json"))

    with pytest.raises(NotFound):
        store.open("onprem@example.org")


def test_unknown_tenant_is_not_found(graph, store):
    graph.replace(responses.GET, f"{LOGIN}/v2.0/.well-known/openid-configuration", status=400,
                  body=recorded("tenant-not-found.json"))

    with pytest.raises(NotFound, match="tenant"):
        store.open(USER)


def test_unreachable_login_is_connection_failed(graph, store):
    graph.replace(responses.GET, f"{LOGIN}/v2.0/.well-known/openid-configuration",
                  body=requests.ConnectionError("Name or service not known"))

    with pytest.raises(ConnectionFailed, match="login.microsoftonline.com"):
        store.open(USER)


def test_unreachable_graph_is_retried_then_connection_failed(graph, store):
    graph.replace(responses.GET, f"{MAILBOX}/mailFolders/inbox",
                  body=requests.ConnectionError("Connection reset by peer"))

    with pytest.raises(ConnectionFailed, match="graph.microsoft.com"):
        store.open(USER)
    assert len(store.sleeps) == store.client.max_attempts - 1


def test_missing_folder_is_not_found(with_folders, store):
    with store.open(USER) as session, pytest.raises(NotFound, match="Nirgendwo"):
        session.list_messages("Nirgendwo")


def test_neither_secret_nor_token_is_written_to_the_state_db(with_folders, store):
    register_inbox_messages(with_folders)
    with store.open(USER) as session:
        session.list_messages("INBOX")

    stored = store.uid_state().path.read_bytes()
    for suffix in ("-wal", "-shm"):
        extra = Path(f"{store.uid_state().path}{suffix}")
        stored += extra.read_bytes() if extra.exists() else b""
    token = json.loads(recorded("token.json"))["access_token"]
    assert SECRET.encode() not in stored and token.encode() not in stored
    assert b"AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0AmxdTOCXSx0OHh4MjS-ScrwAAMCvAAAA=" in stored


def test_rename_folder_moves_it_under_the_new_parent_then_renames_it(with_folders, store):
    moved = {"id": IDS["lieferanten"], "displayName": "Lieferanten",
             "parentFolderId": IDS["projekte"], "childFolderCount": 0, "totalItemCount": 4}
    with_folders.post(f"{MAILBOX}/mailFolders/{IDS['lieferanten']}/move", json=moved, status=201)
    with_folders.patch(f"{MAILBOX}/mailFolders/{IDS['lieferanten']}",
                       json=dict(moved, displayName="Lieferanten 2024"))

    with store.open(USER) as session:
        session.rename_folder("INBOX/Lieferanten", "Projekte/Lieferanten 2024")

    [move] = calls_to(with_folders, "POST", "/move")
    assert json.loads(move.request.body) == {"destinationId": IDS["projekte"]}
    [patch] = calls_to(with_folders, "PATCH", IDS["lieferanten"])
    assert json.loads(patch.request.body) == {"displayName": "Lieferanten 2024"}


def test_large_attachments_are_uploaded_in_ranges_after_the_message(with_folders, store):
    scan = bytes(range(256)) * (14 * 1024)  # 3.5 MiB: above the 3 MB inline limit
    mime = (b"From: Erik Lund <erik@example.net>\r\nTo: anna.berg@example.org\r\n"
            b"Subject: Scan\r\nDate: Sun, 5 Nov 2023 08:14:00 +0100\r\nMIME-Version: 1.0\r\n"
            b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
            b"Content-Type: text/plain\r\n\r\nsee scan\r\n--b\r\n"
            b"Content-Type: application/pdf\r\n"
            b"Content-Disposition: attachment; filename=\"scan.pdf\"\r\n"
            b"Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(scan).replace(b"\n", b"\r\n") + b"--b--\r\n")
    url = f"{MAILBOX}/mailFolders/{IDS['lieferanten']}/messages"
    created = json.loads(recorded("message-created.json"))
    upload = "https://outlook.office.com/api/v2.0/Users('anna.berg@example.org')/Messages('x')" \
             "/AttachmentSessions('AAMkAD1=')?authtoken=eyJhbGciOiJSUzI1NiJ9.recorded"
    with_folders.post(url, json=created, status=201)
    with_folders.post(f"{MAILBOX}/messages/{created['id']}/attachments/createUploadSession",
                      json={"uploadUrl": upload, "expirationDateTime": "2026-11-20T11:25:40Z",
                            "nextExpectedRanges": ["0-"]}, status=201)
    with_folders.put(upload.split("?")[0], json={"nextExpectedRanges": []}, status=200)

    with store.open(USER) as session:
        session.append("INBOX/Lieferanten", [NewMessage(mime, frozenset({"\\Seen"}))])

    [create] = calls_to(with_folders, "POST", url)
    assert "attachments" not in json.loads(create.request.body)
    [session_call] = calls_to(with_folders, "POST", "createUploadSession")
    assert json.loads(session_call.request.body)["AttachmentItem"] == {
        "attachmentType": "file", "name": "scan.pdf", "size": len(scan),
        "contentType": "application/pdf", "isInline": False}
    puts = calls_to(with_folders, "PUT", "AttachmentSessions")
    assert [p.request.headers["Content-Range"] for p in puts] == [
        f"bytes 0-3276799/{len(scan)}", f"bytes 3276800-{len(scan) - 1}/{len(scan)}"]
    assert all("Authorization" not in p.request.headers for p in puts)
    assert b"".join(p.request.body for p in puts) == scan
