"""The pass framework: discovery, declared needs and reads, the order over earlier passes' effects, review
items in the plan, and what backup takes by default."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import pytest

import crmsweep.cleanup.passes as passes_pkg
from crmsweep.api import backup_with, objects_passes_read
from crmsweep.cleanup.effects import EffectsView
from crmsweep.cleanup.passes import PASSES, ObjectRead, PassContext, PassOutput, PassSpec, missing_concept
from crmsweep.cleanup.preview import render_preview, summarize
from crmsweep.cleanup.view import FrameView
from crmsweep.model import (
    Change,
    FieldKind,
    ObjectEntry,
    Op,
    Plan,
    PlanFormatError,
    ReviewItem,
    association_object,
)
from tests.fake_connector import FAKE_VOCABULARY, spec, standard_fields
from tests.test_passes import cid, make_view
from tests.test_scan import scan


def test_every_module_of_the_package_is_a_pass_found_by_itself() -> None:
    folder = Path(passes_pkg.__file__).parent
    modules = sorted(p.stem for p in folder.glob("*.py") if not p.stem.startswith("_"))
    assert sorted(PASSES) == modules
    orders = [spec.order for spec in PASSES.values()]
    assert orders == sorted(orders) and len(set(orders)) == len(orders)


def test_two_passes_with_one_order_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    first = next(iter(PASSES))
    monkeypatch.setattr(passes_pkg, "_pass_modules", lambda: [first, first])
    with pytest.raises(TypeError, match="share the order"):
        passes_pkg._load()


@dataclass(frozen=True)
class _Widgets:
    object: str


def _propose_nothing(ctx: PassContext) -> PassOutput:
    return PassOutput(changes=[])


def test_a_pass_whose_concept_the_provider_lacks_is_skipped_with_the_providers_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    needy = PassSpec(name="needy", summary="x", order=99, defaults={}, run=_propose_nothing, needs=(_Widgets,))
    monkeypatch.setitem(PASSES, "needy", needy)
    assert missing_concept(needy, FAKE_VOCABULARY) == "crmsweep maps no _Widgets for fake"
    lacking = replace(FAKE_VOCABULARY, absent_concepts={"_Widgets": "this CRM keeps no widgets"})
    assert missing_concept(needy, lacking) == "this CRM keeps no widgets"
    result = scan(passes=["needy"])
    assert result.skipped == {"needy": "crmsweep maps no _Widgets for fake"}
    having = replace(FAKE_VOCABULARY, concepts=(_Widgets("Contact"),))
    assert missing_concept(needy, having) is None
    assert having.concept(_Widgets) == _Widgets("Contact")


def test_a_pass_whose_object_the_snapshot_lacks_is_skipped_unless_optional(monkeypatch: pytest.MonkeyPatch) -> None:
    def reads(optional: bool) -> PassSpec:
        return PassSpec(
            name="reader", summary="x", order=99, defaults={}, run=_propose_nothing,
            reads=lambda vocab: [ObjectRead("Campaign", optional=optional)],
        )

    monkeypatch.setitem(PASSES, "reader", reads(optional=False))
    why = (
        "the snapshot holds no Campaign: if the CRM has Campaign, "
        "back up without --object (a backup then takes it) and scan again")
    assert scan(passes=["reader"]).skipped == {"reader": why}
    monkeypatch.setitem(PASSES, "reader", reads(optional=True))
    assert scan(passes=["reader"]).skipped == {}


# --- the order over earlier effects ---------------------------------------------------------------------

LINKS = association_object("Contact", "Opportunity")


def _view() -> FrameView:
    base = make_view()
    fields = {o: base.fields(o) for o in ("Contact", "Opportunity")}
    fields[LINKS] = (spec("Id"), spec("from_id"), spec("to_id"))
    contacts = base.frame("Contact", ["Id"])["Id"].tolist()
    records = {
        "Contact": list(base.record_map("Contact", contacts).values()),
        "Opportunity": list(base.record_map("Opportunity", base.frame("Opportunity", ["Id"])["Id"]).values()),
        LINKS: [
            {"Id": "l1", "from_id": cid(1), "to_id": "006000000000000001"},
            {"Id": "l2", "from_id": cid(2), "to_id": "006000000000000001"},
        ],
    }
    objects = {o: ObjectEntry(o, len(records[o]), f"data/{o}.parquet", "", tuple(fields[o])) for o in fields}
    manifest = replace(base.manifest, objects=objects)
    return FrameView(manifest, fields, records)


def _change(op: Op, view: FrameView, rid: str, after: dict[str, object] | None = None) -> Change:
    before = view.record_map("Contact", [rid])[rid]
    return Change(op=op, object="Contact", record_id=rid, before=before, after=after or {}, reason="r", pass_name="p")


def test_effects_hide_removed_records_and_their_links_and_show_written_values() -> None:
    base = _view()
    effects = EffectsView(base, FAKE_VOCABULARY).with_changes(
        [_change(Op.DELETE, base, cid(1)), _change(Op.UPDATE, base, cid(2), {"Email": "new@x.org"})]
    )
    contacts = effects.frame("Contact", ["Id", "Email"])
    assert cid(1) not in set(contacts["Id"])
    assert contacts.set_index("Id").loc[cid(2), "Email"] == "new@x.org"
    assert effects.frame(LINKS, ["from_id"])["from_id"].tolist() == [cid(2)]
    # Before-images stay the snapshot's rows: that is what apply checks and rollback writes back.
    assert effects.record_map("Contact", [cid(1), cid(2)]) == base.record_map("Contact", [cid(1), cid(2)])
    assert effects.removed("Contact") == {cid(1)}
    # The base is untouched; each with_changes makes a new view.
    assert len(base.frame("Contact", ["Id"])) == len(contacts) + 1


def test_written_dates_keep_the_column_type() -> None:
    base = _view()
    effects = EffectsView(base, FAKE_VOCABULARY, [_change(Op.UPDATE, base, cid(3), {"LastActivityDate": "2026-03-01"})])
    frame = effects.frame("Contact", ["Id", "LastActivityDate"]).set_index("Id")
    assert str(frame["LastActivityDate"].dtype) == "datetime64[ms, UTC]"
    assert frame.loc[cid(3), "LastActivityDate"] == pd.Timestamp("2026-03-01", tz="UTC")


# --- review items ------------------------------------------------------------------------------------


def _review(ctx: PassContext) -> PassOutput:
    return PassOutput(changes=[], review=[
        ReviewItem("twins", "Contact", (cid(1), cid(2)), "same email jane@x.org", 0.97, ("Jane Doe", "J. Doe")),
    ])


def test_review_items_travel_in_the_signed_plan_and_are_shown_never_applied(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        PASSES, "twins", PassSpec(name="twins", summary="x", order=98, defaults={}, run=_review, report_only=True)
    )
    plan = scan(passes=["twins"]).plan
    assert plan.changes == ()
    again, digest = Plan.from_json(plan.to_json())
    assert digest == plan.digest and again.header.review == plan.header.review
    text = render_preview(plan)
    assert "for review (never applied) — 1 finding" in text
    assert f"twins Contact: same email jane@x.org (97%): {cid(1)} Jane Doe, {cid(2)} J. Doe" in text
    assert summarize(plan)["review"] == [plan.header.review[0].to_dict()]


def test_a_review_item_with_a_bad_score_is_a_malformed_plan() -> None:
    plan = scan(passes=["stale_contacts"]).plan.with_header(
        review=(ReviewItem("twins", "Contact", (cid(1),), "x"),)
    )
    text = plan.to_json().replace('"score": 1.0', '"score": 7')
    with pytest.raises(PlanFormatError, match="score"):
        Plan.from_json(text)


# --- what backup takes by default ----------------------------------------------------------------------


def test_default_backup_takes_what_passes_read_that_the_crm_has(tmp_path: Path) -> None:
    from crmsweep.api import Workspace
    from tests.fake_connector import FakeConnector

    vocabulary = replace(FAKE_VOCABULARY, default_backup_objects=("User",))
    connector = FakeConnector(vocabulary=vocabulary, fields={
        "User": standard_fields(spec("IsActive", FieldKind.BOOL), spec("LastLoginDate", FieldKind.DATETIME)),
        "Contact": standard_fields(spec("Email"), spec("LastActivityDate", FieldKind.DATE)),
    }, records={})
    wanted = objects_passes_read(vocabulary, connector.capabilities)
    assert {"Contact", "Lead", "User", "Opportunity"} <= set(wanted)
    ws = Workspace.load(home=tmp_path / "home")
    manifest = backup_with(connector, ws)
    # The fake CRM has no Lead or Opportunity: a default backup leaves them out instead of failing.
    assert set(manifest.objects) == {"User", "Contact"}



def test_an_archive_whose_record_is_gone_shows_applied_even_where_the_crm_has_a_recycle_bin() -> None:
    # A write of unknown outcome (apply killed mid-batch) is settled by reading the record back: a field
    # definition archived through a metadata API is queryable nowhere, so not finding it means it was removed
    # (else the resume calls it missing and the rollback never re-creates it: its values would be lost).
    from crmsweep.cleanup.drift import shows_applied
    from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY

    def change(op: Op) -> Change:
        return Change(op=op, object="CustomField", record_id="00N000000000001", before={"Id": "00N000000000001"},
                      after={}, reason="unused", pass_name="unused_custom_fields")

    assert shows_applied(change(Op.ARCHIVE), None, SALESFORCE_VOCABULARY)
    # A delete into a recycle bin must be found there: gone altogether is not proof it was ours.
    assert not shows_applied(change(Op.DELETE), None, SALESFORCE_VOCABULARY)
