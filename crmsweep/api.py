"""The library surface: one function per command, for the CLI and for scripts.

Each function takes a `Workspace` (config + home) and plain arguments, does the work through the
backup/cleanup/connector modules, and returns data. Nothing here prints; progress goes through
callbacks. The CLI is a coat of paint over this module.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from crmsweep.backup.rollback import build_rollback_plan, mark_rolled_back, not_undone, unfinished_rollback
from crmsweep.backup.runlog import RunSummary, list_runs, open_run, plan_lock
from crmsweep.backup.snapshot import (
    SnapshotReader,
    VerifyReport,
    list_snapshots,
    open_snapshot,
    take_snapshot,
    verify_snapshot,
)
from crmsweep.cleanup.apply import (
    FINISHED,
    ApplyProgress,
    ApplyReport,
    apply_plan,
    earlier_run,
    refuse_second_run,
)
from crmsweep.cleanup.live_check import ApplyTimeRules
from crmsweep.cleanup.plan_checks import check_plan, load_plan
from crmsweep.cleanup.scan import ScanResult, scan_snapshot
from crmsweep.config import Config, load_config, resolve_connection
from crmsweep.connectors import open_connector
from crmsweep.connectors.base import Connector
from crmsweep.errors import BadInput
from crmsweep.model import Plan, SnapshotManifest
from crmsweep.paths import Home, default_home, replace_private_file

BackupProgress = Callable[[str, int, bool], None]


@dataclass(frozen=True)
class Workspace:
    """What every command needs: the effective config and the home folder."""

    config: Config
    home: Home

    @classmethod
    def load(cls, config_path: Path | None = None, home: Path | None = None) -> Workspace:
        """`None` means: the environment (CRMSWEEP_CONFIG, CRMSWEEP_HOME), else the defaults."""
        if config_path is None and os.environ.get("CRMSWEEP_CONFIG"):
            config_path = Path(os.environ["CRMSWEEP_CONFIG"])
        if home is None and os.environ.get("CRMSWEEP_HOME"):
            home = Path(os.environ["CRMSWEEP_HOME"])
        return cls(config=load_config(config_path), home=Home(home) if home is not None else default_home())


@contextlib.contextmanager
def connect(ws: Workspace, connection: str) -> Iterator[Connector]:
    """An open connector for a named connection (starting the built-in sandbox if that is the one)."""
    with contextlib.ExitStack() as stack:
        resolved = resolve_connection(ws.config, connection, ws.home, stack)
        connector = open_connector(resolved, retry=ws.config.retry.policy())
        stack.callback(connector.close)
        yield connector


# --- backup ----------------------------------------------------------------------------------------


def backup(
    ws: Workspace,
    connection: str,
    objects: Sequence[str] = (),
    *,
    progress: BackupProgress | None = None,
) -> SnapshotManifest:
    """Take a snapshot of `objects` (default: the provider's standard set)."""
    with connect(ws, connection) as connector:
        return backup_with(connector, ws, objects, progress=progress)


def backup_with(
    connector: Connector, ws: Workspace, objects: Sequence[str] = (), *, progress: BackupProgress | None = None
) -> SnapshotManifest:
    chosen = list(objects) or list(connector.vocabulary.default_backup_objects)
    if not chosen:
        raise BadInput("name the objects to back up with --object: this provider has no default set")
    return take_snapshot(connector, ws.home, objects=chosen, progress=progress)


def snapshots(ws: Workspace, connection: str | None = None) -> list[SnapshotManifest]:
    return list_snapshots(ws.home, connection)


def verify(ws: Workspace, snapshot_id: str) -> VerifyReport:
    return verify_snapshot(ws.home, snapshot_id)


# --- scan and preview ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanOutcome:
    result: ScanResult
    snapshot: SnapshotManifest
    took_backup: bool
    output: Path


def scan(
    ws: Workspace,
    connection: str,
    output: Path,
    *,
    snapshot_id: str | None = None,
    passes: Sequence[str] = (),
    allow_over_cap: bool = False,
    progress: BackupProgress | None = None,
    now: datetime | None = None,
) -> ScanOutcome:
    """Run the passes over a snapshot and write the plan to `output`.

    Without `snapshot_id` a fresh backup is taken first: the plan's before-images must be held in a
    verified snapshot, and a fresh one means fewer records skipped as drift at apply time.
    """
    with connect(ws, connection) as connector:
        took_backup = snapshot_id is None
        if snapshot_id is None:
            snapshot_id = backup_with(connector, ws, progress=progress).snapshot_id
        reader = open_snapshot(ws.home, snapshot_id)
        _check_snapshot_matches(reader, connector, connection)
        running_user_id = connector.current_user_id()
        result = scan_snapshot(
            reader,
            vocabulary=connector.vocabulary,
            passes=list(passes) or None,
            pass_settings=ws.config.passes,
            protect_recent_days=ws.config.protect.recent_days,
            protect_objects=ws.config.protect.objects,
            protect_ids=ws.config.protect.ids,
            max_changes=ws.config.safety.max_changes,
            max_changes_per_object=ws.config.safety.max_changes_per_object,
            allow_over_cap=allow_over_cap,
            connection=connection,
            config_digest=ws.config.digest,
            now=now or datetime.now(UTC),
            running_user_id=running_user_id,
        )
    if running_user_id is None:
        note = "could not tell which user this connection runs as: make sure it is not among the deactivations"
        result = replace(result, plan=result.plan.with_header(notes=(*result.plan.header.notes, note)))
    write_plan(result.plan, output)
    return ScanOutcome(result=result, snapshot=reader.manifest, took_backup=took_backup, output=output)


def _check_snapshot_matches(reader: SnapshotReader, connector: Connector, connection: str) -> None:
    manifest = reader.manifest
    if manifest.org_id != connector.org_id() or manifest.provider != connector.provider:
        raise BadInput(
            f"snapshot {manifest.snapshot_id} is of {manifest.provider} org {manifest.org_id}, "
            f"but connection '{connection}' is {connector.provider} org {connector.org_id()}"
        )


def write_plan(plan: Plan, output: Path) -> None:
    """Write atomically and privately: a plan holds before-images (personal data)."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        replace_private_file(output, plan.to_json().encode("utf-8"))
    except OSError as exc:
        raise BadInput(f"cannot write the plan to {output}: {exc.strerror}") from exc


def read_plan(path: Path) -> Plan:
    """A plan file, digest checked (SafetyRefusal if it was edited)."""
    plan, _text = load_plan(path)
    return plan


# --- apply and rollback ----------------------------------------------------------------------------

Confirm = Callable[[Plan], bool]


@dataclass(frozen=True)
class ApplyOutcome:
    plan: Plan
    report: ApplyReport | None  # None when the admin declined, or when the plan was only written out
    written: Path | None = None  # `rollback -o`: where the plan was written for review (nothing applied)
    resumed: bool = False  # `rollback` finished an interrupted rollback run instead of starting one


def apply_time_rules(ws: Workspace) -> ApplyTimeRules:
    """The protections in force now: a scan plan's candidates are checked against these before each batch."""
    protect = ws.config.protect
    return ApplyTimeRules(
        recent_days=protect.recent_days,
        protect_objects=tuple(protect.objects),
        protect_ids=tuple(protect.ids),
        pass_settings=ws.config.passes,
    )


def apply(
    ws: Workspace,
    plan_path: Path,
    *,
    confirm: Confirm,
    connection: str | None = None,
    resume_run: str | None = None,
    progress: Callable[[ApplyProgress], None] | None = None,
    dry_run: bool = False,
) -> ApplyOutcome:
    """Apply exactly the plan in `plan_path`, after every safety check and the admin's yes.

    A plan a finished run applied is not applied again (the report says which run, without asking);
    `dry_run` checks and reads everything, writes nothing and asks nothing.
    """
    plan, text = load_plan(plan_path)
    if dry_run and resume_run:
        raise BadInput("a dry run cannot resume a run: leave out --dry-run to finish it")
    with connect(ws, connection or plan.header.connection) as connector:
        check_plan(plan, connector, ws.home)
        earlier = earlier_run(ws.home, plan) if resume_run is None else None
        already = earlier is not None and earlier.status in FINISHED
        if earlier is not None and not already and not dry_run:
            # Before asking, since the answer would not matter: refused as being applied right now
            # (the lock names the run), or else as stopped, to be resumed.
            with plan_lock(ws.home, plan):
                pass
            refuse_second_run(plan, earlier)
        if not (dry_run or already) and not confirm(plan):
            return ApplyOutcome(plan=plan, report=None)
        with contextlib.ExitStack() as stack:
            if plan.header.rollback_of and not dry_run:
                # The undone run stays locked while it is rolled back, as `rollback` keeps it.
                stack.enter_context(open_run(ws.home, plan.header.rollback_of).lock())
            report = apply_plan(plan, text, connector, ws.home, progress=progress, resume_run=resume_run,
                                rules=apply_time_rules(ws), dry_run=dry_run)
            if plan.header.rollback_of and not (dry_run or report.already_applied):
                _mark_if_rolled_back(ws, plan, report)
    return ApplyOutcome(plan=plan, report=report)


def _mark_if_rolled_back(ws: Workspace, plan: Plan, report: ApplyReport) -> None:
    """Mark the undone run (whose lock the caller holds) once its rollbacks put back all it changed."""
    run_id = plan.header.rollback_of
    finished = not (report.failed or report.stopped or report.remaining)
    if run_id and finished and not not_undone(ws.home, run_id, report.run_id):
        mark_rolled_back(ws.home, run_id, report.run_id)


def rollback_plan(ws: Workspace, run_id: str, *, now: datetime | None = None) -> Plan:
    return build_rollback_plan(ws.home, run_id, now=now or datetime.now(UTC))


def rollback(
    ws: Workspace,
    run_id: str,
    *,
    confirm: Confirm,
    progress: Callable[[ApplyProgress], None] | None = None,
    dry_run: bool = False,
    output: Path | None = None,
) -> ApplyOutcome:
    """Build the inverse plan of a run, show it through `confirm`, apply it, mark the run.

    A rollback of this run that was interrupted or stopped is resumed rather than a second one started.
    With `output`, the inverse plan is only written there for review (apply it with `apply`); with
    `dry_run` it is checked and its records read, but nothing is written and no run is created.
    The original run stays locked throughout, so it cannot be applied (resumed) while it is undone.
    It is marked rolled back only when its rollbacks, together, put back every record it changed;
    otherwise it can be rolled back again (what was already undone is then skipped).
    """
    with open_run(ws.home, run_id).lock():
        unfinished = None if (output or dry_run) else unfinished_rollback(ws.home, run_id)
        if unfinished is not None:
            plan, text, resume = unfinished.plan, unfinished.plan_text, unfinished.run_id
        else:
            plan = rollback_plan(ws, run_id)
            text, resume = plan.to_json(), None
        if output is not None:
            write_plan(plan, output)
            return ApplyOutcome(plan=plan, report=None, written=output)
        with connect(ws, plan.header.connection) as connector:
            check_plan(plan, connector, ws.home)
            if not dry_run and not confirm(plan):
                return ApplyOutcome(plan=plan, report=None)
            report = apply_plan(plan, text, connector, ws.home, progress=progress, resume_run=resume,
                                dry_run=dry_run)
        if not dry_run:
            _mark_if_rolled_back(ws, plan, report)
    return ApplyOutcome(plan=plan, report=report, resumed=resume is not None)


def run_plan_path(ws: Workspace, run_id: str) -> Path:
    """The plan file a run applied: what `apply --resume` takes to finish it."""
    return open_run(ws.home, run_id).plan_path


def runs(ws: Workspace) -> list[RunSummary]:
    return list_runs(ws.home)
