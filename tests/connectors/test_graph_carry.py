"""The `graph` personal-data connector (contacts and messageRules of Exchange Online) and the
cloud.carry step through it, against recorded Graph JSON (tests/recorded/graph-carry)."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
import yaml

from cutover.connectors.m365.graph_carry import GraphPersonalData
from cutover.errors import AuthenticationFailed
from cutover.steps.base import Context
from cutover.steps.cloud_carry import CloudCarry, CloudCarryParams
from cutover.workspace import Workspace
from tests.graph_recordings import (
    CLIENT,
    ERIK_CONTACT,
    IDS,
    MAILBOX,
    SECRET,
    TENANT,
    USER,
    register_sign_in,
)
from tests.graph_recordings import recorded as recorded_graph

RECORDED = Path(__file__).parent.parent / "recorded" / "graph-carry"
CONTACTS = f"{MAILBOX}/contacts"
RULES = f"{MAILBOX}/mailFolders/inbox/messageRules"
ERIK = ERIK_CONTACT
BEATRIZ = {"displayName": "Beatriz Santos",
           "emailAddresses": [{"address": "Beatriz.Santos@example.org"}]}
SUPPLIER_RULE = {"kind": "inbox-rule", "name": "Supplier mail", "enabled": True, "priority": 2,
                 "conditions": {"ContainsSubjectStrings": ["Lieferschein"],
                                "FromAddresses": [{"address": "orders@supplier.example.com",
                                                   "name": "orders@supplier.example.com"}]},
                 "exceptions": {"Importance": "High"},
                 "actions": {"MoveToFolder": "Lieferanten", "MarkAsRead": True,
                             "StopProcessingRules": True}}
NEWSLETTER_RULE = {"kind": "inbox-rule", "name": "Newsletters", "enabled": True, "priority": 1,
                   "conditions": {"ContainsSenderStrings": ["news@"]},
                   "actions": {"MoveToFolder": "2024", "StopProcessingRules": True}}
CLASSIFIED_RULE = {"kind": "inbox-rule", "name": "Classified", "enabled": True, "priority": 3,
                   "conditions": {"MessageClassifications": ["Confidential-Internal"]},
                   "actions": {"Delete": True}}


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


def first_page(request) -> tuple[bool, str]:
    return "skip" not in urlsplit(request.url).query, "first page"


def skip_page(request) -> tuple[bool, str]:
    return "skip" in urlsplit(request.url).query, "a later page"


@pytest.fixture
def workspace(tmp_path, monkeypatch) -> Workspace:
    monkeypatch.setenv("CUTOVER_GRAPH_SECRET", SECRET)
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump({"personal": {
        "cloud": {"kind": "graph", "tenant_id": TENANT, "client_id": CLIENT,
                  "client_secret": "env/CUTOVER_GRAPH_SECRET"},
        "exchange": {"kind": "personal-file", "path": "exchange/personal"}}}))
    source = tmp_path / "exchange" / "personal"
    source.mkdir(parents=True)
    (source / f"{USER}.json").write_text(json.dumps({"contacts": [ERIK, BEATRIZ]}))
    return Workspace(tmp_path)


@pytest.fixture
def graph():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        register_sign_in(mock)
        yield mock


def add_folders(graph) -> None:
    graph.get(f"{MAILBOX}/mailFolders", body=recorded_graph("mailfolders-page1.json"),
              match=[first_page])
    graph.get(f"{MAILBOX}/mailFolders", body=recorded_graph("mailfolders-page2.json"),
              match=[skip_page])
    for key, name in [("inbox", "childfolders-inbox.json"), ("labor", "childfolders-labor.json"),
                      ("projekte", "childfolders-projekte.json")]:
        graph.get(f"{MAILBOX}/mailFolders/{IDS[key]}/childFolders", body=recorded_graph(name))


def sent_json(graph, method: str, url: str) -> list[dict]:
    return [json.loads(call.request.body) for call in graph.calls
            if call.request.method == method and call.request.url.split("?")[0] == url]


def test_contacts_are_read_from_the_default_folder_with_the_carried_properties(graph,
                                                                               workspace):
    graph.get(CONTACTS, body=recorded("contacts-before.json"))
    personal = workspace.connector("personal", "cloud")

    [contact] = personal.contacts(USER)

    assert isinstance(personal, GraphPersonalData)
    assert contact["displayName"] == "Beatriz Santos"
    query = parse_qs(urlsplit(next(c.request.url for c in graph.calls
                                   if "/contacts" in c.request.url)).query)
    assert "emailAddresses" in query["$select"][0].split(",")
    assert "personalNotes" in query["$select"][0].split(",")


def test_create_contact_posts_the_graph_contact_without_empty_properties(graph, workspace):
    graph.post(CONTACTS, body=recorded("contact-created.json"), status=201)
    personal = workspace.connector("personal", "cloud")

    created = personal.create_contact(USER, {**ERIK, "nickName": None, "homePhones": []})

    assert created["id"].startswith("AAMkAD")
    [body] = sent_json(graph, "POST", CONTACTS)
    assert body == ERIK


def test_message_rules_are_created_in_the_inbox(graph, workspace):
    graph.get(RULES, body=recorded("messagerules-before.json"))
    graph.post(RULES, body=recorded("messagerule-created.json"), status=201)
    personal = workspace.connector("personal", "cloud")
    rule = {"displayName": "Supplier mail", "sequence": 2, "isEnabled": True,
            "actions": {"markAsRead": True}}

    assert [r["displayName"] for r in personal.message_rules(USER)] == ["Newsletters"]
    assert personal.create_message_rule(USER, rule)["id"] == "AQAAAJ5dZqE="
    assert sent_json(graph, "POST", RULES) == [rule]


def test_deleting_what_is_already_gone_is_not_an_error(graph, workspace):
    graph.delete(f"{CONTACTS}/AAMkAD-gone", status=404, body=recorded("item-not-found.json"))
    graph.delete(f"{RULES}/AQAAAJ5dZqE=", status=204)
    personal = workspace.connector("personal", "cloud")

    personal.delete_contact(USER, "AAMkAD-gone")
    personal.delete_message_rule(USER, "AQAAAJ5dZqE=")

    assert [c.request.method for c in graph.calls][-2:] == ["DELETE", "DELETE"]


def test_folders_are_found_by_well_known_name_path_or_unique_name(graph, workspace):
    graph.get(f"{MAILBOX}/mailFolders/deleteditems",
              json={"id": IDS["deleteditems"]})
    add_folders(graph)
    personal = workspace.connector("personal", "cloud")

    assert personal.folder_id(USER, "deleteditems") == IDS["deleteditems"]
    assert personal.folder_id(USER, "Lieferanten") == IDS["lieferanten"]
    assert personal.folder_id(USER, "Inbox/Lieferanten") == IDS["lieferanten"]
    assert personal.folder_id(USER, "No such folder") is None


def test_missing_permission_names_what_to_grant(graph, workspace):
    graph.get(CONTACTS, status=403, body=recorded("access-denied.json"))

    with pytest.raises(AuthenticationFailed, match="Contacts.ReadWrite and "
                                                   "MailboxSettings.ReadWrite"):
        workspace.connector("personal", "cloud").contacts(USER)


def test_cloud_carry_through_graph_creates_verifies_and_rolls_back(graph, workspace):
    # preview and apply read the lists as they were, verify after the creates
    for _ in range(2):
        graph.get(CONTACTS, body=recorded("contacts-before.json"))
        graph.get(RULES, body=recorded("messagerules-before.json"))
    graph.get(CONTACTS, body=recorded("contacts-after.json"))
    graph.get(RULES, body=recorded("messagerules-after.json"))
    graph.post(CONTACTS, body=recorded("contact-created.json"), status=201)
    graph.post(RULES, body=recorded("messagerule-created.json"), status=201)
    add_folders(graph)
    logged: list[str] = []
    item = {"address": USER, "rules": [NEWSLETTER_RULE, SUPPLIER_RULE, CLASSIFIED_RULE]}
    ctx = Context(workspace, "phase2-cloud-graph", "carry",
                  CloudCarryParams(source="exchange", target="cloud"), item,
                  log=logged.append)
    step = CloudCarry()

    contacts, rules = step.preview(ctx)
    for change in (contacts, rules):
        step.apply(ctx, change)

    assert [c["displayName"] for c in contacts.after["contacts"]] == ["Erik Lund"]
    assert [r["displayName"] for r in rules.after["rules"]] == ["Supplier mail"]
    assert any("'Classified' not carried: condition MessageClassifications" in line
               for line in logged)
    assert not any("Newsletters" in line for line in logged)  # already there, the same
    assert sent_json(graph, "POST", CONTACTS) == [ERIK]
    [rule] = sent_json(graph, "POST", RULES)
    assert rule["actions"]["moveToFolder"] == IDS["lieferanten"]
    assert rule["exceptions"] == {"importance": "high"}
    assert step.verify(ctx, [contacts, rules]) == []

    graph.delete(f"{CONTACTS}/{json.loads(recorded('contact-created.json'))['id']}",
                 status=204)
    graph.delete(f"{RULES}/AQAAAJ5dZqE=", status=204)
    step.rollback(ctx, contacts)
    step.rollback(ctx, rules)
    deleted = [c.request.url.rsplit("/", 1)[1] for c in graph.calls
               if c.request.method == "DELETE"]
    assert deleted == [json.loads(recorded("contact-created.json"))["id"], "AQAAAJ5dZqE="]
