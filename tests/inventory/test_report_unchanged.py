"""The inventory reports of the sample organisation, byte for byte.

The expected files were rendered before the inventory was optimised for speed (issue 15): any
change to collection, classification, storage or rendering that alters a single byte of any
report fails here. A deliberate change of a report regenerates them with

    CUTOVER_REGENERATE_REPORTS=1 .venv/bin/python -m pytest tests/inventory/test_report_unchanged.py

and the diff of tests/inventory/expected/ is then part of the review.
"""

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cutover.inventory.collect import collect_and_store
from cutover.operations import REPORT_FORMATS as FORMATS
from cutover.operations import write_inventory_report
from cutover.sample.writer import write_sample
from cutover.state import State
from cutover.workspace import Workspace
from tests.inventory.sample_org import write_sample_workspace

EXPECTED = Path(__file__).parent / "expected"
NOW = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)
WORKSPACES = {
    # the demo's workspace: Maildir store sampled for traits, procmail, Sieve, Postfix maps
    "demo": lambda root: write_sample(root),
    # Get-Mailbox (UTF-16, #TYPE) joined with Get-MailboxStatistics, procmail and Postfix
    "exports": lambda root: write_sample_workspace(root),
}


@pytest.fixture(scope="module", params=sorted(WORKSPACES))
def reports(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(request.param) / "ws"
    WORKSPACES[request.param](root)
    workspace = Workspace(root)
    state = State.open(workspace.state_path)
    collect_and_store(workspace, state, now=NOW)
    state.close()
    for fmt in FORMATS:
        write_inventory_report(workspace, fmt, root / f"report.{fmt}")
    return request.param, root


@pytest.mark.parametrize("fmt", FORMATS)
def test_report_is_byte_identical_to_the_recorded_one(reports, fmt):
    name, root = reports
    rendered = (root / f"report.{fmt}").read_bytes()
    expected = EXPECTED / f"{name}-report.{fmt}"
    if os.environ.get("CUTOVER_REGENERATE_REPORTS"):
        expected.write_bytes(rendered)
    assert rendered == expected.read_bytes(), f"{expected.name} changed"
