"""Before-images read from a snapshot, kept column-wise: a `RowBlock` of matched rows, a `RowRecord` per row.

A scan proposes hundreds of thousands of changes, each carrying its record's full before-image. As one
dict each they were most of a scan's memory (2 KB a change) and of its time (building them, then
encoding each for the plan). A block holds the rows of one read as one Arrow table, already in canonical
form where that is a whole-column cast (dates and datetimes as their canonical text); a record is the
block and a row number. Reading a field of many records (a protection's created date, a label) turns
that one column into Python values once; writing a plan asks the block for the canonical JSON of many
rows at once (`row_json`). Every value is the one `snapshot_values.canonical_rows` gives for the row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import repeat
from typing import Any, TypeVar

import pyarrow as pa

from crmsweep.backup.row_json import canonical_json_array, canonical_json_bytes, canonical_json_columns
from crmsweep.backup.snapshot_values import canonical_table
from crmsweep.model import BeforeImage, FieldKind, ImageBlock, Record

_T = TypeVar("_T")
# Reads of one column, one value at a time, after which the whole column is turned into Python values:
# a few whole-record reads stay cheap in memory, a field read for every change stays cheap in time.
_SCALAR_READS = 64


def _one_chunk_each(table: pa.Table) -> pa.Table:
    """`table` with every column in one chunk. Arrow leaves a text column of more than 2 GiB in several
    (32-bit offsets): that one is held with 64-bit offsets, so a column read covers every row."""
    if all(column.num_chunks <= 1 for column in table.columns):
        return table
    columns = [column if column.num_chunks <= 1 else _large(column).combine_chunks() for column in table.columns]
    return pa.Table.from_arrays(columns, names=table.column_names)


def _large(column: pa.ChunkedArray) -> pa.ChunkedArray:
    if pa.types.is_string(column.type):
        return column.cast(pa.large_string())
    if pa.types.is_binary(column.type):
        return column.cast(pa.large_binary())
    return column


class RowBlock(ImageBlock):
    """Rows of one object, read together from a snapshot, in canonical form."""

    def __init__(self, table: pa.Table, kinds: Mapping[str, FieldKind]) -> None:
        self.table = _one_chunk_each(canonical_table(table, kinds).combine_chunks())
        self.names: tuple[str, ...] = tuple(self.table.column_names)
        self._index = {name: at for at, name in enumerate(self.names)}
        self._values: dict[str, list[Any]] = {}
        self._reads: dict[str, int] = {}
        self._derived: dict[Any, Any] = {}

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def record(self, row: int) -> RowRecord:
        return RowRecord(self, row)

    def records(self) -> list[RowRecord]:
        # map, not a comprehension calling `record`: a block may hold hundreds of thousands of rows.
        return list(map(RowRecord, repeat(self, self.table.num_rows), range(self.table.num_rows)))

    def column(self, name: str) -> pa.Array:
        """One column as stored in the block (canonical Arrow values). KeyError for a name it lacks."""
        return self.table.column(self._index[name]).chunk(0) if self.table.num_rows else pa.array(
            [], type=self.table.schema.field(name).type)

    def values(self, name: str) -> list[Any]:
        """One column as Python values, made once."""
        values = self._values.get(name)
        if values is None:
            values = self._values[name] = self.column(name).to_pylist()
        return values

    def value(self, name: str, row: int) -> Any:
        values = self._values.get(name)
        if values is not None:
            return values[row]
        reads = self._reads.get(name, 0) + 1
        self._reads[name] = reads
        if reads > _SCALAR_READS:
            return self.values(name)[row]
        return self.table.column(self._index[name])[row].as_py()

    def row_dicts(self) -> list[Record]:
        """Every row as a plain dict (what `canonical_rows` gives), made a column at a time."""
        names = self.names
        columns = [column.to_pylist() for column in self.table.columns]
        return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]

    def row_dict(self, row: int) -> Record:
        record: Record = self.table.slice(row, 1).to_pylist()[0]
        return record

    def derived(self, key: Any, make: Callable[[RowBlock], _T]) -> _T:
        """`make(self)`, made once per key: what a caller computes for every row of the block at once."""
        if key not in self._derived:
            self._derived[key] = make(self)
        made: _T = self._derived[key]
        return made

    def canonical_json_bytes(self, rows: Sequence[int]) -> list[bytes]:
        return canonical_json_bytes(self._rows(rows))

    def canonical_json_array(self, rows: Sequence[int]) -> pa.Array | None:
        return canonical_json_array(self._rows(rows))

    def canonical_json_columns(self, rows: Sequence[int]) -> tuple[pa.Array, list[tuple[str, bytes]]] | None:
        return canonical_json_columns(self._rows(rows))

    def _rows(self, rows: Sequence[int]) -> pa.Table:
        """The block's rows at these positions; a run of rows in order (as a plan's batch mostly is) by a slice."""
        if rows and rows[-1] - rows[0] + 1 == len(rows) and list(rows) == list(range(rows[0], rows[-1] + 1)):
            return self.table.slice(rows[0], len(rows))
        return self.table.take(pa.array(rows, type=pa.int64()))


class RowRecord(BeforeImage):
    """One row of a `RowBlock`, read as its canonical record (a read-only Mapping)."""

    # Plain slots, not properties: a scan reads both of each of its hundreds of thousands of records (to
    # group them by block), and a property is a function call each time.
    __slots__ = ("block", "row")
    block: RowBlock
    row: int

    def __init__(self, block: RowBlock, row: int) -> None:
        self.block = block
        self.row = row

    def __getitem__(self, key: str) -> Any:
        if key not in self.block._index:
            raise KeyError(key)
        return self.block.value(key, self.row)

    def get(self, key: str, default: Any = None) -> Any:
        if key not in self.block._index:
            return default
        return self.block.value(key, self.row)

    def __contains__(self, key: object) -> bool:
        return key in self.block._index

    def __iter__(self) -> Iterator[str]:
        return iter(self.block.names)

    def __len__(self) -> int:
        return len(self.block.names)

    def record(self) -> Record:
        return self.block.row_dict(self.row)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RowRecord):
            return self.record() == other.record()
        if isinstance(other, Mapping):
            return self.record() == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"RowRecord({self.record()!r})"


def field_values(records: Sequence[Mapping[str, Any]], name: str, *, required: bool = False,
                 rows: tuple[RowBlock, list[int]] | None = None) -> list[Any]:
    """`record.get(name)` of each record (`record[name]` when `required`: KeyError where one lacks it); the
    rows of one block read from its column at once (`rows`: their `block_rows`, when known)."""
    rows = rows or block_rows(records)
    if rows is not None and name in rows[0].names:
        block, at = rows
        values: list[Any] = block.column(name).take(pa.array(at, type=pa.int64())).to_pylist()
        return values
    return [record[name] if required else record.get(name) for record in records]


def block_rows(records: Sequence[Mapping[str, Any]]) -> tuple[RowBlock, list[int]] | None:
    """(their block, their rows) when every record is a row of one block (as a pass's changes mostly are)."""
    if not records or type(records[0]) is not RowRecord:
        return None
    block = records[0].block
    rows = []
    for record in records:
        if type(record) is not RowRecord or record.block is not block:
            return None
        rows.append(record.row)
    return block, rows
