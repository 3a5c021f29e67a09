"""The passes after the first test whole columns masked by the live rows (`view.LiveColumns`) instead of frames
filtered column by column: they answer as the plain definition, a snapshot as the earlier changes leave it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsweep.cleanup.effects import EffectsView
from crmsweep.cleanup.passes import PASSES, PassContext, PassOutput, validate_settings
from crmsweep.cleanup.passes._guards import Ties, blank_text, filled, starts_visible
from crmsweep.cleanup.shared_columns import SharedColumns
from crmsweep.cleanup.view import FrameView, LiveColumns, SnapshotView, live_frame
from crmsweep.model import Change, FieldKind, ObjectEntry, Op, Record
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY as SF
from tests.pass_views import fields, manifest
from tests.record_orgs import NOW, sf_org
from tests.test_scan_fast_paths import WORD

BOUNCED = "2026-01-05T10:00:00.000Z"


def _removal(rid: str) -> Change:
    return Change(Op.DELETE, "Contact", rid, {"Id": rid}, {}, reason="r", pass_name="earlier")


def _write(rid: str, **after: Any) -> Change:
    return Change(Op.UPDATE, "Contact", rid, {"Id": rid, **{k: None for k in after}}, dict(after), reason="r",
                  pass_name="earlier")


EARLIER = [
    _removal("003E1"), _write("003E2", Email=None), _write("003E3", Email="new@example.com"),
    _removal("003E5"), _write("003E6", Email=None), _write("003E7", Email="back@example.com"),
    _write("003E8", EmailBouncedDate=BOUNCED), _write("003E9", EmailBouncedDate=None),
]


def _org() -> FrameView:
    org = sf_org()
    none = {"Email": None, "Phone": None, "MobilePhone": None}
    org.add("Contact", "003E1", Name="Unreachable, removed", **none)
    org.add("Contact", "003E2", Name="Address written empty", Email="old@example.com", Phone=None, MobilePhone=None)
    org.add("Contact", "003E3", Name="Address written", **none)
    org.add("Contact", "003E4", Name="Unreachable", **none)
    org.add("Contact", "003E5", Name="Bounced, removed", Email="a@example.com", EmailBouncedDate=BOUNCED)
    org.add("Contact", "003E6", Name="Bounced, address written empty", Email="b@example.com", EmailBouncedDate=BOUNCED)
    org.add("Contact", "003E7", Name="Bounced, address written", Email=None, EmailBouncedDate=BOUNCED)
    org.add("Contact", "003E8", Name="Bounce written", Email="c@example.com")
    org.add("Contact", "003E9", Name="Bounce written away", Email="d@example.com", EmailBouncedDate=BOUNCED)
    org.add("Contact", "003E10", Name="In the bin", IsDeleted=True, **none)
    org.add("Lead", "00QE1", Name="Lead bounced", Email="l@example.com", EmailBouncedDate=BOUNCED)
    return org.view()


def _left_by(view: FrameView, changes: list[Change]) -> FrameView:
    """The plain definition: the snapshot's records as the changes leave them."""
    removed = {c.record_id for c in changes if c.op is Op.DELETE}
    records: dict[str, list[Record]] = {}
    for obj in view.manifest.objects:
        rows = list(view.record_map(obj, [str(v) for v in view.frame(obj, [SF.id_field])[SF.id_field]]).values())
        for change in changes:
            for row in rows:
                if change.object == obj and row[SF.id_field] == change.record_id:
                    row.update(change.after)
        records[obj] = [r for r in rows if obj != "Contact" or r[SF.id_field] not in removed]
    return FrameView(view.manifest, {o: view.fields(o) for o in view.manifest.objects}, records)


def _run(name: str, view: SnapshotView) -> PassOutput:
    context = PassContext(view=view, vocabulary=SF, now=NOW, settings=validate_settings(name, {}))
    return PASSES[name].run(context)


@pytest.mark.parametrize("name", ["no_contact_info", "bounced_emails"])
def test_a_later_pass_sees_no_row_an_earlier_pass_removed_nor_a_value_it_wrote_over(name: str) -> None:
    base = _org()
    view = EffectsView(SharedColumns(base), SF).with_changes(EARLIER)
    got = _run(name, view)
    plain = _run(name, _left_by(base, EARLIER))
    assert [(c.op, c.record_id, c.reason, dict(c.after)) for c in got.changes] == [
        (c.op, c.record_id, c.reason, dict(c.after)) for c in plain.changes]
    assert got.notes == plain.notes and got.held_back == plain.held_back
    # Neither the removed people nor the one in the recycle bin; each address and bounce as last written.
    expected = {"no_contact_info": ["003E2", "003E4", "003E6"], "bounced_emails": ["003E7", "003E8", "00QE1"]}[name]
    assert [c.record_id for c in got.changes] == expected
    # Before-images stay what the snapshot holds, whatever an earlier pass writes.
    if name == "no_contact_info":
        assert got.changes[0].before["Email"] == "old@example.com"


def _live_specs() -> dict[str, Any]:
    return {"Contact": fields("Id", "Name", ("Score", FieldKind.FLOAT), ("Seen", FieldKind.DATETIME),
                              ("IsDeleted", FieldKind.BOOL))}


IDS = [f"003{n}" for n in range(6)] + ["é😀", "a\nb", "q\"\\"]
NAME = st.one_of(st.none(), WORD)
CHANGE = st.one_of(
    st.builds(_removal, st.sampled_from([*IDS, "003x"])),
    st.builds(lambda rid, name: _write(rid, Name=name), st.sampled_from(IDS), NAME),
    st.builds(lambda rid, score: _write(rid, Score=score), st.sampled_from(IDS),
              st.one_of(st.none(), st.sampled_from([0.1, -0.0, 1e16, float("nan")]))),
    st.builds(lambda rid, gone: _write(rid, IsDeleted=gone), st.sampled_from(IDS), st.one_of(st.none(), st.booleans())),
)


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(st.tuples(NAME, st.one_of(st.none(), st.booleans())), min_size=len(IDS), max_size=len(IDS)),
       size=st.integers(0, len(IDS)), batches=st.lists(st.lists(CHANGE, max_size=5), max_size=3),
       shared=st.booleans(), picked=st.lists(st.booleans(), min_size=len(IDS), max_size=len(IDS)))
def test_live_columns_answer_as_live_frame(rows: list[tuple[str | None, bool | None]], size: int,
                                           batches: list[list[Change]], shared: bool, picked: list[bool]) -> None:
    specs = _live_specs()
    records = {"Contact": [{"Id": rid, "Name": name, "Score": None, "Seen": "1970-01-01T00:00:00.000Z",
                            "IsDeleted": gone} for rid, (name, gone) in list(zip(IDS, rows, strict=True))[:size]]}
    meta = replace(manifest(SF), objects={"Contact": ObjectEntry("Contact", 0, "Contact.parquet", "sha256:0",
                                                                  tuple(specs["Contact"]))})
    base = FrameView(meta, specs, records)
    view: SnapshotView = EffectsView(SharedColumns(base) if shared else base, SF)
    for batch in batches:
        assert isinstance(view, EffectsView)
        view = view.with_changes(batch)
    for each in (view, base):  # on any view, an EffectsView or not
        live = LiveColumns(each, "Contact", ["Id"], SF.deleted_field)
        columns = ["Name", "Id", "Score", "Seen"]
        expected = live_frame(each, "Contact", columns, SF.deleted_field)
        pd.testing.assert_frame_equal(live.frame(np.flatnonzero(live.keep), columns), expected)
        # Rows picked among every row, live or not, are the live ones among them, in order.
        there = np.array(picked[:len(live.keep)], dtype=bool)
        chosen = np.flatnonzero(there & live.keep)
        at = np.flatnonzero(there[live.keep])
        pd.testing.assert_frame_equal(live.frame(chosen, ["Id", "Name"]),
                                      expected.loc[at, ["Id", "Name"]].reset_index(drop=True))
        assert filled(live.column("Name")).to_numpy(dtype=bool)[live.keep].tolist() == \
            filled(expected["Name"]).tolist()


@settings(max_examples=300, deadline=None)
@given(values=st.lists(st.one_of(st.none(), WORD), max_size=12), start=st.integers(0, 4), stop=st.integers(0, 12))
def test_starts_visible_is_the_first_character_test(values: list[str | None], start: int, stop: int) -> None:
    text = pa.array(values, type=pa.string()).slice(start, stop)  # a slice: offsets that do not start at 0
    plain = [v is not None and v[:1] != "" and "!" <= v[0] <= "~" for v in text.to_pylist()]
    assert starts_visible(text).tolist() == plain
    series = pd.Series(text.to_pylist(), dtype="str")
    # Filled: shows something, the one rule for Python values (`blank_text`: a soft hyphen alone shows nothing).
    assert filled(series).tolist() == [v is not None and not blank_text(v) for v in text.to_pylist()]


TIE_END = st.one_of(st.none(), st.sampled_from(["001", "002", "003", "é", "a\nb", ""]))


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.lists(st.tuples(TIE_END, TIE_END, st.booleans()), max_size=8), max_size=3),
       ids=st.lists(st.sampled_from(["001", "002", "é", "a\nb", "009"]), max_size=4))
def test_ties_with_live_masks_answer_as_ties_of_the_live_rows(parts: list[list[tuple[Any, Any, bool]]],
                                                               ids: list[str]) -> None:
    frames = [pd.DataFrame({"near": pd.Series([n for n, _, _ in p], dtype="str"),
                            "far": pd.Series([f for _, f, _ in p], dtype="str")}) for p in parts]
    masks = tuple(np.array([live for _, _, live in p], dtype=bool) for p in parts)
    masked = Ties(tuple((f["near"], f["far"]) for f in frames), masks)
    filtered = Ties(tuple((f["near"][m].reset_index(drop=True), f["far"][m].reset_index(drop=True))
                          for f, m in zip(frames, masks, strict=True)))
    value_set = pa.array(ids, type=pa.string())
    assert sorted(masked.near_ids()) == sorted(filtered.near_ids())
    assert sorted(masked.near_unless_far_in(value_set)) == sorted(filtered.near_unless_far_in(value_set))
    assert sorted(masked.near_where_far_in(value_set)) == sorted(filtered.near_where_far_in(value_set))
    assert masked.far_count_where_near_in(value_set) == filtered.far_count_where_near_in(value_set)
    assert masked.tie_any(value_set).tolist() == filtered.tie_any(value_set).tolist()
