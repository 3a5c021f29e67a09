"""Apply: the engine, the only code in crmsweep that writes to a CRM.

A plan is applied exactly as reviewed: before anything is written it passes the checks of
`plan_checks` (digest, org, before-images held in a verified snapshot or in the log of the run it undoes,
safety rule 2). Each batch is drift-checked against the live fingerprints by the rules of `drift`
(rule 3), announced in the run log with its before-images and fsynced before the write is sent, then its
result is logged (rule 4). A stopped or killed run is resumed from its log: writes whose outcome is
unknown are reconciled against the live records, so nothing is written twice, and a record someone else
changed after the run stopped is recorded as theirs, never claimed. A scan plan's candidates are checked
again on live data before each batch (`live_check`). One plan is applied by one process at a time (a lock
by plan digest), and a plan a finished run applied is not applied again.
"""

from __future__ import annotations

import contextlib
import shlex
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmsweep.backup.field_restore import is_value_restore, missing_field_verdict, restore_verdict
from crmsweep.backup.recreate import parents_of, resolve_placeholders
from crmsweep.backup.rollback import kept_recreations, plan_field_specs
from crmsweep.backup.runlog import (
    KIND_APPLY,
    KIND_ROLLBACK,
    PLAN_FILE,
    STATUS_DONE,
    STATUS_DONE_WITH_FAILURES,
    STATUS_ROLLED_BACK,
    STATUS_STOPPED,
    ChangeOutcome,
    Outcome,
    RunHandle,
    RunState,
    create_run,
    id_map_of,
    open_run,
    plan_lock,
    read_run,
    runs_of_plan,
)
from crmsweep.cleanup.drift import (
    DELETE_OPS,
    REMOVING_OPS,
    SINCE_BACKUP,
    SKIP_NO_PARENT,
    SKIP_SOMEONE_ELSE,
    UPDATE_OPS,
    claimed_twice,
    created_matches,
    drift_verdict,
    near_matches,
    restored_verdict,
    shows_applied,
    someone_else_verdict,
)
from crmsweep.cleanup.interrupts import InterruptedMidWrite, can_defer, writes_finish_first
from crmsweep.cleanup.live_check import ApplyTimeRules, LiveChecker, judged_records, plan_snapshot, undone_writes
from crmsweep.cleanup.plan_checks import check_plan, check_plan_text, refuse_other_org
from crmsweep.connectors.base import Connector
from crmsweep.connectors.ingest import OPEN, TERMINAL, BulkIngest, IngestJob, IngestOutcome
from crmsweep.errors import (
    AuthError,
    BadInput,
    ConnectorError,
    Interrupted,
    LimitExceeded,
    NeedsResume,
    ReserveKept,
    RetriableError,
    SafetyRefusal,
)
from crmsweep.model import Change, CreateAttempt, FieldSpec, Op, Plan, Record, WriteResult, link_types
from crmsweep.paths import Home

UNKNOWN_OUTCOME = "OUTCOME_UNKNOWN"
# Why announced writes were not carried out ("unwritten" log entries): the CRM refused the whole call up
# front, or (settling for a rollback) the records read back were not in the planned state.
NOT_SENT = "not sent"
NOT_IN_PLANNED_STATE = "not in the planned state"
SETTLED_ONLY = "stopped before rolling back: its writes of unknown outcome were read back, the rest was not started"
# Writes whose targets are not live records yet: no drift read, placeholders resolved from the id map.
_NEW_RECORD_OPS = (Op.CREATE, Op.ASSOCIATE)
FINISHED = (STATUS_DONE, STATUS_DONE_WITH_FAILURES, STATUS_ROLLED_BACK)
# Records in one bulk job: big enough that a 50k cleanup is one job, small enough that its intent entry
# and CSV stay modest.
MAX_JOB_RECORDS = 100_000


@dataclass(frozen=True)
class ApplyProgress:
    done: int
    total: int
    applied: int
    skipped: int
    failed: int
    api_calls: int


@dataclass
class ApplyReport:
    run_id: str
    plan_id: str
    total: int
    applied: int
    skipped: int
    failed: int
    stopped: str | None  # why the run stopped early (resume it later), None if it went to the end
    remaining: int
    api_calls: int  # calls made by this apply session
    skipped_items: list[dict[str, Any]] = field(default_factory=list)
    failed_items: list[dict[str, Any]] = field(default_factory=list)
    # A dry run: `applied` counts what would be written (listed in `planned_items`); no run exists.
    dry_run: bool = False
    planned_items: list[dict[str, Any]] = field(default_factory=list)
    # The plan was applied already by finished run `run_id`, whose status this is: nothing was done now.
    already_applied: str | None = None
    # What the admin must know beyond the counts (a rollback: values of removed fields it could not put back).
    notes: list[str] = field(default_factory=list)
    # Object -> old id -> new id of every record the run re-created (none in a dry run: it creates nothing).
    id_map: dict[str, dict[str, str]] = field(default_factory=dict)
    # Of `applied`, how many the run's log showed applied when this session began (a resume): the counts are
    # the whole run's, and an admin finishing 16 changes must not read 332 as written now.
    applied_earlier: int = 0


def _stop_reason(exc: ConnectorError) -> str:
    """Why the run stopped, in the CRM's words; the caller adds how to resume (it knows the plan's path)."""
    if isinstance(exc, ReserveKept):
        return str(exc)  # calls are left: the reserve kept for other integrations stopped it, as it says
    if isinstance(exc, LimitExceeded):
        return f"the org's API allowance is spent: {exc}"
    if isinstance(exc, AuthError):
        return f"the CRM refused the credentials: {exc}"
    if isinstance(exc, RetriableError):
        return f"the CRM kept failing after retries: {exc}"
    return f"the CRM refused to go on: {exc}"


def change_batches(
    changes: Sequence[Change],
    work: Sequence[int],
    batch_size: int,
    *,
    run_size: Callable[[Change, int], int] | None = None,
) -> Iterator[list[int]]:
    """The batches apply writes `work` (indexes into `changes`) in: runs of consecutive changes with the
    same (op, object), split into batches of at most `batch_size` (or `run_size(head, run length)`: a
    run a connector takes as one bulk job is job-sized), each record at most once per batch. The API
    budget counts its calls over these same batches."""
    run: list[int] = []
    for index in work:
        change = changes[index]
        if run and (changes[run[0]].op, changes[run[0]].object) != (change.op, change.object):
            yield from _split(changes, run, run_size(changes[run[0]], len(run)) if run_size else batch_size)
            run = []
        run.append(index)
    if run:
        yield from _split(changes, run, run_size(changes[run[0]], len(run)) if run_size else batch_size)


def _split(changes: Sequence[Change], run: Sequence[int], size: int) -> Iterator[list[int]]:
    batch: list[int] = []
    ids: set[str] = set()
    for index in run:
        record_id = changes[index].record_id
        if batch and (len(batch) >= size or record_id in ids):
            yield batch
            batch, ids = [], set()
        batch.append(index)
        ids.add(record_id)
    if batch:
        yield batch


def job_run_size(connector: Connector, batch_size: int) -> Callable[[Change, int], int] | None:
    """`change_batches`' `run_size` for `connector`: a run over its bulk threshold, of an op and object it
    can bulk, is one job-sized batch; None where the connector has no bulk ingest."""
    bulk = connector if isinstance(connector, BulkIngest) else None
    if bulk is None:
        return None

    def size(head: Change, count: int) -> int:
        big = count > bulk.bulk_threshold and bulk.can_ingest(head.op, head.object)
        return MAX_JOB_RECORDS if big else batch_size

    return size


def live_checked_ops(plan: Plan) -> frozenset[Op] | None:
    """The ops whose changes apply re-checks live before writing them; None: every op (a scan plan).
    A rollback puts back what a run changed, whatever holds the records now; but a change of it that
    removes a record again (the undo of an undelete or a reactivation) is a cleanup once more."""
    return None if plan.header.source.get("kind") == "snapshot" else REMOVING_OPS


def write_batch_size(connector: Connector, asked: int | None = None) -> int:
    """Records per write call: the connector's limit, or fewer if asked."""
    limit = connector.capabilities.max_batch_write
    if asked is not None and asked < 1:
        raise BadInput(f"batch size must be at least 1, not {asked}")
    return min(asked or limit, limit)


class _Engine:
    def __init__(
        self,
        plan: Plan,
        connector: Connector,
        handle: RunHandle | None,
        outcomes: list[ChangeOutcome],
        *,
        batch_size: int,
        last_batch: int,
        progress: Callable[[ApplyProgress], None] | None,
        live: LiveChecker | None = None,
        settled_at: str | None = None,
    ) -> None:
        self.plan = plan
        self.connector = connector
        self.vocabulary = connector.vocabulary
        self.handle = handle
        self.outcomes = outcomes
        self.batch_size = batch_size
        self.batch_no = last_batch
        self.progress = progress
        self.calls_at_start = connector.api_usage().calls
        self.stopped: str | None = None
        self._field_names: dict[str, set[str]] = {}
        self._described_again: set[str] = set()
        self.live = live
        # Which ops the live re-check applies to (None: every op, as for a scan plan).
        self.live_ops: frozenset[Op] | None = None
        self.settled_at = settled_at  # see RunState.settled_at
        self.would_write: list[int] = []  # a dry run: the changes it would write (not those settled as done)
        # Object -> old id -> new id of the records this run has (re-)created: placeholders resolve here.
        self.id_map = id_map_of(plan, outcomes)
        self._sent: dict[int, Record] = {}  # the values each create of this session sends
        # Live records read ahead for the next batches' drift checks (None: read, and not in the CRM),
        # of the one (op, object) in `_ahead_of`; and the batches after the one being applied.
        self._ahead: dict[str, Record | None] = {}
        self._ahead_of: tuple[Op, str] | None = None
        self._upcoming: Sequence[Sequence[int]] = ()
        # Bulk ingest, where the connector has it; batch number -> job id, from the log ("job" entries).
        self.bulk: BulkIngest | None = connector if isinstance(connector, BulkIngest) else None
        self.jobs: dict[int, str] = {}

    @property
    def dry_run(self) -> bool:
        return self.handle is None

    @property
    def _since(self) -> str:
        """What a drift detail says the fingerprint was read at: a rollback's come from the run's write."""
        undone = self.plan.header.rollback_of
        return f"run {undone} wrote it" if undone else SINCE_BACKUP

    def _log(self, entry: dict[str, Any]) -> None:
        if self.handle is not None:
            self.handle.append(entry)

    def know_fields(self, specs: Mapping[str, Sequence[FieldSpec]]) -> None:
        """Take objects' fields from the snapshot the plan came from, instead of describing them again.

        The snapshot's fields are the describe as it was backed up, with the same fields left out
        (`Connector.fields`). They decide only which check fields a read names (the deleted flag, who
        modified it) and which fields the live re-check may read: a field removed since makes that read
        fail loudly (the run stops, nothing is written unchecked), it never lets a change through.
        """
        for name, fields in specs.items():
            if fields:
                self._field_names.setdefault(name, {f.name for f in fields})

    def field_names(self, object_name: str) -> set[str]:
        if object_name not in self._field_names:
            self._field_names[object_name] = {f.name for f in self.connector.fields(object_name)}
        return self._field_names[object_name]

    # -- driving --

    def run(self, *, resuming: bool) -> None:
        if resuming:
            self._log({"t": "resume"})
        try:
            redo = self._reconcile([o.index for o in self.outcomes if o.outcome is Outcome.PENDING])
            work = sorted(set(redo) | {o.index for o in self.outcomes if o.outcome is Outcome.NOT_STARTED})
            batches = list(self._batches(work))
            for number, batch in enumerate(batches):
                self._upcoming = batches[number + 1:]
                self._apply_batch(batch)
                self._report_progress()
        except ConnectorError as exc:
            self.stopped = _stop_reason(exc)
            self._log({"t": "stop", "reason": self.stopped, "error": type(exc).__name__})
            self._report_progress()
            return
        except SafetyRefusal:
            # Its writes of unknown outcome stay pending: the next resume settles them again.
            self._log({"t": "stop", "reason": "refused while settling", "error": "SafetyRefusal"})
            raise
        except KeyboardInterrupt as interrupt:
            if self.handle is None:
                raise
            # With Ctrl-C held while a batch is written, no write is in flight now and the stop is a time
            # bound for resume; where it could not be held (not the main thread), the stop says so.
            entry: dict[str, Any] = {"t": "stop", "reason": "interrupted (Ctrl-C)", "error": "KeyboardInterrupt"}
            if not can_defer() or isinstance(interrupt, InterruptedMidWrite):
                entry["interrupted"] = True
            self._log(entry)
            raise Interrupted(f"run {self.handle.run_id} was interrupted", run_id=self.handle.run_id) from None
        self._log(
            {
                "t": "end",
                "applied": self._count(Outcome.APPLIED),
                "skipped": self._count(Outcome.SKIPPED),
                "failed": self._count(Outcome.FAILED),
            }
        )

    def _batches(self, work: Sequence[int]) -> Iterator[list[int]]:
        return change_batches(self.plan.changes, work, self.batch_size,
                              run_size=job_run_size(self.connector, self.batch_size))

    def _bulk_sized(self, head: Change, count: int) -> bool:
        return (self.bulk is not None and count > self.bulk.bulk_threshold
                and self.bulk.can_ingest(head.op, head.object))

    # -- one batch --

    def _check_fields(self, object_name: str, extra: Sequence[str] = ()) -> list[str]:
        names = [self.vocabulary.id_field, self.vocabulary.fingerprint_field]
        # Not every object has a recycle bin (a user object may have no deleted flag): ask only where it exists.
        deleted = self.vocabulary.deleted_field
        if deleted and deleted in self.field_names(object_name):
            names.append(deleted)
        return names + [n for n in extra if n not in names]

    def _resolved(self, index: int) -> Record | None:
        """The values create `index` writes, each placeholder replaced by its parent's new id; None
        (after logging the skip) if a parent was not re-created. A dry run creates nothing, so there a
        parent the plan re-creates first stands for its future id."""
        change = self.plan.changes[index]
        values = resolve_placeholders(change.after, self.id_map)
        if values is not None:
            return values
        missing = [
            t for t in parents_of(change) if t[1] not in self.id_map.get(t[0], {})
        ]
        if self.dry_run and all(self._planned_create(t) for t in missing):
            return dict(change.after)
        obj, old_id = missing[0]
        self._skip(index, SKIP_NO_PARENT,
                   f"it points at {obj} {old_id}, which this run has not re-created (failed or skipped): "
                   f"re-create that {obj} first")
        return None

    def _planned_create(self, target: tuple[str, str]) -> bool:
        return any(
            c.op is Op.CREATE and (c.object, c.record_id) == target and self.outcomes[i].outcome is Outcome.APPLIED
            for i, c in enumerate(self.plan.changes)
        )

    # -- reads: each drift check reads its records after the run's previous write, as few calls as that allows

    def _ahead_for(self, head: Change) -> dict[str, Record | None]:
        if self._ahead_of != (head.op, head.object):
            self._ahead_of, self._ahead = (head.op, head.object), {}
        return self._ahead

    def _drift_read(self, batch: Sequence[int]) -> dict[str, Record]:
        """The live records of `batch`, for its drift check. Mostly read already, by the read-back of
        the batch before (see `_read_back`); otherwise (the first batch of an op and object, or after a
        batch that wrote nothing) read now. A dry run writes nothing, so it reads the following batches'
        records along, as many as one read call holds: its drift reads are packed to the URI limit.
        """
        head = self.plan.changes[batch[0]]
        ahead = self._ahead_for(head)
        missing = [i for i in batch if self.plan.changes[i].record_id not in ahead]
        if missing:
            chosen = list(missing)
            if self.dry_run:
                chosen.extend(self._following(head, {self.plan.changes[i].record_id for i in missing},
                                              self.connector.capabilities.max_ids_per_read, whole=False))
            self._read_into(ahead, head, chosen)
        live: dict[str, Record] = {}
        for i in batch:
            record = ahead.pop(self.plan.changes[i].record_id, None)
            if record is not None:
                live[self.plan.changes[i].record_id] = record
        return live

    def _following(self, head: Change, taken: set[str], capacity: int, *, whole: bool) -> list[int]:
        """Changes of the batches after this one with the same (op, object), in order, whose records are
        not in `taken` and not read yet, while `taken` stays within `capacity` records: the next batch
        alone when `whole` (all of it, or nothing), else as far as the capacity reaches. Stops at a
        record seen before: one changed twice is read again after its first change is written."""
        ahead = self._ahead_for(head)
        chosen: list[int] = []
        for later in self._upcoming:
            first = self.plan.changes[later[0]]
            if (first.op, first.object) != (head.op, head.object) or first.op in _NEW_RECORD_OPS:
                break
            ids = [self.plan.changes[i].record_id for i in later]
            fresh = [i for i, rid in zip(later, ids, strict=True) if rid not in ahead and rid not in taken]
            if whole:
                if len(taken) + len(fresh) <= capacity and not any(rid in taken for rid in ids):
                    chosen.extend(fresh)
                break
            room = fresh[: max(0, capacity - len(taken))]
            chosen.extend(room)
            taken.update(self.plan.changes[i].record_id for i in room)
            if len(room) < len(later):
                break
        return chosen

    def _read_into(self, ahead: dict[str, Record | None], head: Change, indexes: Sequence[int],
                   also: Sequence[str] = ()) -> dict[str, Record]:
        """Read the records of changes `indexes` (for their drift checks, into `ahead`) and the records
        `also` (a read-back) in one call where one holds them; returns what was found."""
        ids = list(dict.fromkeys([*also, *(self.plan.changes[i].record_id for i in indexes)]))
        changes = [self.plan.changes[i] for i in indexes]
        extra = self.live.own_fields(head.object, changes) if self.live and changes else []
        found = self.connector.read(head.object, ids, self._check_fields(head.object, extra), include_deleted=True)
        for i in indexes:
            record_id = self.plan.changes[i].record_id
            ahead[record_id] = found.get(record_id)
        return found

    def _read_back(self, head: Change, written: Sequence[str]) -> dict[str, Any]:
        """The fingerprints of records just written (what rollback's drift check expects), read in the
        same call as the next batch's drift read where both fit one read: that read would come right
        after this one anyway, before the next write, so each check still sees the org as it is then."""
        ahead = self._ahead_for(head)
        capacity = self.connector.capabilities.max_ids_per_read
        upcoming = [] if head.op in _NEW_RECORD_OPS else self._following(head, set(written), capacity, whole=True)
        found = self._read_into(ahead, head, upcoming, also=written)
        return {rid: found[rid].get(self.vocabulary.fingerprint_field) for rid in written if rid in found}

    def _apply_batch(self, batch: list[int]) -> None:
        head = self.plan.changes[batch[0]]
        keep = batch
        if head.op in _NEW_RECORD_OPS:
            if head.op is Op.CREATE:
                batch = self._not_restored(head, batch)
            keep = []
            for i in batch:
                values = self._resolved(i)
                if values is not None:
                    self._sent[i] = values
                    keep.append(i)
        else:
            restores, restored_fields = self._value_restores(head.object, batch)
            if restores:
                # A value restore's precondition reads the fields this rollback re-created, which no read
                # ahead asked for: read the batch now, and forget what was read ahead of it.
                ids = [self.plan.changes[i].record_id for i in batch]
                changes = [self.plan.changes[i] for i in batch]
                extra = self.live.own_fields(head.object, changes) if self.live else []
                fields = self._check_fields(head.object, [*extra, *restored_fields])
                live = self.connector.read(head.object, ids, fields, include_deleted=True)
                ahead = self._ahead_for(head)
                for record_id in ids:
                    ahead.pop(record_id, None)
            else:
                live = self._drift_read(batch)
            keep = []
            for i in batch:
                change = self.plan.changes[i]
                if i in restores:
                    verdict = restores[i] or restore_verdict(change, live.get(change.record_id), self.vocabulary,
                                                               self.connector.capabilities)
                else:
                    verdict = drift_verdict(change, live.get(change.record_id), self.vocabulary, since=self._since)
                if verdict is None:
                    keep.append(i)
                else:
                    self._skip(i, *verdict)
            checked = [i for i in keep if self.live_ops is None or self.plan.changes[i].op in self.live_ops]
            if self.live is not None and checked:
                verdicts = self.live.verdicts([self.plan.changes[i] for i in checked], live)
                held: set[int] = set()
                for i, verdict in zip(checked, verdicts, strict=True):
                    if verdict is not None:
                        held.add(i)
                        self._skip(i, *verdict)
                # One pass, not a list removal per record held back: a job-sized batch holds 100,000.
                keep = [i for i in keep if i not in held]
        if not keep:
            return
        if self.dry_run:
            for i in keep:
                self.outcomes[i].outcome = Outcome.APPLIED
                self.would_write.append(i)
            if self.live is not None:
                # The real run's later checks read the CRM after this batch's write; this one's must too.
                self.live.assume_written([self.plan.changes[i] for i in keep])
            return
        if self.bulk is not None and self._bulk_sized(head, len(keep)):
            # Values the bulk format cannot say go through the regular API first, in regular batches.
            plain = [i for i in keep if not self.bulk.carries(self.plan.changes[i].after)]
            for start in range(0, len(plain), self.batch_size):
                with writes_finish_first():
                    self._write_batch(head, plain[start:start + self.batch_size], bulk=False)
            keep = [i for i in keep if i not in set(plain)]
            if not keep:
                return
        if len(keep) > self.batch_size and not self._bulk_sized(head, len(keep)):
            for start in range(0, len(keep), self.batch_size):
                with writes_finish_first():
                    self._write_batch(head, keep[start:start + self.batch_size], bulk=False)
            return
        with writes_finish_first():
            self._write_batch(head, keep)

    def _not_restored(self, head: Change, batch: Sequence[int]) -> list[int]:
        """The creates of `batch` whose record is still removed. A create re-creates the record a run
        removed under `record_id`; where that record is live again (an admin restored it by hand since,
        e.g. from the CRM's recycle bin in its UI), it is skipped as already restored, its own id standing in the
        id map for the new one (children and links point at it): a create would make a second copy."""
        ids = [self.plan.changes[i].record_id for i in batch]
        live = self.connector.read(head.object, ids, self._check_fields(head.object), include_deleted=True)
        keep = []
        for i in batch:
            change = self.plan.changes[i]
            verdict = restored_verdict(change, live.get(change.record_id), self.vocabulary)
            if verdict is None:
                keep.append(i)
                continue
            self._skip(i, *verdict)
            self.id_map.setdefault(change.object, {})[change.record_id] = change.record_id
        return keep

    def _value_restores(
        self, object_name: str, batch: Sequence[int]
    ) -> tuple[dict[int, tuple[str, str] | None], list[str]]:
        """The value restores among `batch` (a rollback plan's: see `field_restore`), each with a skip known
        before any read (a field the object lacks), and the fields to read for their precondition."""
        found = [i for i in batch if self.plan.header.rollback_of and is_value_restore(self.plan.changes[i])]
        if not found:
            return {}, []
        if object_name not in self._described_again:
            # The fields were re-created by this rollback, maybe after the object was first described.
            self._described_again.add(object_name)
            self._field_names.pop(object_name, None)
        names = self.field_names(object_name)
        # A dry run re-creates no field: a field it would re-create is not there to read, and would be empty.
        checks = {i: None if self.dry_run else missing_field_verdict(self.plan.changes[i], names) for i in found}
        return checks, sorted({k for i in found for k in self.plan.changes[i].after if k in names})

    def _write_batch(self, head: Change, keep: list[int], *, bulk: bool | None = None) -> None:
        """Announce, send and log one batch: the window in which a Ctrl-C waits for the result. As one
        bulk job when `bulk` (None: when the batch is over the connector's threshold)."""
        self.batch_no += 1
        batch_no = self.batch_no
        self._log(
            {
                "t": "intent",
                "batch": batch_no,
                "op": head.op.value,
                "object": head.object,
                "changes": keep,
                "records": [self._intent_record(i) for i in keep],
            }
        )
        for i in keep:
            self.outcomes[i].outcome = Outcome.PENDING
            self.outcomes[i].before = self.plan.changes[i].before_record()
            self.outcomes[i].intent_batch = batch_no
        if self._bulk_sized(head, len(keep)) if bulk is None else bulk:
            self._write_job(head, batch_no, keep)
            return
        try:
            results = self._send(head.op, head.object, keep)
        except ConnectorError as exc:
            if exc.never_ran:
                # Refused as a whole before anything was carried out: these are back to not started, so
                # the stop does not leave writes of unknown outcome that only a resume could settle.
                self._unwritten(batch_no, keep, NOT_SENT)
            raise
        if len(results) != len(keep):
            # Which record got which outcome is unknowable: leave them pending for resume to reconcile.
            raise ConnectorError(
                f"the CRM answered {len(results)} results for {len(keep)} records of a {head.op} of {head.object}"
            )
        self._finish(head, batch_no, keep, results)

    def _finish(self, head: Change, batch_no: int, keep: Sequence[int], results: Sequence[WriteResult]) -> None:
        """Read back what was written and log the results of `keep`."""
        # A record the CRM reports as failed stays failed, even if it is already in the planned state:
        # the connector never resends a write whose outcome is unknown, so that state is someone
        # else's doing, and claiming it would make rollback undo their work.
        # A link has no fingerprint to read back.
        written = {} if head.op is Op.ASSOCIATE else {
            i: (r.id if head.op is Op.CREATE else self.plan.changes[i].record_id)
            for i, r in zip(keep, results, strict=True)
            if r.ok and (r.id or head.op is not Op.CREATE)
        }
        fingerprints: dict[str, Any] = {}
        readback_error: ConnectorError | None = None
        if written:
            try:
                fingerprints = self._read_back(head, [str(v) for v in written.values()])
            except ConnectorError as exc:
                # The writes happened: log their results anyway, then stop.
                readback_error = exc
        self._log_results(batch_no, keep, results, fingerprints)
        if readback_error is not None:
            raise readback_error

    # -- bulk jobs --

    def _write_job(self, head: Change, batch_no: int, keep: list[int]) -> None:
        """Send `keep` as one bulk job, its id logged before its data is uploaded, so that a resume
        settles it from the job's own results."""
        assert self.bulk is not None
        id_field = self.vocabulary.id_field
        rows = [{id_field: self.plan.changes[i].record_id,
                 **(self.plan.changes[i].after if head.op in UPDATE_OPS else {})} for i in keep]
        try:
            job = self.bulk.ingest(head.op, head.object, rows)
        except ValueError as exc:
            # The rows cannot make one job's CSV (too big, or a value CSV cannot hold): nothing was sent.
            self._unwritten(batch_no, keep, NOT_SENT)
            raise ConnectorError(f"{head.op} of {len(keep)} {head.object} records cannot go as one bulk job: "
                                 f"{exc}; raise this connection's bulk_threshold to {len(keep)} or more to "
                                 "send them through collections") from None
        except ConnectorError as exc:
            if exc.never_ran:
                self._unwritten(batch_no, keep, NOT_SENT)
            raise
        self._log({"t": "job", "batch": batch_no, "job": job.id})
        self.jobs[batch_no] = job.id
        try:
            job.upload()
            job.close()
        except ConnectorError as exc:
            if exc.never_ran:
                # Never closed, so never processed: aborted, the records are back to not started.
                self._abort_quietly(job)
                self._unwritten(batch_no, keep, NOT_SENT)
            raise
        try:
            job.wait()
            outcome = job.results([str(r[id_field]) for r in rows])
        except ConnectorError as exc:
            exc.never_ran = False  # the job was closed: it may have written any of these
            raise
        done, results, unprocessed, unaccounted = self._job_split(keep, outcome)
        if done:
            self._finish(head, batch_no, done, results)
        self._unwritten(batch_no, unprocessed, f"not processed by bulk job {job.id} ({outcome.state})")
        if unprocessed or unaccounted:
            said = f": {outcome.error_message}" if outcome.error_message else ""
            raise ConnectorError(
                f"bulk job {job.id} ({head.op} {head.object}) ended {outcome.state}{said}; "
                f"{len(unprocessed)} records were not processed and {len(unaccounted)} not accounted for"
            )

    def _job_split(
        self, indexes: Sequence[int], outcome: IngestOutcome
    ) -> tuple[list[int], list[WriteResult], list[int], list[int]]:
        """The changes a job answered for (with their results), those it did not process, and those
        it said nothing of."""
        done: list[int] = []
        results: list[WriteResult] = []
        unprocessed: list[int] = []
        unaccounted: list[int] = []
        for i in indexes:
            record_id = self.plan.changes[i].record_id
            result = outcome.done.get(record_id)
            if result is not None:
                done.append(i)
                results.append(result)
            elif record_id in outcome.unprocessed:
                unprocessed.append(i)
            else:
                unaccounted.append(i)
        return done, results, unprocessed, unaccounted

    def _abort_quietly(self, job: IngestJob) -> None:
        # An Open job is never processed; one left Open times out on the CRM's side.
        with contextlib.suppress(ConnectorError):
            job.abort()

    def _settle_job(self, job_id: str, indexes: list[int]) -> tuple[list[dict[str, Any]], list[int]]:
        """Result rows for the changes job `job_id` answered for, once it has ended; and the changes
        left for the live records to settle (not processed, not accounted for, or the job is gone)."""
        assert self.bulk is not None
        head = self.plan.changes[indexes[0]]
        job = self.bulk.ingest_job(job_id, head.op, head.object)
        try:
            state = job.state()
        except ConnectorError as exc:
            if exc.status == 404:
                return [], indexes  # the CRM no longer has the job (expired or deleted): the live records decide
            raise
        if state == OPEN:
            # Never closed, so nothing of it ran; aborted so that nothing ever will.
            if not self.dry_run:
                job.abort()
            return [], indexes
        if state not in TERMINAL:
            job.wait()
        outcome = job.results([self.plan.changes[i].record_id for i in indexes])
        done, results, unprocessed, unaccounted = self._job_split(indexes, outcome)
        written = [self.plan.changes[i].record_id for i, r in zip(done, results, strict=True) if r.ok]
        after = (self.connector.read(head.object, written, self._check_fields(head.object), include_deleted=True)
                 if written else {})
        fp_field = self.vocabulary.fingerprint_field
        rows = [
            self._row(i, self.plan.changes[i].record_id, r.ok,
                      fingerprint_after=(after.get(self.plan.changes[i].record_id) or {}).get(fp_field) if r.ok
                      else None, error_code=r.error_code, message=r.message)
            for i, r in zip(done, results, strict=True)
        ]
        return rows, unprocessed + unaccounted

    def _intent_record(self, index: int) -> dict[str, Any]:
        change = self.plan.changes[index]
        record: dict[str, Any] = {"i": index, "id": change.record_id, "before": change.before_record()}
        if change.op is Op.CREATE:
            # What resume looks for if the outcome is never logged; the values follow from the plan
            # and the id map, which cannot change once a parent is created.
            record["key"] = self._key(index)
        return record

    def _key(self, index: int) -> str:
        """The idempotency key of create `index`: one per change of a run, the same on a resend."""
        run_id = self.handle.run_id if self.handle is not None else "dry-run"
        return f"crmsweep:{run_id}:{index}"

    def _send(self, op: Op, obj: str, indexes: Sequence[int]) -> list[WriteResult]:
        changes = [self.plan.changes[i] for i in indexes]
        id_field = self.vocabulary.id_field
        if op in DELETE_OPS:
            return self.connector.delete(obj, [c.record_id for c in changes])
        if op is Op.UNDELETE:
            return self.connector.undelete(obj, [c.record_id for c in changes])
        if op in UPDATE_OPS:
            return self.connector.update(obj, [{id_field: c.record_id, **c.after} for c in changes])
        if op is Op.CREATE:
            return self.connector.create(obj, [self._create_body(i) for i in indexes],
                                         keys=[self._key(i) for i in indexes])
        if op is Op.ASSOCIATE:
            # One batch is one (op, object): one link object, so one pair of object types.
            ends = changes[0].after
            pairs = [(str(self._sent[i]["from_id"]), str(self._sent[i]["to_id"])) for i in indexes]
            types = [link_types(self._sent[i]) for i in indexes]
            return self.connector.create_associations(str(ends["from_object"]), str(ends["to_object"]), pairs,
                                                      types if any(types) else None)
        raise ValueError(f"apply does not know how to {op}")

    def _create_body(self, index: int) -> Record:
        """What create `index` sends: its resolved values, less what the CRM assigns itself and refuses
        on input (ids, deleted flags, audit stamps; the rollback planner has left those out already)."""
        values = self._sent.get(index)
        if values is None:
            values = resolve_placeholders(self.plan.changes[index].after, self.id_map) or {}
        return self._create_body_of(values)

    def _log_results(
        self, batch_no: int, indexes: Sequence[int], results: Sequence[WriteResult], fingerprints: Mapping[str, Any]
    ) -> None:
        rows: list[dict[str, Any]] = []
        for i, result in zip(indexes, results, strict=True):
            change = self.plan.changes[i]
            record_id = (result.id if change.op is Op.CREATE else change.record_id) or change.record_id
            fp = fingerprints.get(record_id) if result.ok else None
            rows.append(self._row(i, record_id, result.ok, fingerprint_after=fp, error_code=result.error_code,
                                  message=result.message))
        self._log({"t": "result", "batch": batch_no, "results": rows})
        self._settle(rows)

    def _settle(self, rows: Sequence[dict[str, Any]]) -> None:
        """Take logged result rows into the outcomes, and a create's new id into the id map."""
        for row in rows:
            out = self.outcomes[row["i"]]
            out.outcome = Outcome.APPLIED if row["ok"] else Outcome.FAILED
            out.record_id = row["id"]
            out.fingerprint_after = row["fingerprint_after"]
            out.error_code = row["error_code"]
            out.message = row["message"]
            change = self.plan.changes[row["i"]]
            if change.op is Op.CREATE and row["ok"]:
                self.id_map.setdefault(change.object, {})[change.record_id] = row["id"]

    def _unwritten(self, batch_no: int | None, indexes: Sequence[int], why: str) -> None:
        """Log announced writes that were not carried out: the changes are back to not started."""
        if not indexes:
            return
        self._log({"t": "unwritten", "batch": batch_no, "changes": list(indexes), "why": why})
        for i in indexes:
            out = self.outcomes[i]
            out.outcome, out.before, out.intent_batch = Outcome.NOT_STARTED, None, None

    def _skip(self, index: int, reason: str, detail: str) -> None:
        change = self.plan.changes[index]
        self._log({"t": "skip", "i": index, "id": change.record_id, "reason": reason, "detail": detail})
        out = self.outcomes[index]
        out.outcome, out.reason, out.detail = Outcome.SKIPPED, reason, detail

    def settle_only(self) -> None:
        """Settle the writes of unknown outcome from the live records, as resume does, and start nothing:
        a write not in the planned state is back to not started, and the run ends stopped."""
        pending = [o.index for o in self.outcomes if o.outcome is Outcome.PENDING]
        self._log({"t": "resume", "settle_only": True})
        reason = SETTLED_ONLY
        try:
            self._unwritten(None, self._reconcile(pending), NOT_IN_PLANNED_STATE)
        except ConnectorError as exc:
            reason = _stop_reason(exc)
            raise
        except SafetyRefusal:
            reason = "refused while settling"
            raise
        except KeyboardInterrupt:
            reason = "interrupted (Ctrl-C)"
            raise
        finally:
            self._log({"t": "stop", "reason": reason, "error": None if reason == SETTLED_ONLY else "settle"})

    # -- resume --

    def _reconcile(self, pending: Sequence[int]) -> list[int]:
        """Settle writes whose outcome was never logged; returns the changes to write again."""
        by_batch: dict[int, list[int]] = {}
        for i in pending:
            by_batch.setdefault(self.outcomes[i].intent_batch or 0, []).append(i)
        redo: list[int] = []
        running_user = self.connector.current_user_id() if pending else None
        for batch_no, indexes in by_batch.items():
            head = self.plan.changes[indexes[0]]
            rows: list[dict[str, Any]] = []
            if head.op is Op.CREATE:
                found, again = self._find_created(indexes)
                rows.extend(found)
                redo.extend(again)
            elif head.op is Op.ASSOCIATE:
                # Linking two records that are linked already changes nothing: sent again.
                redo.extend(indexes)
            else:
                job_id = self.jobs.get(batch_no)
                if job_id is not None and self.bulk is not None:
                    from_job, indexes = self._settle_job(job_id, indexes)
                    rows.extend(from_job)
                objects = {self.plan.changes[i].object for i in indexes}
                extra = sorted({k for i in indexes for k in self.plan.changes[i].after})
                by_field = self.vocabulary.last_modified_by_field
                for obj in sorted(objects):
                    ids = [self.plan.changes[i].record_id for i in indexes if self.plan.changes[i].object == obj]
                    wanted = extra + ([by_field] if by_field and by_field in self.field_names(obj) else [])
                    live = self.connector.read(obj, ids, self._check_fields(obj, wanted), include_deleted=True)
                    for i in indexes:
                        change = self.plan.changes[i]
                        if change.object != obj:
                            continue
                        record = live.get(change.record_id)
                        if not shows_applied(change, record, self.vocabulary):
                            redo.append(i)
                            continue
                        theirs = someone_else_verdict(
                            change, record, self.vocabulary, settled_at=self.settled_at, running_user=running_user
                        )
                        if theirs is not None:
                            # In the planned state, but not by this run: never claim it, so rollback leaves it be.
                            self._skip(i, SKIP_SOMEONE_ELSE, theirs)
                            continue
                        fp = record.get(self.vocabulary.fingerprint_field) if record else None
                        rows.append(self._row(i, change.record_id, True, fingerprint_after=fp))
            if rows:
                self._log({"t": "result", "batch": batch_no, "reconciled": True, "results": rows})
                self._settle(rows)
        return redo

    def _find_created(self, indexes: Sequence[int]) -> tuple[list[dict[str, Any]], list[int]]:
        """Settle creates of unknown outcome by their idempotency keys: result rows for those found
        (or found ambiguous), and the changes that were never created, to send again."""
        rows: list[dict[str, Any]] = []
        again: list[int] = []
        obj = self.plan.changes[indexes[0]].object
        attempts: dict[int, CreateAttempt] = {}
        for i in indexes:
            out = self.outcomes[i]
            values = resolve_placeholders(self.plan.changes[i].after, self.id_map)
            if out.key is None or out.intent_time is None or values is None:
                why = ("its intent holds no idempotency key to look for" if values is not None
                       else "a record it points at has no new id in the run")
                rows.append(self._unknown_create_row(i, why))
                continue
            attempts[i] = CreateAttempt(key=out.key, values=self._create_body_of(values), sent_after=out.intent_time)
        if not attempts:
            return rows, again
        candidates = self.connector.find_created(obj, list(attempts.values()))
        claimed = {new for ids in self.id_map.values() for new in ids.values()}
        id_field = self.vocabulary.id_field
        key_field = self.vocabulary.create_key_field
        matches = {
            i: created_matches(a, candidates.get(a.key, []), id_field, exclude=claimed, key_field=key_field)
            for i, a in attempts.items()
        }
        shared = claimed_twice(matches)
        matched = claimed | {new for ids in matches.values() for new in ids}
        doubtful: dict[int, dict[str, list[str]]] = {}
        for i, ids in matches.items():
            if len(ids) == 1 and ids[0] not in shared:
                rows.append(self._row(i, ids[0], True))
            elif not ids:
                near = near_matches(attempts[i], candidates.get(attempts[i].key, []), id_field, exclude=matched,
                                    key_field=key_field)
                if near:
                    doubtful[i] = near
                else:
                    again.append(i)
            else:
                rows.append(self._unknown_create_row(
                    i, f"{len(ids)} records match what it sent ({', '.join(ids[:3])}): which one it made is unknown"
                ))
        if doubtful:
            self._refuse_doubtful(doubtful, attempts)
        found = [r for r in rows if r["ok"]]
        if found:
            after = self.connector.read(obj, [r["id"] for r in found], self._check_fields(obj), include_deleted=True)
            for row in found:
                row["fingerprint_after"] = (after.get(row["id"]) or {}).get(self.vocabulary.fingerprint_field)
        return rows, again

    def _refuse_doubtful(self, doubtful: Mapping[int, Mapping[str, Sequence[str]]],
                         attempts: Mapping[int, CreateAttempt]) -> None:
        """Stop rather than send again a create whose copy may be a record edited since it landed: a
        second copy is a duplicate the admin must find and merge, a stop is a question they can answer."""
        lines = []
        for i, near in list(doubtful.items())[:5]:
            change = self.plan.changes[i]
            found = "; ".join(
                f"{record_id} (differs in {', '.join(f'{n} (sent {attempts[i].values.get(n)!r})' for n in differ)})"
                for record_id, differ in list(near.items())[:3]
            )
            lines.append(f"{change.object} {change.record_id} (change {i + 1}): {found}")
        more = f" and {len(doubtful) - 5} more" if len(doubtful) > 5 else ""
        raise SafetyRefusal(
            f"{len(doubtful)} create(s) of unknown outcome match no record exactly, but records created since "
            f"hold most of what they sent (the copy they made, edited since?): {' | '.join(lines)}{more}. Not "
            "sent again, since that could make a second copy. In the CRM, check each record named: if it is "
            "the copy, set the fields named back to the values sent and run the command again (it is then "
            "found and kept; make the edit again after). If none is, the create did not land: re-create "
            "that record by hand from the backup, and leave this run stopped"
        )

    def _create_body_of(self, values: Record) -> Record:
        system = {self.vocabulary.id_field, self.vocabulary.deleted_field, *self.vocabulary.audit_fields}
        return {k: v for k, v in values.items() if k not in system}

    def _unknown_create_row(self, index: int, why: str) -> dict[str, Any]:
        change = self.plan.changes[index]
        return self._row(
            index,
            change.record_id,
            False,
            error_code=UNKNOWN_OUTCOME,
            message=(
                f"the run was interrupted while creating this {change.object} and {why}; it may or may not "
                "exist now: look for it in the CRM before creating it again"
            ),
        )

    def _row(
        self,
        index: int,
        record_id: str,
        ok: bool,
        *,
        fingerprint_after: Any = None,
        error_code: str | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        row = {
            "i": index,
            "id": record_id,
            "ok": ok,
            "error_code": error_code,
            "message": message,
            "fingerprint_after": fingerprint_after,
        }
        change = self.plan.changes[index]
        if change.op is Op.CREATE and ok:
            row["old_id"] = change.record_id  # beside "id", the new one: the run's id map
        return row


    # -- reporting --

    def _count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.outcomes if o.outcome is outcome)

    def api_calls(self) -> int:
        return self.connector.api_usage().calls - self.calls_at_start

    def _report_progress(self) -> None:
        if self.progress is None:
            return
        # Once per batch over every outcome (250 batches of a 50,000-record rollback): one pass, not four.
        counts = Counter(o.outcome for o in self.outcomes)
        applied, skipped, failed = counts[Outcome.APPLIED], counts[Outcome.SKIPPED], counts[Outcome.FAILED]
        self.progress(
            ApplyProgress(
                done=applied + skipped + failed,  # ChangeOutcome.done
                total=len(self.outcomes),
                applied=applied,
                skipped=skipped,
                failed=failed,
                api_calls=self.api_calls(),
            )
        )


def _report(
    plan: Plan,
    run_id: str,
    outcomes: Sequence[ChangeOutcome],
    stopped: str | None,
    calls: int,
    *,
    dry_run: bool = False,
    already_applied: str | None = None,
    would_write: Sequence[int] = (),
    applied_earlier: int = 0,
) -> ApplyReport:
    skipped_items, failed_items, planned_items = [], [], []
    planned = set(would_write)
    for out in outcomes:
        change = plan.changes[out.index]
        item = {"i": out.index, "op": change.op.value, "object": change.object, "id": out.record_id or change.record_id}
        if out.outcome is Outcome.SKIPPED:
            skipped_items.append({**item, "reason": out.reason, "detail": out.detail})
        elif out.outcome is Outcome.FAILED:
            failed_items.append({**item, "error_code": out.error_code, "message": out.message})
        elif out.index in planned:
            planned_items.append(item)
    return ApplyReport(
        run_id=run_id,
        plan_id=plan.header.plan_id,
        total=len(outcomes),
        # A dry run counts what it would write; what a run it resumes wrote already is not counted again.
        applied=len(planned_items) if dry_run else sum(1 for o in outcomes if o.outcome is Outcome.APPLIED),
        skipped=len(skipped_items),
        failed=len(failed_items),
        stopped=stopped,
        remaining=sum(1 for o in outcomes if not o.done),
        api_calls=calls,
        skipped_items=skipped_items,
        failed_items=failed_items,
        dry_run=dry_run,
        planned_items=planned_items,
        already_applied=already_applied,
        id_map={} if dry_run else id_map_of(plan, list(outcomes)),
        applied_earlier=applied_earlier,
    )


def jobs_of(state: RunState) -> dict[int, str]:
    """Batch number -> the bulk job that batch was sent as, from the run's "job" entries."""
    return {int(e["batch"]): str(e["job"]) for e in state.entries
            if e.get("t") == "job" and isinstance(e.get("batch"), int) and isinstance(e.get("job"), str)}


def earlier_run(home: Home, plan: Plan) -> RunState | None:
    """The latest run started for this very plan (by digest), from the per-plan index; None if none."""
    found = runs_of_plan(home, plan)
    return read_run(home, found[-1]) if found else None


def refuse_second_run(plan: Plan, earlier: RunState) -> None:
    """A plan whose run stopped is finished by resuming that run, not by starting another."""
    raise NeedsResume(
        f"plan {plan.header.plan_id} was started by run {earlier.run_id}, which is {earlier.status}: "
        "finish that run rather than starting another, with",
        run_id=earlier.run_id,
        plan_file=None,
        command=f"`--resume {earlier.run_id}`",
    )


def resumable_run(home: Home, plan: Plan, run_id: str) -> RunState:
    """Run `run_id` as it stands, if `plan` may resume it: its own plan, and not rolled back."""
    state = read_run(home, run_id)
    if state.plan.digest != plan.digest:
        kept = shlex.quote(str(home.runs_dir / run_id / PLAN_FILE))
        raise SafetyRefusal(
            f"run {run_id} applied plan {state.plan.header.plan_id}, not this plan (digest differs): resume it with "
            f"its own plan, which the run keeps: `crmsweep apply {kept} --resume {run_id}`"
        )
    if state.status == STATUS_ROLLED_BACK:
        raise SafetyRefusal(
            f"run {run_id} was rolled back by run {state.rolled_back_by}: resuming it would redo its changes"
        )
    if state.rollbacks:
        raise SafetyRefusal(
            f"run {run_id} was rolled back in part by run {state.rollbacks[-1]}: resuming it would write on top of "
            "what that undid; scan again for a fresh plan (or finish undoing it: `crmsweep rollback "
            f"{run_id}`)"
        )
    return state


def settle_run(home: Home, run_id: str, connector: Connector, *, dry_run: bool = False) -> RunState:
    """Run `run_id` with its writes of unknown outcome settled from the live records, nothing written to
    the CRM: what it applied (by the same rule as resume: a record changed after the stop is someone
    else's), and the rest back to not started. Logged in the run (it ends stopped), unless `dry_run`,
    which settles in memory only. The caller holds the run's lock."""
    state = read_run(home, run_id)
    if not state.count(Outcome.PENDING) or state.status == STATUS_ROLLED_BACK:
        return state
    if state.plan.header.org_id != connector.org_id():
        raise BadInput(
            f"run {run_id} wrote to org {state.plan.header.org_id} but connection "
            f"'{connector.connection_name}' is org {connector.org_id()}"
        )
    handle = None if dry_run else open_run(home, run_id)
    engine = _Engine(state.plan, connector, handle, state.outcomes, batch_size=1, last_batch=state.last_batch,
                     progress=None, settled_at=state.settled_at)
    engine.know_fields(plan_field_specs(home, state.plan))
    engine.jobs = jobs_of(state)
    was_applied = set(state.applied_order)
    engine.settle_only()
    if not dry_run:
        return read_run(home, run_id)
    newly = [o.index for o in state.outcomes if o.outcome is Outcome.APPLIED and o.index not in was_applied]
    return replace(state, applied_order=[*state.applied_order, *newly], status=STATUS_STOPPED,
                   stop_reason=SETTLED_ONLY)


def apply_plan(
    plan: Plan,
    plan_text: str,
    connector: Connector,
    home: Home,
    *,
    progress: Callable[[ApplyProgress], None] | None = None,
    batch_size: int | None = None,
    resume_run: str | None = None,
    rules: ApplyTimeRules | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
    unlogged_source: RunState | None = None,
    config_file: Path | None = None,
) -> ApplyReport:
    """Apply `plan` (whose file text is `plan_text`) as a new run, or finish run `resume_run`.

    Counts in the report cover the whole run (earlier sessions included); `api_calls` this session.
    Stops cleanly (report.stopped) on API limits, exhausted retries, auth and other CRM errors.
    A plan a finished run applied already is not applied again: the report is that run's, with
    `already_applied` set. `dry_run` does every check and read but no write, and creates no run.
    `rules` are the protections in force now (default: the provider's and the default `[protect]`).
    Raises `Interrupted` (naming the run, which can be resumed) on Ctrl-C.
    `unlogged_source`: for a dry run of a rollback plan built here from a run settled in memory only
    (`settle_run(dry_run=True)`), that run as settled: its log cannot back the plan yet (only the org is
    checked), and the live checks read what landed from it, not from its log, as the real rollback would.
    `config_file`: the config in effect, recorded in a new run's log (`runs show` names it in the command
    that finishes the run).
    """
    if unlogged_source is not None:
        if not dry_run:
            raise ValueError("only a dry run may apply a plan its source's log does not back")
        refuse_other_org(plan, connector)
    else:
        check_plan_text(plan, plan_text, home)
        check_plan(plan, connector, home)
    size = write_batch_size(connector, batch_size)
    live: LiveChecker | None = None
    known_fields = plan_field_specs(home, plan)

    def engine_for(handle: RunHandle | None, outcomes: list[ChangeOutcome], last_batch: int,
                   settled_at: str | None = None) -> _Engine:
        nonlocal live
        engine = _Engine(plan, connector, handle, outcomes, batch_size=size, last_batch=last_batch,
                         progress=progress, settled_at=settled_at)
        engine.know_fields(known_fields)
        for obj, ids in kept_recreations(home, plan, connector.vocabulary).items():
            engine.id_map[obj] = {**ids, **engine.id_map.get(obj, {})}  # this run's own creates first
        in_force = rules or ApplyTimeRules()
        from_run = live_checked_ops(plan) is not None
        if from_run:
            # A record's age is no protection against undoing crmsweep's own re-create of it.
            in_force = replace(in_force, recent_days=0)
        live = LiveChecker(connector, in_force, plan.header.pass_settings, now or datetime.now(UTC),
                           engine.field_names, snapshot=plan_snapshot(home, plan),
                           written=undone_writes(home, plan, unlogged_source),
                           judged=judged_records(home, plan, unlogged_source))
        engine.live = live
        engine.live_ops = live_checked_ops(plan)
        live.undoing = from_run
        return engine

    def fresh() -> list[ChangeOutcome]:
        return [ChangeOutcome(index=i, record_id=c.record_id) for i, c in enumerate(plan.changes)]

    if dry_run:
        # What the real command would do, reading only: refused alike, or resumed with its pending
        # writes reconciled from the live records in memory.
        if resume_run is not None:
            state = resumable_run(home, plan, resume_run)
            if state.status in (STATUS_DONE, STATUS_DONE_WITH_FAILURES):
                # Finished already: nothing is done now, as a plan applied already answers.
                return _report(plan, resume_run, state.outcomes, None, 0, dry_run=True, already_applied=state.status)
            engine = engine_for(None, state.outcomes, state.last_batch, state.settled_at)
            engine.jobs = jobs_of(state)
            engine.run(resuming=True)
            return _report(plan, resume_run, engine.outcomes, engine.stopped, engine.api_calls(), dry_run=True,
                           would_write=engine.would_write)
        earlier = earlier_run(home, plan)
        if earlier is not None:
            if earlier.status in FINISHED:
                return _report(plan, earlier.run_id, earlier.outcomes, None, 0, dry_run=True,
                               already_applied=earlier.status)
            refuse_second_run(plan, earlier)
        engine = engine_for(None, fresh(), 0)
        engine.run(resuming=False)
        return _report(plan, "", engine.outcomes, engine.stopped, engine.api_calls(), dry_run=True,
                       would_write=engine.would_write)

    with plan_lock(home, plan) as held:
        if resume_run is None:
            earlier = earlier_run(home, plan)
            if earlier is not None:
                if earlier.status in FINISHED:
                    return _report(plan, earlier.run_id, earlier.outcomes, None, 0, already_applied=earlier.status)
                refuse_second_run(plan, earlier)
            kind = KIND_ROLLBACK if plan.header.rollback_of else KIND_APPLY
            handle = create_run(home, plan, plan_text, kind=kind, rollback_of=plan.header.rollback_of,
                                config_file=config_file)
            held.started(handle.run_id)
            if plan.header.rollback_of:
                # On the undone run too, so `rollback RUN` finds (and resumes) its rollbacks without a search.
                open_run(home, plan.header.rollback_of).append({"t": "rollback", "by": handle.run_id})
            with handle.lock():
                engine = engine_for(handle, fresh(), 0)
                engine.run(resuming=False)
            return _report(plan, handle.run_id, engine.outcomes, engine.stopped, engine.api_calls())

        held.started(resume_run)
        handle = open_run(home, resume_run)
        with handle.lock():
            # Read under the lock: the log is settled only once no other apply can append to it.
            state = resumable_run(home, plan, resume_run)
            if state.status in (STATUS_DONE, STATUS_DONE_WITH_FAILURES):
                # Finished already (`apply --resume RUN` run twice): nothing is done now, and the answer says
                # so as a plan applied already does, not with the earlier session's counts as if written now.
                return _report(plan, handle.run_id, state.outcomes, None, 0, already_applied=state.status)
            applied_before = sum(1 for o in state.outcomes if o.outcome is Outcome.APPLIED)
            engine = engine_for(handle, state.outcomes, state.last_batch, state.settled_at)
            engine.jobs = jobs_of(state)
            engine.run(resuming=True)
        return _report(plan, handle.run_id, engine.outcomes, engine.stopped, engine.api_calls(),
                       applied_earlier=applied_before)
