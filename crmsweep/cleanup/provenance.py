"""Provenance: every change of a plan must be one its source could have produced.

A signature says who wrote a plan, not that its content makes sense; and a plan accepted by an admin
was written by hand. So, whoever wrote it, a plan from a scan holds only what its passes declare
they propose (`PassSpec.proposes`: op, objects, the values written), with whole snapshot rows as
before-images; a rollback plan holds only exact inverses of what its run applied. Pure functions
over data already read: plan_checks reads the snapshot and the run log and calls these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crmsweep.backup.field_restore import undo_key
from crmsweep.cleanup.drift import same_value
from crmsweep.cleanup.labels import change_name, record_label
from crmsweep.cleanup.passes import ANY_VALUE, PASSES, Proposal, validate_settings
from crmsweep.errors import BadInput
from crmsweep.model import Change, Op, Plan, Vocabulary, canonical_json

# How many missing fields a before-image problem names.
_SHOWN_FIELDS = 3


def _same(a: Any, b: Any) -> bool:
    """Exactly equal as JSON (false is not 0, 1 is not 1.0 nor "1")."""
    return canonical_json(a) == canonical_json(b)


def _writes_match(after: Mapping[str, Any], writes: Mapping[str, Any]) -> bool:
    return all(name in writes and (writes[name] is ANY_VALUE or _same(value, writes[name]))
               for name, value in after.items())


def _writes_text(writes: Mapping[str, Any]) -> str:
    if not writes:
        return "nothing"
    return ", ".join(f"{k}={'(computed)' if v is ANY_VALUE else canonical_json(v)}" for k, v in writes.items())


def _proposal_problem(
    change: Change, proposals: tuple[Proposal, ...], vocabulary: Vocabulary, settings: Mapping[str, Any]
) -> str | None:
    name, op = change.pass_name, change.op
    same_op = [p for p in proposals if p.op is op]
    if not same_op:
        return f"pass {name} does not propose {op}"
    on_object = [p for p in same_op if change.object in p.objects(vocabulary)]
    if not on_object:
        return f"pass {name} does not propose {op} of {change.object}"
    if not any(_writes_match(change.after, p.writes_with(vocabulary, settings)) for p in on_object):
        declared = " or ".join(_writes_text(p.writes_with(vocabulary, settings)) for p in on_object)
        return f"pass {name} writes {declared}, not {canonical_json(change.after)}"
    return None


def _scan_change_problem(
    change: Change, passes: tuple[str, ...], vocabulary: Vocabulary, settings: Mapping[str, Mapping[str, Any]]
) -> str | None:
    if change.pass_name not in passes:
        return f"pass {change.pass_name or '(none)'} is not one the plan says it ran"
    spec = PASSES.get(change.pass_name)
    if spec is None:
        return f"{change.pass_name} is not a known pass"
    if change.object in vocabulary.never_touch_objects:
        return f"{change.object} records are never changed"
    if change.pass_name not in settings:
        return f"pass {change.pass_name} ran with settings this plan does not hold"
    problem = _proposal_problem(change, spec.proposes, vocabulary, settings[change.pass_name])
    if problem:
        return problem
    before = change.before
    if str(before.get(vocabulary.id_field)) != change.record_id:
        return f"its before-image is of {vocabulary.id_field} {before.get(vocabulary.id_field)!r}"
    if change.fingerprint != before.get(vocabulary.fingerprint_field):
        return f"its fingerprint is not the before-image's {vocabulary.fingerprint_field}"
    label = record_label(vocabulary, change.object, before)
    if change.label != label:
        return f"it is labelled {change.label!r} but the record is {label!r}"
    return None


def scan_plan_problems(plan: Plan, vocabulary: Vocabulary) -> list[str]:
    """What in a plan sourced from a snapshot no pass of it could have proposed ("Object id: why" each)."""
    if plan.header.rollback_of:
        return [f"a plan from a snapshot cannot be the rollback of run {plan.header.rollback_of}"]
    offenders: list[str] = []
    settings: dict[str, Mapping[str, Any]] = {}
    for name in plan.header.passes:
        if name in PASSES:
            try:
                settings[name] = validate_settings(name, plan.header.pass_settings.get(name, {}))
            except BadInput as exc:
                offenders.append(f"its settings of {name} are not valid: {exc}")
    seen: set[tuple[str, str]] = set()
    for change in plan.changes:
        key = (change.object, vocabulary.id_key(change.record_id))
        problem = _scan_change_problem(change, plan.header.passes, vocabulary, settings)
        if problem is None and key in seen:
            problem = "it is proposed twice"
        seen.add(key)
        if problem:
            offenders.append(f"{change_name(change)}: {problem}")
    return offenders


def snapshot_row_problem(before: Mapping[str, Any], row: Mapping[str, Any] | None) -> str | None:
    """Why `before` is not the snapshot's row, field by field; None when it is exactly that row.

    Whole rows, not only the fields written: a rollback (and the admin reading the run log) needs
    every value the record had, and a before-image shrunk to its id could put nothing back.
    """
    if row is None:
        return "not in the snapshot"
    extra = [name for name in before if name not in row]
    if extra:
        return f"{extra[0]} is not in the snapshot"
    missing = [name for name in row if name not in before]
    if missing:
        shown = ", ".join(missing[:_SHOWN_FIELDS]) + (", ..." if len(missing) > _SHOWN_FIELDS else "")
        return f"its before-image lacks {len(missing)} of the snapshot's fields ({shown})"
    for name, value in before.items():
        if not same_value(value, row[name]):
            return f"{name} is {value!r} in the plan but {row[name]!r} in the snapshot"
    return None


def inverse_problems(plan: Plan, inverses: Mapping[tuple[str, str], Change]) -> list[str]:
    """What in a rollback plan is not the exact inverse of an applied change (`inverses`, by object and id)."""
    offenders: list[str] = []
    seen: set[tuple[str, str]] = set()
    for change in plan.changes:
        key = undo_key(change)
        expected = inverses.get(key)
        if expected is None:
            problem: str | None = "no applied change of the run is undone by it"
        elif key in seen:
            problem = "it is undone twice"
        else:
            problem = _inverse_problem(change, expected)
        seen.add(key)
        if problem:
            offenders.append(f"{change_name(change)}: {problem}")
    return offenders


def _inverse_problem(change: Change, expected: Change) -> str | None:
    if change.op is not expected.op:
        return f"{change.op} is not the undo of the applied change ({expected.op})"
    # A re-link's ends and types are the snapshot's link; a re-create's values, the logged before-image.
    held = "the snapshot's link" if expected.op is Op.ASSOCIATE else "the logged before-image"
    for name in dict.fromkeys([*change.after, *expected.after]):
        if name not in expected.after:
            return f"it writes {name}, which undoing the applied change does not"
        if name not in change.after or not _same(change.after[name], expected.after[name]):
            return f"{name} differs from {held}"
    actual, wanted = change.to_dict(), expected.to_dict()
    for name in ("before", "fingerprint", "label", "reason", "pass", "severity"):
        if not _same(actual[name], wanted[name]):
            return f"its {name} is not that of the undo of the applied change"
    return None
