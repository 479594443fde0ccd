"""The mail flow proved with real mail: Postfix, rspamd as its milter, Dovecot LMTP and IMAP, all
on loopback (tests/servers/postfix.py). Each test restores what it changed in the shared lab."""

from __future__ import annotations

import json
import subprocess

import pytest

from cutover.cli import main
from cutover.routes.facts import read_facts
from cutover.routes.probe import ProbeFailed, probe
from cutover.routes.trace import End, trace
from cutover.steps.base import Context
from cutover.steps.postfix_maps import PostfixMaps, PostfixMapsParams
from cutover.steps.spamfilter_domain import SpamfilterDomain, SpamfilterDomainParams
from cutover.workspace import Workspace
from tests.servers.ports import require_binary
from tests.servers.postfix import GHOST_MAILBOX
from tests.servers.rspamd import SPAM_MARKER

NEW = "datarequest@verify.example.org"
OLD = "datarequest@example.org"
STATION = "station-aks01@stations.example.net"
TIMEOUT = 60


def context(lab, step_params) -> Context:
    return Context(workspace=Workspace(lab.workspace), plan_name="lab", step_id="s",
                   params=step_params)


def applied(step, ctx) -> list:
    changes = step.preview(ctx)
    for change in changes:
        step.apply(ctx, change)
    return changes


def rolled_back(step, ctx, changes) -> None:
    for change in reversed(changes):
        step.rollback(ctx, change)


def probe_lab(lab, address: str, timeout: float = TIMEOUT, **options):
    workspace = Workspace(lab.workspace)
    return probe(workspace, read_facts(workspace), address, timeout=timeout, **options)


def test_probe_passes_rspamd_and_arrives_in_the_mailbox_over_imap(mail_lab):
    path = trace(read_facts(Workspace(mail_lab.workspace)), NEW)
    assert [hop.kind for hop in path.hops][:2] == ["mx", "milter"]
    assert path.ends == End("linux", NEW, "linux-mx")
    result = probe_lab(mail_lab, NEW)
    assert result.arrived, result.describe()
    assert result.found_in == f"linux {NEW} INBOX"
    assert "X-Rspamd-Queue-Id" in result.headers  # rspamd's milter saw it
    assert "X-Spamd-Result" in result.headers
    # one Received per hop, oldest first: Postfix took it in, Dovecot's LMTP stored it
    assert len(result.latencies) == 2
    assert result.latencies[0].by == "mx.verify.example.org"
    assert result.latencies[1].seconds is not None and result.latencies[1].seconds >= 0


def test_probe_canary_is_removed_after_arrival(mail_lab):
    result = probe_lab(mail_lab, NEW)
    assert result.arrived
    maildir = mail_lab.dovecot.maildir(NEW)
    stored = [p for sub in ("new", "cur") for p in (maildir / sub).glob("*")]
    assert not any(result.tag.encode() in p.read_bytes() for p in stored)


def test_rerouted_old_address_arrives_in_the_new_account_and_back_after_rollback(mail_lab):
    step = PostfixMaps()
    ctx = context(mail_lab, PostfixMapsParams(server="linux-mx", map="virtual",
                                              entries={OLD: NEW}))
    assert probe_lab(mail_lab, OLD).found_in == f"linux {OLD} INBOX"
    changes = applied(step, ctx)
    try:
        rerouted = probe_lab(mail_lab, OLD)
        assert rerouted.arrived, rerouted.describe()
        assert rerouted.found_in == f"linux {NEW} INBOX"
    finally:
        rolled_back(step, ctx, changes)
    back = probe_lab(mail_lab, OLD)
    assert back.arrived, back.describe()
    assert back.found_in == f"linux {OLD} INBOX"


@pytest.fixture
def verification_spam_policy(mail_lab):
    """spamfilter.domain for the verification domain, rolled back afterwards."""
    step = SpamfilterDomain()
    ctx = context(mail_lab, SpamfilterDomainParams(
        spamfilter="linux-mx", server="linux-mx", domain="verify.example.org",
        known_senders=["@stations.example.net"], reject=False,
        quarantine_folder="Quarantine"))
    changes = applied(step, ctx)
    assert step.verify(ctx, changes) == []
    yield
    rolled_back(step, ctx, changes)
    assert step.verify(ctx, [c.inverse() for c in changes]) == []


def test_known_station_senders_spam_is_quarantined_not_rejected(mail_lab,
                                                                 verification_spam_policy):
    result = probe_lab(mail_lab, NEW, sender=STATION, body=f"station report {SPAM_MARKER}\n",
                       expect=End("linux", NEW, folder="Quarantine"))
    assert result.arrived, result.describe()
    assert result.found_in == f"linux {NEW} Quarantine"
    assert result.headers.get("X-Spam") == "Yes"
    path = trace(read_facts(Workspace(mail_lab.workspace)), NEW)
    assert any("filed into Quarantine" in hop.cause for hop in path.hops)


def test_the_same_spam_to_a_domain_without_the_policy_is_rejected(mail_lab,
                                                                  verification_spam_policy):
    with pytest.raises(ProbeFailed, match="refused by 127.0.0.1:.* after DATA: 5"):
        probe_lab(mail_lab, OLD, sender=STATION, body=f"station report {SPAM_MARKER}\n")


def test_forwarding_loop_is_caught_by_routes_check_before_any_mail_is_sent(mail_lab, capsys):
    step = PostfixMaps()
    ctx = context(mail_lab, PostfixMapsParams(server="linux-mx", map="virtual",
                                              entries={OLD: NEW, NEW: OLD}))
    changes = applied(step, ctx)
    try:
        sent_before = mail_lab.postfix.log_text().count(" client=")
        with pytest.raises(SystemExit) as exited:
            main(["--workspace", str(mail_lab.workspace), "routes", "check", "--json"])
        assert exited.value.code == 1
        findings = json.loads(capsys.readouterr().out)["findings"]
        assert {(f["kind"], f["subject"]) for f in findings} >= {("loop", OLD), ("loop", NEW)}
        with pytest.raises(ProbeFailed, match="loop"):
            probe_lab(mail_lab, OLD)
        assert mail_lab.postfix.log_text().count(" client=") == sent_before
    finally:
        rolled_back(step, ctx, changes)


PROVED_PLAN = f"""\
name: lab-reroute
steps:
  - id: reroute
    kind: postfix.maps
    params: {{server: linux-mx, map: virtual, entries: {{"{OLD}": "{NEW}"}}}}
  - id: prove
    kind: route.probe
    requires: [reroute]
    confirm: false
    params: {{address: "{OLD}", expect: "linux:{NEW}", timeout: {TIMEOUT}}}
"""


def test_a_plan_proves_its_routing_step_with_route_probe_and_rolls_back(mail_lab, capsys):
    plan = mail_lab.workspace / "plans" / "lab-reroute.yaml"
    plan.parent.mkdir(exist_ok=True)
    plan.write_text(PROVED_PLAN)
    workspace = ["--workspace", str(mail_lab.workspace)]
    with pytest.raises(SystemExit) as ran:
        main([*workspace, "run", "plans/lab-reroute.yaml", "--yes"])
    assert ran.value.code == 0, capsys.readouterr()
    with pytest.raises(SystemExit) as rolled:
        main([*workspace, "rollback", "reroute", "--cascade", "--yes"])
    assert rolled.value.code == 0, capsys.readouterr()
    back = probe_lab(mail_lab, OLD)
    assert back.found_in == f"linux {OLD} INBOX"


def test_a_canary_that_does_not_arrive_is_reported_where_postfix_last_saw_it(mail_lab):
    # the lab's transport sends this mailbox's mail to a port where nothing listens
    result = probe_lab(mail_lab, GHOST_MAILBOX, timeout=3,
                       expect=End("linux", GHOST_MAILBOX))
    try:
        assert not result.arrived
        assert "postfix linux-mx log for" in result.last_seen
        assert "status=deferred" in result.last_seen
        assert "Connection refused" in result.last_seen
    finally:  # the canary waits in the queue for a retry: leave no mail behind
        subprocess.run([require_binary("postsuper", "postfix"), "-c",
                        str(mail_lab.postfix.config_dir), "-d", "ALL"],
                       capture_output=True, check=True)
