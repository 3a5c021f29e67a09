"""Clear hard-bounced email addresses and opt the people out (or, with action "delete", remove them).

A person's address hard-bounced when the provider's bounce fields say so (the EmailBounces concept: a
bounce date or reason set, or a bad-address flag true); only people who still hold an address are
candidates. Where the CRM records soft bounces too, the server's reply it keeps tells them apart: a
reply with a transient SMTP code (4xx, or an RFC 3463 enhanced code of class 4.x.x) or one that holds
any of `soft_reasons` (plain words matched in any case: a full mailbox, a spam or policy rejection, a
deferral) is no sign of a bad address, and the person is held back with that reason. A bounce with no
reply text is hard: the CRM recorded it as a bounce, and nothing says it was a passing one. So is one
the CRM itself flags as a bad address, whatever its reply reads. Action "clear" (the default) writes
the address empty and, where the CRM has an opt-out the API may write, sets it (a person already opted
out keeps it); where it has none, a note says the cleared people are not opted out. The bounce fields
the CRM empties itself when an address changes are written empty with it, so the preview shows them
and a rollback restores the bounce with the address. Action "delete" removes the people instead
(archives, where the CRM has no undelete), holding back those on an open deal or an open case.
Converted people are left alone and noted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
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
from crmsweep.cleanup.passes._guards import (
    TakenWith,
    cascade_live_reads,
    converted_flag,
    converted_of,
    filled,
    held_people,
    is_in,
    leave_converted,
    live_filled,
    live_is_in,
    one_setting_of,
    people_guard_reads,
    people_guard_recheck,
    people_reads,
    propose_removals,
    removal_holds,
    removal_objects,
)
from crmsweep.cleanup.view import LiveColumns, ids_of
from crmsweep.concepts import EmailBounces
from crmsweep.errors import BadInput
from crmsweep.model import Change, Op, Severity, Vocabulary

NAME = "bounced_emails"
ACTIONS = ("clear", "delete")
_SHOWN_DETAIL = 80  # characters of a bounce reason quoted in a change's reason
# Replies that say the mailbox or the message was refused, not that the address is bad (RFC 3463: 5.2.2 mailbox
# full, 5.7.x a security or policy refusal, commonly spam), and the words of a deferral that carries no code.
SOFT_REASONS = ["mailbox full", "mailbox is full", "over quota", "quota exceeded", "insufficient storage", "spam",
                "policy", "temporarily", "deferred", "try again later", "5.2.2", "5.7."]
# A transient failure by its code: a reply code 4xx first in the reply (after an "smtp;" of a delivery report),
# or an enhanced status code 4.x.x anywhere, not part of a longer dotted number (an address, a host).
_TRANSIENT_REPLY = re.compile(r"\W*(?:smtp\s*;\s*)?4\d\d(?!\d)")
_TRANSIENT_STATUS = re.compile(r"(?<![\d.])4\.\d{1,3}\.\d{1,3}(?!\.?\d)")
_TRANSIENT_CODE = "has a transient SMTP code (4xx or 4.x.x)"


def _bounces(vocab: Vocabulary) -> EmailBounces:
    bounces = vocab.concept(EmailBounces)
    return bounces if bounces is not None else EmailBounces((), (), (), None)


def _signals(vocab: Vocabulary) -> tuple[str, ...]:
    bounces = _bounces(vocab)
    return (*bounces.set_fields, *bounces.true_flags)


def _reply(vocab: Vocabulary) -> tuple[str, ...]:
    """The fields that tell a soft bounce from a hard one, where soft bounces are recorded too (else none):
    the server's reply, and the CRM's bad-address flags not already read as bounce signals."""
    bounces = _bounces(vocab)
    if not bounces.reason_field:
        return ()
    return (bounces.reason_field, *(f for f in bounces.bad_address_flags if f not in bounces.true_flags))


def _clear_writes(vocab: Vocabulary) -> dict[str, Any]:
    """What clearing writes: the address empty, the bounce fields the CRM would empty with it, and the
    opt-out true where the CRM has one."""
    bounces = _bounces(vocab)
    opt_out = bounces.opt_out_field
    return {vocab.email_field: None, **dict.fromkeys(bounces.cleared_with_address),
            **({opt_out: True} if opt_out else {})}


def _check(settings: Mapping[str, Any]) -> None:
    one_setting_of(NAME, "action", ACTIONS, settings)
    if any(not str(word).strip() for word in settings["soft_reasons"]):
        raise BadInput(f"[passes.{NAME}] soft_reasons holds an empty entry, which every reason contains: remove it")


def soft_bounce(reply: Any, soft_reasons: Sequence[str]) -> str | None:
    """How a bounce's reply text shows a soft bounce (a mailbox or message refused, or a passing failure),
    or None for a hard one (no reply text: the CRM recorded the bounce, nothing says it passes). The scan
    and the apply-time re-check both judge by this, with the settings the plan was scanned with."""
    if not live_filled(reply):
        return None
    text = str(reply).casefold()
    for word in soft_reasons:
        if str(word).casefold() in text:
            return f'says "{word}"'
    if "4" not in text:  # most replies of a bad address (550 5.1.1): no code to look for
        return None
    transient = _TRANSIENT_REPLY.match(text) or ("4." in text and _TRANSIENT_STATUS.search(text))
    return _TRANSIENT_CODE if transient else None


def _soft_reasons(settings: Mapping[str, Any]) -> Sequence[str]:
    # A plan scanned before the setting existed is judged by the defaults.
    words: Sequence[str] = settings.get("soft_reasons", SOFT_REASONS)
    return words


def _detail(frame: pd.DataFrame, row: int, fields: tuple[str, ...]) -> str:
    parts = []
    for name in fields:
        value: Any = frame.at[row, name]
        if not live_filled(None if pd.isna(value) else value):
            continue
        text = value.date().isoformat() if isinstance(value, pd.Timestamp) else str(value).strip()
        parts.append(f"{name} {text[:_SHOWN_DETAIL]}")
    return f" ({'; '.join(parts)})" if parts else ""


def run(ctx: PassContext) -> PassOutput:
    vocab, view = ctx.vocabulary, ctx.view
    bounces = _bounces(vocab)
    action = ctx.settings["action"]
    targets = [o for o in vocab.people_objects if view.has(o)]
    if not targets:
        return PassOutput(changes=[], skipped=f"no {' or '.join(vocab.people_objects)} object in the snapshot")
    if action == "delete":
        _, cannot_guard = held_people(ctx, targets, read=False)
        if cannot_guard:
            return PassOutput(changes=[], skipped=cannot_guard)
    held: dict[str, str] | None = None  # read once, and only if someone is to be removed
    taken = TakenWith({})
    output = PassOutput(changes=[])
    for obj in targets:
        names = {s.name for s in view.fields(obj)}
        # Without the reply a soft bounce cannot be told from a hard one: the object is not judged.
        needed = [vocab.email_field, *_signals(vocab), *_reply(vocab)]
        if action == "clear" and bounces.opt_out_field:
            needed.append(bounces.opt_out_field)
        missing = [f for f in needed if f not in names]
        if missing:
            output.notes.append(f"{obj} was not judged: the snapshot lacks {', '.join(missing)}")
            continue
        details = [f for f in bounces.detail_fields if f in names]
        flag = converted_flag(view, vocab, obj)
        live = LiveColumns(view, obj, [vocab.id_field], vocab.deleted_field)
        # Only the rows where a bounce shows are read further: most people never bounced (at a million, none
        # may): their addresses, flags and details are not taken, and are not read at all when nobody bounced.
        shows = np.zeros(len(live.keep), dtype=bool)
        for column in bounces.set_fields:
            shows |= filled(live.column(column)).to_numpy(dtype=bool)
        for column in bounces.true_flags:
            shows |= is_in(live.column(column), (True,)).to_numpy(dtype=bool)
        at = np.flatnonzero(shows & live.keep)
        if not len(at):
            continue
        dropped = [f for f in bounces.cleared_with_address if f in names] if action == "clear" else []
        columns = [vocab.id_field, *needed, *details, *dropped, *([flag] if flag else [])]
        frame = live.frame(at, list(dict.fromkeys(columns)))
        bounced = filled(frame[vocab.email_field])
        chosen = leave_converted(output, obj, frame, flag, bounced)
        if bounces.reason_field:
            # Only those still candidates are judged: a soft bounce without an address, or on a converted
            # person, is no hold-back; nor is one the CRM flags as a bad address, hard whatever its reply.
            bad = _flagged(frame, bounces.bad_address_flags)
            hard = _hard(output, frame.loc[chosen & ~bad, bounces.reason_field], bounces.reason_field,
                         _soft_reasons(ctx.settings))
            chosen = chosen & (bad | hard.reindex(chosen.index, fill_value=False))
        rows = frame[chosen].sort_values(vocab.id_field, kind="stable")
        reasons = [f"address hard-bounced{_detail(frame, int(i), tuple(details))}" for i in rows.index]
        if action == "delete":
            if len(rows) and held is None:
                held, _ = held_people(ctx, targets)
            propose_removals(ctx, NAME, output, obj, rows, reasons, held or {}, taken)
            continue
        _propose_clear(ctx, output, obj, rows, reasons, dropped)
        unseen = [f for f in bounces.cleared_with_address if f not in names]
        if unseen and len(rows):
            # Hidden from the backup's user (field-level security) or not backed up: the CRM still empties them.
            output.notes.append(
                f"the snapshot lacks {obj} {', '.join(unseen)}, which the CRM empties itself with the address: the "
                "preview does not show it go and a rollback cannot put back its old value; back up with a user "
                "who can read it to have both")
    if action == "clear" and not bounces.opt_out_field and output.changes and bounces.no_opt_out:
        output.notes.append(bounces.no_opt_out)
    output.notes += taken.note(vocab, targets)
    return output


def _flagged(frame: pd.DataFrame, flags: tuple[str, ...]) -> pd.Series:
    """Per row, whether any of `flags` is true."""
    bad = pd.Series(False, index=frame.index, dtype=bool)
    for flag in flags:
        bad |= is_in(frame[flag], (True,))
    return bad


def _hard(output: PassOutput, replies: pd.Series, field: str, soft_reasons: Sequence[str]) -> pd.Series:
    """Which of `replies` are hard bounces; the soft ones are counted in `output.held_back` by how they show.
    Each distinct reply is judged once: an org's soft replies are a few texts, sent to many people."""
    judged: dict[Any, str | None] = {}
    hard = []
    for reply in replies:
        key = None if pd.isna(reply) else reply
        if key not in judged:
            judged[key] = soft_bounce(key, soft_reasons)
        soft = judged[key]
        hard.append(soft is None)
        if soft is not None:
            why = f"soft bounce, the address may still work ({field} {soft})"
            output.held_back[why] = output.held_back.get(why, 0) + 1
    return pd.Series(hard, index=replies.index, dtype=bool)


def _propose_clear(ctx: PassContext, output: PassOutput, obj: str, rows: pd.DataFrame, reasons: list[str],
                   dropped: list[str]) -> None:
    """Each of `rows` cleared; `dropped` are the bounce fields the CRM empties with the address, written
    empty here where they hold a value, so the preview shows them and an undo puts them back."""
    vocab = ctx.vocabulary
    opt_out = _bounces(vocab).opt_out_field
    records = ctx.view.record_map(obj, ids_of(rows[vocab.id_field]))
    held = {f: [live_filled(None if pd.isna(v) else v) for v in rows[f]] for f in dropped}
    for n, (rid, why) in enumerate(zip(rows[vocab.id_field], reasons, strict=True)):
        before = records[str(rid)]
        after: dict[str, Any] = {vocab.email_field: None, **{f: None for f in dropped if held[f][n]}}
        if opt_out and before.get(opt_out) is not True:
            after[opt_out] = True
        text = f"{why}: address cleared" + (", opted out" if opt_out in after else "")
        output.changes.append(
            propose(ctx, NAME, Op.UPDATE, obj, before, after=after, reason=text, severity=Severity.MINOR)
        )


def _live_needs(vocab: Vocabulary, object_name: str) -> LiveNeeds:
    flag = converted_of(vocab, object_name)
    fields = (vocab.email_field, *_signals(vocab), *_reply(vocab), *([flag] if flag else []))
    return LiveNeeds(fields=fields, related=(*people_guard_reads(vocab), *cascade_live_reads(vocab, object_name)))


def _recheck(change: Change, live: LiveRows, settings: Mapping[str, Any], now: datetime) -> str | None:
    """Still holding an address that still shows a bounce, one whose reply reads as hard (or flagged as a bad
    address), not converted; a removal also on no open deal or case."""
    vocab, record = live.vocabulary, live.record
    bounces = _bounces(vocab)
    if not live_filled(record.get(vocab.email_field)):
        return "no address left to clear"
    still = any(live_filled(record.get(f)) for f in bounces.set_fields) or any(
        live_is_in(record.get(f), (True,)) for f in bounces.true_flags)
    if not still:
        return f"the address no longer shows a hard bounce ({', '.join(_signals(vocab))} empty)"
    flagged = any(live_is_in(record.get(f), (True,)) for f in bounces.bad_address_flags)
    if bounces.reason_field and not flagged:
        soft = soft_bounce(record.get(bounces.reason_field), _soft_reasons(settings))
        if soft is not None:
            return f"the bounce now reads as soft ({bounces.reason_field} {soft})"
    flag = converted_of(vocab, change.object)
    if flag and live_is_in(record.get(flag), (True,)):
        return f"converted since the scan ({flag} true)"
    return people_guard_recheck(live) if change.op is Op(vocab.removal) else None


def _reads(vocab: Vocabulary) -> list[ObjectRead]:
    bounces = _bounces(vocab)
    own = (vocab.email_field, *_signals(vocab), *bounces.detail_fields, *_reply(vocab),
           *([bounces.opt_out_field] if bounces.opt_out_field else []))
    return people_reads(vocab, {o: own for o in vocab.people_objects})


SPEC = PassSpec(
    name=NAME,
    summary=summary_of(__doc__),
    order=14,
    defaults={"action": "clear", "soft_reasons": SOFT_REASONS},
    run=run,
    check=_check,
    proposes=(
        Proposal(Op.UPDATE, objects=lambda vocab: vocab.people_objects, writes=_clear_writes),
        Proposal(Op.DELETE, objects=lambda vocab: removal_objects(vocab, vocab.people_objects, Op.DELETE.value)),
        Proposal(Op.ARCHIVE, objects=lambda vocab: removal_objects(vocab, vocab.people_objects, Op.ARCHIVE.value)),
    ),
    live_check=LiveCheck(needs=_live_needs, recheck=_recheck, holds=removal_holds),
    needs=(EmailBounces,),
    reads=_reads,
)
