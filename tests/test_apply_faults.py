"""A whole apply against a misbehaving CRM: the sandbox injects faults, the real connector meets them.

Outcomes are read back through the API: every change lands exactly once despite 503s and locked
rows; a spent API allowance stops the run cleanly and `--resume` finishes exactly the rest.
"""

from __future__ import annotations

from pathlib import Path

from crmsweep import api
from crmsweep.model import Op, Plan
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.server import RunningSandbox


def yes(plan: Plan) -> bool:
    return True


def live_deleted(ws: api.Workspace, obj: str, ids: list[str]) -> dict[str, bool]:
    with api.connect(ws, "flaky") as connector:
        rows = connector.read(obj, ids, ["Id", "IsDeleted"], include_deleted=True)
    return {i: bool(rows[i]["IsDeleted"]) for i in ids}


def contact_deletes(plan: Plan) -> list[str]:
    return [c.record_id for c in plan.changes if c.op is Op.DELETE and c.object == "Contact"]


def test_apply_rides_out_503s_and_locked_rows(sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path) -> None:
    plan = api.scan(ws, "flaky", tmp_path / "plan.json").result.plan
    locked = contact_deletes(plan)[:3]
    assert len(locked) == 3
    sandbox.reset_stats()
    sandbox.set_faults([
        FaultRule(kind="status", status=503, path="composite/sobjects", times=2),
        FaultRule(kind="lock", ids=tuple(locked), times=2),
    ])

    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None
    assert (report.applied, report.failed, report.skipped, report.stopped) == (len(plan.changes), 0, 0, None)
    assert sandbox.stats()["faults_injected"] >= 2 + 2 * len(locked)
    assert all(live_deleted(ws, "Contact", contact_deletes(plan)).values())

    # 503: the gateway says the call never ran, so even an undelete may be sent again.
    sandbox.set_faults([FaultRule(kind="status", status=503, path="Soap", times=1)])
    back = api.rollback(ws, report.run_id, confirm=yes).report
    assert back is not None and back.failed == 0 and back.applied == len(plan.changes)
    assert not any(live_deleted(ws, "Contact", contact_deletes(plan)).values())


def test_spent_allowance_stops_cleanly_and_resume_finishes(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    plan = api.scan(ws, "flaky", tmp_path / "plan.json").result.plan
    deletes = contact_deletes(plan)
    assert len(deletes) > 0
    # The second write call is refused: the org's daily allowance is spent.
    sandbox.set_faults([FaultRule(kind="limit", path="composite/sobjects", method="DELETE", times=1)])
    first = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert first is not None
    assert first.stopped is not None and first.stopped.startswith("the org's API allowance is spent: ")
    assert "REQUEST_LIMIT_EXCEEDED" in first.stopped
    assert first.remaining > 0 and first.applied + first.remaining == len(plan.changes)
    assert first.failed == 0

    sandbox.set_faults([])
    second = api.apply(ws, tmp_path / "plan.json", confirm=yes, resume_run=first.run_id).report
    assert second is not None and second.run_id == first.run_id
    assert (second.applied, second.failed, second.remaining, second.stopped) == (len(plan.changes), 0, 0, None)
    assert all(live_deleted(ws, "Contact", deletes).values())
    statuses = {r.run_id: r.status for r in api.runs(ws)}
    assert statuses[first.run_id] == "done"


def test_a_rollback_stopped_midway_is_finished_by_resume_and_marks_the_run(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    plan = api.scan(ws, "flaky", tmp_path / "plan.json").result.plan
    applied = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert applied is not None and applied.failed == 0
    # A 502 on undelete: the gateway may have passed the call on, so it is not resent; the rollback stops.
    sandbox.set_faults([FaultRule(kind="status", status=502, path="Soap", times=1)])
    stopped = api.rollback(ws, applied.run_id, confirm=yes).report
    assert stopped is not None and "may or may not have been carried out" in str(stopped.stopped)
    assert {r.run_id: r.status for r in api.runs(ws)}[applied.run_id] == "done"

    sandbox.set_faults([])
    finished = api.apply(ws, api.run_plan_path(ws, stopped.run_id), confirm=yes, resume_run=stopped.run_id).report
    assert finished is not None and (finished.failed, finished.remaining, finished.stopped) == (0, 0, None)
    assert finished.applied == len(plan.changes)
    assert not any(live_deleted(ws, "Contact", contact_deletes(plan)).values())
    assert {r.run_id: r.status for r in api.runs(ws)}[applied.run_id] == "rolled back"
