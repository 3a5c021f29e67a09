"""Red team: a snapshot without the fields the CRM sets with a lost stage (Probability, ForecastCategoryName:
hidden from the API user by field-level security, or not backed up) gets a plan that writes the stage alone.
Salesforce still sets both from the new stage, so the apply changes them unseen by the preview, and the
rollback, which has no value of them to write back, lets the old stage's defaults in (a 35% Best Case deal
back at 10% Pipeline). The pass writes nothing of them silently: it must at least say so."""

from __future__ import annotations

from tests.record_orgs import SF, run_pass
from tests.test_pass_stale_open_deals import NAME, salesforce


def test_a_plan_that_cannot_show_what_the_crm_sets_with_the_stage_says_so() -> None:
    out = run_pass(NAME, salesforce().view(), SF)
    assert out.changes and all(c.after == {"StageName": "Closed Lost"} for c in out.changes)
    said = " ".join([*out.notes, out.skipped or ""])
    assert "Probability" in said and "ForecastCategoryName" in said, (
        "the CRM sets Probability and ForecastCategoryName with the stage, and neither the preview nor the "
        f"rollback knows their values; the pass said only: {out.notes!r}")
