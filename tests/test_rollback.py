"""Rollback: apply then roll back leaves the CRM as it was, ids included; refusals; a property test."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crmsweep.backup.rollback import build_rollback_plan, mark_rolled_back, not_undone
from crmsweep.backup.runlog import open_run, read_run
from crmsweep.cleanup.apply import apply_plan
from crmsweep.cleanup.plan_checks import check_plan
from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import Op, Plan, Record
from crmsweep.paths import Home
from tests.fake_connector import FAKE_VOCABULARY, FakeConnector
from tests.plans import signed
from tests.test_apply import (
    Spec,
    contact_id,
    deletes,
    make_org,
    plan_from_snapshot,
    snapshot_of,
    user_id,
    write_plan,
)

pytestmark = pytest.mark.usefixtures("test_pass_registered")

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
AUDIT = ("SystemModstamp", "LastModifiedDate")


def without_audit(org: FakeConnector) -> dict[str, dict[str, Record]]:
    return {
        obj: {rid: {k: v for k, v in row.items() if k not in AUDIT} for rid, row in org.all_rows(obj).items()}
        for obj in ("Contact", "User")
    }


def roll_back(home: Home, org: FakeConnector, run_id: str, *, force: bool = False) -> Any:
    plan = build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY, force=force)
    report = apply_plan(*signed(plan, home), org, home)
    if not (report.failed or report.stopped) and not not_undone(home, run_id, report.run_id):
        mark_rolled_back(home, run_id, report.run_id)
    return report


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


MIXED: list[Spec] = [
    (Op.DELETE, "Contact", contact_id(0), {}),
    (Op.DELETE, "Contact", contact_id(1), {}),
    (Op.UPDATE, "Contact", contact_id(2), {"Email": None, "Score": 42}),
    (Op.DEACTIVATE, "User", user_id(1), {"IsActive": False}),
]


def test_apply_then_rollback_restores_every_record_ids_included(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=4, users=2)
    original = without_audit(org)
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), MIXED))
    applied = apply_plan(plan, text, org, home)
    assert applied.applied == 4 and without_audit(org) != original

    rollback = build_rollback_plan(home, applied.run_id, now=NOW, vocabulary=FAKE_VOCABULARY)
    assert [(c.op, c.record_id) for c in rollback.changes] == [
        (Op.REACTIVATE, user_id(1)),
        (Op.UPDATE, contact_id(2)),
        (Op.UNDELETE, contact_id(1)),
        (Op.UNDELETE, contact_id(0)),
    ]
    assert rollback.changes[1].after == {"Email": "c2@example.com", "Score": 2}
    assert rollback.header.source == {"kind": "run", "id": applied.run_id}
    assert rollback.header.rollback_of == applied.run_id
    assert rollback.header.org_id == plan.header.org_id and rollback.header.passes == plan.header.passes
    assert rollback.header.notes[0] == (
        f"rollback of run {applied.run_id}: 4 changes; ids are kept (1 reactivate, 1 update, 2 undelete)"
    )
    report = apply_plan(*signed(rollback, home), org, home)
    assert (report.applied, report.failed, report.skipped) == (4, 0, 0)
    mark_rolled_back(home, applied.run_id, report.run_id)

    assert without_audit(org) == original
    assert not [w for w in org.writes if w[0] == "create"]  # identity kept: nothing re-created
    assert read_run(home, applied.run_id).status == "rolled back"
    rb_state = read_run(home, report.run_id)
    assert rb_state.kind == "rollback" and rb_state.rollback_of == applied.run_id and rb_state.status == "done"


def test_rollback_twice_is_refused_unless_forced(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=2)
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes([contact_id(0)])))
    run_id = apply_plan(plan, text, org, home).run_id
    rb = roll_back(home, org, run_id)
    with pytest.raises(SafetyRefusal, match=f"run {run_id} was already rolled back by run {rb.run_id}"):
        build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY)
    # Forced, it is built (for a script to inspect); apply's own checks still refuse it: the run was undone.
    forced = build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY, force=True)
    with pytest.raises(SafetyRefusal, match=f"run {run_id} was already rolled back by run {rb.run_id}"):
        apply_plan(*signed(forced, home), org, home)


def test_run_that_applied_nothing_has_nothing_to_roll_back(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=1)
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes([contact_id(0)])))
    org.touch_behind_our_back("Contact", contact_id(0), LastName="Edited")
    run_id = apply_plan(plan, text, org, home).run_id
    with pytest.raises(BadInput, match=f"run {run_id} applied no changes: nothing to roll back"):
        build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY)


def test_rollback_skips_a_record_edited_after_the_apply(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=3)
    specs = [(Op.UPDATE, "Contact", contact_id(i), {"Email": None}) for i in range(2)]
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), specs))
    run_id = apply_plan(plan, text, org, home).run_id
    org.touch_behind_our_back("Contact", contact_id(1), Email="typed-by-hand@example.com")
    report = roll_back(home, org, run_id)
    assert org.row("Contact", contact_id(0))["Email"] == "c0@example.com"
    assert org.row("Contact", contact_id(1))["Email"] == "typed-by-hand@example.com"
    assert [(i["id"], i["reason"]) for i in report.skipped_items] == [(contact_id(1), "drift")]


def test_a_rollback_that_undid_only_part_of_the_run_does_not_mark_it(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=3)
    ids = [contact_id(i) for i in range(3)]
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes(ids)))
    run_id = apply_plan(plan, text, org, home).run_id
    whole = build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY)
    trimmed = Plan.build(whole.header, whole.changes[:1])
    report = apply_plan(*signed(trimmed, home), org, home)
    assert (report.applied, report.failed, report.skipped) == (1, 0, 0)
    with pytest.raises(SafetyRefusal, match="did not undo 2 change"):
        mark_rolled_back(home, run_id, report.run_id)
    assert read_run(home, run_id).status == "done"
    # Rolling back again covers the rest, and only the rest (the first rollback's undo is not planned
    # again); together the two rollbacks put everything back, so the run is now marked.
    assert [c.record_id for c in build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY).changes] \
        == [c.record_id for c in whole.changes[1:]]
    again = roll_back(home, org, run_id)
    assert (again.applied, again.skipped) == (2, 0)
    assert not any(org.row("Contact", i)["IsDeleted"] for i in ids)
    assert read_run(home, run_id).status == "rolled back"


def test_rollback_plan_not_backed_by_the_run_log_is_refused(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=2)
    specs = [(Op.UPDATE, "Contact", contact_id(0), {"Email": None})]
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), specs))
    run_id = apply_plan(plan, text, org, home).run_id
    rollback = build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY)
    forged_change = replace(rollback.changes[0], after={"Email": "attacker@example.com"})
    stranger = replace(rollback.changes[0], record_id=contact_id(1))
    forged = Plan.build(rollback.header, [forged_change, stranger])
    with pytest.raises(SafetyRefusal, match="2 change") as info:
        check_plan(forged, org, home)
    assert "Email differs from the logged before-image" in str(info.value)
    assert f"{contact_id(1)}: no applied change" in str(info.value)
    # Nor may a re-create stand in for the undo of an update (only of an archive or a delete).
    recreate = replace(rollback.changes[0], op=Op.CREATE, before={})
    with pytest.raises(SafetyRefusal, match="create is not the undo of the applied change"):
        check_plan(Plan.build(rollback.header, [recreate]), org, home)


def test_a_rollback_change_that_is_not_the_exact_inverse_is_refused(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=3)
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes(
        [contact_id(0), contact_id(1), contact_id(2)])))
    run_id = apply_plan(plan, text, org, home).run_id
    undo = build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY)
    first, second, third = undo.changes
    forged = Plan.build(undo.header, [
        replace(first, op=Op.DELETE),  # deletes the record again instead of restoring it
        replace(second, label="Someone Else"),
        third,
        third,
    ])
    with pytest.raises(SafetyRefusal, match=r"^3 change\(s\) of the plan are not backed by the log of run") as info:
        check_plan(forged, org, home)
    message = str(info.value)
    assert f"Contact {first.record_id}: delete is not the undo of the applied change (undelete)" in message
    assert f"Contact {second.record_id}: its label is not that of the undo of the applied change" in message
    assert f"Contact {third.record_id}: it is undone twice" in message
    with pytest.raises(SafetyRefusal, match=r"rollback of run-nope: build the rollback plan again"):
        check_plan(undo.with_header(rollback_of="run-nope"), org, home)


def test_unfinished_run_is_refused_until_resumed_then_rolls_back_all(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=3)
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes(
        [contact_id(0), contact_id(1)])))
    org.limit_after_calls = org.calls + 3  # the first batch only
    run_id = apply_plan(plan, text, org, home, batch_size=1).run_id
    org.limit_after_calls = None
    # As if a resume then died mid-call: an intent for the second change, without a result.
    state = read_run(home, run_id)
    handle = open_run(home, run_id)
    handle.append({"t": "resume"})
    handle.append(
        {"t": "intent", "batch": 2, "op": "delete", "object": "Contact", "changes": [1],
         "records": [{"i": 1, "id": contact_id(1), "before": plan.changes[1].before}]}
    )
    assert state.status == "stopped" and read_run(home, run_id).status == "unfinished"
    # The pending write may have landed: leaving it out would keep it deleted for good.
    unsettled = r"1 write\(s\) of unknown outcome: before rolling it back, settle them .*`crmsweep rollback run-"
    with pytest.raises(SafetyRefusal, match=unsettled):
        build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY)
    resumed = apply_plan(plan, text, org, home, batch_size=1, resume_run=run_id)
    assert (resumed.applied, resumed.remaining) == (2, 0)
    rollback = build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY)
    assert [c.record_id for c in rollback.changes] == [contact_id(1), contact_id(0)]


def test_a_rollback_plan_is_refused_once_its_run_is_rolled_back_or_unsettled(tmp_path: Path, home: Home) -> None:
    """check_plan (apply, and `plan accept`) makes the refusals build_rollback_plan makes, for a plan
    written earlier: the run was rolled back since by another plan, or has writes of unknown outcome."""
    org = make_org(contacts=3)
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes(
        [contact_id(0), contact_id(1)])))
    run_id = apply_plan(plan, text, org, home).run_id
    kept = build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY)
    check_plan(kept, org, home)
    roll_back(home, org, run_id)
    with pytest.raises(SafetyRefusal, match=rf"^run {run_id} was already rolled back by run "):
        check_plan(kept, org, home)

    other, other_text = write_plan(tmp_path, home, plan_from_snapshot(home, plan.header.source["id"], deletes(
        [contact_id(2)])))
    org.limit_after_calls = org.calls  # stops before its first write
    other_run = apply_plan(other, other_text, org, home).run_id
    org.limit_after_calls = None
    undo_nothing = kept.with_header(source={"kind": "run", "id": other_run}, rollback_of=other_run)
    handle = open_run(home, other_run)
    handle.append({"t": "resume"})
    handle.append({"t": "intent", "batch": 1, "op": "delete", "object": "Contact", "changes": [0],
                   "records": [{"i": 0, "id": contact_id(2), "before": other.changes[0].before}]})
    with pytest.raises(SafetyRefusal, match=r"1 write\(s\) of unknown outcome: before rolling it back"):
        check_plan(undo_nothing, org, home)


def test_mark_rolled_back_needs_a_finished_rollback_of_that_run(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=2)
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes([contact_id(0)])))
    run_id = apply_plan(plan, text, org, home).run_id
    other_id = apply_plan(*signed(plan_from_snapshot(home, plan.header.source["id"], deletes(
        [contact_id(1)])), home), org, home).run_id
    with pytest.raises(BadInput, match="is not a rollback of"):
        mark_rolled_back(home, run_id, other_id)
    assert read_run(home, run_id).status == "done"


# --- property: apply then rollback is the identity on every record ----------------------------------------------

CONTACTS, USERS = 6, 3


@st.composite
def random_plans(draw: st.DrawFn) -> list[Spec]:
    specs: list[Spec] = []
    for i in draw(st.lists(st.integers(0, CONTACTS - 1), unique=True, max_size=CONTACTS)):
        if draw(st.booleans()):
            specs.append((Op.DELETE, "Contact", contact_id(i), {}))
        else:
            after = draw(st.fixed_dictionaries({"Score": st.integers(-5, 5)}, optional={
                "Email": st.none() | st.just("x@example.com"),
                "LastName": st.text("abcxyz", min_size=1, max_size=5),
            }))
            specs.append((Op.UPDATE, "Contact", contact_id(i), after))
    for i in draw(st.lists(st.integers(0, USERS - 1), unique=True, max_size=USERS)):
        specs.append((Op.DEACTIVATE, "User", user_id(i), {"IsActive": False}))
    order = draw(st.permutations(range(len(specs))))
    return [specs[k] for k in order]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=random_plans(), batch=st.integers(1, 4))
def test_property_apply_then_rollback_restores_the_org(tmp_path_factory: pytest.TempPathFactory,
                                                       specs: list[Spec], batch: int) -> None:
    folder = tmp_path_factory.mktemp("prop")
    home = Home(folder / "home")
    org = make_org(contacts=CONTACTS, users=USERS)
    original = without_audit(org)
    # A change that writes what the record already holds is no change: a pass would not propose it.
    plan = plan_from_snapshot(home, snapshot_of(org, home), specs)
    plan = Plan.build(plan.header, [c for c in plan.changes if c.op is Op.DELETE or any(
        c.before.get(k) != v for k, v in c.after.items())])
    if not plan.changes:
        return
    applied = apply_plan(*signed(plan, home), org, home, batch_size=batch)
    assert applied.applied == len(plan.changes)
    rollback = build_rollback_plan(home, applied.run_id, now=NOW, vocabulary=FAKE_VOCABULARY)
    report = apply_plan(*signed(rollback, home), org, home, batch_size=batch)
    assert (report.applied, report.skipped, report.failed) == (len(plan.changes), 0, 0)
    assert without_audit(org) == original
