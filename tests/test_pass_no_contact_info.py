"""no_contact_info on hand-built Salesforce and HubSpot snapshots: exact ids, hold-backs, skips, the
live re-check and the plan's provenance."""

from __future__ import annotations

from dataclasses import replace

from crmsweep.cleanup.provenance import scan_plan_problems
from crmsweep.model import Op
from tests.record_orgs import HS, SF, Org, hs_org, ids, recheck, run_pass, scan, sf_org

NAME = "no_contact_info"
NONE = {"Email": None, "Phone": None, "MobilePhone": None}


def salesforce() -> Org:
    org = sf_org()
    org.add("Contact", "003A1", Name="Nobody", **NONE)
    org.add("Contact", "003A2", Name="Only Mobile", Email=None, Phone=None, MobilePhone="+44 7700 900123")
    org.add("Contact", "003A3", Name="Blank Email", Email="   ", Phone="", MobilePhone=None)
    org.add("Contact", "003A4", Name="Open Deal", **NONE)
    org.add("Contact", "003A5", Name="Open Case", **NONE)
    org.add("Contact", "003A6", Name="Closed Everything", **NONE)
    org.add("Contact", "003A7", Name="In The Bin", IsDeleted=True, **NONE)
    org.add("Contact", "003A8", Name="Only Email", Email="a@example.com", Phone=None, MobilePhone=None)
    org.add("Lead", "00QA1", Name="Lead Nobody", **NONE)
    org.add("Lead", "00QA2", Name="Converted", IsConverted=True, **NONE)
    org.add("Lead", "00QA3", Name="Lead Phone", Email=None, Phone="555-0100", MobilePhone=None)
    org.add("Opportunity", "006O1", Name="Open", IsClosed=False, StageName="Prospecting")
    org.add("Opportunity", "006O2", Name="Won", IsClosed=True, StageName="Closed Won")
    org.add("OpportunityContactRole", "00KR1", ContactId="003A4", OpportunityId="006O1")
    org.add("OpportunityContactRole", "00KR2", ContactId="003A6", OpportunityId="006O2")
    org.add("Case", "500C1", ContactId="003A5", IsClosed=False, Status="New")
    org.add("Case", "500C2", ContactId="003A6", IsClosed=True, Status="Closed")
    return org


def hubspot() -> Org:
    org = hs_org()
    none = {"email": None, "phone": None, "mobilephone": None}
    org.add("contacts", "101", firstname="No", lastname="Body", **none)
    org.add("contacts", "102", firstname="Only", lastname="Mobile", email=None, phone=None, mobilephone="0612345678")
    org.add("contacts", "103", firstname="Open", lastname="Deal", **none)
    org.add("contacts", "104", firstname="Open", lastname="Ticket", **none)
    org.add("contacts", "105", firstname="Closed", lastname="Ticket", **none)
    org.add("contacts", "106", firstname="Has", lastname="Email", email="x@example.com", phone=None, mobilephone=None)
    org.add("deals", "9001", dealname="Open", dealstage="qualifiedtobuy", hs_is_closed=False)
    org.add("tickets", "40001", subject="Open", hs_pipeline_stage="1")
    org.add("tickets", "40002", subject="Closed", hs_pipeline_stage="4")
    org.tie("contacts_to_deals", "103", "9001")
    org.tie("contacts_to_tickets", "104", "40001")
    org.tie("contacts_to_tickets", "105", "40002")
    return org


def test_salesforce_removes_exactly_the_unreachable_people() -> None:
    out = run_pass(NAME, salesforce().view(), SF)
    assert ids(out) == ["003A1", "003A3", "003A6", "00QA1"]
    assert {c.op for c in out.changes} == {Op.DELETE}
    assert out.changes[0].reason == "no way to reach them: Email, Phone, MobilePhone all empty"
    assert out.held_back == {"on an open opportunity": 1, "on an open case": 1}
    # The contact role of a removed contact (on a closed deal) goes with it: the plan says so.
    assert out.notes == ["1 converted Lead record left alone (IsConverted true)",
                         "removing these contacts and leads also deletes 1 OpportunityContactRole record(s) tied "
                         "to them (the CRM deletes them with the records they belong to); a rollback brings them "
                         "back with them"]


def test_hubspot_archives_exactly_the_unreachable_contacts() -> None:
    out = run_pass(NAME, hubspot().view(), HS)
    assert ids(out) == ["101", "105"]
    assert {c.op for c in out.changes} == {Op.ARCHIVE}
    assert out.changes[0].reason == "no way to reach them: email, phone, mobilephone all empty"
    assert out.held_back == {"on an open deal": 1, "on an open ticket": 1}


def test_other_phone_fields_count_where_the_snapshot_has_them() -> None:
    org = salesforce()
    org.fields["Contact"].append(replace(org.fields["Contact"][2], name="HomePhone"))
    org.rows["Contact"][0]["HomePhone"] = "555-0199"
    assert ids(run_pass(NAME, org.view(), SF)) == ["003A3", "003A6", "00QA1"]


def test_without_the_objects_that_tell_open_cases_the_pass_does_not_run() -> None:
    only = ["Contact", "Lead", "Opportunity", "OpportunityContactRole"]
    out = run_pass(NAME, salesforce().view(only), SF)
    assert out.changes == [] and out.skipped == (
        "the snapshot holds no Case, so people on an open case cannot be protected: if the CRM has Case, back up "
        "without --object (a backup then takes it) and scan again")
    out = run_pass(NAME, hubspot().view(["contacts", "deals", "contacts_to_deals"]), HS)
    assert out.skipped is not None and out.skipped.startswith("the snapshot holds no tickets or contacts_to_tickets")


def test_a_provider_without_the_concept_is_skipped_with_its_reason() -> None:
    vocab = replace(SF, concepts=(), absent_concepts={"ContactPoints": "this CRM keeps no phone numbers"})
    result = scan(salesforce().view(), vocab, [NAME])
    assert result.skipped == {NAME: "this CRM keeps no phone numbers"} and result.plan.changes == ()


def test_protections_hold_back_recent_and_listed_people() -> None:
    org = salesforce()
    org.rows["Contact"][0]["CreatedDate"] = "2026-03-01T00:00:00.000Z"
    result = scan(org.view(), SF, [NAME], protect_ids=["00QA1"])
    assert ids(result) == ["003A3", "003A6"]
    assert result.held_back[NAME] == {"on an open opportunity": 1, "on an open case": 1,
                                      "created in the last 30 days": 1, "listed in [protect] ids": 1}


def test_the_live_re_check_refuses_a_person_reachable_or_on_an_open_deal_or_case_now() -> None:
    change = run_pass(NAME, salesforce().view(), SF).changes[0]
    empty = {"Email": None, "Phone": None, "MobilePhone": None, "HomePhone": None}
    assert recheck(change, SF, empty) is None
    assert recheck(change, SF, {**empty, "MobilePhone": "07700"}) == "reachable now: MobilePhone is filled"
    deal = {"links0": [{"ContactId": "003A1", "OpportunityId": "006O9"}],
            "deals0": [{"Id": "006O9", "IsClosed": False}]}
    assert recheck(change, SF, empty, deal) == "now on an open opportunity (006O9)"
    case = {"person_case_links": [{"ContactId": "003A1", "Id": "500C9"}],
            "person_cases": [{"Id": "500C9", "IsClosed": "false"}]}
    assert recheck(change, SF, empty, case) == "now on an open case (500C9)"
    closed = {"person_case_links": [{"ContactId": "003A1", "Id": "500C9"}],
              "person_cases": [{"Id": "500C9", "IsClosed": True}]}
    assert recheck(change, SF, empty, closed) is None
    hs_change = run_pass(NAME, hubspot().view(), HS).changes[0]
    assert recheck(hs_change, HS, {"email": "new@example.com"}) == "reachable now: email is filled"
    ticket = {"person_case_links": [{"from_id": "101", "to_id": "40009"}],
              "person_cases": [{"id": "40009", "hs_pipeline_stage": "2"}]}
    assert recheck(hs_change, HS, {}, ticket) == "now on an open ticket (40009)"


def test_the_plan_passes_provenance_and_a_forged_change_does_not() -> None:
    for org, vocab in ((salesforce(), SF), (hubspot(), HS)):
        plan = scan(org.view(), vocab, [NAME]).plan
        assert plan.changes and scan_plan_problems(plan, vocab) == []
        first = plan.changes[0]
        other = Op.ARCHIVE if first.op is Op.DELETE else Op.DELETE
        forged = [replace(first, op=Op.UPDATE, after={vocab.email_field: None}), replace(first, op=other)]
        problems = scan_plan_problems(replace(plan, changes=tuple(forged)), vocab)
        assert [p.split(": ", 1)[1] for p in problems] == [
            f"pass {NAME} does not propose update",
            f"pass {NAME} does not propose {other} of {first.object}",
        ]
