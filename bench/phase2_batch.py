#!/usr/bin/env python3
"""Phase 2 at scale: one hybrid migration batch of 500 mailboxes through the exo-file twin.

    .venv/bin/python bench/phase2_batch.py [--mailboxes 500] [--reps 3]

Three ways over the same twin, in the same run:
- script: the cmdlets a careful script would send (New-MigrationBatch; Get-MigrationUser |
  Get-MigrationUserStatistics until Synced; Complete-MigrationBatch; again until Completed),
  the simulated MRS moved along by hand: the peer;
- steps: the plan's three batch steps (prestage, synced, complete) driven by hand, verb by
  verb (preview, apply each change, verify), without the runner or its state;
- runner: the same plan through the runner (checkpoints, per-mailbox items, audit events).
runner - steps, per mailbox, is what the runner and the state cost; runner / script is what
cutover costs over a bare script. Then the progress of the 500 mailboxes as `cutover status`
reads it (in process, and `cutover status --json` as a command with its start-up).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cutover.connectors.exchange.shell_file import write_json
from cutover.inventory.store import store_snapshot
from cutover.plan import load_plan
from cutover.runner import Runner, RunOptions
from cutover.state import State
from cutover.steps import migration_state
from cutover.steps.base import Context, Waiting
from cutover.workspace import Workspace

ROUTING = "exampleorg.mail.onmicrosoft.com"
PLAN = f"""\
name: bench
steps:
  - {{id: prestage, kind: cloud.migration_batch, params: {{stage: prestage, batch: bench,
     mailboxes: {{}}, source_endpoint: mail.example.org, target_delivery_domain: {ROUTING}}}}}
  - {{id: wait-synced, kind: cloud.migration_batch, requires: [prestage],
     params: {{stage: synced, batch: bench}}}}
  - {{id: complete, kind: cloud.migration_batch, requires: [wait-synced],
     params: {{stage: complete, batch: bench}}}}
"""


def addresses(count: int) -> list[str]:
    return [f"user{n:04d}@example.org" for n in range(count)]


def build(root: Path, count: int) -> Workspace:
    (root / "cutover.yaml").write_text(
        "name: bench\nclock: simulated\nmanagement:\n"
        "  onprem: {kind: exchange-file, path: onprem/}\n"
        "  tenant: {kind: exo-file, path: tenant/, onprem: onprem}\n")
    (root / "plan.yaml").write_text(PLAN)
    write_json(root / "onprem" / "mailboxes.json", [
        {"PrimarySmtpAddress": a, "RecipientTypeDetails": "UserMailbox",
         "ExchangeGuid": f"guid-{a}", "Alias": a.split("@")[0]} for a in addresses(count)])
    write_json(root / "tenant" / "recipients.json", [
        {"PrimarySmtpAddress": a, "RecipientTypeDetails": "MailUser",
         "ExternalEmailAddress": f"SMTP:{a}", "ExchangeGuid": f"guid-{a}",
         "EmailAddresses": [f"SMTP:{a}", f"smtp:{a.split('@')[0]}@{ROUTING}"]}
        for a in addresses(count)])
    write_json(root / "tenant" / "migration-endpoints.json", [{"Identity": "mail.example.org"}])
    return Workspace(root)


def prepared(root: Path, count: int) -> tuple[Workspace, State]:
    workspace = build(root, count)
    state = State.open(workspace.state_path)
    store_snapshot(state, "bench", ({"address": a, "class": "people", "destination": "cloud",
                                     "type": "UserMailbox"} for a in addresses(count)), [])
    return workspace, state


def steps_only(count: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        workspace, state = prepared(Path(tmp), count)
        plan = load_plan(Path(tmp) / "plan.yaml")
        start = time.perf_counter()
        for planned in plan.ordered():
            ctx = Context(workspace, plan.name, planned.id, planned.params, clock=state.now,
                          state=state)
            while True:
                try:
                    changes = planned.kind().preview(ctx)
                    break
                except Waiting as wait:
                    state.advance_clock((wait.until - state.now()).total_seconds() + 1)
            step = planned.kind()
            for change in changes:
                step.apply(ctx, change)
            assert not [f for f in planned.kind().verify(ctx, changes) if f.severity == "error"]
        elapsed = time.perf_counter() - start
        state.close()
        return elapsed


def script(count: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        workspace = build(Path(tmp), count)
        tenant = workspace.connector("management", "tenant")
        clock = {"now": datetime(2026, 3, 14, 8, 0, tzinfo=UTC)}
        tenant.use_clock(lambda: clock["now"])
        start = time.perf_counter()
        tenant.new_migration_batch("bench", addresses(count), source_endpoint="mail.example.org",
                                   target_delivery_domain=ROUTING, bad_item_limit=10,
                                   large_item_limit=0, complete_after=None, auto_start=True)
        while not all(u.synced for u in tenant.migration_users("bench")):
            clock["now"] += timedelta(minutes=15)
        tenant.complete_migration_batch("bench")
        while not all(u.completed for u in tenant.migration_users("bench")):
            clock["now"] += timedelta(minutes=5)
        return time.perf_counter() - start


def through_runner(count: int, keep: Path | None = None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        root = keep or Path(tmp)
        workspace, state = prepared(root, count)
        start = time.perf_counter()
        state.acquire_lock("bench")
        Runner(workspace, state, load_plan(root / "plan.yaml")).run(RunOptions(yes=True))
        state.release_lock()
        elapsed = time.perf_counter() - start
        progress = migration_state.batch_progress(state, "bench", "complete")
        assert progress["counts"] == {"Completed": count}, progress["counts"]
        state.close()
        return elapsed


def status_times(count: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        through_runner(count, keep=root)
        state = State.open(root / "state" / "cutover.db")
        start = time.perf_counter()
        progress = migration_state.progress(state)
        in_process = time.perf_counter() - start
        assert sum(len(p["mailboxes"]) for p in progress.values()) == 3 * count
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "cutover", "--workspace", str(root),
                                 "status", "--json"], capture_output=True, text=True,
                                check=True)
        command = time.perf_counter() - start
        json.loads(result.stdout)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cutover", "--help"], capture_output=True,
                       check=True)
        return in_process, command - (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailboxes", type=int, default=500)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    script_times, step_times, runner_times = [], [], []
    for _ in range(args.reps):  # interleaved, so a busy machine weighs on all three alike
        script_times.append(script(args.mailboxes))
        step_times.append(steps_only(args.mailboxes))
        runner_times.append(through_runner(args.mailboxes))
    b, s, r = (statistics.median(t) for t in (script_times, step_times, runner_times))
    in_process, command = status_times(args.mailboxes)
    print(f"mailboxes={args.mailboxes} reps={args.reps}")
    print(f"script (bare cmdlets)   median {b:.2f}s")
    print(f"steps without runner    median {s:.2f}s (preview, apply, verify of 3 steps)")
    print(f"through the runner      median {r:.2f}s ({args.mailboxes * 2 + 2} items)")
    print(f"runner and state: {(r - s) / args.mailboxes * 1e3:.1f} ms per mailbox "
          f"({r / s:.2f}x the steps alone); cutover {r / b:.1f}x a bare script (checks, "
          "verification, observations)")
    print(f"batch progress of {args.mailboxes} mailboxes x 3 steps, with ETAs: "
          f"{in_process * 1e3:.0f} ms in process; `cutover status --json` {command:.2f}s more "
          "than `cutover --help` (the same start-up)")


if __name__ == "__main__":
    main()
