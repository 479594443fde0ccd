"""Step kind `mailbox.sync`: copy each account's mail exactly, incrementally, to its new store.

    - id: move-mail
      kind: mailbox.sync
      requires: [accounts]
      for_each: {class: verification}
      params:
        source: exchange                       # cutover.yaml mailstores names
        target: linux
        source_user: "{address}"
        target_user: "{local}@verify.example.org"
        exclude: ["Calendar*", "Contacts"]     # optional globs (folders: [...] to include only)
        map_folder: {"Archive": "Old/Archive"} # optional
        delete: false                          # true: expunge what the source no longer has
        jobs: 4

One Change per account. `before` records the target's folders with their UIDVALIDITY and UIDNEXT
at preview time, so a rollback removes exactly the copies this step made (from the identity map,
at or above those UIDNEXTs) and the folders it created, and never anything that was there.
"""

from __future__ import annotations

from typing import Any

from cutover.connectors.mailstore import FolderInfo, MailboxSession, MailStore
from cutover.errors import UsageError
from cutover.item_template import expand
from cutover.mailsync.engine import Account, MailSync, SyncOptions
from cutover.mailsync.folders import FolderRules
from cutover.mailsync.identity import IdentityMap, Row
from cutover.mailsync.verify import BY_CONTENT, compare
from cutover.steps.base import Change, Context, Finding, Params, Step, register


class MailboxSyncParams(Params):
    source: str
    target: str
    source_user: str = "{address}"
    target_user: str = "{address}"
    folders: list[str] = []
    exclude: list[str] = []
    map_folder: dict[str, str] = {}
    delete: bool = False
    jobs: int = 4


def _store(ctx: Context, name: str) -> MailStore:
    store = ctx.connector("mailstores", name)
    if not hasattr(store, "open") or not hasattr(store, "describe"):
        raise UsageError(f"cutover.yaml: mailstores.{name} is not a mail store")
    return store


def _account(ctx: Context, change: Change | None = None) -> Account:
    """The account pair of this item; from the Change when there is one (rollback and verify
    then need nothing but the checkpoint)."""
    params: MailboxSyncParams = ctx.params
    recorded = (change.before or change.after or {}) if change is not None else {}
    if "source_user" in recorded:
        source_user, target_user = recorded["source_user"], recorded["target_user"]
    else:
        source_user = expand(params.source_user, ctx.item).strip()
        target_user = expand(params.target_user, ctx.item).strip()
    return Account(_store(ctx, params.source), source_user, _store(ctx, params.target),
                   target_user)


def _rules(params: MailboxSyncParams) -> FolderRules:
    return FolderRules.parse(params.folders, params.exclude, params.map_folder)


def _options(params: MailboxSyncParams, dry_run: bool) -> SyncOptions:
    return SyncOptions(_rules(params), delete=params.delete, dry_run=dry_run, jobs=params.jobs)


def _copied_by_this_step(rows: list[Row], folders_before: dict[str, list[int]],
                         current: dict[str, FolderInfo]) -> list[Row]:
    """The identity rows of the target messages this step copied: in a folder it created, or
    at or above the UIDNEXT the folder had at preview time. Rows of earlier copies (another
    step over the same pair) and pending rows (no target UID yet: a re-run re-matches them
    by digest) are not among them."""
    copied = []
    for row in rows:
        old = folders_before.get(row.dst_folder)
        ours = old is None or (row.dst_uidvalidity == old[0] and (row.dst_uid or 0) >= old[1])
        if ours and row.dst_uid and row.dst_folder in current:
            copied.append(row)
    return copied


def _by_folder(rows: list[Row]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(row.dst_folder, []).append(row)
    return grouped


def _remove_created_folders(target: MailboxSession, current: dict[str, FolderInfo],
                            folders_before: dict[str, list[int]],
                            parents_before: list[str]) -> set[str]:
    """Delete the folders the step created, once empty; returns the names deleted."""
    created = [n for n, f in current.items() if f.selectable and n not in folders_before
               and target.folder(n).messages == 0]
    parents = [n for n, f in current.items() if not f.selectable and n not in parents_before]
    removed = set()
    for name in sorted(created + parents, key=lambda n: -n.count("/")):
        if name in parents and any(o.startswith(name + "/") for o in current
                                   if o not in created and o not in parents):
            continue  # still holds folders that were there before
        target.delete_folder(name)
        removed.add(name)
    return removed


@register
class MailboxSync(Step):
    kind = "mailbox.sync"
    Params = MailboxSyncParams
    summary = "Copy each account's mail exactly (folders, flags, dates) to its new mail store."

    def preview(self, ctx: Context) -> list[Change]:
        account = _account(ctx)
        [result] = MailSync(ctx.workspace.state_path, _options(ctx.params, True)).run([account])
        for note in result.notes:
            ctx.log(note)
        if not result.to_copy and not result.created_folders:
            return []
        with account.target.open(account.target_user) as target:
            listing = target.folders()
        folders = {f.name: [f.uidvalidity, f.uidnext, f.messages]
                   for f in listing if f.selectable}
        parents = [f.name for f in listing if not f.selectable]
        total = sum(result.to_copy.values())
        return [Change(
            item=account.target_user,
            action="update" if any(v[2] for v in folders.values()) else "create",
            before={"pair": account.pair, "source_user": account.source_user,
                    "target_user": account.target_user, "target_folders": folders,
                    "target_parents": parents},
            after={"pair": account.pair, "source_user": account.source_user,
                   "target_user": account.target_user, "copy": result.to_copy,
                   "bytes": result.to_copy_bytes, "new_folders": result.created_folders},
            summary=f"copy {total} messages ({result.to_copy_bytes / 1e6:.1f} MB) "
                    f"{account.source_user} -> {account.target_user}",
        )]

    def apply(self, ctx: Context, change: Change) -> None:
        MailSync(ctx.workspace.state_path, _options(ctx.params, False)).run([_account(ctx)])

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        if not changes:  # "nothing to copy" is a claim about the world too
            account = _account(ctx)
            return self._compare(ctx, account, account.target_user)
        findings = []
        for change in changes:
            account = _account(ctx, change)
            if change.after is not None and "copy" in change.after:
                findings += self._compare(ctx, account, change.item)
            else:  # after a rollback: the target holds what it held before, no more
                findings += self._check_restored(account, change)
        return findings

    @staticmethod
    def _compare(ctx: Context, account: Account, item: str) -> list[Finding]:
        with account.source.open(account.source_user) as left, \
                account.target.open(account.target_user) as right:
            result = compare(left, right, _rules(ctx.params), delete=ctx.params.delete)
        how = "" if result.method == BY_CONTENT else f" (compared by {result.method})"
        return [Finding(item, d.describe() + how) for d in result.differences]

    @staticmethod
    def _check_restored(account: Account, change: Change) -> list[Finding]:
        wanted = (change.after or {}).get("target_folders", {})
        with account.target.open(account.target_user) as target:
            now = {f.name: f.messages for f in target.folders() if f.selectable}
        findings = []
        for name, messages in now.items():
            if name not in wanted:
                findings.append(Finding(change.item, f"folder {name} is still on the target"))
            elif messages != wanted[name][2]:
                findings.append(Finding(change.item, f"{name} holds {messages} messages, "
                                                     f"{wanted[name][2]} before"))
        return findings

    def rollback(self, ctx: Context, change: Change) -> None:
        account = _account(ctx, change)
        before = change.before or {}
        folders_before: dict[str, list[int]] = before.get("target_folders", {})
        pair = before.get("pair", account.pair)
        identity = IdentityMap.open(ctx.workspace.state_path)
        try:
            with account.target.open(account.target_user) as target:
                current = {f.name: f for f in target.folders()}
                copied = _copied_by_this_step(identity.all_rows(pair), folders_before, current)
                for folder, rows in _by_folder(copied).items():
                    target.delete(folder, [row.dst_uid for row in rows])
                removed = _remove_created_folders(target, current, folders_before,
                                                  before.get("target_parents", []))
            # Only this step's records go: another step over the same pair (copy-to-cloud,
            # then final-sync) keeps its own, so a re-run copies nothing it already copied.
            identity.drop(pair, copied)
            for src_folder, record in identity.folder_records(pair).items():
                if record.dst_folder in removed:
                    identity.forget_folder(pair, src_folder)
        finally:
            identity.close()

    def manual_checks(self, params: Any) -> list[str]:
        return [f"cutover mailbox verify <{params.source} URL of {params.source_user}> "
                f"<{params.target} URL of {params.target_user}>"]

    def manual_rollback(self, params: Any) -> list[str]:
        return [f"Delete from {params.target_user} on {params.target} the folders and messages "
                "the copy created (they are newer than the run started)."]
