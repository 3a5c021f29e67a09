"""Rolling back the removal of a custom field: the definition first, then its values from the snapshot.

A removed field definition (the provider's `CustomFields` concept) comes back like any record the CRM
cannot give back: a CREATE from its snapshot row (`recreate.create_values`: the columns the definitions
object marks createable, e.g. the field's full name and metadata, or the property's definition). Its
values went with it, so the rollback then writes them again: one *value restore* per record of the
snapshot that held a value, after every other change of the rollback (so onto a record the same plan
undeletes, once it is back, and after an undo that patches the record back, which checks the stamp).

A value restore is an UPDATE with no fingerprint whose before-image holds only the record's id and the
fields it writes, each empty. Its precondition is not the record's stamp (a record edited since the
backup, on any other field, must still get its value: nobody can have written a field that did not
exist) but that those fields are empty on the live record, or already hold the value (`restore_verdict`):
a value someone wrote into the re-created field since is never overwritten. A record the same rollback
re-creates gets its value through its own create.

Pure over the snapshot reader it is given; the same function serves the planner and the plan checks, so
a plan restoring a field the run did not remove, or a value the snapshot does not hold, is refused; and
the same function tells `api` which values a run's rollbacks did not put back (then it is not marked
rolled back).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from crmsweep.backup.runlog import Outcome, RunState
from crmsweep.cleanup.drift import same_value
from crmsweep.cleanup.labels import record_label
from crmsweep.concepts import CustomFields
from crmsweep.decimal_text import same_decimal
from crmsweep.model import Capabilities, Change, FieldKind, FieldSpec, Op, Record, Vocabulary

if TYPE_CHECKING:  # pandas is imported where frames are read: the plan checks and rollback CLI need it rarely
    import pandas as pd

# Why a value restore is skipped (logged and reported as other skips are).
SKIP_VALUE_WRITTEN = "value written since"
SKIP_FIELD_MISSING = "field missing"
SKIP_RECORD_GONE = "missing"
# How a live value differs from the snapshot's (`how_changed`).
CHANGED = "changed"
CLEARED = "cleared"
# The key a value restore has among a rollback's changes: apart from the undo of the same record.
_RESTORE_TAG = " (values)"


class RecordSource(Protocol):
    """What is read of the snapshot: its objects' field specs and rows (a SnapshotReader)."""

    def has(self, object_name: str) -> bool: ...

    def fields(self, object_name: str) -> tuple[FieldSpec, ...]: ...

    def frame(self, object_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame: ...

    def record_map(self, object_name: str, ids: Iterable[str]) -> dict[str, Record]: ...


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


def holds_value(value: Any, spec: FieldSpec) -> bool:
    """A value worth writing back: text when not blank; a checkbox when true, or when false on a field
    that can also be empty (a three-state checkbox: "no" is an answer, not a blank; a two-state one is
    false by default and never empty)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    if spec.kind is FieldKind.BOOL:
        return value is True or (value is False and spec.nillable)
    return not (isinstance(value, str) and not value.strip())


def filled_mask(values: pd.Series, spec: FieldSpec) -> pd.Series:
    """`holds_value` over a snapshot column (a frame's typed values)."""
    if spec.kind is FieldKind.BOOL:
        return values.notna() if spec.nillable else values.fillna(False).astype(bool)
    present = values.notna()
    if spec.kind is FieldKind.STRING:
        present &= values.astype("string").str.strip().fillna("") != ""
    return present


def filled_rows(snapshot: RecordSource, obj: str, fields: Sequence[str], vocabulary: Vocabulary) -> dict[str, Record]:
    """The snapshot's rows of `obj` (canonical form, not in the recycle bin) holding a value in any of
    `fields` (those the snapshot has), by id: what a removal of those fields takes away.

    The filled ids come from the columns alone; only those rows are read whole (a field removed with
    values is filled on at most `max_fill` of its records)."""
    if not snapshot.has(obj):
        return {}
    kinds = {s.name: s.kind for s in snapshot.fields(obj)}
    present = [f for f in dict.fromkeys(fields) if f in kinds]
    if not present:
        return {}
    import pandas as pd

    deleted = vocabulary.deleted_field if vocabulary.deleted_field in kinds else None
    frame = snapshot.frame(obj, [vocabulary.id_field, *present, *([deleted] if deleted else [])])
    mask = pd.Series(False, index=frame.index)
    specs = {s.name: s for s in snapshot.fields(obj)}
    for name in present:
        mask |= filled_mask(frame[name], specs[name])
    if deleted:
        mask &= ~frame[deleted].fillna(False).astype(bool)
    ids = [str(i) for i in frame.loc[mask, vocabulary.id_field]]
    return snapshot.record_map(obj, ids)


def value_restores(
    removals: Mapping[str, Sequence[tuple[str, Change]]],
    snapshot: RecordSource,
    undos: Mapping[tuple[str, str], Change],
    vocabulary: Vocabulary,
) -> dict[tuple[str, str], Change]:
    """The value restores that write the removed fields' values back, by `undo_key`: one per record of
    the snapshot holding a value, except those `undos` re-create (their create writes the values)."""
    out: dict[tuple[str, str], Change] = {}
    id_field = vocabulary.id_field
    for obj, fields in removals.items():
        if not snapshot.has(obj):
            continue
        specs = {s.name: s for s in snapshot.fields(obj)}
        present = [(name, removal) for name, removal in fields if name in specs]
        rows = filled_rows(snapshot, obj, [name for name, _ in present], vocabulary)
        for record_id in sorted(rows):
            row = rows[record_id]
            values = {name: row[name] for name, _ in present if holds_value(row.get(name), specs[name])}
            undo = undos.get((obj, record_id))
            if not values or (undo is not None and undo.op is Op.CREATE):
                continue
            removal = next(r for name, r in present if name in values)
            restore = Change(
                op=Op.UPDATE,
                object=obj,
                record_id=record_id,
                before={id_field: record_id, **dict.fromkeys(values)},
                after=values,
                reason=f"undo {removal.op}: put back the values of {', '.join(sorted(values))} "
                f"({removal.record_id})",
                pass_name=removal.pass_name,
                severity=removal.severity,
                fingerprint=None,
                label=record_label(vocabulary, obj, row),
            )
            out[undo_key(restore)] = restore
    return out


def is_value_restore(change: Change) -> bool:
    """Whether `change` has a value restore's shape (module docstring). Only a rollback plan's changes are
    taken as such, and the plan checks rebuild every one of them from the snapshot."""
    if change.op is not Op.UPDATE or change.fingerprint is not None or not change.after:
        return False
    if any(name not in change.before or change.before[name] is not None for name in change.after):
        return False
    rest = [value for name, value in change.before.items() if name not in change.after]
    return rest == [change.record_id]


def undo_key(change: Change) -> tuple[str, str]:
    """What a change of a rollback plan is known by among the undos (`rollback.rollback_changes`): its
    (object, record id), apart for a value restore, which may follow the undo of the same record."""
    if is_value_restore(change):
        return change.object + _RESTORE_TAG, change.record_id
    return change.object, change.record_id


def _empty(value: Any) -> bool:
    # Kind-free: a live read gives a cleared checkbox as false, and some CRMs every value as text.
    if value is None or value is False or (isinstance(value, float) and math.isnan(value)):
        return True
    return isinstance(value, str) and not value.strip()


def live_matches(live: Any, value: Any, kind: FieldKind | None = None) -> bool:
    """Whether a live read's value is the snapshot's `value` (canonical form): alike in canonical form, or
    spelled as text by a CRM that sends every value as a string (a number, a checkbox)."""
    if same_value(live, value):
        return True
    if kind is FieldKind.DECIMAL and isinstance(live, str) and isinstance(value, str):
        # Exactly, as decimals: a double would call "12345678901234567890" and "...7990" the same.
        return same_decimal(live, value)
    if not isinstance(live, str) or isinstance(value, str):
        return False
    if isinstance(value, bool) or kind is FieldKind.BOOL:
        return live.strip().lower() == str(value).lower()
    if isinstance(value, int | float):
        try:
            return float(live) == float(value)
        except ValueError:
            return False
    return False


def how_changed(live: Mapping[str, Any] | None, name: str, value: Any, kind: FieldKind | None = None) -> str | None:
    """How the live record differs from the snapshot's `value` of field `name` ("changed", "cleared"), or
    None if it holds it. A record gone for good takes its value with it whatever happens to the field; one
    in the recycle bin is compared as it lies there (a rollback writes its value once it is undeleted)."""
    if live is None:
        return None
    if _empty(live.get(name)):
        return CLEARED
    return None if live_matches(live.get(name), value, kind) else CHANGED


def restore_verdict(
    change: Change, live: Mapping[str, Any] | None, vocabulary: Vocabulary, capabilities: Capabilities
) -> tuple[str, str] | None:
    """Why value restore `change` must be skipped given the live record (None if absent), or None."""
    if live is None:
        return SKIP_RECORD_GONE, "it is no longer in the CRM: its values are in the snapshot only"
    if vocabulary.deleted_field and live.get(vocabulary.deleted_field):
        # Said from the capabilities: where crmsweep cannot undelete, only the CRM's own UI can.
        how = capabilities.how_to_put_back(change.object)
        return SKIP_RECORD_GONE, f"it is deleted: put the record back ({how}), then roll back again to write its values"
    taken = [name for name, value in change.after.items()
             if not (_empty(live.get(name)) or live_matches(live.get(name), value))]
    if taken:
        return (SKIP_VALUE_WRITTEN, f"{', '.join(taken)} holds a value written since the field was re-created: "
                "not overwritten (the old value is in the snapshot)")
    return None


def missing_field_verdict(change: Change, fields: Iterable[str]) -> tuple[str, str] | None:
    """Why value restore `change` cannot be written: a field it writes is not on the object (`fields`)."""
    names = set(fields)
    lacking = [name for name in change.after if name not in names]
    if not lacking:
        return None
    return (SKIP_FIELD_MISSING, f"{change.object} has no field {', '.join(lacking)} (its re-create failed or was "
            "skipped): re-create it, then roll back again")


def restore_order(changes: Sequence[Change], vocabulary: Vocabulary) -> list[Change]:
    """`changes` with the re-creates of field definitions moved to the front (the values need a field to
    land in) and the value restores to the end (after the undelete or the undo of the same record), order
    otherwise kept."""
    concept = vocabulary.concept(CustomFields)
    definitions = concept.definitions if concept is not None else None

    def rank(change: Change) -> int:
        if change.op is Op.CREATE and change.object == definitions:
            return 0
        return 2 if is_value_restore(change) else 1

    return sorted(changes, key=rank)


def _restore_outcomes(rollbacks: Sequence[RunState]) -> tuple[set[tuple[str, str]], dict[tuple[str, str], str]]:
    """The `undo_key`s of the value restores `rollbacks` (oldest first) applied, and why each of the others
    was not: the latest skip reason or error code logged for it."""
    done: set[tuple[str, str]] = set()
    why: dict[tuple[str, str], str] = {}
    for state in rollbacks:
        for outcome in state.outcomes:
            change = state.plan.changes[outcome.index]
            if not is_value_restore(change):
                continue
            key = undo_key(change)
            if outcome.outcome is Outcome.APPLIED:
                done.add(key)
            else:
                why[key] = outcome.reason or outcome.error_code or str(outcome.outcome)
    return done, why


def unrestored(expected: Iterable[Change], rollbacks: Sequence[RunState]) -> list[tuple[Change, str]]:
    """The value restores of `expected` that none of `rollbacks` (oldest first) applied, each with why:
    the latest skip reason or error code logged for it, or "not in the plan"."""
    done, why = _restore_outcomes(rollbacks)
    return [(c, why.get(undo_key(c), "not in the plan")) for c in expected if undo_key(c) not in done]


@dataclass(frozen=True)
class RollbackWrites:
    """What a rollback run wrote into the fields it re-created, read from its log: the definitions it
    re-created (new id -> (object, field)) and the values (by (object, field): record id -> value)."""

    definitions: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    values: Mapping[tuple[str, str], Mapping[str, Any]] = field(default_factory=dict)


def values_written(state: RunState, removals: Mapping[str, Sequence[tuple[str, Change]]]) -> RollbackWrites:
    """What rollback run `state` wrote into the fields `removals` names (those of the run it undid:
    `removed_fields`): the definitions it re-created, and the values of its applied value restores and of
    the records it re-created (under their new ids): what a rollback of it may clear and remove again.
    From its log, not from a plan, so no plan can widen it."""
    targets = {removal.record_id: (obj, name) for obj, fields in removals.items() for name, removal in fields}
    definitions: dict[str, tuple[str, str]] = {}
    values: dict[tuple[str, str], dict[str, Any]] = {target: {} for target in targets.values()}
    for index in state.applied_order:
        change, outcome = state.plan.changes[index], state.outcomes[index]
        if change.op is Op.CREATE and change.record_id in targets and outcome.record_id:
            definitions[outcome.record_id] = targets[change.record_id]
        if change.object not in removals or not (is_value_restore(change) or change.op is Op.CREATE):
            continue
        record_id = outcome.record_id if change.op is Op.CREATE else change.record_id
        for name, _removal in removals[change.object]:
            if record_id and not _empty(change.after.get(name)):
                values[(change.object, name)][record_id] = change.after[name]
    return RollbackWrites(definitions=definitions, values=values)
