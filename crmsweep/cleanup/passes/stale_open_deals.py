"""Move open deals whose close date is more than a number of days past to a closed-lost stage.

A deal is open when its closed flag is not true and its stage is none of the provider's closed stages
(the DealStages concept). It is stale when its close day is more than `days` days before today (UTC);
a deal with no close date is not judged. `stage` empty means the provider's closed-lost stage; where
stages belong to pipelines, that stage is only known for one pipeline, and deals of other pipelines
are left and noted until `stage` names one. What the CRM would set itself with a move to a lost
stage (DealStages.lost_writes: a probability, a forecast category) is written with it, so the preview
shows it and a rollback puts back what the deal held; what the CRM would set from the moment of the move
(DealStages.kept_on_close: a close date) is written as the deal holds it, so the CRM leaves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from crmsweep.bounds import Bound
from crmsweep.cleanup.passes import (
    ANY_VALUE,
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
    day_stamp,
    day_texts,
    frame_days,
    is_in,
    live_day,
    live_is_in,
    utc_days,
)
from crmsweep.cleanup.view import ids_of, live_frame, text_values
from crmsweep.concepts import DealStages
from crmsweep.errors import BadInput
from crmsweep.model import Change, Op, Severity, Vocabulary

NAME = "stale_open_deals"
_MAX_STAGE = 100  # a stage name or id


def _stages(vocab: Vocabulary) -> DealStages:
    stages = vocab.concept(DealStages)
    return stages if stages is not None else DealStages("", (), "")


def _check(settings: Mapping[str, Any]) -> None:
    stage = settings["stage"]
    if stage and (len(stage) > _MAX_STAGE or not stage.isprintable() or stage.strip() != stage):
        raise BadInput(f"[passes.{NAME}] stage must be one stage name or id (at most {_MAX_STAGE} characters, "
                       "no spaces around it), or empty for the CRM's closed-lost stage")


def _refuse_a_stage_that_does_not_lose(ctx: PassContext, stages: DealStages, names: set[str]) -> None:
    """BadInput unless the chosen stage closes deals as lost: the provider's closed-lost stage, or one the
    snapshot's deals known closed and not won hold. A typo, an open stage or a won one would write wrong
    revenue into every report (a won stage counts the stale deals as sales)."""
    vocab, stage = ctx.vocabulary, ctx.settings["stage"]
    if stage in stages.won_stages:
        raise BadInput(f"[passes.{NAME}] stage {stage!r} wins deals: name a stage that closes them as lost, "
                       f"or leave it empty for {stages.closed_lost!r}")
    columns = [stages.stage_field, vocab.deal_closed_field, *([stages.won_field] if stages.won_field in names else [])]
    frame = live_frame(ctx.view, vocab.deal_object, columns, vocab.deleted_field)
    lost = is_in(frame[vocab.deal_closed_field], (True,))
    if stages.won_field in names:
        lost &= ~is_in(frame[stages.won_field], (True,))
    seen = {str(v) for v in frame.loc[lost, stages.stage_field].dropna()} - set(stages.won_stages)
    allowed = sorted(seen | {stages.closed_lost})
    if stage not in allowed:
        raise BadInput(f"[passes.{NAME}] stage {stage!r} is not a stage that closes deals as lost in this snapshot; "
                       f"name one of: {', '.join(allowed)}")


def run(ctx: PassContext) -> PassOutput:
    vocab, view = ctx.vocabulary, ctx.view
    stages = _stages(vocab)
    deal = vocab.deal_object
    names = {s.name for s in view.fields(deal)}
    needed = [vocab.deal_closed_field, stages.stage_field, vocab.deal_close_date_field]
    missing = [f for f in needed if f not in names]
    if missing:
        return PassOutput(changes=[], skipped=f"the snapshot's {deal} lacks {', '.join(missing)}")
    if ctx.settings["stage"]:
        _refuse_a_stage_that_does_not_lose(ctx, stages, names)
    chosen_stage = ctx.settings["stage"] or stages.closed_lost
    pipeline = stages.pipeline_field if not ctx.settings["stage"] and stages.pipeline_field in names else None
    columns = [vocab.id_field, *needed, *([pipeline] if pipeline else [])]
    frame = live_frame(view, deal, columns, vocab.deleted_field)
    open_ = ~is_in(frame[vocab.deal_closed_field], (True,)) & ~is_in(frame[stages.stage_field], stages.closed_stages)
    today = ctx.now.astimezone(UTC).date()
    cutoff = day_stamp(today - timedelta(days=ctx.settings["days"]))
    close = frame_days(frame[vocab.deal_close_date_field])
    chosen = open_ & (close.notna() & (close < cutoff)).astype(bool)
    output = PassOutput(changes=[])
    if pipeline:
        other = chosen & frame[pipeline].notna() & (frame[pipeline] != stages.closed_lost_pipeline)
        other = other.fillna(False).astype(bool)
        if count := int(other.sum()):
            output.notes.append(
                f"{count} {deal} of pipelines other than {stages.closed_lost_pipeline!r} were left: their closed-lost "
                f"stage is not {stages.closed_lost!r}; set [passes.{NAME}] stage to move them")
        chosen &= ~other
    rows = frame.assign(_close=close)[chosen]
    if not rows[vocab.id_field].is_monotonic_increasing:  # a snapshot usually lists rows in id order already
        rows = rows.sort_values(vocab.id_field, kind="stable")
    ids = ids_of(rows[vocab.id_field])
    records = view.before_images(deal, ids)
    # Days as numbers, not a Timestamp per deal: tens of thousands of stale deals at a million contacts.
    days = utc_days(rows["_close"])
    past = (np.datetime64(today, "D") - days).astype(np.int64).tolist()
    kind = vocab.label(deal)
    # What the CRM would set itself with the move is written with it (those of the fields the snapshot has).
    writes = {stages.stage_field: chosen_stage, **{k: v for k, v in stages.lost_writes.items() if k in names}}
    kept = [k for k in stages.kept_on_close if k in names]
    unseen = [k for k in (*stages.lost_writes, *stages.kept_on_close) if k not in names]
    if unseen and ids:
        # Hidden from the backup's user (field-level security) or not backed up: the CRM still sets them.
        output.notes.append(
            f"the snapshot lacks {', '.join(unseen)}, which the CRM sets itself when a {kind} moves to "
            f"{chosen_stage}: the preview does not show their new values and a rollback cannot put back "
            "their old ones; back up with a user who can read them to have both")
    reasons = [f"open {kind} in stage {was} whose close date {day} is {late} days past: moved to {chosen_stage}"
               for was, day, late in zip(text_values(rows[stages.stage_field]), day_texts(days), past, strict=True)]
    output.changes += propose_all(ctx, NAME, Op.UPDATE, deal, [records[rid] for rid in ids], reasons=reasons,
                                  severity=Severity.MAJOR,
                                  afters=[{**writes, **{k: records[rid].get(k) for k in kept}} for rid in ids])
    return output


def _settled_writes(vocab: Vocabulary, settings: Mapping[str, Any]) -> Mapping[str, Any]:
    """The stage the settings chose; never a winning one, whatever a plan header claims."""
    stages = _stages(vocab)
    stage = settings["stage"] or stages.closed_lost
    return {} if stage in stages.won_stages else {stages.stage_field: stage, **stages.lost_writes,
                                                   **dict.fromkeys(stages.kept_on_close, ANY_VALUE)}


def _live_needs(vocab: Vocabulary, object_name: str) -> LiveNeeds:
    return LiveNeeds(fields=(vocab.deal_closed_field, _stages(vocab).stage_field, vocab.deal_close_date_field))


def _recheck(change: Change, live: LiveRows, settings: Mapping[str, Any], now: datetime) -> str | None:
    """Still open, and its close date still more than `days` days past."""
    vocab, record = live.vocabulary, live.record
    stages = _stages(vocab)
    if live_is_in(record.get(vocab.deal_closed_field), (True,)):
        return f"closed since the scan ({vocab.deal_closed_field} true)"
    stage = record.get(stages.stage_field)
    if stage in stages.closed_stages:
        return f"closed since the scan (stage {stage})"
    close = live_day(record.get(vocab.deal_close_date_field))
    if close is None or close >= now.astimezone(UTC).date() - timedelta(days=settings["days"]):
        return f"its close date is now {close.isoformat() if close else 'empty'}"
    return None


def _reads(vocab: Vocabulary) -> list[ObjectRead]:
    stages = _stages(vocab)
    fields = (vocab.id_field, vocab.deal_closed_field, stages.stage_field, vocab.deal_close_date_field)
    return [ObjectRead(vocab.deal_object, (*fields, *([stages.pipeline_field] if stages.pipeline_field else [])))]


SPEC = PassSpec(
    name=NAME,
    summary=summary_of(__doc__),
    order=40,
    defaults={"days": 90, "stage": ""},
    run=run,
    check=_check,
    # The stage is a setting, so its value is not fixed here; the preview shows the one each change writes.
    proposes=(
        Proposal(Op.UPDATE, objects=lambda vocab: (vocab.deal_object,),
                 writes=lambda vocab: {_stages(vocab).stage_field: ANY_VALUE, **_stages(vocab).lost_writes,
                                       **dict.fromkeys(_stages(vocab).kept_on_close, ANY_VALUE)},
                 settled=_settled_writes),
    ),
    bounds={"days": Bound(1, 36500)},
    live_check=LiveCheck(needs=_live_needs, recheck=_recheck),
    needs=(DealStages,),
    reads=_reads,
)
