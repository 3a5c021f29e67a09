"""orphaned_tasks on hand-built Salesforce and HubSpot snapshots: exact tasks and writes, the effects of
inactive_users before it, the skip without reassign_to, the live re-check and the plan's provenance."""

from __future__ import annotations

from dataclasses import replace

import pytest

from crmsweep.cleanup.provenance import scan_plan_problems
from crmsweep.errors import BadInput
from crmsweep.model import Op
from tests.record_orgs import HS, SF, Org, hs_org, ids, recheck, run_pass, scan, sf_org

NAME = "orphaned_tasks"
HEIR, GONE, IDLE, BUSY = "005U00000000001", "005U00000000002", "005U00000000003", "005U00000000004"
RECENT = "2026-03-10T09:00:00.000Z"


def salesforce() -> Org:
    org = sf_org()
    org.add("User", HEIR, Name="Heir", IsActive=True, LastLoginDate=RECENT)
    org.add("User", GONE, Name="Gone", IsActive=False, LastLoginDate="2024-01-01T00:00:00.000Z")
    org.add("User", IDLE, Name="Idle", IsActive=True, LastLoginDate="2025-06-01T00:00:00.000Z")
    org.add("User", BUSY, Name="Busy", IsActive=True, LastLoginDate=RECENT)

    def task(rid: str, owner: str, due: str | None, *, closed: bool = False) -> None:
        org.add("Task", rid, OwnerId=owner, IsClosed=closed, Status="Completed" if closed else "Not Started",
                ActivityDate=due, Subject=f"task {rid}")

    task("00TT1", GONE, "2026-03-01")                 # owner inactive
    task("00TT2", GONE, "2026-03-01", closed=True)    # done: left
    task("00TT3", BUSY, "2025-03-14")                 # 366 days overdue
    task("00TT4", BUSY, "2025-03-15")                 # exactly 365 days: not more than 365
    task("00TT5", IDLE, "2026-04-01")                 # inactive only once inactive_users deactivates Idle
    task("00TT6", "00G000000000001", None)            # a queue the snapshot has no user for: not judged
    task("00TT7", HEIR, "2024-01-01")                 # overdue, but already the heir's
    task("00TT8", GONE[:15] + "AAA", None)            # the 18-character form of an inactive user's id
    return org


def hubspot() -> Org:
    org = hs_org()
    org.add("owners", "71000001", firstName="Heir", active=True)
    org.add("owners", "71000002", firstName="Busy", active=True)
    org.add("owners", "71000007", firstName="Gone", active=False, archived=True)

    def task(rid: str, owner: str, status: str | None, when: str) -> None:
        org.add("tasks", rid, hubspot_owner_id=owner, hs_task_status=status, hs_timestamp=when)

    task("20001", "71000007", "NOT_STARTED", "2026-03-20T10:00:00.000Z")
    task("20002", "71000002", "WAITING", "2025-03-01T10:00:00.000Z")     # overdue
    task("20003", "71000007", "COMPLETED", "2026-03-20T10:00:00.000Z")
    task("20004", "71000007", None, "2024-06-01T10:00:00.000Z")          # no status: open; overdue too
    task("20005", "71000002", "IN_PROGRESS", "2025-03-15T23:00:00.000Z")  # 365 days: not overdue
    return org


def test_salesforce_reassigns_exactly_the_orphaned_and_overdue_open_tasks() -> None:
    out = run_pass(NAME, salesforce().view(), SF, reassign_to=HEIR)
    assert ids(out) == ["00TT1", "00TT3", "00TT8"]
    assert all(c.op is Op.UPDATE and c.after == {"OwnerId": HEIR} for c in out.changes)
    assert [c.reason for c in out.changes[:2]] == [
        f"open task: owner {GONE} is inactive: handed to {HEIR}",
        f"open task: due 2025-03-14, 366 days ago: handed to {HEIR}",
    ]
    assert out.notes == [f"1 overdue Task already owned by reassign_to {HEIR} were left",
                         "2 of these Task records belong to users inactive before this plan: the CRM gives a record "
                         "to an active owner only, so a rollback of their hand-over fails for each of them until "
                         "those users are reactivated"]


def test_close_writes_the_done_value_on_both_crms() -> None:
    out = run_pass(NAME, salesforce().view(), SF, action="close")
    assert ids(out) == ["00TT1", "00TT3", "00TT7", "00TT8"]
    assert {str(c.after) for c in out.changes} == {"{'Status': 'Completed'}"}
    out = run_pass(NAME, hubspot().view(), HS, action="close")
    assert [(c.record_id, c.after) for c in out.changes] == [
        ("20001", {"hs_task_status": "COMPLETED"}), ("20002", {"hs_task_status": "COMPLETED"}),
        ("20004", {"hs_task_status": "COMPLETED"})]
    assert out.changes[2].reason == "open task: owner 71000007 is inactive; due 2024-06-01, 652 days ago: closed"


def test_without_reassign_to_reassigning_is_skipped_saying_how() -> None:
    out = run_pass(NAME, salesforce().view(), SF)
    assert out.changes == [] and out.skipped == (
        'set [passes.orphaned_tasks] reassign_to = "<user id>" to hand these tasks to that user, '
        'or action = "close" to close them')


def test_the_skip_names_who_owns_records_in_the_crm_s_words() -> None:
    # Records there are owned by owners, whose ids are not user ids: the setting must say which id to give.
    out = run_pass(NAME, hubspot().view(), HS)
    assert out.changes == [] and out.skipped == (
        'set [passes.orphaned_tasks] reassign_to = "<owner id>" to hand these tasks to that owner, '
        'or action = "close" to close them')


@pytest.mark.parametrize("target", [GONE, "005U00000000099"])
def test_reassign_to_must_be_an_active_user(target: str) -> None:
    with pytest.raises(BadInput) as caught:
        run_pass(NAME, salesforce().view(), SF, reassign_to=target)
    assert str(caught.value) == (f"[passes.orphaned_tasks] reassign_to '{target}' is not an active User record in "
                                 "the snapshot: name an active owner's id")


def test_a_target_an_earlier_pass_deactivates_is_refused_as_such() -> None:
    # Active in the backup, deactivated by inactive_users in this scan: no owner to hand tasks to, and the
    # error must not claim the snapshot says so.
    with pytest.raises(BadInput) as caught:
        scan(salesforce().view(), SF, ["inactive_users", NAME], settings={NAME: {"reassign_to": IDLE}})
    assert str(caught.value) == (
        f"[passes.orphaned_tasks] reassign_to '{IDLE}' is active in the snapshot, but an earlier pass of this scan "
        "deactivates it: name another active owner's id, or keep that user with [protect] ids")


def test_it_sees_the_users_inactive_users_deactivates_before_it() -> None:
    result = scan(salesforce().view(), SF, ["inactive_users", NAME], settings={NAME: {"reassign_to": HEIR}})
    assert ids(result, "inactive_users") == [IDLE]
    assert ids(result, NAME) == ["00TT1", "00TT3", "00TT5", "00TT8"]
    # Idle is active in the CRM until the plan is applied: its reason says who makes it inactive.
    reasons = {c.record_id: c.reason for c in result.plan.changes if c.pass_name == NAME}
    assert reasons["00TT5"] == (f"open task: owner {IDLE} is deactivated by inactive_users in this plan: "
                                f"handed to {HEIR}")
    assert reasons["00TT1"] == f"open task: owner {GONE} is inactive: handed to {HEIR}"


def test_it_does_not_re_propose_the_tasks_inactive_users_hands_over() -> None:
    settings = {"inactive_users": {"reassign_to": "71000001"}, NAME: {"reassign_to": "71000001"}}
    result = scan(hubspot().view(), HS, ["inactive_users", NAME], settings=settings)
    assert ids(result, "inactive_users") == ["20001", "20004"]
    # Handed to the heir by inactive_users, 20004 is the heir's now: overdue, but left; only 20002 remains.
    assert ids(result, NAME) == ["20002"]
    assert "orphaned_tasks: 1 overdue tasks already owned by reassign_to 71000001 were left" in result.plan.header.notes
    settings[NAME] = {"action": "close"}
    result = scan(hubspot().view(), HS, ["inactive_users", NAME], settings=settings)
    assert ids(result, NAME) == ["20002"]
    assert "orphaned_tasks: 1 records already changed by inactive_users" in result.plan.header.notes


def test_protections_and_settings() -> None:
    org = salesforce()
    org.rows["Task"][0]["CreatedDate"] = "2026-03-14T00:00:00.000Z"
    result = scan(org.view(), SF, [NAME], settings={NAME: {"reassign_to": HEIR, "overdue_days": 366}})
    assert ids(result) == ["00TT8"]
    assert result.held_back[NAME] == {"created in the last 30 days": 1}
    with pytest.raises(BadInput, match=r"overdue_days must be between 1 and 36500, got 0"):
        scan(org.view(), SF, [NAME], settings={NAME: {"overdue_days": 0}})
    vocab = replace(SF, concepts=(), absent_concepts={"TaskWork": "this CRM has no tasks"})
    assert scan(org.view(), vocab, [NAME]).skipped == {NAME: "this CRM has no tasks"}
    assert scan(org.view(["User"]), SF, [NAME]).skipped == {
        NAME: (
        "the snapshot holds no Task: if the CRM has Task, "
        "back up without --object (a backup then takes it) and scan again")}


def test_the_live_re_check_refuses_a_task_done_handed_over_or_no_longer_orphaned() -> None:
    orphan, overdue = run_pass(NAME, salesforce().view(), SF, reassign_to=HEIR).changes[:2]
    live = {"OwnerId": GONE, "IsClosed": False, "ActivityDate": "2026-03-01"}
    heir = {"hand_over_owners": [{"Id": GONE, "IsActive": False}, {"Id": HEIR, "IsActive": True}]}
    owner = {"task": [{"Id": "00TT1", "OwnerId": GONE}], "owner": [{"Id": GONE, "IsActive": False}], **heir}
    assert recheck(orphan, SF, live, owner, reassign_to=HEIR) is None
    left = {**owner, "hand_over_owners": [{"Id": GONE, "IsActive": False}, {"Id": HEIR, "IsActive": False}]}
    assert recheck(orphan, SF, live, left, reassign_to=HEIR) == (
        f"the owner to hand over to, {HEIR}, is inactive now: set another reassign_to and scan again")
    assert recheck(orphan, SF, {**live, "IsClosed": True}, owner, reassign_to=HEIR) == (
        "the task is done since the scan (IsClosed is True)")
    assert recheck(orphan, SF, {**live, "OwnerId": BUSY}, owner, reassign_to=HEIR) == (
        f"now owned by {BUSY}, not {GONE}")
    back = {"task": owner["task"], "owner": [{"Id": GONE, "IsActive": True}], **heir}
    assert recheck(orphan, SF, live, back, reassign_to=HEIR) == (
        f"no longer orphaned: owner {GONE} is active and the task is due 2026-03-01")
    busy = {"OwnerId": BUSY, "IsClosed": False, "ActivityDate": "2025-03-14"}
    active = {"task": [{"Id": "00TT3", "OwnerId": BUSY}], "owner": [{"Id": BUSY, "IsActive": True}], **heir}
    assert recheck(overdue, SF, busy, active, reassign_to=HEIR) is None
    assert recheck(overdue, SF, {**busy, "ActivityDate": "2026-05-01"}, active, reassign_to=HEIR) == (
        f"no longer orphaned: owner {BUSY} is active and the task is due 2026-05-01")
    hs_task = run_pass(NAME, hubspot().view(), HS, action="close").changes[0]
    assert recheck(hs_task, HS, {"hubspot_owner_id": "71000007", "hs_task_status": "COMPLETED"},
                   action="close") == "the task is done since the scan (hs_task_status is COMPLETED)"


def test_the_plan_passes_provenance_and_a_forged_write_does_not() -> None:
    plan = scan(salesforce().view(), SF, [NAME], settings={NAME: {"action": "close"}}).plan
    assert scan_plan_problems(plan, SF) == []
    first = plan.changes[0]
    forged = [replace(first, after={"Status": "Deferred"}), replace(first, after={"Subject": "x"}),
              replace(first, object="Contact")]
    assert [p.split(": ", 1)[1] for p in scan_plan_problems(replace(plan, changes=tuple(forged)), SF)] == [
        'pass orphaned_tasks writes nothing or Status="Completed", not {"Status":"Deferred"}',
        'pass orphaned_tasks writes nothing or Status="Completed", not {"Subject":"x"}',
        "pass orphaned_tasks does not propose update of Contact",
    ]
    hs_plan = scan(hubspot().view(), HS, [NAME], settings={NAME: {"reassign_to": "71000001"}}).plan
    assert scan_plan_problems(hs_plan, HS) == []
