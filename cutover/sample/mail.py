"""Deterministic mail for the sample organisation's mailboxes (RFC 5322 bytes, CRLF)."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from cutover.sample.org import OLD_DOMAIN, SampleRecipient

EPOCH = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
STATIONS = ["AKS01", "ARCES", "PS19", "IS26", "RN43", "MKAR", "ASAR", "TORD"]


@dataclass(frozen=True)
class SampleMessage:
    folder: str
    content: bytes
    flags: frozenset[str]
    internaldate: datetime


def _message(headers: dict[str, str], body: str) -> bytes:
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return (head + "\r\n" + body.replace("\n", "\r\n")).encode("utf-8")


def _ims_request(rng: random.Random, index: int, recipient: SampleRecipient,
                 when: datetime) -> SampleMessage:
    station = rng.choice(STATIONS)
    sender = f"analyst{rng.randint(1, 9)}@ndc-{station.lower()}.example.net"
    body = (f"BEGIN IMS2.0\nMSG_TYPE REQUEST\nMSG_ID {4000 + index} NDC_{station}\n"
            f"E-MAIL {sender}\nTIME {when:%Y/%m/%d} 00:00:00 TO {when:%Y/%m/%d} 23:59:59\n"
            f"STA_LIST {station}\nCHAN_LIST *\nWAVEFORM IMS2.0:CM6\nSTOP\n")
    return _wrap(recipient, sender, f"DATA_REQUEST {station} {when:%Y-%m-%d}", body, when,
                 "INBOX", frozenset({"\\Seen"}) if index % 3 else frozenset(), automated=False)


def _bulletin(rng: random.Random, index: int, recipient: SampleRecipient,
              when: datetime) -> SampleMessage:
    body = (f"BEGIN IMS2.0\nMSG_TYPE DATA\nMSG_ID {9000 + index} IDC\nDATA_TYPE BULLETIN "
            f"IMS1.0:SHORT\nREB {when:%Y/%m/%d}\nEVENTS {rng.randint(20, 90)}\nSTOP\n")
    return _wrap(recipient, "idc-bulletins@idc.example.net", f"REB {when:%Y/%m/%d} bulletin",
                 body, when, "INBOX", frozenset({"\\Seen"}), automated=True)


def _station_report(rng: random.Random, index: int, recipient: SampleRecipient,
                    when: datetime) -> SampleMessage:
    station = recipient.local.removeprefix("station-").upper() \
        if recipient.local.startswith("station-") else rng.choice(STATIONS)
    state = rng.choice(["NOMINAL", "NOMINAL", "NOMINAL", "DEGRADED"])
    body = (f"BEGIN IMS2.0\nMSG_TYPE DATA\nDATA_TYPE STA_STATUS\nSTATION {station}\n"
            f"STATUS {state}\nAVAILABILITY {rng.uniform(95, 100):.2f}\nSTOP\n")
    folder = "INBOX" if state == "NOMINAL" else "Alerts"
    return _wrap(recipient, f"{station.lower()}@stations.example.net",
                 f"{station} STATION STATUS REPORT {state}", body, when, folder,
                 frozenset({"\\Seen"}), automated=True)


def _personal(rng: random.Random, index: int, recipient: SampleRecipient,
              when: datetime) -> SampleMessage:
    topics = ["Agenda for Thursday", "Travel request", "Draft report – comments",
              "Lunch?", "Budget 2027", "Re: station visit", "Übersetzung der Richtlinie"]
    colleague = f"colleague{rng.randint(1, 40)}@{OLD_DOMAIN}"
    subject = rng.choice(topics)
    sent = index % 4 == 3
    sender, to = (recipient.address, colleague) if sent else (colleague, recipient.address)
    folder = "Sent Items" if sent else ("Archive/2025" if index % 5 == 4 else "INBOX")
    flags = {"\\Seen"} if index % 2 == 0 or sent else set()
    if index % 7 == 1:
        flags.add("\\Flagged")
    if index % 6 == 2:
        flags.add("$Label1")
    body = f"Hello,\n\nplease see my notes on '{subject}'.\n\nRegards\n"
    return _wrap(recipient, sender, subject, body, when, folder, frozenset(flags),
                 automated=False, to=to)


def _wrap(recipient: SampleRecipient, sender: str, subject: str, body: str, when: datetime,
          folder: str, flags: frozenset[str], automated: bool, to: str | None = None
          ) -> SampleMessage:
    headers = {
        "Return-Path": f"<{sender}>",
        "From": sender,
        "To": to or recipient.address,
        "Subject": subject,
        "Date": format_datetime(when),
        "Message-ID": f"<{_stable_id(recipient.local, subject, when)}@{sender.split('@')[1]}>",
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=utf-8",
        "Content-Transfer-Encoding": "8bit",
    }
    if automated:
        headers["Auto-Submitted"] = "auto-generated"
        headers["Precedence"] = "bulk"
    return SampleMessage(folder, _message(headers, body), flags, when)


def _stable_id(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:20]


KINDS = {"requests": [_ims_request], "bulletins": [_bulletin], "ims": [_ims_request, _bulletin],
         "stations": [_station_report]}


def messages_for(recipient: SampleRecipient) -> list[SampleMessage]:
    """The mailbox content of one recipient (empty for discovery and rooms)."""
    seed = int(hashlib.sha256(recipient.address.encode()).hexdigest()[:8], 16)
    rng = random.Random(seed)
    if recipient.role == "functional":
        makers = KINDS[recipient.carries]
        count = 8
    elif recipient.role in ("person", "shared"):
        makers, count = [_personal], 5
    elif recipient.role == "service":
        makers, count = [_station_report], 2
    elif recipient.role == "unknown":
        makers, count = [_personal], 1
    else:
        return []
    result = []
    for index in range(count):
        when = EPOCH + timedelta(days=index * 3 + rng.randint(0, 2), minutes=rng.randint(0, 600))
        result.append(makers[index % len(makers)](rng, index, recipient, when))
    return result
