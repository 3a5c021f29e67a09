"""empty_accounts on hand-built Salesforce and HubSpot snapshots: exact accounts, what holds one back,
the contacts earlier passes remove counted as gone, the live re-check and the plan's provenance."""

from __future__ import annotations

from dataclasses import replace

from crmsweep.cleanup.provenance import scan_plan_problems
from crmsweep.model import Op
from tests.record_orgs import HS, SF, Org, hs_org, ids, recheck, run_pass, scan, sf_org

NAME = "empty_accounts"
FRESH = "2026-02-01T00:00:00.000Z"  # a contact modified lately: not stale
REACH = {"Email": "a@example.com", "Phone": None, "MobilePhone": None}


def salesforce() -> Org:
    org = sf_org()
    for n in range(1, 12):
        org.add("Account", f"001A{n:02d}", Name=f"Account {n}")
    org.add("Contact", "003X2", Name="Lives", AccountId="001A02", LastModifiedDate=FRESH, **REACH)
    org.add("Contact", "003X3", Name="Binned", AccountId="001A03", IsDeleted=True, LastModifiedDate=FRESH, **REACH)
    org.add("Opportunity", "006O4", Name="Open", AccountId="001A04", IsClosed=False, StageName="Prospecting")
    org.add("Opportunity", "006O5", Name="Won", AccountId="001A05", IsClosed=True, StageName="Closed Won")
    org.add("Case", "500C6", AccountId="001A06", IsClosed=False, Status="New")
    org.add("Case", "500C7", AccountId="001A07", IsClosed=True, Status="Closed")
    org.add("Contract", "800K8", AccountId="001A08")
    # Contacts the people passes before it remove: stale, unreachable, hard-bounced.
    org.add("Contact", "003X9", Name="Stale", AccountId="001A09", LastModifiedDate="2019-01-01T00:00:00.000Z",
            **REACH)
    org.add("Contact", "003XA", Name="Unreachable", AccountId="001A10", LastModifiedDate=FRESH,
            Email=None, Phone=None, MobilePhone=None)
    org.add("Contact", "003XB", Name="Bounced", AccountId="001A11", LastModifiedDate=FRESH,
            EmailBouncedDate="2025-10-01T00:00:00.000Z", HasOptedOutOfEmail=False, **REACH)
    return org


def hubspot() -> Org:
    org = hs_org()
    for n in range(5001, 5006):
        org.add("companies", str(n), name=f"Company {n}")
    org.add("contacts", "101", email="lives@example.com")
    org.add("contacts", "105", email=None, phone=None, mobilephone=None)  # unreachable: no_contact_info archives
    org.add("deals", "9003", dealstage="appointmentscheduled", hs_is_closed=False)
    org.add("tickets", "40004", hs_pipeline_stage="4")
    org.tie("companies_to_contacts", "5002", "101")
    org.tie("companies_to_deals", "5003", "9003")
    org.tie("companies_to_tickets", "5004", "40004")
    org.tie("companies_to_contacts", "5005", "105")
    return org


def test_salesforce_removes_exactly_the_accounts_nothing_holds() -> None:
    out = run_pass(NAME, salesforce().view(), SF)
    assert ids(out) == ["001A01", "001A03", "001A05"]
    assert {c.op for c in out.changes} == {Op.DELETE}
    assert out.changes[0].reason == "no contacts left, no open opportunity, no case"
    assert out.held_back == {"on an open opportunity": 1, "on an open case": 1, "has a closed case": 1,
                             "tied to a Contract": 1}
    # 001A05's closed opportunity (Closed Won) is deleted with it: the preview does not list it, the note counts it.
    assert out.notes == ["removing these accounts also deletes 1 Opportunity record(s) tied to them (the CRM deletes "
                         "them with their account); a rollback brings them back with it"]


def test_hubspot_archives_the_empty_companies_and_says_what_it_cannot_see() -> None:
    out = run_pass(NAME, hubspot().view(), HS)
    assert ids(out) == ["5001"] and {c.op for c in out.changes} == {Op.ARCHIVE}
    assert out.held_back == {"on an open deal": 1, "has a closed ticket": 1}
    assert len(out.notes) == 1 and out.notes[0].startswith("links from companies to quotes, invoices and orders")


def test_contacts_removed_by_the_people_passes_before_it_count_as_gone() -> None:
    passes = ["stale_contacts", "no_contact_info", "bounced_emails", NAME]
    result = scan(salesforce().view(), SF, passes)
    assert ids(result, "stale_contacts") == ["003X9"] and ids(result, "no_contact_info") == ["003XA"]
    assert ids(result, NAME) == ["001A01", "001A03", "001A05", "001A09", "001A10"]  # a cleared address stays
    result = scan(salesforce().view(), SF, passes, settings={"bounced_emails": {"action": "delete"}})
    assert ids(result, "bounced_emails") == ["003XB"]
    assert ids(result, NAME) == ["001A01", "001A03", "001A05", "001A09", "001A10", "001A11"]
    result = scan(hubspot().view(), HS, ["no_contact_info", NAME])
    assert ids(result, "no_contact_info") == ["105"] and ids(result, NAME) == ["5001", "5005"]


def test_never_touch_objects_the_snapshot_lacks_are_noted_and_missing_guards_skip() -> None:
    org = salesforce()
    present = [o for o in org.fields if o not in ("Quote", "Invoice")]
    out = run_pass(NAME, org.view(present), SF)
    assert ids(out) == ["001A01", "001A03", "001A05"]
    assert out.notes == ["the snapshot has no Quote: accounts tied to one could not be recognised",
                         "the snapshot has no Invoice: accounts tied to one could not be recognised",
                         "removing these accounts also deletes 1 Opportunity record(s) tied to them (the CRM deletes "
                         "them with their account); a rollback brings them back with it"]
    out = run_pass(NAME, org.view([o for o in org.fields if o != "Case"]), SF)
    assert out.skipped == ("the snapshot holds no Case, so accounts on an open case cannot be protected: if the CRM "
                           "has Case, back up without --object (a backup then takes it) and scan again")
    out = run_pass(NAME, hubspot().view(["companies", "deals", "tickets", "companies_to_deals"]), HS)
    assert out.skipped == ("the snapshot holds no companies_to_contacts, so accounts with contacts cannot be told "
                           "apart: if the CRM has companies_to_contacts, back up without --object (a backup then "
                           "takes it) and scan again")
    vocab = replace(SF, concepts=(), absent_concepts={"Accounts": "no accounts here"})
    assert scan(org.view(), vocab, [NAME]).skipped == {NAME: "no accounts here"}


def test_protections_hold_back_a_recent_account() -> None:
    org = salesforce()
    org.rows["Account"][0]["CreatedDate"] = "2026-03-12T00:00:00.000Z"
    result = scan(org.view(), SF, [NAME])
    assert ids(result) == ["001A03", "001A05"]
    assert result.held_back[NAME]["created in the last 30 days"] == 1


def test_the_live_re_check_refuses_an_account_that_gained_something() -> None:
    change = run_pass(NAME, salesforce().view(), SF).changes[0]
    assert recheck(change, SF, {}) is None
    assert recheck(change, SF, {}, {"contacts": [{"AccountId": "001A01", "Id": "003N1"}]}) == (
        "has contacts now (003N1)")
    deal = {"deal_links": [{"AccountId": "001A01", "Id": "006N1"}], "deals": [{"Id": "006N1", "IsClosed": "false"}]}
    assert recheck(change, SF, {}, deal) == "now on an open opportunity (006N1)"
    closed = {"deal_links": deal["deal_links"], "deals": [{"Id": "006N1", "IsClosed": True}]}
    assert recheck(change, SF, {}, closed) is None
    case = {"account_case_links": [{"AccountId": "001A01", "Id": "500N1"}],
            "account_cases": [{"Id": "500N1", "IsClosed": True}]}
    assert recheck(change, SF, {}, case) == "has a case now (closed)"
    assert recheck(change, SF, {}, {"kept_by_Order": [{"AccountId": "001A01", "Id": "801N1"}]}) == (
        "tied to an Order now")
    hs_change = run_pass(NAME, hubspot().view(), HS).changes[0]
    assert recheck(hs_change, HS, {}, {"contacts": [{"from_id": "5001", "to_id": "777"}]}) == "has contacts now (777)"


def test_the_plan_passes_provenance_and_a_forged_change_does_not() -> None:
    for org, vocab, other in ((salesforce(), SF, Op.ARCHIVE), (hubspot(), HS, Op.DELETE)):
        plan = scan(org.view(), vocab, [NAME]).plan
        assert plan.changes and scan_plan_problems(plan, vocab) == []
        first = plan.changes[0]
        forged = [replace(first, op=other), replace(first, op=Op.UPDATE, after={"name": "x"})]
        assert [p.split(": ", 1)[1] for p in scan_plan_problems(replace(plan, changes=tuple(forged)), vocab)] == [
            f"pass {NAME} does not propose {other} of {first.object}", f"pass {NAME} does not propose update"]


def test_the_tasks_salesforce_deletes_with_a_removed_account_are_counted_in_a_note() -> None:
    org = salesforce()
    org.add("Task", "00TT1", WhatId="001A01", Status="Completed", IsClosed=True)
    org.add("Task", "00TT2", WhatId="001A01", Status="Completed", IsClosed=True)
    org.add("Task", "00TT3", WhatId="001A02", Status="Completed", IsClosed=True)  # its account stays
    out = run_pass(NAME, org.view(), SF)
    assert ids(out) == ["001A01", "001A03", "001A05"]
    # 001A05's closed opportunity goes with it too: the preview lists neither, so the note counts both.
    assert out.notes == ["removing these accounts also deletes 2 Task record(s) tied to them (the CRM deletes "
                         "them with their account); a rollback brings them back with it",
                         "removing these accounts also deletes 1 Opportunity record(s) tied to them (the CRM deletes "
                         "them with their account); a rollback brings them back with it"]


def test_an_account_is_kept_when_a_task_on_its_closed_opportunity_was_changed_by_an_earlier_pass() -> None:
    # Salesforce deletes the account's opportunities with it, and their activities with them: the task
    # orphaned_tasks hands over would be destroyed by the delete the same plan shows (red team R3).
    org = salesforce()
    org.add("User", "005U1", Name="Gone", Username="gone@x", IsActive=False, LastLoginDate="2020-01-01T00:00:00.000Z")
    org.add("User", "005U2", Name="Here", Username="here@x", IsActive=True, LastLoginDate="2026-03-01T00:00:00.000Z")
    org.add("Task", "00TT9", OwnerId="005U1", WhatId="006O5", IsClosed=False, Status="Not Started",
            ActivityDate="2026-03-20", Subject="Call back")
    result = scan(org.view(), SF, ["orphaned_tasks", NAME], recent_days=0,
                  settings={"orphaned_tasks": {"reassign_to": "005U2"}})
    assert ids(result, "orphaned_tasks") == ["00TT9"]
    assert ids(result, NAME) == ["001A01", "001A03"]  # not 001A05, whose closed opportunity holds the task
    assert result.held_back[NAME]["its tasks, changed by an earlier pass, would go with its opportunities"] == 1


def test_the_records_that_go_with_a_cascaded_opportunity_are_counted_in_a_note() -> None:
    org = salesforce()
    org.add("Task", "00TT9", WhatId="006O5", Status="Completed", IsClosed=True)
    org.add("Task", "00TTA", WhatId="006O5", Status="Not Started", IsClosed=False)
    out = run_pass(NAME, org.view(), SF)
    assert ids(out) == ["001A01", "001A03", "001A05"]
    assert out.notes == [
        "removing these accounts also deletes 1 Opportunity record(s) tied to them (the CRM deletes them with "
        "their account); a rollback brings them back with it",
        "removing these accounts also deletes 2 Task record(s) tied to the Opportunity records that go with them; "
        "a rollback brings them back too"]
