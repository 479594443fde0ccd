"""The flow after a plan: each step kind's preview `after`, applied to a copy of the facts."""

from __future__ import annotations

from cutover.changes import Change
from cutover.routes.after import StepPreview, facts_after
from cutover.routes.facts import read_facts
from cutover.routes.trace import trace
from cutover.workspace import Workspace
from tests.routes.org import Org

TENANT = {"domains": {"example.org": "Authoritative"}, "connectors": [],
          "recipients": [{"address": "alice@example.org", "type": "UserMailbox"}]}
MX_TO_EOP = Change("MX example.org", "update",
                   {"zone": "example.org", "name": "@", "type": "MX", "ttl": 3600,
                    "values": ["10 mail.example.org."]},
                   {"zone": "example.org", "name": "@", "type": "MX", "ttl": 300,
                    "values": ["0 example-org.mail.protection.outlook.com."]})


def phase2_previews() -> list[StepPreview]:
    return [
        StepPreview("verification-contacts", "exo.mail_contact", [Change(
            "contact datarequest", "create", None,
            {"name": "datarequest (verification)",
             "external_address": "datarequest@verify.example.org",
             "addresses": ["datarequest@example.org"]})]),
        StepPreview("outbound-to-onprem", "exo.connector", [Change(
            "outbound To on-premises", "create", None,
            {"name": "To on-premises", "direction": "outbound", "connector_type": "OnPremises",
             "enabled": True, "domains": ["example.org"], "hosts": ["mail.example.org"],
             "tls": "CertificateValidation"})]),
        StepPreview("internal-relay", "exo.accepted_domain", [Change(
            "accepted domain example.org", "update",
            {"domain": "example.org", "domain_type": "Authoritative"},
            {"domain": "example.org", "domain_type": "InternalRelay"})]),
        StepPreview("switch-mx", "dns.records", [MX_TO_EOP]),
        StepPreview("not-yet", "cloud.migration_batch", [], "cannot preview yet: no batch"),
    ]


def test_phase2_previews_route_people_kept_mailboxes_and_old_addresses(tmp_path):
    facts = read_facts(Workspace(Org(tenant=TENANT,
                                     exchange=["datarequest@example.org", "alice@example.org",
                                               "scanner@example.org"]).write(tmp_path / "ws")))
    after, notes = facts_after(facts, phase2_previews())
    assert notes == ["step not-yet (cloud.migration_batch): cannot preview yet: no batch"]
    assert trace(after, "alice@example.org").ends.side == "cloud"
    kept = trace(after, "scanner@example.org")
    assert [h.kind for h in kept.hops][-1] == "connector"
    assert kept.ends.side == "onprem"
    old = trace(after, "datarequest@example.org")
    assert "MailContact datarequest@example.org -> datarequest@verify.example.org" in \
        [h.cause for h in old.hops]
    assert old.ends.mailbox == "datarequest@verify.example.org"
    # the facts themselves are untouched: this is what the plan would do, not what is
    assert trace(facts, "scanner@example.org").hops[0].host == "mail.example.org"


def test_without_the_connector_a_kept_mailbox_is_a_dead_end_after_the_switch(tmp_path):
    facts = read_facts(Workspace(Org(tenant=TENANT, exchange=["scanner@example.org"]
                                     ).write(tmp_path / "ws")))
    previews = [p for p in phase2_previews() if p.step_id != "outbound-to-onprem"]
    after, _ = facts_after(facts, previews)
    kept = trace(after, "scanner@example.org")
    assert kept.ends.side == "nowhere"
    assert "InternalRelay but no outbound connector" in kept.reason
