import pytest

from cutover.step_graph import CycleFound, StepGraph


def test_order_follows_the_file_among_free_steps():
    graph = StepGraph({"a": [], "b": ["c"], "c": [], "d": ["a"]})
    assert graph.order == ["a", "c", "b", "d"]


def test_diamond_runs_each_step_once_after_its_requirements():
    graph = StepGraph({"top": [], "left": ["top"], "right": ["top"], "bottom": ["left", "right"]})
    assert graph.order == ["top", "left", "right", "bottom"]
    assert graph.dependents("top") == ["left", "right", "bottom"]
    assert graph.ancestors("bottom") == ["top", "left", "right"]


def test_cycle_names_every_step_in_it():
    with pytest.raises(CycleFound) as found:
        StepGraph({"a": ["c"], "b": ["a"], "c": ["b"]})
    assert set(found.value.cycle) == {"a", "b", "c"}
    assert "->" in str(found.value)
