"""The procmail idioms people really write, each specified against the real procmail and the
real sieve-test: the conversion is strict (no gap), every message goes where procmail puts it,
and the script says it with the Sieve construct named here."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from cutover.rules.convert import convert
from cutover.rules.differential import verify


def mail(subject: str, body: str = "hello\n", **headers: str) -> str:
    fields = {"Return-Path": "<alice@example.net>", "From": "Alice <alice@example.net>",
              "To": "account@verify.example.org", "Subject": subject,
              "Message-ID": f"<{abs(hash(subject))}@example.net>",
              **{name.replace("_", "-"): value for name, value in headers.items()}}
    return "".join(f"{name}: {value}\n" for name, value in fields.items()) + "\n" + body


def converted_and_agreed(tmp_path: Path, rc_text: str, messages: dict[str, str]):
    """Convert strictly, run every message through procmail and sieve-test; the conversion
    and {message: procmail's outcome}, once both agree on every message."""
    home = tmp_path / "home"
    home.mkdir()
    rc = home / ".procmailrc"
    rc.write_text(rc_text)
    conversion = convert(rc)
    assert conversion.gaps == [] and conversion.syntax_problems == []
    directory = tmp_path / "messages"
    directory.mkdir()
    for name, text in messages.items():
        (directory / f"{name}.eml").write_text(text)
    report = verify(conversion, sorted(directory.iterdir()))
    assert [case.to_json() for case in report.disagreements] == []
    return conversion, {case.message.removesuffix(".eml"): case.procmail.describe()
                        for case in report.cases}


def test_conditions_on_the_whole_header(tmp_path: Path):
    conversion, outcomes = converted_and_agreed(tmp_path, """\
MAILDIR=$HOME/Maildir
:0
* ^From.*bounces@lists\\.example
.Envelope/
:0
* ^(To|CC).*devel@lists\\.example
.Devel/
:0
* ^.*:.*\\[GTD\\]
.GTD/
:0
* X-Spam-Status: Yes
.Spam/
:0
* .*
.Rest/
""", {
        "1-envelope": mail("news", Return_Path="<bounces@lists.example.org>"),
        "2-cc": mail("patch", Cc="devel@lists.example.org"),
        "3-gtd": mail("[GTD] weekly review"),
        "4-spam": mail("cheap", X_Spam_Status="Yes, score=9"),
        "5-rest": mail("plain"),
    })
    assert outcomes == {"1-envelope": "folder:Envelope", "2-cc": "folder:Devel",
                        "3-gtd": "folder:GTD", "4-spam": "folder:Spam", "5-rest": "folder:Rest"}
    assert 'envelope :regex "from" "bounces@lists\\\\.example"' in conversion.script
    assert 'header :regex ["cc", "to"] "devel@lists\\\\.example"' in conversion.script


def test_filters_run_through_filter_and_formail_edits_become_editheader(tmp_path: Path):
    conversion, outcomes = converted_and_agreed(tmp_path, """\
MAILDIR=$HOME/Maildir
:0 fw
| /usr/bin/spamc -4
:0 fhw
* ^Subject:.*tag me
| formail -A "X-Tagged: yes"
:0
* ^X-Tagged: yes
.Tagged/
:0 fhw
| formail -I "X-Remove-Me:"
:0
* ^X-Remove-Me:
.NotRemoved/
""", {
        "1-tag": mail("please tag me"),
        "2-remove": mail("remove", X_Remove_Me="1"),
        "3-plain": mail("plain"),
    })
    assert outcomes == {"1-tag": "folder:Tagged", "2-remove": "folder:INBOX",
                        "3-plain": "folder:INBOX"}
    script = conversion.script
    assert 'filter "spamc" ["-4"];' in script
    assert 'addheader :last "X-Tagged" "yes";' in script
    assert 'deleteheader "X-Remove-Me";' in script
    assert re.search(r'require \[.*"editheader".*"vnd\.dovecot\.filter"', script)


def test_duplicates_and_part_pipes(tmp_path: Path):
    conversion, outcomes = converted_and_agreed(tmp_path, """\
MAILDIR=$HOME/Maildir
:0 Wh: msgid.lock
| formail -D 8192 msgid.cache
:0 Whc: msgid.lock
| formail -D 8192 seen.cache
:0 a
.Duplicates/
:0 b
* ^Subject:.*bulletin
| /usr/local/bin/ingest-bulletin --queue b
:0 h
* ^Subject:.*headers
| /usr/local/bin/log-headers
""", {
        "1-bulletin": mail("bulletin 7"),
        "2-headers": mail("headers only"),
        "3-plain": mail("plain"),
    })
    assert outcomes == {"1-bulletin": "pipe:ingest-bulletin", "2-headers": "pipe:log-headers",
                        "3-plain": "folder:INBOX"}
    script = conversion.script
    assert 'if duplicate :handle "msgid.cache" {\n    discard;\n    stop;\n}' in script
    assert 'if duplicate :handle "seen.cache" {\n    set "pm_ok_1" "1";\n}' in script
    assert 'pipe "ingest-bulletin.body" ["--queue", "b"];' in script
    assert 'pipe "log-headers.head";' in script
    assert sorted(conversion.programs) == ["ingest-bulletin.body", "log-headers.head"]


def test_match_captures_name_folders(tmp_path: Path):
    conversion, outcomes = converted_and_agreed(tmp_path, """\
MAILDIR=$HOME/Maildir
:0
* ^X-Mailing-List-Name: \\/.*
.lists.$MATCH/
:0
* ^Sender: owner-\\/[^@]+
{
    LIST=$MATCH
    :0
    * LIST ?? ^\\/[a-z]+
    .by-sender.$MATCH/
}
""", {
        "1-name": mail("a", X_Mailing_List_Name="perl6-all"),
        "2-sender": mail("b", Sender="owner-crypto@lists.example.net"),
        "3-plain": mail("c"),
    })
    assert outcomes == {"1-name": "folder:lists/perl6-all",
                        "2-sender": "folder:by-sender/crypto", "3-plain": "folder:INBOX"}
    assert 'fileinto :create "lists/${pm_match}";' in conversion.script


def test_e_flag_observes_the_pipe_exit_status_through_execute(tmp_path: Path):
    conversion, outcomes = converted_and_agreed(tmp_path, """\
MAILDIR=$HOME/Maildir
:0 w
* ^Subject:.*deliver
| /usr/lib/custom/deliver --box work
:0 e
.Failed/
""", {"1-deliver": mail("deliver me"), "2-plain": mail("plain")})
    assert outcomes == {"1-deliver": "pipe:deliver", "2-plain": "folder:INBOX"}
    assert 'if execute :pipe "deliver" ["--box", "work"] {' in conversion.script
    assert 'set "pm_failed_1" "1";' in conversion.script


def test_part_programs_hand_on_what_procmail_handed_on(tmp_path: Path):
    """The generated .head/.body program gives the program the bytes procmail gave it (the
    From_ line's date apart)."""
    capture = tmp_path / "capture"
    capture.write_text('#!/bin/sh\ncat > "$1"\n')
    capture.chmod(0o755)
    home = tmp_path / "home"
    home.mkdir()
    message = mail("parts", body="line one\n\nline three\n")
    for part, flag in (("head", "h"), ("body", "b")):
        rc = home / f"{part}.rc"
        by_procmail = tmp_path / f"{part}.procmail"
        rc.write_text(f"MAILDIR=$HOME\n:0 {flag}w\n| {capture} {by_procmail}\n")
        subprocess.run(["procmail", "-f", "alice@example.net", f"HOME={home}", "LOGFILE=log",
                        str(rc)], input=message.encode(), check=True, cwd=home)
        conversion = convert(rc, home)
        program = tmp_path / f"capture.{part}"
        program.write_text(conversion.programs[f"capture.{part}"])
        program.chmod(0o755)
        by_sieve = tmp_path / f"{part}.sieve"
        subprocess.run([str(program), str(by_sieve)], check=True,
                       input=message.replace("\n", "\r\n").encode(),
                       env={"SENDER": "alice@example.net", "HOME": str(home)})
        assert _without_date(by_sieve.read_text()) == _without_date(by_procmail.read_text())
    assert os.path.getsize(tmp_path / "body.sieve") == len("line one\n\nline three\n\n")


def _without_date(text: str) -> str:
    return re.sub(r"^(From \S+  ).*", r"\1<date>", text, count=1)


def test_tolerated_syntax_and_host_as_procmail_reads_them(tmp_path: Path):
    conversion, outcomes = converted_and_agreed(tmp_path, """\
MAILDIR=$HOME/Maildir
NL="
"
 Stray text that procmail skips
:O:
* ^Subject:.*sobig
{ HOST }
:0
* ^Subject:.*keep
{
  :0
  .Kept/
  |/dev/null
}
""", {"1-sobig": mail("sobig worm"), "2-keep": mail("keep me"), "3-plain": mail("plain")})
    assert outcomes == {"1-sobig": "discarded", "2-keep": "folder:Kept",
                        "3-plain": "folder:INBOX"}
    assert [warning.line for warning in conversion.warnings] == [4, 5, 13]
    assert "discard;\n    stop;" in conversion.script
