"""Red team (held): a deal edited after the apply that moved it to a lost stage is not overwritten by the
rollback: a rep who set the lost deal's forecast category since keeps it, and the deal is reported."""

from __future__ import annotations

from pathlib import Path

from crmsweep import api
from crmsweep.sandbox.server import RunningSandbox
from tests.test_apply_live import CONNECTION, other_admin, sobject, yes
from tests.test_stage_move_rollback import deal_state


def test_a_rollback_skips_a_moved_deal_edited_since_the_apply(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    sf = other_admin(sandbox)
    plan = api.scan(ws, CONNECTION, tmp_path / "plan.json", passes=["stale_open_deals"]).result.plan
    moved = [c.record_id for c in plan.changes]
    before = deal_state(sf, moved)
    applied = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert applied is not None and applied.failed == 0
    sobject(sf, "Opportunity").update(moved[0], {"Probability": 5})
    undone = api.rollback(ws, applied.run_id, confirm=yes).report
    assert undone is not None
    assert deal_state(sf, moved)[moved[0]] == ("Closed Lost", 5, "Omitted")
    assert [i["id"] for i in undone.skipped_items] == [moved[0]]
    assert {i: s for i, s in deal_state(sf, moved).items() if i != moved[0]} == {
        i: s for i, s in before.items() if i != moved[0]}
