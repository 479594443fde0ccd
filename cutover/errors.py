"""One exception family. The CLI turns any CutoverError into one `error:` line and its exit code.

The name of each class says what the operator has to fix; `exit_code` follows the contract:
2 for usage, validation, bad input and refusals, 1 for a step or check that found a problem.
"""

from __future__ import annotations

from dataclasses import dataclass


class CutoverError(Exception):
    """Root of every error cutover raises on purpose."""

    exit_code: int = 1


# --- exit 2: the operator's input or the environment must change --------------------------


class UsageError(CutoverError):
    """Bad input: a wrong argument, a missing file, a malformed value."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One located problem in an input file (plan, config, CSV, procmailrc...)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class ValidationFailed(UsageError):
    """A file has one or more located problems; all of them are reported at once."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(problems, key=lambda p: (p.file, p.line, p.message))
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class PlanInvalid(ValidationFailed):
    """The plan YAML does not describe a runnable plan."""


class ConfigInvalid(UsageError):
    """cutover.yaml is missing, malformed, or names something that does not exist."""


class SecretUnavailable(UsageError):
    """A credential reference (env/NAME, file/PATH) cannot be resolved."""


class StateUnusable(UsageError):
    """The state database is corrupt, foreign, newer than this cutover, or not writable."""


class WorkspaceLocked(UsageError):
    """Another run/resume/rollback holds the workspace lock."""


class UnsafeChange(UsageError):
    """The change exceeds a safety threshold; --force passes it."""


class RollbackRefused(UsageError):
    """The step cannot be rolled back now (never ran, or dependents are applied)."""


class PreviewChanged(UsageError):
    """The step's preview differs from the one the operator reviewed (--expect-hash)."""


class ConfirmationRequired(UsageError):
    """The operator did not confirm (no --yes and no terminal to ask)."""


class ConnectionFailed(UsageError):
    """A server could not be reached (unknown host, refused, timed out)."""


class AuthenticationFailed(UsageError):
    """A server refused the credentials (wrong password, wrong TSIG key)."""


class NotFound(UsageError):
    """Something named does not exist: a folder, a zone, a mailbox, a step."""


class CapabilityMissing(UsageError):
    """A connector lacks a capability a step needs; raised at preview, before any change."""


# --- exit 1: the work ran and found a problem ------------------------------------------------


class StepFailed(CutoverError):
    """A step's apply failed; its checkpoint allows resume or rollback."""


class VerificationFailed(CutoverError):
    """The world does not show what the step applied (or what a rollback restored)."""


class WorldChanged(CutoverError):
    """Something changed since the preview (an RFC 2136 prerequisite failed, say); nothing was
    overwritten."""
