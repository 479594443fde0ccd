"""The DNS parts of the command line: `cutover dns check`, and dns.records / dns.check plans run
through `cutover run` / `cutover rollback` against real BIND and the zone-file twin."""

from __future__ import annotations

import json
import textwrap

import pytest
import yaml

from cutover.cli import main
from tests.servers.bind import SAMPLE_ZONE, free_port, key_file_text, make_lab

BROKEN_MX = SAMPLE_ZONE.replace("@       IN MX   10 mx1", "@       IN MX   10 gone")

SWITCH_PLAN = """\
    name: phase2-dns
    steps:
      - id: check-before
        kind: dns.check
        params: {domain: example.org, provider: dns}
      - id: switch
        kind: dns.records
        requires: [check-before]
        params:
          zone: example.org
          provider: dns
          verify_timeout: 15
          changes:
            - {name: "@", type: MX, ttl: 300, set: ["10 mx2"]}
            - {name: "@", type: TXT, ttl: 300, set: ['"v=spf1 mx include:_spf.example.org -all"']}
            - {name: _spf, type: TXT, ttl: 300, set: ['"v=spf1 ip4:192.0.2.0/24 -all"']}
      - id: check-after
        kind: dns.check
        requires: [switch]
        params: {domain: example.org, provider: dns}
    """


ONLY_SWITCH = """\
    name: switch-only
    steps:
      - id: switch
        kind: dns.records
        params: {zone: example.org, changes: [{name: "@", type: MX, set: ["10 mx2"]}]}
    """


def cutover(ws, *args, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--workspace", str(ws), *args])
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def write_plan(lab, text: str, name: str = "dns.yaml") -> str:
    (lab.root / "plans").mkdir(exist_ok=True)
    (lab.root / "plans" / name).write_text(textwrap.dedent(text))
    return f"plans/{name}"


# --- cutover dns check ---------------------------------------------------------------------

def test_dns_check_of_a_sound_domain_exits_0(bind_pair, tmp_path, capsys):
    pair = bind_pair()
    code, out, err = cutover(tmp_path, "dns", "check", "example.org", "--server",
                             pair.secondary.address, capsys=capsys)
    assert (code, err) == (0, "")
    assert "p=none only monitors" in out


def test_dns_check_with_errors_prints_the_table_and_exits_1(bind_pair, tmp_path, capsys):
    pair = bind_pair({"example.org": BROKEN_MX})
    code, out, err = cutover(tmp_path, "dns", "check", "example.org", "--server",
                             pair.primary.address, capsys=capsys)
    assert code == 1
    assert "gone" in out and "does not" in out
    assert err == "error: mail DNS of example.org: 1 error(s) found\n"


def test_dns_check_json(bind_pair, tmp_path, capsys):
    pair = bind_pair({"example.org": BROKEN_MX})
    code, out, _ = cutover(tmp_path, "dns", "check", "example.org", "--server",
                           pair.primary.address, "--dkim-selector", "selector1", "--json",
                           capsys=capsys)
    report = json.loads(out)
    assert code == 1 and report["ok"] is False
    assert {(f["check"], f["severity"]) for f in report["findings"]} >= {("mx", "error"),
                                                                        ("dkim", "error")}


@pytest.mark.parametrize("kind", ["rfc2136", "zonefile"])
def test_dns_check_reads_through_a_provider(kind, bind_pair, tmp_path, capsys):
    lab = make_lab(kind, tmp_path / "ws", {"example.org": BROKEN_MX}, bind_pair)
    code, out, _ = cutover(lab.root, "dns", "check", "example.org", "--provider", "dns",
                           "--json", capsys=capsys)
    assert code == 1
    assert [f["name"] for f in json.loads(out)["findings"] if f["severity"] == "error"] == [
        "gone.example.org"]


def test_dns_check_with_wrong_tsig_key_is_one_line_exit_2(bind_pair, tmp_path, capsys):
    lab = make_lab("rfc2136", tmp_path / "ws", {"example.org": SAMPLE_ZONE}, bind_pair)
    (lab.root / "keys" / "update.key").write_text(key_file_text())
    code, _, err = cutover(lab.root, "dns", "check", "example.org", "--provider", "dns",
                           capsys=capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and "TSIG key update-key" in err


@pytest.mark.parametrize(("args", "message"), [
    (["example.org", "--server", "127.0.0.1:{port}"], "refused the connection"),
    (["nothere.example.org", "--provider", "dns"], "does not exist (NXDOMAIN"),
    (["example.net", "--provider", "dns"], "does not answer for example.net"),
    (["example.org", "--provider", "nope"], "cutover.yaml has no providers.nope"),
    (["example.org", "--provider", "dns", "--server", "127.0.0.1:53"], "not both"),
])
def test_dns_check_errors_are_one_line_exit_2(args, message, bind_pair, tmp_path, capsys):
    lab = make_lab("zonefile", tmp_path / "ws", {"example.org": SAMPLE_ZONE}, bind_pair)
    args = [a.replace("{port}", str(free_port())) for a in args]
    code, _, err = cutover(lab.root, "dns", "check", *args, capsys=capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


# --- plans through cutover run / rollback --------------------------------------------------

@pytest.mark.parametrize("kind", ["rfc2136", "zonefile"])
def test_switch_plan_runs_checks_around_the_switch_and_rolls_back_exactly(
        kind, bind_pair, tmp_path, capsys):
    lab = make_lab(kind, tmp_path / "ws", {"example.org": SAMPLE_ZONE}, bind_pair)
    original = lab.records()
    plan = write_plan(lab, SWITCH_PLAN)
    code, out, err = cutover(lab.root, "run", plan, "--yes", capsys=capsys)
    assert code == 0, err
    assert lab.records()[("@", "MX")].values == ("10 mx2.example.org.",)
    code, _, err = cutover(lab.root, "rollback", "switch", "--yes", "--cascade", capsys=capsys)
    assert code == 0, err
    assert lab.records() == original


def test_a_check_after_a_bad_switch_fails_the_run(bind_pair, tmp_path, capsys):
    lab = make_lab("zonefile", tmp_path / "ws", {"example.org": SAMPLE_ZONE}, bind_pair)
    plan = write_plan(lab, SWITCH_PLAN.replace('["10 mx2"]', '["10 nowhere"]'))
    code, _, err = cutover(lab.root, "run", plan, "--yes", capsys=capsys)
    assert code == 1
    assert "check-after" in err and "nowhere.example.org" in err


def rfc2136_lab(bind_pair, tmp_path):
    return make_lab("rfc2136", tmp_path / "ws", {"example.org": SAMPLE_ZONE}, bind_pair)


def test_run_with_wrong_tsig_key_is_one_line_exit_2_and_changes_nothing(
        bind_pair, tmp_path, capsys):
    lab = rfc2136_lab(bind_pair, tmp_path)
    original = lab.records()
    plan = write_plan(lab, SWITCH_PLAN)
    good_key = (lab.root / "keys" / "update.key").read_text()
    (lab.root / "keys" / "update.key").write_text(key_file_text())
    code, _, err = cutover(lab.root, "run", plan, "--yes", capsys=capsys)
    assert code == 2
    assert err.count("\n") == 1 and "rejected the signature of TSIG key update-key" in err
    (lab.root / "keys" / "update.key").write_text(good_key)
    assert lab.records() == original
    code, out, _ = cutover(lab.root, "status", "--json", capsys=capsys)
    assert all(s["status"] in ("pending", "failed") for p in json.loads(out)["plans"]
               for s in p["steps"] if s["id"] == "switch")


def test_run_against_unreachable_server_is_one_line_exit_2(bind_pair, tmp_path, capsys):
    lab = rfc2136_lab(bind_pair, tmp_path)
    config = yaml.safe_load((lab.root / "cutover.yaml").read_text())
    live_server = config["providers"]["dns"]["server"]
    config["providers"]["dns"]["server"] = f"127.0.0.1:{free_port()}"
    (lab.root / "cutover.yaml").write_text(yaml.safe_dump(config))
    plan = write_plan(lab, ONLY_SWITCH)
    code, _, err = cutover(lab.root, "run", plan, "--yes", capsys=capsys)
    assert code == 2
    assert err.count("\n") == 1 and "refused the connection" in err
    config["providers"]["dns"]["server"] = live_server
    (lab.root / "cutover.yaml").write_text(yaml.safe_dump(config))
    assert lab.records()[("@", "MX")].values == ("10 mx1.example.org.",)


def test_run_on_unknown_zone_is_one_line_exit_2(bind_pair, tmp_path, capsys):
    lab = rfc2136_lab(bind_pair, tmp_path)
    plan = write_plan(lab, """\
        name: other
        steps:
          - id: switch
            kind: dns.records
            params: {zone: example.net, changes: [{name: "@", type: MX, set: ["10 mx1"]}]}
        """)
    code, _, err = cutover(lab.root, "run", plan, "--yes", capsys=capsys)
    assert code == 2
    assert err.count("\n") == 1 and "does not serve zone example.net" in err


def test_malformed_record_value_is_a_located_plan_error(bind_pair, tmp_path, capsys):
    lab = make_lab("zonefile", tmp_path / "ws", {"example.org": SAMPLE_ZONE}, bind_pair)
    before = (lab.root / "zones" / "example.org").read_text()
    plan = write_plan(lab, """\
        name: bad
        steps:
          - id: switch
            kind: dns.records
            params:
              zone: example.org
              changes:
                - {name: "@", type: MX, set: ["mx1.example.org."]}
        """)
    code, _, err = cutover(lab.root, "run", plan, "--yes", capsys=capsys)
    assert code == 2
    assert err.startswith("error: ") and "plans/dns.yaml:" in err and "invalid MX value" in err
    assert (lab.root / "zones" / "example.org").read_text() == before


def test_safety_threshold_refuses_without_force_and_passes_with_it(
        bind_pair, tmp_path, capsys):
    lab = make_lab("zonefile", tmp_path / "ws", {"example.org": SAMPLE_ZONE}, bind_pair)
    before = (lab.root / "zones" / "example.org").read_text()
    plan = write_plan(lab, """\
        name: many
        steps:
          - id: many
            kind: dns.records
            params:
              zone: example.org
              changes:
                - {name: www, type: A, set: ["192.0.2.1"]}
                - {name: mx1, type: A, set: ["192.0.2.1"]}
                - {name: mx2, type: A, set: ["192.0.2.1"]}
                - {name: ns1, type: A, set: ["192.0.2.1"]}
        """)
    code, _, err = cutover(lab.root, "run", plan, "--yes", capsys=capsys)
    assert code == 2
    assert err.count("\n") == 1 and "unsafe change refused" in err and "--force" in err
    assert (lab.root / "zones" / "example.org").read_text() == before
    code, _, err = cutover(lab.root, "run", plan, "--yes", "--force", capsys=capsys)
    assert code == 0, err
    assert lab.records()[("www", "A")].values == ("192.0.2.1",)


def test_removing_the_last_mx_is_refused(bind_pair, tmp_path, capsys):
    lab = rfc2136_lab(bind_pair, tmp_path)
    plan = write_plan(lab, """\
        name: nomx
        steps:
          - id: drop-mx
            kind: dns.records
            params: {zone: example.org, changes: [{name: "@", type: MX, delete: true}]}
        """)
    code, _, err = cutover(lab.root, "run", plan, "--yes", capsys=capsys)
    assert code == 2 and "deletes the last MX of zone example.org" in err
    assert lab.records()[("@", "MX")].values == ("10 mx1.example.org.",)


def test_mx_switch_after_lowering_the_ttl_waits_for_the_old_ttl(bind_pair, tmp_path, capsys):
    lab = make_lab("zonefile", tmp_path / "ws", {"example.org": SAMPLE_ZONE}, bind_pair)
    plan = write_plan(lab, """\
        name: ttl
        steps:
          - id: lower-ttl
            kind: dns.records
            params: {zone: example.org, changes: [{name: "@", type: MX, ttl: 300,
                                                   set: ["10 mx1"]}]}
          - id: switch-mx
            kind: dns.records
            requires: [lower-ttl]
            params: {zone: example.org, changes: [{name: "@", type: MX, ttl: 300,
                                                   set: ["10 mx2"]}]}
        """)
    code, _, err = cutover(lab.root, "run", plan, "--yes", capsys=capsys)
    assert code == 0, err
    code, out, _ = cutover(lab.root, "status", "--json", capsys=capsys)
    steps = {s["id"]: s for s in json.loads(out)["plans"][0]["steps"]}
    assert (steps["lower-ttl"]["status"], steps["switch-mx"]["status"]) == ("done", "waiting")
    assert lab.records()[("@", "MX")].values == ("10 mx1.example.org.",)
