#!/usr/bin/env python3
"""`cutover status` on a big workspace: a plan whose step has 10,000 items (the per-mailbox
items of a large migration batch), read by `cutover status --json` and `cutover status` as an
administrator runs them (a new process each time), against `sqlite3` reading the same rows.

    .venv/bin/python bench/status.py [--items 10000] [--reps 5]

Prints the median wall time per command and its ratio to the bare sqlite3 read (the peer: the
least any status can do is read the rows once). Target: under 0.5 s for 10,000 items.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cutover.state import State

ROOT = Path(__file__).resolve().parent.parent

PLAN = """name: big-batch
steps:
  - id: migrate
    kind: inventory.collect
    params: {}
"""


def build(root: Path, items: int) -> None:
    (root / "plans").mkdir(parents=True)
    (root / "plans" / "big.yaml").write_text(PLAN)
    state = State.open(root / "state" / "cutover.db")
    state.start_run("big-batch", "plans/big.yaml", {})
    changes = [{"item": f"user{n:05d}@example.org", "action": "update", "before": None,
                "after": {"moved": True}, "summary": "", "for_item": None}
               for n in range(items)]
    state.write_checkpoint("big-batch", "migrate", "inventory.collect", changes, "0" * 64, {})
    with state.atomic():
        for change in changes[: items // 2]:
            state.mark_item("big-batch", "migrate", change["item"], "done")
    state.close()


def timed(command: list[str], reps: int) -> float:
    runs = []
    for _ in range(reps):
        start = time.perf_counter()
        # this checkout's cutover (`-m` looks in the cwd first), whichever the venv installed
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT,
                       env={**os.environ, "COLUMNS": "120", "PYTHONPATH": str(ROOT)})
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    # Time cutover as installed (pip compiles bytecode at install): a checkout run with
    # PYTHONDONTWRITEBYTECODE set would otherwise recompile every module it imports on each run.
    subprocess.run([sys.executable, "-m", "compileall", "-q", ROOT / "cutover"], check=True,
                   stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory(prefix="cutover-bench-status-") as temp:
        root = Path(temp)
        build(root, args.items)
        db = str(root / "state" / "cutover.db")
        peer = timed(["sqlite3", db, "SELECT step_id, item, status FROM items"], args.reps) \
            if subprocess.run(["which", "sqlite3"], capture_output=True).returncode == 0 else \
            timed([sys.executable, "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); "
                   "c.execute('SELECT step_id, item, status FROM items').fetchall()", db],
                  args.reps)
        cutover = [sys.executable, "-m", "cutover", "--workspace", str(root), "status"]
        as_json = timed([*cutover, "--json"], args.reps)
        as_table = timed(cutover, args.reps)
    print(f"items: {args.items}")
    print(f"peer (read the rows once): {peer:.3f} s")
    print(f"cutover status --json:     {as_json:.3f} s ({as_json / peer:.1f}x the peer)")
    print(f"cutover status:            {as_table:.3f} s ({as_table / peer:.1f}x the peer)")


if __name__ == "__main__":
    main()
