"""Bad input and a failing machine: one `error:` line (or one per located problem), exit 2,
never `internal error`, and the workspace as it was."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import tests.runner.filestep  # noqa: F401 - registers test.files
from cutover.cli import main
from cutover.state import RECOVER

PLAN = """\
    name: files
    steps:
      - {id: first, kind: test.files, params: {files: {a.txt: "A"}}}
      - {id: second, kind: test.files, requires: [first], params: {files: {b.txt: "B"}}}
    """

REPO = Path(__file__).resolve().parents[2]

# 342 bytes describing 9**9 (387 million) strings: the "billion laughs"
ALIAS_BOMB = "".join(
    f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]\n"
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True))
ALIAS_BOMB = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + ALIAS_BOMB


@pytest.fixture
def ws(tmp_path, monkeypatch):
    root = tmp_path / "ws"
    (root / "plans").mkdir(parents=True)
    monkeypatch.chdir(root)  # plan paths are named as the operator wrote them
    (root / "cutover.yaml").write_text("name: t\n")
    (root / "plans" / "files.yaml").write_text(textwrap.dedent(PLAN))
    return root


def cutover(ws: Path, *args: str, capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(["--workspace", str(ws), *args])
    out, err = capsys.readouterr()
    return exited.value.code, out, err


def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file and directory under `root`: mode and content digest."""
    found = {}
    for path in [root, *sorted(root.rglob("*"))]:
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        found[str(path.relative_to(root))] = (path.stat().st_mode, digest)
    return found


# --- cutover.yaml --------------------------------------------------------------------------

@pytest.mark.parametrize("config, error", [
    (b"name: t\nclock: simulated \xff\n",
     "cutover.yaml:2: not UTF-8 text (byte 0xff)"),
    (b"mailstores:\n  linux:\n    kind: maildir\n    path: [1, 2]\n",
     "cutover.yaml:4: mailstores.linux.path: Input should be a valid string"),
    (b"mailstores:\n  linux: {kind: imap, host: mail.example.org, port: imaps,\n"
     b"          password: env/PW}\n",
     "cutover.yaml:2: mailstores.linux.port: Input should be a valid integer, unable to parse "
     "string as an integer"),
    (b"providers:\n  dns:\n    kind: rfc2136\n    server: 127.0.0.1\n    nameservers: 10.0.0.1\n",
     "cutover.yaml:5: providers.dns.nameservers: Input should be a valid list"),
    (b"mailstores:\n  linux: maildir\n",
     "cutover.yaml:2: mailstores.linux: expected a mapping with a kind (kind: NAME, then its "
     "settings)"),
    (b"mailstores: [linux, exchange]\n",
     "cutover.yaml:1: mailstores: expected a mapping of names"),
    (b"inventory:\n  throughput_mb_per_s: fast\n",
     "cutover.yaml:2: inventory.throughput_mb_per_s: Input should be a valid number, unable to "
     "parse string as a number"),
    (b"clock: fast\n",
     "cutover.yaml:1: clock: Input should be 'simulated' or 'real'"),
    (b"name: t\nmailstore:\n  linux: {kind: maildir, path: mail}\n",
     "cutover.yaml:2: mailstore: unknown section (known: name, clock, inventory, providers, "
     "mailstores, forwarding, sieve, postfix, accounts, directory, management, spamfilter, "
     "personal, routes)"),
    (b"sieve:\n  linux: {kind: managesieve, host: h, password: hunter2}\n",
     "cutover.yaml:2: sieve.linux.password: write a reference (env/NAME or file/PATH), not the "
     "secret itself"),
    (b"name: [" * 5000 + b"]" * 5000 + b"\n",
     "cutover.yaml:1: nested deeper than 100 levels"),
    (ALIAS_BOMB.encode(),
     "cutover.yaml:4: aliases expand past the limit of 10,000 nodes: write the values out"),
    (b"name: &loop [*loop]\n",
     "cutover.yaml:1: an alias refers to itself"),
    (b"- just\n- a list\n",
     "cutover.yaml:1: expected a mapping of sections at the top level (providers:, "
     "mailstores:, ...)"),
], ids=["not-utf8", "path-list", "port-text", "nameservers-text", "entry-not-mapping",
        "section-list", "throughput-text", "clock", "unknown-section", "inline-secret",
        "deep", "alias-bomb", "alias-loop", "top-level-list"])
@pytest.mark.parametrize("command", [["plan", "check", "plans/files.yaml"],
                                     ["run", "plans/files.yaml", "--yes"]],
                         ids=["plan-check", "run"])
def test_bad_cutover_yaml_is_one_located_error_and_changes_nothing(ws, capsys, config, error,
                                                                    command):
    (ws / "cutover.yaml").write_bytes(config)
    before = snapshot(ws)
    code, out, err = cutover(ws, *command, capsys=capsys)
    assert (code, err) == (2, f"error: {error}\n")
    assert "valid" not in out
    assert snapshot(ws) == before


def test_every_problem_of_cutover_yaml_is_reported_at_once(ws, capsys):
    (ws / "cutover.yaml").write_text(textwrap.dedent("""\
        name: t
        mailstores:
          linux: {kind: maildir, path: [1, 2]}
        sieve:
          linux: {kind: sievedir, path: 7}
        """))
    code, _, err = cutover(ws, "plan", "check", "plans/files.yaml", capsys=capsys)
    assert code == 2
    assert err.splitlines() == [
        "error: cutover.yaml:3: mailstores.linux.path: Input should be a valid string",
        "error: cutover.yaml:5: sieve.linux.path: Input should be a valid string"]


def test_the_sample_environment_is_valid(tmp_path, capsys):
    code, _, err = cutover(tmp_path / "agency", "init", "--sample", capsys=capsys)
    assert code == 0, err
    for plan in ("plans/phase1-segregate.yaml", "plans/phase2-cloud.yaml"):
        code, out, err = cutover(tmp_path / "agency", "plan", "check", plan, capsys=capsys)
        assert (code, err) == (0, ""), err
        assert out.endswith("valid\n")


# --- the environment a plan needs --------------------------------------------------------

DNS_PLAN = """\
    name: dns
    steps:
      - {id: first, kind: test.files, params: {files: {a.txt: "A"}}}
      - id: lower-ttl
        kind: dns.records
        requires: [first]
        params:
          zone: example.org
          changes: [{name: "@", type: MX, ttl: 300, set: ["10 mx.example.org."]}]
    """


def test_plan_check_names_a_connector_the_plan_needs_and_cutover_yaml_lacks(ws, capsys):
    (ws / "plans" / "dns.yaml").write_text(textwrap.dedent(DNS_PLAN))
    (ws / "cutover.yaml").write_text("name: t\nproviders:\n  lab: {kind: zonefile, "
                                     "path: zones/}\n")
    code, out, err = cutover(ws, "plan", "check", "plans/dns.yaml", capsys=capsys)
    assert (code, out) == (2, "")
    assert err == ("error: plans/dns.yaml:4: step lower-ttl: provider: cutover.yaml has no "
                   "providers.dns (configured: lab)\n")


def test_plan_check_names_an_unknown_connector_kind_the_plan_needs(ws, capsys):
    (ws / "plans" / "dns.yaml").write_text(textwrap.dedent(DNS_PLAN))
    (ws / "cutover.yaml").write_text("name: t\nproviders:\n  dns: {kind: zonefiles, "
                                     "path: zones/}\n")
    code, _, err = cutover(ws, "plan", "check", "plans/dns.yaml", capsys=capsys)
    assert code == 2
    assert err.startswith("error: cutover.yaml:3: providers.dns: unknown kind 'zonefiles' "
                          "(known: ")


def test_plan_check_refuses_a_credential_file_others_can_read(ws, capsys):
    secret = ws / "sieve.pw"
    secret.write_text("hunter2\n")
    secret.chmod(0o644)
    (ws / "cutover.yaml").write_text(
        "name: t\nsieve:\n  linux:\n    kind: managesieve\n    host: 127.0.0.1\n"
        "    password: file/sieve.pw\n")
    (ws / "plans" / "sieve.yaml").write_text(textwrap.dedent("""\
        name: sieve
        steps:
          - {id: redirect, kind: sieve.redirect, params: {sieve: linux, to: a@example.org,
             account: b@example.org}}
        """))
    code, _, err = cutover(ws, "plan", "check", "plans/sieve.yaml", capsys=capsys)
    assert (code, err) == (2, f"error: cutover.yaml:6: sieve.linux.password: {secret} is "
                              f"readable by others: chmod 600 {secret}\n")
    assert "hunter2" not in err


def test_run_refuses_before_any_step_when_a_later_step_lacks_its_connector(ws, capsys):
    (ws / "plans" / "dns.yaml").write_text(textwrap.dedent(DNS_PLAN))
    code, _, err = cutover(ws, "run", "plans/dns.yaml", "--yes", capsys=capsys)
    assert code == 2
    assert err == ("error: plans/dns.yaml:4: step lower-ttl: provider: cutover.yaml has no "
                   "providers.dns (configured: none)\n")
    assert not (ws / "a.txt").exists()


# --- plans ---------------------------------------------------------------------------------

@pytest.mark.parametrize("text, error", [
    ("name: x\nsteps: " + "[" * 5000 + "]" * 5000 + "\n",
     "plans/bad.yaml:2: nested deeper than 100 levels"),
    (ALIAS_BOMB, "plans/bad.yaml:4: aliases expand past the limit of 10,000 nodes: write the "
                 "values out"),
    ("name: x\nsteps: &steps [*steps]\n", "plans/bad.yaml:2: an alias refers to itself"),
], ids=["deep", "alias-bomb", "alias-loop"])
@pytest.mark.parametrize("command", ["check", "show"])
def test_hostile_plan_yaml_is_refused_quickly(ws, capsys, text, error, command):
    (ws / "plans" / "bad.yaml").write_text(text)
    before = snapshot(ws)
    code, _, err = cutover(ws, "plan", command, "plans/bad.yaml", capsys=capsys)
    assert (code, err) == (2, f"error: {error}\n")
    assert snapshot(ws) == before


def test_plan_that_is_not_utf8_names_the_line(ws, capsys):
    (ws / "plans" / "bad.yaml").write_bytes(b"name: x\n# caf\xe9\nsteps: []\n")
    code, _, err = cutover(ws, "plan", "check", "plans/bad.yaml", capsys=capsys)
    assert (code, err) == (2, "error: plans/bad.yaml:2: not UTF-8 text (byte 0xe9)\n")


# --- the workspace itself --------------------------------------------------------------------

@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["log"],
                                     ["plan", "check", "plans/files.yaml"], ["resume", "--yes"],
                                     ["run", "plans/files.yaml", "--yes"]])
@pytest.mark.parametrize("kind", ["missing", "file"])
def test_workspace_that_is_not_a_directory_exits_2(tmp_path, capsys, command, kind):
    given = tmp_path / "nowhere"
    if kind == "file":
        given.write_text("not a workspace\n")
    code, out, err = cutover(given, *command, capsys=capsys)
    what = "is not a directory" if kind == "file" else "does not exist"
    assert (code, out, err) == (2, "", f"error: workspace {given} {what}\n")
    assert not given.exists() or given.read_text() == "not a workspace\n"


def test_corrupt_state_database_names_the_file_and_how_to_recover(ws, capsys):
    assert cutover(ws, "run", "plans/files.yaml", "--yes", capsys=capsys)[0] == 0
    database = ws / "state" / "cutover.db"
    with sqlite3.connect(database) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'events'"
                            ).fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    with database.open("r+b") as raw:  # the b-tree page header of the audit log
        raw.seek((page - 1) * page_size + 1)
        raw.write(b"\xff" * 7)
    before = snapshot(ws)
    for command in (["status"], ["log"], ["run", "plans/files.yaml", "--yes"], ["resume"],
                    ["rollback", "first", "--yes"]):
        code, _, err = cutover(ws, *command, capsys=capsys)
        assert (code, err) == (2, f"error: {database} is corrupt (database disk image is "
                                  f"malformed): {RECOVER}\n"), command
    assert snapshot(ws) == before


@pytest.fixture
def small_disk(tmp_path):
    """A real 2 MiB filesystem (tmpfs), grown later with `remount`: room for a new state
    (16 KiB pages) and little more."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs",
                              str(mountpoint)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs here (the suite runs as root): "
                    f"{mounted.stderr.strip()}", pytrace=False)
    yield mountpoint
    subprocess.run(["umount", str(mountpoint)], check=True)


def test_full_disk_says_so_and_keeps_the_state_consistent(small_disk, tmp_path):
    ws = small_disk
    (ws / "cutover.yaml").write_text("name: t\n")
    big = "x" * 2_500_000  # more than the disk holds: the checkpoint cannot be written
    plan = tmp_path / "big.yaml"
    plan.write_text(textwrap.dedent(f"""\
        name: big
        steps:
          - {{id: small, kind: test.files, params: {{files: {{a.txt: "A"}}}}}}
          - {{id: big, kind: test.files, requires: [small],
             params: {{files: {{big.txt: "{big}"}}}}}}
        """))
    result = run_with_test_steps(ws, "run", str(plan), "--yes")
    assert (result.returncode, result.stderr) == (
        2, "error: no space left on device writing the state database: free some space, then "
           "run the command again (an interrupted run continues with `cutover resume`)\n")
    assert status_of(ws) == {"small": "done", "big": "pending"}
    assert not (ws / "big.txt").exists()

    subprocess.run(["mount", "-o", "remount,size=16m", str(ws)], check=True)
    result = run_with_test_steps(ws, "run", str(plan), "--yes")
    assert result.returncode == 0, result.stderr
    assert status_of(ws) == {"small": "done", "big": "done"}
    assert (ws / "big.txt").read_text() == big
    with sqlite3.connect(ws / "state" / "cutover.db") as conn:
        applied = conn.execute("SELECT item, COUNT(*) FROM events WHERE event = 'applied' "
                               "GROUP BY item").fetchall()
    conn.close()
    assert sorted(applied) == [("a.txt", 1), ("big.txt", 1)]


def test_full_disk_before_the_state_exists_leaves_no_empty_database(small_disk):
    ws = small_disk
    (ws / "cutover.yaml").write_text("name: t\n")
    (ws / "plans").mkdir()
    (ws / "plans" / "files.yaml").write_text(textwrap.dedent(PLAN))
    with (ws / "filler").open("wb", buffering=0) as stream:
        with pytest.raises(OSError):
            while True:
                stream.write(b"\0" * 4096)
    result = run_with_test_steps(ws, "run", "plans/files.yaml", "--yes")
    database = ws / "state" / "cutover.db"
    assert (result.returncode, result.stderr) == (
        2, f"error: no space left on device for the state database at {database}: free some "
           "space, then run the command again\n")
    assert not (ws / "state").exists() and not (ws / "a.txt").exists()


def status_of(ws: Path) -> dict[str, str]:
    result = run_with_test_steps(ws, "status", "--json")
    assert result.returncode == 0, result.stderr
    [plan] = json.loads(result.stdout)["plans"]
    return {step["id"]: step["status"] for step in plan["steps"]}


def run_with_test_steps(ws: Path, *args: str) -> subprocess.CompletedProcess:
    """cutover in its own process (nothing stays open on the small disk), with test.files."""
    code = "import sys, tests.runner.filestep; from cutover.cli import main; main(sys.argv[1:])"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", code, "--workspace", str(ws), *args],
                          cwd=ws, env=env, capture_output=True, text=True, timeout=120)


# --- credentials -----------------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--source-password-file", "--target-password-file"])
def test_password_file_others_can_read_is_refused(tmp_path, option):
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    secret.chmod(0o644)
    (tmp_path / "src" / "bob" / "cur").mkdir(parents=True)
    result = run_cli(tmp_path, "mailbox", "sync", f"maildir://{tmp_path}/src/bob",
                     f"maildir://{tmp_path}/dst/bob", "--state", str(tmp_path / "s.db"),
                     option, str(secret))
    assert (result.returncode, result.stderr) == (2, f"error: {secret} is readable by others: "
                                                     f"chmod 600 {secret}\n")
    assert not (tmp_path / "dst").exists() and not (tmp_path / "s.db").exists()


def test_missing_password_file_is_named_with_its_option(tmp_path):
    missing = tmp_path / "nope"
    result = run_cli(tmp_path, "mailbox", "sync", "maildir:a", "maildir:b", "--state",
                     str(tmp_path / "s.db"), "--source-password-file", str(missing))
    assert (result.returncode, result.stderr) == (
        2, f"error: cannot read --source-password-file {missing}: No such file or directory\n")


# --- text printed as written -----------------------------------------------------------------

@pytest.mark.parametrize("name", ["root:x:0:0.yaml", "[bold]plan[/bold].yaml", "x[/].yaml",
                                  ":thumbs_up: :smile:.yaml"])
def test_error_text_is_printed_verbatim(tmp_path, name):
    """Through a real standard error: no emoji codes, no markup, no wrapping."""
    (tmp_path / "cutover.yaml").write_text("name: t\n")
    result = run_cli(tmp_path, "plan", "check", name + " " * 30 + "long" * 30)
    assert result.returncode == 2
    assert result.stderr == f"error: plan not found: {name}{' ' * 30}{'long' * 30}\n"


def test_control_characters_in_errors_are_shown_escaped(tmp_path):
    (tmp_path / "cutover.yaml").write_text("name: t\n")
    result = run_cli(tmp_path, "plan", "check", "evil\x1b[2Jplan.yaml")
    assert result.stderr == "error: plan not found: evil\\x1b[2Jplan.yaml\n"


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("CUTOVER_")}
    env["COLUMNS"] = "80"
    return subprocess.run([sys.executable, "-m", "cutover", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_operator_text_in_a_table_is_printed_as_written(tmp_path):
    """An account named like rich markup or an emoji code is shown as it is named."""
    name = "[b]x:y:0"
    for sub in ("cur", "new", "tmp"):
        (tmp_path / "src" / name / sub).mkdir(parents=True)
    result = run_cli(tmp_path, "mailbox", "sync", f"maildir://{tmp_path}/src/{name}",
                     f"maildir://{tmp_path}/dst/{name}", "--state", str(tmp_path / "s.db"))
    assert result.returncode == 0, result.stderr
    assert any(line.split()[:1] == [name] for line in result.stdout.splitlines()), result.stdout
