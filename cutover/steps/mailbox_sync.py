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

One Change per account. The identity map (in the runner's state) records every message this
step appends, as "PLAN/STEP-ID", before the APPEND is sent, and every folder it creates; a
rollback removes exactly those (an interrupted apply's included) and never anything that was
there. `before` records the target's folders as they were before the step ever copied into them
(UIDVALIDITY, UIDNEXT, messages), which the rollback is verified against.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from cutover.connectors.mailstore import INBOX, FolderInfo, MailStore
from cutover.errors import NotFound
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
    # the workspace checked the entry against the mail-store role's protocol
    return ctx.connector("mailstores", name)


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


def made_by(ctx: Context) -> str:
    """What this step's copies are recorded as: its rollback takes back exactly those."""
    return f"{ctx.plan_name}/{ctx.step_id}"


def _engine(ctx: Context, dry_run: bool) -> MailSync:
    """The copy engine on the runner's state (read only for a preview)."""
    if ctx.state is None:
        raise RuntimeError("mailbox.sync needs the runner's State in its Context")
    params: MailboxSyncParams = ctx.params
    options = SyncOptions(_rules(params), delete=params.delete, dry_run=dry_run,
                          jobs=params.jobs, made_by=made_by(ctx))
    return MailSync(IdentityMap.of(ctx.state, writable=not dry_run), options)


def _legacy_copy(folders_before: dict[str, list[int]]) -> Callable[[Row], bool]:
    """Rows an older cutover recorded without their maker: this step's are those in a folder
    it created, or at or above the UIDNEXT the folder had at preview time."""
    def ours(row: Row) -> bool:
        old = folders_before.get(row.dst_folder)
        return bool(row.dst_uid) and (old is None or (
            row.dst_uidvalidity == old[0] and (row.dst_uid or 0) >= old[1]))
    return ours


def _target_listing(account: Account) -> list[FolderInfo]:
    """The target's folders; an account that does not exist yet (a new Maildir) has none."""
    with account.target.open(account.target_user) as target:
        try:
            return target.folders()
        except NotFound:
            return []


#: What a preview saw of an account that had nothing to copy: (when, per source folder its
#: target folder and both sides' counters). The verification of that account moments later in
#: the same run relies on it instead of logging in again (200 accounts: 400 logins saved).
_observed: dict[tuple[int, str, str], tuple[float, dict[str, tuple[str, str | None]]]] = {}
OBSERVATION_TTL_S = 300.0


def _observation_key(ctx: Context, account: Account) -> tuple[int, str, str]:
    return (id(ctx.state), made_by(ctx), account.pair)


def _seen_equal_by_preview(ctx: Context, account: Account) -> bool:
    """True when this run's preview, moments ago, saw every folder of the account unchanged
    since a comparison that found it equal (same counters on both sides): the world then
    held an exact copy, and nothing was applied to it since."""
    seen = _observed.pop(_observation_key(ctx, account), None)
    if seen is None or time.monotonic() - seen[0] > OBSERVATION_TTL_S or ctx.state is None:
        return False
    verified = IdentityMap.of(ctx.state).verified(account.pair)
    strict_needed = ctx.params.delete
    for src_folder, (dst_folder, counters) in seen[1].items():
        earlier = verified.get(src_folder)
        if counters is None or earlier is None or earlier[0] != dst_folder \
                or earlier[2] != counters or (strict_needed and not earlier[1]):
            return False
    return bool(seen[1])


@register
class MailboxSync(Step):
    kind = "mailbox.sync"
    Params = MailboxSyncParams
    summary = "Copy each account's mail exactly (folders, flags, dates) to its new mail store."
    # A preview only reads and mostly waits on two logins: the runner previews this many
    # accounts side by side (200 up-to-date mailboxes: one login at a time took 85 a second).
    preview_workers = 4

    def preview(self, ctx: Context) -> list[Change]:
        account = _account(ctx)
        engine = _engine(ctx, dry_run=True)
        [result] = engine.run([account])
        for note in result.notes:
            ctx.log(note)
        if not result.to_copy and not result.created_folders:
            if result.unchanged_folders == result.folders:
                _observed[_observation_key(ctx, account)] = (time.monotonic(), result.unchanged)
            return []
        # `before` is the target as it was before this step ever copied into it: copies an
        # interrupted apply of this step left (and folders it created) are not counted as
        # there before, so the rollback takes them back too.
        ours = engine.copies_present(account, made_by(ctx))
        created = set(engine.identity().created_folders(account.pair, made_by(ctx)))
        listing = _target_listing(account)
        folders = {f.name: [f.uidvalidity, f.uidnext, f.messages - ours.get(f.name, 0)]
                   for f in listing if f.selectable and f.name not in created}
        folders.setdefault(INBOX, [0, 0, 0])  # a new account: the copy creates its INBOX
        parents = [f.name for f in listing if not f.selectable and f.name not in created]
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
        _engine(ctx, dry_run=False).run([_account(ctx)])

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        if not changes:  # "nothing to copy" is a claim about the world too
            account = _account(ctx)
            if _seen_equal_by_preview(ctx, account):
                return []
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
        """Compare both accounts; folders unchanged since an earlier equal comparison (the
        identity map remembers their counters) are not read again."""
        identity = IdentityMap.of(ctx.state) if ctx.state is not None else IdentityMap.empty()
        with account.source.open(account.source_user) as left, \
                account.target.open(account.target_user) as right:
            result = compare(left, right, _rules(ctx.params), delete=ctx.params.delete,
                             known=identity.verified(account.pair))
        identity.save_verified(account.pair, result.verified, ctx.now().isoformat())
        how = "" if result.method == BY_CONTENT else f" (compared by {result.method})"
        return [Finding(item, d.describe() + how) for d in result.differences]

    @staticmethod
    def _check_restored(account: Account, change: Change) -> list[Finding]:
        wanted = (change.after or {}).get("target_folders", {})
        now = {f.name: f.messages for f in _target_listing(account) if f.selectable}
        findings = []
        for name, messages in now.items():
            if name not in wanted:
                findings.append(Finding(change.item, f"folder {name} is still on the target"))
            elif messages != wanted[name][2]:
                findings.append(Finding(change.item, f"{name} holds {messages} messages, "
                                                     f"{wanted[name][2]} before"))
        return findings

    def rollback(self, ctx: Context, change: Change) -> None:
        """Take back every message and folder this step copied or created, an interrupted
        apply's included (the identity map records each APPEND before it is sent), and
        never anything that was there before; raises while any copy remains."""
        before = change.before or {}
        folders_before: dict[str, list[int]] = before.get("target_folders", {})
        _engine(ctx, dry_run=False).remove_copies(
            _account(ctx, change), made_by(ctx), before=_legacy_copy(folders_before),
            folders_before=set(folders_before),
            parents_before=set(before.get("target_parents", [])))

    def manual_checks(self, params: Any) -> list[str]:
        return [f"cutover mailbox verify <{params.source} URL of {params.source_user}> "
                f"<{params.target} URL of {params.target_user}>"]

    def manual_rollback(self, params: Any) -> list[str]:
        return [f"Delete from {params.target_user} on {params.target} the folders and messages "
                "the copy created (they are newer than the run started)."]
