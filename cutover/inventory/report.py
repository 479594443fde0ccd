"""Inventory reports: one summary, four renderings (Markdown, CSV, JSON, self-contained HTML).

`summarize` walks the recipients once (a stream: memory stays flat) and keeps counts, sizes,
the largest mailboxes and the lists an administrator acts on: forwarding, rules, unresolved,
and what the Graph copy path leaves behind per mailbox moving to the cloud.
Renderers are pure: a summary (and for CSV the recipients again) in, text out.
"""

from __future__ import annotations

import csv
import heapq
import html
import io
import json
from collections.abc import Iterable
from typing import Any, TextIO

from cutover.inventory import graph_path
from cutover.inventory.classify import CLASSES, DESTINATIONS

LARGEST = 25
LIST_LIMIT = 1000  # entries kept of each list; the rest are only counted
ASSUMED_THROUGHPUT_MB_S = 10.0
PHASES = {"linux": "phase 1: verification accounts to Linux",
          "cloud": "phase 2: people, shared and resources to Microsoft 365"}
CSV_COLUMNS = ("address", "display_name", "type", "class", "destination", "rule", "reason",
               "size_bytes", "items", "aliases", "forwarding", "rules", "routing", "last_logon",
               "newest_item", "source")


#: Bumped whenever what `SummaryBuilder.state` or `csv_line` holds changes: summaries and CSV
#: lines stored with a snapshot by another version are then ignored and recomputed.
SUMMARY_VERSION = 2


class SummaryBuilder:
    """The summary of a recipient stream, built one recipient at a time in bounded memory, in
    any order: the largest mailboxes are a bounded heap, and each list keeps the LIST_LIMIT
    entries that come first in address order (what a walk in address order keeps). The store
    builds it while a snapshot is written and keeps its `state`, so a report needs no second
    pass over the recipients."""

    def __init__(self, state: dict[str, Any] | None = None):
        if state is None:
            state = {
                "by_class": {k: {"class": k, "count": 0, "size_bytes": 0, "items": 0}
                             for k in CLASSES},
                "by_destination": {d: {"destination": d, "count": 0, "size_bytes": 0}
                                   for d in DESTINATIONS},
                "matrix": {k: dict.fromkeys(DESTINATIONS, 0) for k in CLASSES},
                "largest": [],
                "lists": {"forwarding": [], "rules": [], "unresolved": [], "graph": []},
                "totals": {"forwarding": 0, "rules": 0, "unresolved": 0, "graph": 0,
                           "recipients": 0, "size_bytes": 0},
                "first_address": {},  # class or destination outside the known ones: first seen
            }
        self.by_class: dict[str, dict[str, Any]] = state["by_class"]
        self.by_destination: dict[str, dict[str, Any]] = state["by_destination"]
        self.matrix: dict[str, dict[str, int]] = state["matrix"]
        self.largest = [tuple(entry) for entry in state["largest"]]
        heapq.heapify(self.largest)
        self.lists: dict[str, list[list[Any]]] = state["lists"]
        self.totals: dict[str, int] = state["totals"]
        self.first_address: dict[str, str] = state["first_address"]

    def add(self, r: dict[str, Any]) -> None:
        size = r.get("size_bytes") or 0
        klass, destination = r.get("class") or "unknown", r.get("destination") or "keep"
        address = r["address"]
        totals = self.totals
        totals["recipients"] += 1
        totals["size_bytes"] += size
        by_class = self.by_class.get(klass)
        if by_class is None:
            by_class = self.by_class[klass] = {"class": klass, "count": 0, "size_bytes": 0,
                                               "items": 0}
            self.matrix.setdefault(klass, dict.fromkeys(DESTINATIONS, 0))
        by_destination = self.by_destination.get(destination)
        if by_destination is None:
            by_destination = self.by_destination[destination] = {
                "destination": destination, "count": 0, "size_bytes": 0}
        if klass not in CLASSES or destination not in DESTINATIONS:
            for kind, key in (("class", klass), ("destination", destination)):
                if key not in (CLASSES if kind == "class" else DESTINATIONS):
                    seen = f"{kind}:{key}"
                    if address < self.first_address.get(seen, "\U0010ffff"):
                        self.first_address[seen] = address
        by_class["count"] += 1
        by_class["size_bytes"] += size
        by_class["items"] += r.get("items") or 0
        by_destination["count"] += 1
        by_destination["size_bytes"] += size
        row = self.matrix[klass]
        row[destination] = row.get(destination, 0) + 1
        largest = self.largest
        if len(largest) < LARGEST:
            heapq.heappush(largest, (size, address, _brief(r)))
        elif size > largest[0][0] or (size == largest[0][0] and address > largest[0][1]):
            # (addresses are unique: the brief never decides the order)
            heapq.heapreplace(largest, (size, address, _brief(r)))
        if r.get("forwarding") or r.get("rules") or r.get("routing") or klass == "unknown" or (
                destination == "cloud" and r.get("other_addresses")):
            self._collect_lists(r, address, destination)

    def _collect_lists(self, r: dict[str, Any], address: str, destination: str) -> None:
        found = []
        for forward in r.get("forwarding") or []:
            found.append(("forwarding", {"address": address, "to": forward.get("to"),
                                         "via": forward.get("via"),
                                         "keep_copy": forward.get("keep_copy")}))
        for rule in (r.get("rules") or []) + (r.get("routing") or []):
            found.append(("rules", {"address": address, "kind": rule.get("kind"),
                                    "where": rule.get("path") or rule.get("name"),
                                    "forward_to": ", ".join(rule.get("forward_to") or [])}))
        if (r.get("class") or "unknown") == "unknown":
            found.append(("unresolved", {"address": address, "type": r.get("type"),
                                         "reason": r.get("reason")}))
        left = graph_path.left_behind(r) if destination == "cloud" else []
        if left:
            found.append(("graph", {"address": address, "left": "; ".join(left)}))
        for index, (name, item) in enumerate(found):
            self.totals[name] += 1
            kept = self.lists[name]
            kept.append([address, index, item])
            if len(kept) >= 2 * LIST_LIMIT:
                _first_in_address_order(kept)

    def state(self) -> dict[str, Any]:
        """JSON-ready; `SummaryBuilder(state)` continues from it."""
        for kept in self.lists.values():
            _first_in_address_order(kept)
        return {"by_class": self.by_class, "by_destination": self.by_destination,
                "matrix": self.matrix, "largest": [list(e) for e in self.largest],
                "lists": self.lists, "totals": self.totals,
                "first_address": self.first_address}

    def summary(self, snapshot: dict[str, Any],
                throughput_mb_s: float | None = None) -> dict[str, Any]:
        by_class = self._in_walk_order(self.by_class, CLASSES, "class")
        by_destination = self._in_walk_order(self.by_destination, DESTINATIONS, "destination")
        matrix = {k: self.matrix[k] for k in by_class if k in self.matrix}
        matrix.update((k, v) for k, v in self.matrix.items() if k not in matrix)
        throughput = throughput_mb_s or ASSUMED_THROUGHPUT_MB_S
        for kept in self.lists.values():
            _first_in_address_order(kept)
        return {
            "snapshot": {k: snapshot.get(k) for k in ("id", "source", "taken_at", "digest")}
            | {"warnings": len(snapshot.get("warnings") or [])},
            "totals": dict(self.totals),
            "by_class": [b for b in by_class.values() if b["count"]],
            "by_destination": [b for b in by_destination.values() if b["count"]],
            "matrix": {k: v for k, v in matrix.items() if any(v.values())},
            "largest": [e[2] for e in sorted(self.largest, reverse=True)],
            **{name: [item for _, _, item in kept] for name, kept in self.lists.items()},
            "phases": _phases(by_destination, throughput),
            "throughput_mb_per_s": throughput,
            "throughput_measured": throughput_mb_s is not None,
        }

    def _in_walk_order(self, buckets: dict[str, dict[str, Any]], known: tuple[str, ...],
                       kind: str) -> dict[str, dict[str, Any]]:
        """Known keys in their order, then the others in the order a walk in address order
        meets them (as `summarize` over an address-ordered stream always listed them)."""
        extra = sorted((k for k in buckets if k not in known),
                       key=lambda k: self.first_address.get(f"{kind}:{k}", ""))
        return {k: buckets[k] for k in (*[k for k in known if k in buckets], *extra)}


def _first_in_address_order(kept: list[list[Any]]) -> None:
    """Keep the LIST_LIMIT entries a walk in address order meets first, in that order."""
    kept.sort(key=lambda entry: (entry[0], entry[1]))
    del kept[LIST_LIMIT:]


def summarize(recipients: Iterable[dict[str, Any]], snapshot: dict[str, Any],
              throughput_mb_s: float | None = None) -> dict[str, Any]:
    builder = SummaryBuilder()
    for r in recipients:
        builder.add(r)
    return builder.summary(snapshot, throughput_mb_s)


def _brief(r: dict[str, Any]) -> dict[str, Any]:
    return {"address": r["address"], "display_name": r.get("display_name") or "",
            "type": r.get("type"), "class": r.get("class"), "destination": r.get("destination"),
            "size_bytes": r.get("size_bytes") or 0, "items": r.get("items") or 0}


def _phases(by_destination: dict[str, dict[str, Any]], throughput: float) -> list[dict[str, Any]]:
    phases = []
    for destination, label in PHASES.items():
        bucket = by_destination.get(destination, {"count": 0, "size_bytes": 0})
        seconds = bucket["size_bytes"] / (throughput * 1_000_000)
        phases.append({"phase": label, "destination": destination, "mailboxes": bucket["count"],
                       "size_bytes": bucket["size_bytes"], "hours": round(seconds / 3600, 2)})
    return phases


def human_size(size: int | float) -> str:
    value = float(size or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


# --- JSON --------------------------------------------------------------------------------------

def render_json(summary: dict[str, Any], out: TextIO) -> None:
    json.dump(summary, out, indent=2, sort_keys=True, default=str)
    out.write("\n")


# --- CSV: one row per recipient, for a spreadsheet ---------------------------------------------

def _csv_cells(r: dict[str, Any]) -> list[Any]:
    get = r.get
    size, items = get("size_bytes"), get("items")
    aliases, forwarding = get("aliases"), get("forwarding")
    rules, routing = get("rules"), get("routing")
    return [
        get("address"), get("display_name") or "", get("type"), get("class"),
        get("destination"), get("rule") or "", get("reason") or "",
        size if size is not None else "",
        items if items is not None else "",
        ";".join(aliases) if aliases else "",
        ";".join(f"{f.get('to')}" for f in forwarding) if forwarding else "",
        ";".join(f"{x.get('kind')}:{x.get('path') or x.get('name')}"
                 for x in rules) if rules else "",
        ";".join(f"{x.get('map')}:{x.get('value')}" for x in routing) if routing else "",
        get("last_logon") or "", get("newest_item") or "", get("source") or "",
    ]


def render_csv(recipients: Iterable[dict[str, Any]], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in recipients:
        writer.writerow(_csv_cells(r))


class _LineOut:
    """A file for a csv writer whose `write` hands the line back (`writerow` returns what
    `write` returns): one line rendered without a buffer to reset and read."""

    write = staticmethod(str)


_LINE_WRITER = csv.writer(_LineOut(), lineterminator="\n")


def csv_line(r: dict[str, Any]) -> str:
    """The recipient's line of the CSV report, exactly as `render_csv` writes it: the cells
    joined by commas when none needs quoting (no comma, quote or line break in any, and all
    text: the csv writer's QUOTE_MINIMAL writes them so), else by the csv writer itself."""
    cells = _csv_cells(r)
    for index in (7, 8):  # size and items: the writer writes a number as str() does
        if type(cells[index]) is int:
            cells[index] = str(cells[index])
    try:
        line = ",".join(cells)
    except TypeError:  # a cell that is not text (None, a float...)
        return _LINE_WRITER.writerow(cells)
    if line.count(",") != len(CSV_COLUMNS) - 1 or '"' in line or "\n" in line or "\r" in line:
        return _LINE_WRITER.writerow(cells)
    return line + "\n"


def render_csv_lines(lines: Iterable[str], out: TextIO) -> None:
    """The CSV report from lines `csv_line` rendered earlier (stored with the snapshot)."""
    csv.writer(out, lineterminator="\n").writerow(CSV_COLUMNS)
    out.writelines(lines)


# --- Markdown ----------------------------------------------------------------------------------

def _md_table(headers: list[str], rows: Iterable[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return str("" if value is None else value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return lines + [""]


def _more(summary: dict[str, Any], name: str) -> list[str]:
    extra = summary["totals"][name] - len(summary[name])
    return [f"({extra} more not listed; see the CSV report)", ""] if extra > 0 else []


def render_markdown(summary: dict[str, Any], out: TextIO) -> None:
    snap, totals = summary["snapshot"], summary["totals"]
    lines = [f"# Inventory report (snapshot {snap['id']}, {snap['source']}, {snap['taken_at']})",
             "", f"{totals['recipients']} recipients, {human_size(totals['size_bytes'])} in "
             f"mailboxes; {snap['warnings']} collection warning(s).", "", "## By class", ""]
    lines += _md_table(["class", "count", "size", "items"], (
        [b["class"], b["count"], human_size(b["size_bytes"]), b["items"]]
        for b in summary["by_class"]))
    lines += ["## By destination", ""]
    lines += _md_table(["destination", "count", "size"], (
        [b["destination"], b["count"], human_size(b["size_bytes"])]
        for b in summary["by_destination"]))
    lines += ["## Class x destination", ""]
    lines += _md_table(["class", *DESTINATIONS], (
        [k, *(v.get(d, 0) for d in DESTINATIONS)] for k, v in summary["matrix"].items()))
    basis = "measured" if summary["throughput_measured"] else "assumed (set " \
        "inventory.throughput_mb_per_s to a measured figure)"
    lines += ["## Transfer estimate per phase", "",
              f"At {summary['throughput_mb_per_s']} MB/s, {basis}.", ""]
    lines += _md_table(["phase", "mailboxes", "volume", "hours"], (
        [p["phase"], p["mailboxes"], human_size(p["size_bytes"]), p["hours"]]
        for p in summary["phases"]))
    lines += ["## Largest mailboxes", ""]
    lines += _md_table(["address", "class", "destination", "size", "items"], (
        [r["address"], r["class"], r["destination"], human_size(r["size_bytes"]), r["items"]]
        for r in summary["largest"]))
    lines += [f"## Forwarding ({totals['forwarding']})", ""]
    lines += _md_table(["address", "to", "via", "keeps a copy"], (
        [f["address"], f["to"], f["via"], f["keep_copy"]] for f in summary["forwarding"]))
    lines += _more(summary, "forwarding")
    lines += [f"## Rules and routing ({totals['rules']})", ""]
    lines += _md_table(["address", "kind", "where", "forwards to"], (
        [r["address"], r["kind"], r["where"], r["forward_to"]] for r in summary["rules"]))
    lines += _more(summary, "rules")
    lines += [f"## Graph path: left behind ({totals['graph']})", "", _graph_path_intro(), ""]
    lines += _md_table(["address", "also left behind"], (
        [g["address"], g["left"]] for g in summary["graph"]))
    lines += _more(summary, "graph")
    lines += [f"## Unresolved class ({totals['unresolved']}): these stay where they are", ""]
    lines += _md_table(["address", "type", "reason"], (
        [u["address"], u["type"], u["reason"]] for u in summary["unresolved"]))
    lines += _more(summary, "unresolved")
    out.write("\n".join(lines))


def _graph_path_intro() -> str:
    return ("Without Exchange hybrid (plans/phase2-cloud-graph.yaml), every mailbox moving to "
            f"the cloud leaves behind {graph_path.CARRIED}, "
            f"{' and '.join(graph_path.COMMON)}. These leave more:")


# --- HTML: one self-contained file, sortable tables, inline SVG charts -------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:1em 0}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left}
td.num,th.num{text-align:right}
th{background:#eee;cursor:pointer;user-select:none}
th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}
.charts{display:flex;gap:2em;flex-wrap:wrap}
figure{margin:0}
"""

# Sorting: click a header; numeric columns sort by data-value. `#sort=TABLE:COLUMN[:desc]` in
# the URL sorts on load (used to check the script in a real browser).
_SCRIPT = """
(function(){
  function key(cell){var v=cell.getAttribute('data-value');
    return v!==null?parseFloat(v):cell.textContent.trim().toLowerCase();}
  function sortTable(table,index,descending){
    var body=table.tBodies[0];var rows=Array.prototype.slice.call(body.rows);
    rows.sort(function(a,b){var x=key(a.cells[index]),y=key(b.cells[index]);
      var r=(x<y)?-1:(x>y)?1:0;return descending?-r:r;});
    rows.forEach(function(row){body.appendChild(row);});
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,i){
      if(i===index){th.setAttribute('aria-sort',descending?'descending':'ascending');}
      else{th.removeAttribute('aria-sort');}});
  }
  document.querySelectorAll('table.sortable').forEach(function(table){
    Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,index){
      th.addEventListener('click',function(){
        sortTable(table,index,th.getAttribute('aria-sort')==='ascending');});
    });
    table.setAttribute('data-sortable','ready');
  });
  var m=/sort=([\\w-]+):(\\d+)(:desc)?/.exec(location.hash);
  if(m){var t=document.getElementById(m[1]);if(t){sortTable(t,parseInt(m[2],10),!!m[3]);}}
})();
"""

_COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1"]


def _bar_chart(chart_id: str, title: str, bars: list[tuple[str, float, str]]) -> str:
    """A horizontal bar chart as inline SVG: (label, value, value text) per bar."""
    width, row, left = 460, 26, 110
    height = row * len(bars) + 30
    peak = max((value for _, value, _ in bars), default=0) or 1
    parts = [f'<svg id="{chart_id}" class="chart" xmlns="http://www.w3.org/2000/svg" '
             f'width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">',
             f'<text x="0" y="16" font-weight="bold">{html.escape(title)}</text>']
    for index, (label, value, text) in enumerate(bars):
        y = 26 + index * row
        length = (width - left - 90) * value / peak
        parts.append(f'<text x="0" y="{y + 15}">{html.escape(label)}</text>'
                     f'<rect x="{left}" y="{y + 3}" width="{length:.1f}" height="{row - 8}" '
                     f'fill="{_COLOURS[index % len(_COLOURS)]}"><title>{html.escape(label)}: '
                     f'{html.escape(text)}</title></rect>'
                     f'<text x="{left + length + 6:.1f}" y="{y + 15}">{html.escape(text)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _html_table(table_id: str, headers: list[str], rows: Iterable[list[Any]],
                numeric: frozenset[int] = frozenset()) -> str:
    head = "".join(f'<th{" class=num" if i in numeric else ""}>{html.escape(h)}</th>'
                   for i, h in enumerate(headers))
    body = []
    for row in rows:
        cells = []
        for i, value in enumerate(row):
            if isinstance(value, tuple):  # (sort value, shown text)
                cells.append(f'<td class="num" data-value="{value[0]}">'
                             f"{html.escape(str(value[1]))}</td>")
            elif i in numeric:
                cells.append(f'<td class="num" data-value="{value or 0}">{value or 0}</td>')
            else:
                cells.append(f"<td>{html.escape('' if value is None else str(value))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table id="{table_id}" class="sortable"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _sized(size: int) -> tuple[int, str]:
    return (size, human_size(size))


def render_html(summary: dict[str, Any], out: TextIO) -> None:
    snap, totals = summary["snapshot"], summary["totals"]
    title = f"Inventory report: snapshot {snap['id']} ({snap['source']})"
    class_chart = _bar_chart("chart-class-size", "Mailbox volume per class", [
        (b["class"], b["size_bytes"], human_size(b["size_bytes"])) for b in summary["by_class"]])
    destination_chart = _bar_chart("chart-destination-count", "Recipients per destination", [
        (b["destination"], b["count"], str(b["count"])) for b in summary["by_destination"]])
    phase_chart = _bar_chart("chart-phase-hours", "Estimated transfer hours per phase", [
        (p["destination"], p["hours"], f"{p['hours']} h") for p in summary["phases"]])
    basis = "measured" if summary["throughput_measured"] else "assumed"
    sections = [
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Taken {html.escape(str(snap['taken_at']))}: {totals['recipients']} recipients, "
        f"{human_size(totals['size_bytes'])}; {snap['warnings']} collection warning(s).</p>",
        f'<div class="charts">{class_chart}{destination_chart}{phase_chart}</div>',
        "<h2>By class</h2>",
        _html_table("by-class", ["class", "count", "size", "items"], (
            [b["class"], b["count"], _sized(b["size_bytes"]), b["items"]]
            for b in summary["by_class"]), frozenset({1, 3})),
        "<h2>By destination</h2>",
        _html_table("by-destination", ["destination", "count", "size"], (
            [b["destination"], b["count"], _sized(b["size_bytes"])]
            for b in summary["by_destination"]), frozenset({1})),
        f"<h2>Transfer estimate per phase</h2><p>At {summary['throughput_mb_per_s']} MB/s "
        f"({basis}).</p>",
        _html_table("phases", ["phase", "mailboxes", "volume", "hours"], (
            [p["phase"], p["mailboxes"], _sized(p["size_bytes"]), (p["hours"], p["hours"])]
            for p in summary["phases"]), frozenset({1})),
        "<h2>Largest mailboxes</h2>",
        _html_table("largest", ["address", "class", "destination", "size", "items"], (
            [r["address"], r["class"], r["destination"], _sized(r["size_bytes"]), r["items"]]
            for r in summary["largest"]), frozenset({4})),
        f"<h2>Forwarding ({totals['forwarding']})</h2>",
        _html_table("forwarding", ["address", "to", "via", "keeps a copy"], (
            [f["address"], f["to"], f["via"], f["keep_copy"]] for f in summary["forwarding"])),
        f"<h2>Rules and routing ({totals['rules']})</h2>",
        _html_table("rules", ["address", "kind", "where", "forwards to"], (
            [r["address"], r["kind"], r["where"], r["forward_to"]] for r in summary["rules"])),
        f"<h2>Graph path: left behind ({totals['graph']})</h2>"
        f"<p>{html.escape(_graph_path_intro())}</p>",
        _html_table("graph", ["address", "also left behind"], (
            [g["address"], g["left"]] for g in summary["graph"])),
        f"<h2>Unresolved class ({totals['unresolved']})</h2>"
        "<p>These are not moved until a rule or an override classifies them.</p>",
        _html_table("unresolved", ["address", "type", "reason"], (
            [u["address"], u["type"], u["reason"]] for u in summary["unresolved"])),
    ]
    if summary.get("mail_flow_svg"):  # cutover.routes.graph.mail_flow_svg, set by the caller
        sections.append(f"<h2>Mail flow</h2>{summary['mail_flow_svg']}")
    out.write("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
              + "\n".join(sections) + f"<script>{_SCRIPT}</script></body></html>\n")


def render(fmt: str, summary: dict[str, Any], recipients: Iterable[dict[str, Any]] | None,
           out: TextIO) -> None:
    if fmt == "csv":
        render_csv(recipients or [], out)
    elif fmt == "json":
        render_json(summary, out)
    elif fmt == "html":
        render_html(summary, out)
    else:
        render_markdown(summary, out)


def render_text(fmt: str, summary: dict[str, Any],
                recipients: Iterable[dict[str, Any]] | None = None) -> str:
    buffer = io.StringIO()
    render(fmt, summary, recipients, buffer)
    return buffer.getvalue()
