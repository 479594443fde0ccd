"""Before and after: the traces of a few addresses at two moments (the demo shows one
verification address and one person's address before and after the migration).

    before = route_snapshot(workspace, addresses)   # before running the plans
    ... run the plans ...
    after = route_snapshot(workspace, addresses)
    rows = before_after(before, after)               # rendered by commands.routes
"""

from __future__ import annotations

from dataclasses import dataclass

from cutover.routes.facts import read_facts
from cutover.routes.trace import Trace, trace
from cutover.workspace import Workspace


@dataclass(frozen=True)
class BeforeAfter:
    address: str
    before: Trace
    after: Trace

    @property
    def changed(self) -> bool:
        return self.before.to_json() != self.after.to_json()


def route_snapshot(workspace: Workspace, addresses: list[str]) -> dict[str, Trace]:
    """Each address's trace as the workspace's systems are now."""
    facts = read_facts(workspace)
    return {address: trace(facts, address) for address in addresses}


def before_after(before: dict[str, Trace], after: dict[str, Trace]) -> list[BeforeAfter]:
    return [BeforeAfter(address, before[address], after[address])
            for address in before if address in after]


def path_text(path: Trace) -> str:
    """One line: the places mail passes, then where it ends."""
    places = [f"{hop.kind} {hop.host}" for hop in path.hops
              if hop.kind in ("mx", "milter", "content_filter", "filter", "forward", "relay",
                              "connector", "alias", "recipient")]
    return " -> ".join([*places, f"ends {path.ends.describe()}"])
