"""A small real step kind for runner tests: it manages text files inside the workspace."""

from __future__ import annotations

from typing import ClassVar

from cutover.errors import StepFailed, UnsafeChange
from cutover.steps.base import Change, Context, Finding, Params, Step, register


class FilesParams(Params):
    files: dict[str, str | None]
    fail_on: str | None = None  # a file whose apply raises during an `outage`
    unsafe: bool = False  # preview refuses unless --force, as a safety threshold would


@register
class TestFiles(Step):
    kind: ClassVar[str] = "test.files"
    Params = FilesParams
    summary = "writes files in the workspace (tests only)"

    def _target(self, ctx: Context, name: str) -> str:
        return name.format(**ctx.item) if ctx.item else name

    def preview(self, ctx: Context) -> list[Change]:
        if ctx.params.unsafe and not ctx.force:
            raise UnsafeChange("this step changes too much: --force to pass")
        changes = []
        for name, wanted in ctx.params.files.items():
            path = ctx.workspace.path(self._target(ctx, name))
            current = path.read_bytes().decode() if path.exists() else None
            wanted = wanted.format(**ctx.item) if (wanted and ctx.item) else wanted
            if current != wanted:
                action = "create" if current is None else "delete" if wanted is None else "update"
                changes.append(Change(str(path.relative_to(ctx.workspace.root)), action,
                                      current, wanted))
        return changes

    def apply(self, ctx: Context, change: Change) -> None:
        # a transient failure: the item fails while the workspace holds `outage`
        if change.item == ctx.params.fail_on and ctx.workspace.path("outage").exists():
            raise StepFailed(f"cannot write {change.item}")
        self._write(ctx, change.item, change.after)

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        findings = []
        for change in changes:
            path = ctx.workspace.path(change.item)
            current = path.read_bytes().decode() if path.exists() else None
            if current != change.after:
                findings.append(Finding(change.item, f"holds {current!r}, not {change.after!r}"))
        return findings

    def rollback(self, ctx: Context, change: Change) -> None:
        self._write(ctx, change.item, change.before)

    @staticmethod
    def _write(ctx: Context, name: str, content: str | None) -> None:
        path = ctx.workspace.path(name)
        if content is None:
            path.unlink(missing_ok=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content.encode())


class WaitParams(Params):
    key: str
    seconds: int = 3600


@register
class TestHold(Step):
    """Sets a hold on apply (like lowering a TTL) and waits on it in preview when asked."""

    kind: ClassVar[str] = "test.hold"
    Params = WaitParams

    def preview(self, ctx: Context) -> list[Change]:
        ctx.wait_for(ctx.params.key)
        marker = ctx.workspace.path(f"{ctx.step_id}.done")
        return [] if marker.exists() else [Change(ctx.step_id, "create", None, "done")]

    def apply(self, ctx: Context, change: Change) -> None:
        from datetime import timedelta

        ctx.workspace.path(f"{ctx.step_id}.done").write_text("done")
        ctx.hold_until(f"after:{ctx.step_id}", ctx.now() + timedelta(seconds=ctx.params.seconds),
                       "old TTL still cached")

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        marker = ctx.workspace.path(f"{ctx.step_id}.done")
        wanted = bool(changes and changes[0].after)
        return [] if marker.exists() == wanted or not changes else [
            Finding(ctx.step_id, "marker file wrong")]

    def rollback(self, ctx: Context, change: Change) -> None:
        ctx.workspace.path(f"{ctx.step_id}.done").unlink(missing_ok=True)
