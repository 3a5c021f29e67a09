"""`snapshots diff` of a field one backup typed as a number and the other as text: the records it counts
changed (a compare in Arrow, a column at a time) are exactly those `--detail` lists a changed field for
(a compare of two values), whatever the texts hold."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from crmsweep.backup.snapshot import open_snapshot
from crmsweep.backup.snapshot_diff import _differs, _same_value, diff_snapshots
from crmsweep.model import FieldKind
from crmsweep.paths import Home
from tests.fake_connector import FakeConnector, spec
from tests.test_snapshot import snap

# (the double an older backup kept, the text a newer one keeps, whether they are the same value)
PAIRS: list[tuple[float | None, str | None, bool]] = [
    (12.5, "12.50", True),
    (12.5, "12.5", True),
    (7.0, "7", True),
    (7.0, "8", False),
    (0.1, "0.1000000000000000055", True),  # all the double could hold
    (1e16, "1e16", True),
    (1e16, "10000000000000000", True),
    (1e16, "1e+16", True),
    (-0.0, "0", True),
    (0.0, "-0", True),
    (1.0, "+1.", True),
    (0.5, ".5", True),
    (math.inf, "1e400", True),
    (1.2345678901234567e19, "12345678901234567890", True),
    (3.0, "three", False),
    (3.0, "", False),
    (3.0, " 3", False),  # a backup keeps the CRM's text: blanks make it no number
    (3.0, "3\n", False),
    (3.0, "1_000", False),
    (12.0, "\u0661\u0662", False),
    (3.0, 'a "quoted" \\ text', False),
    (3.0, "\x00\x1f", False),
    (math.nan, "nan", True),  # no number: compared as text, and a NaN's text is "nan"
    (math.nan, "NaN", False),
    (math.nan, "1", False),
    (math.inf, "inf", True),
    (math.inf, "Infinity", False),
    (None, "1", False),
    (1.0, None, False),
    (None, None, True),
    (None, "", False),
]


@pytest.mark.parametrize(("number", "text", "same"), PAIRS)
def test_a_number_and_a_text_are_the_same_value_exactly_when_both_compares_say_so(
        number: float | None, text: str | None, same: bool) -> None:
    assert _same_value(number, text) is same and _same_value(text, number) is same
    numbers, texts = pa.chunked_array([[number]], pa.float64()), pa.chunked_array([[text]], pa.string())
    assert _differs(numbers, texts).to_pylist() == [not same]
    assert _differs(texts, numbers).to_pylist() == [not same]


@pytest.mark.parametrize(("old", "new"), [
    (5, "5"), (5, "05"), (5, " 5"), (-0, "0"), (2**62, str(2**62)), (True, "true"), (True, "True"),
    (False, "false"), (5, 5.0), (5, 5.5), (True, 1), ("2026-01-01", 0),
])
def test_other_pairs_of_types_are_the_same_value_exactly_when_the_column_compare_says_so(old: Any, new: Any) -> None:
    # `--detail` lists a changed field only where the Arrow compare counted the record changed.
    differs = _differs(pa.chunked_array([pa.array([old])]), pa.chunked_array([pa.array([new])])).to_pylist()
    assert _same_value(old, new) is _same_value(new, old) is (differs == [False])


def test_one_column_of_every_pair_at_once_compares_value_by_value() -> None:
    # As a backup holds them: one column, chunked unevenly on the two sides.
    numbers = pa.chunked_array([[n for n, _, _ in PAIRS[:5]], [n for n, _, _ in PAIRS[5:]]], pa.float64())
    texts = pa.chunked_array([[t for _, t, _ in PAIRS[:11]], [t for _, t, _ in PAIRS[11:]]], pa.string())
    assert _differs(numbers, texts).to_pylist() == [not same for _, _, same in PAIRS]


def test_diff_counts_changed_only_the_records_with_a_changed_field(tmp_path: Path) -> None:
    # A field kept FLOAT by one backup and text by the other (retyped in the CRM); one text is no number, so
    # a compare of the whole column as text would count "12.5" and "12.50" changed, with no changed field.
    home = Home(tmp_path / "home")
    scores = [(12.5, "12.50"), (7.0, "8"), (3.0, "three"), (0.1, "0.1000000000000000055"), (None, None)]

    def backup(kind: FieldKind, values: list[Any]) -> Any:
        rows = [{"Id": f"00{n}", "Score": v} for n, v in enumerate(values, 1)]
        fields = {"Note": [spec("Id"), spec("Score", kind)]}
        return open_snapshot(home, snap(home, FakeConnector(fields, {"Note": rows}), objects=("Note",)).snapshot_id)

    older, newer = backup(FieldKind.FLOAT, [a for a, _ in scores]), backup(FieldKind.STRING, [b for _, b in scores])
    assert older.table("Note", ["Score"]).column("Score").type == pa.float64()
    assert newer.table("Note", ["Score"]).column("Score").type == pa.string()
    for a, b in ((older, newer), (newer, older)):
        note = diff_snapshots(a, b, id_field="Id", fingerprint_field="SystemModstamp", detail=True).objects["Note"]
        assert note.changed == 2 and note.changed_fields == {"002": ["Score"], "003": ["Score"]}


def test_an_object_without_a_fingerprint_tells_stamps_from_changes(tmp_path: Path) -> None:
    # Every shared field is compared: a record whose only difference is an audit stamp is left out of changed.
    home = Home(tmp_path / "home")

    def backup(rows: list[dict[str, Any]]) -> Any:
        fields = {"Note": [spec("Id"), spec("Body"), spec("LastModifiedDate", FieldKind.DATETIME)]}
        return open_snapshot(home, snap(home, FakeConnector(fields, {"Note": rows}), objects=("Note",)).snapshot_id)

    stamp, later = "2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z"
    older = backup([{"Id": f"00{n}", "Body": "x", "LastModifiedDate": stamp} for n in (1, 2, 3)])
    newer = backup([{"Id": "001", "Body": "x", "LastModifiedDate": later},
                    {"Id": "002", "Body": "y", "LastModifiedDate": later},
                    {"Id": "003", "Body": "x", "LastModifiedDate": stamp}])
    diff = diff_snapshots(older, newer, id_field="Id", fingerprint_field="SystemModstamp", detail=True,
                          audit_fields=("LastModifiedDate", "SystemModstamp"))
    note = diff.objects["Note"]
    assert (note.changed, note.stamps_only, note.changed_fields) == (1, 1, {"002": ["Body"]})
    every = diff_snapshots(older, newer, id_field="Id", fingerprint_field="SystemModstamp").objects["Note"]
    assert (every.changed, every.stamps_only) == (2, 0)
