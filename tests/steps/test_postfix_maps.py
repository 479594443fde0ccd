import json
import shutil
from pathlib import Path

import pytest
import yaml

from cutover.errors import NotFound, ValidationFailed
from cutover.item_template import TemplateInvalid
from cutover.safety import drifted
from cutover.steps.base import Change, Context
from cutover.steps.postfix_maps import PostfixMaps, PostfixMapsParams
from cutover.workspace import Workspace

FILTER_HOP = "smtp:[filter.verify.example.org]:10025"

VIRTUAL = """\
# Old addresses of example.org (hand-kept; cutover edits single entries)

datarequest@example.org      datarequest@exchange.example.org
# bulletin: two readers
bulletin@example.org         alice@exchange.example.org,
    bob@exchange.example.org
postmaster@example.org       root
"""

TRANSPORT = """\
# next hops
example.org                  smtp:[exchange.example.org]
"""

ITEMS = [
    {"address": "datarequest@example.org", "local": "datarequest", "domain": "example.org"},
    {"address": "bulletin@example.org", "local": "bulletin", "domain": "example.org"},
    {"address": "station-aks01@example.org", "local": "station-aks01", "domain": "example.org"},
]


@pytest.fixture(autouse=True)
def _postfix_installed():
    if shutil.which("postmap") is None and not Path("/usr/sbin/postmap").exists():
        pytest.fail("postmap is missing: apt-get install postfix")


@pytest.fixture(params=["postmap", "text-twin"])
def workspace(request, tmp_path: Path) -> Workspace:
    postmap = request.param == "postmap"
    (tmp_path / "cutover.yaml").write_text(yaml.safe_dump({"postfix": {"linux-mx": {
        "kind": "postfix-maps", "path": "postfix/", "postmap": postmap}}}))
    maps = tmp_path / "postfix"
    maps.mkdir()
    (maps / "virtual").write_text(VIRTUAL)
    (maps / "transport").write_text(TRANSPORT)
    workspace = Workspace(tmp_path)
    for name in ("virtual", "transport"):  # a real server's maps are compiled already
        workspace.connector("postfix", "linux-mx").compile(name)
    return workspace


def context(workspace: Workspace, item: dict | None = None, **params) -> Context:
    params.setdefault("server", "linux-mx")
    params.setdefault("map", "virtual")
    return Context(workspace=Workspace(workspace.root), plan_name="phase1", step_id="s",
                   params=PostfixMapsParams(**params), item=item)


def redirect_params() -> dict:
    return {"entries": {"{address}": "{local}@verify.example.org"}, "filter_hop": FILTER_HOP}


def transport_params() -> dict:
    return {"map": "transport", "entries": {"verify.example.org": FILTER_HOP},
            "filter_hop": FILTER_HOP}


def run(step: PostfixMaps, ctx: Context) -> list[Change]:
    changes = step.preview(ctx)
    for change in changes:
        step.apply(ctx, change)
    return changes


def through_checkpoint(change: Change) -> Change:
    """What the runner hands to rollback: the Change as stored in the JSON checkpoint."""
    return Change.from_json(json.loads(json.dumps(change.to_json())))


def read(workspace: Workspace, name: str) -> bytes:
    return (workspace.root / "postfix" / name).read_bytes()


def test_preview_gives_one_change_per_templated_key(workspace):
    changes = PostfixMaps().preview(context(workspace, ITEMS[0], **redirect_params()))
    assert [(c.item, c.action, c.before["value"], c.after["value"]) for c in changes] == [
        ("linux-mx/virtual datarequest@example.org", "update",
         "datarequest@exchange.example.org", "datarequest@verify.example.org")]
    assert "datarequest@exchange.example.org -> datarequest@verify.example.org" in \
        changes[0].summary


def test_new_key_is_a_create_and_null_is_a_delete(workspace):
    ctx = context(workspace, ITEMS[2], entries={"{address}": "{local}@verify.example.org",
                                                "postmaster@example.org": None})
    actions = {c.after["key"]: c.action for c in PostfixMaps().preview(ctx)}
    assert actions == {"station-aks01@example.org": "create", "postmaster@example.org": "delete"}


def test_apply_then_verify_sees_new_values_and_filter_hop(workspace):
    step = PostfixMaps()
    transport = run(step, context(workspace, **transport_params()))
    changes = [c for item in ITEMS for c in run(step, context(workspace, item,
                                                              **redirect_params()))]
    assert step.verify(context(workspace, **transport_params()), transport) == []
    assert step.verify(context(workspace, **redirect_params()), changes) == []
    if workspace.config["postfix"]["linux-mx"]["postmap"]:
        assert (workspace.root / "postfix" / "virtual.db").exists()


def test_second_apply_changes_nothing(workspace):
    step = PostfixMaps()
    ctx = context(workspace, ITEMS[1], **redirect_params())
    changes = run(step, ctx)
    after_first = read(workspace, "virtual")
    for change in changes:
        step.apply(ctx, change)
    assert read(workspace, "virtual") == after_first
    assert step.preview(ctx) == []


def test_untouched_lines_stay_byte_for_byte(workspace):
    run(PostfixMaps(), context(workspace, ITEMS[0], **redirect_params()))
    assert read(workspace, "virtual").decode() == VIRTUAL.replace(
        "datarequest@example.org      datarequest@exchange.example.org",
        "datarequest@example.org      datarequest@verify.example.org")


def test_rollback_restores_files_byte_for_byte(workspace):
    step = PostfixMaps()
    planned = []  # the runner previews every item first, applies, then rolls back in reverse
    for item in ITEMS:
        ctx = context(workspace, item, entries={"{address}": "{local}@verify.example.org",
                                                "postmaster@example.org": None})
        planned += [(ctx, change) for change in step.preview(ctx)]
    for ctx, change in planned:
        step.apply(ctx, change)
    assert read(workspace, "virtual") != VIRTUAL.encode()
    for ctx, change in reversed(planned):
        step.rollback(ctx, through_checkpoint(change))
    assert read(workspace, "virtual") == VIRTUAL.encode()
    inverse = [change.inverse() for _, change in planned]
    assert step.verify(planned[0][0], inverse) == []


def test_rollback_is_idempotent(workspace):
    step = PostfixMaps()
    ctx = context(workspace, ITEMS[1], **redirect_params())
    changes = run(step, ctx)
    for _ in range(2):
        step.rollback(ctx, through_checkpoint(changes[0]))
    assert read(workspace, "virtual") == VIRTUAL.encode()


def test_rollback_of_created_map_removes_the_file(workspace):
    step = PostfixMaps()
    ctx = context(workspace, map="relay_domains", entries={"verify.example.org": "OK"})
    changes = run(step, ctx)
    assert read(workspace, "relay_domains") == b"verify.example.org\tOK\n"
    step.rollback(ctx, through_checkpoint(changes[0]))
    assert not (workspace.root / "postfix" / "relay_domains").exists()
    assert not (workspace.root / "postfix" / "relay_domains.db").exists()


def test_rollback_keeps_someone_elses_later_edit(workspace):
    step = PostfixMaps()
    ctx = context(workspace, ITEMS[0], **redirect_params())
    changes = run(step, ctx)
    path = workspace.root / "postfix" / "virtual"
    path.write_text(path.read_text() + "hostmaster@example.org       root\n")
    step.rollback(ctx, through_checkpoint(changes[0]))
    assert path.read_text() == VIRTUAL + "hostmaster@example.org       root\n"


def test_verify_fails_when_the_filter_hop_is_missing(workspace):
    step = PostfixMaps()
    ctx = context(workspace, ITEMS[0], **redirect_params())
    findings = step.verify(ctx, run(step, ctx))
    assert [f.problem for f in findings] == [
        f"filter hop {FILTER_HOP} is not in the route of verify.example.org "
        "(transport: none, content_filter: none)"]


def test_verify_fails_when_the_world_lost_the_value(workspace):
    step = PostfixMaps()
    ctx = context(workspace, ITEMS[0], entries={"{address}": "{local}@verify.example.org"})
    changes = run(step, ctx)
    workspace.connector("postfix", "linux-mx").write_source("virtual", VIRTUAL)  # by hand
    findings = step.verify(ctx, changes)
    assert len(findings) == 1
    assert "expected datarequest@verify.example.org" in findings[0].problem


def test_the_gate_sees_the_key_changed_since_preview(workspace):
    """The runner's safety gate observes the entry before applying it (cutover.safety)."""
    step = PostfixMaps()
    ctx = context(workspace, ITEMS[0], **redirect_params())
    changes = step.preview(ctx)
    path = workspace.root / "postfix" / "virtual"
    path.write_text(path.read_text().replace("datarequest@exchange", "someone@exchange"))
    reason = drifted(step, ctx, changes[0], [changes[0].before, changes[0].after])
    assert reason is not None and "someone@exchange.example.org" in reason


def test_malformed_map_line_is_a_located_error_with_exit_2(workspace):
    (workspace.root / "postfix" / "virtual").write_text(VIRTUAL + "lonely-key\n")
    with pytest.raises(ValidationFailed) as raised:
        PostfixMaps().preview(context(workspace, ITEMS[0], **redirect_params()))
    assert raised.value.exit_code == 2
    assert raised.value.lines() == [f"{workspace.root}/postfix/virtual:8: expected "
                                    "'key whitespace value', got 'lonely-key'"]


def test_unknown_server_is_named_with_exit_2(workspace):
    with pytest.raises(NotFound) as raised:
        PostfixMaps().preview(context(workspace, ITEMS[0], server="mx9", **redirect_params()))
    assert raised.value.exit_code == 2
    assert str(raised.value) == "cutover.yaml has no postfix.mx9 (configured: linux-mx)"


def test_template_naming_a_missing_field_is_an_error(workspace):
    with pytest.raises(TemplateInvalid, match="no field 'mailbox'"):
        PostfixMaps().preview(context(workspace, ITEMS[0], entries={"{mailbox}": "x@y.org"}))


def test_params_reject_a_map_path_and_empty_entries():
    with pytest.raises(ValueError, match="file name"):
        PostfixMapsParams(server="linux-mx", map="../virtual", entries={"a": "b"})
    with pytest.raises(ValueError, match="at least one key"):
        PostfixMapsParams(server="linux-mx", map="virtual", entries={})


# --- through the command line, as a plan writes the steps ----------------------------------

PLAN = f"""\
name: forwarding
steps:
  - id: filter-hop
    kind: postfix.maps
    params:
      server: linux-mx
      map: transport
      entries: {{verify.example.org: "{FILTER_HOP}"}}
      filter_hop: "{FILTER_HOP}"
  - id: alias
    kind: postfix.maps
    requires: [filter-hop]
    params:
      server: linux-mx
      map: virtual
      entries:
        datarequest@example.org: datarequest@verify.example.org
        postmaster@example.org: null
      filter_hop: "{FILTER_HOP}"
"""


def cutover(capsys, workspace: Workspace, *args: str) -> tuple[int, str]:
    from cutover import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["--workspace", str(workspace.root), *args])
    return exited.value.code, capsys.readouterr().err


def test_plan_run_then_rollback_restores_maps_byte_for_byte(workspace, capsys):
    (workspace.root / "plans").mkdir()
    (workspace.root / "plans" / "forwarding.yaml").write_text(PLAN)
    assert cutover(capsys, workspace, "run", "plans/forwarding.yaml", "--yes") == (0, "")
    assert b"datarequest@verify.example.org" in read(workspace, "virtual")
    for step_id in ("alias", "filter-hop"):
        assert cutover(capsys, workspace, "rollback", step_id, "--yes") == (0, "")
    assert read(workspace, "virtual") == VIRTUAL.encode()
    assert read(workspace, "transport") == TRANSPORT.encode()


def test_plan_naming_an_unknown_server_exits_2_naming_each_step_s_line(workspace, capsys):
    (workspace.root / "plans").mkdir()
    (workspace.root / "plans" / "bad.yaml").write_text(PLAN.replace("linux-mx", "mx9"))
    code, err = cutover(capsys, workspace, "run", "plans/bad.yaml", "--yes")
    plan = workspace.root / "plans" / "bad.yaml"
    missing = "server: cutover.yaml has no postfix.mx9 (configured: linux-mx)"
    assert (code, err.splitlines()) == (2, [f"error: {plan}:3: step filter-hop: {missing}",
                                            f"error: {plan}:10: step alias: {missing}"])
    assert read(workspace, "transport") == TRANSPORT.encode()


@pytest.mark.parametrize("name", ["sasl_passwd", "smtp_sasl_password_maps", "relay_credentials"])
def test_credential_maps_are_refused_so_no_password_reaches_state(name):
    from pydantic import ValidationError

    from cutover.steps.postfix_maps import PostfixMapsParams

    with pytest.raises(ValidationError, match="credentials map"):
        PostfixMapsParams(server="linux-mx", map=name, entries={"[relay]:587": "user:pw"})
