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

from crmsweep.backup.row_json import json_texts
from crmsweep.model import (
    _READABLE,
    Change,
    _batch_texts,
    _before_texts,
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


class _Batch:
    """The pieces of a batch's texts: `small` (made in Python: the layouts' fixed texts, the shared texts,
    the `after`s, whole texts of changes written one by one) then, made by Arrow, the record ids, labels,
    reasons and fingerprints' JSON and the before-images. `ids[field]` is each written change's piece of it."""

    def __init__(self, changes: Sequence[Change]) -> None:
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
            codes = {value: at for at, value in enumerate(dict.fromkeys(values))}
            group = group * len(codes) + np.fromiter(map(codes.__getitem__, values), dtype=np.int64, count=self.count)
        _, first_of, group_of = np.unique(group, return_index=True, return_inverse=True)
        group_of = group_of.reshape(-1)
        firsts = [changes[at] for at in first_of.tolist()]
        # Each group's JSON once (its first change stands for it); a group whose values are not all texts
        # is written change by change.
        shared = [_shared_texts((c.op.value, c.object, c.pass_name, c.severity.value)) for c in firsts]
        table = np.array([[self._piece(t) for t in texts] if texts is not None else [self.empty] * 4
                          for texts in shared], dtype=np.int64)
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
        if not plain.all():
            self.odd_at = np.flatnonzero(~plain)
            odd_lines, odd_canonicals = _batch_texts([changes[at] for at in self.odd_at.tolist()])
            self.odd = {"line": np.array([self._piece(t) for t in odd_lines], dtype=np.int64),
                        "canonical": np.array([self._piece(t) for t in odd_canonicals], dtype=np.int64)}
            self.plain_at = np.flatnonzero(plain)
            keep = self.plain_at.tolist()
            written = [changes[at] for at in keep]
            rids, labels, reasons = [rids[at] for at in keep], [labels[at] for at in keep], [reasons[at] for at in keep]
            fingerprints, afters = [fingerprints[at] for at in keep], [afters[at] for at in keep]
            group_of = group_of[self.plain_at]
        count = len(written)
        by_group = table[group_of]
        self.ids: dict[str, Any] = {name: by_group[:, at] for at, name in enumerate(("op", "object", "pass",
                                                                                        "severity"))}
        self.ids["after"], self.ids["canonical_after"] = self._afters(afters)
        self.ids.update({text: self._piece(text.encode()) for text in (*_LINE, *_CANONICAL) if text not in _FIELDS})
        self.ids["line_separator"], self.ids["canonical_separator"] = (self._piece(_LINE_SEPARATOR),
                                                                       self._piece(_CANONICAL_SEPARATOR))
        base = len(self.small)
        for at, name in enumerate(("record_id", "label", "reason", "fingerprint")):
            self.ids[name] = base + at * count + np.arange(count, dtype=np.int64)
        texts = json_texts([*rids, *labels, *reasons, *fingerprints])
        self.ids["before"] = base + 4 * count + np.arange(count, dtype=np.int64)
        # The before-images of one block as its Arrow texts, never Python bytes each.
        one = _rows_of_one_block([change.before for change in written])
        befores = None if one is None else one[0].canonical_json_array(one[1])
        if befores is None:
            befores = pa.array(_before_texts(written), type=pa.large_binary())
        self.pool = pa.concat_arrays([pa.array(self.small, type=pa.large_binary()),
                                      texts.cast(pa.large_binary()), befores.cast(pa.large_binary())])

    def _piece(self, text: bytes) -> int:
        at = self._small_ids.get(text)
        if at is None:
            at = self._small_ids[text] = len(self.small)
            self.small.append(text)
        return at

    def _afters(self, afters: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Each change's `after` as the line writes it and canonically: most are empty, and the rest mostly a
        few alike (each pass writes the same values), so each distinct one is encoded once."""
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
        return readable, canonical

    def texts(self, lines: bool) -> tuple[memoryview | None, memoryview]:
        line = self._joined(_LINE, "line") if lines else None
        return line, self._joined(_CANONICAL, "canonical")

    def _joined(self, layout: tuple[str, ...], kind: str) -> memoryview:
        """The batch's texts in `layout` (of `kind`: "line" or "canonical"), joined by that kind's separator:
        every change's pieces (the last its separator, none after the last change) in one index, taken from
        the pool in one call."""
        index = np.empty((self.count, len(layout) + 1), dtype=np.int64)
        rows = slice(None) if self.odd_at is None else self.plain_at
        for at, part in enumerate(layout):
            index[rows, at] = self.ids[part]
        if self.odd_at is not None:
            index[self.odd_at, 0] = self.odd[kind]
            index[self.odd_at, 1:-1] = self.empty
        index[:, -1] = self.ids[f"{kind}_separator"]
        index[-1, -1] = self.empty
        taken = pa.Array.from_buffers(pa.int64(), index.size, [None, pa.py_buffer(index)])
        pieces = self.pool.take(taken)
        offsets = np.frombuffer(pieces.buffers()[1], dtype=np.int64, count=len(pieces) + 1, offset=8 * pieces.offset)
        return memoryview(pieces.buffers()[2])[int(offsets[0]) : int(offsets[-1])]


_OP, _OBJECT, _PASS, _SEVERITY = (attrgetter(name) for name in ("op", "object", "pass_name", "severity"))
_RECORD_ID, _LABEL, _REASON, _FINGERPRINT, _AFTER = (attrgetter(name) for name in
                                                     ("record_id", "label", "reason", "fingerprint", "after"))
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
