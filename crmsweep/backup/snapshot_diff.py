"""What changed between two snapshots of one connection, per object: records added, removed and
changed, and fields added to or removed from describe.

Streaming in the sense that matters at 1M rows: of a large object only the id and the fingerprint the CRM
bumps on every write of a record's fields are read to find the records, compared in Arrow (a small object,
metadata where a CRM changes a definition without its stamp, is compared on every shared field); whole
records are read only for those that differ, a batch at a time: with `detail`, to name the fields that
differ, and to tell a change from a record whose only difference is the CRM's own audit stamps (the
fields the provider's vocabulary names, given as `audit_fields`, and stamp keys inside a JSON text field,
`audit_keys`): an apply and its rollback leave every record they touched with new stamps and nothing else
changed, which is not a change to list. A value in a field only one backup has is a change; a record the
provider's deleted field marks archived in B and not in A is removed (the reverse: added). An object only one
snapshot holds is not compared, and none of its rows count: a manifest cannot tell an object its backup was not
asked for from one gone from the CRM. Full and incremental snapshots compare alike: both read through
`SnapshotReader`."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from crmsweep.backup.snapshot_reader import SnapshotReader
from crmsweep.backup.snapshot_values import canonical_column
from crmsweep.decimal_text import DECIMAL_PATTERN
from crmsweep.errors import BadInput
from crmsweep.model import FieldKind

_DETAIL_BATCH = 10_000  # changed records read whole at a time, with `detail`
# Objects up to this many rows are compared on every field, not on their fingerprint alone: see diff_snapshots.
WHOLE_ROWS_UP_TO = 50_000


@dataclass
class ObjectDiff:
    name: str
    # "both", or "only_in_a" / "only_in_b": the other snapshot did not take the object, so it is not compared
    # and its rows count neither added nor removed (see diff_snapshots).
    status: str = "both"
    uncompared: int = 0  # rows of the one snapshot that holds it, for an object in one only
    added: int = 0
    removed: int = 0
    changed: int = 0
    stamps_only: int = 0  # records whose only differences are audit stamps: not counted changed
    fields_added: list[str] = field(default_factory=list)
    fields_removed: list[str] = field(default_factory=list)
    fields_retyped: dict[str, list[str]] = field(default_factory=dict)  # field -> [its kind in A, in B]
    # With detail only:
    added_ids: list[str] = field(default_factory=list)
    removed_ids: list[str] = field(default_factory=list)
    changed_fields: dict[str, list[str]] = field(default_factory=dict)  # id -> fields whose values differ

    def to_dict(self, detail: bool) -> dict[str, Any]:
        data: dict[str, Any] = {
            "status": self.status, "uncompared_rows": self.uncompared,
            "added": self.added, "removed": self.removed, "changed": self.changed,
            "stamps_only": self.stamps_only,
            "fields_added": self.fields_added, "fields_removed": self.fields_removed,
            "fields_retyped": self.fields_retyped,
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
    # The stamp keys left out inside a JSON text field (field -> its keys): named to the admin with the fields.
    audit_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self, detail: bool = False) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "audit_fields": list(self.audit_fields),
                "audit_keys": {name: list(keys) for name, keys in self.audit_keys.items()},
                "objects": {n: d.to_dict(detail) for n, d in self.objects.items()}}


def _keys(reader: SnapshotReader, name: str, key: Sequence[str], compared: Sequence[str],
          extra: Sequence[str] = (), prefix: str = "x") -> pa.Table:
    """The key (one id column, or all columns joined for a link table), the compared columns (c0..) and
    the `extra` ones (`prefix`0..)."""
    table = reader.table(name, list(dict.fromkeys([*key, *compared, *extra])))
    if len(key) == 1:
        ids = table.column(key[0]).cast(pa.string())
    else:
        ids = pc.binary_join_element_wise(*[pc.fill_null(table.column(k).cast(pa.string()), "") for k in key], "\x1f")
    return pa.table({"id": ids, **{f"c{i}": table.column(c) for i, c in enumerate(compared)},
                     **{f"{prefix}{i}": table.column(c) for i, c in enumerate(extra)}})


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
    # A date or datetime against another type: as its canonical text, the value `record_map` gives `--detail`
    # (Arrow's own text of a timestamp, "2026-01-01 00:00:00.000Z", is no text the CRM writes, so every record
    # would differ and `--detail` name no field for it).
    left, right = _canonical_dates(left), _canonical_dates(right)
    if left.type == right.type:
        return pc.not_equal(left, right)
    for number, text in ((left, right), (right, left)):
        if pa.types.is_floating(number.type) and pa.types.is_string(text.type):
            is_decimal = pc.match_substring_regex(text, DECIMAL_PATTERN)
            as_number = pc.cast(pc.if_else(is_decimal, text, pa.scalar(None, pa.string())), number.type)
            return pc.if_else(is_decimal, pc.not_equal(number, as_number),
                              pc.not_equal(_number_text(number), text))
    return pc.not_equal(pc.cast(left, pa.string()), pc.cast(right, pa.string()))


def _canonical_dates(column: pa.ChunkedArray) -> pa.ChunkedArray:
    for kind, is_kind in ((FieldKind.DATETIME, pa.types.is_timestamp), (FieldKind.DATE, pa.types.is_date)):
        if is_kind(column.type):
            text = canonical_column(column, kind)
            return text if isinstance(text, pa.ChunkedArray) else pa.chunked_array([text])
    return column


def _same_value(old: Any, new: Any) -> bool:
    """`_unequal` for two canonical values (a double and a text: as `_unequal` compares them)."""
    for number, text in ((old, new), (new, old)):
        if type(number) is float and type(text) is str:
            if re.fullmatch(DECIMAL_PATTERN, text):
                return float(text) == number
            return bool(_number_text(pa.array([number], pa.float64()))[0].as_py() == text)
    if old is not None and new is not None and type(old) is not type(new):
        # Any other two types compare as `_unequal` does: each as Arrow's text of it (5 and "5" alike).
        try:
            return bool(pc.cast(pa.array([old]), pa.string())[0] == pc.cast(pa.array([new]), pa.string())[0])
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return False
    return bool(old == new)


def _differs(left: pa.ChunkedArray, right: pa.ChunkedArray) -> pa.ChunkedArray:
    # Null-aware: null against a value differs, null against null does not.
    either_null = pc.xor(pc.is_null(left), pc.is_null(right))
    return pc.or_(pc.fill_null(_unequal(left, right), False), either_null)


@dataclass(frozen=True)
class _Rules:
    """What a record's difference means: stamps not counted (`audit`, and `audit_keys`, stamp keys inside a
    JSON text field), and the field that marks a record archived (`deleted`): live in A and archived in B is
    a removal, the reverse an addition, not a change."""

    audit: frozenset[str] = frozenset()
    audit_keys: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    deleted: str | None = None


def _without_keys(value: Any, keys: tuple[str, ...]) -> Any:
    """A JSON text without the stamp keys at its top level; a value that is no JSON object, as it is."""
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return {k: v for k, v in parsed.items() if k not in keys} if isinstance(parsed, dict) else value


def _stamps_only(name: str, old: Any, new: Any, rules: _Rules) -> bool:
    """Whether a field that differs differs only in the CRM's stamps."""
    if name in rules.audit:
        return True
    keys = rules.audit_keys.get(name, ())
    return bool(keys) and _without_keys(old, keys) == _without_keys(new, keys)


def _held(table: pa.Table, prefix: str, count: int) -> pa.ChunkedArray | None:
    """Per row, whether any of the `count` columns named `prefix`0.. holds a value (None for no column)."""
    held: pa.ChunkedArray | None = None
    for i in range(count):
        valid = pc.is_valid(table.column(f"{prefix}{i}"))
        held = valid if held is None else pc.or_(held, valid)
    return held


def _archived(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.fill_null(pc.cast(column, pa.bool_()), False)


def _diff_rows(a: SnapshotReader, b: SnapshotReader, name: str, key: Sequence[str], compared: Sequence[str],
               result: ObjectDiff, detail: bool, rules: _Rules = _Rules()) -> None:
    fields_a, fields_b = [f.name for f in a.fields(name)], [f.name for f in b.fields(name)]
    shared = [f for f in fields_a if f in fields_b]
    # A field one backup lacks differs where the other holds a value in it (a value written into a field
    # new in B is a change, not a stamp).
    only_a = [f for f in fields_a if f not in fields_b] if compared else []
    only_b = [f for f in fields_b if f not in fields_a] if compared else []
    deleted = rules.deleted if compared and rules.deleted in shared else None
    marks = [deleted] if deleted else []
    left = _keys(a, name, key, [*compared, *marks], only_a, "xa")
    right = _keys(b, name, key, [*compared, *marks], only_b, "xb")
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
    for held in (_held(both, "xa", len(only_a)), _held(both, "xb", len(only_b))):
        if held is not None:
            differs = pc.or_(differs, held)
    if deleted:
        was, now = _archived(both.column(f"c{len(compared)}_a")), _archived(both.column(f"c{len(compared)}_b"))
        archived, restored = pc.and_(pc.invert(was), now), pc.and_(was, pc.invert(now))
        result.removed += pc.sum(archived).as_py() or 0
        result.added += pc.sum(restored).as_py() or 0
        if detail:
            result.removed_ids += _string_ids(both.filter(archived).column("id"))
            result.added_ids += _string_ids(both.filter(restored).column("id"))
        differs = pc.and_(differs, pc.invert(pc.or_(archived, restored)))
    candidates = _string_ids(both.filter(differs).column("id"))
    if not detail and not rules.audit and not rules.audit_keys:
        result.changed = len(candidates)
        return
    for start in range(0, len(candidates), _DETAIL_BATCH):
        chunk = candidates[start : start + _DETAIL_BATCH]
        before, after = a.record_map(name, chunk), b.record_map(name, chunk)
        for record_id in chunk:
            old, new = before.get(record_id, {}), after.get(record_id, {})
            differ = [f for f in shared if not _same_value(old.get(f), new.get(f))]
            differ += [f for f in only_a if old.get(f) is not None] + [f for f in only_b if new.get(f) is not None]
            kept = [f for f in differ if not _stamps_only(f, old.get(f), new.get(f), rules)]
            if differ and not kept:
                result.stamps_only += 1
                continue
            result.changed += 1
            if detail:
                result.changed_fields[record_id] = kept


def diff_snapshots(a: SnapshotReader, b: SnapshotReader, *, id_field: str, fingerprint_field: str,
                   objects: Sequence[str] = (), detail: bool = False,
                   audit_fields: Sequence[str] = (), audit_keys: Mapping[str, Sequence[str]] | None = None,
                   deleted_field: str | None = None) -> SnapshotDiff:
    """Compare two snapshots of the same connection; BadInput for two connections or an object neither holds.
    A record whose only differences are in `audit_fields` (or in the `audit_keys` of a JSON text field) is
    counted in `stamps_only`, not `changed`; one `deleted_field` marks archived in B and not in A is removed. An
    object only one snapshot holds is not compared (`status` "only_in_a" or "only_in_b"): none of its rows count."""
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
    rules = _Rules(frozenset(audit_fields), {k: tuple(v) for k, v in (audit_keys or {}).items()}, deleted_field)
    found: dict[str, ObjectDiff] = {}
    for name in names:
        result = ObjectDiff(name)
        found[name] = result
        if not a.has(name) or not b.has(name):
            # A manifest lists only the objects its backup took (`--object`, or a default set that skips objects
            # the CRM lacks) and nothing of the CRM's other objects, so an object one snapshot lacks may be one it
            # was not asked for as well as one gone from the CRM: its rows are neither removed nor added.
            result.status = "only_in_b" if b.has(name) else "only_in_a"
            result.uncompared = (b if b.has(name) else a).manifest.objects[name].rows
            continue
        fields_a, fields_b = [f.name for f in a.fields(name)], [f.name for f in b.fields(name)]
        result.fields_added = [f for f in fields_b if f not in fields_a]
        result.fields_removed = [f for f in fields_a if f not in fields_b]
        # A field retyped in the CRM is named here: a record whose value in it differs is then listed by
        # `--detail` with that field, compared value by value (`_unequal`), and one whose value reads alike is not.
        kinds_b = {f.name: f.kind for f in b.fields(name)}
        result.fields_retyped = {f.name: [f.kind.value, kinds_b[f.name].value] for f in a.fields(name)
                                 if f.name in kinds_b and kinds_b[f.name] is not f.kind}
        shared = [f for f in fields_a if f in fields_b]
        if id_field not in shared:
            # A link table has no id of its own: a link is its row, added or removed.
            _diff_rows(a, b, name, shared, [], result, detail)
            continue
        # The fingerprint moves on every write of a record's own fields, but not on every change a CRM makes
        # (an archived definition keeps its stamp): a small object, where metadata lives, is compared on every
        # shared field, a large one on its fingerprint; one without a fingerprint on every shared field too.
        small = max(ma.objects[name].rows, mb.objects[name].rows) <= WHOLE_ROWS_UP_TO
        whole = small or fingerprint_field not in shared
        compared = [f for f in shared if f != id_field] if whole else [fingerprint_field]
        _diff_rows(a, b, name, [id_field], compared, result, detail, rules)
    return SnapshotDiff(ma.snapshot_id, mb.snapshot_id, found, tuple(audit_fields), dict(rules.audit_keys))
