"""Delete people (contacts, leads) with no activity for years, except those on an open deal.

Where the CRM has no recycle bin that undeletes (the vocabulary's `removal` is "archive"), the pass
archives them instead, and a rollback re-creates them under new ids.

Last activity is the first non-null of the vocabulary's `last_activity_fields` (e.g.
LastActivityDate, then LastModifiedDate). When all of them are empty the record's created date is
used, so a person nobody ever touched is judged by when they were entered; a record with none of
these dates is left alone and counted in a note. A person is stale when that date (in UTC) falls
before the same calendar day `years` years ago (29 February counts back to 28 February); a date
exactly on that day is not stale.

People linked to an open deal are held back. A deal whose closed flag is empty, or that a link names
but the snapshot lacks, counts as open: when in doubt we keep the person. Without the link or deal
object in the snapshot the guard cannot be checked, so the pass does not run.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crmsweep.bounds import Bound
from crmsweep.cleanup.passes import (
    LiveCheck,
    LiveNeeds,
    LiveRows,
    ObjectRead,
    PassContext,
    PassOutput,
    PassSpec,
    Proposal,
    propose_all,
    summary_of,
)
from crmsweep.cleanup.passes._guards import (
    TakenWith,
    cascade_live_reads,
    cascade_reads,
    deal_guard_reads,
    is_in,
    live_day,
    one_setting_of,
    open_deal_now,
    people_on_open_deals,
    removal_holds,
    removal_takes,
)
from crmsweep.cleanup.view import DATETIME_DTYPE, ids_of, live_frame
from crmsweep.errors import BadInput
from crmsweep.model import Change, Op, Severity, Vocabulary

NAME = "stale_contacts"
ACTIONS = ("delete",)


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year - years, day=28)


def _check(settings: Mapping[str, Any]) -> None:
    one_setting_of(NAME, "action", ACTIONS, settings)


def _reason(vocab: Vocabulary, source: str, day: str) -> str:
    if vocab.last_activity_fields and source == vocab.last_activity_fields[0]:
        return f"stale: no activity since {day}"
    if source in vocab.last_activity_fields:
        return f"stale: no activity recorded; last modified {day}"
    return f"stale: no activity recorded; created {day}"


def run(ctx: PassContext) -> PassOutput:
    vocab, view = ctx.vocabulary, ctx.view
    wanted = list(ctx.settings["objects"]) or list(vocab.people_objects)
    unknown = [o for o in wanted if o not in vocab.people_objects]
    if unknown:
        raise BadInput(
            f"[passes.{NAME}] objects: {', '.join(unknown)} is not a people object; "
            f"choose from {', '.join(vocab.people_objects)}"
        )
    targets = [o for o in vocab.people_objects if o in wanted and view.has(o)]
    if not targets:
        return PassOutput(changes=[], skipped=f"no {' or '.join(wanted)} object in the snapshot")
    protected, cannot_guard = people_on_open_deals(ctx, targets)
    if cannot_guard:
        return PassOutput(changes=[], skipped=cannot_guard)

    cutoff = np.datetime64(years_before(ctx.now.astimezone(UTC).date(), ctx.settings["years"]), "ms")
    held_reason = f"on an open {vocab.label(vocab.deal_object)}"
    output = PassOutput(changes=[])
    taken = TakenWith({})
    for obj in targets:
        names = {s.name for s in view.fields(obj)}
        chain = [f for f in (*vocab.last_activity_fields, vocab.created_field) if f in names]
        frame = live_frame(view, obj, [vocab.id_field, *chain], vocab.deleted_field)
        when, source = last_dates(frame, chain)
        undated = int(np.isnat(when).sum())
        if undated:
            output.notes.append(
                f"{undated} {obj} record has no activity, modified or created date and was left alone"
                if undated == 1
                else f"{undated} {obj} records have no activity, modified or created date and were left alone"
            )
        # NaT compares as never before the cutoff: undated rows are not stale.
        stale = frame[vocab.id_field][when < cutoff].sort_values(kind="stable")
        held = is_in(stale, protected).to_numpy(dtype=bool)
        if n_held := int(held.sum()):
            output.held_back[held_reason] = output.held_back.get(held_reason, 0) + n_held
        keep = stale[~held]
        # A removal that would take a protected record with it (the CRM's cascade) is held back too.
        takes = removal_takes(ctx, obj, ids_of(keep), taken)
        if takes:
            for why in takes.values():
                output.held_back[why] = output.held_back.get(why, 0) + 1
            keep = keep[~is_in(keep, list(takes)).to_numpy(dtype=bool)]
        rows = keep.index.to_numpy()  # the frame's positions (live_frame numbers its rows from 0)
        ids = ids_of(keep)
        records = view.before_images(obj, ids)
        output.changes += propose_all(ctx, NAME, Op(vocab.removal), obj, list(map(records.__getitem__, ids)),
                                      reasons=_reasons(vocab, chain, when[rows], source[rows]),
                                      severity=Severity.MINOR)
    output.notes += taken.note(vocab, targets)
    return output


def last_dates(frame: pd.DataFrame, chain: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the first date of the `chain` columns that is set (datetime64[ms], UTC; NaT where none is)
    and the position in `chain` of the column it came from (-1 where none), a column at a time in numpy."""
    when = np.full(len(frame), np.datetime64("NaT", "ms"))
    source = np.full(len(frame), -1, dtype=np.int8)
    for at, column in enumerate(chain):
        values = frame[column].astype(DATETIME_DTYPE).to_numpy(dtype="datetime64[ms]")
        fill = np.isnat(when) & ~np.isnat(values)
        when[fill] = values[fill]
        source[fill] = at
    return when, source


def _reasons(vocab: Vocabulary, chain: list[str], when: np.ndarray, source: np.ndarray) -> list[str]:
    """Each change's reason, from its date's UTC day and the `chain` column it came from: one text per
    (column, day), made once and shared by the changes that have it (hundreds of thousands)."""
    if not len(when):
        return []
    days = when.astype(np.int64) // _MS_A_DAY  # floor: a moment before the epoch is on the day before
    pairs, which = np.unique(days * len(chain) + source, return_inverse=True)
    texts = [_reason(vocab, chain[int(pair) % len(chain)], day)
             for pair, day in zip(pairs.tolist(), _day_texts(pairs // len(chain)), strict=True)]
    return list(map(texts.__getitem__, which.tolist()))


_MS_A_DAY = 86_400_000


def _day_texts(days: np.ndarray) -> list[str]:
    """Each day (days since the epoch) as "YYYY-MM-DD", as `date.isoformat()` writes it."""
    texts: list[str] = pc.cast(pa.array(days.astype(np.int32), type=pa.date32()), pa.string()).to_pylist()
    return texts


def _people_removed_by(vocab: Vocabulary, op: Op) -> tuple[str, ...]:
    """The people objects the pass removes with `op`: all of them for the provider's removal, else none."""
    return vocab.people_objects if Op(vocab.removal) is op else ()


def _live_needs(vocab: Vocabulary, object_name: str) -> LiveNeeds:
    return LiveNeeds(fields=(*vocab.last_activity_fields, vocab.created_field),
                     related=(*deal_guard_reads(vocab), *cascade_live_reads(vocab, object_name)))


def _recheck(change: Change, live: LiveRows, settings: Mapping[str, Any], now: datetime) -> str | None:
    """The scan's rules on the live record: still stale, and on no open deal (a missing deal counts as open)."""
    vocab, record = live.vocabulary, live.record
    cutoff = years_before(now.astimezone(UTC).date(), settings["years"])
    for name in (*vocab.last_activity_fields, vocab.created_field):
        day = live_day(record.get(name))
        if day is not None:
            if day >= cutoff:
                return f"no longer stale: {name} is {day.isoformat()}"
            break
    deal = open_deal_now(live)
    if deal:
        return f"now on an open {vocab.label(vocab.deal_object)} ({deal})"
    return None


def _reads(vocab: Vocabulary) -> list[ObjectRead]:
    people = [
        ObjectRead(o, (vocab.id_field, *vocab.last_activity_fields, vocab.created_field), optional=True)
        for o in vocab.people_objects
    ]
    links = [ObjectRead(link.object, (link.person_field, link.deal_field), optional=True) for link in vocab.deal_links]
    # Optional: the pass says itself, more precisely, what a missing one means (see run).
    deals = [ObjectRead(vocab.deal_object, (vocab.id_field, vocab.deal_closed_field), optional=True)]
    return [*people, *deals, *links, *cascade_reads(vocab, vocab.people_objects)]


def _summary(vocab: Vocabulary) -> str:
    people = ", ".join(vocab.label(o, many=True) for o in vocab.people_objects)
    return f"{vocab.removal_verb()} people ({people}) with no activity for years, except those on an open deal."


SPEC = PassSpec(
    name=NAME,
    summary=summary_of(__doc__),
    summary_for=_summary,
    order=10,
    defaults={"years": 3, "objects": [], "action": "delete"},
    run=run,
    check=_check,
    proposes=(
        Proposal(Op.DELETE, objects=lambda vocab: _people_removed_by(vocab, Op.DELETE)),
        Proposal(Op.ARCHIVE, objects=lambda vocab: _people_removed_by(vocab, Op.ARCHIVE)),
    ),
    bounds={"years": Bound(1, 100)},
    live_check=LiveCheck(needs=_live_needs, recheck=_recheck, holds=removal_holds),
    reads=_reads,
)
