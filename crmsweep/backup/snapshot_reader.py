"""Read finished snapshots: list them, open one, and read its objects as frames or canonical records.

Passes read frames (typed columns); apply and restore read canonical records (before-images the CRM
accepts back as they stand). Both read Parquet by column or row group, never more than asked for.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crmsweep.backup import snapshot_layout as layout
from crmsweep.backup.snapshot_values import ID_FIELD_KEY, canonical_rows
from crmsweep.errors import BadInput
from crmsweep.model import FieldKind, FieldSpec, ObjectEntry, PlanFormatError, Record, SnapshotManifest
from crmsweep.paths import Home

# Used when a file carries no id-field metadata: files written before it existed were all of the first
# provider, whose id field this is (the test fake shares it).
_DEFAULT_ID_FIELD = "Id"
_UTC_MS = pa.timestamp("ms", tz="UTC")


def _column_series(column: pa.ChunkedArray, kind: FieldKind) -> pd.Series:
    if kind is FieldKind.STRING:
        # pandas 3 would make a "str" column with NaN for null; passes test `is None`.
        return pd.Series(column.to_numpy(zero_copy_only=False), dtype=object)
    if kind is FieldKind.BOOL:
        return pd.Series(column.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get))
    if kind is FieldKind.INT:
        return pd.Series(column.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get))
    if kind is FieldKind.DATE:
        # Midnight UTC, so passes compare dates and datetimes without converting.
        return pd.Series(pc.cast(column, _UTC_MS).to_pandas())
    return pd.Series(column.to_pandas())


class SnapshotReader:
    """One finished snapshot. Cheap to make: files are opened only when an object is read."""

    def __init__(self, path: Path, manifest: SnapshotManifest) -> None:
        self.path = path
        self.manifest = manifest

    def has(self, object_name: str) -> bool:
        return object_name in self.manifest.objects

    def _entry(self, object_name: str) -> ObjectEntry:
        try:
            return self.manifest.objects[object_name]
        except KeyError:
            held = ", ".join(sorted(self.manifest.objects)) or "none"
            raise KeyError(
                f"snapshot {self.manifest.snapshot_id!r} holds no object {object_name!r} (it holds: {held})"
            ) from None

    def fields(self, object_name: str) -> tuple[FieldSpec, ...]:
        return self._entry(object_name).fields

    def _kinds(self, object_name: str) -> dict[str, FieldKind]:
        return {spec.name: spec.kind for spec in self.fields(object_name)}

    @contextmanager
    def _parquet(self, object_name: str) -> Iterator[pq.ParquetFile]:
        entry = self._entry(object_name)
        path = self.path / entry.file
        try:
            handle = pq.ParquetFile(path)
        except (OSError, pa.ArrowException) as exc:
            raise BadInput(
                f"snapshot {self.manifest.snapshot_id!r}: cannot read {entry.file} ({exc}); "
                f"`crmsweep snapshots verify {self.manifest.snapshot_id}` lists what is damaged"
            ) from exc
        with handle:
            yield handle

    def frame(self, object_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Typed columns: dates and datetimes datetime64[ms, UTC], "boolean", "Int64", float64, object."""
        kinds = self._kinds(object_name)
        wanted = list(kinds) if columns is None else list(dict.fromkeys(columns))
        unknown = [c for c in wanted if c not in kinds]
        if unknown:
            raise KeyError(f"{object_name} in snapshot {self.manifest.snapshot_id!r} has no column(s) {unknown}")
        with self._parquet(object_name) as handle:
            table = handle.read(columns=wanted)
        return pd.DataFrame({name: _column_series(table.column(name), kinds[name]) for name in wanted}, columns=wanted)

    def records(self, object_name: str) -> Iterator[Record]:
        """Every row in canonical form, one row group (some thousand rows) in memory at a time."""
        kinds = self._kinds(object_name)
        with self._parquet(object_name) as handle:
            for group in range(handle.num_row_groups):
                yield from canonical_rows(handle.read_row_group(group), kinds)

    def record_map(self, object_name: str, ids: Iterable[str]) -> dict[str, Record]:
        """The rows with these ids, in canonical form; ids the snapshot lacks are absent.

        One pass: the id column is read once and matched against one hash set of the ids, then each row
        group holding a match is read once and only its matching rows are converted. (Matching row group
        by row group rebuilt the set for each of them: at 1M contacts and 300k ids, most of a scan.)
        """
        kinds = self._kinds(object_name)
        wanted = list(dict.fromkeys(str(i) for i in ids))
        if not wanted:
            return {}
        found: dict[str, Record] = {}
        with self._parquet(object_name) as handle:
            id_field = self._id_field(object_name, handle)
            hits = pc.indices_nonzero(
                pc.is_in(handle.read(columns=[id_field]).column(0), value_set=pa.array(wanted, type=pa.string()))
            ).to_numpy()
            if not len(hits):
                return found
            ends = np.cumsum([handle.metadata.row_group(g).num_rows for g in range(handle.num_row_groups)])
            groups = np.searchsorted(ends, hits, side="right")
            for group in np.unique(groups):
                start = int(ends[group - 1]) if group else 0
                rows = pa.array(hits[groups == group] - start, type=pa.int64())
                for record in canonical_rows(handle.read_row_group(int(group)).take(rows), kinds):
                    # A snapshot holds each id once; were one there twice, its first row would be kept.
                    found.setdefault(str(record[id_field]), record)
        return found

    def _id_field(self, object_name: str, handle: pq.ParquetFile) -> str:
        metadata = handle.schema_arrow.metadata or {}
        raw = metadata.get(ID_FIELD_KEY)
        id_field = raw.decode("utf-8") if raw else _DEFAULT_ID_FIELD
        if id_field not in handle.schema_arrow.names:
            raise KeyError(f"{object_name} in snapshot {self.manifest.snapshot_id!r} has no id column {id_field!r}")
        return id_field


def open_snapshot(home: Home, snapshot_id: str) -> SnapshotReader:
    """A reader for a finished snapshot; BadInput if it is unknown or incomplete."""
    folder, manifest = layout.load_manifest(home.snapshots_dir, snapshot_id)
    return SnapshotReader(folder, manifest)


def list_snapshots(home: Home, connection: str | None = None) -> list[SnapshotManifest]:
    """Finished snapshots (valid manifest), oldest first; partial and broken folders are skipped."""
    found: list[SnapshotManifest] = []
    for folder in home.snapshots_dir.iterdir():
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        try:
            manifest = layout.read_manifest(folder)
        except (OSError, UnicodeDecodeError, PlanFormatError):
            continue
        if connection is None or manifest.connection == connection:
            found.append(manifest)
    # Same-second snapshots differ by "-2", "-3"...: the length keeps "-10" after "-9".
    return sorted(found, key=lambda m: (m.started, len(m.snapshot_id), m.snapshot_id))


def latest_snapshot(home: Home, connection: str) -> SnapshotManifest | None:
    snapshots = list_snapshots(home, connection)
    return snapshots[-1] if snapshots else None


def unfinished_snapshots(home: Home, connection: str | None = None) -> list[layout.Unfinished]:
    """Backups still running, and partial folders that dead ones left (the next backup of their
    connection removes those)."""
    return layout.unfinished(home.snapshots_dir, connection)
