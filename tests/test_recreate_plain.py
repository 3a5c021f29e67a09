"""Re-creating without undelete, on the test fake (issue 6 item 5): what a CREATE writes, how it is
applied and logged, how resume settles one of unknown outcome, and what the plan checks refuse.

The fake holds the idempotency key on the record (as a CRM with a key property does) and refuses, as
Salesforce does, a create that names a field it may not write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crmsweep.backup.recreate import create_values, parents_first
from crmsweep.backup.rollback import build_rollback_plan
from crmsweep.backup.runlog import Outcome, read_run
from crmsweep.cleanup.apply import apply_plan
from crmsweep.cleanup.drift import claimed_twice, created_matches
from crmsweep.cleanup.plan_checks import check_plan, read_plan_file
from crmsweep.errors import BadInput, ConnectorError, SafetyRefusal
from crmsweep.model import Change, CreateAttempt, FieldKind, Op, Plan, Record, WriteResult, placeholder
from crmsweep.paths import Home
from tests.fake_connector import FAKE_VOCABULARY, FakeConnector, spec
from tests.plans import signed, write_signed
from tests.test_apply import Spec, contact_id, copy_org, make_org, plan_from_snapshot, snapshot_of, write_plan

pytestmark = pytest.mark.usefixtures("test_pass_registered")

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
CREATEABLE = {"LastName", "Email", "OwnerId", "Score"}  # make_org's Contact fields a create may write


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


def archived(tmp_path: Path, home: Home, org: FakeConnector, count: int) -> str:
    """Run id of an apply that archived the first `count` contacts."""
    specs: list[Spec] = [(Op.ARCHIVE, "Contact", contact_id(i), {}) for i in range(count)]
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), specs))
    report = apply_plan(plan, text, org, home)
    assert report.applied == count
    return report.run_id


def live_contacts(org: FakeConnector) -> list[Record]:
    return [r for r in org.all_rows("Contact").values() if not r.get("IsDeleted")]


def test_an_archive_is_undone_by_a_create_of_its_createable_fields_whose_new_id_the_run_logs(
    tmp_path: Path, home: Home
) -> None:
    org = make_org(contacts=3)
    before = {contact_id(0): dict(org.row("Contact", contact_id(0)))}
    run_id = archived(tmp_path, home, org, 1)

    rollback = build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY)
    [create] = rollback.changes
    assert (create.op, create.record_id, create.before) == (Op.CREATE, contact_id(0), {})
    # The before-image's Id, IsDeleted, CreatedDate and audit stamps are not written: only createable fields.
    assert create.after == {k: before[contact_id(0)][k] for k in sorted(CREATEABLE)}
    report = apply_plan(*signed(rollback, home), org, home)
    assert (report.applied, report.failed) == (1, 0)

    state = read_run(home, report.run_id)
    new_id = state.id_map["Contact"][contact_id(0)]
    assert new_id != contact_id(0)
    assert {k: org.row("Contact", new_id)[k] for k in CREATEABLE} == {k: before[contact_id(0)][k] for k in CREATEABLE}
    [result] = [e for e in state.entries if e["t"] == "result"]
    assert (result["results"][0]["id"], result["results"][0]["old_id"]) == (new_id, contact_id(0))
    [intent] = [e for e in state.entries if e["t"] == "intent"]
    assert intent["records"][0]["key"] == f"crmsweep:{report.run_id}:0"

    # Undoing the rollback deletes the record it made, by its new id.
    again = build_rollback_plan(home, report.run_id, now=NOW, vocabulary=FAKE_VOCABULARY)
    assert [(c.op, c.record_id) for c in again.changes] == [(Op.DELETE, new_id)]


class LosesTheAnswer(FakeConnector):
    """The create reaches the CRM and is carried out; the answer never comes back (a dropped connection)."""

    lose = True

    def create(
        self, object_name: str, records: Sequence[Record], *, keys: Sequence[str] | None = None
    ) -> list[WriteResult]:
        results = super().create(object_name, records, keys=keys)
        if self.lose:
            self.lose = False
            raise ConnectorError("create may or may not have been carried out", code="OUTCOME_UNKNOWN")
        return results


def test_a_create_of_unknown_outcome_is_found_by_its_key_on_resume_and_not_sent_again(
    tmp_path: Path, home: Home
) -> None:
    org: LosesTheAnswer = copy_org(make_org(contacts=3), LosesTheAnswer)
    run_id = archived(tmp_path, home, org, 2)
    rollback = build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY)
    plan, text = signed(rollback, home)

    stopped = apply_plan(plan, text, org, home)
    assert stopped.stopped and stopped.remaining == 2
    assert len(live_contacts(org)) == 3  # both creates landed
    assert read_run(home, stopped.run_id).count(Outcome.PENDING) == 2

    resumed = apply_plan(plan, text, org, home, resume_run=stopped.run_id)
    assert (resumed.applied, resumed.failed, resumed.remaining) == (2, 0, 0)
    assert len(live_contacts(org)) == 3  # and were not made twice
    assert [w[0] for w in org.writes].count("create") == 1
    id_map = read_run(home, stopped.run_id).id_map["Contact"]
    assert set(id_map) == {contact_id(0), contact_id(1)}
    assert all(org.row("Contact", new)["Email"] == f"c{old[-1]}@example.com" for old, new in id_map.items())


def test_a_create_that_never_landed_is_sent_again_on_resume(tmp_path: Path, home: Home) -> None:
    org = make_org(contacts=2)
    run_id = archived(tmp_path, home, org, 1)
    plan, text = signed(build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY), home)

    class DiesBeforeSending(FakeConnector):
        def create(
            self, object_name: str, records: Sequence[Record], *, keys: Sequence[str] | None = None
        ) -> list[WriteResult]:
            raise KeyboardInterrupt

    dying: DiesBeforeSending = copy_org(org, DiesBeforeSending)
    with pytest.raises(Exception, match="interrupted"):
        apply_plan(plan, text, dying, home)
    [run] = [p.name for p in home.runs_dir.iterdir() if p.name != run_id]
    resumed = apply_plan(plan, text, org, home, resume_run=run)
    assert (resumed.applied, resumed.failed) == (1, 0)
    assert len(live_contacts(org)) == 2


def test_two_records_matching_what_one_create_sent_leave_it_unknown_not_guessed() -> None:
    attempt = CreateAttempt(key="k1", values={"LastName": "Doe", "Score": 1}, sent_after="2030-01-01T00:00:00.000Z")
    other = replace(attempt, key="k2")
    twins = [{"Id": "A", "LastName": "Doe", "Score": 1.0}, {"Id": "B", "LastName": "Doe", "Score": 1}]
    assert created_matches(attempt, twins, "Id") == ["A", "B"]
    assert created_matches(attempt, twins, "Id", exclude=["A"]) == ["B"]
    assert created_matches(attempt, [{"Id": "C", "LastName": "Doe", "Score": 2}], "Id") == []
    assert claimed_twice({0: ["A"], 1: ["A"], 2: ["B"]}) == {"A"}
    assert created_matches(other, twins[:1], "Id") == ["A"]


# --- what a re-create writes, and in what order (pure) ---------------------------------------------------


ACCOUNT_FIELDS = [spec("Id", writable=False), spec("Name"), spec("CreatedDate", FieldKind.DATETIME, writable=False)]
CONTACT_FIELDS = [
    spec("Id", writable=False), spec("LastName"), spec("Name", writable=False),
    replace(spec("AccountId"), reference_to=("Account",)),
    replace(spec("ReportsToId"), reference_to=("Contact",)),
]
SPECS = {"Account": ACCOUNT_FIELDS, "Contact": CONTACT_FIELDS}


def create(obj: str, record_id: str, after: Record) -> Change:
    return Change(op=Op.CREATE, object=obj, record_id=record_id, before={}, after=after, reason="t", pass_name="t")


def test_a_lookup_to_a_parent_re_created_alongside_is_a_placeholder_others_stay_literal() -> None:
    before = {"Id": "003A", "LastName": "Doe", "Name": "Jo Doe", "AccountId": "001A", "ReportsToId": "003Z"}
    values = create_values("Contact", before, SPECS, {("Account", "001A")}, FAKE_VOCABULARY)
    assert values == {"LastName": "Doe", "AccountId": placeholder("Account", "001A"), "ReportsToId": "003Z"}
    with pytest.raises(Exception, match="the snapshot holds no field list for Lead"):
        create_values("Lead", before, SPECS, set(), FAKE_VOCABULARY)


def test_creates_come_after_the_rest_parents_before_children_and_cycles_are_refused() -> None:
    boss = create("Contact", "003B", {"AccountId": placeholder("Account", "001A")})
    report = create("Contact", "003R", {"ReportsToId": placeholder("Contact", "003B")})
    account = create("Account", "001A", {"Name": "Acme"})
    undelete = Change(op=Op.UNDELETE, object="Contact", record_id="003K", before={"Id": "003K"}, after={},
                      reason="t", pass_name="t")
    ordered = parents_first([report, boss, undelete, account], FAKE_VOCABULARY)
    assert [c.record_id for c in ordered] == ["003K", "001A", "003B", "003R"]
    a = create("Contact", "003X", {"ReportsToId": placeholder("Contact", "003Y")})
    b = create("Contact", "003Y", {"ReportsToId": placeholder("Contact", "003X")})
    with pytest.raises(Exception, match="point at each other in a cycle"):
        parents_first([a, b], FAKE_VOCABULARY)


# --- the plan checks stay strict --------------------------------------------------------------------------


def tampered(plan: Plan, **after: object) -> Plan:
    [change] = plan.changes
    return Plan(header=plan.header, changes=(replace(change, after={**change.after, **after}),))


def test_a_re_create_writing_more_than_the_createable_fields_of_the_logged_row_is_refused(
    tmp_path: Path, home: Home
) -> None:
    org = make_org(contacts=2)
    run_id = archived(tmp_path, home, org, 1)
    rollback = build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY)
    check_plan(rollback, org, home)  # as built, it passes
    for bad, why in [
        (tampered(rollback, CreatedDate="2020-01-01T00:00:00.000Z"), "it writes CreatedDate"),
        (tampered(rollback, Email="someone@else.example"), "Email differs from the logged before-image"),
    ]:
        with pytest.raises(SafetyRefusal, match=why):
            check_plan(bad, org, home)


@pytest.mark.parametrize("op", ["merge", "gdpr_delete"])
def test_merges_and_gdpr_deletes_are_refused_as_irreversible(tmp_path: Path, home: Home, op: str) -> None:
    org = make_org(contacts=1)
    plan = plan_from_snapshot(home, snapshot_of(org, home), [(Op.DELETE, "Contact", contact_id(0), {})])
    path = write_signed(tmp_path / "plan.json", plan, home)
    path.write_text(path.read_text(encoding="utf-8").replace('"op": "delete"', f'"op": "{op}"'), encoding="utf-8")
    with pytest.raises(BadInput, match=f"{op} of Contact {contact_id(0)} cannot be undone: crmsweep never performs it"):
        read_plan_file(path)
