"""The sync engine: make each target account an exact copy of its source account, incrementally.

Per account: list both folder trees, map names (special-use, --map-folder), follow renamed and
removed source folders through the identity map, create missing target folders parents first.
Then every folder is one task (run `jobs` at a time, each worker with its own sessions and DB
connection):

1. STATUS on both sides; if both match what the last sync recorded (UIDVALIDITY, UIDNEXT,
   MESSAGES and HIGHESTMODSEQ or the store's change marker) the folder is skipped.
2. List both sides (UID, FLAGS, SIZE, INTERNALDATE). Re-match by content digest when a
   UIDVALIDITY changed on either side or pending rows were left by an interrupted run.
3. Copy what is new in batches (bodies prefetched while the previous batch is appended),
   recording each batch `pending` before the APPEND (a streamed message: once sent, before
   the APPEND command ends) and `done` after; fix flags/keywords;
   with `delete`, expunge on the target what the source no longer has.
4. Record both sides' counters for the next run's fast path.

Memory stays bounded: a few batches of bodies (256 KB each) per worker; a bigger message is
streamed from the source into the target's APPEND, never held whole.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cutover.connectors.mailstore import (
    INBOX,
    SEPARATOR,
    FolderInfo,
    MailboxSession,
    MailStore,
    MessageRef,
    NewMessage,
    content_digest,
)
from cutover.errors import NotFound, VerificationFailed
from cutover.faults import crash_if_asked
from cutover.mailsync.folders import FolderRules, plan_folders
from cutover.mailsync.identity import FolderRecord, IdentityMap, Row, counters_key
from cutover.mailsync.locks import target_locks

COPY_BATCH_BYTES = 256 * 1024  # read from the source at once (and held: one batch ahead)
COPY_BATCH_COUNT = 100
#: appended in one APPEND command, one transaction on the target; streamed, so not held
COPY_TRANSACTION_BYTES = 32 * 1024 * 1024
COPY_TRANSACTION_COUNT = 2000
FOLDER_ATTEMPTS = 4  # a folder task is re-run (resolving pending rows) after a dropped link
EXACT_CONTENT = "EXACT-CONTENT"  # as normalised.EXACT_CONTENT (not imported: ~10 ms)
STREAMED_APPEND = "STREAMED-APPEND"  # as imap.store.STREAMED_APPEND (an IMAP target's)


@dataclass(frozen=True)
class Account:
    """One source account copied to one target account."""

    source: MailStore
    source_user: str
    target: MailStore
    target_user: str

    @property
    def pair(self) -> str:
        source = self.source.describe(self.source_user)
        return f"{source} -> {self.target.describe(self.target_user)}"

    @property
    def label(self) -> str:
        if self.source_user == self.target_user:
            return self.source_user
        return f"{self.source_user} -> {self.target_user}"


@dataclass(frozen=True)
class SyncOptions:
    rules: FolderRules = field(default_factory=FolderRules)
    delete: bool = False
    dry_run: bool = False
    jobs: int = 4
    max_msgs_per_s: float | None = None
    max_bytes_per_s: float | None = None
    #: who copies: recorded with every message appended ("plan/step-id" for a plan step), so
    #: that a rollback takes back exactly that copy's messages
    made_by: str = "cutover mailbox sync"


@dataclass
class AccountResult:
    account: str
    folders: int = 0
    unchanged_folders: int = 0
    created_folders: list[str] = field(default_factory=list)
    renamed_folders: list[str] = field(default_factory=list)
    copied: int = 0
    copied_bytes: int = 0
    flags_updated: int = 0
    deleted: int = 0
    rematched: int = 0
    to_copy: dict[str, int] = field(default_factory=dict)  # dry run: folder -> messages
    to_copy_bytes: int = 0
    notes: list[str] = field(default_factory=list)  # e.g. a folder the target stores renamed
    #: per source folder found unchanged since the last sync: its target folder and both
    #: sides' counters as seen (what a verification moments later may rely on)
    unchanged: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "unchanged"}


class Progress:
    """Callbacks the CLI renders; the default does nothing."""

    def planned(self, account: str, messages: int, size: int) -> None: ...

    def copied(self, account: str, messages: int, size: int) -> None: ...

    def folder_done(self, account: str, folder: str) -> None: ...


class Throttle:
    """--max-msgs-per-s and --max-bandwidth, shared by every worker."""

    def __init__(self, msgs_per_s: float | None, bytes_per_s: float | None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.msgs_per_s, self.bytes_per_s = msgs_per_s, bytes_per_s
        self.clock, self.sleep = clock, sleep
        self.lock = threading.Lock()
        self.start = clock()
        self.msgs = self.bytes = 0

    def take(self, messages: int, size: int) -> None:
        if not self.msgs_per_s and not self.bytes_per_s:
            return
        with self.lock:
            self.msgs += messages
            self.bytes += size
            due = max(self.msgs / self.msgs_per_s if self.msgs_per_s else 0,
                      self.bytes / self.bytes_per_s if self.bytes_per_s else 0)
            wait = self.start + due - self.clock()
        if wait > 0:
            self.sleep(wait)  # rate limiting is the point here


@dataclass
class _FolderTask:
    account: Account
    source: FolderInfo
    target_name: str
    result: AccountResult


class Sessions:
    """A pool of open sessions per (store, user): a worker leases one for a folder task and
    gives it back, so N workers need at most N logins per account."""

    def __init__(self):
        self.lock = threading.Lock()
        self.idle: dict[tuple[int, str], list[MailboxSession]] = defaultdict(list)
        self.opened: list[MailboxSession] = []

    @contextmanager
    def lease(self, store: MailStore, user: str) -> Iterator[MailboxSession]:
        key = (id(store), user)
        with self.lock:
            session = self.idle[key].pop() if self.idle[key] else None
        if session is None:
            session = store.open(user)
            with self.lock:
                self.opened.append(session)
        try:
            yield session
        except BaseException:
            session.close()  # its connection state is unknown: never reuse it
            raise
        with self.lock:
            self.idle[key].append(session)

    def close(self) -> None:
        with self.lock:
            opened, self.opened = self.opened, []
            self.idle.clear()
        if len(opened) > 1:  # each LOGOUT waits for its server: wait for them all at once
            with ThreadPoolExecutor(max_workers=len(opened)) as pool:
                list(pool.map(_close_quietly, opened))
        else:
            for session in opened:
                _close_quietly(session)


def _close_quietly(session: MailboxSession) -> None:
    try:
        session.close()
    except Exception:  # noqa: BLE001 - closing is best effort
        pass


def _return_freed_memory() -> None:
    """glibc raises its mmap threshold after big frees, so message-sized buffers end up in
    arenas that never shrink; a fixed threshold (and two arenas) keeps peak RSS near what is
    really in use."""
    import ctypes  # here: a no-op re-run never copies, so never pays the import

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 256 * 1024)  # M_MMAP_THRESHOLD
        libc.mallopt(-8, 2)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc: nothing to tune


class SyncStopped(Exception):
    """Ends a worker's folder task once the calling thread was interrupted; the caller is
    raising its own interruption, so nobody reports this one."""


class MailSync:
    """Copies accounts with the identity map it is handed (`IdentityMap.of(state)`): it never
    opens a state database by path. Worker threads get their own connection to the same state
    file; a map that cannot be shared across threads (an in-memory state) is worked on the
    calling thread alone."""

    def __init__(self, identity: IdentityMap, options: SyncOptions,
                 progress: Progress | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.map = identity
        self.options = options
        self.progress = progress or Progress()
        self.clock = clock
        self.throttle = Throttle(options.max_msgs_per_s, options.max_bytes_per_s)
        self.sessions = Sessions()
        self._maps = threading.local()
        # Set when the calling thread is interrupted (Ctrl-C): the workers end their APPEND
        # after the batch under way, record it, and stop, instead of finishing the folder.
        self._stopping = threading.Event()

    def identity(self) -> IdentityMap:
        """The identity map for the calling thread."""
        mine = getattr(self._maps, "map", None)
        if mine is None:
            mine = self._maps.map = self.map.for_thread()
        return mine

    # --- entry point ------------------------------------------------------------------------
    def run(self, accounts: list[Account]) -> list[AccountResult]:
        locks = nullcontext() if self.options.dry_run else target_locks(
            [(a.target, a.target_user) for a in accounts], self.options.made_by)
        try:
            with locks:
                return self._run_locked(accounts)
        finally:
            self.sessions.close()

    def _run_locked(self, accounts: list[Account]) -> list[AccountResult]:
        results, tasks = [], []
        for account in accounts:
            result = AccountResult(account.label)
            results.append(result)
            tasks.extend(self._prepare_account(account, result))
        if tasks:  # before the workers start, so that they share the arenas it allows
            _return_freed_memory()
        if not self.map.can_share:  # a connection of this thread only: no workers
            for task in tasks:
                self._run_task(task)
            return results
        with ThreadPoolExecutor(max_workers=max(1, self.options.jobs)) as pool:
            futures = [pool.submit(self._run_task, task) for task in tasks]
            try:
                for future in futures:
                    future.result()
            except Exception:  # one folder failed: the others still finish
                raise
            except BaseException:  # Ctrl-C on this thread: the workers stop at their next batch
                self._stopping.set()
                for future in futures:
                    future.cancel()
                raise
        return results

    # --- account level ----------------------------------------------------------------------
    def _prepare_account(self, account: Account, result: AccountResult) -> list[_FolderTask]:
        # Both sides log in and list their folders at once: an up-to-date account then costs
        # one login and one listing of wall time, not two of each.
        with ThreadPoolExecutor(max_workers=1) as pool:
            target_listing = pool.submit(self._listing, account.target, account.target_user,
                                         True)
            try:
                src_folders = self._listing(account.source, account.source_user, False)
            finally:
                dst_folders = target_listing.result()
        with self.sessions.lease(account.source, account.source_user) as src, \
                self.sessions.lease(account.target, account.target_user) as dst:
            return self._plan_account(account, result, src, dst, src_folders, dst_folders)

    def _listing(self, store: MailStore, user: str, target: bool) -> list[FolderInfo]:
        with self.sessions.lease(store, user) as session:
            # a source that does not exist raises NotFound: never read as "empty"
            return self._target_folders(session) if target else session.folders()

    def _target_folders(self, dst: MailboxSession) -> list[FolderInfo]:
        """The target's folders; a target account that does not exist yet (a new Maildir) is
        created by a copy, and reads as an empty INBOX in a dry run."""
        try:
            return dst.folders()
        except NotFound:
            if self.options.dry_run:
                return [FolderInfo(INBOX)]
            dst.create_folder(INBOX)
            return dst.folders()

    def _plan_account(self, account: Account, result: AccountResult, src: MailboxSession,
                      dst: MailboxSession, src_folders: list[FolderInfo],
                      dst_folders: list[FolderInfo]) -> list[_FolderTask]:
        self._check_named_folders(src_folders, account)
        mapping = plan_folders(src_folders, dst_folders, self.options.rules)
        by_name = {f.name: f for f in src_folders}
        if not self.options.dry_run:
            dst_folders = self._follow_renames(account, src_folders, dst_folders, mapping,
                                               dst, result)
        existing = {f.name: f for f in dst_folders}
        identity = self.identity()
        records = identity.folder_records(account.pair)
        pending = identity.pending_folders(account.pair)
        tasks = []
        for src_name, dst_name in mapping.items():
            info = by_name[src_name]
            if not info.selectable:
                continue
            result.folders += 1
            if dst_name not in existing:
                result.created_folders.append(dst_name)
                result.notes += _name_notes(dst, dst_name)  # a name the target refuses raises
                if not self.options.dry_run:
                    identity.note_created(account.pair, dst_name, self.options.made_by)
                    dst.create_folder(dst_name, info.special_use)
            elif (src_name in records and src_name not in pending
                  and _unchanged(records[src_name], info, existing[dst_name], dst_name)):
                result.unchanged_folders += 1  # the no-op fast path: LIST + STATUS only
                result.unchanged[src_name] = (dst_name,
                                              counters_key(info, existing[dst_name]))
                continue
            tasks.append(_FolderTask(account, info, dst_name, result))
        # Largest first, so the big folders do not start last and finish alone.
        tasks.sort(key=lambda t: -t.source.size_bytes)
        return tasks

    def _check_named_folders(self, folders: list[FolderInfo], account: Account) -> None:
        names = {f.name for f in folders}
        for pattern in self.options.rules.include:
            if not any(c in pattern for c in "*?[") and pattern not in names:
                raise NotFound(f"folder {pattern!r} does not exist in "
                               f"{account.source.describe(account.source_user)}")

    def _follow_renames(self, account: Account, src_folders: list[FolderInfo],
                        dst_folders: list[FolderInfo], mapping: dict[str, str],
                        dst: MailboxSession, result: AccountResult) -> list[FolderInfo]:
        """A recorded source folder that vanished while a new one with its UIDVALIDITY
        appeared was renamed: rename its target folder too, keep every identity row."""
        identity = self.identity()
        records = identity.folder_records(account.pair)
        src_names = {f.name: f for f in src_folders}
        vanished = {r.src_uidvalidity: r for name, r in records.items() if name not in src_names}
        dst_names = {f.name for f in dst_folders}
        changed = False
        for info in src_folders:
            if info.name in records or not info.selectable or info.name not in mapping:
                continue
            record = vanished.pop(info.uidvalidity, None)
            if record is None:
                continue
            new_dst = mapping[info.name]
            if record.dst_folder in dst_names and new_dst not in dst_names:
                parent = new_dst.rpartition(SEPARATOR)[0]
                if parent and parent not in dst_names:
                    dst.create_folder(parent)
                dst.rename_folder(record.dst_folder, new_dst)
                changed = True
            identity.rename_source_folder(account.pair, record.src_folder, info.name, new_dst)
            result.renamed_folders.append(f"{record.src_folder} -> {info.name}")
        for record in vanished.values():
            if self.options.delete:
                self._remove_copied_folder(account, record, dst)
                changed = True
        return dst.folders() if changed else dst_folders

    def _remove_copied_folder(self, account: Account, record: FolderRecord,
                              dst: MailboxSession) -> None:
        identity = self.identity()
        rows = [r for r in identity.rows(account.pair, record.src_folder) if r.dst_uid]
        try:
            dst.delete(record.dst_folder, [r.dst_uid for r in rows])
            if dst.folder(record.dst_folder).messages == 0:
                dst.delete_folder(record.dst_folder)
        except NotFound:
            pass
        identity.forget_folder(account.pair, record.src_folder)

    # --- what a copy made, and taking it back -------------------------------------------------
    def copies_present(self, account: Account, made_by: str) -> dict[str, int]:
        """Per target folder, how many of its messages `made_by` copied there (an interrupted
        copy's unconfirmed APPENDs found by content). Reads only."""
        rows = self.identity().rows_made_by(account.pair, made_by)
        if not rows:
            return {}
        try:
            with self.sessions.lease(account.target, account.target_user) as dst:
                current = {f.name: f for f in _folders_or_nothing(dst)}
                return {folder: len(self._copies_in(account, dst, folder, current, group))
                        for folder, group in _by_target_folder(rows).items()}
        finally:
            self.sessions.close()

    def remove_copies(self, account: Account, made_by: str,
                      before: Callable[[Row], bool] | None = None,
                      folders_before: set[str] | None = None,
                      parents_before: set[str] | None = None) -> Removal:
        """Take back every message and folder `made_by` put on the target of `account`,
        including those of an interrupted copy (pending rows are resolved by content first).
        `before` also claims rows recorded without a maker (an older cutover), and
        `folders_before`/`parents_before` name the folders the target had before, when known.
        Raises when a copy is still there afterwards: a rollback never reports success
        while any remains. Idempotent, and a half-done removal is finished by the next call."""
        with target_locks([(account.target, account.target_user)], f"rollback {made_by}",
                          create=False):
            try:
                with self.sessions.lease(account.target, account.target_user) as dst:
                    return self._remove_copies(account, made_by, before, folders_before,
                                               parents_before, dst)
            finally:
                self.sessions.close()

    def _remove_copies(self, account: Account, made_by: str,
                       before: Callable[[Row], bool] | None, folders_before: set[str] | None,
                       parents_before: set[str] | None, dst: MailboxSession) -> Removal:
        identity, pair = self.identity(), account.pair
        removal = Removal()
        current = {f.name: f for f in _folders_or_nothing(dst)}
        rows = identity.rows_made_by(pair, made_by)
        if before is not None:
            rows += [r for r in identity.all_rows(pair) if r.made_by is None and before(r)]
        for folder, group in _by_target_folder(rows).items():
            uids = self._copies_in(account, dst, folder, current, group)
            if not uids:
                continue
            dst.delete(folder, sorted(uids))
            left = uids & {m.uid for m in dst.list_messages(folder)}
            if left:
                raise VerificationFailed(f"{len(left)} copied message(s) are still in {folder} "
                                         f"of {account.target.describe(account.target_user)}")
            removal.messages += len(uids)
        identity.drop(pair, rows)
        created = set(identity.created_folders(pair, made_by))
        if folders_before is not None:
            created |= {n for n, f in current.items() if f.selectable and n not in folders_before}
        parents = {n for n, f in current.items() if not f.selectable
                   and parents_before is not None and n not in parents_before}
        removal.folders = _remove_folders(dst, current, created, parents)
        for name in removal.folders | (created - set(current)):
            identity.forget_target_folder(pair, name)
        return removal

    def _copies_in(self, account: Account, dst: MailboxSession, folder: str,
                   current: dict[str, FolderInfo], rows: list[Row]) -> set[int]:
        """The target UIDs in `folder` that are the copies `rows` recorded: confirmed ones as
        recorded, unconfirmed (pending) or void (the folder's UIDVALIDITY changed) ones found
        by content among the messages no other record accounts for."""
        info = current.get(folder)
        if info is None or not info.selectable:
            return set()
        info = dst.folder(folder)
        present = {m.uid for m in dst.list_messages(folder)}
        confirmed = [r for r in rows if r.state == "done" and r.dst_uidvalidity == info.uidvalidity]
        uids = {r.dst_uid for r in confirmed if r.dst_uid in present}
        unsure = [r for r in rows if not (r.state == "done"
                                          and r.dst_uidvalidity == info.uidvalidity)]
        if not unsure:
            return uids
        target = account.target.describe(account.target_user)
        claimed = self.identity().claimed(target, folder)
        floor = 0 if any(r.state == "done" for r in unsure) else min(
            r.dst_uidnext_before or 0 for r in unsure)
        candidates = [u for u in present if u not in claimed and u not in uids and u >= floor]
        if not candidates:
            return uids
        for src_folder, group in _by_source_folder(unsure).items():
            if EXACT_CONTENT in dst.capabilities:  # the digest alone tells, no source needed
                found = _found(_copy_finder(None, dst, src_folder, folder, FolderInfo(src_folder),
                                            candidates, group), group)
            else:
                with self.sessions.lease(account.source, account.source_user) as src:
                    found = _found(_copy_finder(src, dst, src_folder, folder,
                                                src.folder(src_folder), candidates, group), group)
            uids |= found
            candidates = [u for u in candidates if u not in found]
        return uids

    # --- folder level -----------------------------------------------------------------------
    def _run_task(self, task: _FolderTask) -> None:
        for attempt in range(FOLDER_ATTEMPTS):
            self._stop_if_asked()
            try:
                self._sync_folder(task)
                break
            except Exception as exc:
                if _is_connection_failure(exc) and attempt < FOLDER_ATTEMPTS - 1:
                    continue
                raise
        self.progress.folder_done(task.account.label, task.source.name)

    def _sync_folder(self, task: _FolderTask) -> None:
        with self.sessions.lease(task.account.source, task.account.source_user) as src, \
                self.sessions.lease(task.account.target, task.account.target_user) as dst:
            self._sync_folder_with(task, src, dst)

    def _sync_folder_with(self, task: _FolderTask, src: MailboxSession,
                          dst: MailboxSession) -> None:
        account, name, dst_name = task.account, task.source.name, task.target_name
        identity = self.identity()
        src_info = src.folder(name)
        if self.options.dry_run:
            self._preview_folder(task, src, identity)
            return
        dst_info = dst.folder(dst_name)
        record = identity.folder_records(account.pair).get(name)
        rows = identity.rows(account.pair, name)
        pending = [r for r in rows if r.state == "pending"]
        if record and not pending and _unchanged(record, src_info, dst_info, dst_name):
            _tally(task.result, unchanged_folders=1)
            return
        src_msgs = src.list_messages(name)
        dst_msgs = {m.uid: m for m in dst.list_messages(dst_name)}
        rows = self._rematch(task, src, dst, src_info, dst_info, record, rows, src_msgs, dst_msgs)
        done = {r.src_uid: r for r in rows if r.state == "done"}
        src_by_uid = {m.uid: m for m in src_msgs}
        new = [m for m in src_msgs if m.uid not in done]
        if new:
            unclaimed = self._unclaimed(task, dst_msgs, rows)
            adopted = self._copy(task, src, dst, src_info, dst_info, new, dst_msgs, unclaimed)
            done.update((row.src_uid, row) for row in adopted)
        self._fix_flags(task, dst, done, src_by_uid, dst_msgs)
        if self.options.delete:
            self._expunge(task, dst, [r for r in done.values() if r.src_uid not in src_by_uid])
        after = dst.folder(dst_name)
        identity.save_folder(account.pair, FolderRecord(
            name, dst_name, src_info.uidvalidity, src_info.uidnext, src_info.messages,
            src_info.highestmodseq, after.uidvalidity, after.uidnext, after.messages,
            after.highestmodseq), self.clock().isoformat())

    def _preview_folder(self, task: _FolderTask, src: MailboxSession,
                        identity: IdentityMap) -> None:
        rows = identity.rows(task.account.pair, task.source.name)
        info = src.folder(task.source.name)
        done = {r.src_uid for r in rows if r.state == "done" and
                r.src_uidvalidity == info.uidvalidity}
        new = [m for m in src.list_messages(task.source.name) if m.uid not in done]
        if new:
            task.result.to_copy[task.source.name] = len(new)
            _tally(task.result, to_copy_bytes=sum(m.size for m in new))

    def _rematch(self, task: _FolderTask, src: MailboxSession, dst: MailboxSession,
                 src_info: FolderInfo, dst_info: FolderInfo, record: FolderRecord | None,
                 rows: list[Row], src_msgs: list[MessageRef],
                 dst_msgs: dict[int, MessageRef]) -> list[Row]:
        """Bring the rows up to date with both sides; returns the valid `done` rows."""
        identity, pair = self.identity(), task.account.pair
        name, dst_name = task.source.name, task.target_name
        dropped: list[Row] = []  # removed from the DB (by their current key)
        updated: list[Row] = []  # written back
        done = [r for r in rows if r.state == "done"]
        # Rows whose target UID is void (UIDVALIDITY reset, another folder) or unconfirmed
        # (pending after an interrupted run) are matched by digest against unclaimed mail.
        stale_dst = [r for r in done if r.dst_uidvalidity != dst_info.uidvalidity
                     or r.dst_folder != dst_name]
        stale_ids = {id(r) for r in stale_dst}
        pending = [r for r in rows if r.state == "pending"]
        if stale_dst or pending:
            claimed = {r.dst_uid for r in done if id(r) not in stale_ids}
            floor = 0 if stale_dst else min(r.dst_uidnext_before or 0 for r in pending)
            candidates = [u for u in dst_msgs if u not in claimed and u >= floor]
            unresolved = [*stale_dst, *pending]
            find_copy = _copy_finder(src, dst, name, dst_name, src_info, candidates, unresolved)
            for row in unresolved:
                uid = find_copy(row)
                if uid is None:
                    dropped.append(row)
                    continue
                row.dst_uid, row.dst_uidvalidity, row.dst_folder = (
                    uid, dst_info.uidvalidity, dst_name)
                row.state = "done"
                updated.append(row)
                _tally(task.result, rematched=1)
        dropped_ids = {id(r) for r in dropped}
        live = [r for r in rows if r.state == "done" and id(r) not in dropped_ids]
        # The source got a new UIDVALIDITY: old UIDs are void, contents still match.
        stale_src = [r for r in live if r.src_uidvalidity != src_info.uidvalidity]
        if stale_src:
            fresh = {r.src_uid for r in live if r.src_uidvalidity == src_info.uidvalidity}
            pool = _digest_pool(src, name, [m.uid for m in src_msgs if m.uid not in fresh])
            for row in stale_src:
                identity.drop(pair, [row])  # the key changes
                uid = pool[row.digest].pop(0) if pool.get(row.digest) else None
                if uid is not None:
                    row.src_uid, row.src_uidvalidity = uid, src_info.uidvalidity
                    updated.append(row)
                    _tally(task.result, rematched=1)
                    continue
                row.state = "gone"
                if self.options.delete and row.dst_uid in dst_msgs:
                    dst.delete(dst_name, [row.dst_uid])
                    _tally(task.result, deleted=1)
        # A copy the target lost is copied again.
        for row in live:
            if row.state == "done" and row.dst_uid not in dst_msgs:
                dropped.append(row)
                row.state = "gone"
        identity.drop(pair, dropped)
        identity.put(pair, [r for r in updated if r.state == "done"])
        return [r for r in rows if r.state == "done" and r.dst_uid in dst_msgs
                and r.src_uidvalidity == src_info.uidvalidity]

    def _unclaimed(self, task: _FolderTask, dst_msgs: dict[int, MessageRef],
                   rows: list[Row]) -> list[int]:
        """Target messages no recorded copy into this target accounts for: mail that was there
        before, or copies whose record is in another (or a lost) state DB."""
        mine = {r.dst_uid for r in rows if r.state == "done"}
        unclaimed = [uid for uid in dst_msgs if uid not in mine]
        if unclaimed:
            target = task.account.target.describe(task.account.target_user)
            others = self.identity().claimed(target, task.target_name)
            unclaimed = [uid for uid in unclaimed if uid not in others]
        return unclaimed

    def _copy(self, task: _FolderTask, src: MailboxSession, dst: MailboxSession,
              src_info: FolderInfo, dst_info: FolderInfo, new: list[MessageRef],
              dst_msgs: dict[int, MessageRef], unclaimed: list[int]) -> list[Row]:
        """Append `new` to the target, except messages the target already holds (matched by
        content among `unclaimed`, same INTERNALDATE): those are recorded, not copied again.
        Returns the rows of the messages found so."""
        refs = {m.uid: m for m in new}
        already = _existing_copies(src, dst, task.target_name, new, dst_msgs, unclaimed)
        self.progress.planned(task.account.label, len(new), sum(m.size for m in new))
        uids = [m.uid for m in new]
        # A big message comes as a body read from the source while the target's APPEND sends
        # it (never held whole) when both sides can: see _copy_transaction.
        stream = (src.fetch_streaming(task.source.name, uids)
                  if STREAMED_APPEND in dst.capabilities and hasattr(src, "fetch_streaming")
                  else src.fetch(task.source.name, uids))
        batches = _prefetched(_batches(stream))
        adopted: list[Row] = []
        try:
            while not self._copy_transaction(task, dst, src_info, dst_info, refs, batches,
                                             already, adopted):
                self._stop_if_asked()
        finally:
            batches.close()  # stops the prefetching thread
        return adopted

    def _copy_transaction(self, task: _FolderTask, dst: MailboxSession, src_info: FolderInfo,
                          dst_info: FolderInfo, refs: dict[int, MessageRef],
                          batches: Iterator[list[tuple[int, bytes]]],
                          already: Callable[[bytes, str, MessageRef], int | None] | None,
                          adopted: list[Row]) -> bool:
        """Append the next messages, up to COPY_TRANSACTION_BYTES, in one (MULTI)APPEND that
        the target streams; True once the source has nothing more. Every message's pending
        row is committed before its bytes are sent, and marked done with its UID after."""
        identity, pair, made_by = self.identity(), task.account.pair, self.options.made_by
        rows: list[Row] = []
        sent = [0, False]  # bytes, source exhausted

        def streamed_message(uid: int, body: Any) -> Iterator[NewMessage]:
            """A message sent as the source sends it: its digest is known once it is sent,
            so its pending row is committed then, before the APPEND command is ended (the
            server stores nothing of an unfinished command)."""
            ref = refs[uid]
            self.throttle.take(1, len(body))
            yield NewMessage(body, ref.flags, ref.internaldate)
            row = Row(task.source.name, src_info.uidvalidity, uid, task.target_name,
                      dst_info.uidvalidity, None, body.digest, "pending", dst_info.uidnext,
                      made_by)
            identity.put(pair, [row])
            _crash_point("before-append")
            rows.append(row)
            sent[0] += len(body)
            self.progress.copied(task.account.label, 1, len(body))

        def messages() -> Iterator[NewMessage]:
            for batch in batches:
                streamed = batch[0][1]
                if not isinstance(streamed, bytes):  # one big message, alone in its batch
                    if already is None:
                        yield from streamed_message(batch[0][0], streamed)
                        if sent[0] >= COPY_TRANSACTION_BYTES or \
                                len(rows) >= COPY_TRANSACTION_COUNT or self._stopping.is_set():
                            return
                        continue
                    batch = [(batch[0][0], streamed.read_all())]  # to compare it first
                # UIDs only grow: whatever this APPEND creates is at or above the UIDNEXT
                # seen when the folder task started.
                pending, found = [], []
                for uid, content in batch:
                    digest = content_digest(content)
                    match = already(content, digest, refs[uid]) if already else None
                    (found if match else pending).append(Row(
                        task.source.name, src_info.uidvalidity, uid, task.target_name,
                        dst_info.uidvalidity, match, digest, "done" if match else "pending",
                        dst_info.uidnext, "" if match else made_by))
                if found:
                    identity.put(pair, found)
                    adopted.extend(found)
                    _tally(task.result, rematched=len(found))
                if not pending:
                    continue
                wanted = {r.src_uid for r in pending}
                size = sum(len(content) for uid, content in batch if uid in wanted)
                self.throttle.take(len(pending), size)
                identity.put(pair, pending)
                _crash_point("before-append")
                rows.extend(pending)
                contents = dict(batch)
                for row in pending:
                    ref = refs[row.src_uid]
                    yield NewMessage(contents[row.src_uid], ref.flags, ref.internaldate)
                del contents
                sent[0] += size
                # shown as sent: the transaction may hold many batches
                self.progress.copied(task.account.label, len(pending), size)
                if sent[0] >= COPY_TRANSACTION_BYTES or len(rows) >= COPY_TRANSACTION_COUNT \
                        or self._stopping.is_set():
                    return
            sent[1] = True

        uids = dst.append(task.target_name, messages())
        if not rows:
            return bool(sent[1])
        _crash_point("after-append")
        for row, uid in zip(rows, uids, strict=True):
            row.dst_uid, row.state = uid, "done"
        identity.put(pair, rows)
        _crash_point("after-record")
        _tally(task.result, copied=len(rows), copied_bytes=sent[0])
        return bool(sent[1])

    def _stop_if_asked(self) -> None:
        if self._stopping.is_set():
            raise SyncStopped("the copy was interrupted")

    def _fix_flags(self, task: _FolderTask, dst: MailboxSession, done: dict[int, Row],
                   src_by_uid: dict[int, MessageRef], dst_msgs: dict[int, MessageRef]) -> None:
        wanted: dict[frozenset[str], list[int]] = defaultdict(list)
        same = _flags_agree(dst)
        for src_uid, row in done.items():
            source, target = src_by_uid.get(src_uid), dst_msgs.get(row.dst_uid)
            if source is not None and target is not None and not same(source.flags,
                                                                       target.flags):
                wanted[source.flags].append(row.dst_uid)
        for flags, uids in wanted.items():
            dst.set_flags(task.target_name, uids, flags)
            _tally(task.result, flags_updated=len(uids))

    def _expunge(self, task: _FolderTask, dst: MailboxSession, rows: list[Row]) -> None:
        if rows:
            dst.delete(task.target_name, [r.dst_uid for r in rows])
            self.identity().drop(task.account.pair, rows)
            _tally(task.result, deleted=len(rows))


_tally_lock = threading.Lock()


def _tally(result: AccountResult, **amounts: int) -> None:
    """Add to an account's counters: several workers count for one account at once."""
    with _tally_lock:
        for name, amount in amounts.items():
            setattr(result, name, getattr(result, name) + amount)


def _crash_point(phase: str) -> None:
    """Test hook (cutover.faults): CUTOVER_CRASH_AT="PHASE:N" kills the process (SIGKILL, as
    kill -9) the N-th time PHASE is reached, to prove a re-run is exact with no duplicates."""
    crash_if_asked(phase, counted=True, hard=True)


def _name_notes(dst: MailboxSession, name: str) -> list[str]:
    """What the target says about storing `name` (an IMAP server whose separator is in it)."""
    note = getattr(dst, "name_note", None)
    text = note(name) if note is not None else None
    return [text] if text else []


def _unchanged(record: FolderRecord, src: FolderInfo, dst: FolderInfo, dst_name: str) -> bool:
    return (record.dst_folder == dst_name and src.highestmodseq and dst.highestmodseq
            and (record.src_uidvalidity, record.src_uidnext, record.src_messages,
                 record.src_modseq) == (src.uidvalidity, src.uidnext, src.messages,
                                        src.highestmodseq)
            and (record.dst_uidvalidity, record.dst_uidnext, record.dst_messages,
                 record.dst_modseq) == (dst.uidvalidity, dst.uidnext, dst.messages,
                                        dst.highestmodseq))


def _copy_finder(src: MailboxSession | None, dst: MailboxSession, src_folder: str, dst_folder: str,
                 src_info: FolderInfo, candidates: list[int],
                 rows: list[Row]) -> Callable[[Row], int | None]:
    """How a row finds its copy among unclaimed target messages: by content digest when the
    target keeps bytes (EXACT-CONTENT); else (Graph rebuilds MIME, so the digest never matches
    and the message would be copied twice) by the normalised identity of its source message."""
    # imported here: the email parser costs a no-op re-run (which never re-matches) ~10 ms
    from cutover.mailsync.normalised import EXACT_CONTENT, IdentityPool, message_identity

    if EXACT_CONTENT in dst.capabilities:
        pool = _digest_pool(dst, dst_folder, candidates)
        return lambda row: pool[row.digest].pop(0) if pool.get(row.digest) else None
    targets = IdentityPool((message_identity(content), uid)
                           for uid, content in dst.fetch(dst_folder, sorted(candidates)))
    # rows whose source UID is void too (both sides reset) have no source to ask: re-copied
    wanted = sorted({r.src_uid for r in rows if r.src_uidvalidity == src_info.uidvalidity})
    assert src is not None, "a target that rebuilds messages needs the source to match copies"
    sources = {uid: message_identity(content) for uid, content in src.fetch(src_folder, wanted)}

    def find(row: Row) -> int | None:
        identity = sources.get(row.src_uid) if row.src_uidvalidity == src_info.uidvalidity \
            else None
        return targets.take(identity) if identity is not None else None
    return find


def _found(find: Callable[[Row], int | None], rows: list[Row]) -> set[int]:
    return {uid for uid in map(find, rows) if uid is not None}


def _existing_copies(src: MailboxSession, dst: MailboxSession, dst_folder: str,
                     new: list[MessageRef], dst_msgs: dict[int, MessageRef],
                     unclaimed: list[int]) -> Callable[[bytes, str, MessageRef], int | None] | None:
    """How a source message about to be copied finds a target message that already is its
    copy (same content, same INTERNALDATE to the second), each target message found once; None
    when no target message can be one. Byte for byte when both stores keep bytes (only the
    target messages of a size some new message has are read), else by normalised identity."""
    if not unclaimed:
        return None
    if EXACT_CONTENT in src.capabilities and EXACT_CONTENT in dst.capabilities:
        sizes = {m.size for m in new}
        candidates = [uid for uid in unclaimed if dst_msgs[uid].size in sizes]
        if not candidates:
            return None
        pool: dict[tuple[str, int], list[int]] = defaultdict(list)
        for uid, content in dst.fetch(dst_folder, sorted(candidates)):
            pool[(content_digest(content), _second(dst_msgs[uid]))].append(uid)

        def by_digest(content: bytes, digest: str, ref: MessageRef) -> int | None:
            uids = pool.get((digest, _second(ref)))
            return uids.pop(0) if uids else None
        return by_digest
    from cutover.mailsync.normalised import IdentityPool, message_identity

    by_date: dict[int, list[tuple[Any, int]]] = defaultdict(list)
    for uid, content in dst.fetch(dst_folder, sorted(unclaimed)):
        by_date[_second(dst_msgs[uid])].append((message_identity(content), uid))
    pools = {second: IdentityPool(entries) for second, entries in by_date.items()}

    def by_identity(content: bytes, digest: str, ref: MessageRef) -> int | None:
        found = pools.get(_second(ref))
        return found.take(message_identity(content)) if found else None
    return by_identity


def _second(ref: MessageRef) -> int:
    return int(ref.internaldate.timestamp())


@dataclass
class Removal:
    """What a rollback took back from one target account."""

    messages: int = 0
    folders: set[str] = field(default_factory=set)


def _folders_or_nothing(session: MailboxSession) -> list[FolderInfo]:
    """A target account that does not exist holds no copy (a rollback finds nothing to do)."""
    try:
        return session.folders()
    except NotFound:
        return []


def _by_target_folder(rows: list[Row]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row.dst_folder].append(row)
    return grouped


def _by_source_folder(rows: list[Row]) -> dict[str, list[Row]]:
    grouped: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row.src_folder].append(row)
    return grouped


def _remove_folders(dst: MailboxSession, current: dict[str, FolderInfo], created: set[str],
                    parents: set[str]) -> set[str]:
    """Delete the folders a copy created, once empty (mail someone else put there keeps its
    folder), and the \\Noselect parents it left, deepest first; returns the names deleted.
    A parent that still holds a folder that stays is kept."""
    removed: set[str] = set()
    for name in sorted((created | parents) & set(current), key=lambda n: -n.count(SEPARATOR)):
        if name == INBOX:
            continue
        info = current[name]
        if info.selectable and dst.folder(name).messages:
            continue
        if any(other.startswith(name + SEPARATOR) and other not in removed
               for other in current):
            if info.selectable:  # keep the children, drop the folder's own mail store
                dst.delete_folder(name)
                removed.add(name)
            continue
        dst.delete_folder(name)
        removed.add(name)
    return removed


def _digest_pool(session: MailboxSession, folder: str, uids: list[int]) -> dict[str, list[int]]:
    pool: dict[str, list[int]] = defaultdict(list)
    for uid, content in session.fetch(folder, sorted(uids)):
        pool[content_digest(content)].append(uid)
    return pool


def _batches(stream: Iterator[tuple[int, bytes]]) -> Iterator[list[tuple[int, bytes]]]:
    batch: list[tuple[int, bytes]] = []
    size = 0
    for uid, content in stream:
        if not isinstance(content, bytes):  # streamed: alone, before the source is read on
            if batch:
                yield batch
                batch, size = [], 0
            yield [(uid, content)]
            continue
        if batch and (size + len(content) > COPY_BATCH_BYTES or len(batch) >= COPY_BATCH_COUNT):
            yield batch
            batch, size = [], 0
        batch.append((uid, content))
        size += len(content)
    if batch:
        yield batch


_DONE = object()


def _prefetched(batches: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Read the next batch from the source while the current one is appended to the target."""
    channel: queue.Queue = queue.Queue(maxsize=depth)
    failure: list[BaseException] = []
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in batches:
                while not stop.is_set():
                    try:
                        channel.put(batch, timeout=0.5)
                        break
                    except queue.Full:
                        continue
                if not _streamed_done(batch, stop):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            failure.append(exc)
        finally:
            channel.put(_DONE)

    worker = threading.Thread(target=produce, daemon=True)
    worker.start()
    try:
        while True:
            item = channel.get()
            if item is _DONE:
                break
            yield item
        if failure:
            raise failure[0]
    finally:
        stop.set()
        while worker.is_alive():
            try:
                channel.get(timeout=0.1)
            except queue.Empty:
                pass
        worker.join()


def _streamed_done(batch: Any, stop: threading.Event) -> bool:
    """Wait until the streamed body of `batch` (if any) was read to its end by the consumer:
    until then the source connection is in use. False when the consumer stopped first (the
    body is abandoned: its connection is dropped)."""
    body = batch[0][1] if isinstance(batch, list) and batch else None
    if body is None or isinstance(body, bytes):
        return not stop.is_set()
    while not body.finished.wait(0.2) and not stop.is_set():
        pass
    if stop.is_set():
        body.abandon()  # no-op once it was read to its end
        return False
    return True


def _is_connection_failure(exc: BaseException) -> bool:
    from cutover.errors import AuthenticationFailed, ConnectionFailed

    return isinstance(exc, (ConnectionFailed, OSError)) and not isinstance(
        exc, AuthenticationFailed)


def _flags_agree(dst: MailboxSession):
    """How flags compare for this target: exactly, or (a store that rebuilds messages, such as
    Graph, which cannot set \\Draft outside Drafts) on the flags verify compares, so a re-run
    does not patch the same messages again and again."""
    if "EXACT-CONTENT" in dst.capabilities:
        return lambda source, target: source == target
    from cutover.mailsync.normalised import compared_flags

    return lambda source, target: compared_flags(source) == compared_flags(target)
