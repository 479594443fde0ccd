"""The `pwsh_replay` fixture: a replaying stand-in `pwsh` first on PATH (see pwsh_standin.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

RECORDED = Path(__file__).parent / "recorded" / "pwsh"
STANDIN = Path(__file__).parent / "pwsh_standin.py"


class PwshReplay:
    def __init__(self, bin_dir: Path, log: Path, monkeypatch: pytest.MonkeyPatch):
        self.bin_dir = bin_dir
        self.log = log
        self.monkeypatch = monkeypatch

    def use(self, recording: str) -> None:
        """Answer from tests/recorded/pwsh/<recording>.yaml."""
        path = RECORDED / f"{recording}.yaml"
        assert path.exists(), path
        self.monkeypatch.setenv("CUTOVER_PWSH_RECORDING", str(path))

    def entries(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def commands(self) -> list[str]:
        return [entry["command"] for entry in self.entries() if "command" in entry]

    def secrets_in_environment(self) -> list[str]:
        return [name for entry in self.entries() for name in
                entry.get("secrets_in_environment", [])]


@pytest.fixture
def pwsh_replay(tmp_path_factory, monkeypatch) -> PwshReplay:
    bin_dir = tmp_path_factory.mktemp("pwsh-bin")
    shim = bin_dir / "pwsh"
    shim.write_text(f"#!/bin/sh\nexec {sys.executable} {STANDIN} \"$@\"\n")
    shim.chmod(0o755)
    log = bin_dir / "commands.jsonl"
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ.get('PATH', '')}")
    monkeypatch.setenv("CUTOVER_PWSH_LOG", str(log))
    return PwshReplay(bin_dir, log, monkeypatch)
