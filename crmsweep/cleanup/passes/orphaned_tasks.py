"""Reassign (or close) open tasks owned by inactive users, or overdue by more than a number of days.

A task is open unless the provider's done field says otherwise (the TaskWork concept: a closed flag,
or a done status). Its owner is inactive when the user record says so (a user the snapshot lacks is
not judged inactive: it may be a queue). It is overdue when its due day is more than `overdue_days`
days before today (UTC). Passes before this one are seen through their effects: a task inactive_users
already hands over has its new owner, and users it deactivates are inactive here.

Action "reassign" (the default) writes the owner field to the active user `reassign_to` names
(without it the pass is skipped, saying how to set it); tasks already owned by that user are left.
Action "close" writes the provider's done value instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

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
    RelatedRead,
    live_flag,
    propose,
    summary_of,
)
from crmsweep.cleanup.passes._guards import (
    check_owner_setting,
    day_stamp,
    frame_days,
    hand_over_owners_read,
    hand_over_target_recheck,
    handed_to,
    is_in,
    live_day,
    live_is_in,
    one_setting_of,
    require_active_owner,
    user_states,
)
from crmsweep.cleanup.view import ids_of, live_frame
from crmsweep.concepts import TaskWork
from crmsweep.model import Change, Op, Severity, Vocabulary

NAME = "orphaned_tasks"
ACTIONS = ("reassign", "close")


def _work(vocab: Vocabulary) -> TaskWork | None:
    return vocab.concept(TaskWork)


def _tasks(vocab: Vocabulary) -> tuple[str, ...]:
    work = _work(vocab)
    return (work.object,) if work else ()


def _close_writes(vocab: Vocabulary) -> Mapping[str, Any]:
    work = _work(vocab)
    return work.close_writes if work else {}


def _check(settings: Mapping[str, Any]) -> None:
    one_setting_of(NAME, "action", ACTIONS, settings)
    check_owner_setting(NAME, "reassign_to", settings["reassign_to"])


def run(ctx: PassContext) -> PassOutput:
    vocab, view = ctx.vocabulary, ctx.view
    work = _work(vocab)
    assert work is not None  # scan runs a pass only where the concepts it needs are mapped
    action, target = ctx.settings["action"], str(ctx.settings["reassign_to"])
    if action == "reassign" and not target:
        owner = vocab.label(vocab.user_object)
        return PassOutput(changes=[], skipped=(
            f"set [passes.{NAME}] reassign_to = \"<{owner} id>\" to hand these tasks to that {owner}, "
            f"or action = \"close\" to close them"))
    if action == "reassign":
        require_active_owner(view, vocab, NAME, "reassign_to", target, ctx.backed_up)
    names = {s.name for s in view.fields(work.object)}
    missing = [f for f in (vocab.owner_field, work.done_field, work.due_field) if f not in names]
    if missing:
        return PassOutput(changes=[], skipped=f"the snapshot's {work.object} lacks {', '.join(missing)}")
    columns = [vocab.id_field, vocab.owner_field, work.done_field, work.due_field]
    frame = live_frame(view, work.object, list(dict.fromkeys(columns)), vocab.deleted_field)
    users = user_states(view, vocab)
    inactive = set(users.loc[~users["active"], "id"].map(vocab.id_key))
    owner_key = frame[vocab.owner_field].map(lambda v: vocab.id_key(str(v)) if isinstance(v, str) else None)
    open_ = ~is_in(frame[work.done_field], work.done_values)
    orphan = owner_key.isin(inactive).fillna(False).astype(bool)
    today = ctx.now.astimezone(UTC).date()
    cutoff = day_stamp(today - timedelta(days=ctx.settings["overdue_days"]))
    due = frame_days(frame[work.due_field])
    overdue = (due.notna() & (due < cutoff)).astype(bool)
    chosen = open_ & (orphan | overdue)
    output = PassOutput(changes=[])
    if action == "reassign":
        theirs = chosen & (owner_key == vocab.id_key(target)).fillna(False).astype(bool)
        if count := int(theirs.sum()):
            output.notes.append(f"{count} overdue {work.object} already owned by reassign_to {target} were left")
        chosen &= ~theirs
    rows = frame.assign(_orphan=orphan, _due=due)[chosen].sort_values(vocab.id_field, kind="stable")
    records = view.record_map(work.object, ids_of(rows[vocab.id_field]))
    after = {vocab.owner_field: target} if action == "reassign" else dict(work.close_writes)
    done = f"handed to {target}" if action == "reassign" else "closed"
    # An owner an earlier pass of this plan deactivates is active in the CRM until apply: said so, not "inactive".
    by_pass = {vocab.id_key(c.record_id): c.pass_name for c in ctx.earlier
               if c.object == vocab.user_object and c.op is Op.DEACTIVATE}
    for rid, owner, is_orphan, day in zip(
        rows[vocab.id_field], rows[vocab.owner_field], rows["_orphan"], rows["_due"], strict=True
    ):
        deactivating = by_pass.get(vocab.id_key(str(owner)))
        why = [(f"owner {owner} is inactive" if deactivating is None else
                f"owner {owner} is deactivated by {deactivating} in this plan")] if is_orphan else []
        if not pd.isna(day) and day < cutoff:
            why.append(f"due {day.date().isoformat()}, {(today - day.date()).days} days ago")
        output.changes.append(propose(
            ctx, NAME, Op.UPDATE, work.object, records[str(rid)], after=after,
            reason=f"open task: {'; '.join(why)}: {done}", severity=Severity.MAJOR,
        ))
    if action == "reassign" and vocab.owner_must_be_active:
        # Told before the write: the undo apply offers cannot finish for these without reactivating people.
        stuck = sum(1 for owner, is_orphan in zip(rows[vocab.owner_field], rows["_orphan"], strict=True)
                    if is_orphan and vocab.id_key(str(owner)) not in by_pass)
        if stuck:
            people = vocab.label(vocab.user_object, many=True)
            output.notes.append(
                f"{stuck} of these {work.object} records belong to {people} inactive before this plan: the CRM "
                f"gives a record to an active owner only, so a rollback of their hand-over fails for each of "
                f"them until those {people} are reactivated")
    return output


def _live_needs(vocab: Vocabulary, object_name: str) -> LiveNeeds:
    work = _work(vocab)
    if work is None:
        return LiveNeeds()
    # The task read again by its id gives the owner's id, through which the owner's live state is read.
    task = RelatedRead("task", work.object, vocab.id_field, (vocab.id_field, vocab.owner_field))
    owner = RelatedRead("owner", vocab.user_object, vocab.id_field, (vocab.id_field, vocab.user_active_field),
                        via=("task", vocab.owner_field))
    return LiveNeeds(fields=(vocab.owner_field, work.done_field, work.due_field),
                     related=(task, owner, hand_over_owners_read(vocab)))


def _recheck(change: Change, live: LiveRows, settings: Mapping[str, Any], now: datetime) -> str | None:
    """Still open, still owned by the owner the scan saw, that owner still not known active or the task
    still overdue, and (a hand-over) the owner to hand over to still active."""
    vocab, record = live.vocabulary, live.record
    work = _work(vocab)
    if work is None:
        return None
    if live_is_in(record.get(work.done_field), work.done_values):
        return f"the task is done since the scan ({work.done_field} is {record.get(work.done_field)})"
    was, owner = change.before.get(vocab.owner_field), record.get(vocab.owner_field)
    if str(owner or "") != str(was or ""):
        return f"now owned by {owner or 'no one'}, not {was}"
    states = [u.get(vocab.user_active_field) for u in live.related.get("owner", ())
              if vocab.id_key(str(u.get(vocab.id_field))) == vocab.id_key(str(owner or ""))]
    owner_active = bool(states) and live_flag(states[0]) is True
    due = live_day(record.get(work.due_field))
    cutoff = now.astimezone(UTC).date() - timedelta(days=settings["overdue_days"])
    if owner_active and (due is None or due >= cutoff):
        shown = due.isoformat() if due else "none"
        return f"no longer orphaned: owner {owner} is active and the task is due {shown}"
    return hand_over_target_recheck(change, live)


def _reads(vocab: Vocabulary) -> list[ObjectRead]:
    work = _work(vocab)
    users = ObjectRead(vocab.user_object, (vocab.id_field, vocab.user_active_field))
    if work is None:
        return [users]
    return [users, ObjectRead(work.object, (vocab.id_field, vocab.owner_field, work.done_field, work.due_field))]


SPEC = PassSpec(
    name=NAME,
    summary=summary_of(__doc__),
    order=30,
    defaults={"action": "reassign", "reassign_to": "", "overdue_days": 365},
    run=run,
    check=_check,
    proposes=(
        Proposal(Op.UPDATE, objects=_tasks, writes=lambda vocab: {vocab.owner_field: ANY_VALUE},
                 settled=handed_to),
        Proposal(Op.UPDATE, objects=_tasks, writes=_close_writes),
    ),
    bounds={"overdue_days": Bound(1, 36500)},
    live_check=LiveCheck(needs=_live_needs, recheck=_recheck),
    needs=(TaskWork,),
    reads=_reads,
)
