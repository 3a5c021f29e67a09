"""STRING columns are Arrow-backed "str" (see crmsweep.cleanup.view): the reader and FrameView give the same
columns, and the fast paths that read them answer as plain pandas does on an object column of the same text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsweep.backup.snapshot import open_snapshot
from crmsweep.cleanup.passes._guards import blank_text, filled, is_in
from crmsweep.cleanup.view import (
    TEXT_DTYPE,
    FrameView,
    arrow_text_series,
    holds_text,
    ids_of,
    rows_where,
    text_array,
    text_values,
)
from crmsweep.model import FieldKind
from crmsweep.paths import Home
from tests.fake_connector import FAKE_VOCABULARY, FakeConnector, spec, standard_fields
from tests.pass_views import manifest
from tests.test_snapshot import snap

AWKWARD = ["", " ", "\t\n ", "\u00a0", "\u2003x", "Zoë 😀", 'say "hi"', "it's", "back\\slash", "ctl\x01\x1f\x7f",
           "line\nbreak", "\r", "x", "None", "nan"]
TEXT = st.one_of(st.none(), st.sampled_from(AWKWARD),
                 st.text(st.characters(codec="utf-8"), max_size=6))


def test_the_reader_and_a_frame_view_give_the_same_columns_for_every_kind(tmp_path: Path) -> None:
    kinds = {"Text": FieldKind.STRING, "Count": FieldKind.INT, "Amount": FieldKind.FLOAT, "Exact": FieldKind.DECIMAL,
             "Flag": FieldKind.BOOL, "Day": FieldKind.DATE, "At": FieldKind.DATETIME}
    specs = standard_fields(*(spec(name, kind) for name, kind in kinds.items()))
    texts: list[str | None] = [None, *AWKWARD]
    values: dict[str, list[Any]] = {
        "Count": [None, 0, -1, 2**62, -(2**63)], "Amount": [None, 1e16, 0.1, -0.0, 1e-300],
        "Exact": [None, "12345678901234567890", "0.1", "-0", "1e16"], "Flag": [None, True, False],
        "Day": [None, "1970-01-01", "2026-02-28"], "At": [None, "1970-01-01T00:00:00.000Z", "2026-03-01T23:59:59.999Z"],
    }
    rows = [{"Id": f"003{n:015d}", "Text": text, **{k: v[n % len(v)] for k, v in values.items()}}
            for n, text in enumerate(texts)]
    home = Home(tmp_path / "home")
    reader = open_snapshot(home, snap(home, FakeConnector({"Contact": specs}, {"Contact": rows})).snapshot_id)
    ids = [str(r["Id"]) for r in rows]
    held = reader.record_map("Contact", ids)
    view = FrameView(manifest(FAKE_VOCABULARY), {"Contact": specs}, {"Contact": [held[i] for i in ids]})

    read = reader.frame("Contact")
    assert read["Id"].tolist() == ids  # the file keeps the connector's order
    pd.testing.assert_frame_equal(view.frame("Contact"), read)
    pd.testing.assert_frame_equal(view.frame("Contact", ["Text", "Id"]), reader.frame("Contact", ["Text", "Id"]))
    assert read["Text"].dtype == TEXT_DTYPE and read["Id"].dtype == TEXT_DTYPE
    assert text_values(read["Text"]) == [held[i]["Text"] for i in ids]
    assert held[ids[0]]["Text"] is None
    assert read["Text"].isna().tolist() == [t is None for t in text_values(read["Text"])]
    # Text the CRM held is read back unchanged, blank and odd texts included.
    assert [held[i]["Text"] for i in ids][1:] == AWKWARD


def test_a_frame_view_refuses_a_lone_surrogate_as_a_snapshot_does() -> None:
    # Arrow text is UTF-8, which cannot hold half a UTF-16 pair; a backup stops on one (test_snapshot).
    view = FrameView(manifest(FAKE_VOCABULARY), {"Contact": [spec("Id"), spec("Name")]},
                     {"Contact": [{"Id": "1", "Name": "Zoë \ud83d"}]})
    with pytest.raises(ValueError, match="Name holds a text with a lone UTF-16 surrogate"):
        view.frame("Contact")


def _chunked(values: list[str | None]) -> pd.Series:
    """A STRING column of two chunks, as a frame a script made from Arrow row groups may hold."""
    half = len(values) // 2
    chunks = [pa.array(values[:half], pa.large_string()), pa.array(values[half:], pa.large_string())]
    series: pd.Series = pa.chunked_array(chunks, pa.large_string()).to_pandas(types_mapper=lambda _: TEXT_DTYPE)
    return series


@settings(max_examples=300, deadline=None)
@given(values=st.lists(TEXT, max_size=14), wanted=st.lists(TEXT, max_size=5), keep=st.lists(st.booleans(), max_size=14))
def test_the_text_fast_paths_answer_as_pandas_on_an_object_column(
    values: list[str | None], wanted: list[str | None], keep: list[bool],
) -> None:
    plain = pd.Series(values, dtype=object)
    for text in (arrow_text_series(pa.array(values, pa.string())), _chunked(values)):
        assert holds_text(text) and text.dtype == TEXT_DTYPE
        assert text_values(text) == values
        assert ids_of(text) == [str(v) for v in values]
        assert filled(text).tolist() == [v is not None and not blank_text(v) for v in values]
        assert filled(text).tolist() == filled(plain).tolist()
        looked_up = [w for w in wanted if w is not None]
        assert is_in(text, looked_up).tolist() == plain.isin(looked_up).tolist()
        assert is_in(text, set(looked_up)).tolist() == is_in(plain, set(looked_up)).tolist()
        array = text_array(text)
        assert array is not None and array.type == pa.string() and array.to_pylist() == values

        mask = np.array((keep + [True] * len(values))[: len(values)], dtype=bool)
        frame = pd.DataFrame({"Text": text, "Score": pd.Series(np.arange(len(values), dtype="float64")),
                              "Seen": pd.array([v is None for v in values], dtype="boolean"), "Again": text})
        want = frame[mask].reset_index(drop=True)
        got = rows_where(frame, mask)
        pd.testing.assert_frame_equal(got, want)
        assert text_values(got["Again"]) == [v for v, k in zip(values, mask, strict=True) if k]


def test_the_reader_joins_a_column_once_and_text_array_takes_it_as_it_is() -> None:
    column = pa.chunked_array([pa.array(["a", None]), pa.array(["", "b"])])
    text = arrow_text_series(column)
    held = text.array.__arrow_array__()
    # One chunk: `text_array` and every match then take it without joining it again.
    assert held.num_chunks == 1
    array = text_array(text)
    assert array is not None and array.buffers()[2].address == held.chunk(0).buffers()[2].address
    assert text_values(text) == ["a", None, "", "b"]
    assert arrow_text_series(pa.chunked_array([pa.nulls(2)])).isna().tolist() == [True, True]
    assert arrow_text_series(pa.chunked_array([], pa.string())).dtype == TEXT_DTYPE


def test_rows_where_keeps_duplicate_and_object_columns_as_pandas_does() -> None:
    frame = pd.DataFrame([["a", 1, None], ["b", 2, "x"], [None, 3, "y"]], columns=["T", "N", "T"])
    frame.isetitem(0, arrow_text_series(pa.array(["a", "b", None])).array)
    mask = np.array([True, False, True])
    pd.testing.assert_frame_equal(rows_where(frame, mask), frame[mask].reset_index(drop=True))
    none = np.zeros(3, dtype=bool)
    pd.testing.assert_frame_equal(rows_where(frame, none), frame[none].reset_index(drop=True))


def test_rows_where_takes_a_series_mask_by_the_frame_s_rows_never_pairing_two_records() -> None:
    # A frame not numbered from 0 (a filtered one): a Series mask on its index keeps each row whole; a mask on
    # another index is refused rather than read by label for some columns and by position for the text.
    frame = pd.DataFrame({"Id": arrow_text_series(pa.array(["a", "b", "c"])), "n": [1, 2, 3]}).set_axis([5, 7, 9])
    kept = rows_where(frame, frame["n"] != 1)
    assert kept.to_dict("records") == [{"Id": "b", "n": 2}, {"Id": "c", "n": 3}]
    with pytest.raises(ValueError, match="not the frame's"):
        rows_where(frame, pd.Series([False, False, True]))


def test_text_values_gives_none_for_every_missing_marker() -> None:
    assert text_values(pd.Series([1, "a", None, pd.NA, float("nan")], dtype=object)) == [1, "a", None, None, None]
