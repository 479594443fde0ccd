"""Exchange Online as JSON files, with a simulated Mailbox Replication Service: the `exo` twin.

    management:
      tenant:
        kind: exo-file
        path: tenant/            # the tenant's objects, as the Get- cmdlets return them
        onprem: onprem           # the management entry of the organisation mailboxes move from
        mailstore: cloud         # where a moved mailbox's mail lands (mailstores: cloud)

Files under `path` (each a list of objects in the cmdlet's ConvertTo-Json shape):
`recipients.json` (Get-Recipient: the mail users directory synchronisation created for the
on-premises mailboxes, with ExchangeGuid, EmailAddresses incl. the X500 of the
LegacyExchangeDN and the routing-domain address, SKUAssigned; mailboxes; mail contacts),
`accepted-domains.json`, `outbound-connectors.json`, `inbound-connectors.json`,
`migration-endpoints.json` (`TestResult`/`TestMessage` say what Test-MigrationServerAvailability
answers), `policies.json` (the outbound spam filter policy). The migration service's own
records live in `migration/` (batches with their report entries, move requests).

MRS, simulated over the runner's clock (`use_clock`), deterministically per mailbox: a user of
a started batch is Queued for a few minutes, Syncing (10% to 95%, items and bytes in
proportion; the duration follows the mailbox size at 1 GB an hour plus a per-mailbox spread),
then Synced and kept in sync; after Complete-MigrationBatch (or the batch's CompleteAfter) it is
Completing for about ten minutes, then Completed. A mailbox with more corrupt items (the
on-premises twin's `store.json`) than the batch's BadItemLimit fails part-way with
TooManyBadItemsPermanentException; within the limit they are skipped and counted
(SkippedItemCount), as are items over 150 MB within the LargeItemLimit. On completion the twin
does what MRS does: the mail is copied into the tenant's mail store (minus skipped items), the
mail user becomes a UserMailbox and the on-premises mailbox a RemoteMailbox. New-MoveRequest
-Outbound moves it back the same way. Errors are the service's (a second batch of one name,
completing a batch that is completing) as `CmdletFailed`, like the live connector's.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cutover.connectors.base import connector
from cutover.connectors.exchange.shell_file import by_address, read_json, size_text, write_json
from cutover.connectors.mailstore import NewMessage, content_digest
from cutover.connectors.pwsh import CmdletFailed
from cutover.connectors.tenant_model import AcceptedDomain, MailConnector, TenantRecipient
from cutover.errors import ConfigInvalid
from cutover.parsers import exchange_objects as xo

QUEUED_S = 300  # at most; the spread per mailbox comes from its address
SYNC_BASE_S = 900
SYNC_SPREAD_S = 1800
BYTES_PER_S = (1 << 30) / 3600  # 1 GB an hour per mailbox
COMPLETING_S = 600
LARGE_ITEM_BYTES = 150 * (1 << 20)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_time(text: str | None) -> datetime | None:
    return xo.moment(text) if text else None


def _spread(address: str, limit: int) -> int:
    return int(hashlib.sha1(address.encode()).hexdigest()[:6], 16) % max(1, limit)


def _not_found(cmdlet: str, identity: str, what: str) -> CmdletFailed:
    return CmdletFailed(cmdlet, identity, f"The operation couldn't be performed because object "
                                          f"'{identity}' couldn't be found ({what}).",
                        "ManagementObjectNotFoundException", "ObjectNotFound")


@connector("exo-file", role="exchange-management")
class ExchangeOnlineFile:
    """Exchange Online answers from JSON files, MRS simulated over the runner's clock."""

    def __init__(self, root: Path, workspace: Any = None, onprem: str | None = None,
                 mailstore: str | None = None):
        self.root = root
        self.workspace = workspace
        self.onprem_name = onprem
        self.mailstore = mailstore
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._provisioned_cache: tuple[tuple[int, int], frozenset[str]] | None = None
        self._recipients_cache: tuple[tuple[int, int], list[dict[str, Any]]] | None = None
        self._advanced: tuple[datetime, tuple[int, int], tuple[int, int]] | None = None

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> ExchangeOnlineFile:
        if not config.get("path"):
            raise ConfigInvalid("cutover.yaml: management (exo-file) needs a path")
        return cls(workspace.path(config["path"]), workspace, config.get("onprem"),
                   config.get("mailstore"))

    def describe(self) -> str:
        return f"Exchange Online tenant files in {self.root}"

    def use_clock(self, clock: Callable[[], datetime]) -> None:
        self.clock = clock

    def use_log(self, log: Any) -> None:
        return None  # files: nothing for the operator to run

    def close(self) -> None:
        return None

    def now(self) -> datetime:
        moment = self.clock()
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)

    # --- files -------------------------------------------------------------------------------
    def _read(self, name: str, default: Any = None) -> Any:
        return read_json(self.root / name, [] if default is None else default)

    def _write(self, name: str, data: Any) -> None:
        write_json(self.root / name, data)

    def _recipient_records(self) -> list[dict[str, Any]]:
        """recipients.json, read again only when it changed (callers never mutate it)."""
        path = self.root / "recipients.json"
        stamp = _stamp(path)
        if self._recipients_cache is None or self._recipients_cache[0] != stamp:
            self._recipients_cache = (stamp, self._read("recipients.json"))
        return self._recipients_cache[1]

    def _find_recipient(self, identity: str, types: tuple[str, ...] = ()
                        ) -> dict[str, Any] | None:
        wanted = identity.strip().lower()
        for record in self._recipient_records():
            if types and record.get("RecipientTypeDetails") not in types:
                continue
            names = {str(record.get(k, "")).lower() for k in
                     ("PrimarySmtpAddress", "Alias", "Identity", "Name", "ExchangeGuid")}
            if wanted in names or wanted in xo.smtp_addresses(
                    xo.strings(record.get("EmailAddresses"))):
                return record
        return None

    def _replace_recipient(self, address: str, record: dict[str, Any] | None) -> None:
        records = [r for r in self._recipient_records()
                   if str(r.get("PrimarySmtpAddress", "")).lower() != address.lower()]
        self._write("recipients.json", by_address(records + ([record] if record else [])))
        self._provisioned_cache = None

    def _provisioned(self) -> frozenset[str]:
        """Every address of a mail user or mailbox: who a move can land on (read once per
        file version)."""
        stamp = _stamp(self.root / "recipients.json")
        if self._provisioned_cache is None or self._provisioned_cache[0] != stamp:
            addresses = set()
            for record in self._recipient_records():
                kind = str(record.get("RecipientTypeDetails", ""))
                if kind == "MailUser" or kind.endswith("Mailbox"):
                    addresses.add(str(record.get("PrimarySmtpAddress", "")).lower())
                    addresses.update(xo.smtp_addresses(xo.strings(record.get("EmailAddresses"))))
            self._provisioned_cache = (stamp, frozenset(addresses))
        return self._provisioned_cache[1]

    # --- ExchangeManagement ---------------------------------------------------------------------
    def mailbox(self, identity: str) -> xo.Recipient | None:
        self._advance()
        found = self._find_recipient(identity, ("UserMailbox", "SharedMailbox", "RoomMailbox",
                                                "EquipmentMailbox"))
        return xo.parse_recipient(found) if found else None

    def mailboxes(self) -> list[xo.Recipient]:
        self._advance()
        return [xo.parse_recipient(r) for r in self._recipient_records()
                if str(r.get("RecipientTypeDetails", "")).endswith("Mailbox")]

    def folder_statistics(self, identity: str, analysis: bool = False
                          ) -> list[xo.FolderStatistics]:
        mailbox = self.mailbox(identity)
        if mailbox is None or self.mailstore is None or self.workspace is None:
            return []
        store = self.workspace.connector("mailstores", self.mailstore)
        rows = []
        with store.open(mailbox.address) as session:
            for folder in session.folders():
                if folder.selectable:
                    rows.append(xo.FolderStatistics(
                        "/Inbox" if folder.name == "INBOX" else f"/{folder.name}",
                        "Inbox" if folder.name == "INBOX" else "User", folder.messages,
                        folder.size_bytes))
        return rows

    # --- recipients --------------------------------------------------------------------------
    def mail_user(self, identity: str) -> xo.Recipient | None:
        self._advance()
        found = self._find_recipient(identity, ("MailUser",))
        return xo.parse_recipient(found) if found else None

    def mail_contact(self, identity: str) -> xo.Recipient | None:
        found = self._find_recipient(identity, ("MailContact",))
        return xo.parse_recipient(found) if found else None

    def new_mail_contact(self, name: str, external_address: str,
                         extra_addresses: list[str]) -> xo.Recipient:
        for address in [external_address, *extra_addresses]:
            taken = self._find_recipient(address)
            if taken is not None and address in extra_addresses:
                raise CmdletFailed("Set-MailContact", name, f"The proxy address "
                                   f"\"SMTP:{address}\" is already being used by the proxy "
                                   f"addresses or LegacyExchangeDN of "
                                   f"\"{taken.get('Identity')}\". Please choose another proxy "
                                   "address.", "ProxyAddressExistsException", "InvalidArgument")
        if self._find_recipient(name, ("MailContact",)) is not None:
            raise CmdletFailed("New-MailContact", name, f"The name \"{name}\" is being used "
                               "by another recipient object.", "ADObjectAlreadyExistsException",
                               "InvalidArgument")
        record = {"Alias": name, "DisplayName": name, "Identity": name, "Name": name,
                  "ExternalEmailAddress": f"SMTP:{external_address}",
                  "EmailAddresses": [f"SMTP:{external_address}"] + [
                      f"smtp:{a}" for a in extra_addresses],
                  "PrimarySmtpAddress": external_address,
                  "RecipientType": "MailContact", "RecipientTypeDetails": "MailContact"}
        self._replace_recipient(external_address, record)
        return xo.parse_recipient(record)

    def remove_mail_contact(self, identity: str) -> None:
        record = self._find_recipient(identity, ("MailContact",))
        if record is None:
            raise _not_found("Remove-MailContact", identity, "mail contact")
        self._replace_recipient(str(record["PrimarySmtpAddress"]), None)

    # --- migration: batches ------------------------------------------------------------------
    def _batches(self) -> dict[str, dict[str, Any]]:
        return self._read("migration/batches.json", {})

    def _save_batches(self, batches: dict[str, dict[str, Any]]) -> None:
        self._write("migration/batches.json", batches)

    def _endpoint(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self._read("migration-endpoints.json")
                     if str(e.get("Identity", "")).lower() == name.lower()), None)

    def test_migration_endpoint(self, endpoint: str) -> xo.EndpointTest:
        found = self._endpoint(endpoint)
        if found is None:
            raise _not_found("Test-MigrationServerAvailability", endpoint, "migration endpoint")
        return xo.parse_endpoint_test({"Result": found.get("TestResult", "Success"),
                                       "Message": found.get("TestMessage", "")})

    def migration_batch(self, name: str) -> xo.MigrationBatch | None:
        self._advance()
        batch = self._batches().get(name)
        return None if batch is None else xo.parse_migration_batch(self._batch_view(batch))

    def new_migration_batch(self, name: str, users: list[str], *, source_endpoint: str,
                            target_delivery_domain: str, bad_item_limit: int | None,
                            large_item_limit: int | None, complete_after: datetime | None,
                            auto_start: bool) -> xo.MigrationBatch:
        batches = self._batches()
        if name in batches:
            raise CmdletFailed("New-MigrationBatch", name, f"A migration batch with the name "
                               f"'{name}' already exists.", "MigrationBatchNameAlreadyUsed",
                               "InvalidArgument")
        if self._endpoint(source_endpoint) is None:
            raise _not_found("New-MigrationBatch", source_endpoint, "migration endpoint")
        if len(name) > 64:
            raise CmdletFailed("New-MigrationBatch", name, "The name is longer than 64 "
                               "characters.", "ParameterBindingException", "InvalidArgument")
        now = self.now()
        batch = {"Identity": name, "MigrationType": "ExchangeRemoteMove",
                 "SourceEndpoint": source_endpoint,
                 "TargetDeliveryDomain": target_delivery_domain,
                 "BadItemLimit": "Unlimited" if bad_item_limit is None else bad_item_limit,
                 "LargeItemLimit": "Unlimited" if large_item_limit is None else
                 large_item_limit,
                 "CompleteAfter": iso(complete_after) if complete_after else None,
                 "CreationDateTime": iso(now), "StartTime": None, "StopTime": None,
                 "CompleteRequestTime": None, "Users": [],
                 "Report": {"Entries": [self._entry(now, f"Migration batch {name} created "
                                                         f"with {len(users)} user(s).")]}}
        batch["Users"] = [self._new_user(address) for address in users]
        if auto_start:
            self._start(batch, now)
        batches[name] = batch
        self._save_batches(batches)
        return xo.parse_migration_batch(self._batch_view(batch))

    def add_migration_users(self, name: str, users: list[str]) -> None:
        batches = self._batches()
        batch = self._require_batch(batches, name, "Set-MigrationBatch")
        known = {u["EmailAddress"] for u in batch["Users"]}
        added = [self._new_user(a) for a in users if a.lower() not in known]
        for user in added:
            if batch["StartTime"] and not batch["StopTime"]:
                user["StartTime"] = iso(self.now())
        batch["Users"] += added
        batch["Report"]["Entries"].append(self._entry(self.now(), f"{len(added)} user(s) "
                                                                  "added."))
        self._save_batches(batches)

    def set_migration_batch_limits(self, name: str, bad_item_limit: int | None,
                                   large_item_limit: int | None) -> None:
        batches = self._batches()
        batch = self._require_batch(batches, name, "Set-MigrationBatch")
        batch["BadItemLimit"] = "Unlimited" if bad_item_limit is None else bad_item_limit
        batch["LargeItemLimit"] = "Unlimited" if large_item_limit is None else large_item_limit
        self._save_batches(batches)

    def start_migration_batch(self, name: str) -> None:
        self._advance()
        batches = self._batches()
        batch = self._require_batch(batches, name, "Start-MigrationBatch")
        self._start(batch, self.now())
        self._save_batches(batches)

    def stop_migration_batch(self, name: str) -> None:
        self._advance()
        batches = self._batches()
        batch = self._require_batch(batches, name, "Stop-MigrationBatch")
        status = self._batch_view(batch)["Status"]
        if status in ("Completing", "Completed", "CompletedWithErrors"):
            raise CmdletFailed("Stop-MigrationBatch", name, f"The migration batch can't be "
                               f"stopped because its status is '{status}'.",
                               "MigrationBatchCannotBeStoppedException", "InvalidOperation")
        if not batch["StopTime"]:
            batch["StopTime"] = iso(self.now())
            batch["Report"]["Entries"].append(self._entry(self.now(), "Batch stopped."))
        self._save_batches(batches)

    def complete_migration_batch(self, name: str) -> None:
        self._advance()
        batches = self._batches()
        batch = self._require_batch(batches, name, "Complete-MigrationBatch")
        status = self._batch_view(batch)["Status"]
        if batch["CompleteRequestTime"] or status in ("Completing", "Completed",
                                                      "CompletedWithErrors"):
            raise CmdletFailed("Complete-MigrationBatch", name, f"The migration batch can't be "
                               f"completed because its status is '{status}'.",
                               "MigrationBatchCannotBeCompletedException", "InvalidOperation")
        if status in ("Created", "Stopped"):
            raise CmdletFailed("Complete-MigrationBatch", name, "The migration batch can't be "
                               f"completed because its status is '{status}'; start it first.",
                               "MigrationBatchCannotBeCompletedException", "InvalidOperation")
        batch["CompleteRequestTime"] = iso(self.now())
        batch["Report"]["Entries"].append(self._entry(self.now(), "Completion requested."))
        self._save_batches(batches)

    def remove_migration_batch(self, name: str) -> None:
        self._advance()
        batches = self._batches()
        batch = self._require_batch(batches, name, "Remove-MigrationBatch")
        status = self._batch_view(batch)["Status"]
        if status in ("Syncing", "Completing", "Starting"):
            raise CmdletFailed("Remove-MigrationBatch", name, f"The migration batch can't be "
                               f"removed while its status is '{status}'; stop it first.",
                               "MigrationBatchCannotBeRemovedException", "InvalidOperation")
        del batches[name]
        self._save_batches(batches)

    def migration_users(self, batch: str) -> list[xo.MigrationUserStatistics]:
        self._advance()
        record = self._batches().get(batch)
        if record is None:
            return []
        now = self.now()
        return [xo.parse_migration_user(self._user_view(record, user, now))
                for user in record["Users"]]

    def _require_batch(self, batches: dict[str, Any], name: str, cmdlet: str
                       ) -> dict[str, Any]:
        if name not in batches:
            raise CmdletFailed(cmdlet, name, f"The migration batch \"{name}\" can't be found.",
                               "ManagementObjectNotFoundException", "ObjectNotFound")
        return batches[name]

    def _entry(self, moment: datetime, message: str) -> dict[str, str]:
        return {"CreationTime": iso(moment), "Message": message}

    def _new_user(self, address: str) -> dict[str, Any]:
        address = address.strip().lower()
        onprem = self._onprem()
        rows = onprem.folder_statistics_rows(address) if onprem is not None else []
        store = onprem.store(address) if onprem is not None else {}
        large = [item for item in store.get("large_items", [])
                 if int(item.get("size_bytes", 0)) > LARGE_ITEM_BYTES]
        return {"EmailAddress": address, "StartTime": None,
                "TotalItems": sum(int(r["ItemsInFolder"]) for r in rows),
                "TotalBytes": sum(xo.size_bytes(r["FolderSize"]) for r in rows),
                "BadItems": int(store.get("corrupt_items", 0)), "LargeItems": len(large),
                "Materialised": False}

    def _start(self, batch: dict[str, Any], now: datetime) -> None:
        """Start a created batch, resume a stopped one, or retry failed users."""
        stop = parse_time(batch["StopTime"])
        for user in batch["Users"]:
            start = parse_time(user["StartTime"])
            if start is None:
                user["StartTime"] = iso(now)
            elif stop is not None:
                user["StartTime"] = iso(start + (now - stop))  # progress is kept
            elif self._user_view(batch, user, now)["Status"] == "Failed":
                user["StartTime"] = iso(now)
        was = "resumed" if stop else ("started" if not batch["StartTime"] else "restarted")
        batch["StartTime"] = batch["StartTime"] or iso(now)
        batch["StopTime"] = None
        batch["Report"]["Entries"].append(self._entry(now, f"Batch {was}."))

    # --- migration: the simulated MRS ----------------------------------------------------------
    def _limits(self, batch: dict[str, Any]) -> tuple[int | None, int | None]:
        return xo.limit(batch.get("BadItemLimit")), xo.limit(batch.get("LargeItemLimit"))

    def _user_view(self, batch: dict[str, Any], user: dict[str, Any], now: datetime
                   ) -> dict[str, Any]:
        """Get-MigrationUserStatistics of one user, as ConvertTo-Json writes it."""
        address = user["EmailAddress"]
        status, fraction, error = self._progress(batch, user, now)
        bad_limit, large_limit = self._limits(batch)
        skipped = (user["BadItems"] if bad_limit is None or user["BadItems"] <= bad_limit
                   else 0) + (user["LargeItems"] if large_limit is None or
                              user["LargeItems"] <= large_limit else 0)
        percent = {"Queued": 0, "Synced": 95, "Completing": 98, "Completed": 100}.get(
            status, 10 + int(85 * fraction))
        transferred = int(user["TotalBytes"] * fraction)
        return {"Identity": address, "MailboxEmailAddress": address,
                "BatchId": batch["Identity"], "RecipientType": "Mailbox", "Status": status,
                "StatusSummary": {"Syncing": "Active", "Queued": "Active",
                                  "Completing": "Active"}.get(status, status),
                "PercentageComplete": percent,
                "TotalItemsInSourceMailboxCount": user["TotalItems"],
                "SyncedItemCount": int((user["TotalItems"] - skipped) * fraction),
                "SkippedItemCount": skipped if fraction >= 1 else 0,
                "EstimatedTotalTransferSize": size_text(user["TotalBytes"]),
                "BytesTransferred": size_text(transferred),
                "Error": error, "LastSuccessfulSyncTime": None if fraction < 1 else iso(now)}

    def _progress(self, batch: dict[str, Any], user: dict[str, Any], now: datetime
                  ) -> tuple[str, float, str]:
        """(Status, fraction of the initial sync done, error)."""
        if user.get("Materialised"):
            return "Completed", 1.0, ""
        start = parse_time(user["StartTime"])
        if start is None:
            return "Queued", 0.0, ""
        stop = parse_time(batch["StopTime"])
        moment = min(now, stop) if stop else now
        address = user["EmailAddress"]
        queued = _spread(address, QUEUED_S)
        duration = SYNC_BASE_S + _spread(address[::-1], SYNC_SPREAD_S) + \
            user["TotalBytes"] / BYTES_PER_S
        elapsed = (moment - start).total_seconds() - queued
        if address not in self._provisioned() and elapsed >= 0:
            return "Failed", 0.0, (f"MigrationRecipientNotFoundException: A recipient wasn't "
                                   f"found for \"{address}\" on the target. Create a mail "
                                   "user for it (directory synchronisation).")
        bad_limit, large_limit = self._limits(batch)
        fail_at = 0.6 * duration
        if bad_limit is not None and user["BadItems"] > bad_limit and elapsed >= fail_at:
            return "Failed", 0.6, (f"TooManyBadItemsPermanentException: {user['BadItems']} bad "
                                   f"items were found, more than the BadItemLimit of "
                                   f"{bad_limit}. Raise the limit (Set-MigrationBatch "
                                   "-BadItemLimit) and restart the batch.")
        if large_limit is not None and user["LargeItems"] > large_limit and \
                elapsed >= fail_at:
            return "Failed", 0.6, (f"TooManyLargeItemsPermanentException: "
                                   f"{user['LargeItems']} large items were found, more than "
                                   f"the LargeItemLimit of {large_limit}.")
        if stop is not None:
            return "Stopped", max(0.0, min(1.0, elapsed / duration)), ""
        if elapsed < 0:
            return "Queued", 0.0, ""
        if elapsed < duration:
            return "Syncing", elapsed / duration, ""
        synced_at = start + timedelta(seconds=queued + duration)
        trigger = parse_time(batch["CompleteRequestTime"]) or parse_time(batch["CompleteAfter"])
        if trigger is None or trigger > now:
            return "Synced", 1.0, ""
        completing_from = max(trigger, synced_at)
        if (now - completing_from).total_seconds() < COMPLETING_S:
            return "Completing", 1.0, ""
        return "Completed", 1.0, ""

    def _batch_view(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Get-MigrationBatch -IncludeReport, as ConvertTo-Json writes it."""
        now = self.now()
        statuses = [self._progress(batch, user, now)[0] for user in batch["Users"]]
        synced = sum(1 for s in statuses if s in xo.SYNCED_STATUSES)
        completed = sum(1 for s in statuses if s in xo.COMPLETED_STATUSES)
        failed = sum(1 for s in statuses if s in xo.FAILED_STATUSES)
        if not batch["StartTime"]:
            status = "Created"
        elif batch["StopTime"]:
            status = "Stopped"
        elif statuses and completed == len(statuses):
            status = "Completed"
        elif "Completing" in statuses:
            status = "Completing"
        elif statuses and completed and completed + failed == len(statuses):
            status = "CompletedWithErrors"
        elif statuses and failed == len(statuses):
            status = "Failed"
        elif statuses and synced + failed == len(statuses):
            status = "SyncedWithErrors" if failed else "Synced"
        else:
            status = "Syncing"
        return {"Identity": batch["Identity"], "Status": status,
                "MigrationType": batch["MigrationType"], "TotalCount": len(statuses),
                "ActiveCount": sum(1 for s in statuses if s in ("Syncing", "Queued",
                                                                 "Completing")),
                "SyncedCount": synced, "FinalizedCount": completed, "FailedCount": failed,
                "SourceEndpoint": batch["SourceEndpoint"],
                "TargetDeliveryDomain": batch["TargetDeliveryDomain"],
                "BadItemLimit": batch["BadItemLimit"],
                "LargeItemLimit": batch["LargeItemLimit"],
                "CompleteAfterUTC": batch["CompleteAfter"],
                "CreationDateTimeUTC": batch["CreationDateTime"], "Report": batch["Report"]}

    def _advance(self) -> None:
        """Do what the service has done by now: materialise completed moves (once)."""
        if not os.access(self.root, os.W_OK):
            return  # a read-only workspace (plan show): report, change nothing
        now = self.now()
        seen = (now, _stamp(self.root / "migration" / "batches.json"),
                _stamp(self.root / "migration" / "move-requests.json"))
        if seen == self._advanced:
            return  # nothing moved since the last look: no time passed, no job changed
        batches = self._batches()
        due = [(batch, user) for batch in batches.values() for user in batch["Users"]
               if not user.get("Materialised") and
               self._progress(batch, user, now)[0] == "Completed"]
        if due:
            self._onboard(due)
            self._save_batches(batches)
        requests = self._read("migration/move-requests.json")
        for request in requests:
            if not request.get("Materialised") and self._move_view(request, now)[
                    "Status"] == "Completed":
                self._offboard(request)
                self._write("migration/move-requests.json", requests)
        self._advanced = (now, _stamp(self.root / "migration" / "batches.json"),
                          _stamp(self.root / "migration" / "move-requests.json"))

    def _onboard(self, due: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        """Completed moves: mail copied, mail users become mailboxes, the on-premises mailboxes
        RemoteMailboxes. Each file is rewritten once for all the mailboxes that completed."""
        onprem = self._onprem()
        records = {str(r.get("PrimarySmtpAddress", "")).lower(): r
                   for r in self._recipient_records()}
        conversions = []
        for batch, user in due:
            address = user["EmailAddress"]
            bad_limit, _ = self._limits(batch)
            skip = user["BadItems"] if bad_limit is None or user["BadItems"] <= bad_limit else 0
            self._copy_mail(self._onprem_store(), self._tenant_store(), address, skip)
            source = onprem.mailbox(address) if onprem is not None else None
            mail_user = records.get(address)
            if mail_user is not None and mail_user.get("RecipientTypeDetails") == "MailUser":
                user["MailUserBefore"] = mail_user
                mailbox = {key: value for key, value in mail_user.items()
                           if key != "ExternalEmailAddress"}
                mailbox.update({"RecipientType": "UserMailbox",
                                "RecipientTypeDetails": source.recipient_type if source else
                                "UserMailbox", "Database": "EURPR01DG042-db117"})
                records[address] = mailbox
            if source is not None:
                local = address.split("@", 1)[0]
                conversions.append((address, f"{local}@{batch['TargetDeliveryDomain']}"))
            user["Materialised"] = True
            batch["Report"]["Entries"].append(self._entry(self.now(), f"{address}: "
                                                                      "completed."))
        self._write("recipients.json", by_address(list(records.values())))
        self._provisioned_cache = None
        if onprem is not None and conversions:
            before = onprem.to_remote_mailboxes(conversions)
            for _, user in due:
                if user["EmailAddress"] in before:
                    user["MailboxBefore"] = before[user["EmailAddress"]]

    def _copy_mail(self, source: Any, target: Any, address: str, skip: int = 0) -> None:
        """Every folder's messages not yet in the target (by content), the first `skip`
        messages of the inbox left behind as MRS leaves corrupt items."""
        if source is None or target is None:
            return
        with source.open(address) as reading, target.open(address) as writing:
            for folder in reading.folders():
                if not folder.selectable:
                    continue
                writing.create_folder(folder.name, folder.special_use)
                have = {content_digest(content) for _, content in writing.fetch(
                    folder.name, [m.uid for m in writing.list_messages(folder.name)])}
                messages = reading.list_messages(folder.name)
                if folder.name == "INBOX":
                    messages = messages[skip:]  # MRS counts them; none left in the tenant
                by_uid = {m.uid: m for m in messages}
                new = [NewMessage(content, by_uid[uid].flags, by_uid[uid].internaldate)
                       for uid, content in reading.fetch(folder.name, list(by_uid))
                       if content_digest(content) not in have]
                if new:
                    writing.append(folder.name, new)

    def _onprem(self) -> Any:
        if self.onprem_name is None or self.workspace is None:
            return None
        return self.workspace.connector("management", self.onprem_name)

    def _onprem_store(self) -> Any:
        onprem = self._onprem()
        if onprem is None or not getattr(onprem, "mailstore", None):
            return None
        return self.workspace.connector("mailstores", onprem.mailstore)

    def _tenant_store(self) -> Any:
        if self.mailstore is None or self.workspace is None:
            return None
        return self.workspace.connector("mailstores", self.mailstore)

    # --- the move back (offboarding) ---------------------------------------------------------
    def move_request(self, identity: str) -> xo.MoveRequest | None:
        self._advance()
        now = self.now()
        for request in self._read("migration/move-requests.json"):
            if request["Identity"] == identity.lower():
                return xo.parse_move_request(self._move_view(request, now))
        return None

    def new_outbound_move_request(self, identity: str, *, remote_host: str,
                                  target_database: str, target_delivery_domain: str,
                                  bad_item_limit: int | None) -> None:
        address = identity.lower()
        requests = self._read("migration/move-requests.json")
        if any(r["Identity"] == address for r in requests):
            raise CmdletFailed("New-MoveRequest", address, f"The user '{address}' already has "
                               "a move request.", "ManagementObjectAlreadyExistsException",
                               "InvalidArgument")
        if self.mailbox(address) is None:
            raise _not_found("New-MoveRequest", address, "mailbox in Exchange Online")
        before = next((user for batch in self._batches().values() for user in batch["Users"]
                       if user["EmailAddress"] == address and user.get("Materialised")), {})
        size = before.get("TotalBytes", 0)
        requests.append({"Identity": address, "Direction": "Push",
                         "RemoteHostName": remote_host, "RemoteTargetDatabase": target_database,
                         "TargetDeliveryDomain": target_delivery_domain,
                         "StartTime": iso(self.now()), "TotalBytes": size,
                         "MailUserBefore": before.get("MailUserBefore"),
                         "MailboxBefore": before.get("MailboxBefore"), "Materialised": False})
        self._write("migration/move-requests.json", sorted(requests,
                                                           key=lambda r: r["Identity"]))

    def remove_move_request(self, identity: str) -> None:
        requests = self._read("migration/move-requests.json")
        kept = [r for r in requests if r["Identity"] != identity.lower()]
        if len(kept) == len(requests):
            raise _not_found("Remove-MoveRequest", identity, "move request")
        self._write("migration/move-requests.json", kept)

    def _move_view(self, request: dict[str, Any], now: datetime) -> dict[str, Any]:
        if request.get("Materialised"):
            status, percent = "Completed", 100
        else:
            start = parse_time(request["StartTime"]) or now
            duration = SYNC_BASE_S + request.get("TotalBytes", 0) / BYTES_PER_S
            elapsed = (now - start).total_seconds()
            if elapsed < duration:
                status, percent = "InProgress", 10 + int(85 * max(0.0, elapsed) / duration)
            else:
                status, percent = "Completed", 100
        return {"Identity": request["Identity"], "PrimarySmtpAddress": request["Identity"],
                "Status": status, "PercentComplete": percent,
                "Direction": request["Direction"], "RemoteHostName": request["RemoteHostName"]}

    def _offboard(self, request: dict[str, Any]) -> None:
        address = request["Identity"]
        source, target = self._tenant_store(), self._onprem_store()
        self._copy_mail(source, target, address)
        if source is not None:
            with source.open(address) as session:
                for folder in reversed(session.folders()):
                    if folder.selectable:
                        session.delete(folder.name, [m.uid for m in
                                                     session.list_messages(folder.name)])
        if request.get("MailUserBefore"):
            self._replace_recipient(address, request["MailUserBefore"])
        onprem = self._onprem()
        if onprem is not None and request.get("MailboxBefore"):
            onprem.to_mailbox(request["MailboxBefore"])
        request["Materialised"] = True

    # --- mail flow ------------------------------------------------------------------------------
    def set_accepted_domain(self, name: str, domain_type: str) -> None:
        domains = self._read("accepted-domains.json")
        for domain in domains:
            if str(domain.get("DomainName", "")).lower() == name.lower() or \
                    str(domain.get("Identity", "")).lower() == name.lower():
                domain["DomainType"] = domain_type
                self._write("accepted-domains.json", domains)
                return
        raise _not_found("Set-AcceptedDomain", name, "accepted domain")

    def _connector_file(self, direction: str) -> str:
        if direction not in ("outbound", "inbound"):
            raise ConfigInvalid(f"a connector is outbound or inbound, not {direction!r}")
        return f"{direction}-connectors.json"

    def mail_connector(self, name: str, direction: str) -> xo.ConnectorSettings | None:
        found = next((c for c in self._read(self._connector_file(direction))
                      if c.get("Name") == name), None)
        return xo.parse_connector(found, direction) if found else None

    def new_mail_connector(self, settings: xo.ConnectorSettings) -> None:
        file = self._connector_file(settings.direction)
        connectors = self._read(file)
        if any(c.get("Name") == settings.name for c in connectors):
            raise CmdletFailed(f"New-{settings.direction.title()}Connector", settings.name,
                               f"A connector with the name \"{settings.name}\" already exists.",
                               "ADObjectAlreadyExistsException", "InvalidArgument")
        connectors.append(_connector_record(settings))
        self._write(file, sorted(connectors, key=lambda c: c["Name"]))

    def set_mail_connector(self, settings: xo.ConnectorSettings) -> None:
        file = self._connector_file(settings.direction)
        connectors = [c for c in self._read(file) if c.get("Name") != settings.name]
        self._write(file, sorted(connectors + [_connector_record(settings)],
                                 key=lambda c: c["Name"]))

    def remove_mail_connector(self, name: str, direction: str) -> None:
        file = self._connector_file(direction)
        connectors = self._read(file)
        kept = [c for c in connectors if c.get("Name") != name]
        if len(kept) == len(connectors):
            raise _not_found(f"Remove-{direction.title()}Connector", name, "connector")
        self._write(file, kept)

    def auto_forwarding_mode(self) -> str:
        policies = self._read("policies.json", {}).get("HostedOutboundSpamFilterPolicy", [])
        default = next((p for p in policies if p.get("Identity") == "Default"), {})
        return str(default.get("AutoForwardingMode", "Automatic"))

    # --- TenantRouting -----------------------------------------------------------------------
    def accepted_domains(self) -> list[AcceptedDomain]:
        result = []
        for item in self._read("accepted-domains.json"):
            name, domain_type, default = xo.parse_accepted_domain(item)
            result.append(AcceptedDomain(name, domain_type, default))  # type: ignore[arg-type]
        return result

    def connectors(self) -> list[MailConnector]:
        result = []
        for direction in ("outbound", "inbound"):
            for item in self._read(self._connector_file(direction)):
                settings = xo.parse_connector(item, direction)
                result.append(MailConnector(settings.name, direction,  # type: ignore[arg-type]
                                            settings.enabled, settings.domains, settings.hosts,
                                            settings.connector_type))
        return result

    def recipients(self) -> list[TenantRecipient]:
        self._advance()
        result = []
        for item in self._recipient_records():
            recipient = xo.parse_recipient(item)
            result.append(TenantRecipient(
                recipient.address, recipient.recipient_type,
                recipient.target_address if recipient.recipient_type in (
                    "MailUser", "MailContact") else "",
                recipient.forwarding_address, recipient.smtp))
        return result

    def automatic_forwarding_allowed(self) -> bool:
        return self.auto_forwarding_mode() == "On"


def _stamp(path: Path) -> tuple[int, int]:
    try:
        found = path.stat()
    except FileNotFoundError:
        return (0, 0)
    return (found.st_mtime_ns, found.st_size)


def _connector_record(settings: xo.ConnectorSettings) -> dict[str, Any]:
    record: dict[str, Any] = {"Name": settings.name, "Identity": settings.name,
                              "ConnectorType": settings.connector_type,
                              "Enabled": settings.enabled}
    if settings.direction == "outbound":
        record.update({"RecipientDomains": list(settings.domains),
                       "SmartHosts": list(settings.hosts), "UseMXRecord": False,
                       "TlsSettings": settings.tls or None})
    else:
        record.update({"SenderDomains": list(settings.domains),
                       "SenderIPAddresses": list(settings.hosts),
                       "RequireTls": settings.tls == "RequireTls"})
    return record
