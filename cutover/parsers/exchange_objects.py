"""Exchange cmdlet output (`ConvertTo-Json`) as plain values. Pure: dicts in, values out.

Both shells return the same shapes for the same cmdlet, give or take how a value serialises:
a ByteQuantifiedSize is `"1.234 MB (1,293,942 bytes)"` (remote and REST sessions hand it over
as its string), a DateTime is ISO 8601 from PowerShell 7 or `/Date(ms)/` from Windows
PowerShell 5, an enum is its name because the session converts with `-EnumsAsStrings` (a
number is accepted too), a multi-valued property is a list (or a single string). Property names
follow the cmdlets (Get-MigrationBatch's `TotalCount`, Get-MigrationUserStatistics'
`PercentageComplete`, ...); a property missing from the answer reads as its empty value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cutover.errors import UsageError

SIZE_BYTES = re.compile(r"\(([\d,.\s\u00a0']+)\s*bytes\)", re.I)
SIZE_UNIT = re.compile(r"^\s*([\d.,]+)\s*(B|KB|MB|GB|TB)\b", re.I)
UNITS = {"b": 1, "kb": 1 << 10, "mb": 1 << 20, "gb": 1 << 30, "tb": 1 << 40}
MS_DATE = re.compile(r"/Date\((-?\d+)\)/")

#: Get-MigrationUser(Statistics) Status values, in the order a mailbox passes through them
USER_STATUSES = ("Queued", "Validating", "Provisioning", "Syncing", "IncrementalSyncing",
                 "Synced", "IncrementalSynced", "Completing", "CompletionSynced", "Completed",
                 "CompletedWithWarnings")
FAILED_STATUSES = frozenset({"Failed", "IncrementalFailed", "CompletionFailed", "Corrupted"})
SYNCED_STATUSES = frozenset({"Synced", "IncrementalSynced", "Completing", "CompletionSynced",
                             "Completed", "CompletedWithWarnings"})
COMPLETED_STATUSES = frozenset({"Completed", "CompletedWithWarnings"})
STOPPED_STATUSES = frozenset({"Stopped", "IncrementalStopped", "Stopping"})


class ExchangeOutputInvalid(UsageError):
    """A cmdlet's JSON does not have the shape its cmdlet returns."""


# --- scalars -----------------------------------------------------------------------------------


def text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):  # a deserialised object: its display form, if it kept one
        for key in ("Name", "DisplayName", "Value", "value", "Id"):
            if key in value:
                return text(value[key])
        return ""
    return str(value)


def size_bytes(value: Any) -> int:
    """`"1.234 MB (1,293,942 bytes)"`, a byte count, or `{"Value": ...}`; "Unlimited" -> 0."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, dict):
        return size_bytes(value.get("Value", value.get("value")))
    raw = str(value)
    found = SIZE_BYTES.search(raw)
    if found:
        return int(re.sub(r"[^\d]", "", found.group(1)) or 0)
    found = SIZE_UNIT.match(raw)
    if found:
        return int(float(found.group(1).replace(",", "")) * UNITS[found.group(2).lower()])
    if raw.strip().lower() == "unlimited":
        return 0
    try:
        return int(float(raw))
    except ValueError:
        raise ExchangeOutputInvalid(f"not a size: {raw!r}") from None


def number(value: Any) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, dict):
        return number(value.get("Value", value.get("value")))
    try:
        return int(float(str(value).replace(",", "")))
    except ValueError:
        if str(value).strip().lower() == "unlimited":
            return -1
        raise ExchangeOutputInvalid(f"not a number: {value!r}") from None


def limit(value: Any) -> int | None:
    """BadItemLimit / LargeItemLimit: a number, or None for "Unlimited" (or unset)."""
    if value is None or value == "" or str(value).strip().lower() == "unlimited":
        return None
    return number(value)


def moment(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, dict):
        return moment(value.get("DateTime") or value.get("value"))
    raw = str(value)
    found = MS_DATE.search(raw)
    if found:
        return datetime.fromtimestamp(int(found.group(1)) / 1000, UTC)
    raw = raw.replace("Z", "+00:00")
    raw = re.sub(r"(\.\d{6})\d+", r"\1", raw)  # .NET writes 7 fractional digits
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def strings(value: Any) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        return tuple(part for part in re.split(r"[;,]\s*|\s+", value) if part) \
            if ";" in value or "," in value else (value,)
    if isinstance(value, list):
        return tuple(text(item) for item in value if text(item))
    return (text(value),)


def smtp_addresses(values: tuple[str, ...]) -> tuple[str, ...]:
    """The SMTP addresses of an EmailAddresses list (`SMTP:` primary, `smtp:` others), lower."""
    return tuple(value[5:].lower() for value in values if value.lower().startswith("smtp:"))


# --- recipients ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipient:
    """A mailbox, mail user, remote mailbox or mail contact (Get-Mailbox, Get-MailUser,
    Get-RemoteMailbox, Get-MailContact, Get-Recipient)."""

    identity: str
    address: str  # PrimarySmtpAddress, lower case
    recipient_type: str  # RecipientTypeDetails
    exchange_guid: str = ""
    email_addresses: tuple[str, ...] = ()  # as written: SMTP:/smtp:/X500:...
    legacy_dn: str = ""
    database: str = ""
    #: RemoteMailbox: RemoteRoutingAddress; MailUser/MailContact: ExternalEmailAddress
    target_address: str = ""
    forwarding_address: str = ""  # ForwardingSmtpAddress (smtp: stripped)
    #: SKUAssigned of an Exchange Online recipient (None: the cmdlet does not say)
    licensed: bool | None = None
    #: ProhibitSendReceiveQuota in bytes (0: unlimited or unknown)
    quota_bytes: int = 0
    display_name: str = ""

    @property
    def smtp(self) -> tuple[str, ...]:
        found = smtp_addresses(self.email_addresses)
        return found if self.address in found else (self.address, *found)

    @property
    def x500(self) -> tuple[str, ...]:
        return tuple(a for a in self.email_addresses if a.lower().startswith("x500:"))


def _strip_smtp(value: str) -> str:
    return value[5:] if value.lower().startswith("smtp:") else value


def parse_recipient(data: dict[str, Any]) -> Recipient:
    address = text(data.get("PrimarySmtpAddress") or data.get("WindowsEmailAddress")).lower()
    if not address:
        raise ExchangeOutputInvalid(f"recipient {text(data.get('Identity'))!r} without a "
                                    "PrimarySmtpAddress")
    target = text(data.get("RemoteRoutingAddress") or data.get("ExternalEmailAddress"))
    licensed = data.get("SKUAssigned")
    return Recipient(
        identity=text(data.get("Identity") or data.get("Alias") or address),
        address=address,
        recipient_type=text(data.get("RecipientTypeDetails") or data.get("RecipientType")),
        exchange_guid=text(data.get("ExchangeGuid")).lower(),
        email_addresses=strings(data.get("EmailAddresses")),
        legacy_dn=text(data.get("LegacyExchangeDN")),
        database=text(data.get("Database")),
        target_address=_strip_smtp(target).lower(),
        forwarding_address=_strip_smtp(text(data.get("ForwardingSmtpAddress"))).lower(),
        licensed=None if licensed in (None, "") else flag(licensed),
        quota_bytes=size_bytes(data.get("ProhibitSendReceiveQuota")),
        display_name=text(data.get("DisplayName")),
    )


@dataclass(frozen=True)
class FolderStatistics:
    """One row of Get-MailboxFolderStatistics."""

    path: str  # FolderPath, "/Inbox", "/Sent Items", ...
    folder_type: str  # FolderType: Inbox, SentItems, User, Calendar, Contacts, ...
    items: int
    size_bytes: int
    #: -IncludeAnalysis: the largest item's size (0 when not asked for)
    top_item_bytes: int = 0
    container_class: str = ""  # IPF.Note, IPF.Appointment, IPF.Contact, IPF.Task ...


def parse_folder_statistics(data: dict[str, Any]) -> FolderStatistics:
    return FolderStatistics(
        path=text(data.get("FolderPath") or data.get("Name")),
        folder_type=text(data.get("FolderType")),
        items=number(data.get("ItemsInFolder")),
        size_bytes=size_bytes(data.get("FolderSize")),
        top_item_bytes=size_bytes(data.get("TopSubjectSize")),
        container_class=text(data.get("ContainerClass")),
    )


# --- migration ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MigrationBatch:
    """Get-MigrationBatch."""

    name: str
    status: str
    total: int = 0
    synced: int = 0
    finalized: int = 0
    failed: int = 0
    migration_type: str = ""
    source_endpoint: str = ""
    target_endpoint: str = ""
    target_delivery_domain: str = ""
    bad_item_limit: int | None = None
    large_item_limit: int | None = None
    complete_after: datetime | None = None
    created: datetime | None = None
    report: tuple[str, ...] = ()  # -IncludeReport: the batch's report entries, as text


def parse_migration_batch(data: dict[str, Any]) -> MigrationBatch:
    name = text(data.get("Identity") or data.get("Name"))
    if not name:
        raise ExchangeOutputInvalid("migration batch without an Identity")
    report = data.get("Report")
    entries: tuple[str, ...] = ()
    if isinstance(report, dict):
        entries = tuple(text(entry.get("Message") if isinstance(entry, dict) else entry)
                        for entry in report.get("Entries") or [])
    return MigrationBatch(
        name=name, status=text(data.get("Status")),
        total=number(data.get("TotalCount")), synced=number(data.get("SyncedCount")),
        finalized=number(data.get("FinalizedCount")), failed=number(data.get("FailedCount")),
        migration_type=text(data.get("MigrationType")),
        source_endpoint=text(data.get("SourceEndpoint")),
        target_endpoint=text(data.get("TargetEndpoint")),
        target_delivery_domain=text(data.get("TargetDeliveryDomain")),
        bad_item_limit=limit(data.get("BadItemLimit")),
        large_item_limit=limit(data.get("LargeItemLimit")),
        complete_after=moment(data.get("CompleteAfterUTC") or data.get("CompleteAfter")),
        created=moment(data.get("CreationDateTimeUTC") or data.get("CreationDateTime")),
        report=entries,
    )


@dataclass(frozen=True)
class MigrationUserStatistics:
    """Get-MigrationUser | Get-MigrationUserStatistics: one mailbox of a batch."""

    address: str  # Identity / MailboxEmailAddress, lower case
    batch: str
    status: str
    percent: int = 0
    items_total: int = 0  # TotalItemsInSourceMailboxCount
    items_synced: int = 0  # SyncedItemCount
    items_skipped: int = 0  # SkippedItemCount
    bytes_total: int = 0  # EstimatedTotalTransferSize
    bytes_transferred: int = 0  # BytesTransferred
    error: str = ""
    last_synced: datetime | None = None

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES

    @property
    def synced(self) -> bool:
        return self.status in SYNCED_STATUSES

    @property
    def completed(self) -> bool:
        return self.status in COMPLETED_STATUSES

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "batch": self.batch, "status": self.status,
                "percent": self.percent, "items_total": self.items_total,
                "items_synced": self.items_synced, "items_skipped": self.items_skipped,
                "bytes_total": self.bytes_total, "bytes_transferred": self.bytes_transferred,
                "error": self.error}


def parse_migration_user(data: dict[str, Any]) -> MigrationUserStatistics:
    address = text(data.get("MailboxEmailAddress") or data.get("Identity")).lower()
    if not address:
        raise ExchangeOutputInvalid("migration user without an Identity")
    error = data.get("Error") or data.get("ErrorSummary") or ""
    return MigrationUserStatistics(
        address=address, batch=text(data.get("BatchId")), status=text(data.get("Status")),
        percent=number(data.get("PercentageComplete")),
        items_total=number(data.get("TotalItemsInSourceMailboxCount")),
        items_synced=number(data.get("SyncedItemCount")),
        items_skipped=number(data.get("SkippedItemCount")),
        bytes_total=size_bytes(data.get("EstimatedTotalTransferSize")),
        bytes_transferred=size_bytes(data.get("BytesTransferred")),
        error=" ".join(text(error).split()),
        last_synced=moment(data.get("LastSuccessfulSyncTime")),
    )


@dataclass(frozen=True)
class EndpointTest:
    """Test-MigrationServerAvailability."""

    ok: bool
    message: str = ""


def parse_endpoint_test(data: dict[str, Any]) -> EndpointTest:
    return EndpointTest(ok=text(data.get("Result")).lower() == "success",
                        message=" ".join(text(data.get("Message")).split()))


@dataclass(frozen=True)
class MoveRequest:
    """Get-MoveRequest / Get-MoveRequestStatistics (the offboarding move back)."""

    address: str
    status: str  # Queued, InProgress, AutoSuspended, Completed, CompletedWithWarning, Failed
    percent: int = 0
    direction: str = ""  # Pull / Push
    remote_host: str = ""
    bad_items: int = 0
    items_transferred: int = 0

    @property
    def completed(self) -> bool:
        return self.status.startswith("Completed")

    @property
    def failed(self) -> bool:
        return self.status.startswith("Failed")


def parse_move_request(data: dict[str, Any]) -> MoveRequest:
    return MoveRequest(
        address=text(data.get("PrimarySmtpAddress") or data.get("Identity")
                     or data.get("Alias")).lower(),
        status=text(data.get("Status")), percent=number(data.get("PercentComplete")),
        direction=text(data.get("Direction")), remote_host=text(data.get("RemoteHostName")),
        bad_items=number(data.get("BadItemsEncountered")),
        items_transferred=number(data.get("ItemsTransferred")))


# --- mail flow ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConnectorSettings:
    """What cutover sets on an Exchange Online connector, as New-/Set-*Connector take it."""

    name: str
    direction: str  # outbound / inbound
    connector_type: str = "OnPremises"
    enabled: bool = True
    #: outbound: RecipientDomains; inbound: SenderDomains
    domains: tuple[str, ...] = ()
    #: outbound: SmartHosts; inbound: SenderIPAddresses
    hosts: tuple[str, ...] = ()
    #: outbound: TlsSettings (EncryptionOnly, CertificateValidation, DomainValidation);
    #: inbound: RequireTls
    tls: str = ""
    comment: str = field(default="", compare=False)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "direction": self.direction,
                "connector_type": self.connector_type, "enabled": self.enabled,
                "domains": list(self.domains), "hosts": list(self.hosts), "tls": self.tls}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ConnectorSettings:
        return cls(data["name"], data["direction"], data.get("connector_type", "OnPremises"),
                   bool(data.get("enabled", True)), tuple(data.get("domains") or ()),
                   tuple(data.get("hosts") or ()), data.get("tls", ""))


def _connector_domain(value: str) -> str:
    """SenderDomains reads back as `smtp:*;1` (address space type and cost): the domain."""
    value = value[5:] if value.lower().startswith("smtp:") else value
    return value.split(";", 1)[0].lower()


def parse_connector(data: dict[str, Any], direction: str) -> ConnectorSettings:
    outbound = direction == "outbound"
    tls = text(data.get("TlsSettings")) if outbound else (
        "RequireTls" if flag(data.get("RequireTls")) else "")
    return ConnectorSettings(
        name=text(data.get("Name") or data.get("Identity")), direction=direction,
        connector_type=text(data.get("ConnectorType")) or "OnPremises",
        enabled=flag(data.get("Enabled", True)),
        domains=tuple(_connector_domain(d) for d in _as_list(
            data.get("RecipientDomains" if outbound else "SenderDomains"))),
        hosts=tuple(h.lower() for h in _as_list(
            data.get("SmartHosts" if outbound else "SenderIPAddresses"))),
        tls=tls,
    )


def _as_list(value: Any) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, list):
        return tuple(text(item) for item in value if text(item))
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


def parse_accepted_domain(data: dict[str, Any]) -> tuple[str, str, bool]:
    """(DomainName lower, DomainType, Default)."""
    name = text(data.get("DomainName") or data.get("Name")).lower()
    if not name:
        raise ExchangeOutputInvalid("accepted domain without a DomainName")
    return name, text(data.get("DomainType")) or "Authoritative", flag(data.get("Default"))
