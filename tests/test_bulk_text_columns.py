"""A Bulk result's text columns typed by Arrow (`text_batch_to_batch`) hold exactly what the record path
gives for the same CSV texts (the bulk reader's converters, then `page_to_batch`), value for value, and a
value that fits no kind still stops the backup naming its record."""

from __future__ import annotations

import random

import pyarrow as pa
import pytest

from crmsweep.backup.snapshot_values import arrow_schema, page_to_batch, text_batch_to_batch
from crmsweep.connectors.salesforce_bulk_query import _CONVERTERS, _column
from crmsweep.errors import ConnectorError
from crmsweep.model import FieldKind, FieldSpec

_r = random.Random(8)
TEXTS: dict[FieldKind, list[str | None]] = {
    FieldKind.STRING: ["plain", None, "Ünïcode, \"quoted\"\nsecond line", " lead", "#N/A", "0", "true"],
    FieldKind.BOOL: ["true", "false", None, "false"],
    FieldKind.INT: ["0", "-0", "007", "-42", "9223372036854775807", None, "12"],
    FieldKind.FLOAT: ["250000.0", "0.1", "-3.14159", "1", None, "123456789012345678.25",
                      *(f"{_r.randint(0, 10**9)}.{_r.randint(0, 10**12):012d}" for _ in range(300))],
    FieldKind.DATE: ["2024-02-29", "1000-01-01", None, "9999-12-31"],
    FieldKind.DATETIME: ["2024-01-01T10:00:00.000Z", "1999-12-31T23:59:59.999+0000", None],
}
# Texts no whole-column cast takes: each column then goes value by value, as REST pages do.
ODD: dict[FieldKind, list[str | None]] = {
    FieldKind.BOOL: ["TRUE", " false ", None],
    FieldKind.INT: ["1.0", " 5 ", "-9223372036854775808", None],
    FieldKind.FLOAT: ["1e3", " 2.5", "-.5", None],
    FieldKind.DATE: ["2024-01-01T00:00:00.000Z", None],
    FieldKind.DATETIME: ["2024-01-01T10:00:00Z", "2024-01-01T10:00:00.123456+00:00", None],
}


def _both(kind: FieldKind, texts: list[str | None]) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    ids = [f"003{n:015d}" for n in range(len(texts))]
    specs = [FieldSpec(name="Id", kind=FieldKind.STRING, provider_type="id", nillable=False),
             FieldSpec(name="Value", kind=kind, provider_type=kind.value)]
    schema = arrow_schema(specs, id_field="Id")
    batch = pa.RecordBatch.from_arrays([pa.array(ids, pa.string()), pa.array(texts, pa.string())],
                                       names=["Id", "Value"])
    converted = _column(list(texts), _CONVERTERS.get(kind))
    records = [{"Id": i, "Value": v} for i, v in zip(ids, converted, strict=True)]
    return (text_batch_to_batch("Contact", specs, schema, batch, id_field="Id"),
            page_to_batch("Contact", specs, schema, records, id_field="Id"))


@pytest.mark.parametrize("kind", list(TEXTS))
def test_arrow_typed_columns_equal_the_record_path(kind: FieldKind) -> None:
    typed, reference = _both(kind, TEXTS[kind])
    assert typed.column(1).to_pylist() == reference.column(1).to_pylist()
    assert typed.schema == reference.schema


@pytest.mark.parametrize("kind", list(ODD))
def test_odd_texts_go_value_by_value_to_the_same_values(kind: FieldKind) -> None:
    typed, reference = _both(kind, ODD[kind])
    assert typed.column(1).to_pylist() == reference.column(1).to_pylist()


def test_a_value_that_fits_no_kind_names_its_record() -> None:
    with pytest.raises(ConnectorError, match=r"Contact\.Value of record '003000000000000001' holds 'abc'"):
        _both(FieldKind.INT, ["1", "abc"])
