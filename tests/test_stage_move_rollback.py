"""A deal moved to a lost stage, and moved back by a rollback, keeps the probability and forecast category a
rep had set. The CRM sets both from the stage when a write moves it ("implicitly set based on the StageName
value, but you can override that value": Opportunity, Object Reference). A move that wrote the stage
alone let the CRM zero them unseen by the preview, and its undo, writing the stage alone, let the CRM put
the old stage's defaults there: a 35% deal came back at 20%, its Best Case forecast as Pipeline."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmsweep import api
from crmsweep.model import Plan
from crmsweep.sandbox.server import RunningSandbox
from tests.test_apply_live import CONNECTION, other_admin, sobject, yes

FIELDS = ("StageName", "Probability", "ForecastCategoryName")


def deal_state(sf: Any, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    quoted = ", ".join(f"'{i}'" for i in ids)
    rows = sf.query_all(f"SELECT Id, {', '.join(FIELDS)} FROM Opportunity WHERE Id IN ({quoted})")["records"]
    return {r["Id"]: tuple(r[f] for f in FIELDS) for r in rows}


def test_the_sandbox_sets_probability_and_forecast_from_a_new_stage_unless_the_write_sets_them(
    sandbox: RunningSandbox,
) -> None:
    sf = other_admin(sandbox)
    deal = sf.query("SELECT Id FROM Opportunity WHERE StageName = 'Qualification' LIMIT 1")["records"][0]["Id"]
    opportunity = sobject(sf, "Opportunity")
    opportunity.update(deal, {"Probability": 35, "ForecastCategoryName": "Best Case"})
    assert deal_state(sf, [deal])[deal] == ("Qualification", 35, "Best Case")  # same stage: kept as typed
    opportunity.update(deal, {"StageName": "Closed Lost"})
    assert deal_state(sf, [deal])[deal] == ("Closed Lost", 0, "Omitted")
    opportunity.update(deal, {"StageName": "Qualification", "Probability": 35})
    assert deal_state(sf, [deal])[deal] == ("Qualification", 35, "Pipeline")


def test_a_rollback_of_a_stage_move_restores_the_probability_and_forecast_category_it_had(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    sf = other_admin(sandbox)
    first = api.scan(ws, CONNECTION, tmp_path / "first.json", passes=["stale_open_deals"]).result.plan
    moved = [c.record_id for c in first.changes]
    assert len(moved) >= 3, "the seed plants deals left open past their close date"
    # Reps set their own numbers on some: the plan must carry them back exactly.
    opportunity = sobject(sf, "Opportunity")
    opportunity.update(moved[0], {"Probability": 35, "ForecastCategoryName": "Best Case"})
    opportunity.update(moved[1], {"Probability": 5, "ForecastCategoryName": "Commit"})
    before = deal_state(sf, moved)

    plan: Plan = api.scan(ws, CONNECTION, tmp_path / "plan.json", passes=["stale_open_deals"]).result.plan
    assert sorted(c.record_id for c in plan.changes) == sorted(moved)
    # The preview shows everything the move changes, the CRM's own consequences included.
    assert {c.record_id: c.after for c in plan.changes}[moved[0]] == {
        "StageName": "Closed Lost", "Probability": 0, "ForecastCategoryName": "Omitted"}
    applied = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert applied is not None and applied.failed == 0
    assert set(deal_state(sf, moved).values()) == {("Closed Lost", 0, "Omitted")}

    undone = api.rollback(ws, applied.run_id, confirm=yes).report

    assert undone is not None and undone.failed == 0 and not undone.skipped_items
    assert deal_state(sf, moved) == before
    assert before[moved[0]][1:] == (35, "Best Case") and before[moved[1]][1:] == (5, "Commit")
