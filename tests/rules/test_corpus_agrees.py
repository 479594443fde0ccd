"""Every corpus rc file against every one of its messages: real procmail and real sieve-test
must agree; and Dovecot's LMTP delivery files mail where sieve-test said it would."""

from __future__ import annotations

import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from cutover.rules.convert import convert
from cutover.rules.differential import message_files, verify

CORPUS = Path(__file__).parent / "corpus"
UNTRANSLATABLE = Path(__file__).parent / "untranslatable"
ACCOUNTS = sorted(path.name for path in CORPUS.iterdir() if (path / ".procmailrc").is_file())


@cache  # each corpus runs once per session; the tests look at its report differently
def run_corpus(account: str):
    home = CORPUS / account
    conversion = convert(home / ".procmailrc", home)
    assert conversion.gaps == [] and conversion.syntax_problems == []
    report = verify(conversion, message_files(home / "messages"))
    return conversion, report


@pytest.mark.parametrize("account", ACCOUNTS)
def test_every_corpus_message_is_handled_alike_by_procmail_and_sieve(account: str):
    _, report = run_corpus(account)
    disagreements = [case.to_json() for case in report.disagreements]
    assert disagreements == []
    assert report.summary().endswith("(100.0%)")


@pytest.mark.parametrize("account", ACCOUNTS)
def test_corpus_exercises_fallthrough_and_more_than_one_branch(account: str):
    _, report = run_corpus(account)
    outcomes = {case.procmail.describe() for case in report.cases}
    assert "folder:INBOX" in outcomes
    assert len(outcomes) >= 4


def test_corpus_covers_every_kind_of_delivery():
    kinds = set()
    for account in ACCOUNTS:
        _, report = run_corpus(account)
        for case in report.cases:
            kinds.update(d.split(":")[0] for d in case.procmail.deliveries)
            kinds.update({"discarded"} if not case.procmail.deliveries else set())
    assert kinds == {"folder", "redirect", "pipe", "discarded"}


@pytest.mark.parametrize(("rcfile", "lines"), [
    ("vacation.procmailrc", ["6", "12"]),
    ("filter.procmailrc", ["4", "8", "10"]),
])
def test_untranslatable_rules_are_refused_with_their_line(rcfile: str, lines: list[str]):
    path = UNTRANSLATABLE / rcfile
    result = subprocess.run([sys.executable, "-m", "cutover", "rules", "convert", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 2
    errors = result.stderr.splitlines()
    assert [line.split(":")[2] for line in errors] == lines
    assert all(line.startswith(f"error: {path}:") for line in errors)


def test_lmtp_delivery_files_mail_where_sieve_test_said(dovecot, dovecot_user):
    conversion, report = run_corpus("station-aks01")
    sieve_dir = dovecot.home(dovecot_user) / "sieve"
    sieve_dir.mkdir()
    (sieve_dir / "corpus.sieve").write_text(conversion.script)
    (dovecot.home(dovecot_user) / ".dovecot.sieve").symlink_to(sieve_dir / "corpus.sieve")
    folder_only = [case for case in report.cases if case.sieve.deliveries
                   and all(d.startswith("folder:") for d in case.sieve.deliveries)]
    assert len(folder_only) >= 4
    messages = {path.name: path for path in message_files(CORPUS / "station-aks01/messages")}
    for case in folder_only:
        dovecot.deliver(dovecot_user, messages[case.message].read_bytes())
    expected: dict[str, int] = {}
    for case in folder_only:
        for delivery in case.sieve.deliveries:
            folder = delivery.removeprefix("folder:")
            expected[folder] = expected.get(folder, 0) + 1
    assert stored_counts(dovecot.maildir(dovecot_user)) == expected


def stored_counts(maildir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in maildir.rglob("*"):
        if message.is_file() and message.parent.name in ("new", "cur"):
            folder = message.parent.parent.relative_to(maildir).as_posix()
            name = "INBOX" if folder == "." else folder
            counts[name] = counts.get(name, 0) + 1
    return counts
