"""Fixtures of the connector tests."""

from tests.pwsh_replay import pwsh_replay  # noqa: F401 - the replaying pwsh fixture
