"""Re-scan: an accepted plan holds only changes this home's scan of its snapshot proposes.

Provenance checks the shape of each change (op, object, written values, whole-row before-images),
but a plan written by hand can still name a record no pass would propose (a contact that is not
stale, the user crmsweep runs as, a protected id) with a reason made up to match. So `plan accept`
runs the plan's passes again over its source snapshot, with the settings the header records, the
clock at the plan's `created`, this home's [protect] rules and the user the connection runs as, and
requires every change to be exactly one of those proposals. The scan is `scan_snapshot` itself:
there is one definition of what a pass proposes. Pure: the snapshot arrives as a view.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from crmsweep.cleanup.labels import change_name
from crmsweep.cleanup.passes import PASSES, validate_settings
from crmsweep.cleanup.scan import scan_snapshot
from crmsweep.cleanup.view import SnapshotView
from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import Change, Plan, Vocabulary, canonical_json

# In the order a mismatch is named: the first field of the change that is not the proposal's.
_COMPARED = ("op", "object", "record_id", "pass", "before", "after", "fingerprint", "label", "reason", "severity")


def plan_clock(plan: Plan, now: datetime) -> datetime:
    """The plan's `created` as the scan's clock; SafetyRefusal if unparsable or later than `now`."""
    created = plan.header.created
    try:
        parsed = datetime.fromisoformat(created[:-1] + "+00:00" if created.endswith("Z") else created)
    except ValueError:
        raise SafetyRefusal(
            f"plan {plan.header.plan_id} says it was created {created!r}, which is not a date and time: scan again"
        ) from None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if parsed > now:
        raise SafetyRefusal(
            f"plan {plan.header.plan_id} says it was created {created}, in the future: "
            "a scan cannot have made it; scan again"
        )
    return parsed


def recorded_settings(plan: Plan) -> dict[str, dict[str, Any]]:
    """The validated settings of each pass the header names; SafetyRefusal if any is missing or invalid."""
    header = plan.header
    unknown = [name for name in header.passes if name not in PASSES]
    if unknown:
        raise SafetyRefusal(f"plan {header.plan_id} names pass {unknown[0]!r}, which this crmsweep does not know")
    missing = [name for name in header.passes if name not in header.pass_settings]
    if missing or not header.passes:
        raise SafetyRefusal(
            f"plan {header.plan_id} does not record the settings its passes ran with "
            f"({'pass ' + missing[0] if missing else 'no passes named'}), so its changes cannot be checked "
            "against them: scan again"
        )
    settings: dict[str, dict[str, Any]] = {}
    for name in header.passes:
        try:
            settings[name] = validate_settings(name, header.pass_settings[name])
        except BadInput as exc:
            raise SafetyRefusal(f"plan {header.plan_id} records settings that do not validate ({exc}): scan again") \
                from None
    return settings


def _mismatch(change: Change, proposal: Change) -> str | None:
    actual, wanted = change.to_dict(), proposal.to_dict()
    for name in _COMPARED:
        if canonical_json(actual[name]) != canonical_json(wanted[name]):
            return f"its {name} is not the one the pass proposes"
    return None


def rescan_problems(
    plan: Plan,
    view: SnapshotView,
    *,
    vocabulary: Vocabulary,
    protect_recent_days: int,
    protect_objects: Sequence[str],
    protect_ids: Sequence[str],
    running_user_id: str | None,
    now: datetime,
) -> list[str]:
    """What in `plan` (sourced from the snapshot in `view`) its passes do not propose ("Object id: why" each).

    `now` is the real clock, only to refuse a plan dated in the future. Raises SafetyRefusal for a
    plan whose header cannot be re-run (settings, clock), or if a pass would refuse to run at all.
    """
    settings = recorded_settings(plan)
    clock = plan_clock(plan, now)
    try:
        result = scan_snapshot(
            view,
            vocabulary=vocabulary,
            passes=plan.header.passes,
            pass_settings=settings,
            protect_recent_days=protect_recent_days,
            protect_objects=protect_objects,
            protect_ids=protect_ids,
            # The caps are checked on the plan itself: a plan may hold fewer changes than the scan proposes.
            max_changes=None,
            max_changes_per_object=None,
            allow_over_cap=False,
            connection=plan.header.connection,
            config_digest=plan.header.config_digest,
            now=clock,
            running_user_id=running_user_id,
            running_user_unknown=running_user_id is None,
        )
    except BadInput as exc:
        raise SafetyRefusal(f"the passes of plan {plan.header.plan_id} cannot be run again on its snapshot ({exc})") \
            from None
    proposals = {(c.object, vocabulary.id_key(c.record_id)): c for c in result.plan.changes}
    offenders: list[str] = []
    for change in plan.changes:
        proposal = proposals.get((change.object, vocabulary.id_key(change.record_id)))
        if proposal is None:
            problem: str | None = (
                f"no pass of the plan proposes it from snapshot {view.manifest.snapshot_id} as of "
                f"{plan.header.created} (not a candidate, or protected here: [protect] or the user crmsweep runs as)"
            )
        else:
            problem = _mismatch(change, proposal)
        if problem:
            offenders.append(f"{change_name(change)}: {problem}")
    return offenders
