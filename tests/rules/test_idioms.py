"""The procmail idioms people really write, each specified against the real procmail and the
real sieve-test: the conversion is strict (no gap), every message goes where procmail puts it,
and the script says it with the Sieve construct named here."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from cutover.rules.convert import convert
from cutover.rules.differential import verify
from cutover.rules.regex import RegexUntranslatable, raw_header_pattern


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


def test_what_sieve_sees_otherwise_is_decided_on_the_raw_header(tmp_path: Path):
    """Encoded words, a fold before `<`, text right after the colon, `^TO.` taking the blank
    and a header name given as a prefix of names Sieve cannot list: Sieve's decoded, unfolded,
    trimmed values would decide these differently, so the generated `procmail-match` decides
    them on the header as written, as procmail does."""
    conversion, outcomes = converted_and_agreed(tmp_path, """\
MAILDIR=$HOME/Maildir
:0
* ^Subject: =\\?(iso-8859-1|windows-1251)\\?
.Encoded/
:0
* ^List-Id: ActiveRDF users <activerdf.lists.deri.org>
.Rdf/
:0
* ^To:chinese@lists
.Glued/
:0
* ^TO.root@
.Root/
:0
* ^X-Acme-.*
.Acme/
:0
* ^X-Trac-.*
.Trac/
""", {
        "1-encoded": mail("=?iso-8859-1?Q?gr=FC=DFe?="),
        "2-decoded-alike": mail("=?utf-8?Q?gr=C3=BC=C3=9Fe?="),
        "3-list": mail("rdf", List_Id="ActiveRDF users <activerdf.lists.deri.org>"),
        "4-list-folded": mail("rdf", List_Id="ActiveRDF users\n\t<activerdf.lists.deri.org>"),
        "5-glued": mail("zh").replace("To: account@", "To:chinese@lists.fedoraproject.org, "),
        "6-blank": mail("zh", To="chinese@lists.fedoraproject.org"),
        "7-root": mail("cron", To="root@host.example.org"),
        "8-acme": mail("ticket", X_Acme_Ticket="42"),
        "9-trac": mail("ticket", X_Trac_Project="cutover"),
    })
    assert outcomes == {"1-encoded": "folder:Encoded", "2-decoded-alike": "folder:INBOX",
                        "3-list": "folder:Rdf", "4-list-folded": "folder:INBOX",
                        "5-glued": "folder:Glued", "6-blank": "folder:INBOX",
                        "7-root": "folder:Root", "8-acme": "folder:Acme",
                        "9-trac": "folder:Trac"}
    assert conversion.script.count('execute :pipe "procmail-match"') == 5
    assert "vnd.dovecot.execute" in conversion.script.split("\n", 4)[3]
    assert set(conversion.programs) == {"procmail-match"}
    # the fields Sieve can name are tested natively; `exists` with two names wants both
    assert 'anyof(exists "x-trac-project", exists "x-trac-version")' in conversion.script


@pytest.mark.parametrize(("regex", "pattern"), [
    ("^Subject:*MDP", "(?mi)^Subject:*MDP"),
    ("^^From x", "(?mi)\\AFrom x"),
    ("^X-[a\\]b]{2}", "(?mi)^X-[\\]ab]\\{2\\}"),
    ("\\<foo\\.bar", "(?mi)(?:^|[^a-zA-Z0-9_])foo\\.bar"),
    ("^TO_me@", "(?mi)(^((Original-)?(Resent-)?(To|Cc|Bcc)|(X-Envelope|Apparently(-Resent)?)-To):"
                "(.*[^-a-zA-Z0-9_.])?)me@"),
])
def test_raw_header_patterns_keep_procmail_meaning_in_perl(regex: str, pattern: str):
    assert raw_header_pattern(regex) == pattern


@pytest.mark.parametrize("regex", ["^Subject:\\/.*", "^FROM_DAEMON x", "^Subject: a*?b"])
def test_what_the_raw_header_program_cannot_say_is_refused(regex: str):
    with pytest.raises(RegexUntranslatable):
        raw_header_pattern(regex)


def test_line_count_idiom_adds_the_lines_procmail_counts(tmp_path: Path):
    """`* -1^0` and `* 1^1 ^.*$` on the body score one per line end: the generated
    `procmail-lines` computes that score for `$=`, and the header it goes into is the one
    procmail's formail would add (later recipes file by it)."""
    conversion, outcomes = converted_and_agreed(tmp_path, """\
MAILDIR=$HOME/Maildir
:0 Bfh
* H ?? !^Lines:
* -1^0
*  1^1 ^.*$
| formail -A "Lines: $="
:0
* ^Lines: 1$
.One/
:0
* ^Lines: 3$
.Three/
:0
* ^Lines: 7$
.Seven/
:0
* ^Lines:
.Other/
""", {
        "1-one": mail("one", "a\n"),
        "2-three": mail("three", "a\n\nb\n"),
        "3-empty": mail("empty", ""),
        "4-kept": mail("kept", "x\n", Lines="7"),
        "5-two": mail("two", "a\nb\n"),
        "6-unterminated": mail("unterminated", "a\nb"),
    })
    assert outcomes == {"1-one": "folder:One", "2-three": "folder:Three",
                        "3-empty": "folder:INBOX", "4-kept": "folder:Seven",
                        "5-two": "folder:Other", "6-unterminated": "folder:One"}
    assert ('if allof(not exists "lines", execute :pipe :output "pm_score" "procmail-lines" '
            '["-1"]) {\n    addheader :last "Lines" "${pm_score}";') in conversion.script
    assert set(conversion.programs) == {"procmail-lines"}


def test_other_scoring_with_an_exponent_is_still_refused(tmp_path: Path):
    rc = tmp_path / ".procmailrc"
    rc.write_text(":0 B\n* 2^1 ^.*$\n.Long/\n")
    [gap] = convert(rc).gaps
    assert gap.line == 2 and "exponent other than 0" in gap.message
