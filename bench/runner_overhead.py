#!/usr/bin/env python3
"""Runner overhead: one step of 10,000 items through the runner (checkpoint, per-item state
write and audit event, verify) against applying the same items with no runner at all.

    .venv/bin/python bench/runner_overhead.py [--items 10000] [--reps 3]

Prints medians and the ratio runner/bare; both sides write the same files in the same run.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import ClassVar

from cutover.plan import load_plan
from cutover.runner import Runner, RunOptions
from cutover.state import State
from cutover.steps.base import Change, Context, Finding, Params, Step, register
from cutover.workspace import Workspace


class TouchParams(Params):
    items: int


@register
class BenchTouch(Step):
    """Writes one small file per item: cheap enough that the runner's cost shows."""

    kind: ClassVar[str] = "bench.touch"
    Params = TouchParams

    def preview(self, ctx: Context) -> list[Change]:
        return [Change(f"f{i:06d}", "create", None, str(i)) for i in range(ctx.params.items)
                if not ctx.workspace.path(f"out/f{i:06d}").exists()]

    def apply(self, ctx: Context, change: Change) -> None:
        ctx.workspace.path(f"out/{change.item}").write_text(change.after)

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        return [Finding(c.item, "missing") for c in changes
                if not ctx.workspace.path(f"out/{c.item}").exists()]

    def rollback(self, ctx: Context, change: Change) -> None:
        ctx.workspace.path(f"out/{change.item}").unlink(missing_ok=True)


def workspace_with_plan(root: Path, items: int) -> tuple[Workspace, Path]:
    (root / "out").mkdir(parents=True)
    (root / "cutover.yaml").write_text("name: bench\n")
    plan = root / "plan.yaml"
    plan.write_text(f"name: bench\nsteps:\n  - {{id: touch, kind: bench.touch, "
                    f"params: {{items: {items}}}}}\n")
    return Workspace(root), plan


def bare(items: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        workspace, _ = workspace_with_plan(Path(tmp), items)
        step = BenchTouch()
        ctx = Context(workspace, "bench", "touch", TouchParams(items=items))
        start = time.perf_counter()
        changes = step.preview(ctx)
        for change in changes:
            step.apply(ctx, change)
        assert not step.verify(ctx, changes)
        return time.perf_counter() - start


def with_runner(items: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        workspace, plan = workspace_with_plan(Path(tmp), items)
        start = time.perf_counter()
        state = State.open(workspace.state_path)
        state.acquire_lock("bench")
        Runner(workspace, state, load_plan(plan)).run(RunOptions(yes=True))
        state.release_lock()
        elapsed = time.perf_counter() - start
        assert len(list(Path(tmp, "out").iterdir())) == items
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    bare_times = [bare(args.items) for _ in range(args.reps)]
    runner_times = [with_runner(args.items) for _ in range(args.reps)]
    b, r = statistics.median(bare_times), statistics.median(runner_times)
    per_item_us = (r - b) / args.items * 1e6
    print(f"items={args.items} reps={args.reps}")
    print(f"bare apply      median {b:.3f}s")
    print(f"through runner  median {r:.3f}s")
    print(f"ratio runner/bare = {r / b:.2f}x; overhead {per_item_us:.0f} us per item "
          f"(checkpoint row, item state write, audit event)")


if __name__ == "__main__":
    main()
