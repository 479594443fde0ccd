"""EWS inventory against recorded Exchange 2016 SOAP responses (tests/recorded/ews-inventory)."""

import re
from pathlib import Path

import pytest
import responses

from cutover.connectors.ews_inventory import EwsInventory
from cutover.errors import AuthenticationFailed, ConnectionFailed
from cutover.parsers import ews_inventory_soap as soap

RECORDED = Path(__file__).resolve().parent.parent / "recorded" / "ews-inventory"
EWS_URL = "https://mail.example.org/EWS/Exchange.asmx"


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


class Exchange:
    """Answers each SOAP request with the recorded response for its operation and mailbox;
    `busy` lists operations that first answer ErrorServerBusy once."""

    def __init__(self, busy: tuple[str, ...] = ()):
        self.busy = list(busy)
        self.operations: list[str] = []

    def __call__(self, request):
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        operation = re.search(r"<s:Body><m:(\w+)", body).group(1)
        self.operations.append(operation)
        if operation in self.busy:
            self.busy.remove(operation)
            return 200, {}, recorded("ErrorServerBusy.xml")
        if operation == "GetSearchableMailboxes":
            return 200, {}, recorded("GetSearchableMailboxes.xml")
        mailbox = re.search(r"(?:EmailAddress>|MailboxSmtpAddress>|smtp:)([\w.-]+)@", body)
        return 200, {}, recorded(f"{operation}-{mailbox.group(1).lower()}.xml")


def source(**kwargs) -> tuple[EwsInventory, list[float]]:
    naps: list[float] = []
    options = {"server": "mail.example.org", "autodiscover_email": None, "auth": "basic"}
    options.update(kwargs)
    return EwsInventory("EXAMPLE\\svc-inventory", lambda: "pw", sleep=naps.append,
                        **options), naps


@responses.activate
def test_collect_reads_mailboxes_folders_rules_and_delegates():
    exchange = Exchange()
    responses.add_callback(responses.POST, EWS_URL, callback=exchange)
    ews, _ = source()
    warnings: list[str] = []
    found = {r["address"]: r for r in ews.collect(warnings)}
    assert warnings == []
    assert sorted(found) == ["amira.haddad@example.org", "datarequest@example.org"]
    data = found["datarequest@example.org"]
    assert (data["size_bytes"], data["items"]) == (1324567890 + 45678, 41234 + 12)
    assert data["aliases"] == ["dr@example.org"]
    assert data["display_name"] == "IDC Data Requests" and data["type"] == "user"
    assert data["newest_item"] == "2026-11-25T23:58:02Z"
    assert [r["name"] for r in data["rules"]] == ["Copy requests to Linux", "Old archive copy"]
    assert data["forwarding"] == [{"via": "inbox rule Copy requests to Linux",
                                   "to": "autodrm@verify.example.org", "keep_copy": False}]
    amira = found["amira.haddad@example.org"]
    assert amira["delegates"] == [{"address": "beatriz.santos@example.org", "permissions": {
        "CalendarFolderPermissionLevel": "Editor", "InboxFolderPermissionLevel": "Reviewer"}}]
    assert amira["rules"] == [] and amira["forwarding"] == []
    assert exchange.operations[0] == "GetSearchableMailboxes"
    assert exchange.operations.count("FindFolder") == 2


@responses.activate
def test_server_busy_waits_the_back_off_exchange_asks_for_then_succeeds():
    exchange = Exchange(busy=("FindFolder", "GetInboxRules"))
    responses.add_callback(responses.POST, EWS_URL, callback=exchange)
    ews, naps = source(mailboxes=["datarequest@example.org"])
    found = list(ews.collect([]))
    assert found[0]["items"] == 41234 + 12
    assert naps == [27.432, 27.432]
    assert exchange.operations.count("FindFolder") == 2


@responses.activate
def test_server_busy_that_never_ends_is_a_connection_failure():
    responses.add(responses.POST, EWS_URL, body=recorded("ErrorServerBusy.xml"))
    ews, naps = source(mailboxes=["datarequest@example.org"])
    with pytest.raises(ConnectionFailed, match="stayed busy after 5 attempts"):
        list(ews.collect([]))
    assert len(naps) == 4


@responses.activate
def test_autodiscover_finds_the_ews_url_first():
    responses.add(responses.POST, "https://autodiscover.example.org/autodiscover/autodiscover.xml",
                  status=404)
    responses.add(responses.POST, "https://example.org/autodiscover/autodiscover.xml",
                  body=recorded("autodiscover.xml"))
    exchange = Exchange()
    responses.add_callback(responses.POST, EWS_URL, callback=exchange)
    ews, _ = source(server=None, autodiscover_email="svc-inventory@example.org",
                    mailboxes=["amira.haddad@example.org"])
    assert [r["address"] for r in ews.collect([])] == ["amira.haddad@example.org"]
    assert ews.ews_url == EWS_URL


@responses.activate
def test_refused_credentials_are_named():
    responses.add(responses.POST, EWS_URL, status=401)
    ews, _ = source()
    with pytest.raises(AuthenticationFailed, match="refused EXAMPLE\\\\svc-inventory"):
        list(ews.collect([]))


def test_parse_autodiscover_prefers_the_internal_url():
    assert soap.parse_autodiscover(recorded("autodiscover.xml"))["ews_url"] == EWS_URL


def test_parse_folders_reads_size_property():
    folders = soap.parse_folders(recorded("FindFolder-amira.haddad.xml"))
    assert folders == [
        {"name": "Inbox", "class": "IPF.Note", "messages": 3120, "size_bytes": 734003200},
        {"name": "Archive 2025", "class": "IPF.Note", "messages": 800, "size_bytes": 104857600}]


def test_request_envelope_impersonates_the_mailbox():
    body = soap.envelope(soap.find_folders("a@example.org"), impersonate="a@example.org")
    assert "<t:PrimarySmtpAddress>a@example.org</t:PrimarySmtpAddress>" in body
    assert 'PropertyTag="0x0e08"' in body
