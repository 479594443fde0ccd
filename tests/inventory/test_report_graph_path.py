"""The inventory report says, per mailbox moving to the cloud, what the Graph copy path leaves
behind: the same words as the cloud.mailbox preview (cutover.inventory.graph_path)."""

from __future__ import annotations

from cutover.inventory.graph_path import left_behind, not_carried
from cutover.inventory.report import render_text, summarize

SNAPSHOT = {"id": 1, "source": "test", "taken_at": "2026-12-03T15:00:00Z", "warnings": []}
MAPPABLE = {"kind": "inbox-rule", "name": "Reports", "priority": 1,
            "conditions": {"ContainsSubjectStrings": ["report"]}, "exceptions": {},
            "actions": {"MoveToFolder": "Reports"}}
DATED = {**MAPPABLE, "name": "Holiday", "conditions": {"WithinDateRange": {}}}


def recipient(address: str, destination: str, **extra) -> dict:
    return {"address": address, "class": "person" if destination == "cloud" else "verification",
            "destination": destination, "type": "user", "size_bytes": 10, "items": 1, **extra}


def test_report_lists_what_each_cloud_mailbox_leaves_behind_beyond_the_common_part():
    summary = summarize([
        recipient("amira.haddad@example.org", "cloud", rules=[MAPPABLE, DATED],
                  other_addresses=["X500:/o=Agency/cn=amira"]),
        recipient("erik.lund@example.org", "cloud", rules=[MAPPABLE]),
        recipient("datarequest@example.org", "linux", other_addresses=["X500:/o=Agency/cn=dr"]),
    ], SNAPSHOT)

    markdown = render_text("md", summary)
    html = render_text("html", summary)

    assert summary["totals"]["graph"] == 1
    assert summary["graph"] == [{"address": "amira.haddad@example.org", "left": (
        "1 inventoried rule(s) Graph cannot express (inbox-rule: Holiday); 1 X500 address(es) "
        "(replies to old mail would bounce)")}]
    assert "## Graph path: left behind (1)" in markdown
    assert "| amira.haddad@example.org | 1 inventoried rule(s) Graph cannot express" in markdown
    assert "erik.lund" not in markdown.split("## Graph path")[1]  # its one rule is carried
    assert "datarequest@example.org" not in markdown.split("## Graph path")[1]
    assert "Graph path: left behind (1)" in html


def test_preview_and_report_use_the_same_words():
    item = recipient("amira.haddad@example.org", "cloud", rules=[DATED], forwarding=[{"to": "x"}])

    said = not_carried(item)

    assert all(part in said for part in left_behind(item))
    assert said.startswith("calendars and tasks") and said.endswith("on-premises mailbox)")
