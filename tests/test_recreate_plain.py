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
from typing import Any

import pytest

from crmsweep.backup.recreate import create_values, parents_first
from crmsweep.backup.rollback import build_rollback_plan
from crmsweep.backup.runlog import Outcome, read_run
from crmsweep.backup.snapshot import open_snapshot, take_snapshot
from crmsweep.cleanup.apply import apply_plan
from crmsweep.cleanup.drift import claimed_twice, created_matches
from crmsweep.cleanup.labels import record_label
from crmsweep.cleanup.passes import PASSES, PassOutput, PassSpec, Proposal
from crmsweep.cleanup.plan_checks import check_plan, read_plan_file
from crmsweep.cleanup.preview import render_preview
from crmsweep.errors import BadInput, ConnectorError, SafetyRefusal
from crmsweep.model import (
    Change,
    CreateAttempt,
    FieldKind,
    Op,
    Plan,
    PlanHeader,
    Record,
    WriteResult,
    association_object,
    placeholder,
)
from crmsweep.paths import Home
from tests.fake_connector import (
    ACME_VOCABULARY,
    FAKE_CAPABILITIES,
    FAKE_VOCABULARY,
    FakeConnector,
    spec,
    standard_fields,
)
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


def one_archived(tmp_path: Path, home: Home) -> tuple[FakeConnector, str, Plan]:
    """An org of two contacts, the run that archived the first, and that run's rollback plan."""
    org = make_org(contacts=2)
    run_id = archived(tmp_path, home, org, 1)
    return org, run_id, build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY)


def tampered(plan: Plan, **after: object) -> Plan:
    [change] = plan.changes
    return Plan(header=plan.header, changes=(replace(change, after={**change.after, **after}),))


def test_a_re_create_writing_more_than_the_createable_fields_of_the_logged_row_is_refused(
    tmp_path: Path, home: Home
) -> None:
    org, _run_id, rollback = one_archived(tmp_path, home)
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


# --- a provider without undelete, whose links are associations (HubSpot's shape, under made-up names) ----


ACME_ORG = "acme-portal-1"
ACME_CAPS = replace(FAKE_CAPABILITIES, supports_undelete=False, has_associations=True)
LINKS = association_object("person", "firm")


def acme_org() -> FakeConnector:
    stamps = {"born_at": "2020-01-01T00:00:00.000Z", "changed_at": "2020-02-01T00:00:00.000Z",
              "rev_at": "2020-02-01T00:00:00.000Z"}
    fields = {
        "person": standard_fields(spec("full_name"), spec("mail"), vocabulary=ACME_VOCABULARY),
        "firm": standard_fields(spec("title"), vocabulary=ACME_VOCABULARY),
        LINKS: standard_fields(spec("from_id"), spec("to_id"), vocabulary=ACME_VOCABULARY),
    }
    records: dict[str, list[Record]] = {
        "person": [{"uid": f"p{i}", "full_name": f"P {i}", "mail": f"p{i}@acme.test", **stamps} for i in range(3)],
        "firm": [{"uid": f"f{i}", "title": f"Firm {i}", **stamps} for i in range(2)],
        LINKS: [{"uid": "l0", "from_id": "p0", "to_id": "f0", **stamps},
                {"uid": "l1", "from_id": "p1", "to_id": "f1", **stamps},
                {"uid": "l2", "from_id": "p2", "to_id": "f0", **stamps}],
    }
    org = FakeConnector(fields, records, org_id=ACME_ORG, vocabulary=ACME_VOCABULARY, capabilities=ACME_CAPS)
    org.links[("person", "firm")] = {("p0", "f0"), ("p1", "f1"), ("p2", "f0")}
    return org


ACME_PASS = PassSpec(name="acme_pass", summary="Archives for a test.", order=98, defaults={},
                     run=lambda ctx: PassOutput(changes=[]),
                     proposes=(Proposal(Op.ARCHIVE, objects=lambda v: ("person", "firm")),))


def test_without_undelete_archived_records_come_back_as_new_records_with_their_links(
    tmp_path: Path, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(PASSES, ACME_PASS.name, ACME_PASS)
    org = acme_org()
    snapshot = take_snapshot(org, home, objects=["person", "firm", LINKS]).snapshot_id
    reader = open_snapshot(home, snapshot)
    changes = []
    for obj, rid in [("person", "p0"), ("person", "p1"), ("firm", "f0")]:
        before = reader.record_map(obj, [rid])[rid]
        changes.append(Change(op=Op.ARCHIVE, object=obj, record_id=rid, before=dict(before), after={},
                              reason="test", pass_name="acme_pass", fingerprint=before["rev_at"],
                              label=record_label(ACME_VOCABULARY, obj, before)))
    header = PlanHeader(plan_id="plan-20300101T000000Z-acme", created="2030-01-01T00:00:00.000Z",
                        tool_version="0.1.0", provider="acme", org_id=ACME_ORG, connection="fake",
                        source={"kind": "snapshot", "id": snapshot}, passes=("acme_pass",))
    plan, text = write_plan(tmp_path, home, Plan.build(header, changes))
    run_id = apply_plan(plan, text, org, home).run_id
    org.links[("person", "firm")] = set()  # archiving took the archived records' links with them

    rollback = build_rollback_plan(home, run_id, now=NOW, vocabulary=ACME_VOCABULARY)
    assert [(c.op, c.object, c.record_id) for c in rollback.changes] == [
        (Op.CREATE, "firm", "f0"), (Op.CREATE, "person", "p1"), (Op.CREATE, "person", "p0"),
        (Op.ASSOCIATE, LINKS, "p0->f0"), (Op.ASSOCIATE, LINKS, "p1->f1"), (Op.ASSOCIATE, LINKS, "p2->f0"),
    ]
    assert rollback.changes[3].after == {"from_object": "person", "from_id": placeholder("person", "p0"),
                                         "to_object": "firm", "to_id": placeholder("firm", "f0")}
    assert rollback.changes[4].after["to_id"] == "f1"  # a live firm keeps its id
    text = render_preview(rollback)
    assert "link person (the new id of person p0) → firm (the new id of firm f0)" in text
    assert 'link person (the new id of person p1) → firm "f1"' in text

    dry = apply_plan(*signed(rollback, home), org, home, dry_run=True)  # a parent to be made stands for its id
    assert (dry.applied, dry.skipped, org.writes[-1][0]) == (6, 0, "delete")
    report = apply_plan(*signed(rollback, home), org, home)
    assert (report.applied, report.failed, report.skipped) == (6, 0, 0)
    ids = read_run(home, report.run_id).id_map
    p0, p1, f0 = ids["person"]["p0"], ids["person"]["p1"], ids["firm"]["f0"]
    assert org.links[("person", "firm")] == {(p0, f0), (p1, "f1"), ("p2", f0)}
    assert org.row("person", p0)["mail"] == "p0@acme.test" and org.row("firm", f0)["title"] == "Firm 0"
    check_plan(rollback, org, home)  # and the plan checks expect exactly those links


def test_without_the_snapshot_that_says_what_a_create_may_write_a_re_create_is_refused(
    tmp_path: Path, home: Home
) -> None:
    org, run_id, rollback = one_archived(tmp_path, home)
    for folder in home.snapshots_dir.iterdir():
        (folder / "manifest.json").unlink()
    with pytest.raises(SafetyRefusal, match="the snapshot its plan came from, which says what a create may write"):
        build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY)
    with pytest.raises(SafetyRefusal, match="re-creates records, but the snapshot run"):
        check_plan(rollback, org, home)


def test_a_re_create_of_a_record_the_recycle_bin_still_holds_is_refused(tmp_path: Path, home: Home) -> None:
    """Told (wrongly, or by a forger) that a deleted record is gone, the planner would re-create it under a
    new id and leave the original deleted for good: apply refuses, since undelete keeps the id."""
    org = make_org(contacts=3)
    specs: list[Spec] = [(Op.DELETE, "Contact", contact_id(0), {})]
    plan, text = write_plan(tmp_path, home, plan_from_snapshot(home, snapshot_of(org, home), specs))
    run_id = apply_plan(plan, text, org, home).run_id
    wrong = build_rollback_plan(home, run_id, now=NOW, vocabulary=FAKE_VOCABULARY, gone=[("Contact", contact_id(0))])
    assert [c.op for c in wrong.changes] == [Op.CREATE]
    writes = len(org.writes)
    with pytest.raises(SafetyRefusal, match="re-creates 1 Contact record\\(s\\) the CRM still holds"):
        apply_plan(*signed(wrong, home), org, home)
    assert len(org.writes) == writes


# A provider whose links have kinds, some named (opaque to crmsweep but for their label): kept, re-made, held.
KINDS: dict[str, dict[str, Any]] = {"plain": {"kind": 7, "label": None}, "boss": {"kind": 9, "label": "Boss"}}


def test_a_re_link_writes_back_every_kind_the_link_had_and_shows_the_named_ones(
    tmp_path: Path, home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(PASSES, ACME_PASS.name, ACME_PASS)
    org = acme_org()
    org.capabilities = replace(ACME_CAPS, association_objects=("person", "firm"))
    org.link_types[("person", "firm", "p0", "f0")] = [KINDS["boss"], KINDS["plain"]]
    org.link_types[("person", "firm", "p1", "f1")] = [KINDS["plain"]]
    snapshot = take_snapshot(org, home, objects=["person", "firm"]).snapshot_id
    reader = open_snapshot(home, snapshot)
    changes = []
    for rid in ("p0", "p1", "p2"):
        before = reader.record_map("person", [rid])[rid]
        changes.append(Change(op=Op.ARCHIVE, object="person", record_id=rid, before=dict(before), after={},
                              reason="test", pass_name="acme_pass", fingerprint=before["rev_at"],
                              label=record_label(ACME_VOCABULARY, "person", before)))
    header = PlanHeader(plan_id="plan-20300101T000000Z-kinds", created="2030-01-01T00:00:00.000Z",
                        tool_version="0.1.0", provider="acme", org_id=ACME_ORG, connection="fake",
                        source={"kind": "snapshot", "id": snapshot}, passes=("acme_pass",))
    plan, text = write_plan(tmp_path, home, Plan.build(header, changes))
    run_id = apply_plan(plan, text, org, home).run_id
    org.links[("person", "firm")] = set()

    rollback = build_rollback_plan(home, run_id, now=NOW, vocabulary=ACME_VOCABULARY)
    links = {c.record_id: c.after for c in rollback.changes if c.op is Op.ASSOCIATE}
    assert links["p0->f0"]["types"] == [KINDS["boss"], KINDS["plain"]]
    assert links["p1->f1"]["types"] == [KINDS["plain"]]
    assert "types" not in links["p2->f0"]  # a link of no kind is the CRM's default one, as before
    shown = render_preview(rollback)
    assert "link person (the new id of person p0) → firm \"f0\" (Boss)" in shown
    assert "link person (the new id of person p1) → firm \"f1\"  " in shown

    # A kind added by hand, or one taken away, is not the snapshot's link.
    for index, types in [(next(i for i, c in enumerate(rollback.changes) if c.record_id == "p1->f1"),
                          [KINDS["boss"], KINDS["plain"]]),
                         (next(i for i, c in enumerate(rollback.changes) if c.record_id == "p0->f0"), None)]:
        change = rollback.changes[index]
        after = {k: v for k, v in change.after.items() if k != "types"} | ({"types": types} if types else {})
        forged = Plan(header=rollback.header, changes=tuple(
            replace(c, after=after) if i == index else c for i, c in enumerate(rollback.changes)))
        with pytest.raises(SafetyRefusal, match=f"{change.record_id}: types differs from the snapshot's link"):
            check_plan(forged, org, home)

    report = apply_plan(*signed(rollback, home), org, home)
    assert (report.applied, report.failed) == (len(rollback.changes), 0)
    made = read_run(home, report.run_id).id_map["person"]
    assert org.link_types == {
        **{k: v for k, v in org.link_types.items() if k[2] in ("p0", "p1")},
        ("person", "firm", made["p0"], "f0"): [KINDS["boss"], KINDS["plain"]],
        ("person", "firm", made["p1"], "f1"): [KINDS["plain"]],
    }
    assert org.links[("person", "firm")] == {(made["p0"], "f0"), (made["p1"], "f1"), (made["p2"], "f0")}
