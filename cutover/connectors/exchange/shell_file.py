"""The on-premises Exchange organisation as JSON files: the `exchange-shell` twin.

    management:
      onprem:
        kind: exchange-file
        path: exchange/management/      # mailboxes.json, remote-mailboxes.json, store.json
        mailstore: exchange             # folder statistics are read from this mail store

- `mailboxes.json`: Get-Mailbox objects (PrimarySmtpAddress, RecipientTypeDetails,
  ExchangeGuid, LegacyExchangeDN, EmailAddresses, Database, ProhibitSendReceiveQuota...);
- `remote-mailboxes.json`: Get-RemoteMailbox objects, the on-premises side of a mailbox that
  moved to Exchange Online (RemoteRoutingAddress in the tenant's routing domain);
- `store.json`: what the Exchange store holds that a Maildir cannot show: per mailbox, corrupt
  items MRS will count as bad items (`corrupt_items`), and items over 150 MB
  (`large_items: [{folder, size_bytes}]`), which Get-MailboxFolderStatistics counts too.

Get-MailboxFolderStatistics is computed from the mail store (one row per folder, FolderType
from the folder's special use), plus the store's large items. The `exo-file` twin, acting as
MRS, turns a mailbox into a RemoteMailbox when its move completes, and back after a move back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cutover.connectors.base import connector
from cutover.errors import ConfigInvalid, UsageError
from cutover.files import atomic_write
from cutover.parsers import exchange_objects as xo

FOLDER_TYPES = {"\\Sent": "SentItems", "\\Trash": "DeletedItems", "\\Drafts": "Drafts",
                "\\Junk": "JunkEmail", "\\Archive": "Archive"}


def read_json(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a readable JSON file ({exc})") from None


def write_json(path: Path, data: Any) -> None:
    """Deterministic (sorted keys, lists as the caller sorted them), atomic."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def size_text(size: int) -> str:
    """A ByteQuantifiedSize as Exchange prints it: `1.234 MB (1,293,942 bytes)`."""
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.3f} {unit} ({size:,} bytes)"
    return f"{size} B ({size:,} bytes)"


def by_address(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(items, key=lambda item: str(item.get("PrimarySmtpAddress", "")).lower())


@connector("exchange-file", role="exchange-management")
class ExchangeShellFile:
    """Exchange Management Shell answers from JSON files and a mail store."""

    def __init__(self, root: Path, workspace: Any = None, mailstore: str | None = None):
        self.root = root
        self.workspace = workspace
        self.mailstore = mailstore
        self._indexes: dict[str, tuple[tuple[int, int], dict[str, dict[str, Any]]]] = {}

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> ExchangeShellFile:
        if not config.get("path"):
            raise ConfigInvalid("cutover.yaml: management (exchange-file) needs a path")
        return cls(workspace.path(config["path"]), workspace, config.get("mailstore"))

    def describe(self) -> str:
        return f"Exchange organisation files in {self.root}"

    def use_clock(self, clock: Any) -> None:
        return None

    def use_log(self, log: Any) -> None:
        return None  # files: nothing for the operator to run

    def close(self) -> None:
        return None

    # --- files -------------------------------------------------------------------------------
    def _mailbox_records(self) -> list[dict[str, Any]]:
        return read_json(self.root / "mailboxes.json", [])

    def _remote_records(self) -> list[dict[str, Any]]:
        return read_json(self.root / "remote-mailboxes.json", [])

    def store(self, address: str) -> dict[str, Any]:
        return read_json(self.root / "store.json", {}).get(address.lower(), {})

    @staticmethod
    def _matches(record: dict[str, Any], identity: str) -> bool:
        wanted = identity.strip().lower()
        names = {str(record.get(key, "")).lower() for key in
                 ("PrimarySmtpAddress", "Alias", "Identity", "ExchangeGuid", "Name")}
        return wanted in names or wanted in xo.smtp_addresses(
            xo.strings(record.get("EmailAddresses")))

    def _index(self, name: str) -> dict[str, dict[str, Any]]:
        """Every name of every object of `name` (identity, alias, GUID, SMTP addresses), lower
        case, to its object; built again only when the file changed."""
        path = self.root / name
        try:
            found = path.stat()
            stamp = (found.st_mtime_ns, found.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        cached = self._indexes.get(name)
        if cached is None or cached[0] != stamp:
            index: dict[str, dict[str, Any]] = {}
            for record in read_json(path, []):
                names = {str(record.get(key, "")).lower() for key in
                         ("PrimarySmtpAddress", "Alias", "Identity", "ExchangeGuid", "Name")}
                names.update(xo.smtp_addresses(xo.strings(record.get("EmailAddresses"))))
                for known in names - {""}:
                    index.setdefault(known, record)
            cached = self._indexes[name] = (stamp, index)
        return cached[1]

    def _record(self, identity: str) -> dict[str, Any] | None:
        return self._index("mailboxes.json").get(identity.strip().lower())

    # --- ExchangeManagement --------------------------------------------------------------------
    def mailbox(self, identity: str) -> xo.Recipient | None:
        record = self._record(identity)
        return xo.parse_recipient(record) if record else None

    def mailboxes(self) -> list[xo.Recipient]:
        return [xo.parse_recipient(record) for record in self._mailbox_records()]

    def remote_mailbox(self, identity: str) -> xo.Recipient | None:
        record = self._index("remote-mailboxes.json").get(identity.strip().lower())
        return xo.parse_recipient(record) if record else None

    def folder_statistics(self, identity: str, analysis: bool = False
                          ) -> list[xo.FolderStatistics]:
        return [xo.parse_folder_statistics(row) for row in
                self.folder_statistics_rows(identity, analysis)]

    def folder_statistics_rows(self, identity: str, analysis: bool = False
                               ) -> list[dict[str, Any]]:
        """Get-MailboxFolderStatistics as ConvertTo-Json writes it."""
        record = self._record(identity)
        if record is None:
            return []
        address = str(record["PrimarySmtpAddress"]).lower()
        rows: dict[str, dict[str, Any]] = {}
        if self.mailstore and self.workspace is not None:
            store = self.workspace.connector("mailstores", self.mailstore)
            with store.open(address) as session:
                for folder in session.folders():
                    if not folder.selectable:
                        continue
                    messages = session.list_messages(folder.name) if analysis else []
                    rows[_folder_path(folder.name)] = {
                        "Name": folder.name.rsplit("/", 1)[-1],
                        "FolderPath": _folder_path(folder.name),
                        "FolderType": _folder_type(folder.name, folder.special_use),
                        "ContainerClass": "IPF.Note", "ItemsInFolder": folder.messages,
                        "FolderSize": folder.size_bytes,
                        "TopSubjectSize": max((m.size for m in messages), default=0)}
        for large in self.store(address).get("large_items", []):
            path = str(large.get("folder", "/Inbox"))
            row = rows.setdefault(path, {"Name": path.rsplit("/", 1)[-1], "FolderPath": path,
                                         "FolderType": "User", "ContainerClass": "IPF.Note",
                                         "ItemsInFolder": 0, "FolderSize": 0,
                                         "TopSubjectSize": 0})
            size = int(large.get("size_bytes", 0))
            row["ItemsInFolder"] += 1
            row["FolderSize"] += size
            row["TopSubjectSize"] = max(row["TopSubjectSize"], size)
        result = []
        for path in sorted(rows):
            row = dict(rows[path])
            row["FolderSize"] = size_text(row["FolderSize"])
            row["TopSubjectSize"] = size_text(row["TopSubjectSize"]) if analysis else None
            row["Identity"] = f"{address}\\{path.lstrip('/')}"
            result.append(row)
        return result

    # --- what MRS does on premises (called by the exo-file twin only) -------------------------
    def to_remote_mailboxes(self, moved: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
        """These mailboxes moved (address, routing address): they leave mailboxes.json and
        become RemoteMailboxes. Returns the Get-Mailbox objects they were, by address, so a
        move back restores each exactly."""
        records = self._mailbox_records()
        remotes = self._remote_records()
        before: dict[str, dict[str, Any]] = {}
        for address, routing_address in moved:
            record = next((r for r in records if self._matches(r, address)), None)
            if record is None:
                raise UsageError(f"{address}: no on-premises mailbox to convert")
            remote = {key: record[key] for key in ("Alias", "DisplayName", "EmailAddresses",
                                                   "ExchangeGuid", "Identity", "Name",
                                                   "PrimarySmtpAddress") if key in record}
            remote.update({"RecipientTypeDetails": "RemoteUserMailbox",
                           "RemoteRecipientType": "Migrated",
                           "RemoteRoutingAddress": f"SMTP:{routing_address}"})
            remotes = [r for r in remotes if not self._matches(r, address)] + [remote]
            records = [r for r in records if r is not record]
            before[address] = record
        write_json(self.root / "remote-mailboxes.json", by_address(remotes))
        write_json(self.root / "mailboxes.json", records)
        return before

    def to_mailbox(self, record: dict[str, Any]) -> None:
        """A move back completed: the RemoteMailbox becomes the mailbox it was."""
        address = str(record["PrimarySmtpAddress"])
        write_json(self.root / "mailboxes.json",
                   by_address([r for r in self._mailbox_records()
                               if not self._matches(r, address)] + [record]))
        write_json(self.root / "remote-mailboxes.json",
                   [r for r in self._remote_records() if not self._matches(r, address)])


def _folder_path(name: str) -> str:
    return "/Inbox" if name.upper() == "INBOX" else "/" + name.replace("INBOX/", "Inbox/")


def _folder_type(name: str, special_use: str | None) -> str:
    if name.upper() == "INBOX":
        return "Inbox"
    return FOLDER_TYPES.get(special_use or "", "User")
