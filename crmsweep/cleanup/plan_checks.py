"""Plan checks: what must hold before apply writes anything to a CRM.

A plan file is loaded only if its digest matches its content; a plan is applied only to the org it was
made for, and only if its before-images are held in a verified snapshot or in the log of the run it
undoes (safety rule 2). Kept apart from the engine because these checks only read (the plan file, a
snapshot, a run log, the org id) and callers run them on their own, before any run is started.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from crmsweep.backup.runlog import Outcome, read_run
from crmsweep.cleanup.drift import same_value
from crmsweep.connectors.base import Connector
from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import NotReversible, Plan, PlanFormatError, Record
from crmsweep.paths import Home

# How many offending records a refusal names before it says "and N more".
_SHOWN_OFFENDERS = 3


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


def check_plan_text(plan: Plan, plan_text: str) -> None:
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
