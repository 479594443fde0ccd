"""Plans are validated at load time; every problem is reported at once as file:line."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tests.runner.filestep  # noqa: F401 - registers test.files
from cutover.errors import PlanInvalid
from cutover.plan import load_plan


def write(tmp_path, text):
    path = tmp_path / "plan.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def problems(path):
    with pytest.raises(PlanInvalid) as raised:
        load_plan(path)
    return raised.value.lines()


def test_valid_plan_loads_in_dependency_order(tmp_path):
    plan = load_plan(write(tmp_path, """\
        name: ok
        steps:
          - {id: b, kind: test.files, requires: [a], params: {files: {}}}
          - {id: a, kind: test.files, params: {files: {}}}
        """))
    assert [s.id for s in plan.ordered()] == ["a", "b"]


def test_plan_with_cycle_names_both_steps(tmp_path):
    path = write(tmp_path, """\
        name: loop
        steps:
          - id: a
            kind: test.files
            requires: [b]
            params: {files: {}}
          - id: b
            kind: test.files
            requires: [a]
            params: {files: {}}
        """)
    [line] = problems(path)
    assert line.startswith(f"{path}:5: ") and "a -> b -> a" in line


def test_every_problem_is_reported_with_its_line(tmp_path):
    path = write(tmp_path, """\
        name: many
        surprise: 1
        steps:
          - id: a
            kind: no.such.kind
          - id: a
            kind: test.files
            requires: [ghost]
            params: {files: {}, colour: red}
        """)
    lines = problems(path)
    assert f"{path}:2: surprise: unknown key" in lines
    assert any(line.startswith(f"{path}:5: ") and "unknown step kind 'no.such.kind'" in line
               for line in lines)


def test_duplicate_ids_and_unknown_requirements_are_located(tmp_path):
    path = write(tmp_path, """\
        name: dup
        steps:
          - {id: a, kind: test.files, params: {files: {}}}
          - {id: a, kind: test.files, requires: [ghost], params: {files: {}}}
        """)
    lines = problems(path)
    assert f"{path}:4: duplicate step id 'a' (first at line 3)" in lines
    assert f"{path}:4: step 'a' requires unknown step 'ghost'" in lines


def test_bad_params_are_reported_at_their_line(tmp_path):
    path = write(tmp_path, """\
        name: params
        steps:
          - id: a
            kind: test.files
            params:
              files: {x: "1"}
              colour: red
        """)
    assert problems(path) == [f"{path}:7: steps.0.params.colour: unknown key"]


@pytest.mark.parametrize("text, expected", [
    ("name: [unclosed\n", "invalid YAML"),
    ("- just\n- a list\n", "a plan is a mapping"),
    ("name: x\nsteps: []\n", "steps: List should have at least 1 item"),
])
def test_malformed_plans_get_one_located_line(tmp_path, text, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    [line] = problems(path)
    assert line.startswith(f"{path}:") and expected in line


step_ids = st.sampled_from(["a", "b", "c", "d"])
raw_steps = st.lists(st.fixed_dictionaries(
    {"id": step_ids, "kind": st.sampled_from(["test.files", "bogus"]),
     "requires": st.lists(step_ids, max_size=3)},
    optional={"params": st.sampled_from([{"files": {}}, {"files": 3}, {"nope": 1}]),
              "extra": st.integers()}), max_size=5)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=raw_steps)
def test_generated_plans_load_or_fail_with_located_problems_only(tmp_path, steps):
    import yaml

    path = tmp_path / "gen.yaml"
    path.write_text(yaml.safe_dump({"name": "gen", "steps": steps}))
    try:
        plan = load_plan(path)
    except PlanInvalid as invalid:
        assert invalid.problems
        for line in invalid.lines():
            file, number, message = line.split(":", 2)
            assert file == str(path) and int(number) >= 1 and message.strip()
    else:
        ids = [s["id"] for s in steps]
        assert len(set(ids)) == len(ids)
        assert all(s["kind"] == "test.files" for s in steps)
        order = [s.id for s in plan.ordered()]
        for step in steps:
            for dep in step["requires"]:
                assert order.index(dep) < order.index(step["id"])


def test_a_cycle_is_reported_together_with_other_problems(tmp_path):
    path = write(tmp_path, """\
        name: both
        colour: blue
        steps:
          - {id: a, kind: test.files, requires: [b], params: {files: {}}}
          - {id: b, kind: test.files, requires: [a], params: {files: {}, size: 3}}
        """)
    assert set(problems(path)) == {f"{path}:2: colour: unknown key",
                                   f"{path}:5: steps.1.params.size: unknown key",
                                   f"{path}:4: requires form a cycle: a -> b -> a"}


def test_a_plan_loads_only_the_step_kinds_it_names(tmp_path):
    # a mailbox copy pays for no other kind's imports (the Exchange ones cost ~0.2 s)
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nsteps:\n  - {id: copy, kind: mailbox.sync, "
                    "params: {source: a, target: b}}\n")
    code = ("import sys; from cutover.plan import load_plan; "
            f"load_plan({str(path)!r}); "
            "print(sorted(m for m in sys.modules if m.startswith('cutover.steps.')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "['cutover.steps.base', 'cutover.steps.mailbox_sync']"


def test_an_unknown_kind_is_reported_with_every_known_kind(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\nsteps:\n  - {id: a, kind: no.such}\n")
    with pytest.raises(PlanInvalid) as raised:
        load_plan(path)
    message = str(raised.value)
    assert "unknown step kind 'no.such'" in message
    assert "dns.records" in message and "mailbox.sync" in message and "test.files" in message
