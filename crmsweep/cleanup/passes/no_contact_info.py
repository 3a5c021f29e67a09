"""Remove people with no email and no phone of any kind: nobody can reach them.

The fields that reach a person are the provider's (the ContactPoints concept: email, phone, mobile
phone, and other phone fields where the snapshot has them); a value of blanks only counts as empty.
Where the CRM has no recycle bin that undeletes, the pass archives (a rollback re-creates them).
Converted people (a lead turned contact) are left alone and noted. People on an open deal or an open
case are held back; without the objects that tell, the pass does not run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from crmsweep.cleanup.passes import (
    LiveCheck,
    LiveNeeds,
    LiveRows,
    ObjectRead,
    PassContext,
    PassOutput,
    PassSpec,
    Proposal,
    summary_of,
)
from crmsweep.cleanup.passes._guards import (
    TakenWith,
    cascade_live_reads,
    converted_flag,
    converted_of,
    filled,
    held_people,
    leave_converted,
    live_filled,
    live_is_in,
    people_guard_reads,
    people_guard_recheck,
    people_reads,
    propose_removals,
    removal_holds,
    removal_objects,
)
from crmsweep.cleanup.view import LiveColumns
from crmsweep.concepts import ContactPoints
from crmsweep.model import Change, Op, Vocabulary

NAME = "no_contact_info"


def _points(vocab: Vocabulary) -> ContactPoints:
    points = vocab.concept(ContactPoints)
    return points if points is not None else ContactPoints(fields={}, other_fields={})


def _people(vocab: Vocabulary) -> tuple[str, ...]:
    return tuple(o for o in vocab.people_objects if _points(vocab).fields.get(o))


def run(ctx: PassContext) -> PassOutput:
    vocab, view = ctx.vocabulary, ctx.view
    points = _points(vocab)
    targets = [o for o in _people(vocab) if view.has(o)]
    if not targets:
        return PassOutput(changes=[], skipped=f"no {' or '.join(_people(vocab))} object in the snapshot")
    _, cannot_guard = held_people(ctx, targets, read=False)
    if cannot_guard:
        return PassOutput(changes=[], skipped=cannot_guard)
    output = PassOutput(changes=[])
    held: dict[str, str] | None = None  # read once, and only if someone is unreachable
    taken = TakenWith({})
    for obj in targets:
        names = {s.name for s in view.fields(obj)}
        missing = [f for f in points.fields[obj] if f not in names]
        if missing:
            output.notes.append(f"{obj} was not judged: the snapshot lacks {', '.join(missing)}")
            continue
        reach = [*points.fields[obj], *(f for f in points.other_fields.get(obj, ()) if f in names)]
        flag = converted_flag(view, vocab, obj)
        live = LiveColumns(view, obj, [vocab.id_field], vocab.deleted_field)
        unreachable = _unreachable(live, reach)
        frame = live.frame(unreachable, [vocab.id_field, *([flag] if flag else [])])
        chosen = leave_converted(output, obj, frame, flag, pd.Series(True, index=frame.index))
        rows = frame[chosen].sort_values(vocab.id_field, kind="stable")
        if len(rows) and held is None:
            held, _ = held_people(ctx, targets)
        why = f"no way to reach them: {', '.join(reach)} all empty"
        propose_removals(ctx, NAME, output, obj, rows, [why] * len(rows), held or {}, taken)
    output.notes += taken.note(vocab, targets)
    return output


def _unreachable(live: LiveColumns, reach: Sequence[str]) -> np.ndarray:
    """The live rows none of the `reach` fields reaches, by row number."""
    left = np.flatnonzero(live.keep)
    for column in reach:
        if not len(left):
            break  # everyone is reached (at a million people, by the first field): the others are not read
        # Only the rows no earlier field reaches are looked at; a column is tested whole while most rows are
        # still in question (taking them would cost more than the test).
        values = live.column(column)
        there = filled(values).to_numpy(dtype=bool)[left] if len(left) > len(values) // 4 \
            else filled(values.iloc[left]).to_numpy(dtype=bool)
        left = left[~there]
    return left


def _live_needs(vocab: Vocabulary, object_name: str) -> LiveNeeds:
    points = _points(vocab)
    flag = converted_of(vocab, object_name)
    fields = (*points.fields.get(object_name, ()), *points.other_fields.get(object_name, ()), *([flag] if flag else []))
    return LiveNeeds(fields=fields, related=(*people_guard_reads(vocab), *cascade_live_reads(vocab, object_name)))


def _recheck(change: Change, live: LiveRows, settings: Mapping[str, Any], now: datetime) -> str | None:
    """Still unreachable (each field read, empty), not converted, on no open deal or case."""
    vocab, record = live.vocabulary, live.record
    points = _points(vocab)
    for name in (*points.fields.get(change.object, ()), *points.other_fields.get(change.object, ())):
        if live_filled(record.get(name)):
            return f"reachable now: {name} is filled"
    flag = converted_of(vocab, change.object)
    if flag and live_is_in(record.get(flag), (True,)):
        return f"converted since the scan ({flag} true)"
    return people_guard_recheck(live)


def _reads(vocab: Vocabulary) -> list[ObjectRead]:
    points = _points(vocab)
    return people_reads(vocab, {o: points.fields[o] for o in _people(vocab)})


SPEC = PassSpec(
    name=NAME,
    summary=summary_of(__doc__),
    order=12,
    defaults={},
    run=run,
    proposes=(
        Proposal(Op.DELETE, objects=lambda vocab: removal_objects(vocab, _people(vocab), Op.DELETE.value)),
        Proposal(Op.ARCHIVE, objects=lambda vocab: removal_objects(vocab, _people(vocab), Op.ARCHIVE.value)),
    ),
    live_check=LiveCheck(needs=_live_needs, recheck=_recheck, holds=removal_holds),
    needs=(ContactPoints,),
    reads=_reads,
)
