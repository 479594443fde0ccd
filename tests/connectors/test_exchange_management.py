"""The Exchange management connectors (`exo`, `exchange-shell`) against a replaying `pwsh`:
recorded ConvertTo-Json output and errors, one pwsh per run, secrets only in its environment,
throttling backed off, render mode reading what the operator's script exported."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from cutover.connectors.exchange_management import OnPremisesManagement, TenantManagement
from cutover.connectors.pwsh import (
    Cmdlet,
    CmdletFailed,
    CmdletThrottled,
    OperatorActionRequired,
    PwshUnavailable,
    RenderedSession,
    quote,
)
from cutover.connectors.tenant_model import TenantRouting
from cutover.errors import ConfigInvalid
from cutover.workspace import Workspace
from tests.pwsh_replay import RECORDED

PFX_PASSWORD = "pfx-secret-Zq81!"
SHELL_PASSWORD = "shell-secret-Lp07?"
EXO = {"kind": "exo", "app_id": "6731de76-14a6-49ae-97bc-6eba6914391e",
       "organization": "exampleorg.onmicrosoft.com"}


def workspace(tmp_path: Path, **management) -> Workspace:
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump({"management": management}))
    return Workspace(tmp_path)


@pytest.fixture
def tenant_with_file_certificate(tmp_path, monkeypatch):
    monkeypatch.setenv("EXO_PFX_PASSWORD", PFX_PASSWORD)
    return workspace(tmp_path, tenant={**EXO, "certificate_file": "credentials/cutover-exo.pfx",
                                       "certificate_password": "env/EXO_PFX_PASSWORD"})


@pytest.fixture
def tenant_with_thumbprint(tmp_path):
    return workspace(tmp_path, tenant={
        **EXO, "certificate_thumbprint": "A3F1C9E07B2D4E6F8A0B1C2D3E4F5A6B7C8D9E0F"})


@pytest.fixture
def onprem(tmp_path, monkeypatch):
    monkeypatch.setenv("EXCHANGE_PASSWORD", SHELL_PASSWORD)
    return workspace(tmp_path, onprem={"kind": "exchange-shell",
                                       "connection_uri": "http://mail.example.org/PowerShell/",
                                       "username": "EXAMPLE\\svc-cutover",
                                       "password": "env/EXCHANGE_PASSWORD"})


def test_tenant_connector_speaks_the_role_and_the_routing_protocols(tenant_with_thumbprint):
    tenant = tenant_with_thumbprint.connector("management", "tenant")
    assert isinstance(tenant, TenantManagement)
    assert isinstance(tenant, TenantRouting)


def test_tenant_routing_facts_come_from_the_cmdlets_in_one_pwsh_session(
        pwsh_replay, tenant_with_file_certificate):
    pwsh_replay.use("exo-tenant-routing")
    tenant = tenant_with_file_certificate.connector("management", "tenant")
    try:
        domains = {d.name: (d.domain_type, d.default) for d in tenant.accepted_domains()}
        connectors = tenant.connectors()
        recipients = {r.address: r for r in tenant.recipients()}
        forwarding_allowed = tenant.automatic_forwarding_allowed()
    finally:
        tenant.close()
    assert domains == {"example.org": ("Authoritative", True),
                       "exampleorg.onmicrosoft.com": ("Authoritative", False),
                       "exampleorg.mail.onmicrosoft.com": ("Authoritative", False)}
    assert [(c.direction, c.connector_type, c.domains) for c in connectors] == [
        ("inbound", "OnPremises", ("*",))]
    assert recipients["amira.haddad@example.org"].recipient_type == "MailUser"
    assert recipients["amira.haddad@example.org"].external_address == "amira.haddad@example.org"
    assert "amira.haddad@exampleorg.mail.onmicrosoft.com" in \
        recipients["amira.haddad@example.org"].proxy_addresses
    assert recipients["legal@example.org"].forwarding_address == "counsel@lawfirm.example.net"
    contact = recipients["datarequest@verify.example.org"]
    assert (contact.recipient_type, contact.external_address) == (
        "MailContact", "datarequest@verify.example.org")
    assert "datarequest@example.org" in contact.proxy_addresses
    assert forwarding_allowed is False  # AutoForwardingMode Automatic blocks external forwards
    started = [e for e in pwsh_replay.entries() if e.get("started")]
    assert len(started) == 1, "one pwsh for every cmdlet of the run"


def test_certificate_password_reaches_pwsh_only_through_its_environment(
        pwsh_replay, tenant_with_file_certificate):
    pwsh_replay.use("exo-tenant-routing")
    tenant = tenant_with_file_certificate.connector("management", "tenant")
    tenant.accepted_domains()
    tenant.close()
    assert pwsh_replay.secrets_in_environment() == ["CUTOVER_EXO_CERT_PASSWORD"]
    assert all(PFX_PASSWORD not in command for command in pwsh_replay.commands())
    assert PFX_PASSWORD not in pwsh_replay.log.read_text()


def test_inline_certificate_password_is_refused(tmp_path):
    ws = workspace(tmp_path, tenant={**EXO, "certificate_file": "a.pfx",
                                     "certificate_password": "hunter2"})
    with pytest.raises(ConfigInvalid, match="certificate_password must be a reference"):
        ws.connector("management", "tenant")


def test_batch_lifecycle_parses_the_recorded_answers(pwsh_replay, tenant_with_thumbprint):
    pwsh_replay.use("exo-migration-batch")
    tenant = tenant_with_thumbprint.connector("management", "tenant")
    try:
        assert tenant.migration_batch("phase2-people") is None  # not found is an answer
        assert tenant.test_migration_endpoint("mail.example.org").ok
        batch = tenant.new_migration_batch(
            "phase2-people", ["amira.haddad@example.org", "sean.obrien@example.org"],
            source_endpoint="mail.example.org",
            target_delivery_domain="exampleorg.mail.onmicrosoft.com", bad_item_limit=10,
            large_item_limit=5, complete_after=None, auto_start=True)
        syncing = {u.address: u for u in tenant.migration_users("phase2-people")}
        synced = tenant.migration_users("phase2-people")
        tenant.complete_migration_batch("phase2-people")
        completed = tenant.migration_users("phase2-people")
        with pytest.raises(CmdletFailed) as twice:
            tenant.complete_migration_batch("phase2-people")
    finally:
        tenant.close()
    assert (batch.status, batch.total, batch.bad_item_limit, batch.large_item_limit) == (
        "Syncing", 2, 10, 5)
    amira = syncing["amira.haddad@example.org"]
    assert (amira.status, amira.percent, amira.items_total, amira.items_synced) == (
        "Syncing", 42, 18234, 7655)
    assert (amira.bytes_total, amira.bytes_transferred) == (2_480_417_345, 1_076_950_118)
    sean = syncing["sean.obrien@example.org"]
    assert sean.failed and "TooManyBadItemsPermanentException" in sean.error
    assert [(u.status, u.items_skipped) for u in synced] == [("Synced", 3)]
    assert [u.completed for u in completed] == [True]  # one object: ConvertTo-Json wrote it bare
    assert str(twice.value) == ("Complete-MigrationBatch phase2-people: The migration batch "
                                "can't be completed because its status is 'Completed'. "
                                "(MigrationBatchCannotBeCompletedException)")
    created = next(c for c in pwsh_replay.commands() if c.startswith("New-MigrationBatch"))
    encoded = re.search(r"FromBase64String\('([^']+)'\)", created).group(1)
    assert base64.b64decode(encoded).decode() == ("EmailAddress\r\namira.haddad@example.org\r\n"
                                                  "sean.obrien@example.org\r\n")


def test_throttled_cmdlet_is_retried_after_the_wait_the_server_names(
        pwsh_replay, tenant_with_thumbprint):
    pwsh_replay.use("exo-throttled")
    tenant = tenant_with_thumbprint.connector("management", "tenant")
    waits: list[float] = []
    tenant.session.sleep = waits.append
    try:
        batch = tenant.migration_batch("phase2-people")
        with pytest.raises(CmdletThrottled, match="^Get-MigrationUser phase2-people: The server "
                                                  "is busy"):
            tenant.migration_users("phase2-people")
    finally:
        tenant.close()
    assert batch is not None and batch.status == "Synced"
    assert batch.report == ("Migration batch phase2-people created with 52 user(s).",)
    assert waits[:2] == [3.0, 4.0]  # the server's 3 s, then the back-off's 4 s
    assert len(waits) == 2 + 5  # the last of six attempts is not followed by a wait


def test_onprem_shell_imports_the_remote_session_and_reads_the_source_mailbox(
        pwsh_replay, onprem):
    pwsh_replay.use("exchange-shell")
    shell = onprem.connector("management", "onprem")
    assert isinstance(shell, OnPremisesManagement)
    try:
        mailbox = shell.mailbox("amira.haddad@example.org")
        folders = shell.folder_statistics("amira.haddad@example.org", analysis=True)
        remote = shell.remote_mailbox("amira.haddad@example.org")
        missing = shell.mailbox("nobody@example.org")
        with pytest.raises(CmdletFailed) as denied:
            shell.mailbox("locked@example.org")
    finally:
        shell.close()
    assert (mailbox.recipient_type, mailbox.exchange_guid, mailbox.database) == (
        "UserMailbox", "9d5b0c2e-3e0e-4a57-b2d9-3c31d5e0a1f4", "DB01")
    assert mailbox.legacy_dn.endswith("/cn=amira.haddad")
    inbox = next(f for f in folders if f.folder_type == "Inbox")
    assert (inbox.items, inbox.size_bytes, inbox.top_item_bytes) == (
        12874, 1_848_924_116, 171_337_216)
    assert {f.container_class for f in folders} >= {"IPF.Appointment", "IPF.Contact"}
    assert remote is None and missing is None
    assert str(denied.value).startswith("Get-Mailbox locked@example.org: Active Directory "
                                        "operation failed")
    assert "\n" not in str(denied.value)
    assert pwsh_replay.secrets_in_environment() == ["CUTOVER_EXCHANGE_SHELL_PASSWORD"]
    assert SHELL_PASSWORD not in pwsh_replay.log.read_text()


def test_missing_pwsh_says_what_to_install_or_to_render(tenant_with_thumbprint, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    tenant = tenant_with_thumbprint.connector("management", "tenant")
    with pytest.raises(PwshUnavailable, match="mode: render") as raised:
        tenant.accepted_domains()
    assert raised.value.exit_code == 2


def test_values_are_quoted_so_no_expansion_can_happen():
    assert quote("O'Brien $(Remove-Item x)") == "'O''Brien $(Remove-Item x)'"
    assert Cmdlet.of("Set-AcceptedDomain", {"Identity": "example.org",
                                            "DomainType": "InternalRelay"}).text() == \
        "Set-AcceptedDomain -Identity 'example.org' -DomainType 'InternalRelay'"


# --- render mode ---------------------------------------------------------------------------


def test_render_mode_writes_the_script_then_reads_what_it_exported(tmp_path):
    ws = workspace(tmp_path, tenant={**EXO, "certificate_thumbprint": "A3F1", "mode": "render"})
    tenant = ws.connector("management", "tenant")
    assert isinstance(tenant.session, RenderedSession)
    shown = []
    tenant.session.show = shown.append
    with pytest.raises(OperatorActionRequired, match="then `cutover resume`") as pending:
        tenant.migration_users("phase2-people")
    assert pending.value.exit_code == 2
    script = shown[0].script
    text = script.read_text()
    assert "Connect-ExchangeOnline -AppId '6731de76-14a6-49ae-97bc-6eba6914391e'" in text
    assert ("Get-MigrationUser -BatchId 'phase2-people' -ResultSize 'Unlimited' | "
            "Get-MigrationUserStatistics") in text
    assert f"-OutFile (Join-Path $PSScriptRoot '{shown[0].result.name}')" in text
    # the operator runs it; the export is the same envelope a live session prints
    recorded = yaml.safe_load((RECORDED / "exo-migration-batch.yaml").read_text())
    output = json.loads(next(e["output"] for e in recorded
                             if e["command"].startswith("^Get-MigrationUser")))
    shown[0].result.write_text(json.dumps({"ok": True, "result": output,
                                           "exported": datetime.now(UTC).isoformat()}),
                               encoding="utf-8-sig")
    users = {u.address: u.status for u in tenant.migration_users("phase2-people")}
    assert users == {"amira.haddad@example.org": "Syncing", "sean.obrien@example.org": "Failed"}


def test_render_mode_asks_again_for_a_read_older_than_its_max_age(tmp_path):
    ws = workspace(tmp_path, tenant={**EXO, "certificate_thumbprint": "A3F1", "mode": "render",
                                     "render_max_age_minutes": 30})
    tenant = ws.connector("management", "tenant")
    rendered = tenant.session.render(Cmdlet.of("Get-AcceptedDomain"))
    rendered.result.parent.mkdir(parents=True)
    old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    rendered.result.write_text(json.dumps({"ok": True, "result": [], "exported": old}))
    with pytest.raises(OperatorActionRequired):
        tenant.accepted_domains()


def test_render_mode_keeps_a_change_answered_once_and_writes_the_csv_beside_the_script(
        tmp_path):
    ws = workspace(tmp_path, tenant={**EXO, "certificate_thumbprint": "A3F1", "mode": "render"})
    tenant = ws.connector("management", "tenant")
    arguments = dict(source_endpoint="mail.example.org",
                     target_delivery_domain="exampleorg.mail.onmicrosoft.com",
                     bad_item_limit=10, large_item_limit=None, complete_after=None,
                     auto_start=True)
    with pytest.raises(OperatorActionRequired):
        tenant.new_migration_batch("phase2-people", ["amira.haddad@example.org"], **arguments)
    script = next((tmp_path / "runbooks" / "powershell" / "tenant").glob("New-Migration*.ps1"))
    csv = next(script.parent.glob("*.csv"))
    assert csv.read_bytes() == b"EmailAddress\r\namira.haddad@example.org\r\n"
    assert f"[System.IO.File]::ReadAllBytes((Join-Path $PSScriptRoot '{csv.name}'))" in \
        script.read_text()
    long_ago = "2020-01-01T00:00:00Z"
    script.with_suffix(".json").write_text(json.dumps({
        "ok": True, "exported": long_ago,
        "result": {"Identity": "phase2-people", "Status": "Syncing", "TotalCount": 1}}))
    batch = tenant.new_migration_batch("phase2-people", ["amira.haddad@example.org"],
                                       **arguments)
    assert (batch.name, batch.status) == ("phase2-people", "Syncing")


def test_rollback_cmdlets_stop_remove_and_move_back_with_the_mrs_credential(
        pwsh_replay, tmp_path, monkeypatch):
    monkeypatch.setenv("MRS_PASSWORD", "mrs-secret-Qx5%")
    ws = workspace(tmp_path, tenant={
        **EXO, "certificate_thumbprint": "A3F1C9E07B2D4E6F8A0B1C2D3E4F5A6B7C8D9E0F",
        "onprem_credential": {"username": "EXAMPLE\\svc-mrs", "password": "env/MRS_PASSWORD"}})
    pwsh_replay.use("exo-rollback")
    tenant = ws.connector("management", "tenant")
    try:
        tenant.add_migration_users("phase2-people", ["info@example.org"])
        tenant.start_migration_batch("phase2-people")
        tenant.stop_migration_batch("phase2-people")
        assert tenant.migration_batch("phase2-people").status == "Stopped"
        tenant.remove_migration_batch("phase2-people")
        assert tenant.mail_user("amira.haddad@example.org") is None  # a mailbox now
        tenant.new_outbound_move_request("amira.haddad@example.org",
                                         remote_host="mail.example.org",
                                         target_database="DB01",
                                         target_delivery_domain="example.org",
                                         bad_item_limit=10)
        moving = tenant.move_request("amira.haddad@example.org")
        moved = tenant.move_request("amira.haddad@example.org")
        tenant.remove_move_request("amira.haddad@example.org")
    finally:
        tenant.close()
    assert (moving.status, moving.percent, moving.completed) == ("InProgress", 47, False)
    assert moved.completed
    assert "CUTOVER_EXO_MRS_PASSWORD" in pwsh_replay.secrets_in_environment()
    assert "mrs-secret" not in pwsh_replay.log.read_text()
