import csv
import io
import json
import shutil
import subprocess
import sys

import pytest

from cutover.sample.org import recipients as sample_recipients
from tests.inventory.recorded_exports import export_workspace
from tests.inventory.sample_org import cutover, write_sample_workspace

SAMPLE_SIZE = len(sample_recipients())


@pytest.fixture
def root(tmp_path):
    return write_sample_workspace(tmp_path / "ws")


def test_collect_stores_a_snapshot_and_prints_class_counts(capsys, root):
    code, out, err = cutover(capsys, root, "inventory", "collect")
    assert code == 0, err
    assert out.startswith(f"snapshot 1 from exchange-csv: {SAMPLE_SIZE} recipients")
    assert "verification 13" in out and "unknown 2" in out


def test_collect_json_and_unknown_source(capsys, root):
    code, out, _ = cutover(capsys, root, "inventory", "collect", "--source", "exchange-csv",
                           "--json")
    assert code == 0 and json.loads(out)["classes"]["people"] == 40
    code, _, err = cutover(capsys, root, "inventory", "collect", "--source", "nope")
    assert code == 2
    assert err == "error: cutover.yaml has no inventory.sources.nope (configured: exchange-csv)\n"


def test_collect_of_a_broken_csv_fails_with_file_line_and_stores_nothing(capsys, root):
    (root / "inventory" / "Get-Mailbox.csv").write_text('"Name"\n"x"\n')
    code, _, err = cutover(capsys, root, "inventory", "collect")
    assert code == 2
    assert err.startswith("error: inventory/Get-Mailbox.csv:1: missing column(s) "
                          "PrimarySmtpAddress, RecipientTypeDetails")
    code, out, _ = cutover(capsys, root, "inventory", "list", "--json")
    assert json.loads(out) == []


def test_collect_of_a_de_de_use_culture_export_succeeds_and_says_its_delimiter(capsys, tmp_path):
    """Issue 16: PowerShell 7, de-DE, Export-Csv -UseCulture (';', 2,15 GB, 18.11.2026)."""
    root = export_workspace(tmp_path / "ws", "ps7-de-DE").root
    code, out, err = cutover(capsys, root, "inventory", "collect")
    assert code == 0, err
    assert out.startswith("snapshot 1 from exchange-csv: 6 recipients, 3.4 GB")
    assert err.startswith("warning: inventory/Get-Mailbox.csv:1: fields are separated by ';', "
                          "not ','")
    code, out, _ = cutover(capsys, root, "inventory", "show", "juergen.weiss@example.org",
                           "--json")
    shown = json.loads(out)
    assert (shown["size_bytes"], shown["items"], shown["last_logon"]) == (
        2308544921, 18234, "2026-11-18T14:07:31")


def test_show_explains_one_recipient_by_alias(capsys, root):
    cutover(capsys, root, "inventory", "collect")
    code, out, _ = cutover(capsys, root, "inventory", "show", "ahaddad@example.org")
    assert code == 0
    assert "amira.haddad@example.org" in out
    assert "why: rule people-user-mailbox: type is user (personal user mailbox)" in out
    code, out, _ = cutover(capsys, root, "inventory", "show", "datarequest@example.org", "--json")
    assert json.loads(out)["destination"] == "linux"
    code, _, err = cutover(capsys, root, "inventory", "show", "ghost@example.org")
    assert (code, err) == (2, "error: ghost@example.org is not in the inventory snapshot\n")


def test_diff_shows_moves_after_an_override(capsys, root):
    cutover(capsys, root, "inventory", "collect")
    config = (root / "cutover.yaml").read_text()
    (root / "cutover.yaml").write_text(config.replace(
        "  classification:\n",
        "  classification:\n    overrides:\n      test123@example.org: {class: service, "
        "destination: retire, reason: left over}\n"))
    cutover(capsys, root, "inventory", "collect")
    code, out, _ = cutover(capsys, root, "inventory", "diff")
    assert code == 0
    assert out.splitlines()[0] == "snapshot 1 -> 2: 0 added, 0 removed, 1 changed, 1 moved"
    assert ("~ test123@example.org: unknown -> keep => service -> retire (override for "
            "test123@example.org in cutover.yaml: left over)") in out
    code, out, _ = cutover(capsys, root, "inventory", "diff", "1", "2", "--json")
    assert json.loads(out)["moves"][0]["address"] == "test123@example.org"


def test_report_without_snapshot_says_what_to_run(capsys, root):
    code, _, err = cutover(capsys, root, "report", "inventory")
    assert (code, err) == (2, "error: no inventory snapshot yet: run `cutover inventory "
                              "collect`\n")


def test_report_in_all_four_formats(capsys, root, tmp_path):
    cutover(capsys, root, "inventory", "collect")
    code, md, _ = cutover(capsys, root, "report", "inventory", "--format", "md")
    assert code == 0
    assert "| verification | 13 |" in md
    assert "## Unresolved class (2): these stay where they are" in md
    assert "At 25.0 MB/s, measured." in md
    code, text, _ = cutover(capsys, root, "report", "inventory", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == SAMPLE_SIZE
    assert {r["class"] for r in rows} == {"people", "verification", "shared", "resource",
                                          "service", "unknown"}
    code, text, _ = cutover(capsys, root, "report", "inventory", "--format", "json")
    summary = json.loads(text)
    assert summary["totals"]["recipients"] == SAMPLE_SIZE
    assert [p["destination"] for p in summary["phases"]] == ["linux", "cloud"]
    assert summary["phases"][0]["mailboxes"] == 13
    assert summary["forwarding"][0]["to"] == "archive@verify.example.org"
    out_file = tmp_path / "report.html"
    code, out, _ = cutover(capsys, root, "report", "inventory", "--format", "html", "-o",
                           str(out_file))
    assert code == 0 and out.startswith(f"wrote {out_file}")
    page = out_file.read_text()
    assert page.count("<svg") == 3 and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in page and "<link" not in page and "src=" not in page


def test_bad_format_is_a_usage_error(capsys, root):
    code, _, err = cutover(capsys, root, "report", "inventory", "--format", "pdf")
    assert (code, err) == (2, "error: unknown report format 'pdf': use one of md, csv, json, "
                              "html\n")


def test_html_report_renders_in_headless_chromium(tmp_path, root, capsys):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.fail("chromium is not installed: apt-get install -y chromium")
    cutover(capsys, root, "inventory", "collect")
    page = tmp_path / "report.html"
    cutover(capsys, root, "report", "inventory", "--format", "html", "-o", str(page))
    # `#sort=largest:3` asks the inline script to sort the largest-mailboxes table by size,
    # ascending: the DOM dumped after scripts ran must show it sorted and marked.
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         f"{page.as_uri()}#sort=largest:3"],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert dom.count('data-sortable="ready"') == 8  # every table, the Graph path's too
    assert dom.count("<svg") == 3 and 'id="chart-class-size"' in dom
    assert dom.count("<rect") >= 6
    largest = dom.split('id="largest"')[1].split("</table>")[0]
    assert 'aria-sort="ascending"' in largest
    sizes = [int(chunk.split('"')[0]) for chunk in largest.split('data-value="')[1:]][::2]
    assert sizes == sorted(sizes) and len(sizes) == 25


def test_module_entry_point_runs(root):
    result = subprocess.run([sys.executable, "-m", "cutover", "--workspace", str(root),
                             "inventory", "collect", "--json"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["recipients"] == SAMPLE_SIZE
