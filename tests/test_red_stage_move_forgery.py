"""Red team: a hand-edited stale_open_deals plan that writes a subset of what the pass writes with a lost stage
(a probability alone, or the stage without the probability and forecast category the CRM then sets unseen).
Provenance alone (`scan_plan_problems`) checks each written field against the declared writes, so it passes a
subset; the plan is applied only once signed here, and `plan accept` re-runs the scan and wants the exact
`after` it proposes. So such a plan never reaches the CRM: refused at accept and at apply, the deals as they
were."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.cleanup.provenance import scan_plan_problems
from crmsweep.errors import SafetyRefusal
from crmsweep.model import Plan
from crmsweep.providers.salesforce import PROVIDER as SALESFORCE
from crmsweep.sandbox.server import RunningSandbox
from tests.test_apply_live import CONNECTION, other_admin, yes
from tests.test_stage_move_rollback import deal_state


def accept_yes(review: api.PlanReview) -> bool:
    return True


@pytest.mark.parametrize("after", [{"Probability": 0}, {"StageName": "Closed Lost"},
                                   {"StageName": "Closed Lost", "Probability": 0}],
                         ids=["probability alone", "stage alone", "no forecast category"])
def test_a_plan_writing_part_of_the_lost_writes_is_refused_at_accept_and_apply(
    after: dict[str, object], sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    plan: Plan = api.scan(ws, CONNECTION, tmp_path / "plan.json", passes=["stale_open_deals"]).result.plan
    ids = [c.record_id for c in plan.changes]
    forged = Plan(plan.header, tuple(replace(c, after=dict(after)) for c in plan.changes))
    # The shape check alone lets it through: every field it writes is one the pass declares.
    assert scan_plan_problems(forged, SALESFORCE.vocabulary) == []
    path = tmp_path / "forged.json"
    path.write_text(forged.to_json(), encoding="utf-8")
    sf = other_admin(sandbox)
    before = deal_state(sf, ids)
    with pytest.raises(SafetyRefusal, match="its after is not the one the pass proposes"):
        api.accept_plan(ws, path, confirm=accept_yes)
    with pytest.raises(SafetyRefusal, match="review it with `crmsweep plan accept"):
        api.apply(ws, path, confirm=yes)
    assert deal_state(sf, ids) == before
