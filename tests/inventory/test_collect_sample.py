from datetime import UTC, datetime

import pytest
import yaml

from cutover.connectors.mailstore import NewMessage
from cutover.errors import ValidationFailed
from cutover.inventory import store
from cutover.inventory.collect import collect_and_store, collection
from cutover.sample.org import recipients as sample_recipients
from cutover.state import State
from cutover.workspace import Workspace
from tests.inventory.sample_org import EXPECTED_BY_ROLE, write_sample_workspace

NOW = datetime(2026, 11, 26, tzinfo=UTC)


@pytest.fixture
def workspace(tmp_path):
    return Workspace(write_sample_workspace(tmp_path))


def collected(workspace):
    run = collection(workspace, now=NOW)
    return {r["address"]: r for r in run.recipients()}, run.warnings


def test_sample_organisation_classifies_as_expected_with_reasons(workspace):
    found, warnings = collected(workspace)
    assert warnings == []
    wrong = {}
    for sample in sample_recipients():
        recipient = found[sample.address.lower()]
        expected = EXPECTED_BY_ROLE[sample.role]
        if (recipient["class"], recipient["destination"]) != expected:
            wrong[sample.address] = (recipient["class"], recipient["reason"])
        assert recipient["reason"]
    assert wrong == {}


def test_reasons_name_the_rule_and_the_evidence(workspace):
    found, _ = collected(workspace)
    assert found["station-aks01@example.org"]["reason"].startswith(
        "rule verification-functional-address: local 'station-aks01' matches 'station-*'")
    assert found["waveform-request@example.org"]["reason"].startswith(
        "rule verification-procmail: type is user; procmail rules in "
        "procmail/waveform-request@example.org/.procmailrc")
    assert found["test123@example.org"]["reason"].startswith(
        "rule nearly-empty-user-mailbox: type is user; 1 item(s)")


def test_statistics_forwarding_and_routing_are_joined(workspace):
    found, _ = collected(workspace)
    bulletin = found["bulletin@example.org"]
    assert bulletin["forwarding"] == [{"via": "ForwardingSmtpAddress",
                                       "to": "archive@verify.example.org", "keep_copy": True}]
    assert bulletin["routing"][0]["path"] == "postfix/virtual:2"
    assert bulletin["items"] == 8 and bulletin["size_bytes"] > 0
    procmail = found["waveform-request@example.org"]["rules"][0]
    assert (procmail["forward_to"], procmail["pipes"]) == (["archive@verify.example.org"],
                                                           ["/usr/local/bin/autodrm"])


def test_utf8_export_gives_the_same_snapshot_as_utf16(tmp_path):
    a = Workspace(write_sample_workspace(tmp_path / "a", utf16=True))
    b = Workspace(write_sample_workspace(tmp_path / "b", utf16=False))
    digest_a = store.snapshot_digest(collected(a)[0].values())
    assert digest_a == store.snapshot_digest(collected(b)[0].values())


def test_bad_row_at_the_end_stores_no_snapshot(workspace):
    path = workspace.path("inventory/Get-Mailbox.csv")
    text = path.read_bytes().decode("utf-16")
    path.write_bytes((text + '"x","X","x","amira.haddad@example.org","","UserMailbox","","",'
                      '"False",""\r\n').encode("utf-16"))
    state = State.open(workspace.state_path)
    with pytest.raises(ValidationFailed) as caught:
        collect_and_store(workspace, state, now=NOW)
    last_line = len(text.splitlines()) + 1  # the row appended after the whole export
    assert caught.value.lines() == [
        f"inventory/Get-Mailbox.csv:{last_line}: duplicate address amira.haddad@example.org"]
    assert store.list_snapshots(state, include_superseded=True) == []


def test_latest_recipients_select_by_class(workspace):
    state = State.open(workspace.state_path)
    collect_and_store(workspace, state, now=NOW)
    verification = [r["address"] for r in store.latest_recipients(state)
                    if r["class"] == "verification"]
    assert len(verification) == 13
    assert "datarequest@example.org" in verification


def test_sampling_reads_the_mailboxes_the_store_has_and_creates_none(tmp_path):
    root = write_sample_workspace(tmp_path / "ws", extra_config={
        "mailstores": {"exchange": {"kind": "maildir", "path": "mail/exchange"}}})
    config = yaml.safe_load((root / "cutover.yaml").read_text())
    config["inventory"]["sources"]["exchange-csv"]["mailstore"] = "exchange"
    (root / "cutover.yaml").write_text(yaml.safe_dump(config))
    workspace = Workspace(root)
    # as the account directory was written, in its own case (addresses are case-insensitive);
    # an account is its Maildir: reading or appending never creates one
    for sub in ("cur", "new", "tmp"):
        (root / "mail" / "exchange" / "DataRequest@example.org" / sub).mkdir(parents=True)
    with workspace.connector("mailstores", "exchange").open("DataRequest@example.org") as box:
        box.create_folder("INBOX")
        box.append("INBOX", [NewMessage(b"From: station-7@example.net\r\nSubject: "
                                        b"DATA_REQUEST 7\r\n\r\nbody\r\n", frozenset(),
                                        NOW)])
    found, warnings = collected(workspace)
    assert warnings == []
    assert sorted(p.name for p in (root / "mail" / "exchange").iterdir()) == [
        "DataRequest@example.org"]
    assert found["datarequest@example.org"]["traits"]["sampled"] == 1
    assert [a for a, r in found.items() if "traits" in r] == ["datarequest@example.org"]
