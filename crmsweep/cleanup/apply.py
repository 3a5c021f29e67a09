"""Apply: the engine, the only code in crmsweep that writes to a CRM.

A plan is applied exactly as reviewed: before anything is written it passes the checks of
`plan_checks` (digest, org, before-images held in a verified snapshot or in the log of the run it undoes,
safety rule 2). Each batch is drift-checked against the live fingerprints by the rules of `drift`
(rule 3), announced in the run log with its before-images and fsynced before the write is sent, then its
result is logged (rule 4). A stopped or killed run is resumed from its log: writes whose outcome is
unknown are reconciled against the live records, so nothing is written twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
from crmsweep.cleanup.drift import DELETE_OPS, UPDATE_OPS, drift_verdict, shows_applied
from crmsweep.cleanup.plan_checks import check_plan, check_plan_text
from crmsweep.connectors.base import Connector
from crmsweep.errors import (
    AuthError,
    BadInput,
    ConnectorError,
    LimitExceeded,
    RetriableError,
    SafetyRefusal,
)
from crmsweep.model import Change, Op, Plan, WriteResult
from crmsweep.paths import Home

UNKNOWN_OUTCOME = "OUTCOME_UNKNOWN"


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
        # A record the CRM reports as failed stays failed, even if it is already in the planned state:
        # the connector never resends a write whose outcome is unknown, so that state is someone
        # else's doing, and claiming it would make rollback undo their work.
        written = {
            i: (r.id if head.op is Op.CREATE else self.plan.changes[i].record_id)
            for i, r in zip(keep, results, strict=True)
            if r.ok and (r.id or head.op is not Op.CREATE)
        }
        fingerprints: dict[str, Any] = {}
        readback_error: ConnectorError | None = None
        if written:
            try:
                after = self.connector.read(
                    head.object,
                    [str(v) for v in written.values()],
                    self._check_fields(head.object),
                    include_deleted=True,
                )
                fingerprints = {rid: rec.get(self.vocabulary.fingerprint_field) for rid, rec in after.items()}
            except ConnectorError as exc:
                # The writes happened: log their results anyway, then stop.
                readback_error = exc
        self._log_results(batch_no, keep, results, fingerprints)
        if readback_error is not None:
            raise readback_error

    def _send(self, op: Op, obj: str, changes: Sequence[Change]) -> list[WriteResult]:
        id_field = self.vocabulary.id_field
        if op in DELETE_OPS:
            return self.connector.delete(obj, [c.record_id for c in changes])
        if op is Op.UNDELETE:
            return self.connector.undelete(obj, [c.record_id for c in changes])
        if op in UPDATE_OPS:
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
    check_plan_text(plan, plan_text, home)
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
