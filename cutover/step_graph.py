"""The `requires` graph of a plan, built from plain step ids (testable without YAML)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


class CycleFound(ValueError):
    def __init__(self, cycle: list[str]):
        self.cycle = cycle
        super().__init__("requires form a cycle: " + " -> ".join(cycle))


class StepGraph:
    """Steps in file order with their `requires`. Order is topological and, among steps that
    are free to go, follows the file: the plan reads the way it runs."""

    def __init__(self, requires: Mapping[str, Iterable[str]]):
        self.requires = {step: list(deps) for step, deps in requires.items()}
        self.order = self._topological_order()

    def unknown_requirements(self) -> list[tuple[str, str]]:
        return [(step, dep) for step, deps in self.requires.items() for dep in deps
                if dep not in self.requires]

    def dependents(self, step: str) -> list[str]:
        """Every step that requires `step`, directly or not, in run order."""
        found: set[str] = set()
        frontier = [step]
        while frontier:
            current = frontier.pop()
            for other, deps in self.requires.items():
                if current in deps and other not in found:
                    found.add(other)
                    frontier.append(other)
        return [s for s in self.order if s in found]

    def ancestors(self, step: str) -> list[str]:
        found: set[str] = set()
        frontier = [step]
        while frontier:
            for dep in self.requires.get(frontier.pop(), []):
                if dep in self.requires and dep not in found:
                    found.add(dep)
                    frontier.append(dep)
        return [s for s in self.order if s in found]

    def _topological_order(self) -> list[str]:
        position = {step: index for index, step in enumerate(self.requires)}
        state: dict[str, str] = {}
        order: list[str] = []

        def visit(step: str, path: list[str]) -> None:
            if state.get(step) == "done":
                return
            if state.get(step) == "visiting":
                raise CycleFound(path[path.index(step):] + [step])
            state[step] = "visiting"
            deps = sorted((d for d in self.requires[step] if d in self.requires),
                          key=position.__getitem__)
            for dep in deps:
                visit(dep, path + [step])
            state[step] = "done"
            order.append(step)

        for step in self.requires:
            visit(step, [])
        return order
