"""Mailbox traits from a sample of message headers: pure functions, headers in, numbers out.

The classifier's trait conditions read what this computes:
    {"sampled": 40, "automated_share": 0.95, "subject_share": 0.9, "subjects": [...]}
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from email.utils import parseaddr
from typing import Any

from cutover.inventory.classify import VERIFICATION_SUBJECTS

_AUTOMATED_LOCALS = re.compile(r"^(no-?reply|do-?not-?reply|mailer-daemon|postmaster|daemon|"
                               r"root|cron|nagios|monitor\w*|alerts?|notifications?|bounces?|"
                               r"auto\w*|robot|system|station-.*|ims-.*|datarequest|bulletin\w*)$",
                               re.IGNORECASE)
_SUBJECTS = [re.compile(pattern, re.IGNORECASE) for pattern in VERIFICATION_SUBJECTS]
SUBJECTS_KEPT = 20


def parse_headers(raw: bytes) -> dict[str, str]:
    """The headers of a message (its body is ignored), names lower-cased."""
    head = raw.split(b"\r\n\r\n", 1)[0] if b"\r\n\r\n" in raw else raw.split(b"\n\n", 1)[0]
    message = BytesHeaderParser(policy=default_policy).parsebytes(head + b"\n\n")
    return {name.lower(): str(value) for name, value in message.items()}


def is_automated(headers: dict[str, str]) -> bool:
    """RFC 3834 Auto-Submitted, bulk/list precedence, null return path, or a robot sender."""
    auto_submitted = headers.get("auto-submitted", "no").strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if headers.get("precedence", "").strip().lower() in ("bulk", "list", "junk"):
        return True
    if "list-id" in headers or "x-autoreply" in headers or "x-cron-env" in headers:
        return True
    if headers.get("return-path", "").strip() == "<>":
        return True
    local = parseaddr(headers.get("from", ""))[1].partition("@")[0]
    return bool(local and _AUTOMATED_LOCALS.match(local))


def is_verification_subject(subject: str) -> bool:
    return any(pattern.search(subject or "") for pattern in _SUBJECTS)


def traits_from_headers(samples: Iterable[dict[str, str]]) -> dict[str, Any]:
    """Shares over the sample; an empty sample gives `sampled: 0` and no shares."""
    sampled = automated = verification = 0
    subjects: list[str] = []
    for headers in samples:
        sampled += 1
        automated += is_automated(headers)
        subject = headers.get("subject", "")
        verification += is_verification_subject(subject)
        if len(subjects) < SUBJECTS_KEPT:
            subjects.append(subject)
    if not sampled:
        return {"sampled": 0}
    return {"sampled": sampled, "automated_share": round(automated / sampled, 3),
            "subject_share": round(verification / sampled, 3), "subjects": subjects}
