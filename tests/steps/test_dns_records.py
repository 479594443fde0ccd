"""dns.records against real BIND (primary + secondary) and the zone-file twin."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from pydantic import ValidationError

from cutover.connectors.dns_zone import Edit
from cutover.dns_model import wanted_rrset
from cutover.errors import AuthenticationFailed, NotFound, UnsafeChange, WorldChanged
from cutover.safety import raise_if_unsafe
from cutover.steps.base import Change, Context, Waiting
from cutover.steps.dns_records import DnsRecords, DnsRecordsParams
from tests.servers.bind import SAMPLE_ZONE, key_file_text, make_lab

ZONE = "example.org"
NOW = datetime(2026, 3, 1, 12, 0, 0)
SWITCH_MX = [{"name": "@", "type": "MX", "ttl": 300, "set": ["10 mx.verify.example."]}]


class DictHolds:
    """The runner's hold table, reduced to a dict: key -> (until, reason)."""

    def __init__(self):
        self.rows: dict[str, tuple[datetime, str]] = {}

    def set(self, key, until, reason):
        self.rows[key] = (until, reason)

    def get(self, key):
        return self.rows.get(key)


def context(lab, changes=None, force=False, holds=None, now=NOW, **params) -> Context:
    params.setdefault("verify_timeout", 15)
    validated = DnsRecordsParams(zone=ZONE, provider="dns", changes=changes or SWITCH_MX,
                                 **params)
    return Context(workspace=lab.workspace, plan_name="phase2", step_id="switch-mx",
                   params=validated, force=force, clock=lambda: now, holds=holds)


def gated(ctx: Context) -> list[Change]:
    """The preview as the runner takes it: the step's changes, then the one safety gate."""
    step = DnsRecords()
    changes = step.preview(ctx)
    raise_if_unsafe(ctx.step_id, step.unsafe_reasons(ctx, changes), ctx.force)
    return changes


def run(ctx: Context) -> list[Change]:
    step = DnsRecords()
    changes = gated(ctx)
    for change in changes:
        step.apply(ctx, change)
    return changes


def through_checkpoint(change: Change) -> Change:
    """What rollback gets: the Change as JSON, read back in another process."""
    return Change.from_json(json.loads(json.dumps(change.to_json())))


# --- preview ---------------------------------------------------------------------------------

def test_preview_is_the_exact_diff_against_served_data(zone_lab):
    lab = zone_lab()
    changes = gated(context(lab, [
        {"name": "@", "type": "MX", "ttl": 300, "set": ["10 mx1"]},
        {"name": "www", "type": "A", "ttl": 3600, "set": ["192.0.2.80"]},
        {"name": "new", "type": "TXT", "ttl": 60, "set": ['"hello world"']},
        {"name": "mx2", "type": "A", "delete": True},
        {"name": "absent", "type": "A", "delete": True},
    ]))
    assert [(c.item, c.action) for c in changes] == [
        ("MX example.org", "update"), ("TXT new.example.org", "create"),
        ("A mx2.example.org", "delete")]
    mx = changes[0]
    assert mx.before == {"zone": ZONE, "name": "@", "type": "MX", "ttl": 3600,
                         "values": ["10 mx1.example.org."]}
    assert mx.after == {"zone": ZONE, "name": "@", "type": "MX", "ttl": 300,
                        "values": ["10 mx1.example.org."]}
    assert changes[2].after is None


def test_preview_after_apply_is_empty(zone_lab):
    lab = zone_lab()
    ctx = context(lab)
    assert run(ctx)
    assert gated(ctx) == []


def test_omitted_ttl_keeps_the_current_one(zone_lab):
    lab = zone_lab()
    changes = gated(context(lab, [{"name": "@", "type": "MX",
                                                  "set": ["20 mx2"]}]))
    assert changes[0].after["ttl"] == 3600


def test_unknown_zone_is_not_found(zone_lab):
    lab = zone_lab()
    ctx = context(lab)
    ctx.params = DnsRecordsParams(zone="nowhere.test", changes=SWITCH_MX)
    with pytest.raises(NotFound):
        gated(ctx)


def test_wrong_tsig_key_fails_preview_before_any_change(bind_pair, tmp_path):
    lab = make_lab("rfc2136", tmp_path / "ws", {ZONE: SAMPLE_ZONE}, bind_pair)
    original = lab.records()
    (lab.root / "keys" / "update.key").write_text(key_file_text())
    with pytest.raises(AuthenticationFailed, match="rejected the signature"):
        gated(context(lab))
    (lab.root / "keys" / "update.key").write_text(lab.pair.key_file.read_text())
    assert lab.records() == original


# --- apply / verify / rollback ---------------------------------------------------------------

def test_apply_verify_rollback_round_trip_restores_zone_record_for_record(zone_lab):
    lab = zone_lab()
    original = lab.records()
    ctx = context(lab, [
        {"name": "@", "type": "MX", "ttl": 300, "set": ["10 mx.verify.example.", "20 mx2"]},
        {"name": "@", "type": "TXT", "ttl": 300, "set": ['"v=spf1 include:spf.example -all"']},
        {"name": "autodiscover", "type": "CNAME", "ttl": 300,
         "set": ["autodiscover.outlook.com."]},
        {"name": "_dmarc", "type": "TXT", "delete": True},
    ], force=True)
    step = DnsRecords()
    changes = run(ctx)
    assert step.verify(ctx, changes) == []
    assert lab.records()[("@", "MX")].values == ("10 mx.verify.example.",
                                                 "20 mx2.example.org.")
    for change in reversed(changes):
        step.rollback(ctx, through_checkpoint(change))
    assert step.verify(ctx, [c.inverse() for c in changes]) == []
    assert lab.records() == original


def test_second_apply_changes_nothing(zone_lab):
    lab = zone_lab()
    ctx = context(lab)
    step = DnsRecords()
    (change,) = step.preview(ctx)
    step.apply(ctx, change)
    serial = lab.provider().serial(ZONE)
    step.apply(ctx, through_checkpoint(change))
    assert lab.provider().serial(ZONE) == serial


def test_second_rollback_changes_nothing(zone_lab):
    lab = zone_lab()
    ctx = context(lab)
    (change,) = run(ctx)
    DnsRecords().rollback(ctx, change)
    serial = lab.provider().serial(ZONE)
    DnsRecords().rollback(ctx, change)
    assert lab.provider().serial(ZONE) == serial


def test_concurrent_edit_between_preview_and_apply_fails_cleanly(zone_lab):
    lab = zone_lab()
    ctx = context(lab)
    (change,) = gated(ctx)
    provider = lab.provider()
    theirs = wanted_rrset(ZONE, "@", "MX", 3600, ["5 theirs.example.net."])
    provider.update(ZONE, [Edit("@", "MX", provider.read_rrset(ZONE, "@", "MX"), theirs)])
    with pytest.raises(WorldChanged, match="changed since the preview"):
        DnsRecords().apply(ctx, change)
    assert lab.provider().read_rrset(ZONE, "@", "MX") == theirs


def test_rollback_does_not_overwrite_a_later_edit(zone_lab):
    lab = zone_lab()
    ctx = context(lab)
    (change,) = run(ctx)
    provider = lab.provider()
    theirs = wanted_rrset(ZONE, "@", "MX", 60, ["5 theirs.example.net."])
    provider.update(ZONE, [Edit("@", "MX", provider.read_rrset(ZONE, "@", "MX"), theirs)])
    with pytest.raises(WorldChanged):
        DnsRecords().rollback(ctx, change)
    assert lab.provider().read_rrset(ZONE, "@", "MX") == theirs


def test_verify_names_each_server_still_serving_other_data(zone_lab):
    lab = zone_lab()
    ctx = context(lab, verify_timeout=0)
    (change,) = gated(ctx)
    findings = DnsRecords().verify(ctx, [change])
    servers = 2 if lab.kind == "rfc2136" else 1
    assert len(findings) == servers
    assert all("serves 3600 10 mx1.example.org., expected 300 10 mx.verify.example."
               in f.problem for f in findings)


# --- safety ----------------------------------------------------------------------------------

FOUR_UPDATES = [{"name": n, "type": "A", "ttl": 60, "set": ["192.0.2.1"]}
                for n in ("www", "mx1", "mx2", "ns1")]


def test_changing_too_large_a_share_is_refused(zone_lab):
    lab = zone_lab()
    with pytest.raises(UnsafeChange, match=r"updates 4 of 10 RRsets .*40%, limit 30%"):
        gated(context(lab, FOUR_UPDATES))
    assert lab.records()[("www", "A")].values == ("192.0.2.80",)


def test_force_passes_the_share_limit(zone_lab):
    lab = zone_lab()
    assert len(run(context(lab, FOUR_UPDATES, force=True))) == 4


def test_a_raised_limit_in_params_passes(zone_lab):
    lab = zone_lab()
    assert len(gated(context(lab, FOUR_UPDATES, max_update_share=0.5))) == 4


def test_provider_limit_applies_when_params_set_none(zone_lab):
    lab = zone_lab(extra_config={"max_update_share": 0.5})
    assert len(gated(context(lab, FOUR_UPDATES))) == 4


def test_small_zones_are_exempt_from_share_limits(zone_lab):
    lab = zone_lab(extra_config={"min_existing_records": 11})
    assert len(gated(context(lab, FOUR_UPDATES))) == 4


def test_preview_refuses_removing_last_mx_without_force(zone_lab):
    lab = zone_lab(extra_config={"min_existing_records": 100})
    delete_mx = [{"name": "@", "type": "MX", "delete": True}]
    with pytest.raises(UnsafeChange, match="deletes the last MX of zone example.org"):
        gated(context(lab, delete_mx))
    assert len(gated(context(lab, delete_mx, force=True))) == 1


def test_removing_one_mx_of_two_is_allowed(zone_lab):
    lab = zone_lab({ZONE: SAMPLE_ZONE + "verify IN MX 10 mx2\n"})
    delete_mx = [{"name": "@", "type": "MX", "delete": True}]
    assert len(gated(context(lab, delete_mx))) == 1


def test_changing_apex_ns_needs_force(zone_lab):
    lab = zone_lab()
    with pytest.raises(UnsafeChange, match="apex NS"):
        gated(context(lab, [{"name": "@", "type": "NS", "set": ["ns1"]}]))


# --- TTL holds -------------------------------------------------------------------------------

LOWER_MX_TTL = [{"name": "@", "type": "MX", "ttl": 300, "set": ["10 mx1"]}]


def test_lowering_a_ttl_records_a_hold_until_the_old_ttl_expires(zone_lab):
    lab = zone_lab()
    holds = DictHolds()
    run(context(lab, LOWER_MX_TTL, holds=holds))
    until = NOW + timedelta(seconds=3600)
    assert holds.rows["dns:example.org:@:MX"][0] == until
    assert holds.rows["dns:example.org:*:MX"][0] == until
    assert "old TTL (3600s)" in holds.rows["dns:example.org:@:MX"][1]


def test_raising_a_ttl_records_no_hold(zone_lab):
    lab = zone_lab()
    holds = DictHolds()
    run(context(lab, [{"name": "www", "type": "A", "ttl": 7200, "set": ["192.0.2.80"]}],
                holds=holds))
    assert holds.rows == {}


def test_mx_switch_waits_while_the_old_ttl_runs(zone_lab):
    lab = zone_lab()
    holds = DictHolds()
    run(context(lab, LOWER_MX_TTL, holds=holds))
    switch = [{"name": "@", "type": "MX", "ttl": 300, "set": ["10 mx.verify.example."]}]
    with pytest.raises(Waiting) as waiting:
        gated(context(lab, switch, holds=holds, now=NOW + timedelta(minutes=5)))
    assert waiting.value.until == NOW + timedelta(seconds=3600)
    later = NOW + timedelta(seconds=3601)
    assert len(gated(context(lab, switch, holds=holds, now=later))) == 1


def test_an_mx_hold_elsewhere_in_the_zone_makes_every_mx_change_wait(zone_lab):
    lab = zone_lab({ZONE: SAMPLE_ZONE + "verify IN MX 10 mx2\n"})
    holds = DictHolds()
    run(context(lab, [{"name": "verify", "type": "MX", "ttl": 60, "set": ["10 mx2"]}],
                holds=holds))
    with pytest.raises(Waiting):
        gated(context(lab, SWITCH_MX, holds=holds))


def test_other_records_do_not_wait_for_an_mx_hold(zone_lab):
    lab = zone_lab()
    holds = DictHolds()
    run(context(lab, LOWER_MX_TTL, holds=holds))
    spf = [{"name": "@", "type": "TXT", "ttl": 300, "set": ['"v=spf1 -all"']}]
    assert len(gated(context(lab, spf, holds=holds))) == 1


def test_dry_run_records_no_hold(zone_lab):
    lab = zone_lab()
    holds = DictHolds()
    ctx = context(lab, LOWER_MX_TTL, holds=holds)
    ctx.dry_run = True
    run(ctx)
    assert holds.rows == {}


# --- params ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("change", "message"), [
    ({"name": "@", "type": "MX", "set": ["mx1"]}, "invalid MX value"),
    ({"name": "www", "type": "A", "set": ["999.1.1.1"]}, "invalid A value"),
    ({"name": "@", "type": "TXT", "set": ["v=spf1 mx -all"]}, "must be quoted"),
    ({"name": "@", "type": "BOGUS", "set": ["x"]}, "unknown record type"),
    ({"name": "@", "type": "SOA", "set": ["a b 1 2 3 4 5"]}, "SOA is managed"),
    ({"name": "www.other.test.", "type": "A", "set": ["192.0.2.1"]}, "not inside zone"),
    ({"name": "@", "type": "MX", "set": []}, "at least one value"),
    ({"name": "@", "type": "MX"}, "either set"),
    ({"name": "@", "type": "MX", "set": ["10 a."], "delete": True}, "either set"),
    ({"name": "@", "type": "MX", "ttl": -1, "set": ["10 a."]}, "greater than or equal"),
])
def test_malformed_changes_are_rejected_when_the_plan_loads(change, message):
    with pytest.raises(ValidationError, match=message):
        DnsRecordsParams(zone=ZONE, changes=[change])


def test_the_same_rrset_twice_is_rejected():
    with pytest.raises(ValidationError, match="appears twice"):
        DnsRecordsParams(zone=ZONE, changes=[{"name": "@", "type": "MX", "set": ["10 a."]},
                                             {"name": "", "type": "mx", "delete": True}])


def test_long_txt_values_are_split_into_255_byte_strings(zone_lab):
    lab = zone_lab()
    key = "v=DKIM1; k=rsa; p=" + "A" * 400
    ctx = context(lab, [{"name": "s1._domainkey", "type": "TXT", "set": [f'"{key}"']}])
    run(ctx)
    (value,) = lab.records()[("s1._domainkey", "TXT")].values
    assert value == f'"{key[:255]}" "{key[255:]}"'
