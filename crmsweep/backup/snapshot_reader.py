"""Read finished snapshots: list them, open one, and read its objects as frames or canonical records.

Passes read frames (typed columns); apply and restore read canonical records (before-images the CRM
accepts back as they stand). Both read Parquet by column or row group, never more than asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crmsweep.backup import snapshot_layers as layers
from crmsweep.backup import snapshot_layout as layout
from crmsweep.backup.row_block import RowBlock, RowRecord
from crmsweep.backup.snapshot_values import canonical_rows
from crmsweep.cleanup.view import arrow_text_series
from crmsweep.collector import collector_paused
from crmsweep.errors import BadInput
from crmsweep.model import (
    FieldKind,
    FieldSpec,
    ObjectEntry,
    ObjectLayer,
    PlanFormatError,
    Record,
    SnapshotManifest,
)
from crmsweep.paths import Home

_UTC_MS = pa.timestamp("ms", tz="UTC")
# (column name, row numbers or None for all, the file's row count) -> those rows' values as stored, or None
# (`before_images_using`).
HeldColumns = Callable[[str, "np.ndarray | None", int], "pa.Array | None"]


def _column_series(column: pa.ChunkedArray, kind: FieldKind) -> pd.Series:
    if kind is FieldKind.STRING:
        return arrow_text_series(column)
    if kind is FieldKind.BOOL:
        return pd.Series(column.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype()}.get))
    if kind is FieldKind.INT:
        return pd.Series(column.to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get))
    if kind is FieldKind.DECIMAL:
        # Passes compare numbers: the nearest double here; before-images keep the exact text (record_map).
        return pd.Series(pc.cast(column, pa.float64()).to_pandas())
    if kind is FieldKind.DATE:
        # Midnight UTC, so passes compare dates and datetimes without converting.
        return pd.Series(pc.cast(column, _UTC_MS).to_pandas())
    return pd.Series(column.to_pandas())


class SnapshotReader:
    """One finished snapshot. Cheap to make: files are opened only when an object is read.

    An object an incremental backup layered on a base snapshot (`ObjectEntry.layer`) reads through
    every method as the full copy it stands for (`snapshot_layers`)."""

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

    def _damaged(self, what: str, exc: Exception | None = None) -> BadInput:
        said = f" ({exc})" if exc is not None else ""
        return BadInput(
            f"snapshot {self.manifest.snapshot_id!r}: cannot read {what}{said}; "
            f"`crmsweep snapshots verify {self.manifest.snapshot_id}` lists what is damaged"
        )

    @contextmanager
    def _open(self, path: Path, what: str, *, rows: bool = False) -> Iterator[pq.ParquetFile]:
        """`rows`: for reading some rows of many row groups (`_match_rows`), its texts of few distinct
        values decoded as dictionaries (see `_few_distinct_texts`)."""
        try:
            handle = pq.ParquetFile(path)
            few = _few_distinct_texts(handle) if rows else []
            if few:
                metadata = handle.metadata
                handle.close()
                handle = pq.ParquetFile(path, metadata=metadata, read_dictionary=few)
        except (OSError, pa.ArrowException) as exc:
            raise self._damaged(what, exc) from exc
        with handle:
            yield handle

    def _parquet(self, object_name: str, *, rows: bool = False) -> AbstractContextManager[pq.ParquetFile]:
        """The object's own data file (for a layered object: the rows changed since its base)."""
        entry = self._entry(object_name)
        return self._open(self.path / entry.file, entry.file, rows=rows)

    def _base(self, layer: ObjectLayer, *, rows: bool = False) -> AbstractContextManager[pq.ParquetFile]:
        if not layout.is_safe_name(layer.base_snapshot):
            raise self._damaged(f"its base snapshot {layer.base_snapshot!r} (not a snapshot name)")
        what = f"{layer.base_file} of base snapshot {layer.base_snapshot!r} (deleted or moved?)"
        return self._open(self.path.parent / layer.base_snapshot / layer.base_file, what, rows=rows)

    def _deleted(self, layer: ObjectLayer) -> pa.Array:
        try:
            return layers.read_ids(self.path / layer.deleted_file)
        except (OSError, pa.ArrowException) as exc:
            raise self._damaged(layer.deleted_file, exc) from exc

    def table(self, object_name: str, columns: Sequence[str]) -> pa.Table:
        """These columns of every row, as stored (Arrow types), for comparisons that need no pandas."""
        kinds = self._kinds(object_name)
        unknown = [c for c in columns if c not in kinds]
        if unknown:
            raise KeyError(f"{object_name} in snapshot {self.manifest.snapshot_id!r} has no column(s) {unknown}")
        return self._table(object_name, list(dict.fromkeys(columns)))

    def _table(self, object_name: str, columns: list[str]) -> pa.Table:
        entry = self._entry(object_name)
        with self._parquet(object_name) as handle:
            if entry.layer is None:
                return handle.read(columns=columns)
            id_field = self._id_field(object_name, handle)
            wanted = list(dict.fromkeys([*columns, id_field]))
            changed = handle.read(columns=wanted)
        with self._base(entry.layer) as base:
            table = layers.overlay(base.read(columns=wanted), changed, self._deleted(entry.layer), id_field)
        return table.select(columns)

    def frame(self, object_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """Typed columns: dates and datetimes datetime64[ms, UTC], "boolean", "Int64", float64 (FLOAT and
        DECIMAL), Arrow-backed "str" (see `crmsweep.cleanup.view` for why)."""
        kinds = self._kinds(object_name)
        wanted = list(kinds) if columns is None else list(dict.fromkeys(columns))
        table = self.table(object_name, wanted)
        return pd.DataFrame({name: _column_series(table.column(name), kinds[name]) for name in wanted}, columns=wanted)

    def records(self, object_name: str) -> Iterator[Record]:
        """Every row in canonical form, one row group (some thousand rows) in memory at a time."""
        kinds = self._kinds(object_name)
        entry = self._entry(object_name)
        if entry.layer is None:
            with self._parquet(object_name) as handle:
                for group in range(handle.num_row_groups):
                    yield from canonical_rows(handle.read_row_group(group), kinds)
            return
        with self._parquet(object_name) as handle:
            id_field = self._id_field(object_name, handle)
            changed = handle.read()
        deleted = self._deleted(entry.layer)
        changed_ids = changed.column(id_field).combine_chunks()
        with self._base(entry.layer) as base:
            base_ids = base.read(columns=[id_field]).column(0).combine_chunks()
            for group in range(base.num_row_groups):
                rows = base.read_row_group(group)
                # Only the changed rows of this group's ids: nothing is appended to a group.
                here = changed.filter(pc.is_in(changed_ids, value_set=rows.column(id_field).combine_chunks()))
                yield from canonical_rows(layers.overlay(rows, here, deleted, id_field), kinds)
        yield from canonical_rows(changed.filter(pc.invert(pc.is_in(changed_ids, value_set=base_ids))), kinds)

    def record_map(self, object_name: str, ids: Iterable[str]) -> dict[str, Record]:
        """The rows with these ids, in canonical form; ids the snapshot lacks are absent."""
        rows: dict[int, list[Record]] = {}  # per block, its rows as dicts: made at once, not a row at a time
        found: dict[str, Record] = {}
        for rid, image in self.before_images(object_name, ids).items():
            block = rows.get(id(image.block))
            if block is None:
                block = rows[id(image.block)] = image.block.row_dicts()
            found[rid] = block[image.row]
        return found

    def before_images(self, object_name: str, ids: Iterable[str]) -> dict[str, RowRecord]:
        """`record_map`, each row kept column-wise in a block of the rows read together (see `row_block`)."""
        return self._before_images(object_name, ids, None)

    def before_images_using(self, object_name: str, ids: Iterable[str],
                            held: HeldColumns | None) -> dict[str, RowRecord]:
        """`before_images`, taking from `held` the columns a caller has already read whole (a scan's shared
        frames), so that only the others are decoded from Parquet again. `held(name, rows, count)` gives the
        values of column `name` at these row numbers of the file (rows None: every row, the ids to match),
        as stored (its Arrow type), or None when it does not hold them exactly, or not for every row of the
        file (`count` rows). Used only for an object
        stored whole: a layered one's rows are numbered otherwise."""
        if type(self).before_images is not SnapshotReader.before_images:
            # A reader with its own `before_images` (one noting what is read, say) answers through it.
            return self.before_images(object_name, ids)
        return self._before_images(object_name, ids, held)

    def _before_images(self, object_name: str, ids: Iterable[str], held: HeldColumns | None) -> dict[str, RowRecord]:
        kinds = self._kinds(object_name)
        # Repeats need not go: ids are matched as a set, and the rows come in file order.
        wanted = list(ids)
        if set(map(type, wanted)) - {str}:  # a C loop: ids are nearly always text already
            wanted = [i if type(i) is str else str(i) for i in wanted]
        if not wanted:
            return {}
        entry = self._entry(object_name)
        with self._parquet(object_name, rows=True) as handle:
            id_field = self._id_field(object_name, handle)
            rows = _match_rows(handle, id_field, wanted, held if entry.layer is None else None)
            found = _by_id(rows, kinds, id_field)
        if entry.layer is None:
            return found
        # Changed rows stand for their base rows; deleted ids are not in the copy at all.
        gone = set(self._deleted(entry.layer).to_pylist())
        rest = [i for i in wanted if i not in found and i not in gone]
        if rest:
            with self._base(entry.layer, rows=True) as base:
                found.update(_by_id(_match_rows(base, id_field, rest), kinds, id_field))
        return found

    def _id_field(self, object_name: str, handle: pq.ParquetFile) -> str:
        id_field = layers.id_field_of(handle.schema_arrow)
        if id_field not in handle.schema_arrow.names:
            raise KeyError(f"{object_name} in snapshot {self.manifest.snapshot_id!r} has no id column {id_field!r}")
        return id_field


def _match_rows(handle: pq.ParquetFile, id_field: str, wanted: list[str], held: HeldColumns | None = None) -> pa.Table:
    """The rows of one file with these ids, as stored, in file order.

    One pass: the id column (held, or read once) is matched against one hash set of the ids, then each row
    group holding a match is read once (only the columns `held` lacks) and only its matching rows are
    taken. (Matching row group by row group rebuilt the set for each of them: at 1M contacts and 300k ids,
    most of a scan.) The id column is not decoded twice: the matched ids are taken from the one read.
    """
    schema = handle.metadata.schema.to_arrow_schema()  # as stored: `handle` may decode some as dictionaries
    count = handle.metadata.num_rows
    ids: pa.Array | pa.ChunkedArray | None = None if held is None else held(id_field, None, count)
    if ids is None or ids.type != schema.field(id_field).type or len(ids) != count:
        ids = handle.read(columns=[id_field]).column(0)
    hits = pc.indices_nonzero(pc.is_in(ids, value_set=pa.array(wanted, type=pa.string()))).to_numpy()
    if not len(hits):
        return schema.empty_table()
    taken: dict[str, pa.Array | pa.ChunkedArray] = {id_field: ids.take(pa.array(hits, type=pa.int64()))}
    for name in schema.names:
        if held is not None and name not in taken:
            values = held(name, hits, count)
            if values is not None and values.type == schema.field(name).type and len(values) == len(hits):
                taken[name] = values
    others = [name for name in schema.names if name not in taken]
    if others:
        sizes = np.array([handle.metadata.row_group(g).num_rows for g in range(handle.num_row_groups)], np.int64)
        ends = np.cumsum(sizes)
        groups = np.searchsorted(ends, hits, side="right")
        parts = [handle.read_row_groups(chunk, columns=others, use_threads=True).take(rows)
                 for chunk, rows in _row_group_reads(groups, hits, sizes, ends)]
        rest = pa.concat_tables(parts)
        taken.update((name, rest.column(name)) for name in others)
    # A column decoded as a dictionary is cast back to the stored type here, after the take.
    return pa.Table.from_arrays([taken[name] for name in schema.names], schema=schema)


# The rows one read of `_match_rows` decodes at most (in whole row groups): enough that Arrow's threads, a
# column each, pay for handing the columns out (a row group of a few thousand rows a read did not, and
# left the second core idle while the scan waited), few enough that what is read stays small beside the
# rows taken from it.
_ROWS_A_READ = 65_536


def _row_group_reads(groups: np.ndarray, hits: np.ndarray, sizes: np.ndarray, ends: np.ndarray
                     ) -> Iterator[tuple[list[int], pa.Array]]:
    """For rows `hits` (ascending) of row groups `groups` (each hit's): the row groups to read together,
    about `_ROWS_A_READ` rows at a time, and the hits' positions in what that read gives (its groups one
    after the other, so a group without a hit, left out, shifts those after it)."""
    wanted = np.unique(groups)
    at = 0
    while at < len(wanted):
        stop = at + 1
        rows = int(sizes[wanted[at]])
        while stop < len(wanted) and rows + int(sizes[wanted[stop]]) <= _ROWS_A_READ:
            rows += int(sizes[wanted[stop]])
            stop += 1
        chunk = wanted[at:stop]
        # Where each group of the chunk begins in the read, less where it begins in the file.
        shift = np.concatenate([[0], np.cumsum(sizes[chunk])[:-1]]) - (ends[chunk] - sizes[chunk])
        lo, hi = int(np.searchsorted(groups, chunk[0], "left")), int(np.searchsorted(groups, chunk[-1], "right"))
        mine = hits[lo:hi] + shift[np.searchsorted(chunk, groups[lo:hi])]
        yield [int(g) for g in chunk], pa.array(mine, type=pa.int64())
        at = stop


# A text column is decoded as a dictionary (its distinct values once, then a number per row) for `_match_rows`
# when its dictionary pages are at most this share of its bytes: names, cities, owner ids. Where most values
# are distinct (ids, emails) a dictionary is slower than the texts themselves.
_FEW_DISTINCT = 0.2


def _few_distinct_texts(handle: pq.ParquetFile) -> list[str]:
    """The text columns (not the id column) that every row group stores dictionary-encoded, with a small
    dictionary: decoded as dictionaries, then taken, they cost about half of decoding every text."""
    schema, metadata = handle.schema_arrow, handle.metadata
    if not metadata.num_row_groups:
        return []
    id_field = layers.id_field_of(schema)
    paths = {metadata.schema.column(at).path: at for at in range(metadata.num_columns)}
    few: list[str] = []
    for field in schema:
        at = paths.get(field.name)
        if at is None or field.name == id_field or not pa.types.is_string(field.type):
            continue
        chunks = [metadata.row_group(g).column(at) for g in range(metadata.num_row_groups)]
        if not all(chunk.has_dictionary_page and chunk.dictionary_page_offset is not None for chunk in chunks):
            continue
        dictionary = sum(chunk.data_page_offset - chunk.dictionary_page_offset for chunk in chunks)
        if dictionary <= _FEW_DISTINCT * sum(chunk.total_compressed_size for chunk in chunks):
            few.append(field.name)
    return few


def _by_id(table: pa.Table, kinds: dict[str, FieldKind], id_field: str) -> dict[str, RowRecord]:
    block = RowBlock(table, kinds)
    column = block.column(id_field)
    ids = column.to_pylist() if pa.types.is_string(column.type) else [str(i) for i in column.to_pylist()]
    with collector_paused():
        found = dict(zip(ids, block.records(), strict=True))
        if len(found) < len(ids):
            # A file holds each id once; were one there twice, its first row is kept (a dict keeps the last).
            found = {}
            for row, record_id in enumerate(ids):
                found.setdefault(record_id, block.record(row))
    return found


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
