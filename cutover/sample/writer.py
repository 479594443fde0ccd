"""`cutover init [--sample]`: write a workspace, optionally holding the sample organisation on
file-backed twins (Maildirs, zone files, Postfix maps, procmailrc files, Get-Mailbox CSV)."""

from __future__ import annotations

import csv
import io
import json
import shutil
from importlib import resources
from pathlib import Path

from cutover.errors import UsageError
from cutover.sample.exchange_org import write_exchange_management
from cutover.sample.mail import messages_for
from cutover.sample.org import OLD_DOMAIN, VERIFY_DOMAIN, SampleRecipient, recipients
from cutover.sample.procmail import procmailrc_for
from cutover.sample.zones import POSTFIX_MAPS, old_zone, verify_zone

PLAN_NAMES = ("phase1-segregate.yaml", "phase2-cloud.yaml")
#: written into the workspace beside them, not run by the demo: phase 2 for tenants without
#: hybrid (mail copied through Graph)
ALTERNATIVE_PLANS = ("phase2-cloud-graph.yaml",)

SKELETON_CONFIG = """\
# cutover.yaml: which system backs each logical name the plans use.
# Credentials are references only: env/NAME or file/PATH (mode 0600).
name: my-organisation
providers: {}
mailstores: {}
"""


def sample_config() -> str:
    return resources.files("cutover.sample").joinpath("cutover.yaml").read_text()


def write_skeleton(target: Path) -> None:
    target = Path(target)
    _refuse_existing_workspace(target)
    for sub in ("plans", "state", "runbooks"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    (target / "cutover.yaml").write_text(SKELETON_CONFIG)


def _refuse_existing_workspace(target: Path) -> None:
    if (target / "cutover.yaml").exists():
        raise UsageError(f"{target} already holds a workspace (cutover.yaml exists)")
    if target.exists() and not target.is_dir():
        raise UsageError(f"{target} exists and is not a directory")


def write_sample(target: Path) -> None:
    """The whole sample organisation, ready for `cutover run plans/phase1-segregate.yaml`."""
    target = Path(target)
    _refuse_existing_workspace(target)
    fresh = not target.exists() or not any(target.iterdir())
    try:
        target.mkdir(parents=True, exist_ok=True)
        _write_files(target)
    except BaseException as exc:
        if fresh:  # leave no half-built workspace behind; a directory with content is kept
            shutil.rmtree(target, ignore_errors=True)
        if isinstance(exc, OSError):
            raise UsageError(f"cannot write the sample workspace in {target}: "
                             f"{exc.strerror}") from None
        raise


def _write_files(target: Path) -> None:
    org = recipients()
    for sub in ("plans", "state", "inventory", "zones", "postfix", "procmail", "sieve",
                "exchange", "cloud", "mail/exchange", "mail/linux", "mail/cloud", "dovecot",
                "credentials"):
        (target / sub).mkdir(parents=True, exist_ok=True)
    (target / "credentials").chmod(0o700)
    (target / "cutover.yaml").write_text(sample_config())
    for name in PLAN_NAMES + ALTERNATIVE_PLANS:
        text = resources.files("cutover.sample").joinpath("plans", name).read_text()
        (target / "plans" / name).write_text(text)
    (target / "inventory" / "Get-Mailbox.csv").write_bytes(get_mailbox_csv(org))
    (target / "inventory" / "Get-MailboxStatistics.csv").write_bytes(statistics_csv(org))
    (target / "zones" / OLD_DOMAIN).write_text(old_zone())
    (target / "zones" / VERIFY_DOMAIN).write_text(verify_zone())
    for name, text in POSTFIX_MAPS.items():
        (target / "postfix" / name).write_text(text)
    for recipient in org:
        if recipient.role == "functional":
            home = target / "procmail" / recipient.address
            home.mkdir(parents=True, exist_ok=True)
            (home / ".procmailrc").write_text(procmailrc_for(recipient))
    (target / "exchange" / "forwarding.json").write_text("{}\n")
    (target / "cloud" / "forwarding.json").write_text("{}\n")
    (target / "cloud" / "users.json").write_text(json.dumps(cloud_users(org), indent=2) + "\n")
    for address, data in personal_data().items():  # what the Graph path carries besides mail
        (target / "exchange" / "personal").mkdir(exist_ok=True)
        (target / "exchange" / "personal" / f"{address}.json").write_text(
            json.dumps(data, indent=2) + "\n")
    (target / "dovecot" / "users").write_text("")
    write_exchange_management(target, org)
    _write_mailboxes(target, org)


def cloud_users(org: list[SampleRecipient]) -> list[dict[str, object]]:
    """The Microsoft 365 tenant as provisioned by the admins before phase 2 (licences are
    assigned in the admin centre, not by cutover)."""
    return [{"mail": r.address, "userPrincipalName": r.address,
             "displayName": r.display_name,
             "proxyAddresses": [f"SMTP:{r.address}"] + [f"smtp:{a}" for a in r.aliases]}
            for r in org if r.role in ("person", "shared", "resource")]


def personal_data() -> dict[str, dict[str, object]]:
    """On-premises contacts (the personal-file twin of EWS, in Graph's contact shape): a
    person's own address book, which the Graph path (cloud.carry) carries to Exchange Online."""
    return {f"amira.haddad@{OLD_DOMAIN}": {"contacts": [
        {"displayName": "Erik Lund", "givenName": "Erik", "surname": "Lund",
         "companyName": "Nordic Seismic Network", "jobTitle": "Station Manager",
         "emailAddresses": [{"address": "erik.lund@example.net", "name": "Erik Lund"}],
         "businessPhones": ["+47 22 00 12 34"]},
        {"displayName": "Front desk (Vienna)", "businessPhones": ["+43 1 26060 0"]}]}}


def _write_mailboxes(target: Path, org: list[SampleRecipient]) -> None:
    from cutover.connectors.mailstore import NewMessage
    from cutover.workspace import Workspace

    store = Workspace(target).connector("mailstores", "exchange")
    for recipient in org:
        messages = messages_for(recipient)
        with store.open(recipient.address) as session:
            session.create_folder("INBOX")
            for folder in ("Sent Items", "Deleted Items", "Drafts", "Junk E-mail"):
                session.create_folder(folder)
            by_folder: dict[str, list[NewMessage]] = {}
            for message in messages:
                by_folder.setdefault(message.folder, []).append(
                    NewMessage(message.content, message.flags, message.internaldate))
            for folder, items in by_folder.items():
                session.create_folder(folder)
                session.append(folder, items)


def _size_text(size: int) -> str:
    """TotalItemSize as Exchange prints it: `1.234 MB (1,293,942 bytes)`."""
    for unit, factor in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.3f} {unit} ({size:,} bytes)"
    return f"{size} B ({size:,} bytes)"


def _csv(header: list[str], rows: list[list[str]], type_name: str) -> bytes:
    """Export-Csv as Windows PowerShell 5 writes it with -Encoding UTF8: a BOM, a #TYPE line,
    every field quoted, CRLF line ends."""
    buffer = io.StringIO()
    buffer.write(f"#TYPE {type_name}\r\n")
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8-sig")


def get_mailbox_csv(org: list[SampleRecipient]) -> bytes:
    header = ["Name", "DisplayName", "Alias", "PrimarySmtpAddress", "EmailAddresses",
              "RecipientTypeDetails", "ForwardingAddress", "ForwardingSmtpAddress",
              "DeliverToMailboxAndForward", "ExchangeGuid"]
    rows = []
    for r in org:
        addresses = [f"SMTP:{r.address}"] + [f"smtp:{a}" for a in r.aliases] + [
            f"X500:/o=Agency/ou=Exchange Administrative Group/cn=Recipients/cn={r.local}"]
        rows.append([r.local, r.display_name, r.local, r.address, ";".join(addresses),
                     r.recipient_type, "", "", "False", r.guid])
    return _csv(header, rows, "Selected.Microsoft.Exchange.Data.Directory.Management.Mailbox")


def statistics_csv(org: list[SampleRecipient]) -> bytes:
    header = ["DisplayName", "MailboxGuid", "TotalItemSize", "ItemCount", "LastLogonTime"]
    rows = []
    for r in org:
        messages = messages_for(r)
        size = sum(len(m.content) for m in messages)
        last = max((m.internaldate for m in messages), default=None)
        rows.append([r.display_name, r.guid, _size_text(size), str(len(messages)),
                     last.strftime("%m/%d/%Y %I:%M:%S %p") if last else ""])
    return _csv(header, rows, "Selected.Microsoft.Exchange.Management.MapiTasks.MailboxStatistics")
