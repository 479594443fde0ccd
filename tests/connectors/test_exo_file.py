"""The `exo-file` and `exchange-file` twins: the tenant and the on-premises organisation as
JSON files, MRS simulated over a clock the test moves."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from cutover.connectors.exchange_management import OnPremisesManagement, TenantManagement
from cutover.connectors.mailstore import NewMessage
from cutover.connectors.pwsh import CmdletFailed
from cutover.workspace import Workspace

START = datetime(2026, 3, 14, 8, 0, tzinfo=UTC)
PEOPLE = ["amira.haddad@example.org", "sean.obrien@example.org"]
ROUTING = "exampleorg.mail.onmicrosoft.com"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def mail_user(address: str) -> dict:
    local = address.split("@")[0]
    return {"Alias": local, "DisplayName": local, "Identity": local, "Name": local,
            "PrimarySmtpAddress": address, "RecipientType": "MailUser",
            "RecipientTypeDetails": "MailUser", "ExternalEmailAddress": f"SMTP:{address}",
            "ExchangeGuid": f"guid-{local}", "SKUAssigned": True,
            "EmailAddresses": [f"SMTP:{address}", f"smtp:{local}@{ROUTING}",
                               f"X500:/o=Agency/cn=Recipients/cn={local}"]}


def mailbox(address: str) -> dict:
    local = address.split("@")[0]
    return {"Alias": local, "DisplayName": local, "Identity": local, "Name": local,
            "PrimarySmtpAddress": address, "RecipientTypeDetails": "UserMailbox",
            "ExchangeGuid": f"guid-{local}", "Database": "DB01",
            "LegacyExchangeDN": f"/o=Agency/cn=Recipients/cn={local}",
            "EmailAddresses": [f"SMTP:{address}", f"smtp:{local}@{ROUTING}"]}


@pytest.fixture
def org(tmp_path: Path):
    config = {"mailstores": {"exchange": {"kind": "maildir", "path": "mail/exchange"},
                             "cloud": {"kind": "maildir", "path": "mail/cloud"}},
              "management": {"onprem": {"kind": "exchange-file", "path": "onprem/",
                                        "mailstore": "exchange"},
                             "tenant": {"kind": "exo-file", "path": "tenant/",
                                        "onprem": "onprem", "mailstore": "cloud"}}}
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump(config))
    for directory in ("onprem", "tenant"):
        (tmp_path / directory).mkdir()
    (tmp_path / "onprem" / "mailboxes.json").write_text(json.dumps(
        [mailbox(a) for a in PEOPLE]))
    (tmp_path / "onprem" / "store.json").write_text(json.dumps(
        {"sean.obrien@example.org": {"corrupt_items": 2}}))
    (tmp_path / "tenant" / "recipients.json").write_text(json.dumps(
        [mail_user(a) for a in PEOPLE]))
    (tmp_path / "tenant" / "migration-endpoints.json").write_text(json.dumps(
        [{"Identity": "mail.example.org", "EndpointType": "ExchangeRemoteMove"}]))
    workspace = Workspace(tmp_path)
    store = workspace.connector("mailstores", "exchange")
    for address in PEOPLE:
        with store.open(address) as session:
            session.create_folder("Sent Items")
            session.append("INBOX", [NewMessage(f"Subject: {n}\r\n\r\nbody {n}\r\n".encode())
                                     for n in range(5)])
            session.append("Sent Items", [NewMessage(b"Subject: sent\r\n\r\nsent\r\n")])
    clock = Clock()
    tenant = workspace.connector("management", "tenant")
    tenant.use_clock(clock)
    return workspace, tenant, clock


def create(tenant, bad_item_limit=5, **options):
    return tenant.new_migration_batch(
        "phase2-people", PEOPLE, source_endpoint="mail.example.org",
        target_delivery_domain=ROUTING, bad_item_limit=bad_item_limit, large_item_limit=None,
        complete_after=options.get("complete_after"), auto_start=options.get("start", True))


def statuses(tenant) -> dict[str, str]:
    return {u.address: u.status for u in tenant.migration_users("phase2-people")}


def test_twins_speak_the_role_protocols(org):
    workspace, tenant, _ = org
    assert isinstance(tenant, TenantManagement)
    assert isinstance(workspace.connector("management", "onprem"), OnPremisesManagement)


def test_onprem_folder_statistics_come_from_the_mail_store(org):
    workspace, _, _ = org
    rows = workspace.connector("management", "onprem").folder_statistics(PEOPLE[0])
    assert [(r.path, r.folder_type, r.items) for r in rows] == [
        ("/Inbox", "Inbox", 5), ("/Sent Items", "SentItems", 1)]


def test_users_go_queued_syncing_synced_and_stay_synced_until_completed(org):
    _, tenant, clock = org
    batch = create(tenant)
    assert batch.status == "Syncing" and batch.total == 2
    assert set(statuses(tenant).values()) <= {"Queued", "Syncing"}
    clock.advance(minutes=20)
    amira = next(u for u in tenant.migration_users("phase2-people")
                 if u.address == PEOPLE[0])
    assert amira.status == "Syncing" and 10 <= amira.percent < 95
    clock.advance(hours=3)
    assert statuses(tenant) == {a: "Synced" for a in PEOPLE}
    assert tenant.migration_batch("phase2-people").status == "Synced"
    clock.advance(days=3)
    assert statuses(tenant) == {a: "Synced" for a in PEOPLE}  # pre-staged, kept in sync


def test_completion_moves_the_mailbox_as_mrs_does(org):
    workspace, tenant, clock = org
    create(tenant)
    clock.advance(hours=3)
    tenant.complete_migration_batch("phase2-people")
    assert set(statuses(tenant).values()) == {"Completing"}
    clock.advance(minutes=11)
    users = {u.address: u for u in tenant.migration_users("phase2-people")}
    assert {u.status for u in users.values()} == {"Completed"}
    assert users["sean.obrien@example.org"].items_skipped == 2  # within the BadItemLimit
    assert tenant.mailbox(PEOPLE[0]).recipient_type == "UserMailbox"
    assert tenant.mail_user(PEOPLE[0]) is None
    onprem = workspace.connector("management", "onprem")
    assert onprem.mailbox(PEOPLE[0]) is None
    assert onprem.remote_mailbox(PEOPLE[0]).target_address == f"amira.haddad@{ROUTING}"
    cloud = workspace.connector("mailstores", "cloud")
    with cloud.open("sean.obrien@example.org") as session:
        assert session.folder("INBOX").messages == 3  # the two corrupt items stayed behind
        assert session.folder("Sent Items").messages == 1


def test_a_mailbox_over_the_bad_item_limit_fails_and_a_raised_limit_lets_it_through(org):
    _, tenant, clock = org
    create(tenant, bad_item_limit=0)
    clock.advance(hours=3)
    users = {u.address: u for u in tenant.migration_users("phase2-people")}
    assert users["sean.obrien@example.org"].failed
    assert "TooManyBadItemsPermanentException" in users["sean.obrien@example.org"].error
    assert users["amira.haddad@example.org"].status == "Synced"
    assert tenant.migration_batch("phase2-people").status == "SyncedWithErrors"
    tenant.set_migration_batch_limits("phase2-people", 5, None)
    tenant.start_migration_batch("phase2-people")  # retries the failed user
    clock.advance(hours=3)
    assert statuses(tenant) == {a: "Synced" for a in PEOPLE}


def test_the_service_refuses_a_second_batch_and_a_second_completion(org):
    _, tenant, clock = org
    create(tenant)
    with pytest.raises(CmdletFailed, match="^New-MigrationBatch phase2-people: A migration "
                                           "batch with the name"):
        create(tenant)
    clock.advance(hours=3)
    tenant.complete_migration_batch("phase2-people")
    with pytest.raises(CmdletFailed, match="can't be completed because its status is "
                                           "'Completing'"):
        tenant.complete_migration_batch("phase2-people")
    report = tenant.migration_batch("phase2-people").report
    assert sum("created" in entry for entry in report) == 1
    assert sum("Completion requested" in entry for entry in report) == 1


def test_stop_then_remove_leaves_the_tenant_as_it_was(org):
    workspace, tenant, clock = org
    before = {p.name: json.loads(p.read_text()) for p in
              (workspace.root / "tenant").glob("*.json")}
    create(tenant)
    clock.advance(minutes=30)
    with pytest.raises(CmdletFailed, match="stop it first"):
        tenant.remove_migration_batch("phase2-people")
    tenant.stop_migration_batch("phase2-people")
    assert set(statuses(tenant).values()) <= {"Stopped", "Queued"}
    tenant.remove_migration_batch("phase2-people")
    assert tenant.migration_batch("phase2-people") is None
    after = {p.name: json.loads(p.read_text()) for p in
             (workspace.root / "tenant").glob("*.json")}
    assert after == before


def test_the_move_back_restores_both_organisations_exactly(org):
    workspace, tenant, clock = org
    onprem_files = workspace.root / "onprem"
    before = {p.name: json.loads(p.read_text()) for p in onprem_files.glob("*.json")}
    recipients_before = json.loads((workspace.root / "tenant" / "recipients.json").read_text())
    create(tenant)
    clock.advance(hours=3)
    tenant.complete_migration_batch("phase2-people")
    clock.advance(minutes=11)
    assert tenant.mailbox(PEOPLE[0]) is not None
    for address in PEOPLE:
        tenant.new_outbound_move_request(address, remote_host="mail.example.org",
                                         target_database="DB01",
                                         target_delivery_domain="example.org",
                                         bad_item_limit=None)
    assert tenant.move_request(PEOPLE[0]).status == "InProgress"
    clock.advance(hours=2)
    assert tenant.move_request(PEOPLE[0]).completed
    for address in PEOPLE:
        tenant.remove_move_request(address)
    assert json.loads((workspace.root / "tenant" / "recipients.json").read_text()) == \
        recipients_before
    assert {p.name: json.loads(p.read_text()) for p in onprem_files.glob("*.json")
            if p.name != "remote-mailboxes.json"} == before
    assert json.loads((onprem_files / "remote-mailboxes.json").read_text()) == []
    with workspace.connector("mailstores", "cloud").open(PEOPLE[0]) as session:
        assert all(folder.messages == 0 for folder in session.folders())
    with workspace.connector("mailstores", "exchange").open(PEOPLE[1]) as session:
        assert session.folder("INBOX").messages == 5  # nothing lost, nothing doubled


def test_mail_flow_objects_round_trip(org):
    _, tenant, _ = org
    from cutover.parsers.exchange_objects import ConnectorSettings

    settings = ConnectorSettings("To on-premises", "outbound", domains=("example.org",),
                                 hosts=("mail.example.org",), tls="CertificateValidation")
    tenant.new_mail_connector(settings)
    assert tenant.mail_connector("To on-premises", "outbound") == settings
    contact = tenant.new_mail_contact("datarequest (verification)",
                                      "datarequest@verify.example.org",
                                      ["datarequest@example.org"])
    assert contact.recipient_type == "MailContact"
    assert {r.address for r in tenant.recipients()} >= {"datarequest@verify.example.org"}
    with pytest.raises(CmdletFailed, match="is already being used"):
        tenant.new_mail_contact("other", "x@verify.example.org", ["amira.haddad@example.org"])
