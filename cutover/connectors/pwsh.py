"""One PowerShell session per run, cmdlets sent one at a time, results as JSON.

Exchange is managed through cmdlets: Exchange Online through the ExchangeOnlineManagement module
(`Connect-ExchangeOnline`, app-only), on-premises Exchange through the Exchange Management Shell's
remote PowerShell endpoint. Both connectors (`exo`, `exchange-shell`) speak to a `pwsh` they
start once and keep for the run: connecting costs seconds, a cmdlet tens of milliseconds.

The conversation, one line each way per cmdlet:

- at start, a bootstrap defines `Write-CutoverEnvelope` (and makes every error terminating,
  progress bars silent), then the connector's connect cmdlets run like any other;
- each cmdlet is sent as one line, `try { $__cutover.result = @(CMDLET) ... } catch { ... };
  Write-CutoverEnvelope -Marker M ...`, at the session's top level (a connection or an
  imported session stays for the next cmdlet); pwsh answers with one line `M:json:{envelope}`
  (`ConvertTo-Json -Depth N -Compress -EnumsAsStrings` of `{ok, result: [...], error:
  {message, error_id, category, target}, exported}`) and a line `M:end`. M is unique per
  cmdlet, so output of an earlier cmdlet (a banner, a warning) can never be taken for this
  one's; lines without the marker are noise.

Errors become one-line `CmdletFailed` naming the cmdlet and the identity it acted on. "Server
busy" and throttling answers are retried with exponential back-off (tenacity), honouring a
"wait N seconds" the server names. Credentials never appear in a command: the connector hands
secrets to the pwsh process as environment variables and the connect cmdlet reads `$env:...`;
what is logged or recorded is the command text only.

`render` mode is the same conversation on paper, for sites where pwsh cannot run here (or the
operator prefers to run scripts themselves): `RenderedSession` writes each cmdlet as a script
that exports the same envelope to a JSON file (`Export-Csv` output is read too), shows it, and
raises `OperatorActionRequired` until the exported file exists; the next `cutover resume` (or
run) reads it through the same parsing. Checkpoints and status are the runner's, unchanged.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import queue
import re
import shutil
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from cutover.errors import ConnectionFailed, CutoverError, NotFound, UsageError
from cutover.files import atomic_write

DEFAULT_DEPTH = 6
DEFAULT_TIMEOUT_S = 900.0
THROTTLE_ATTEMPTS = 6

BOOTSTRAP = (
    "$ErrorActionPreference = 'Stop'; $ProgressPreference = 'SilentlyContinue'; "
    "$WarningPreference = 'SilentlyContinue'; $InformationPreference = 'SilentlyContinue'; "
    "function ConvertTo-CutoverError { param($Record) [ordered]@{ "
    "message = \"$($Record.Exception.Message)\"; error_id = \"$($Record.FullyQualifiedErrorId)\"; "
    "category = \"$($Record.CategoryInfo.Category)\"; target = \"$($Record.TargetObject)\" } }; "
    "function Write-CutoverEnvelope { param([string]$Marker, [int]$Depth, $Envelope, "
    "[string]$OutFile) "
    "$Envelope.exported = (Get-Date).ToUniversalTime().ToString('o'); "
    "$json = ConvertTo-Json -InputObject $Envelope -Depth ($Depth + 2) -Compress "
    "-EnumsAsStrings; "
    "if ($OutFile) { Set-Content -LiteralPath $OutFile -Value $json -Encoding utf8 } "
    "else { [Console]::Out.WriteLine(\"$($Marker):json:$json\"); "
    "[Console]::Out.WriteLine(\"$($Marker):end\") } }"
)


def request_line(marker: str, depth: int, command: str, out_file: str | None = None) -> str:
    """One cmdlet at the session's top level (so a connect or an imported session stays for
    the next cmdlets), its output or error wrapped into the envelope."""
    target = f" -OutFile {out_file}" if out_file else ""
    return ("$__cutover = [ordered]@{}; "
            f"try {{ $__cutover.result = @({command}); $__cutover.ok = $true }} "
            "catch { $__cutover.ok = $false; $__cutover.error = ConvertTo-CutoverError $_ }; "
            f"Write-CutoverEnvelope -Marker '{marker}' -Depth {depth} -Envelope $__cutover"
            f"{target}")


#: Answers that mean "later, not never" (EXO REST throttling, on-premises runspace budgets,
#: MicroDelay back-pressure, an HTTP 429/503 relayed by the module).
THROTTLED = re.compile(
    r"server (is )?busy|ServerBusy|throttl|TooManyRequests|\b429\b|\b503\b|"
    r"exceeded your budget|MicroDelay|try again later|temporarily unavailable", re.I)
WAIT_SECONDS = re.compile(
    r"(?:wait|after|retry in)\s+(?:for\s+)?(\d+)\s*(?:more\s+)?s(?:ec|econds?)?", re.I)
NOT_FOUND = re.compile(
    r"ManagementObjectNotFoundException|ObjectNotFound|couldn't be found|can't be found|"
    r"could not be found|doesn't exist|wasn't found", re.I)


# --- errors ------------------------------------------------------------------------------------


class CmdletFailed(CutoverError):
    """A cmdlet answered with an error: the message names the cmdlet and the identity."""

    def __init__(self, cmdlet: str, identity: str, message: str, error_id: str = "",
                 category: str = ""):
        self.cmdlet = cmdlet
        self.identity = identity
        self.reason = message
        self.error_id = error_id
        self.category = category
        where = f"{cmdlet} {identity}".strip()
        super().__init__(f"{where}: {_one_line(message)}")

    @property
    def not_found(self) -> bool:
        return bool(NOT_FOUND.search(f"{self.error_id} {self.category} {self.reason}"))


class CmdletThrottled(CmdletFailed):
    """The service asked us to come back later; retried, then raised if it keeps asking."""

    @property
    def wait_hint_s(self) -> float | None:
        found = WAIT_SECONDS.search(self.reason)
        return float(found.group(1)) if found else None


class OperatorActionRequired(UsageError):
    """Render mode: a script waits to be run by the operator; its exported result is read when
    cutover runs again (`cutover resume`)."""


class PwshUnavailable(UsageError):
    """No pwsh on this machine: install PowerShell 7 or use `mode: render`."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# --- commands as text ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """A PowerShell expression written as is (a variable such as `$OnPremCredential`)."""

    text: str


class _Switch:
    """A switch parameter, written bare (`-AutoStart`); a bool is written `-Enabled:$true`."""

    def __repr__(self) -> str:
        return "SWITCH"


SWITCH = _Switch()


@dataclass(frozen=True)
class Data:
    """A byte-array parameter (`-CSVData`): base64 inline in a live session, a file beside the
    script in render mode (the documented `[System.IO.File]::ReadAllBytes(...)` form)."""

    content: bytes
    filename: str = "data.csv"


def quote(value: Any) -> str:
    """A Python value as a PowerShell literal: strings single-quoted (quotes doubled), so no
    `$`-expansion or subexpression can happen inside a value."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, Data):
        encoded = base64.b64encode(value.content).decode()
        return f"([System.Convert]::FromBase64String('{encoded}'))"
    if value is None:
        return "$null"
    if isinstance(value, bool):
        return "$true" if value else "$false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return quote(moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    if isinstance(value, Mapping):
        pairs = "; ".join(f"{key}={quote(item)}" for key, item in value.items())
        return "@{" + pairs + "}"
    if isinstance(value, (list, tuple, set, frozenset)):
        return "@(" + ",".join(quote(item) for item in value) + ")"
    text = str(value).replace("\r", " ").replace("\n", " ")
    text = text.replace("'", "''").replace("\u2018", "''").replace("\u2019", "''")
    return f"'{text}'"


@dataclass(frozen=True)
class Cmdlet:
    """One cmdlet invocation: name and parameters, in the order written."""

    name: str
    params: tuple[tuple[str, Any], ...] = ()
    #: what the error message names ("phase2-people", "alice@example.org"); default: the
    #: -Identity or -Name parameter
    subject: str = ""
    #: reads may be answered again (render mode: an export not older than `max_age`)
    reads: bool = True
    #: cmdlets the output is piped into (`Get-MigrationUser ... | Get-MigrationUserStatistics`)
    pipe: tuple[Cmdlet, ...] = ()

    @classmethod
    def of(cls, name: str, params: Mapping[str, Any] | None = None, *, subject: str = "",
           reads: bool | None = None, pipe: tuple[Cmdlet, ...] = ()) -> Cmdlet:
        pairs = tuple((key, value) for key, value in (params or {}).items()
                      if value is not None)
        is_read = name.split("-", 1)[0] in ("Get", "Test") if reads is None else reads
        return cls(name, pairs, subject, is_read, pipe)

    @property
    def identity(self) -> str:
        if self.subject:
            return self.subject
        for key in ("Identity", "Name"):
            for name, value in self.params:
                if name == key:
                    return str(value.text if isinstance(value, Raw) else value)
        return ""

    def text(self, data: Callable[[Data], str] = quote) -> str:
        parts = [self.name]
        for key, value in self.params:
            if value is SWITCH:
                parts.append(f"-{key}")
            elif isinstance(value, bool):
                parts.append(f"-{key}:{quote(value)}")
            elif isinstance(value, Data):
                parts.append(f"-{key} {data(value)}")
            else:
                parts.append(f"-{key} {quote(value)}")
        return " | ".join([" ".join(parts), *(then.text(data) for then in self.pipe)])


# --- envelopes ----------------------------------------------------------------------------------


def parse_envelope(cmdlet: Cmdlet, text: str) -> list[dict[str, Any]]:
    """The objects a cmdlet returned, or the error it raised as CmdletFailed/CmdletThrottled."""
    try:
        envelope = json.loads(text.lstrip("\ufeff"))
    except ValueError:
        raise CmdletFailed(cmdlet.name, cmdlet.identity,
                           "pwsh answered with something that is not JSON") from None
    if not isinstance(envelope, dict):
        raise CmdletFailed(cmdlet.name, cmdlet.identity, "pwsh answered without an envelope")
    if not envelope.get("ok"):
        error = envelope.get("error") or {}
        message = str(error.get("message") or "failed without a message")
        kind = CmdletThrottled if THROTTLED.search(
            f"{message} {error.get('error_id', '')}") else CmdletFailed
        raise kind(cmdlet.name, cmdlet.identity, _strip_exchange_prefix(message),
                   str(error.get("error_id") or ""), str(error.get("category") or ""))
    return as_objects(envelope.get("result"))


def as_objects(result: Any) -> list[dict[str, Any]]:
    """ConvertTo-Json writes one object bare and several as a list; no output is null."""
    if result is None:
        return []
    items = result if isinstance(result, list) else [result]
    return [item for item in items if isinstance(item, dict)]


def _strip_exchange_prefix(message: str) -> str:
    """`Ex6F9304|Microsoft.Exchange...ManagementObjectNotFoundException|The operation ...` keeps
    the exception name for matching but reads as the sentence after it."""
    parts = message.split("|")
    if len(parts) >= 3 and "Exception" in parts[1]:
        return f"{parts[-1].strip()} ({parts[1].rsplit('.', 1)[-1]})"
    return message


def parse_csv_export(text: str) -> list[dict[str, Any]]:
    """What `Export-Csv` wrote (Windows PowerShell 5 adds a #TYPE line and a BOM)."""
    lines = text.lstrip("\ufeff").splitlines()
    if lines and lines[0].startswith("#TYPE"):
        lines = lines[1:]
    return [dict(row) for row in csv.DictReader(io.StringIO("\n".join(lines)))]


# --- sessions -----------------------------------------------------------------------------------


class Session(Protocol):
    def invoke(self, cmdlet: Cmdlet) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


Sleep = Callable[[float], None]


def _throttle_wait(retry_state: RetryCallState) -> float:
    exception = retry_state.outcome.exception() if retry_state.outcome else None
    hint = exception.wait_hint_s if isinstance(exception, CmdletThrottled) else None
    backoff = min(60.0, 2.0 * (2 ** (retry_state.attempt_number - 1)))
    return max(hint or 0.0, backoff)


def with_backoff(call: Callable[[], list[dict[str, Any]]], sleep: Sleep,
                 attempts: int = THROTTLE_ATTEMPTS) -> list[dict[str, Any]]:
    retrying = Retrying(retry=retry_if_exception_type(CmdletThrottled), wait=_throttle_wait,
                        stop=stop_after_attempt(attempts), sleep=sleep, reraise=True)
    return retrying(call)


@dataclass
class PwshSession:
    """A long-lived `pwsh` child: started on the first cmdlet, closed at the end of the run.

    `connect` is the cmdlet that signs in (run once, right after the bootstrap); `secrets` are
    handed to the child's environment only."""

    connect: list[Cmdlet] = field(default_factory=list)
    secrets: Mapping[str, str] = field(default_factory=dict)
    executable: str = "pwsh"
    depth: int = DEFAULT_DEPTH
    timeout_s: float = DEFAULT_TIMEOUT_S
    sleep: Sleep = field(default=lambda seconds: __import__("time").sleep(seconds))
    log: Callable[[str], None] = field(default=lambda line: None)
    _process: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _lines: queue.Queue | None = field(default=None, init=False, repr=False)

    def invoke(self, cmdlet: Cmdlet) -> list[dict[str, Any]]:
        self._ensure_started()
        return with_backoff(lambda: self._exchange(cmdlet), self.sleep)

    def close(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin:
                process.stdin.write("exit\n")
                process.stdin.close()
            process.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            process.kill()
            process.wait()

    # the one seam that starts a process
    def _start_process(self) -> subprocess.Popen:
        path = shutil.which(self.executable)
        if path is None:
            raise PwshUnavailable(f"{self.executable} not found on PATH: install PowerShell 7 "
                                  "with the ExchangeOnlineManagement module, or set "
                                  "`mode: render` to run the cmdlets yourself")
        env = dict(os.environ)
        env.update(self.secrets)
        return subprocess.Popen([path, "-NoLogo", "-NoProfile", "-NonInteractive",
                                 "-Command", "-"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                encoding="utf-8", env=env, bufsize=1)

    def _ensure_started(self) -> None:
        if self._process is not None and self._process.poll() is None:
            return
        self._process = self._start_process()
        self._lines = queue.Queue()
        threading.Thread(target=_pump, args=(self._process.stdout, self._lines),
                         daemon=True).start()
        self._send(BOOTSTRAP)
        for cmdlet in self.connect:
            with_backoff(lambda cmdlet=cmdlet: self._exchange(cmdlet), self.sleep)

    def _send(self, line: str) -> None:
        assert self._process is not None and self._process.stdin is not None
        try:
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
        except OSError:
            raise ConnectionFailed("pwsh exited unexpectedly; its session is gone") from None

    def _exchange(self, cmdlet: Cmdlet) -> list[dict[str, Any]]:
        marker = f"CUTOVER-{uuid.uuid4().hex}"
        self.log(cmdlet.text(_data_placeholder))
        self._send(request_line(marker, self.depth, cmdlet.text()))
        payload = None
        while True:
            line = self._next_line(cmdlet)
            if line == f"{marker}:end":
                break
            if line.startswith(f"{marker}:json:"):
                payload = line[len(marker) + 6:]
        if payload is None:
            raise CmdletFailed(cmdlet.name, cmdlet.identity, "pwsh ended the cmdlet without "
                                                             "an answer")
        return parse_envelope(cmdlet, payload)

    def _next_line(self, cmdlet: Cmdlet) -> str:
        assert self._lines is not None
        try:
            line = self._lines.get(timeout=self.timeout_s)
        except queue.Empty:
            self.close()
            raise CmdletFailed(cmdlet.name, cmdlet.identity, f"no answer within "
                                                             f"{self.timeout_s:.0f} s") from None
        if line is None:
            self._process = None
            raise ConnectionFailed(f"pwsh exited during {cmdlet.name}; check the module and "
                                   "the sign-in (run the connect cmdlet by hand)")
        return line


def _pump(stream: Iterable[str], lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.rstrip("\r\n"))
    lines.put(None)


def _data_placeholder(data: Data) -> str:
    return f"<{len(data.content)} bytes: {data.filename}>"


# --- render mode --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedCommand:
    """A script written for the operator, and where cutover reads its result."""

    cmdlet: Cmdlet
    script: Path
    result: Path
    text: str


#: How render mode shows a script (the console; tests collect them). Commands may replace it.
RenderSink = Callable[[RenderedCommand], None]


@dataclass
class RenderedSession:
    """Render mode: each cmdlet becomes a script under `directory`; its exported JSON (or CSV)
    is the answer. A read older than `max_age` is asked again; a change's answer stays valid
    (a change happened once)."""

    directory: Path
    connect: list[Cmdlet] = field(default_factory=list)
    depth: int = DEFAULT_DEPTH
    max_age: timedelta = timedelta(hours=1)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    show: RenderSink | None = None

    def invoke(self, cmdlet: Cmdlet) -> list[dict[str, Any]]:
        rendered = self.render(cmdlet)
        answer = self._answer(rendered)
        if answer is None:
            self._write(rendered)
            if self.show is not None:
                self.show(rendered)
            raise OperatorActionRequired(
                f"{cmdlet.name} {cmdlet.identity}".strip() + f": run {rendered.script} in "
                "PowerShell (it signs in, runs the cmdlet and exports its result to "
                f"{rendered.result.name}), then `cutover resume`")
        return answer

    def close(self) -> None:
        return None

    def render(self, cmdlet: Cmdlet) -> RenderedCommand:
        digest = hashlib.sha256(cmdlet.text().encode()).hexdigest()[:10]
        stem = f"{cmdlet.name}-{_file_safe(cmdlet.identity)}-{digest}".strip("-")
        script = self.directory / f"{stem}.ps1"
        result = self.directory / f"{stem}.json"

        def data_file(data: Data) -> str:
            return (f"([System.IO.File]::ReadAllBytes((Join-Path $PSScriptRoot "
                    f"{quote(f'{stem}-{data.filename}')})))")

        connect = "\n".join(c.text() for c in self.connect)
        text = (f"# cutover: run in PowerShell 7 (or the Exchange Management Shell)\n"
                f"{connect}\n{BOOTSTRAP}\n"
                + request_line("render", self.depth, cmdlet.text(data_file),
                               f"(Join-Path $PSScriptRoot '{result.name}')") + "\n")
        return RenderedCommand(cmdlet, script, result, text)

    def _write(self, rendered: RenderedCommand) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write(rendered.script, rendered.text)
        for _, value in rendered.cmdlet.params:
            if isinstance(value, Data):
                atomic_write(rendered.script.with_name(
                    f"{rendered.script.stem}-{value.filename}"), value.content)

    def _answer(self, rendered: RenderedCommand) -> list[dict[str, Any]] | None:
        csv_path = rendered.result.with_suffix(".csv")
        if rendered.result.exists():
            text = rendered.result.read_text(encoding="utf-8-sig")
            try:
                exported = json.loads(text).get("exported")
            except (ValueError, AttributeError):
                exported = None
            if rendered.cmdlet.reads and self._stale(exported):
                return None
            return parse_envelope(rendered.cmdlet, text)
        if csv_path.exists():
            if rendered.cmdlet.reads and self._stale_file(csv_path):
                return None
            return parse_csv_export(csv_path.read_text(encoding="utf-8-sig"))
        return None

    def _stale(self, exported: str | None) -> bool:
        if not exported:
            return False
        try:
            moment = datetime.fromisoformat(exported.replace("Z", "+00:00"))
        except ValueError:
            return False
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return self.clock() - moment > self.max_age

    def _stale_file(self, path: Path) -> bool:
        moment = datetime.fromtimestamp(path.stat().st_mtime, UTC)
        return self.clock() - moment > self.max_age


def _file_safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9@._-]+", "_", text)[:60]


# --- configuration shared by both connectors -----------------------------------------------------


def session_from_config(config: Mapping[str, Any], workspace: Any, connect: list[Cmdlet],
                        secrets: Mapping[str, str], what: str) -> Session:
    """`mode: live` (default) starts pwsh; `mode: render` writes scripts under `render_dir`."""
    mode = config.get("mode", "live")
    if mode == "render":
        directory = workspace.path(config.get("render_dir", f"runbooks/powershell/{what}"))
        return RenderedSession(directory, connect=connect,
                               max_age=timedelta(minutes=float(
                                   config.get("render_max_age_minutes", 60))))
    if mode != "live":
        raise UsageError(f"cutover.yaml: management ({what}): mode must be live or render, "
                         f"not {mode!r}")
    return PwshSession(connect=connect, secrets=secrets,
                       executable=str(config.get("pwsh", "pwsh")),
                       timeout_s=float(config.get("timeout_s", DEFAULT_TIMEOUT_S)))


def lookup(session: Session, cmdlet: Cmdlet) -> list[dict[str, Any]]:
    """A Get- cmdlet where "not found" is an answer (an empty list), not an error."""
    try:
        return session.invoke(cmdlet)
    except CmdletFailed as exc:
        if exc.not_found:
            return []
        raise


def require(found: list[dict[str, Any]], what: str) -> dict[str, Any]:
    if not found:
        raise NotFound(f"{what} does not exist")
    return found[0]
