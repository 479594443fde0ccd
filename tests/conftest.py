"""Shared fixtures. Server fixtures live in tests/servers/ and are plugged in here."""

pytest_plugins = [
    "tests.servers.dovecot",
    "tests.servers.bind",
    "tests.servers.cyrus",
    "tests.sample_snapshots",
]
