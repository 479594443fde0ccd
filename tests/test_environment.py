"""cutover.environment: what it knows about step kinds stays in step with the step kinds."""

from __future__ import annotations

from cutover.environment import CONNECTOR_SECTIONS, STEP_CONNECTORS
from cutover.steps.base import STEP_KINDS, iter_kinds


def test_every_step_kind_says_which_of_its_params_name_connectors():
    list(iter_kinds())
    real_kinds = {kind for kind, cls in STEP_KINDS.items() if cls.__module__.startswith("cutover.")}
    assert real_kinds <= set(STEP_CONNECTORS), sorted(real_kinds - set(STEP_CONNECTORS))
    for kind, params in STEP_CONNECTORS.items():
        fields = STEP_KINDS[kind].Params.model_fields
        for param, section in params.items():
            assert param in fields, f"{kind} has no param {param}"
            assert section in (*CONNECTOR_SECTIONS, "inventory.sources"), section
