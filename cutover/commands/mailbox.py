"""`cutover mailbox sync|verify SRC DST`: copy one account exactly and incrementally, compare two.

Example:
    CUTOVER_SOURCE_PASSWORD=... CUTOVER_TARGET_PASSWORD=... \\
    cutover mailbox sync imap://bob@old.example.org:143 imap://bob@127.0.0.1:10143 --jobs 4
"""

from __future__ import annotations

import os
import re
import sqlite3
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from cutover.commands.common import JSON_OPTION, console, err_console, print_json, workspace_of
from cutover.errors import UsageError, VerificationFailed
from cutover.mailsync.engine import Account, AccountResult, MailSync, Progress, SyncOptions
from cutover.mailsync.folders import FolderRules
from cutover.mailsync.identity import IdentityMap
from cutover.mailsync.identity import migrated as identity_migrated
from cutover.mailsync.urls import store_for_url
from cutover.secrets import read_secret_file

if TYPE_CHECKING:  # imported where used: a no-op re-run with --json needs neither
    from rich.progress import Progress as RichBar
    from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="Copy and compare mailboxes (IMAP, Maildir, EWS).")

FOLDERS = typer.Option(None, "--folders", help="Only folders matching this glob (repeatable).")
EXCLUDE = typer.Option(None, "--exclude", help="Skip folders matching this glob (repeatable).")
MAP_FOLDER = typer.Option(None, "--map-folder", help="Rename a folder: OLD=NEW (repeatable).")
SOURCE_PW_FILE = typer.Option(None, "--source-password-file", help="File holding the source "
                              "password (else env CUTOVER_SOURCE_PASSWORD).")
TARGET_PW_FILE = typer.Option(None, "--target-password-file", help="File holding the target "
                              "password (else env CUTOVER_TARGET_PASSWORD).")
NO_TLS_VERIFY = typer.Option(False, "--no-tls-verify", help="Accept self-signed certificates.")


def _secret(side: str, path: Path | None) -> tuple[object, object]:
    """(password getter, token getter) for `side`, read lazily and never echoed."""
    upper = side.upper()
    token = os.environ.get(f"CUTOVER_{upper}_OAUTH2_TOKEN")
    if path is not None:
        # the one credential reader: a file others can read is refused, as in cutover.yaml
        text = read_secret_file(path, label=f"--{side}-password-file")
        return (lambda: text), None
    password = os.environ.get(f"CUTOVER_{upper}_PASSWORD")
    if password is not None:
        return (lambda: password), None
    if token:
        return None, (lambda: token)
    return None, None


def _open(url: str, side: str, password_file: Path | None, base: Path, tls_verify: bool):
    password, token = _secret(side, password_file)
    try:
        return store_for_url(url, password, token, base=base, tls_verify=tls_verify)
    except UsageError as exc:
        if str(exc) == "no password":
            raise UsageError(f"no {side} password: set CUTOVER_{side.upper()}_PASSWORD or "
                             f"--{side}-password-file") from None
        raise


def _identity_map(path: Path, dry_run: bool) -> IdentityMap:
    """The identity map of the state DB at `path`, opened once here and handed to the engine.
    A dry run writes nothing (no state DB yet: an empty map in memory). A state DB that is
    already ours and migrated is opened with plain sqlite3 (a no-op re-run then skips
    importing sqlite-utils, ~60 ms); anything else goes through State.open, which creates,
    checks and migrates it."""
    if dry_run and not path.exists():
        return IdentityMap.empty()
    ready = _migrated_state(path)
    if ready is not None:
        return IdentityMap(ready, path, owned=True)
    from cutover.state import State

    state = State.open(path)
    identity = IdentityMap.of(state, writable=not dry_run)
    identity.owned = True  # the state's connection is the map's own: closed with it
    return identity


#: cutover.state.APPLICATION_ID, not imported from there (that imports sqlite-utils)
STATE_APPLICATION_ID = 0x43555430


def _migrated_state(path: Path) -> sqlite3.Connection | None:
    """A connection to `path` when it is a cutover state DB (WAL) holding every migration of
    the identity map, else None."""
    if not path.is_file():
        return None
    conn = sqlite3.connect(str(path), timeout=10, isolation_level=None)
    try:
        ours = conn.execute("PRAGMA application_id").fetchone()[0] == STATE_APPLICATION_ID
        wal = conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    except sqlite3.DatabaseError:  # not a DB, locked...: State.open says why
        ours = wal = False
    if not (ours and wal and identity_migrated(conn)):
        conn.close()
        return None
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _rate(text: str | None) -> float | None:
    """"10M" -> 10485760 bytes/s; plain numbers are bytes/s."""
    if not text:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?(?:/s)?\s*", text)
    if not match:
        raise UsageError(f"--max-bandwidth wants a rate like 10M (bytes/s), not {text!r}")
    scale = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[match.group(2).lower()]
    return float(match.group(1)) * scale


class BarProgress(Progress):
    """Rich progress bars on standard error, one per account and one overall: messages and
    bytes copied of those planned, the rate and the time left."""

    def __init__(self, bar: RichBar):
        self.bar = bar
        self.overall = bar.add_task("all accounts", total=0, messages=0, planned_messages=0)
        self.tasks: dict[str, int] = {}

    @staticmethod
    def new_bar(console: object) -> RichBar:
        """The bar for a terminal of any width: the account name is cut first (ellipsis),
        then the bar shrinks; counts, bytes and the time left always show."""
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )
        from rich.progress import Progress as RichBar
        from rich.table import Column

        return RichBar(
            TextColumn("{task.description}", markup=False,
                       table_column=Column(no_wrap=True, overflow="ellipsis", max_width=32)),
            BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=10)),
            TextColumn("{task.fields[messages]}/{task.fields[planned_messages]} msgs",
                       markup=False, table_column=Column(no_wrap=True)),
            DownloadColumn(table_column=Column(no_wrap=True)),
            TransferSpeedColumn(table_column=Column(no_wrap=True)),
            TimeRemainingColumn(table_column=Column(no_wrap=True)),
            console=console, transient=True, expand=True)

    def _task(self, account: str) -> int:
        if account not in self.tasks:
            self.tasks[account] = self.bar.add_task(account, total=0, messages=0,
                                                    planned_messages=0)
        return self.tasks[account]

    def planned(self, account: str, messages: int, size: int) -> None:
        for task in (self._task(account), self.overall):
            current = self.bar.tasks[task]
            self.bar.update(task, total=(current.total or 0) + size,
                            planned_messages=current.fields["planned_messages"] + messages)

    def copied(self, account: str, messages: int, size: int) -> None:
        for task in (self._task(account), self.overall):
            current = self.bar.tasks[task]
            self.bar.update(task, advance=size, messages=current.fields["messages"] + messages)


def _summary(results: list[AccountResult], dry_run: bool) -> Table:
    from rich.table import Table
    from rich.text import Text

    # no borders: every header fits an 80-column terminal; a long account name folds
    table = Table(title="mailbox sync" + (" (dry run)" if dry_run else ""), box=None,
                  pad_edge=False, title_justify="left")
    for column in ("account", "folders", "unchanged", "copied", "MB", "flags", "deleted",
                   "renamed", "rematched"):
        if column == "account":
            table.add_column(column, overflow="fold")
        else:
            table.add_column(column, justify="right", no_wrap=True, min_width=len(column))
    for r in results:
        copied = sum(r.to_copy.values()) if dry_run else r.copied
        size = r.to_copy_bytes if dry_run else r.copied_bytes
        table.add_row(Text(r.account), str(r.folders), str(r.unchanged_folders), str(copied),
                      f"{size / 1e6:.1f}", str(r.flags_updated), str(r.deleted),
                      str(len(r.renamed_folders)), str(r.rematched))
    return table


@app.command()
def sync(
    ctx: typer.Context,
    src: str = typer.Argument(..., help="Source: imap://USER@HOST:PORT, imaps://, maildir:, ews://"),
    dst: str = typer.Argument(..., help="Target: imap://USER@HOST:PORT, imaps://, maildir:"),
    folders: list[str] = FOLDERS,
    exclude: list[str] = EXCLUDE,
    map_folder: list[str] = MAP_FOLDER,
    jobs: int = typer.Option(4, "--jobs", "-j", min=1, help="Folders copied in parallel."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what would be copied; change "
                                 "nothing."),
    delete: bool = typer.Option(False, "--delete", help="Expunge on the target what the source "
                                "no longer has."),
    max_bandwidth: str = typer.Option(None, "--max-bandwidth", help="Cap, e.g. 10M (bytes/s)."),
    max_msgs_per_s: float = typer.Option(None, "--max-msgs-per-s", help="Cap on messages/s."),
    state: Path = typer.Option(None, "--state", help="State DB (default: the workspace's "
                               "state/cutover.db)."),
    source_password_file: Path = SOURCE_PW_FILE,
    target_password_file: Path = TARGET_PW_FILE,
    no_tls_verify: bool = NO_TLS_VERIFY,
    json_output: bool = JSON_OPTION,
) -> None:
    """Copy SRC to DST exactly; a re-run copies only what changed.

    Example: cutover mailbox sync imap://bob@old:143 maildir:///srv/mail/bob --delete
    """
    base = Path.cwd()
    source, source_user = _open(src, "source", source_password_file, base, not no_tls_verify)
    target, target_user = _open(dst, "target", target_password_file, base, not no_tls_verify)
    options = SyncOptions(FolderRules.parse(folders, exclude, map_folder), delete=delete,
                          dry_run=dry_run, jobs=jobs, max_msgs_per_s=max_msgs_per_s,
                          max_bytes_per_s=_rate(max_bandwidth))
    account = Account(source, source_user, target, target_user)
    identity = _identity_map(state or workspace_of(ctx).state_path, dry_run)
    try:
        show_bars = not json_output and sys.stderr.isatty()
        if show_bars:
            bar = BarProgress.new_bar(err_console.real)  # rich enters its console: the real one
            with bar:
                results = MailSync(identity, options, BarProgress(bar)).run([account])
        else:
            results = MailSync(identity, options).run([account])
    finally:
        identity.close()
    if json_output:
        print_json({"dry_run": dry_run, "accounts": [r.to_json() for r in results]})
    else:
        console.print(_summary(results, dry_run))
        for note in (note for result in results for note in result.notes):
            console.print(f"note: {note}", markup=False)


@app.command()
def verify(
    ctx: typer.Context,
    src: str = typer.Argument(..., help="Source mailbox URL."),
    dst: str = typer.Argument(..., help="Target mailbox URL."),
    folders: list[str] = FOLDERS,
    exclude: list[str] = EXCLUDE,
    map_folder: list[str] = MAP_FOLDER,
    allow_extra: bool = typer.Option(False, "--allow-extra", help="Extra target messages are "
                                     "fine (a sync without --delete keeps them)."),
    source_password_file: Path = SOURCE_PW_FILE,
    target_password_file: Path = TARGET_PW_FILE,
    no_tls_verify: bool = NO_TLS_VERIFY,
    json_output: bool = JSON_OPTION,
) -> None:
    """Compare SRC and DST: exit 0 when equal, else list differences per folder and exit 1.

    Example: cutover mailbox verify imap://bob@old:143 maildir:///srv/mail/bob --json
    """
    base = Path.cwd()
    source, source_user = _open(src, "source", source_password_file, base, not no_tls_verify)
    target, target_user = _open(dst, "target", target_password_file, base, not no_tls_verify)
    rules = FolderRules.parse(folders, exclude, map_folder)
    from cutover.mailsync.verify import compare  # only this command pays for the comparison

    with source.open(source_user) as left, target.open(target_user) as right:
        result = compare(left, right, rules, delete=not allow_extra)
    if json_output:
        print_json(result.to_json())
    else:
        for diff in result.differences:
            console.print(diff.describe(), markup=False)
        verdict = "equal" if result.equal else f"{len(result.differences)} folder(s) differ"
        console.print(f"{result.folders} folders, {result.messages} messages: {verdict}",
                      markup=False)
        console.print(f"comparison: {result.method} ({result.describe_method()})",
                      markup=False)
    if not result.equal:
        raise VerificationFailed(f"{source.describe(source_user)} and "
                                 f"{target.describe(target_user)} differ")
