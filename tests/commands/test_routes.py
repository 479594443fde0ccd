import json
from pathlib import Path

import pytest
import yaml

from cutover import cli

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
