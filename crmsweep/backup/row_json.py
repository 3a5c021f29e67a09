"""The canonical JSON of many rows at once, column by column with Arrow. Pure: no I/O.

`canonical_json_rows(table)` gives, for each row, exactly `crmsweep.model.canonical_json` of the row as a
dict (keys sorted, separators "," and ":", non-ASCII as itself): a plan's before-images are most of its
bytes, and encoding them a dict at a time was most of writing a plan. Each column becomes its JSON texts
in a few vectorised calls, then every row's texts are joined with their keys. What Arrow cannot be shown
to write identically is left to the encoder itself, row by row: a text with a control character other
than those with a short escape, a float that is not finite, any column type other than text, bool, int
and float (a canonical table holds dates as text already).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from crmsweep.model import canonical_json

_encode_text: Callable[[str], str] = json.encoder.encode_basestring
# What the encoder escapes in a text (`json.encoder.ESCAPE`): the quote, the backslash and every
# character below 0x20. Those with a short escape are replaced here, in this order (backslash first, so
# the backslashes the others add are not doubled); the rest (\u00XX) are left to the encoder.
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]'
_SHORT_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\b", "\\b"),
                  ("\f", "\\f"))
_LONG_ESCAPE = r"[\x00-\x07\x0b\x0e-\x1f]"
_NULL = "null"


def canonical_json_rows(table: pa.Table) -> list[str]:
    """`canonical_json(row)` of every row of `table` (as `table.to_pylist()` gives the rows), in order."""
    if table.num_rows == 0:
        return []
    names = table.column_names
    if len(set(names)) != len(names):
        return [canonical_json(row) for row in table.to_pylist()]
    pieces: list[pa.Array | str] = []
    odd: pa.Array | None = None  # rows the encoder writes itself
    for at, name in enumerate(sorted(names)):
        texts, unproven = _column_json(table.column(name).combine_chunks())
        if texts is None:
            return [canonical_json(row) for row in table.to_pylist()]
        pieces += [("{" if at == 0 else ",") + _encode_text(name) + ":", texts]
        if unproven is not None:
            odd = unproven if odd is None else pc.or_(odd, unproven)
    rows = (pc.binary_join_element_wise(*pieces, "}", "") if pieces else pa.array(["{}"] * table.num_rows))
    encoded: list[str] = rows.to_pylist()
    if odd is not None:
        for at in pc.indices_nonzero(odd).to_pylist():
            encoded[at] = canonical_json(table.slice(at, 1).to_pylist()[0])
    return encoded


def _column_json(column: pa.Array) -> tuple[pa.Array | None, pa.Array | None]:
    """(the JSON text of each value, the rows whose text is not proven the encoder's or None when all are);
    (None, None) for a column of a type not handled here."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _text_json(column.cast(pa.string()))
    if pa.types.is_boolean(kind):
        return pc.fill_null(pc.if_else(column, "true", "false"), _NULL), None
    if pa.types.is_integer(kind):
        return pc.fill_null(pc.cast(column, pa.string()), _NULL), None
    if pa.types.is_floating(kind):
        # Arrow's float text is not Python's repr (1.0 is "1" there): each value by Python, as the encoder.
        values = column.to_pylist()
        texts = [_NULL if v is None else float.__repr__(v) if math.isfinite(v) else _NULL for v in values]
        unfinite = [v is not None and not math.isfinite(v) for v in values]
        return pa.array(texts, type=pa.string()), (pa.array(unfinite) if any(unfinite) else None)
    if pa.types.is_null(kind):
        return pa.array([_NULL] * len(column), type=pa.string()), None
    return None, None


def _text_json(column: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    unproven = None
    if pc.any(pc.match_substring_regex(column, _NEEDS_ESCAPE)).as_py():
        long = pc.fill_null(pc.match_substring_regex(column, _LONG_ESCAPE), False)
        unproven = long if pc.any(long).as_py() else None
        for char, escape in _SHORT_ESCAPES:
            column = pc.replace_substring(column, char, escape)
    return pc.fill_null(pc.binary_join_element_wise('"', column, '"', ""), _NULL), unproven
