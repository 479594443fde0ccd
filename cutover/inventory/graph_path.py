"""What the Graph copy path (plans/phase2-cloud-graph.yaml, tenants without Exchange hybrid)
leaves behind for an inventoried mailbox, in words. One text for the `cloud.mailbox` preview
and the inventory report, so the two never disagree.

The Graph path copies mail folders (`mailbox.sync`) and carries contacts and the inbox rules
Graph can express as messageRules (`cloud.carry`). Every mailbox leaves behind what Graph
cannot write (COMMON); some leave more (`left_behind`): rules with a condition or action Graph
has no equivalent for, X500 addresses, forwarding.
"""

from __future__ import annotations

from typing import Any

from cutover.parsers import graph_carry

CARRIED = ("calendars and tasks (contacts and the inbox rules Graph can express are carried by "
           "cloud.carry)")
COMMON = ("delegates and FullAccess/SendAs", "the Outlook profile (it keeps opening the "
          "on-premises mailbox)")


def left_behind(item: dict[str, Any]) -> list[str]:
    """What this mailbox leaves behind beyond what every mailbox does (empty: nothing more)."""
    left = []
    # a rule's folder is looked up when cloud.carry runs: here, assume the copy made it
    rules = [rule for rule in item.get("rules") or []
             if graph_carry.message_rule(rule, lambda folder: folder)[1]]
    if rules:
        kinds = sorted({str(rule.get("kind", "rule")) for rule in rules})
        names = ", ".join(graph_carry.rule_name(rule) or str(rule.get("path") or "?")
                          for rule in rules)
        left.append(f"{len(rules)} inventoried rule(s) Graph cannot express ({', '.join(kinds)}"
                    f": {names})")
    x500 = [a for a in item.get("other_addresses") or [] if str(a).lower().startswith("x500:")]
    if x500:
        left.append(f"{len(x500)} X500 address(es) (replies to old mail would bounce)")
    if item.get("forwarding"):
        left.append("its forwarding")
    return left


def not_carried(item: dict[str, Any]) -> str:
    """Everything a Graph copy leaves behind for one inventoried mailbox."""
    return "; ".join([CARRIED, *left_behind(item), *COMMON])
