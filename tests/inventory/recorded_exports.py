"""Workspaces holding the recorded exports of tests/recorded/getmailbox-csv (one per style)."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from cutover.workspace import Workspace

RECORDED = Path(__file__).parent.parent / "recorded" / "getmailbox-csv"
STYLES = sorted(p.name for p in RECORDED.iterdir() if p.is_dir())


def export_workspace(root: Path, style: str) -> Workspace:
    """A workspace whose only inventory source is the recorded export of `style`."""
    (root / "inventory").mkdir(parents=True)
    source = {"kind": "getmailbox-csv", "path": "inventory/Get-Mailbox.csv"}
    for path in (RECORDED / style).glob("*.csv"):
        shutil.copy(path, root / "inventory" / path.name)
        if path.name == "Get-MailboxStatistics.csv":
            source["statistics_path"] = "inventory/Get-MailboxStatistics.csv"
    (root / "cutover.yaml").write_text(yaml.safe_dump(
        {"inventory": {"sources": {"exchange-csv": source}}}))
    return Workspace(root)
