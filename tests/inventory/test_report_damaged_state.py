"""`report inventory` on a damaged state file: refused with the one-line corrupt-state error
before anything is written, whichever table is damaged. The summary reports check every table
but the recipient rows on open (they do not read them); the CSV report checks those too before
its first line."""

import sqlite3

import pytest

from cutover.state import RECOVER
from tests.inventory.sample_org import cutover, write_sample_workspace


@pytest.fixture
def collected(tmp_path, capsys):
    root = write_sample_workspace(tmp_path / "ws")
    assert cutover(capsys, root, "inventory", "collect")[0] == 0
    return root


def damage(database, table: str) -> None:
    """Overwrite the b-tree page header of `table`'s root page (as a bad disk would)."""
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?",
                            [table]).fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    with database.open("r+b") as raw:
        raw.seek((page - 1) * page_size + 1)
        raw.write(b"\xff" * 7)


@pytest.mark.parametrize("fmt", ["md", "csv", "json", "html"])
@pytest.mark.parametrize("table", ["events", "inventory_snapshots", "inventory_summaries"])
def test_report_of_a_state_damaged_anywhere_else_is_refused(collected, capsys, fmt, table):
    database = collected / "state" / "cutover.db"
    damage(database, table)
    output = collected / f"report.{fmt}"
    code, out, err = cutover(capsys, collected, "report", "inventory", "--format", fmt,
                             "-o", str(output))
    assert (code, out, err) == (2, "", f"error: {database} is corrupt (database disk image is "
                                       f"malformed): {RECOVER}\n")
    assert not output.exists()


def test_csv_report_of_damaged_recipient_rows_is_refused_before_any_line(collected, capsys):
    database = collected / "state" / "cutover.db"
    damage(database, "inventory_recipients")
    output = collected / "report.csv"
    code, out, err = cutover(capsys, collected, "report", "inventory", "--format", "csv",
                             "-o", str(output))
    assert (code, out, err) == (2, "", f"error: {database} is corrupt (database disk image is "
                                       f"malformed): {RECOVER}\n")
    assert not output.exists() or output.read_text() == ""


def test_summary_report_reads_no_recipient_row_so_damaged_ones_do_not_stop_it(
        collected, capsys):
    expected = collected / "before.md"
    assert cutover(capsys, collected, "report", "inventory", "-o", str(expected))[0] == 0
    damage(collected / "state" / "cutover.db", "inventory_recipients")
    output = collected / "report.md"
    code, _, err = cutover(capsys, collected, "report", "inventory", "-o", str(output))
    assert (code, err) == (0, "")
    assert output.read_text() == expected.read_text()
    # the next command that writes the state checks it whole, and refuses it
    code, _, err = cutover(capsys, collected, "inventory", "collect")
    assert code == 2 and "is corrupt" in err
