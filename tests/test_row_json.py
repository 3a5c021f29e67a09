"""The canonical JSON of rows made column by column (crmsweep/backup/row_json.py) is the encoder's, byte for
byte, in the shapes its fast paths single out: a column all null or all alike (folded into the fixed text),
a text column without nulls (its quotes fixed text) or with some (its values quoted), floats written once
per distinct value, escapes found by byte search; against `canonical_json` of each row as reference."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsweep.backup import row_json
from crmsweep.backup.row_block import RowBlock
from crmsweep.backup.snapshot_values import ARROW_TYPES
from crmsweep.model import FieldKind, canonical_json

ODD_TEXTS = ["", " ", "   ", "\t", "é", "😀", '"', "\\", '\\"', "a\nb", "\r\n", "\x00", "\x01", "\x1f", "\x7f",
             "\u2028", "'", "</script>", "null", "a" * 300]
FLOATS = [1e16, 1e15, 0.1, -0.0, 0.0, 5e-324, 1.7976931348623157e308, -1.5, 1e-7, 123456789.0, 28547.0]


def _expected(table: pa.Table) -> list[str]:
    return [canonical_json(row) for row in table.to_pylist()]


@pytest.mark.parametrize("rows", [1, 2, 7])
def test_columns_all_null_or_all_alike_and_texts_with_and_without_nulls(rows: int) -> None:
    texts = (ODD_TEXTS * rows)[:rows]
    table = pa.table({
        "all_null_text": pa.array([None] * rows, pa.string()),
        "all_null_bool": pa.array([None] * rows, pa.bool_()),
        "all_null_int": pa.array([None] * rows, pa.int64()),
        "all_null_float": pa.array([None] * rows, pa.float64()),
        "nulls": pa.nulls(rows),
        "all_false": [False] * rows,
        "all_true": [True] * rows,
        "bools": [n % 3 == 0 if n % 2 else None for n in range(rows)],
        "same_int": [10**18] * rows,
        "ints": [(-1) ** n * 2**63 // (n + 1) if n % 4 else None for n in range(rows)],
        "same_float": [-0.0] * rows,
        "floats": [FLOATS[n % len(FLOATS)] if n % 5 != 4 else None for n in range(rows)],
        "texts": texts,
        "some_null_texts": [t if n % 2 else None for n, t in enumerate(texts)],
        "same_text": ["alike"] * rows,
        "": texts[::-1],
        'k"\\\n': texts,
    })
    assert row_json.canonical_json_rows(table) == _expected(table)
    array = row_json.canonical_json_array(table)
    assert array is not None
    assert [bytes(t) for t in array.cast(pa.binary()).to_pylist()] == [
        t.encode() for t in _expected(table)]


def test_floats_written_once_per_distinct_value_are_each_values_repr() -> None:
    values = [*FLOATS, *FLOATS, None, 0.0, -0.0, 1.0, 1, 2.5e-300]
    for kind in (pa.float64(), pa.float32()):
        if kind == pa.float32():  # what a 32-bit float can hold (the largest double is infinite there)
            values = [v for v in values if v is None or abs(v) < 3e38]
        table = pa.table({"f": pa.array(values, kind), "g": pa.array(values[::-1], kind)})
        assert row_json.canonical_json_rows(table) == _expected(table)
        assert row_json.canonical_json_rows(table.slice(3)) == _expected(table.slice(3))
    # A value the encoder refuses (NaN, infinity) is refused, among repeated values too.
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            row_json.canonical_json_rows(pa.table({"f": [1.0, bad, 1.0, None]}))


def test_dates_at_the_epoch_and_missing_in_a_block_are_the_encoders() -> None:
    kinds = {"When": FieldKind.DATETIME, "Id": FieldKind.STRING}
    moments = [datetime(1970, 1, 1, tzinfo=UTC), None, datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)]
    block = RowBlock(pa.table({"When": pa.array(moments, ARROW_TYPES[FieldKind.DATETIME]),
                               "Id": ["003", "", " "]}), kinds)
    assert block.canonical_json_bytes([0, 1, 2, 1]) == [canonical_json(block.record(r).record()).encode()
                                                       for r in (0, 1, 2, 1)]


@settings(max_examples=300, deadline=None)
@given(columns=st.lists(st.tuples(
    st.sampled_from(["text", "bool", "int", "float"]),
    st.sampled_from(["none", "all", "some", "same"])), min_size=1, max_size=6),
    rows=st.integers(1, 6), data=st.data())
def test_any_mix_of_column_shapes_is_the_encoders(columns: list[tuple[str, str]], rows: int,
                                                  data: st.DataObject) -> None:
    values = {"text": st.sampled_from(ODD_TEXTS), "bool": st.booleans(),
              "int": st.integers(-(2**63), 2**63 - 1), "float": st.sampled_from(FLOATS)}
    types = {"text": pa.string(), "bool": pa.bool_(), "int": pa.int64(), "float": pa.float64()}
    arrays = {}
    for at, (kind, nulls) in enumerate(columns):
        one = data.draw(values[kind])
        column = [data.draw(values[kind]) if nulls != "same" else one for _ in range(rows)]
        if nulls == "all":
            column = [None] * rows
        elif nulls == "some":
            column = [None if data.draw(st.booleans()) else v for v in column]
        arrays[f"{kind}{at}"] = pa.array(column, types[kind])
    table = pa.table(arrays)
    assert row_json.canonical_json_rows(table) == _expected(table)
    start = data.draw(st.integers(0, rows - 1))  # a slice: its offsets do not start at zero
    assert row_json.canonical_json_rows(table.slice(start)) == _expected(table.slice(start))


def test_texts_without_quotes_are_the_encoders_between_its_quotes() -> None:
    values = [*ODD_TEXTS, None, "\x01\x02", "é\x03"]
    inner = row_json.json_inner_texts(values).to_pylist()
    assert inner == [None if v is None else canonical_json(v)[1:-1] for v in values]
    assert row_json.json_texts(values).to_pylist() == ["null" if v is None else canonical_json(v) for v in values]
