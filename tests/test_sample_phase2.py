"""The sample's phase 2 plans: the hybrid plan the demo runs, and the Graph plan kept for
tenants without hybrid, both checked in as the sample writes them, with current runbooks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cutover.plan import load_plan
from cutover.render import runbook_markdown
from cutover.sample import write_sample
from cutover.sample.writer import ALTERNATIVE_PLANS, PLAN_NAMES

REPO = Path(__file__).resolve().parent.parent
PHASE2_PLANS = [name for name in PLAN_NAMES + ALTERNATIVE_PLANS if name.startswith("phase2")]


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample") / "agency"
    write_sample(root)
    return root


@pytest.mark.parametrize("name", PHASE2_PLANS)
def test_phase2_plans_are_checked_in_as_the_sample_writes_them(sample, name):
    assert load_plan(sample / "plans" / name).steps
    assert (REPO / "plans" / name).read_text() == (sample / "plans" / name).read_text()
    assert (REPO / "cutover" / "sample" / "plans" / name).read_text() == \
        (REPO / "plans" / name).read_text()


@pytest.mark.parametrize("name", PHASE2_PLANS)
def test_phase2_runbooks_are_rendered_from_the_current_plans(name):
    rendered = runbook_markdown(load_plan(REPO / "plans" / name), f"plans/{name}")
    assert (REPO / "runbooks" / name.replace(".yaml", ".md")).read_text() == rendered


def test_the_hybrid_plan_moves_by_batch_and_keeps_what_stays_reachable_before_mx_moves():
    plan = load_plan(REPO / "plans" / "phase2-cloud.yaml")
    kinds = {step.id: step.spec.kind for step in plan.steps}
    assert "mailbox.sync" not in kinds.values()  # MRS moves the mailboxes, not a copy
    switch = plan.graph.ancestors("switch-mx")
    assert {"complete", "internal-relay", "outbound-to-onprem", "inbound-from-linux",
            "verification-contacts", "lower-ttl"} <= set(switch)


def test_sample_tenant_has_a_mail_user_for_each_mailbox_that_moves_and_none_for_the_rest(
        sample):
    tenant = json.loads((sample / "tenant" / "recipients.json").read_text())
    onprem = json.loads((sample / "exchange" / "management" / "mailboxes.json").read_text())
    assert {r["RecipientTypeDetails"] for r in tenant} == {"MailUser"}
    guids = {m["PrimarySmtpAddress"]: m["ExchangeGuid"] for m in onprem}
    assert all(guids[r["PrimarySmtpAddress"]] == r["ExchangeGuid"] for r in tenant)
    addresses = {r["PrimarySmtpAddress"] for r in tenant}
    assert "noreply@example.org" not in addresses and "datarequest@example.org" not in addresses
    assert len(addresses) == 52
