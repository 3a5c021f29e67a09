"""Apply-time re-check of a scan plan: are the candidates still candidates, on live data?

A record's own fingerprint does not move when something related to it does (a new contact role on an
open deal, a deal reopened, a task logged today), so before each batch apply re-evaluates, on the live
records, the rules that made each record a candidate (each pass declares what to re-read and owns the
pure rule, `PassSpec.live_check`) and the protections that hold records back, from the config in force
now. Reads go through the connector's typed `read`/`read_related`; nothing here builds a query.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmsweep.backup.field_restore import (
    CLEARED,
    RecordSource,
    RollbackWrites,
    filled_rows,
    holds_value,
    how_changed,
    live_matches,
)
from crmsweep.cleanup.passes import (
    PASSES,
    EveryRowRead,
    LiveNeeds,
    LiveRows,
    RelatedRead,
    ValueCheck,
    live_flag,
    validate_settings,
)
from crmsweep.cleanup.protect import Protections
from crmsweep.concepts import CustomFields
from crmsweep.connectors.base import Connector
from crmsweep.errors import (
    AuthError,
    BadInput,
    ConnectorError,
    EndpointError,
    LimitExceeded,
    RetriableError,
    UnknownObject,
)
from crmsweep.model import (
    ASSOCIATION_FROM_FIELD,
    ASSOCIATION_TO_FIELD,
    Change,
    Op,
    Plan,
    Record,
    Vocabulary,
    association_object,
)
from crmsweep.paths import Home

if TYPE_CHECKING:
    from crmsweep.backup.runlog import RunState

# A read of every row, as a batch reads it once: (object, fields, removed rows too).
_EveryKey = tuple[str, tuple[str, ...], bool]

SKIP_PROTECTED = "protected"
SKIP_NO_LONGER_QUALIFIES = "no longer qualifies"

# Ops after which a record is gone from the live ones, and ops whose `after` values it then holds: as the
# scan lays earlier passes' changes (`effects.EffectsView`), so a dry run judges as the scan did.
_REMOVING = frozenset({Op.DELETE, Op.ARCHIVE})
_WRITING = frozenset({Op.UPDATE, Op.DEACTIVATE, Op.REACTIVATE})


class WouldBeWritten:
    """A dry run's writes, laid over what its live checks read. A real run has written its earlier batches
    by the time a later batch is checked (a company's only contact archived before the company is judged
    empty); a dry run writes nothing, so without this it judges the org as it was before the run and
    reports skips the real run does not make.

    Laid as the scan lays an earlier pass's changes: a removed record is gone, and so are the links
    (association rows) to and from it; a written field reads as written. Not laid: what the CRM derives
    from a write (a formula, a count), which no dry run can know; creates and undeletes (no live check
    reads a record a run brings back, and a create has no id yet). Nor are the value checks of a field's
    removal (`LiveChecker._value_checks`): they are judged against the CRM's own count of values, which a
    dry run cannot move, so laying the clears before it on one side only would refuse what the real run
    removes."""

    def __init__(self, vocabulary: Vocabulary, linked: Sequence[str]) -> None:
        self._vocab = vocabulary
        self._linked = tuple(linked)
        self._removed: dict[str, set[str]] = {}
        self._written: dict[str, dict[str, Record]] = {}
        self._ids: dict[tuple[str, str], str] = {}  # (object, id key) -> the id as the plan spells it, to read by

    def lay(self, changes: Sequence[Change]) -> None:
        key = self._vocab.id_key
        for change in changes:
            if change.op in _REMOVING:
                self._removed.setdefault(change.object, set()).add(key(change.record_id))
            elif change.op in _WRITING:
                written = self._written.setdefault(change.object, {})
                rid = key(change.record_id)
                written[rid] = {**written.get(rid, {}), **change.after}
                self._ids[(change.object, rid)] = change.record_id

    def record(self, object_name: str, record: Record) -> Record:
        """`record` (a live read of `object_name`) as it would read after the writes laid."""
        rid = record.get(self._vocab.id_field)
        written = self._written.get(object_name, {}).get(self._vocab.id_key(str(rid))) if rid else None
        return {**record, **written} if written else record

    def _ends(self, object_name: str) -> list[tuple[str, set[str]]]:
        """(field, removed ids) pairs: a row of `object_name` whose field names one of them is gone with it.
        Its own id, and where it is an association pseudo-object, the end that names a removed record."""
        ends = [(self._vocab.id_field, self._removed[object_name])] if object_name in self._removed else []
        for removed, ids in self._removed.items():
            for other in self._linked:
                if object_name == association_object(removed, other):
                    ends.append((ASSOCIATION_FROM_FIELD, ids))
                if object_name == association_object(other, removed):
                    ends.append((ASSOCIATION_TO_FIELD, ids))
        return ends

    def every_row(self, object_name: str, rows: Sequence[Record], *, include_deleted: bool) -> list[Record]:
        """`rows` (every live row of `object_name`, removed ones too with `include_deleted`) as the writes
        laid would leave them: a removed row gone, or, where the read takes removed rows, flagged removed
        as the CRM would flag it; a written field read as written."""
        key, deleted = self._vocab.id_key, self._vocab.deleted_field
        removed = self._removed.get(object_name, set())
        out: list[Record] = []
        for row in rows:
            rid = row.get(self._vocab.id_field)
            gone = bool(rid) and key(str(rid)) in removed
            if gone and not include_deleted:
                continue
            laid = self.record(object_name, row)
            out.append({**laid, deleted: True} if gone and deleted else laid)
        return out

    def moved_in(self, object_name: str, match_field: str, wanted: set[str]) -> list[str]:
        """Ids (as planned) of `object_name` records a laid write sets `match_field` of to one of `wanted` (id keys):
        rows a read by that field finds once the writes are made, and not before."""
        key = self._vocab.id_key
        return [self._ids[(object_name, rid)] for rid, after in self._written.get(object_name, {}).items()
                if after.get(match_field) and key(str(after[match_field])) in wanted
                and rid not in self._removed.get(object_name, ())]

    def related(self, object_name: str, match_field: str, wanted: set[str], rows: Sequence[Record],
                extra: Sequence[Record] = ()) -> list[Record]:
        """The rows a read of `object_name` by `match_field` in `wanted` (id keys) would give after the writes
        laid: `rows` (read live) and `extra` (the live records of `moved_in`), each laid, those gone or no
        longer matching left out."""
        key = self._vocab.id_key
        ends = self._ends(object_name)  # once per read: a job-sized batch's read has many rows
        seen: set[str] = set()
        out: list[Record] = []
        for row in [*rows, *extra]:
            rid = row.get(self._vocab.id_field)
            if rid:
                if key(str(rid)) in seen:
                    continue
                seen.add(key(str(rid)))
            if any(row.get(name) and key(str(row[name])) in ids for name, ids in ends):
                continue
            written = self._written.get(object_name, {}).get(key(str(rid))) if rid else None
            if written and match_field in written:
                # Judged only where a laid write sets the field: a read need not hand its match field back.
                moved = written[match_field]
                if not moved or key(str(moved)) not in wanted:
                    continue
            out.append(self.record(object_name, row))
        return out


@dataclass(frozen=True)
class ApplyTimeRules:
    """The protections in force when the plan is applied (the `[protect]` settings of the config now).

    `pass_settings` (the config's) are used only for a pass the plan header does not record settings of.
    """

    recent_days: int = 30
    protect_objects: tuple[str, ...] = ()
    protect_ids: tuple[str, ...] = ()
    pass_settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


class LiveChecker:
    """Re-checks the changes of one plan, batch by batch: every change of a scan plan, and every change of
    a plan from a run that removes a record again (a rollback of a rollback deletes what the scan's pass
    proposed, so it must still qualify and not be protected, exactly as at the first apply; what crmsweep's
    own undo had the CRM stamp on the record is judged as the scan saw it, see `_as_judged`)."""

    def __init__(
        self,
        connector: Connector,
        rules: ApplyTimeRules,
        ran_with: Mapping[str, Mapping[str, Any]],
        now: datetime,
        field_names: Callable[[str], set[str]],
        snapshot: Callable[[], RecordSource | None] | None = None,
        written: Callable[[Vocabulary], RollbackWrites] | None = None,
        judged: Callable[[Vocabulary], Mapping[tuple[str, str], Record]] | None = None,
    ) -> None:
        self.connector = connector
        self.vocabulary = connector.vocabulary
        self.now = now
        self.field_names = field_names
        self._protections: Protections | None = None
        self._rules = rules
        self._ran_with = ran_with
        self._settings: dict[str, Mapping[str, Any]] = {}
        self._held: dict[str, bool] = {}
        # The plan's snapshot (opened on first use: only a removal of a field compares values with it).
        self._open_snapshot = snapshot
        self._snapshot: RecordSource | None = None
        # A plan from a run (a rollback of a rollback) clears the values it wrote before it removes their
        # field again: a value found cleared is then its own doing, and only one changed would be lost.
        self.undoing = False
        # The values the rollback a plan undoes wrote, by (object, field) and record id (`undone_writes`).
        self._open_written = written
        self._written: RollbackWrites | None = None
        # The records a plan from a run writes, as their pass judged them (`rollback.judged_images`).
        self._open_judged = judged
        self._judged: Mapping[tuple[str, str], Record] | None = None
        # A dry run's would-be writes (`assume_written`); None in a real run, which reads what it wrote.
        self._would_be: WouldBeWritten | None = None
        # The CRM's id prefixes, or why it refused them: read on first need, once for the whole apply.
        self._prefixes: tuple[Mapping[str, str] | None, str | None] | None = None

    def assume_written(self, changes: Sequence[Change]) -> None:
        """A dry run: read, from now on, as if `changes` had been written (see `WouldBeWritten`)."""
        if self._would_be is None:
            self._would_be = WouldBeWritten(self.vocabulary, self.connector.capabilities.association_objects)
        self._would_be.lay(changes)

    @property
    def protections(self) -> Protections:
        # Made on first use, inside the run: asking the CRM who we are is a call, and a Ctrl-C during it
        # must find the run's own handler (which logs the stop and prints the resume command).
        if self._protections is None:
            rules = self._rules
            self._protections = Protections(
                vocabulary=self.vocabulary,
                now=self.now,
                recent_days=rules.recent_days,
                objects=rules.protect_objects,
                ids=rules.protect_ids,
                running_user_id=self.connector.current_user_id(),
            )
        return self._protections

    def _settings_of(self, pass_name: str) -> Mapping[str, Any]:
        if pass_name not in self._settings:
            recorded = self._ran_with.get(pass_name)
            self._settings[pass_name] = (
                recorded if recorded is not None
                else validate_settings(pass_name, self._rules.pass_settings.get(pass_name, {}))
            )
        return self._settings[pass_name]

    def _needs(self, change: Change) -> LiveNeeds | None:
        spec = PASSES.get(change.pass_name)
        if spec is None or spec.live_check is None:
            return None
        return spec.live_check.needs(self.vocabulary, change.object)

    def own_fields(self, object_name: str, changes: Sequence[Change]) -> list[str]:
        """The candidate fields to read with the drift check (those the object has)."""
        wanted: list[str] = [self.vocabulary.created_field]
        for change in changes:
            needs = self._needs(change)
            if needs is not None:
                wanted.extend(needs.fields)
        names = self.field_names(object_name)
        return [f for f in dict.fromkeys(wanted) if f in names]

    def verdicts(self, changes: Sequence[Change], live: Mapping[str, Record]) -> list[tuple[str, str] | None]:
        """Per change (live record in `live` by id): a skip (reason, detail), or None if it still qualifies."""
        related, unread = self._related(changes)
        values = self._value_checks(changes)
        out: list[tuple[str, str] | None] = []
        for n, change in enumerate(changes):
            record = live.get(change.record_id, {})
            if self._would_be is not None and record:
                record = self._would_be.record(change.object, record)
            held = self.protections.hold_reason(replace(change, before={**change.before, **record}))
            spec = PASSES.get(change.pass_name)
            check = spec.live_check if spec is not None and held is None else None
            if check is not None:
                needs = self._needs(change)
                prefixes, why = self._key_prefixes() if needs is not None and needs.key_prefixes else (None, None)
                rows = LiveRows(record=self._as_judged(change, record), related=related[n],
                                vocabulary=self.vocabulary, values=values[n], unread=unread[n],
                                key_prefixes=prefixes, prefixes_unread=why)
                if check.holds is not None:
                    held = check.holds(change, rows, self.protections)
            if held is not None:
                out.append((SKIP_PROTECTED, f"protected at apply time: {held}"))
                continue
            if check is None:
                out.append(None)
                continue
            reason = check.recheck(change, rows, self._settings_of(change.pass_name), self.now)
            out.append(None if reason is None else (SKIP_NO_LONGER_QUALIFIES, reason))
        return out

    def _as_judged(self, change: Change, record: Record) -> Record:
        """The live record a pass's rule judges. For an undo of crmsweep's own write (a plan from a run),
        what that write had the CRM set reads as the pass judged it at the scan: the audit stamps and the
        created date (today, by crmsweep's doing; anyone's edit since moves the fingerprint, and the drift
        check skips it), and after a re-create the fields its create could not write and the CRM left
        empty: no activity, no bounce since. A value such a field holds now was set since (a task logged on
        the copy), so it is read live, as are the other fields and related rows (a new open deal), as for a
        scan plan. So is a number left empty: a count the CRM did not give is unknown, not zero, and a rule
        that refuses on an unknown count must still see it."""
        if not self.undoing:
            return record
        if self._judged is None:
            self._judged = self._open_judged(self.vocabulary) if self._open_judged is not None else {}
        image = self._judged.get((change.object, self.vocabulary.id_key(change.record_id)))
        if not image:
            return record
        vocab = self.vocabulary
        stamped = {vocab.fingerprint_field, vocab.created_field, *vocab.audit_fields}
        left_empty = {name for name in image if name not in change.before and name in record
                      and record[name] in (None, "") and not _is_number(image[name])}
        return {**record, **{name: image[name] for name in stamped | left_empty if name in image}}

    def _related(self, changes: Sequence[Change]) -> tuple[list[dict[str, list[Record]]], list[dict[str, str]]]:
        """Each change's related rows by read name, one read per declared step for the whole batch (one
        per object for the reads of every row, whichever passes ask), and why a read of every row failed."""
        per_change: list[dict[str, list[Record]]] = [{} for _ in changes]
        unread: list[dict[str, str]] = [{} for _ in changes]
        by_pass: dict[str, list[int]] = {}
        for n, change in enumerate(changes):
            by_pass.setdefault(change.pass_name, []).append(n)
        key = self.vocabulary.id_key
        every: dict[_EveryKey, tuple[list[Record], str | None]] = {}
        for positions in by_pass.values():
            needs = self._needs(changes[positions[0]])
            if needs is None:
                continue
            for step in needs.related:
                if self._org_has(step.object):
                    self._read_step(step, [(n, changes[n]) for n in positions], per_change, key)
            for whole in needs.every:
                if not self._org_has(whole.object):
                    continue
                rows, why = self._every_row(whole, every)
                for n in positions:
                    per_change[n][whole.name] = rows
                    if why is not None:
                        unread[n][whole.name] = why
        return per_change, unread

    def _key_prefixes(self) -> tuple[Mapping[str, str] | None, str | None]:
        """The CRM's id prefix of each object, or None and why it refused the list. As for `_every_row`, a
        failure that stops a run stops it here, resumable; a refusal of this read alone leaves them unknown."""
        if self._prefixes is None:
            try:
                self._prefixes = (self.connector.key_prefixes(), None)
            except (RetriableError, LimitExceeded, AuthError, EndpointError):
                raise
            except ConnectorError as exc:
                self._prefixes = (None, str(exc))
        return self._prefixes

    def _every_row(self, step: EveryRowRead, done: dict[_EveryKey, tuple[list[Record], str | None]]
                   ) -> tuple[list[Record], str | None]:
        """Every live row `step` asks for (read once per batch: `done`), or why the CRM refused the read. A
        failure that stops a run (the allowance spent, the CRM down after retries, the credentials refused)
        stops it here too, resumable, its records untouched; a refusal of this read alone (a scope the
        connection lacks) leaves the rows unknown, and the pass keeps each record that needs them."""
        wanted: _EveryKey = (step.object, tuple(dict.fromkeys([self.vocabulary.id_field, *step.fields])),
                             step.include_deleted)
        if wanted not in done:
            try:
                rows = [r for page in self.connector.iter_pages(step.object, list(wanted[1]),
                                                                 include_deleted=step.include_deleted) for r in page]
            except (RetriableError, LimitExceeded, AuthError, EndpointError):
                raise
            except ConnectorError as exc:
                done[wanted] = ([], str(exc))
            else:
                if self._would_be is not None:
                    rows = self._would_be.every_row(step.object, rows, include_deleted=step.include_deleted)
                done[wanted] = (rows, None)
        return done[wanted]

    def _value_checks(self, changes: Sequence[Change]) -> list[ValueCheck | None]:
        """Per change, the check of the values its pass asked for (`LiveNeeds.values_of`), or None: one read
        of the snapshot and one live read of the records holding a value, per object, for the whole batch."""
        wanted: list[tuple[str, str] | None] = []
        for change in changes:
            needs = self._needs(change)
            wanted.append(needs.values_of(change) if needs is not None and needs.values_of is not None else None)
        concept = self.vocabulary.concept(CustomFields)
        if self.undoing and concept is not None and any(c.object == concept.definitions for c in changes):
            # A definition the undone rollback re-created names its field through that rollback's log: the
            # create's before-image holds only what a create writes (on some CRMs not the field's name).
            made = {self.vocabulary.id_key(i): t for i, t in self._writes().definitions.items()}
            wanted = [w or made.get(self.vocabulary.id_key(c.record_id)) for w, c in zip(wanted, changes, strict=True)]
        if not any(wanted):
            return [None] * len(changes)
        source = self._source()
        if source is None:
            why = "the snapshot the plan came from is gone, so its values cannot be compared with the live ones"
            return [None if w is None else ValueCheck(w[0], w[1], unavailable=why) for w in wanted]
        by_object: dict[str, list[str]] = {}
        for target in wanted:
            if target is not None:
                by_object.setdefault(target[0], []).append(target[1])
        found: dict[tuple[str, str], ValueCheck] = {}
        for obj, names in by_object.items():
            found.update(self._compare(source, obj, list(dict.fromkeys(names))))
        if self.undoing:
            found = {key: replace(check, written=self._still_written(*key)) for key, check in found.items()}
        return [None if w is None else found.get(w, ValueCheck(w[0], w[1])) for w in wanted]

    def _source(self) -> RecordSource | None:
        if self._snapshot is None and self._open_snapshot is not None:
            self._snapshot = self._open_snapshot()
        return self._snapshot

    def _compare(self, source: RecordSource, obj: str, names: Sequence[str]) -> dict[tuple[str, str], ValueCheck]:
        vocab = self.vocabulary
        specs = {s.name: s for s in source.fields(obj)} if source.has(obj) else {}
        kinds = {name: spec.kind for name, spec in specs.items()}
        names = [n for n in names if n in kinds]  # the pass judges no field the snapshot lacks
        rows = filled_rows(source, obj, names, vocab)
        live: dict[str, Record] = {}
        if rows:
            deleted = vocab.deleted_field
            extra = [deleted] if deleted and deleted in self.field_names(obj) else []
            read = self.connector.read(obj, sorted(rows), [*names, *extra], include_deleted=True)
            live = {vocab.id_key(i): r for i, r in read.items()}
        out: dict[tuple[str, str], ValueCheck] = {}
        for name in names:
            held = {i: r[name] for i, r in rows.items() if holds_value(r.get(name), specs[name])}
            hows = {i: how_changed(live.get(vocab.id_key(i)), name, v, kinds[name]) for i, v in held.items()}
            changed = {i: how for i, how in hows.items()
                       if how is not None and not (self.undoing and how == CLEARED)}
            out[(obj, name)] = ValueCheck(obj, name, holders=len(held), changed=changed)
        return out

    def _writes(self) -> RollbackWrites:
        if self._written is None:
            self._written = self._open_written(self.vocabulary) if self._open_written is not None else RollbackWrites()
        return self._written

    def _still_written(self, obj: str, name: str) -> int | None:
        """How many of the records the undone rollback wrote field `name` of hold that value live (not
        deleted), or None if it wrote none into that field (it did not re-create it)."""
        wrote = self._writes().values.get((obj, name))
        if wrote is None:
            return None
        if not wrote:
            return 0
        vocab = self.vocabulary
        deleted = vocab.deleted_field if vocab.deleted_field in self.field_names(obj) else None
        read = self.connector.read(obj, sorted(wrote), [name, *([deleted] if deleted else [])], include_deleted=True)
        live = {vocab.id_key(i): r for i, r in read.items()}
        held = 0
        for record_id, value in wrote.items():
            record = live.get(vocab.id_key(record_id))
            if record is not None and not (deleted and live_flag(record.get(deleted))) \
                    and live_matches(record.get(name), value):
                held += 1
        return held

    def _org_has(self, object_name: str) -> bool:
        """Whether the CRM has the object a related read names: one it lacks (an org without cases)
        ties no record to anything, so its read gives no rows rather than stopping the apply."""
        if object_name not in self._held:
            ends = self.connector.capabilities.association_objects
            if any(association_object(a, b) == object_name for a in ends for b in ends):
                self._held[object_name] = True
            else:
                try:
                    self.field_names(object_name)  # from the plan's snapshot where it holds the object
                    self._held[object_name] = True
                except UnknownObject:
                    self._held[object_name] = False
        return self._held[object_name]

    def _read_step(
        self,
        step: RelatedRead,
        group: Sequence[tuple[int, Change]],
        per_change: list[dict[str, list[Record]]],
        key: Callable[[str], str],
    ) -> None:
        # What each candidate's rows of this step must match: its own id, or values from an earlier step.
        # Ids are queried as they stand and matched by their id key (15- and 18-character forms alike).
        asked: dict[int, set[str]] = {}
        for n, change in group:
            if step.values_of is not None:
                asked[n] = {v for v in step.values_of(change) if v}
            elif step.via is None:
                asked[n] = {change.record_id}
            else:
                earlier, field_name = step.via
                asked[n] = {str(r[field_name]) for r in per_change[n].get(earlier, []) if r.get(field_name)}
        wanted = {n: {key(v) for v in vs} for n, vs in asked.items()}
        values = sorted({v for vs in asked.values() for v in vs})
        rows = self.connector.read_related(step.object, step.match_field, values, step.fields) if values else []
        if self._would_be is not None:
            rows = self._as_written(step, rows, {v for vs in wanted.values() for v in vs})
        for n, _change in group:
            per_change[n][step.name] = [
                r for r in rows if r.get(step.match_field) and key(str(r[step.match_field])) in wanted[n]
            ]


    def _as_written(self, step: RelatedRead, rows: list[Record], wanted: set[str]) -> list[Record]:
        """`rows` of a related read as the dry run's earlier writes would leave them, with the records those
        writes would tie to a candidate read live (a real run's read would find them)."""
        laid = self._would_be
        assert laid is not None
        moved = laid.moved_in(step.object, step.match_field, wanted)
        key = self.vocabulary.id_key
        have = {key(str(r[self.vocabulary.id_field])) for r in rows if r.get(self.vocabulary.id_field)}
        missing = [i for i in moved if key(i) not in have]
        extra: list[Record] = []
        if missing:
            fields = list(dict.fromkeys([step.match_field, *step.fields]))
            extra = list(self.connector.read(step.object, missing, fields, include_deleted=False).values())
        return laid.related(step.object, step.match_field, wanted, rows, extra)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def judged_records(home: Home, plan: Plan, settled: RunState | None = None
                   ) -> Callable[[Vocabulary], Mapping[tuple[str, str], Record]]:
    """Reads, from the run logs (`settled` in place of its run's, see `rollback.run_reader`), the records
    `plan` (from a run) writes as their pass judged them."""

    def read_them(vocabulary: Vocabulary) -> Mapping[tuple[str, str], Record]:
        from crmsweep.backup.rollback import judged_images

        return judged_images(home, plan, vocabulary, settled)

    return read_them


def undone_writes(home: Home, plan: Plan, settled: RunState | None = None) -> Callable[[Vocabulary], RollbackWrites]:
    """Reads, from the run logs, what the rollback run `plan` undoes wrote into the fields it re-created
    (`field_restore.values_written`); nothing if `plan` undoes no rollback."""

    def read_them(vocabulary: Vocabulary) -> RollbackWrites:
        from crmsweep.backup.field_restore import removed_fields, values_written
        from crmsweep.backup.rollback import run_reader
        from crmsweep.backup.runlog import read_run

        source = dict(plan.header.source)
        if source.get("kind") != "run":
            return RollbackWrites()
        try:
            undone = run_reader(home, settled)(str(source.get("id", "")))
            if not undone.rollback_of:
                return RollbackWrites()
            first = read_run(home, undone.rollback_of)
        except BadInput:
            return RollbackWrites()  # unknown: every removal is then refused (no count to compare the live one with)
        removals = removed_fields((first.plan.changes[i] for i in first.applied_order), vocabulary)
        return values_written(undone, removals)

    return read_them


def plan_snapshot(home: Home, plan: Plan) -> Callable[[], RecordSource | None]:
    """Opens the snapshot `plan`'s changes came from (through the runs it undoes), or None if it is gone."""

    def open_it() -> RecordSource | None:
        # Imported here: the reader pulls in pyarrow, which only a removal of a field needs at apply time.
        from crmsweep.backup.rollback import _source_snapshot
        from crmsweep.backup.runlog import read_run
        from crmsweep.backup.snapshot import open_snapshot

        source = dict(plan.header.source)
        try:
            snapshot_id = (source.get("id") if source.get("kind") == "snapshot"
                           else _source_snapshot(home, read_run(home, str(source.get("id", "")))))
            return open_snapshot(home, snapshot_id) if snapshot_id else None
        except BadInput:
            return None

    return open_it
