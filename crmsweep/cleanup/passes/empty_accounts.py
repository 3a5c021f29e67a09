"""Remove accounts (companies) left with no contacts, no open deals, no cases, tied to no contract.

Runs after the passes that remove people and sees their effects: a contact an earlier pass removes no
longer counts. An account is a candidate when no live contact is tied to it (the Accounts concept
says through which links). It is held back, counted by reason, when a deal not known closed is tied to
it, when any case is (open or closed: its history goes with the account), or when a record of a
never-touch object (contract, order, quote, invoice) is. Without the contact, deal or case links in
the snapshot the pass does not run; a never-touch object the snapshot lacks is noted. Where the CRM
has no undelete, accounts are archived and a rollback re-creates them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from itertools import compress
from operator import attrgetter
from typing import Any

import pyarrow as pa

from crmsweep.cleanup.passes import (
    LiveCheck,
    LiveNeeds,
    LiveRows,
    ObjectRead,
    PassContext,
    PassOutput,
    PassSpec,
    Proposal,
    RelatedRead,
    absent_advice,
    live_flag,
    summary_of,
)
from crmsweep.cleanup.passes._guards import (
    cascade_reason,
    case_reads,
    far_ends,
    known_closed,
    link_holds,
    live_link_hold,
    merged_reads,
    on_open_cases,
    open_case_now,
    present,
    propose_removals,
    removal_objects,
    tied,
)
from crmsweep.cleanup.protect import Protections
from crmsweep.cleanup.view import id_text, live_frame
from crmsweep.concepts import Accounts, Cases, Link
from crmsweep.model import Change, Op, Vocabulary

NAME = "empty_accounts"
_OBJECT, _RECORD_ID = attrgetter("object"), attrgetter("record_id")


def _accounts(vocab: Vocabulary) -> Accounts | None:
    return vocab.concept(Accounts)


def _cases(vocab: Vocabulary) -> Cases | None:
    cases = vocab.concept(Cases)
    return cases if cases is not None and cases.accounts else None


def _lacking(what: str, links: Sequence[Link]) -> str:
    return (f"the snapshot holds no {links[0].object}, so accounts with {what} cannot be told apart: "
            f"{absent_advice([links[0].object])}")


def run(ctx: PassContext) -> PassOutput:
    vocab, view = ctx.vocabulary, ctx.view
    accounts = _accounts(vocab)
    assert accounts is not None  # scan runs a pass only where the concepts it needs are mapped
    cases = _cases(vocab)
    open_deals = f"open {vocab.label(vocab.deal_object, many=True)}"
    for what, links in (("contacts", accounts.contacts), (open_deals, accounts.deals)):
        if not present(view, links):
            return PassOutput(changes=[], skipped=_lacking(what, links))
    if not view.has(vocab.deal_object):
        return PassOutput(changes=[], skipped=_lacking(open_deals, [Link(vocab.deal_object, "", "")]))
    frame = live_frame(view, accounts.object, [vocab.id_field], vocab.deleted_field)
    with_contacts = tied(view, vocab, accounts.contacts).tie_any(id_text(frame[vocab.id_field]))
    output = PassOutput(changes=[])
    # Why each candidate is kept, the first reason that holds (a guard's count names each account once).
    held: dict[str, str] = {}
    closed = known_closed(view, vocab, vocab.deal_object, vocab.deal_closed_field, (True,))
    on_deal = f"on an open {vocab.label(vocab.deal_object)}"  # once, not per account (tens of thousands)
    for account in tied(view, vocab, accounts.deals).near_unless_far_in(closed):
        held.setdefault(account, on_deal)
    if cases is not None:
        on_open, cannot = on_open_cases(ctx, cases, cases.accounts, "accounts")
        if cannot:
            return PassOutput(changes=[], skipped=cannot)
        on_case, closed_case = f"on an open {vocab.label(cases.object)}", f"has a closed {vocab.label(cases.object)}"
        for account in sorted(on_open):
            held.setdefault(account, on_case)
        for account in tied(view, vocab, cases.accounts).near_ids():
            held.setdefault(account, closed_case)
    for obj, links in accounts.kept_by.items():
        if not present(view, links):
            output.notes.append(f"the snapshot has no {obj}: accounts tied to one could not be recognised")
            continue
        tied_to = f"tied to {_a(obj)}"
        for account in tied(view, vocab, links).near_ids():
            held.setdefault(account, tied_to)
    for link in accounts.cascades:
        if not view.has(link.object):
            continue
        changed = _changed_ids(ctx, link.object)
        if changed:
            for account in tied(view, vocab, (link,)).near_where_far_in(changed):
                held.setdefault(account, f"its {vocab.label(link.object, many=True)}, changed by an earlier pass, "
                                         "would go with it")
        # A record the cascade takes takes its own (an opportunity its activities): a change to one of those is
        # swept away with the account just the same.
        for then in accounts.cascades_of.get(link.object, ()):
            swept = _changed_ids(ctx, then.object)
            if not len(swept) or not view.has(then.object):
                continue
            carriers = pa.array(tied(view, vocab, (then,)).near_where_far_in(swept), pa.string())
            for account in tied(view, vocab, (link,)).near_where_far_in(carriers):
                held.setdefault(account, f"its {vocab.label(then.object, many=True)}, changed by an earlier pass, "
                                         f"would go with its {vocab.label(link.object, many=True)}")
    chosen = frame[~with_contacts].sort_values(vocab.id_field, kind="stable")
    if ctx.protections is not None:
        for account, reason in _takes_protected(ctx, accounts, ctx.protections, id_text(chosen[vocab.id_field])):
            held.setdefault(account, reason)
    why = (f"no contacts left, no open {vocab.label(vocab.deal_object)}"
           + (f", no {vocab.label(cases.object)}" if cases is not None else ""))
    propose_removals(ctx, NAME, output, accounts.object, chosen, [why] * len(chosen), held)
    output.notes.extend(_cascade_notes(ctx, accounts, {c.record_id for c in output.changes}))
    if output.changes and accounts.kept_by_unchecked:
        output.notes.append(accounts.kept_by_unchecked)
    return output


def _takes_protected(ctx: PassContext, accounts: Accounts, protections: Protections,
                     candidates: pa.Array) -> list[tuple[str, str]]:
    """(account, why) for each of `candidates` whose removal the CRM would carry to records of a protected
    object, or to a record `[protect] ids` names: a protection holds a record back from every pass, a cascade
    included, and the scan's own check sees only the changes (the account), not what goes with them. Asked
    in the order `_holds` asks it at apply time, so both give an account the same reason."""
    vocab, view = ctx.vocabulary, ctx.view
    found: list[tuple[str, str]] = []
    for link in accounts.cascades:
        if not view.has(link.object):
            continue
        ties = tied(view, vocab, (link,))
        taken = ties.far_where_near_in(candidates)
        found += link_holds(vocab, ties, link, taken, protections)
        if protections.protects_object(link.object):
            continue
        for then in accounts.cascades_of.get(link.object, ()):
            if not view.has(then.object):
                continue
            under = tied(view, vocab, (then,))
            if protections.protects_object(then.object):
                carriers = pa.array(under.near_ids(), pa.string())
                found += [(a, cascade_reason(vocab, link, then)) for a in ties.near_where_far_in(carriers)]
                continue
            for named in protections.protected_among(under.far_where_near_in(taken).to_pylist()):
                carriers = pa.array(under.near_where_far_in(pa.array([named], pa.string())), pa.string())
                found += [(a, cascade_reason(vocab, link, then, named)) for a in ties.near_where_far_in(carriers)]
    return found


def _holds(change: Change, live: LiveRows, protections: Protections) -> str | None:
    """`_takes_protected` on live rows, under the protections in force at apply time: a record tied to the
    account since the scan, or a protection added to the config since, still keeps it."""
    vocab = live.vocabulary
    accounts = _accounts(vocab)
    if accounts is None:
        return None
    for link in accounts.cascades:
        taken = far_ends(live, _cascade_read(accounts, link), link)
        if not taken:
            continue
        why = live_link_hold(vocab, link, taken, protections)
        if why is not None:
            return why
        for then in accounts.cascades_of.get(link.object, ()):
            why = live_link_hold(vocab, link, far_ends(live, _cascade_read(accounts, link, then), then),
                                 protections, then)
            if why is not None:
                return why
    return None


def _cascade_read(accounts: Accounts, link: Link, then: Link | None = None) -> str:
    """The live read of what the CRM deletes with an account through `link` (and then `then`). A cascade
    that is the deal link already read is that read: the same rows, one call fewer per batch."""
    if then is not None:
        return f"cascade_{link.object}_{then.object}"
    return "deal_links" if link == accounts.deals[0] else f"cascade_{link.object}"


def _cascade_notes(ctx: PassContext, accounts: Accounts, removed: set[str]) -> list[str]:
    """What the CRM deletes along with the removed accounts: the preview's changes do not list those
    records, so the admin is told how many go with them (the undo brings them back with the account)."""
    notes: list[str] = []
    for link in accounts.cascades:
        # A field the API user may not read is absent from the snapshot: nothing to count then.
        if not removed or not ctx.view.has(link.object) or link.near_field not in {
                f.name for f in ctx.view.fields(link.object)}:
            continue
        ties = tied(ctx.view, ctx.vocabulary, (link,))
        taken = ties.far_where_near_in(pa.array(sorted(removed), pa.string()))
        one, many = ctx.vocabulary.label(accounts.object), ctx.vocabulary.label(accounts.object, many=True)
        if len(taken):
            notes.append(f"removing these {many} also deletes {len(taken)} {link.object} "
                         f"record(s) tied to them (the CRM deletes them with their {one}); "
                         "a rollback brings them back with it")
        for then in accounts.cascades_of.get(link.object, ()):
            if not len(taken) or not ctx.view.has(then.object):
                continue
            also = tied(ctx.view, ctx.vocabulary, (then,)).far_count_where_near_in(taken)
            if also:
                notes.append(f"removing these {many} also deletes {also} {then.object} record(s) tied to the "
                             f"{link.object} records that go with them; a rollback brings them back too")
    return notes


def _changed_ids(ctx: PassContext, object_name: str) -> pa.Array:
    """The ids of `object_name` the earlier passes change; objects and ids by C loops (hundreds of thousands)."""
    changed = set(map(_RECORD_ID, compress(ctx.earlier, map(object_name.__eq__, map(_OBJECT, ctx.earlier)))))
    return pa.array(sorted(changed), pa.string())


def _live_needs(vocab: Vocabulary, object_name: str) -> LiveNeeds:
    accounts = _accounts(vocab)
    if accounts is None:
        return LiveNeeds()
    # One end of each kind of link is enough live: both ends hold the same ties.
    contacts, deals = accounts.contacts[0], accounts.deals[0]
    reads = [
        RelatedRead("contacts", contacts.object, contacts.near_field, _pair(contacts)),
        RelatedRead("deal_links", deals.object, deals.near_field, _pair(deals)),
        RelatedRead("deals", vocab.deal_object, vocab.id_field, (vocab.id_field, vocab.deal_closed_field),
                    via=("deal_links", deals.far_field)),
    ]
    cases = _cases(vocab)
    if cases is not None:
        reads.extend(case_reads(vocab, cases, cases.accounts[0], "account"))
    for obj, links in accounts.kept_by.items():
        reads.append(RelatedRead(f"kept_by_{obj}", links[0].object, links[0].near_field, _pair(links[0])))
    # What the CRM would delete with the account, and with those records in turn, for `_holds`: read whatever
    # the config protects, as the call estimate counts every declared read.
    for link in accounts.cascades:
        name = _cascade_read(accounts, link)
        if name != "deal_links":
            reads.append(RelatedRead(name, link.object, link.near_field, _pair(link)))
        reads.extend(RelatedRead(_cascade_read(accounts, link, then), then.object, then.near_field, _pair(then),
                                 via=(name, link.far_field)) for then in accounts.cascades_of.get(link.object, ()))
    return LiveNeeds(related=tuple(reads))


def _a(obj: str) -> str:
    return f"{'an' if obj[:1].lower() in 'aeiou' else 'a'} {obj}"


def _pair(link: Link) -> tuple[str, ...]:
    return tuple(dict.fromkeys([link.near_field, link.far_field]))


def _recheck(change: Change, live: LiveRows, settings: Mapping[str, Any], now: datetime) -> str | None:
    """Still no contact, no open deal, no case, nothing never-touch tied to it, on live data."""
    vocab = live.vocabulary
    accounts = _accounts(vocab)
    if accounts is None:
        return None
    contacts = [r.get(accounts.contacts[0].far_field) for r in live.related.get("contacts", ())]
    if contacts:
        return f"has contacts now ({contacts[0]})"
    state = {str(d.get(vocab.id_field)): d.get(vocab.deal_closed_field) for d in live.related.get("deals", ())}
    for row in live.related.get("deal_links", ()):
        deal = row.get(accounts.deals[0].far_field)
        if deal and live_flag(state.get(str(deal))) is not True:
            return f"now on an open {vocab.label(vocab.deal_object)} ({deal})"
    cases = _cases(vocab)
    if cases is not None:
        case = open_case_now(live, cases, cases.accounts[0], "account")
        if case or live.related.get("account_case_links"):
            return f"has a {vocab.label(cases.object)} now ({case or 'closed'})"
    for obj in accounts.kept_by:
        if live.related.get(f"kept_by_{obj}"):
            return f"tied to {_a(obj)} now"
    return None


def _reads(vocab: Vocabulary) -> list[ObjectRead]:
    accounts = _accounts(vocab)
    if accounts is None:
        return []
    links = [*accounts.contacts, *accounts.deals, *(link for links in accounts.kept_by.values() for link in links),
             # What the CRM deletes with an account, and with those records in turn: counted in the notes.
             *accounts.cascades, *(link for links in accounts.cascades_of.values() for link in links)]
    cases = _cases(vocab)
    reads = [
        ObjectRead(accounts.object, (vocab.id_field,)),
        ObjectRead(vocab.deal_object, (vocab.id_field, vocab.deal_closed_field), optional=True),
        *(ObjectRead(link.object, _pair(link), optional=True) for link in links),
    ]
    if cases is not None:
        reads.append(ObjectRead(cases.object, (vocab.id_field, cases.closed_field), optional=True))
        reads.extend(ObjectRead(link.object, _pair(link), optional=True) for link in cases.accounts)
    return merged_reads(reads)


def _summary(vocab: Vocabulary) -> str:
    """The generic summary names cases and contracts; a CRM whose accounts no never-touch record keeps
    (its links to them are not read) is told only what is checked, with its own removal and names."""
    accounts = _accounts(vocab)
    assert accounts is not None  # asked only where the concept is mapped (passes.summary_in)
    if accounts.kept_by:
        return summary_of(__doc__)
    cases = _cases(vocab)
    held = ["no contacts", "no open deals", *([f"no {vocab.label(cases.object, many=True)}"] if cases else [])]
    listed = ", ".join(held[:-1]) + " and " + held[-1]
    return f"{vocab.removal_verb()} {vocab.label(accounts.object, many=True)} left with {listed}."


def _removed(vocab: Vocabulary, op: Op) -> tuple[str, ...]:
    accounts = _accounts(vocab)
    return removal_objects(vocab, (accounts.object,) if accounts else (), op.value)


SPEC = PassSpec(
    name=NAME,
    summary=summary_of(__doc__),
    summary_for=_summary,
    order=50,
    defaults={},
    run=run,
    proposes=(
        Proposal(Op.DELETE, objects=lambda vocab: _removed(vocab, Op.DELETE)),
        Proposal(Op.ARCHIVE, objects=lambda vocab: _removed(vocab, Op.ARCHIVE)),
    ),
    live_check=LiveCheck(needs=_live_needs, recheck=_recheck, holds=_holds),
    needs=(Accounts,),
    reads=_reads,
)
