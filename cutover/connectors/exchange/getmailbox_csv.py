"""Inventory source: Get-Mailbox / Get-Recipient / Get-MailboxStatistics CSV exports.

    inventory:
      sources:
        exchange-csv:
          kind: getmailbox-csv
          path: inventory/Get-Mailbox.csv          # or a list: [Get-Mailbox.csv, Get-Recipient.csv]
          statistics_path: inventory/Get-MailboxStatistics.csv   # optional, joined by identity

Files are streamed (decoded as PowerShell wrote them: UTF-16 LE or UTF-8, with or without BOM;
delimited and formatted as the exporting session's culture wrote them), so memory stays flat
however many rows there are. Every problem is located as file:line.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cutover.connectors.base import connector
from cutover.errors import ConfigInvalid, NotFound
from cutover.parsers import getmailbox_csv as parser


def open_text(path: Path) -> io.TextIOWrapper:
    """The file as text in the encoding its first bytes announce; decoding errors are strict."""
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise NotFound(f"inventory file not found: {path}") from None
    except OSError as exc:
        raise NotFound(f"cannot read inventory file {path}: {exc.strerror}") from None
    encoding = parser.detect_encoding(raw.peek(4)[:4])
    return io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")


def _day_first(path: Path) -> bool | None:
    """How the file's slashed dates read, from the file itself (a first pass that stops at the
    first date only one order fits; at once when the export has no date column)."""
    with open_text(path) as stream:
        try:
            return parser.scan_day_first(stream)
        except UnicodeDecodeError:
            return None  # the reading pass reports it, located


@connector("getmailbox-csv", role="inventory-source")
class GetMailboxCsvSource:
    """Recipients from Exchange Management Shell exports (read-only, file based)."""

    def __init__(self, paths: list[Path], statistics_path: Path | None, labels: dict[Path, str]):
        self.paths = paths
        self.statistics_path = statistics_path
        self.labels = labels

    @classmethod
    def from_config(cls, config: dict[str, Any], workspace: Any) -> GetMailboxCsvSource:
        given = config.get("path")
        if not given:
            raise ConfigInvalid("cutover.yaml: inventory source of kind getmailbox-csv needs path")
        names = [given] if isinstance(given, str) else list(given)
        paths = [workspace.path(name) for name in names]
        labels = {path: str(name) for path, name in zip(paths, names, strict=True)}
        stats = config.get("statistics_path")
        stats_path = workspace.path(stats) if stats else None
        if stats_path:
            labels[stats_path] = str(stats)
        return cls(paths, stats_path, labels)

    def collect(self, warnings: list[str]) -> Iterator[dict[str, Any]]:
        """Stream raw (unclassified) recipients; ValidationFailed at the end if any file had
        errors, which makes the whole snapshot fail (it is stored in one transaction)."""
        report = parser.ImportReport()
        statistics = self._statistics(report)
        seen: dict[str, str] = {}
        unmatched = 0
        for path in self.paths:
            day_first = _day_first(path)
            with open_text(path) as stream:
                for record in parser.read_recipients(stream, self.labels[path], report, seen,
                                                     day_first):
                    if statistics is not None and record["type"] not in ("contact", "group") \
                            and not parser.join_statistics(record, statistics):
                        unmatched += 1
                    if report.warnings:
                        warnings.extend(str(p) for p in report.warnings)
                        report.warnings.clear()
                    yield record
        warnings.extend(str(p) for p in report.warnings)
        if unmatched:
            warnings.append(f"{unmatched} mailbox(es) have no row in {self.statistics_path}")
        report.raise_if_failed()

    def _statistics(self, report: parser.ImportReport) -> dict[str, dict[str, Any]] | None:
        if self.statistics_path is None:
            return None
        day_first = _day_first(self.statistics_path)
        with open_text(self.statistics_path) as stream:
            table = parser.read_statistics(stream, self.labels[self.statistics_path], report,
                                           day_first)
        if report.errors:
            report.raise_if_failed()
        return table

    def describe(self) -> str:
        return ", ".join(self.labels[p] for p in self.paths)

