"""Plan checks: what must hold before apply writes anything to a CRM.

A plan file is loaded only if its digest matches its content and this crmsweep home signed it (see
plan_auth); a plan is applied only to the org it was made for, only if every change is one its source
could have produced (see provenance), and only if its before-images are whole rows of a verified
snapshot or come from the log of the run it undoes (safety rule 2). Kept apart from the engine
because these checks only read (the plan file, a snapshot, a run log, the org id) and callers run
them on their own, before any run is started.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from crmsweep.backup.field_restore import undo_key
from crmsweep.backup.recreate import recreated_keys
from crmsweep.backup.rollback import (
    put_back_by_rollbacks,
    refuse_rollback_of,
    rollback_changes,
    snapshot_field_specs,
)
from crmsweep.backup.runlog import read_run
from crmsweep.cleanup.labels import has_control, one_line
from crmsweep.cleanup.plan_auth import require_signed
from crmsweep.cleanup.provenance import inverse_problems, scan_plan_problems, snapshot_row_problem
from crmsweep.cleanup.rescan import rescan_problems
from crmsweep.cleanup.scan import check_caps
from crmsweep.connectors.base import Connector
from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import NotReversible, Op, Plan, PlanFile, PlanFormatError, Vocabulary
from crmsweep.paths import Home

# How many offending records a refusal names before it says "and N more".
_SHOWN_OFFENDERS = 3


def read_plan_file(path: Path) -> tuple[PlanFile, str]:
    """The plan file in `path`, parsed and its changes validated, and its text; its claims NOT checked."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or /dev/zero would hang or fill memory
            raise BadInput(f"plan file {path} is not a regular file")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"plan file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise BadInput(f"cannot read plan file {path}: {reason}") from None
    try:
        parsed = PlanFile.parse(text)
        for change in parsed.plan.changes:
            change.validate()
    except (PlanFormatError, NotReversible) as exc:
        raise BadInput(f"plan file {path} is not a valid plan: {exc}") from None
    return parsed, text


def load_plan(path: Path, home: Home) -> tuple[Plan, str]:
    """The plan in `path` and the file's text, refused unless its digest matches its content and
    `home` signed it."""
    parsed, text = read_plan_file(path)
    require_signed(parsed, home, name=path)
    return parsed.plan, text


def check_plan_text(plan: Plan, plan_text: str, home: Home) -> None:
    """The text kept in the run folder must be the very plan being applied, signed by `home`."""
    try:
        parsed = PlanFile.parse(plan_text)
    except PlanFormatError as exc:
        raise SafetyRefusal(f"the plan text to apply is not a valid plan ({exc}): load the plan file again") from None
    if parsed.plan.digest != plan.digest:
        raise SafetyRefusal(
            f"plan {plan.header.plan_id} was changed after it was written (digest mismatch): scan again"
        )
    require_signed(parsed, home, name=plan.header.plan_id)


@dataclass(frozen=True)
class Caps:
    """The [safety] caps in force: a plan from a scan holds no more changes than these."""

    max_changes: int | None = None
    max_changes_per_object: int | None = None


@dataclass(frozen=True)
class HomeRules:
    """What this home protects ([protect] of its config), for the re-scan of a plan being accepted."""

    recent_days: int
    objects: tuple[str, ...]
    ids: tuple[str, ...]


def refuse_other_org(plan: Plan, connector: Connector) -> None:
    live_org = connector.org_id()
    if plan.header.org_id != live_org:
        raise BadInput(f"plan is for org {plan.header.org_id} but connection '{connector.connection_name}' is org "
                       f"{live_org}: " + other_org_step(plan.header.connection, connector.connection_name,
                                                         plan.header.org_id, made="made",
                                                         use="apply it with that one (without -c)",
                                                         again=f"scan again with '{{}}' for a plan of org {live_org}"))


def other_org_step(made_with: str, connection: str, org_id: str, *, made: str, use: str, again: str) -> str:
    """What to do with a plan or snapshot `made` with connection `made_with` for org `org_id`, which `connection`
    does not reach: `use` it with the connection it was made with, or start `again` (`{}`: the connection).
    When its connection is this one, that connection was pointed at another org since."""
    made_with = one_line(made_with)
    if made_with == connection:
        return (f"'{connection}' reached org {org_id} when it was {made}; point it back there, or "
                f"{again.format(connection)}")
    return f"it was {made} with connection '{made_with}'; {use}, or {again.format(connection)}"


def check_plan(plan: Plan, connector: Connector, home: Home, *, caps: Caps | None = None) -> None:
    """Refuse a plan made for another org, or whose before-images are not safely held (rule 2), or a
    plan from a scan over `caps` that was not allowed over them by the scan of this home that made it."""
    header = plan.header
    if header.provider != connector.provider:
        raise BadInput(
            f"plan is for a {header.provider} org but connection '{connector.connection_name}' is "
            f"{connector.provider}: apply it with its own connection ('{one_line(header.connection)}', what it uses "
            "without -c) or another of that org"
        )
    refuse_other_org(plan, connector)
    check_provenance(plan, home, connector.vocabulary)
    if header.source.get("kind") == "run":
        _check_nothing_undone_twice(plan, home, connector.vocabulary)
        _check_recreates_are_needed(plan, connector, home)
    if caps is not None and header.source.get("kind") == "snapshot" and not header.over_cap_allowed:
        _check_caps(plan, caps)


def _check_nothing_undone_twice(plan: Plan, home: Home, vocabulary: Vocabulary) -> None:
    """Refuse a rollback plan that undoes again what another rollback of the run put back since it was
    written (`rollback RUN -o FILE`, then `rollback RUN`, then `apply FILE`): a re-create would be a second
    copy, a value restore would overwrite what its owner wrote since."""
    run_id = plan.header.source.get("id", "")
    put_back = put_back_by_rollbacks(home, read_run(home, run_id), vocabulary, besides=plan)
    again = [c for c in plan.changes if (undo_key(c)[0], vocabulary.id_key(c.record_id)) in put_back]
    if again:
        first = again[0]
        by = put_back[(undo_key(first)[0], vocabulary.id_key(first.record_id))]
        raise SafetyRefusal(
            f"plan {plan.header.plan_id} undoes again {len(again):,} change(s) of run {run_id} that rollback run "
            f"{by} put back since the plan was made (e.g. {first.op.value} {first.object} {first.record_id}): "
            f"build the rollback plan again (`crmsweep rollback {run_id}` undoes only what is left)"
        )


def _check_recreates_are_needed(plan: Plan, connector: Connector, home: Home) -> None:
    """A rollback re-creates a deleted record only where the CRM cannot give it back with its id: one the
    recycle bin still holds must be undeleted, or the plan would leave a duplicate under a new id (and the
    original deleted for good once the run counts as rolled back)."""
    capabilities = connector.capabilities
    if not capabilities.supports_undelete and not capabilities.undeletable_objects:
        return
    # Only the re-creates of deletions: an archive (no recycle bin behind it) is undone by a create anyway.
    undone = read_run(home, plan.header.source.get("id", "")).plan.changes
    deleted = {(c.object, connector.vocabulary.id_key(c.record_id)) for c in undone
               if c.op is Op.DELETE and capabilities.undeletes(c.object)}
    by_object: dict[str, list[str]] = {}
    for change in plan.changes:
        if change.op is Op.CREATE and (change.object, connector.vocabulary.id_key(change.record_id)) in deleted:
            by_object.setdefault(change.object, []).append(change.record_id)
    for object_name, ids in by_object.items():
        held = connector.read(object_name, ids, [connector.vocabulary.id_field], include_deleted=True)
        if held:
            first = next(iter(held))
            raise SafetyRefusal(
                f"plan {plan.header.plan_id} re-creates {len(held)} {object_name} record(s) the CRM still holds "
                f"(e.g. {first}): undelete keeps their ids; build the rollback plan again"
            )


def _check_caps(plan: Plan, caps: Caps) -> None:
    # Rollback plans are not capped: they only undo what a run did, and refusing one would strand it.
    over = check_caps(plan.changes, max_changes=caps.max_changes, max_changes_per_object=caps.max_changes_per_object,
                      subject="the plan holds")
    if over:
        raise SafetyRefusal(
            f"{over[0]}: narrow the passes or raise the cap and scan again (a scan of this home with "
            "--allow-over-cap writes a plan allowed over them)"
        )


def _header_strings(plan: Plan) -> Iterator[tuple[str, str]]:
    """(field, text) for every string of a plan's header, keys included."""
    header = plan.header.to_dict()
    for name, value in header.items():
        yield from _strings(name, value)


def _strings(name: str, value: object) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield name, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield name, str(key)
            yield from _strings(f"{name}.{key}", item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(name, item)


def control_text(plan: Plan) -> str | None:
    """'notes: "..."' for the first header string holding a control character (escaped), None if none."""
    for name, text in _header_strings(plan):
        if has_control(text):
            return f"{one_line(name)}: {one_line(text)}"
    return None


def check_acceptable(plan: Plan, connector: Connector, home: Home, *, caps: Caps, rules: HomeRules) -> None:
    """Refuse a plan an admin is about to accept (sign) unless this home's own scan could have made it.

    Beyond every check apply makes: no over-cap allowance is taken from the file (an accepted plan must
    fit this home's caps), no header text holds control characters (they could hide lines of the
    preview the admin accepts), and a plan from a scan holds only changes a re-run of its passes over
    its snapshot proposes, with this home's protections and the user this connection runs as.
    """
    header = plan.header
    if text := control_text(plan):
        raise SafetyRefusal(
            f"plan {one_line(header.plan_id)} holds a control character in its header ({text}), which could hide "
            "lines of its preview: it was not written by crmsweep; scan again"
        )
    if header.over_cap_allowed:
        raise SafetyRefusal(
            f"plan {header.plan_id} says it was allowed over the [safety] caps; an accepted plan must fit "
            "this home's caps: raise them, or scan again here with --allow-over-cap"
        )
    check_plan(plan, connector, home, caps=caps)
    if header.source.get("kind") != "snapshot":
        return
    # Imported here, as in _check_snapshot_source: the snapshot reader pulls in pandas/pyarrow.
    from crmsweep.backup.snapshot import open_snapshot

    offenders = rescan_problems(
        plan,
        open_snapshot(home, header.source.get("id", "")),
        vocabulary=connector.vocabulary,
        protect_recent_days=rules.recent_days,
        protect_objects=rules.objects,
        protect_ids=rules.ids,
        running_user_id=connector.current_user_id(),
        now=datetime.now(UTC),
    )
    if offenders:
        raise SafetyRefusal(
            f"{len(offenders)} change(s) of plan {header.plan_id} are not ones its passes propose from its "
            f"snapshot with this home's protections ({_offender_text(offenders)}): scan again"
        )


def check_provenance(plan: Plan, home: Home, vocabulary: Vocabulary) -> None:
    """Refuse a plan holding a change its source could not have produced (see provenance)."""
    header = plan.header
    kind, source_id = header.source.get("kind"), header.source.get("id", "")
    if kind == "snapshot":
        offenders = scan_plan_problems(plan, vocabulary)
        if offenders:
            raise SafetyRefusal(
                f"{len(offenders)} change(s) of plan {header.plan_id} are not ones its passes propose "
                f"({_offender_text(offenders)}): scan again"
            )
        _check_snapshot_source(plan, home, source_id)
    elif kind == "run":
        _check_run_source(plan, home, source_id, vocabulary)
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
        by_object.setdefault(change.object, []).append(index)
    offenders: list[str] = []
    for obj, indexes in by_object.items():
        if not reader.has(obj):
            offenders.extend(f"{obj} {plan.changes[i].record_id}: {obj} is not in the snapshot" for i in indexes)
            continue
        held = reader.record_map(obj, [plan.changes[i].record_id for i in indexes])
        for i in indexes:
            change = plan.changes[i]
            problem = snapshot_row_problem(change.before, held.get(change.record_id))
            if problem:
                offenders.append(f"{obj} {change.record_id}: {problem}")
    if offenders:
        raise SafetyRefusal(
            f"{len(offenders)} before-image(s) of the plan are not those of snapshot {snapshot_id} "
            f"({_offender_text(offenders)}): scan again"
        )


def _check_run_source(plan: Plan, home: Home, run_id: str, vocabulary: Vocabulary) -> None:
    try:
        source = read_run(home, run_id)
    except BadInput as exc:
        raise SafetyRefusal(f"the plan undoes run {run_id}, whose log cannot be read ({exc})") from None
    refuse_rollback_of(home, source, applying=plan)
    if header_problem := _run_header_problem(plan, source.plan, run_id):
        raise SafetyRefusal(f"plan {plan.header.plan_id} {header_problem}: build the rollback plan again")
    # A re-create must be the one the rollback planner makes for an applied archive or delete: only
    # createable fields of the logged before-image, placeholders exactly for parents this plan re-creates.
    recreate = recreated_keys(plan.changes, vocabulary)
    if recreate and not snapshot_field_specs(home, source):
        raise SafetyRefusal(
            f"plan {plan.header.plan_id} re-creates records, but the snapshot run {run_id} came from, which says "
            "what a create may write, is gone: restore that snapshot folder, or undo the run by hand"
        )
    offenders = inverse_problems(plan, rollback_changes(home, source, vocabulary, recreate=recreate, strict=False))
    if offenders:
        raise SafetyRefusal(
            f"{len(offenders)} change(s) of the plan are not backed by the log of run {run_id} "
            f"({_offender_text(offenders)}): build the rollback plan again"
        )


def _run_header_problem(plan: Plan, undone: Plan, run_id: str) -> str | None:
    header = plan.header
    if header.rollback_of != run_id:
        return f"takes its before-images from run {run_id} but says it is the rollback of {header.rollback_of}"
    if (header.provider, header.org_id) != (undone.header.provider, undone.header.org_id):
        return f"is for org {header.org_id} but run {run_id} changed org {undone.header.org_id}"
    return None
