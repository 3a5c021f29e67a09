"""Deactivate campaigns still running though they ended: status completed, or end date past.

The Campaigns concept says how a provider marks a campaign: where it has an active flag, a campaign
still active whose status is a finished one or whose end day is before today (UTC) is ended by
writing the flag false; where it has none, a campaign whose end day is past and whose status is not
finished is ended by writing the finished status. A campaign with no end date is judged by its status
alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

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
    propose,
    summary_of,
)
from crmsweep.cleanup.passes._guards import day_stamp, frame_days, is_in, live_day, live_is_in
from crmsweep.cleanup.view import ids_of, live_frame
from crmsweep.concepts import Campaigns
from crmsweep.model import Change, Op, Severity, Vocabulary, canonical_json

NAME = "finished_campaigns"


def _campaigns(vocab: Vocabulary) -> Campaigns | None:
    return vocab.concept(Campaigns)


def _fields(campaigns: Campaigns) -> list[str]:
    return [campaigns.end_field, campaigns.status_field, *([campaigns.active_field] if campaigns.active_field else [])]


def run(ctx: PassContext) -> PassOutput:
    vocab, view = ctx.vocabulary, ctx.view
    campaigns = _campaigns(vocab)
    assert campaigns is not None  # scan runs a pass only where the concepts it needs are mapped
    obj = campaigns.object
    names = {s.name for s in view.fields(obj)}
    missing = [f for f in _fields(campaigns) if f not in names]
    if missing:
        return PassOutput(changes=[], skipped=f"the snapshot's {obj} lacks {', '.join(missing)}")
    frame = live_frame(view, obj, [vocab.id_field, *_fields(campaigns)], vocab.deleted_field)
    finished_status = is_in(frame[campaigns.status_field], campaigns.done_statuses)
    # Without an active flag, a campaign runs until its status is a finished one.
    running = is_in(frame[campaigns.active_field], (True,)) if campaigns.active_field else ~finished_status
    today = day_stamp(ctx.now.astimezone(UTC).date())
    end = frame_days(frame[campaigns.end_field])
    ended = (end.notna() & (end < today)).astype(bool)
    chosen = running & (finished_status | ended)
    rows = frame.assign(_end=end, _ended=ended)[chosen].sort_values(vocab.id_field, kind="stable")
    records = view.record_map(obj, ids_of(rows[vocab.id_field]))
    output = PassOutput(changes=[])
    writes = ", ".join(f"{k} = {canonical_json(v)}" for k, v in campaigns.end_writes.items())
    for rid, status, day, past in zip(
        rows[vocab.id_field], rows[campaigns.status_field], rows["_end"], rows["_ended"], strict=True
    ):
        why = f"ended {day.date().isoformat()}" if past and not pd.isna(day) else f"status {status}"
        output.changes.append(propose(
            ctx, NAME, Op.UPDATE, obj, records[str(rid)], after=dict(campaigns.end_writes),
            reason=f"still running though {why}: {writes}", severity=Severity.MINOR,
        ))
    return output


def _summary(vocab: Vocabulary) -> str:
    campaigns = _campaigns(vocab)
    assert campaigns is not None  # asked only where the concept is mapped (passes.summary_in)
    if campaigns.active_field:
        return summary_of(__doc__)
    writes = ", ".join(f"{k} = {canonical_json(v)}" for k, v in campaigns.end_writes.items())
    what = vocab.label(campaigns.object, many=True)
    return f"End {what} still running though their end date is past, by setting {writes}."


def _live_needs(vocab: Vocabulary, object_name: str) -> LiveNeeds:
    campaigns = _campaigns(vocab)
    return LiveNeeds(fields=tuple(_fields(campaigns)) if campaigns else ())


def _recheck(change: Change, live: LiveRows, settings: Mapping[str, Any], now: datetime) -> str | None:
    """Still running, and still finished by status or end date."""
    campaigns = _campaigns(live.vocabulary)
    if campaigns is None:
        return None
    record = live.record
    finished_status = live_is_in(record.get(campaigns.status_field), campaigns.done_statuses)
    if campaigns.active_field:
        if not live_is_in(record.get(campaigns.active_field), (True,)):
            return f"no longer active ({campaigns.active_field} is not true)"
    elif finished_status:
        return f"already finished (status {record.get(campaigns.status_field)})"
    end = live_day(record.get(campaigns.end_field))
    if not finished_status and (end is None or end >= now.astimezone(UTC).date()):
        return f"not finished: status {record.get(campaigns.status_field)}, end {end.isoformat() if end else 'none'}"
    return None


def _reads(vocab: Vocabulary) -> list[ObjectRead]:
    campaigns = _campaigns(vocab)
    if campaigns is None:
        return []
    return [ObjectRead(campaigns.object, (vocab.id_field, *_fields(campaigns)))]


SPEC = PassSpec(
    name=NAME,
    summary=summary_of(__doc__),
    summary_for=_summary,
    order=45,
    defaults={},
    run=run,
    proposes=(
        Proposal(
            Op.UPDATE,
            objects=lambda vocab: (c.object,) if (c := _campaigns(vocab)) else (),
            writes=lambda vocab: dict(c.end_writes) if (c := _campaigns(vocab)) else {},
        ),
    ),
    live_check=LiveCheck(needs=_live_needs, recheck=_recheck),
    needs=(Campaigns,),
    reads=_reads,
)
