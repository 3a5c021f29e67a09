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
from crmsweep.backup.runlog import STATUS_DONE, Outcome, open_run, read_run
from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import Change, NotReversible, Op, Plan, PlanHeader, canonical_datetime
from crmsweep.paths import Home


def new_plan_id(now: datetime) -> str:
    return f"plan-{now.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def build_rollback_plan(home: Home, run_id: str, *, now: datetime, force: bool = False) -> Plan:
    """The inverse of every change run `run_id` applied (result ok), last applied first."""
    state = read_run(home, run_id)
    if state.rolled_back_by and not force:
        raise SafetyRefusal(
            f"run {run_id} was already rolled back by run {state.rolled_back_by}: "
            "rolling it back again would redo its changes (use --force if that is what you want)"
        )
    pending = state.count(Outcome.PENDING)
    if pending:
        # Their writes may have landed: a rollback without them would leave them in place for good,
        # and mark the run rolled back so that nothing would ever settle them.
        plan_file = open_run(home, run_id).plan_path
        raise SafetyRefusal(
            f"run {run_id} was interrupted with {pending} write(s) of unknown outcome: settle them first with "
            f"`crmsweep apply {plan_file} --resume {run_id}`, then roll it back"
        )
    if not state.applied_order:
        raise BadInput(f"run {run_id} applied no changes: nothing to roll back")
    original = state.plan
    changes: list[Change] = []
    for index in reversed(state.applied_order):
        outcome = state.outcomes[index]
        change = original.changes[index]
        new_id = outcome.record_id if change.op is Op.CREATE else None
        try:
            changes.append(change.inverse(fingerprint=outcome.fingerprint_after, new_id=new_id))
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
    if rollback.rollback_of != run_id:
        raise BadInput(f"run {by_run} is not a rollback of run {run_id}")
    if rollback.status != STATUS_DONE:
        raise SafetyRefusal(
            f"rollback run {by_run} is {rollback.status}, not done: finish it before marking run {run_id} rolled back"
        )
    read_run(home, run_id)  # refuses an unknown or damaged run before anything is appended
    open_run(home, run_id).append({"t": "rolled_back", "by": by_run})
