"""The shared vocabulary: every change has an inverse, plans survive their own file format."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crmsweep.model import (
    Change,
    NotReversible,
    Op,
    Plan,
    PlanFormatError,
    PlanHeader,
    Severity,
    canonical_date,
    canonical_datetime,
)

RID = "0030000000000001AA"
IMAGE: dict[str, object] = {"Id": RID, "LastName": "Doe", "Email": "jane@x.org", "IsActive": True}
HEADER = PlanHeader(
    plan_id="p1", created="2026-11-24T00:00:00.000Z", tool_version="0.1.0", provider="salesforce",
    org_id="00D000000000001AAA", connection="prod", source={"kind": "snapshot", "id": "s1"},
)


def change(op: Op, after: dict[str, object] | None = None, before: dict[str, object] | None = None) -> Change:
    return Change(op=op, object="Contact", record_id=RID, before=IMAGE if before is None else before,
                  after=after or {}, reason="stale", pass_name="stale_contacts", fingerprint="f1", label="Jane")


@pytest.mark.parametrize(
    ("op", "after", "inverse_op"),
    [
        (Op.DELETE, {}, Op.UNDELETE),
        (Op.UNDELETE, {}, Op.DELETE),
        (Op.UPDATE, {"Email": None}, Op.UPDATE),
        (Op.DEACTIVATE, {"IsActive": False}, Op.REACTIVATE),
        (Op.REACTIVATE, {"IsActive": True}, Op.DEACTIVATE),
        (Op.ARCHIVE, {}, Op.CREATE),
    ],
)
def test_every_change_has_an_inverse_that_restores_the_before_values(
    op: Op, after: dict[str, object], inverse_op: Op
) -> None:
    original = change(op, after)
    undo = original.inverse(fingerprint="f2")
    assert (undo.op, undo.object, undo.fingerprint) == (inverse_op, "Contact", "f2")
    assert undo.reason == "undo " + op.value + ": stale"
    if op in (Op.UPDATE, Op.DEACTIVATE, Op.REACTIVATE):
        assert undo.after == {k: IMAGE[k] for k in after}
        assert undo.before == {**IMAGE, **after}
        # Undoing the undo writes the change again.
        assert undo.inverse().after == after
    if op is Op.ARCHIVE:
        assert undo.after == IMAGE


def test_a_create_is_undone_by_deleting_the_record_it_made() -> None:
    made = Change(op=Op.CREATE, object="Contact", record_id="", before={}, after={"LastName": "New"},
                  reason="restore", pass_name="restore")
    with pytest.raises(NotReversible):
        made.inverse()
    undo = made.inverse(new_id="003NEW")
    assert (undo.op, undo.record_id, undo.before) == (Op.DELETE, "003NEW", {"LastName": "New", "Id": "003NEW"})


def test_a_plan_refuses_changes_it_could_not_undo() -> None:
    with pytest.raises(NotReversible, match="no before-image"):
        Plan.build(HEADER, [change(Op.DELETE, before={})])
    with pytest.raises(NotReversible, match="changes Phone but its before-image lacks them"):
        Plan.build(HEADER, [change(Op.UPDATE, {"Phone": "1"})])
    with pytest.raises(PlanFormatError, match="writes no values"):
        Plan.build(HEADER, [change(Op.UPDATE, {})])


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False), st.text(),
)


@given(st.dictionaries(st.text(min_size=1), scalars, max_size=6), st.text())
def test_a_plan_survives_its_own_file_with_the_same_digest(values: dict[str, object], reason: str) -> None:
    before = {**IMAGE, **values}
    plan = Plan.build(HEADER, [Change(op=Op.DELETE, object="Contact", record_id=RID, before=before,
                                      after={}, reason=reason, pass_name="p", severity=Severity.MINOR)])
    parsed, claimed = Plan.from_json(plan.to_json())
    assert parsed == plan and claimed == plan.digest == parsed.digest


def test_any_edit_changes_the_digest() -> None:
    plan = Plan.build(HEADER, [change(Op.DELETE)])
    doc = json.loads(plan.to_json())
    doc["changes"][0]["record_id"] = "0030000000000002AA"
    edited, claimed = Plan.from_json(json.dumps(doc))
    assert claimed == plan.digest and edited.digest != claimed


@pytest.mark.parametrize("text", ["", "[]", '{"format": "other"}', '{"format": "crmsweep.plan/1", "header": {}}'])
def test_what_is_not_a_plan_is_refused_plainly(text: str) -> None:
    with pytest.raises(PlanFormatError):
        Plan.from_json(text)


def test_datetimes_and_dates_have_one_canonical_spelling() -> None:
    spellings = ["2019-03-01T12:00:00.000+0000", "2019-03-01T12:00:00Z", "2019-03-01T13:00:00+01:00",
                 "2019-03-01T12:00:00.0004+00:00"]
    assert {canonical_datetime(s) for s in spellings} == {"2019-03-01T12:00:00.000Z"}
    assert canonical_date("2019-03-01T23:59:00Z") == "2019-03-01"
    assert canonical_datetime("0005-01-01T00:00:00Z") == "0005-01-01T00:00:00.000Z"
    assert canonical_datetime(None) is None and canonical_date(None) is None


def test_salesforce_ids_match_in_their_15_and_18_character_forms() -> None:
    from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY as sf

    assert sf.id_key("001A0000006Vm9rIAC") == sf.id_key("001A0000006Vm9r")
    assert sf.id_key("001A0000006Vm9r") != sf.id_key("001a0000006Vm9r")  # the short form is case-sensitive
    assert sf.id_key("12345") == "12345" and sf.id_key("not-an-id-000001") == "not-an-id-000001"


IRREGULAR: list[object] = [
    {"op": "merge", "object": "Contact", "record_id": RID},
    {"op": "DELETE", "object": "Contact", "record_id": RID},
    {"object": "Contact", "record_id": RID},
    ["not", "a", "change"],
    {"op": "delete", "object": "Contact", "record_id": 17, "before": IMAGE},  # a number: made text, as before
    {"op": "delete", "object": "Contact", "record_id": RID, "before": None, "severity": "minor"},
    {"op": "update", "object": "Contact", "record_id": RID, "before": IMAGE, "after": {"Email": None}, "x": 1},
    {"op": "delete", "object": "Contact", "record_id": RID, "before": IMAGE, "severity": "urgent"},
]


@pytest.mark.parametrize("odd", IRREGULAR)
def test_changes_read_at_once_are_those_read_one_at_a_time_errors_included(odd: object) -> None:
    from crmsweep.model import changes_from_dicts

    regular = [c.to_dict() for c in (change(Op.DELETE), change(Op.UPDATE, {"Email": None}), change(Op.ARCHIVE))]
    at_once = changes_from_dicts(json.loads(json.dumps(regular)))
    assert at_once == tuple(Change.from_dict(c) for c in regular)
    assert all(type(c.op) is Op and type(c.severity) is Severity for c in at_once)  # == holds for "delete" too
    items = json.loads(json.dumps([*regular, odd]))
    try:
        expected: object = tuple(Change.from_dict(c) for c in items)
    except PlanFormatError as exc:
        expected = str(exc)
    try:
        got: object = changes_from_dicts(items)
    except PlanFormatError as exc:
        got = str(exc)
    assert got == expected
