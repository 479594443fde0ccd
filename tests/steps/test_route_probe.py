"""route.probe through the twins (the demo's way): the canary is stored where the routing model
says the address ends, read back and removed; verify is `routes check` on the address. The lab
(tests/routes/test_lab.py) runs the same probe through real Postfix, rspamd and Dovecot."""

from __future__ import annotations

import pytest

from cutover.routes.probe import ProbeFailed
from cutover.steps.base import Context
from cutover.steps.route_probe import RouteProbe, RouteProbeParams, expected_end
from cutover.workspace import Workspace
from tests.routes.org import Org

ITEM = {"address": "datarequest@example.org", "local": "datarequest", "domain": "example.org"}
FORWARDED = {"datarequest@example.org": ("datarequest@verify.example.org", False)}


def context(root, **params) -> Context:
    wanted = {"address": "{address}", "expect": "linux:{local}@verify.example.org", **params}
    return Context(workspace=Workspace(root), plan_name="p", step_id="s",
                   params=RouteProbeParams(**wanted), item=ITEM)


def maildir_files(root) -> list:
    return sorted(p.name for p in (root / "mail").rglob("*") if p.parent.name in ("new", "cur"))


def test_preview_names_the_canary_and_where_it_must_arrive(tmp_path):
    root = Org(exchange_forwarding=FORWARDED).write(tmp_path / "ws")
    changes = RouteProbe().preview(context(root))
    assert [(c.item, c.action, c.after) for c in changes] == [
        ("probe datarequest@example.org", "create",
         {"address": "datarequest@example.org", "expect": "linux:datarequest@verify.example.org"})]


def test_apply_delivers_through_the_twins_and_removes_the_canary(tmp_path):
    root = Org(exchange_forwarding=FORWARDED).write(tmp_path / "ws")
    before = maildir_files(root)
    logged = []
    ctx = context(root)
    ctx.log = logged.append
    step = RouteProbe()
    changes = step.preview(ctx)
    step.apply(ctx, changes[0])
    assert logged == ["datarequest@example.org: arrived in linux datarequest@verify.example.org "
                      f"INBOX after {logged[0].split('after ')[1]}"]
    assert "(twin)" in logged[0]
    assert maildir_files(root) == before
    assert step.verify(ctx, changes) == []


def test_apply_fails_naming_where_the_mail_goes_instead(tmp_path):
    root = Org().write(tmp_path / "ws")  # Exchange does not forward yet
    ctx = context(root)
    step = RouteProbe()
    with pytest.raises(ProbeFailed) as failed:
        step.apply(ctx, step.preview(ctx)[0])
    assert failed.value.exit_code == 1
    assert "did not arrive in linux: datarequest@verify.example.org" in str(failed.value)
    findings = step.verify(ctx, step.preview(ctx))
    assert [f.problem.split(":")[0] for f in findings] == ["routes to onprem"]


def test_verify_reports_the_routes_check_findings_of_the_address(tmp_path):
    root = Org(exchange_forwarding=FORWARDED, main_cf={}, policy=None).write(tmp_path / "ws")
    ctx = context(root)
    findings = RouteProbe().verify(ctx, RouteProbe().preview(ctx))
    assert [f.problem.split(":")[0] for f in findings] == ["no-filter"]
    assert RouteProbe().verify(context(root, check="none"), RouteProbe().preview(ctx)) == []


def test_expected_end_reads_side_mailbox_and_folder():
    assert expected_end("linux:a@b.org/Quarantine").folder == "Quarantine"
    assert expected_end("pipeline:ims-gateway").mailbox == "ims-gateway"
    with pytest.raises(ValueError, match="SIDE:MAILBOX"):
        RouteProbeParams(address="a@b.org", expect="mars:a@b.org")
