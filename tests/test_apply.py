"""Apply: plan checks, batching, drift, the write-ahead log, clean stops, resume and reconcile.

Outcomes are read back from the fake CRM's stored rows and from the run log on disk.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crmsweep.backup.rollback import build_rollback_plan
from crmsweep.backup.runlog import Outcome, open_run, read_run
from crmsweep.backup.snapshot import open_snapshot, take_snapshot
from crmsweep.cleanup.apply import ApplyProgress, apply_plan
from crmsweep.cleanup.labels import record_label
from crmsweep.cleanup.plan_auth import signed_json
from crmsweep.cleanup.plan_checks import check_plan, load_plan
from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import Change, FieldKind, Op, Plan, PlanHeader, Record, WriteResult
from crmsweep.paths import Home
from tests.fake_connector import FAKE_VOCABULARY, FakeConnector, spec, standard_fields
from tests.plans import signed, write_signed

pytestmark = pytest.mark.usefixtures("test_pass_registered")

ORG = "00DFAKE000000000AA"
SCANNED = "2024-05-01T10:00:00.000Z"

Spec = tuple[Op, str, str, Record]


# --- helpers shared with test_rollback -------------------------------------------------------------------


def contact_id(i: int) -> str:
    return f"003{i:015d}"


def user_id(i: int) -> str:
    return f"005{i:015d}"


def make_org(contacts: int = 5, users: int = 2, *, org_id: str = ORG,
             cls: type[FakeConnector] = FakeConnector) -> FakeConnector:
    fields = {
        "Contact": standard_fields(spec("LastName"), spec("Email"), spec("OwnerId"), spec("Score", FieldKind.INT)),
        "User": standard_fields(spec("Name"), spec("Username"), spec("IsActive", FieldKind.BOOL), deletable=False),
    }
    audit = {"CreatedDate": "2020-01-01T00:00:00.000Z", "LastModifiedDate": SCANNED, "SystemModstamp": SCANNED}
    records: dict[str, list[Record]] = {
        "Contact": [
            {"Id": contact_id(i), "LastName": f"Name{i}", "Email": f"c{i}@example.com", "OwnerId": user_id(i % 2),
             "Score": i, **audit}
            for i in range(contacts)
        ],
        "User": [
            {"Id": user_id(i), "Name": f"User {i}", "Username": f"u{i}@example.com", "IsActive": True, **audit}
            for i in range(users)
        ],
    }
    return cls(fields, records, org_id=org_id)


def snapshot_of(connector: FakeConnector, home: Home) -> str:
    return take_snapshot(connector, home, objects=["Contact", "User"]).snapshot_id


def plan_from_snapshot(home: Home, snapshot_id: str, specs: Sequence[Spec]) -> Plan:
    """Changes as a pass would propose them: before-images and fingerprints from the snapshot."""
    reader = open_snapshot(home, snapshot_id)
    changes = []
    for op, obj, record_id, after in specs:
        before = reader.record_map(obj, [record_id])[record_id]
        changes.append(
            Change(op=op, object=obj, record_id=record_id, before=dict(before), after=dict(after), reason="test",
                   pass_name="test_pass", fingerprint=before["SystemModstamp"],
                   label=record_label(FAKE_VOCABULARY, obj, before))
        )
    header = PlanHeader(
        plan_id="plan-20300101T000000Z-0001",
        created="2030-01-01T00:00:00.000Z",
        tool_version="0.1.0",
        provider="fake",
        org_id=ORG,
        connection="fake",
        source={"kind": "snapshot", "id": snapshot_id},
        passes=("test_pass",),
    )
    return Plan.build(header, changes)


def deletes(ids: Sequence[str]) -> list[Spec]:
    return [(Op.DELETE, "Contact", rid, {}) for rid in ids]


def write_plan(tmp_path: Path, home: Home, plan: Plan) -> tuple[Plan, str]:
    """Written and loaded as crmsweep does: signed by `home`, then digest and signature checked."""
    return load_plan(write_signed(tmp_path / "plan.json", plan, home), home)


def log_entries(home: Home, run_id: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in open_run(home, run_id).log_path.read_text().splitlines()]


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


# --- plan checks ------------------------------------------------------------------------------------------


def test_tampered_plan_is_refused(tmp_path: Path, home: Home) -> None:
    org = make_org()
    plan = plan_from_snapshot(home, snapshot_of(org, home), deletes([contact_id(0)]))
    path = tmp_path / "plan.json"
    path.write_text(signed_json(plan, home).replace('"reason": "test"', '"reason": "edited"'), encoding="utf-8")
    with pytest.raises(SafetyRefusal, match=r"was changed after it was written \(digest mismatch\): scan again"):
        load_plan(path, home)


def test_missing_or_malformed_plan_file_is_bad_input(tmp_path: Path, home: Home) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        load_plan(tmp_path / "nope.json", home)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(BadInput, match=r"bad\.json is not a valid plan"):
        load_plan(tmp_path / "bad.json", home)


def test_plan_text_not_matching_the_plan_is_refused(tmp_path: Path, home: Home) -> None:
    org = make_org()
    plan = plan_from_snapshot(home, snapshot_of(org, home), deletes([contact_id(0)]))
    other = plan_from_snapshot(home, plan.header.source["id"], deletes([contact_id(1)]))
    with pytest.raises(SafetyRefusal, match="digest mismatch"):
        apply_plan(plan, signed_json(other, home), org, home)
    assert not org.writes


def test_plan_for_another_org_is_bad_input(tmp_path: Path, home: Home) -> None:
    org = make_org()
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes([contact_id(0)])))
    other = make_org(org_id="00DOTHER00000000AA")
    with pytest.raises(BadInput, match=f"plan is for org {ORG} but connection 'fake' is org 00DOTHER00000000AA"):
        apply_plan(plan, text, other, home)
    assert not other.writes


def test_before_image_not_in_snapshot_is_refused(tmp_path: Path, home: Home) -> None:
    org = make_org()
    good = plan_from_snapshot(home, snapshot_of(org, home), deletes([contact_id(0), contact_id(1)]))
    edited = replace(good.changes[1], before={**good.changes[1].before, "LastName": "Forged"})
    # Consistent in itself (id, fingerprint and label are the before-image's), so only the snapshot can tell.
    ghost = replace(good.changes[0], record_id="003GHOST", label="",
                    before={"Id": "003GHOST", "SystemModstamp": good.changes[0].fingerprint})
    plan = Plan.build(good.header, [good.changes[0], edited, ghost])
    with pytest.raises(SafetyRefusal, match="2 before-image") as info:
        check_plan(plan, org, home)
    assert "LastName" in str(info.value) and "003GHOST: not in the snapshot" in str(info.value)
    with pytest.raises(SafetyRefusal):
        apply_plan(*signed(plan, home), org, home)
    assert not org.writes


def test_tampered_snapshot_is_refused(tmp_path: Path, home: Home) -> None:
    org = make_org()
    snapshot_id = snapshot_of(org, home)
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_id, deletes([contact_id(0)])))
    folder = home.snapshots_dir / snapshot_id
    victim = next(p for p in sorted(folder.rglob("*.parquet")))
    victim.write_bytes(victim.read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(SafetyRefusal, match="does not verify"):
        apply_plan(plan, text, org, home)
    assert not org.writes


# --- the engine ---------------------------------------------------------------------------------------------


def test_450_deletes_go_in_three_calls_and_are_logged(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=450)
    ids = [contact_id(i) for i in range(450)]
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes(ids)))

    report = apply_plan(plan, text, org, home)

    assert [(op, obj, len(batch)) for op, obj, batch in org.writes] == [
        ("delete", "Contact", 200), ("delete", "Contact", 200), ("delete", "Contact", 50)
    ]
    assert all(org.row("Contact", rid)["IsDeleted"] is True for rid in ids)
    assert (report.applied, report.skipped, report.failed, report.remaining, report.stopped) == (450, 0, 0, 0, None)
    state = read_run(home, report.run_id)
    assert state.status == "done"
    assert all(o.outcome is Outcome.APPLIED for o in state.outcomes)
    # fingerprint_after is the value the CRM holds now (rollback's drift check expects it).
    assert state.outcomes[7].fingerprint_after == org.row("Contact", ids[7])["SystemModstamp"]
    assert log_entries(home, report.run_id)[-1]["t"] == "end"


def test_batch_size_option_is_capped_by_the_connector(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=7)
    ids = [contact_id(i) for i in range(7)]
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes(ids)))
    apply_plan(plan, text, org, home, batch_size=3)
    assert [len(b) for _, _, b in org.writes] == [3, 3, 1]


def test_mixed_ops_are_batched_by_op_and_object(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=4, users=2)
    specs: list[Spec] = [
        (Op.DELETE, "Contact", contact_id(0), {}),
        (Op.DELETE, "Contact", contact_id(1), {}),
        (Op.UPDATE, "Contact", contact_id(2), {"Email": None, "Score": 99}),
        (Op.DEACTIVATE, "User", user_id(1), {"IsActive": False}),
        (Op.DELETE, "Contact", contact_id(3), {}),
    ]
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), specs))
    report = apply_plan(plan, text, org, home)
    assert report.applied == 5
    assert [(op, obj, ids) for op, obj, ids in org.writes] == [
        ("delete", "Contact", [contact_id(0), contact_id(1)]),
        ("update", "Contact", [contact_id(2)]),
        ("update", "User", [user_id(1)]),
        ("delete", "Contact", [contact_id(3)]),
    ]
    assert org.row("Contact", contact_id(2))["Email"] is None and org.row("Contact", contact_id(2))["Score"] == 99
    assert org.row("User", user_id(1))["IsActive"] is False


def test_record_touched_since_the_scan_is_skipped_not_overwritten(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=3)
    specs: list[Spec] = [
        *deletes([contact_id(0), contact_id(1)]),
        (Op.UPDATE, "Contact", contact_id(2), {"Email": None}),
    ]
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), specs))
    org.touch_behind_our_back("Contact", contact_id(1), LastName="Edited")
    org.touch_behind_our_back("Contact", contact_id(2), Email="new@example.com")
    now_1 = org.row("Contact", contact_id(1))["SystemModstamp"]

    report = apply_plan(plan, text, org, home)

    assert org.row("Contact", contact_id(0))["IsDeleted"] is True
    assert org.row("Contact", contact_id(1))["IsDeleted"] is False
    assert org.row("Contact", contact_id(2))["Email"] == "new@example.com"
    assert (report.applied, report.skipped) == (1, 2)
    first = report.skipped_items[0]
    assert first["id"] == contact_id(1) and first["reason"] == "drift"
    assert first["detail"] == (
        f"changed since the backup the plan was scanned from: SystemModstamp was {SCANNED}, now {now_1}")
    skips = [e for e in log_entries(home, report.run_id) if e["t"] == "skip"]
    assert [(e["i"], e["reason"]) for e in skips] == [(1, "drift"), (2, "drift")]
    assert all(rid != contact_id(1) for _, _, ids in org.writes for rid in ids)


class LogCheckingConnector(FakeConnector):
    """A CRM that, on every write, looks in the run log for the fsynced intent announcing it."""

    runs_dir: Path
    seen: list[int]

    def _assert_announced(self, ids: Sequence[str]) -> None:
        [folder] = list(self.runs_dir.iterdir())
        entries = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
        last = entries[-1]
        assert last["t"] == "intent"
        assert [r["id"] for r in last["records"]] == list(ids)
        assert all(r["before"] for r in last["records"])
        self.seen.append(last["batch"])

    def delete(self, object_name: str, ids: Sequence[str]) -> list[WriteResult]:
        self._assert_announced(ids)
        return super().delete(object_name, ids)


def copy_org(base: FakeConnector, cls: type[FakeConnector]) -> Any:
    objects = ("Contact", "User")
    return cls({o: base.fields(o) for o in objects}, {o: list(base.all_rows(o).values()) for o in objects})


def test_intent_is_on_disk_before_each_write_and_result_follows(tmp_path: Path, home: Home) -> None:
    org: LogCheckingConnector = copy_org(make_org(contacts=5), LogCheckingConnector)
    org.runs_dir, org.seen = home.runs_dir, []
    ids = [contact_id(i) for i in range(5)]
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes(ids)))
    org.fail_ids = {contact_id(3): "DELETE_FAILED"}
    tails: list[tuple[str, str]] = []
    progress: list[ApplyProgress] = []

    def on_progress(p: ApplyProgress) -> None:
        progress.append(p)
        [folder] = list(home.runs_dir.iterdir())
        entries = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines()]
        tails.append((entries[-2]["t"], entries[-1]["t"]))

    report = apply_plan(plan, text, org, home, batch_size=2, progress=on_progress)

    assert org.seen == [1, 2, 3]
    assert tails == [("intent", "result")] * 3
    assert [(p.done, p.applied, p.failed) for p in progress] == [(2, 2, 0), (4, 3, 1), (5, 4, 1)]
    assert report.failed_items == [
        {"i": 3, "op": "delete", "object": "Contact", "id": contact_id(3), "error_code": "DELETE_FAILED",
         "message": "injected failure"}
    ]
    assert org.row("Contact", contact_id(3))["IsDeleted"] is False
    assert all(org.row("Contact", contact_id(i))["IsDeleted"] for i in (0, 1, 2, 4))
    assert read_run(home, report.run_id).status == "done with failures"


def test_limit_stops_cleanly_and_resume_finishes_exactly_the_rest(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=10)
    ids = [contact_id(i) for i in range(10)]
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes(ids)))
    # One drift read covers all ten (they fit one read call); then each batch costs 2 calls (delete,
    # read-back): allow the read and two batches, so the third batch's delete is refused.
    org.limit_after_calls = org.calls + 5

    first = apply_plan(plan, text, org, home, batch_size=3)

    assert first.stopped is not None and "API allowance is spent" in first.stopped
    assert first.stopped.startswith("the org's API allowance is spent: ")
    assert (first.applied, first.remaining) == (6, 4)
    assert read_run(home, first.run_id).status == "stopped"
    assert [rid for _, _, batch in org.writes for rid in batch] == ids[:6]

    org.limit_after_calls = None
    second = apply_plan(plan, text, org, home, batch_size=3, resume_run=first.run_id)

    assert second.run_id == first.run_id
    assert (second.applied, second.remaining, second.stopped) == (10, 0, None)
    assert [rid for _, _, batch in org.writes for rid in batch] == ids  # each exactly once
    assert all(org.row("Contact", rid)["IsDeleted"] for rid in ids)
    kinds = [e["t"] for e in log_entries(home, first.run_id)]
    assert kinds.count("stop") == 1 and kinds.count("resume") == 1 and kinds[-1] == "end"
    assert read_run(home, first.run_id).status == "done"


def test_transient_errors_exhausted_stop_before_any_intent(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=2)
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes(
        [contact_id(0), contact_id(1)])))
    org.transient_failures = 1
    report = apply_plan(plan, text, org, home)
    assert report.stopped is not None and "kept failing after retries" in report.stopped
    assert report.remaining == 2 and not org.writes
    assert [e["t"] for e in log_entries(home, report.run_id)] == ["start", "stop"]


class DiesAfterWriting(FakeConnector):
    """The write reaches the CRM, then the process is killed before it hears back."""

    die = True

    def delete(self, object_name: str, ids: Sequence[str]) -> list[WriteResult]:
        results = super().delete(object_name, ids)
        if self.die:
            raise ProcessDied
        return results

    def update(self, object_name: str, records: Sequence[Record]) -> list[WriteResult]:
        results = super().update(object_name, records)
        if self.die and len(self.writes) > 1:
            raise ProcessDied
        return results


class ProcessDied(BaseException):
    """The process ending mid-call with no chance to log (kill -9): nothing of ours catches it."""


def dying_org(contacts: int) -> DiesAfterWriting:
    org: DiesAfterWriting = copy_org(make_org(contacts=contacts), DiesAfterWriting)
    return org


def test_crash_between_write_and_result_is_reconciled_without_writing_twice(tmp_path: Path, home: Home) -> None:
    org = dying_org(contacts=4)
    specs: list[Spec] = [
        *deletes([contact_id(0), contact_id(1)]),
        (Op.UPDATE, "Contact", contact_id(2), {"Email": None}),
    ]
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), specs))

    with pytest.raises(ProcessDied):
        apply_plan(plan, text, org, home)
    [folder] = list(home.runs_dir.iterdir())
    run_id = folder.name
    state = read_run(home, run_id)
    assert [o.outcome for o in state.outcomes] == [Outcome.PENDING, Outcome.PENDING, Outcome.NOT_STARTED]
    assert state.status == "unfinished"
    with open_run(home, run_id).lock():  # the dead process holds no lock
        pass

    org.die = False
    report = apply_plan(plan, text, org, home, resume_run=run_id)

    assert (report.applied, report.skipped, report.failed) == (3, 0, 0)
    assert org.writes == [
        ("delete", "Contact", [contact_id(0), contact_id(1)]),
        ("update", "Contact", [contact_id(2)]),
    ]
    reconciled = [e for e in log_entries(home, run_id) if e["t"] == "result" and e.get("reconciled")]
    assert [r["i"] for r in reconciled[0]["results"]] == [0, 1]
    assert reconciled[0]["results"][0]["fingerprint_after"] == org.row("Contact", contact_id(0))["SystemModstamp"]
    assert read_run(home, run_id).status == "done"


def test_crash_before_an_update_reached_the_crm_is_written_on_resume(tmp_path: Path, home: Home) -> None:
    org = dying_org(contacts=3)
    specs: list[Spec] = [(Op.UPDATE, "Contact", contact_id(0), {"Email": None}),
             (Op.UPDATE, "User", user_id(0), {"Name": "Renamed"})]
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), specs))
    with pytest.raises(ProcessDied):
        apply_plan(plan, text, org, home)  # the second update (User) is written, then the process dies
    run_id = next(home.runs_dir.iterdir()).name
    # Someone reverts the user by hand before we resume: the log has an intent, the CRM shows no write.
    org.touch_behind_our_back("User", user_id(0), Name="User 0")
    org.die = False
    report = apply_plan(plan, text, org, home, resume_run=run_id)
    # Not applied and not the plan's fingerprint any more: skipped as drift, never overwritten.
    assert report.skipped_items[0]["reason"] == "drift"
    assert org.row("User", user_id(0))["Name"] == "User 0"
    assert report.applied == 1


def test_same_plan_applied_twice_does_nothing_the_second_time(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=3, users=1)
    specs: list[Spec] = [*deletes([contact_id(0)]), (Op.UPDATE, "Contact", contact_id(1), {"Email": None}),
             (Op.DEACTIVATE, "User", user_id(0), {"IsActive": False})]
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), specs))
    first = apply_plan(plan, text, org, home)
    after_first = {o: org.all_rows(o) for o in ("Contact", "User")}
    writes = len(org.writes)

    again = apply_plan(plan, text, org, home)

    assert len(org.writes) == writes
    assert {o: org.all_rows(o) for o in ("Contact", "User")} == after_first
    # Said so, naming the run; no second (empty) run.
    assert (again.already_applied, again.run_id, again.applied) == ("done", first.run_id, 3)
    assert [p.name for p in home.runs_dir.iterdir()] == [first.run_id]
    # Another plan with the same changes is another plan: it runs, and finds everything drifted.
    other = plan.with_header(plan_id="plan-20300101T000000Z-0002")
    second = apply_plan(*signed(other, home), org, home)
    assert len(org.writes) == writes
    assert [i["reason"] for i in second.skipped_items] == ["already deleted", "drift", "drift"]


def test_resume_is_refused_while_the_run_is_locked_or_for_another_plan(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=4)
    snapshot_id = snapshot_of(org, home)
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_id, deletes(
        [contact_id(0), contact_id(1)])))
    org.limit_after_calls = org.calls + 1
    first = apply_plan(plan, text, org, home, batch_size=1)
    org.limit_after_calls = None
    assert first.stopped

    with open_run(home, first.run_id).lock(), pytest.raises(SafetyRefusal, match="being applied by another process"):
        apply_plan(plan, text, org, home, resume_run=first.run_id)
    other = plan_from_snapshot(home, snapshot_id, deletes([contact_id(3)]))
    kept = home.runs_dir / first.run_id / "plan.json"
    with pytest.raises(SafetyRefusal, match="not this plan") as refused:
        apply_plan(*signed(other, home), org, home, resume_run=first.run_id)
    # It names the run's own copy of its plan (the admin's file may hold a newer scan by now), which resumes it.
    assert f"which the run keeps: `crmsweep apply {kept} --resume {first.run_id}`" in str(refused.value)
    assert Plan.from_json(kept.read_text(encoding="utf-8"))[0].digest == plan.digest
    with pytest.raises(BadInput, match="no run"):
        apply_plan(plan, text, org, home, resume_run="run-20000101T000000Z-0000")
    assert read_run(home, first.run_id).status == "stopped"


def test_limit_hit_reading_back_fingerprints_still_logs_the_write(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=1)
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes([contact_id(0)])))
    org.limit_after_calls = org.calls + 2  # the drift read and the delete; the read-back is refused
    report = apply_plan(plan, text, org, home)
    assert report.stopped is not None and (report.applied, report.remaining) == (1, 0)
    assert [e["t"] for e in log_entries(home, report.run_id)] == ["start", "intent", "result", "stop"]
    assert read_run(home, report.run_id).outcomes[0].fingerprint_after is None
    org.limit_after_calls = None
    again = apply_plan(plan, text, org, home, resume_run=report.run_id)
    assert again.stopped is None and len(org.writes) == 1
    assert read_run(home, report.run_id).status == "done"


class DeletedMeanwhile(FakeConnector):
    """Another admin deletes one planned record between our drift read and our delete."""

    victim = ""

    def delete(self, object_name: str, ids: Sequence[str]) -> list[WriteResult]:
        self.touch_behind_our_back(object_name, self.victim, IsDeleted=True)
        return super().delete(object_name, ids)


def test_a_record_deleted_by_someone_else_meanwhile_is_reported_not_claimed(tmp_path: Path, home: Home) -> None:
    org: DeletedMeanwhile = copy_org(make_org(contacts=3), DeletedMeanwhile)
    org.victim = contact_id(1)
    ids = [contact_id(i) for i in range(3)]
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes(ids)))

    report = apply_plan(plan, text, org, home)

    assert (report.applied, report.failed) == (2, 1)
    assert [item["error_code"] for item in report.failed_items] == ["ENTITY_IS_DELETED"]
    # Rollback undoes only what this run did: the other admin's deletion stands.
    undo = build_rollback_plan(home, report.run_id, now=datetime(2030, 6, 1, tzinfo=UTC), vocabulary=FAKE_VOCABULARY)
    assert sorted(c.record_id for c in undo.changes) == [contact_id(0), contact_id(2)]


def test_a_change_without_fingerprint_is_skipped_not_written() -> None:
    from crmsweep.cleanup.drift import drift_verdict
    from tests.fake_connector import FAKE_VOCABULARY

    live = {"Id": contact_id(1), "IsDeleted": True, "SystemModstamp": "2030-01-01T00:00:00.000Z"}
    undo = Change(op=Op.UNDELETE, object="Contact", record_id=contact_id(1), before=live, after={}, reason="undo",
                  pass_name="stale_contacts", fingerprint=None)
    assert drift_verdict(undo, live, FAKE_VOCABULARY) == ("drift", "no SystemModstamp was recorded to check it against")
    checked = replace(undo, fingerprint="2030-01-01T00:00:00.000Z")
    assert drift_verdict(checked, live, FAKE_VOCABULARY) is None


def test_drift_detail_shows_both_times_in_the_form_the_cli_shows_times() -> None:
    from crmsweep.cleanup.drift import drift_verdict
    from tests.fake_connector import FAKE_VOCABULARY

    # The plan holds the snapshot's canonical stamp; Salesforce answers the live one as "+0000".
    live = {"Id": contact_id(1), "IsDeleted": False, "SystemModstamp": "2026-05-01T10:05:00.000+0000"}
    change = Change(op=Op.DELETE, object="Contact", record_id=contact_id(1), before=live, after={}, reason="stale",
                    pass_name="stale_contacts", fingerprint="2026-05-01T10:00:00.000Z")
    assert drift_verdict(change, live, FAKE_VOCABULARY) == ("drift", (
        "changed since the backup the plan was scanned from: "
        "SystemModstamp was 2026-05-01T10:00:00.000Z, now 2026-05-01T10:05:00.000Z"))
    # A rollback's fingerprint is what its run left (read back in the CRM's spelling), not a backup's.
    undo = replace(change, fingerprint="2026-05-01T10:00:00.000+0000")
    assert drift_verdict(undo, live, FAKE_VOCABULARY, since="run R wrote it") == ("drift", (
        "changed since run R wrote it: SystemModstamp was 2026-05-01T10:00:00.000Z, now 2026-05-01T10:05:00.000Z"))


def test_a_plan_naming_an_object_its_snapshot_lacks_is_refused(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=2)
    plan = plan_from_snapshot(home, snapshot_of(org, home), deletes([contact_id(0)]))
    alien = replace(plan.changes[0], object="Invoice__c", label="")  # Invoice__c has no label fields
    forged, _ = write_plan(tmp_path, home, Plan.build(plan.header, [alien]))
    with pytest.raises(SafetyRefusal, match=r"Invoice__c 003\w+: Invoice__c is not in the snapshot"):
        check_plan(forged, org, home)


class EditsDuringTheFirstWrite(FakeConnector):
    """Another admin edits a record (`victim`) while the first batch is being written."""

    victim = ""
    reads: list[list[str]]

    def read(self, object_name: str, ids: Sequence[str], fields: Sequence[str], *,
             include_deleted: bool = True) -> dict[str, Record]:
        self.reads = [*getattr(self, "reads", []), list(ids)]
        return super().read(object_name, ids, fields, include_deleted=include_deleted)

    def delete(self, object_name: str, ids: Sequence[str]) -> list[WriteResult]:
        results = super().delete(object_name, ids)
        if len(self.writes) == 1:
            self.touch_behind_our_back("Contact", self.victim, LastName="Edited meanwhile")
        return results


def test_a_batch_is_drift_checked_after_the_write_before_it_in_the_read_back_s_call(
    tmp_path: Path, home: Home
) -> None:
    ids = [contact_id(i) for i in range(4)]
    org = make_org(contacts=4, cls=EditsDuringTheFirstWrite)
    assert isinstance(org, EditsDuringTheFirstWrite)
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), deletes(ids)))
    org.victim, org.reads = ids[3], []

    report = apply_plan(plan, text, org, home, batch_size=2)

    # One call reads the first batch back and the second for its drift check, after the first write:
    # the edit made meanwhile is seen, and that record is skipped, not deleted.
    assert org.reads == [ids[:2], ids, ids[2:3]]
    assert [(i["id"], i["reason"]) for i in report.skipped_items] == [(ids[3], "drift")]
    assert [rid for _, _, batch in org.writes for rid in batch] == ids[:3]
    assert org.row("Contact", ids[3])["IsDeleted"] is False
