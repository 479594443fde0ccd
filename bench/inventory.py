"""Inventory at scale: synthetic Get-Mailbox/Get-Recipient exports -> classify -> snapshot ->
report in every format. Prints time and peak memory, and the 10k vs 100k memory ratio.

    .venv/bin/python bench/inventory.py                # 10,000 mailboxes / 50,000 recipients
    .venv/bin/python bench/inventory.py --ratio        # also 10k vs 100k rows, memory ratio

Each measured run happens in a fresh subprocess, so peak RSS (ru_maxrss) belongs to it alone;
tracemalloc's peak counts only Python allocations made by the pipeline.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

TYPES = ["UserMailbox"] * 80 + ["SharedMailbox"] * 8 + ["RoomMailbox"] * 4 + \
    ["EquipmentMailbox"] * 2 + ["DiscoveryMailbox"] + ["UserMailbox"] * 5
OTHER_TYPES = ["MailContact", "MailUniversalDistributionGroup", "MailUser",
               "DynamicDistributionGroup"]
FUNCTIONAL = ["datarequest", "reb-distribution", "bulletin", "station-s", "ims-feed", "noreply",
              "scanner"]


def write_exports(directory: Path, mailboxes: int, recipients: int) -> None:
    """Get-Mailbox.csv (UTF-16 + #TYPE, as PS5 writes) and Get-Recipient.csv (UTF-8 BOM)."""
    with (directory / "Get-Mailbox.csv").open("w", encoding="utf-16", newline="") as out:
        out.write("#TYPE Selected.Microsoft.Exchange.Data.Directory.Management.Mailbox\r\n")
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(["DisplayName", "PrimarySmtpAddress", "EmailAddresses",
                         "RecipientTypeDetails", "ForwardingSmtpAddress",
                         "DeliverToMailboxAndForward", "TotalItemSize", "ItemCount",
                         "LastLogonTime"])
        for i in range(mailboxes):
            local = f"{FUNCTIONAL[i % 7]}{i}" if i % 50 == 0 else f"user{i}.name"
            size = (i * 7919) % 5_000_000_000
            writer.writerow([f"User {i}", f"{local}@example.org",
                             f"SMTP:{local}@example.org;smtp:u{i}@example.org;"
                             f"X500:/o=ExchangeLabs/ou=Exchange Administrative Group "
                             f"(FYDIBOHF23SPDLT)/cn=Recipients/cn={i}",
                             TYPES[i % len(TYPES)],
                             f"smtp:fw{i}@elsewhere.net" if i % 97 == 0 else "",
                             "True" if i % 97 == 0 else "False",
                             f"{size / 1024**3:.3f} GB ({size:,} bytes)", str(i % 40000),
                             "11/20/2026 09:12:44"])
    with (directory / "Get-Recipient.csv").open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(["DisplayName", "PrimarySmtpAddress", "EmailAddresses",
                         "RecipientTypeDetails"])
        for i in range(recipients - mailboxes):
            writer.writerow([f"Entry {i}", f"entry{i}@partner{i % 50}.example.net",
                             f"SMTP:entry{i}@partner{i % 50}.example.net",
                             OTHER_TYPES[i % len(OTHER_TYPES)]])


def measured_run(mailboxes: int, recipients: int) -> dict:
    """Import, classify, store, then render all four reports; runs in this process."""
    from cutover.inventory import store
    from cutover.inventory.collect import collect_and_store
    from cutover.inventory.report import render, summarize
    from cutover.state import State
    from cutover.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "inventory").mkdir()
        write_exports(root / "inventory", mailboxes, recipients)
        (root / "cutover.yaml").write_text(
            "inventory:\n  sources:\n    exchange:\n      kind: getmailbox-csv\n"
            "      path: [inventory/Get-Mailbox.csv, inventory/Get-Recipient.csv]\n"
            "  throughput_mb_per_s: 20\n")
        workspace = Workspace(root)
        state = State.open(workspace.state_path)
        tracemalloc.start()
        started = time.perf_counter()
        snapshot_id = collect_and_store(workspace, state)
        collected = time.perf_counter()
        meta = store.get_snapshot(state, snapshot_id)
        sizes = {}
        for fmt in ("md", "csv", "json", "html"):
            summary = summarize(store.iter_recipients(state, snapshot_id), meta, 20.0)
            buffer = io.StringIO() if fmt != "csv" else open(root / "r.csv", "w")  # noqa: SIM115
            render(fmt, summary, store.iter_recipients(state, snapshot_id), buffer)
            sizes[fmt] = buffer.tell()
            buffer.close()
        finished = time.perf_counter()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return {"mailboxes": mailboxes, "recipients": meta["recipients"],
                "collect_s": round(collected - started, 2),
                "reports_s": round(finished - collected, 2),
                "total_s": round(finished - started, 2),
                "python_peak_mb": round(peak / 1e6, 1),
                "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "report_bytes": sizes}


def in_subprocess(mailboxes: int, recipients: int) -> dict:
    result = subprocess.run([sys.executable, __file__, "--child", str(mailboxes),
                             str(recipients)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ratio", action="store_true", help="also compare 10k and 100k rows")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measured_run(*args.child)))
        return
    main_run = in_subprocess(10_000, 50_000)
    print(json.dumps(main_run, indent=2))
    if args.ratio:
        small = in_subprocess(10_000, 10_000)
        large = in_subprocess(100_000, 100_000)
        print(json.dumps({"10k": small, "100k": large,
                          "python_peak_ratio": round(large["python_peak_mb"]
                                                     / small["python_peak_mb"], 2),
                          "max_rss_ratio": round(large["max_rss_mb"] / small["max_rss_mb"], 2)},
                         indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
