"""Deactivate active users who have not logged in for a number of days (users are never deleted).

A user is proposed when their last login is more than `days` days before now, or, with
`include_never_logged_in`, when they never logged in and were created more than `days` days ago.
Users already inactive are left alone. `exclude` names users never proposed: an entry matches the
user's id (in any form the provider writes it, e.g. 15 or 18 characters) or, ignoring case, any of
the user object's label fields (e.g. Name, Username).

Where the CRM cannot deactivate users through its API (only its own settings pages can), the pass
deactivates no one. It hands the records (the vocabulary's `owned_objects`) and open tasks still owned
by owners who are already deactivated to the active owner `reassign_to` names, and notes the idle
active owners it cannot deactivate. Without `reassign_to` it is skipped, saying why.
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
    propose,
    summary_of,
)
from crmsweep.cleanup.passes._guards import (
    check_owner_setting,
    hand_over_owners_read,
    hand_over_target_recheck,
    handed_to,
    owner_active_now,
    require_active_owner,
)
from crmsweep.cleanup.view import ids_of, live_frame
from crmsweep.model import Change, Op, Severity, Vocabulary, canonical_datetime

NAME = "inactive_users"


def _writes(vocab: Vocabulary) -> dict[str, Any]:
    """What a deactivation writes: the one field, false. Declared in SPEC too, so a plan can hold no other."""
    return {vocab.user_active_field: False}


def _reassign_writes(vocab: Vocabulary) -> dict[str, Any]:
    """A hand-over writes the owner field only, to the configured owner (checked against the snapshot)."""
    return {vocab.owner_field: ANY_VALUE}


def _reassigned_objects(vocab: Vocabulary) -> tuple[str, ...]:
    if vocab.users_deactivatable:
        return ()
    task = (vocab.task_object,) if vocab.task_object else ()
    return (*vocab.owned_objects, *task)


def _summary(vocab: Vocabulary) -> str:
    """Where users cannot be deactivated through the API, the pass only hands records over: it must not
    say it deactivates anyone."""
    if vocab.users_deactivatable:
        return summary_of(__doc__)
    owners, owner = vocab.label(vocab.user_object, many=True), vocab.label(vocab.user_object)
    tasks = f" and open {vocab.label(vocab.task_object, many=True)}" if vocab.task_object else ""
    return (f"Hand the records{tasks} of deactivated {owners} to the active {owner} reassign_to names "
            f"(this CRM deactivates {owners} only in its own settings, never through crmsweep).")


def _check(settings: Mapping[str, Any]) -> None:
    check_owner_setting(NAME, "reassign_to", settings["reassign_to"])


def run(ctx: PassContext) -> PassOutput:
    if not ctx.vocabulary.users_deactivatable:
        return _hand_over(ctx)
    output = _deactivate(ctx)
    if ctx.settings["reassign_to"]:
        output.notes.append("reassign_to is not used: this CRM deactivates users through its API")
    return output


def _idle(ctx: PassContext, frame: pd.DataFrame) -> pd.Series:
    """Active users with no login within `days` (and, if so set, those who never logged in)."""
    vocab = ctx.vocabulary
    cutoff = pd.Timestamp(ctx.now.astimezone(UTC) - timedelta(days=ctx.settings["days"]))
    active = frame[vocab.user_active_field].fillna(False).astype(bool)
    login = frame[vocab.user_last_login_field]
    created = frame[vocab.created_field]
    idle = login.notna() & (login < cutoff)
    never = login.isna() & created.notna() & (created < cutoff)
    return active & (idle | never) if ctx.settings["include_never_logged_in"] else active & idle


def _excluded(ctx: PassContext, frame: pd.DataFrame, label_fields: list[str]) -> pd.Series:
    # Ids match by the vocabulary's id key (e.g. 15 or 18 characters, case-sensitive); names ignore case.
    vocab = ctx.vocabulary
    exclude = [str(e) for e in ctx.settings["exclude"]]
    folded = {e.casefold() for e in exclude}
    hits = frame[vocab.id_field].astype(str).map(vocab.id_key).isin({vocab.id_key(e) for e in exclude})
    for column in label_fields:
        hits |= frame[column].map(lambda v: isinstance(v, str) and v.casefold() in folded).astype(bool)
    return hits


def _user_columns(ctx: PassContext) -> tuple[list[str], list[str], str | None]:
    """The user columns the pass reads, and which of them are label fields; or why it cannot run."""
    vocab, view = ctx.vocabulary, ctx.view
    users = vocab.user_object
    if not view.has(users):
        return [], [], f"no {users} object in the snapshot"
    names = {s.name for s in view.fields(users)}
    needed = [vocab.id_field, vocab.user_active_field, vocab.user_last_login_field, vocab.created_field]
    missing = [f for f in needed if f not in names]
    if missing:
        return [], [], f"the snapshot's {users} lacks {', '.join(missing)}"
    label_fields = [f for f in vocab.label_fields.get(users, ()) if f in names]
    return list(dict.fromkeys([*needed, *label_fields])), label_fields, None


def _hand_over(ctx: PassContext) -> PassOutput:
    """Reassign what deactivated owners still own: records, and tasks not done, to `reassign_to`."""
    vocab, view = ctx.vocabulary, ctx.view
    users, target = vocab.user_object, str(ctx.settings["reassign_to"])
    cannot = "this CRM cannot deactivate users through its API"
    if not target:
        return PassOutput(changes=[], skipped=(
            f"{cannot}; set [passes.{NAME}] reassign_to = \"<owner id>\" to hand the records and open tasks "
            "of deactivated owners to that owner"))
    columns, label_fields, lacking = _user_columns(ctx)
    if lacking:
        return PassOutput(changes=[], skipped=lacking)
    # Every owner, deactivated ones included: where users cannot be deleted, a deactivated owner's row is
    # the one the CRM flags as deleted (archived), and it is exactly the owner whose records are orphaned.
    owners = view.frame(users, columns)
    ids = owners[vocab.id_field].astype(str)
    active = owners[vocab.user_active_field].fillna(False).astype(bool)
    require_active_owner(view, vocab, NAME, "reassign_to", target)
    excluded = _excluded(ctx, owners, label_fields)
    departed = set(ids[~active & ~excluded])
    output = PassOutput(changes=[])
    if idle := int(_idle(ctx, owners).sum()):
        output.notes.append(
            f"{cannot}: {idle} active {users} show no activity for {ctx.settings['days']} days; "
            "deactivate them in the CRM's own settings if they have left"
        )
    kept_away = 0
    for obj in _reassigned_objects(vocab):
        if not view.has(obj):
            continue
        fields = {s.name for s in view.fields(obj)}
        if vocab.owner_field not in fields:
            continue
        status = vocab.task_status_field if obj == vocab.task_object else None
        columns = [vocab.id_field, vocab.owner_field, *([status] if status and status in fields else [])]
        frame = live_frame(view, obj, columns, vocab.deleted_field)
        owner = frame[vocab.owner_field].astype("string")
        owned = owner.isin(departed).fillna(False).astype(bool)
        kept_away += int((owner.isin(set(ids[~active & excluded])).fillna(False).astype(bool)).sum())
        if status in frame:
            owned &= ~frame[status].isin(vocab.task_done_values).fillna(False).astype(bool)
        chosen = frame[owned].sort_values(vocab.id_field, kind="stable")
        records = view.record_map(obj, ids_of(chosen[vocab.id_field]))
        for rid, was in zip(chosen[vocab.id_field], chosen[vocab.owner_field], strict=True):
            what = "open task" if status else "record"
            output.changes.append(propose(
                ctx, NAME, Op.UPDATE, obj, records[str(rid)], after={vocab.owner_field: target},
                reason=f"{what} of deactivated owner {was}: handed to {target}", severity=Severity.MAJOR,
            ))
    if kept_away:
        output.held_back[f"owner listed in [passes.{NAME}] exclude"] = kept_away
    return output


def _deactivate(ctx: PassContext) -> PassOutput:
    vocab, view = ctx.vocabulary, ctx.view
    users = vocab.user_object
    columns, label_fields, lacking = _user_columns(ctx)
    if lacking:
        return PassOutput(changes=[], skipped=lacking)
    frame = live_frame(view, users, columns, vocab.deleted_field)
    wanted = _idle(ctx, frame)
    hits = _excluded(ctx, frame, label_fields)
    chosen = frame[wanted & ~hits].sort_values(vocab.id_field, kind="stable")
    output = PassOutput(changes=[])
    if excluded_count := int((wanted & hits).sum()):
        output.held_back[f"listed in [passes.{NAME}] exclude"] = excluded_count

    records = view.record_map(users, ids_of(chosen[vocab.id_field]))
    for rid, last, made in zip(
        chosen[vocab.id_field], chosen[vocab.user_last_login_field], chosen[vocab.created_field], strict=True
    ):
        before = records[str(rid)]
        reason = (
            f"never logged in (created {made.date().isoformat()})"
            if pd.isna(last)
            else f"no login since {last.date().isoformat()}"
        )
        output.changes.append(
            propose(
                ctx,
                NAME,
                Op.DEACTIVATE,
                users,
                before,
                after=_writes(vocab),
                reason=reason,
                severity=Severity.MAJOR,
            )
        )
    return output


def _live_needs(vocab: Vocabulary, object_name: str) -> LiveNeeds:
    if object_name != vocab.user_object:
        status = vocab.task_status_field if object_name == vocab.task_object and vocab.task_status_field else None
        return LiveNeeds(fields=(vocab.owner_field, *([status] if status else [])),
                         related=(hand_over_owners_read(vocab),))
    return LiveNeeds(fields=(vocab.user_active_field, vocab.user_last_login_field, vocab.created_field))


def _recheck(change: Change, live: LiveRows, settings: Mapping[str, Any], now: datetime) -> str | None:
    """Still active, and no login since the cutoff (a login does not change the record's fingerprint)."""
    vocab, record = live.vocabulary, live.record
    if change.op is Op.UPDATE:
        return _recheck_hand_over(change, live)
    if not record.get(vocab.user_active_field):
        return "already inactive"
    cutoff = now.astimezone(UTC) - timedelta(days=settings["days"])
    login = record.get(vocab.user_last_login_field)
    if login:
        when = datetime.fromisoformat((canonical_datetime(str(login)) or "").replace("Z", "+00:00"))
        if when >= cutoff:
            return f"logged in since the scan: {vocab.user_last_login_field} is {canonical_datetime(str(login))}"
    elif not settings["include_never_logged_in"]:
        return "never logged in, and the pass ran without include_never_logged_in"
    return None


def _recheck_hand_over(change: Change, live: LiveRows) -> str | None:
    """Still owned by the owner the scan saw, that owner still inactive, the owner to hand over to still
    active, and (a task) still not done."""
    vocab, record = live.vocabulary, live.record
    was, now_owner = change.before.get(vocab.owner_field), record.get(vocab.owner_field)
    if str(now_owner or "") != str(was or ""):
        return f"now owned by {now_owner or 'no one'}, not the deactivated owner {was}"
    status = vocab.task_status_field
    if change.object == vocab.task_object and status and record.get(status) in vocab.task_done_values:
        return f"the task is done since the scan ({status} is {record.get(status)})"
    if owner_active_now(live, was) is True:
        return f"owner {was} is active again"
    return hand_over_target_recheck(change, live)


def _reads(vocab: Vocabulary) -> list[ObjectRead]:
    users = ObjectRead(
        vocab.user_object,
        (vocab.id_field, vocab.user_active_field, vocab.user_last_login_field, vocab.created_field),
    )
    owned = [ObjectRead(o, (vocab.id_field, vocab.owner_field), optional=True) for o in vocab.owned_objects]
    tasks = [ObjectRead(vocab.task_object, optional=True)] if vocab.task_object else []
    return [users, *owned, *tasks]


SPEC = PassSpec(
    name=NAME,
    summary=summary_of(__doc__),
    summary_for=_summary,
    order=20,
    defaults={"days": 90, "include_never_logged_in": True, "exclude": [], "reassign_to": ""},
    run=run,
    check=_check,
    proposes=(
        Proposal(
            Op.DEACTIVATE,
            objects=lambda vocab: (vocab.user_object,) if vocab.users_deactivatable else (),
            writes=_writes,
        ),
        Proposal(Op.UPDATE, objects=_reassigned_objects, writes=_reassign_writes,
                 settled=handed_to),
    ),
    bounds={"days": Bound(1, 36500)},
    live_check=LiveCheck(needs=_live_needs, recheck=_recheck),
    reads=_reads,
)
