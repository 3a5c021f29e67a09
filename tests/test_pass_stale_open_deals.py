"""stale_open_deals on hand-built Salesforce and HubSpot snapshots: exact deals and stages, pipelines,
the live re-check and the plan's provenance."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crmsweep.cleanup.passes import validate_settings
from crmsweep.cleanup.provenance import scan_plan_problems
from crmsweep.errors import BadInput
from crmsweep.model import Op
from tests.record_orgs import HS, SF, Org, hs_org, ids, recheck, run_pass, scan, sf_org

NAME = "stale_open_deals"


def salesforce() -> Org:
    org = sf_org()

    def deal(rid: str, stage: str, closed: bool | None, close: str | None) -> None:
        org.add("Opportunity", rid, Name=f"deal {rid}", StageName=stage, IsClosed=closed, CloseDate=close)

    deal("006D1", "Prospecting", False, "2025-12-01")    # 104 days past
    deal("006D2", "Negotiation", False, "2026-03-05")    # 10 days past: a near-miss
    deal("006D3", "Negotiation", False, "2025-12-15")    # exactly 90 days: not more than 90
    deal("006D4", "Negotiation", False, "2025-12-14")    # 91 days
    deal("006D5", "Closed Won", True, "2024-01-01")
    deal("006D6", "Custom Lost", True, "2024-01-01")     # closed by a custom closed stage
    deal("006D7", "Prospecting", False, None)             # no close date: not judged
    return org


def hubspot() -> Org:
    org = hs_org()

    def deal(rid: str, stage: str, pipeline: str, closed: bool | None, close: str) -> None:
        org.add("deals", rid, dealname=f"deal {rid}", dealstage=stage, pipeline=pipeline, hs_is_closed=closed,
                closedate=close)

    deal("9001", "qualifiedtobuy", "default", False, "2025-10-01T12:00:00.000Z")
    deal("9002", "closedwon", "default", None, "2024-10-01T12:00:00.000Z")  # flag empty, stage closed
    deal("9003", "contractsent", "default", None, "2025-11-01T12:00:00.000Z")  # flag empty, stage open
    deal("9004", "contractsent", "default", False, "2026-03-01T12:00:00.000Z")
    deal("9005", "stage-17", "88812", False, "2025-01-01T12:00:00.000Z")  # another pipeline
    deal("9006", "stage-19", "88812", True, "2024-01-01T12:00:00.000Z")  # that pipeline's closed-lost stage
    return org


def test_salesforce_moves_exactly_the_stale_open_deals_to_closed_lost() -> None:
    out = run_pass(NAME, salesforce().view(), SF)
    assert ids(out) == ["006D1", "006D4"]
    assert all(c.op is Op.UPDATE and c.after == {"StageName": "Closed Lost"} for c in out.changes)
    assert out.changes[0].reason == ("open opportunity in stage Prospecting whose close date 2025-12-01 is 104 days "
                                     "past: moved to Closed Lost")
    out = run_pass(NAME, salesforce().view(), SF, days=10, stage="Custom Lost")
    assert ids(out) == ["006D1", "006D3", "006D4"] and out.changes[0].after == {"StageName": "Custom Lost"}


@pytest.mark.parametrize(("stage", "says"), [
    ("Closed Won", "[passes.stale_open_deals] stage 'Closed Won' wins deals: name a stage that closes them as lost, "
                   "or leave it empty for 'Closed Lost'"),
    ("Closed Lots", "[passes.stale_open_deals] stage 'Closed Lots' is not a stage that closes deals as lost in this "
                    "snapshot; name one of: Closed Lost, Custom Lost"),
    ("Negotiation", "[passes.stale_open_deals] stage 'Negotiation' is not a stage that closes deals as lost in this "
                    "snapshot; name one of: Closed Lost, Custom Lost"),
])
def test_a_stage_that_does_not_close_deals_as_lost_is_refused(stage: str, says: str) -> None:
    # A won stage would book the stale deals as sales; a typo or an open stage would write nonsense.
    with pytest.raises(BadInput) as caught:
        run_pass(NAME, salesforce().view(), SF, stage=stage)
    assert str(caught.value) == says


def test_hubspot_moves_default_pipeline_deals_and_notes_the_others() -> None:
    out = run_pass(NAME, hubspot().view(), HS)
    # The close date HubSpot would set to the day of the move is written as the deal holds it.
    assert [(c.record_id, c.after) for c in out.changes] == [
        ("9001", {"dealstage": "closedlost", "closedate": "2025-10-01T12:00:00.000Z"}),
        ("9003", {"dealstage": "closedlost", "closedate": "2025-11-01T12:00:00.000Z"})]
    assert out.notes == ["1 deals of pipelines other than 'default' were left: their closed-lost stage is not "
                         "'closedlost'; set [passes.stale_open_deals] stage to move them"]
    out = run_pass(NAME, hubspot().view(), HS, stage="stage-19")
    assert ids(out) == ["9001", "9003", "9005"] and out.notes == []


def test_settings_are_checked() -> None:
    with pytest.raises(BadInput, match=r"^\[passes.stale_open_deals\] stage must be one stage name or id"):
        validate_settings(NAME, {"stage": " Closed Lost"})
    with pytest.raises(BadInput, match=r"days must be between 1 and 36500, got 0"):
        validate_settings(NAME, {"days": 0})


def test_skips_protections_and_a_provider_without_stages() -> None:
    org = salesforce()
    org.rows["Opportunity"][0]["CreatedDate"] = "2026-03-01T00:00:00.000Z"
    result = scan(org.view(), SF, [NAME])
    assert ids(result) == ["006D4"] and result.held_back[NAME] == {"created in the last 30 days": 1}
    assert scan(org.view(["Contact"]), SF, [NAME]).skipped == {
        NAME: (
        "the snapshot holds no Opportunity: if the CRM has Opportunity, "
        "back up without --object (a backup then takes it) and scan again")}
    vocab = replace(HS, concepts=(), absent_concepts={"DealStages": "no pipelines here"})
    assert scan(hubspot().view(), vocab, [NAME]).skipped == {NAME: "no pipelines here"}


def test_the_live_re_check_refuses_a_deal_closed_or_moved_meanwhile() -> None:
    change = run_pass(NAME, salesforce().view(), SF).changes[0]
    live = {"IsClosed": False, "StageName": "Prospecting", "CloseDate": "2025-12-01"}
    assert recheck(change, SF, live) is None
    assert recheck(change, SF, {**live, "IsClosed": True}) == "closed since the scan (IsClosed true)"
    assert recheck(change, SF, {**live, "CloseDate": "2026-06-30"}) == "its close date is now 2026-06-30"
    hs_change = run_pass(NAME, hubspot().view(), HS).changes[0]
    hs_live = {"hs_is_closed": "false", "dealstage": "qualifiedtobuy", "closedate": "2025-10-01T12:00:00.000Z"}
    assert recheck(hs_change, HS, hs_live) is None
    assert recheck(hs_change, HS, {**hs_live, "dealstage": "closedwon"}) == "closed since the scan (stage closedwon)"


def test_the_plan_passes_provenance_and_a_forged_write_does_not() -> None:
    plan = scan(hubspot().view(), HS, [NAME]).plan
    assert scan_plan_problems(plan, HS) == []
    first = plan.changes[0]
    forged = [replace(first, after={"dealstage": "closedlost", "amount": 0}), replace(first, object="companies"),
              replace(first, op=Op.ARCHIVE, after={}), replace(first, after={"dealstage": "closedwon"})]
    assert [p.split(": ", 1)[1] for p in scan_plan_problems(replace(plan, changes=tuple(forged)), HS)] == [
        'pass stale_open_deals writes dealstage="closedlost", closedate=(computed), '
        'not {"amount":0,"dealstage":"closedlost"}',
        "pass stale_open_deals does not propose update of companies",
        "pass stale_open_deals does not propose archive",
        # The stage written is the one the settings chose (here the default: closed lost), never another.
        'pass stale_open_deals writes dealstage="closedlost", closedate=(computed), not {"dealstage":"closedwon"}',
    ]
