"""What changed between two snapshots of one connection, per object: records added, removed and
changed, and fields added to or removed from describe.

Streaming in the sense that matters at 1M rows: only two columns of each side are read to find the
records (the id and the fingerprint the CRM bumps on every write), compared in Arrow; whole records are
read only for those whose fingerprint moved, a batch at a time: with `detail`, to name the fields that
differ, and to tell a change from a record whose only difference is the CRM's own audit stamps (the
fields the provider's vocabulary names, given as `audit_fields`): an apply and its rollback leave every
record they touched with new stamps and nothing else changed, which is not a change to list. Full and
incremental snapshots compare alike: both read through `SnapshotReader`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from crmsweep.backup.snapshot_reader import SnapshotReader
from crmsweep.decimal_text import DECIMAL_PATTERN
from crmsweep.errors import BadInput

_DETAIL_BATCH = 10_000  # changed records read whole at a time, with `detail`


@dataclass
class ObjectDiff:
    name: str
    status: str = "both"  # "both", "added" (only in B), "removed" (only in A)
    added: int = 0
    removed: int = 0
    changed: int = 0
    stamps_only: int = 0  # records whose only differences are audit stamps: not counted changed
    fields_added: list[str] = field(default_factory=list)
    fields_removed: list[str] = field(default_factory=list)
    # With detail only:
    added_ids: list[str] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)
    changed_fields: dict[str, list[str]] = field(default_factory=dict)  # id -> fields whose values differ

    def to_dict(self, detail: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": self.status, "added": self.added, "removed": self.removed, "changed": self.changed,
            "stamps_only": self.stamps_only,
            "fields_added": self.fields_added, "fields_removed": self.fields_removed,
        }
        if detail:
            data.update(added_ids=self.added_ids, removed_ids=self.removed_ids, changed_records=self.changed_fields)
        return data


@dataclass
class SnapshotDiff:
    a: str
    b: str
    objects: dict[str, ObjectDiff]
    audit_fields: tuple[str, ...] = ()  # the stamps left out of what counts as a change

    def to_dict(self, detail: bool = False) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "audit_fields": list(self.audit_fields),
                "objects": {n: d.to_dict(detail) for n, d in self.objects.items()}}


def _keys(reader: SnapshotReader, name: str, key: Sequence[str], compared: Sequence[str]) -> pa.Table:
    """The key (one id column, or all columns joined for a link table) and the compared columns."""
    table = reader.table(name, list(dict.fromkeys([*key, *compared])))
    if len(key) == 1:
        ids = table.column(key[0]).cast(pa.string())
    else:
        ids = pc.binary_join_element_wise(*[pc.fill_null(table.column(k).cast(pa.string()), "") for k in key], "\x1f")
    return pa.table({"id": ids, **{f"c{i}": table.column(c) for i, c in enumerate(compared)}})


def _string_ids(values: pa.ChunkedArray | pa.Array) -> list[str]:
    return [str(v) for v in values.to_pylist()]


def _number_text(numbers: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Numbers as the text a compare with a text that is no number meets ("nan", "inf", "1e+16")."""
    return pc.cast(numbers, pa.string())


def _unequal(left: pa.ChunkedArray, right: pa.ChunkedArray) -> pa.ChunkedArray:
    """Whether each pair of values differs (null where either is null). A field typed differently by the two
    backups (a number an older crmsweep kept as a double and a newer one keeps as its exact text; a field
    retyped in the CRM) compares value by value: a text that is a decimal as the double it reads as (the
    double is all the older backup knew), any other text as text, against the double's text."""
    if left.type == right.type:
        return pc.not_equal(left, right)
    for number, text in ((left, right), (right, left)):
        if pa.types.is_floating(number.type) and pa.types.is_string(text.type):
            is_decimal = pc.match_substring_regex(text, DECIMAL_PATTERN)
            as_number = pc.cast(pc.if_else(is_decimal, text, pa.scalar(None, pa.string())), number.type)
            return pc.if_else(is_decimal, pc.not_equal(number, as_number),
                              pc.not_equal(_number_text(number), text))
    return pc.not_equal(pc.cast(left, pa.string()), pc.cast(right, pa.string()))


def _same_value(old: Any, new: Any) -> bool:
    """`_unequal` for two canonical values (a double and a text: as `_unequal` compares them)."""
    for number, text in ((old, new), (new, old)):
        if type(number) is float and type(text) is str:
            if re.fullmatch(DECIMAL_PATTERN, text):
                return float(text) == number
            return bool(_number_text(pa.array([number], pa.float64()))[0].as_py() == text)
    return bool(old == new)


def _differs(left: pa.ChunkedArray, right: pa.ChunkedArray) -> pa.ChunkedArray:
    # Null-aware: null against a value differs, null against null does not.
    either_null = pc.xor(pc.is_null(left), pc.is_null(right))
    return pc.or_(pc.fill_null(_unequal(left, right), False), either_null)


def _diff_rows(a: SnapshotReader, b: SnapshotReader, name: str, key: Sequence[str], compared: Sequence[str],
               result: ObjectDiff, detail: bool, audit: frozenset[str] = frozenset()) -> None:
    left, right = _keys(a, name, key, compared), _keys(b, name, key, compared)
    added = right.filter(pc.invert(pc.is_in(right.column("id"), value_set=left.column("id").combine_chunks())))
    removed = left.filter(pc.invert(pc.is_in(left.column("id"), value_set=right.column("id").combine_chunks())))
    result.added, result.removed = added.num_rows, removed.num_rows
    if detail:
        result.added_ids, result.removed_ids = _string_ids(added.column("id")), _string_ids(removed.column("id"))
    if not compared:
        return
    both = left.join(right, keys="id", join_type="inner", left_suffix="_a", right_suffix="_b")
    differs = _differs(both.column("c0_a"), both.column("c0_b"))
    for i in range(1, len(compared)):
        differs = pc.or_(differs, _differs(both.column(f"c{i}_a"), both.column(f"c{i}_b")))
    candidates = _string_ids(both.filter(differs).column("id"))
    if not detail and not audit:
        result.changed = len(candidates)
        return
    shared = [f.name for f in a.fields(name) if f.name in {g.name for g in b.fields(name)}]
    for start in range(0, len(candidates), _DETAIL_BATCH):
        chunk = candidates[start : start + _DETAIL_BATCH]
        before, after = a.record_map(name, chunk), b.record_map(name, chunk)
        for record_id in chunk:
            old, new = before.get(record_id, {}), after.get(record_id, {})
            differ = [f for f in shared if not _same_value(old.get(f), new.get(f))]
            kept = [f for f in differ if f not in audit]
            if differ and not kept:
                result.stamps_only += 1
                continue
            result.changed += 1
            if detail:
                result.changed_fields[record_id] = kept


def diff_snapshots(a: SnapshotReader, b: SnapshotReader, *, id_field: str, fingerprint_field: str,
                   objects: Sequence[str] = (), detail: bool = False,
                   audit_fields: Sequence[str] = ()) -> SnapshotDiff:
    """Compare two snapshots of the same connection; BadInput for two connections or an object neither holds.
    A record whose only differences are in `audit_fields` is counted in `stamps_only`, not `changed`."""
    ma, mb = a.manifest, b.manifest
    if ma.connection != mb.connection:
        raise BadInput(f"snapshots {ma.snapshot_id} and {mb.snapshot_id} are of different connections "
                       f"({ma.connection!r}, {mb.connection!r}): diff compares two snapshots of one connection")
    names = list(dict.fromkeys([*ma.objects, *mb.objects]))
    if objects:
        unknown = [o for o in objects if o not in names]
        if unknown:
            raise BadInput(f"neither snapshot holds {', '.join(unknown)}: they hold {', '.join(names) or 'nothing'}")
        names = [n for n in names if n in objects]
    found: dict[str, ObjectDiff] = {}
    for name in names:
        result = ObjectDiff(name)
        found[name] = result
        if not a.has(name) or not b.has(name):
            result.status = "added" if b.has(name) else "removed"
            rows = (b if b.has(name) else a).manifest.objects[name].rows
            result.added, result.removed = (rows, 0) if b.has(name) else (0, rows)
            continue
        fields_a, fields_b = [f.name for f in a.fields(name)], [f.name for f in b.fields(name)]
        result.fields_added = [f for f in fields_b if f not in fields_a]
        result.fields_removed = [f for f in fields_a if f not in fields_b]
        shared = [f for f in fields_a if f in fields_b]
        if id_field not in shared:
            # A link table has no id of its own: a link is its row, added or removed.
            _diff_rows(a, b, name, shared, [], result, detail)
            continue
        # The fingerprint moves on every write; an object without one is compared on every shared field.
        compared = [fingerprint_field] if fingerprint_field in shared else [f for f in shared if f != id_field]
        _diff_rows(a, b, name, [id_field], compared, result, detail, frozenset(audit_fields))
    return SnapshotDiff(ma.snapshot_id, mb.snapshot_id, found, tuple(audit_fields))
