"""What the Graph path reads on premises through EWS: a mailbox's contacts (the `ews`
personal-data connector) and its inbox rules in full (the `ews` inventory source), against
recorded Exchange 2016 SOAP (tests/recorded/ews-carry)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import responses

from cutover.connectors.exchange.ews_contacts import EwsPersonalData
from cutover.connectors.exchange.ews_inventory import EwsInventory
from cutover.connectors.exchange.ews_store import EwsMailStore
from cutover.errors import CapabilityMissing, NotFound
from cutover.parsers.graph_carry import message_rule
from tests.graph_recordings import ERIK_CONTACT

RECORDED = Path(__file__).resolve().parent.parent / "recorded"
CARRY, INVENTORY = RECORDED / "ews-carry", RECORDED / "ews-inventory"
EWS_URL = "https://mail.example.org/EWS/Exchange.asmx"
AMIRA = "amira.haddad@example.org"


class Exchange:
    """Answers each SOAP request with a recording; other mailboxes do not exist. Contacts:
    `<Operation>[-<distinguished folder>].xml` of ews-carry. The inventory: the naming of
    tests/connectors/test_ews_inventory.py, with ews-carry's GetInboxRules."""

    def __init__(self):
        self.operations: list[str] = []
        self.inventory = False

    def __call__(self, request):
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        operation = re.search(r"<s:Body><m:(\w+)", body).group(1)
        self.operations.append(operation)
        mailbox = re.search(r"ConnectingSID><t:PrimarySmtpAddress>([\w.-]+)@", body) or \
            re.search(r"UnresolvedEntry>([\w.-]+)@", body)
        if mailbox is None or mailbox.group(1) != "amira.haddad":
            return 500, {}, (INVENTORY / "ErrorNonExistentMailbox.xml").read_text()
        if self.inventory:
            folder = re.search(r'<m:FolderIds><t:DistinguishedFolderId Id="(\w+)"', body)
            name = f"{operation}-{folder.group(1) + '-' if folder else ''}amira.haddad.xml"
            return 200, {}, ((CARRY / name) if (CARRY / name).exists()
                             else (INVENTORY / name)).read_text()
        folder = re.search(r'<m:(?:FolderIds|ParentFolderIds)><t:DistinguishedFolderId '
                           r'Id="(\w+)"', body)
        name = f"{operation}-{folder.group(1)}.xml" if folder else f"{operation}.xml"
        return 200, {}, (CARRY / name).read_text()


@pytest.fixture
def exchange():
    answering = Exchange()
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add_callback(responses.POST, EWS_URL, callback=answering)
        yield answering


def contacts_source() -> EwsPersonalData:
    return EwsPersonalData(EwsMailStore("mail.example.org", lambda: "pw",
                                        username="EXAMPLE\\svc-cutover"))


def test_contacts_are_read_in_graph_shape_and_personal_groups_skipped(exchange):
    erik, desk = contacts_source().contacts(AMIRA)

    assert erik == ERIK_CONTACT
    assert desk == {"displayName": "Front desk (Vienna)", "fileAs": "Front desk (Vienna)",
                    "businessPhones": ["+43 1 26060 0", "+43 1 26060 5800"]}
    assert exchange.operations == ["GetFolder", "GetFolder", "FindItem", "GetItem"]


def test_a_mailbox_exchange_does_not_know_is_not_found(exchange):
    with pytest.raises(NotFound, match="nobody@example.org"):
        contacts_source().contacts("nobody@example.org")


def test_the_ews_contacts_source_writes_nothing():
    source = contacts_source()
    with pytest.raises(CapabilityMissing, match="source only"):
        source.create_contact(AMIRA, {"displayName": "x"})
    with pytest.raises(CapabilityMissing):
        source.create_message_rule(AMIRA, {"displayName": "x"})
    assert source.folder_id(AMIRA, "Inbox") is None


def test_inventory_keeps_whole_rules_and_the_graph_path_maps_them(exchange):
    exchange.inventory = True
    inventory = EwsInventory("EXAMPLE\\svc-inventory", lambda: "pw", "mail.example.org", None,
                             "basic", [AMIRA], sleep=lambda seconds: None)
    warnings: list[str] = []

    [amira] = list(inventory.collect(warnings))
    reports, holiday, urgent = amira["rules"]

    assert warnings == []
    assert reports["conditions"] == {
        "ContainsSubjectStrings": ["STATION REPORT"],
        "FromAddresses": [{"address": "ops@ims.example.net", "name": "IMS Operations"}]}
    assert reports["exceptions"] == {"HasAttachments": True}
    assert reports["actions"] == {"MoveToFolder": "Archive 2025", "StopProcessingRules": True}
    assert (holiday["enabled"], holiday["priority"]) == (False, 2)
    assert holiday["actions"] == {"ServerReplyWithMessage": True}
    assert urgent["conditions"]["Importance"] == "High"

    folders = {"Archive 2025": "AAMkADah-cloud-archive"}
    body, why = message_rule(reports, folders.get)
    assert why == [] and body["actions"]["moveToFolder"] == "AAMkADah-cloud-archive"
    assert message_rule(holiday, folders.get)[0] is None
    body, why = message_rule(urgent, folders.get)
    assert body["conditions"]["importance"] == "high"
    assert body["actions"] == {"assignCategories": ["Red category"], "markImportance": "high"}
