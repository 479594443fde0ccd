"""Write a workspace holding the sample organisation's inventory as Exchange exports it, and run
cutover on it in process."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
import yaml

from cutover.cli import main
from cutover.sample.mail import messages_for
from cutover.sample.org import recipients

MAILBOX_COLUMNS = ["Name", "DisplayName", "Alias", "PrimarySmtpAddress", "EmailAddresses",
                   "RecipientTypeDetails", "ForwardingAddress", "ForwardingSmtpAddress",
                   "DeliverToMailboxAndForward", "ExchangeGuid"]
STATISTICS_COLUMNS = ["DisplayName", "MailboxGuid", "TotalItemSize", "ItemCount",
                      "LastLogonTime"]

#: What the sample should classify as, by local part prefix or role.
EXPECTED_BY_ROLE = {"person": ("people", "cloud"), "functional": ("verification", "linux"),
                    "shared": ("shared", "cloud"), "resource": ("resource", "cloud"),
                    "service": ("service", "keep"), "unknown": ("unknown", "keep"),
                    "discovery": ("service", "keep")}


def export_csv(columns: list[str], rows: list[list[str]], type_line: str | None) -> str:
    buffer = io.StringIO()
    if type_line:
        buffer.write(f"#TYPE {type_line}\r\n")
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return buffer.getvalue()


def mailbox_rows() -> list[list[str]]:
    rows = []
    for r in recipients():
        proxies = ";".join([f"SMTP:{r.address}"] + [f"smtp:{a}" for a in r.aliases])
        forward = "smtp:archive@verify.example.org" if r.local == "bulletin" else ""
        rows.append([r.local, r.display_name, r.local.split("{")[0], r.address, proxies,
                     r.recipient_type, "", forward, "True" if forward else "False", r.guid])
    return rows


def statistics_rows() -> list[list[str]]:
    rows = []
    for r in recipients():
        messages = messages_for(r)
        size = sum(len(m.content) for m in messages)
        rows.append([r.display_name, r.guid, f"{size / 1024:.2f} KB ({size:,} bytes)",
                     str(len(messages)), "11/20/2026 09:12:44"])
    return rows


PROCMAILRC = """MAILDIR=$HOME/Maildir
:0
* ^Subject:.*DATA_REQUEST
| /usr/local/bin/autodrm
:0 c
! archive@verify.example.org
"""


def write_sample_workspace(root: Path, utf16: bool = True, extra_config: dict | None = None
                           ) -> Path:
    """Get-Mailbox.csv as PowerShell 5 writes it by default (UTF-16 LE, BOM, #TYPE line),
    Get-MailboxStatistics.csv in UTF-8 with BOM, procmail and postfix files, cutover.yaml."""
    inventory = root / "inventory"
    inventory.mkdir(parents=True, exist_ok=True)
    mailboxes = export_csv(MAILBOX_COLUMNS, mailbox_rows(),
                           "Selected.Microsoft.Exchange.Data.Directory.Management.Mailbox")
    (inventory / "Get-Mailbox.csv").write_bytes(
        mailboxes.encode("utf-16") if utf16 else mailboxes.encode("utf-8-sig"))
    statistics = export_csv(STATISTICS_COLUMNS, statistics_rows(), None)
    (inventory / "Get-MailboxStatistics.csv").write_bytes(statistics.encode("utf-8-sig"))
    rc = root / "procmail" / "waveform-request@example.org" / ".procmailrc"
    rc.parent.mkdir(parents=True)
    rc.write_text(PROCMAILRC)
    (root / "postfix").mkdir()
    (root / "postfix" / "virtual").write_text(
        "# verification accounts\nbulletin@example.org  bulletin@verify.example.org\n")
    config = {"inventory": {
        "sources": {"exchange-csv": {"kind": "getmailbox-csv",
                                     "path": "inventory/Get-Mailbox.csv",
                                     "statistics_path": "inventory/Get-MailboxStatistics.csv"}},
        "routing": {"procmail": "procmail/", "postfix": "postfix/"},
        "classification": {"rules": [
            {"name": "sample-verification-names", "class": "verification",
             "match": {"local": ["radionuclide-*", "sel3-*"]},
             "why": "sample organisation naming"}]},
        "throughput_mb_per_s": 25,
    }}
    config.update(extra_config or {})
    (root / "cutover.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root


def cutover(capsys, root: Path, *args: str) -> tuple[int, str, str]:
    """`cutover --workspace ROOT ARGS` in this process: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as exited:
        main(["--workspace", str(root), *args])
    out, err = capsys.readouterr()
    return exited.value.code, out, err
