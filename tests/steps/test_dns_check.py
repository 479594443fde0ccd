"""dns.check: the mail-DNS linter as a plan step (changes nothing, fails verify on errors)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cutover.errors import NotFound
from cutover.steps.base import Context
from cutover.steps.dns_check import DnsCheck, DnsCheckParams
from tests.servers.bind import SAMPLE_ZONE, make_lab

BROKEN_MX = SAMPLE_ZONE.replace("@       IN MX   10 mx1", "@       IN MX   10 gone")


def context(lab, **params) -> Context:
    params.setdefault("domain", "example.org")
    return Context(workspace=lab.workspace, plan_name="phase2", step_id="check",
                   params=DnsCheckParams(**params))


@pytest.fixture
def zonefile_lab(tmp_path, bind_pair):
    def build(zone_text=SAMPLE_ZONE):
        return make_lab("zonefile", tmp_path / "ws", {"example.org": zone_text}, bind_pair)
    return build


def test_preview_is_one_informational_change_and_apply_changes_nothing(zonefile_lab):
    lab = zonefile_lab()
    before = (lab.root / "zones" / "example.org").read_text()
    ctx = context(lab)
    (change,) = DnsCheck().preview(ctx)
    assert change.item == "mail DNS example.org"
    assert "changes nothing" in change.describe()
    DnsCheck().apply(ctx, change)
    DnsCheck().rollback(ctx, change)
    assert (lab.root / "zones" / "example.org").read_text() == before


def test_verify_passes_a_domain_with_only_warnings(zonefile_lab):
    lab = zonefile_lab()
    ctx = context(lab)
    findings = DnsCheck().verify(ctx, DnsCheck().preview(ctx))
    assert findings and {f.severity for f in findings} == {"warning"}


def test_verify_fails_on_lint_errors(zonefile_lab):
    lab = zonefile_lab(BROKEN_MX)
    ctx = context(lab)
    findings = DnsCheck().verify(ctx, DnsCheck().preview(ctx))
    errors = [f for f in findings if f.severity == "error"]
    assert [(f.item, f.problem) for f in errors] == [
        ("mx gone.example.org", "MX target gone.example.org does not resolve (no A or AAAA)")]


def test_allowed_checks_only_warn(zonefile_lab):
    lab = zonefile_lab(BROKEN_MX)
    ctx = context(lab, allow=["mx"])
    findings = DnsCheck().verify(ctx, DnsCheck().preview(ctx))
    assert findings and all(f.severity == "warning" for f in findings)


def test_verifying_a_rollback_checks_nothing(zonefile_lab):
    lab = zonefile_lab(BROKEN_MX)
    ctx = context(lab)
    (change,) = DnsCheck().preview(ctx)
    assert DnsCheck().verify(ctx, [change.inverse()]) == []


def test_named_dkim_selector_must_publish_a_key(zonefile_lab):
    lab = zonefile_lab()
    ctx = context(lab, dkim_selectors=["selector1"])
    findings = DnsCheck().verify(ctx, DnsCheck().preview(ctx))
    assert ("dkim selector1._domainkey.example.org", "selector selector1 publishes no DKIM key",
            "error") in [(f.item, f.problem, f.severity) for f in findings]


def test_server_param_asks_a_live_server(bind_pair, tmp_path):
    pair = bind_pair({"example.org": BROKEN_MX})
    lab = make_lab("zonefile", tmp_path / "ws", {"example.org": SAMPLE_ZONE}, bind_pair)
    ctx = context(lab, server=pair.secondary.address)
    findings = DnsCheck().verify(ctx, DnsCheck().preview(ctx))
    assert [f.item for f in findings if f.severity == "error"] == ["mx gone.example.org"]


def test_domain_outside_the_provider_is_not_found(zonefile_lab):
    lab = zonefile_lab()
    ctx = context(lab, domain="example.net")
    with pytest.raises(NotFound, match="provider dns does not answer for example.net"):
        DnsCheck().verify(ctx, DnsCheck().preview(ctx))


def test_unknown_allowed_check_is_rejected_when_the_plan_loads():
    with pytest.raises(ValidationError, match="unknown check"):
        DnsCheckParams(domain="example.org", allow=["spam"])
