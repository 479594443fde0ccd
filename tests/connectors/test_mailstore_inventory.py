"""The mailstore inventory source against real Dovecot over IMAP (tests/servers/dovecot.py)."""

import yaml

from cutover.inventory.collect import collection
from cutover.workspace import Workspace

STATION = (b"From: aks01@stations.example.net\r\nTo: {user}\r\nSubject: AKS01 STATION STATUS "
           b"REPORT NOMINAL\r\nAuto-Submitted: auto-generated\r\nPrecedence: bulk\r\n"
           b"Date: Tue, 01 Sep 2026 08:00:00 +0000\r\n\r\nBEGIN IMS2.0\r\nSTOP\r\n")
REQUEST = (b"From: analyst1@ndc.example.net\r\nTo: {user}\r\nSubject: DATA_REQUEST AKS01 "
           b"2026-09-01\r\nDate: Tue, 01 Sep 2026 09:00:00 +0000\r\n\r\nBEGIN IMS2.0\r\n")


def workspace_for(tmp_path, dovecot, users, password_file):
    config = {
        "mailstores": {"linux": {"kind": "imap",
                                 "url": f"imap://{{user}}@127.0.0.1:{dovecot.imap_port}",
                                 "password": f"file/{password_file}"}},
        "inventory": {"sources": {"linux": {"kind": "mailstore", "store": "linux",
                                            "accounts": users, "sample": 10}},
                      "classification": {"rules": [
                          {"name": "lab-traffic", "class": "verification",
                           "match": {"type": ["mailbox"], "automated_share_at_least": 0.9}}]}},
    }
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump(config))
    return Workspace(tmp_path)


def test_imap_accounts_are_inventoried_with_folders_and_traits(tmp_path, dovecot):
    from tests.servers.dovecot import PASSWORD

    stations = dovecot.add_user("inv-stations")
    requests = dovecot.add_user("inv-requests")
    for _ in range(3):
        dovecot.deliver(stations, STATION.replace(b"{user}", stations.encode()))
    dovecot.deliver(requests, REQUEST.replace(b"{user}", requests.encode()))
    secret = tmp_path / "imap.pw"
    secret.write_text(PASSWORD)
    secret.chmod(0o600)
    workspace = workspace_for(tmp_path, dovecot, [stations, requests], secret)
    run = collection(workspace)
    found = {r["address"]: r for r in run.recipients()}
    assert run.warnings == []
    station = found[stations]
    assert station["items"] == 3 and station["size_bytes"] > 0
    assert any(f["name"] == "INBOX" and f["messages"] == 3 for f in station["folders"])
    assert station["traits"]["automated_share"] == 1.0
    assert (station["class"], station["rule"]) == ("verification", "lab-traffic")
    request = found[requests]
    assert request["traits"]["subject_share"] == 1.0
    assert (request["class"], request["destination"]) == ("verification", "linux")
    assert request["rule"] == "verification-subjects"
