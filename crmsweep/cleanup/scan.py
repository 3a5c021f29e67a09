"""Scan: run the chosen passes over a snapshot, apply protections and safety caps, build the Plan.

Passes run in their declared order over the snapshot as the earlier passes' changes would leave it
(crmsweep/cleanup/effects.py), and a record an earlier pass already claimed is not proposed again. A
pass the provider cannot run (a concept it needs is not mapped) or whose objects the snapshot lacks is
skipped, with the reason in the plan. Pure: no I/O, the snapshot arrives as a view and the plan leaves
as a value.

A report-only pass (duplicates) proposes nothing, so no later pass depends on it: it runs on a worker
thread beside the passes after it, over the view it would have had in order, and its findings, notes and
errors take its place in the plan when it ends. The plan is the one a scan in order makes, byte for byte.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from operator import attrgetter
from typing import Any

import crmsweep
from crmsweep.cleanup.effects import EffectsView
from crmsweep.cleanup.passes import (
    PASSES,
    PassContext,
    PassOutput,
    PassSpec,
    absent_advice,
    missing_concept,
    validate_settings,
)
from crmsweep.cleanup.protect import Protections
from crmsweep.cleanup.shared_columns import SharedColumns
from crmsweep.cleanup.view import SnapshotView
from crmsweep.collector import without_collector
from crmsweep.errors import BadInput, SafetyRefusal
from crmsweep.model import Change, Plan, PlanHeader, ReviewItem, Vocabulary, canonical_datetime
from crmsweep.suggest import did_you_mean


@dataclass(frozen=True)
class ScanResult:
    plan: Plan
    per_pass: dict[str, int]  # changes proposed per pass (after protections)
    held_back: dict[str, dict[str, int]]  # pass -> reason -> count
    skipped: dict[str, str]  # pass -> why it could not run


def select_passes(passes: Sequence[str] | None) -> list[str]:
    """The passes to run, in registry order; BadInput for a name that is not registered."""
    if passes is None:
        return list(PASSES)
    unknown = [p for p in passes if p not in PASSES]
    if unknown:
        raise BadInput(f"unknown pass {unknown[0]!r}{did_you_mean(unknown[0], PASSES)}; "
                       f"known passes: {', '.join(PASSES)}")
    return [name for name in PASSES if name in set(passes)]


def check_scan_request(
    passes: Sequence[str] | None, pass_settings: Mapping[str, Mapping[str, Any]]
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The passes to run and every configured pass's validated settings; BadInput for a wrong one.

    Needs no snapshot, so a caller checks it before a backup costs the org its API calls.
    """
    selected = select_passes(passes)
    # Every configured pass is validated, run or not: a typo in config must not hide until the day it runs.
    settings = {name: validate_settings(name, pass_settings.get(name, {})) for name in pass_settings}
    return selected, settings


def check_caps(
    changes: Sequence[Change],
    *,
    max_changes: int | None,
    max_changes_per_object: int | None,
    subject: str = "the scan proposes",
) -> list[str]:
    """Each cap the changes exceed, as the sentence an admin reads ("`subject` 300 changes, over ...")."""
    over: list[str] = []
    if max_changes is not None and len(changes) > max_changes:
        over.append(f"{subject} {len(changes):,} changes, over [safety] max_changes = {max_changes:,}")
    if max_changes_per_object is not None:
        per_object: dict[str, int] = {}
        for change in changes:
            per_object[change.object] = per_object.get(change.object, 0) + 1
        for obj, count in per_object.items():
            if count > max_changes_per_object:
                over.append(
                    f"{subject} {count:,} changes to {obj}, "
                    f"over [safety] max_changes_per_object = {max_changes_per_object:,}"
                )
    return over


def _some(names: Sequence[str], shown: int = 12) -> str:
    """`names`, the first `shown` of them where there are more: a CRM's 55 objects, said in every
    preview and `runs show` of the plan, buried the note."""
    more = len(names) - shown
    return ", ".join(names) if more <= 0 else f"{', '.join(names[:shown])} and {more} more"


def _utc(now: datetime) -> datetime:
    # A naive clock is taken as UTC, the same rule canonical_datetime applies; and it is cut to the
    # milliseconds the plan's `created` keeps, so that a re-run from `created` (plan accept) sees the
    # very clock the scan saw.
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _refuse_unknown_running_user(
    changes: Sequence[Change], vocabulary: Vocabulary, connection: str, snapshot_id: str, selected: Sequence[str]
) -> None:
    """SafetyRefusal if, not knowing the user the connection runs as, a pass proposes changes to users:
    one of them could be that user, and apply would lock itself out halfway (or for good)."""
    users = vocabulary.user_object
    touching: dict[str, int] = {}
    for change in changes:
        if change.object == users:
            touching[change.pass_name] = touching.get(change.pass_name, 0) + 1
    if not touching:
        return
    name, count = next(iter(touching.items()))
    others = [p for p in selected if p not in touching]
    leave_out = f"leave {name} out (--pass {' --pass '.join(others)})" if others else f"leave {name} out"
    raise SafetyRefusal(
        f"cannot tell which user connection '{connection}' runs as (the CRM did not say, even after retries), "
        f"and {name} proposes changes to {count:,} {users} records, which could include it: scan again with "
        f"--snapshot {snapshot_id} once the CRM answers, or {leave_out}"
    )


def cannot_run(spec: PassSpec, view: SnapshotView, vocabulary: Vocabulary) -> str | None:
    """Why `spec` cannot run on this snapshot for this provider, or None: a concept it needs is not
    mapped, or an object it reads is not in the snapshot."""
    lacking = missing_concept(spec, vocabulary)
    if lacking is not None:
        return lacking
    absent = [r.object for r in spec.reads(vocabulary) if not r.optional and not view.has(r.object)]
    if absent:
        return f"the snapshot holds no {', '.join(absent)}: {absent_advice(absent)}"
    return None


def columns_read(spec: PassSpec, vocabulary: Vocabulary) -> dict[str, frozenset[str] | None]:
    """The columns `spec` says it reads per object (None: it does not say which), with the id, recycle-bin and
    label fields every pass may read of them; nothing where the pass cannot run for this provider."""
    if missing_concept(spec, vocabulary) is not None:
        return {}
    common = {vocabulary.id_field, *([vocabulary.deleted_field] if vocabulary.deleted_field else [])}
    return _union(
        {read.object: frozenset({*read.fields, *common, *vocabulary.label_fields.get(read.object, ())})
         if read.fields else None}
        for read in spec.reads(vocabulary)
    )


def _union(reads: Iterable[Mapping[str, frozenset[str] | None]]) -> dict[str, frozenset[str] | None]:
    merged: dict[str, frozenset[str] | None] = {}
    for each in reads:
        for obj, names in each.items():
            had = merged.get(obj, frozenset())
            merged[obj] = None if names is None or had is None else had | names
    return merged


def run_pass(spec: PassSpec, context: PassContext) -> PassOutput:
    """One pass over `context`, or its skip when it cannot run there."""
    why = cannot_run(spec, context.view, context.vocabulary)
    if why is not None:
        return PassOutput(changes=[], skipped=why)
    return spec.run(context)


def _claim(
    claimed: dict[str, list[tuple[str, set[str]]]], name: str, kept: Sequence[Change]
) -> tuple[list[Change], dict[str, int]]:
    """The changes of `kept` to records no earlier change claimed, and per earlier pass how many of `kept` it
    had claimed: one change per record, the first. `claimed` maps an object to the ids each run of changes
    claimed, with the pass that did (added to here). A run of changes to one object whose ids are unique and
    unclaimed is taken with set operations (a dict of every claimed id, built one insertion at a time, cost
    more than the rest of the claim); any other run a change at a time."""
    taken_by: dict[str, int] = {}
    new: list[Change] = []
    start = 0
    for object_name, of_object in groupby(map(attrgetter("object"), kept)):
        stop = start + len(list(of_object))
        run = kept[start:stop]
        start = stop
        ids = list(map(attrgetter("record_id"), run))
        unique = set(ids)
        runs = claimed.setdefault(object_name, [])
        if len(unique) == len(ids) and all(earlier.isdisjoint(unique) for _, earlier in runs):
            runs.append((name, unique))
            new += run
            continue
        mine: set[str] = set()
        runs.append((name, mine))
        for change, rid in zip(run, ids, strict=True):
            by = next((pass_name for pass_name, earlier in runs if rid in earlier), None)
            if by is not None:
                taken_by[by] = taken_by.get(by, 0) + 1
                continue
            mine.add(rid)
            new.append(change)
    return new, taken_by


# A scan makes objects it keeps (changes, before-images, findings) and no reference cycles: the cycle
# collector's walks over them found nothing and cost a second of CPU at 1M contacts (crmsweep/collector.py).
@without_collector
def scan_snapshot(
    view: SnapshotView,
    *,
    vocabulary: Vocabulary,
    passes: Sequence[str] | None,
    pass_settings: Mapping[str, Mapping[str, Any]],
    protect_recent_days: int,
    protect_objects: Sequence[str],
    protect_ids: Sequence[str],
    max_changes: int | None,
    max_changes_per_object: int | None,
    allow_over_cap: bool,
    connection: str,
    config_digest: str,
    now: datetime,
    running_user_id: str | None = None,
    running_user_unknown: bool = False,
    while_waiting: Callable[[Sequence[Change]], object] | None = None,
) -> ScanResult:
    """Propose a Plan from a snapshot. Raises BadInput (unknown pass or setting) or SafetyRefusal (caps).

    `running_user_id` is the user the connection authenticates as: never proposed, so a cleanup cannot
    deactivate the account it is applied with halfway through. `running_user_unknown` says the CRM would
    not tell who that is: then any change to a user is refused rather than guessed safe.

    `while_waiting(changes)` is called on this thread with the plan's changes, final and in their order, when
    passes beside (report-only) are still running once the others are done: time the scan would spend
    waiting for them, in which a caller can encode the changes (crmsweep/changes_ahead.py). Not called when
    the scan is refused or fails before then.
    """
    now = _utc(now)
    manifest = view.manifest
    if manifest.provider != vocabulary.provider:
        raise BadInput(
            f"snapshot {manifest.snapshot_id} is a {manifest.provider} backup "
            f"but the connection is {vocabulary.provider}; scan it with a connection of the same provider"
        )
    selected, settings = check_scan_request(passes, pass_settings)
    protections = Protections(
        vocabulary=vocabulary,
        now=now,
        recent_days=protect_recent_days,
        objects=tuple(protect_objects),
        ids=tuple(protect_ids),
        running_user_id=running_user_id,
    )

    notes: list[str] = [
        f"[protect] objects: {name!r} names no object in snapshot {manifest.snapshot_id}, so it holds nothing "
        f"back here{did_you_mean(name, manifest.objects)} (it holds {_some(sorted(manifest.objects))})"
        # (An in-memory view may list no objects in its manifest: nothing to tell then.)
        for name in (protections.unmatched_objects(list(manifest.objects)) if manifest.objects else ())
    ]
    ran_with: dict[str, dict[str, Any]] = {}
    changes: list[Change] = []
    claimed: dict[str, list[tuple[str, set[str]]]] = {}
    per_pass: dict[str, int] = {}
    # Each pass's outcome, gathered in pass order once every pass is done (a report-only one may finish late).
    outcomes: dict[str, _Outcome | _Background] = {}
    # One read of each column for the whole scan (crmsweep/cleanup/shared_columns.py), each held only while a
    # pass still to run, or still running, says it reads it.
    shared = SharedColumns(view)
    effects = EffectsView(shared, vocabulary)
    reads = {name: columns_read(PASSES[name], vocabulary) for name in selected}

    def read_from(at: int) -> dict[str, frozenset[str] | None]:
        """What the passes still running, and the passes from `at` on, say they read."""
        return _union(reads[n] for n in [*_running(outcomes), *selected[at:]])

    shared.expect(read_from(0))
    shared.read_ahead(_read_order(view, list(reads.values())))
    try:
        for at, name in enumerate(selected):
            spec = PASSES[name]
            per_pass[name] = 0
            context = PassContext(
                backed_up=shared,
                earlier=tuple(changes),
                protections=protections,
                # A pass run beside the others gets a view of its own: the next pass's view lets go of the
                # columns the one before it made, and this one is still reading them.
                view=effects.branch() if spec.report_only else effects,
                vocabulary=vocabulary,
                now=now,
                settings=settings[name] if name in settings else validate_settings(name, {}),
            )
            ran_with[name] = dict(context.settings)
            shared.expect(read_from(at))
            if spec.report_only:
                # It proposes nothing, so no later pass waits for it: it runs on a worker beside them (its work
                # is mostly Arrow's and rapidfuzz's, which let go of the GIL), and its findings join the plan
                # in its place.
                outcomes[name] = _Background(functools.partial(_report, spec, context))
                continue
            output = run_pass(spec, context)
            kept, protected = protections.apply(output.changes)
            new, taken_by = _claim(claimed, name, kept)
            per_pass[name] = len(new)
            changes.extend(new)
            effects = effects.with_changes(new)
            shared.keep(read_from(at + 1))
            outcomes[name] = _outcome(name, output, protected, taken_by)
    except Exception:
        # The error of an earlier pass still running, if it has one, is the one a scan in order would raise.
        # (A Ctrl-C does not wait for it.)
        _finish(outcomes)
        raise
    finally:
        shared.stop_reading_ahead()

    try:
        if running_user_unknown:
            _refuse_unknown_running_user(changes, vocabulary, connection, manifest.snapshot_id, selected)
        over = check_caps(changes, max_changes=max_changes, max_changes_per_object=max_changes_per_object)
        if over and not allow_over_cap:
            raise SafetyRefusal(f"{over[0]}: narrow the passes or raise the cap, or pass --allow-over-cap")
        if while_waiting is not None and _running(outcomes):
            while_waiting(changes)
    except Exception:
        _finish(outcomes)  # a pass's own error comes first, as in a scan in order
        raise
    review: list[ReviewItem] = []
    held_back: dict[str, dict[str, int]] = {}
    skipped: dict[str, str] = {}
    for name, outcome in _finish(outcomes).items():
        review.extend(outcome.review)
        notes.extend(outcome.notes)
        if outcome.skipped is not None:
            skipped[name] = outcome.skipped
        if outcome.held:
            held_back[name] = outcome.held
    notes.extend(f"{sentence}; allowed by --allow-over-cap" for sentence in over)

    header = PlanHeader(
        plan_id=uuid.uuid4().hex,
        created=canonical_datetime(now) or "",
        tool_version=crmsweep.__version__,
        provider=manifest.provider,
        org_id=manifest.org_id,
        connection=connection,
        source={"kind": "snapshot", "id": manifest.snapshot_id},
        config_digest=config_digest,
        passes=tuple(selected),
        held_back=held_back,
        notes=tuple(notes),
        pass_settings=ran_with,
        over_cap_allowed=bool(over),
        review=tuple(review),
    )
    return ScanResult(plan=Plan.build(header, changes), per_pass=per_pass, held_back=held_back, skipped=skipped)


@dataclass(frozen=True)
class _Outcome:
    """What one pass adds to the plan's header, besides its changes."""

    review: Sequence[ReviewItem]
    notes: Sequence[str]
    skipped: str | None
    held: dict[str, int]  # reason -> count, none zero


def _outcome(name: str, output: PassOutput, protected: Mapping[str, int], taken_by: Mapping[str, int]) -> _Outcome:
    held = dict(output.held_back)
    for reason, count in protected.items():
        held[reason] = held.get(reason, 0) + count
    notes = [f"{name}: {note}" for note in output.notes]
    if output.skipped is not None:
        notes.append(f"{name}: skipped: {output.skipped}")
    notes += [f"{name}: {n:,} records already changed by {earlier}" for earlier, n in taken_by.items()]
    return _Outcome(review=output.review, notes=notes, skipped=output.skipped,
                    held={reason: n for reason, n in held.items() if n})


def _report(spec: PassSpec, context: PassContext) -> _Outcome:
    """A report-only pass's outcome (it proposes no change, so nothing is protected or claimed)."""
    output = run_pass(spec, context)
    if output.changes:
        raise RuntimeError(f"{spec.name} is report-only but proposed {len(output.changes)} changes")
    return _outcome(spec.name, output, {}, {})


class _Background:
    """`work()` on a thread of its own, started at once; `result()` waits for it and gives its outcome, or
    raises its error. A daemon: a scan given up (Ctrl-C, an error) does not wait for it to end, and it writes
    nothing."""

    def __init__(self, work: Callable[[], _Outcome]) -> None:
        self._work = work
        self._outcome: _Outcome | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="crmsweep-pass", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._outcome = self._work()
        except BaseException as exc:  # raised in the scan's own thread, by `result`
            self._error = exc

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> _Outcome:
        self._thread.join()
        error, self._error = self._error, None
        if error is not None:
            # Let go of, here and in this frame: the error's traceback holds the worker's frame, which holds this
            # object, and this frame, which holds `error`: cycles that would keep the failed pass's frames (and
            # their data) alive until a full collection.
            try:
                raise error
            finally:
                del error
        assert self._outcome is not None
        return self._outcome


def _read_order(view: SnapshotView, reads: Sequence[Mapping[str, frozenset[str] | None]]) -> list[tuple[str, str]]:
    """The (object, column)s the passes say they read, each once, in the order they first ask for them (a pass's
    objects in its order, their columns by name); none of an object the snapshot lacks, nor a column it has not."""
    order: dict[tuple[str, str], None] = {}
    for each in reads:
        for obj, names in each.items():
            if names is None or not view.has(obj):
                continue
            known = {spec.name for spec in view.fields(obj)}
            order.update(((obj, name), None) for name in sorted(names) if name in known)
    return list(order)


def _running(outcomes: Mapping[str, _Outcome | _Background]) -> list[str]:
    """The passes still running beside the scan."""
    return [name for name, outcome in outcomes.items() if isinstance(outcome, _Background) and not outcome.done()]


def _finish(outcomes: Mapping[str, _Outcome | _Background]) -> dict[str, _Outcome]:
    """Each pass's outcome in pass order, waiting for those still running; the first error of one, in pass
    order, is raised."""
    return {name: outcome.result() if isinstance(outcome, _Background) else outcome
            for name, outcome in outcomes.items()}
