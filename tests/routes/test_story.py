"""The demo's ending: one verification address and one person's address, before and after."""

from __future__ import annotations

import json

from cutover.commands.routes import before_after_table
from cutover.routes.graph import mail_flow_svg
from cutover.routes.story import before_after, path_text, route_snapshot
from cutover.workspace import Workspace
from tests.routes.org import CLOUD_MX, Org

ADDRESSES = ["datarequest@example.org", "alice@example.org"]


def test_before_and_after_traces_of_a_verification_and_a_person_s_address(tmp_path):
    root = Org(cloud=["alice@example.org"]).write(tmp_path / "ws")
    before = route_snapshot(Workspace(root), ADDRESSES)
    # what the two phases do to these addresses: forward the old one, move MX to the cloud
    (root / "cloud" / "forwarding.json").write_text(json.dumps({"datarequest@example.org": {
        "forwarding_smtp_address": "smtp:datarequest@verify.example.org",
        "deliver_and_forward": False}}))
    zone = root / "zones" / "example.org"
    zone.write_text(zone.read_text().replace("10 mail.example.org.", CLOUD_MX[0]))
    after = route_snapshot(Workspace(root), ADDRESSES)
    rows = before_after(before, after)
    assert [row.address for row in rows] == ADDRESSES
    assert all(row.changed for row in rows)
    assert path_text(rows[0].before) == ("mx mail.example.org -> ends onprem: "
                                         "datarequest@example.org (mail.example.org)")
    assert path_text(rows[0].after).endswith("ends linux: datarequest@verify.example.org "
                                             "(linux-mx)")
    assert path_text(rows[1].after).startswith(f"mx {CLOUD_MX[0].split()[1].rstrip('.')} -> "
                                               "filter Exchange Online Protection")
    table = before_after_table(before, after)
    assert table.row_count == 2


def test_mail_flow_svg_for_the_inventory_report(tmp_path):
    svg = mail_flow_svg(Workspace(Org().write(tmp_path / "ws")))
    assert svg.startswith("<svg ") and svg.rstrip().endswith("</svg>")
    assert "MX mx.verify.example.org" in svg
    assert "linux-mx (spam filter)" in svg
