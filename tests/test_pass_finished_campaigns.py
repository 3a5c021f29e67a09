"""finished_campaigns on hand-built Salesforce and HubSpot snapshots: exact campaigns and writes, the live
re-check and the plan's provenance."""

from __future__ import annotations

from dataclasses import replace

from crmsweep.cleanup.provenance import scan_plan_problems
from tests.record_orgs import HS, SF, Org, hs_org, ids, recheck, run_pass, scan, sf_org

NAME = "finished_campaigns"


def salesforce() -> Org:
    org = sf_org()
    org.add("Campaign", "701C1", Name="Completed", IsActive=True, Status="Completed", EndDate="2026-06-01")
    org.add("Campaign", "701C2", Name="Ended", IsActive=True, Status="In Progress", EndDate="2026-03-14")
    org.add("Campaign", "701C3", Name="Ends Today", IsActive=True, Status="In Progress", EndDate="2026-03-15")
    org.add("Campaign", "701C4", Name="Off", IsActive=False, Status="Completed", EndDate="2025-01-01")
    org.add("Campaign", "701C5", Name="No End", IsActive=True, Status="Planned", EndDate=None)
    return org


def hubspot() -> Org:
    org = hs_org()
    org.add("campaigns", "c-1", hs_name="Ended", hs_end_date="2026-02-28", hs_campaign_status="active")
    org.add("campaigns", "c-2", hs_name="Done", hs_end_date="2025-02-28", hs_campaign_status="completed")
    org.add("campaigns", "c-3", hs_name="Running", hs_end_date="2026-04-30", hs_campaign_status="active")
    org.add("campaigns", "c-4", hs_name="No Status", hs_end_date="2026-01-31", hs_campaign_status=None)
    org.add("campaigns", "c-5", hs_name="Ends Today", hs_end_date="2026-03-15", hs_campaign_status="paused")
    return org


def test_salesforce_deactivates_exactly_the_finished_active_campaigns() -> None:
    out = run_pass(NAME, salesforce().view(), SF)
    assert [(c.record_id, c.after, c.reason) for c in out.changes] == [
        ("701C1", {"IsActive": False}, "still running though status Completed: IsActive = false"),
        ("701C2", {"IsActive": False}, "still running though ended 2026-03-14: IsActive = false"),
    ]


def test_hubspot_completes_exactly_the_campaigns_past_their_end() -> None:
    out = run_pass(NAME, hubspot().view(), HS)
    assert [(c.record_id, c.after) for c in out.changes] == [
        ("c-1", {"hs_campaign_status": "completed"}), ("c-4", {"hs_campaign_status": "completed"})]


def test_skips_protections_and_a_provider_without_campaigns() -> None:
    org = salesforce()
    org.rows["Campaign"][1]["CreatedDate"] = "2026-03-01T00:00:00.000Z"
    result = scan(org.view(), SF, [NAME])
    assert ids(result) == ["701C1"] and result.held_back[NAME] == {"created in the last 30 days": 1}
    assert scan(org.view(["Contact"]), SF, [NAME]).skipped == {
        NAME: (
        "the snapshot holds no Campaign: if the CRM has Campaign, "
        "back up without --object (a backup then takes it) and scan again")}
    vocab = replace(HS, concepts=(), absent_concepts={"Campaigns": "this portal has no campaigns"})
    assert scan(hubspot().view(), vocab, [NAME]).skipped == {NAME: "this portal has no campaigns"}


def test_the_live_re_check_refuses_a_campaign_ended_or_extended_meanwhile() -> None:
    completed, ended = run_pass(NAME, salesforce().view(), SF).changes
    assert recheck(completed, SF, {"IsActive": True, "Status": "Completed", "EndDate": "2026-06-01"}) is None
    assert recheck(completed, SF, {"IsActive": False, "Status": "Completed"}) == (
        "no longer active (IsActive is not true)")
    assert recheck(ended, SF, {"IsActive": True, "Status": "In Progress", "EndDate": "2026-12-31"}) == (
        "not finished: status In Progress, end 2026-12-31")
    hs_change = run_pass(NAME, hubspot().view(), HS).changes[0]
    assert recheck(hs_change, HS, {"hs_campaign_status": "active", "hs_end_date": "2026-02-28"}) is None
    assert recheck(hs_change, HS, {"hs_campaign_status": "completed", "hs_end_date": "2026-02-28"}) == (
        "already finished (status completed)")


def test_the_plan_passes_provenance_and_a_forged_write_does_not() -> None:
    for org, vocab, forged_after, declared in (
        (salesforce(), SF, {"IsActive": True}, "IsActive=false"),
        (hubspot(), HS, {"hs_campaign_status": "active"}, 'hs_campaign_status="completed"'),
    ):
        plan = scan(org.view(), vocab, [NAME]).plan
        assert plan.changes and scan_plan_problems(plan, vocab) == []
        forged = replace(plan, changes=(replace(plan.changes[0], after=forged_after),))
        shown = ",".join(f'"{k}":{str(v).lower() if isinstance(v, bool) else chr(34) + v + chr(34)}'
                         for k, v in forged_after.items())
        assert [p.split(": ", 1)[1] for p in scan_plan_problems(forged, vocab)] == [
            f"pass {NAME} writes {declared}, not {{{shown}}}"]
