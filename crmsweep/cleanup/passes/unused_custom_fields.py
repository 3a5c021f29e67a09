"""Remove custom fields nobody fills, writes or references (their definitions and values stay in the snapshot).

A custom field definition (the provider's `CustomFields` concept) is proposed for removal only when the
evidence is complete and says it is unused, which is what "high confidence" means here:
- filled on at most `max_fill` of the records of its object (default 0: on none), counted on the
  snapshot as the earlier passes leave it (records they remove do not count);
- if filled at all, no value written for `days` days: the latest fingerprint (last-modified stamp) of a
  record holding a value is an upper bound on when a value was last written, so the rule errs towards
  keeping the field;
- referenced by nothing the backup could read (the concept's reference objects: forms, list filters,
  metadata dependencies, report columns; a use of field "*" stands for uses that could not all be read,
  of that object or, with object "*", of every one), and not kept by the provider (managed package, not
  archivable, CRM-defined or read-only: counted as held back, with the reason).
A field on an object the snapshot lacks is not judged (its values would not be in the snapshot, so a
rollback could not write them back): a note names it. Every proposal's reason states its evidence, and
a note says what the reference evidence cannot see (the concept's caveats).

The removal is the concept's op (archive). Before it, apply checks again: the CRM's count of values
(not more than at the backup; a field the CRM cannot count is kept), and the values themselves of the
records that held one, which must still be the snapshot's, or a rollback would write back stale ones.
The rollback brings the definition back and writes the snapshot's values onto every record that exists,
whoever edited it since (crmsweep/backup/field_restore.py). A rollback of that rollback removes the field
again only when the CRM counts no more values than that rollback wrote and are still there (read from its
log): the undo of a create has no count of its own, and a value written since would be lost unseen.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from crmsweep.backup.field_restore import filled_mask
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
    propose,
    summary_of,
)
from crmsweep.cleanup.view import live_frame, text_values
from crmsweep.concepts import CustomFields
from crmsweep.model import Change, Op, Severity, Vocabulary

NAME = "unused_custom_fields"
HELD_REFERENCED = "referenced"


def _concept(vocab: Vocabulary) -> CustomFields:
    concept = vocab.concept(CustomFields)
    if concept is None:  # the registry runs a pass only where its concepts exist
        raise ValueError(f"{vocab.provider} maps no CustomFields")
    return concept


def _references(ctx: PassContext, concept: CustomFields) -> dict[tuple[str, str], list[str]]:
    """(object, field) -> who uses it ("form Contact us"), from every reference object the snapshot holds."""
    uses: dict[tuple[str, str], list[str]] = {}
    for name in concept.references:
        if not ctx.view.has(name):
            continue
        frame = ctx.view.frame(name, ["object", "field", "by_type", "by_name"])
        # Through `text_values`: an empty text cell reads NaN in a frame, and NaN is truthy ("used by nan").
        columns = [text_values(frame[column]) for column in ("object", "field", "by_type", "by_name")]
        for obj, field, by_type, by_name in zip(*columns, strict=True):
            if obj and field:
                uses.setdefault((str(obj), str(field)), []).append(f"{by_type or 'use'} {by_name or ''}".strip())
    return uses


HELD_UNSEEN_VALUES = "holds values on records the snapshot does not hold (e.g. in the recycle bin)"


def _fill_evidence(ctx: PassContext, obj: str, field: str, *, as_backed_up: bool = False,
                   ) -> tuple[int, int, pd.Timestamp | None] | None:
    """(records holding a value, records, the latest fingerprint of one holding a value), or None when
    the snapshot lacks the object or the column; in the snapshot as the earlier passes leave it, or
    `as_backed_up`."""
    view, vocab = (ctx.snapshot if as_backed_up else ctx.view), ctx.vocabulary
    if not view.has(obj):
        return None
    specs = {s.name: s for s in view.fields(obj)}
    if field not in specs:
        return None
    columns = [vocab.id_field, field, *([vocab.fingerprint_field] if vocab.fingerprint_field in specs else [])]
    frame = live_frame(view, obj, columns, vocab.deleted_field)
    mask = filled_mask(frame[field], specs[field])
    latest = None
    if vocab.fingerprint_field in frame and mask.any():
        stamps = pd.to_datetime(frame.loc[mask, vocab.fingerprint_field], utc=True, errors="coerce")
        latest = stamps.max() if stamps.notna().any() else None
    return int(mask.sum()), len(frame), latest


def run(ctx: PassContext) -> PassOutput:
    vocab, view, settings = ctx.vocabulary, ctx.view, ctx.settings
    concept = _concept(vocab)
    output = PassOutput(changes=[])
    definitions = concept.definitions
    if not view.has(definitions):
        return PassOutput(changes=[], skipped=f"the snapshot lacks {definitions}: back it up and scan again")
    uses = _references(ctx, concept)
    checked = [r for r in concept.references if view.has(r)]
    missing_refs = [r for r in concept.references if not view.has(r)]
    rows = view.frame(definitions)
    if vocab.deleted_field in rows:
        rows = rows[~rows[vocab.deleted_field].fillna(False).astype(bool)]
    ids = sorted(str(i) for i in rows[vocab.id_field])
    records = view.record_map(definitions, ids)
    cutoff = pd.Timestamp(ctx.now.astimezone(UTC) - timedelta(days=settings["days"]))
    wanted = set(settings["objects"])
    unjudged: list[str] = []

    def hold(reason: str) -> None:
        output.held_back[reason] = output.held_back.get(reason, 0) + 1

    for definition_id in ids:
        row = records[definition_id]
        target = concept.field_of(row)
        if target is None or not concept.is_custom(row):
            continue
        obj, field = target
        if wanted and obj not in wanted:
            continue
        evidence = _fill_evidence(ctx, obj, field)
        if evidence is None:
            unjudged.append(f"{obj}.{field}")
            continue
        filled, total, latest = evidence
        counted = row.get(concept.filled_field) if concept.filled_field else None
        held = _fill_evidence(ctx, obj, field, as_backed_up=True) if isinstance(counted, int | float) else None
        # Against the snapshot as backed up: a holder an earlier pass removes is still one the snapshot holds.
        if isinstance(counted, int | float) and held is not None and counted > held[0]:
            # The CRM counts more values than the snapshot's live records hold (records in the recycle
            # bin, which a backup need not keep): removing the field would take values no rollback has.
            hold(HELD_UNSEEN_VALUES)
            continue
        share = filled / total if total else 0.0
        if share > settings["max_fill"]:
            continue
        if filled and (latest is None or latest >= cutoff):
            continue
        # Unused by its values: now what keeps it anyway (counted, as protections are).
        kept = concept.why_kept(row)
        if kept is not None:
            hold(kept)
            continue
        used_by = [*uses.get((obj, field), ()), *uses.get((obj, "*"), ()), *uses.get(("*", "*"), ())]
        if used_by:
            hold(HELD_REFERENCED)
            output.notes.append(f"{obj}.{field} is kept: used by {', '.join(sorted(set(used_by)))}")
            continue
        written = "never written" if latest is None else f"last written on {latest.date().isoformat()} at the latest"
        references = f"referenced by nothing in {', '.join(checked)}" if checked else "no uses could be read"
        reason = (f"unused: filled on {filled} of {total} {obj} records ({share:.1%}), {written}, "
                  f"{references}; confidence high")
        output.changes.append(
            propose(ctx, NAME, Op(concept.removal), definitions, row, reason=reason, severity=Severity.MINOR)
        )
    if unjudged:
        output.notes.append(f"not judged, the snapshot lacks their objects or columns: {', '.join(unjudged)}")
    if missing_refs:
        output.notes.append(f"the snapshot lacks {', '.join(missing_refs)}: uses found there were not checked")
    if output.changes and concept.caveats:
        output.notes.append(f"{concept.caveats}; values removed with a field are in the snapshot, and a "
                            "rollback writes them back")
    if output.changes and ctx.settings["max_fill"] > 0:
        # What raising max_fill costs, said where the admin reviews it: the values live on in the snapshot only.
        output.notes.append("max_fill is above 0, so fields holding values are removed: apply first checks "
                            "each value against the live record (a field whose values changed since the "
                            "backup is kept), and a rollback writes every value back, also onto records "
                            "edited or deleted since; a value it cannot write (record deleted, or a new value "
                            "in the re-created field) is reported, and the run is not marked rolled back")
    return output


def _reads(vocab: Vocabulary) -> list[ObjectRead]:
    concept = _concept(vocab)
    return [ObjectRead(concept.definitions),
            *(ObjectRead(name, ("object", "field", "by_type", "by_id", "by_name"), optional=True)
              for name in concept.references)]


def _live_needs(vocab: Vocabulary, object_name: str) -> LiveNeeds:
    concept = _concept(vocab)
    filled = (concept.filled_field,) if concept.filled_field else ()
    # The definition itself, re-read (one cheap call): still there, still removable, and, where the CRM
    # counts values for us, not filled since the backup. Uses are not re-read (forms, dependencies and
    # report columns cost a full listing each): the plan's evidence is the backup's.
    # With the count, the values themselves of the records that held one (at most max_fill of them): the
    # count alone misses a value changed, or moved to another record, and the snapshot's would then be stale.
    return LiveNeeds(fields=(*filled, vocab.created_field), values_of=lambda change: concept.field_of(change.before))


def _recheck(change: Change, live: LiveRows, settings: Mapping[str, Any], now: datetime) -> str | None:
    concept = _concept(live.vocabulary)
    record = {**change.before, **live.record}
    kept = concept.why_kept(record)
    if kept is not None:
        return f"now kept: {kept}"
    if live_flag(live.record.get(live.vocabulary.deleted_field or "")) is True:
        return "already removed"
    name = concept.filled_field
    if name and name in live.record and live.record.get(name) is None:
        # Without the CRM's count, a value written since the backup onto a record that held none is seen
        # nowhere (the values check below covers only the records that held one), and would be lost.
        return ("the CRM gives no count of its values (e.g. a long text, rich text or encrypted field), so "
                "values written since the backup cannot be seen: check and remove it by hand")
    values = live.values
    if name and name in live.record:
        now_filled, then = live.record.get(name), change.before.get(name)
        written = values.written if values is not None else None
        if written is not None:
            # Undoing a rollback that re-created the field: its before-image (the create's) has no count, and
            # the values the field may lose are only those that rollback wrote (from its log, not the plan).
            if isinstance(now_filled, int | float) and now_filled > written:
                count = int(now_filled)
                return (f"values written since a rollback re-created the field: {count} record"
                        f"{' holds' if count == 1 else 's hold'} one, {written or 'none'} of them written by that "
                        "rollback: removing the field again would destroy the others; clear them by hand first "
                        "if they may go")
        elif not isinstance(then, int | float):
            return "no count of its values to compare the live one with: values written since could be lost"
        elif isinstance(now_filled, int | float) and now_filled > then:
            return f"values written since the backup: {int(now_filled)} records hold one, {int(then)} did"
    if values is not None and values.unavailable:
        return values.unavailable
    if values is not None and values.changed:
        first = min(values.changed)
        return (f"values changed since the backup on {len(values.changed)} of the {values.holders} {values.object} "
                f"records holding one (e.g. {first}: {values.changed[first]}): a rollback would write back the "
                "snapshot's stale values; back up and scan again")
    return None


def _removal(vocab: Vocabulary, op: Op) -> tuple[str, ...]:
    concept = vocab.concept(CustomFields)
    return (concept.definitions,) if concept is not None and Op(concept.removal) is op else ()


SPEC = PassSpec(
    name=NAME,
    summary=summary_of(__doc__),
    order=60,
    defaults={"max_fill": 0.0, "days": 365, "objects": []},
    run=run,
    proposes=(
        Proposal(Op.ARCHIVE, objects=lambda vocab: _removal(vocab, Op.ARCHIVE)),
        Proposal(Op.DELETE, objects=lambda vocab: _removal(vocab, Op.DELETE)),
    ),
    bounds={"max_fill": Bound(0.0, 1.0), "days": Bound(0, 36_500)},
    live_check=LiveCheck(needs=_live_needs, recheck=_recheck),
    needs=(CustomFields,),
    reads=_reads,
)
