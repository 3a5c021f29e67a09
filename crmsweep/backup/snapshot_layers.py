"""How a layered (incremental) object reads as a full copy: one rule, shared by the reader, the
incremental writer (which folds a new layer into the last one) and verify.

A layered object is a base data file (a full copy, in the base snapshot), the rows changed since (this
snapshot's own data file) and the ids deleted since (`deleted/<Object>.parquet`). Its rows are the
base's, each changed row in place of the base row with its id, deleted ids left out, and the changed
rows the base lacks after them in their own order: the order a full backup's query returns (records
in creation order), so a pass sees the same rows in the same order either way.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crmsweep.backup.snapshot_values import ID_FIELD_KEY, removed_rows

# Files written before the id field was stored were all of the first provider, whose id field this is.
DEFAULT_ID_FIELD = "Id"


def id_field_of(schema: pa.Schema) -> str:
    raw = (schema.metadata or {}).get(ID_FIELD_KEY)
    return raw.decode("utf-8") if raw else DEFAULT_ID_FIELD


def read_ids(path: Path) -> pa.Array:
    """The one column of a deleted-ids file."""
    table = pq.read_table(path)
    return table.column(0).combine_chunks() if table.num_columns else pa.array([], type=pa.string())


def deleted_table(ids: pa.Array, id_field: str) -> pa.Table:
    schema = pa.schema([pa.field(id_field, pa.string(), nullable=False)], metadata={ID_FIELD_KEY: id_field})
    return pa.table({id_field: ids.cast(pa.string())}, schema=schema)


def _ids(table: pa.Table, id_field: str) -> pa.Array:
    return table.column(id_field).combine_chunks().cast(pa.string())


def overlay(base: pa.Table, changed: pa.Table, deleted: pa.Array, id_field: str) -> pa.Table:
    """`base` with `changed` laid on it and `deleted` ids left out (see the module's rule).
    `changed` holds at most the columns of `base` (it is cast to `base`'s schema)."""
    if not changed.num_rows and not len(deleted):
        return base
    changed = changed.select(base.schema.names).cast(base.schema)
    base_ids = _ids(base, id_field)
    changed_ids = _ids(changed, id_field)
    gone = pa.concat_arrays([changed_ids, deleted.cast(pa.string())])
    keep = pc.invert(pc.is_in(base_ids, value_set=gone))
    kept_at = pc.indices_nonzero(keep).to_numpy().astype(np.int64)
    places = pc.index_in(changed_ids, value_set=base_ids)
    appended = np.arange(base.num_rows, base.num_rows + changed.num_rows, dtype=np.int64)
    changed_at = np.where(pc.is_null(places).to_numpy(zero_copy_only=False), appended,
                          pc.fill_null(places, 0).to_numpy().astype(np.int64))
    combined = pa.concat_tables([base.filter(keep), changed])
    order = np.argsort(np.concatenate([kept_at, changed_at]), kind="stable")
    return combined.take(pa.array(order, type=pa.int64()))


def layered_rows(base_ids: pa.Array, changed_ids: pa.Array, deleted: pa.Array) -> int:
    """How many rows the layered object reads as, from its three id columns alone."""
    gone = pa.concat_arrays([changed_ids.cast(pa.string()), deleted.cast(pa.string())])
    dropped = pc.sum(pc.is_in(base_ids.cast(pa.string()), value_set=gone)).as_py() or 0
    return len(base_ids) - int(dropped) + len(changed_ids)


def layered_removed(base: pa.Table, changed: pa.Table, deleted: pa.Array, id_field: str,
                    deleted_field: str | None) -> int:
    """How many rows of the layered object `deleted_field` marks removed: among the base rows it keeps
    (`base` needs only the id and that field) and among the changed rows."""
    gone = pa.concat_arrays([_ids(changed, id_field), deleted.cast(pa.string())])
    kept = base.filter(pc.invert(pc.is_in(_ids(base, id_field), value_set=gone)))
    return removed_rows(kept, deleted_field) + removed_rows(changed, deleted_field)
