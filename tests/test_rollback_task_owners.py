"""A rollback of a run that deactivated users (inactive_users) and handed their open tasks to another user
(orphaned_tasks, action = "reassign") gives the tasks back to their owners. Salesforce refuses a Task owned by
an inactive user (INACTIVE_OWNER_OR_USER), so the reactivations come before the owner restores, though the
reverse of the apply has them after."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.model import Plan
from crmsweep.sandbox.server import start_sandbox

TOKEN_ENV = "ROLLBACK_OWNERS_TOKEN"


def yes(plan: Plan) -> bool:
    return True


def test_rollback_gives_back_the_tasks_of_users_the_run_deactivated(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        info = sandbox.info
        config = tmp_path / "crmsweep.toml"
        config.write_text(
            f'[connections.org]\nprovider = "salesforce"\nurl = "{info.url}"\ntoken_env = "{TOKEN_ENV}"\n'
            f'ca_file = "{info.ca_file}"\n\n'
            '[passes.orphaned_tasks]\naction = "reassign"\nreassign_to = "005070000000007AAA"\n',
            encoding="utf-8",
        )
        monkeypatch.setenv(TOKEN_ENV, info.token)
        ws = api.Workspace.load(config, tmp_path / "home")
        scanned = api.scan(ws, "org", tmp_path / "plan.json", allow_over_cap=True)
        plan = scanned.result.plan
        deactivated = {c.record_id for c in plan.changes if c.pass_name == "inactive_users"}
        handed = [c for c in plan.changes
                  if c.pass_name == "orphaned_tasks" and c.before.get("OwnerId") in deactivated]
        assert deactivated and handed, "the seed should have users to deactivate who own open tasks"
        applied = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
        assert applied is not None and applied.failed == 0
        rolled = api.rollback(ws, applied.run_id, confirm=yes).report
        assert rolled is not None
        failed_handed = [i for i in rolled.failed_items if i["id"] in {c.record_id for c in handed}]
        assert failed_handed == [], f"{len(failed_handed)} of {len(handed)} tasks of users the run deactivated " \
                                    f"not given back: {failed_handed[:2]}"
