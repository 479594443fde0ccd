"""The differential verifier itself: its sandbox holds everything procmail does, it waits for
every process procmail started without racing them, and sieve-test can read what it is given
whatever TMPDIR is."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from cutover.rules.convert import convert
from cutover.rules.differential import (
    ConfinedArea,
    _confinement,
    run_to_completion,
    sieve_sandbox,
    verify,
)

MESSAGE = """Return-Path: <owner-crypto@lists.example.net>
From: Alice <alice@example.net>
To: account@verify.example.org
Sender: owner-cryptography@metzdowd.com
Subject: {subject}
Message-ID: <{subject}@example.net>

body of {subject}
"""


def messages(directory: Path, *subjects: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for subject in subjects:
        path = directory / f"{subject}.eml"
        path.write_text(MESSAGE.format(subject=subject))
        paths.append(path)
    return paths


def write_rc(home: Path, text: str) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    rc = home / ".procmailrc"
    rc.write_text(text)
    return rc


@pytest.fixture
def outside() -> Path:
    """A directory name outside every sandbox, which must never come to exist."""
    path = Path("/var/tmp") / f"cutover-verify-outside-{uuid.uuid4().hex}"
    yield path
    assert not path.exists(), f"the verifier wrote outside its sandbox: {path}"


def test_verifier_never_writes_outside_its_sandbox(tmp_path: Path, outside: Path):
    rc = write_rc(tmp_path / "home", f"""\
MAILDIR={outside}/Mail
DEFAULT={outside}/Mail/inbox
LOGFILE={outside}/procmail.log
LOCKFILE={outside}/global.lock
TRAP="touch {outside}-trap"
STAMP=`touch {outside}-backtick`
:0 c:
* ? touch {outside}-condition
{outside}/Mail/archive
:0 Wc
| touch {outside}-pipe
:0 fw
| touch {outside}-filter
:0:
* ^Subject:.*crypto
{outside}/Mail/lists/crypto/
:0 c
{outside}/Mail/all
""")
    conversion = convert(rc, allow_partial=True)
    assert conversion.maildir_root == f"{outside}/Mail"
    report = verify(conversion, messages(tmp_path / "msgs", "crypto-news", "hello"))
    by_message = {case.message: case for case in report.cases}
    assert by_message["crypto-news.eml"].procmail.describe() == \
        "folder:lists/crypto, pipe:touch"
    assert by_message["hello.eml"].procmail.describe() == "folder:INBOX, folder:all, pipe:touch"
    for suffix in ("-trap", "-backtick", "-condition", "-pipe", "-filter"):
        assert not Path(f"{outside}{suffix}").exists()


def test_what_the_rewriting_misses_fails_read_only(tmp_path: Path, outside: Path):
    """A folder climbing out of MAILDIR with `..` (or built from variables) is not rebased; the
    mount namespace procmail runs in keeps it from writing there."""
    assert _confinement() is not None, "this system allows no mount namespace (unshare)"
    up = "/".join([".."] * 30)
    rc = write_rc(tmp_path / "home", f"MAILDIR=$HOME/Mail\nUP={up}\n:0\n"
                                     f"$UP{outside}-dotdot\n")
    report = verify(convert(rc, allow_partial=True), messages(tmp_path / "msgs", "one"))
    assert not Path(f"{outside}-dotdot").exists()
    assert report.cases[0].procmail.describe() == "folder:INBOX"  # the write failed: DEFAULT


def test_one_namespace_serves_every_run_and_confines_each(tmp_path: Path, outside: Path):
    """The verifier builds the read-only namespace once per verify and enters it per message:
    a run still writes inside the area and nowhere else."""
    assert os.geteuid() == 0, "the suite runs as root (the Postfix lab needs it too)"
    assert _confinement() is not None, "this system allows no mount namespace (unshare)"
    with ConfinedArea() as area:
        assert area.shared
        for number in range(3):
            sandbox = area.root / f"run-{number}"
            sandbox.mkdir()
            script = f"touch {sandbox}/inside; touch {outside}-{number}"
            status, _ = run_to_completion(area.command(["/bin/sh", "-c", script], sandbox,
                                                       sandbox), b"", {"PATH": "/usr/bin:/bin"},
                                          sandbox)
            assert status != 0  # the write outside failed
            assert (sandbox / "inside").exists()
            assert not Path(f"{outside}-{number}").exists()


def test_absolute_maildir_is_rebased_and_agrees_with_sieve(tmp_path: Path, outside: Path):
    rc = write_rc(tmp_path / "home", f"MAILDIR={outside}/\n:0\n* ^Sender: owner-\\/[^@]+\n"
                                     ".lists.$MATCH/\n")
    conversion = convert(rc)
    assert conversion.gaps == []
    report = verify(conversion, messages(tmp_path / "msgs", "one"))
    [case] = report.cases
    assert case.agrees and case.procmail.describe() == "folder:lists/cryptography"


def test_sandbox_has_the_parent_folders_a_real_home_has(tmp_path: Path):
    """`lists/crypto` is an mbox inside lists/: procmail does not create lists/, a real home
    has it, so the sandbox must too (else procmail falls back to DEFAULT)."""
    rc = write_rc(tmp_path / "home", "MAILDIR=$HOME/mail\nLISTS=$MAILDIR/lists\n"
                                     ":0\n* ^Sender: owner-cryptography@\n$LISTS/crypto\n")
    report = verify(convert(rc), messages(tmp_path / "msgs", "one"))
    [case] = report.cases
    assert case.agrees, case.to_json()
    assert case.procmail.describe() == "folder:lists/crypto"


def test_waiting_ends_only_when_every_descendant_has_exited(tmp_path: Path):
    """procmail does not wait for what it starts; the verifier must, without scanning /proc
    (which raced with exiting processes: ProcessLookupError under load)."""
    done = tmp_path / "done"
    churn = "for i in $(seq 1 200); do (true) & done"
    late = f"(for i in $(seq 1 3000); do :; done; echo yes > {done}) &"
    status, _ = run_to_completion(["/bin/sh", "-c", f"{churn}; {late} exit 3"], b"", {},
                                  tmp_path)
    assert status == 3
    assert done.read_text() == "yes\n"


def test_waiting_gives_up_at_the_timeout_and_kills_the_session(tmp_path: Path):
    status, _ = run_to_completion(["/bin/sh", "-c", "(exec sleep 60) & exit 0"], b"", {},
                                  tmp_path, timeout=0.5)
    assert status is None


@pytest.fixture
def private_tmpdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR as libpam-tmpdir makes it: a directory only its owner may enter."""
    private = tmp_path / "private-tmp"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    monkeypatch.setenv("TMPDIR", str(private))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return private


def test_verifier_works_with_a_private_tmpdir(tmp_path: Path, private_tmpdir: Path):
    rc = write_rc(tmp_path / "home", "MAILDIR=$HOME/Maildir\n:0\n* ^Subject:.*crypto\n"
                                     ".Crypto/\n:0 h\n* ^Subject:.*digest\n| /usr/bin/digest\n")
    report = verify(convert(rc), messages(tmp_path / "msgs", "crypto-news", "digest", "x"))
    assert [case.sieve.describe() for case in report.cases] == [
        "folder:Crypto", "pipe:digest", "folder:INBOX"]
    assert report.disagreements == []


def test_sieve_sandbox_is_reachable_by_the_user_sieve_test_becomes(private_tmpdir: Path):
    assert os.geteuid() == 0, "sieve-test drops privileges only when run by root: run the " \
        "suite as root, as ./scripts/test does"
    nobody = (65534, 65534)
    directory = sieve_sandbox(nobody)
    try:
        assert directory.stat().st_uid == nobody[0]
        assert not directory.is_relative_to(private_tmpdir)
        probe = subprocess.run(["setpriv", f"--reuid={nobody[0]}", f"--regid={nobody[1]}",
                                "--clear-groups", "test", "-w", str(directory)])
        assert probe.returncode == 0
    finally:
        os.rmdir(directory)


def test_rules_verify_command_passes_with_a_private_tmpdir(tmp_path: Path,
                                                          private_tmpdir: Path):
    rc = write_rc(tmp_path / "home", "MAILDIR=$HOME/Maildir\n:0\n* ^Subject:.*crypto\n"
                                     ".Crypto/\n")
    messages(tmp_path / "msgs", "crypto-news", "x")
    result = subprocess.run([sys.executable, "-m", "cutover", "rules", "verify", str(rc),
                             "--messages", str(tmp_path / "msgs")], capture_output=True,
                            text=True, env={**os.environ, "TMPDIR": str(private_tmpdir)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("2 of 2 cases agree (100.0%)")
