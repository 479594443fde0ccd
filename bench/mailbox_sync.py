#!/usr/bin/env python3
"""`cutover mailbox sync` against mbsync and dsync on the same lab, in the same run.

    .venv/bin/python bench/mailbox_sync.py                    # 5,000-message / ~203 MB corpus
    .venv/bin/python bench/mailbox_sync.py --messages 1000 --reps 1 --peers mbsync

Uses the IMAP lab in ../shared/bench (override with --lab-tools): `imap-lab` starts two Dovecot
servers on loopback, `make-corpus` loads the seeded corpus (duplicates, no Message-ID, 8-bit
headers, keywords, 5-10 MB messages) into the source account, `bench-peers` runs each tool
through `bench-copy` (full copies into an emptied target, no-op re-runs, each full copy checked
by `verify-copy`, peak RSS from /usr/bin/time). Prints the medians and the ratios
cutover/peer for full copy, no-op re-run and peak RSS. Nothing of the project's tests uses this.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TOOLS = ROOT.parent / "shared" / "bench"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab-tools", type=Path, default=DEFAULT_TOOLS)
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--noop-reps", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--peers", nargs="*", default=["dsync", "mbsync"])
    parser.add_argument("--base-port", type=int, default=31143)
    parser.add_argument("--keep", action="store_true", help="leave the lab directory")
    args = parser.parse_args()
    tools = args.lab_tools.resolve()
    if not (tools / "imap-lab").exists():
        sys.exit(f"no imap-lab in {tools} (use --lab-tools)")
    lab = Path(tempfile.mkdtemp(prefix="cutover-bench-lab-"))
    work = lab / "work"
    base = args.base_port
    ports = {"LAB_SOURCE_PORT": base, "LAB_TARGET_PORT": base + 100,
             "LAB_SOURCE_LMTP_PORT": base + 1, "LAB_TARGET_LMTP_PORT": base + 101}
    env = dict(os.environ, **{k: str(v) for k, v in ports.items()})
    try:
        subprocess.run([tools / "imap-lab", "up", lab], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([sys.executable, tools / "make-corpus", "--port",
                        str(ports["LAB_SOURCE_PORT"]), "--user", "alice", "--messages",
                        str(args.messages)], check=True)
        # Time cutover as installed (pip compiles bytecode at install): a checkout run with
        # PYTHONDONTWRITEBYTECODE set (CI, containers) would otherwise recompile every module
        # of the package on each run, ~20 ms that no installed copy pays.
        subprocess.run([sys.executable, "-m", "compileall", "-q", ROOT / "cutover"], check=True,
                       stdout=subprocess.DEVNULL)
        state = lab / "cutover-state"
        cutover = (f"CUTOVER_SOURCE_PASSWORD=secret CUTOVER_TARGET_PASSWORD=secret "
                   f"PYTHONPATH={shlex.quote(str(ROOT))} "
                   f"{shlex.quote(sys.executable)} -m cutover --workspace {shlex.quote(str(lab))} "
                   f"mailbox sync imap://alice@127.0.0.1:{ports['LAB_SOURCE_PORT']} "
                   f"imap://alice@127.0.0.1:{ports['LAB_TARGET_PORT']} --jobs {args.jobs} "
                   f"--state {shlex.quote(str(state / 'cutover.db'))} --json")
        reps = ["--reps", str(args.reps), "--noop-reps", str(args.noop_reps)]
        work.mkdir(parents=True, exist_ok=True)
        # bench-copy empties the target before each full copy; the identity map goes too.
        subprocess.run([tools / "bench-copy", "--lab", lab, "--name", "cutover", *reps,
                        "--reset", f"rm -rf {shlex.quote(str(state))}",
                        "--log", work / "cutover.log", "--json", work / "cutover.json",
                        "--", "sh", "-c", cutover], env=env, check=False)
        if args.peers:
            subprocess.run([tools / "bench-peers", lab, work, *args.peers],
                           env=dict(env, REPS=str(args.reps), NOOP_REPS=str(args.noop_reps)),
                           check=False)
        print()
        print(report(work, ["cutover", *args.peers]))
        print(engine_noop(ports, lab / "cutover-engine.db"))
    finally:
        subprocess.run([tools / "imap-lab", "down", lab], env=env, check=False,
                       stdout=subprocess.DEVNULL)
        if not args.keep:
            shutil.rmtree(lab, ignore_errors=True)
    return 0


def engine_noop(ports: dict[str, int], state: Path) -> str:
    """The no-op re-run inside one process: what the engine costs once Python and the CLI
    are loaded (the process figure above adds interpreter start-up and imports)."""
    code = f"""
import statistics, time
from cutover.connectors.imap.store import ImapMailStore, parse_endpoint
from cutover.mailsync.engine import Account, MailSync, SyncOptions
def store(port):
    return ImapMailStore(parse_endpoint(f"imap://x@127.0.0.1:{{port}}")[0], lambda: "secret")
account = Account(store({ports['LAB_SOURCE_PORT']}), "alice", store({ports['LAB_TARGET_PORT']}),
                  "alice")
MailSync("{state}", SyncOptions()).run([account])
times = []
for _ in range(5):
    start = time.perf_counter()
    [result] = MailSync("{state}", SyncOptions()).run([account])
    times.append(time.perf_counter() - start)
    assert result.copied == 0 and result.unchanged_folders == result.folders
print(f"cutover no-op re-run inside one process: median {{statistics.median(times):.3f}} s")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    return (done.stdout or done.stderr).strip()


def medians(path: Path) -> dict[str, dict[str, float]]:
    runs = json.loads(path.read_text())
    result = {}
    for kind in ("full", "noop"):
        chosen = [r for r in runs if r["kind"] == kind]
        if chosen:
            result[kind] = {key: statistics.median(r[key] for r in chosen)
                            for key in ("wall_s", "peak_rss_mb", "cpu_s")}
            result[kind]["verified"] = all(r.get("verified", True) for r in chosen
                                           if "verified" in r)
    return result


def report(work: Path, names: list[str]) -> str:
    figures = {n: medians(work / f"{n}.json") for n in names if (work / f"{n}.json").exists()}
    lines = [f"{'tool':10s} {'full s':>8s} {'no-op s':>8s} {'RSS MB':>8s} {'verified':>9s}"]
    for name, fig in figures.items():
        full, noop = fig.get("full", {}), fig.get("noop", {})
        lines.append(f"{name:10s} {full.get('wall_s', float('nan')):8.2f} "
                     f"{noop.get('wall_s', float('nan')):8.2f} "
                     f"{full.get('peak_rss_mb', float('nan')):8.1f} "
                     f"{str(full.get('verified', '?')):>9s}")
    ours = figures.get("cutover")
    if ours:
        for name, fig in figures.items():
            if name == "cutover":
                continue
            lines.append(
                f"cutover/{name}: full copy {ours['full']['wall_s'] / fig['full']['wall_s']:.2f}x"
                f", no-op {ours['noop']['wall_s'] / fig['noop']['wall_s']:.2f}x"
                f", peak RSS {ours['full']['peak_rss_mb'] / fig['full']['peak_rss_mb']:.2f}x")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
