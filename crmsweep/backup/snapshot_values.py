"""Value conversion between the CRM's API values, Arrow columns and canonical record values. Pure: no I/O.

API values arrive loosely typed (numbers as strings, datetimes in two offset spellings); the Parquet
columns are strictly typed so pandas, DuckDB or Spark read them as they are; reading back gives the
canonical form (see `crmsweep.model`) that the CRM accepts as a before-image.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crmsweep.decimal_text import DECIMAL_PATTERN, decimal_text
from crmsweep.errors import ConnectorError
from crmsweep.model import FieldKind, FieldSpec, Record, canonical_date, canonical_datetime

ARROW_TYPES: Mapping[FieldKind, pa.DataType] = {
    FieldKind.STRING: pa.string(),
    FieldKind.BOOL: pa.bool_(),
    FieldKind.INT: pa.int64(),
    FieldKind.FLOAT: pa.float64(),
    FieldKind.DECIMAL: pa.string(),
    FieldKind.DATE: pa.date32(),
    FieldKind.DATETIME: pa.timestamp("ms", tz="UTC"),
}

# Parquet key-value metadata naming the object's id field, so a reader finds it without the connector.
ID_FIELD_KEY = b"crmsweep.id_field"

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_SHOWN_VALUE_CHARS = 60
# Arrow's %S prints the fraction its unit holds: milliseconds here, so "...:SS.mmmZ".
_CANONICAL_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


_WRONG_TYPE_ADVICE = (
    "the CRM sent a value of another type than its describe promises; leave this object out of the backup and "
    "report it"
)


class UnfitValue(ValueError):
    """An API value that does not fit its field's kind. `advice` tells the admin what to do about it."""

    def __init__(self, problem: str, advice: str = _WRONG_TYPE_ADVICE) -> None:
        super().__init__(problem)
        self.advice = advice


def arrow_schema(specs: Sequence[FieldSpec], *, id_field: str | None) -> pa.Schema:
    metadata = {ID_FIELD_KEY: id_field.encode("utf-8")} if id_field else None
    return pa.schema([pa.field(s.name, ARROW_TYPES[s.kind], nullable=True) for s in specs], metadata=metadata)


def removed_rows(rows: pa.RecordBatch | pa.Table, deleted_field: str | None) -> int:
    """How many of `rows` the deleted field marks removed (a null flag is live, as the
    writer's `_live_ids` reads it)."""
    if not deleted_field or deleted_field not in rows.schema.names:
        return 0
    flags = rows.column(deleted_field)
    if pa.types.is_boolean(flags.type):
        return int(pc.sum(pc.fill_null(flags, False)).as_py() or 0)
    return sum(1 for flag in flags.to_pylist() if flag)


# --- API value -> Arrow-ready Python value ------------------------------------------------------------


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise UnfitValue("not a boolean")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise UnfitValue("a boolean is not an integer")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float | str | Decimal):
        # Decimal, not float: "12345678901234567" must not lose its last digits on the way.
        try:
            exact = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
        except InvalidOperation:
            raise UnfitValue("not a number") from None
        if not exact.is_finite() or exact != exact.to_integral_value():
            raise UnfitValue("not a whole number")
        number = int(exact)
    else:
        raise UnfitValue("not an integer")
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise UnfitValue("outside the 64-bit integer range")
    return number


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise UnfitValue("a boolean is not a number")
    if isinstance(value, int | float | Decimal):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise UnfitValue("not a number") from None
    else:
        raise UnfitValue("not a number")
    # Canonical JSON has no NaN or infinity, so such a value could never be written back.
    if not math.isfinite(number):
        raise UnfitValue("not a finite number")
    return number


def _to_decimal(value: Any) -> str:
    try:
        return decimal_text(value)
    except ValueError as exc:
        raise UnfitValue(str(exc)) from None


def _to_datetime(value: Any) -> datetime:
    if not isinstance(value, str | datetime):
        raise UnfitValue("not a datetime")
    try:
        text = canonical_datetime(value)
    except ValueError:
        raise UnfitValue("not an ISO 8601 datetime") from None
    assert text is not None
    # Through the canonical text, so the stored instant is exactly the one fingerprints compare on.
    return datetime.fromisoformat(text[:-1] + "+00:00")


def _to_date(value: Any) -> date:
    if isinstance(value, datetime) or (isinstance(value, str) and "T" in value):
        # Some APIs send a date as midnight UTC; any other time of day would be silently dropped.
        moment = _to_datetime(value)
        if moment.time() != time(0):
            raise UnfitValue("a datetime that is not midnight UTC is not a date")
        return moment.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise UnfitValue("not a YYYY-MM-DD date") from None
    raise UnfitValue("not a date")


def _check_utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # JSON can carry half of a UTF-16 pair (\ud83d); UTF-8, and so Parquet, cannot hold it. Replacing it
        # would change the value a restore writes back, so the backup stops instead, naming the record.
        raise UnfitValue(
            "a text with a lone UTF-16 surrogate (half of an emoji), which UTF-8 cannot store",
            "fix that text in the CRM, or leave this object out of the backup, and run the backup again",
        ) from None


def to_arrow_value(kind: FieldKind, value: Any) -> Any:
    """The value to put in a column of `kind`; None for null. Raises UnfitValue."""
    if value is None:
        return None
    if kind is FieldKind.STRING:
        if not isinstance(value, str):
            raise UnfitValue("not a string")
        if not value.isascii():
            _check_utf8(value)
        return value
    if isinstance(value, str) and not value.strip():
        # A blank number, date or flag means "no value"; APIs that type everything as text send "".
        return None
    if kind is FieldKind.BOOL:
        return _to_bool(value)
    if kind is FieldKind.INT:
        return _to_int(value)
    if kind is FieldKind.FLOAT:
        return _to_float(value)
    if kind is FieldKind.DECIMAL:
        return _to_decimal(value)
    if kind is FieldKind.DATE:
        return _to_date(value)
    return _to_datetime(value)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN_VALUE_CHARS else text[: _SHOWN_VALUE_CHARS - 3] + "..."


def page_to_batch(
    object_name: str, specs: Sequence[FieldSpec], schema: pa.Schema, page: Sequence[Record], *, id_field: str
) -> pa.RecordBatch:
    """One API page as one typed RecordBatch; a value that does not fit stops the backup, named."""
    arrays = []
    for spec in specs:
        values = [row.get(spec.name) for row in page]
        array = fast_column(spec.kind, values)
        if array is None:
            array = _fitted_column(object_name, spec, values, [row.get(id_field) for row in page])
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def text_batch_to_batch(
    object_name: str, specs: Sequence[FieldSpec], schema: pa.Schema, batch: pa.RecordBatch, *, id_field: str
) -> pa.RecordBatch:
    """A batch of text columns (one per spec, in order; null for no value, as a Bulk CSV reads) as one
    typed RecordBatch, with exactly the values `page_to_batch` gives for the same texts as records: each
    column cast by Arrow when every value has the shape that cast reads exactly, else value by value."""
    arrays = []
    for spec, column in zip(specs, batch.columns, strict=True):
        array = text_column(spec.kind, column)
        if array is None:
            values = column.to_pylist()
            array = fast_column(spec.kind, values)
            if array is None:
                ids = batch.column(id_field).to_pylist() if id_field in batch.schema.names else [None] * len(values)
                array = _fitted_column(object_name, spec, values, ids)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def _fitted_column(object_name: str, spec: FieldSpec, values: Sequence[Any], ids: Sequence[Any]) -> pa.Array:
    return pa.array([_fitted(object_name, spec, record_id, raw) for record_id, raw in zip(ids, values, strict=True)],
                    type=ARROW_TYPES[spec.kind])


def _fitted(object_name: str, spec: FieldSpec, record_id: Any, raw: Any) -> Any:
    try:
        return to_arrow_value(spec.kind, raw)
    except UnfitValue as exc:
        raise ConnectorError(
            f"{object_name}.{spec.name} of record {record_id!r} holds {_shown(raw)}, "
            f"{exc} ({spec.kind.value} field, provider type {spec.provider_type!r}): {exc.advice}"
        ) from None


# Texts a whole-column cast reads exactly as `to_arrow_value` reads them one by one (anything else, e.g.
# "TRUE", " 5", "1e3", "nan", goes value by value): Python's int() and float() agree with Arrow's casts
# on these, and float() and Arrow both round a decimal text to the nearest double.
_INT_TEXT = r"^-?[0-9]{1,18}$"
_FLOAT_TEXT = r"^-?[0-9]{1,300}(\.[0-9]{1,300})?$"
_BOOL_TEXTS = pa.array(["true", "false"])


def _every(mask: pa.Array) -> bool:
    return bool(pc.all(mask, min_count=0).as_py())  # nulls (no value) skipped; an empty column passes


def text_column(kind: FieldKind, texts: pa.Array) -> pa.Array | None:
    """A column of text (null for no value) as `kind`, converted by Arrow in a few vectorised calls, when
    every value has a shape whose cast is exact; None otherwise (the caller then goes value by value)."""
    try:
        if kind is FieldKind.STRING:
            return texts
        if kind is FieldKind.BOOL and _every(pc.is_in(texts, value_set=_BOOL_TEXTS)):
            return pc.equal(texts, "true")
        if kind is FieldKind.INT and _every(pc.match_substring_regex(texts, _INT_TEXT)):
            return pc.cast(texts, pa.int64())
        if kind is FieldKind.FLOAT and _every(pc.match_substring_regex(texts, _FLOAT_TEXT)):
            numbers = pc.cast(texts, pa.float64())
            return numbers if _every(pc.is_finite(numbers)) else None
        if kind is FieldKind.DECIMAL and _every(pc.match_substring_regex(texts, DECIMAL_PATTERN)):
            return texts  # kept as written: the text is the value
        if kind is FieldKind.DATE and _every(pc.match_substring_regex(texts, r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}$")):
            return pc.cast(texts, pa.date32())
        if kind is FieldKind.DATETIME and _every(pc.match_substring_regex(
                texts, r"^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}(Z|\+0000)$")):
            return pc.cast(texts, ARROW_TYPES[FieldKind.DATETIME])
    except (pa.ArrowException, OverflowError, ValueError):
        return None  # e.g. an impossible date: named value by value
    return None


# The providers' own datetime spellings (+0000, Z): the only ones the whole-column cast takes (others go
# value by value).
_DATETIME_SHAPES = ((28, "+0000"), (24, "Z"))


def fast_column(kind: FieldKind, values: Sequence[Any]) -> pa.Array | None:
    """The whole column converted by Arrow in one call, when every value already has the exact shape
    `to_arrow_value` would accept unchanged; None otherwise (the caller then converts value by value,
    which also names any value that does not fit). Per-value conversion is most of a backup's time."""
    present = [v for v in values if v is not None]
    try:
        if kind is FieldKind.STRING and all(type(v) is str for v in present):
            return pa.array(values, type=pa.string())
        if kind is FieldKind.BOOL and all(type(v) is bool for v in present):
            return pa.array(values, type=pa.bool_())
        if kind is FieldKind.INT and all(type(v) is int for v in present):
            return pa.array(values, type=pa.int64())
        if kind is FieldKind.FLOAT and all(type(v) is float and math.isfinite(v) for v in present):
            return pa.array(values, type=pa.float64())
        if kind is FieldKind.DECIMAL and all(type(v) is str for v in present):
            return text_column(kind, pa.array(values, type=pa.string()))
        # Years 1000-9999 only: Arrow takes year 0 and below, which Python cannot read back.
        if kind is FieldKind.DATE and all(type(v) is str and len(v) == 10 and v[:1] != "0" for v in present):
            return pa.array(values, type=pa.string()).cast(pa.date32())
        if kind is FieldKind.DATETIME and all(
            type(v) is str and v[:1] != "0" and any(len(v) == n and v.endswith(end) for n, end in _DATETIME_SHAPES)
            for v in present
        ):
            return pa.array(values, type=pa.string()).cast(pa.timestamp("ms", tz="UTC"))
    except (pa.ArrowException, UnicodeEncodeError, OverflowError, ValueError):
        return None  # e.g. a lone surrogate, an int beyond 64 bits, an impossible date: named value by value
    return None


# --- Arrow -> canonical record values -----------------------------------------------------------------


def canonical_value(kind: FieldKind, value: Any) -> Any:
    """A value as `pyarrow` gives it back (`to_pylist`), in the canonical form the CRM accepts."""
    if value is None:
        return None
    if kind is FieldKind.DATE:
        return canonical_date(value)
    if kind is FieldKind.DATETIME:
        return canonical_datetime(value if value.tzinfo else value.replace(tzinfo=UTC))
    if kind is FieldKind.FLOAT:
        return float(value)
    return value


def canonical_column(column: pa.ChunkedArray | pa.Array, kind: FieldKind) -> pa.ChunkedArray | pa.Array:
    """A column of `kind` as its canonical values: dates and datetimes as their canonical text."""
    # Dates and datetimes are formatted column at a time: the same text as `canonical_date` /
    # `canonical_datetime`, an order of magnitude faster than per value in Python.
    if kind is FieldKind.DATETIME:
        return _arrow_text(column, pa.timestamp("ms", tz="UTC")) or pc.strftime(
            column, format=_CANONICAL_DATETIME_FORMAT)
    if kind is FieldKind.DATE:
        return _arrow_text(column, pa.date32()) or pc.cast(column, pa.string())
    return column


_MS_A_DAY = 86_400_000
# 0001-01-01 and 9999-12-31 in days since the epoch: the years the canonical texts write with four digits.
_FIRST_DAY, _LAST_DAY = -719_162, 2_932_896


def _arrow_text(column: pa.ChunkedArray | pa.Array, kind: pa.DataType) -> pa.Array | None:
    """A date32 or timestamp[ms, UTC] column's canonical texts made by numpy from its numbers (Arrow's
    strftime and cast to text cost 1-2 us a value: most of reading a block of before-images); None when it
    is of another type or holds a year outside 1-9999, which Arrow's own formatting then writes."""
    if column.type != kind:
        return None
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    numbers = pc.fill_null(array.cast(pa.int32() if kind == pa.date32() else pa.int64()), 0).to_numpy().astype(np.int64)
    days, ms = (numbers, None) if kind == pa.date32() else np.divmod(numbers, _MS_A_DAY)
    if len(days) and (days.min() < _FIRST_DAY or days.max() > _LAST_DAY):
        return None
    # In 32 bits from here (numpy's arithmetic on narrower numbers is the faster): every day of years 1-9999
    # and every millisecond of a day fits.
    days = days.astype(np.int32)
    ms = None if ms is None else ms.astype(np.int32)
    # Days since the epoch to the civil date (H. Hinnant's algorithm), for every value at once.
    z = days + 719_468
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    if len(year) and (year.min() < 1 or year.max() > 9999):
        return None
    width = 10 if ms is None else 24
    text = np.empty((len(numbers), width), dtype=np.uint8)
    _digits(text, 0, year, 4)
    text[:, 4] = text[:, 7] = ord("-")
    _digits(text, 5, month, 2)
    _digits(text, 8, day, 2)
    if ms is not None:
        text[:, 10], text[:, 13], text[:, 16], text[:, 19], text[:, 23] = (ord(c) for c in "T::.Z")
        _digits(text, 11, ms // 3_600_000, 2)
        _digits(text, 14, ms // 60_000 % 60, 2)
        _digits(text, 17, ms // 1000 % 60, 2)
        _digits(text, 20, ms % 1000, 3)
    offsets = np.arange(0, width * (len(numbers) + 1), width, dtype=np.int32)
    texts = pa.StringArray.from_buffers(len(numbers), pa.py_buffer(offsets), pa.py_buffer(text))
    return pc.if_else(pc.is_valid(array), texts, pa.scalar(None, pa.string())) if array.null_count else texts


def _digits(text: np.ndarray, start: int, numbers: np.ndarray, width: int) -> None:
    # The narrowest type that holds the numbers (each is below 10**width): numpy divides many at once then.
    numbers = numbers.astype(np.uint8 if width <= 2 else np.uint16)
    for at in range(width):
        text[:, start + width - 1 - at] = numbers // 10**at % 10 + ord("0")


def canonical_table(table: pa.Table, kinds: Mapping[str, FieldKind]) -> pa.Table:
    """`table` with each column cast to the Arrow type whose Python values are its canonical values
    (dates and datetimes as their canonical text; the other kinds as stored)."""
    names = table.column_names
    return pa.Table.from_arrays([canonical_column(table.column(at), kinds[name]) for at, name in enumerate(names)],
                                names=names)


def canonical_rows(table: pa.Table, kinds: Mapping[str, FieldKind]) -> list[Record]:
    """Every row of `table` as a canonical record, columns in table order."""
    names = table.column_names
    columns = [column.to_pylist() for column in canonical_table(table, kinds).columns]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
