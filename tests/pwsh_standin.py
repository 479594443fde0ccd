"""A stand-in `pwsh` that replays recorded cmdlet output (pwsh cannot run here).

Started as `pwsh -NoLogo -NoProfile -NonInteractive -Command -` by the session under test (the
`pwsh_replay` fixture puts a `pwsh` shim first on PATH). It reads the session's lines from
stdin, as pwsh would: the bootstrap is accepted, each request line
`... try { $__cutover.result = @(CMDLET); ... } ... Write-CutoverEnvelope -Marker 'M' ...` is
answered from the recording named by CUTOVER_PWSH_RECORDING, `exit` ends it.

A recording (tests/recorded/pwsh/*.yaml) is a list of exchanges, used in order:

    - command: '^Get-MigrationBatch -Identity ''phase2-people'''   # a regex on the cmdlet text
      output: '[{"Identity":"phase2-people","Status":"Syncing",...}]'  # ConvertTo-Json -Compress
      noise: ["WARNING: ..."]                                       # lines printed before it
    - command: '^New-MigrationBatch '
      error: {message: "...", error_id: "...", category: "..."}      # what the catch block saw
      repeat: 2                                                       # answer 2 times (default 1)

The first unused exchange whose regex matches answers; an unmatched cmdlet gets an error naming
it, so a test fails on a cmdlet nobody recorded. Every cmdlet text received, and whether the
secrets the session handed over are in the environment (never their values), is appended to
CUTOVER_PWSH_LOG.
"""

from __future__ import annotations

import json
import os
import re
import sys

import yaml

REQUEST = re.compile(r"\$__cutover\.result = @\((?P<command>.*)\); \$__cutover\.ok = \$true \}"
                     r".*-Marker '(?P<marker>[^']+)'")
SECRET_VARIABLES = ("CUTOVER_EXO_CERT_PASSWORD", "CUTOVER_EXO_MRS_PASSWORD",
                    "CUTOVER_EXCHANGE_SHELL_PASSWORD")


def load(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as stream:
        exchanges = yaml.safe_load(stream) or []
    for exchange in exchanges:
        exchange["left"] = int(exchange.get("repeat", 1))
    return exchanges


def answer(exchanges: list[dict], command: str) -> tuple[dict, list[str]]:
    for exchange in exchanges:
        if exchange["left"] > 0 and re.search(exchange["command"], command):
            exchange["left"] -= 1
            if "error" in exchange:
                return {"ok": False, "error": exchange["error"]}, exchange.get("noise", [])
            return {"ok": True, "result": json.loads(exchange.get("output", "[]"))}, \
                exchange.get("noise", [])
    return {"ok": False, "error": {"message": f"pwsh stand-in: no recording for: {command}",
                                   "error_id": "NotRecorded", "category": "NotImplemented"}}, []


def main() -> int:
    exchanges = load(os.environ["CUTOVER_PWSH_RECORDING"])
    log_path = os.environ.get("CUTOVER_PWSH_LOG")
    present = [name for name in SECRET_VARIABLES if os.environ.get(name)]
    with open(log_path or os.devnull, "a", encoding="utf-8") as log:
        log.write(json.dumps({"started": True, "secrets_in_environment": present}) + "\n")
        for line in sys.stdin:
            line = line.rstrip("\n")
            if line == "exit":
                break
            found = REQUEST.search(line)
            if not found:
                continue  # the bootstrap, or anything else a session may define
            command = found.group("command")
            log.write(json.dumps({"command": command}) + "\n")
            log.flush()
            envelope, noise = answer(exchanges, command)
            for text in noise:
                print(text)
            envelope["exported"] = "2026-03-14T08:15:02.1234567Z"
            marker = found.group("marker")
            print(f"{marker}:json:{json.dumps(envelope, separators=(',', ':'))}")
            print(f"{marker}:end", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
