"""The one safety gate: every step kind's unsafe change is refused in the runner, in one place,
and only --force passes it.

Each kind that changes the world tells the gate how to observe an item; a rollback over an edit
someone made after the apply is refused (exit 2, naming what changed) and leaves the edit alone.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cutover import operations
from cutover.runner import RunOptions
from cutover.safety import UNOBSERVED
from cutover.sample import write_sample
from cutover.steps.base import STEP_KINDS, Step, iter_kinds
from cutover.workspace import Workspace
from tests.workspace_fingerprint import fingerprint

PHASE1 = "plans/phase1-segregate.yaml"
ACCOUNT = "datarequest@verify.example.org"
OLD_ADDRESS = "datarequest@example.org"

#: Kinds with no world state the gate could compare, and why.
NOTHING_TO_OBSERVE = {
    "dns.check": "it reads DNS and changes nothing",
    "inventory.collect": "it writes only a snapshot into the state database",
    "cloud.mailbox": "it checks a mailbox exists and changes nothing",
    "mailbox.sync": "mail arrives all the time: its verify compares the copies instead",
    "cloud.migration_batch": "MRS moves the batch on by itself: the step watches it instead",
    "hybrid.preflight": "it checks the tenant and the endpoint and changes nothing",
    "exo.auto_forwarding": "it checks the outbound spam policy and changes nothing",
    "route.probe": "a canary it sends is removed again; nothing stays changed",
}


def cutover(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run cutover from inside the workspace, as an operator would (plans/... is its own)."""
    return subprocess.run([sys.executable, "-m", "cutover", *args], cwd=root,
                          capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})


@pytest.fixture(scope="module")
def applied_phase1(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gate") / "agency"
    write_sample(root)
    operations.run(Workspace(root), PHASE1, RunOptions(yes=True))
    return root


@pytest.fixture
def workspace(applied_phase1: Path, tmp_path: Path) -> Path:
    root = tmp_path / "agency"
    shutil.copytree(applied_phase1, root, symlinks=True)
    for path in root.rglob("*"):  # absolute paths written by the sample point at the template
        if path.is_file() and path.name in ("users", "cutover.yaml"):
            path.write_text(path.read_text().replace(str(applied_phase1), str(root)))
    moved_state(root / "state" / "cutover.db", str(applied_phase1), str(root))
    return root


def moved_state(db: Path, old: str, new: str) -> None:
    """The copy engine records each pair of mailboxes by its stores' absolute paths: point
    them at the copy, as if the phase had run there."""
    conn = sqlite3.connect(db)
    with conn:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                     " AND name NOT LIKE 'sqlite_%'").fetchall():
            for column in conn.execute(f"PRAGMA table_info('{table}')").fetchall():
                if column[2].upper() in ("TEXT", ""):
                    conn.execute(f'UPDATE "{table}" SET "{column[1]}" = '
                                 f'replace("{column[1]}", ?, ?)', (old, new))
    conn.close()


def edit_forwarding(root: Path) -> str:
    path = root / "exchange" / "forwarding.json"
    data = json.loads(path.read_text())
    data[OLD_ADDRESS]["forwarding_smtp_address"] = "smtp:someone-else@example.net"
    path.write_text(json.dumps(data, indent=2))
    return "someone-else@example.net"


def edit_virtual_map(root: Path) -> str:
    path = root / "postfix" / "virtual"
    lines = [f"{OLD_ADDRESS}    archive@example.net" if line.startswith(OLD_ADDRESS) else line
             for line in path.read_text().splitlines()]
    path.write_text("\n".join(lines) + "\n")
    return "archive@example.net"


def edit_sieve_script(root: Path) -> str:
    path = root / "sieve" / ACCOUNT / "procmail.sieve"
    path.write_text(path.read_text() + "\n# tuned by the duty officer\n")
    return ACCOUNT


def remove_credentials(root: Path) -> str:
    (root / "credentials" / f"{ACCOUNT}.txt").unlink()
    return ACCOUNT


def edit_mx(root: Path) -> str:
    path = root / "zones" / "verify.example.org"
    path.write_text(path.read_text().replace("10 mx.verify.example.org.",
                                             "20 mx2.verify.example.org."))
    return "mx2.verify.example.org"


# step id, its kind, an edit someone makes after the apply (returns what the refusal names)
LATER_EDITS: list[tuple[str, str, Callable[[Path], str]]] = [
    ("forward-from-exchange", "exchange.forwarding", edit_forwarding),
    ("alias-old-addresses", "postfix.maps", edit_virtual_map),
    ("replace-procmail", "rules.replace", edit_sieve_script),
    ("accounts", "linux.account", remove_credentials),
    ("verify-domain-dns", "dns.records", edit_mx),
]


@pytest.mark.parametrize("step, kind, edit", LATER_EDITS, ids=[s for s, _, _ in LATER_EDITS])
def test_rollback_refuses_to_overwrite_a_later_edit(workspace, step, kind, edit):
    named = edit(workspace)
    before = fingerprint(workspace)

    refused = cutover(workspace, "rollback", step, "--cascade", "--yes")

    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith(f"error: step {step}: changed since it was applied")
    assert "--force" in refused.stderr and named.split("@")[0] in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    assert fingerprint(workspace) == before


@pytest.mark.parametrize("step, kind, edit", LATER_EDITS, ids=[s for s, _, _ in LATER_EDITS])
def test_force_rolls_back_over_a_later_edit(workspace, step, kind, edit):
    edit(workspace)

    forced = cutover(workspace, "rollback", step, "--cascade", "--yes", "--force")

    assert forced.returncode == 0, forced.stderr
    status = json.loads(cutover(workspace, "status", "--json").stdout)
    [phase1] = status["plans"]
    assert {s["id"]: s["status"] for s in phase1["steps"]}[step] == "rolled_back"
    events = json.loads(cutover(workspace, "log", "--json").stdout)
    assert any(e["event"] == "unsafe-forced" and e["step_id"] == step for e in events)


def test_apply_refuses_an_item_changed_since_the_preview(workspace):
    """A resumed step whose next item someone changed meanwhile stops instead of overwriting."""
    assert cutover(workspace, "rollback", "forward-from-exchange", "--cascade", "--yes"
                   ).returncode == 0
    crashed = subprocess.run(
        [sys.executable, "-m", "cutover", "run", PHASE1, "--step", "forward-from-exchange",
         "--yes"], cwd=workspace, capture_output=True, text=True,
        env={**os.environ, "CUTOVER_CRASH_AT": "forward-from-exchange:after-checkpoint"})
    assert crashed.returncode == 137
    status = json.loads(cutover(workspace, "status", "--json").stdout)
    step = next(s for s in status["plans"][0]["steps"] if s["id"] == "forward-from-exchange")
    # the first pending item may have been in flight at the crash: the gate checks the others
    last = step["items"]["detail"][-1]["item"].partition("/")[2]
    path = workspace / "exchange" / "forwarding.json"
    data = json.loads(path.read_text())
    data[last] = {"deliver_and_forward": True, "forwarding_smtp_address": "smtp:x@example.net"}
    path.write_text(json.dumps(data, indent=2))

    resumed = cutover(workspace, "resume", "--yes")

    assert resumed.returncode == 1, resumed.stderr
    assert "the world changed since the preview" in resumed.stderr
    assert json.loads(path.read_text())[last]["forwarding_smtp_address"] == "smtp:x@example.net"


def shipped_kinds() -> list[str]:
    """The kinds cutover ships (tests register kinds of their own in the same registry)."""
    return sorted(kind for kind in iter_kinds()
                  if STEP_KINDS[kind].__module__.startswith("cutover."))


@pytest.mark.parametrize("kind", shipped_kinds())
def test_every_kind_answers_the_gate(kind):
    """A kind either tells the gate how to observe its items, or says why it has nothing to
    observe; none checks safety on its own behind the gate's back."""
    cls: type[Step] = STEP_KINDS[kind]
    observes = cls.observe is not Step.observe
    if kind in NOTHING_TO_OBSERVE:
        assert not observes
        assert cls().observe(None, None) is UNOBSERVED  # type: ignore[arg-type]
    else:
        assert observes, f"{kind} must implement observe() for the safety gate"


def add_station_mailbox(root: Path, local: str) -> None:
    """A new station's functional mailbox appears in the Exchange export (and its store)."""
    path = root / "inventory" / "Get-Mailbox.csv"
    text = path.read_text(encoding="utf-8-sig")
    line = next(line for line in text.splitlines() if line.startswith('"station-aks01"'))
    path.write_text(text.rstrip("\r\n") + "\r\n" + line.replace("station-aks01", local)
                    .replace("5725172e", "5725172f") + "\r\n", encoding="utf-8-sig")
    for where in ("mail/exchange", "procmail"):
        shutil.copytree(root / where / "station-aks01@example.org",
                        root / where / f"{local}@example.org")


def test_a_mailbox_collected_later_reopens_the_steps_that_never_handled_it(tmp_path):
    root = tmp_path / "agency"
    write_sample(root)
    assert cutover(root, "run", PHASE1, "--until", "accounts", "--yes").returncode == 0
    add_station_mailbox(root, "station-ks99")
    assert cutover(root, "inventory", "collect").returncode == 0

    alone = cutover(root, "run", PHASE1, "--step", "alias-old-addresses", "--yes")
    assert alone.returncode == 2
    assert "requires accounts, which has not handled station-ks99@example.org" in alone.stderr

    ran = cutover(root, "run", PHASE1, "--yes")
    assert ran.returncode == 0, ran.stderr
    assert "station-ks99@verify.example.org" in (root / "dovecot" / "users").read_text()
    virtual = (root / "postfix" / "virtual").read_text()
    assert "station-ks99@example.org" in virtual


PHASE2 = "plans/phase2-cloud.yaml"


@pytest.fixture(scope="module")
def applied_phase2(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gate2") / "agency"
    write_sample(root)
    for plan in (PHASE1, PHASE2):
        operations.run(Workspace(root), plan, RunOptions(yes=True))
    return root


def edit_tenant(root: Path, name: str, change: Callable[[list], None]) -> None:
    path = root / "tenant" / name
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def edit_accepted_domain(root: Path) -> str:
    def to_authoritative(domains: list) -> None:
        next(d for d in domains if d["DomainName"] == "example.org")["DomainType"] = \
            "Authoritative"
    edit_tenant(root, "accepted-domains.json", to_authoritative)
    return "Authoritative"


def edit_outbound_connector(root: Path) -> str:
    def other_smarthost(connectors: list) -> None:
        connectors[0]["SmartHosts"] = ["relay2.example.org"]
    edit_tenant(root, "outbound-connectors.json", other_smarthost)
    return "relay2.example.org"


def edit_mail_contact(root: Path) -> str:
    def retarget(recipients: list) -> None:
        contact = next(r for r in recipients if r.get("RecipientTypeDetails") == "MailContact")
        contact["ExternalEmailAddress"] = "SMTP:elsewhere@example.net"
    edit_tenant(root, "recipients.json", retarget)
    return "elsewhere@example.net"


TENANT_EDITS: list[tuple[str, str, Callable[[Path], str]]] = [
    ("internal-relay", "exo.accepted_domain", edit_accepted_domain),
    ("outbound-to-onprem", "exo.connector", edit_outbound_connector),
    ("verification-contacts", "exo.mail_contact", edit_mail_contact),
]


@pytest.mark.parametrize("step, kind, edit", TENANT_EDITS, ids=[s for s, _, _ in TENANT_EDITS])
def test_rollback_refuses_to_overwrite_a_later_edit_in_the_tenant(applied_phase2, tmp_path,
                                                                   step, kind, edit):
    root = tmp_path / "agency"
    shutil.copytree(applied_phase2, root, symlinks=True)
    for path in root.rglob("*"):
        if path.is_file() and path.name in ("users", "cutover.yaml"):
            path.write_text(path.read_text().replace(str(applied_phase2), str(root)))
    named = edit(root)

    refused = cutover(root, "rollback", step, "--cascade", "--plan", "phase2-cloud", "--yes")

    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.startswith(f"error: step {step}: changed since it was applied")
    assert named in refused.stderr
