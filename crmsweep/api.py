"""The library surface: one function per command, for the CLI and for scripts.

Each function takes a `Workspace` (config + home) and plain arguments, does the work through the
backup/cleanup/connector modules, and returns data. Nothing here prints; progress goes through
callbacks. The CLI is a coat of paint over this module.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import stat
import tempfile
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from types import MappingProxyType

import pandas as pd

from crmsweep import budget, providers
from crmsweep.backup.restore_check import not_restored_note, values_not_restored
from crmsweep.backup.rollback import (
    build_rollback_plan,
    inactive_owner_notes,
    inactive_owner_reason,
    mark_rolled_back,
    not_undone,
    owner_writes,
    plan_field_specs,
    recreate_note_of,
    rollback_plan_of,
    source_snapshot,
    unfinished_rollback,
)
from crmsweep.backup.runlog import (
    LOG_FILE,
    PLAN_FILE,
    SKIP_ALREADY_RESTORED,
    Outcome,
    RunState,
    RunSummary,
    list_runs,
    open_run,
    plan_applied_now,
    plan_lock,
    read_run,
)
from crmsweep.backup.snapshot import (
    SnapshotReader,
    Unfinished,
    VerifyReport,
    list_snapshots,
    open_snapshot,
    take_snapshot,
    unfinished_snapshots,
    verify_snapshot,
)
from crmsweep.backup.snapshot_diff import SnapshotDiff, diff_snapshots
from crmsweep.backup.snapshot_incremental import find_parent, take_incremental
from crmsweep.backup.snapshot_layout import MANIFEST_NAME, load_manifest
from crmsweep.backup.snapshot_writer import LINK_BATCH, link_pairs
from crmsweep.cleanup.apply import (
    FINISHED,
    ApplyProgress,
    ApplyReport,
    apply_plan,
    earlier_run,
    job_run_size,
    live_checked_ops,
    refuse_second_run,
    resumable_run,
    settle_run,
    write_batch_size,
)
from crmsweep.cleanup.live_check import ApplyTimeRules
from crmsweep.cleanup.passes import check_pass_tables, objects_read
from crmsweep.cleanup.plan_auth import Trust, signed_json, trust_of
from crmsweep.cleanup.plan_checks import (
    Caps,
    HomeRules,
    check_acceptable,
    check_plan,
    load_plan,
    other_org_step,
    read_plan_file,
)
from crmsweep.cleanup.quality import QualityReport, build_report, detail_rows
from crmsweep.cleanup.quality_render import is_report_file
from crmsweep.cleanup.quality_rules import check_rule_fields, effective_rules, measure
from crmsweep.cleanup.scan import ScanResult, check_scan_request, scan_snapshot
from crmsweep.concepts import DataQuality
from crmsweep.config import CONFIG_ENV, Config, load_config, resolve_connection
from crmsweep.connectors import open_connector
from crmsweep.connectors.base import Connector, IncrementalUnsupported
from crmsweep.errors import BadInput, CrmsweepError, SafetyRefusal, UnknownObject
from crmsweep.model import (
    PLAN_FORMATS,
    Capabilities,
    Op,
    Plan,
    PlanFormatError,
    SnapshotManifest,
    Vocabulary,
    association_object,
    canonical_datetime,
)
from crmsweep.paths import (
    HOME_ENV,
    Home,
    blank_checked,
    default_home,
    expand_user,
    make_private_dirs,
    path_from_env,
    replace_private_file,
)
from crmsweep.plan_writing import PlanDraft
from crmsweep.plan_writing import write_plan as write_plan  # a script writes a plan it built through the api

BackupProgress = Callable[[str, int, bool], None]
# Shown the plan, answers whether to go on (the CLI asks the admin; a script decides for itself).
Confirm = Callable[[Plan], bool]


@dataclass(frozen=True)
class Workspace:
    """What every command needs: the effective config and the home folder."""

    config: Config
    home: Home

    @classmethod
    def load(cls, config_path: Path | None = None, home: Path | None = None) -> Workspace:
        """`None` means: the environment (CRMSWEEP_CONFIG, CRMSWEEP_HOME), else the defaults.

        Everything a user typed is checked here, before any command starts work: the config with
        every pass's settings, and the home folder (refused with one line if it cannot work; it is
        created 0700 when a command first needs it).
        """
        config_path = path_from_env(CONFIG_ENV) if config_path is None else blank_checked(config_path, CONFIG_ENV)
        home = path_from_env(HOME_ENV) if home is None else expand_user(blank_checked(home, HOME_ENV), "home folder")
        config = load_config(config_path)
        check_pass_tables(config.passes, source=str(config.path) if config.path else "config")
        chosen = Home(home) if home is not None else default_home()
        chosen.validate()
        return cls(config=config, home=chosen)


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
    incremental: bool = False,
    allow_over_budget: bool = False,
) -> SnapshotManifest:
    """Take a snapshot of `objects` (default: the provider's standard set), if the org's daily API
    allowance can spare what it needs (see `check_backup_budget`). `incremental` reads only what changed
    since the last snapshot of the connection (a full one when there is none: `parent` is None)."""
    with connect(ws, connection) as connector:
        return backup_with(connector, ws, objects, progress=progress, incremental=incremental,
                           allow_over_budget=allow_over_budget)


def objects_passes_read(vocabulary: Vocabulary, capabilities: Capabilities) -> list[str]:
    """Every object a pass reads for this provider, each once, but for links between objects that have
    associations: those are not objects of their own, backing up both ends takes them."""
    ends = capabilities.association_objects
    links = {association_object(a, b) for a in ends for b in ends}
    return [o for o in objects_read(vocabulary) if o not in links]


def _held_by(connector: Connector, names: Sequence[str]) -> list[str]:
    """The objects of `names` the CRM has (an org without quotes or invoices enabled has no such object)."""
    held: list[str] = []
    for name in names:
        try:
            connector.fields(name)
        except UnknownObject:
            continue
        held.append(name)
    return held


def backup_with(
    connector: Connector, ws: Workspace, objects: Sequence[str] = (), *, progress: BackupProgress | None = None,
    incremental: bool = False,
    allow_over_budget: bool = False,
) -> SnapshotManifest:
    """Back up `objects`; when none are named, the provider's standard set and then every object a pass
    reads, and every `[protect] objects` entry, that the CRM has (so a scan never lacks what it needs; a
    pass whose object the CRM lacks is skipped by scan, saying so)."""
    calls_before = connector.api_usage().calls
    connector.org_id()  # the first call says who answers (a wrong CA or token fails here, plainly)
    if objects:
        chosen = list(objects)
    else:
        standard = list(connector.vocabulary.default_backup_objects)
        # The [protect] objects too: a scan tells their records among the ones a change takes or touches (a
        # file on an org's own invoice object) only from their rows.
        wanted = [*objects_passes_read(connector.vocabulary, connector.capabilities), *ws.config.protect.objects]
        taken, extra = {name.casefold() for name in standard}, []
        for name in wanted:
            if name.casefold() not in taken:
                taken.add(name.casefold())
                extra.append(name)
        chosen = [*standard, *_held_by(connector, extra)]
    if not chosen:
        raise BadInput("name the objects to back up with --object: this provider has no default set")
    settings = ws.config.backup
    if hasattr(connector, "bulk_query_rows"):  # a connector with a bulk export path takes the threshold
        connector.bulk_query_rows = settings.bulk_query_rows
    if incremental and not connector.capabilities.incremental_backups:
        # Refused from the first time, not only once a parent exists: a nightly job must not pass on day 1
        # and fail every day after. The connector's own refusal says why.
        connector.deleted_since(chosen[0], datetime.now(UTC))
        raise IncrementalUnsupported(f"connection '{connector.connection_name}' cannot back up incrementally: "
                                     f"run `{_full_backup(connector.connection_name)}` (without --incremental)")
    parent = find_parent(ws.home, connector.connection_name, connector.org_id()) if incremental else None
    check_backup_budget(connector, ws, chosen, allow_over=allow_over_budget, parent=parent)
    if parent is not None:
        return take_incremental(connector, ws.home, parent, objects=chosen, progress=progress,
                                calls_before=calls_before)
    return take_snapshot(connector, ws.home, objects=chosen, progress=progress, calls_before=calls_before,
                         workers=settings.workers)


def check_backup_budget(connector: Connector, ws: Workspace, objects: Sequence[str], *,
                        allow_over: bool = False, parent: SnapshotManifest | None = None) -> budget.Verdict:
    """Refuse (exit 3) a backup of `objects` that would eat into the [budget] reserve of the daily API
    allowance. One COUNT() per object (the connector keeps its read plans, so the backup reuses them),
    but for the objects an incremental backup reads as changes since `parent`: those cost no count."""
    objects = list(dict.fromkeys(objects))  # as the backup takes them: each once
    for name in objects:
        connector.fields(name)  # an unknown object is named plainly here, before any count is asked
    plans = [budget.incremental_plan(parent.objects[name]) if parent is not None and name in parent.objects
             else connector.read_plan(name) for name in objects]
    estimate = budget.backup_estimate(plans, link_pairs=link_pairs(connector, objects), link_batch=LINK_BATCH,
                                      documents=connector.metadata_calls())
    return budget.judge(estimate, connector.allowance(), ws.config.budget.reserve, allow_over=allow_over,
                        advice="back up fewer objects with --object")


def check_apply_budget(connector: Connector, ws: Workspace, plan: Plan, work: Sequence[int], *,
                       dry_run: bool, allow_over: bool, spent: int = 0) -> budget.Verdict:
    """Refuse (exit 3) an apply of the changes `work` of `plan` that would eat into the [budget] reserve.
    `spent`: the calls the command made before (its checks), in the estimate its `api_calls` is held to."""
    estimate = _apply_estimate(connector, plan, work, dry_run=dry_run, spent=spent, home=ws.home)
    return budget.judge(estimate, connector.allowance(), ws.config.budget.reserve, allow_over=allow_over,
                        advice="" if plan.header.rollback_of else "split the plan (scan with fewer passes)")


def _apply_estimate(connector: Connector, plan: Plan, work: Sequence[int], *, dry_run: bool,
                    spent: int, home: Home) -> budget.Estimate:
    # A rollback's plan was never shown (it is made from the run): named by the run it undoes.
    rollback_of = plan.header.rollback_of
    what = f"the rollback of run {rollback_of}" if rollback_of else f"apply of plan {plan.header.plan_id}"
    return budget.apply_estimate(plan.changes, work, batch_size=write_batch_size(connector),
                                 ids_per_read=connector.capabilities.max_ids_per_read, what=what,
                                 vocabulary=connector.vocabulary, live_ops=live_checked_ops(plan),
                                 writes=not dry_run,
                                 run_size=job_run_size(connector, write_batch_size(connector)),
                                 capabilities=connector.capabilities, spent=spent,
                                 rows_of=lambda: _snapshot_rows(home, plan))


def _snapshot_rows(home: Home, plan: Plan) -> dict[str, int]:
    """The rows of each object in the snapshot `plan`'s changes came from (none where it is gone): how many
    pages a live re-check that reads every row of an object is priced at."""
    try:
        snapshot_id = source_snapshot(home, plan)
        manifest = load_manifest(home.snapshots_dir, snapshot_id)[1] if snapshot_id else None
    except BadInput:
        return {}
    return {name: entry.rows for name, entry in manifest.objects.items()} if manifest is not None else {}


def check_review_budget(connector: Connector, ws: Workspace, state: RunState, *, allow_over: bool) -> budget.Verdict:
    """Refuse (exit 3) the reads `rollback -o` makes to build the inverse plan of run `state` (its writes of
    unknown outcome settled, its deletes looked for among the CRM's deleted records: `not_undeletable`) when
    they would eat into the [budget] reserve; judged before they are made, as every command's calls are."""
    # Without -o the same reads come with the writes: no smaller way to advise.
    return budget.judge(_review_reads(connector, state), connector.allowance(), ws.config.budget.reserve,
                        allow_over=allow_over, advice="")


def _review_reads(connector: Connector, state: RunState) -> budget.Estimate:
    """The reads that build the inverse plan of run `state`: its settling, and its recycle-bin reads."""
    changes, capabilities = state.plan.changes, connector.capabilities
    pending = [o for o in state.outcomes if o.outcome is Outcome.PENDING]
    # A pending delete may settle as applied: its record is then looked for too.
    deleted = Counter(changes[i].object for i in [*state.applied_order, *(o.index for o in pending)]
                      if changes[i].op is Op.DELETE and capabilities.undeletes(changes[i].object))
    batches = Counter((o.intent_batch or 0, changes[o.index].object) for o in pending)
    return budget.read_estimate(deleted, [(obj, n) for (_, obj), n in batches.items()],
                                capabilities=capabilities, what=f"the rollback plan of run {state.run_id}")


def check_rollback_budget(connector: Connector, ws: Workspace, state: RunState, *, dry_run: bool,
                          allow_over: bool, spent: int = 0) -> budget.Verdict:
    """Refuse (exit 3) a rollback of run `state` that would eat into the [budget] reserve, before the reads
    that build its inverse plan (its settling and recycle-bin reads), so that a refusal spends none of them.

    Those reads decide the plan, so it is foreseen from the run's record: every write of unknown outcome
    taken as applied (settling can only find fewer), and each record it deleted undeleted or re-created,
    whichever costs more (the recycle bin, not yet read, says which). `check_apply_budget` judges the plan
    really built after the reads again (from the allowance the CRM reports with their answers, no call)."""
    reads = _review_reads(connector, state)
    foreseen = _settled_as_applied(state)
    deleted = {(c.object, c.record_id) for c in (foreseen.plan.changes[i] for i in foreseen.applied_order)
               if c.op is Op.DELETE}
    capabilities = connector.capabilities
    known_gone = {(obj, i) for obj, i in deleted if not capabilities.undeletes(obj)}
    writes: list[budget.Estimate] = []
    for gone in (known_gone, deleted) if deleted != known_gone else (known_gone,):
        try:
            plan = rollback_plan_of(ws.home, foreseen, now=datetime.now(UTC), vocabulary=connector.vocabulary,
                                    gone=gone, capabilities=capabilities)
        except CrmsweepError:
            # Refused as planned (e.g. a re-create without its snapshot): the real plan is refused alike, or
            # does not need what failed here; either way this case prices nothing, and the reads still count.
            continue
        writes.append(_apply_estimate(connector, plan, range(len(plan.changes)), dry_run=dry_run, spent=0,
                                      home=ws.home))
    costliest = max(writes, key=lambda e: e.calls, default=budget.Estimate(what="", calls=0))
    parts = Counter({"checks made": spent}) + Counter(dict(reads.parts)) + Counter(dict(costliest.parts))
    estimate = budget.Estimate(what=f"the rollback of run {state.run_id}", calls=sum(parts.values()),
                               parts=MappingProxyType(dict(parts)), spent=spent)
    return budget.judge(estimate, connector.allowance(), ws.config.budget.reserve, allow_over=allow_over,
                        advice="")


def _settled_as_applied(state: RunState) -> RunState:
    """Run `state` as if every write of unknown outcome had landed: what settling it may find at most. A
    create's new id is not known before it is settled; a stand-in takes its place (priced, never written)."""
    pending = [o.index for o in state.outcomes if o.outcome is Outcome.PENDING]
    if not pending:
        return state
    outcomes = [replace(o, outcome=Outcome.APPLIED, record_id=o.record_id or f"pending-{o.index}")
                if o.outcome is Outcome.PENDING else o for o in state.outcomes]
    return replace(state, outcomes=outcomes, applied_order=[*state.applied_order, *pending])


def snapshots(ws: Workspace, connection: str | None = None) -> list[SnapshotManifest]:
    return list_snapshots(ws.home, connection)


def unfinished(ws: Workspace, connection: str | None = None) -> list[Unfinished]:
    """Backups still running, and what killed ones left (removed by the next backup of that connection)."""
    return unfinished_snapshots(ws.home, connection)


def verify(ws: Workspace, snapshot_id: str) -> VerifyReport:
    return verify_snapshot(ws.home, snapshot_id)


def diff(ws: Workspace, a: str, b: str, *, objects: Sequence[str] = (), detail: bool = False,
         all_fields: bool = False) -> SnapshotDiff:
    """What changed from snapshot `a` to snapshot `b` (same connection), per object; a record whose only
    differences are the audit stamps the CRM rewrites on every write is not a change, unless `all_fields`."""
    old, new = open_snapshot(ws.home, a), open_snapshot(ws.home, b)
    vocabulary = providers.get(new.manifest.provider).vocabulary
    return diff_snapshots(old, new, id_field=vocabulary.id_field, fingerprint_field=vocabulary.fingerprint_field,
                          objects=objects, detail=detail, audit_fields=() if all_fields else vocabulary.audit_fields,
                          audit_keys={} if all_fields else vocabulary.audit_keys,
                          deleted_field=vocabulary.deleted_field)


# --- scan and preview ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScanOutcome:
    result: ScanResult
    snapshot: SnapshotManifest
    took_backup: bool
    output: Path
    api_calls: int = 0  # every call the scan made, its backup's included


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
    allow_over_budget: bool = False,
) -> ScanOutcome:
    """Run the passes over a snapshot and write the plan to `output`.

    Without `snapshot_id` a fresh backup is taken first: the plan's before-images must be held in a
    verified snapshot, and a fresh one means fewer records skipped as drift at apply time.
    """
    # Everything that can be wrong with the request is found before the first API call.
    check_scan_request(list(passes) or None, ws.config.passes)
    check_plan_output(output, ws.home)
    took_backup = snapshot_id is None
    if snapshot_id is not None:
        _check_snapshot_intact(ws, snapshot_id)
    # The plan's changes are written while the scan waits for its report-only passes; the header follows.
    with PlanDraft(output, ws.home) as draft:
        with connect(ws, connection) as connector:
            calls_before = connector.api_usage().calls
            if snapshot_id is None:
                snapshot_id = backup_with(connector, ws, progress=progress,
                                          allow_over_budget=allow_over_budget).snapshot_id
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
                running_user_unknown=running_user_id is None,
                while_waiting=draft.begin,
            )
            calls = connector.api_usage().calls - calls_before
        check_plan_output(output, ws.home)  # again: the scan took a while, and the file may have appeared since
        draft.write(result.plan)
    return ScanOutcome(result=result, snapshot=reader.manifest, took_backup=took_backup, output=output,
                       api_calls=calls)


@dataclass(frozen=True)
class SandboxReset:
    provider: str
    connection: str  # the built-in connection that serves it
    state_dir: Path
    records: int
    seed: int


def _full_backup(connection: str) -> str:
    return f"crmsweep backup -c {shlex.quote(connection)}"


def reset_sandbox(ws: Workspace, provider: str | None = None, *, records: int | None = None,
                  seed: int | None = None) -> SandboxReset:
    """Seed `provider`'s built-in sandbox afresh (`[sandbox] records` and `seed` unless given): its connection
    (`sandbox-<provider>`) starts from that org next time. Through the sandbox itself, under its state lock:
    wiping the folder would pull the store from under a `sandbox serve` of the same folder."""
    entry = providers.get(provider) if provider is not None else providers.default()
    state_dir = ws.home.sandbox_dir(entry.name)
    chosen_records = ws.config.sandbox.records if records is None else records
    chosen_seed = ws.config.sandbox.seed if seed is None else seed
    entry.start_sandbox(state_dir, records=chosen_records, seed=chosen_seed, reset=True).stop()
    return SandboxReset(provider=entry.name, connection=entry.builtin_connection, state_dir=state_dir,
                        records=chosen_records, seed=chosen_seed)


def _check_snapshot_intact(ws: Workspace, snapshot_id: str) -> None:
    """A plan's before-images must come from a snapshot that still matches its manifest: apply would
    refuse the plan anyway, so say so now rather than write one that cannot be used."""
    open_snapshot(ws.home, snapshot_id)  # no snapshot by that id (or no manifest: never finished) is bad input
    report = verify_snapshot(ws.home, snapshot_id)
    if not report.ok:
        raise SafetyRefusal(
            f"snapshot {snapshot_id} no longer matches its manifest ({report.problems[0]}): "
            f"no plan written; see `crmsweep snapshots verify {snapshot_id}`, or scan without --snapshot"
        )


def _record_folder(path: Path) -> Path | None:
    """The run folder (a run log beside its plan) or snapshot folder (crmsweep's manifest) `path` would be
    written in, if any. Known by their files: a folder of another project that has a manifest.json is not one."""
    for folder in (path.parent, *path.parent.parents[:2]):
        if (folder / LOG_FILE).is_file() and (folder / PLAN_FILE).is_file():
            return folder
        try:
            with open(folder / MANIFEST_NAME, "rb") as manifest:
                if b'"format": "crmsweep.snapshot/' in manifest.read(256):
                    return folder
        except OSError:
            continue
    return None


def check_plan_output(path: Path, home: Home) -> None:
    """Where a plan may be written: a new file in an existing, writable folder, or over an older plan, not
    among the records `home` keeps (`Home.keeps`).

    Anything else is refused, so `-o crmsweep.toml` (or any file that is not a plan) is never lost.
    """
    check_output(path, "plan", "plan.json", _is_plan_file, home)


def check_output(path: Path, kind: str, example: str, is_ours: Callable[[Path], bool],
                 home: Home | None = None) -> None:
    """Where a file of `kind` may be written: a new file in an existing, writable folder, or over an
    older one of its kind (`is_ours`), not among the records `home` keeps; anything else is refused, so no
    other file is ever lost."""
    try:
        _check_output(path, kind, example, is_ours, home)
    except OSError as exc:  # a name too long, a folder that cannot be looked into
        raise BadInput(f"cannot write the {kind} to {path}: {exc.strerror or exc}") from None


def _check_output(path: Path, kind: str, example: str, is_ours: Callable[[Path], bool], home: Home | None) -> None:
    if home is not None and home.keeps(path):
        raise BadInput(f"cannot write the {kind} to {path}: crmsweep keeps its runs, snapshots and keys there "
                       f"(home {home.root}); choose a file outside them with -o")
    kept = _record_folder(path)
    if kept is not None:
        # Another home's (one named by --home in one command, by CRMSWEEP_HOME in the next): a run's plan copy
        # replaced there can no longer be resumed or rolled back.
        raise BadInput(f"cannot write the {kind} to {path}: {kept} is a crmsweep run or snapshot folder; choose a "
                       "file outside it with -o")
    if path.is_dir():
        raise BadInput(f"cannot write the {kind} to {path}: it is a folder; name a file, e.g. {path / example}")
    folder = path.parent
    # Missing folders are made (0700) when the file is written; what must exist is a folder to make them in.
    while not folder.exists() and not folder.is_symlink() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise BadInput(f"cannot write the {kind} to {path}: {folder} is not a folder")
    if (path.exists() or path.is_symlink()) and not is_ours(path):
        raise BadInput(
            f"{path} exists and is not a crmsweep {kind}: refusing to overwrite it; choose another file with -o"
        )
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise BadInput(f"cannot write the {kind} to {path}: folder {folder}: {exc.strerror}") from None


# How every plan crmsweep writes begins. A file that begins so is a plan (or a damaged one) and may be replaced
# without parsing it: at 1M contacts a plan is some 370 MB, and parsing it (twice a scan) took longer than the scan.
_PLAN_OPENING = re.compile(rb'\A\s*\{\s*"format"\s*:\s*(?:'
                           + b"|".join(re.escape(json.dumps(kind).encode()) for kind in PLAN_FORMATS) + rb")")


def _is_plan_file(path: Path) -> bool:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO or a terminal (/proc/self/fd/1) is no plan
            return False
        with path.open("rb") as handle:
            head = handle.read(256)
        if head.lstrip()[:1] != b"{":  # not JSON: no need to read a large file through
            return False
        if _PLAN_OPENING.match(head):
            return True
        # Laid out otherwise (a plan an admin filtered with `jq -S`): a plan if it reads as one.
        Plan.from_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, PlanFormatError):
        return False
    return True


def _check_snapshot_matches(reader: SnapshotReader, connector: Connector, connection: str) -> None:
    manifest = reader.manifest
    live_org = connector.org_id()
    if manifest.org_id != live_org or manifest.provider != connector.provider:
        raise BadInput(
            f"snapshot {manifest.snapshot_id} is of {manifest.provider} org {manifest.org_id}, "
            f"but connection '{connection}' is {connector.provider} org {live_org}: "
            + other_org_step(manifest.connection, connection, manifest.org_id, made="taken",
                             use="scan it with that one",
                             again=f"scan with '{{}}' without --snapshot, which backs up org {live_org} first")
        )


@dataclass(frozen=True)
class PlanReview:
    """A plan file as `preview` shows it: its content, and whether this home may apply it as it stands."""

    plan: Plan
    trust: Trust


def read_plan(ws: Workspace, path: Path) -> PlanReview:
    """Any well-formed plan file, with what its digest and signature are worth here (nothing refused)."""
    parsed, _text = read_plan_file(path)
    return PlanReview(plan=parsed.plan, trust=trust_of(parsed, ws.home))


@dataclass(frozen=True)
class AcceptOutcome:
    plan: Plan
    was: Trust  # what the file was worth here before
    accepted: bool  # False when the admin declined, or when it was already signed by this home


def accept_plan(
    ws: Workspace, plan_path: Path, *, confirm: Callable[[PlanReview], bool], connection: str | None = None
) -> AcceptOutcome:
    """Sign, with this home's key, a plan the admin reviewed (one from another machine, or edited by hand).

    The admin accepts the content shown to them, so the digest is derived afresh from that content and
    the one the file claims is ignored. The plan must still pass every check apply makes (org,
    provenance, before-images, caps), and a plan from a scan must hold only changes that this home's
    scan of its snapshot proposes (see plan_checks.check_acceptable): accepting never makes a plan
    applicable that this home's own scan could not have written.
    """
    parsed, _text = read_plan_file(plan_path)
    plan, was = parsed.plan, trust_of(parsed, ws.home)
    with connect(ws, connection or plan.header.connection) as connector:
        if was is Trust.SIGNED:
            # This home's own plan: nothing to accept, and trusted as apply trusts it (no re-scan).
            check_plan(plan, connector, ws.home, caps=caps_of(ws))
            return AcceptOutcome(plan=plan, was=was, accepted=False)
        protect = ws.config.protect
        check_acceptable(plan, connector, ws.home, caps=caps_of(ws),
                         rules=HomeRules(recent_days=protect.recent_days, objects=tuple(protect.objects),
                                         ids=tuple(protect.ids)))
    if not confirm(PlanReview(plan=plan, trust=was)):
        return AcceptOutcome(plan=plan, was=was, accepted=False)
    write_plan(plan, plan_path, ws.home)
    return AcceptOutcome(plan=plan, was=was, accepted=True)


# --- apply and rollback ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ApplyOutcome:
    plan: Plan
    report: ApplyReport | None  # None when the admin declined, or when the plan was only written out
    written: Path | None = None  # `rollback -o`: where the plan was written for review (nothing applied)
    resumed: bool = False  # `rollback` finished an interrupted rollback run instead of starting one
    # A rollback (`rollback RUN`, or `apply` of a rollback plan) of a run already rolled back: nothing was done.
    already_rolled_back_by: str | None = None
    already_rolled_back_at: str | None = None  # when that rollback run finished
    budget: budget.Verdict | None = None  # the API budget check made before the first write
    api_calls: int = 0  # calls of a command that applied nothing (`rollback -o`); else see report.api_calls
    # The plan holds no change (checked), or the run to roll back wrote nothing: no run made, nothing undone.
    nothing_to_do: bool = False


def caps_of(ws: Workspace) -> Caps:
    """The [safety] caps of the config in force: a plan from a scan must fit them when it is applied."""
    return Caps(max_changes=ws.config.safety.max_changes,
                max_changes_per_object=ws.config.safety.max_changes_per_object)


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
    allow_over_budget: bool = False,
) -> ApplyOutcome:
    """Apply exactly the plan in `plan_path`, after every safety check, the API budget and the admin's yes.

    A plan a finished run applied is not applied again (the report says which run, without asking);
    `dry_run` checks and reads everything, writes nothing and asks nothing.
    """
    plan, text = load_plan(plan_path, ws.home)
    # A resume is not answered so: the stopped run it names stays unfinished, and check_plan refuses it.
    if resume_run is None and (undone := _undone_by_another(ws, plan)) is not None:
        return undone
    with connect(ws, connection or plan.header.connection) as connector:
        calls_before = connector.api_usage().calls  # the report counts the checks' calls too (the org id)
        check_plan(plan, connector, ws.home, caps=caps_of(ws))
        if not plan.changes and resume_run is None:
            return ApplyOutcome(plan=plan, report=None, nothing_to_do=True,
                                api_calls=connector.api_usage().calls - calls_before)
        earlier = earlier_run(ws.home, plan) if resume_run is None else None
        already = earlier is not None and earlier.status in FINISHED
        if resume_run is not None:
            resumable_run(ws.home, plan, resume_run)  # a resume that would be refused is refused before asking
            already = read_run(ws.home, resume_run).status in FINISHED
        elif earlier is not None and not already:
            # Before asking, since the answer would not matter: refused as being applied right now
            # (the lock names the run), or else as stopped, to be resumed. A dry run is refused alike.
            if not dry_run:
                with plan_lock(ws.home, plan):
                    pass
            elif (who := plan_applied_now(ws.home, plan)) is not None:
                raise SafetyRefusal(
                    f"plan {plan.header.plan_id} is being applied now by {who}: a dry run would read its records "
                    "while they are written; repeat the dry run once that run has finished")
            refuse_second_run(plan, earlier)
        verdict = None
        if not already:  # before asking: a yes that the budget would then refuse is a wasted question
            work = (range(len(plan.changes)) if resume_run is None
                    else [o.index for o in read_run(ws.home, resume_run).outcomes if not o.done])
            verdict = check_apply_budget(connector, ws, plan, work, dry_run=dry_run, allow_over=allow_over_budget,
                                         spent=connector.api_usage().calls - calls_before)
        if not (dry_run or already) and not confirm(plan):
            return ApplyOutcome(plan=plan, report=None, budget=verdict)
        with contextlib.ExitStack() as stack:
            if plan.header.rollback_of and not dry_run:
                # The undone run stays locked while it is rolled back, as `rollback` keeps it.
                stack.enter_context(open_run(ws.home, plan.header.rollback_of).lock())
            report = apply_plan(plan, text, connector, ws.home, progress=progress, resume_run=resume_run,
                                rules=apply_time_rules(ws), dry_run=dry_run, config_file=ws.config.path)
            # A resume of a finished rollback run still marks the run it undid, should a crash have come
            # between the rollback's end and that mark.
            if plan.header.rollback_of and not dry_run and (resume_run is not None or not report.already_applied):
                _mark_if_rolled_back(ws, plan, report)
            _note_recreated(ws, plan, report, connector)
            _keep_notes(ws, report)
        report = replace(report, api_calls=connector.api_usage().calls - calls_before)
    return ApplyOutcome(plan=plan, report=report, budget=verdict)


def _rolled_back_already(ws: Workspace, plan: Plan, by: str) -> ApplyOutcome:
    return ApplyOutcome(plan=plan, report=None, already_rolled_back_by=by, already_rolled_back_at=run(ws, by).finished)


def _undone_by_another(ws: Workspace, plan: Plan) -> ApplyOutcome | None:
    """A rollback plan of a run that another rollback undid already is a repeat that writes nothing, answered
    as a second `rollback RUN` is (check_plan still refuses it, should it get that far). A run of this very plan
    that did it is answered after the checks, as any plan applied already."""
    if not plan.header.rollback_of:
        return None
    try:
        by = read_run(ws.home, plan.header.rollback_of).rolled_back_by
        if not by or read_run(ws.home, by).plan.digest == plan.digest:
            return None
    except BadInput:
        return None  # a log that cannot be read: check_plan refuses the plan, saying why
    return _rolled_back_already(ws, plan, by)


def _keep_notes(ws: Workspace, report: ApplyReport) -> None:
    """Log the notes of `report` on its run, so that `runs show` gives them later (`run_notes`): they are
    found while applying (what a rollback could not put back), and no file held them afterwards."""
    if report.notes and report.run_id and not (report.dry_run or report.already_applied):
        open_run(ws.home, report.run_id).append({"t": "notes", "notes": list(report.notes)})


def inactive_owners(connector: Connector, plan: Plan, work: Collection[int] | None = None) -> dict[str, list[int]]:
    """Where the CRM refuses an inactive owner: the owner writes of `plan` (`owner_writes`; of `work` only, if
    given) naming an owner inactive in the CRM now, by owner id; their users read live, in one read (batched
    by ids). An owner the read does not return is left to its write's own answer."""
    vocabulary = connector.vocabulary
    if not vocabulary.owner_must_be_active:
        return {}
    writes = {owner: [i for i in indexes if work is None or i in work]
              for owner, indexes in owner_writes(plan.changes, vocabulary).items()}
    writes = {owner: indexes for owner, indexes in writes.items() if indexes}
    if not writes:
        return {}
    active = vocabulary.user_active_field
    live = connector.read(vocabulary.user_object, list(writes), [vocabulary.id_field, active], include_deleted=False)
    inactive = {vocabulary.id_key(str(r.get(vocabulary.id_field) or i)) for i, r in live.items() if not r.get(active)}
    return {owner: indexes for owner, indexes in writes.items() if vocabulary.id_key(owner) in inactive}


def _note_inactive_owners(plan: Plan, report: ApplyReport, doomed: Mapping[str, Sequence[int]],
                          vocabulary: Vocabulary) -> None:
    """Tell on `report` which writes of `plan` give records to an owner inactive in the CRM (`doomed`, see
    `inactive_owners`): a dry run, those it would write, which will fail; a run, those that failed, each saying
    why in the admin's terms (reactivate that user, or leave the records as they are), not only the CRM's code,
    its "fix" saying what to do (`failures_hint` tells it in place of "once their cause is fixed")."""
    items = {int(item["i"]): item for item in (report.planned_items if report.dry_run else report.failed_items)}
    for owner, indexes in doomed.items():
        for i in indexes:
            if i in items:
                items[i]["fix"] = inactive_owner_reason(owner, vocabulary.label(plan.changes[i].object, many=True))
                if not report.dry_run:
                    items[i]["message"] = f"{items[i]['fix']} ({items[i].get('message', '')})"
    doomed = {owner: kept for owner, indexes in doomed.items() if (kept := [i for i in indexes if i in items])}
    report.notes.extend(inactive_owner_notes(plan.changes, doomed, vocabulary, done=not report.dry_run))


def _note_recreated(ws: Workspace, plan: Plan, report: ApplyReport, connector: Connector) -> None:
    """Tell on `report` what the records a rollback re-created (a dry run: would re-create) lost: their
    dates and history, which the next scan reads (see `recreate_note`)."""
    run_id = plan.header.rollback_of
    if not run_id or (report.dry_run and report.already_applied):
        return  # a dry run of a plan applied already would re-create nothing
    # Only a record whose id the CRM changed was re-created anew: one brought back under its own id (a
    # restore by name) is the original, its dates kept (the id map says which is which).
    # A dry run has no id map: there, a record found restored by hand (skipped, not re-created) is left out.
    restored = {item["i"] for item in report.skipped_items if item.get("reason") == SKIP_ALREADY_RESTORED}
    made = [c for i, c in enumerate(plan.changes) if c.op is Op.CREATE
            and ((report.dry_run and i not in restored)
                 or report.id_map.get(c.object, {}).get(c.record_id) not in (None, c.record_id))]
    vocabulary = connector.vocabulary
    undone = read_run(ws.home, run_id)
    specs = plan_field_specs(ws.home, undone.plan) if made else {}
    note = recreate_note_of(undone, made, vocabulary, specs, connector.capabilities, done=not report.dry_run,
                            run_id=report.run_id or None, new_ids=report.id_map)
    if note:
        report.notes.append(note)


def _mark_if_rolled_back(ws: Workspace, plan: Plan, report: ApplyReport) -> None:
    """Mark the undone run (whose lock the caller holds) once its rollbacks put back all it changed, the
    values of the fields it removed included; a finished rollback that left values out says so on `report`."""
    run_id = plan.header.rollback_of
    if not run_id or report.stopped or report.remaining:
        return
    vocabulary = providers.get(plan.header.provider).vocabulary
    lost = values_not_restored(ws.home, run_id, report.run_id, vocabulary)
    if lost:
        capabilities = providers.get(plan.header.provider).capabilities
        report.notes.append(not_restored_note(ws.home, read_run(ws.home, run_id), lost, capabilities,
                                            by_run=report.run_id))
    if not (report.failed or lost or not_undone(ws.home, run_id, report.run_id)):
        mark_rolled_back(ws.home, run_id, report.run_id)


def rollback_plan(ws: Workspace, run_id: str, connector: Connector, *, now: datetime | None = None) -> Plan:
    """The inverse plan of run `run_id`; deleted records the CRM can no longer undelete are re-created."""
    return build_rollback_plan(ws.home, run_id, now=now or datetime.now(UTC), vocabulary=connector.vocabulary,
                               gone=not_undeletable(connector, read_run(ws.home, run_id)),
                               capabilities=connector.capabilities)


def not_undeletable(connector: Connector, state: RunState) -> set[tuple[str, str]]:
    """(object, id) of the records run `state` deleted that the CRM cannot give back with their ids:
    all of those of objects it cannot undelete, else those its recycle bin no longer holds (one read per object)."""
    deleted: dict[str, list[str]] = {}
    for index in state.applied_order:
        change = state.plan.changes[index]
        if change.op is Op.DELETE:
            deleted.setdefault(change.object, []).append(change.record_id)
    capabilities = connector.capabilities
    gone = {(obj, i) for obj, ids in deleted.items() if not capabilities.undeletes(obj) for i in ids}
    for obj, ids in deleted.items():
        if not capabilities.undeletes(obj):
            continue
        held = connector.read(obj, ids, [connector.vocabulary.id_field], include_deleted=True)
        held_keys = {connector.vocabulary.id_key(i) for i in held}
        gone |= {(obj, i) for i in ids if connector.vocabulary.id_key(i) not in held_keys}
    return gone


def rollback(
    ws: Workspace,
    run_id: str,
    *,
    confirm: Confirm,
    progress: Callable[[ApplyProgress], None] | None = None,
    dry_run: bool = False,
    output: Path | None = None,
    allow_over_budget: bool = False,
    confirmable: Callable[[], None] | None = None,
) -> ApplyOutcome:
    """Build the inverse plan of a run, show it through `confirm`, apply it, mark the run.

    `confirmable` is called once the run's record shows there is something to undo and `confirm` will be
    asked, before connecting: a caller that can already tell it could not confirm (no terminal, no --yes)
    refuses there, before any API call and before building a preview of thousands of changes.

    A run already rolled back is not rolled back again (`already_rolled_back_by` names the rollback); a run
    that wrote nothing (once its unknown outcomes are settled) has nothing to undo (`nothing_to_do`).
    A rollback of this run that was interrupted or stopped is resumed rather than a second one started.
    Writes of the run whose outcome is unknown (it was interrupted or stopped mid-call) are first settled
    from the live records, writing nothing to the CRM, by the same rules as resume; the changes it never
    started stay not started, so the rollback undoes exactly what the run applied.
    With `output`, the inverse plan is only written there for review (apply it with `apply`), its reads
    judged against the API budget first (`check_review_budget`); without, the reads and the writes of the
    plan they are expected to build are judged before the reads (`check_rollback_budget`); with
    `dry_run` everything is checked and read (the settling and the rollback's own resume too, in memory
    only), but nothing is written and no run is created.
    The original run stays locked throughout, so it cannot be applied (resumed) while it is undone.
    It is marked rolled back only when its rollbacks, together, put back every record it changed;
    otherwise it can be rolled back again (what the earlier rollbacks put back is then left out of the plan).
    """
    if output is not None:
        check_plan_output(output, ws.home)  # before anything else: `-o crmsweep.toml` must not cost the config
    with open_run(ws.home, run_id).lock(), contextlib.ExitStack() as stack:
        original = read_run(ws.home, run_id)
        if original.rolled_back_by:
            return _rolled_back_already(ws, original.plan, original.rolled_back_by)
        started = unfinished_rollback(ws.home, run_id)
        if output is not None and started is not None:
            # Its plan leaves out only what finished rollbacks re-created: written now, it would re-create
            # again what the stopped one re-created already (a second copy of each), and a second rollback
            # would run beside the one `rollback RUN` resumes.
            raise SafetyRefusal(
                f"rollback run {started.run_id} of run {run_id} stopped before it finished: a new plan would "
                f"re-create again what it re-created already. Finish it with `crmsweep rollback {run_id}` "
                f"(its plan: `{shlex.join(['crmsweep', 'preview', str(run_plan_path(ws, started.run_id))])}`)"
            )
        unfinished = None if output else started
        if unfinished is None and not original.applied_order and not original.count(Outcome.PENDING):
            # The run's own record answers: no write applied and none of unknown outcome to settle, so
            # there is nothing to read either, and connecting would only spend calls (the allowance read).
            return ApplyOutcome(plan=original.plan, report=None, nothing_to_do=True)
        if confirmable is not None and not (dry_run or output is not None):
            confirmable()
        connector = stack.enter_context(connect(ws, original.plan.header.connection))
        calls_before = connector.api_usage().calls
        # `-o` writes no record, so the apply budget check below is not reached: its reads are judged here.
        reads = None if output is None else check_review_budget(connector, ws, original, allow_over=allow_over_budget)
        if output is None and unfinished is None:
            # The org id first, which the plan checks read anyway: its answer reports the allowance, so the
            # budget is judged without a call of its own, and before the settling and recycle-bin reads.
            connector.org_id()
            check_rollback_budget(connector, ws, original, dry_run=dry_run, allow_over=allow_over_budget,
                                  spent=connector.api_usage().calls - calls_before)
        settled_in_memory = False
        if unfinished is not None:
            plan, text, resume = unfinished.plan, unfinished.plan_text, unfinished.run_id
            doomed = inactive_owners(connector, plan, {o.index for o in unfinished.outcomes if not o.done})
        else:
            state = settle_run(ws.home, run_id, connector, dry_run=dry_run)
            if not state.applied_order:
                # Nothing to undo is an answer, not bad input (and no plan to write out, or to apply).
                return ApplyOutcome(plan=state.plan, report=None, nothing_to_do=True, budget=reads,
                                    api_calls=connector.api_usage().calls - calls_before)
            settled_in_memory = dry_run and state.count(Outcome.PENDING) != original.count(Outcome.PENDING)
            plan = rollback_plan_of(ws.home, state, now=datetime.now(UTC), vocabulary=connector.vocabulary,
                                    gone=not_undeletable(connector, state), capabilities=connector.capabilities)
            doomed = inactive_owners(connector, plan)
            if doomed:
                # In the plan's notes: the preview says it before the admin confirms, as the written plan does.
                said = inactive_owner_notes(plan.changes, doomed, connector.vocabulary)
                plan = Plan.build(replace(plan.header, notes=(*plan.header.notes, *said)), plan.changes)
            text, resume = signed_json(plan, ws.home), None
        if output is not None:
            write_plan(plan, output, ws.home)
            return ApplyOutcome(plan=plan, report=None, written=output, budget=reads,
                                api_calls=connector.api_usage().calls - calls_before)
        if not settled_in_memory:
            check_plan(plan, connector, ws.home)
        work = (range(len(plan.changes)) if unfinished is None
                else [o.index for o in unfinished.outcomes if not o.done])
        verdict = check_apply_budget(connector, ws, plan, work, dry_run=dry_run, allow_over=allow_over_budget,
                                     spent=connector.api_usage().calls - calls_before)
        if not dry_run and not confirm(plan):
            return ApplyOutcome(plan=plan, report=None, budget=verdict)
        report = apply_plan(plan, text, connector, ws.home, progress=progress, resume_run=resume,
                            rules=apply_time_rules(ws), dry_run=dry_run,
                            unlogged_source=state if settled_in_memory else None, config_file=ws.config.path)
        if not dry_run:
            _mark_if_rolled_back(ws, plan, report)
        _note_inactive_owners(plan, report, doomed, connector.vocabulary)
        _note_recreated(ws, plan, report, connector)
        _keep_notes(ws, report)
        report = replace(report, api_calls=connector.api_usage().calls - calls_before)
    return ApplyOutcome(plan=plan, report=report, resumed=resume is not None, budget=verdict)


def started_run(ws: Workspace, run_id: str) -> RunState | None:
    """The interrupted or stopped rollback of run `run_id` that `rollback` would resume, if any."""
    return unfinished_rollback(ws.home, run_id)


def run_plan_path(ws: Workspace, run_id: str) -> Path:
    """The plan file a run applied: what `apply --resume` takes to finish it."""
    return open_run(ws.home, run_id).plan_path


def runs(ws: Workspace) -> list[RunSummary]:
    return list_runs(ws.home)


@dataclass(frozen=True)
class RunDetails:
    """One run as `runs show` tells it: its state from the log, when it ended, what rolled it back."""

    state: RunState
    finished: str | None  # when its latest session ended (end or stop entry); None while unfinished
    rollbacks: list[str]  # the runs that roll it back, oldest first, finished or not


def run(ws: Workspace, run_id: str) -> RunDetails:
    state = read_run(ws.home, run_id)
    sessions = [e for e in state.entries if e.get("t") in ("start", "resume", "end", "stop")]
    last = sessions[-1] if sessions else {}
    finished = str(last.get("time")) if last.get("t") in ("end", "stop") and last.get("time") else None
    # The rollbacks the run's log names, not a search of every run in the home (`apply --resume` asks
    # for this too): apply names a rollback run on the run it undoes before that rollback writes anything,
    # so only a rollback killed before its first write can be missing here, and it changed nothing.
    return RunDetails(state=state, finished=finished, rollbacks=list(state.rollbacks))


# --- reports ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QualityOutcome:
    report: QualityReport
    snapshot: SnapshotManifest
    chosen_as_newest: bool  # no --snapshot: the connection's newest snapshot was taken
    detail: pd.DataFrame | None  # one row per violation, when asked for


def quality_report(
    ws: Workspace,
    connection: str,
    *,
    snapshot_id: str | None = None,
    compare: str | None = None,
    since: date | None = None,
    detail: bool = False,
    now: datetime | None = None,
) -> QualityOutcome:
    """The data-quality report of one snapshot of `connection` (default: its newest), per owner, compared
    with an earlier snapshot: `compare`, else the newest taken before `since`, else the one before it.

    Read-only: it reads snapshots and never connects to the CRM.
    """
    if compare is not None and since is not None:
        raise BadInput("give --compare SNAPSHOT or --since DATE, not both")
    taken = list_snapshots(ws.home, connection)
    if connection not in ws.config.connection_names and not taken:
        raise BadInput(f"unknown connection '{connection}': known connections are "
                       f"{', '.join(ws.config.connection_names)}")
    if snapshot_id is None:
        if not taken:
            raise BadInput(f"no snapshot of connection '{connection}' yet: take one with "
                           f"`crmsweep backup -c {connection}`")
        current = open_snapshot(ws.home, taken[-1].snapshot_id)
    else:
        current = open_snapshot(ws.home, snapshot_id)
        if current.manifest.connection != connection:
            raise BadInput(f"snapshot {snapshot_id} is of connection '{current.manifest.connection}', "
                           f"not '{connection}': see `crmsweep snapshots list -c {connection}`")
    earlier = _earlier_snapshot(ws, current.manifest, taken, compare=compare, since=since)
    provider = providers.get(current.manifest.provider)
    vocabulary = provider.vocabulary
    rules = effective_rules(
        vocabulary.concept(DataQuality), provider.name, keep_defaults=ws.config.quality.defaults,
        extra=ws.config.quality.rules,
        known_objects=[*current.manifest.objects, *vocabulary.default_backup_objects],
    )
    configured = [r for r in ws.config.quality.rules if r.provider in (None, provider.name)]
    check_rule_fields(configured, {o: [f.name for f in current.fields(o)] for o in current.manifest.objects
                                   if o in {r.object for r in configured}})
    quality = vocabulary.concept(DataQuality)
    found = measure(current, vocabulary, rules, quality)
    report = build_report(current, vocabulary, rules, now=now or datetime.now(UTC),
                          worst=ws.config.quality.worst, earlier=earlier, measured=found)
    if earlier is None and compare is None and since is None:
        note = f"no earlier snapshot of connection '{connection}' to compare with"
        report = replace(report, notes=(*report.notes, note))
    return QualityOutcome(report=report, snapshot=current.manifest, chosen_as_newest=snapshot_id is None,
                          detail=detail_rows(found, quality) if detail else None)


def _earlier_snapshot(ws: Workspace, current: SnapshotManifest, taken: Sequence[SnapshotManifest], *,
                      compare: str | None, since: date | None) -> SnapshotReader | None:
    if compare is not None:
        earlier = open_snapshot(ws.home, compare)
        other = earlier.manifest
        if (other.provider, other.org_id) != (current.provider, current.org_id):
            raise BadInput(f"snapshot {compare} is of {other.provider} org {other.org_id}, but {current.snapshot_id} "
                           f"is of {current.provider} org {current.org_id}: compare snapshots of one org")
        if other.snapshot_id == current.snapshot_id:
            raise BadInput(f"--compare names the snapshot being reported ({compare}): name an earlier one")
        return earlier
    before = [m for m in taken if (m.started, m.snapshot_id) < (current.started, current.snapshot_id)]
    if since is not None:
        cutoff = canonical_datetime(datetime.combine(since, time(0), tzinfo=UTC)) or ""
        before = [m for m in before if m.started < cutoff]
        if not before:
            raise BadInput(f"no snapshot of connection '{current.connection}' was taken before {since.isoformat()}: "
                           f"see `crmsweep snapshots list -c {current.connection}`, or use --compare SNAPSHOT")
    return open_snapshot(ws.home, before[-1].snapshot_id) if before else None


def write_report(text: str, output: Path, home: Home | None = None) -> None:
    """Write a report atomically and privately (it names people and records): 0600, folders 0700; never among
    the records `home` keeps."""
    check_report_output(output, home)
    try:
        make_private_dirs(output.parent, "report folder")
        replace_private_file(output, text.encode("utf-8"))
    except OSError as exc:
        raise BadInput(f"cannot write the report to {output}: {exc.strerror}") from exc


def check_report_output(output: Path, home: Home | None = None) -> None:
    """A report may replace an earlier report, never another file (nor go among the records `home` keeps)."""
    check_output(output, "report", "quality.html", is_report_file, home)
