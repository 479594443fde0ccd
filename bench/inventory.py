"""Inventory at scale: synthetic Get-Mailbox/Get-Recipient exports -> `inventory collect` ->
`report inventory` in every format. Wall time first, memory separately.

    .venv/bin/python bench/inventory.py                # 10,000 mailboxes / 50,000 recipients
    .venv/bin/python bench/inventory.py --ratio        # also 10k vs 100k rows: time and memory
    .venv/bin/python bench/inventory.py --memory       # Python peak under tracemalloc too
    .venv/bin/python bench/inventory.py --against ../main   # and main's checkout, in turn

What is timed is the commands themselves (`cutover.cli.main`), in one process: `inventory
collect` (collect, classify, store the snapshot, print its class counts) and `report inventory
--format F -o FILE` for md, csv, json and html (each opens the state again, as separate
invocations would). `--cli` also
times the same five commands as separate `cutover` processes (interpreter start included).

The workspace is what a real one holds beside the exports: routing files (procmail, Sieve,
Postfix) for a few accounts, and a Maildir store, sampled for traits, holding a few of the
mailboxes (the rest have none there).

`cpu_s` (user + system CPU of the run) is printed beside each wall time: on a shared machine it
moves less than the wall time does. `inventory collect` reads the exports in a forked child
while it stores (cutover/inventory/forked.py): the child's CPU is in `cpu_s`, its peak RSS is
`max_rss_child_mb` beside the parent's `max_rss_mb`.

Every measured run happens in a fresh subprocess, so its max RSS (ru_maxrss) is its own. Wall
times are the best of `--repeat` runs (default 3) and are measured WITHOUT tracemalloc, which
slows Python by about 2x; the Python peak comes from separate runs under tracemalloc. Each
report's SHA-256 is printed: equal digests before and after a change prove the reports did
not change.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TYPES = ["UserMailbox"] * 80 + ["SharedMailbox"] * 8 + ["RoomMailbox"] * 4 + \
    ["EquipmentMailbox"] * 2 + ["DiscoveryMailbox"] + ["UserMailbox"] * 5
OTHER_TYPES = ["MailContact", "MailUniversalDistributionGroup", "MailUser",
               "DynamicDistributionGroup"]
FUNCTIONAL = ["datarequest", "reb-distribution", "bulletin", "station-s", "ims-feed", "noreply",
              "scanner"]
FORMATS = ("md", "csv", "json", "html")
ROUTED_EVERY = 250  # one mailbox in ROUTED_EVERY has procmail/Sieve/Postfix routing
STORED_EVERY = 500  # one mailbox in STORED_EVERY has a Maildir in the sampled store
CONFIG = """\
mailstores:
  exchange: {kind: maildir, path: mail/exchange}
inventory:
  sources:
    exchange:
      kind: getmailbox-csv
      path: [inventory/Get-Mailbox.csv, inventory/Get-Recipient.csv]
      mailstore: exchange
      sample: 20
  routing: {procmail: procmail/, sieve: sieve/, postfix: postfix/}
  throughput_mb_per_s: 20
"""
PROCMAILRC = """MAILDIR=$HOME/Maildir
:0
* ^Subject:.*DATA_REQUEST
| /usr/local/bin/autodrm
:0 c
! archive@verify.example.org
"""
SIEVE = 'require ["copy"];\nif header :contains "subject" "BULLETIN" ' \
        '{ redirect :copy "archive@verify.example.org"; }\n'


def mailbox_local(i: int) -> str:
    return f"{FUNCTIONAL[i % 7]}{i}" if i % 50 == 0 else f"user{i}.name"


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
            local = mailbox_local(i)
            size = (i * 7919) % 5_000_000_000
            writer.writerow([f"User {i}", f"{local}@example.org",
                             f"SMTP:{local}@example.org;smtp:u{i}@example.org;"
                             f"X500:/o=ExchangeLabs/ou=Exchange Administrative Group "
                             f"(FYDIBOHF23SPDLT)/cn=Recipients/cn={i}",
                             TYPES[i % len(TYPES)],
                             f"smtp:fw{i}@elsewhere.net" if i % 97 == 0 else "",
                             "True" if i % 97 == 0 else "False",
                             f"{size / 1024**3:.3f} GB ({size:,} bytes)", str(i % 40000),
                             f"11/{1 + i % 28}/2026 09:12:44"])
    with (directory / "Get-Recipient.csv").open("w", encoding="utf-8-sig", newline="") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
        writer.writerow(["DisplayName", "PrimarySmtpAddress", "EmailAddresses",
                         "RecipientTypeDetails"])
        for i in range(recipients - mailboxes):
            writer.writerow([f"Entry {i}", f"entry{i}@partner{i % 50}.example.net",
                             f"SMTP:entry{i}@partner{i % 50}.example.net",
                             OTHER_TYPES[i % len(OTHER_TYPES)]])


def write_routing_and_store(root: Path, mailboxes: int) -> None:
    """Procmail, Sieve and Postfix files for every ROUTED_EVERY-th mailbox; a Maildir with a
    few messages for every STORED_EVERY-th one."""
    virtual = []
    for i in range(0, mailboxes, ROUTED_EVERY):
        address = f"{mailbox_local(i)}@example.org"
        rc = root / "procmail" / address / ".procmailrc"
        rc.parent.mkdir(parents=True)
        rc.write_text(PROCMAILRC)
        sieve = root / "sieve" / address / "main.sieve"
        sieve.parent.mkdir(parents=True)
        sieve.write_text(SIEVE)
        virtual.append(f"{address}  {mailbox_local(i)}@verify.example.org")
    (root / "postfix").mkdir()
    (root / "postfix" / "virtual").write_text("\n".join(virtual) + "\n")
    for i in range(0, mailboxes, STORED_EVERY):
        maildir = root / "mail" / "exchange" / f"{mailbox_local(i)}@example.org"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True)
        for n in range(5):
            (maildir / "cur" / f"17000000{n:02d}.M{n}P1.bench:2,S").write_bytes(
                f"From: station-{n}@example.net\r\nTo: x@example.org\r\n"
                f"Subject: DATA_REQUEST {n}\r\nDate: Fri, 20 Nov 2026 09:12:44 +0000\r\n"
                f"\r\nbody {n}\r\n".encode())


def make_workspace(root: Path, mailboxes: int, recipients: int) -> None:
    (root / "inventory").mkdir(parents=True)
    write_exports(root / "inventory", mailboxes, recipients)
    write_routing_and_store(root, mailboxes)
    (root / "cutover.yaml").write_text(CONFIG)


def run_commands(root: Path) -> dict:
    """`inventory collect` then `report inventory -o FILE` in every format: the commands
    themselves (cutover.cli.main), in this process, their output discarded."""
    import contextlib

    from cutover.cli import main
    from cutover.inventory import store
    from cutover.state import State

    def cutover(*args: str) -> None:
        with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
            try:
                main(["--workspace", str(root), *args])
            except SystemExit as exit_:
                if exit_.code:
                    raise RuntimeError(f"cutover {' '.join(args)}: exit {exit_.code}") from None

    cpu_started = _cpu()
    started = time.perf_counter()
    cutover("inventory", "collect")
    collected = time.perf_counter()
    for fmt in FORMATS:
        cutover("report", "inventory", "--format", fmt, "-o", str(root / f"report.{fmt}"))
    finished = time.perf_counter()
    cpu = _cpu() - cpu_started
    state = State.open(root / "state" / "cutover.db")
    meta = store.get_snapshot(state)
    classes = {b["class"]: b["count"] for b in json.loads((root / "report.json").read_text())[
        "by_class"]}
    state.close()
    return {"recipients": meta["recipients"], "classes": dict(sorted(classes.items())),
            "warnings": len(meta["warnings"]),
            "collect_s": round(collected - started, 2),
            "reports_s": round(finished - collected, 2), "total_s": round(finished - started, 2),
            "cpu_s": round(cpu, 2)}


def _cpu() -> float:
    """User + system CPU seconds of this process and of the children it waited for (the one
    `inventory collect` forks to read while it stores): the figure a loaded machine disturbs
    least."""
    cpu = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        cpu += usage.ru_utime + usage.ru_stime
    return cpu


#: when the snapshot was collected: the one thing two identical runs are allowed to differ in
COLLECTED_AT = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?")


def report_digests(root: Path) -> dict[str, str]:
    return {fmt: hashlib.sha256(COLLECTED_AT.sub(b"<collected>", (root / f"report.{fmt}")
                                                  .read_bytes())).hexdigest()[:16]
            for fmt in FORMATS}


def child(mailboxes: int, recipients: int, traced: bool) -> dict:
    """One measured run in this (fresh) process."""
    import tracemalloc

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_workspace(root, mailboxes, recipients)
        import cutover.cli  # noqa: F401  (imports are not what is measured)
        if traced:
            tracemalloc.start()
        result = run_commands(root)
        if traced:
            result["python_peak_mb"] = round(tracemalloc.get_traced_memory()[1] / 1e6, 1)
            tracemalloc.stop()
        result["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        # the largest child: `inventory collect` reads in a forked child (0: it did not fork)
        result["max_rss_child_mb"] = round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)
        result["report_sha256"] = report_digests(root)
        return result


def in_subprocess(mailboxes: int, recipients: int, traced: bool = False,
                  bench: str = __file__) -> dict:
    args = [sys.executable, bench, "--child", str(mailboxes), str(recipients)]
    result = subprocess.run(args + (["--traced"] if traced else []), capture_output=True,
                            text=True, check=False)
    if result.returncode:
        raise SystemExit(result.stderr)
    return json.loads(result.stdout)


def best_of(repeat: int, mailboxes: int, recipients: int) -> dict:
    runs = [in_subprocess(mailboxes, recipients) for _ in range(repeat)]
    best = min(runs, key=lambda r: r["total_s"])
    best["total_s_runs"] = [r["total_s"] for r in runs]
    if len({json.dumps(r["report_sha256"]) for r in runs}) != 1:
        raise SystemExit("reports differ between identical runs")
    return best


def alternately(other: Path, repeat: int, mailboxes: int, recipients: int) -> dict:
    """This checkout and `other` (another checkout of cutover, e.g. main's), one measured run
    each in turn, the load average beside each: on a shared machine only runs this close
    together compare. The reports and the digests of both must be equal."""
    benches = {"this": __file__, "other": str(other / "bench" / "inventory.py")}
    runs: dict[str, list[dict]] = {"this": [], "other": []}
    for _ in range(repeat):
        for name in ("other", "this"):
            load = os.getloadavg()[0]
            result = in_subprocess(mailboxes, recipients, bench=benches[name])
            runs[name].append({"load_1min": round(load, 2), **{
                k: result[k] for k in ("collect_s", "reports_s", "total_s", "cpu_s",
                                       "max_rss_mb", "max_rss_child_mb", "report_sha256")}})
    digests = {json.dumps(run["report_sha256"]) for both in runs.values() for run in both}
    if len(digests) != 1:
        raise SystemExit(f"the reports differ: {runs}")
    for both in runs.values():
        for run in both:
            del run["report_sha256"]
    return {"other": str(other), "report_sha256": json.loads(digests.pop()),
            "best_total_s": {name: min(r["total_s"] for r in both)
                             for name, both in runs.items()}, "runs": runs}


def cli_run(mailboxes: int, recipients: int) -> dict:
    """The five commands as separate `cutover` processes (interpreter start included)."""
    cutover = Path(sys.executable).with_name("cutover")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_workspace(root, mailboxes, recipients)
        commands = [["inventory", "collect"]] + [
            ["report", "inventory", "--format", fmt, "-o", str(root / f"report.{fmt}")]
            for fmt in FORMATS]
        times = []
        for command in commands:
            started = time.perf_counter()
            subprocess.run([str(cutover), "--workspace", str(root), *command], check=True,
                           capture_output=True, env={**os.environ, "COLUMNS": "200"})
            times.append(round(time.perf_counter() - started, 2))
        return {"collect_s": times[0], "reports_s": round(sum(times[1:]), 2),
                "total_s": round(sum(times), 2), "per_command_s": times,
                "report_sha256": report_digests(root)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ratio", action="store_true", help="also 10k vs 100k rows")
    parser.add_argument("--memory", action="store_true",
                        help="also the Python peak (tracemalloc, separate runs)")
    parser.add_argument("--cli", action="store_true", help="also as five cutover processes")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (best is kept)")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="only: this checkout and another (e.g. main's), in turn")
    parser.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.traced)))
        return
    if args.against:
        print(json.dumps(alternately(args.against.resolve(), args.repeat, 10_000, 50_000),
                         indent=2))
        return
    results: dict = {"10,000 mailboxes / 50,000 recipients": best_of(args.repeat, 10_000, 50_000)}
    if args.cli:
        results["same, as five cutover processes"] = cli_run(10_000, 50_000)
    if args.ratio:
        small = best_of(args.repeat, 10_000, 10_000)
        large = best_of(max(1, args.repeat - 2), 100_000, 100_000)
        results["10k rows"], results["100k rows"] = small, large
        results["100k / 10k"] = {"time": round(large["total_s"] / small["total_s"], 2),
                                 "max_rss": round(large["max_rss_mb"] / small["max_rss_mb"], 2)}
        if small["max_rss_child_mb"]:
            results["100k / 10k"]["max_rss_child"] = round(
                large["max_rss_child_mb"] / small["max_rss_child_mb"], 2)
    if args.memory:
        traced = {"50k": in_subprocess(10_000, 50_000, traced=True)}
        if args.ratio:
            traced["10k"] = in_subprocess(10_000, 10_000, traced=True)
            traced["100k"] = in_subprocess(100_000, 100_000, traced=True)
            traced["python_peak_100k_over_10k"] = round(
                traced["100k"]["python_peak_mb"] / traced["10k"]["python_peak_mb"], 2)
        results["under tracemalloc (times are not comparable)"] = traced
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
