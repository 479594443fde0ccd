"""`inventory collect` on the recorded exports of tests/recorded/getmailbox-csv: every style an
administrator writes (Windows PowerShell 5.1 or PowerShell 7, snap-in or remoting, en-US, de-DE
or fr-FR culture) gives the same snapshot."""

from datetime import UTC, datetime

import pytest

from cutover.inventory import store
from cutover.inventory.collect import collection
from cutover.workspace import Workspace
from tests.inventory.recorded_exports import STYLES, export_workspace

NOW = datetime(2026, 12, 2, tzinfo=UTC)


def collect(workspace: Workspace) -> tuple[dict[str, dict], list[str]]:
    run = collection(workspace, now=NOW)
    return {r["address"]: r for r in run.recipients()}, run.warnings


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    return {style: collect(export_workspace(tmp_path_factory.mktemp(style), style))
            for style in STYLES}


@pytest.mark.parametrize("style", STYLES)
def test_every_export_style_gives_the_snapshot_of_the_en_us_snap_in_export(snapshots, style):
    recipients, _ = snapshots[style]
    reference, _ = snapshots["ps51-snapin-en-US"]
    assert len(recipients) == 6
    assert store.snapshot_digest(recipients.values()) == \
        store.snapshot_digest(reference.values())


@pytest.mark.parametrize("style", STYLES)
def test_only_culture_delimited_exports_carry_a_note_and_it_names_the_delimiter(snapshots,
                                                                                 style):
    _, warnings = snapshots[style]
    if "en-US" in style:
        assert warnings == []
    else:
        assert warnings and all("fields are separated by ';', not ','" in w for w in warnings)
        assert warnings[-1].startswith("inventory/Get-Mailbox.csv:")

