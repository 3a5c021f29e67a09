"""Deactivate (or, where the CRM restores them, delete) email templates unused for a number of days.

A template is stale when it was last used more than `days` days before now, or when it was never used
(no last-used date, and a use count of 0 or none) and was created more than `days` days ago. Where the
CRM keeps an availability flag, only available templates are candidates, and the change turns it off
(the template stays, reversible by writing the flag back); where it does not, the change is a delete
the CRM can undo with the same id. A draft (not published) is judged by when it was last edited.
A template with uses counted but no last-used date is left alone and counted in a note.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import pandas as pd

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
    live_flag,
    summary_of,
)
from crmsweep.cleanup.passes._assets import (
    add_proposals,
    concept_of,
    day_of,
    days_cutoff,
    live_when,
    present,
    proposed_objects,
)
from crmsweep.cleanup.view import live_frame
from crmsweep.concepts import EmailTemplates
from crmsweep.model import Change, Op, Vocabulary

NAME = "stale_templates"


def _templates(vocab: Vocabulary) -> EmailTemplates:
    return concept_of(vocab, EmailTemplates)


def _fields(vocab: Vocabulary, t: EmailTemplates) -> list[str | None]:
    return [vocab.id_field, t.active_field, t.last_used_field, t.times_used_field, t.draft_flag, t.draft_date_field,
            vocab.created_field, *t.kept_fields]


def _flag(series: pd.Series, value: bool) -> pd.Series:
    """Rows whose flag is exactly `value` (an empty flag is neither)."""
    return (series.astype("boolean") == value).fillna(False).astype(bool)


def run(ctx: PassContext) -> PassOutput:
    vocab, t = ctx.vocabulary, _templates(ctx.vocabulary)
    obj = t.object
    columns = present(ctx, obj, _fields(vocab, t))
    lacking = [f for f in _fields(vocab, t) if f is not None and f not in columns]
    if lacking:
        return PassOutput(changes=[], skipped=f"the snapshot's {obj} lacks {', '.join(lacking)}: back it up again")
    frame = live_frame(ctx.view, obj, columns, vocab.deleted_field)
    cutoff = days_cutoff(ctx.now, ctx.settings["days"])
    candidates = _flag(frame[t.active_field], True) if t.active_field else pd.Series(True, index=frame.index)
    draft = _flag(frame[t.draft_flag], False) if t.draft_flag else pd.Series(False, index=frame.index)
    used, made = frame[t.last_used_field], frame[vocab.created_field]
    uses = frame[t.times_used_field].fillna(0) if t.times_used_field else pd.Series(0, index=frame.index)
    output = PassOutput(changes=[])
    reasons: dict[str, str] = {}
    ids = frame[vocab.id_field].astype(str)

    if t.draft_flag and t.draft_date_field:
        edited = frame[t.draft_date_field]
        stale_draft = candidates & draft & edited.notna() & (edited < cutoff)
        for rid, when in zip(ids[stale_draft], edited[stale_draft], strict=True):
            reasons[rid] = f"draft not edited since {day_of(when)}"
    published = candidates & ~draft
    old = published & used.notna() & (used < cutoff)
    for rid, when in zip(ids[old], used[old], strict=True):
        reasons[rid] = f"not used since {day_of(when)} ({t.last_used_field})"
    never = published & used.isna() & (uses == 0) & made.notna() & (made < cutoff)
    for rid, when in zip(ids[never], made[never], strict=True):
        reasons[rid] = f"never used; created {day_of(when)}"
    if unknown := int((published & used.isna() & (uses != 0)).sum()):
        output.notes.append(
            f"{unknown} {obj} counted as used but with no {t.last_used_field}: left alone, as when is unknown"
        )
    add_proposals(ctx, output, NAME, obj, reasons, op=Op(t.op), after=t.writes, kept=t.why_kept)
    return output


def _live_needs(vocab: Vocabulary, object_name: str) -> LiveNeeds:
    t = vocab.concept(EmailTemplates)
    if t is None or object_name != t.object:
        return LiveNeeds()
    return LiveNeeds(fields=tuple(f for f in _fields(vocab, t)[1:] if f is not None))


def _recheck(change: Change, live: LiveRows, settings: Mapping[str, Any], now: datetime) -> str | None:
    """Still available and unused (a send or an edit of a draft may not move the fingerprint)."""
    vocab, record = live.vocabulary, live.record
    t = vocab.concept(EmailTemplates)
    if t is None or change.object != t.object:
        return f"{change.object} is not this CRM's template object"
    if t.why_kept is not None and (why := t.why_kept(record)) is not None:
        return f"now kept: {why}"
    if t.active_field and live_flag(record.get(t.active_field)) is not True:
        return f"already unavailable ({t.active_field} is {record.get(t.active_field)})"
    cutoff = days_cutoff(now, settings["days"])
    used = live_when(record.get(t.last_used_field))
    if used is not None and used >= cutoff:
        return f"used since the scan: {t.last_used_field} is {used.date().isoformat()}"
    if t.draft_flag and t.draft_date_field and live_flag(record.get(t.draft_flag)) is False:
        edited = live_when(record.get(t.draft_date_field))
        if edited is not None and edited >= cutoff:
            return f"draft edited since the scan: {t.draft_date_field} is {edited.date().isoformat()}"
    return None


def _objects_for(op: Op) -> Callable[[Vocabulary], tuple[str, ...]]:
    return proposed_objects(EmailTemplates, op, lambda t: [t.object], lambda t: t.op)


def _writes(vocab: Vocabulary) -> Mapping[str, Any]:
    t = vocab.concept(EmailTemplates)
    return dict(t.writes) if t is not None else {}


def _reads(vocab: Vocabulary) -> list[ObjectRead]:
    t = _templates(vocab)
    return [ObjectRead(t.object, tuple(f for f in _fields(vocab, t) if f is not None))]


def _summary(vocab: Vocabulary) -> str:
    t = _templates(vocab)
    if t.op == Op.DELETE.value:
        return (f"{vocab.removal_verb()} {vocab.label(t.object, many=True)} unused for a number of days "
                "(the CRM restores them, same id).")
    return summary_of(__doc__)


SPEC = PassSpec(
    name=NAME,
    summary=summary_of(__doc__),
    summary_for=_summary,
    order=72,
    defaults={"days": 365},
    run=run,
    proposes=(
        Proposal(Op.UPDATE, objects=_objects_for(Op.UPDATE), writes=_writes),
        Proposal(Op.DELETE, objects=_objects_for(Op.DELETE)),
    ),
    bounds={"days": Bound(1, 36500)},
    live_check=LiveCheck(needs=_live_needs, recheck=_recheck),
    needs=(EmailTemplates,),
    reads=_reads,
)
