"""Snapshots: take, read back, list and verify, against the in-memory fake CRM."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

import crmsweep
from crmsweep.backup import snapshot_writer
from crmsweep.backup.snapshot import (
    latest_snapshot,
    list_snapshots,
    open_snapshot,
    take_snapshot,
    verify_snapshot,
)
from crmsweep.backup.snapshot_values import UnfitValue, to_arrow_value
from crmsweep.cleanup.view import text_values
from crmsweep.errors import BadInput, ConnectorError, RetriableError
from crmsweep.model import FieldKind, Record, SnapshotManifest
from crmsweep.paths import Home
from tests.fake_connector import FakeConnector, spec, standard_fields

CONTACT_FIELDS = standard_fields(
    spec("Name"),
    spec("Email"),
    spec("Employees", FieldKind.INT),
    spec("Score", FieldKind.FLOAT),
    spec("Birthdate", FieldKind.DATE),
    spec("HasOptedOut", FieldKind.BOOL),
    spec("LastActivityDate", FieldKind.DATETIME),
)

# Source records as the API sends them; datetimes in both of Salesforce's offset spellings.
TRICKY_CONTACTS: list[Record] = [
    {
        "Id": "003A",
        "Name": "Zoë 😀 Ångström",
        "Email": "zoe@example.com",
        "Employees": 2**62 + 1,
        "Score": 0.1,
        "Birthdate": "1900-01-01",
        "HasOptedOut": True,
        "LastActivityDate": "2019-03-01T12:00:00.000+0000",
        "CreatedDate": "2018-01-01T00:00:00.000Z",
        "LastModifiedDate": "2019-03-01T12:00:00.123Z",
        "SystemModstamp": "2019-03-01T12:00:00.123Z",
    },
    {
        "Id": "003B",
        "Name": "山田太郎",
        "Email": "",
        "Employees": -5,
        "Score": -1.5e300,
        "Birthdate": "2024-02-29",
        "HasOptedOut": None,
        "LastActivityDate": "2019-03-01T14:30:00.999+0200",
        "CreatedDate": "2018-01-01T00:00:00.000+0000",
        "LastModifiedDate": None,
        "SystemModstamp": "2021-07-04T23:59:59.999+0000",
    },
    {
        "Id": "003C",
        "Name": 'Smith, "Bob"\nline two\r\n\ttabbed  ',
        "Email": None,
        "Employees": 0,
        "Score": 3.0,
        "Birthdate": "9999-12-31",
        "HasOptedOut": False,
        "LastActivityDate": None,
        "CreatedDate": "2018-01-01T00:00:00.000Z",
        "LastModifiedDate": None,
        "SystemModstamp": "2020-01-01T00:00:00.000Z",
    },
]

# The same records in canonical form: what `records()` must give back, exactly.
CANONICAL_CONTACTS: list[Record] = [
    {
        "Id": "003A",
        "IsDeleted": False,
        "Name": "Zoë 😀 Ångström",
        "Email": "zoe@example.com",
        "Employees": 2**62 + 1,
        "Score": 0.1,
        "Birthdate": "1900-01-01",
        "HasOptedOut": True,
        "LastActivityDate": "2019-03-01T12:00:00.000Z",
        "CreatedDate": "2018-01-01T00:00:00.000Z",
        "LastModifiedDate": "2019-03-01T12:00:00.123Z",
        "SystemModstamp": "2019-03-01T12:00:00.123Z",
    },
    {
        "Id": "003B",
        "IsDeleted": False,
        "Name": "山田太郎",
        "Email": "",
        "Employees": -5,
        "Score": -1.5e300,
        "Birthdate": "2024-02-29",
        "HasOptedOut": None,
        "LastActivityDate": "2019-03-01T12:30:00.999Z",
        "CreatedDate": "2018-01-01T00:00:00.000Z",
        "LastModifiedDate": None,
        "SystemModstamp": "2021-07-04T23:59:59.999Z",
    },
    {
        "Id": "003C",
        "IsDeleted": False,
        "Name": 'Smith, "Bob"\nline two\r\n\ttabbed  ',
        "Email": None,
        "Employees": 0,
        "Score": 3.0,
        "Birthdate": "9999-12-31",
        "HasOptedOut": False,
        "LastActivityDate": None,
        "CreatedDate": "2018-01-01T00:00:00.000Z",
        "LastModifiedDate": None,
        "SystemModstamp": "2020-01-01T00:00:00.000Z",
    },
]

NOTE_FIELDS = standard_fields(spec("Body"), deletable=False)


def many_accounts(n: int) -> list[Record]:
    return [
        {
            "Id": f"001{i:05d}",
            "Name": f"Account {i}",
            "CreatedDate": "2020-01-01T00:00:00.000Z",
            "LastModifiedDate": "2020-01-01T00:00:00.000Z",
            "SystemModstamp": f"2020-01-{1 + i % 28:02d}T00:00:00.000Z",
        }
        for i in range(n)
    ]


def make_fake(*, page_size: int = 2000, accounts: int = 25) -> FakeConnector:
    return FakeConnector(
        {"Contact": CONTACT_FIELDS, "Account": standard_fields(spec("Name")), "Note": NOTE_FIELDS},
        {"Contact": TRICKY_CONTACTS, "Account": many_accounts(accounts), "Note": []},
        page_size=page_size,
    )


def ticking_clock(start: datetime, step_seconds: int = 1) -> Callable[[], datetime]:
    moments = (datetime.fromtimestamp(start.timestamp() + i * step_seconds, UTC) for i in range(10_000))
    return lambda: next(moments)


T0 = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path / "home")


def snap(home: Home, fake: FakeConnector, objects: Sequence[str] = ("Contact",), **kw: Any) -> SnapshotManifest:
    kw.setdefault("clock", ticking_clock(T0))
    return take_snapshot(fake, home, objects=objects, **kw)


def file_sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


# --- round trip ---------------------------------------------------------------------------------------


def test_records_round_trip_tricky_values_exactly(home: Home) -> None:
    manifest = snap(home, make_fake())
    reader = open_snapshot(home, manifest.snapshot_id)

    got = list(reader.records("Contact"))

    assert got == CANONICAL_CONTACTS
    assert [list(r) for r in got] == [[f.name for f in CONTACT_FIELDS]] * 3
    assert [type(r["Employees"]) for r in got] == [int, int, int]
    assert [type(r["Score"]) for r in got] == [float, float, float]


def test_loosely_typed_api_values_are_coerced_to_their_kind(home: Home) -> None:
    loose = {
        "Id": "003L",
        "Name": "Loose",
        "Email": None,
        "Employees": "12345678901234567",
        "Score": "2.5",
        "Birthdate": "2020-02-03T00:00:00Z",
        "HasOptedOut": "TRUE",
        "LastActivityDate": "2020-02-03T04:05:06.789+00:00",
        "CreatedDate": "",
        "SystemModstamp": "2020-02-03T04:05:06Z",
    }
    fake = FakeConnector({"Contact": CONTACT_FIELDS}, {"Contact": [loose, {"Id": "003M", "Employees": 7.0}]})
    reader = open_snapshot(home, snap(home, fake).snapshot_id)

    got = reader.record_map("Contact", ["003L", "003M"])

    assert got["003L"]["Employees"] == 12345678901234567
    assert got["003L"]["Score"] == 2.5
    assert got["003L"]["Birthdate"] == "2020-02-03"
    assert got["003L"]["HasOptedOut"] is True
    assert got["003L"]["LastActivityDate"] == "2020-02-03T04:05:06.789Z"
    assert got["003L"]["CreatedDate"] is None
    assert got["003L"]["SystemModstamp"] == "2020-02-03T04:05:06.000Z"
    assert got["003M"]["Employees"] == 7


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        (FieldKind.INT, 7.5),
        (FieldKind.INT, "seven"),
        (FieldKind.INT, 2**63),
        (FieldKind.INT, True),
        (FieldKind.FLOAT, float("nan")),
        (FieldKind.FLOAT, "inf"),
        (FieldKind.BOOL, "yes"),
        (FieldKind.BOOL, 1),
        (FieldKind.STRING, 5),
        (FieldKind.STRING, {"street": "x"}),
        (FieldKind.DATE, "03/01/2019"),
        (FieldKind.DATE, "2019-03-01T10:00:00Z"),
        (FieldKind.DATETIME, "yesterday"),
        (FieldKind.DATETIME, 1551441600000),
    ],
)
def test_values_that_do_not_fit_their_kind_are_refused(kind: FieldKind, value: Any) -> None:
    with pytest.raises(UnfitValue):
        to_arrow_value(kind, value)


def test_a_value_that_does_not_fit_stops_the_backup_naming_object_field_and_id(home: Home) -> None:
    bad = {"Id": "003BAD", "Employees": "12.5"}
    fake = FakeConnector({"Contact": CONTACT_FIELDS}, {"Contact": [bad]})

    with pytest.raises(ConnectorError) as caught:
        snap(home, fake)

    message = str(caught.value)
    assert "Contact.Employees" in message and "'003BAD'" in message and "'12.5'" in message
    assert os.listdir(home.snapshots_dir) == []


def test_a_lone_surrogate_in_a_text_stops_the_backup_naming_object_field_and_id(home: Home) -> None:
    broken = json.loads('"Zo\\u00eb \\ud83d"')  # half of an emoji pair, as the CRM's JSON may send it
    assert broken == "Zoë \ud83d"
    rows = [*TRICKY_CONTACTS[:2], {"Id": "003SUR", "Name": broken}]
    fake = FakeConnector({"Contact": CONTACT_FIELDS}, {"Contact": rows})

    with pytest.raises(ConnectorError) as caught:
        snap(home, fake)

    assert str(caught.value) == (
        "Contact.Name of record '003SUR' holds 'Zoë \\ud83d', a text with a lone UTF-16 surrogate (half of an emoji), "
        "which UTF-8 cannot store (string field, provider type 'string'): fix that text in the CRM, or leave this "
        "object out of the backup, and run the backup again"
    )
    assert os.listdir(home.snapshots_dir) == []


def test_text_with_whole_surrogate_pairs_and_other_scripts_fits() -> None:
    text = json.loads('"\\ud83d\\ude00 \\u5c71 Zo\\u00eb"')
    assert text == "😀 山 Zoë"
    assert to_arrow_value(FieldKind.STRING, text) == text
    with pytest.raises(UnfitValue, match="lone UTF-16 surrogate"):
        to_arrow_value(FieldKind.STRING, "\udc00 tail")


# --- pages, empty objects, manifest --------------------------------------------------------------------


def test_multi_page_object_streams_pages_into_bounded_row_groups(home: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pages are gathered into row groups of about ROW_GROUP_ROWS: a row group per page would grow the
    # footer the writer holds in memory with the org (HubSpot's 100-record pages: +65 MiB at 100k).
    monkeypatch.setattr(snapshot_writer, "ROW_GROUP_ROWS", 10)
    seen: list[tuple[str, int, bool]] = []
    manifest = snap(home, make_fake(page_size=4, accounts=25), ("Account",), progress=lambda *a: seen.append(a))
    reader = open_snapshot(home, manifest.snapshot_id)

    assert manifest.objects["Account"].rows == 25
    parquet = pq.ParquetFile(reader.path / "data" / "Account.parquet")
    assert parquet.metadata.num_rows == 25
    # Three pages (12 rows) reach the size, twice; the last page of 1 is written at the end.
    assert [parquet.metadata.row_group(i).num_rows for i in range(parquet.num_row_groups)] == [12, 12, 1]
    assert seen == [("Account", n, False) for n in (4, 8, 12, 16, 20, 24, 25)] + [("Account", 25, True)]
    assert [r["Id"] for r in reader.records("Account")] == [f"001{i:05d}" for i in range(25)]


def test_empty_object_is_a_valid_parquet_file_with_its_schema(home: Home) -> None:
    manifest = snap(home, make_fake(), ("Note",))
    reader = open_snapshot(home, manifest.snapshot_id)

    assert manifest.objects["Note"].rows == 0
    assert manifest.objects["Note"].watermark is None
    assert pq.read_schema(reader.path / "data" / "Note.parquet").names == [f.name for f in NOTE_FIELDS]
    assert list(reader.records("Note")) == []
    frame = reader.frame("Note")
    assert list(frame.columns) == [f.name for f in NOTE_FIELDS] and len(frame) == 0
    assert str(frame["CreatedDate"].dtype) == "datetime64[ms, UTC]"
    assert reader.record_map("Note", ["x"]) == {}


def test_manifest_records_rows_hashes_watermark_and_provenance(home: Home) -> None:
    fake = make_fake(page_size=10)
    calls_before = fake.calls
    manifest = snap(home, fake, ("Contact", "Account", "Note"))
    folder = home.snapshots_dir / manifest.snapshot_id

    assert manifest.snapshot_id == "fake-20240506T070809Z"
    assert (manifest.started, manifest.finished) == ("2024-05-06T07:08:09.000Z", "2024-05-06T07:08:10.000Z")
    assert (manifest.connection, manifest.provider, manifest.org_id) == ("fake", "fake", "00DFAKE000000000AA")
    assert (manifest.api_version, manifest.tool_version) == ("59.0", crmsweep.__version__)
    assert manifest.api_calls == fake.calls - calls_before == 3 + 1 + 3 + 1  # describes + pages
    assert {n: e.rows for n, e in manifest.objects.items()} == {"Contact": 3, "Account": 25, "Note": 0}
    assert manifest.objects["Contact"].watermark == "2021-07-04T23:59:59.999Z"
    assert manifest.objects["Account"].watermark == "2020-01-25T00:00:00.000Z"  # day 1 + 24
    assert manifest.objects["Contact"].fields == tuple(CONTACT_FIELDS)
    for entry in manifest.objects.values():
        assert entry.file == f"data/{entry.name}.parquet"
        assert entry.sha256 == file_sha(folder / entry.file)
    assert set(manifest.metadata) == {f"metadata/describe/{n}.json" for n in ("Contact", "Account", "Note")}
    for relative, sha in manifest.metadata.items():
        assert sha == file_sha(folder / relative)
    assert json.loads((folder / "metadata/describe/Contact.json").read_text("utf-8")) == fake.describe("Contact")
    on_disk = SnapshotManifest.from_dict(json.loads((folder / "manifest.json").read_text("utf-8")))
    assert on_disk == manifest
    assert sorted(os.listdir(home.snapshots_dir)) == [manifest.snapshot_id]


def test_folders_are_0700_and_files_0600_whatever_the_umask(home: Home) -> None:
    old = os.umask(0)
    try:
        manifest = snap(home, make_fake(), ("Contact", "Note"))
    finally:
        os.umask(old)
    folder = home.snapshots_dir / manifest.snapshot_id
    modes: dict[str, int] = {}
    for directory, subdirs, files in os.walk(folder):
        for name in [*subdirs, *files]:
            path = Path(directory) / name
            modes[path.relative_to(folder).as_posix()] = stat.S_IMODE(path.stat().st_mode)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert modes == {
        "manifest.json": 0o600,
        "data": 0o700,
        "data/Contact.parquet": 0o600,
        "data/Note.parquet": 0o600,
        "metadata": 0o700,
        "metadata/describe": 0o700,
        "metadata/describe/Contact.json": 0o600,
        "metadata/describe/Note.json": 0o600,
    }


# --- failure leaves nothing behind ---------------------------------------------------------------------


class FailsAfterFirstPage(FakeConnector):
    def iter_pages(
        self, object_name: str, fields: Sequence[str], *, include_deleted: bool = False, **filters: Any
    ) -> Iterator[list[Record]]:
        pages = super().iter_pages(object_name, fields, include_deleted=include_deleted, **filters)
        yield next(pages)
        raise RetriableError("503 Service Unavailable", status=503)


def test_failure_mid_object_leaves_no_snapshot_and_no_partial_folder(home: Home) -> None:
    fake = FailsAfterFirstPage(
        {"Contact": CONTACT_FIELDS, "Account": standard_fields(spec("Name"))},
        {"Contact": TRICKY_CONTACTS, "Account": many_accounts(10)},
        page_size=3,
    )

    with pytest.raises(RetriableError):
        snap(home, fake, ("Contact", "Account"))

    assert os.listdir(home.snapshots_dir) == []
    assert list_snapshots(home) == []


def test_interrupt_during_backup_leaves_nothing_behind(home: Home) -> None:
    def interrupt(obj: str, rows: int, done: bool) -> None:
        if obj == "Account" and rows >= 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        snap(home, make_fake(page_size=4), ("Contact", "Account"), progress=interrupt)

    assert os.listdir(home.snapshots_dir) == []


def test_unsafe_object_names_are_refused_before_anything_is_written(home: Home) -> None:
    with pytest.raises(BadInput, match="object names"):
        snap(home, make_fake(), ("../Contact",))
    with pytest.raises(BadInput, match="no objects"):
        snap(home, make_fake(), ())
    assert os.listdir(home.snapshots_dir) == []


# --- reader ---------------------------------------------------------------------------------------------


def test_frame_columns_are_typed_for_passes(home: Home) -> None:
    reader = open_snapshot(home, snap(home, make_fake()).snapshot_id)

    frame = reader.frame("Contact")

    dtypes = {name: str(dtype) for name, dtype in frame.dtypes.items()}
    assert dtypes == {
        "Id": "str",
        "IsDeleted": "boolean",
        "Name": "str",
        "Email": "str",
        "Employees": "Int64",
        "Score": "float64",
        "Birthdate": "datetime64[ms, UTC]",
        "HasOptedOut": "boolean",
        "LastActivityDate": "datetime64[ms, UTC]",
        "CreatedDate": "datetime64[ms, UTC]",
        "LastModifiedDate": "datetime64[ms, UTC]",
        "SystemModstamp": "datetime64[ms, UTC]",
    }
    assert text_values(frame["Email"]) == ["zoe@example.com", "", None]  # Arrow-backed: NaN where empty
    assert frame["Employees"].tolist() == [2**62 + 1, -5, 0]
    assert frame["HasOptedOut"].isna().tolist() == [False, True, False]
    assert frame["Birthdate"][1] == pd.Timestamp("2024-02-29T00:00:00Z")
    assert frame["LastActivityDate"][1] == pd.Timestamp("2019-03-01T12:30:00.999Z")
    assert frame["LastActivityDate"][1] > frame["Birthdate"][0]


def test_frame_reads_only_requested_columns_and_names_unknown_ones(home: Home) -> None:
    reader = open_snapshot(home, snap(home, make_fake()).snapshot_id)

    frame = reader.frame("Contact", ["Email", "Id"])

    assert list(frame.columns) == ["Email", "Id"]
    assert frame["Id"].tolist() == ["003A", "003B", "003C"]
    with pytest.raises(KeyError, match="Nope"):
        reader.frame("Contact", ["Id", "Nope"])
    with pytest.raises(KeyError, match="no object 'Lead'"):
        reader.frame("Lead")
    assert reader.has("Contact") and not reader.has("Lead")
    assert reader.fields("Contact") == tuple(CONTACT_FIELDS)


def test_record_map_returns_only_present_ids_in_canonical_form(home: Home) -> None:
    manifest = snap(home, make_fake(page_size=4, accounts=25), ("Contact", "Account"))
    reader = open_snapshot(home, manifest.snapshot_id)

    contacts = reader.record_map("Contact", ["003C", "003X", "003A", "003A"])
    accounts = reader.record_map("Account", iter(["00100017", "00100003", "nope"]))

    assert contacts == {"003A": CANONICAL_CONTACTS[0], "003C": CANONICAL_CONTACTS[2]}
    assert set(accounts) == {"00100017", "00100003"}
    assert accounts["00100017"]["Name"] == "Account 17"
    assert accounts["00100003"]["SystemModstamp"] == "2020-01-04T00:00:00.000Z"
    assert reader.record_map("Account", []) == {}


def test_open_unknown_or_incomplete_snapshot_says_what_to_do(home: Home) -> None:
    with pytest.raises(BadInput, match=r"snapshot 'fake-1' not found under .*crmsweep snapshots list"):
        open_snapshot(home, "fake-1")
    with pytest.raises(BadInput, match="not found"):
        open_snapshot(home, "../home")
    (home.snapshots_dir / "fake-2").mkdir()
    with pytest.raises(BadInput, match="incomplete"):
        open_snapshot(home, "fake-2")


# --- list / latest -------------------------------------------------------------------------------------


class OtherConnection(FakeConnector):
    connection_name = "other"


def test_list_and_latest_give_complete_snapshots_oldest_first(home: Home) -> None:
    first = snap(home, make_fake(), clock=ticking_clock(T0, 0))
    same_second = snap(home, make_fake(), clock=ticking_clock(T0, 0))
    other = snap(
        home,
        OtherConnection({"Note": NOTE_FIELDS}, {"Note": []}),
        ("Note",),
        clock=ticking_clock(datetime(2024, 6, 1, tzinfo=UTC)),
    )
    newest = snap(home, make_fake(), clock=ticking_clock(datetime(2025, 1, 1, tzinfo=UTC)))
    (home.snapshots_dir / ".fake-20990101T000000Z.partial").mkdir()
    (home.snapshots_dir / "fake-20990102T000000Z").mkdir()
    (home.snapshots_dir / "fake-20990103T000000Z").mkdir()
    (home.snapshots_dir / "fake-20990103T000000Z" / "manifest.json").write_text("{not json", "utf-8")

    assert same_second.snapshot_id == "fake-20240506T070809Z-2"
    assert [m.snapshot_id for m in list_snapshots(home)] == [
        first.snapshot_id,
        same_second.snapshot_id,
        other.snapshot_id,
        newest.snapshot_id,
    ]
    assert [m.snapshot_id for m in list_snapshots(home, "other")] == ["other-20240601T000000Z"]
    assert latest_snapshot(home, "fake") == newest
    assert latest_snapshot(home, "nobody") is None


# --- verify ---------------------------------------------------------------------------------------------


@pytest.fixture
def verified(home: Home) -> tuple[Home, Path, str]:
    manifest = snap(home, make_fake(page_size=4, accounts=25), ("Contact", "Account", "Note"))
    return home, home.snapshots_dir / manifest.snapshot_id, manifest.snapshot_id


def test_verify_passes_an_intact_snapshot(verified: tuple[Home, Path, str]) -> None:
    home, _, snapshot_id = verified

    report = verify_snapshot(home, snapshot_id)

    assert (report.ok, report.problems) == (True, [])
    assert report.objects == {"Contact": 3, "Account": 25, "Note": 0}
    assert report.snapshot_id == snapshot_id


def test_verify_detects_a_flipped_byte(verified: tuple[Home, Path, str]) -> None:
    home, folder, snapshot_id = verified
    path = folder / "data" / "Account.parquet"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    report = verify_snapshot(home, snapshot_id)

    assert not report.ok
    assert any("data/Account.parquet has changed since the backup" in p for p in report.problems)
    assert report.objects == {"Contact": 3, "Note": 0}


def test_verify_detects_deleted_and_extra_files(verified: tuple[Home, Path, str]) -> None:
    home, folder, snapshot_id = verified
    (folder / "data" / "Contact.parquet").unlink()
    (folder / "metadata" / "describe" / "Note.json").unlink()
    (folder / "data" / "Stray.parquet").write_bytes(b"x")

    report = verify_snapshot(home, snapshot_id)

    assert not report.ok
    assert report.problems == [
        "data file of Contact data/Contact.parquet is missing",
        "metadata file metadata/describe/Note.json is missing",
        "unexpected file data/Stray.parquet (not listed in the manifest)",
    ]
    assert report.objects == {"Account": 25, "Note": 0}


def test_verify_detects_a_truncated_parquet_file(verified: tuple[Home, Path, str]) -> None:
    home, folder, snapshot_id = verified
    path = folder / "data" / "Account.parquet"
    path.write_bytes(path.read_bytes()[:-100])

    report = verify_snapshot(home, snapshot_id)

    assert not report.ok
    assert any("data/Account.parquet has changed" in p for p in report.problems)
    assert any("data/Account.parquet is not a readable Parquet file" in p for p in report.problems)


def test_verify_reports_a_row_count_that_disagrees_with_the_manifest(verified: tuple[Home, Path, str]) -> None:
    home, folder, snapshot_id = verified
    manifest_path = folder / "manifest.json"
    doc = json.loads(manifest_path.read_text("utf-8"))
    doc["objects"]["Account"]["rows"] = 24
    manifest_path.write_text(json.dumps(doc), "utf-8")

    report = verify_snapshot(home, snapshot_id)

    assert report.problems == ["data file of Account data/Account.parquet holds 25 rows, the manifest says 24"]


def test_verify_reports_a_missing_manifest_and_refuses_an_unknown_id(verified: tuple[Home, Path, str]) -> None:
    home, folder, snapshot_id = verified
    (folder / "manifest.json").unlink()

    report = verify_snapshot(home, snapshot_id)

    assert not report.ok and "manifest.json is missing" in report.problems[0]
    with pytest.raises(BadInput, match="not found"):
        verify_snapshot(home, "fake-19990101T000000Z")


def test_dates_read_back_as_the_dates_written(home: Home) -> None:
    fake = FakeConnector({"Contact": CONTACT_FIELDS}, {"Contact": [{"Id": "003D", "Birthdate": date(1970, 1, 1)}]})
    reader = open_snapshot(home, snap(home, fake).snapshot_id)

    assert reader.record_map("Contact", ["003D"])["003D"]["Birthdate"] == "1970-01-01"


# --- the whole-column fast path agrees with value-by-value conversion ---------------------------------

_utc_datetimes = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
_sf_datetime_text = st.tuples(_utc_datetimes, st.booleans()).map(
    lambda t: f"{t[0].year:04d}" + t[0].strftime("-%m-%dT%H:%M:%S.") + f"{t[0].microsecond // 1000:03d}"
    + ("+0000" if t[1] else "Z")
)
_column_values = {
    FieldKind.STRING: st.one_of(st.text(), st.just("")),
    FieldKind.BOOL: st.one_of(st.booleans(), st.sampled_from(["true", "false", ""])),
    FieldKind.INT: st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(2**63, 2**64), st.just(3.0)),
    FieldKind.FLOAT: st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-10, 10)),
    FieldKind.DATE: st.one_of(st.dates().map(date.isoformat), st.sampled_from(["2019-02-30", "0000-01-01"])),
    FieldKind.DATETIME: st.one_of(_sf_datetime_text, st.just("2019-03-01T12:00:00+01:00")),
}


@pytest.mark.parametrize("kind", list(_column_values))
@given(data=st.data())
def test_fast_column_equals_value_by_value(kind: FieldKind, data: st.DataObject) -> None:
    from crmsweep.backup.snapshot_values import ARROW_TYPES, UnfitValue, fast_column, to_arrow_value

    values = data.draw(st.lists(st.one_of(st.none(), _column_values[kind]), max_size=12))
    fast = fast_column(kind, values)
    try:
        slow = pa.array([to_arrow_value(kind, v) for v in values], type=ARROW_TYPES[kind])
    except UnfitValue:
        assert fast is None, "the fast path took a column value-by-value conversion refuses"
        return
    if fast is not None:
        assert fast.equals(slow), (values, fast, slow)


def test_fast_column_takes_salesforce_shaped_columns_and_leaves_the_rest() -> None:
    from crmsweep.backup.snapshot_values import fast_column

    taken: dict[FieldKind, list[Any]] = {
        FieldKind.STRING: ["a", None, "é"],
        FieldKind.BOOL: [True, None],
        FieldKind.INT: [1, None],
        FieldKind.FLOAT: [1.5, None],
        FieldKind.DATE: ["2019-03-01", None],
        FieldKind.DATETIME: ["2019-03-01T12:00:00.000+0000", "2019-03-01T12:00:00.000Z", None],
    }
    for kind, values in taken.items():
        assert fast_column(kind, values) is not None, kind
    left: dict[FieldKind, list[Any]] = {
        FieldKind.STRING: ["a\ud83d"],
        FieldKind.BOOL: ["true"],
        FieldKind.INT: [True],
        FieldKind.FLOAT: [float("nan")],
        FieldKind.DATE: ["2019-02-30", "0000-01-01"],
        FieldKind.DATETIME: ["2019-03-01T12:00:00+01:00", "0999-01-01T00:00:00.000Z"],
    }
    for kind, values in left.items():
        assert fast_column(kind, values) is None, kind
