"""What phase 2 leaves behind keeps its mail: `exo.accepted_domain`, `exo.connector`,
`exo.mail_contact`, `exo.auto_forwarding` and `hybrid.preflight` on the sample's twins, and the
mail-flow cmdlets against the replaying pwsh."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from cutover.errors import StepFailed, UsageError
from cutover.runner import RunOptions
from cutover.steps.base import Change, Context
from cutover.steps.exo_accepted_domain import AcceptedDomainParams, ExoAcceptedDomain
from cutover.steps.exo_auto_forwarding import AutoForwardingParams, ExoAutoForwarding
from cutover.steps.exo_connector import ConnectorParams, ExoConnector
from cutover.steps.exo_mail_contact import ExoMailContact, MailContactParams
from cutover.steps.hybrid_preflight import HybridPreflight, HybridPreflightParams
from cutover.workspace import Workspace
from tests.steps.hybrid_sample import edit_json, runner

DATAREQUEST = {"address": "datarequest@example.org", "local": "datarequest",
               "domain": "example.org", "class": "verification"}
CONTACT = {"name": "{local} (verification)", "external_address": "{local}@verify.example.org",
           "addresses": ["{address}"], "accounts": "linux"}
OUTBOUND = {"name": "To on-premises (cutover)", "direction": "outbound",
            "domains": ["example.org"], "hosts": ["mail.example.org"],
            "tls": "CertificateValidation"}


def context(root: Path | Workspace, params, item=None, state=None) -> Context:
    workspace = root if isinstance(root, Workspace) else Workspace(root)
    return Context(workspace=workspace, plan_name="phase2-cloud", step_id="s",
                   params=params, item=item, state=state)


def through_checkpoint(change: Change) -> Change:
    return Change.from_json(json.loads(json.dumps(change.to_json())))


# --- accepted domain -------------------------------------------------------------------------


def test_domain_becomes_internal_relay_naming_the_mailboxes_that_stay(agency):
    step, ctx = ExoAcceptedDomain(), context(agency, AcceptedDomainParams(domain="example.org"))
    [change] = step.preview(ctx)
    assert (change.before["domain_type"], change.after["domain_type"]) == (
        "Authoritative", "InternalRelay")
    assert "71 mailbox(es) stay on premises" in change.summary  # nothing has moved yet
    assert "reject their mail" in change.summary
    step.apply(ctx, through_checkpoint(change))
    findings = step.verify(ctx, [change])
    assert [(f.severity, "no enabled outbound connector" in f.problem) for f in findings] == [
        ("warning", True)]  # the connector step comes next in the plan
    step.rollback(ctx, through_checkpoint(change))
    assert step.verify(ctx, [change.inverse()]) == []
    assert step.preview(ctx) == [change]


def test_domain_with_no_mailbox_left_on_premises_stays_authoritative(agency):
    (agency / "exchange" / "management" / "mailboxes.json").write_text("[]")
    ctx = context(agency, AcceptedDomainParams(domain="example.org"))
    assert ExoAcceptedDomain().preview(ctx) == []


# --- connectors ------------------------------------------------------------------------------


def test_outbound_connector_is_created_read_back_and_removed_by_rollback(agency):
    step, ctx = ExoConnector(), context(agency, ConnectorParams(**OUTBOUND))
    [change] = step.preview(ctx)
    assert change.action == "create" and "example.org via mail.example.org" in change.summary
    step.apply(ctx, through_checkpoint(change))
    assert step.verify(ctx, [change]) == []
    assert step.preview(ctx) == []
    step.rollback(ctx, through_checkpoint(change))
    assert json.loads((agency / "tenant" / "outbound-connectors.json").read_text()) == []


def test_a_connector_with_other_settings_is_updated_and_rollback_sets_them_back(agency):
    step = ExoConnector()
    ExoConnector().apply(context(agency, ConnectorParams(**OUTBOUND)),
                         step.preview(context(agency, ConnectorParams(**OUTBOUND)))[0])
    ctx = context(agency, ConnectorParams(**{**OUTBOUND, "hosts": ["mail2.example.org"]}))
    [change] = step.preview(ctx)
    assert change.action == "update" and change.before["hosts"] == ["mail.example.org"]
    step.apply(ctx, through_checkpoint(change))
    step.rollback(ctx, through_checkpoint(change))
    assert step.verify(ctx, [change.inverse()]) == []


# --- mail contacts ---------------------------------------------------------------------------


def test_contact_routes_the_old_address_to_its_linux_account(agency):
    step = ExoMailContact()
    ctx = context(agency, MailContactParams(**CONTACT), DATAREQUEST)
    [change] = step.preview(ctx)
    assert change.after == {"name": "datarequest (verification)",
                            "external_address": "datarequest@verify.example.org",
                            "addresses": ["datarequest@example.org"]}
    step.apply(ctx, through_checkpoint(change))
    assert step.verify(ctx, [change]) == []
    tenant = Workspace(agency).connector("management", "tenant")
    routes = {r.address: r for r in tenant.recipients()}
    contact = routes["datarequest@verify.example.org"]
    assert contact.recipient_type == "MailContact"
    assert "datarequest@example.org" in contact.proxy_addresses
    step.rollback(ctx, through_checkpoint(change))
    assert step.verify(ctx, [change.inverse()]) == []


def test_contact_target_must_resolve_before_anything_forwards_to_it(agency):
    item = dict(DATAREQUEST, local="nobody", address="nobody@example.org")
    with pytest.raises(StepFailed, match="nobody@verify.example.org does not resolve"):
        ExoMailContact().preview(context(agency, MailContactParams(**CONTACT), item))


def test_contact_cannot_take_an_address_another_recipient_holds(agency):
    item = dict(DATAREQUEST, address="amira.haddad@example.org")
    with pytest.raises(UsageError, match="amira.haddad@example.org already belongs to"):
        ExoMailContact().preview(context(agency, MailContactParams(**CONTACT), item))


# --- automatic forwarding --------------------------------------------------------------------


def forwarding(agency: Path, address: str, target: str) -> None:
    def add(records):
        for record in records:
            if record["PrimarySmtpAddress"] == address:
                record["ForwardingSmtpAddress"] = f"smtp:{target}"
    edit_json(agency / "tenant" / "recipients.json", add)


def test_external_forwarding_blocked_by_the_outbound_policy_is_found(agency):
    forwarding(agency, "legal@example.org", "counsel@lawfirm.example.net")
    forwarding(agency, "press@example.org", "nobody@example.org")
    findings = ExoAutoForwarding().verify(context(agency, AutoForwardingParams()), [])
    assert sorted((f.item, f.problem.split(",")[0]) for f in findings) == [
        ("legal@example.org", "forwards to counsel@lawfirm.example.net outside the tenant"),
        ("press@example.org", "forwards to nobody@example.org")]
    edit_json(agency / "tenant" / "policies.json", lambda p: p[
        "HostedOutboundSpamFilterPolicy"][0].update(AutoForwardingMode="On"))
    findings = ExoAutoForwarding().verify(context(agency, AutoForwardingParams()), [])
    assert [f.item for f in findings] == ["press@example.org"]  # still nobody holds it


# --- preflight ----------------------------------------------------------------------------------

PREFLIGHT = {"endpoint": "mail.example.org", "routing_domain": "exampleorg.mail.onmicrosoft.com"}


def preflight_findings(agency: Path) -> list:
    current = runner(agency)
    current.run(RunOptions(yes=True, step="inventory"))
    ctx = context(agency, HybridPreflightParams(**PREFLIGHT), state=current.state)
    return HybridPreflight().verify(ctx, [])


def test_preflight_passes_the_sample_and_says_what_would_not_come_across(agency):
    findings = preflight_findings(agency)
    assert [(f.severity, f.item) for f in findings] == [("warning", "julia.wagner@example.org")]
    assert "over 150 MB will not come across" in findings[0].problem


def test_preflight_blockers_name_each_mailbox_and_what_to_fix(agency):
    def break_tenant(records):
        for record in records:
            if record["PrimarySmtpAddress"] == "amira.haddad@example.org":
                record["ExchangeGuid"] = "00000000-0000-0000-0000-000000000000"
            if record["PrimarySmtpAddress"] == "chen.wei@example.org":
                record["SKUAssigned"] = False
                record["EmailAddresses"] = [a for a in record["EmailAddresses"]
                                            if not a.startswith("X500:")]
        return [r for r in records if r["PrimarySmtpAddress"] != "info@example.org"]

    path = agency / "tenant" / "recipients.json"
    path.write_text(json.dumps(break_tenant(json.loads(path.read_text()))))
    endpoints = agency / "tenant" / "migration-endpoints.json"
    edit_json(endpoints, lambda e: e[0].update(TestResult="Failed", TestMessage=(
        "The connection to the server 'mail.example.org' could not be completed.")))
    errors = {(f.item, f.problem.split(":")[0]) for f in preflight_findings(agency)
              if f.severity == "error"}
    assert errors == {
        ("endpoint mail.example.org", "not reachable"),
        ("amira.haddad@example.org", "the mail user's ExchangeGuid "
                                     "00000000-0000-0000-0000-000000000000 is not the mailbox's "
                                     "3a8c9de7-3cce-dd38-ae9d-de24a3bd16ec"),
        ("chen.wei@example.org", "the LegacyExchangeDN is not on the mail user as an X500 "
                                 "address"),
        ("chen.wei@example.org", "no Exchange Online licence (assign one before completion; "
                                 "the 30-day grace is not a plan)"),
        ("info@example.org", "no mail user in the tenant"),
    }


# --- the mail-flow cmdlets, live (replayed pwsh) ----------------------------------------------


@pytest.fixture
def live_tenant(tmp_path):
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump({"management": {
        "tenant": {"kind": "exo", "app_id": "6731de76-14a6-49ae-97bc-6eba6914391e",
                   "organization": "exampleorg.onmicrosoft.com",
                   "certificate_thumbprint": "A3F1C9E07B2D4E6F8A0B1C2D3E4F5A6B7C8D9E0F"}}}))
    return tmp_path


def test_mail_flow_steps_send_the_documented_cmdlets(live_tenant, pwsh_replay):
    pwsh_replay.use("exo-mail-flow")
    workspace = Workspace(live_tenant)  # one workspace: one pwsh for the three steps
    internal_relay = context(workspace, AcceptedDomainParams(domain="example.org",
                                                             domain_type="InternalRelay"))
    outbound = context(workspace, ConnectorParams(**OUTBOUND))
    contact = context(workspace, MailContactParams(**{**CONTACT, "accounts": None}),
                      DATAREQUEST)
    try:
        for step, ctx in ((ExoConnector(), outbound), (ExoAcceptedDomain(), internal_relay),
                          (ExoMailContact(), contact)):
            [change] = step.preview(ctx)
            step.apply(ctx, through_checkpoint(change))
            assert step.verify(ctx, [change]) == [], change.item
    finally:
        workspace.connector("management", "tenant").close()
    sent = [c for c in pwsh_replay.commands() if not c.startswith("Get-")]
    assert sent == [
        "Connect-ExchangeOnline -AppId '6731de76-14a6-49ae-97bc-6eba6914391e' "
        "-CertificateThumbprint 'A3F1C9E07B2D4E6F8A0B1C2D3E4F5A6B7C8D9E0F' "
        "-Organization 'exampleorg.onmicrosoft.com' -ShowBanner:$false",
        "New-OutboundConnector -Name 'To on-premises (cutover)' -ConnectorType 'OnPremises' "
        "-Enabled:$true -RecipientDomains @('example.org') -SmartHosts @('mail.example.org') "
        "-UseMXRecord:$false -TlsSettings 'CertificateValidation' -Comment 'managed by cutover'",
        "Set-AcceptedDomain -Identity 'example.org' -DomainType 'InternalRelay'",
        "New-MailContact -Name 'datarequest (verification)' "
        "-ExternalEmailAddress 'datarequest@verify.example.org'",
        "Set-MailContact -Identity 'datarequest (verification)' "
        "-EmailAddresses @{Add=@('smtp:datarequest@example.org')}"]
