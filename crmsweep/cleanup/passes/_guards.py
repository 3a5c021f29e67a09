"""Guards and rules several passes share (not a pass: the module name starts with "_").

Who is on an open deal or an open case (people and accounts there are held back), which rows are known
closed, which records a set of links ties to which, the owner a hand-over names, and the same rules on
the live rows apply re-reads. "Known closed" is the one test of closure: an empty flag, or a linked
record the snapshot lacks, counts as open, because when in doubt we keep the record.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crmsweep.cleanup.passes import (
    LiveRows,
    ObjectRead,
    PassContext,
    PassOutput,
    RelatedRead,
    absent_advice,
    live_flag,
    propose,
)
from crmsweep.cleanup.view import SnapshotView, live_frame
from crmsweep.concepts import Cases, Converted, Link
from crmsweep.errors import BadInput
from crmsweep.model import Op, Severity, Vocabulary, canonical_datetime

MAX_OWNER_ID = 64  # an owner id in a setting is short, one token


# --- values ----------------------------------------------------------------------------------------


def is_in(series: pd.Series, values: Collection[Any]) -> pd.Series:
    """Per row, whether the value is one of `values` (an empty value never is)."""
    return series.isin(list(values)).fillna(False).astype(bool)


def filled(series: pd.Series) -> pd.Series:
    """Per row, whether the value is there: not null, and for text not blank."""
    there = series.notna()
    if series.dtype == object:
        there &= _not_blank(series)
    return there.astype(bool)


def _not_blank(series: pd.Series) -> pd.Series:
    """Per value of an object column: not a text `str.strip` leaves empty. A text that starts with a visible
    ASCII character is not blank, so Arrow settles those (nearly all) at once and Python strips only the rest;
    a call per value cost seconds a pass at a million people."""
    def check(v: Any) -> bool:
        return not isinstance(v, str) or bool(v.strip())

    present = series.notna().to_numpy(dtype=bool)
    values = series.to_numpy(dtype=object)[present]
    if not len(values) or pd.api.types.infer_dtype(values, skipna=False) != "string":
        return series.map(check).astype(bool)
    sure = pc.match_substring_regex(pa.array(values, type=pa.string()), r"^[!-~]").to_numpy(zero_copy_only=False)
    result = np.ones(len(series), dtype=bool)
    result[np.flatnonzero(present)[~sure]] = [check(v) for v in values[~sure]]
    return pd.Series(result, index=series.index)


def live_is_in(value: Any, values: Collection[Any]) -> bool:
    """`is_in` for one value as a live read gives it (checkboxes may arrive as "true"/"false")."""
    if any(isinstance(v, bool) for v in values):
        return live_flag(value) in values
    return value is not None and str(value) in {str(v) for v in values}


def live_filled(value: Any) -> bool:
    return not (value is None or (isinstance(value, str) and not value.strip()))


def live_day(value: Any) -> date | None:
    """A live date or datetime value as its UTC calendar day; None when empty."""
    if value is None or value == "":
        return None
    text = canonical_datetime(str(value)) if "T" in str(value) else str(value)[:10]
    return date.fromisoformat((text or "")[:10]) if text else None


def frame_days(series: pd.Series) -> pd.Series:
    """A typed date/datetime column as UTC calendar days (NaT stays NaT)."""
    days: pd.Series = series.dt.tz_convert("UTC").dt.normalize()
    return days


def day_stamp(day: date) -> pd.Timestamp:
    """A calendar day as the midnight-UTC timestamp `frame_days` compares with."""
    return pd.Timestamp(day.isoformat(), tz="UTC")


# --- links and closure ----------------------------------------------------------------------------


def known_closed(view: SnapshotView, vocab: Vocabulary, obj: str, field: str, values: Collection[Any]) -> set[str]:
    """Ids of the live rows of `obj` whose `field` holds one of `values`."""
    frame = live_frame(view, obj, [vocab.id_field, field], vocab.deleted_field)
    return set(frame.loc[is_in(frame[field], values), vocab.id_field].astype(str))


def present(view: SnapshotView, links: Sequence[Link]) -> list[Link]:
    return [link for link in links if view.has(link.object)]


def tied(view: SnapshotView, vocab: Vocabulary, links: Sequence[Link]) -> pd.DataFrame:
    """Columns `near` and `far`: every live tie the links in the snapshot hold, each once."""
    parts = []
    for link in present(view, links):
        rows = live_frame(view, link.object, list(dict.fromkeys([link.near_field, link.far_field])),
                          vocab.deleted_field)
        part = pd.DataFrame({"near": rows[link.near_field], "far": rows[link.far_field]})
        parts.append(part[part["near"].notna() & part["far"].notna()].astype(str))
    if not parts:
        return pd.DataFrame({"near": pd.Series([], dtype=object), "far": pd.Series([], dtype=object)})
    return pd.concat(parts, ignore_index=True).drop_duplicates(ignore_index=True)


def _targets(view: SnapshotView, obj: str, field: str, candidates: Sequence[str]) -> tuple[str, ...]:
    """The candidate objects a link field points at (all of them when the describe does not say)."""
    for spec in view.fields(obj):
        if spec.name == field and spec.reference_to:
            return tuple(o for o in spec.reference_to if o in candidates)
    return tuple(candidates)


def _lacks(what: Sequence[str], guarded: str) -> str:
    return f"the snapshot holds no {' or '.join(what)}, so {guarded} cannot be protected: {absent_advice(what)}"


def people_on_open_deals(ctx: PassContext, targets: Sequence[str]) -> tuple[set[str], str | None]:
    """Ids of people (of the `targets` objects) on a deal not known closed, or why that cannot be told."""
    vocab, view = ctx.vocabulary, ctx.view
    people: set[str] = set()
    deal = vocab.deal_object
    for link in vocab.deal_links:
        missing = [o for o in (link.object, deal) if not view.has(o)]
        if missing:
            return people, _lacks(missing, f"people on an open {deal.lower()}")
        if not set(_targets(view, link.object, link.person_field, vocab.people_objects)) & set(targets):
            continue
        closed = known_closed(view, vocab, deal, vocab.deal_closed_field, (True,))
        ties = tied(view, vocab, [Link(link.object, link.person_field, link.deal_field)])
        people.update(ties.loc[~ties["far"].isin(closed), "near"])
    return people, None


def on_open_cases(ctx: PassContext, cases: Cases, links: Sequence[Link], whose: str) -> tuple[set[str], str | None]:
    """Ids of the records `links` tie to a case not known closed, or why that cannot be told."""
    view = ctx.view
    usable = present(view, links)
    if not usable or not view.has(cases.object):
        missing = [] if view.has(cases.object) else [cases.object]
        missing += [] if usable else [links[0].object]
        return set(), _lacks(list(dict.fromkeys(missing)), f"{whose} on an open {cases.object.lower()}")
    closed = known_closed(view, ctx.vocabulary, cases.object, cases.closed_field, cases.closed_values)
    ties = tied(view, ctx.vocabulary, usable)
    return set(ties.loc[~ties["far"].isin(closed), "near"]), None


def held_people(ctx: PassContext, targets: Sequence[str]) -> tuple[dict[str, str], str | None]:
    """People of `targets` a removal must keep, each with why (an open deal first, then an open case),
    or why the guards cannot be checked (then the pass must not remove anyone)."""
    vocab = ctx.vocabulary
    on_deals, cannot = people_on_open_deals(ctx, targets)
    if cannot:
        return {}, cannot
    held = {p: f"on an open {vocab.deal_object.lower()}" for p in on_deals}
    cases = vocab.concept(Cases)
    if cases is not None and cases.people:
        link = cases.people[0]
        if not ctx.view.has(link.object) \
                or set(_targets(ctx.view, link.object, link.near_field, vocab.people_objects)) & set(targets):
            on_cases, cannot = on_open_cases(ctx, cases, cases.people, "people")
            if cannot:
                return {}, cannot
            for person in on_cases:
                held.setdefault(person, f"on an open {cases.object.lower()}")
    return held, None


# --- the same guards on live rows -----------------------------------------------------------------


def deal_guard_reads(vocab: Vocabulary) -> tuple[RelatedRead, ...]:
    """What apply re-reads to tell whether a person is now on an open deal (see `open_deal_now`)."""
    reads: list[RelatedRead] = []
    for n, link in enumerate(vocab.deal_links):
        reads.append(RelatedRead(f"links{n}", link.object, link.person_field, (link.person_field, link.deal_field)))
        reads.append(RelatedRead(f"deals{n}", vocab.deal_object, vocab.id_field,
                                 (vocab.id_field, vocab.deal_closed_field), via=(f"links{n}", link.deal_field)))
    return tuple(reads)


def people_guard_reads(vocab: Vocabulary) -> tuple[RelatedRead, ...]:
    """What apply re-reads to tell whether a person is now on an open deal or case."""
    reads = list(deal_guard_reads(vocab))
    cases = vocab.concept(Cases)
    if cases is not None and cases.people:
        # One end of the links is enough live: both ends hold the same ties.
        reads.extend(case_reads(vocab, cases, cases.people[0], "person"))
    return tuple(reads)


def case_reads(vocab: Vocabulary, cases: Cases, link: Link, prefix: str) -> tuple[RelatedRead, ...]:
    return (
        RelatedRead(f"{prefix}_case_links", link.object, link.near_field,
                    tuple(dict.fromkeys([link.near_field, link.far_field]))),
        RelatedRead(f"{prefix}_cases", cases.object, vocab.id_field, (vocab.id_field, cases.closed_field),
                    via=(f"{prefix}_case_links", link.far_field)),
    )


def open_case_now(live: LiveRows, cases: Cases, link: Link, prefix: str) -> str | None:
    """The id of a case the live rows tie the candidate to and that is not known closed, or None."""
    vocab = live.vocabulary
    state = {str(c.get(vocab.id_field)): c.get(cases.closed_field) for c in live.related.get(f"{prefix}_cases", ())}
    for row in live.related.get(f"{prefix}_case_links", ()):
        case = row.get(link.far_field)
        if case and not live_is_in(state.get(str(case)), cases.closed_values):
            return str(case)
    return None


def open_deal_now(live: LiveRows) -> str | None:
    """The id of a deal the live rows put the person on and that is not known closed, or None."""
    vocab = live.vocabulary
    for n, link in enumerate(vocab.deal_links):
        closed = {str(d.get(vocab.id_field)): d.get(vocab.deal_closed_field) for d in live.related.get(f"deals{n}", ())}
        for row in live.related.get(f"links{n}", ()):
            deal = row.get(link.deal_field)
            # Only a deal known closed frees the person: "false", empty or a deal not read counts as open.
            if deal and live_flag(closed.get(str(deal))) is not True:
                return str(deal)
    return None


def people_guard_recheck(live: LiveRows) -> str | None:
    """Why a person may no longer be removed: now on an open deal or case; None when neither."""
    vocab = live.vocabulary
    deal = open_deal_now(live)
    if deal:
        return f"now on an open {vocab.deal_object.lower()} ({deal})"
    cases = vocab.concept(Cases)
    if cases is not None and cases.people:
        case = open_case_now(live, cases, cases.people[0], "person")
        if case:
            return f"now on an open {cases.object.lower()} ({case})"
    return None


# --- owners a setting names -----------------------------------------------------------------------


def check_owner_setting(pass_name: str, key: str, value: str) -> None:
    """BadInput unless `value` is empty or one owner id (short, printable, no spaces)."""
    if value and (len(value) > MAX_OWNER_ID or not value.isprintable() or value.strip() != value or " " in value):
        raise BadInput(f"[passes.{pass_name}] {key} must be one owner id (at most {MAX_OWNER_ID} characters, "
                       "no spaces), like \"1234567\"")


def user_states(view: SnapshotView, vocab: Vocabulary) -> pd.DataFrame:
    """Every user (deactivated ones too: where users cannot be deleted, the CRM flags a deactivated
    owner's row as deleted) with columns id and active (False unless known active)."""
    users = view.frame(vocab.user_object, [vocab.id_field, vocab.user_active_field])
    return pd.DataFrame({
        "id": users[vocab.id_field].astype(str),
        "active": users[vocab.user_active_field].fillna(False).astype(bool),
    })


def require_active_owner(view: SnapshotView, vocab: Vocabulary, pass_name: str, key: str, target: str) -> None:
    """BadInput unless `target` is an active user of the snapshot (as the earlier passes leave it)."""
    users = user_states(view, vocab)
    if not bool((users["active"] & (users["id"].map(vocab.id_key) == vocab.id_key(target))).any()):
        raise BadInput(f"[passes.{pass_name}] {key} {target!r} is not an active {vocab.user_object} record in the "
                       "snapshot: name an active owner's id")


def removal_objects(vocab: Vocabulary, objects: Sequence[str], op_value: str) -> tuple[str, ...]:
    """`objects` when `op_value` is the provider's removal op, else none (a pass declares both ops)."""
    return tuple(objects) if vocab.removal == op_value else ()


def one_setting_of(pass_name: str, key: str, allowed: Sequence[str], settings: Mapping[str, Any]) -> None:
    """BadInput unless settings[key] is one of `allowed`."""
    if settings[key] not in allowed:
        raise BadInput(f"[passes.{pass_name}] {key} must be one of: {', '.join(allowed)}; not {settings[key]!r}")


# --- people -------------------------------------------------------------------------------------------


def converted_of(vocab: Vocabulary, obj: str) -> str | None:
    """The field that marks converted people of `obj`, if the provider has one."""
    converted = vocab.concept(Converted)
    return converted.flags.get(obj) if converted is not None else None


def converted_flag(view: SnapshotView, vocab: Vocabulary, obj: str) -> str | None:
    """`converted_of`, where this snapshot holds that field."""
    flag = converted_of(vocab, obj)
    return flag if flag and flag in {s.name for s in view.fields(obj)} else None


def people_reads(vocab: Vocabulary, fields: Mapping[str, Sequence[str]]) -> list[ObjectRead]:
    """What a pass removing people reads: the people objects (`fields` of each, and the converted flag)
    and what the open-deal and open-case guards read. All optional: the pass says itself, more
    precisely, what a missing one means."""
    people = [
        ObjectRead(o, tuple(dict.fromkeys([vocab.id_field, *own, *filter(None, [converted_of(vocab, o)])])),
                   optional=True)
        for o, own in fields.items()
    ]
    deals = [ObjectRead(vocab.deal_object, (vocab.id_field, vocab.deal_closed_field), optional=True)]
    links = [ObjectRead(link.object, (link.person_field, link.deal_field), optional=True) for link in vocab.deal_links]
    cases = vocab.concept(Cases)
    case_rows = [] if cases is None else [
        ObjectRead(cases.object, (vocab.id_field, cases.closed_field), optional=True),
        *(ObjectRead(link.object, (link.near_field, link.far_field), optional=True) for link in cases.people),
    ]
    return merged_reads([*people, *deals, *links, *case_rows])


def merged_reads(reads: Sequence[ObjectRead]) -> list[ObjectRead]:
    """Each object once, in first-seen order, with the fields of all its reads (optional only if all are)."""
    merged: dict[str, ObjectRead] = {}
    for read in reads:
        was = merged.get(read.object)
        merged[read.object] = read if was is None else ObjectRead(
            read.object, tuple(dict.fromkeys([*was.fields, *read.fields])), optional=was.optional and read.optional)
    return list(merged.values())


def leave_converted(
    output: PassOutput, obj: str, frame: pd.DataFrame, flag: str | None, chosen: pd.Series
) -> pd.Series:
    """`chosen` without converted people (noted: they are history of the record they became)."""
    if flag is None:
        return chosen
    converted = is_in(frame[flag], (True,))
    if count := int((chosen & converted).sum()):
        output.notes.append(f"{count} converted {obj} record{'s' if count > 1 else ''} left alone ({flag} true)")
    return chosen & ~converted


def propose_removals(
    ctx: PassContext, pass_name: str, output: PassOutput, obj: str, chosen: pd.DataFrame,
    reasons: Sequence[str], held: Mapping[str, str],
) -> None:
    """Removal changes for the `chosen` rows (in id order), except those `held` keeps (counted by why)."""
    vocab = ctx.vocabulary
    ids = [str(i) for i in chosen[vocab.id_field]]
    kept = [(rid, why) for rid, why in zip(ids, reasons, strict=True) if rid not in held]
    for rid in ids:
        if rid in held:
            output.held_back[held[rid]] = output.held_back.get(held[rid], 0) + 1
    records = ctx.view.before_images(obj, [rid for rid, _ in kept])
    for rid, why in kept:
        output.changes.append(
            propose(ctx, pass_name, Op(vocab.removal), obj, records[rid], reason=why, severity=Severity.MINOR)
        )


def handed_to(vocab: Vocabulary, settings: Mapping[str, Any]) -> Mapping[str, Any]:
    """What a hand-over writes under its settings: the owner field, to `reassign_to` (nothing without one)."""
    target = settings["reassign_to"]
    return {vocab.owner_field: target} if target else {}
