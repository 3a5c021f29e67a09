"""A rollback of a run that deactivated users (inactive_users) and handed their open tasks to another user
(orphaned_tasks, action = "reassign") gives the tasks back to their owners. Salesforce refuses a Task owned by
an inactive user (INACTIVE_OWNER_OR_USER), so the reactivations come before the owner restores, though the
reverse of the apply has them after. The tasks of owners already inactive before the run cannot be given back
as they stand: the preview and the dry run name them as failing, and why, before any write; the run's report
names them again, with what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.backup.rollback import users_order
from crmsweep.cleanup.preview import render_preview
from crmsweep.commands.apply import failures_hint, render_report
from crmsweep.model import Change, Op, Plan
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY
from crmsweep.sandbox.server import start_sandbox

TOKEN_ENV = "ROLLBACK_OWNERS_TOKEN"
REASSIGN_TO = "005070000000007AAA"


def yes(plan: Plan) -> bool:
    return True


def test_rollback_gives_back_the_tasks_of_users_the_run_deactivated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        info = sandbox.info
        config = tmp_path / "crmsweep.toml"
        config.write_text(
            f'[connections.org]\nprovider = "salesforce"\nurl = "{info.url}"\ntoken_env = "{TOKEN_ENV}"\n'
            f'ca_file = "{info.ca_file}"\n\n'
            f'[passes.orphaned_tasks]\naction = "reassign"\nreassign_to = "{REASSIGN_TO}"\n',
            encoding="utf-8",
        )
        monkeypatch.setenv(TOKEN_ENV, info.token)
        ws = api.Workspace.load(config, tmp_path / "home")
        scanned = api.scan(ws, "org", tmp_path / "plan.json", allow_over_cap=True)
        plan = scanned.result.plan
        deactivated = {c.record_id for c in plan.changes if c.pass_name == "inactive_users"}
        tasks = [c for c in plan.changes if c.pass_name == "orphaned_tasks"]
        handed = [c for c in tasks if c.before.get("OwnerId") in deactivated]
        with api.connect(ws, "org") as connector:
            owners = connector.read("User", sorted({str(c.before["OwnerId"]) for c in tasks}), ["IsActive"],
                                    include_deleted=False)
        inactive_before = {i for i, u in owners.items() if not u["IsActive"]}
        left = [c for c in tasks if c.before.get("OwnerId") in inactive_before]  # can never be given back
        assert handed and left and len(handed) + len(left) < len(tasks), \
            "the seed should have tasks of users the run deactivates, of users inactive before, of active users"
        applied = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
        assert applied is not None and applied.failed == 0

        # Before any write: the preview (the plan's notes) and the dry run name each task that will fail, and why.
        dry = api.rollback(ws, applied.run_id, confirm=yes, dry_run=True)
        assert dry.report is not None and dry.report.dry_run
        preview = render_preview(dry.plan)
        render_report(dry.report, resume_hint="", provider="salesforce")
        said = capsys.readouterr().err
        for change in left:
            owner = change.before["OwnerId"]
            for text in (preview, " ".join(dry.report.notes)):
                assert change.record_id in text and f"owner {owner} is inactive in the CRM: reactivate that user " \
                    "first, or leave these tasks with their current owner" in text
        assert f"{len(left):,} of which will fail" in said

        rolled = api.rollback(ws, applied.run_id, confirm=yes).report
        assert rolled is not None
        failed = {i["id"]: i for i in rolled.failed_items}
        # Every task of a user the run deactivated is given back; only those of owners inactive before fail,
        # each saying what to do, and the report names them all.
        assert set(failed) == {c.record_id for c in left}
        notes = " ".join(rolled.notes)
        for change in left:
            reason = f"owner {change.before['OwnerId']} is inactive in the CRM: reactivate that user first"
            assert reason in failed[change.record_id]["message"] and change.record_id in notes
        failures_hint(rolled, again=f"crmsweep rollback {applied.run_id}")
        hint = capsys.readouterr().err
        assert "reactivate that user first" in hint and "once their cause is fixed" not in hint

        with api.connect(ws, "org") as connector:
            live = connector.read("Task", [c.record_id for c in tasks], ["OwnerId"])
            users = connector.read("User", sorted(deactivated), ["IsActive"], include_deleted=False)
        for change in tasks:
            # Left as the run left them (and said so) only where the owner was inactive before the run.
            expected = REASSIGN_TO if change in left else change.before["OwnerId"]
            assert live[change.record_id]["OwnerId"] == expected
        assert users and all(u["IsActive"] for u in users.values())


def _user(op: Op, record_id: str) -> Change:
    active = op is Op.REACTIVATE
    return Change(op=op, object="User", record_id=record_id, before={"IsActive": not active},
                  after={"IsActive": active}, pass_name="inactive_users", reason="test")


def test_users_order_reactivates_first_and_deactivates_last() -> None:
    task = Change(op=Op.UPDATE, object="Task", record_id="00T000000000001AAA", before={"OwnerId": "a"},
                  after={"OwnerId": "b"}, pass_name="orphaned_tasks", reason="test")
    back, away = _user(Op.REACTIVATE, "005000000000001AAA"), _user(Op.DEACTIVATE, "005000000000002AAA")
    assert users_order([away, task, back], SALESFORCE_VOCABULARY) == [back, task, away]
