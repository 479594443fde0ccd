"""EWS inventory (exchangelib) against recorded Exchange 2016 SOAP (tests/recorded/ews-inventory).

Files are named `<Operation>[-<distinguished folder>]-<mailbox local part>.xml`; the mailbox is
the impersonated one (ExchangeImpersonation header) or the ResolveNames entry.
"""

import re
from pathlib import Path

import dns.resolver
import pytest
import requests
import responses

from cutover.connectors.exchange.ews_inventory import EwsInventory, forwarding, rule_summary
from cutover.errors import AuthenticationFailed, ConfigInvalid, ConnectionFailed, NotFound

RECORDED = Path(__file__).resolve().parent.parent / "recorded" / "ews-inventory"
EWS_URL = "https://mail.example.org/EWS/Exchange.asmx"


def recorded(name: str) -> str:
    return (RECORDED / name).read_text()


class Exchange:
    """Answers each SOAP request with the recorded response for its operation and mailbox;
    `busy` lists operations that first answer ErrorServerBusy once; mailboxes without
    recordings do not exist."""

    def __init__(self, busy: tuple[str, ...] = ()):
        self.busy = list(busy)
        self.operations: list[str] = []
        self.bodies: list[str] = []

    def __call__(self, request):
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        operation = re.search(r"<s:Body><m:(\w+)", body).group(1)
        self.operations.append(operation)
        self.bodies.append(body)
        if operation in self.busy:
            self.busy.remove(operation)
            return 500, {}, recorded("ErrorServerBusy.xml")
        if operation == "GetSearchableMailboxes":
            return 200, {}, recorded("GetSearchableMailboxes.xml")
        mailbox = (re.search(r"ConnectingSID><t:PrimarySmtpAddress>([\w.-]+)@", body)
                   or re.search(r"UnresolvedEntry>([\w.-]+)@", body)).group(1)
        folder = re.search(r'<m:FolderIds><t:DistinguishedFolderId Id="(\w+)"', body)
        name = f"{operation}-{folder.group(1) + '-' if folder else ''}{mailbox}.xml"
        if not (RECORDED / name).exists():
            return 500, {}, recorded("ErrorNonExistentMailbox.xml")
        return 200, {}, recorded(name)


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
                                   "to": "autodrm@verify.example.org", "keep_copy": True}]
    amira = found["amira.haddad@example.org"]
    assert amira["delegates"] == [{"address": "beatriz.santos@example.org", "permissions": {
        "CalendarFolderPermissionLevel": "Editor", "InboxFolderPermissionLevel": "Reviewer"}}]
    assert amira["rules"] == [] and amira["forwarding"] == []
    assert amira["folders"][:2] == [
        {"name": "Inbox", "class": "IPF.Note", "messages": 3120, "size_bytes": 734003200},
        {"name": "Archive 2025", "class": "IPF.Note", "messages": 800, "size_bytes": 104857600}]
    assert exchange.operations[0] == "GetSearchableMailboxes"
    assert exchange.operations.count("FindFolder") == 2


@responses.activate
def test_requests_pin_exchange_2016_and_impersonate_each_mailbox():
    exchange = Exchange()
    responses.add_callback(responses.POST, EWS_URL, callback=exchange)
    ews, _ = source(mailboxes=["datarequest@example.org"])
    list(ews.collect([]))
    assert exchange.operations == ["GetFolder", "GetFolder", "FindFolder", "FindItem",
                                   "GetInboxRules", "GetDelegate", "ResolveNames"]
    assert all('<t:RequestServerVersion Version="Exchange2016"/>' in b for b in exchange.bodies)
    impersonated = [op for op, body in zip(exchange.operations, exchange.bodies, strict=True)
                    if "<t:ExchangeImpersonation>" in body]
    assert impersonated == exchange.operations[:-1]  # ResolveNames asks the directory
    find_folder = exchange.bodies[2]
    assert 'Traversal="Deep"' in find_folder and 'PropertyTag="0xe08"' in find_folder


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
    responses.add(responses.POST, EWS_URL, status=500, body=recorded("ErrorServerBusy.xml"))
    ews, naps = source(mailboxes=["datarequest@example.org"])
    with pytest.raises(ConnectionFailed, match="stayed busy after 5 attempts"):
        list(ews.collect([]))
    assert naps == [27.432] * 4


class DirectoryOfExample:
    """Stands in for exchangelib's DNS resolver: example.org names exist, nothing is sent."""

    def __init__(self):
        self.asked: list[str] = []

    def resolve(self, name: str, rdtype: str, **_):
        self.asked.append(f"{name} {rdtype}")
        if rdtype != "A" or not name.endswith("example.org."):
            raise dns.resolver.NXDOMAIN
        return ["192.0.2.10"]


def autodiscover_service(request):
    if "Authorization" not in request.headers:  # exchangelib first asks which auth to use
        return 401, {"WWW-Authenticate": 'Basic realm="autodiscover.example.org"'}, ""
    return 200, {"Content-Type": "text/xml; charset=utf-8"}, recorded(
        "GetUserSettings-autodiscover.xml")


@responses.activate
def test_autodiscover_finds_the_ews_url_first(monkeypatch, tmp_path):
    from exchangelib.autodiscover import cache
    from exchangelib.autodiscover.discovery import Autodiscovery

    directory = DirectoryOfExample()
    monkeypatch.setattr(Autodiscovery, "resolver", directory)
    monkeypatch.setattr(cache, "AUTODISCOVER_PERSISTENT_STORAGE", tmp_path / "autodiscover")
    monkeypatch.setattr(cache.autodiscover_cache, "_protocols", {})
    responses.add(responses.POST, "https://example.org/autodiscover/autodiscover.svc",
                  status=404)
    responses.add_callback(responses.POST,
                           "https://autodiscover.example.org/autodiscover/autodiscover.svc",
                           callback=autodiscover_service)
    exchange = Exchange()
    responses.add_callback(responses.POST, EWS_URL, callback=exchange)
    ews, _ = source(server=None, autodiscover_email="svc-inventory@example.org",
                    mailboxes=["amira.haddad@example.org"])
    assert [r["address"] for r in ews.collect([])] == ["amira.haddad@example.org"]
    assert ews.ews_url == EWS_URL
    assert directory.asked == ["example.org. A", "autodiscover.example.org. A"]


@responses.activate
def test_refused_credentials_are_named():
    responses.add(responses.POST, EWS_URL, status=401)
    ews, _ = source()
    with pytest.raises(AuthenticationFailed, match="refused EXAMPLE\\\\svc-inventory"):
        list(ews.collect([]))


@responses.activate
def test_unreachable_server_is_a_connection_failure():
    responses.add(responses.POST, EWS_URL,
                  body=requests.ConnectionError("Name or service not known"))
    ews, naps = source()
    with pytest.raises(ConnectionFailed, match="mail.example.org.* cannot be reached") as failure:
        list(ews.collect([]))
    assert "\n" not in str(failure.value) and naps == []


@responses.activate
def test_configured_mailbox_exchange_does_not_know_is_not_found():
    responses.add_callback(responses.POST, EWS_URL, callback=Exchange())
    ews, _ = source(mailboxes=["nobody@example.org"])
    with pytest.raises(NotFound, match="nobody@example.org") as failure:
        list(ews.collect([]))
    assert failure.value.exit_code == 2


def test_source_without_server_or_autodiscover_is_a_config_error():
    with pytest.raises(ConfigInvalid, match="server or autodiscover_email"):
        EwsInventory.from_config({"kind": "ews-inventory", "username": "svc",
                                  "password": "env/EWS_PASSWORD"}, workspace=None)


def test_redirect_rule_with_delete_keeps_no_copy():
    from exchangelib.properties import Actions, Address, Rule

    rule = Rule(display_name="Move to Linux", is_enabled=True, actions=Actions(
        redirect_to_recipients=[Address(email_address="DR@verify.example.org")], delete=True))
    summary = rule_summary(rule)
    assert summary["forward_to"] == ["dr@verify.example.org"] and summary["redirect"]
    assert forwarding([summary]) == [{"via": "inbox rule Move to Linux",
                                      "to": "dr@verify.example.org", "keep_copy": False}]
