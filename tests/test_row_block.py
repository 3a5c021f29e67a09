"""Before-images kept column-wise (crmsweep/backup/row_block.py, row_json.py) answer exactly as the dicts
they stand in for: the same records, the same canonical JSON, the same labels, and plans written from
them the same bytes and digest (issue 7: plans stay byte-identical), awkward values included."""

from __future__ import annotations

import io
import weakref
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsweep.backup import row_block, row_json
from crmsweep.backup.row_block import RowBlock, RowRecord
from crmsweep.backup.row_json import canonical_json_rows
from crmsweep.backup.snapshot_values import _CANONICAL_DATETIME_FORMAT, ARROW_TYPES, _arrow_text, canonical_rows
from crmsweep.cleanup.labels import record_label
from crmsweep.model import Change, FieldKind, Op, Plan, PlanFile, PlanHeader, Severity, canonical_json
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY

# Texts as a CRM may hold them: every control character, quotes, backslashes, line and bidi separators,
# astral characters, long texts.
CONTROLS = [chr(c) for c in range(0x20)] + ["\x7f", "\u2028", "\u2029", "\u202e", "\ufeff"]
AWKWARD = st.sampled_from(["", " ", "  ", '"', "\\", '\\"', "é", "😀", "a\u0301", "\u3000", *CONTROLS])
TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
WORD = st.one_of(TEXT, AWKWARD, st.builds(lambda a, b, c: a + b + c, TEXT, AWKWARD, TEXT),
                 st.builds(lambda a: a * 500, AWKWARD))
MOMENT = st.one_of(
    st.sampled_from([datetime(1970, 1, 1, tzinfo=UTC), datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
                     datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
                     datetime(2000, 2, 29, 12, tzinfo=UTC), datetime(1900, 3, 1, tzinfo=UTC)]),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000, tzinfo=UTC)),
)
DAY = st.one_of(st.sampled_from([date(1970, 1, 1), date(1, 1, 1), date(9999, 12, 31), date(2000, 2, 29)]), st.dates())
FLOAT = st.one_of(st.sampled_from([0.1, 1e16, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 1.0, -1.5, 1e-7, 123456789.0]),
                  st.floats(allow_nan=False, allow_infinity=False))
INT = st.one_of(st.sampled_from([0, -1, 2**63 - 1, -(2**63), 10**16]), st.integers(-(2**63), 2**63 - 1))
VALUES = {
    FieldKind.STRING: WORD,
    FieldKind.BOOL: st.booleans(),
    FieldKind.INT: INT,
    FieldKind.FLOAT: FLOAT,
    FieldKind.DATE: DAY,
    FieldKind.DATETIME: MOMENT,
    # A number kept as the text the CRM wrote (crmsweep/decimal_text.py): its JSON is that text's.
    FieldKind.DECIMAL: st.one_of(st.sampled_from(["12345678901234567890", "0.1000000000000000055", "-0", "0", "-1.5"]),
                                 st.integers().map(str)),
}
KINDS = list(FieldKind)


@st.composite
def tables(draw: Any, max_rows: int = 6) -> tuple[pa.Table, dict[str, FieldKind]]:
    """A typed snapshot table: columns of every kind (some twice), named awkwardly, nulls anywhere."""
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=8))
    names = draw(st.lists(WORD, min_size=len(kinds), max_size=len(kinds), unique=True))
    rows = draw(st.integers(0, max_rows))
    columns = [pa.array(draw(st.lists(st.one_of(st.none(), VALUES[kind]), min_size=rows, max_size=rows)),
                        type=ARROW_TYPES[kind]) for kind in kinds]
    table = pa.Table.from_arrays(columns, names=names)
    return table, dict(zip(names, kinds, strict=True))


@settings(max_examples=300, deadline=None)
@given(data=tables())
def test_a_block_holds_the_records_canonical_rows_gives(data: tuple[pa.Table, dict[str, FieldKind]]) -> None:
    table, kinds = data
    expected = canonical_rows(table, kinds)
    block = RowBlock(table, kinds)
    assert block.row_dicts() == expected
    assert [block.record(row).record() for row in range(len(block))] == expected
    for row, record in enumerate(expected):
        image = block.record(row)
        assert dict(image) == record and list(image) == list(record) and len(image) == len(record)
        assert all(image[key] == value and image.get(key) == value and key in image for key, value in record.items())
        assert image == record and image.get("\x00no such field", "absent") == "absent"
        with pytest.raises(KeyError):
            image["\x00no such field"]


@settings(max_examples=400, deadline=None)
@given(data=tables(), picks=st.lists(st.integers(0, 5), max_size=8))
def test_the_canonical_json_of_a_block_is_the_encoders(data: tuple[pa.Table, dict[str, FieldKind]],
                                                       picks: list[int]) -> None:
    table, kinds = data
    records = canonical_rows(table, kinds)
    block = RowBlock(table, kinds)
    assert canonical_json_rows(block.table) == [canonical_json(r) for r in records]
    rows = [p for p in picks if p < len(records)]  # any rows, any order, repeated
    assert block.canonical_json_bytes(rows) == [canonical_json(records[r]).encode() for r in rows]
    assert block.canonical_json_bytes(list(range(len(records)))) == [canonical_json(r).encode() for r in records]


def test_a_long_table_is_encoded_in_parts_with_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    from crmsweep.backup import row_json

    table = pa.table({"x": ["a", None, "\x01", "é"] * 5, "n": list(range(20))})
    whole = canonical_json_rows(table)
    monkeypatch.setattr(row_json, "_ROWS_AT_ONCE", 3)
    assert canonical_json_rows(table) == whole == [canonical_json(r) for r in table.to_pylist()]


def test_the_canonical_json_of_tables_at_their_edges() -> None:
    text = pa.array(["a", None, "b\nc", "\x01"])
    assert canonical_json_rows(pa.table({"x": text}).slice(0, 0)) == []
    assert canonical_json_rows(pa.table({"x": text}).slice(2, 1)) == ['{"x":"b\\nc"}']  # a slice: offsets kept
    assert canonical_json_rows(pa.table({"x": text}).slice(3, 1)) == ['{"x":"\\u0001"}']  # left to the encoder
    chunked = pa.Table.from_batches([pa.record_batch({"x": text}), pa.record_batch({"x": text})])
    assert canonical_json_rows(chunked) == [canonical_json({"x": v}) for v in text.to_pylist() * 2]
    assert canonical_json_rows(pa.table({"n": pa.nulls(2), "k": [1, None]})) == [
        '{"k":1,"n":null}', '{"k":null,"n":null}']
    no_columns = pa.table({"z": [1, 2]}).drop_columns(["z"])
    assert canonical_json_rows(no_columns) == [canonical_json(r) for r in no_columns.to_pylist()]
    # A float the encoder refuses (a Parquet file may hold one) is refused the same way, not written.
    with pytest.raises(ValueError):
        canonical_json_rows(pa.table({"f": [1.5, float("nan")]}))
    with pytest.raises(ValueError):
        canonical_json({"f": float("nan")})
    # Arrow's own float text differs from Python's repr: the fast path must not use it.
    assert pc.cast(pa.array([1.0]), pa.string()).to_pylist() != [repr(1.0)]
    assert canonical_json_rows(pa.table({"f": [1.0, 1e16, -0.0, 0.1]})) == [
        canonical_json({"f": v}) for v in (1.0, 1e16, -0.0, 0.1)]


@settings(max_examples=200, deadline=None)
@given(moments=st.lists(st.one_of(st.none(), MOMENT), max_size=20),
       days=st.lists(st.one_of(st.none(), DAY), max_size=20))
def test_dates_and_datetimes_formatted_by_numpy_are_arrows_own_text(
    moments: list[datetime | None], days: list[date | None]
) -> None:
    stamps = pa.array(moments, type=ARROW_TYPES[FieldKind.DATETIME])
    fast = _arrow_text(stamps, stamps.type)
    assert fast is not None and fast.to_pylist() == pc.strftime(stamps, format=_CANONICAL_DATETIME_FORMAT).to_pylist()
    dates = pa.array(days, type=ARROW_TYPES[FieldKind.DATE])
    fast = _arrow_text(dates, dates.type)
    assert fast is not None and fast.to_pylist() == pc.cast(dates, pa.string()).to_pylist()
    assert fast.to_pylist() == [None if d is None else d.isoformat() for d in days]


def test_a_year_outside_1_to_9999_is_left_to_arrow() -> None:
    early = pa.array([-62_135_596_800_001], type=ARROW_TYPES[FieldKind.DATETIME])  # 1 ms before year 1
    assert _arrow_text(early, early.type) is None
    assert canonical_rows(pa.table({"t": early}), {"t": FieldKind.DATETIME}) == [
        {"t": pc.strftime(early, format=_CANONICAL_DATETIME_FORMAT)[0].as_py()}]
    assert _arrow_text(pa.array([1], type=pa.timestamp("s", tz="UTC")), ARROW_TYPES[FieldKind.DATETIME]) is None

    # Far enough out that its day does not fit the 32 bits the formatting counts in: left to Arrow too, not
    # wrapped round into a year that looks right.
    for far in (2**32 * 86_400_000 + 1, -(2**31) * 86_400_000 * 2, 2**63 - 1):
        stamp = pa.array([far, 0], type=ARROW_TYPES[FieldKind.DATETIME])
        assert _arrow_text(stamp, stamp.type) is None
    late = pa.array([2_932_897, 0], type=ARROW_TYPES[FieldKind.DATE])  # 10000-01-01
    assert _arrow_text(late, late.type) is None


LABEL_KINDS = st.sampled_from([FieldKind.STRING, FieldKind.STRING, FieldKind.INT, FieldKind.BOOL, FieldKind.DATE])


@settings(max_examples=300, deadline=None)
@given(kinds=st.lists(LABEL_KINDS, min_size=3, max_size=3), data=st.data())
def test_labels_of_a_block_are_record_label_of_each_record(kinds: list[FieldKind], data: Any) -> None:
    names = ["FirstName", "LastName", "Email"]
    rows = data.draw(st.integers(0, 6))
    columns = [pa.array(data.draw(st.lists(st.one_of(st.none(), VALUES[k]), min_size=rows, max_size=rows)),
                        type=ARROW_TYPES[k]) for k in kinds]
    table = pa.Table.from_arrays(columns, names=names)
    kinds_of = dict(zip(names, kinds, strict=True))
    block = RowBlock(table, kinds_of)
    expected = [record_label(SALESFORCE_VOCABULARY, "Contact", r) for r in canonical_rows(table, kinds_of)]
    assert [record_label(SALESFORCE_VOCABULARY, "Contact", block.record(row)) for row in range(rows)] == expected
    # A block lacking a label field labels as a record lacking it.
    partial = RowBlock(table.drop(["LastName"]), kinds_of)
    assert [record_label(SALESFORCE_VOCABULARY, "Contact", partial.record(row)) for row in range(rows)] == [
        record_label(SALESFORCE_VOCABULARY, "Contact", r) for r in partial.row_dicts()]


def _header() -> PlanHeader:
    return PlanHeader(plan_id="p1", created="2026-06-01T00:00:00.000Z", tool_version="t", provider="salesforce",
                      org_id="00D", connection="c", source={"kind": "snapshot", "id": "s1"})


def _changes(befores: list[Any]) -> list[Change]:
    changes = []
    for at, before in enumerate(befores):
        op = [Op.DELETE, Op.UPDATE, Op.ARCHIVE][at % 3]
        after = {next(iter(before)): None} if op is Op.UPDATE and len(before) else {}
        changes.append(Change(op=op, object="Contact", record_id=f"003{at}", before=before, after=after,
                              reason=["stale", 'a "quoted"\nreason'][at % 2], pass_name="p", severity=Severity.MINOR,
                              fingerprint=None if at % 4 == 0 else f"fp{at}", label=f"L\x1b{at}"))
    # A change of another shape (a text that is not a `str`) is still written, by the encoders.
    changes.append(Change(op=Op.DELETE, object="Contact", record_id="x", before=befores[0] if befores else {"a": 1},
                          after={}, reason="r", pass_name="p", fingerprint=7, label="l"))  # type: ignore[arg-type]
    return changes


@settings(max_examples=150, deadline=None)
@given(first=tables(), second=tables(), order=st.randoms(use_true_random=False))
def test_a_plan_of_block_rows_is_the_plan_of_their_dicts_byte_for_byte(
    first: tuple[pa.Table, dict[str, FieldKind]], second: tuple[pa.Table, dict[str, FieldKind]], order: Any
) -> None:
    images: list[RowRecord] = []
    for table, kinds in (first, second):
        block = RowBlock(table, kinds)
        images += [block.record(row) for row in range(len(block))]
    order.shuffle(images)  # rows of two blocks, interleaved, out of row order
    if not images:
        return
    plain = Plan(header=_header(), changes=tuple(_changes([image.record() for image in images])))
    held = Plan(header=_header(), changes=tuple(_changes(list(images))))
    assert held.to_json() == plain.to_json()
    assert Plan(header=_header(), changes=held.changes).digest == plain.digest == held.digest
    assert [c.to_dict() for c in held.changes] == [c.to_dict() for c in plain.changes]
    parsed = PlanFile.parse(held.to_json())
    assert parsed.digest == parsed.plan.digest == plain.digest


def test_a_plan_written_in_batches_of_several_blocks_is_one_document(monkeypatch: pytest.MonkeyPatch) -> None:
    from crmsweep import model

    monkeypatch.setattr(model, "_BATCH", 3)  # batches that start and end inside blocks
    moments = [datetime(2019, 1, 1, tzinfo=UTC) + timedelta(days=d) for d in range(10)]
    table = pa.table({"Id": [f"003{i}" for i in range(10)], "When": pa.array(moments, ARROW_TYPES[FieldKind.DATETIME]),
                      "Name": ["é", None, '"', "\\", "x\ny", "", " ", "😀", "\x00", "z"]})
    block = RowBlock(table, {"Id": FieldKind.STRING, "When": FieldKind.DATETIME, "Name": FieldKind.STRING})
    images = [block.record(row) for row in (9, 0, 5, 5, 1, 2, 3, 4, 6, 7, 8)]
    mixed = [image.record() if i % 4 == 0 else image for i, image in enumerate(images)]
    plain = Plan.build(_header(), _changes([image.record() for image in images]))
    held = Plan.build(_header(), _changes(mixed))
    out = io.BytesIO()
    assert held.write_json(out) == plain.digest
    assert out.getvalue().decode() == plain.to_json()


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_changes_proposed_together_are_the_changes_proposed_one_by_one(data: Any) -> None:
    from crmsweep.cleanup.passes import PassContext, propose, propose_all
    from crmsweep.cleanup.view import FrameView
    from tests.pass_views import manifest

    rows = data.draw(st.integers(0, 6))
    names = ["Id", "FirstName", "LastName", "Email", "SystemModstamp"]
    kinds = [FieldKind.STRING, FieldKind.STRING, FieldKind.STRING, FieldKind.STRING, FieldKind.DATETIME]
    values = {name: data.draw(st.lists(st.one_of(st.none(), VALUES[kind]), min_size=rows, max_size=rows))
              for name, kind in zip(names, kinds, strict=True)}
    values["Id"] = [f"003{i}" for i in range(rows)]
    table = pa.Table.from_arrays([pa.array(values[n], type=ARROW_TYPES[k]) for n, k in zip(names, kinds, strict=True)],
                                 names=names)
    block = RowBlock(table, dict(zip(names, kinds, strict=True)))
    images: list[Any] = [block.record(row) for row in data.draw(st.permutations(range(rows)))]
    if images and data.draw(st.booleans()):
        images[0] = images[0].record()  # a dict among them: each made as propose makes it
    reasons = [f"r{i}" for i in range(len(images))]
    ctx = PassContext(view=FrameView(manifest(SALESFORCE_VOCABULARY), {}, {}), vocabulary=SALESFORCE_VOCABULARY,
                      now=datetime(2026, 6, 1, tzinfo=UTC), settings={})
    together = propose_all(ctx, "p", Op.DELETE, "Contact", images, reasons=reasons, severity=Severity.MINOR)
    one_by_one = [propose(ctx, "p", Op.DELETE, "Contact", image, reason=reason, severity=Severity.MINOR)
                  for image, reason in zip(images, reasons, strict=True)]
    assert [c.to_dict() for c in together] == [c.to_dict() for c in one_by_one]
    assert all(a.before is b.before for a, b in zip(together, one_by_one, strict=True))


def test_the_collector_is_held_off_only_within_and_left_as_it_was() -> None:
    import gc

    from crmsweep.collector import collector_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector_paused():
        assert not gc.isenabled()
        raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()  # off before: still off
    finally:
        gc.enable()


class _Node:
    """A tracked object that can be in a reference cycle."""

    other: Any = None


def test_what_a_paused_block_made_is_old_when_the_collector_runs_again() -> None:
    import gc

    from crmsweep.collector import collector_paused

    def generation_of(made: object) -> int:
        return next(g for g in range(3) if any(o is made for o in gc.get_objects(generation=g)))

    gc.collect()
    with collector_paused():
        kept = _Node()
        cycle = _Node()
        cycle.other = _Node()
        cycle.other.other = cycle
    young_count = gc.get_count()[0]
    # Old at once: the first collections after the block do not walk it (a scan's millions of objects).
    assert young_count < 5 and generation_of(kept) == 2
    # A garbage cycle made in the block is still found, by a full collection.
    probe = weakref.ref(cycle)
    del cycle
    gc.collect(1)
    assert probe() is not None  # not by a young one: it is old
    gc.collect()
    assert probe() is None
    # Objects someone froze stay frozen: the block then leaves the generations alone.
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with collector_paused():
            young = _Node()
        assert gc.get_freeze_count() == frozen and generation_of(young) == 0
    finally:
        gc.unfreeze()


def test_rows_whose_texts_could_pass_two_gib_are_encoded_in_smaller_parts(monkeypatch: Any) -> None:
    # A part's pieces are one Arrow text array (32-bit offsets): 8,192 rows of long text areas can hold more
    # than 2 GiB, which Arrow refuses to concatenate. The limit is lowered here so the test stays small.
    monkeypatch.setattr(row_json, "_PART_BYTES", 600)
    texts = ['q"\\' * 90, "é\n" * 70, None, "x" * 2_000, '\u2028"', "\x01" + "a" * 300, ""]
    table = pa.table({"Description": texts, "Id": [f"003{n}" for n in range(len(texts))],
                      "Score": [1.5, None, 0.1, 1e16, -0.0, 2.0, 3.0]})
    expected = [canonical_json(row).encode() for row in table.to_pylist()]
    assert row_json.canonical_json_bytes(table) == expected
    assert row_json.canonical_json_bytes(table.slice(3, 1)) == expected[3:4]  # one row over the limit alone


def test_a_text_column_arrow_leaves_in_chunks_is_held_whole() -> None:
    # Past 2 GiB, combine_chunks leaves a text column in several chunks; a block's column read must still
    # cover every row (it read only the first chunk: an index past it raised).
    table = pa.table({"Description": pa.chunked_array([["a", None, "b"], ["c", "d"]]), "Id": ["1", "2", "3", "4", "5"]})
    whole = row_block._one_chunk_each(table)
    assert [column.num_chunks for column in whole.columns] == [1, 1]
    assert whole.column("Description").to_pylist() == ["a", None, "b", "c", "d"]
    assert whole.column("Id").type == pa.string()
