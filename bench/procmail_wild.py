#!/usr/bin/env python3
"""Procmail to Sieve on rc files nobody here wrote: `rules convert` and the differential
verifier (real procmail against real sieve-test) on every file of the procmail-wild corpus.

    .venv/bin/python bench/procmail_wild.py [CORPUS] [--only NN] [--verbose] [--jobs N]

CORPUS defaults to ../shared/corpora/procmail-wild relative to the repository root (read it
there: never copy it into the project). Each rc file is installed as HOME/.procmailrc of a
temporary HOME (with the files of its `NN-name.home/` directory, as the corpus README says),
then converted strictly and with --allow-partial through the command line, and every script is
run against every message of the corpus by `rules verify`. Prints, per file and in total:
converted strictly, refused cleanly (by reason), crashed, agreement.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def default_corpus() -> Path:
    """../shared/corpora/procmail-wild from the repository root (from a git worktree nested
    deeper, the nearest such directory above it)."""
    for parent in REPO.parents:
        candidate = parent / "shared" / "corpora" / "procmail-wild"
        if candidate.is_dir():
            return candidate
    return REPO.parent / "shared" / "corpora" / "procmail-wild"

_LOCATED = re.compile(r"^error: (?P<file>[^:]+):(?P<line>\d+): (?P<reason>.+)$")


@dataclass
class FileResult:
    name: str
    strict: bool = False
    partial: bool = False
    crashed: str = ""
    refusals: list[tuple[str, int, str]] = field(default_factory=list)
    unlocated: list[str] = field(default_factory=list)
    agreeing: int = 0
    cases: int = 0
    disagreements: list[str] = field(default_factory=list)
    verify_error: str = ""


def cutover(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cutover", *args], capture_output=True,
                          text=True, cwd=REPO)


def crashed(result: subprocess.CompletedProcess[str]) -> str:
    if "Traceback" in result.stderr or "internal error" in result.stderr:
        return result.stderr.strip().splitlines()[-1][:200]
    if result.returncode not in (0, 1, 2):
        return f"exit {result.returncode}: {result.stderr.strip()[:200]}"
    return ""


def install(rc: Path, home: Path) -> Path:
    extra = rc.with_suffix(".home")
    if extra.is_dir():
        shutil.copytree(extra, home, dirs_exist_ok=True)
        for path in home.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
    target = home / ".procmailrc"
    target.write_bytes(rc.read_bytes())
    target.chmod(0o644)
    return target


def measure(rc: Path, messages: Path, scratch: Path) -> FileResult:
    result = FileResult(rc.stem)
    home = scratch / "home"
    home.mkdir()
    home.chmod(0o755)
    procmailrc = install(rc, home)
    strict = cutover("rules", "convert", str(procmailrc), "--home", str(home), "-o",
                     str(scratch / "strict.sieve"))
    result.crashed = crashed(strict)
    result.strict = strict.returncode == 0
    if strict.returncode == 2:
        for line in strict.stderr.splitlines():
            if line.startswith("warning: "):
                continue  # what procmail skips too, or reads as empty: not a refusal
            located = _LOCATED.match(line)
            if located and int(located["line"]) > 0:
                result.refusals.append((Path(located["file"]).name, int(located["line"]),
                                        located["reason"]))
            else:
                result.unlocated.append(line)
    partial = cutover("rules", "convert", str(procmailrc), "--home", str(home),
                      "--allow-partial", "-o", str(scratch / "partial.sieve"))
    result.crashed = result.crashed or crashed(partial)
    result.partial = partial.returncode == 0
    if not result.partial:
        return result
    verify = cutover("rules", "verify", str(procmailrc), "--home", str(home), "--messages",
                     str(messages), "--sieve", str(scratch / "partial.sieve"), "--json")
    result.crashed = result.crashed or crashed(verify)
    if verify.returncode in (0, 1) and verify.stdout.strip():
        report = json.loads(verify.stdout)
        result.agreeing, result.cases = report["agreeing"], report["total"]
        result.disagreements = [f"{case['message']}: procmail {case['procmail']}, sieve "
                                f"{case['sieve']}" for case in report["cases"]
                                if not case["agrees"]]
    else:
        result.verify_error = verify.stderr.strip()[:300]
    return result


def reason_kind(reason: str) -> str:
    """A refusal reason without the parts that name this file's values."""
    reason = re.sub(r"'[^']*'|\"[^\"]*\"|\$\{?\w+\}?|/\S+", "…", reason)
    return reason[:90]


def report(results: list[FileResult], elapsed: float, verbose: bool) -> None:
    print(f"{'file':<46} {'strict':>6} {'partial':>7} {'agree':>9}  first refusal")
    for r in results:
        first = f"{r.refusals[0][0]}:{r.refusals[0][1]}: {r.refusals[0][2]}" if r.refusals \
            else (r.crashed or r.verify_error or "")
        agree = f"{r.agreeing}/{r.cases}" if r.cases else "-"
        print(f"{r.name:<46} {'yes' if r.strict else 'no':>6} "
              f"{'yes' if r.partial else 'no':>7} {agree:>9}  {first[:100]}", flush=True)
        if verbose:
            for line in r.disagreements:
                print(f"{'':<8}disagree {line}")
            for file, line, reason in r.refusals[1:]:
                print(f"{'':<8}refused {file}:{line}: {reason}")
    strict = [r for r in results if r.strict]
    refused = [r for r in results if not r.strict and not r.crashed]
    crashes = [r for r in results if r.crashed]
    unlocated = [line for r in results for line in r.unlocated]
    strict_agree = sum(r.agreeing for r in strict)
    strict_cases = sum(r.cases for r in strict)
    all_agree = sum(r.agreeing for r in results)
    all_cases = sum(r.cases for r in results)
    print()
    print(f"converted strictly:   {len(strict)} of {len(results)}")
    print(f"script with --allow-partial: {sum(r.partial for r in results)} of {len(results)}")
    print(f"refused cleanly:      {len(refused)} (every refusal located: "
          f"{'yes' if not unlocated else 'no, ' + str(len(unlocated)) + ' lines not'})")
    print(f"crashed:              {len(crashes)}"
          + "".join(f"\n  {r.name}: {r.crashed}" for r in crashes))
    share = 100.0 * strict_agree / strict_cases if strict_cases else 100.0
    print(f"agreement (strict):   {strict_agree} of {strict_cases} (file, message) pairs "
          f"({share:.2f}%)")
    share = 100.0 * all_agree / all_cases if all_cases else 100.0
    print(f"agreement (partial):  {all_agree} of {all_cases} pairs ({share:.2f}%), "
          "untranslated recipes left out of the script")
    reasons = collections.Counter(reason_kind(reason) for r in refused
                                  for _, _, reason in r.refusals)
    print("refusal reasons (recipes, all refused files):")
    for reason, count in reasons.most_common():
        print(f"  {count:4d}  {reason}")
    print(f"elapsed: {elapsed:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", nargs="?", type=Path, default=None)
    parser.add_argument("--only", action="append", default=[],
                        help="only rc files whose name starts with this (repeatable)")
    parser.add_argument("--verbose", "-v", action="store_true")
    parser.add_argument("--jobs", "-j", type=int, default=3,
                        help="rc files measured at once (each runs its own processes)")
    options = parser.parse_args()
    options.corpus = options.corpus or default_corpus()
    rc_files = sorted((options.corpus / "rc").glob("*.procmailrc"))
    if options.only:
        rc_files = [rc for rc in rc_files if any(rc.name.startswith(p) for p in options.only)]
    if not rc_files:
        sys.exit(f"no rc files under {options.corpus / 'rc'}")
    started = time.monotonic()

    def one(rc: Path) -> FileResult:
        with tempfile.TemporaryDirectory(prefix="cutover-bench-") as scratch:
            result = measure(rc, options.corpus / "messages", Path(scratch))
        print(f"measured {rc.name}", file=sys.stderr, flush=True)
        return result

    with concurrent.futures.ThreadPoolExecutor(max(1, options.jobs)) as pool:
        results = list(pool.map(one, rc_files))
    report(results, time.monotonic() - started, options.verbose)


if __name__ == "__main__":
    main()
