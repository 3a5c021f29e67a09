"""Clear hard-bounced email addresses and opt the people out (or, with action "delete", remove them).

A person's address hard-bounced when the provider's bounce fields say so (the EmailBounces concept: a
bounce date or reason set, or a bad-address flag true); only people who still hold an address are
candidates. Where the CRM records soft bounces too, the server's reply it keeps tells them apart: a
reply with a transient SMTP code (4xx, or an RFC 3463 enhanced code of class 4.x.x) or one that holds
any of the built-in `SOFT_REASONS` or of the words `soft_reasons` adds to them (plain words matched in
any case: a full mailbox, a spam or policy rejection, a deferral) is no sign of a bad address, and the
person is held back with that reason. The setting only adds: no config can take a built-in word away.
A reply that names an email address, none of them the one the person now holds, is about another
address: held back too, whatever else it says. A bounce with no reply text is hard: the CRM recorded it
as a bounce, and nothing says it was a passing one. So is one the CRM itself flags as a bad address,
whatever its reply reads (unless it names another address). The people held back are listed by id in
a note, with their reason. Action "clear" (the default) writes
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
_LISTED_HELD = 50  # ids listed a hold-back reason, as `preview --limit 50` lists changes
# Replies that say the mailbox or the message was refused, not that the address is bad (RFC 3463: 5.2.2 mailbox
# full, 5.7.x a security or policy refusal, commonly spam), and the words of a deferral that carries no code. They
# always apply: `soft_reasons` adds to them. Not "try again" alone: a hard reply may say to fix the address and
# try again; nor "mailbox unavailable", which a 450 and a 550 both say (the code tells them apart).
SOFT_REASONS = ("mailbox full", "mailbox is full", "over quota", "quota exceeded", "insufficient storage", "spam",
                "policy", "temporarily", "temporary", "deferred", "try again later", "retry later", "try later",
                "greylist", "graylist", "rate limit", "rate-limit", "throttled", "throttling", "too many connections",
                "5.2.2", "5.7.")
# A transient failure by its code: a reply code 4xx first in the reply or after an "smtp;" (a delivery report's
# Diagnostic-Code), or standing alone mid-reply before the reply's words or its enhanced code ("host mx said: 421
# Too many connections", "451-4.3.0 ..."); or an enhanced status code 4.x.x anywhere. Never part of a longer
# number, a dotted one (an address, a host) or a word.
_TRANSIENT_REPLY = re.compile(r"(?:^\W*|smtp\s*;\s*)4\d\d(?!\d)|(?<![^\s(\[\"'=;])4\d\d[ \t-]+(?=[^\W\d_]|4\.)")
_TRANSIENT_STATUS = re.compile(r"(?<![\d.])4\.\d{1,3}\.\d{1,3}(?!\.?\d)")
_TRANSIENT_CODE = "has a transient SMTP code (4xx or 4.x.x)"
# An email address as a reply names one ("<old@example.com>: user unknown"); quotes and brackets around it are not
# part of it.
_ADDRESS = re.compile(r"[\w.%+!#$&*^~-]+@[\w-]+(?:\.[\w-]+)+")
_SOFT = "soft bounce, the address may still work"
_OTHER = "the bounce names another address, not the one now held"  # the reply's, never the person's


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


def soft_bounce(reply: Any, added: Sequence[str] = ()) -> str | None:
    """How a bounce's reply text shows a soft bounce (a mailbox or message refused, or a passing failure),
    or None for a hard one (no reply text: the CRM recorded the bounce, nothing says it passes). The
    built-in SOFT_REASONS always apply; `added` are words on top of them (the `soft_reasons` setting)."""
    if not live_filled(reply):
        return None
    text = str(reply).casefold()
    for word in (*SOFT_REASONS, *added):
        if str(word).casefold() in text:
            return f'says "{word}"'
    if "4" not in text:  # most replies of a bad address (550 5.1.1): no code to look for
        return None
    transient = _TRANSIENT_REPLY.search(text) or ("4." in text and _TRANSIENT_STATUS.search(text))
    return _TRANSIENT_CODE if transient else None


def other_address(reply: Any, address: Any) -> bool:
    """Whether `reply` names an email address and none of those it names is `address` (in any case): the
    bounce was of another address than the one the person now holds."""
    if not live_filled(reply) or "@" not in str(reply):
        return False
    named = {m.lstrip(".").casefold() for m in _ADDRESS.findall(str(reply))}
    return bool(named) and str(address).strip().casefold() not in named


def held_why(reply: Any, address: Any, flagged: bool, added: Sequence[str]) -> tuple[str, str] | None:
    """Why a bounce is no reason to clear `address`, as (the rule, how the reply shows it: empty where the rule
    says it all), or None when it is a hard bounce of that address. One rule for the scan and the apply-time
    re-check: a reply naming other addresses only, then the CRM's bad-address flag (hard), then the reply's
    words and codes."""
    if other_address(reply, address):
        return _OTHER, ""
    if flagged:
        return None
    soft = soft_bounce(reply, added)
    return (_SOFT, soft) if soft is not None else None


def _because(rule: str, field: str, shows: str) -> str:
    return f"{rule} ({field}{f' {shows}' if shows else ''})"


def _soft_reasons(settings: Mapping[str, Any]) -> tuple[str, ...]:
    """The words the settings add to SOFT_REASONS. A plan scanned before the setting existed adds none; one
    scanned when it replaced the built-in words adds its list to them: held back as much, or more."""
    words = settings.get("soft_reasons", ())
    return tuple(str(w) for w in words if str(w).strip()) if isinstance(words, list | tuple) else ()


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
    held_ids: dict[str, dict[str, list[str]]] = {}  # hold-back reason -> object -> ids, as judged
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
            # person, is no hold-back.
            candidates = frame[chosen]
            hard = _hard(output, held_ids, obj, candidates, vocab, _soft_reasons(ctx.settings))
            chosen = chosen & hard.reindex(chosen.index, fill_value=False)
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
    _list_held(output, held_ids)
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


def _hard(output: PassOutput, held_ids: dict[str, dict[str, list[str]]], obj: str, rows: pd.DataFrame,
          vocab: Vocabulary, added: Sequence[str]) -> pd.Series:
    """Which of `rows` are hard bounces of the address they hold (`held_why`); the others are counted in
    `output.held_back` by how they show, and their ids kept in `held_ids` under that reason. Each distinct
    reply that names no address is judged once: an org's soft replies are a few texts, sent to many people."""
    bounces = _bounces(vocab)
    field = bounces.reason_field or ""
    flagged = _flagged(rows, bounces.bad_address_flags).tolist()
    judged: dict[tuple[Any, bool], tuple[str, str] | None] = {}
    hard = []
    for rid, value, address, bad in zip(rows[vocab.id_field], rows[field], rows[vocab.email_field], flagged,
                                        strict=True):
        reply = None if pd.isna(value) else value
        if isinstance(reply, str) and "@" in reply:
            why = held_why(reply, address, bad, added)
        else:
            if (reply, bad) not in judged:
                judged[reply, bad] = held_why(reply, address, bad, added)
            why = judged[reply, bad]
        hard.append(why is None)
        if why is not None:
            reason = _because(why[0], field, why[1])
            output.held_back[reason] = output.held_back.get(reason, 0) + 1
            held_ids.setdefault(reason, {}).setdefault(obj, []).append(str(rid))
    return pd.Series(hard, index=rows.index, dtype=bool)


def _list_held(output: PassOutput, held_ids: Mapping[str, Mapping[str, list[str]]]) -> None:
    """A note for each hold-back reason listing its records by id, at most _LISTED_HELD: the admin sees whose
    address is kept, and why, not only how many."""
    for reason, by_object in held_ids.items():
        listed, left = [], _LISTED_HELD
        for obj, ids in by_object.items():
            shown = sorted(ids)[:left]
            left -= len(shown)
            if shown:
                listed.append(f"{obj} {', '.join(shown)}")
        more = sum(len(ids) for ids in by_object.values()) - _LISTED_HELD
        output.notes.append(f"held back, {reason}: {'; '.join(listed)}" + (f"; and {more:,} more" if more > 0 else ""))


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
    if bounces.reason_field:
        why = held_why(record.get(bounces.reason_field), record.get(vocab.email_field), flagged,
                       _soft_reasons(settings))
        if why is not None:
            rule, shows = why
            return _because("the bounce now reads as soft" if rule == _SOFT else rule, bounces.reason_field, shows)
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
    # soft_reasons adds words to SOFT_REASONS: none by default.
    defaults={"action": "clear", "soft_reasons": []},
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
