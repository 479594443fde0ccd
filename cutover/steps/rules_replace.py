"""Step kind `rules.replace`: replace an account's Procmail rules by the equivalent Sieve script.

    - id: replace-procmail
      kind: rules.replace
      for_each: {class: verification}
      params:
        procmailrc: "procmail/{address}/.procmailrc"   # workspace-relative template
        sieve: linux                                    # cutover.yaml sieve connector
        account: "{local}@verify.example.org"
        messages: "samples/{address}/"                  # sample mail (or mailstore: + mailbox:)

Per account: convert the procmailrc (untranslatable rules refuse the step at preview), run the
differential verifier (real procmail vs sieve-test) over the sample, install the programs the
conversion generated, upload and activate the script, then disable Procmail by renaming
`.procmailrc` to `.procmailrc.replaced-by-sieve`. Preview refuses an account whose rules
disagree on any sample message (`--force` passes); verify checks the store, the programs, the
files and runs the verifier again.

Preview also refuses, in one line each:
- a script that `require`s an extension the server does not enable for personal scripts (the
  store's `extensions`: ManageSieve's SIEVE capability, i.e. Dovecot's `sieve_extensions`;
  `sieve_global_extensions` does not count), naming the setting to add;
- a script that runs a generated program (`Conversion.programs`) through `pipe`, `filter` or
  `execute` while the sieve connector has no `pipe_bin_dir` / `filter_bin_dir` /
  `execute_bin_dir` (ManageSieve cannot upload programs; the twin has its own directory);
- a program of the same name already in such a directory with other content that cutover
  did not write for this account (`.cutover-programs.json` there lists what it wrote, for
  whom, and whose scripts run it): someone else's program, or another account's, is never
  overwritten. A program several accounts run with the same content is shared: rolling one
  of them back leaves it to the others (the last one puts the directory back).
A program goes into the directory of each way the script runs it (both, if two), written
atomically with mode 0755 before the script that needs it is activated.

`before` holds the previously active script's name, the prior content of the script name
used (or null), each program file's prior bytes and mode (or null: absent) and the procmail
files byte for byte (base64), so a rollback reactivates the previous script (or none), puts
the program files back as they were and `.procmailrc` back exactly. Apply and rollback refuse
(unless forced) a program file that is neither what the preview saw nor what cutover wrote.
The safety gate's observation leaves programs out (a crash between installing them and
activating the script must stay resumable); verify checks their bytes and modes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from cutover.connectors.sieve_store import (
    PROGRAM_EXTENSIONS,
    PROGRAM_KINDS,
    ProgramDirectory,
    SieveStore,
    check_name,
    normalised,
    program_uses,
    required_extensions,
    restore_script,
)
from cutover.errors import NotFound, UnsafeChange, UsageError
from cutover.files import atomic_write
from cutover.item_template import expand
from cutover.rules.convert import Conversion, convert
from cutover.rules.differential import ToolMissing, message_files, require_tool, verify
from cutover.steps.base import Change, Context, Finding, Params, Step, register

ASIDE_SUFFIX = ".replaced-by-sieve"


class RulesDisagree(UnsafeChange):  # kept for callers; the runner's gate now refuses
    """procmail and the converted Sieve script file some sample message differently."""


class RulesUntranslatableForStep(UsageError):
    """The account's procmailrc has rules Sieve cannot express, or syntax errors."""


class SieveExtensionsMissing(UsageError):
    """The Sieve server does not enable, for personal scripts, an extension the script needs."""


class SieveProgramDirMissing(UsageError):
    """The script runs generated programs and the sieve connector has nowhere to put them."""


class SieveProgramClash(UsageError):
    """A program file cutover did not write is in the way of one it must install."""


PROGRAM_MODE = 0o755


class RulesReplaceParams(Params):
    procmailrc: str
    sieve: str
    account: str = "{address}"
    script: str = "procmail"
    home: str | None = None
    maildir_root: str | None = None
    messages: str | None = None
    mailstore: str | None = None
    mailbox: str = "{address}"
    sample: int = Field(default=50, ge=1, le=10000)
    #: "required": no switch without the differential proof. "when-available": a machine
    #: without procmail or sieve-test (a demo laptop) converts and deploys anyway, and verify
    #: says, as a warning, that nothing was compared.
    differential: Literal["required", "when-available"] = "required"


def _encode(path: Path) -> dict[str, Any]:
    return {"base64": base64.b64encode(path.read_bytes()).decode(),
            "mode": path.stat().st_mode & 0o7777}


def _decode(entry: dict[str, Any]) -> bytes:
    return base64.b64decode(entry["base64"])


class _Account:
    """The for_each item's paths, store and script name, expanded once."""

    def __init__(self, ctx: Context):
        params: RulesReplaceParams = ctx.params
        self.rc_relative = expand(params.procmailrc, ctx.item)
        self.rc = ctx.workspace.path(self.rc_relative)
        self.aside = self.rc.with_name(self.rc.name + ASIDE_SUFFIX)
        self.home = ctx.workspace.path(expand(params.home, ctx.item)) if params.home \
            else self.rc.parent
        if not self.rc.is_relative_to(self.home):
            raise UsageError(f"{self.rc} is not under home {self.home}")
        self.address = expand(params.account, ctx.item)
        self.script = check_name(params.script)
        self.store: SieveStore = ctx.connector("sieve", params.sieve)

    def source(self) -> Path:
        """The procmailrc as it is now: in place, or already moved aside by this step."""
        for candidate in (self.rc, self.aside):
            if candidate.is_file():
                return candidate
        raise NotFound(f"procmailrc not found: {self.rc}")


def _convert(account: _Account, maildir_root: str | None) -> Conversion:
    conversion = convert(account.source(), account.home, maildir_root,
                         label=account.rc_relative)
    problems = conversion.syntax_problems + conversion.gaps
    if problems:
        raise RulesUntranslatableForStep(
            f"{account.address}: {problems[0]} ({len(problems)} rule(s) cannot be converted; "
            "run `cutover rules convert` to see them all)")
    return conversion


def _procmail_files(account: _Account, conversion: Conversion) -> dict[str, Any]:
    files: dict[str, Any] = {}
    for name in conversion.files:
        path = Path(name)
        relative = account.rc.relative_to(account.home) if path == account.aside else \
            path.relative_to(account.home)
        files[relative.as_posix()] = _encode(path)
    return files


@register
class RulesReplace(Step):
    kind = "rules.replace"
    Params = RulesReplaceParams
    summary = "Replace an account's Procmail rules with the equivalent Sieve script"

    def preview(self, ctx: Context) -> list[Change]:
        params: RulesReplaceParams = ctx.params
        account = _Account(ctx)
        conversion = _convert(account, params.maildir_root)
        programs_before, programs_after = _program_plan(ctx, account, conversion)
        active = account.store.active(account.address)
        existing = account.store.get(account.address, account.script)
        procmail_enabled = account.rc.is_file()
        if (not procmail_enabled and active == account.script
                and normalised(existing) == normalised(conversion.script)
                and programs_before == programs_after):
            return []
        _refuse_missing_extensions(account, conversion.script)
        files = _procmail_files(account, conversion)
        rc_key = account.rc.relative_to(account.home).as_posix()
        missing = _missing_tool(ctx)
        if missing:
            ctx.log(f"{account.address}: {missing}; deploying without the differential proof")
        proof = _agreement(ctx, files, rc_key, conversion.script)
        disagreement = None
        if proof is not None and proof["disagreements"]:
            first = proof["disagreements"][0]
            disagreement = (f"{account.address}: {proof['summary']}; e.g. {first['message']}: "
                            f"procmail {first['procmail']}, sieve {first['sieve']}")
        common = {"account": account.address, "script_name": account.script,
                  "procmailrc": account.rc_relative, "rc_key": rc_key,
                  "maildir_root": conversion.maildir_root, "procmail_files": files}
        before = {**common, "active": active, "script": existing,
                  "procmail_enabled": procmail_enabled, "programs": programs_before}
        after = {**common, "active": account.script, "script": conversion.script,
                 "procmail_enabled": False, "programs": programs_after}
        if disagreement:  # the runner's safety gate refuses it unless --force
            after["disagreement"] = disagreement
        if proof is not None:  # verify reuses it while script and sample are unchanged
            after["proof"] = proof
        digest = hashlib.sha256(conversion.script.encode()).hexdigest()[:12]
        installs = [entry["path"] for entry, prior in zip(programs_after, programs_before,
                                                          strict=True) if entry != prior]
        install = f"install program(s) {', '.join(installs)}; " if installs else ""
        return [Change(account.address, "update" if active or existing else "create", before,
                       after, f"{account.address}: {install}activate Sieve script "
                              f"{account.script} (sha256 {digest}) converted from "
                              f"{account.rc_relative}; disable Procmail")]

    def apply(self, ctx: Context, change: Change) -> None:
        state = change.after
        store: SieveStore = ctx.connector("sieve", ctx.params.sieve)
        address, name = state["account"], state["script_name"]
        # the programs first: the script that runs them is not active before they are there
        for entry, prior in zip(state.get("programs", []), change.before.get("programs", []),
                                strict=True):
            _install_program(ctx, address, entry, prior)
        if normalised(store.get(address, name)) != normalised(state["script"]):
            store.put(address, name, state["script"])
        if store.active(address) != name:
            store.activate(address, name)
        rc = ctx.workspace.path(state["procmailrc"])
        if rc.is_file():
            os.replace(rc, rc.with_name(rc.name + ASIDE_SUFFIX))

    def verify(self, ctx: Context, changes: list[Change]) -> list[Finding]:
        findings: list[Finding] = []
        store: SieveStore = ctx.connector("sieve", ctx.params.sieve)
        for change in changes:
            state = change.after
            if state is None:
                continue
            findings += _check_store(store, state)
            findings += _check_programs(state)
            findings += _check_procmail(ctx, state)
            if not state["procmail_enabled"]:
                deployed = store.get(state["account"], state["script_name"])
                findings += _check_agreement(ctx, state, deployed or "")
        return findings

    def unsafe_reasons(self, ctx: Context, changes: list[Change]) -> list[str]:
        """Rules whose Sieve translation disagrees with procmail on a sample message."""
        return [f"rules disagree: {change.after['disagreement']}" for change in changes
                if change.after and change.after.get("disagreement")]

    def observe(self, ctx: Context, change: Change) -> Any:
        state = change.after or change.before
        store: SieveStore = ctx.connector("sieve", ctx.params.sieve)
        return {"active": store.active(state["account"]),
                "script": store.get(state["account"], state["script_name"]),
                "procmail_enabled": ctx.workspace.path(state["procmailrc"]).is_file()}

    def comparable(self, payload: Any) -> Any:
        if payload is None:
            return None
        return {"active": payload.get("active"), "script": normalised(payload.get("script")),
                "procmail_enabled": payload.get("procmail_enabled")}

    def describe_state(self, payload: Any) -> str:
        now = self.comparable(payload) or {}
        rc = "procmail enabled" if now.get("procmail_enabled") else "procmail disabled"
        text = now.get("script")
        digest = hashlib.sha256(text.encode()).hexdigest()[:12] if text else "absent"
        return f"active Sieve script {now.get('active')!r} (text sha256 {digest}), {rc}"

    def rollback(self, ctx: Context, change: Change) -> None:
        state = change.before
        store: SieveStore = ctx.connector("sieve", ctx.params.sieve)
        restore_script(store, state["account"], state["script_name"], state["script"],
                       state["active"])
        # the script that ran them is no longer active: now the programs can go back
        for entry, applied in zip(state.get("programs", []), change.after.get("programs", []),
                                  strict=True):
            _restore_program(ctx, state["account"], entry, applied)
        if state["procmail_enabled"]:
            _restore_procmailrc(ctx, state)

    def manual_checks(self, params: Any) -> list[str]:
        return [f"cutover rules verify {params.procmailrc} --messages <sample dir>",
                "managesieve / sieve directory: the account's active script is "
                f"{params.script!r}"]

    def manual_rollback(self, params: Any) -> list[str]:
        return [f"reactivate the previous Sieve script (or none) instead of {params.script!r}",
                f"rename {params.procmailrc}{ASIDE_SUFFIX} back to {params.procmailrc}"]


def _program_plan(ctx: Context, account: _Account, conversion: Conversion
                  ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each program file the script needs, as it is now (`before`) and as it must be
    (`after`): {kind, name, path, base64, mode}, base64 and mode null for an absent file. A
    generated program goes into the directory of each way the script runs it."""
    uses = program_uses(conversion.script)
    wanted = [(kind, name, text) for name, text in sorted(conversion.programs.items())
              for kind in PROGRAM_KINDS if kind in uses.get(name, ())]
    unused = sorted(set(conversion.programs) - set(uses))
    if unused:
        ctx.log(f"{account.address}: generated program(s) {', '.join(unused)} not run by the "
                "script: not installed")
    _refuse_missing_directories(ctx, account, wanted)
    _warn_of_absent_site_programs(ctx, account, uses, conversion.programs)
    before, after = [], []
    for kind, name, text in wanted:
        directory = ProgramDirectory(account.store.program_directory(kind))
        path = str(directory.file(name))
        data = text.encode()
        current = directory.read(name)
        if current is not None and current[0] != data:
            _refuse_clash(account.address, path, directory.written_for(name, current[0]))
        before.append(_program_entry(kind, name, path, current))
        after.append(_program_entry(kind, name, path, (data, PROGRAM_MODE)))
    return before, after


def _warn_of_absent_site_programs(ctx: Context, account: _Account, uses: dict[str, set[str]],
                                  generated: dict[str, str]) -> None:
    """The programs the rc file ran itself (`| spamc` -> `pipe "spamc"`) are the site's to
    install; say so where a configured directory lacks one, as Pigeonhole would fail there."""
    for name, kinds in sorted(uses.items()):
        if name in generated:
            continue
        for kind in PROGRAM_KINDS:
            directory = account.store.program_directory(kind) if kind in kinds else None
            if directory is not None and not (directory / name).exists():
                ctx.log(f"WARNING {account.address}: the script runs {name} through {kind}, "
                        f"which is not in {directory}: install it there (cutover installs "
                        "only the programs it generated)")


def _refuse_clash(address: str, path: str, writer: str | None) -> None:
    """Another content under the name: cutover replaces only what it wrote for this account
    (an earlier conversion of the same rules)."""
    if writer is None:
        raise SieveProgramClash(f"{path} exists with other content that cutover did not write: "
                                f"refusing to overwrite it (the script for {address} runs "
                                "a program of that name)")
    if writer != address:
        raise SieveProgramClash(f"{path} holds the program cutover installed for {writer}, "
                                f"and {address} needs another one of that name: refusing to "
                                "overwrite it")


def _program_entry(kind: str, name: str, path: str, content: tuple[bytes, int] | None
                   ) -> dict[str, Any]:
    return {"kind": kind, "name": name, "path": path,
            "base64": None if content is None else base64.b64encode(content[0]).decode(),
            "mode": None if content is None else content[1]}


def _program_content(entry: dict[str, Any]) -> tuple[bytes, int] | None:
    return None if entry["base64"] is None else (_decode(entry), entry["mode"])


def _refuse_missing_directories(ctx: Context, account: _Account,
                                wanted: list[tuple[str, str, str]]) -> None:
    unplaced = {kind: [] for kind in PROGRAM_KINDS}
    for kind, name, _ in wanted:
        if account.store.program_directory(kind) is None:
            unplaced[kind].append(name)
    kinds = [kind for kind in PROGRAM_KINDS if unplaced[kind]]
    if not kinds:
        return
    runs = "; ".join(f"{', '.join(unplaced[kind])} through {kind}" for kind in kinds)
    settings = ", ".join(f"{kind}_bin_dir" for kind in kinds)
    dovecot = ", ".join(f"sieve_{kind}_bin_dir" for kind in kinds)
    raise SieveProgramDirMissing(
        f"{account.address}: the script runs generated program(s) {runs}, and sieve "
        f"connector {ctx.params.sieve!r} has no {settings}: add {settings} to it in "
        f"cutover.yaml (the directory Dovecot's {dovecot} names, as this host writes it)")


def _refuse_missing_extensions(account: _Account, script: str) -> None:
    enabled = account.store.extensions(account.address)
    if enabled is None:  # a twin that does not say
        return
    missing = [name for name in required_extensions(script) if name not in enabled]
    if not missing:
        return
    plugin = " and sieve_plugins = sieve_extprograms" \
        if set(missing) & set(PROGRAM_EXTENSIONS.values()) else ""
    raise SieveExtensionsMissing(
        f"{account.address}: the Sieve server does not enable {', '.join(missing)} for "
        f"personal scripts: add sieve_extensions = {' '.join('+' + name for name in missing)}"
        f"{plugin} to Dovecot's plugin settings (sieve_global_extensions does not reach "
        "personal scripts)")


def _install_program(ctx: Context, account: str, entry: dict[str, Any],
                     prior: dict[str, Any]) -> None:
    """Write the program `entry` (an `after` entry) unless it is there already."""
    path = Path(entry["path"])
    directory = ProgramDirectory(path.parent)
    data, mode = _program_content(entry)
    if _unchanged_or_refuse(ctx, directory, path, (data, mode), prior):
        directory.use(path.name, account)
        return
    directory.install(path.name, data, account, mode)


def _restore_program(ctx: Context, account: str, entry: dict[str, Any],
                     applied: dict[str, Any]) -> None:
    """Put the program file back as `entry` (a `before` entry) recorded it; a program the
    scripts of other accounts still run stays (the last of them puts it back)."""
    path = Path(entry["path"])
    directory = ProgramDirectory(path.parent)
    others = directory.release(path.name, account)
    if others:
        ctx.log(f"{account}: {path} stays: the scripts of {', '.join(others)} run it too")
        return
    wanted = _program_content(entry)
    if _unchanged_or_refuse(ctx, directory, path, wanted, applied):
        return
    directory.restore(path.name, *(wanted or (None, None)))


def _unchanged_or_refuse(ctx: Context, directory: ProgramDirectory, path: Path,
                         wanted: tuple[bytes, int] | None, other: dict[str, Any]) -> bool:
    """True when the file already is `wanted`; a file that is neither that nor `other` (the
    side of the change it comes from) is someone else's since: refused unless forced."""
    current = directory.read(path.name)
    if current == wanted:
        return True
    known = [None if content is None else content[0]
             for content in (wanted, _program_content(other))]
    if (None if current is None else current[0]) not in known and not ctx.force:
        raise SieveProgramClash(f"{path} changed since cutover looked at it: refusing to "
                                "overwrite it (--force does)")
    return False


def _check_programs(state: dict[str, Any]) -> list[Finding]:
    findings = []
    for entry in state.get("programs", []):
        path = Path(entry["path"])
        current = ProgramDirectory(path.parent).read(path.name)
        wanted = _program_content(entry)
        if wanted is None:
            shared = ProgramDirectory(path.parent).users(path.name)
            if (current is not None or path.is_symlink()) and not shared:
                findings.append(Finding(state["account"], f"{path} exists; it was absent"))
        elif current is None:
            findings.append(Finding(state["account"], f"program {path} is missing"))
        elif current[0] != wanted[0]:
            findings.append(Finding(state["account"], f"program {path} differs from the "
                                                      "recorded one"))
        elif current[1] != wanted[1]:
            findings.append(Finding(state["account"], f"program {path} has mode "
                                                      f"{current[1]:04o}, not "
                                                      f"{wanted[1]:04o}"))
    return findings


def _restore_procmailrc(ctx: Context, state: dict[str, Any]) -> None:
    rc = ctx.workspace.path(state["procmailrc"])
    entry = state["procmail_files"][state["rc_key"]]
    aside = rc.with_name(rc.name + ASIDE_SUFFIX)
    rc.parent.mkdir(parents=True, exist_ok=True)
    if not rc.is_file() or rc.read_bytes() != _decode(entry):
        atomic_write(rc, _decode(entry), mode=entry["mode"])
    os.chmod(rc, entry["mode"])
    if aside.is_file():
        aside.unlink()


def _check_store(store: SieveStore, state: dict[str, Any]) -> list[Finding]:
    address, name = state["account"], state["script_name"]
    findings = []
    active = store.active(address)
    if active != state["active"]:
        findings.append(Finding(address, f"active Sieve script is {active!r}, expected "
                                         f"{state['active']!r}"))
    if normalised(store.get(address, name)) != normalised(state["script"]):
        expected = "absent" if state["script"] is None else "the recorded text"
        findings.append(Finding(address, f"Sieve script {name!r} is not {expected}"))
    return findings


def _check_procmail(ctx: Context, state: dict[str, Any]) -> list[Finding]:
    rc = ctx.workspace.path(state["procmailrc"])
    address = state["account"]
    if not state["procmail_enabled"]:
        return [Finding(address, f"{rc} still exists: Procmail still delivers")] \
            if rc.exists() else []
    if not rc.is_file():
        return [Finding(address, f"{rc} is missing: Procmail is not restored")]
    if rc.read_bytes() != _decode(state["procmail_files"][state["rc_key"]]):
        return [Finding(address, f"{rc} differs from the recorded procmailrc")]
    return []


def _check_agreement(ctx: Context, state: dict[str, Any], deployed: str) -> list[Finding]:
    """The deployed script (what the store holds now) against the recorded procmail files."""
    missing = _missing_tool(ctx)
    if missing:
        return [Finding(state["account"], f"{missing}: procmail and Sieve were not compared",
                        "warning")]
    proof = _agreement(ctx, state["procmail_files"], state["rc_key"], deployed,
                       proven=state.get("proof"))
    if proof is None:
        return [Finding(state["account"], "no sample messages: procmail and Sieve were not "
                                          "compared", "warning")]
    return [Finding(state["account"], f"{case['message']}: procmail {case['procmail']}, "
                                      f"sieve {case['sieve']}")
            for case in proof["disagreements"]]


def _missing_tool(ctx: Context) -> str | None:
    """Why the differential check cannot run here, when the step allows that; else None
    (and a missing tool raises ToolMissing in `_compare`, refusing the step)."""
    if ctx.params.differential != "when-available":
        return None
    try:
        require_tool("procmail", "procmail")
        require_tool("sieve-test", "dovecot-sieve")
    except ToolMissing as missing:
        return str(missing)
    return None


def _agreement(ctx: Context, files: dict[str, Any], rc_key: str, script: str,
               proven: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """Real procmail (fed the recorded procmail files, in a scratch HOME) against sieve-test
    running `script`, over the sample: the summary and the disagreements, keyed by a digest of
    everything compared. None when there is no sample or, when allowed, no tools to compare
    with. Both programs are deterministic, so `proven` (an earlier result for the same digest:
    the preview's, kept in the checkpoint) is the answer without running them again."""
    if _missing_tool(ctx):
        return None
    with tempfile.TemporaryDirectory(prefix="cutover-rules-") as temp:
        messages = _sample(ctx, Path(temp) / "sample")
        if not messages:
            return None
        digest = _inputs_digest(files, rc_key, script, messages)
        if proven is not None and proven.get("inputs_sha256") == digest:
            return proven
        home = Path(temp) / "home"
        for relative, entry in files.items():
            (home / relative).parent.mkdir(parents=True, exist_ok=True)
            (home / relative).write_bytes(_decode(entry))
        conversion = convert(home / rc_key, home, ctx.params.maildir_root)
        report = verify(conversion, messages, script)
        return {"inputs_sha256": digest, "summary": report.summary(),
                "disagreements": [case.to_json() for case in report.disagreements]}


def _inputs_digest(files: dict[str, Any], rc_key: str, script: str, messages: list[Path]
                   ) -> str:
    digest = hashlib.sha256(json.dumps([files, rc_key, script], sort_keys=True).encode())
    for path in messages:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _sample(ctx: Context, directory: Path) -> list[Path]:
    params: RulesReplaceParams = ctx.params
    if params.messages:
        source = ctx.workspace.path(expand(params.messages, ctx.item))
        if not source.is_dir():
            return []
        return message_files(source)[: params.sample]
    if not params.mailstore:
        return []
    directory.mkdir(parents=True, exist_ok=True)
    store = ctx.connector("mailstores", params.mailstore)
    paths: list[Path] = []
    with store.open(expand(params.mailbox, ctx.item)) as session:
        for folder in session.folders():
            refs = session.list_messages(folder.name)[: params.sample - len(paths)]
            for uid, content in session.fetch(folder.name, [ref.uid for ref in refs]):
                path = directory / f"{len(paths):05d}-{uid}.eml"
                path.write_bytes(content)
                paths.append(path)
            if len(paths) >= params.sample:
                break
    return paths
