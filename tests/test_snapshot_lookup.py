"""Before-images by id from a snapshot of many row groups: exactly the snapshot's rows, found in one pass."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from crmsweep.backup import snapshot_writer
from crmsweep.backup.snapshot import open_snapshot, take_snapshot
from crmsweep.backup.snapshot_reader import SnapshotReader
from crmsweep.model import FieldKind
from crmsweep.paths import Home
from tests.fake_connector import FakeConnector, spec, standard_fields

ROWS = 250


def accounts() -> list[dict[str, object]]:
    return [
        {
            "Id": f"001{i:05d}",
            "Name": f"Account {i}" if i % 7 else None,
            "Employees": i * 3,
            "Revenue": i / 4,
            "Founded": f"19{i % 100:02d}-0{1 + i % 9}-1{i % 10}",
            "CreatedDate": f"2020-0{1 + i % 9}-01T00:00:{i % 60:02d}.{i % 1000:03d}Z",
            "LastModifiedDate": "2021-01-01T00:00:00.000Z",
            "SystemModstamp": f"2021-01-{1 + i % 28:02d}T00:00:00.000Z",
        }
        for i in range(ROWS)
    ]


@pytest.fixture
def reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SnapshotReader:
    monkeypatch.setattr(snapshot_writer, "ROW_GROUP_ROWS", 10)
    fields = standard_fields(spec("Name"), spec("Employees", FieldKind.INT), spec("Revenue", FieldKind.FLOAT),
                             spec("Founded", FieldKind.DATE))
    fake = FakeConnector({"Account": fields}, {"Account": accounts()}, page_size=4)
    home = Home(tmp_path / "home")
    manifest = take_snapshot(fake, home, objects=["Account"], clock=lambda: datetime(2024, 1, 1, tzinfo=UTC))
    return open_snapshot(home, manifest.snapshot_id)


def test_ids_spread_over_many_row_groups_give_exactly_the_snapshot_rows(reader: SnapshotReader) -> None:
    groups = pq.ParquetFile(reader.path / reader.manifest.objects["Account"].file).num_row_groups
    assert groups >= 20  # row groups of 12 rows (3 pages of 4)
    every_row = {str(r["Id"]): r for r in reader.records("Account")}
    # First and last rows of row groups, rows in between, ids asked twice, ids the snapshot lacks; not in order.
    wanted = [f"001{i:05d}" for i in (249, 0, 11, 12, 13, 23, 24, 100, 101, 12, 0, 137, 240, 248)]
    wanted += ["001XXXXX", "nope", ""]

    found = reader.record_map("Account", iter(wanted))

    assert found == {rid: every_row[rid] for rid in wanted if rid in every_row}
    assert found["00100012"] == {
        "Id": "00100012", "IsDeleted": False, "Name": "Account 12", "Employees": 36, "Revenue": 3.0,
        "Founded": "1912-04-12", "CreatedDate": "2020-04-01T00:00:12.012Z",
        "LastModifiedDate": "2021-01-01T00:00:00.000Z", "SystemModstamp": "2021-01-13T00:00:00.000Z",
    }
    assert found["00100000"]["Name"] is None


def test_every_row_at_once_and_none_at_all(reader: SnapshotReader) -> None:
    every_row = {str(r["Id"]): r for r in reader.records("Account")}
    assert reader.record_map("Account", reversed(list(every_row))) == every_row
    assert reader.record_map("Account", ["absent", "also absent"]) == {}
    assert reader.record_map("Account", []) == {}
