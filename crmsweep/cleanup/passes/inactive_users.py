"""Deactivate active users who have not logged in for a number of days (users are never deleted).

A user is proposed when their last login is more than `days` days before now, or, with
`include_never_logged_in`, when they never logged in and were created more than `days` days ago.
Users already inactive are left alone. `exclude` names users never proposed: an entry matches the
user's id (in any form the provider writes it, e.g. 15 or 18 characters) or, ignoring case, any of
the user object's label fields (e.g. Name, Username).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from crmsweep.bounds import Bound
from crmsweep.cleanup.passes import (
    LiveCheck,
    LiveNeeds,
    LiveRows,
    PassContext,
    PassOutput,
    PassSpec,
    Proposal,
    propose,
    summary_of,
)
from crmsweep.cleanup.view import live_frame
from crmsweep.model import Change, Op, Severity, Vocabulary, canonical_datetime

NAME = "inactive_users"


def _writes(vocab: Vocabulary) -> dict[str, Any]:
    """What a deactivation writes: the one field, false. Declared in SPEC too, so a plan can hold no other."""
    return {vocab.user_active_field: False}


def run(ctx: PassContext) -> PassOutput:
    vocab, view = ctx.vocabulary, ctx.view
    users = vocab.user_object
    if not view.has(users):
        return PassOutput(changes=[], skipped=f"no {users} object in the snapshot")
    names = {s.name for s in view.fields(users)}
    needed = [vocab.id_field, vocab.user_active_field, vocab.user_last_login_field, vocab.created_field]
    missing = [f for f in needed if f not in names]
    if missing:
        return PassOutput(changes=[], skipped=f"the snapshot's {users} lacks {', '.join(missing)}")

    label_fields = [f for f in vocab.label_fields.get(users, ()) if f in names]
    frame = live_frame(view, users, list(dict.fromkeys([*needed, *label_fields])), vocab.deleted_field)
    cutoff = pd.Timestamp(ctx.now.astimezone(UTC) - timedelta(days=ctx.settings["days"]))
    active = frame[vocab.user_active_field].fillna(False).astype(bool)
    login = frame[vocab.user_last_login_field]
    created = frame[vocab.created_field]
    idle = login.notna() & (login < cutoff)
    never = login.isna() & created.notna() & (created < cutoff)
    wanted = active & (idle | never) if ctx.settings["include_never_logged_in"] else active & idle

    # Ids match by the vocabulary's id key (e.g. 15 or 18 characters, case-sensitive); names ignore case.
    exclude = [str(e) for e in ctx.settings["exclude"]]
    folded = {e.casefold() for e in exclude}
    hits = frame[vocab.id_field].astype(str).map(vocab.id_key).isin({vocab.id_key(e) for e in exclude})
    for column in label_fields:
        hits |= frame[column].map(lambda v: isinstance(v, str) and v.casefold() in folded).astype(bool)
    chosen = frame[wanted & ~hits].sort_values(vocab.id_field, kind="stable")
    output = PassOutput(changes=[])
    if excluded_count := int((wanted & hits).sum()):
        output.held_back[f"listed in [passes.{NAME}] exclude"] = excluded_count

    records = view.record_map(users, [str(i) for i in chosen[vocab.id_field]])
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
    return LiveNeeds(fields=(vocab.user_active_field, vocab.user_last_login_field, vocab.created_field))


def _recheck(change: Change, live: LiveRows, settings: Mapping[str, Any], now: datetime) -> str | None:
    """Still active, and no login since the cutoff (a login does not change the record's fingerprint)."""
    vocab, record = live.vocabulary, live.record
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


SPEC = PassSpec(
    name=NAME,
    summary=summary_of(__doc__),
    order=20,
    defaults={"days": 90, "include_never_logged_in": True, "exclude": []},
    run=run,
    proposes=(
        Proposal(
            Op.DEACTIVATE,
            objects=lambda vocab: (vocab.user_object,),
            writes=_writes,
        ),
    ),
    bounds={"days": Bound(1, 36500)},
    live_check=LiveCheck(needs=_live_needs, recheck=_recheck),
)
