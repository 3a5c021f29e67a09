"""Scan: protections, caps, pass selection, and the plan it builds (before-images, digest, round-trip)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from crmsweep.cleanup.passes import PASSES, PassContext, PassOutput, PassSpec
from crmsweep.cleanup.protect import Protections
from crmsweep.cleanup.scan import ScanResult, scan_snapshot
from crmsweep.cleanup.view import FrameView
from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import Change, ObjectEntry, Op, Plan
from tests.fake_connector import FAKE_VOCABULARY, standard_fields
from tests.test_passes import FIELDS, NOW, cid, lid, make_view, manifest, person, records, uid

# The passes these hand-built snapshots were made for (the others are tested in tests/test_pass_*.py).
PEOPLE_AND_USERS = ("stale_contacts", "inactive_users")


def scan(
    view: FrameView | None = None,
    *,
    passes: Sequence[str] | None = PEOPLE_AND_USERS,
    pass_settings: Mapping[str, Mapping[str, Any]] | None = None,
    recent_days: int = 30,
    protect_objects: Sequence[str] = (),
    protect_ids: Sequence[str] = (),
    max_changes: int | None = None,
    max_per_object: int | None = None,
    allow_over_cap: bool = False,
    running_user_id: str | None = None,
) -> ScanResult:
    return scan_snapshot(
        view or make_view(),
        vocabulary=FAKE_VOCABULARY,
        passes=passes,
        pass_settings=pass_settings or {},
        protect_recent_days=recent_days,
        protect_objects=protect_objects,
        protect_ids=protect_ids,
        max_changes=max_changes,
        max_changes_per_object=max_per_object,
        allow_over_cap=allow_over_cap,
        connection="sandbox-salesforce",
        config_digest="sha256:config",
        now=NOW,
        running_user_id=running_user_id,
    )


def ids(result: ScanResult) -> list[str]:
    return [c.record_id for c in result.plan.changes]


ALL_IDS = [cid(1), cid(3), cid(4), cid(7), cid(8), cid(12), lid(1), uid(1), uid(3), uid(6), uid(7)]


def test_scan_runs_every_pass_in_order() -> None:
    result = scan()
    assert ids(result) == ALL_IDS
    assert result.per_pass == {"stale_contacts": 7, "inactive_users": 4}
    assert result.held_back == {"stale_contacts": {"on an open opportunity": 3}}
    assert result.skipped == {}
    header = result.plan.header
    assert header.passes == ("stale_contacts", "inactive_users")
    assert header.provider == "fake" and header.org_id == "00DFAKE000000000AA"
    assert header.source == {"kind": "snapshot", "id": "20260315T120000Z-abc123"}
    assert header.created == "2026-03-15T12:00:00.000Z"
    assert header.connection == "sandbox-salesforce" and header.config_digest == "sha256:config"
    assert header.tool_version == "0.1.0" and len(header.plan_id) == 32
    assert header.notes == (
        "stale_contacts: 1 Contact record has no activity, modified or created date and was left alone",
    )


def test_every_change_has_the_views_record_and_fingerprint() -> None:
    view = make_view()
    for change in scan(view).plan.changes:
        before = view.record_map(change.object, [change.record_id])[change.record_id]
        assert change.before == before and change.before
        assert change.fingerprint == before["SystemModstamp"]


def test_plan_json_round_trips_and_digest_is_stable() -> None:
    plan = scan().plan
    parsed, claimed = Plan.from_json(plan.to_json())
    assert parsed == plan and claimed == plan.digest == parsed.digest
    # Same snapshot, same clock, same settings: the same plan but for its id.
    again = scan().plan.with_header(plan_id=plan.header.plan_id)
    assert again.digest == plan.digest and again.to_json() == plan.to_json()


def test_selected_passes_only() -> None:
    result = scan(passes=["inactive_users"])
    assert ids(result) == [uid(1), uid(3), uid(6), uid(7)]
    assert result.plan.header.passes == ("inactive_users",)


def test_unknown_pass_lists_the_known_ones() -> None:
    with pytest.raises(BadInput) as caught:
        scan(passes=["stale_contact"])
    assert str(caught.value) == (f"unknown pass 'stale_contact' (did you mean 'stale_contacts'?); "
                                 f"known passes: {', '.join(PASSES)}")


def test_a_scan_holds_the_cycle_collector_off_only_while_it_runs() -> None:
    import gc

    seen: list[bool] = []

    def run(ctx: PassContext) -> PassOutput:
        seen.append(gc.isenabled())
        return PassOutput(changes=[])

    spy = PassSpec(name="spy", summary="", order=0, defaults={}, run=run)
    assert gc.isenabled()
    saved = dict(PASSES)
    PASSES["spy"] = spy
    try:
        scan(passes=["spy"])
        with pytest.raises(BadInput):  # a refused scan too gives the collector back
            scan(passes=["spy"], pass_settings={"spy": {"nope": 1}})
    finally:
        PASSES.clear()
        PASSES.update(saved)
    assert seen == [False] and gc.isenabled()


def test_settings_of_passes_not_run_are_still_validated() -> None:
    with pytest.raises(BadInput, match=r"\[passes.stale_contacts\] has no setting 'yaers'"):
        scan(passes=["inactive_users"], pass_settings={"stale_contacts": {"yaers": 2}})


def test_pass_settings_reach_the_pass() -> None:
    result = scan(pass_settings={"stale_contacts": {"objects": ["Lead"]}, "inactive_users": {"exclude": [uid(1)]}})
    assert ids(result) == [lid(1), uid(3), uid(6), uid(7)]
    assert result.held_back["inactive_users"] == {"listed in [passes.inactive_users] exclude": 1}


def test_skipped_pass_is_noted() -> None:
    result = scan(make_view(only=["Contact", "Lead", "Opportunity", "OpportunityContactRole"]))
    why = (
        "the snapshot holds no User: if the CRM has User, "
        "back up without --object (a backup then takes it) and scan again")
    assert result.skipped == {"inactive_users": why}
    assert f"inactive_users: skipped: {why}" in result.plan.header.notes
    assert result.per_pass["inactive_users"] == 0


# --- protections -----------------------------------------------------------------------------------


def test_protections_recent_ids_and_objects_are_held_back_and_counted() -> None:
    data = records()
    recent = (NOW - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    data["Contact"].append(person(cid(20), "Imported Last Week", activity="2017-01-01", created=recent, n=40))
    result = scan(make_view(data), protect_ids=[cid(1), uid(1)], protect_objects=["Lead"])
    assert ids(result) == [cid(3), cid(4), cid(7), cid(8), cid(12), uid(3), uid(6), uid(7)]
    assert result.held_back == {
        "stale_contacts": {
            "on an open opportunity": 3,
            "listed in [protect] ids": 1,
            "created in the last 30 days": 1,
            "Lead is a protected object": 1,
        },
        "inactive_users": {"listed in [protect] ids": 1},
    }
    assert result.plan.header.held_back == result.held_back


def test_protected_objects_match_in_any_case_and_a_name_matching_none_is_said() -> None:
    # An admin's "lead" protected nothing (the name was compared exactly), and nothing said so.
    exact = scan(make_view(), protect_objects=["Lead"])
    for spelling in ("lead", "LEAD"):
        result = scan(make_view(), protect_objects=[spelling])
        assert ids(result) == ids(exact)
        assert result.held_back["stale_contacts"]["Lead is a protected object"] == 1
        assert not [n for n in result.plan.header.notes if n.startswith("[protect] objects")]
    data, names = records(), list(FIELDS)
    listed = replace(manifest(), objects={obj: ObjectEntry(obj, 0, f"{obj}.parquet", "sha256:0", tuple(FIELDS[obj]))
                                          for obj in names})
    missed = scan(FrameView(listed, {o: FIELDS[o] for o in names}, {o: data.get(o, []) for o in names}),
                  protect_objects=["Leads", "Lead"])
    notes = [n for n in missed.plan.header.notes if n.startswith("[protect] objects")]
    assert len(notes) == 1 and notes[0].startswith("[protect] objects: 'Leads' names no object in snapshot ")
    assert ids(missed) == ids(exact)


def test_the_user_crmsweep_runs_as_is_never_deactivated() -> None:
    # "Integration" (uid 6) has not logged in interactively for years: a candidate, unless it is us.
    assert uid(6) in ids(scan())
    result = scan(running_user_id=uid(6))
    assert uid(6) not in ids(result)
    assert result.held_back["inactive_users"]["the user crmsweep runs as"] == 1


def test_protected_ids_match_salesforce_15_character_ids() -> None:
    from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY

    long_id, short_id = "003A0000006Vm9rIAC", "003A0000006Vm9r"
    delete = Change(op=Op.DELETE, object="Contact", record_id=long_id, before={"Id": long_id}, after={},
                    reason="stale", pass_name="stale_contacts")
    listed = Protections(vocabulary=SALESFORCE_VOCABULARY, now=NOW, recent_days=0, ids=(short_id,))
    assert listed.hold_reason(delete) == "listed in [protect] ids"
    running = Protections(vocabulary=SALESFORCE_VOCABULARY, now=NOW, recent_days=0, running_user_id=short_id)
    assert running.hold_reason(delete) == "the user crmsweep runs as"


def test_recent_rule_applies_to_users_and_can_be_turned_off() -> None:
    data = records()
    data["User"][0]["CreatedDate"] = "2026-03-01T00:00:00.000Z"  # Bob: old login, yet created 14 days ago
    assert uid(1) not in ids(scan(make_view(data)))
    assert uid(1) in ids(scan(make_view(data), recent_days=0))


def test_never_touch_objects_of_the_vocabulary() -> None:
    contract = Change(
        op=Op.DELETE,
        object="Contract",
        record_id="800000000000000001",
        before={"Id": "800000000000000001", "CreatedDate": "2010-01-01T00:00:00.000Z"},
        after={},
        reason="test",
        pass_name="p",
    )
    young = replace(contract, object="Account", record_id="001000000000000001", before={"CreatedDate": "2026-03-14"})
    old = replace(young, record_id="001000000000000002", before={"CreatedDate": "2026-02-01"})
    kept, held = Protections(vocabulary=FAKE_VOCABULARY, now=NOW).apply([contract, young, old])
    assert kept == [old]
    assert held == {"Contract is a protected object": 1, "created in the last 30 days": 1}


# --- caps ------------------------------------------------------------------------------------------


def test_total_cap_refuses_with_an_actionable_message() -> None:
    with pytest.raises(SafetyRefusal) as caught:
        scan(max_changes=10)
    assert str(caught.value) == (
        "the scan proposes 11 changes, over [safety] max_changes = 10: "
        "narrow the passes or raise the cap, or pass --allow-over-cap"
    )
    assert len(scan(max_changes=11).plan.changes) == 11


def test_per_object_cap_refuses() -> None:
    expected = r"proposes 6 changes to Contact, over \[safety\] max_changes_per_object = 5"
    with pytest.raises(SafetyRefusal, match=expected):
        scan(max_per_object=5)


def test_large_counts_use_thousands_separators() -> None:
    many = {"Contact": [person(f"003{n:015d}", f"P{n}", activity="2015-01-01", n=n) for n in range(6120)]}
    view = make_view({**many, "Opportunity": [], "OpportunityContactRole": []})
    with pytest.raises(SafetyRefusal) as caught:
        scan(view, passes=["stale_contacts"], max_changes=5000)
    assert str(caught.value).startswith("the scan proposes 6,120 changes, over [safety] max_changes = 5,000:")


def test_allow_over_cap_builds_the_plan_and_notes_it() -> None:
    result = scan(max_changes=10, max_per_object=5, allow_over_cap=True)
    assert ids(result) == ALL_IDS
    assert result.plan.header.notes[-2:] == (
        "the scan proposes 11 changes, over [safety] max_changes = 10; allowed by --allow-over-cap",
        "the scan proposes 6 changes to Contact, over [safety] max_changes_per_object = 5; allowed by --allow-over-cap",
    )


# --- interaction between passes ------------------------------------------------------------------------


def _delete_every_contact(ctx: PassContext) -> PassOutput:
    frame = ctx.view.frame("Contact", ["Id"])
    rows = ctx.view.record_map("Contact", sorted(frame["Id"]))
    changes = [
        Change(op=Op.DELETE, object="Contact", record_id=rid, before=rec, after={}, reason="all", pass_name="everyone")
        for rid, rec in rows.items()
        if not rec["IsDeleted"]
    ]
    return PassOutput(changes=changes)


def test_a_later_pass_sees_what_the_earlier_ones_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        PASSES, "everyone", PassSpec(name="everyone", summary="x", order=30, defaults={}, run=_delete_every_contact)
    )
    result = scan(passes=["stale_contacts", "everyone"])
    stale = {c.record_id for c in result.plan.changes if c.pass_name == "stale_contacts" and c.object == "Contact"}
    everyone = [c.record_id for c in result.plan.changes if c.pass_name == "everyone"]
    # The contacts stale_contacts deletes are gone from what the later pass sees: it proposes only the rest.
    assert everyone == [cid(2), cid(5), cid(6), cid(10), cid(11), cid(13), cid(14)]
    assert not stale & set(everyone)
    assert result.per_pass == {"stale_contacts": 7, "everyone": 7}
    assert not any("already changed" in note for note in result.plan.header.notes)


def _clear_first_contact(ctx: PassContext) -> PassOutput:
    rows = ctx.view.record_map("Contact", [cid(2)])
    return PassOutput(changes=[
        Change(op=Op.UPDATE, object="Contact", record_id=cid(2), before=rows[cid(2)], after={"Email": None},
               reason="clear", pass_name="first")
    ])


def test_a_record_claimed_by_an_earlier_pass_is_not_proposed_again(monkeypatch: pytest.MonkeyPatch) -> None:
    first = PassSpec(name="first", summary="x", order=5, defaults={}, run=_clear_first_contact)
    monkeypatch.setitem(PASSES, "first", first)
    monkeypatch.setitem(
        PASSES, "everyone", PassSpec(name="everyone", summary="x", order=30, defaults={}, run=_delete_every_contact)
    )
    result = scan(passes=["first", "everyone"])
    assert [(c.pass_name, c.record_id) for c in result.plan.changes][:1] == [("first", cid(2))]
    assert cid(2) not in [c.record_id for c in result.plan.changes if c.pass_name == "everyone"]
    assert "everyone: 1 records already changed by first" in result.plan.header.notes


def test_a_snapshot_of_another_provider_is_refused() -> None:
    view = make_view()
    other = FrameView(
        replace(view.manifest, provider="hubspot"),
        {o: view.fields(o) for o in ("Contact",)},
        {"Contact": []},
    )
    with pytest.raises(BadInput) as caught:
        scan(other)
    assert str(caught.value) == (
        "snapshot 20260315T120000Z-abc123 is a hubspot backup but the connection is fake; "
        "scan it with a connection of the same provider"
    )


def test_every_change_a_scan_proposes_is_one_its_passes_declare() -> None:
    from crmsweep.cleanup.provenance import scan_plan_problems

    plan = scan().plan
    assert {c.pass_name for c in plan.changes} == {"stale_contacts", "inactive_users"}
    assert scan_plan_problems(plan, FAKE_VOCABULARY) == []
    delete = next(c for c in plan.changes if c.op is Op.DELETE)
    deactivate = next(c for c in plan.changes if c.op is Op.DEACTIVATE)
    forged = [
        replace(delete, pass_name="inactive_users"),
        replace(deactivate, after={"IsActive": True}),
        replace(deactivate, object="Contact"),
        replace(delete, label="Someone Else"),
        replace(delete, pass_name="tidy_up"),
        delete,  # the same record twice
    ]
    problems = scan_plan_problems(Plan(plan.header, (*plan.changes, *forged)), FAKE_VOCABULARY)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "pass inactive_users does not propose delete",
        'pass inactive_users writes IsActive=false, not {"IsActive":true}',
        "pass inactive_users does not propose deactivate of Contact",
        f"it is labelled 'Someone Else' but the record is {delete.label!r}",
        "pass tidy_up is not one the plan says it ran",
        "it is proposed twice",
    ]


def test_a_protected_name_matching_no_object_names_the_closest_and_a_few_of_many() -> None:
    # A HubSpot portal holds ~55 objects: the note listing them all was said in every preview and `runs show`.
    names = [*FIELDS, *(f"object_{n:02d}" for n in range(40))]
    specs = {obj: FIELDS.get(obj, standard_fields()) for obj in names}
    listed = replace(manifest(), objects={obj: ObjectEntry(obj, 0, f"{obj}.parquet", "sha256:0", tuple(specs[obj]))
                                          for obj in names})
    data = records()
    missed = scan(FrameView(listed, specs, {o: data.get(o, []) for o in names}),
                  protect_objects=["Leads"])
    (note,) = [n for n in missed.plan.header.notes if n.startswith("[protect] objects")]
    first = ", ".join(sorted(names)[:12])
    assert note.endswith(f"so it holds nothing back here (did you mean 'Lead'?) (it holds {first} and "
                         f"{len(names) - 12} more)")
