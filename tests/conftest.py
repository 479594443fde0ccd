"""Shared fixtures. Server fixtures live in tests/servers/ and are plugged in here."""

import pytest

pytest_plugins = [
    "tests.servers.dovecot",
    "tests.servers.bind",
    "tests.servers.cyrus",
    "tests.sample_snapshots",
]


@pytest.fixture(autouse=True)
def own_copy_locks(tmp_path_factory, monkeypatch):
    """Each test takes its copy locks in a directory of its own: the host-wide default
    (/tmp/cutover-locks) would let two suite workers copying into the same recorded Graph
    mailbox refuse each other. A subprocess a test starts inherits the setting."""
    monkeypatch.setenv("CUTOVER_LOCK_DIR", str(tmp_path_factory.mktemp("locks")))
