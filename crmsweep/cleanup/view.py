"""What a cleanup pass may see of a snapshot: typed frames for filtering, canonical records for before-images.

`SnapshotView` is the contract the snapshot reader (backup/snapshot.py) implements. `FrameView` is an
in-memory implementation from plain records, for tests and scripts; it converts with exactly the
rules the reader promises, so a pass behaves the same on either:

- DATE and DATETIME columns are `datetime64[ms, UTC]` (a date is midnight UTC),
- BOOL is pandas "boolean" (nullable), INT is "Int64", FLOAT and DECIMAL are float64,
- STRING is pandas 3's "str" column (`TEXT_DTYPE`): Arrow-backed text, missing as NaN.

Why "str" and not `pd.ArrowDtype(pa.string())` or `StringDtype("pyarrow")` (NA semantics): it is what
`pyarrow`'s `to_pandas()` gives, so the reader keeps the text in the Arrow buffers it read (no Python
object per value), and it behaves as the object columns did where passes rely on it: comparisons and
`isin` give plain bool with a missing value False, `notna` is a plain bool mask. It differs in two ways a
pass must mind: a missing value reads as NaN (not None: test with `pd.isna`, never `is None`), and
`astype(str)` keeps it missing instead of writing "None". It cannot hold a lone UTF-16 surrogate; a
backup refuses one (snapshot_values), and so does `FrameView`.

`record_map` returns canonical records (see `crmsweep.model`): dates "YYYY-MM-DD", datetimes
"YYYY-MM-DDTHH:MM:SS.mmmZ", DECIMAL numbers their exact text, every field of the object present (None when
empty). `before_images` returns the same records as read-only Mappings, for the passes to make changes of:
the reader keeps them column-wise (crmsweep/backup/row_block.py), so a scan holds no dict per change;
`FrameView` gives dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crmsweep.decimal_text import decimal_text
from crmsweep.model import (
    FieldKind,
    FieldSpec,
    Record,
    SnapshotManifest,
    canonical_date,
    canonical_datetime,
)

DATETIME_DTYPE: Final = "datetime64[ms, UTC]"
TEXT_DTYPE: Final = pd.StringDtype("pyarrow", na_value=np.nan)


def arrow_text_series(column: pa.Array | pa.ChunkedArray) -> pd.Series:
    """A STRING column from Arrow text as read (null where empty), keeping its buffers: no object per value."""
    if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
        column = column.cast(pa.string())  # an all-null column, a string view
    if isinstance(column, pa.ChunkedArray) and column.num_chunks > 1:
        # One chunk per row group as read: joined once here, `text_array` then takes the column as it is
        # (Arrow would join the chunks again on every match and every take).
        column = column.combine_chunks()
    series: pd.Series = column.to_pandas(types_mapper=lambda _: TEXT_DTYPE)  # wraps the buffers, copies none
    return series


def rows_where(frame: pd.DataFrame, keep: np.ndarray | pd.Series) -> pd.DataFrame:
    """The rows where `keep` is True, numbered from 0. Text columns are filtered in Arrow: pandas takes them
    by row number, three times the cost (a scan filters its people's text columns after every removal).

    `keep` is by position; a boolean Series must be on the frame's own index (pandas would align the other
    columns by label, Arrow the text by position: one record's id beside another's values)."""
    if isinstance(keep, pd.Series):
        if not keep.index.equals(frame.index):
            raise ValueError("rows_where: the mask's index is not the frame's; pass it by position (to_numpy)")
        keep = keep.to_numpy(dtype=bool)
    keep = np.asarray(keep, dtype=bool)
    mask = pa.array(keep)
    columns = [frame.iloc[:, at] for at in range(frame.shape[1])]
    plain = [at for at, column in enumerate(columns) if column.dtype != TEXT_DTYPE]
    rest = frame.iloc[:, plain][keep].reset_index(drop=True) if plain else None
    kept = [
        rest.iloc[:, plain.index(at)] if rest is not None and at in plain
        else arrow_text_series(pa.chunked_array(column.array.__arrow_array__()).filter(mask))
        for at, column in enumerate(columns)
    ]
    out = pd.DataFrame(dict(enumerate(kept)), index=pd.RangeIndex(int(np.count_nonzero(keep))))
    out.columns = frame.columns
    return out


class SnapshotView(Protocol):
    @property
    def manifest(self) -> SnapshotManifest: ...

    def has(self, object_name: str) -> bool:
        """True when the snapshot holds this object (possibly with zero rows)."""
        ...

    def fields(self, object_name: str) -> tuple[FieldSpec, ...]: ...

    def frame(self, object_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The object's rows with typed columns (all fields when `columns` is None)."""
        ...

    def record_map(self, object_name: str, ids: Iterable[str]) -> dict[str, Record]:
        """Canonical records by id; ids the snapshot lacks are absent."""
        ...

    def before_images(self, object_name: str, ids: Iterable[str]) -> Mapping[str, Mapping[str, Any]]:
        """`record_map` for records that become before-images: each equal to its `record_map` dict, read-only,
        possibly held column-wise (`crmsweep.model.BeforeImage`), which a plan writes without a dict."""
        ...


def canonical_value(spec: FieldSpec, value: Any) -> Any:
    """One value in canonical (JSON) form for its field kind."""
    if value is None:
        return None
    if spec.kind is FieldKind.DATE:
        return canonical_date(value)
    if spec.kind is FieldKind.DATETIME:
        return canonical_datetime(value)
    if spec.kind is FieldKind.BOOL:
        return bool(value)
    if spec.kind is FieldKind.INT:
        return int(value)
    if spec.kind is FieldKind.FLOAT:
        return float(value)
    if spec.kind is FieldKind.DECIMAL:
        return decimal_text(value)
    return str(value)


def typed_series(spec: FieldSpec, values: Sequence[Any]) -> pd.Series:
    """A column of canonical values converted to the dtype the snapshot reader guarantees."""
    if spec.kind in (FieldKind.DATE, FieldKind.DATETIME):
        converted = pd.to_datetime(pd.Series(list(values), dtype=object), utc=True, format="ISO8601")
        return converted.astype(DATETIME_DTYPE)
    if spec.kind is FieldKind.BOOL:
        return pd.Series(pd.array(list(values), dtype="boolean"))
    if spec.kind is FieldKind.INT:
        return pd.Series(pd.array(list(values), dtype="Int64"))
    if spec.kind in (FieldKind.FLOAT, FieldKind.DECIMAL):
        return pd.Series([float("nan") if v is None else float(v) for v in values], dtype="float64")
    try:
        return arrow_text_series(pa.array([None if v is None else str(v) for v in values], type=pa.string()))
    except UnicodeEncodeError:
        raise ValueError(
            f"{spec.name} holds a text with a lone UTF-16 surrogate, which a snapshot cannot store either"
        ) from None


class FrameView:
    """A SnapshotView over records held in memory."""

    def __init__(
        self,
        manifest: SnapshotManifest,
        fields: Mapping[str, Sequence[FieldSpec]],
        records: Mapping[str, Sequence[Record]],
        *,
        id_field: str = "Id",
    ) -> None:
        self._manifest = manifest
        self._fields = {obj: tuple(specs) for obj, specs in fields.items()}
        self._id_field = id_field
        self._rows: dict[str, dict[str, Record]] = {}
        strays = sorted(set(records) - set(self._fields))
        if strays:
            raise ValueError(f"records given for {', '.join(strays)} but no field specs")
        for obj, specs in self._fields.items():
            self._rows[obj] = {}
            for raw in records.get(obj, ()):
                record = self._canonical(obj, specs, raw)
                self._rows[obj][str(record[id_field])] = record

    @property
    def manifest(self) -> SnapshotManifest:
        return self._manifest

    def _canonical(self, obj: str, specs: tuple[FieldSpec, ...], raw: Mapping[str, Any]) -> Record:
        known = {s.name for s in specs}
        unknown = sorted(set(raw) - known)
        if unknown:
            # A snapshot only holds described fields; silently dropping these would hide a test mistake.
            raise ValueError(f"{obj} record has fields without a spec: {', '.join(unknown)}")
        if raw.get(self._id_field) is None:
            raise ValueError(f"{obj} record without {self._id_field}")
        return {s.name: canonical_value(s, raw.get(s.name)) for s in specs}

    def _require(self, object_name: str) -> tuple[FieldSpec, ...]:
        try:
            return self._fields[object_name]
        except KeyError:
            raise KeyError(f"{object_name} is not in this snapshot") from None

    def has(self, object_name: str) -> bool:
        return object_name in self._fields

    def fields(self, object_name: str) -> tuple[FieldSpec, ...]:
        return self._require(object_name)

    def frame(self, object_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        specs = {s.name: s for s in self._require(object_name)}
        names = list(specs) if columns is None else list(columns)
        missing = [c for c in names if c not in specs]
        if missing:
            raise KeyError(f"{object_name} has no field {', '.join(missing)} in this snapshot")
        rows = list(self._rows[object_name].values())
        data = {name: typed_series(specs[name], [r[name] for r in rows]) for name in names}
        return pd.DataFrame(data, columns=names)

    def record_map(self, object_name: str, ids: Iterable[str]) -> dict[str, Record]:
        self._require(object_name)
        stored = self._rows[object_name]
        return {rid: dict(stored[rid]) for rid in ids if rid in stored}

    def before_images(self, object_name: str, ids: Iterable[str]) -> Mapping[str, Mapping[str, Any]]:
        return self.record_map(object_name, ids)


class ViewOver:
    """A SnapshotView laid over another: everything but `frame` is the base's own answer. (A before-image
    is what the CRM held when it was backed up, whatever a view over it changes in its frames.)"""

    def __init__(self, base: SnapshotView) -> None:
        self._base = base

    @property
    def manifest(self) -> SnapshotManifest:
        return self._base.manifest

    def has(self, object_name: str) -> bool:
        return self._base.has(object_name)

    def fields(self, object_name: str) -> tuple[FieldSpec, ...]:
        return self._base.fields(object_name)

    def frame(self, object_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        return self._base.frame(object_name, columns)

    def record_map(self, object_name: str, ids: Iterable[str]) -> dict[str, Record]:
        return self._base.record_map(object_name, ids)

    def before_images(self, object_name: str, ids: Iterable[str]) -> Mapping[str, Mapping[str, Any]]:
        return self._base.before_images(object_name, ids)


def holds_text(series: pd.Series) -> bool:
    """Whether the column may hold text: a STRING column, or an object one a script built by hand."""
    return series.dtype == object or isinstance(series.dtype, pd.StringDtype)


def id_set(ids: Iterable[str]) -> pa.Array:
    """Ids as one Arrow array, made once, for `in_ids` to look many columns up in."""
    return pa.array(list(ids), type=pa.string())


def text_array(series: pd.Series) -> pa.Array | None:
    """The column as one Arrow string array, null where empty; None when a value is not text.

    Arrow tests and matches such a column in one call; pandas' `isin` and `notna` on text walk Python
    objects, and its `isin` on a "str" column makes an Arrow scalar of every value looked up."""
    try:
        array = pa.array(series, from_pandas=True)
    except (pa.ArrowException, ArithmeticError, ValueError, TypeError):  # a number among texts, a lone surrogate
        return None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_null(array.type):
        return pa.nulls(len(array), pa.string())
    if pa.types.is_large_string(array.type) or pa.types.is_string_view(array.type):
        return array.cast(pa.string())
    return array if pa.types.is_string(array.type) else None


def text_values(series: pd.Series) -> list[Any]:
    """The column's values as Python objects, None where empty (a STRING column reads NaN there)."""
    text = text_array(series) if holds_text(series) else None
    if text is not None:
        values: list[Any] = text.to_pylist()
        return values
    return [None if v is None or v is pd.NA or (isinstance(v, float) and v != v) else v for v in series.tolist()]


def ids_of(series: pd.Series) -> list[str]:
    """Each value as `str` writes it (ids are never empty): from Arrow at once, not an object per row."""
    return [v if isinstance(v, str) else str(v) for v in text_values(series)]


def id_text(series: pd.Series) -> pa.Array:
    """The column's values as `astype(str)` writes them, null where empty: ids to match as text (made once,
    it can be matched against many id sets; a column already of text is taken as it is, not copied)."""
    text = text_array(series)
    if text is not None:
        return text
    return pa.array(series.astype(str).to_numpy(dtype=object), type=pa.string(), mask=series.isna().to_numpy(bool))


def in_ids(series: pd.Series, ids: pa.Array) -> pd.Series:
    """Per row, whether the value as text is one of `ids` (see `id_set`); an empty cell never is.

    The same answer as `series.astype(str).isin(ids)`, without its cost: pandas makes an Arrow scalar of
    every value in the set on each call, seconds a scan at 300k removed ids (one call per frame read)."""
    hit = pc.fill_null(pc.is_in(id_text(series), value_set=ids), False)
    return pd.Series(hit.to_numpy(zero_copy_only=False), index=series.index, dtype=bool)


def live_frame(view: SnapshotView, object_name: str, columns: Sequence[str], deleted_field: str | None) -> pd.DataFrame:
    """The object's rows minus recycle-bin rows (a snapshot may hold them); only `columns` are returned."""
    names = {s.name for s in view.fields(object_name)}
    with_flag = deleted_field is not None and deleted_field in names
    wanted = list(dict.fromkeys([*columns, deleted_field] if with_flag and deleted_field else columns))
    frame = view.frame(object_name, wanted)
    if with_flag and deleted_field:
        gone = frame[deleted_field].fillna(False).astype(bool).to_numpy()
        if gone.any():  # most snapshots hold none: then the frame is not copied
            frame = rows_where(frame, ~gone)
    return frame.loc[:, list(columns)].reset_index(drop=True)


@runtime_checkable
class MaskedFrames(Protocol):
    """A view whose frames leave some of the base's rows out (crmsweep/cleanup/effects.py), that can also give
    every row with a mask of the ones it leaves out, so a pass filters only the rows it keeps."""

    def masked_frame(self, object_name: str, columns: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray | None]:
        """Every row of these columns as the view holds them, and per row whether `frame` leaves it out (None:
        none)."""
        ...


class LiveColumns:
    """The live rows of one object (`live_frame`'s), with their columns read one at a time, as asked.

    For a pass that tests a column of every row and proposes a few rows or none: `live_frame` filters each
    column it is asked for down to the live rows, and reads them all at once; here `column` is every row of
    the object's frames (rows an earlier pass removes or the recycle bin holds too, `keep` False there), so a
    pass tests it as it is, masks the answer with `keep`, and `frame` takes only the rows it chose. A column
    is read when first asked for: a pass that finds no candidate reads none of the columns it would show."""

    def __init__(self, view: SnapshotView, object_name: str, columns: Sequence[str], deleted_field: str | None) -> None:
        """`columns` (at least one) are read at once, with the recycle-bin flag where the object has it."""
        if not columns:
            raise ValueError("LiveColumns needs a column to count the rows by")
        self._view, self._object = view, object_name
        self._columns: dict[str, pd.Series] = {}
        flag = deleted_field if deleted_field in {s.name for s in view.fields(object_name)} else None
        drop = self._read(list(dict.fromkeys([*columns, *([flag] if flag else [])])))
        keep = np.ones(len(self._columns[columns[0]]), dtype=bool)
        if drop is not None:
            keep &= ~drop
        if flag is not None:
            keep &= ~self._columns[flag].fillna(False).astype(bool).to_numpy()
        keep.setflags(write=False)
        self.keep: np.ndarray = keep  # per row of `column`: live (neither removed nor in the recycle bin)

    def _read(self, names: Sequence[str]) -> np.ndarray | None:
        """Reads these columns; returns which rows the view leaves out (None: none, or a view that leaves out none)."""
        drop = None
        if isinstance(self._view, MaskedFrames):
            frame, drop = self._view.masked_frame(self._object, names)
        else:
            frame = self._view.frame(self._object, names)
        self._columns.update((name, frame[name].reset_index(drop=True)) for name in names)
        return drop

    def column(self, name: str) -> pd.Series:
        """The column over every row (live or not), numbered from 0."""
        if name not in self._columns:
            self._read([name])
        return self._columns[name]

    def frame(self, rows: np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
        """These rows (numbers of `column`'s rows, live ones) of these columns, numbered from 0 as
        `live_frame` numbers its rows."""
        taken = np.asarray(rows, dtype=np.int64)
        names = list(dict.fromkeys(columns))
        return pd.DataFrame({name: self.column(name).iloc[taken].reset_index(drop=True) for name in names},
                            index=pd.RangeIndex(len(taken)), columns=names)
