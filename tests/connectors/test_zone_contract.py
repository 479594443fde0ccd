"""One suite, two connectors: Rfc2136Zone against real BIND (primary + secondary) and its
ZoneFile twin must behave the same for everything dns.records relies on."""

from __future__ import annotations

import time

import pytest

from cutover.connectors.bind.rfc2136 import Rfc2136Zone
from cutover.connectors.bind.zonefile import ZoneFile
from cutover.connectors.dns_zone import Edit, ServerError
from cutover.dns_model import RRset, wanted_rrset
from cutover.errors import AuthenticationFailed, ConnectionFailed, NotFound, WorldChanged
from tests.servers.bind import SAMPLE_ZONE, key_file_text, make_lab

ZONE = "example.org"


def eventually(check, timeout: float = 10.0):
    """Poll `check` until it returns a truthy value (secondaries follow by NOTIFY/IXFR)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_read_zone_gives_every_rrset_with_absolute_values(zone_lab):
    lab = zone_lab()
    records = lab.records()
    assert records[("@", "MX")] == RRset("@", "MX", 3600, ("10 mx1.example.org.",))
    assert records[("@", "TXT")].values == ('"v=spf1 mx -all"',)
    assert records[("autodiscover", "CNAME")].values == ("mx1.example.org.",)
    assert len(records) == 10


def test_read_rrset_of_missing_name_is_none(zone_lab):
    lab = zone_lab()
    assert lab.provider().read_rrset(ZONE, "nothing-here", "A") is None
    assert lab.provider().read_rrset(ZONE, "www", "AAAA") is None


def test_update_changes_only_the_edited_rrset(zone_lab):
    lab = zone_lab()
    provider = lab.provider()
    before = lab.records()
    mx = wanted_rrset(ZONE, "@", "MX", 300, ["20 mx2"])
    provider.update(ZONE, [Edit("@", "MX", before[("@", "MX")], mx)])
    after = lab.records()
    assert after.pop(("@", "MX")) == mx
    before.pop(("@", "MX"))
    assert after == before


def test_update_bumps_the_soa_serial(zone_lab):
    lab = zone_lab()
    provider = lab.provider()
    serial = provider.serial(ZONE)
    provider.update(ZONE, [Edit("new", "A", None, wanted_rrset(ZONE, "new", "A", 60,
                                                               ["192.0.2.1"]))])
    assert provider.serial(ZONE) == serial + 1


def test_stale_before_raises_world_changed_and_writes_nothing(zone_lab):
    lab = zone_lab()
    provider = lab.provider()
    stale = RRset("@", "MX", 3600, ("10 elsewhere.example.org.",))
    records, serial = lab.records(), provider.serial(ZONE)
    with pytest.raises(WorldChanged, match="changed since the preview"):
        provider.update(ZONE, [Edit("@", "MX", stale, wanted_rrset(ZONE, "@", "MX", 300,
                                                                    ["20 mx2"]))])
    assert lab.records() == records
    assert provider.serial(ZONE) == serial


def test_a_different_ttl_counts_as_changed(zone_lab):
    lab = zone_lab()
    provider = lab.provider()
    other_ttl = RRset("@", "MX", 60, ("10 mx1.example.org.",))
    with pytest.raises(WorldChanged):
        provider.update(ZONE, [Edit("@", "MX", other_ttl, None)])
    assert provider.read_rrset(ZONE, "@", "MX") is not None


def test_create_fails_when_the_rrset_appeared_meanwhile(zone_lab):
    lab = zone_lab()
    provider = lab.provider()
    with pytest.raises(WorldChanged):
        provider.update(ZONE, [Edit("www", "A", None, wanted_rrset(ZONE, "www", "A", 60,
                                                                   ["192.0.2.99"]))])
    assert provider.read_rrset(ZONE, "www", "A").values == ("192.0.2.80",)


def test_one_failing_prerequisite_stops_every_edit_of_the_update(zone_lab):
    lab = zone_lab()
    provider = lab.provider()
    records = lab.records()
    good = Edit("new", "A", None, wanted_rrset(ZONE, "new", "A", 60, ["192.0.2.1"]))
    stale = Edit("www", "A", None, wanted_rrset(ZONE, "www", "A", 60, ["192.0.2.2"]))
    with pytest.raises(WorldChanged):
        provider.update(ZONE, [good, stale])
    assert lab.records() == records


def test_views_show_the_update_on_every_nameserver(zone_lab):
    lab = zone_lab()
    provider = lab.provider()
    mx = wanted_rrset(ZONE, "@", "MX", 300, ["20 mx2"])
    provider.update(ZONE, [Edit("@", "MX", provider.read_rrset(ZONE, "@", "MX"), mx)])
    views = eventually(lambda: (v := provider.views(ZONE, "@", "MX")) and all(
        view == mx for view in v.values()) and v)
    assert views and len(views) == (2 if lab.kind == "rfc2136" else 1)
    serials = provider.serials(ZONE)
    assert set(serials.values()) == {provider.serial(ZONE)}


def test_unknown_zone_is_not_found(zone_lab):
    lab = zone_lab()
    with pytest.raises(NotFound):
        lab.provider().read_rrset("nowhere.test", "@", "MX")
    with pytest.raises(NotFound):
        lab.provider().read_zone("nowhere.test")


def test_zone_for_names_the_zone_holding_a_name(zone_lab):
    lab = zone_lab()
    provider = lab.provider()
    assert provider.zone_for("_dmarc.example.org") == ZONE
    assert provider.zone_for("example.org") == ZONE
    assert provider.zone_for("outside.test") is None


# --- connector-specific behaviour ------------------------------------------------------------

def test_zone_file_may_carry_a_zone_suffix(tmp_path):
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "example.org.zone").write_text(SAMPLE_ZONE)
    provider = ZoneFile(tmp_path / "zones")
    assert provider.zones() == [ZONE]
    assert provider.read_rrset(ZONE, "@", "MX").values == ("10 mx1.example.org.",)


def test_zone_file_edit_keeps_the_other_records_and_the_file_mode(tmp_path):
    (tmp_path / "zones").mkdir()
    path = tmp_path / "zones" / ZONE
    path.write_text(SAMPLE_ZONE)
    path.chmod(0o640)
    provider = ZoneFile(tmp_path / "zones")
    before = provider.read_zone(ZONE)
    provider.update(ZONE, [Edit("www", "A", before[("www", "A")], None)])
    after = provider.read_zone(ZONE)
    assert set(before) - set(after) == {("www", "A")}
    assert all(after[k] == before[k] for k in after if k[1] != "SOA")
    assert path.stat().st_mode & 0o777 == 0o640
    expected = SAMPLE_ZONE.replace("2026010101", "2026010102").replace(
        "www     IN A    192.0.2.80\n", "")
    assert path.read_text() == expected


def test_zone_file_rollback_gives_back_the_administrators_lines(tmp_path):
    from cutover.sample.zones import old_zone

    (tmp_path / "zones").mkdir()
    path = tmp_path / "zones" / ZONE
    path.write_text(old_zone())
    provider = ZoneFile(tmp_path / "zones")
    before = provider.read_rrset(ZONE, "@", "MX")
    switched = wanted_rrset(ZONE, "@", "MX", 300, ["0 example-org.mail.protection.outlook.com."])
    provider.update(ZONE, [Edit("@", "MX", before, switched)])
    assert "; negative caching" in path.read_text()
    provider.update(ZONE, [Edit("@", "MX", switched, before)])
    assert path.read_text() == old_zone().replace("2026110101", "2026110103")


def test_zone_file_with_generate_is_still_edited_record_for_record(tmp_path):
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / ZONE).write_text(SAMPLE_ZONE + "$GENERATE 1-2 host$ A 192.0.2.$\n")
    provider = ZoneFile(tmp_path / "zones")
    before = provider.read_zone(ZONE)
    provider.update(ZONE, [Edit("www", "A", before[("www", "A")], None)])
    after = provider.read_zone(ZONE)
    assert set(before) - set(after) == {("www", "A")}
    assert after[("host2", "A")].values == ("192.0.2.2",)


def test_wrong_tsig_secret_is_an_authentication_failure(bind_pair, tmp_path):
    pair = bind_pair()
    key = tmp_path / "wrong.key"
    key.write_text(key_file_text())
    provider = _rfc2136(pair, key)
    with pytest.raises(AuthenticationFailed, match="rejected the signature"):
        provider.update(ZONE, [Edit("new", "A", None, wanted_rrset(ZONE, "new", "A", 60,
                                                                   ["192.0.2.1"]))])
    with pytest.raises(AuthenticationFailed):
        provider.read_zone(ZONE)
    assert _rfc2136(pair, pair.key_file).read_rrset(ZONE, "new", "A") is None


def test_unknown_tsig_key_name_is_an_authentication_failure(bind_pair, tmp_path):
    pair = bind_pair()
    key = tmp_path / "other.key"
    key.write_text(key_file_text("other-key"))
    with pytest.raises(AuthenticationFailed, match="does not know TSIG key other-key"):
        _rfc2136(pair, key).update(ZONE, [Edit("new", "A", None, wanted_rrset(
            ZONE, "new", "A", 60, ["192.0.2.1"]))])


def test_unreachable_server_is_a_connection_failure(tmp_path):
    key = tmp_path / "k.key"
    key.write_text(key_file_text())
    from tests.servers.bind import free_port

    provider = Rfc2136Zone(f"127.0.0.1:{free_port()}", _key(key), timeout=1)
    with pytest.raises(ConnectionFailed, match="refused the connection"):
        provider.read_rrset(ZONE, "@", "MX")


def test_unreachable_secondary_shows_in_views_not_as_an_exception(bind_pair):
    pair = bind_pair()
    from tests.servers.bind import free_port

    provider = Rfc2136Zone(pair.primary.address, _key(pair.key_file),
                           [pair.primary.address, f"127.0.0.1:{free_port()}"], timeout=1)
    views = provider.views(ZONE, "@", "MX")
    assert [type(v) for v in views.values()] == [RRset, ServerError]


def test_both_kinds_build_from_cutover_yaml(bind_pair, tmp_path):
    rfc = make_lab("rfc2136", tmp_path / "a", {ZONE: SAMPLE_ZONE}, bind_pair).provider()
    twin = make_lab("zonefile", tmp_path / "b", {ZONE: SAMPLE_ZONE}, bind_pair).provider()
    assert (type(rfc), type(twin)) == (Rfc2136Zone, ZoneFile)


def _key(path):
    from cutover.parsers.bind_key import parse_key_file

    return parse_key_file(path.read_text())


def _rfc2136(pair, key_path) -> Rfc2136Zone:
    return Rfc2136Zone(pair.primary.address, _key(key_path),
                       [pair.primary.address, pair.secondary.address], timeout=3)
