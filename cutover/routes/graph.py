"""The mail flow as a diagram: Mermaid, Graphviz DOT or a self-contained SVG.

Nodes are the places mail passes (the Internet, MX hosts, spam filters, relays, connectors) and
where it ends (the Linux mailboxes, the on-premises Exchange, Exchange Online, a pipeline,
outside, nowhere); an edge carries the domains whose mail takes it. `diff` compares two flows
(before and after a plan): added edges are drawn bold, removed ones dashed, and both are named
in the edge label. The SVG needs no Graphviz: columns by distance from the Internet.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from cutover.routes.check import known_addresses
from cutover.routes.facts import MailFacts, read_facts
from cutover.routes.trace import Hop, Trace, domain_of, trace

INTERNET = "Internet"
#: hop kinds that are places in the diagram (rewrites and lookups are not)
PLACES = ("mx", "milter", "content_filter", "filter", "relay", "connector", "forward")
END_LABELS = {"linux": "Linux mailboxes", "cloud": "Exchange Online mailboxes",
              "onprem": "on-premises Exchange", "pipeline": "pipeline",
              "external": "outside", "nowhere": "nowhere (dead end)"}
FORMATS = ("mermaid", "dot", "svg")


@dataclass(frozen=True)
class Node:
    key: str
    label: str
    kind: str  # internet | mx | filter | relay | end


@dataclass
class FlowGraph:
    nodes: dict[str, Node] = field(default_factory=dict)
    #: (from, to) -> domains whose mail takes the edge
    edges: dict[tuple[str, str], set[str]] = field(default_factory=dict)
    #: (from, to) -> "added" | "removed" (only in a diff)
    changes: dict[tuple[str, str], str] = field(default_factory=dict)

    def add_node(self, node: Node) -> str:
        self.nodes.setdefault(node.key, node)
        return node.key

    def add_edge(self, source: str, target: str, domain: str) -> None:
        if source != target:
            self.edges.setdefault((source, target), set()).add(domain)


def _hop_node(hop: Hop) -> Node | None:
    if hop.kind not in PLACES:
        return None
    if hop.kind in ("milter", "content_filter", "filter"):
        return Node(f"filter:{hop.host}", f"{hop.host} (spam filter)", "filter")
    if hop.kind == "mx":
        return Node(f"host:{hop.host}", f"MX {hop.host}", "mx")
    if hop.kind == "forward":
        return Node(f"forward:{hop.host}", f"{hop.host} forwards", "relay")
    return Node(f"host:{hop.host}", hop.host, "relay")


def _end_node(path: Trace) -> Node:
    end = path.ends
    label = END_LABELS.get(end.side, end.side)
    if end.system and end.side in ("linux", "onprem"):
        label = f"{label} ({end.system})"
    if end.side == "pipeline":
        label = f"pipeline {end.mailbox}"
    return Node(f"end:{end.side}:{end.system if end.side != 'pipeline' else end.mailbox}",
                label, "end")


def add_trace(graph: FlowGraph, path: Trace) -> None:
    domain = domain_of(path.address)
    previous = graph.add_node(Node("internet", INTERNET, "internet"))
    for hop in path.hops:
        node = _hop_node(hop)
        if node is None:
            continue
        key = graph.add_node(node)
        graph.add_edge(previous, key, domain)
        previous = key
    graph.add_edge(previous, graph.add_node(_end_node(path)), domain)


def flow_graph(facts: MailFacts, domain: str | None = None,
               addresses: list[str] | None = None) -> FlowGraph:
    graph = FlowGraph()
    for address in addresses if addresses is not None else known_addresses(facts):
        if domain is None or domain_of(address) == domain.lower().rstrip("."):
            add_trace(graph, trace(facts, address))
    return graph


def diff(before: FlowGraph, after: FlowGraph) -> FlowGraph:
    """One graph of both: unchanged edges as they are, added and removed ones marked."""
    merged = FlowGraph(nodes={**before.nodes, **after.nodes})
    for edge in before.edges.keys() | after.edges.keys():
        was, now = before.edges.get(edge, set()), after.edges.get(edge, set())
        merged.edges[edge] = was | now
        if not was:
            merged.changes[edge] = "added"
        elif not now:
            merged.changes[edge] = "removed"
    return merged


def _ordered_edges(graph: FlowGraph) -> list[tuple[tuple[str, str], set[str]]]:
    order = {key: index for index, key in enumerate(_node_order(graph))}
    return sorted(graph.edges.items(), key=lambda item: (order[item[0][0]], order[item[0][1]]))


def _node_order(graph: FlowGraph) -> list[str]:
    levels = _levels(graph)
    return sorted(graph.nodes, key=lambda key: (levels.get(key, 0), graph.nodes[key].label))


def _levels(graph: FlowGraph) -> dict[str, int]:
    """Distance from the Internet (longest path, cycles cut), ends in the last column."""
    levels = {"internet": 0}
    for _ in range(len(graph.nodes)):
        changed = False
        for source, target in graph.edges:
            if source in levels and levels.get(target, -1) < levels[source] + 1 <= \
                    len(graph.nodes):
                levels[target] = levels[source] + 1
                changed = True
        if not changed:
            break
    last = max(levels.values(), default=0)
    for key, node in graph.nodes.items():
        if node.kind == "end":
            levels[key] = max(last, 1)
    return levels


def _label(graph: FlowGraph, edge: tuple[str, str], domains: set[str]) -> str:
    text = ", ".join(sorted(domains))
    change = graph.changes.get(edge)
    return f"{text} ({change})" if change else text


# --- Mermaid ------------------------------------------------------------------------------------

def to_mermaid(graph: FlowGraph) -> str:
    ids = {key: f"n{index}" for index, key in enumerate(_node_order(graph))}
    lines = ["flowchart LR"]
    for key in _node_order(graph):
        node = graph.nodes[key]
        text = node.label.replace('"', "'")
        shape = f'(["{text}"])' if node.kind in ("internet", "end") else f'["{text}"]'
        lines.append(f"  {ids[key]}{shape}")
    styles = []
    for index, (edge, domains) in enumerate(_ordered_edges(graph)):
        change = graph.changes.get(edge)
        arrow = {"added": "==>", "removed": "-.->"}.get(change or "", "-->")
        label = _label(graph, edge, domains).replace('"', "'").replace("|", "/")
        lines.append(f'  {ids[edge[0]]} {arrow}|"{label}"| {ids[edge[1]]}')
        if change == "added":
            styles.append(f"  linkStyle {index} stroke:#1a7f37,stroke-width:3px")
        elif change == "removed":
            styles.append(f"  linkStyle {index} stroke:#cf222e,stroke-dasharray:5 5")
    return "\n".join(lines + styles) + "\n"


# --- DOT ----------------------------------------------------------------------------------------

def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: FlowGraph) -> str:
    ids = {key: f"n{index}" for index, key in enumerate(_node_order(graph))}
    lines = ["digraph mailflow {", "  rankdir=LR;", '  node [shape=box, fontname="sans-serif"];']
    for key in _node_order(graph):
        node = graph.nodes[key]
        shape = ", shape=ellipse" if node.kind in ("internet", "end") else ""
        lines.append(f"  {ids[key]} [label={_dot_string(node.label)}{shape}];")
    for edge, domains in _ordered_edges(graph):
        style = {"added": ", color=darkgreen, penwidth=2.5",
                 "removed": ", color=red, style=dashed"}.get(graph.changes.get(edge, ""), "")
        lines.append(f"  {ids[edge[0]]} -> {ids[edge[1]]} "
                     f"[label={_dot_string(_label(graph, edge, domains))}{style}];")
    return "\n".join(lines + ["}"]) + "\n"


# --- SVG ----------------------------------------------------------------------------------------

COLUMN_WIDTH, ROW_HEIGHT, BOX_WIDTH, BOX_HEIGHT, MARGIN = 260, 90, 200, 44, 30


def to_svg(graph: FlowGraph) -> str:
    levels = _levels(graph)
    columns: dict[int, list[str]] = {}
    for key in _node_order(graph):
        columns.setdefault(levels.get(key, 0), []).append(key)
    positions = {key: (MARGIN + column * COLUMN_WIDTH, MARGIN + row * ROW_HEIGHT)
                 for column, keys in columns.items() for row, key in enumerate(keys)}
    width = MARGIN * 2 + (max(columns, default=0)) * COLUMN_WIDTH + BOX_WIDTH
    height = MARGIN * 2 + max((len(k) for k in columns.values()), default=1) * ROW_HEIGHT
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12" '
             'role="img" aria-label="mail flow">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
             'markerWidth="8" markerHeight="8" orient="auto-start-reverse">'
             '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>']
    for edge, domains in _ordered_edges(graph):
        (x1, y1), (x2, y2) = positions[edge[0]], positions[edge[1]]
        start = (x1 + BOX_WIDTH, y1 + BOX_HEIGHT / 2)
        end = (x2, y2 + BOX_HEIGHT / 2)
        change = graph.changes.get(edge, "")
        stroke = {"added": 'stroke="#1a7f37" stroke-width="3"',
                  "removed": 'stroke="#cf222e" stroke-dasharray="6 4"'}.get(
            change, 'stroke="#555"')
        parts.append(f'<g class="edge {change}"><line x1="{start[0]}" y1="{start[1]}" '
                     f'x2="{end[0]}" y2="{end[1]}" {stroke} marker-end="url(#arrow)"/>'
                     f'<text x="{(start[0] + end[0]) / 2}" y="{(start[1] + end[1]) / 2 - 4}" '
                     f'text-anchor="middle" fill="#333">'
                     f'{html.escape(_label(graph, edge, domains))}</text></g>')
    for key, (x, y) in positions.items():
        node = graph.nodes[key]
        fill = {"internet": "#eef", "filter": "#fde", "end": "#efe"}.get(node.kind, "#f6f6f6")
        radius = 20 if node.kind in ("internet", "end") else 4
        parts.append(f'<g class="node {node.kind}"><rect x="{x}" y="{y}" width="{BOX_WIDTH}" '
                     f'height="{BOX_HEIGHT}" rx="{radius}" fill="{fill}" stroke="#333"/>'
                     f'<text x="{x + BOX_WIDTH / 2}" y="{y + BOX_HEIGHT / 2 + 4}" '
                     f'text-anchor="middle">{html.escape(node.label)}</text></g>')
    return "\n".join(parts + ["</svg>"]) + "\n"


def mail_flow_svg(workspace: Any) -> str:
    """The workspace's mail flow as an SVG, for the inventory's HTML report."""
    return to_svg(flow_graph(read_facts(workspace)))


def render(graph: FlowGraph, fmt: str) -> str:
    return {"mermaid": to_mermaid, "dot": to_dot, "svg": to_svg}[fmt](graph)
