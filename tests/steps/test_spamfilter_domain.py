"""spamfilter.domain on the twins: rspamd settings, the quarantine script and Postfix's
smtpd_milters written as a real host has them, restored byte for byte. The lab
(tests/routes/test_lab.py) proves the same step with real rspamd, Postfix and Dovecot."""

from __future__ import annotations

import json

import pytest

from cutover.errors import WorldChanged
from cutover.steps.base import Change, Context
from cutover.steps.spamfilter_domain import SpamfilterDomain, SpamfilterDomainParams
from cutover.workspace import Workspace
from tests.routes.org import MILTER, Org

OTHER_MILTER = "inet:127.0.0.1:8891"  # an OpenDKIM already there
HAND_WRITTEN = "# the administrator's own rules\nlocal_users { priority = low; }\n"


@pytest.fixture
def workspace(tmp_path) -> Workspace:
    root = Org(main_cf={"myhostname": "mx.verify.example.org", "smtpd_milters": OTHER_MILTER},
               policy=None).write(tmp_path / "ws")
    (root / "rspamd" / "local.d" / "settings.conf").write_text(HAND_WRITTEN)
    return Workspace(root)


def context(workspace: Workspace, **params) -> Context:
    wanted = {"spamfilter": "linux-mx", "server": "linux-mx", "domain": "verify.example.org",
              "known_senders": ["@stations.example.net"], "reject": False,
              "quarantine_folder": "Quarantine", **params}
    return Context(workspace=Workspace(workspace.root), plan_name="p", step_id="s",
                   params=SpamfilterDomainParams(**wanted))


def files(workspace: Workspace) -> dict[str, str | None]:
    paths = ("rspamd/local.d/settings.conf", "dovecot/quarantine.sieve", "postfix/main.cf")
    return {p: (workspace.root / p).read_text() if (workspace.root / p).exists() else None
            for p in paths}


def applied(ctx: Context) -> list[Change]:
    step = SpamfilterDomain()
    changes = step.preview(ctx)
    for change in changes:
        step.apply(ctx, change)
    return changes


def test_preview_has_the_policy_the_quarantine_and_the_milter(workspace):
    changes = SpamfilterDomain().preview(context(workspace))
    assert [(c.item, c.action) for c in changes] == [
        ("rspamd linux-mx verify.example.org", "create"),
        ("quarantine sieve verify.example.org", "create"),
        ("postfix linux-mx smtpd_milters", "update")]
    assert changes[2].after["smtpd_milters"] == f"{OTHER_MILTER} {MILTER}"


def test_apply_writes_what_rspamd_dovecot_and_postfix_read(workspace):
    ctx = context(workspace)
    changes = applied(ctx)
    written = files(workspace)
    settings = written["rspamd/local.d/settings.conf"]
    assert settings.startswith(HAND_WRITTEN)  # the administrator's lines stay
    assert 'from = ["@stations.example.net"];' in settings
    assert 'apply { actions { reject = null; greylist = null; "soft reject" = null; } }' in \
        settings
    assert 'fileinto :create "Quarantine";' in written["dovecot/quarantine.sieve"]
    assert written["dovecot/quarantine.sieve"].startswith("require [")
    assert f"smtpd_milters = {OTHER_MILTER} {MILTER}\n" in written["postfix/main.cf"]
    assert "milter_default_action = accept\n" in written["postfix/main.cf"]
    assert SpamfilterDomain().verify(ctx, changes) == []
    assert SpamfilterDomain().preview(ctx) == []


def test_rollback_restores_every_file_byte_for_byte(workspace):
    before = files(workspace)
    ctx = context(workspace)
    changes = applied(ctx)
    for change in reversed(changes):  # as from the checkpoint
        SpamfilterDomain().rollback(ctx, Change.from_json(json.loads(json.dumps(
            change.to_json()))))
    assert files(workspace) == before
    assert SpamfilterDomain().verify(ctx, [c.inverse() for c in changes]) == []


def test_rollback_keeps_an_edit_made_since(workspace):
    ctx = context(workspace)
    changes = applied(ctx)
    path = workspace.root / "rspamd" / "local.d" / "settings.conf"
    path.write_text(path.read_text() + "later { priority = low; }\n")
    SpamfilterDomain().rollback(ctx, changes[0])
    assert path.read_text() == HAND_WRITTEN + "later { priority = low; }\n"


def test_verify_finds_a_block_edited_by_hand(workspace):
    ctx = context(workspace)
    changes = applied(ctx)
    path = workspace.root / "rspamd" / "local.d" / "settings.conf"
    path.write_text(path.read_text().replace("reject = null; greylist", "greylist"))
    findings = SpamfilterDomain().verify(ctx, changes)
    assert [f.item for f in findings] == ["rspamd linux-mx verify.example.org"]


def test_apply_refuses_when_the_block_changed_since_preview(workspace):
    ctx = context(workspace)
    change = SpamfilterDomain().preview(ctx)[0]
    applied(context(workspace, known_senders=["@partners.example.com"]))
    with pytest.raises(WorldChanged, match="preview again"):
        SpamfilterDomain().apply(ctx, change)


@pytest.mark.parametrize("params, message", [
    ({"domain": "not a domain"}, "domain name"),
    ({"known_senders": ["stations"]}, "address or @domain"),
    ({"quarantine_folder": 'Bad"Name'}, "folder name"),
])
def test_params_refuse_what_would_break_the_files(params, message):
    wanted = {"spamfilter": "s", "server": "s", "domain": "verify.example.org", **params}
    with pytest.raises(ValueError, match=message):
        SpamfilterDomainParams(**wanted)
