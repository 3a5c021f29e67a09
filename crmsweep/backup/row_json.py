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
from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from crmsweep.model import canonical_json

_encode_text: Callable[[str], str] = json.encoder.encode_basestring
# What the encoder escapes in a text (`json.encoder.ESCAPE`): the quote, the backslash and every
# character below 0x20. Those with a short escape are replaced here, in this order (backslash first, so
# the backslashes the others add are not doubled); the rest (\u00XX) are left to the encoder.
_SHORT_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\b", "\\b"),
                  ("\f", "\\f"))
_LONG_ESCAPE = r"[\x00-\x07\x0b\x0e-\x1f]"
_NULL = "null"
_ROWS_AT_ONCE = 8192
# A part's pieces are one Arrow text array (32-bit offsets): its bytes must stay below 2 GiB. A part whose
# texts could come near that (long text areas of thousands of records) is halved until they cannot.
_PART_BYTES = 2**30
# Bytes a value other than a text can take at most, with its key and separators, beyond the key's length.
_VALUE_BYTES = 40


def canonical_json_rows(table: pa.Table) -> list[str]:
    """`canonical_json(row)` of every row of `table` (as `table.to_pylist()` gives the rows), in order."""
    return [text.decode() for text in canonical_json_bytes(table)]


def canonical_json_bytes(table: pa.Table) -> list[bytes]:
    """`canonical_json(row).encode()` of every row, in order: the UTF-8 Arrow holds, never made a `str`
    (decoding and encoding again was a third of writing a plan)."""
    rows = table.num_rows
    if rows == 0:
        return []
    if rows > _ROWS_AT_ONCE:
        return [text for start in range(0, rows, _ROWS_AT_ONCE)
                for text in canonical_json_bytes(table.slice(start, _ROWS_AT_ONCE))]
    if _most_bytes(table) > _PART_BYTES:
        if rows == 1:
            return [canonical_json(table.to_pylist()[0]).encode()]
        half = rows // 2
        return [*canonical_json_bytes(table.slice(0, half)), *canonical_json_bytes(table.slice(half))]
    texts = _texts(table)
    if texts is None:
        return [canonical_json(row).encode() for row in table.to_pylist()]
    encoded: list[bytes] = texts.cast(pa.binary()).to_pylist()
    return encoded


def canonical_json_array(table: pa.Table) -> pa.Array | None:
    """`canonical_json_bytes(table)` as one Arrow text array (for a writer that copies them on, never made
    Python bytes), or None where the rows are not encoded in one part (more than `_ROWS_AT_ONCE`, texts that
    could near 2 GiB, none): those are encoded as `canonical_json_bytes` only."""
    if not 0 < table.num_rows <= _ROWS_AT_ONCE or _most_bytes(table) > _PART_BYTES:
        return None
    texts = _texts(table)
    return pa.array([canonical_json(row) for row in table.to_pylist()], type=pa.string()) if texts is None else texts


def canonical_json_columns(table: pa.Table) -> tuple[pa.Array, list[tuple[str, bytes]]] | None:
    """(`canonical_json_array(table)`, and for each column by name, sorted, the JSON list of its values as the
    rows' texts hold them, `[v, v, ...]` with ", " between), from the same per-column texts; None where the
    rows are not encoded in one part or some value is one the encoder must write itself."""
    if not 0 < table.num_rows <= _ROWS_AT_ONCE or _most_bytes(table) > _PART_BYTES:
        return None
    parts = _columns(table)
    if parts is None or parts[3] is not None:
        return None
    names, values, quoted, _ = parts
    lists = []
    for name, texts, is_text in zip(names, values, quoted, strict=True):
        if texts.null_count == len(texts):
            lists.append((name, b"[" + b", ".join([_NULL.encode()] * len(texts)) + b"]"))
        elif is_text and not texts.null_count:  # the quotes go in the separators: no copy of each text
            lists.append((name, json_list(texts, quoted=True)))
        else:
            if is_text:
                texts = pc.fill_null(pc.binary_join_element_wise('"', texts, '"', ""), _NULL)
            lists.append((name, json_list(texts)))
    return _joined(names, values, quoted, table.num_rows, [], []), lists


def json_list(texts: pa.Array, *, quoted: bool = False) -> bytes:
    """`[t, t, ...]`: these JSON texts (none null) in one JSON list, ", " between them, joined by Arrow; with
    `quoted`, texts to put between quotes (what goes inside them, as `json_inner_texts` gives it)."""
    joined = pc.binary_join(pa.ListArray.from_arrays(pa.array([0, len(texts)], type=pa.int32()), texts),
                            '", "' if quoted else ", ")
    start, end = _span(joined)
    data = joined.buffers()[2]
    inner = b"" if data is None else memoryview(data)[start:end].tobytes()
    return b'["' + inner + b'"]' if quoted else b"[" + inner + b"]"


def _columns(table: pa.Table) -> tuple[list[str], list[pa.Array], list[bool], pa.Array | None] | None:
    """(the sorted names, each column's value texts, whether it is a text column, the rows the encoder must
    write itself or None); None for a table this does not encode by columns (no columns, names repeated, a
    column of a type not handled)."""
    names = sorted(table.column_names)
    if not names or len(set(names)) != len(names):
        return None
    values: list[pa.Array] = []
    quoted: list[bool] = []  # a text column: its values go between quotes, a null as `null` instead
    odd: pa.Array | None = None  # rows the encoder writes itself
    for name in names:
        texts, is_text, unproven = _column_json(table.column(name).combine_chunks())
        if texts is None:
            return None
        values.append(texts)
        quoted.append(is_text)
        if unproven is not None:
            odd = unproven if odd is None else pc.or_(odd, unproven)
    return names, values, quoted, odd


def _texts(table: pa.Table) -> pa.Array | None:
    """The rows' texts, column by column; None for a table this does not encode by columns."""
    parts = _columns(table)
    if parts is None:
        return None
    names, values, quoted, odd = parts
    odd_rows = [] if odd is None else pc.indices_nonzero(odd).to_pylist()
    odd_texts = [canonical_json(table.slice(at, 1).to_pylist()[0]) for at in odd_rows]
    return _joined(names, values, quoted, table.num_rows, odd_rows, odd_texts)


def _most_bytes(table: pa.Table) -> int:
    """The most bytes the rows' JSON can take: every text's bytes twice (an escape doubles a character;
    the six-byte escapes are left to the encoder), and each other value its widest text."""
    text = 0
    for column in table.columns:
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            text += sum(end - start for start, end in map(_span, column.chunks))
    keys = sum(len(name.encode()) * 6 + _VALUE_BYTES for name in table.column_names)
    return int(2 * text + table.num_rows * keys)


def _joined(names: list[str], values: list[pa.Array], quoted: list[bool], rows: int, odd_rows: list[int],
            odd_texts: list[str]) -> pa.Array:
    """Each row's `{"key":value,...}`. Its pieces (the fixed texts between the values, then the values; for
    a row the encoder wrote, `odd_rows`, its text then empty pieces) are put in row order in one array by
    one `take`: that array's bytes are then every row's text, one after another, and every (2k+1)th offset
    a row's end. A value every row has alike (a column all null, a bool all true) is part of the fixed
    text, and so are a text column's quotes where it has no null (where it has, its values are quoted, a
    null `null`): fewer pieces a row, each an element `take` copies."""
    between: list[str] = []
    pieces: list[pa.Array] = []
    fixed = ""
    for at, (name, texts, is_text) in enumerate(zip(names, values, quoted, strict=True)):
        fixed += ("," if at else "{") + _encode_text(name) + ":"
        same = _same_json(texts, is_text)
        if same is not None:
            fixed += same
            continue
        close = ""
        if is_text and texts.null_count:
            texts = pc.fill_null(pc.binary_join_element_wise('"', texts, '"', ""), _NULL)
        elif is_text:
            fixed, close = fixed + '"', '"'
        between.append(fixed)
        pieces.append(texts)
        fixed = close
    between.append(fixed + "}")
    width = len(pieces)
    index = np.empty((rows, 2 * width + 1), dtype=np.int32)
    index[:, 0::2] = np.arange(width + 1, dtype=np.int32)
    start = len(between)
    index[:, 1::2] = start + rows * np.arange(width, dtype=np.int32)[None, :] + np.arange(rows, dtype=np.int32)[:, None]
    if odd_rows:
        empty = start + rows * width
        index[odd_rows, 0] = empty + 1 + np.arange(len(odd_rows), dtype=np.int32)
        index[odd_rows, 1:] = empty
    # From the buffer, not `pa.array(index)`, which copies the indices one by one.
    taken = pa.Array.from_buffers(pa.int32(), index.size, [None, pa.py_buffer(index)])
    texts = pa.concat_arrays([pa.array(between, type=pa.string()), *pieces,
                              pa.array(["", *odd_texts], type=pa.string())]).take(taken)
    offsets = np.frombuffer(texts.buffers()[1], dtype=np.int32, count=len(texts) + 1, offset=4 * texts.offset)
    ends = pa.py_buffer(np.ascontiguousarray(offsets[:: 2 * width + 1]))
    return pa.StringArray.from_buffers(rows, ends, texts.buffers()[2])


def _same_json(texts: pa.Array, is_text: bool) -> str | None:
    """The JSON of the column's value when every row has the same one (all null; of a column other than
    text, one value), else None. A text column's texts are never compared: they seldom repeat."""
    if texts.null_count == len(texts):
        return _NULL
    if is_text:
        return None
    least, most = pc.min_max(texts).values()
    return None if least != most else str(least.as_py())


def _column_json(column: pa.Array) -> tuple[pa.Array | None, bool, pa.Array | None]:
    """(the JSON of each value (of a text: what goes between the quotes, null for null), whether it is a
    text, the rows whose text is not proven the encoder's or None when all are); None first for a column of
    a type not handled here."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        texts, unproven = _text_json(column.cast(pa.string()))
        return texts, True, unproven
    if pa.types.is_boolean(kind):
        return pc.fill_null(pc.if_else(column, "true", "false"), _NULL), False, None
    if pa.types.is_integer(kind):
        return pc.fill_null(pc.cast(column, pa.string()), _NULL), False, None
    if pa.types.is_floating(kind):
        return _float_json(column)
    if pa.types.is_null(kind):
        return pa.array([_NULL] * len(column), type=pa.string()), False, None
    return None, False, None


def _float_json(column: pa.Array) -> tuple[pa.Array, bool, pa.Array | None]:
    """`_column_json` of a float column. Arrow's float text is not Python's repr (1.0 is "1" there): each
    distinct value is written by Python, as the encoder does, once (amounts, probabilities repeat)."""
    # By bit pattern, not value: -0.0 and 0.0 are equal but written apart (and a NaN is not equal to itself).
    bits = pc.cast(column, pa.float64()).view(pa.uint64())
    distinct = pc.unique(bits)
    values = distinct.view(pa.float64()).to_pylist()
    texts = [_NULL if v is None else float.__repr__(v) if math.isfinite(v) else _NULL for v in values]
    written = pa.array(texts, type=pa.string()).take(pc.index_in(bits, distinct))
    unfinite = [v is not None and not math.isfinite(v) for v in values]
    if not any(unfinite):
        return written, False, None
    return written, False, pc.fill_null(pc.is_in(bits, distinct.filter(pa.array(unfinite))), False)


def _may_need_escape(column: pa.Array) -> bool:
    """Whether some byte of the column's texts is one the encoder escapes (a byte below 0x80 in UTF-8 is
    always that ASCII character). Looks at the bytes the values span, so a slice's neighbours never count."""
    start, end = _span(column)
    data = column.buffers()[2]
    if data is None or start == end:
        return False
    # A copy (memcpy), two byte searches and a minimum: a few times faster than three comparisons a byte.
    held = bytes(memoryview(data)[start:end])
    return b'"' in held or b"\\" in held or int(np.frombuffer(held, dtype=np.uint8).min()) < 0x20


def _span(column: pa.Array) -> tuple[int, int]:
    """(first, end) byte of the data buffer a text array's values span (its nulls' bytes included, if any)."""
    buffers = column.buffers()
    if len(column) == 0 or buffers[1] is None:
        return 0, 0
    width = 8 if pa.types.is_large_string(column.type) or pa.types.is_large_binary(column.type) else 4
    offsets = np.frombuffer(buffers[1], dtype=np.int64 if width == 8 else np.int32, count=len(column) + 1,
                            offset=width * column.offset)
    return int(offsets[0]), int(offsets[-1])


def _text_json(column: pa.Array) -> tuple[pa.Array, pa.Array | None]:
    unproven = None
    if _may_need_escape(column):
        long = pc.fill_null(pc.match_substring_regex(column, _LONG_ESCAPE), False)
        unproven = long if pc.any(long).as_py() else None
        for char, escape in _SHORT_ESCAPES:
            column = pc.replace_substring(column, char, escape)
    return column, unproven


def json_texts(values: Sequence[str | None]) -> pa.Array:
    """The JSON of each text as the encoder writes it (`json.encoder.encode_basestring`: quoted, escaped),
    `null` for None, in one Arrow text array: by the same escapes as a row's texts, each text this cannot
    prove identical written by the encoder itself. Every value must be a `str` or None."""
    return pc.fill_null(pc.binary_join_element_wise('"', json_inner_texts(values), '"', ""), _NULL)


def json_inner_texts(values: Sequence[str | None]) -> pa.Array:
    """`json_texts` without the quotes (what the encoder writes between them), null for None: for a writer
    that puts the quotes in the text around (a copy fewer)."""
    column = pa.array(values, type=pa.string())
    texts, unproven = _text_json(column)
    if unproven is None:
        return texts
    odd = [_encode_text(values[at])[1:-1] for at in pc.indices_nonzero(unproven).to_pylist()]
    return pc.replace_with_mask(texts, unproven, pa.array(odd, type=pa.string()))
