"""The converter: procmailrc files in, Sieve text and located gaps out."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cutover.rules.convert import convert, folder_name

HEADER = "MAILDIR=$HOME/Maildir\nDEFAULT=$MAILDIR/\n"


def write_rc(tmp_path: Path, text: str, name: str = ".procmailrc") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_folder_names_follow_the_contract():
    assert [folder_name(p) for p in (".A.B/", "A/B/", "A.B", "", "inbox")] == \
        ["A/B", "A/B", "A/B", "INBOX", "INBOX"]


def test_each_block_names_its_source_line(tmp_path: Path):
    rc = write_rc(tmp_path, HEADER + ":0\n* ^Subject:.*REB\n.Bulletins/\n")
    script = convert(rc).script
    assert f"# {rc}:3: :0\nif header :regex \"subject\" \"REB\" {{" in script
    assert 'fileinto :create "Bulletins";\n    stop;' in script


def test_copy_flag_keeps_processing_and_uses_copy(tmp_path: Path):
    rc = write_rc(tmp_path, HEADER + ":0 c\n! a@example.org\n:0 c\n| /bin/ingest -q\n")
    script = convert(rc).script
    assert 'redirect :copy "a@example.org";' in script
    assert 'pipe :copy "ingest" ["-q"];' in script
    assert "stop;" not in script
    assert 'require ["copy", "vnd.dovecot.pipe"];' in script


def test_dev_null_discards_and_default_is_the_inbox_wherever_it_points(tmp_path: Path):
    rc = write_rc(tmp_path, "MAILDIR=$HOME/Maildir\nDEFAULT=$MAILDIR/.Unsorted/\n"
                            ":0\n* ^X-Spam: yes\n/dev/null\n:0\n* ^Subject:.*x\n$DEFAULT\n")
    script = convert(rc).script
    assert "discard;\n    stop;" in script
    assert 'fileinto "INBOX";' in script
    assert script.rstrip().endswith("implicit keep")


@pytest.mark.parametrize("default", ["/var/mail/$LOGNAME", "$ORGMAIL", "/var/spool/mail/amy",
                                     "$MAILDIR/inbox/"])
def test_system_mailbox_and_inbox_defaults_are_the_inbox(tmp_path: Path, default: str):
    rc = write_rc(tmp_path, f"MAILDIR=$HOME/Mail\nLOGNAME=amy\nDEFAULT={default}\n"
                            ":0\n* ^Subject:.*x\n$DEFAULT\n")
    conversion = convert(rc)
    assert conversion.gaps == []
    assert 'fileinto "INBOX";' in conversion.script


def test_without_maildir_folders_are_relative_to_home(tmp_path: Path):
    rc = write_rc(tmp_path, ":0\n* ^Subject:.*x\nmail/commits\n:0\n$HOME/Mail/junk\n")
    conversion = convert(rc)
    assert conversion.maildir_root == str(tmp_path.resolve())
    assert 'fileinto :create "mail/commits";' in conversion.script
    assert 'fileinto :create "Mail/junk";' in conversion.script


def test_maildir_set_in_an_includerc_file_counts(tmp_path: Path):
    write_rc(tmp_path, "MAILDIR=$HOME/mail\n", ".procmail/variables.pm")
    rc = write_rc(tmp_path, 'INCLUDERC="$HOME/.procmail/variables.pm"\n:0\n* ^Subject:.*x\n'
                            "lists/x\n")
    conversion = convert(rc)
    assert conversion.maildir_root == str(tmp_path.resolve() / "mail")
    assert 'fileinto :create "lists/x";' in conversion.script


def test_default_refusal_names_the_line_that_set_it(tmp_path: Path):
    rc = write_rc(tmp_path, "MAILDIR=$HOME/Mail\n:0\n* ^Subject:.*x\n{\n"
                            "  DEFAULT=`pick-default`\n}\n")
    gaps = convert(rc, allow_partial=True).gaps
    assert [(gap.line, gap.message.split(" ")[0]) for gap in gaps] == [
        (5, "DEFAULT=`...`"), (5, "DEFAULT")]
    assert gaps[1].message.startswith("DEFAULT is unknown at the end")


def test_case_sensitive_flag_uses_the_octet_comparator(tmp_path: Path):
    rc = write_rc(tmp_path, HEADER + ":0 D\n* ^Subject:.*ALERT\n.Alerts/\n")
    assert 'header :comparator "i;octet" :regex "subject" "ALERT"' in convert(rc).script


def test_includerc_is_inlined_relative_to_home(tmp_path: Path):
    write_rc(tmp_path, ":0\n* ^Subject:.*list\n.Lists/\n", ".procmail/lists.rc")
    rc = write_rc(tmp_path, HEADER + "INCLUDERC=$HOME/.procmail/lists.rc\n")
    conversion = convert(rc)
    assert f"# {tmp_path / '.procmail/lists.rc'}:1: :0" in conversion.script
    assert conversion.files == [str(rc), str(tmp_path / ".procmail/lists.rc")]


def test_untranslatable_recipes_are_gaps_with_lines(tmp_path: Path):
    rc = write_rc(tmp_path, HEADER + ":0 fw\n| spamc | tee x\n:0\n* ? test -f x\n.X/\n"
                                     "V=`date`\n:0\n* $ ^Subject:.*$V\n.Y/\n"
                                     ":0\n* 1^1 ^Received:\n.Z/\nCODE=$?\n:0\n* CODE ?? 1\n.V/\n")
    conversion = convert(rc, allow_partial=True)
    assert [(gap.line, gap.message.split(" ")[0]) for gap in conversion.gaps] == [
        (4, "a"), (6, "a"), (8, "V=`...`"), (10, "$V"), (13, "a"), (17, "tests")]
    assert f"# UNTRANSLATED {rc}:4: a shell pipeline" in conversion.script


def test_a_and_e_flags_chain_through_variables(tmp_path: Path):
    rc = write_rc(tmp_path, HEADER + ":0\n* ^From:.*duty\n.Duty/\n:0 E\n* ^Subject:.*cal\n"
                                     ".Cal/\n")
    script = convert(rc).script
    assert 'set "pm_ran_1" "1";' in script
    assert 'if allof(not string :is "${pm_ran_1}" "1", header :regex "subject" "cal")' in script


def test_weighted_conditions_become_the_combinations_that_score(tmp_path: Path):
    rc = write_rc(tmp_path, HEADER + ":0\n* 2^0 ^Subject:.*a\n* -1^0 ^Subject:.*b\n.S/\n")
    script = convert(rc).script
    assert ('if anyof(allof(header :regex "subject" "a", header :regex "subject" "b"), '
            'allof(header :regex "subject" "a", not header :regex "subject" "b"))') in script


def test_folder_outside_the_mail_root_is_a_gap(tmp_path: Path):
    rc = write_rc(tmp_path, HEADER + ":0\n/srv/archive/x\n")
    assert "outside the mail root" in convert(rc).gaps[0].message


rc_lines = st.sampled_from([
    ":0", ":0c", ":0 A", ":0 E", ":0 B", ":0 D", "* ^Subject:.*x", "* ! ^From: *y",
    "* 10^0 ^Subject:.*z", "* > 10", "* B ?? body", "{", "}", ".Folder/", "! a@b.example",
    "| prog arg", "/dev/null", "MAILDIR=$HOME/Maildir", "DEFAULT=$MAILDIR/.X/", "X=`cmd`",
    "* $ ^Subject:.*$X", "INCLUDERC=$HOME/missing.rc", "garbage ((", "* ^Subject:[", "",
    ":0 fhw", ":0 Wh:", "| formail -D 8192 cache", "| formail -A 'X: y'", "* ^From.*\\/[a-z]+",
    ".lists.$MATCH/", "{ HOST }", "EXITCODE=75", ":0 e", ":O:", "* ^(To|CC):.*x", "* .*",
    "* ^^rom[ ]", "LINES=| wc -l", "NL=\"", "\"", "HOST", "* X-Spam: Yes"])


@settings(max_examples=150, deadline=None)
@given(st.lists(rc_lines, max_size=25).map("\n".join))
def test_converter_never_crashes(tmp_path_factory, text: str):
    directory = tmp_path_factory.mktemp("fuzz")
    conversion = convert(write_rc(directory, text), allow_partial=True)
    assert conversion.script.startswith("# Generated by cutover")


def test_a_generated_program_is_the_same_bytes_for_every_account(tmp_path: Path):
    """One installed copy serves every account whose recipes need it: the program names no rc
    file, account or line."""
    programs = []
    for account, padding in (("amy", ""), ("bob", "# bob's rules\n\n")):
        rc = tmp_path / account / ".procmailrc"
        rc.parent.mkdir()
        rc.write_text(padding + ":0 b\n| /usr/local/bin/ingest-bulletin\n")
        programs.append(convert(rc).programs)
    assert programs[0] == programs[1] and set(programs[0]) == {"ingest-bulletin.body"}
