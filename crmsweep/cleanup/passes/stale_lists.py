"""Delete saved lists not updated for a number of days that no email uses (the CRM restores them, same id).

A list is stale when the latest of its update dates (its members' and its filters') is more than `days`
days before now, or, with none, when it was created before that. A stale list still named by an email
(archived emails included: they can be brought back) is held back and counted. Only emails are known
to use lists here: a list that only a workflow or a form uses looks unused, so the pass says so in a
note (a deleted list can be restored for 90 days, and a rollback restores it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd

from crmsweep.bounds import Bound
from crmsweep.cleanup.passes import (
    EveryRowRead,
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
    hold,
    live_when,
    present,
    proposed_objects,
)
from crmsweep.cleanup.view import live_frame
from crmsweep.concepts import Lists
from crmsweep.model import Change, Op, Vocabulary

NAME = "stale_lists"
USERS = "users"  # the live read of every record that may use a list


def _lists(vocab: Vocabulary) -> Lists:
    return concept_of(vocab, Lists)


def _ids_in(text: Any) -> list[str] | None:
    """The list ids of one `used_by` cell (JSON text of a list of ids), or None if it is not that."""
    if text is None or (isinstance(text, float) and pd.isna(text)) or str(text).strip() == "":
        return []
    try:
        value = json.loads(str(text))
    except ValueError:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str | int) and not isinstance(v, bool) for v in value):
        return None
    return [str(v) for v in value]


def _used(ctx: PassContext, concept: Lists) -> tuple[set[str], str | None]:
    """Every list id an email names, or why that cannot be told (then nothing may be proposed). Emails an
    earlier pass of this plan archives still count: brought back, each must find its lists."""
    obj, column = concept.used_by
    frame = ctx.snapshot.frame(obj, [ctx.vocabulary.id_field, column])
    used: set[str] = set()
    for rid, text in zip(frame[ctx.vocabulary.id_field], frame[column], strict=True):
        ids = _ids_in(text)
        if ids is None:
            return set(), f"{obj} {rid} has a {column} that is not a JSON list of ids, so the lists it uses are unknown"
        used.update(ids)
    return used, None


def run(ctx: PassContext) -> PassOutput:
    vocab, concept = ctx.vocabulary, _lists(ctx.vocabulary)
    obj = concept.object
    user_obj, user_field = concept.used_by
    if user_field not in {s.name for s in ctx.view.fields(user_obj)}:
        return PassOutput(changes=[], skipped=f"the snapshot's {user_obj} lacks {user_field}: back it up again")
    used, unknown = _used(ctx, concept)
    if unknown:
        return PassOutput(changes=[], skipped=unknown)
    dates = present(ctx, obj, concept.updated_fields)
    columns = present(ctx, obj, [vocab.id_field, *dates, vocab.created_field])
    frame = live_frame(ctx.view, obj, columns, vocab.deleted_field)
    cutoff = days_cutoff(ctx.now, ctx.settings["days"])
    # The latest of the update dates: a list whose filters changed last week was touched last week.
    last = frame[dates].max(axis=1) if dates else pd.Series(pd.NaT, index=frame.index)
    made = frame[vocab.created_field] if vocab.created_field in frame else pd.Series(pd.NaT, index=frame.index)
    ids = frame[vocab.id_field].astype(str)
    stale_updated = last.notna() & (last < cutoff)
    stale_created = last.isna() & made.notna() & (made < cutoff)
    in_use = ids.isin(used)
    output = PassOutput(changes=[])
    hold(output, f"used by a {user_obj} record", int(((stale_updated | stale_created) & in_use).sum()))
    reasons: dict[str, str] = {}
    for rid, when in zip(ids[stale_updated & ~in_use], last[stale_updated & ~in_use], strict=True):
        reasons[rid] = f"not updated since {day_of(when)}; used by no {user_obj} record"
    for rid, when in zip(ids[stale_created & ~in_use], made[stale_created & ~in_use], strict=True):
        reasons[rid] = f"never updated; created {day_of(when)}; used by no {user_obj} record"
    add_proposals(ctx, output, NAME, obj, reasons, op=Op(concept.removal))
    output.notes.append(
        f"only {user_obj} records are known to use {obj}: one that only a workflow or a form uses looks unused; "
        f"check the {len(reasons)} proposed before applying (each can be restored)"
    )
    return output


def _live_needs(vocab: Vocabulary, object_name: str) -> LiveNeeds:
    concept = vocab.concept(Lists)
    if concept is None or object_name != concept.object:
        return LiveNeeds()
    user_obj, user_field = concept.used_by
    # Every email, archived ones too (as the scan counts them): no read finds emails by the lists they use.
    return LiveNeeds(fields=(*concept.updated_fields, vocab.created_field),
                     every=(EveryRowRead(USERS, user_obj, (user_field,), include_deleted=True),))


def _recheck(change: Change, live: LiveRows, settings: Mapping[str, Any], now: datetime) -> str | None:
    """Still not updated within `days`, and named by no email now (one built since the scan, archived ones
    included); an email whose list ids cannot be read, or emails that could not be read, keep the list."""
    vocab = live.vocabulary
    concept = vocab.concept(Lists)
    if concept is None or change.object != concept.object:
        return f"{change.object} is not this CRM's list object"
    cutoff = days_cutoff(now, settings["days"])
    for name in concept.updated_fields:
        when = live_when(live.record.get(name))
        if when is not None and when >= cutoff:
            return f"updated since the scan: {name} is {when.date().isoformat()}"
    user_obj, user_field = concept.used_by
    rows = live.related.get(USERS)
    if USERS in live.unread or rows is None:
        why = live.unread.get(USERS, "apply did not read them")
        return f"the {user_obj} records could not be read, so whether one uses this list now is unknown: {why}"
    mine = vocab.id_key(change.record_id)
    users: list[str] = []
    for row in rows:
        ids = _ids_in(row.get(user_field))
        rid = str(row.get(vocab.id_field))
        if ids is None:
            return f"{user_obj} {rid} has a {user_field} that is not a JSON list of ids, so whether it uses this " \
                   "list now is unknown"
        if any(vocab.id_key(i) == mine for i in ids):
            users.append(rid)
    if users:
        return f"used by a {user_obj} record now ({', '.join(sorted(users, key=lambda i: (len(i), i)))})"
    return None


def _reads(vocab: Vocabulary) -> list[ObjectRead]:
    concept = _lists(vocab)
    user_obj, user_field = concept.used_by
    return [
        ObjectRead(concept.object, (vocab.id_field, *concept.updated_fields, vocab.created_field)),
        # Not optional: without the emails, a list in use would look unused.
        ObjectRead(user_obj, (vocab.id_field, user_field)),
    ]


SPEC = PassSpec(
    name=NAME,
    summary=summary_of(__doc__),
    order=74,
    defaults={"days": 365},
    run=run,
    proposes=(
        Proposal(Op.DELETE, objects=proposed_objects(Lists, Op.DELETE, lambda c: [c.object], lambda c: c.removal)),
    ),
    bounds={"days": Bound(1, 36500)},
    live_check=LiveCheck(needs=_live_needs, recheck=_recheck),
    needs=(Lists,),
    reads=_reads,
)
