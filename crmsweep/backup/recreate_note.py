"""What a re-create cannot give back, told in one line: the rollback plan's note and its report's.

A record re-created under a new id gets from the CRM its own created and modified stamps and an empty
activity history: the snapshot's values of the fields a create may not write (the field specs' verdict,
see `recreate.create_values`) are lost, and the next scan sees the records as new (held back as
recently created, never stale). Which fields those are comes from the before-images and the snapshot's
field specs, never from a list of one CRM's names; what an admin can do instead comes from the
provider's capabilities. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence

from crmsweep.backup.recreate import FieldSpecs
from crmsweep.concepts import CustomFields
from crmsweep.model import Capabilities, Change, FieldKind, Op, Vocabulary

# Enough names to recognise the dates and history a scan reads; the rest are counted.
SHOW_FIELDS = 10
# The re-created records a report's note names; `runs show` lists them all (a rollback may re-create thousands).
SHOW_RECORDS = 3


def unwritten_fields(
    rows: Iterable[tuple[str, Mapping[str, object], Mapping[str, object]]],
    specs: FieldSpecs,
    vocabulary: Vocabulary,
) -> list[str]:
    """The fields that held a value in a re-created record's before-image and that its create does not
    write (each row: object, before-image, what the create writes): read-only to a create by the
    snapshot's field specs (`create_values` writes every createable one). The id and the deleted flag are
    left out (a new id is the re-create's point), and so are crmsweep's own columns (a definitions
    object's filled count is read by the backup, no field of the CRM's) and the columns a written
    definition carries with the same value (a create that sends a whole definition as one JSON value
    writes its label and type too). The fields a scan reads come first (created, last activity, audit
    stamps), then the other dates and times, then the rest, each in before-image order."""
    left_out = {vocabulary.id_field, vocabulary.deleted_field}
    # The CRM stamps these itself on a create, whatever a sent definition says of them.
    system = {vocabulary.created_field, vocabulary.fingerprint_field, *vocabulary.audit_fields}
    fields_concept = vocabulary.concept(CustomFields)
    held: dict[str, None] = {}
    dates: set[str] = set()
    for object_name, before, written in rows:
        kinds = {f.name: f.kind for f in specs.get(object_name, ())}
        own = {fields_concept.filled_field} if fields_concept and fields_concept.definitions == object_name else set()
        carried = _carried(written)
        for name, value in before.items():
            if (value is None or value == "" or name in written or name in left_out or name in own
                    or (name not in system and name in carried and carried[name] == value)):
                continue
            held[name] = None
            if kinds.get(name) in (FieldKind.DATE, FieldKind.DATETIME):
                dates.add(name)
    read = [n for n in dict.fromkeys(
        [vocabulary.created_field, *vocabulary.last_activity_fields, *vocabulary.audit_fields]) if n in held]
    rest = [n for n in held if n not in read]
    return read + [n for n in rest if n in dates] + [n for n in rest if n not in dates]


def _carried(written: Mapping[str, object]) -> dict[str, object]:
    """The keys and values of the JSON objects among `written`'s text values (a definition sent whole),
    with those of the objects they hold one level down (a definition's metadata), the first such value
    winning a key, a top-level one before a nested one."""
    carried: dict[str, object] = {}
    for value in written.values():
        if not (isinstance(value, str) and value.startswith("{")):
            continue
        try:
            parsed = json.loads(value)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            for key, item in parsed.items():
                carried.setdefault(key, item)
            for item in parsed.values():
                if isinstance(item, dict):
                    for key, inner in item.items():
                        carried.setdefault(key, inner)
    return carried


def recreated_counts(changes: Iterable[Change]) -> dict[str, int]:
    """Object -> how many records `changes` re-create."""
    counts: dict[str, int] = {}
    for change in changes:
        if change.op is Op.CREATE:
            counts[change.object] = counts.get(change.object, 0) + 1
    return counts


def _names(fields: Sequence[str]) -> str:
    shown = ", ".join(fields[:SHOW_FIELDS])
    more = len(fields) - SHOW_FIELDS
    return f"{shown} and {more} more" if more > 0 else shown


def _keep(counts: Mapping[str, int], capabilities: Capabilities | None, run_id: str | None) -> str:
    """What an admin does to have the originals back as they were, in the provider's words. Right before
    and after the rollback alike: a re-create does not look for an original restored by hand."""
    if capabilities is None:
        return "the id_map of the rollback run maps old ids to new"
    by_hand = [o for o in counts if not capabilities.undeletes(o)]
    if not by_hand:
        # Re-created only because the recycle bin no longer held them: no original is left to restore.
        return "the CRM no longer holds the originals, so those values cannot be kept"
    how = capabilities.how_to_put_back(by_hand[0])
    return (f"to keep the originals' dates and history, {how}, then delete the re-created copies "
            f"(the rollback run's id_map names them: `crmsweep runs show {run_id or 'RUN'} --json`)")


def _records(records: Sequence[tuple[str, str, str]], run_id: str | None) -> str:
    """The first re-created records as "object old -> new", and where the rest are listed."""
    shown = ", ".join(f"{obj} {old} -> {new}" for obj, old, new in records[:SHOW_RECORDS])
    more = len(records) - SHOW_RECORDS
    if more <= 0:
        return f"; re-created: {shown}"
    return f"; re-created: {shown} and {more:,} more: `crmsweep runs show {run_id or 'RUN'}` lists them all"


def recreate_note(
    counts: Mapping[str, int],
    fields: Sequence[str],
    capabilities: Capabilities | None,
    *,
    done: bool = False,
    run_id: str | None = None,
    history: bool = True,
    records: Sequence[tuple[str, str, str]] = (),
) -> str | None:
    """One line on what re-creating `counts` records (object -> count) loses: `fields` (see
    `unwritten_fields`), and what to do about it. `done`: they were re-created (a report), else they
    will be (a plan); `run_id`, the rollback run once there is one; `history`, whether they had an
    activity history to lose (a field definition has none). None when nothing is re-created.
    `records`: (object, old id, new id) of those re-created, for a report: the first few are named, with
    the command that lists them all (a plan's preview names each re-create on its own line)."""
    total = sum(counts.values())
    if not total:
        return None
    objects = ", ".join(f"{n:,} {o}" for o, n in counts.items())
    one = total == 1
    verb, sets = (("was" if one else "were"), "set") if done else (("is" if one else "are"), "sets")
    their = "its" if one else "their"
    what = "created and modified dates and activity history" if history else "created and modified dates"
    lost = (f"the CRM {sets} {their} {what} afresh ({_names(fields)}: "
            "read-only, so the snapshot's values cannot be written back)" if fields else
            f"the CRM {sets} {their} created and modified dates afresh")
    keep = _keep(counts, capabilities, run_id)
    named = _records(records, run_id) if done and records else ""
    return (f"{total:,} record{'' if one else 's'} {verb} re-created under new ids ({objects}): {lost}, so the "
            f"next scan sees {'it' if one else 'them'} as new (recently created, not stale); {keep}{named}")
