"""Apply: the only code in crmsweep that writes to a CRM.

A plan is applied exactly as reviewed: its digest is checked, its org must be the connection's, and its
before-images must be held in a verified snapshot or in the log of the run it undoes (safety rule 2).
Each batch is drift-checked against the live fingerprints (rule 3), announced in the run log with its
before-images and fsynced before the write is sent, then its result is logged (rule 4). A stopped or
killed run is resumed from its log: writes whose outcome is unknown are reconciled against the live
records, so nothing is written twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crmsweep.backup.runlog import (
    KIND_APPLY,
    KIND_ROLLBACK,
    STATUS_DONE,
    STATUS_DONE_WITH_FAILURES,
    STATUS_ROLLED_BACK,
    ChangeOutcome,
    Outcome,
    RunHandle,
    create_run,
    open_run,
    read_run,
)
from crmsweep.connectors.base import Connector
from crmsweep.errors import (
    AuthError,
    BadInput,
    ConnectorError,
    LimitExceeded,
    RetriableError,
    SafetyRefusal,
)
from crmsweep.model import (
    Change,
    NotReversible,
    Op,
    Plan,
    PlanFormatError,
    Record,
    Vocabulary,
    WriteResult,
    canonical_datetime,
)
from crmsweep.paths import Home

# How many offending records a refusal names before it says "and N more".
_SHOWN_OFFENDERS = 3

_DELETE_OPS = (Op.DELETE, Op.ARCHIVE)
_UPDATE_OPS = (Op.UPDATE, Op.DEACTIVATE, Op.REACTIVATE)

# Skip reasons, as logged and reported.
SKIP_DRIFT = "drift"
SKIP_MISSING = "missing"
SKIP_ALREADY_DELETED = "already deleted"
SKIP_NOT_IN_BIN = "not in recycle bin"

UNKNOWN_OUTCOME = "OUTCOME_UNKNOWN"


# --- loading and checking a plan -----------------------------------------------------------------------


def load_plan(path: Path) -> tuple[Plan, str]:
    """The plan in `path` and the file's text, refused if its digest does not match its content."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"plan file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise BadInput(f"cannot read plan file {path}: {reason}") from None
    try:
        plan, claimed = Plan.from_json(text)
        for change in plan.changes:
            change.validate()
    except (PlanFormatError, NotReversible) as exc:
        raise BadInput(f"plan file {path} is not a valid plan: {exc}") from None
    if claimed != plan.digest:
        raise SafetyRefusal(f"plan {path} was changed after it was written (digest mismatch): scan again")
    return plan, text


def _check_plan_text(plan: Plan, plan_text: str) -> None:
    """The text kept in the run folder must be the very plan being applied."""
    try:
        parsed, claimed = Plan.from_json(plan_text)
    except PlanFormatError as exc:
        raise SafetyRefusal(f"the plan text to apply is not a valid plan ({exc}): load the plan file again") from None
    if not (claimed == parsed.digest == plan.digest):
        raise SafetyRefusal(
            f"plan {plan.header.plan_id} was changed after it was written (digest mismatch): scan again"
        )


def check_plan(plan: Plan, connector: Connector, home: Home) -> None:
    """Refuse a plan made for another org, or whose before-images are not safely held (rule 2)."""
    header = plan.header
    if header.provider != connector.provider:
        raise BadInput(
            f"plan is for a {header.provider} org but connection '{connector.connection_name}' is {connector.provider}"
        )
    live_org = connector.org_id()
    if header.org_id != live_org:
        raise BadInput(
            f"plan is for org {header.org_id} but connection '{connector.connection_name}' is org {live_org}"
        )
    kind, source_id = header.source.get("kind"), header.source.get("id", "")
    if kind == "snapshot":
        _check_snapshot_source(plan, home, source_id)
    elif kind == "run":
        _check_run_source(plan, home, source_id)
    else:
        raise SafetyRefusal(
            f"plan {header.plan_id} does not say where its before-images are held (source {dict(header.source)}): "
            "scan again"
        )


def _offender_text(offenders: list[str]) -> str:
    shown = "; ".join(offenders[:_SHOWN_OFFENDERS])
    more = len(offenders) - _SHOWN_OFFENDERS
    return shown + (f"; and {more} more" if more > 0 else "")


def _check_snapshot_source(plan: Plan, home: Home, snapshot_id: str) -> None:
    # Imported here: the snapshot reader pulls in pandas/pyarrow, which plans sourced from runs never need.
    from crmsweep.backup.snapshot import open_snapshot, verify_snapshot

    try:
        report = verify_snapshot(home, snapshot_id)
        if report.ok:
            reader = open_snapshot(home, snapshot_id)
    except BadInput as exc:
        raise SafetyRefusal(
            f"the plan's snapshot {snapshot_id} cannot be read ({exc}): back up and scan again"
        ) from None
    if not report.ok:
        raise SafetyRefusal(
            f"the plan's snapshot {snapshot_id} does not verify ({_offender_text(list(report.problems))}): "
            "back up and scan again"
        )
    if reader.manifest.org_id != plan.header.org_id:
        raise SafetyRefusal(
            f"snapshot {snapshot_id} is of org {reader.manifest.org_id} but the plan is for org {plan.header.org_id}: "
            "scan again"
        )
    by_object: dict[str, list[int]] = {}
    for index, change in enumerate(plan.changes):
        if change.before:
            by_object.setdefault(change.object, []).append(index)
    offenders: list[str] = []
    for obj, indexes in by_object.items():
        if not reader.has(obj):
            offenders.extend(f"{obj} {plan.changes[i].record_id}: {obj} is not in the snapshot" for i in indexes)
            continue
        held = reader.record_map(obj, [plan.changes[i].record_id for i in indexes])
        for i in indexes:
            change = plan.changes[i]
            problem = _before_image_problem(change.before, held.get(change.record_id))
            if problem:
                offenders.append(f"{obj} {change.record_id}: {problem}")
    if offenders:
        raise SafetyRefusal(
            f"{len(offenders)} before-image(s) of the plan are not those of snapshot {snapshot_id} "
            f"({_offender_text(offenders)}): scan again"
        )


def _before_image_problem(before: Mapping[str, Any], held: Mapping[str, Any] | None) -> str | None:
    # Every value the plan could write back must be the one the backup holds; extra snapshot columns are fine.
    if held is None:
        return "not in the snapshot"
    for name, value in before.items():
        if name not in held:
            return f"{name} is not in the snapshot"
        if not same_value(value, held[name]):
            return f"{name} is {value!r} in the plan but {held[name]!r} in the snapshot"
    return None


def _check_run_source(plan: Plan, home: Home, run_id: str) -> None:
    try:
        source = read_run(home, run_id)
    except BadInput as exc:
        raise SafetyRefusal(f"the plan undoes run {run_id}, whose log cannot be read ({exc})") from None
    held: dict[tuple[str, str], Record] = {}
    for outcome in source.outcomes:
        if outcome.outcome is Outcome.APPLIED and outcome.before is not None:
            original = source.plan.changes[outcome.index]
            held[(original.object, original.record_id)] = outcome.before
            if outcome.record_id:  # a create's new id
                held[(original.object, outcome.record_id)] = outcome.before
    offenders: list[str] = []
    for change in plan.changes:
        logged = held.get((change.object, change.record_id))
        if logged is None:
            offenders.append(f"{change.object} {change.record_id}: no applied change with a logged before-image")
            continue
        # What gets written back must come from the logged before-image.
        for name, value in change.after.items():
            if name not in logged or not same_value(value, logged[name]):
                offenders.append(f"{change.object} {change.record_id}: {name} differs from the logged before-image")
                break
    if offenders:
        raise SafetyRefusal(
            f"{len(offenders)} change(s) of the plan are not backed by the log of run {run_id} "
            f"({_offender_text(offenders)}): build the rollback plan again"
        )


# --- pure comparisons -------------------------------------------------------------------------------------


def _is_null(value: Any) -> bool:
    # Parquet-backed readers may hand back NaN where the CRM had no value.
    return value is None or (isinstance(value, float) and math.isnan(value))


def _as_datetime(text: str) -> str | None:
    if len(text) < 19 or text[10] != "T":
        return None
    try:
        return canonical_datetime(text)
    except ValueError:
        return None


def same_value(a: Any, b: Any) -> bool:
    """Equal in canonical form: nulls, numbers across int/float, datetimes across spellings."""
    if _is_null(a) or _is_null(b):
        return _is_null(a) and _is_null(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return float(a) == float(b)
    if isinstance(a, str) and isinstance(b, str):
        if a == b:
            return True
        da, db = _as_datetime(a), _as_datetime(b)
        return da is not None and da == db
    return bool(a == b)


def _same_fingerprint(expected: str, live: Any) -> bool:
    return isinstance(live, str) and same_value(expected, live)


def _is_deleted(live: Mapping[str, Any], vocabulary: Vocabulary) -> bool:
    return bool(vocabulary.deleted_field and live.get(vocabulary.deleted_field))


ALREADY_IN_PLACE = "already in place (an earlier attempt of the same call had landed)"


def drift_verdict(change: Change, live: Mapping[str, Any] | None, vocabulary: Vocabulary) -> tuple[str, str] | None:
    """Why `change` must be skipped given the live record (None if absent), or None if it may be written."""
    if change.op is Op.CREATE:
        return None
    if change.op is Op.UNDELETE:
        if live is None:
            return SKIP_MISSING, "it is neither in the CRM nor in its recycle bin (emptied or purged?)"
        if not _is_deleted(live, vocabulary):
            return SKIP_NOT_IN_BIN, "it is live, not in the recycle bin (restored since?)"
    else:
        if live is None:
            return SKIP_MISSING, "it is no longer in the CRM"
        if _is_deleted(live, vocabulary):
            if change.op in _DELETE_OPS:
                return SKIP_ALREADY_DELETED, "it is in the recycle bin already"
            return SKIP_MISSING, "it was deleted since the scan (it is in the recycle bin)"
    if not change.fingerprint:
        # Without the fingerprint the record had when planned (e.g. the read-back after an apply
        # failed), an edit made since cannot be told apart: skip rather than risk overwriting it.
        return SKIP_DRIFT, f"no {vocabulary.fingerprint_field} was recorded to check it against"
    now = live.get(vocabulary.fingerprint_field)
    if not _same_fingerprint(change.fingerprint, now):
        return (
            SKIP_DRIFT,
            f"changed since the scan: {vocabulary.fingerprint_field} was {change.fingerprint}, now {now}",
        )
    return None


def shows_applied(change: Change, live: Mapping[str, Any] | None, vocabulary: Vocabulary) -> bool:
    """Whether the live record already shows `change` written (reconciling a write of unknown outcome)."""
    if change.op in _DELETE_OPS:
        if live is None:
            return vocabulary.deleted_field is None  # without a recycle bin, gone means deleted
        return _is_deleted(live, vocabulary)
    if live is None or _is_deleted(live, vocabulary):
        return False
    if change.op is Op.UNDELETE:
        return True
    if change.op in _UPDATE_OPS:
        return all(name in live and same_value(value, live[name]) for name, value in change.after.items())
    return False


# --- the engine ------------------------------------------------------------------------------------------------


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


def _stop_reason(exc: ConnectorError) -> str:
    """Why the run stopped, in the CRM's words; the caller adds how to resume (it knows the plan's path)."""
    if isinstance(exc, LimitExceeded):
        return f"the org's API allowance is spent: {exc}"
    if isinstance(exc, AuthError):
        return f"the CRM refused the credentials: {exc}"
    if isinstance(exc, RetriableError):
        return f"the CRM kept failing after retries: {exc}"
    return f"the CRM refused to go on: {exc}"


class _Engine:
    def __init__(
        self,
        plan: Plan,
        connector: Connector,
        handle: RunHandle,
        outcomes: list[ChangeOutcome],
        *,
        batch_size: int,
        last_batch: int,
        progress: Callable[[ApplyProgress], None] | None,
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

    # -- driving --

    def run(self, *, resuming: bool) -> None:
        if resuming:
            self.handle.append({"t": "resume"})
        try:
            redo = self._reconcile([o.index for o in self.outcomes if o.outcome is Outcome.PENDING])
            work = sorted(set(redo) | {o.index for o in self.outcomes if o.outcome is Outcome.NOT_STARTED})
            for batch in self._batches(work):
                self._apply_batch(batch)
                self._report_progress()
        except ConnectorError as exc:
            self.stopped = _stop_reason(exc)
            self.handle.append({"t": "stop", "reason": self.stopped, "error": type(exc).__name__})
            self._report_progress()
            return
        self.handle.append(
            {
                "t": "end",
                "applied": self._count(Outcome.APPLIED),
                "skipped": self._count(Outcome.SKIPPED),
                "failed": self._count(Outcome.FAILED),
            }
        )

    def _batches(self, work: Sequence[int]) -> Iterator[list[int]]:
        """Consecutive changes with the same (op, object), each record at most once per call."""
        batch: list[int] = []
        ids: set[str] = set()
        for index in work:
            change = self.plan.changes[index]
            if batch:
                head = self.plan.changes[batch[0]]
                if (
                    (head.op, head.object) != (change.op, change.object)
                    or len(batch) >= self.batch_size
                    or change.record_id in ids
                ):
                    yield batch
                    batch, ids = [], set()
            batch.append(index)
            ids.add(change.record_id)
        if batch:
            yield batch

    # -- one batch --

    def _check_fields(self, object_name: str, extra: Sequence[str] = ()) -> list[str]:
        names = [self.vocabulary.id_field, self.vocabulary.fingerprint_field]
        # Not every object has a recycle bin (Salesforce User has no IsDeleted): ask only where it exists.
        deleted = self.vocabulary.deleted_field
        if deleted and object_name not in self._field_names:
            self._field_names[object_name] = {f.name for f in self.connector.fields(object_name)}
        if deleted and deleted in self._field_names[object_name]:
            names.append(deleted)
        return names + [n for n in extra if n not in names]

    def _apply_batch(self, batch: list[int]) -> None:
        head = self.plan.changes[batch[0]]
        keep = batch
        if head.op is not Op.CREATE:
            ids = [self.plan.changes[i].record_id for i in batch]
            live = self.connector.read(head.object, ids, self._check_fields(head.object), include_deleted=True)
            keep = []
            for i in batch:
                change = self.plan.changes[i]
                verdict = drift_verdict(change, live.get(change.record_id), self.vocabulary)
                if verdict is None:
                    keep.append(i)
                else:
                    self._skip(i, *verdict)
        if not keep:
            return
        self.batch_no += 1
        batch_no = self.batch_no
        self.handle.append(
            {
                "t": "intent",
                "batch": batch_no,
                "op": head.op.value,
                "object": head.object,
                "changes": keep,
                "records": [
                    {"i": i, "id": self.plan.changes[i].record_id, "before": self.plan.changes[i].before} for i in keep
                ],
            }
        )
        for i in keep:
            self.outcomes[i].outcome = Outcome.PENDING
            self.outcomes[i].before = self.plan.changes[i].before
            self.outcomes[i].intent_batch = batch_no
        results = self._send(head.op, head.object, [self.plan.changes[i] for i in keep])
        if len(results) != len(keep):
            # Which record got which outcome is unknowable: leave them pending for resume to reconcile.
            raise ConnectorError(
                f"the CRM answered {len(results)} results for {len(keep)} records of a {head.op} of {head.object}"
            )
        results = list(results)
        # A record the CRM reports as failed may still carry the change: a retried call whose first
        # attempt had landed answers ENTITY_IS_DELETED. Re-read those with the written ones and trust
        # the live state, so a write that happened is never logged as failed (rollback would skip it).
        recheck = [k for k, r in enumerate(results) if not r.ok and head.op is not Op.CREATE]
        written = {
            i: (r.id if head.op is Op.CREATE else self.plan.changes[i].record_id)
            for i, r in zip(keep, results, strict=True)
            if r.ok and (r.id or head.op is not Op.CREATE)
        }
        read_ids = [str(v) for v in written.values()] + [self.plan.changes[keep[k]].record_id for k in recheck]
        extra = sorted({name for k in recheck for name in self.plan.changes[keep[k]].after})
        fingerprints: dict[str, Any] = {}
        readback_error: ConnectorError | None = None
        if read_ids:
            try:
                after = self.connector.read(
                    head.object, read_ids, self._check_fields(head.object, extra), include_deleted=True
                )
                fingerprints = {rid: rec.get(self.vocabulary.fingerprint_field) for rid, rec in after.items()}
                for k in recheck:
                    change = self.plan.changes[keep[k]]
                    if shows_applied(change, after.get(change.record_id), self.vocabulary):
                        results[k] = WriteResult(change.record_id, True, message=ALREADY_IN_PLACE)
            except ConnectorError as exc:
                # The writes happened: log their results anyway, then stop.
                readback_error = exc
        self._log_results(batch_no, keep, results, fingerprints)
        if readback_error is not None:
            raise readback_error

    def _send(self, op: Op, obj: str, changes: Sequence[Change]) -> list[WriteResult]:
        id_field = self.vocabulary.id_field
        if op in _DELETE_OPS:
            return self.connector.delete(obj, [c.record_id for c in changes])
        if op is Op.UNDELETE:
            return self.connector.undelete(obj, [c.record_id for c in changes])
        if op in _UPDATE_OPS:
            return self.connector.update(obj, [{id_field: c.record_id, **c.after} for c in changes])
        if op is Op.CREATE:
            # The CRM assigns ids, deleted flags and audit stamps itself and refuses them on input.
            system = {id_field, self.vocabulary.deleted_field, *self.vocabulary.audit_fields}
            return self.connector.create(obj, [{k: v for k, v in c.after.items() if k not in system} for c in changes])
        raise ValueError(f"apply does not know how to {op}")

    def _log_results(
        self, batch_no: int, indexes: Sequence[int], results: Sequence[WriteResult], fingerprints: Mapping[str, Any]
    ) -> None:
        rows: list[dict[str, Any]] = []
        for i, result in zip(indexes, results, strict=True):
            change = self.plan.changes[i]
            record_id = (result.id if change.op is Op.CREATE else change.record_id) or change.record_id
            fp = fingerprints.get(record_id) if result.ok else None
            rows.append(
                {
                    "i": i,
                    "id": record_id,
                    "ok": result.ok,
                    "error_code": result.error_code,
                    "message": result.message,
                    "fingerprint_after": fp,
                }
            )
        self.handle.append({"t": "result", "batch": batch_no, "results": rows})
        for row in rows:
            out = self.outcomes[row["i"]]
            out.outcome = Outcome.APPLIED if row["ok"] else Outcome.FAILED
            out.record_id = row["id"]
            out.fingerprint_after = row["fingerprint_after"]
            out.error_code = row["error_code"]
            out.message = row["message"]

    def _skip(self, index: int, reason: str, detail: str) -> None:
        change = self.plan.changes[index]
        self.handle.append({"t": "skip", "i": index, "id": change.record_id, "reason": reason, "detail": detail})
        out = self.outcomes[index]
        out.outcome, out.reason, out.detail = Outcome.SKIPPED, reason, detail

    # -- resume --

    def _reconcile(self, pending: Sequence[int]) -> list[int]:
        """Settle writes whose outcome was never logged; returns the changes to write again."""
        by_batch: dict[int, list[int]] = {}
        for i in pending:
            by_batch.setdefault(self.outcomes[i].intent_batch or 0, []).append(i)
        redo: list[int] = []
        for batch_no, indexes in by_batch.items():
            head = self.plan.changes[indexes[0]]
            rows: list[dict[str, Any]] = []
            if head.op is Op.CREATE:
                # A create leaves no id to look for: writing again could duplicate the record.
                for i in indexes:
                    rows.append(self._unknown_create_row(i))
            else:
                objects = {self.plan.changes[i].object for i in indexes}
                extra = sorted({k for i in indexes for k in self.plan.changes[i].after})
                for obj in sorted(objects):
                    ids = [self.plan.changes[i].record_id for i in indexes if self.plan.changes[i].object == obj]
                    live = self.connector.read(obj, ids, self._check_fields(obj, extra), include_deleted=True)
                    for i in indexes:
                        change = self.plan.changes[i]
                        if change.object != obj:
                            continue
                        record = live.get(change.record_id)
                        if shows_applied(change, record, self.vocabulary):
                            fp = record.get(self.vocabulary.fingerprint_field) if record else None
                            rows.append(self._row(i, change.record_id, True, fingerprint_after=fp))
                        else:
                            redo.append(i)
            if rows:
                self.handle.append({"t": "result", "batch": batch_no, "reconciled": True, "results": rows})
                for row in rows:
                    out = self.outcomes[row["i"]]
                    out.outcome = Outcome.APPLIED if row["ok"] else Outcome.FAILED
                    out.fingerprint_after = row["fingerprint_after"]
                    out.error_code, out.message = row["error_code"], row["message"]
        return redo

    def _unknown_create_row(self, index: int) -> dict[str, Any]:
        change = self.plan.changes[index]
        return self._row(
            index,
            change.record_id,
            False,
            error_code=UNKNOWN_OUTCOME,
            message=(
                f"the run was interrupted while creating this {change.object}; it may or may not exist now: "
                "look for it in the CRM before creating it again"
            ),
        )

    @staticmethod
    def _row(
        index: int,
        record_id: str,
        ok: bool,
        *,
        fingerprint_after: Any = None,
        error_code: str | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        return {
            "i": index,
            "id": record_id,
            "ok": ok,
            "error_code": error_code,
            "message": message,
            "fingerprint_after": fingerprint_after,
        }

    # -- reporting --

    def _count(self, outcome: Outcome) -> int:
        return sum(1 for o in self.outcomes if o.outcome is outcome)

    def api_calls(self) -> int:
        return self.connector.api_usage().calls - self.calls_at_start

    def _report_progress(self) -> None:
        if self.progress is None:
            return
        self.progress(
            ApplyProgress(
                done=sum(1 for o in self.outcomes if o.done),
                total=len(self.outcomes),
                applied=self._count(Outcome.APPLIED),
                skipped=self._count(Outcome.SKIPPED),
                failed=self._count(Outcome.FAILED),
                api_calls=self.api_calls(),
            )
        )


def _report(plan: Plan, run_id: str, outcomes: Sequence[ChangeOutcome], stopped: str | None, calls: int) -> ApplyReport:
    skipped_items, failed_items = [], []
    for out in outcomes:
        change = plan.changes[out.index]
        item = {"i": out.index, "op": change.op.value, "object": change.object, "id": out.record_id or change.record_id}
        if out.outcome is Outcome.SKIPPED:
            skipped_items.append({**item, "reason": out.reason, "detail": out.detail})
        elif out.outcome is Outcome.FAILED:
            failed_items.append({**item, "error_code": out.error_code, "message": out.message})
    return ApplyReport(
        run_id=run_id,
        plan_id=plan.header.plan_id,
        total=len(outcomes),
        applied=sum(1 for o in outcomes if o.outcome is Outcome.APPLIED),
        skipped=len(skipped_items),
        failed=len(failed_items),
        stopped=stopped,
        remaining=sum(1 for o in outcomes if not o.done),
        api_calls=calls,
        skipped_items=skipped_items,
        failed_items=failed_items,
    )


def apply_plan(
    plan: Plan,
    plan_text: str,
    connector: Connector,
    home: Home,
    *,
    progress: Callable[[ApplyProgress], None] | None = None,
    batch_size: int | None = None,
    resume_run: str | None = None,
) -> ApplyReport:
    """Apply `plan` (whose file text is `plan_text`) as a new run, or finish run `resume_run`.

    Counts in the report cover the whole run (earlier sessions included); `api_calls` this session.
    Stops cleanly (report.stopped) on API limits, exhausted retries, auth and other CRM errors.
    """
    _check_plan_text(plan, plan_text)
    check_plan(plan, connector, home)
    limit = connector.capabilities.max_batch_write
    if batch_size is not None and batch_size < 1:
        raise BadInput(f"batch size must be at least 1, not {batch_size}")
    size = min(batch_size or limit, limit)

    if resume_run is None:
        kind = KIND_ROLLBACK if plan.header.rollback_of else KIND_APPLY
        handle = create_run(home, plan, plan_text, kind=kind, rollback_of=plan.header.rollback_of)
        with handle.lock():
            engine = _Engine(
                plan,
                connector,
                handle,
                [ChangeOutcome(index=i, record_id=c.record_id) for i, c in enumerate(plan.changes)],
                batch_size=size,
                last_batch=0,
                progress=progress,
            )
            engine.run(resuming=False)
        return _report(plan, handle.run_id, engine.outcomes, engine.stopped, engine.api_calls())

    handle = open_run(home, resume_run)
    with handle.lock():
        # Read under the lock: the log is settled only once no other apply can append to it.
        state = read_run(home, resume_run)
        if state.plan.digest != plan.digest:
            raise SafetyRefusal(
                f"run {resume_run} applied plan {state.plan.header.plan_id}, not this plan (digest differs): "
                "resume it with its own plan"
            )
        if state.status == STATUS_ROLLED_BACK:
            raise SafetyRefusal(
                f"run {resume_run} was rolled back by run {state.rolled_back_by}: resuming it would redo its changes"
            )
        engine = _Engine(
            plan, connector, handle, state.outcomes, batch_size=size, last_batch=state.last_batch, progress=progress
        )
        if state.status not in (STATUS_DONE, STATUS_DONE_WITH_FAILURES):
            engine.run(resuming=True)
    return _report(plan, handle.run_id, engine.outcomes, engine.stopped, engine.api_calls())
