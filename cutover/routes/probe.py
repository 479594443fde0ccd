"""Live probes: a uniquely tagged canary sent through the real path, found where the routing
model says it ends, then removed.

The canary goes by SMTP to the system that receives the address from outside: the `smtp:`
endpoint cutover.yaml gives that Postfix instance (the lab's Postfix on loopback), else the
domain's MX on port 25. Its arrival is confirmed over the mail store of the side the trace ends
on (IMAP for Dovecot; a Maildir for the twins), in the folder the trace names (a Sieve fileinto,
the spam quarantine) or INBOX, or in a pipeline's drop directory (`routes: {pipelines:
{PROGRAM: DIR}}`). Each hop's latency comes from the Received headers of what arrived. When the
canary does not arrive, the result says where it was last seen: refused during the SMTP
dialogue, or the last status the Postfix log (`maillog:` of the postfix entry) has for its
queue id.

When the entry system has no SMTP endpoint and the end is a file-backed twin (the demo), the
probe goes "through the twins": the canary is stored where the model says it ends and read back.
That proves the model and the stores, not a mail server, and says so.
"""

from __future__ import annotations

import re
import smtplib
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from pathlib import Path
from typing import Any

from cutover.connectors.mailstore import INBOX, NewMessage
from cutover.errors import CutoverError, UsageError
from cutover.routes.facts import MailFacts
from cutover.routes.trace import End, Trace, trace
from cutover.workspace import Workspace

PROBE_HEADER = "X-Cutover-Probe"
DEFAULT_SENDER = "cutover-probe@probe.invalid"
DEFAULT_TIMEOUT_S = 60.0
POLL_S = 0.25
_QUEUED = re.compile(r"queued as ([0-9A-Za-z]+)")


class ProbeFailed(CutoverError):
    """A canary did not arrive where the routing model says mail for the address ends."""

    exit_code = 1


@dataclass(frozen=True)
class HopLatency:
    by: str
    received_from: str
    seconds: float | None

    def to_json(self) -> dict[str, Any]:
        return {"by": self.by, "from": self.received_from, "seconds": self.seconds}


@dataclass
class ProbeResult:
    address: str
    tag: str
    expected: End
    method: str  # smtp | twin
    arrived: bool = False
    found_in: str | None = None  # "store mailbox folder"
    last_seen: str = ""
    latencies: list[HopLatency] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "tag": self.tag, "method": self.method,
                "expected": self.expected.to_json() | {"folder": self.expected.folder},
                "arrived": self.arrived, "found_in": self.found_in,
                "last_seen": self.last_seen, "seconds": round(self.seconds, 3),
                "hops": [h.to_json() for h in self.latencies]}

    def describe(self) -> str:
        if self.arrived:
            return (f"{self.address}: arrived in {self.found_in} after {self.seconds:.1f} s "
                    f"({self.method})")
        return f"{self.address}: did not arrive in {self.expected.describe()}; {self.last_seen}"


# --- the canary ---------------------------------------------------------------------------------

def canary(address: str, tag: str, sender: str, body: str = "") -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = address
    message["Subject"] = f"cutover route probe {tag}"
    message["Date"] = format_datetime(datetime.now().astimezone())
    message["Message-ID"] = make_msgid(idstring=tag, domain="probe.cutover.invalid")
    message[PROBE_HEADER] = tag
    message.set_content(body or f"A route probe sent by cutover ({tag}). It removes itself.\n")
    return bytes(message)


def received_latencies(message: bytes) -> list[HopLatency]:
    """One entry per Received header, oldest hop first, with the time since the previous hop."""
    headers = BytesHeaderParser().parsebytes(message)
    stamps = []
    for value in reversed(headers.get_all("Received", [])):
        text = " ".join(str(value).split())
        by = re.search(r"\bby\s+(\S+)", text)
        source = re.search(r"\bfrom\s+(\S+)", text)
        try:
            when = parsedate_to_datetime(text.rpartition(";")[2].strip())
        except (TypeError, ValueError):
            when = None
        stamps.append((by.group(1) if by else "?", source.group(1) if source else "?", when))
    latencies = []
    previous = None
    for by, source, when in stamps:
        seconds = (when - previous).total_seconds() if when and previous else None
        latencies.append(HopLatency(by, source, seconds))
        previous = when or previous
    return latencies


# --- where the canary should arrive --------------------------------------------------------------

def _end_store(workspace: Workspace, facts: MailFacts, end: End) -> tuple[str, Any] | None:
    """The mail store to look in for an end: a store of its side that lists the mailbox, else
    the first store of that side (IMAP cannot list mailboxes)."""
    candidates = [(name, store) for name, store in sorted(facts.stores.items())
                  if store.side == end.side and not name.startswith(("directory:", "accounts",
                                                                     "provisioned"))]
    listed = [name for name, store in candidates
              if store.addresses is not None and end.mailbox in store.addresses]
    unlisted = [name for name, store in candidates if store.addresses is None]
    for name in listed + unlisted:
        return name, workspace.connector("mailstores", name)
    return None


def _entry_smtp(facts: MailFacts, path: Trace) -> tuple[str, int] | None:
    """Where to hand the canary over: the receiving Postfix's `smtp:` endpoint, else the MX."""
    first = next((hop for hop in path.hops if hop.kind == "mx"), None)
    if first is None:
        return None
    for server in facts.postfix.values():
        if first.host in server.hosts and server.smtp:
            host, _, port = server.smtp.rpartition(":")
            return host or "127.0.0.1", int(port)
    return first.host, 25


def _is_twin(workspace: Workspace, store_name: str) -> bool:
    config = workspace.section("mailstores").get(store_name) or {}
    return config.get("kind") == "maildir"


def _entry_has_endpoint(facts: MailFacts, path: Trace) -> bool:
    first = next((hop for hop in path.hops if hop.kind == "mx"), None)
    return first is not None and any(first.host in s.hosts and s.smtp
                                     for s in facts.postfix.values())


# --- sending -----------------------------------------------------------------------------------

def _send(endpoint: tuple[str, int], sender: str, address: str, message: bytes,
          timeout: float) -> tuple[str | None, str]:
    """(queue id or None, what the server said). A refusal raises ProbeFailed at once."""
    host, port = endpoint
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            smtp.ehlo("probe.cutover.invalid")
            smtp.mail(sender)
            code, reply = smtp.rcpt(address)
            if code >= 400:
                raise ProbeFailed(f"{address}: refused by {host}:{port} at RCPT TO: {code} "
                                  f"{reply.decode(errors='replace')}")
            code, reply = smtp.data(message)
            text = reply.decode(errors="replace")
            if code >= 400:
                raise ProbeFailed(f"{address}: refused by {host}:{port} after DATA: {code} "
                                  f"{text}")
    except (OSError, smtplib.SMTPException) as exc:
        if isinstance(exc, ProbeFailed):
            raise
        raise ProbeFailed(f"{address}: cannot hand the canary to {host}:{port}: {exc}") from None
    match = _QUEUED.search(text)
    return (match.group(1) if match else None), f"{code} {text}"


def _last_log_status(workspace: Workspace, queue_id: str | None) -> str:
    if not queue_id:
        return ""
    for name, config in sorted(workspace.section("postfix").items()):
        log = config.get("maillog") if isinstance(config, dict) else None
        if not log:
            continue
        try:
            lines = workspace.path(log).read_text(errors="replace").splitlines()
        except OSError:
            continue
        mine = [line for line in lines if f"{queue_id}:" in line]
        status = [line for line in mine if "status=" in line]
        if status or mine:
            return f"postfix {name} log for {queue_id}: " + (status or mine)[-1].split(": ", 1)[-1]
    return ""


# --- finding and removing ----------------------------------------------------------------------

def _find(session: Any, folders: list[str], tag: str) -> tuple[str, int, bytes] | None:
    for folder in folders:
        try:
            refs = session.list_messages(folder)
        except CutoverError:
            continue  # the folder does not exist (yet)
        newest = [ref.uid for ref in refs[-20:]]
        for uid, content in session.fetch(folder, newest):
            if tag.encode() in content[:8192]:
                return folder, uid, content
    return None


def _folders_for(end: End) -> list[str]:
    return [end.folder] if end.folder and end.folder != INBOX else [INBOX]


def _wait_for(session: Any, folders: list[str], tag: str, deadline: float,
              gave_up: Any = None) -> tuple[str, int, bytes] | None:
    """Poll until the canary is there, the deadline passes, or `gave_up()` says the mail
    system has given up on it (a bounce in the log)."""
    while True:
        found = _find(session, folders, tag)
        if found is not None or time.monotonic() >= deadline or (gave_up and gave_up()):
            return found
        time.sleep(POLL_S)  # polling a mailbox for the canary, not a timing assumption


def probe(workspace: Workspace, facts: MailFacts, address: str, *,
          timeout: float = DEFAULT_TIMEOUT_S, sender: str = DEFAULT_SENDER,
          body: str = "", expect: End | None = None) -> ProbeResult:
    """Send one canary to `address` and look for it where the model (or `expect`) says it
    ends. The canary is removed wherever it is found."""
    address = address.strip().lower()
    if "@" not in address:
        raise UsageError(f"not a mail address: {address!r}")
    path = trace(facts, address)
    if path.loop:
        raise ProbeFailed(f"{address}: {path.reason}; no canary sent into a loop")
    end = expect or path.ends
    tag = f"{uuid.uuid4().hex[:16]}"
    started = time.monotonic()
    store = _end_store(workspace, facts, end) if end.side in ("linux", "cloud", "onprem") \
        else None
    twin = store is not None and _is_twin(workspace, store[0]) and \
        not _entry_has_endpoint(facts, path)
    result = ProbeResult(address, tag, end, "twin" if twin else "smtp")
    message = canary(address, tag, sender, body)
    if end.side == "pipeline":
        return _probe_pipeline(workspace, facts, path, result, message, timeout, sender)
    if store is None:
        result.last_seen = (f"the model says mail for {address} ends {end.describe()}"
                            + (f" ({path.reason})" if path.reason else "")
                            + ": nothing to look in")
        return result
    store_name, mail_store = store
    mailbox = end.mailbox or address
    folders = _folders_for(end)
    queue_id = None
    delivered = None
    if twin:
        delivered = _twin_deliver(workspace, facts, path, message)
        if delivered is None:
            result.last_seen = (f"through the twins mail for {address} ends "
                                f"{path.ends.describe()}" +
                                (f" ({path.reason})" if path.reason else ""))
            return result
    try:
        opened = mail_store.open(mailbox)
    except CutoverError as exc:
        if delivered is not None:
            _twin_remove(workspace, delivered, tag)
        result.last_seen = f"cannot open {mailbox} in {store_name} to look for it: {exc}"
        return result
    with opened as session:
        if not twin:
            endpoint = _entry_smtp(facts, path)
            if endpoint is None:
                result.last_seen = f"no MX for {address}: nowhere to send the canary"
                return result
            queue_id, said = _send(endpoint, sender, address, message, timeout)
            result.last_seen = f"accepted by {endpoint[0]}:{endpoint[1]}: {said}"
        bounced = (lambda: "status=bounced" in _last_log_status(workspace, queue_id)) \
            if queue_id else None
        # the twins deliver before they return: one look is the answer, no waiting
        deadline = started if twin else started + timeout
        found = _wait_for(session, folders, tag, deadline, bounced)
        result.seconds = time.monotonic() - started
        if found is None:
            if delivered is not None:
                _twin_remove(workspace, delivered, tag)
                result.last_seen = (f"not in {store_name} {mailbox} {'/'.join(folders)}: "
                                    f"through the twins it ends {path.ends.describe()}")
                return result
            seen = _last_log_status(workspace, queue_id)
            waited = time.monotonic() - started
            result.last_seen = (f"not in {store_name} {mailbox} {'/'.join(folders)} after "
                                f"{waited:.0f} s; last seen: {seen or result.last_seen}")
            return result
        folder, uid, content = found
        result.arrived = True
        result.found_in = f"{store_name} {mailbox} {folder}"
        result.latencies = received_latencies(content)
        result.headers = _interesting_headers(content)
        session.delete(folder, [uid])
    return result


def _twin_deliver(workspace: Workspace, facts: MailFacts, path: Trace, message: bytes
                  ) -> tuple[str, str, str] | None:
    """Store the canary where the model says mail ends, as the twins' "delivery": (store,
    mailbox, folder), or None when the path ends in no twin mailbox."""
    if path.ends.side not in ("linux", "cloud", "onprem"):
        return None
    store = _end_store(workspace, facts, path.ends)
    if store is None or not _is_twin(workspace, store[0]):
        return None
    mailbox = path.ends.mailbox or path.address
    folder = path.ends.folder or INBOX
    with store[1].open(mailbox) as session:
        if folder != INBOX:
            session.create_folder(folder)
        session.append(folder, [NewMessage(_twin_received(message, path))])
    return store[0], mailbox, folder


def _twin_remove(workspace: Workspace, delivered: tuple[str, str, str], tag: str) -> None:
    store_name, mailbox, folder = delivered
    with workspace.connector("mailstores", store_name).open(mailbox) as session:
        found = _find(session, [folder], tag)
        if found is not None:
            session.delete(found[0], [found[1]])


def _twin_received(message: bytes, path: Trace) -> bytes:
    """The canary as the twins "deliver" it: one Received line per place of the model's path,
    so reports look alike (no times: nothing measured them)."""
    lines = [f"Received: by {hop.host} (cutover twin: {hop.kind})\r\n".encode()
             for hop in reversed(path.hops) if hop.kind in ("mx", "relay", "deliver")]
    return b"".join(lines) + message


def _interesting_headers(content: bytes) -> dict[str, str]:
    headers = BytesHeaderParser().parsebytes(content)
    return {name: " ".join(str(headers[name]).split()) for name in headers.keys()
            if name.lower().startswith(("x-spam", "x-rspamd", "x-spamd", "delivered-to"))}


def _probe_pipeline(workspace: Workspace, facts: MailFacts, path: Trace, result: ProbeResult,
                    message: bytes, timeout: float, sender: str) -> ProbeResult:
    program = Path(result.expected.mailbox or "").name
    pipelines = (workspace.config.get("routes") or {}).get("pipelines") or {}
    directory = pipelines.get(program)
    if not directory:
        result.last_seen = (f"the path ends in pipeline {program}: name its drop directory "
                            f"in cutover.yaml (routes: {{pipelines: {{{program}: DIR}}}})")
        return result
    drop = workspace.path(directory)
    endpoint = _entry_smtp(facts, path)
    if endpoint is None:
        result.last_seen = "no MX: nowhere to send the canary"
        return result
    started = time.monotonic()
    _send(endpoint, sender, result.address, message, timeout)
    while time.monotonic() < started + timeout:
        for file in sorted(drop.glob("*")) if drop.is_dir() else []:
            if file.is_file() and result.tag.encode() in file.read_bytes()[:65536]:
                result.arrived, result.found_in = True, f"pipeline {program} {file}"
                result.seconds = time.monotonic() - started
                file.unlink()
                return result
        time.sleep(POLL_S)  # polling the drop directory, not a timing assumption
    result.last_seen = f"nothing carrying the tag in {drop} after {timeout:g} s"
    return result


__all__ = ["ProbeFailed", "ProbeResult", "canary", "probe", "received_latencies"]
