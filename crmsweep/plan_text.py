"""A batch of a plan's changes as the bytes a plan file and its digest hold, a field at a time. Pure: no I/O.

`joined_texts(changes)` gives what `crmsweep.model._batch_texts` gives joined (the file's lines joined by
",\\n    ", the canonical texts by ","), byte for byte, without formatting a text per change: each field of
the batch is gathered once; the per-change texts (record id, label, reason, fingerprint) are escaped
together by `row_json.json_texts`; the texts a batch's changes share (op, object, pass, severity) and each
distinct `after` are encoded once; a block's before-images come as its Arrow texts; and each layout is one
Arrow `take` over those pieces, whose data buffer is then the joined text itself. Formatting each change
in Python was most of writing a large plan.

A change this does not know the shape of (a text that is not a `str`, an `after` that is not a dict) is
written by `_batch_texts` itself, change by change, and put in its place; a batch Arrow cannot hold
(a lone surrogate) is written wholly by it, so it fails as it always did.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import numpy as np
import pyarrow as pa

from crmsweep.backup.row_json import json_inner_texts, json_list, json_texts
from crmsweep.model import (
    _READABLE,
    BeforeImage,
    Change,
    _batch_texts,
    _before_texts,
    _encode_text,
    _rows_of_one_block,
    _shared_texts,
    canonical_json,
)

# The two layouts of a change, as `_formatted` writes them: a text is written as it stands, a field name
# its value's JSON. The file's line keeps `Change.to_dict()`'s key order; the canonical text sorts them.
_LINE = ('{"op": ', "op", ', "object": ', "object", ', "record_id": ', "record_id", ', "label": ', "label",
         ', "reason": ', "reason", ', "pass": ', "pass", ', "severity": ', "severity", ', "fingerprint": ',
         "fingerprint", ', "before": ', "before", ', "after": ', "after", "}")
_CANONICAL = ('{"after":', "canonical_after", ',"before":', "before", ',"fingerprint":', "fingerprint",
              ',"label":', "label", ',"object":', "object", ',"op":', "op", ',"pass":', "pass", ',"reason":',
              "reason", ',"record_id":', "record_id", ',"severity":', "severity", "}")
_LINE_SEPARATOR = b",\n    "
_CANONICAL_SEPARATOR = b","
_EMPTY_AFTER = b"{}"  # what both encoders write an empty mapping as


def joined_texts(changes: Sequence[Change], *, lines: bool = True) -> tuple[memoryview | None, memoryview]:
    """(the changes' file lines joined, or None without `lines`; their canonical JSON joined), UTF-8."""
    if not changes:
        return (memoryview(b"") if lines else None), memoryview(b"")
    try:
        return _Batch(changes).texts(lines)
    except UnicodeEncodeError:
        # A text UTF-8 cannot hold: the per-change writer raises for it exactly as it always has.
        line_texts, canonicals = _batch_texts(changes)
        return (memoryview(_LINE_SEPARATOR.join(line_texts)) if lines else None,
                memoryview(_CANONICAL_SEPARATOR.join(canonicals)))


def group_texts(changes: Sequence[Change]) -> tuple[memoryview, memoryview] | None:
    """(the changes as one columnar group of a plan file, their canonical JSON joined as `joined_texts`
    gives it), for changes of one op, object, pass and severity whose before-images are rows of one block;
    None for any others, or where a value is one only the encoder writes (they are then written a line a
    change). The group: the shared texts once, then each field a JSON list of every change's value in
    order, the before-images a list per field (sorted, as their canonical JSON sorts them)."""
    one = groupable(changes)
    if one is None:
        return None
    first = changes[0]
    shared = _shared_texts((first.op.value, first.object, first.pass_name, first.severity.value))
    rids, labels, reasons = list(map(_RECORD_ID, changes)), list(map(_LABEL, changes)), list(map(_REASON, changes))
    fingerprints, afters = list(map(_FINGERPRINT, changes)), list(map(_AFTER, changes))
    if (shared is None or not {*map(type, rids), *map(type, labels), *map(type, reasons)} <= _STR
            or not set(map(type, fingerprints)) <= _STR_OR_NONE or not set(map(type, afters)) <= _DICT):
        return None
    try:
        columns = one[0].canonical_json_columns(one[1])
        if columns is None:
            return None
        befores, fields = columns
        _, canonicals = _Batch(changes, befores).texts(False)
        texts: list[bytes] = [json_list(json_inner_texts(values), quoted=True) for values in (rids, labels, reasons)]
        texts.append(json_list(json_inner_texts(fingerprints), quoted=True) if None not in fingerprints
                     else json_list(json_texts(fingerprints)))
    except UnicodeEncodeError:
        return None
    after = b"[" + b", ".join(_READABLE.encode(a).encode() if a else _EMPTY_AFTER for a in afters) + b"]"
    op, obj, name, severity = shared
    head = (b'{"count": %d, "op": %b, "object": %b, "pass": %b, "severity": %b,\n     "record_id": %b,\n'
            b'     "label": %b,\n     "reason": %b,\n     "fingerprint": %b,\n     "after": %b,\n     "before": {'
            % (len(changes), op, obj, name, severity, texts[0], texts[1], texts[2], texts[3], after))
    before = b",".join(b"\n      " + _encode_text(field).encode() + b": " + values for field, values in fields)
    return memoryview(head + before + b"\n     }}"), canonicals


def groupable(changes: Sequence[Change]) -> tuple[Any, list[int]] | None:
    """(their block, their rows) where the changes are of one op, object, pass and severity and their
    before-images rows of one block: what `group_texts` may write as a group."""
    if not changes:
        return None
    first = changes[0]
    if not all(c.op is first.op and c.object == first.object and c.pass_name == first.pass_name
               and c.severity is first.severity for c in changes):
        return None
    return _rows_of_one_block(list(map(_BEFORE, changes)))


_Field = bytes | tuple[np.ndarray | int, bytes, bytes]


class _Batch:
    """The pieces of a batch's texts: `small` (made in Python: the layouts' fixed texts, the shared texts,
    the `after`s, whole texts of changes written one by one) then, made by Arrow, the record ids, labels,
    reasons and fingerprints' JSON and the before-images, all in `pool`. A field every written change has
    the same JSON of (a batch's op, object, pass and severity, mostly its `after`) is folded into the fixed
    texts around it, and so are the quotes of a text field that is never null: each layout is then a few
    pieces a change (a dozen, not twenty), every one an element Arrow's `take` copies."""

    def __init__(self, changes: Sequence[Change], befores: pa.Array | None = None) -> None:
        self.count = len(changes)
        self.small: list[bytes] = []
        self._small_ids: dict[bytes, int] = {}
        self.empty = self._piece(b"")
        # Enum members by identity (their hash is Python code); a batch's changes have a few of these. Every
        # column gathered by `map`, not a comprehension: no Python code runs per change, and no object the
        # garbage collector tracks is made per change (a plan is written next to a scan's millions of them).
        group = np.zeros(self.count, dtype=np.int64)
        for column in (map(id, map(_OP, changes)), map(_OBJECT, changes), map(_PASS, changes),
                       map(id, map(_SEVERITY, changes))):
            values = list(column)
            if values.count(values[0]) == self.count:  # one value, as a batch mostly has: one code
                continue
            codes = {value: at for at, value in enumerate(dict.fromkeys(values))}
            group = group * len(codes) + np.fromiter(map(codes.__getitem__, values), dtype=np.int64, count=self.count)
        if group.any():
            _, first_of, group_of = np.unique(group, return_index=True, return_inverse=True)
            group_of = group_of.reshape(-1)
        else:
            first_of, group_of = np.zeros(1, dtype=np.int64), group
        firsts = [changes[at] for at in first_of.tolist()]
        # Each group's JSON once (its first change stands for it); a group whose values are not all texts
        # is written change by change.
        shared = [_shared_texts((c.op.value, c.object, c.pass_name, c.severity.value)) for c in firsts]
        rids = list(map(_RECORD_ID, changes))
        labels = list(map(_LABEL, changes))
        reasons = list(map(_REASON, changes))
        fingerprints = list(map(_FINGERPRINT, changes))
        afters = list(map(_AFTER, changes))
        plain = np.array([texts is not None for texts in shared], dtype=bool)[group_of]
        if not ({*map(type, rids), *map(type, labels), *map(type, reasons)} <= _STR
                and set(map(type, fingerprints)) <= _STR_OR_NONE and set(map(type, afters)) <= _DICT):
            plain &= np.array([type(r) is str and type(t) is str and type(why) is str
                               and (f is None or type(f) is str) and type(a) is dict
                               for r, t, why, f, a in zip(rids, labels, reasons, fingerprints, afters, strict=True)],
                              dtype=bool)
        self.odd_at: np.ndarray | None = None
        written = changes
        self.odd: dict[str, np.ndarray] = {}
        if not plain.all():
            self.odd_at = np.flatnonzero(~plain)
            odd_lines, odd_canonicals = _batch_texts([changes[at] for at in self.odd_at.tolist()])
            # Each odd change's whole text, its separator after it as every change's last piece has.
            self.odd = {"line": np.array([self._piece(t + _LINE_SEPARATOR) for t in odd_lines], dtype=np.int64),
                        "canonical": np.array([self._piece(t + _CANONICAL_SEPARATOR) for t in odd_canonicals],
                                              dtype=np.int64)}
            self.plain_at = np.flatnonzero(plain)
            keep = self.plain_at.tolist()
            written = [changes[at] for at in keep]
            rids, labels, reasons = [rids[at] for at in keep], [labels[at] for at in keep], [reasons[at] for at in keep]
            fingerprints, afters = [fingerprints[at] for at in keep], [afters[at] for at in keep]
            group_of = group_of[self.plain_at]
        count = len(written)
        # A field: the JSON every written change has of it (bytes), or each change's piece of it and the fixed
        # texts before and after it (a text's quotes): its pieces among the small ones (ids) or, made by Arrow,
        # the `count` after some first one (a start, counted from the end of the small pieces).
        fields: dict[str, _Field] = {}
        for at, name in enumerate(("op", "object", "pass", "severity")):
            if len(first_of) == 1:
                fields[name] = b"" if shared[0] is None else shared[0][at]
            else:
                fields[name] = (np.array([self._piece(t[at]) if t is not None else self.empty for t in shared],
                                         dtype=np.int64)[group_of], b"", b"")
        fields["after"], fields["canonical_after"] = self._afters(afters)
        # Record ids, labels and reasons are texts (written changes): their quotes are fixed text.
        quoted = [rids, labels, reasons]
        nulls = fingerprints.count(None)
        if nulls == count:
            fields["fingerprint"] = b"null"
        elif nulls == 0:
            quoted.append(fingerprints)
        start = 0
        for name in ("record_id", "label", "reason", "fingerprint")[: len(quoted)]:
            fields[name] = (start, b'"', b'"')
            start += count
        arrays: list[pa.Array] = []
        if count:
            arrays.append(json_inner_texts([text for values in quoted for text in values]))
        if 0 < nulls < count:
            arrays.append(json_texts(fingerprints))
            fields["fingerprint"] = (start, b"", b"")
            start += count
        fields["before"] = (start, b"", b"")
        arrays.append(befores.cast(pa.large_binary()) if befores is not None and written is changes
                      else _befores(written))
        plans = {"line": self._plan(_LINE, fields, _LINE_SEPARATOR),
                 "canonical": self._plan(_CANONICAL, fields, _CANONICAL_SEPARATOR)}
        base = len(self.small)  # the Arrow texts follow the small pieces
        self._plans = {kind: [base + part + np.arange(count, dtype=np.int64) if isinstance(part, int) else part
                              for part in plan] for kind, plan in plans.items()}
        self.pool = pa.concat_arrays([pa.array(self.small, type=pa.large_binary()),
                                      *(array.cast(pa.large_binary()) for array in arrays)])

    def _piece(self, text: bytes) -> int:
        at = self._small_ids.get(text)
        if at is None:
            at = self._small_ids[text] = len(self.small)
            self.small.append(text)
        return at

    def _plan(self, layout: tuple[str, ...], fields: dict[str, _Field], separator: bytes) -> list[np.ndarray | int]:
        """A written change's pieces in `layout`, separator last: a fixed text (its small piece, an
        `np.ndarray` of one), a field's pieces among the small ones (their ids) or the start of its Arrow
        texts (an int); adjacent fixed texts (fields every change has alike among them) made one."""
        pieces: list[np.ndarray | int] = []
        fixed = b""
        for part in layout:
            value = fields[part] if part in _FIELDS else part.encode()
            if isinstance(value, bytes):
                fixed += value
                continue
            ids, before, after = value
            if fixed + before:
                pieces.append(np.array([self._piece(fixed + before)], dtype=np.int64))
            pieces.append(ids)
            fixed = after
        pieces.append(np.array([self._piece(fixed + separator)], dtype=np.int64))
        return pieces

    def _afters(self, afters: list[dict[str, Any]]) -> tuple[_Field, _Field]:
        """Each change's `after` as the line writes it and canonically: most are empty, and the rest mostly a
        few alike (each pass writes the same values), so each distinct one is encoded once; one every
        change has alike is a fixed text."""
        empty = self._piece(_EMPTY_AFTER)
        readable = np.full(len(afters), empty, dtype=np.int64)
        canonical = readable.copy()
        seen: dict[tuple[Any, ...], tuple[int, int]] = {}
        for at in np.flatnonzero(np.fromiter(map(len, afters), dtype=np.int64, count=len(afters))).tolist():
            after = afters[at]
            key = _after_key(after)
            known = None if key is None else seen.get(key)
            if known is None:
                known = (self._piece(_READABLE.encode(after).encode()), self._piece(canonical_json(after).encode()))
                if key is not None:
                    seen[key] = known
            readable[at], canonical[at] = known
        return self._field(readable), self._field(canonical)

    def _field(self, ids: np.ndarray) -> _Field:
        if len(ids) and (ids == ids[0]).all():
            return self.small[int(ids[0])]
        return ids, b"", b""

    def texts(self, lines: bool) -> tuple[memoryview | None, memoryview]:
        line = self._joined("line", _LINE_SEPARATOR) if lines else None
        return line, self._joined("canonical", _CANONICAL_SEPARATOR)

    def _joined(self, kind: str, separator: bytes) -> memoryview:
        """The batch's texts as `kind` ("line" or "canonical") lays them out, joined by its separator:
        every change's pieces (the last ends with the separator, cut after the last change) in one index,
        taken from the pool in one call."""
        plan = self._plans[kind]
        index = np.empty((self.count, len(plan)), dtype=np.int64)
        rows = slice(None) if self.odd_at is None else self.plain_at
        for at, part in enumerate(plan):
            index[rows, at] = part
        if self.odd_at is not None:
            index[self.odd_at, 0] = self.odd[kind]
            index[self.odd_at, 1:] = self.empty
        taken = pa.Array.from_buffers(pa.int64(), index.size, [None, pa.py_buffer(index)])
        pieces = self.pool.take(taken)
        offsets = np.frombuffer(pieces.buffers()[1], dtype=np.int64, count=len(pieces) + 1, offset=8 * pieces.offset)
        return memoryview(pieces.buffers()[2])[int(offsets[0]) : int(offsets[-1]) - len(separator)]


# Runs of before-images of one block in a batch encoded each by its block, at most: a batch mostly holds
# one run, or two where a block ends in it; many (rows of blocks interleaved) are encoded row by row.
_MOST_RUNS = 8


def _befores(written: Sequence[Change]) -> pa.Array:
    """The canonical JSON of the changes' before-images: those of one block as its Arrow texts (never
    Python bytes each), each run of them where a batch holds a few such runs (where one block ends and the
    next begins), else by `_before_texts`."""
    befores = list(map(_BEFORE, written))
    one = _rows_of_one_block(befores) if befores else None
    texts = None if one is None else one[0].canonical_json_array(one[1])
    if texts is not None:
        return texts.cast(pa.large_binary())
    blocks = [id(b.block) if type(b) is not dict and isinstance(b, BeforeImage) else None for b in befores]
    starts = [at for at in range(len(blocks)) if at == 0 or blocks[at] != blocks[at - 1]]
    if one is not None or not 1 < len(starts) <= _MOST_RUNS:
        return pa.array(_before_texts(written), type=pa.large_binary())
    return pa.concat_arrays([_befores(written[start:end]) for start, end in
                             zip(starts, [*starts[1:], len(written)], strict=True)])


_OP, _OBJECT, _PASS, _SEVERITY = (attrgetter(name) for name in ("op", "object", "pass_name", "severity"))
_RECORD_ID, _LABEL, _REASON, _FINGERPRINT, _AFTER, _BEFORE = (
    attrgetter(name) for name in ("record_id", "label", "reason", "fingerprint", "after", "before"))
_STR, _STR_OR_NONE, _DICT = {str}, {str, type(None)}, {dict}
_FIELDS = frozenset(("op", "object", "record_id", "label", "reason", "pass", "severity", "fingerprint", "before",
                     "after", "canonical_after"))

# Value types an `after` is told apart by from its items: a float by its repr (-0.0 equals 0.0, and 1 equals
# 1.0 and True), the others by type and value. An `after` holding any other is encoded by itself.
_KEYED = (str, int, bool, type(None))


def _after_key(after: dict[str, Any]) -> tuple[Any, ...] | None:
    key: list[Any] = []
    for name, value in after.items():
        kind = type(value)
        if type(name) is not str:
            return None
        if kind is float:
            key.append((name, kind, float.__repr__(value)))
        elif kind in _KEYED:
            key.append((name, kind, value))
        else:
            return None
    return tuple(key)
