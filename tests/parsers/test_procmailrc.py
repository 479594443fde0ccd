"""procmailrc text in, syntax tree and located problems out."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from cutover.parsers.procmailrc import Assignment, Recipe, parse

RC = """\
# comment
MAILDIR=$HOME/Maildir   # trailing comment
DEFAULT="$MAILDIR/"
QUIET='no $expansion'

:0 Wc: bulletin.lock
* ^Subject:.*REB
* ! 100^0 ^From:.*idc
* > 1000
* B ?? ^STA_LIST
| /usr/local/bin/ingest \\
    --queue bulletins

:0
{
    :0
    * ^Subject: *x
    .X/
}
"""


def test_assignments_keep_values_without_comments_and_quotes():
    nodes = parse(RC, "rc").nodes
    assignments = [node for node in nodes if isinstance(node, Assignment)]
    assert [(a.line, a.name, a.value, a.quoted) for a in assignments] == [
        (2, "MAILDIR", "$HOME/Maildir", False),
        (3, "DEFAULT", "$MAILDIR/", False),
        (4, "QUIET", "no $expansion", True),
    ]


def test_recipe_has_flags_lockfile_conditions_and_joined_action():
    recipe = [node for node in parse(RC, "rc").nodes if isinstance(node, Recipe)][0]
    assert (recipe.line, recipe.flags, recipe.lockfile) == (6, "Wc", "bulletin.lock")
    kinds = [(c.line, c.kind, c.negated, c.weight, c.text, c.variable)
             for c in recipe.conditions]
    assert kinds == [
        (7, "regex", False, None, "^Subject:.*REB", ""),
        (8, "regex", True, (100.0, 0.0), "^From:.*idc", ""),
        (9, "size_over", False, None, "1000", ""),
        (10, "variable", False, None, "^STA_LIST", "B"),
    ]
    assert recipe.action is not None
    assert (recipe.action.line, recipe.action.kind) == (11, "pipe")
    assert recipe.action.text == "/usr/local/bin/ingest --queue bulletins"


def test_nested_block_is_parsed_with_its_own_recipes():
    recipes = [node for node in parse(RC, "rc").nodes if isinstance(node, Recipe)]
    block = recipes[1].block
    assert block is not None and len(block) == 1
    inner = block[0]
    assert isinstance(inner, Recipe) and inner.line == 16
    assert inner.action is not None and inner.action.text == ".X/"


def test_unclosed_block_is_reported_at_its_opening_line():
    problems = parse(":0\n* ^Subject: x\n{\n  :0\n  .X/\n", "rc").problems
    assert [str(p) for p in problems] == ["rc:3: '{' block is never closed"]


def test_stray_closing_brace_is_a_problem_with_its_line():
    problems = parse("}\nMAILDIR=x\n", "rc").problems
    assert [(p.line, p.message.split(" ")[0]) for p in problems] == [(1, "'}'")]


def test_stray_text_line_is_skipped_with_a_warning_and_unsets_its_words_as_procmail_does():
    parsed = parse("MAILDIR=x\n Pipe all mail through it (really)\n", "rc")
    assert parsed.problems == []
    assert [(w.line, w.message.split(" ")[0]) for w in parsed.warnings] == [(2, "skipped")]
    unset = [(n.name, n.value) for n in parsed.nodes if isinstance(n, Assignment)][1:]
    assert unset == [("Pipe", None), ("all", None), ("mail", None), ("through", None),
                     ("it", None)]


def test_multi_line_quoted_assignment_keeps_the_newline_and_its_lines():
    parsed = parse('NL="\n"\nLOG="two\nlines"\nMAILDIR=x\n', "rc")
    assert parsed.problems == []
    assert [(n.line, n.end_line, n.name, n.value) for n in parsed.nodes] == [
        (1, 2, "NL", "\n"), (3, 4, "LOG", "two\nlines"), (5, 5, "MAILDIR", "x")]


def test_one_line_block_holds_its_statements():
    recipe = parse(":0\n* ^Subject: x\n{ EXITCODE=75 HOST }\n", "rc").nodes[0]
    assert isinstance(recipe, Recipe) and recipe.block is not None
    assert [(n.name, n.value) for n in recipe.block] == [("EXITCODE", "75"), ("HOST", None)]


def test_recipe_start_without_its_zero_is_read_as_zero_with_a_warning():
    parsed = parse(":O:\n* ^From.*x\nfolder\n", "rc")
    assert parsed.problems == []
    assert isinstance(parsed.nodes[0], Recipe) and parsed.nodes[0].lockfile is None
    assert parsed.warnings[0].line == 1


def test_action_line_outside_a_recipe_in_a_block_is_skipped_with_a_warning():
    parsed = parse(":0\n{\n  X=`cmd`\n  |/dev/null\n}\n", "rc")
    assert parsed.problems == []
    assert [w.line for w in parsed.warnings] == [4]


def test_flags_may_be_spaced_and_negation_may_follow_the_variable():
    parsed = parse(":0 A fhw\n* H ?? ! ^Lines:\n| cat\n", "rc")
    recipe = parsed.nodes[0]
    assert isinstance(recipe, Recipe) and recipe.flags == "Afhw"
    condition = recipe.conditions[0]
    assert (condition.variable, condition.negated, condition.text) == ("H", True, "^Lines:")


def test_action_assigning_a_program_output_is_a_capture():
    recipe = parse(":0 bw\nLINES=|wc -l\n", "rc").nodes[0]
    assert isinstance(recipe, Recipe) and recipe.action is not None
    assert (recipe.action.kind, recipe.action.variable, recipe.action.text) == (
        "capture", "LINES", "wc -l")


def test_recipe_without_action_is_reported():
    problems = parse("MAILDIR=x\n:0\n* ^Subject: x\n", "rc").problems
    assert [str(p) for p in problems] == ["rc:2: recipe has no action"]


def test_unknown_flags_and_old_style_recipes_are_reported():
    problems = parse(":0 Zq\n.X/\n:2\n.Y/\n", "rc").problems
    assert [(p.line, p.message) for p in problems] == [
        (1, "unknown recipe flag(s) 'Zq'"),
        (3, "old-style recipe (:N): write :0 with '*' conditions"),
    ]


def test_size_condition_needs_a_number():
    problems = parse(":0\n* > big\n.X/\n", "rc").problems
    assert [p.line for p in problems] == [2]


def test_forward_and_folder_actions():
    nodes = parse(":0\n! a@example.org b@example.org\n:0\n.Folder.Sub/ # note\n", "rc").nodes
    actions = [(n.action.kind, n.action.text) for n in nodes if isinstance(n, Recipe)
               and n.action is not None]
    assert actions == [("forward", "a@example.org b@example.org"), ("folder", ".Folder.Sub/")]


procmail_alphabet = st.sampled_from(
    [":0", ":0c", ":0 Wh:", "* ", "*", "!", "|", "{", "}", "\n", "\\\n", "=", "MAILDIR",
     "^Subject:", ".*", "$", "`", "'", '"', "#", " ", "\t", "?", "??", "<", ">", "100^0",
     "x", ".F/", "/dev/null", "\r\n", "\x00", "é"])


@settings(max_examples=300, deadline=None)
@given(st.lists(procmail_alphabet, max_size=60).map("".join))
def test_parser_never_crashes_and_locates_every_problem(text: str):
    parsed = parse(text, "fuzz.rc")
    line_count = text.count("\n") + 1
    for problem in parsed.problems:
        assert 1 <= problem.line <= line_count


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parser_never_crashes_on_arbitrary_text(text: str):
    parsed = parse(text, "fuzz.rc")
    assert all(problem.file == "fuzz.rc" for problem in parsed.problems)
