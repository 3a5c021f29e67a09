"""Guards and rules several passes share (not a pass: the module name starts with "_").

Who is on an open deal or an open case (people and accounts there are held back), which rows are known
closed, which records a set of links ties to which, the owner a hand-over names, and the same rules on
the live rows apply re-reads. "Known closed" is the one test of closure: an empty flag, or a linked
record the snapshot lacks, counts as open, because when in doubt we keep the record.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
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
from crmsweep.cleanup.protect import Protections
from crmsweep.cleanup.view import (
    LiveColumns,
    SnapshotView,
    holds_text,
    id_set,
    id_text,
    ids_of,
    in_ids,
    text_array,
)
from crmsweep.concepts import Cases, Converted, Link, RemovalCascades
from crmsweep.errors import BadInput
from crmsweep.model import Change, Op, Severity, Vocabulary, canonical_datetime

MAX_OWNER_ID = 64  # an owner id in a setting is short, one token


# --- values ----------------------------------------------------------------------------------------


def is_in(series: pd.Series, values: Collection[Any]) -> pd.Series:
    """Per row, whether the value is one of `values` (an empty value never is)."""
    if isinstance(series.dtype, pd.StringDtype) and all(isinstance(v, str) for v in values):
        # pandas' `isin` on an Arrow-backed column makes an Arrow scalar per value looked up.
        return in_ids(series, id_set(values))
    return series.isin(list(values)).fillna(False).astype(bool)


def filled(series: pd.Series) -> pd.Series:
    """Per row, whether the value is there: not null, and for text not blank (what `str.strip` leaves empty)."""
    if not holds_text(series):
        return series.notna().astype(bool)
    text = text_array(series)
    if text is None:
        return (series.notna() & series.map(_not_blank)).astype(bool)
    # A text that starts with a visible ASCII character is not blank: those (nearly all) are settled from
    # their first bytes, and Python strips only the rest. A call per value cost seconds a pass at a million people.
    there = starts_visible(text)
    unsure = np.flatnonzero(_bools(text.is_valid()) & ~there)
    if len(unsure):
        there[unsure] = [_not_blank(v) for v in text.take(pa.array(unsure)).to_pylist()]
    return pd.Series(there, index=series.index)


def starts_visible(text: pa.Array) -> np.ndarray:
    """Per value of a string array, whether its first byte is a visible ASCII character ("!" to "~"); False
    where it is null or empty. Read off the offsets and bytes: a regex over a million texts cost five times
    as much, and UTF-8 never uses these bytes inside another character."""
    offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)[text.offset:text.offset + len(text) + 1] \
        if len(text) else np.zeros(1, dtype=np.int32)
    data = text.buffers()[2]
    starts = offsets[:-1]
    there = np.zeros(len(text), dtype=bool)
    nonempty = np.flatnonzero(offsets[1:] > starts)
    if len(nonempty) and data is not None:
        first = np.frombuffer(data, dtype=np.uint8)[starts[nonempty]]
        there[nonempty] = (first >= 0x21) & (first <= 0x7E)
    if text.null_count:
        there &= _bools(text.is_valid())
    return there


def _not_blank(value: Any) -> bool:
    return not isinstance(value, str) or not blank_text(value)


def blank_text(text: str) -> bool:
    """Whether a text shows nothing: only whitespace and invisible format characters (zero-width space, word
    joiner, byte order mark: Unicode category Cf), which a copy from a web page or a spreadsheet leaves in an
    "empty" cell. No one is reached at an email or phone made of those."""
    return not text.strip() or all(c.isspace() or unicodedata.category(c) == "Cf" for c in text)


def _bools(array: pa.Array) -> np.ndarray:
    """A boolean Arrow array as a writable numpy one, null as False."""
    return np.array(pc.fill_null(array, False).to_numpy(zero_copy_only=False), dtype=bool)


def live_is_in(value: Any, values: Collection[Any]) -> bool:
    """`is_in` for one value as a live read gives it (checkboxes may arrive as "true"/"false")."""
    if any(isinstance(v, bool) for v in values):
        return live_flag(value) in values
    return value is not None and str(value) in {str(v) for v in values}


def live_filled(value: Any) -> bool:
    return not (value is None or (isinstance(value, str) and blank_text(value)))


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


def utc_days(series: pd.Series) -> np.ndarray:
    """A typed date/datetime column (no empty value) as numpy calendar days in UTC."""
    return np.asarray(series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy(), dtype="datetime64[D]")


def day_texts(days: np.ndarray) -> list[str]:
    """Numpy calendar days as `date.isoformat` writes them ("2026-06-01")."""
    return list(np.datetime_as_string(days, unit="D").tolist())


def day_stamp(day: date) -> pd.Timestamp:
    """A calendar day as the midnight-UTC timestamp `frame_days` compares with."""
    return pd.Timestamp(day.isoformat(), tz="UTC")


# --- links and closure ----------------------------------------------------------------------------


def known_closed(view: SnapshotView, vocab: Vocabulary, obj: str, field: str, values: Collection[Any]) -> pa.Array:
    """Ids (as text) of the live rows of `obj` whose `field` holds one of `values`."""
    live = LiveColumns(view, obj, [vocab.id_field, field], vocab.deleted_field)
    rows = np.flatnonzero(is_in(live.column(field), values).to_numpy(dtype=bool) & live.keep)
    return id_text(live.frame(rows, [vocab.id_field])[vocab.id_field])


def present(view: SnapshotView, links: Sequence[Link]) -> list[Link]:
    return [link for link in links if view.has(link.object)]


_NEAR, _FAR = 0, 1


@dataclass(frozen=True)
class Ties:
    """The live ties some links hold: per link, its rows' (near, far) columns as the frames give them. A tie
    counts when both ends are filled; a pair may repeat (every question asked of ties is about sets).

    Each question takes one end of every row as text and the other end only at the rows it picks: at a
    million contacts, converting both ends of every link row was most of what empty_accounts cost.

    `live` says, per part, which of its rows are live (none given: all are): `tied` hands the link rows as read
    with that mask, so the link columns of an object an earlier pass removed rows of are not filtered first."""

    parts: tuple[tuple[pd.Series, pd.Series], ...]
    live: tuple[np.ndarray, ...] = ()

    def _live(self, part: int, rows: np.ndarray) -> np.ndarray:
        """`rows` (one bool per row of the part) where the row is live too."""
        return rows & self.live[part] if self.live else rows

    def near_ids(self) -> list[str]:
        """Each record tied to something, once."""
        return _unique(self._ends(_NEAR, None, True, need_other=False)[_NEAR])

    def tie_any(self, ids: pa.Array) -> np.ndarray:
        """Per value of `ids` (text), whether some tie's near end is it. The link rows are looked up in `ids`,
        not `ids` in them: the hash is built over the fewer values (accounts, not their million contacts)."""
        found = np.zeros(len(ids), dtype=bool)
        for part, (near, far) in enumerate(self.parts):
            at = pc.index_in(id_text(near), value_set=ids)
            # A far end is asked only whether it is filled: of every row at once, not by taking the rows.
            rows = np.flatnonzero(self._live(part, _bools(at.is_valid()) & far.notna().to_numpy(dtype=bool)))
            found[at.take(pa.array(rows, pa.int64())).to_numpy()] = True
        # `index_in` names the first of equal values only: the others are found by value.
        return _bools(pc.is_in(ids, value_set=ids.filter(pa.array(found))))

    def near_unless_far_in(self, ids: pa.Array) -> list[str]:
        """Each record tied to something outside `ids`, once."""
        return _unique(self._ends(_FAR, ids, False)[_NEAR])

    def near_where_far_in(self, ids: pa.Array) -> list[str]:
        """Each record tied to something in `ids`, once."""
        return _unique(self._ends(_FAR, ids, True)[_NEAR])

    def far_count_where_near_in(self, ids: pa.Array) -> int:
        """How many distinct records are tied to something in `ids`."""
        return int(pc.count_distinct(self._ends(_NEAR, ids, True)[_FAR]).as_py())

    def far_where_near_in(self, ids: pa.Array) -> pa.Array:
        """The distinct records tied to something in `ids` (text)."""
        return pc.unique(self._ends(_NEAR, ids, True)[_FAR])

    def where_near_in(self, ids: pa.Array) -> tuple[pa.Array, pa.Array]:
        """(near, far) as text of each tie whose near end is in `ids`: one look-up serving every question
        asked of the same ids (what a removal takes, and which of it is protected)."""
        return self._ends(_NEAR, ids, True)

    def where_far_in(self, ids: pa.Array) -> tuple[pa.Array, pa.Array]:
        """(near, far) as text of each tie whose far end is in `ids`."""
        return self._ends(_FAR, ids, True)

    def _ends(self, by: int, ids: pa.Array | None, inside: bool, need_other: bool = True) -> tuple[pa.Array, pa.Array]:
        """(near, far) as text of the ties whose `by` end is in `ids` (not in it, unless `inside`; every
        tie when `ids` is None). The far end is empty-valued and unusable when not `need_other`."""
        picked: list[tuple[pa.Array, pa.Array]] = []
        for n, part in enumerate(self.parts):
            key = id_text(part[by])
            chosen = key.is_valid()
            if ids is not None:
                hit = pc.is_in(key, value_set=ids)
                chosen = pc.and_(chosen, hit if inside else pc.invert(hit))
            at = np.flatnonzero(self._live(n, _bools(chosen)))
            rest = part[1 - by].iloc[at]
            other = id_text(rest) if need_other else pa.nulls(len(at), pa.string())
            both = pa.array(rest.notna().to_numpy(dtype=bool))
            mine, theirs = key.take(pa.array(at, pa.int64())).filter(both), other.filter(both)
            picked.append((mine, theirs) if by == _NEAR else (theirs, mine))
        return (pa.concat_arrays([pa.array([], pa.string()), *(n for n, _ in picked)]),
                pa.concat_arrays([pa.array([], pa.string()), *(f for _, f in picked)]))


def _unique(texts: pa.Array) -> list[str]:
    return list(pc.unique(texts).to_pylist())


def tied(view: SnapshotView, vocab: Vocabulary, links: Sequence[Link]) -> Ties:
    """Every live tie the links in the snapshot hold (see `Ties`)."""
    parts, live = [], []
    for link in present(view, links):
        rows = LiveColumns(view, link.object, [link.near_field, link.far_field], vocab.deleted_field)
        parts.append((rows.column(link.near_field), rows.column(link.far_field)))
        live.append(rows.keep)
    return Ties(tuple(parts), tuple(live))


def _targets(view: SnapshotView, obj: str, field: str, candidates: Sequence[str]) -> tuple[str, ...]:
    """The candidate objects a link field points at (all of them when the describe does not say)."""
    for spec in view.fields(obj):
        if spec.name == field and spec.reference_to:
            return tuple(o for o in spec.reference_to if o in candidates)
    return tuple(candidates)


def _lacks(what: Sequence[str], guarded: str) -> str:
    return f"the snapshot holds no {' or '.join(what)}, so {guarded} cannot be protected: {absent_advice(what)}"


def people_on_open_deals(ctx: PassContext, targets: Sequence[str], *, read: bool = True) -> tuple[set[str], str | None]:
    """Ids of people (of the `targets` objects) on a deal not known closed, or why that cannot be told.
    Not `read`: only whether it can be told (from the snapshot's objects and fields, no row read)."""
    vocab, view = ctx.vocabulary, ctx.view
    people: set[str] = set()
    deal = vocab.deal_object
    for link in vocab.deal_links:
        missing = [o for o in (link.object, deal) if not view.has(o)]
        if missing:
            return people, _lacks(missing, f"people on an open {vocab.label(deal)}")
        if not read or not set(_targets(view, link.object, link.person_field, vocab.people_objects)) & set(targets):
            continue
        closed = known_closed(view, vocab, deal, vocab.deal_closed_field, (True,))
        ties = tied(view, vocab, [Link(link.object, link.person_field, link.deal_field)])
        people.update(ties.near_unless_far_in(closed))
    return people, None


def on_open_cases(
    ctx: PassContext, cases: Cases, links: Sequence[Link], whose: str, *, read: bool = True
) -> tuple[set[str], str | None]:
    """Ids of the records `links` tie to a case not known closed, or why that cannot be told (not `read`:
    only that)."""
    view = ctx.view
    usable = present(view, links)
    if not usable or not view.has(cases.object):
        missing = [] if view.has(cases.object) else [cases.object]
        missing += [] if usable else [links[0].object]
        return set(), _lacks(list(dict.fromkeys(missing)), f"{whose} on an open {ctx.vocabulary.label(cases.object)}")
    if not read:
        return set(), None
    closed = known_closed(view, ctx.vocabulary, cases.object, cases.closed_field, cases.closed_values)
    return set(tied(view, ctx.vocabulary, usable).near_unless_far_in(closed)), None


def held_people(ctx: PassContext, targets: Sequence[str], *, read: bool = True) -> tuple[dict[str, str], str | None]:
    """People of `targets` a removal must keep, each with why (an open deal first, then an open case),
    or why the guards cannot be checked (then the pass must not remove anyone). Not `read`: only whether
    they can be checked, so a pass that finds no candidate reads no deal or case."""
    vocab = ctx.vocabulary
    on_deals, cannot = people_on_open_deals(ctx, targets, read=read)
    if cannot:
        return {}, cannot
    held = {p: f"on an open {vocab.label(vocab.deal_object)}" for p in on_deals}
    cases = vocab.concept(Cases)
    if cases is not None and cases.people:
        link = cases.people[0]
        if not ctx.view.has(link.object) \
                or set(_targets(ctx.view, link.object, link.near_field, vocab.people_objects)) & set(targets):
            on_cases, cannot = on_open_cases(ctx, cases, cases.people, "people", read=read)
            if cannot:
                return {}, cannot
            for person in on_cases:
                held.setdefault(person, f"on an open {vocab.label(cases.object)}")
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
        return f"now on an open {vocab.label(vocab.deal_object)} ({deal})"
    cases = vocab.concept(Cases)
    if cases is not None and cases.people:
        case = open_case_now(live, cases, cases.people[0], "person")
        if case:
            return f"now on an open {vocab.label(cases.object)} ({case})"
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


def require_active_owner(view: SnapshotView, vocab: Vocabulary, pass_name: str, key: str, target: str,
                         backed_up: SnapshotView | None = None) -> None:
    """BadInput unless `target` is an active user of the snapshot as the earlier passes leave it (`view`);
    with `backed_up` (the snapshot itself), the error says when an earlier pass is what deactivates it."""
    if not _is_active(view, vocab, target):
        # A user an earlier pass deactivates is no owner to hand records to either, though active in the backup.
        earlier = backed_up is not None and _is_active(backed_up, vocab, target)
        raise BadInput(f"[passes.{pass_name}] {key} {target!r} is "
                       + ("active in the snapshot, but an earlier pass of this scan deactivates it: name another "
                          "active owner's id, or keep that user with [protect] ids" if earlier else
                          f"not an active {vocab.user_object} record in the snapshot: name an active owner's id"))


def _is_active(view: SnapshotView, vocab: Vocabulary, target: str) -> bool:
    users = user_states(view, vocab)
    return bool((users["active"] & (users["id"].map(vocab.id_key) == vocab.id_key(target))).any())


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
    return merged_reads([*people, *deals, *links, *case_rows, *cascade_reads(vocab, list(fields))])


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
    reasons: Sequence[str], held: Mapping[str, str], taken: TakenWith | None = None,
) -> None:
    """Removal changes for the `chosen` rows (in id order), except those `held` keeps (counted by why); with
    `taken`, also those whose removal would take protected records, and what the rest take is counted."""
    vocab = ctx.vocabulary
    ids = ids_of(chosen[vocab.id_field])
    if taken is not None:
        held = {**removal_takes(ctx, obj, [rid for rid in ids if rid not in held], taken), **held}
    kept = [(rid, why) for rid, why in zip(ids, reasons, strict=True) if rid not in held]
    for rid in ids:
        if rid in held:
            output.held_back[held[rid]] = output.held_back.get(held[rid], 0) + 1
    records = ctx.view.before_images(obj, [rid for rid, _ in kept])
    for rid, why in kept:
        output.changes.append(
            propose(ctx, pass_name, Op(vocab.removal), obj, records[rid], reason=why, severity=Severity.MINOR)
        )


@dataclass
class TakenWith:
    """What removing records of some objects takes with them (`RemovalCascades`), gathered over a pass:
    how many records of each object the CRM deletes along, for the plan's note."""

    counts: dict[str, int]

    def note(self, vocab: Vocabulary, objects: Sequence[str]) -> list[str]:
        whose = " and ".join(vocab.label(o, many=True) for o in objects)
        return [f"removing these {whose} also deletes {n} {obj} record(s) tied to them (the CRM deletes them "
                "with the records they belong to); a rollback brings them back with them"
                for obj, n in self.counts.items() if n]


def _cascade_links(vocab: Vocabulary, obj: str) -> tuple[Link, ...]:
    concept = vocab.concept(RemovalCascades)
    return concept.by_object.get(obj, ()) if concept is not None else ()


def cascade_reason(vocab: Vocabulary, link: Link, then: Link | None = None, named: str | None = None) -> str:
    """Why a removal is held back for what it takes: the records of `link` (and with them those of `then`),
    of a protected object or, with `named`, that record `[protect] ids` names. One wording for every pass,
    at the scan and at apply, so a plan's held-back count and a run's skip read alike."""
    held = f"[protect] ids names {named}" if named else f"{(then or link).object} is a protected object"
    via = f"their {vocab.label(then.object, many=True)} with them: " if then is not None else ""
    return f"its {vocab.label(link.object, many=True)} would go with it, and {via}{held}"


def link_holds(vocab: Vocabulary, tie: Ties, link: Link, taken: pa.Array,
               protections: Protections) -> list[tuple[str, str]]:
    """(record, why) for each record whose removal takes, through `link` (its ties `tie`), one of `taken`
    that is of a protected object or that `[protect] ids` names."""
    return reached_holds(vocab, link, tie.where_far_in(taken), protections, taken)


def reached_holds(vocab: Vocabulary, link: Link, reached: tuple[pa.Array, pa.Array], protections: Protections,
                  taken: pa.Array | None = None) -> list[tuple[str, str]]:
    """`link_holds` of the ties `reached` ((near, far) as text): each near end whose far end is of a
    protected object or one `[protect] ids` names, with why; the named asked in the order of `taken` (the
    distinct far ends, in order, when not given)."""
    near, far = reached
    if protections.protects_object(link.object):
        return [(rid, cascade_reason(vocab, link)) for rid in _unique(near)]
    named = protections.protected_among((pc.unique(far) if taken is None else taken).to_pylist())
    return [(rid, cascade_reason(vocab, link, named=one))
            for one in named for rid in _unique(near.filter(pc.equal(far, one)))]


def live_link_hold(vocab: Vocabulary, link: Link, taken: Sequence[str], protections: Protections,
                   then: Link | None = None) -> str | None:
    """`link_holds` for one record at apply: why `taken`, the live records its removal takes through `link`
    (and then `then`), hold it back under the protections in force now, or None."""
    if not taken:
        return None
    if protections.protects_object((then or link).object):
        return cascade_reason(vocab, link, then)
    named = protections.protected_among(taken)
    return cascade_reason(vocab, link, then, named[0]) if named else None


def far_ends(live: LiveRows, read: str, link: Link) -> list[str]:
    """The far ends of `link` in the live rows of `read`."""
    return [str(row[link.far_field]) for row in live.related.get(read, ()) if row.get(link.far_field)]


def removal_takes(ctx: PassContext, obj: str, ids: Sequence[str], taken: TakenWith) -> dict[str, str]:
    """The ids of `ids` (records of `obj` to remove) whose removal would take a record of a protected
    object or one `[protect] ids` names, with why (the CRM deletes such records with them: a protection
    holds a record back from every pass, a cascade included); what the others take is added to `taken`."""
    vocab = ctx.vocabulary
    links = [link for link in _cascade_links(vocab, obj)
             if ctx.view.has(link.object) and link.near_field in {f.name for f in ctx.view.fields(link.object)}]
    if not ids or not links:
        return {}
    protections = ctx.protections
    candidates = pa.array(list(ids), pa.string())
    # One look-up of the candidates per link serves both what is held and what the rest take: at a million
    # contacts each look-up hashes 296k ids against half a million tasks.
    reached = [tied(ctx.view, vocab, (link,)).where_near_in(candidates) for link in links]
    held: dict[str, str] = {}
    for link, ends in zip(links, reached, strict=True):
        if protections is None:
            break
        for rid, why in reached_holds(vocab, link, ends, protections):
            held.setdefault(rid, why)
    kept = pa.array(list(held), pa.string())
    for link, (near, far) in zip(links, reached, strict=True):
        going = far.filter(pc.invert(pc.is_in(near, value_set=kept))) if held else far
        taken.counts[link.object] = taken.counts.get(link.object, 0) + int(pc.count_distinct(going).as_py())
    return held


def _cascade_read(link: Link) -> str:
    return f"cascade_{link.object}"


def cascade_live_reads(vocab: Vocabulary, obj: str) -> tuple[RelatedRead, ...]:
    """What apply re-reads live of the records removing a record of `obj` takes (`RemovalCascades`)."""
    return tuple(RelatedRead(_cascade_read(link), link.object, link.near_field, (link.near_field, link.far_field))
                 for link in _cascade_links(vocab, obj))


def removal_holds(change: Change, live: LiveRows, protections: Protections) -> str | None:
    """`removal_takes` on live rows, under the protections in force at apply time: a record tied to the
    person since the scan, or a protection added to the config since, still holds the removal back."""
    vocab = live.vocabulary
    if change.op is not Op(vocab.removal):
        return None
    for link in _cascade_links(vocab, change.object):
        why = live_link_hold(vocab, link, far_ends(live, _cascade_read(link), link), protections)
        if why is not None:
            return why
    return None


def cascade_reads(vocab: Vocabulary, objects: Sequence[str]) -> list[ObjectRead]:
    """What a backup must hold to count what removing records of `objects` takes (optional: without it the
    plan cannot say, and a protection of that object cannot hold)."""
    return [ObjectRead(link.object, (vocab.id_field, link.near_field), optional=True)
            for o in objects for link in _cascade_links(vocab, o)]


def handed_to(vocab: Vocabulary, settings: Mapping[str, Any]) -> Mapping[str, Any]:
    """What a hand-over writes under its settings: the owner field, to `reassign_to` (nothing without one)."""
    target = settings["reassign_to"]
    return {vocab.owner_field: target} if target else {}


# --- a hand-over's owners, live ---------------------------------------------------------------------

HAND_OVER_OWNERS = "hand_over_owners"


def hand_over_owners_read(vocab: Vocabulary) -> RelatedRead:
    """The live state of the owners a hand-over names: the one the scan saw own the record, and the one it
    gives the record to. One read of the user object per batch, by the distinct ids of its changes."""
    owner = vocab.owner_field

    def named(change: Change) -> list[str]:
        return [str(v) for v in (change.before.get(owner), change.after.get(owner)) if v]

    return RelatedRead(HAND_OVER_OWNERS, vocab.user_object, vocab.id_field, (vocab.id_field, vocab.user_active_field),
                       values_of=named)


def owner_active_now(live: LiveRows, owner_id: Any) -> bool | None:
    """Whether the owner `owner_id` is active on the live read of `hand_over_owners_read`: None when the
    read did not give them (not a user: a queue, or gone)."""
    vocab = live.vocabulary
    want = vocab.id_key(str(owner_id or ""))
    for row in live.related.get(HAND_OVER_OWNERS, ()):
        if vocab.id_key(str(row.get(vocab.id_field) or "")) == want:
            return live_flag(row.get(vocab.user_active_field))
    return None


def hand_over_target_recheck(change: Change, live: LiveRows) -> str | None:
    """A hand-over goes only to an owner still active: not one deactivated (or gone) since the scan."""
    target = change.after.get(live.vocabulary.owner_field)
    if target and owner_active_now(live, target) is not True:
        return (f"the owner to hand over to, {target}, is inactive now: set another reassign_to and scan again")
    return None
