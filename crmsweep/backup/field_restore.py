"""Rolling back the removal of a custom field: the definition first, then its values from the snapshot.

A removed field definition (the provider's `CustomFields` concept) comes back like any record the CRM
cannot give back: a CREATE from its snapshot row (`recreate.create_values`: the columns the definitions
object marks createable, e.g. the field's full name and metadata, or the property's definition). Its
values went with it, so the rollback then writes them again: one UPDATE per record of the snapshot that
held a value, `after` = that value, expecting the record's fingerprint as the snapshot holds it (a
record someone edited since is skipped as drift, never overwritten) and `before` = the field empty (as
the re-created field is). A record the same rollback re-creates gets its value through its own create;
one it patches back gets the value folded into that update. Definitions are created before every other
change, so the values have a field to land in.

Pure over the snapshot reader it is given; the same function serves the planner and the plan checks, so
a plan restoring a field the run did not remove, or a value the snapshot does not hold, is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from crmsweep.cleanup.labels import record_label
from crmsweep.concepts import CustomFields
from crmsweep.model import Change, FieldKind, FieldSpec, Op, Record, Vocabulary


class RecordSource(Protocol):
    """What is read of the snapshot: its objects' field specs and rows (a SnapshotReader)."""

    def has(self, object_name: str) -> bool: ...

    def fields(self, object_name: str) -> tuple[FieldSpec, ...]: ...

    def records(self, object_name: str) -> Iterable[Record]: ...


def removed_fields(changes: Iterable[Change], vocabulary: Vocabulary) -> dict[str, list[tuple[str, Change]]]:
    """Record object -> (field, the removal) for every removal of a definition among `changes`."""
    concept = vocabulary.concept(CustomFields)
    found: dict[str, list[tuple[str, Change]]] = {}
    if concept is None:
        return found
    for change in changes:
        if change.object != concept.definitions or change.op not in (Op.ARCHIVE, Op.DELETE):
            continue
        target = concept.field_of(change.before)
        if target is not None:
            found.setdefault(target[0], []).append((target[1], change))
    return found


def holds_value(value: Any, kind: FieldKind) -> bool:
    """A value worth writing back: a checkbox only when true (it is never empty), text when not blank."""
    if value is None:
        return False
    if kind is FieldKind.BOOL:
        return value is True
    return not (isinstance(value, str) and not value.strip())


def value_restores(
    removals: Mapping[str, Sequence[tuple[str, Change]]],
    snapshot: RecordSource,
    undos: Mapping[tuple[str, str], Change],
    vocabulary: Vocabulary,
) -> dict[tuple[str, str], Change]:
    """The changes that write the removed fields' values back, by (object, record id): new UPDATEs, and
    the undos of `undos` that already patch a record back, with the values folded in."""
    out: dict[tuple[str, str], Change] = {}
    id_field, stamp = vocabulary.id_field, vocabulary.fingerprint_field
    for obj, fields in removals.items():
        if not snapshot.has(obj):
            continue
        kinds = {s.name: s.kind for s in snapshot.fields(obj)}
        present = [(name, removal) for name, removal in fields if name in kinds]
        if not present:
            continue
        for row in snapshot.records(obj):
            if vocabulary.deleted_field and row.get(vocabulary.deleted_field):
                continue
            values = {name: row[name] for name, _ in present if holds_value(row.get(name), kinds[name])}
            if not values:
                continue
            record_id = str(row[id_field])
            removal = next(r for name, r in present if name in values)
            key = (obj, record_id)
            undo = undos.get(key)
            if undo is not None:
                if undo.op is Op.UPDATE:
                    out[key] = replace(undo, after={**undo.after, **values})
                continue  # a re-create writes them itself; other undos leave the record as the CRM has it
            out[key] = Change(
                op=Op.UPDATE,
                object=obj,
                record_id=record_id,
                before={id_field: record_id, stamp: row.get(stamp), **dict.fromkeys(values)},
                after=values,
                reason=f"undo {removal.op}: put back the values of {', '.join(sorted(values))} "
                f"({removal.record_id})",
                pass_name=removal.pass_name,
                severity=removal.severity,
                fingerprint=row.get(stamp),
                label=record_label(vocabulary, obj, row),
            )
    return out


def definitions_first(changes: Sequence[Change], vocabulary: Vocabulary) -> list[Change]:
    """`changes` with the re-creates of field definitions moved to the front, order otherwise kept."""
    concept = vocabulary.concept(CustomFields)
    if concept is None:
        return list(changes)
    first = [c for c in changes if c.op is Op.CREATE and c.object == concept.definitions]
    return first + [c for c in changes if not (c.op is Op.CREATE and c.object == concept.definitions)]
