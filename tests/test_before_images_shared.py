"""Before-images read through a scan's shared columns (crmsweep/cleanup/shared_columns.py) are the snapshot
reader's own, exactly: the columns a scan already holds as frames are taken from them instead of being decoded
from Parquet again, and every row, value, type and key order is the one the plain reader gives (issue 7:
plans stay byte-identical)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsweep.backup import snapshot_layers as layers
from crmsweep.backup import snapshot_reader, snapshot_writer
from crmsweep.backup.row_block import RowRecord
from crmsweep.backup.snapshot_reader import SnapshotReader, _column_series, _few_distinct_texts, open_snapshot
from crmsweep.backup.snapshot_values import canonical_rows
from crmsweep.cleanup.shared_columns import SharedColumns, stored_values
from crmsweep.model import FieldKind, ObjectLayer, Record, canonical_json
from crmsweep.paths import Home
from tests.fake_connector import FakeConnector, spec, standard_fields
from tests.test_row_block import tables
from tests.test_snapshot import snap

FIELDS = standard_fields(
    spec("Name"), spec("Email"), spec("Employees", FieldKind.INT), spec("Score", FieldKind.FLOAT),
    spec("Amount", FieldKind.DECIMAL), spec("Birthdate", FieldKind.DATE), spec("HasOptedOut", FieldKind.BOOL),
    spec("LastActivityDate", FieldKind.DATETIME),
)
TEXTS = ["", " ", "  \t", 'Smith, "Bob"', "back\\slash", "\x00\x01\x1f\x7f", "line\nbreak\r\n", "Zoë 😀 Ångström",
         "山田太郎", "\u2028\u2029\ufeff", None]
NUMBERS: list[Any] = [0, -1, 2**62 + 1, -(2**63), None, 10**16]
FLOATS: list[Any] = [0.1, 1e16, -0.0, 0.0, None, -1.5e300, 5e-324]
DECIMALS: list[Any] = ["12345678901234567890", "0.1000000000000000055", "-0", None, "-1.5"]
DAYS: list[Any] = ["1970-01-01", "0001-01-01", "9999-12-31", "2024-02-29", None, "1969-12-31"]
MOMENTS: list[Any] = ["1970-01-01T00:00:00.000Z", "1969-12-31T23:59:59.999Z", "2019-03-01T14:30:00.999+0200",
                      None, "0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z"]
ROWS = 57


def _contacts(n: int = ROWS) -> list[Record]:
    return [
        {"Id": f"003{i:05d}", "IsDeleted": i % 7 == 0, "Name": TEXTS[i % len(TEXTS)],
         "Email": TEXTS[(i * 5) % len(TEXTS)], "Employees": NUMBERS[i % len(NUMBERS)],
         "Score": FLOATS[i % len(FLOATS)], "Amount": DECIMALS[i % len(DECIMALS)], "Birthdate": DAYS[i % len(DAYS)],
         "HasOptedOut": [True, False, None][i % 3], "LastActivityDate": MOMENTS[i % len(MOMENTS)],
         "CreatedDate": MOMENTS[(i + 1) % len(MOMENTS)] or "2018-01-01T00:00:00.000Z",
         "LastModifiedDate": MOMENTS[(i + 2) % len(MOMENTS)], "SystemModstamp": "2020-01-01T00:00:00.000Z"}
        for i in range(n)
    ]


@pytest.fixture
def reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SnapshotReader:
    monkeypatch.setattr(snapshot_writer, "ROW_GROUP_ROWS", 10)  # six row groups of Contact
    home = Home(tmp_path / "home")
    fake = FakeConnector({"Contact": FIELDS, "Note": standard_fields(spec("Body"), deletable=False)},
                         {"Contact": _contacts(), "Note": []}, page_size=10)
    return open_snapshot(home, snap(home, fake, ("Contact", "Note")).snapshot_id)


def strict(images: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """Ids in order, each record's keys in order with each value's type and repr: 1 == 1.0 == True in a dict
    comparison, and a before-image's JSON tells them apart."""
    return [(rid, [(key, type(value).__name__, repr(value)) for key, value in image.items()])
            for rid, image in images.items()]


def _json(images: Mapping[str, Any]) -> list[bytes]:
    out: list[bytes] = []
    for image in images.values():
        out.extend(image.block.canonical_json_bytes([image.row]))
    return out


IDS = [f"003{i:05d}" for i in range(ROWS)]
ID_SETS: list[list[Any]] = [
    [], ["nope"], IDS, IDS[::-1], [IDS[3]] * 4 + [IDS[40], "nope", IDS[3]], IDS[9:11], IDS[::13],
    [IDS[56], IDS[0]], ["", IDS[20]],
]
HELD: list[list[str] | None] = [
    [], ["Id"], ["Name", "Birthdate", "LastActivityDate"], ["Email", "Employees", "HasOptedOut", "IsDeleted"],
    ["Score", "Amount"], None,
]


@pytest.mark.parametrize("held", HELD)
def test_before_images_through_shared_columns_are_the_readers(reader: SnapshotReader, held: list[str] | None) -> None:
    shared = SharedColumns(reader)
    if held != []:
        shared.frame("Contact", held)
    for ids in ID_SETS:
        plain = reader.before_images("Contact", ids)
        got = shared.before_images("Contact", ids)
        assert strict(got) == strict(plain) and _json(got) == _json(plain)
        assert shared.record_map("Contact", ids) == reader.record_map("Contact", ids)
    everything = {r["Id"]: r for r in reader.records("Contact")}
    assert strict(shared.before_images("Contact", IDS)) == strict(everything)
    assert shared.before_images("Note", IDS) == {} == shared.before_images("Note", [])


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[list[str] | None]:
    """The columns decoded, one entry per row group read (alone or with others in one call)."""
    seen: list[list[str] | None] = []
    plain, plain_many = pq.ParquetFile.read_row_group, pq.ParquetFile.read_row_groups

    def counted(self: pq.ParquetFile, i: int, columns: Sequence[str] | None = None, **kw: Any) -> pa.Table:
        seen.append(None if columns is None else list(columns))
        return plain(self, i, columns=columns, **kw)

    def counted_many(self: pq.ParquetFile, groups: Sequence[int], columns: Sequence[str] | None = None,
                     **kw: Any) -> pa.Table:
        seen.extend(None if columns is None else list(columns) for _ in groups)
        return plain_many(self, groups, columns=columns, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", counted)
    monkeypatch.setattr(pq.ParquetFile, "read_row_groups", counted_many)
    return seen


def test_columns_a_scan_holds_are_not_decoded_again(reader: SnapshotReader, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = SharedColumns(reader)
    exact = ["Id", "IsDeleted", "Name", "Email", "Employees", "Birthdate", "HasOptedOut", "LastActivityDate",
             "CreatedDate", "LastModifiedDate", "SystemModstamp"]
    shared.frame("Contact", [*exact, "Score", "Amount"])
    handle = pq.ParquetFile(reader.path / reader.manifest.objects["Contact"].file)
    sizes = [handle.metadata.row_group(g).num_rows for g in range(handle.num_row_groups)]
    assert len(sizes) > 3
    stored = handle.read(columns=["Id"]).column(0).to_pylist()
    matched = len({int(np.searchsorted(np.cumsum(sizes), stored.index(i), side="right")) for i in IDS[::13]
                   if i in stored})
    seen = _reads(monkeypatch)
    shared.before_images("Contact", IDS[::13])
    # Only the row groups holding a match, and only the columns a frame does not hold exactly.
    assert seen == [["Score", "Amount"]] * matched and 1 < matched < len(sizes)
    seen.clear()
    reader.before_images("Contact", IDS[::13])
    assert seen == [[name for name in [s.name for s in FIELDS] if name != "Id"]] * matched
    # Once no later pass reads them, the columns are let go, and before-images decode them again.
    shared.keep({"Contact": {"Name"}})
    seen.clear()
    shared.before_images("Contact", IDS[1:2])
    assert seen == [[name for name in [s.name for s in FIELDS] if name not in ("Id", "Name")]]


def test_a_reader_with_its_own_before_images_is_asked_through_it(reader: SnapshotReader) -> None:
    asked: list[str] = []

    class Noting(SnapshotReader):
        def before_images(self, object_name: str, ids: Iterable[str]) -> Any:
            asked.append(object_name)
            return super().before_images(object_name, ids)

    shared = SharedColumns(Noting(reader.path, reader.manifest))
    shared.frame("Contact", ["Name"])
    assert strict(shared.before_images("Contact", IDS[:3])) == strict(reader.before_images("Contact", IDS[:3]))
    assert asked == ["Contact"]


def _layered(reader: SnapshotReader, tmp_path: Path) -> SnapshotReader:
    """A snapshot whose Contact is the reader's, less two deleted rows, with three rows changed and one added."""
    entry = reader.manifest.objects["Contact"]
    base = pq.read_table(reader.path / entry.file)
    changed = base.take(pa.array([4, 25, base.num_rows - 1]))
    names = changed.column("Name").to_pylist()
    changed = changed.set_column(changed.schema.get_field_index("Name"), "Name",
                                 pa.array([f"changed {n!r}" for n in names], type=pa.string()))
    added = base.take(pa.array([0])).set_column(0, "Id", pa.array(["003NEW"], type=pa.string()))
    folder = tmp_path / "layered"
    (folder / "data").mkdir(parents=True)
    pq.write_table(pa.concat_tables([changed, added]), folder / "data" / "Contact.parquet", row_group_size=2)
    gone = base.column("Id").take(pa.array([8, 30])).combine_chunks()
    pq.write_table(layers.deleted_table(gone, "Id"), folder / "data" / "Contact.deleted.parquet")
    layer = ObjectLayer(base_snapshot=reader.path.name, base_file=entry.file, base_sha256="", base_rows=base.num_rows,
                        changed=4, deleted_file="data/Contact.deleted.parquet", deleted_sha256="", deleted=2)
    objects = {**reader.manifest.objects, "Contact": replace(entry, layer=layer, rows=base.num_rows - 1)}
    return SnapshotReader(folder.rename(reader.path.parent / "layered"), replace(reader.manifest, objects=objects))


def test_a_layered_object_gives_the_rows_of_its_full_copy(reader: SnapshotReader, tmp_path: Path) -> None:
    layered = _layered(reader, tmp_path)
    base = [r["Id"] for r in reader.records("Contact")]
    everything = {r["Id"]: r for r in layered.records("Contact")}
    first = next(reader.records("Contact"))  # "003NEW" is a copy of it under another id
    assert len(everything) == len(base) - 1 and everything["003NEW"]["Name"] == first["Name"]
    assert everything[base[25]]["Name"].startswith("changed") and base[8] not in everything
    shared = SharedColumns(layered)
    shared.frame("Contact", ["Id", "Name", "Birthdate"])
    for ids in [*ID_SETS, ["003NEW", base[8], base[25], base[-1]]]:
        plain = layered.before_images("Contact", ids)
        assert strict(shared.before_images("Contact", ids)) == strict(plain)
        assert {rid: dict(image) for rid, image in plain.items()} == {
            rid: everything[rid] for rid in dict.fromkeys(ids) if rid in everything}


@settings(max_examples=300, deadline=None)
@given(data=tables(max_rows=8), picks=st.lists(st.integers(0, 7), max_size=10))
def test_a_frame_column_gives_back_the_stored_values(data: tuple[pa.Table, dict[str, FieldKind]],
                                                    picks: list[int]) -> None:
    table, kinds = data
    rows = np.array([p for p in picks if p < table.num_rows], dtype=np.int64)
    for name, kind in kinds.items():
        column = table.column(name)
        frames = [_column_series(column, kind)]
        if kind is FieldKind.STRING:  # a text column as pandas 3 holds it, Arrow-backed
            frames.append(pd.Series(pd.arrays.ArrowStringArray(column.combine_chunks()) if len(column) else
                                    pd.array([], dtype="str")))
        for series in frames:
            got = stored_values(series, kind, rows)
            if kind in (FieldKind.FLOAT, FieldKind.DECIMAL):
                assert got is None  # NaN and null are one NaN in float64; a decimal is its nearest double there
                continue
            assert got is not None
            expected = column.combine_chunks().take(pa.array(rows, type=pa.int64()))
            assert got.type == expected.type and got.to_pylist() == expected.to_pylist() and got.equals(expected)


def test_a_frame_column_of_another_type_is_not_taken() -> None:
    rows = np.array([0, 1], dtype=np.int64)
    assert stored_values(pd.Series(["2020-01-01", None], dtype=object), FieldKind.DATETIME, rows) is None
    assert stored_values(pd.Series([1.5, 2.0]), FieldKind.INT, rows) is None
    assert stored_values(pd.Series([1, 2]), FieldKind.STRING, rows) is None


@pytest.fixture
def many(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SnapshotReader:
    monkeypatch.setattr(snapshot_writer, "ROW_GROUP_ROWS", 300)
    home = Home(tmp_path / "home")
    fake = FakeConnector({"Contact": FIELDS}, {"Contact": _contacts(1200)}, page_size=500)
    return open_snapshot(home, snap(home, fake, ("Contact",)).snapshot_id)


def _reference(reader: SnapshotReader, ids: Sequence[str]) -> dict[str, Record]:
    """The rows of `ids` the straightforward way: the whole file read, filtered, turned into canonical rows."""
    table = pq.read_table(reader.path / reader.manifest.objects["Contact"].file)
    kinds = {s.name: s.kind for s in FIELDS}
    rows = canonical_rows(table.filter(pc.is_in(table.column("Id"), value_set=pa.array(ids, pa.string()))), kinds)
    return {row["Id"]: row for row in rows}


@pytest.mark.parametrize("share", [1.0, snapshot_reader._FEW_DISTINCT, -1.0])
def test_texts_decoded_as_dictionaries_come_back_as_stored(many: SnapshotReader, monkeypatch: pytest.MonkeyPatch,
                                                           share: float) -> None:
    # 1.0: every dictionary-encoded text but the id (Name, Email, Amount: awkward texts, nulls) is decoded as a
    # dictionary; -1: none is. The rows, their types and their JSON are the same.
    monkeypatch.setattr(snapshot_reader, "_FEW_DISTINCT", share)
    handle = pq.ParquetFile(many.path / many.manifest.objects["Contact"].file)
    if share == 1.0:
        assert handle.num_row_groups > 2 and _few_distinct_texts(handle) == ["Name", "Email", "Amount"]
    ids = [f"003{i:05d}" for i in range(0, 1200, 3)] + ["nope"]
    expected = _reference(many, ids)
    for held in ([], ["Id"], ["Id", "Name", "LastActivityDate"]):
        shared = SharedColumns(many)
        if held:
            shared.frame("Contact", held)
        for images in (many.before_images("Contact", ids), shared.before_images("Contact", ids)):
            assert strict(images) == strict(expected)
            assert _json(images) == [canonical_json(row).encode() for row in expected.values()]
            image = next(iter(images.values()))
            assert isinstance(image, RowRecord)
            assert image.block.table.schema.remove_metadata() == pa.schema(
                [pa.field(s.name, pa.string() if s.kind is FieldKind.DATE or s.kind is FieldKind.DATETIME
                          else handle.schema_arrow.field(s.name).type) for s in FIELDS])


def test_only_texts_of_few_distinct_values_are_read_as_dictionaries(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    rows = 20_000
    table = pa.table({"Id": [f"003{i:08d}" for i in range(rows)],
                      "City": [["Paris", "Zoë", "", None, "山田"][at] for at in rng.integers(0, 5, rows)],
                      "Email": [f"p{i}@example.com" for i in rng.permutation(rows)]},
                     metadata={b"crmsweep.id_field": b"Id"})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=5_000)
    assert _few_distinct_texts(pq.ParquetFile(tmp_path / "t.parquet")) == ["City"]


def test_a_held_id_column_is_not_read_again(many: SnapshotReader, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = SharedColumns(many)
    shared.frame("Contact", ["Id", "Name"])
    read: list[Any] = []
    plain = pq.ParquetFile.read

    def counted(self: pq.ParquetFile, *args: Any, **kw: Any) -> pa.Table:
        read.append(kw.get("columns"))
        return plain(self, *args, **kw)

    monkeypatch.setattr(pq.ParquetFile, "read", counted)
    ids = [f"003{i:05d}" for i in range(5, 1200, 7)]
    assert strict(shared.before_images("Contact", ids)) == strict(_reference(many, ids))
    assert read == []
    assert strict(many.before_images("Contact", ids)) == strict(_reference(many, ids))
    assert read == [["Id"]]


def test_columns_later_passes_read_are_read_whole_once_for_the_images(reader: SnapshotReader,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # The scan tells the shared columns what the passes from now on read: before-images then take those columns
    # read whole (as the later pass would read them anyway), not decoded a row group at a time as well.
    shared = SharedColumns(reader)
    shared.frame("Contact", ["Id", "LastActivityDate"])
    shared.expect({"Contact": frozenset({"Id", "Email", "Name", "Score"}), "Account": None})
    seen = _reads(monkeypatch)
    got = shared.before_images("Contact", IDS[::13])
    by_shared = list(seen)
    plain = reader.before_images("Contact", IDS[::13])
    assert strict(got) == strict(plain) and _json(got) == _json(plain)
    # Score is a FLOAT (a frame holds it as a double, not as stored): decoded for the images as before.
    assert by_shared and all("Email" not in columns and "Name" not in columns and "Score" in columns
                        for columns in by_shared if columns is not None)
    assert {"Email", "Name"} <= set(shared._columns["Contact"])
    # The later pass's frame is the column already read: no read of the file.
    frames: list[Any] = []

    def noted(*a: Any, **k: Any) -> pd.DataFrame:
        frames.append(a)
        return SnapshotReader.frame(reader, *a, **k)

    monkeypatch.setattr(reader, "frame", noted)
    assert shared.frame("Contact", ["Email", "Name"])["Email"].tolist() == reader.frame("Contact", ["Email"])[
        "Email"].tolist()
    assert frames == [("Contact", ["Email"])]  # only the reference read above, none by the shared columns


@pytest.mark.parametrize("rows_a_read", [1, 10, 20, 25, 1000])
def test_row_groups_read_together_give_each_id_its_own_row(reader: SnapshotReader, monkeypatch: pytest.MonkeyPatch,
                                                           rows_a_read: int) -> None:
    # Six row groups of ten: a read takes up to `rows_a_read` rows of whole groups, and a group without a
    # match is left out of it, so the positions after it shift (IDS[::13] skips groups; [56, 0] the middle ones).
    monkeypatch.setattr(snapshot_reader, "_ROWS_A_READ", rows_a_read)
    everything = {r["Id"]: r for r in reader.records("Contact")}
    for ids in [*ID_SETS, IDS[::2], IDS[15:45], [IDS[9], IDS[10], IDS[30], IDS[31], IDS[50]]]:
        wanted = [i for i in everything if i in set(ids)]  # file order
        assert strict(reader.before_images("Contact", ids)) == strict({i: everything[i] for i in wanted})
