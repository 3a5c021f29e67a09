"""Rollback: the plan that undoes an apply run, built from that run's log alone.

Each applied change is inverted with `Change.inverse`, expecting the fingerprint the run read back
after its write (so a record someone edited since is skipped as drift, not overwritten), in reverse
order of application. Inverses keep identity: a delete is undone by a recycle-bin undelete, a
deactivation by a reactivation. The plan then goes through the same preview and apply as any other.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from crmsweep import __version__
from crmsweep.backup.runlog import (
    STATUS_DONE,
    STATUS_STOPPED,
    STATUS_UNFINISHED,
    ChangeOutcome,
    Outcome,
    RunState,
    open_run,
    read_run,
)
from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import Change, NotReversible, Op, Plan, PlanHeader, canonical_datetime
from crmsweep.paths import Home


def new_plan_id(now: datetime) -> str:
    return f"plan-{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def undo_of(change: Change, outcome: ChangeOutcome) -> Change:
    """The change that undoes `change`, applied with `outcome`: what a rollback plan holds for it.

    It expects the fingerprint the run read back after its write, and a create's new id.
    """
    new_id = outcome.record_id if change.op is Op.CREATE else None
    return change.inverse(fingerprint=outcome.fingerprint_after, new_id=new_id)


def applied_undos(state: RunState) -> dict[tuple[str, str], Change]:
    """The undo of every reversible change run `state` applied, by (object, record id) it writes."""
    undos: dict[tuple[str, str], Change] = {}
    for index in state.applied_order:
        try:
            undo = undo_of(state.plan.changes[index], state.outcomes[index])
        except NotReversible:
            continue
        undos[(undo.object, undo.record_id)] = undo
    return undos


def refuse_rollback_of(home: Home, state: RunState, *, applying: Plan | None = None, force: bool = False) -> None:
    """Refuse to undo run `state` when a rollback cannot be right: it was rolled back already, or some of
    its writes have an unknown outcome. Run when a rollback plan is built, accepted and applied.

    `applying` is the rollback plan about to be applied: if a run of that very plan is what rolled the
    run back, it is not refused here (apply reports it as already applied).
    """
    run_id = state.run_id
    if state.rolled_back_by and not force:
        by = read_run(home, state.rolled_back_by)
        if applying is None or by.plan.digest != applying.digest:
            raise SafetyRefusal(
                f"run {run_id} was already rolled back by run {state.rolled_back_by}: nothing is left to undo "
                "(see `crmsweep runs list`)"
            )
    pending = state.count(Outcome.PENDING)
    if pending:
        # Their writes may have landed: a rollback without them would leave them in place for good,
        # and mark the run rolled back so that nothing would ever settle them.
        raise SafetyRefusal(
            f"run {run_id} was interrupted with {pending} write(s) of unknown outcome: before rolling it back, "
            f"settle them from the live records (`crmsweep rollback {run_id}` does, writing nothing new)"
        )


def build_rollback_plan(home: Home, run_id: str, *, now: datetime, force: bool = False) -> Plan:
    """The inverse of every change run `run_id` applied (result ok), last applied first."""
    return rollback_plan_of(home, read_run(home, run_id), now=now, force=force)


def rollback_plan_of(home: Home, state: RunState, *, now: datetime, force: bool = False) -> Plan:
    """`build_rollback_plan` of a run as read (or as settled in memory, for a dry run)."""
    run_id = state.run_id
    refuse_rollback_of(home, state, force=force)
    if not state.applied_order:
        raise BadInput(f"run {run_id} applied no changes: nothing to roll back")
    original = state.plan
    changes: list[Change] = []
    for index in reversed(state.applied_order):
        try:
            changes.append(undo_of(original.changes[index], state.outcomes[index]))
        except NotReversible as exc:
            raise SafetyRefusal(f"run {run_id} cannot be rolled back: {exc}") from None
    notes = [
        f"rollback of run {run_id}: {len(changes)} changes; ids are kept (recycle-bin undelete, reactivation)",
    ]
    header = PlanHeader(
        plan_id=new_plan_id(now),
        created=canonical_datetime(now) or "",
        tool_version=__version__,
        provider=original.header.provider,
        org_id=original.header.org_id,
        connection=original.header.connection,
        source={"kind": "run", "id": run_id},
        config_digest=original.header.config_digest,
        passes=original.header.passes,
        notes=tuple(notes),
        rollback_of=run_id,
    )
    return Plan.build(header, changes)


def mark_rolled_back(home: Home, run_id: str, by_run: str) -> None:
    """Record on run `run_id` that rollback run `by_run` undid it (only once that run is done, without failures)."""
    rollback = read_run(home, by_run)
    if rollback.rollback_of != run_id or dict(rollback.plan.header.source) != {"kind": "run", "id": run_id}:
        raise BadInput(f"run {by_run} is not a rollback of run {run_id}")
    if rollback.status != STATUS_DONE:
        raise SafetyRefusal(
            f"rollback run {by_run} is {rollback.status}, not done: finish it before marking run {run_id} rolled back"
        )
    missing = not_undone(home, run_id, by_run)
    if missing:
        raise SafetyRefusal(
            f"the rollbacks of run {run_id} did not undo {len(missing)} change(s) it applied "
            f"(e.g. {missing[0]}): roll the run back again to cover them"
        )
    open_run(home, run_id).append({"t": "rolled_back", "by": by_run})


def not_undone(home: Home, run_id: str, by_run: str) -> list[str]:
    """The records run `run_id` changed that neither rollback run `by_run` nor any other rollback of
    it put back ("Object id" each).

    A rollback plan is built from the run as it stood then: if the run was resumed afterwards, or the
    plan was trimmed, or records were skipped as drift, it covers less than the run did, and the run
    must not be marked undone. Several rollbacks may share the work (a second one skips what the first
    put back), so what they undid is counted together, whatever each ended as: a rollback that ended with
    failures still put back what it logged as applied. The rollbacks are those the run's log names.
    """
    original = read_run(home, run_id)
    undone: set[tuple[str, str]] = set()
    for rollback_id in dict.fromkeys([*original.rollbacks, by_run]):
        rollback = read_run(home, rollback_id)
        if rollback.rollback_of != run_id:
            continue
        undone |= {
            (rollback.plan.changes[i].object, rollback.plan.changes[i].record_id) for i in rollback.applied_order
        }
    missing = []
    for i in original.applied_order:
        change = original.plan.changes[i]
        record_id = original.outcomes[i].record_id if change.op is Op.CREATE else change.record_id
        if (change.object, record_id) not in undone:
            missing.append(f"{change.object} {record_id}")
    return missing


def unfinished_rollback(home: Home, run_id: str) -> RunState | None:
    """The latest rollback of run `run_id` if it was interrupted or stopped (to resume, not start anew)."""
    original = read_run(home, run_id)
    if not original.rollbacks:
        return None
    latest = read_run(home, original.rollbacks[-1])
    return latest if latest.status in (STATUS_STOPPED, STATUS_UNFINISHED) else None
