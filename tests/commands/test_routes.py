import json
from pathlib import Path

import pytest
import yaml

from cutover import cli
from tests.routes.org import CLOUD_MX, Org

ZONE = """\
$ORIGIN example.org.
$TTL 3600
@       IN SOA ns1.example.org. hostmaster.example.org. 2026010101 3600 600 86400 300
@       IN NS  ns1.example.org.
@       IN MX  10 mx1.example.org.
@       IN MX  20 mx2.example.org.
verify  IN MX  10 mx.verify.example.org.
ns1     IN A   192.0.2.1
"""

FILTER_HOP = "smtp:[filter.verify.example.org]:10025"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump({
        "providers": {"dns": {"kind": "zonefile", "path": "zones/"}},
        "postfix": {"linux-mx": {"kind": "postfix-maps", "path": "postfix/", "postmap": False}},
        "mailstores": {"linux": {"kind": "maildir", "path": "mail/linux"}},
        "forwarding": {"exchange": {"kind": "forwarding-file",
                                    "path": "exchange/forwarding.json"}},
    }))
    (tmp_path / "zones").mkdir()
    (tmp_path / "zones" / "example.org").write_text(ZONE)
    (tmp_path / "postfix").mkdir()
    (tmp_path / "postfix" / "transport").write_text(
        f"verify.example.org  {FILTER_HOP}\nexample.org  relay:[exchange.example.org]\n")
    (tmp_path / "postfix" / "virtual").write_text(
        "# moved accounts\ndatarequest@example.org  datarequest@verify.example.org\n")
    (tmp_path / "postfix" / "relay_domains").write_text("example.org  OK\n")
    for address in ("datarequest@verify.example.org", "bulletin@verify.example.org"):
        (tmp_path / "mail" / "linux" / address / "cur").mkdir(parents=True)
    (tmp_path / "exchange").mkdir()
    (tmp_path / "exchange" / "forwarding.json").write_text(json.dumps({
        "bulletin@example.org": {"forwarding_smtp_address": "smtp:bulletin@verify.example.org",
                                 "deliver_and_forward": True}}))
    return tmp_path


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        cli.main(list(args))
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def test_routes_json_gives_mx_filter_next_hop_and_store_per_domain(workspace, capsys):
    code, out, _ = run_cli(capsys, "--workspace", str(workspace), "routes", "--json")
    assert code == 0
    domains = {d["domain"]: d for d in json.loads(out)["domains"]}
    assert sorted(domains) == ["example.org", "verify.example.org"]
    verify = domains["verify.example.org"]
    assert verify["mx"] == [{"preference": 10, "host": "mx.verify.example.org."}]
    assert verify["filter_hop"] == FILTER_HOP
    assert verify["mail_store"] == "linux (2 mailboxes)"
    old = domains["example.org"]
    assert [m["host"] for m in old["mx"]] == ["mx1.example.org.", "mx2.example.org."]
    assert old["filter_hop"] is None
    assert old["next_hop"] == "relay:[exchange.example.org]"
    assert old["mail_store"] == "beyond exchange.example.org"


def test_routes_json_lists_forwarded_addresses_old_to_new(workspace, capsys):
    _, out, _ = run_cli(capsys, "--workspace", str(workspace), "routes", "--json")
    assert json.loads(out)["forwards"] == [
        {"old": "bulletin@example.org", "new": "bulletin@verify.example.org",
         "via": "exchange forwarding exchange, keeps a copy"},
        {"old": "datarequest@example.org", "new": "datarequest@verify.example.org",
         "via": "postfix linux-mx virtual"},
    ]


def test_routes_table_shows_every_domain_and_forward(workspace, capsys):
    code, out, _ = run_cli(capsys, "--workspace", str(workspace), "routes")
    assert code == 0
    for text in ("Mail routing by domain", "verify.example.org", "example.org ",
                 "Forwarded addresses", "datarequest@example.org", "bulletin@example.org"):
        assert text in out
    # hops keep their brackets: Postfix next hops are not rich markup
    assert "smtp:[filter" in out
    assert "relay:[exch" in out


def test_routes_with_malformed_map_is_one_line_exit_2(workspace, capsys):
    (workspace / "postfix" / "virtual").write_text("datarequest@example.org\n")
    code, out, err = run_cli(capsys, "--workspace", str(workspace), "routes")
    assert code == 2
    assert err == (f"error: {workspace}/postfix/virtual:1: expected 'key whitespace value', "
                   "got 'datarequest@example.org'\n")


def test_routes_with_unknown_connector_kind_is_exit_2(workspace, capsys):
    config = yaml.safe_load((workspace / "cutover.yaml").read_text())
    config["postfix"]["linux-mx"]["kind"] = "postfix-mapz"
    (workspace / "cutover.yaml").write_text(yaml.safe_dump(config))
    code, _, err = run_cli(capsys, "--workspace", str(workspace), "routes")
    assert code == 2
    assert err.startswith("error: cutover.yaml: postfix.linux-mx: unknown kind 'postfix-mapz'")
    assert err.count("\n") == 1


def test_same_forward_in_two_systems_is_one_row_and_a_conflict_is_noted(workspace, capsys):
    (workspace / "exchange" / "forwarding.json").write_text(json.dumps({
        "datarequest@example.org": {
            "forwarding_smtp_address": "smtp:datarequest@verify.example.org",
            "deliver_and_forward": False},
        "bulletin@example.org": {"forwarding_smtp_address": "smtp:someone@example.net",
                                 "deliver_and_forward": False}}))
    (workspace / "postfix" / "virtual").write_text(
        "datarequest@example.org  datarequest@verify.example.org\n"
        "bulletin@example.org  bulletin@verify.example.org\n")
    _, out, _ = run_cli(capsys, "--workspace", str(workspace), "routes", "--json")
    routing = json.loads(out)
    assert {"old": "datarequest@example.org", "new": "datarequest@verify.example.org",
            "via": "exchange forwarding exchange; postfix linux-mx virtual"} in routing["forwards"]
    assert routing["notes"] == [
        "bulletin@example.org forwards to different addresses: bulletin@verify.example.org "
        "(postfix linux-mx virtual), someone@example.net (exchange forwarding exchange)"]


# --- routes trace / check / graph / probe on a twin organisation -------------------------------


SWITCH_PLAN = """\
name: switch
steps:
  - id: forward
    kind: exchange.forwarding
    confirm: false
    params: {source: exchange, mailbox: datarequest@example.org,
             forward_to: datarequest@verify.example.org, keep_copy: false}
  - id: cloud-forward
    kind: exchange.forwarding
    requires: [forward]
    confirm: false
    params: {source: cloud, mailbox: datarequest@example.org,
             forward_to: datarequest@verify.example.org, keep_copy: false}
  - id: mx-to-cloud
    kind: dns.records
    requires: [cloud-forward]
    confirm: false
    params:
      zone: example.org
      provider: dns
      changes:
        - {name: "@", type: MX, ttl: 300, set: ["0 example-org.mail.protection.outlook.com."]}
"""


@pytest.fixture
def org(tmp_path: Path) -> Path:
    root = Org(cloud=["alice@example.org"],
               exchange=["datarequest@example.org", "alice@example.org", "bob@example.org"]
               ).write(tmp_path / "org")
    (root / "plans").mkdir()
    (root / "plans" / "switch.yaml").write_text(SWITCH_PLAN)
    return root


def test_trace_json_has_the_contract_shape(org, capsys):
    code, out, _ = run_cli(capsys, "--workspace", str(org), "routes", "trace",
                           "datarequest@verify.example.org", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"address", "hops", "ends"}
    assert data["address"] == "datarequest@verify.example.org"
    assert [hop["kind"] for hop in data["hops"]][:2] == ["mx", "milter"]
    assert all(set(hop) == {"kind", "host", "cause"} for hop in data["hops"])
    assert data["ends"] == {"side": "linux", "mailbox": "datarequest@verify.example.org"}


def test_trace_after_a_plan_uses_the_previews_and_changes_nothing(org, capsys):
    before = sorted((p, p.read_bytes()) for p in org.rglob("*") if p.is_file())
    code, out, _ = run_cli(capsys, "--workspace", str(org), "routes", "trace",
                           "datarequest@example.org", "--after", "plans/switch.yaml", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["hops"][0]["host"] == CLOUD_MX[0].split()[1].rstrip(".")
    assert data["ends"] == {"side": "linux", "mailbox": "datarequest@verify.example.org"}
    assert sorted((p, p.read_bytes()) for p in org.rglob("*") if p.is_file()) == before
    _, now, _ = run_cli(capsys, "--workspace", str(org), "routes", "trace",
                        "datarequest@example.org", "--json")
    assert json.loads(now)["ends"] == {"side": "onprem", "mailbox": "datarequest@example.org"}


def test_trace_at_a_step_stops_the_plan_there(org, capsys):
    _, out, _ = run_cli(capsys, "--workspace", str(org), "routes", "trace",
                        "datarequest@example.org", "--at", "forward", "--json")
    data = json.loads(out)
    assert data["hops"][0]["host"] == "mail.example.org"  # MX not switched yet
    assert data["hops"][1]["kind"] == "forward"  # by the Exchange on premises
    assert data["ends"]["mailbox"] == "datarequest@verify.example.org"


def test_trace_at_an_unknown_step_is_exit_2(org, capsys):
    code, _, err = run_cli(capsys, "--workspace", str(org), "routes", "trace",
                           "a@example.org", "--at", "nope")
    assert code == 2
    assert err.startswith("error: --at nope: the step is in no plan")


def test_check_is_exit_0_when_clean_and_1_with_a_table_of_findings(org, capsys):
    code, out, _ = run_cli(capsys, "--workspace", str(org), "routes", "check")
    assert (code, out.strip()) == (0, "routes check: no loops, dead ends, filter or MX "
                                      "problems")
    code, out, _ = run_cli(capsys, "--workspace", str(org), "routes", "check", "--after",
                           "plans/switch.yaml", "--json")
    assert code == 1
    findings = {(f["kind"], f["subject"]) for f in json.loads(out)["findings"]}
    # after the switch, the on-premises mailbox nobody relays to is a dead end
    assert findings == {("dead-end", "bob@example.org")}


@pytest.mark.parametrize("fmt, start", [("mermaid", "flowchart LR"),
                                        ("dot", "digraph mailflow {"),
                                        ("svg", "<svg ")])
def test_graph_formats(org, capsys, fmt, start):
    code, out, _ = run_cli(capsys, "--workspace", str(org), "routes", "graph", "--format", fmt)
    assert code == 0
    assert out.startswith(start)
    assert "mx.verify.example.org" in out


def test_graph_diff_marks_added_and_removed_edges(org, capsys):
    code, out, _ = run_cli(capsys, "--workspace", str(org), "routes", "graph", "--domain",
                           "example.org", "--after", "plans/switch.yaml", "--diff")
    assert code == 0
    assert "(added)" in out and "(removed)" in out
    assert "==>" in out and "-.->" in out
    assert "linkStyle" in out


@pytest.mark.parametrize("args, message", [
    (["graph", "--format", "png"],
     "error: --format must be one of mermaid, dot, svg, not 'png'"),
    (["graph", "--diff"], "error: --diff compares before and after a plan: give --after PLAN"),
    (["trace", "not-an-address"], "error: not a mail address: 'not-an-address'"),
])
def test_bad_options_are_one_line_exit_2(org, capsys, args, message):
    code, _, err = run_cli(capsys, "--workspace", str(org), "routes", *args)
    assert code == 2
    assert err.splitlines() == [message]


def test_probe_through_the_twins_is_exit_0_and_1_naming_where_mail_went(org, capsys):
    code, out, _ = run_cli(capsys, "--workspace", str(org), "routes", "probe",
                           "datarequest@verify.example.org", "nobody@verify.example.org",
                           "--timeout", "2", "--json")
    assert code == 1
    probes = {p["address"]: p for p in json.loads(out)["probes"]}
    assert probes["datarequest@verify.example.org"]["arrived"] is True
    assert probes["datarequest@verify.example.org"]["method"] == "twin"
    assert probes["nobody@verify.example.org"]["arrived"] is False
    assert "rejected as unknown user" in probes["nobody@verify.example.org"]["last_seen"]


def test_routes_alone_still_prints_the_table_with_linux_mx(org, capsys):
    code, out, _ = run_cli(capsys, "--workspace", str(org), "routes")
    assert code == 0
    assert "Mail routing by domain" in out
    assert "verify.example.org" in out and "example.org" in out


def test_routes_table_shows_the_milter_as_the_domain_s_filter_hop(org, capsys):
    _, out, _ = run_cli(capsys, "--workspace", str(org), "routes", "--json")
    domains = {d["domain"]: d for d in json.loads(out)["domains"]}
    assert domains["verify.example.org"]["filter_hop"] == "milter inet:127.0.0.1:11332"
    assert domains["verify.example.org"]["postfix"] == "linux-mx"
