"""Delete reports and dashboards nobody has run for a number of days (to the recycle bin, restorable).

A report is stale when it last ran more than `days` days before now (a dashboard: when it was last
refreshed), or when it never ran and was created more than `days` days ago. The CRM's "last viewed"
date counts only the views of the user crmsweep runs as, so it says nothing of anyone else's use: the
pass never judges by it, and says so in a note. A report run since the scan is left alone at apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

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
from crmsweep.concepts import Reports, RunnableAsset
from crmsweep.model import Change, Op, Vocabulary

NAME = "stale_reports"


def _reports(vocab: Vocabulary) -> Reports:
    return concept_of(vocab, Reports)


def _asset_of(vocab: Vocabulary, object_name: str) -> RunnableAsset | None:
    concept = vocab.concept(Reports)
    return next((a for a in concept.assets if a.object == object_name), None) if concept else None


def _stale_asset(ctx: PassContext, asset: RunnableAsset, output: PassOutput) -> None:
    vocab = ctx.vocabulary
    columns = present(ctx, asset.object, [vocab.id_field, asset.last_run_field, vocab.created_field])
    lacking = [f for f in (asset.last_run_field, vocab.created_field) if f not in columns]
    if lacking:
        output.notes.append(f"the snapshot's {asset.object} lacks {', '.join(lacking)}: no {asset.object} judged")
        return
    frame = live_frame(ctx.view, asset.object, columns, vocab.deleted_field)
    cutoff = days_cutoff(ctx.now, ctx.settings["days"])
    ran, made = frame[asset.last_run_field], frame[vocab.created_field]
    reasons: dict[str, str] = {}
    old = ran.notna() & (ran < cutoff)
    for rid, when in zip(frame.loc[old, vocab.id_field], ran[old], strict=True):
        reasons[str(rid)] = f"not run since {day_of(when)} ({asset.last_run_field})"
    never = ran.isna() & made.notna() & (made < cutoff)
    for rid, when in zip(frame.loc[never, vocab.id_field], made[never], strict=True):
        reasons[str(rid)] = f"never run; created {day_of(when)}"
    add_proposals(ctx, output, NAME, asset.object, reasons, op=Op(_reports(vocab).removal))


def run(ctx: PassContext) -> PassOutput:
    concept = _reports(ctx.vocabulary)
    output = PassOutput(changes=[])
    held = [a for a in concept.assets if ctx.view.has(a.object)]
    if not held:
        return PassOutput(changes=[], skipped=(
            f"the snapshot holds no {' or '.join(a.object for a in concept.assets)}: back them up and scan again"))
    for asset in concept.assets:
        if asset in held:
            _stale_asset(ctx, asset, output)
        else:
            output.notes.append(f"no {asset.object} object in the snapshot: none judged")
    judged = ", ".join(f"{a.object} by {a.last_run_field}" for a in held)
    if concept.viewed_field:
        output.notes.append(
            f"{concept.viewed_field} reflects only the views of the user crmsweep runs as, so it is not used: "
            f"judged by when each last ran ({judged})"
        )
    return output


def _live_needs(vocab: Vocabulary, object_name: str) -> LiveNeeds:
    asset = _asset_of(vocab, object_name)
    return LiveNeeds(fields=(asset.last_run_field, vocab.created_field) if asset else ())


def _recheck(change: Change, live: LiveRows, settings: Mapping[str, Any], now: datetime) -> str | None:
    """Still not run within `days`: a run does not move the record's fingerprint, so it is read again."""
    asset = _asset_of(live.vocabulary, change.object)
    if asset is None:
        return f"{change.object} is not a report object of this CRM"
    cutoff = days_cutoff(now, settings["days"])
    ran = live_when(live.record.get(asset.last_run_field))
    if ran is not None and ran >= cutoff:
        return f"run since the scan: {asset.last_run_field} is {ran.date().isoformat()}"
    return None


def _reads(vocab: Vocabulary) -> list[ObjectRead]:
    # Each optional: a snapshot with reports but no dashboards still judges its reports (and says so).
    return [
        ObjectRead(a.object, (vocab.id_field, a.last_run_field, vocab.created_field), optional=True)
        for a in _reports(vocab).assets
    ]


SPEC = PassSpec(
    name=NAME,
    summary=summary_of(__doc__),
    order=70,
    defaults={"days": 365},
    run=run,
    proposes=(
        Proposal(Op.DELETE, objects=proposed_objects(Reports, Op.DELETE, lambda c: [a.object for a in c.assets],
                                                     lambda c: c.removal)),
    ),
    bounds={"days": Bound(1, 36500)},
    live_check=LiveCheck(needs=_live_needs, recheck=_recheck),
    needs=(Reports,),
    reads=_reads,
)
