"""Fixtures of the step tests."""

from tests.pwsh_replay import pwsh_replay  # noqa: F401 - the replaying pwsh fixture
from tests.steps.hybrid_sample import after_phase1, agency  # noqa: F401 - sample fixtures
