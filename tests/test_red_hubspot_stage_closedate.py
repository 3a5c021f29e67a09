"""Red team: HubSpot sets a deal's close date itself when a write moves it to a closed stage: "A deal's close
date is automatically set or updated by HubSpot when ... a user moves a deal into a closed-won or a closed-lost
deal stage" (HubSpot's default deal properties, knowledge base), and not when it moves back to an open stage.
stale_open_deals wrote `dealstage` alone, so the apply changed each deal's close date unseen by the preview, and
the rollback, writing the stage alone, brought the deal back open with today as its close date: its own date
was lost, and the deal no longer looked overdue to the next scan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmsweep import api
from crmsweep.sandbox.server import RunningSandbox
from tests import test_red_stale_lists_exclude as lists_tests
from tests.hubspot_fixtures import sdk_client

FIELDS = ["dealstage", "closedate", "hs_is_closed"]
hubspot = lists_tests.hubspot  # the fixture: a HubSpot sandbox and a workspace naming it "hs"


def yes(review: object) -> bool:
    return True


def deals(sandbox: RunningSandbox, ids: list[str]) -> dict[str, tuple[Any, ...]]:
    found = sdk_client(sandbox).crm.deals.batch_api.read(
        {"inputs": [{"id": i} for i in ids], "properties": FIELDS})
    return {r.id: tuple(r.properties.get(f) for f in FIELDS) for r in found.results}


def test_the_sandbox_sets_the_close_date_when_a_write_closes_a_deal(hubspot: Any) -> None:
    _ws, sandbox = hubspot
    client = sdk_client(sandbox)
    deal = client.crm.deals.basic_api.create({"properties": {"dealname": "Pilot", "dealstage": "appointmentscheduled",
                                                             "pipeline": "default",
                                                             "closedate": "2020-01-31T00:00:00.000Z"}}).id
    client.crm.deals.basic_api.update(deal, {"properties": {"dealstage": "closedlost"}})
    closed = deals(sandbox, [deal])[deal]
    assert closed[0] == "closedlost" and closed[1] > "2026-"  # today, as HubSpot sets it
    client.crm.deals.basic_api.update(deal, {"properties": {"dealstage": "appointmentscheduled"}})
    assert deals(sandbox, [deal])[deal][1] == closed[1]  # not set back on a move to an open stage
    client.crm.deals.basic_api.update(deal, {"properties": {"dealstage": "closedwon",
                                                            "closedate": "2020-02-29T00:00:00.000Z"}})
    assert deals(sandbox, [deal])[deal][1] == "2020-02-29T00:00:00.000Z"  # a close date the same write gives stands


def test_the_preview_shows_the_close_date_and_a_rollback_restores_it(hubspot: Any, tmp_path: Path) -> None:
    ws, sandbox = hubspot
    plan = api.scan(ws, "hs", tmp_path / "plan.json", passes=["stale_open_deals"], allow_over_cap=True).result.plan
    ids = [c.record_id for c in plan.changes]
    assert len(ids) >= 2
    before = deals(sandbox, ids)
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and report.failed == 0 and report.applied == len(ids)
    after = deals(sandbox, ids)
    changed = {i for i in ids if after[i][1] != before[i][1]}
    shown = {c.record_id for c in plan.changes if "closedate" in c.after}
    assert changed <= shown, f"the apply moved the close date of {len(changed - shown)} deals the preview left alone"
    back = api.rollback(ws, report.run_id, confirm=yes).report
    assert back is not None and back.failed == 0
    assert deals(sandbox, ids) == before, "the rollback did not give the deals their own close date back"
