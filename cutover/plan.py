"""Plans: YAML files validated with pydantic, every problem reported at once as file:line.

    name: phase1-segregate
    description: ...
    steps:
      - id: lower-ttl
        kind: dns.records
        description: Lower MX TTLs ahead of the switch
        requires: [collect]
        for_each: {class: verification}     # optional: one item per inventory recipient
        confirm: true                        # false: never ask, even without --yes
        params: {...}                        # checked against the step kind's Params
"""

from __future__ import annotations

import hashlib
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cutover import yaml_loader
from cutover.errors import PlanInvalid, Problem
from cutover.step_graph import CycleFound, StepGraph
from cutover.steps.base import STEP_KINDS, Step, iter_kinds
from cutover.yaml_loader import Lines

STEP_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
#: a kind name that may have its own module: "dns.records" -> cutover/steps/dns_records.py
KIND_MODULE_NAME = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")


class StepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=STEP_ID_PATTERN)
    kind: str
    description: str = ""
    requires: list[str] = Field(default_factory=list)
    for_each: dict[str, str | list[str]] | None = None
    confirm: bool = True
    params: dict[str, Any] = Field(default_factory=dict)


class PlanSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=STEP_ID_PATTERN)
    description: str = ""
    steps: list[StepSpec] = Field(min_length=1)


@dataclass
class PlannedStep:
    spec: StepSpec
    kind: type[Step]
    params: BaseModel
    line: int

    @property
    def id(self) -> str:
        return self.spec.id


@dataclass
class Plan:
    name: str
    description: str
    path: Path
    steps: list[PlannedStep]
    digest: str
    graph: StepGraph = field(repr=False)

    def step(self, step_id: str) -> PlannedStep:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def has_step(self, step_id: str) -> bool:
        return any(step.id == step_id for step in self.steps)

    def ordered(self) -> list[PlannedStep]:
        return [self.step(step_id) for step_id in self.graph.order]


def _parse_yaml(path: Path, raw: bytes) -> tuple[Any, Lines]:
    try:
        return yaml_loader.load(yaml_loader.decode(raw))
    except yaml_loader.YamlProblem as problem:
        raise PlanInvalid([Problem(str(path), problem.line, problem.message)]) from None


def _pydantic_problems(error: ValidationError, file: str, lines: Lines,
                       prefix: tuple = ()) -> list[Problem]:
    problems = []
    for detail in error.errors():
        location = prefix + tuple(detail["loc"])
        where = ".".join(str(part) for part in location) or "plan"
        message = detail["msg"]
        if detail["type"] == "extra_forbidden":
            message = "unknown key"
        problems.append(Problem(file, lines.line(location), f"{where}: {message}"))
    return problems


def load_plan(path: Path | str) -> Plan:
    """Read and validate a plan; raise PlanInvalid listing every problem found."""
    path = Path(path)
    file = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PlanInvalid([Problem(file, 1, f"cannot read plan: {exc.strerror}")]) from None
    data, lines = _parse_yaml(path, raw)
    if not isinstance(data, dict):
        raise PlanInvalid([Problem(file, 1, "a plan is a mapping with name, description, steps")])
    try:
        spec = PlanSpec.model_validate(data)
    except ValidationError as exc:
        problems = _pydantic_problems(exc, file, lines)
        problems += _step_problems_from_raw(data, file, lines)
        raw = data.get("steps") if isinstance(data.get("steps"), list) else []
        problems += _cycle_problems([(r.get("id"), r.get("requires")) for r in raw
                                     if isinstance(r, dict)], file, lines)[1]
        raise PlanInvalid(_unique(problems)) from None
    steps, problems = _check_steps(spec, file, lines)
    graph, cycle = _cycle_problems([(s.id, s.requires) for s in spec.steps], file, lines)
    problems += cycle
    if problems:
        raise PlanInvalid(_unique(problems))
    digest = hashlib.sha256(raw).hexdigest()
    return Plan(spec.name, spec.description, path.resolve(), steps, digest, graph)


def _cycle_problems(steps: list[tuple[Any, Any]], file: str, lines: Lines
                    ) -> tuple[StepGraph | None, list[Problem]]:
    """The requires graph, or the cycle in it, whatever else is wrong with the plan. Skipped
    while ids are duplicated or `requires` names unknown steps (reported on their own)."""
    ids = [step_id for step_id, _ in steps]
    if not all(isinstance(step_id, str) for step_id in ids) or len(set(ids)) != len(ids) or \
            not all(isinstance(deps, list | None) for _, deps in steps):
        return None, []
    requires = {step_id: list(deps or []) for step_id, deps in steps}
    if any(dep not in requires for deps in requires.values() for dep in deps):
        return None, []
    try:
        return StepGraph(requires), []
    except CycleFound as cycle:
        where = lines.line(("steps", ids.index(cycle.cycle[0]), "requires"))
        return None, [Problem(file, where, str(cycle))]


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def _check_steps(spec: PlanSpec, file: str, lines: Lines
                 ) -> tuple[list[PlannedStep], list[Problem]]:
    problems: list[Problem] = []
    steps: list[PlannedStep] = []
    seen: dict[str, int] = {}
    ids = {s.id for s in spec.steps}
    for index, step in enumerate(spec.steps):
        at = ("steps", index)
        if step.id in seen:
            problems.append(Problem(file, lines.line(at + ("id",)),
                                    f"duplicate step id {step.id!r} (first at line "
                                    f"{seen[step.id]})"))
        seen.setdefault(step.id, lines.line(at + ("id",)))
        for position, dep in enumerate(step.requires):
            if dep not in ids:
                problems.append(Problem(file, lines.line(at + ("requires", position)),
                                        f"step {step.id!r} requires unknown step {dep!r}"))
            elif dep == step.id:
                problems.append(Problem(file, lines.line(at + ("requires", position)),
                                        f"step {step.id!r} requires itself"))
        planned, step_problems = _check_step(step, index, file, lines)
        problems += step_problems
        if planned is not None:
            steps.append(planned)
    return steps, problems


def _check_step(step: StepSpec, index: int, file: str, lines: Lines
                ) -> tuple[PlannedStep | None, list[Problem]]:
    """The step's kind exists and its params fit the kind."""
    at = ("steps", index)
    kind = step_kind(step.kind)
    if kind is None:
        known = ", ".join(sorted(iter_kinds()))  # importing the package registers every kind
        return None, [Problem(file, lines.line(at + ("kind",)),
                              f"unknown step kind {step.kind!r} (known: {known})")]
    try:
        params = kind.Params.model_validate(step.params)
    except ValidationError as exc:
        return None, _pydantic_problems(exc, file, lines, at + ("params",))
    return PlannedStep(step, kind, params, lines.line(at)), []


def step_kind(name: str) -> type[Step] | None:
    """The class of step kind `name`, importing only its module (a plan pays for the kinds it
    uses: not exchangelib for a mailbox copy); None when no module registers it."""
    if name not in STEP_KINDS and KIND_MODULE_NAME.fullmatch(name):
        module = f"cutover.steps.{name.replace('.', '_')}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # the kind's module is there but cannot import
                raise
    return STEP_KINDS.get(name)


def _step_problems_from_raw(data: dict, file: str, lines: Lines) -> list[Problem]:
    """When the plan's shape is wrong, still report unknown kinds and bad params of the steps
    that are well-formed, so the operator sees every problem in one go."""
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list):
        return []
    problems = []
    for index, raw in enumerate(raw_steps):
        try:
            step = StepSpec.model_validate(raw)
        except ValidationError:
            continue
        problems += _check_step(step, index, file, lines)[1]
    return problems


def plan_from_checkpoints(name: str, path: Path | None, state: Any,
                          base: Plan | None = None) -> Plan:
    """`base` (the plan file as it is now) plus every checkpointed step it no longer has,
    rebuilt from its checkpoint (kind and params): a rollback needs nothing else, so applied
    changes stay reversible whatever happened to the plan file."""
    from cutover.errors import NotFound

    list(iter_kinds())
    steps = list(base.steps) if base is not None else []
    known = {step.id for step in steps}
    for row in state.checkpoints(name):
        if row["step_id"] in known or row["kind"] not in STEP_KINDS:
            continue
        kind = STEP_KINDS[row["kind"]]
        try:
            params = kind.Params.model_validate(row["params"])
        except ValidationError:
            params = kind.Params.model_construct(**row["params"])
        spec = StepSpec.model_construct(id=row["step_id"], kind=row["kind"], description="",
                                        requires=[], for_each=None, confirm=True,
                                        params=row["params"])
        steps.append(PlannedStep(spec, kind, params, 0))
        known.add(row["step_id"])
    if not steps:
        raise NotFound(f"plan {name}: neither its file nor the state has any step")
    requires = {step.id: [dep for dep in step.spec.requires if dep in known] for step in steps}
    return Plan(name, base.description if base else "", path or Path(name), steps,
                base.digest if base else "", StepGraph(requires))
