"""How a record is named for a person: the label a Change carries into the preview."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crmsweep.backup.row_block import RowBlock, RowRecord, block_rows
from crmsweep.cleanup.view import SnapshotView, id_set, in_ids, text_array
from crmsweep.model import Change, FieldKind, Vocabulary


def escaped(ch: str) -> str:
    """A character that would not show as itself, as its Python escape (\\n, \\x1b, \\u202e)."""
    return ascii(ch)[1:-1]


def one_line(text: object) -> str:
    """Text from a plan, a run log or the CRM as it may be shown to a person: on one line, every character
    that would not show as itself (newline, ESC and other controls, bidi overrides, zero-width) escaped
    visibly. A raw ESC could move the cursor and erase lines of a preview; a newline could fake one."""
    text = str(text)
    if text.isprintable():  # nearly always: one C call instead of a test per character (a scan labels 300k)
        return text
    return "".join(ch if ch.isprintable() else escaped(ch) for ch in text)


def has_control(text: str) -> bool:
    """True if `text` holds a character one_line would escape."""
    return not text.isprintable()


def record_label(vocabulary: Vocabulary, object_name: str, record: Mapping[str, Any]) -> str:
    """'Jane Doe <jane@x.org>': the name (the first label field, or the first few where a name is in parts)
    as is, each further field in angle brackets.

    Empty fields are left out; an object without label fields gets "" (the id still names it). A record
    that is a row of a block read from a snapshot is labelled with every row of its block, at once."""
    fields = vocabulary.label_fields.get(object_name, ())
    named = _named(vocabulary, object_name)
    if isinstance(record, RowRecord):
        key = ("record_label", fields, named)
        labels = record.block.derived(key, lambda block: _block_labels(block, fields, named))
        return labels[record.row]
    return _joined([_field_text(record.get(name)) for name in fields], named)


def labels_of(vocabulary: Vocabulary, object_name: str, records: Sequence[Mapping[str, Any]],
              rows: tuple[RowBlock, list[int]] | None = None) -> list[str]:
    """`record_label` of each record; the rows of a block labelled with their block, at once (`rows`: the
    records' `block_rows`, when known)."""
    fields = vocabulary.label_fields.get(object_name, ())
    named = _named(vocabulary, object_name)
    key = ("record_label", fields, named)
    rows = rows or block_rows(records)
    if rows is not None:
        block, at = rows
        of_block = block.derived(key, lambda block: _block_labels(block, fields, named))
        return [of_block[row] for row in at]
    labels: list[str] = []
    for record in records:
        if type(record) is RowRecord:
            block = record.block
            labels.append(block.derived(key, lambda block: _block_labels(block, fields, named))[record.row])
        else:
            labels.append(record_label(vocabulary, object_name, record))
    return labels


def record_labels(vocabulary: Vocabulary, object_name: str, columns: Mapping[str, Sequence[Any]]) -> list[str]:
    """`record_label` of every row of `columns` (field -> values in canonical form, all of one length; a label
    field absent from them is empty), made a column at a time: a scan labels hundreds of thousands."""
    rows = len(next(iter(columns.values()))) if columns else 0
    texts = [pa.array(list(map(_field_text, columns[name])), type=pa.string()) if name in columns
             else pa.nulls(rows, pa.string()) for name in vocabulary.label_fields.get(object_name, ())]
    return _labels(texts, _named(vocabulary, object_name), rows)


def _block_labels(block: RowBlock, fields: Sequence[str], named: int) -> list[str]:
    texts = [_column_texts(block.column(name)) if name in block.names else pa.nulls(len(block), pa.string())
             for name in fields]
    return _labels(texts, named, len(block))


# A text of printable ASCII, not only spaces: its label text is itself (`_field_text`), no call needed.
_PLAIN = r"^[ -~]*[!-~][ -~]*$"


def _column_texts(column: pa.Array) -> pa.Array:
    """`_field_text` of each value of a column, null where it gives None."""
    if not pa.types.is_string(column.type):
        return pa.array([_field_text(v) for v in column.to_pylist()], type=pa.string())
    plain = pc.fill_null(pc.match_substring_regex(column, _PLAIN), False)
    texts = pc.if_else(plain, column, pa.scalar(None, pa.string()))
    other = pc.and_(pc.invert(plain), pc.is_valid(column))
    if pc.any(other).as_py():
        odd = [_field_text(v) for v in pc.filter(column, other).to_pylist()]
        texts = pc.replace_with_mask(texts, other, pa.array(odd, type=pa.string()))
    return texts


def _labels(texts: Sequence[pa.Array], named: int, rows: int) -> list[str]:
    """`_joined` of each row of these text columns (null for a field left out), a column at a time: every
    text present is put after a space ("<text>" past the name fields), then the first space dropped."""
    if not texts:
        return [""] * rows
    pieces = [pc.fill_null(pc.binary_join_element_wise(*((" ", text, "") if at < named else (" <", text, ">")), ""), "")
              for at, text in enumerate(texts)]
    joined = pc.binary_join_element_wise(*pieces, "")
    labels: list[str] = pc.utf8_slice_codeunits(joined, 1).to_pylist()
    return labels


@runtime_checkable
class ArrowColumns(Protocol):
    """A view that reads columns as stored (the snapshot reader's `table`): labels of a few records are read
    without turning a whole column into Python objects first."""

    def table(self, object_name: str, columns: Sequence[str]) -> pa.Table: ...


def labels_by_id(view: SnapshotView, vocabulary: Vocabulary, object_name: str, ids: Sequence[str]) -> dict[str, str]:
    """`record_label` of the snapshot row of each of `ids` ("" for an id it lacks).

    Where every label field is text (a canonical text is the stored value) only those columns are read, not
    whole rows as `record_map` builds them, and only the rows of `ids` become Python values: a duplicates
    report labels thousands of people among a million."""
    specs = {s.name: s for s in view.fields(object_name)}
    fields = [name for name in vocabulary.label_fields.get(object_name, ()) if name in specs]
    id_field = vocabulary.id_field
    if id_field not in specs or id_field in fields or any(specs[f].kind is not FieldKind.STRING for f in fields):
        records = view.record_map(object_name, ids)
        return {rid: record_label(vocabulary, object_name, records.get(rid, {})) for rid in ids}
    if not fields:
        return dict.fromkeys(ids, "")  # record_label of any row: an object without label fields is named by its id
    # Each field's texts are made a column at a time (`_column_texts`), not a value at a time.
    if isinstance(view, ArrowColumns):
        table = view.table(object_name, [id_field, *fields])
        table = table.filter(pc.is_in(table.column(id_field), value_set=id_set(ids)))
        row_ids: list[Any] = table.column(id_field).to_pylist()
        texts = [_column_texts(table.column(name).combine_chunks()) for name in fields]
    else:
        frame = view.frame(object_name, [id_field, *fields])
        frame = frame[in_ids(frame[id_field], id_set(ids))]
        row_ids = frame[id_field].astype(str).tolist()
        texts = [_series_texts(frame[name]) for name in fields]
    found: dict[str, str] = {}
    for rid, label in zip(row_ids, _labels(texts, _named(vocabulary, object_name), len(row_ids)), strict=True):
        found.setdefault(str(rid), label)  # each id is there once; were one there twice, record_map keeps the first
    return {rid: found.get(rid, "") for rid in ids}


def _series_texts(series: pd.Series) -> pa.Array:
    """`_column_texts` of a frame's column, whether its text is held as Python objects or in Arrow."""
    text = text_array(series)
    if text is not None:
        return _column_texts(text)
    values = series.astype(object).where(series.notna(), None).tolist()
    return pa.array([_field_text(v) for v in values], type=pa.string())


def _named(vocabulary: Vocabulary, object_name: str) -> int:
    return max(1, vocabulary.label_name_fields.get(object_name, 1))


def _field_text(value: Any) -> str | None:
    """A label field's text, or None where it is empty (left out of the label)."""
    if value is None:
        return None
    text = str(value)
    return None if text.strip() == "" else one_line(text)


def _joined(texts: Sequence[str | None], named: int) -> str:
    name = " ".join(text for text in texts[:named] if text is not None)
    rest = [f"<{text}>" for text in texts[named:] if text is not None]
    return " ".join([name, *rest] if name else rest)


def change_name(change: Change) -> str:
    """'Contact 003...': the record a change is about, as previews and refusals name it."""
    return f"{change.object} {change.record_id or '(new record)'}"


def table_lines(headers: Sequence[object], rows: Sequence[Sequence[object]]) -> list[str]:
    """Rows under column headers as aligned plain text lines, every cell made one line: what a person
    reads and `awk` splits on two or more spaces."""
    cells = [[one_line(h) for h in headers], *([one_line(c) for c in row] for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells]
