"""The routing model on twins: traces read as the path mail takes, and `check` finds loops,
dead ends, filters crossed twice or never, long forwarding chains and MX hosts refusing their
domain. Exchange Online comes in through the TenantRouting protocol (tests/routes/org.py)."""

from __future__ import annotations

import pytest

from cutover.routes.check import check
from cutover.routes.facts import read_facts
from cutover.routes.trace import End, trace
from cutover.workspace import Workspace
from tests.routes.org import CLOUD_MX, LINUX_MX, Org

CLOUD_MXS = {"example.org": CLOUD_MX, "verify.example.org": LINUX_MX}


def facts_of(org: Org, tmp_path):
    return read_facts(Workspace(org.write(tmp_path / "ws")))


def kinds(path) -> list[str]:
    return [hop.kind for hop in path.hops]


# --- traces ------------------------------------------------------------------------------------

def test_verification_address_passes_the_milter_into_its_linux_mailbox(tmp_path):
    path = trace(facts_of(Org(), tmp_path), "DataRequest@verify.example.org")
    assert kinds(path) == ["mx", "milter", "deliver", "sieve"]
    assert path.hops[0].host == "mx.verify.example.org"
    assert path.hops[1].host == "linux-mx"
    assert "verify.example.org: spam is marked and filed into Quarantine" in path.hops[1].cause
    assert path.ends == End("linux", "datarequest@verify.example.org", "linux-mx")
    assert path.to_json()["ends"] == {"side": "linux",
                                      "mailbox": "datarequest@verify.example.org"}
    assert set(path.to_json()["hops"][0]) == {"kind", "host", "cause"}


def test_old_address_forwarded_by_exchange_ends_in_the_new_account(tmp_path):
    org = Org(exchange_forwarding={"datarequest@example.org":
                                   ("datarequest@verify.example.org", False)})
    path = trace(facts_of(org, tmp_path), "datarequest@example.org")
    assert kinds(path)[:3] == ["mx", "forward", "mx"]
    assert path.hops[0].host == "mail.example.org"
    assert path.ends.mailbox == "datarequest@verify.example.org"
    assert path.forwards == 1


def test_forwarding_that_keeps_a_copy_records_the_copy(tmp_path):
    org = Org(exchange_forwarding={"datarequest@example.org":
                                   ("datarequest@verify.example.org", True)})
    path = trace(facts_of(org, tmp_path), "datarequest@example.org")
    assert path.copies == [End("onprem", "datarequest@example.org", "mail.example.org")]


@pytest.mark.parametrize("script, end", [
    ('require ["fileinto"];\nfileinto "Archive";\n',
     End("linux", "bulletin@verify.example.org", "linux-mx", "Archive")),
    ('require ["vnd.dovecot.pipe"];\n# stations\npipe "ims-gateway";\n',
     End("pipeline", "ims-gateway", "linux-mx")),
    ('redirect "datarequest@verify.example.org";\n',
     End("linux", "datarequest@verify.example.org", "linux-mx")),
    ('if header :contains "subject" "REB" { redirect "x@example.net"; }\n',
     End("linux", "bulletin@verify.example.org", "linux-mx")),
], ids=["fileinto", "pipe", "redirect", "conditional-redirect"])
def test_sieve_actions_decide_where_the_account_s_mail_ends(tmp_path, script, end):
    org = Org(sieve={"bulletin@verify.example.org": script})
    assert trace(facts_of(org, tmp_path), "bulletin@verify.example.org").ends == end


def test_an_address_of_a_domain_that_is_not_ours_ends_outside(tmp_path):
    path = trace(facts_of(Org(), tmp_path), "someone@example.net")
    assert path.hops == []
    assert path.ends.side == "external"


def test_cloud_mailbox_behind_eop(tmp_path):
    org = Org(mx=CLOUD_MXS, cloud=["alice@example.org"])
    path = trace(facts_of(org, tmp_path), "alice@example.org")
    assert kinds(path) == ["mx", "filter", "accepted-domain", "recipient"]
    assert path.ends == End("cloud", "alice@example.org", "Exchange Online")


def tenant(domain_type: str = "Authoritative", connectors=(), recipients=(), **extra):
    return {"domains": {"example.org": domain_type}, "connectors": list(connectors),
            "recipients": list(recipients), **extra}


ON_PREMISES = {"name": "to on-premises", "domains": ["example.org"],
               "hosts": ["mail.example.org"]}


@pytest.mark.parametrize("tenant_facts, end_side", [
    (tenant("Authoritative"), "nowhere"),
    (tenant("InternalRelay"), "nowhere"),
    (tenant("InternalRelay", [ON_PREMISES]), "onprem"),
], ids=["authoritative", "internal-relay-without-connector", "internal-relay-with-connector"])
def test_on_premises_mailbox_after_mx_moves_to_the_cloud(tmp_path, tenant_facts, end_side):
    org = Org(mx=CLOUD_MXS, tenant=tenant_facts)
    path = trace(facts_of(org, tmp_path), "alice@example.org")
    assert path.ends.side == end_side
    if end_side == "onprem":
        assert kinds(path)[-1] == "connector"
        assert path.hops[-1].host == "mail.example.org"


def test_tenant_mail_user_sends_mail_on_to_its_external_address(tmp_path):
    org = Org(mx=CLOUD_MXS, tenant=tenant(recipients=[{"address": "datarequest@example.org",
                                         "type": "MailUser",
                                         "external": "SMTP:datarequest@verify.example.org"}]))
    path = trace(facts_of(org, tmp_path), "datarequest@example.org")
    assert "recipient" in kinds(path)
    assert path.ends.mailbox == "datarequest@verify.example.org"


def test_tenant_blocking_automatic_forwarding_is_a_dead_end(tmp_path):
    forwarding = {"address": "alice@example.org", "type": "UserMailbox",
                  "forward": "alice@example.net"}
    org = Org(mx=CLOUD_MXS, tenant=tenant(recipients=[forwarding], auto_forward=False))
    path = trace(facts_of(org, tmp_path), "alice@example.org")
    assert path.ends.side == "nowhere"
    assert "blocks automatic forwarding" in path.reason


# --- check -------------------------------------------------------------------------------------

def scenario(name: str) -> Org:
    """Each scenario: an organisation with exactly one thing wrong."""
    if name == "alias-loop":
        return Org(virtual={"datarequest@verify.example.org": "bulletin@verify.example.org",
                            "bulletin@verify.example.org": "datarequest@verify.example.org"})
    if name == "cross-system-loop":
        return Org(exchange_forwarding={"datarequest@example.org":
                                        ("datarequest@verify.example.org", False)},
                   virtual={"datarequest@verify.example.org": "datarequest@example.org"})
    if name == "retired-host":
        return Org(mx={"example.org": ["10 old-mx.example.org."],
                       "verify.example.org": ["10 mx.verify.example.org."]})
    if name == "unknown-recipient":
        return Org(virtual={"helpdesk@verify.example.org": "nobody@verify.example.org"})
    if name == "moved-without-connector":
        return Org(mx=CLOUD_MXS,
                   tenant=tenant("InternalRelay", recipients=[]))
    if name == "filter-twice":
        return Org(virtual={"bulletin@verify.example.org": "alice@example.org"},
                   exchange_forwarding={"alice@example.org":
                                        ("datarequest@verify.example.org", False)})
    if name == "no-filter":
        return Org(main_cf={}, policy=None)
    if name == "long-chain":
        return Org(exchange_forwarding={"alice@example.org":
                                        ("datarequest@verify.example.org", False)},
                   virtual={"datarequest@verify.example.org": "bulletin@verify.example.org"},
                   sieve={"bulletin@verify.example.org":
                          'redirect "station@verify.example.org";\n'},
                   linux=["datarequest@verify.example.org", "bulletin@verify.example.org",
                          "station@verify.example.org"])
    if name == "mx-refuses":
        return Org(mailbox_domains=[], linux=[], postfix_config={
            "hosts": ["mx.verify.example.org"]})
    if name == "not-accepted-by-tenant":
        return Org(mx=CLOUD_MXS,
                   tenant={"domains": {}, "connectors": [], "recipients": []})
    raise KeyError(name)


@pytest.mark.parametrize("name, kind, subject", [
    ("alias-loop", "loop", "datarequest@verify.example.org"),
    ("cross-system-loop", "loop", "datarequest@example.org"),
    ("retired-host", "mx-refuses", "example.org"),
    ("retired-host", "dead-end", "alice@example.org"),
    ("unknown-recipient", "dead-end", "helpdesk@verify.example.org"),
    ("moved-without-connector", "dead-end", "alice@example.org"),
    ("filter-twice", "filter-twice", "bulletin@verify.example.org"),
    ("no-filter", "no-filter", "datarequest@verify.example.org"),
    ("long-chain", "long-chain", "alice@example.org"),
    ("mx-refuses", "mx-refuses", "verify.example.org"),
    ("not-accepted-by-tenant", "mx-refuses", "example.org"),
])
def test_check_finds_what_is_wrong(tmp_path, name, kind, subject):
    findings = check(facts_of(scenario(name), tmp_path))
    assert (kind, subject) in {(f.kind, f.subject) for f in findings}, findings


def test_check_of_a_sound_organisation_finds_nothing(tmp_path):
    org = Org(exchange_forwarding={"datarequest@example.org":
                                   ("datarequest@verify.example.org", False)})
    assert check(facts_of(org, tmp_path)) == []


def test_routes_declared_in_cutover_yaml_override_the_guess(tmp_path):
    org = Org()
    root = org.write(tmp_path / "ws")
    config = (root / "cutover.yaml").read_text()
    (root / "cutover.yaml").write_text(config + "routes:\n  retired: [mail.example.org]\n")
    path = trace(read_facts(Workspace(root)), "alice@example.org")
    assert path.ends.side == "nowhere"
    assert "retired" in path.reason


def test_a_contact_listing_its_external_address_among_its_own_sends_mail_there(tmp_path):
    # Get-Recipient lists a contact's ExternalEmailAddress among its EmailAddresses too
    contact = {"address": "datarequest@example.org", "type": "MailContact",
               "external": "SMTP:datarequest@verify.example.org",
               "proxies": ["smtp:datarequest@example.org",
                           "SMTP:datarequest@verify.example.org"]}
    org = Org(mx=CLOUD_MXS, tenant=tenant(recipients=[contact]))
    path = trace(facts_of(org, tmp_path), "datarequest@example.org")
    assert path.ends == End("linux", "datarequest@verify.example.org", "linux-mx")
