"""Delete files stored more than a number of years ago that are attached to no contract, order, quote or invoice.

A file is old when it was created before the same calendar day `years` years ago. Its attachments are
the link rows naming it; a file linked to a record of a never-touch object (the provider's contracts,
orders, quotes, invoices...) is held back and counted. Such a record is known by its row in the
snapshot and, where the snapshot holds no rows of that object, by the documented prefix of its ids.
Without the link rows the attachments cannot be told, so the pass does not run. A file attached to
one since the scan is left alone at apply, its record's object told by the id prefixes the CRM lists then.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd

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
    RelatedRead,
    summary_of,
)
from crmsweep.cleanup.passes._assets import add_proposals, concept_of, day_of, hold, live_when, proposed_objects
from crmsweep.cleanup.passes.stale_contacts import years_before
from crmsweep.cleanup.protect import Protections
from crmsweep.cleanup.view import live_frame, text_values
from crmsweep.concepts import Files
from crmsweep.model import Change, Op, Vocabulary

NAME = "old_files"
_LINKS = "links"  # the live read of a candidate's link rows


def _files(vocab: Vocabulary) -> Files:
    return concept_of(vocab, Files)


def _prefixes(vocab: Vocabulary, concept: Files) -> dict[str, str]:
    """Id prefix -> never-touch object, for the objects whose prefix the provider documents."""
    return {p: obj for obj, p in concept.key_prefixes.items() if obj in vocab.never_touch_objects}


def protected_object_of(vocab: Vocabulary, concept: Files, record_id: str, known: Mapping[str, str]) -> str | None:
    """The never-touch object `record_id` is a record of (`known`: id key -> object, from the snapshot)."""
    if (obj := known.get(vocab.id_key(record_id))) is not None:
        return obj
    return next((o for p, o in _prefixes(vocab, concept).items() if record_id.startswith(p)), None)


def _protected_objects(ctx: PassContext) -> tuple[list[str], list[str]]:
    """The `[protect] objects` of the scan's protections as the snapshot names them, and those it holds
    no rows of (names are matched in any case, as the protections match them)."""
    if ctx.protections is None:
        return [], []
    by_fold = {o.casefold(): o for o in ctx.view.manifest.objects}
    present, missing = [], []
    for name in ctx.protections.objects:
        obj = by_fold.get(name.casefold()) or (name if ctx.view.has(name) else None)
        if obj is not None and ctx.view.has(obj):
            present.append(obj)
        else:
            missing.append(name)
    return present, missing


def _known_protected(ctx: PassContext, named: list[str]) -> dict[str, str]:
    """Id key -> object of every record of a protected object the snapshot holds (deleted ones too: they
    come back): the provider's never-touch objects and `named`, the config's (an org's own invoices)."""
    vocab, known = ctx.vocabulary, {}
    for obj in dict.fromkeys([*vocab.never_touch_objects, *named]):
        if ctx.view.has(obj):
            for rid in ctx.view.frame(obj, [vocab.id_field])[vocab.id_field]:
                known[vocab.id_key(str(rid))] = obj
    return known


def _untold(missing: list[str]) -> str:
    """Why the pass cannot run: `[protect] objects` entries the snapshot holds no rows of, whose records
    would look, among a file's link rows, like records of nothing protected."""
    return (f"[protect] objects names {', '.join(missing)}, which snapshot holds no rows of, so a file attached "
            "to one of its records cannot be told: back up again (a backup takes the [protect] objects) or "
            "correct the name")


_NAMED = "attached to a record [protect] ids names"


def run(ctx: PassContext) -> PassOutput:
    vocab, concept = ctx.vocabulary, _files(ctx.vocabulary)
    protected, missing = _protected_objects(ctx)
    if missing:
        return PassOutput(changes=[], skipped=_untold(missing))
    cutoff = pd.Timestamp(years_before(ctx.now.astimezone(UTC).date(), ctx.settings["years"]), tz=UTC)
    files = live_frame(ctx.view, concept.object, [vocab.id_field, vocab.created_field], vocab.deleted_field)
    made = files[vocab.created_field]
    old = files[made.notna() & (made < cutoff)]
    links = live_frame(ctx.view, concept.links, [concept.link_file_field, concept.link_record_field],
                       vocab.deleted_field)
    links = links[links[concept.link_file_field].astype(str).isin(set(old[vocab.id_field].astype(str)))]
    known = _known_protected(ctx, protected)
    held_by: dict[str, str] = {}  # file id -> the never-touch object it is attached to
    attached: dict[str, int] = {}
    records_linked = text_values(links[concept.link_record_field])  # None where empty (the column reads NaN)
    named = set(ctx.protections.protected_among(r for r in records_linked if r is not None)
                ) if ctx.protections is not None else set()
    for file_id, record_id in zip(links[concept.link_file_field], records_linked, strict=True):
        fid = str(file_id)
        attached[fid] = attached.get(fid, 0) + 1
        if record_id is not None and fid not in held_by:
            obj = protected_object_of(vocab, concept, str(record_id), known)
            if obj is not None:
                held_by[fid] = f"attached to {obj} records"
            elif record_id in named:
                held_by[fid] = _NAMED
    output = PassOutput(changes=[])
    for why in sorted(set(held_by.values()), key=lambda w: (w == _NAMED, w)):
        hold(output, why, sum(1 for o in held_by.values() if o == why))
    reasons: dict[str, str] = {}
    for rid, when in zip(old[vocab.id_field].astype(str), old[vocab.created_field], strict=True):
        if rid in held_by:
            continue
        n = attached.get(rid, 0)
        where = f"attached to {n} record{'s' if n != 1 else ''}, none protected" if n else "attached to no record"
        reasons[rid] = f"created {day_of(when)}, over {ctx.settings['years']} years ago; {where}"
    add_proposals(ctx, output, NAME, concept.object, reasons, op=Op(concept.removal))
    return output


def _live_needs(vocab: Vocabulary, object_name: str) -> LiveNeeds:
    concept = vocab.concept(Files)
    if concept is None or object_name != concept.object:
        return LiveNeeds()
    read = RelatedRead(_LINKS, concept.links, concept.link_file_field,
                       (concept.link_file_field, concept.link_record_field))
    return LiveNeeds(fields=(vocab.created_field,), related=(read,), key_prefixes=True)


def _recheck(change: Change, live: LiveRows, settings: Mapping[str, Any], now: datetime) -> str | None:
    """Still old, and attached to no never-touch record (a new link does not move the file's fingerprint)."""
    vocab = live.vocabulary
    concept = vocab.concept(Files)
    if concept is None or change.object != concept.object:
        return f"{change.object} is not this CRM's file object"
    made = live_when(live.record.get(vocab.created_field))
    if made is not None and made.date() >= years_before(now.astimezone(UTC).date(), settings["years"]):
        return f"not old: {vocab.created_field} is {made.date().isoformat()}"
    for row in live.related.get(_LINKS, ()):
        record_id = row.get(concept.link_record_field)
        obj = protected_object_of(vocab, concept, str(record_id), {}) if record_id else None
        if obj is not None:
            return f"now attached to {obj} {record_id}"
    return None


def by_prefix(prefixes: Mapping[str, str]) -> dict[str, list[str]]:
    """Id prefix -> the objects whose records' ids start with it (`prefixes`: object -> prefix; a CRM may list
    more than one object under a prefix)."""
    out: dict[str, list[str]] = {}
    for obj, prefix in prefixes.items():
        out.setdefault(prefix, []).append(obj)
    return out


def objects_of(prefixed: Mapping[str, list[str]], record_id: str) -> list[str]:
    """The objects `record_id` may be a record of, by the longest prefix of `prefixed` (`by_prefix`) it starts with."""
    for n in sorted({len(p) for p in prefixed}, reverse=True):
        if record_id[:n] in prefixed:
            return prefixed[record_id[:n]]
    return []


def _holds(change: Change, live: LiveRows, protections: Protections) -> str | None:
    """A file attached now to a record the protections in force name, or to a record of an object they
    protect (since the scan, or protected since). The record's object is told by its id prefix as the CRM
    lists them now (an org's own objects have prefixes of their own), else as the provider documents them."""
    concept = live.vocabulary.concept(Files)
    if concept is None:
        return None
    linked = [str(row[concept.link_record_field]) for row in live.related.get(_LINKS, ())
              if row.get(concept.link_record_field)]
    named = protections.protected_among(linked)
    if named:
        return f"attached to {named[0]}, which [protect] ids names"
    prefixed = by_prefix({**concept.key_prefixes, **(live.key_prefixes or {})})
    for record_id in linked:
        obj = next((o for o in objects_of(prefixed, record_id) if protections.protects_object(o)), None)
        if obj is not None:
            return f"attached to {obj} {record_id}, and {obj} is a protected object"
    if live.key_prefixes is None and live.prefixes_unread is not None:
        # Without the CRM's list, a record of a protected object with no documented prefix looks like one of
        # nothing protected: the file is kept rather than deleted with an attachment nobody can tell.
        documented = {o.casefold() for o in concept.key_prefixes}
        untold = [o for o in protections.objects if o.casefold() not in documented]
        unknown = [r for r in linked if not objects_of(prefixed, r)]
        if untold and unknown:
            return (f"attached to {unknown[0]}, which may be a record of {', '.join(untold)}: the CRM's list of "
                    f"objects, which tells a record's object by its id, could not be read ({live.prefixes_unread})")
    return None


def _reads(vocab: Vocabulary) -> list[ObjectRead]:
    concept = _files(vocab)
    # The never-touch objects are not asked for: an org may not have them all (backup refuses an object
    # the CRM does not know); their rows are used when the snapshot holds them, their id prefixes always.
    return [
        ObjectRead(concept.object, (vocab.id_field, vocab.created_field)),
        # Not optional: without the links, a file attached to a contract would look unattached.
        ObjectRead(concept.links, (concept.link_file_field, concept.link_record_field)),
    ]


SPEC = PassSpec(
    name=NAME,
    summary=summary_of(__doc__),
    order=80,
    defaults={"years": 2},
    run=run,
    proposes=(
        Proposal(Op.DELETE, objects=proposed_objects(Files, Op.DELETE, lambda c: [c.object], lambda c: c.removal)),
    ),
    bounds={"years": Bound(1, 100)},
    live_check=LiveCheck(needs=_live_needs, recheck=_recheck, holds=_holds),
    needs=(Files,),
    reads=_reads,
)
