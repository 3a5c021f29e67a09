"""Apply against an org that moved on after the scan, and against other admins and other applies.

Through the library against the sandbox over TLS; outcomes are read back through the API:
- candidates are checked again on live related records (issue 5 item 2);
- resume never claims a change someone else made after the run stopped (item 4);
- a run is marked rolled back once several rollbacks together undid it (item 5);
- one apply per plan at a time, and a finished plan is not applied again (item 6).
"""

from __future__ import annotations

import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce

from crmsweep import api
from crmsweep.cleanup.apply import ApplyProgress, ApplyReport
from crmsweep.errors import SafetyRefusal
from crmsweep.model import Op, Plan
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.server import RunningSandbox
from tests.test_recreate import empty_recycle_bin

# The `sandbox` and `ws` fixtures (tests/conftest.py) connect as "flaky", with quick retries.
CONNECTION = "flaky"


def other_admin(sandbox: RunningSandbox) -> Salesforce:
    """Someone else at work in the same org, through the plain simple-salesforce client."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.info.ca_file)
    return Salesforce(instance_url=sandbox.info.url, session_id=sandbox.info.token, session=session)


def sobject(sf: Salesforce, name: str) -> Any:
    return getattr(sf, name)


def yes(plan: Plan) -> bool:
    return True


def contact_deletes(plan: Plan) -> list[str]:
    return [c.record_id for c in plan.changes if c.op is Op.DELETE and c.object == "Contact"]


def deleted(ws: api.Workspace, obj: str, ids: list[str]) -> dict[str, bool]:
    with api.connect(ws, CONNECTION) as connector:
        rows = connector.read(obj, ids, ["Id", "IsDeleted"], include_deleted=True)
    return {i: bool(rows[i]["IsDeleted"]) for i in ids}


def scan(ws: api.Workspace, path: Path) -> Plan:
    return api.scan(ws, CONNECTION, path).result.plan


# --- item 2: protections and candidate rules, checked again on live data --------------------------------------


def test_a_contact_that_gained_an_open_deal_a_reopened_deal_or_a_task_today_is_not_deleted(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    sf = other_admin(sandbox)
    first = contact_deletes(scan(ws, tmp_path / "first.json"))
    assert len(first) >= 4
    new_deal, reopened, task_today = first[:3]
    closed = sf.query("SELECT Id FROM Opportunity WHERE IsClosed = true LIMIT 1")["records"][0]["Id"]
    opened = sf.query("SELECT Id FROM Opportunity WHERE IsClosed = false LIMIT 1")["records"][0]["Id"]
    # On a closed deal at scan time, so still a candidate.
    sobject(sf, "OpportunityContactRole").create({"ContactId": reopened, "OpportunityId": closed})

    plan = scan(ws, tmp_path / "plan.json")
    candidates = contact_deletes(plan)
    assert {new_deal, reopened, task_today} <= set(candidates)
    # After the scan: a new contact role on an open deal, the closed deal reopened, a task done today.
    sobject(sf, "OpportunityContactRole").create({"ContactId": new_deal, "OpportunityId": opened})
    sobject(sf, "Opportunity").update(closed, {"StageName": "Prospecting"})
    today = datetime.now(UTC).date().isoformat()
    sobject(sf, "Task").create({"WhoId": task_today, "Subject": "Call", "Status": "Completed", "ActivityDate": today})

    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and report.failed == 0

    skipped = {i["id"]: (i["reason"], i["detail"]) for i in report.skipped_items}
    assert skipped[new_deal] == ("no longer qualifies", f"now on an open opportunity ({opened})")
    assert skipped[reopened] == ("no longer qualifies", f"now on an open opportunity ({closed})")
    assert skipped[task_today] == ("no longer qualifies", f"no longer stale: LastActivityDate is {today}")
    live = deleted(ws, "Contact", candidates)
    assert not any(live[i] for i in (new_deal, reopened, task_today))
    assert all(live[i] for i in candidates if i not in skipped)


def test_protect_ids_of_the_config_in_force_at_apply_time_hold_a_record_back(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    plan = scan(ws, tmp_path / "plan.json")
    kept = contact_deletes(plan)[0]
    assert ws.config.path is not None
    ws.config.path.write_text(
        ws.config.path.read_text(encoding="utf-8") + f'\n[protect]\nids = ["{kept}"]\n', encoding="utf-8"
    )
    now = api.Workspace.load(ws.config.path, ws.home.root)
    report = api.apply(now, tmp_path / "plan.json", confirm=yes).report
    assert report is not None
    assert [(i["id"], i["reason"], i["detail"]) for i in report.skipped_items] == [
        (kept, "protected", "protected at apply time: listed in [protect] ids")
    ]
    assert deleted(ws, "Contact", [kept]) == {kept: False}


# --- item 4: resume does not claim someone else's change ------------------------------------------------------


def test_resume_leaves_a_record_another_admin_deleted_after_the_stop_to_them(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    plan = scan(ws, tmp_path / "plan.json")
    targets = contact_deletes(plan)
    # The first delete batch is sent and the connection drops: its outcome is unknown, the run stops.
    sandbox.set_faults([FaultRule(kind="drop", path="composite/sobjects", method="DELETE", times=1)])
    first = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert first is not None and first.stopped is not None and first.applied == 0
    assert first.remaining == len(plan.changes)
    sandbox.set_faults([])
    theirs = targets[0]
    sobject(other_admin(sandbox), "Contact").delete(theirs)

    resumed = api.apply(ws, tmp_path / "plan.json", confirm=yes, resume_run=first.run_id).report
    assert resumed is not None and (resumed.failed, resumed.remaining, resumed.stopped) == (0, 0, None)
    assert [(i["id"], i["reason"]) for i in resumed.skipped_items] == [(theirs, "changed by someone else")]
    assert "after the run stopped at" in str(resumed.skipped_items[0]["detail"])
    assert resumed.applied == len(plan.changes) - 1

    back = api.rollback(ws, first.run_id, confirm=yes).report
    assert back is not None and back.failed == 0
    live = deleted(ws, "Contact", targets)
    assert live[theirs] is True  # still deleted: the other admin's deletion is theirs to undo
    assert not any(live[i] for i in targets if i != theirs)


# --- item 5: marked rolled back once the rollbacks together undid everything ----------------------------------


def test_a_rollback_that_failed_partway_completed_by_a_second_one_marks_the_run(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    plan = scan(ws, tmp_path / "plan.json")
    users = [c.record_id for c in plan.changes if c.op is Op.DEACTIVATE]
    assert users
    applied = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert applied is not None and applied.failed == 0
    # The first user's row stays locked through every retry: its reactivation fails.
    sandbox.set_faults([FaultRule(kind="lock", ids=(users[0],), times=100)])
    partial = api.rollback(ws, applied.run_id, confirm=yes).report
    assert partial is not None and partial.failed == 1 and partial.failed_items[0]["id"] == users[0]
    assert {r.run_id: r.status for r in api.runs(ws)}[applied.run_id] == "done"

    sandbox.set_faults([])
    second = api.rollback(ws, applied.run_id, confirm=yes).report
    assert second is not None and (second.applied, second.failed) == (1, 0)
    statuses = {r.run_id: r.status for r in api.runs(ws)}
    assert statuses[applied.run_id] == "rolled back"
    assert not any(deleted(ws, "Contact", contact_deletes(plan)).values())
    with api.connect(ws, CONNECTION) as connector:
        active = connector.read("User", users, ["Id", "IsActive"])
    assert all(r["IsActive"] for r in active.values())


# --- item 6: one apply of a plan at a time; a finished plan is not applied again ------------------------------


def test_a_second_apply_of_the_same_plan_at_once_is_refused_and_a_finished_plan_is_not_reapplied(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    plan = scan(ws, tmp_path / "plan.json")
    first_running = threading.Event()
    second_done = threading.Event()
    results: dict[str, object] = {}

    def hold(progress: ApplyProgress) -> None:
        # The first apply pauses after its first batch, lock held, until the second one has tried.
        if not first_running.is_set():
            first_running.set()
            second_done.wait(120)

    def first() -> None:
        results["first"] = api.apply(ws, tmp_path / "plan.json", confirm=yes, progress=hold).report

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert first_running.wait(120)
        with pytest.raises(SafetyRefusal) as refused:
            api.apply(ws, tmp_path / "plan.json", confirm=yes)
    finally:
        second_done.set()
        thread.join(120)
    report = results["first"]
    assert isinstance(report, ApplyReport)
    assert (report.applied, report.failed) == (len(plan.changes), 0)
    assert str(refused.value) == (
        f"plan {plan.header.plan_id} is being applied by run {report.run_id} (pid {os.getpid()}); "
        "wait for it to finish"
    )
    assert [r.run_id for r in api.runs(ws)] == [report.run_id]

    asked: list[Plan] = []

    def ask(p: Plan) -> bool:
        asked.append(p)
        return True

    again = api.apply(ws, tmp_path / "plan.json", confirm=ask).report
    assert again is not None and (again.already_applied, again.run_id) == ("done", report.run_id)
    assert asked == []  # nothing to confirm
    assert [r.run_id for r in api.runs(ws)] == [report.run_id]


def test_a_rollback_of_a_rollback_deletes_again_only_what_still_qualifies_and_is_not_protected(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    """Undoing a rollback deletes again what the scan's pass proposed: the same live re-check and the
    [protect] in force now must hold, or a supported command walks around them."""
    sf = other_admin(sandbox)
    plan = scan(ws, tmp_path / "plan.json")
    targets = contact_deletes(plan)
    applied = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert applied is not None
    undone = api.rollback(ws, applied.run_id, confirm=yes).report
    assert undone is not None and undone.failed == 0
    on_open_deal, protected = targets[:2]
    opened = sf.query("SELECT Id FROM Opportunity WHERE IsClosed = false LIMIT 1")["records"][0]["Id"]
    sobject(sf, "OpportunityContactRole").create({"ContactId": on_open_deal, "OpportunityId": opened})
    assert ws.config.path is not None
    ws.config.path.write_text(
        ws.config.path.read_text(encoding="utf-8") + f'\n[protect]\nids = ["{protected}"]\n', encoding="utf-8"
    )
    now = api.Workspace.load(ws.config.path, ws.home.root)

    again = api.rollback(now, undone.run_id, confirm=yes).report

    assert again is not None
    skipped = {i["id"]: i["reason"] for i in again.skipped_items}
    assert skipped[on_open_deal] == "no longer qualifies" and skipped[protected] == "protected"
    live = deleted(ws, "Contact", targets)
    assert not live[on_open_deal] and not live[protected]
    assert all(live[i] for i in targets if i not in skipped)


def test_a_rollback_of_a_rollback_deletes_again_what_it_re_created_or_undeleted_unless_edited_since(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    """The contacts a rollback re-created (purged from the recycle bin) carry today's created and modified
    dates, set by the CRM for crmsweep's write: undoing that rollback must not read them as activity. A
    contact someone edited after the rollback is theirs (drift)."""
    sf = other_admin(sandbox)
    plan = api.scan(ws, CONNECTION, tmp_path / "plan.json", passes=["stale_contacts"]).result.plan
    targets = contact_deletes(plan)
    applied = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert applied is not None and applied.failed == 0
    active = {u["Id"] for u in sf.query_all("SELECT Id FROM User WHERE IsActive = true")["records"]}
    owners = {c.record_id: c.before.get("OwnerId") for c in plan.changes}
    # A re-create needs an active owner (the CRM refuses an inactive one): purge those that have one.
    purged = [i for i in targets if owners[i] in active][:3]
    edited = next(i for i in targets if i not in purged)
    assert empty_recycle_bin(sandbox, purged) == [True] * len(purged)
    undone = api.rollback(ws, applied.run_id, confirm=yes).report
    assert undone is not None and undone.failed == 0
    copies = undone.id_map["Contact"]
    assert sorted(copies) == sorted(purged)
    today = datetime.now(UTC).date().isoformat()
    assert all(r["CreatedDate"].startswith(today) and r["LastActivityDate"] is None for r in (
        sobject(sf, "Contact").get(copy) for copy in copies.values()))
    sobject(sf, "Contact").update(edited, {"Title": "Kept"})
    # A task done today on a copy: activity since the rollback, which its LastActivityDate now says.
    busy = copies[purged[0]]
    sobject(sf, "Task").create({"WhoId": busy, "Subject": "Call", "Status": "Completed", "ActivityDate": today})

    again = api.rollback(ws, undone.run_id, confirm=yes).report

    assert again is not None and again.failed == 0
    skipped = {i["id"]: (i["reason"], i["detail"]) for i in again.skipped_items}
    assert sorted(skipped) == sorted([edited, busy]) and skipped[edited][0] == "drift"
    assert skipped[busy] == ("no longer qualifies", f"no longer stale: LastActivityDate is {today}")
    back = [copies.get(i, i) for i in targets]
    live = deleted(ws, "Contact", back)
    assert sorted(i for i in back if not live[i]) == sorted([edited, busy])
    assert sobject(sf, "Contact").get(edited)["Title"] == "Kept"
