"""`crmsweep apply` and `crmsweep rollback` (the runs they leave: commands/runs.py).

Exit codes beyond the common ones: 4 when the admin declines the confirmation (or types the wrong
number of deletions): nothing was written and no run was created; 130 on Ctrl-C, after printing the
command that resumes the run if one had started.
"""

from __future__ import annotations

import os
import shlex
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from crmsweep import api
from crmsweep.backup.runlog import STATUS_ROLLED_BACK, RunState
from crmsweep.cleanup.apply import ApplyReport
from crmsweep.cleanup.drift import DELETE_OPS, SINCE_BACKUP, SKIP_DRIFT
from crmsweep.cleanup.labels import one_line
from crmsweep.cleanup.passes import PASSES
from crmsweep.cleanup.preview import breakdown, ops_breakdown, removal_words, unlisted, vocabulary_of
from crmsweep.commands.common import (
    NO_TERMINAL,
    AllowOverBudgetOpt,
    ConfigOpt,
    HomeOpt,
    JsonOpt,
    YesOpt,
    apply_progress,
    confirmer,
    emit_json,
    err,
    handle_errors,
    pasteable,
    refuse_without_terminal,
    workspace,
)
from crmsweep.commands.plan import PlanArg, print_preview
from crmsweep.errors import EXIT_DECLINED, EXIT_INTERRUPTED, EXIT_PARTIAL, Interrupted, NeedsResume
from crmsweep.model import Change, Plan

SHOW_ITEMS = 20

DryRunOpt = Annotated[
    bool,
    typer.Option("--dry-run", help="Do every check and read, report what would be written; write nothing, no run."),
]


def command_line(args: Sequence[str], *, config: Path | None, home: Path | None) -> str:
    """A crmsweep command that pastes as is: absolute paths, the --config and --home given, shell-quoted."""
    parts = ["crmsweep", *args]
    if config is not None:
        parts += ["--config", os.path.abspath(config)]
    if home is not None:
        parts += ["--home", os.path.abspath(home)]
    return shlex.join(parts)


def resume_command(
    plan_file: Path,
    run_id: str,
    *,
    config: Path | None,
    home: Path | None,
    connection: str | None = None,
    yes: bool = False,
) -> str:
    args = ["apply", os.path.abspath(plan_file), "--resume", run_id]
    if connection:
        args += ["--connection", connection]
    return command_line([*args, *(["--yes"] if yes else [])], config=config, home=home)


def drift_means(items: Sequence[Mapping[str, object]], scan: str | None, *, dry_run: bool = False,
                stopped: bool = False) -> str | None:
    """The next step for the records skipped as drift (None if none, or no `scan` command fits: a
    rollback's drift is an edit made after its run, which a fresh scan would not put back).
    `scan`: the command that backs up and plans again. One line for them all, after their list. A dry run
    says what apply would skip; a stopped run is finished first: a scan over the plan's file before its
    resume would leave the resume another plan than its run's."""
    drifted = sum(1 for item in items if item.get("reason") == SKIP_DRIFT)
    if not drifted or scan is None:
        return None
    what = (f"{drifted:,} would be skipped as drift: changed in the CRM since {SINCE_BACKUP}, so apply leaves them "
            "as they are" if dry_run else
            f"{drifted:,} skipped as drift: changed in the CRM since {SINCE_BACKUP}, so left as they are")
    when = "once this run is resumed and done (below), " if stopped else ""
    return f"{what}. To plan them again, {when}back up and scan again (scan takes a fresh backup first): `{scan}`"


def scan_command(connection: str, plan_file: str, *, passes: Sequence[str] = (), config: Path | None,
                 home: Path | None) -> str:
    """`crmsweep scan` for `connection`, writing a fresh plan to `plan_file`: what drift skips call for.
    `passes`: the plan's own (its header's), named with --pass unless they are every pass (scan's default),
    so the scan plans again what the plan did, not every pass the admin left out of it."""
    chosen = [name for name in PASSES if name in set(passes)]
    given = [] if not chosen or chosen == list(PASSES) else [arg for name in chosen for arg in ("--pass", name)]
    return command_line(["scan", "-c", connection, "-o", plan_file, *given], config=config, home=home)


def report_json(
    report: ApplyReport, resume: str, *, plan_notes: Sequence[str], scan: str | None = None
) -> dict[str, object]:
    """The answer of `--json`. A dry run writes nothing, so its applied/skipped/failed are 0 and what it
    would do is under would_apply, would_skip (counts) and would_write, would_skip_items (lists)."""
    dry = report.dry_run
    # A plan a finished run applied already: this invocation wrote nothing, so it answers as a rollback
    # of a run rolled back already does (counts 0, nothing_to_do) and names that run under already_applied_by.
    # Its counts are the earlier run's, which `runs show` gives; "run" stays that of this invocation: none.
    done_before = report.already_applied is not None
    none_now = dry or done_before
    return {
        "run": None if done_before else report.run_id or None,
        "plan": report.plan_id,
        "applied": 0 if none_now else report.applied,
        "skipped": 0 if none_now else report.skipped,
        "failed": 0 if none_now else report.failed,
        "nothing_to_do": done_before,
        "remaining": report.remaining,
        # Of "applied" (the whole run's), those earlier sessions of a resumed run applied.
        "applied_earlier": 0 if none_now else report.applied_earlier,
        "stopped": report.stopped,
        "api_calls": report.api_calls,
        "skipped_items": [] if none_now else report.skipped_items,
        "failed_items": [] if none_now else report.failed_items,
        "resume": resume if report.stopped else None,
        "dry_run": dry,
        # A dry run of a plan applied already would do nothing: the earlier run's skips are not this one's.
        "would_apply": (0 if done_before else report.applied) if dry else None,
        "would_skip": (0 if done_before else report.skipped) if dry else None,
        "would_write": ([] if done_before else report.planned_items) if dry else None,
        "would_skip_items": ([] if done_before else report.skipped_items) if dry else None,
        # The status of the finished run that applied the plan before (null: not applied before), and its id.
        "already_applied": report.already_applied,
        "already_applied_by": report.run_id if done_before else None,
        # What to do about the drift skips (the same line the text summary prints after them), or null.
        "drift_means": None if report.already_applied else drift_means(report.skipped_items, scan, dry_run=dry,
                                                                       stopped=bool(report.stopped)),
        # What this run found beyond its counts (`runs show` run_notes); the plan's own notes, as `runs show`
        # has them, are plan_notes. "notes" is kept as it was (the run's) for scripts written before them.
        "run_notes": list(map(pasteable, report.notes)),
        "plan_notes": list(plan_notes),
        "notes": list(map(pasteable, report.notes)),
        # Old id -> new id of what the run re-created, by object: the only way to find a re-created record.
        "id_map": report.id_map,
    }


def undo_command(report: ApplyReport, *, config: Path | None, home: Path | None) -> str | None:
    """The command that undoes the run `report` tells of (`--json`'s "undo"); None while it is unfinished
    (stopped, or a dry run: finish it first) or when it wrote nothing, since nothing is then to put back.
    A rollback run is undone alike: rolling it back writes again what it put back."""
    finished = not (report.stopped or report.dry_run or report.already_applied)
    return command_line(["rollback", report.run_id], config=config, home=home) if finished and report.applied else None


def budget_json(outcome: api.ApplyOutcome) -> dict[str, object] | None:
    """What the API budget check found before the first write (None: no check, the plan was done already)."""
    return outcome.budget.to_dict() if outcome.budget is not None else None


def render_report(
    report: ApplyReport, *, resume_hint: str, provider: str | None = None, scan: str | None = None
) -> None:
    """What a run did (or a dry run would do); ops in `provider`'s words where given; `scan`: the command
    that plans drift-skipped records again (see `drift_means`)."""
    if report.already_applied:
        # A plan is applied once: after its run was rolled back, what is wanted again is a fresh plan.
        again = (f" To clean up again, scan again for a fresh plan: `{scan}`." if scan and
                 report.already_applied == STATUS_ROLLED_BACK else "")
        plan = "Dry run: plan" if report.dry_run else "Plan"
        err.print(one_line(f"{plan} {report.plan_id} was already applied by run {report.run_id} "
                           f"({report.already_applied}): nothing to do, nothing applied now. "
                           f"See `crmsweep runs show {report.run_id}`.{again}"), markup=False)
        return
    if report.dry_run:
        planned = ops_breakdown(((str(i["op"]), str(i["object"])) for i in report.planned_items),
                                vocabulary_of(provider) if provider else None)
        # Writes the CRM will refuse as they stand (an owner inactive in it) are counted apart: not a success.
        doomed = sum(1 for i in report.planned_items if i.get("fix"))
        failing = f", {doomed:,} of which will fail (see below)" if doomed else ""
        err.print(f"Dry run: would write {report.applied:,} of {report.total:,} changes "
                  f"({planned}){failing}; would skip {report.skipped:,} "
                  f"({report.api_calls:,} API calls, all reads). Nothing was written.")
    else:
        # Said apart from the API calls, which are this resume's own: "of them" read as calls.
        earlier = (f" {report.applied_earlier:,} of the {report.applied:,} applied were applied before this resume."
                   if report.applied_earlier else "")
        err.print(f"Run {report.run_id}: applied {report.applied:,}, skipped {report.skipped:,}, "
                  f"failed {report.failed:,} of {report.total:,} ({report.api_calls:,} API calls).{earlier}")
    for title, items in (("Skipped", report.skipped_items), ("Failed", report.failed_items)):
        for item in items[:SHOW_ITEMS]:
            detail = item.get("detail") or item.get("message") or ""
            code = item.get("reason") or item.get("error_code") or ""
            line = f"  {title.lower()}: {item.get('object', '')} {item.get('id', '')}  {code}  {detail}".rstrip()
            err.print(one_line(line), markup=False)
        if len(items) > SHOW_ITEMS:
            where = f"`crmsweep runs show {report.run_id}`" if report.run_id else "`--json`"
            more = f"  … and {len(items) - SHOW_ITEMS:,} more {title.lower()}; {where} lists them all"
            err.print(one_line(pasteable(more)), markup=False)
    drift = drift_means(report.skipped_items, scan, dry_run=report.dry_run, stopped=bool(report.stopped))
    if drift:
        err.print(one_line(drift), style="yellow", markup=False)
    for note in report.notes:
        # A note may name a command (`crmsweep runs show RUN`): with the --config and --home in force.
        err.print(one_line(pasteable(note)), style="yellow", markup=False)
    if report.stopped:
        err.print(one_line(f"Stopped: {report.stopped}. {report.remaining:,} changes remain: {resume_hint}"),
                  style="yellow", markup=False)


def failures_hint(report: ApplyReport, *, again: str | None) -> None:
    """A failed change is final: resume does not retry it (`again`: the command that does, if any)."""
    if not report.failed or report.stopped or report.dry_run or report.already_applied:
        return
    if again is not None:
        # A failure that says what fixes it (an owner inactive in the CRM) is told so, not as a cause to find.
        fixes = Counter(str(item["fix"]) for item in report.failed_items if item.get("fix"))
        if not fixes:
            err.print(f"{report.failed:,} changes failed; once their cause is fixed, `{again}` tries them again.",
                      markup=False)
            return
        told = "".join(f" {n:,} of them: {fix} (once reactivated, `{again}` tries them again)."
                       for fix, n in fixes.items())
        rest = report.failed - fixes.total()
        others = f" The other {rest:,}: once their cause is fixed, `{again}` tries them again." if rest else ""
        err.print(one_line(f"{report.failed:,} changes failed.{told}{others}"), markup=False)
        return
    err.print(f"{report.failed:,} changes failed: that is final, resume does not retry them. Fix the cause, then "
              "scan again: a fresh plan proposes them again if they still qualify.", markup=False)


def exit_for(report: ApplyReport | None) -> None:
    # A plan applied already: nothing was done now, so the earlier run's failures do not fail this command.
    if report is not None and not report.already_applied and (report.failed or report.stopped):
        raise typer.Exit(EXIT_PARTIAL)


def confirm_writes(
    ws: api.Workspace,
    yes: bool,
    ask: Callable[[Plan], str],
    *,
    before: Callable[[Plan], None] | None = None,
    connection: str | None = None,
    to_write: Callable[[Plan], Sequence[Change]] | None = None,
    no_terminal: str = NO_TERMINAL,
) -> Callable[[Plan], bool]:
    """Ask before writing (see `confirmer`); above `[safety] confirm_typed_over` deletions, the admin types
    their number or the name of the connection written to (`connection`, else the plan's), since a
    reflexive `y` must not delete hundreds of records.
    `to_write`: the changes still to write (a resume: not those done already); default all of the plan's.
    `no_terminal`: the refusal without a terminal and --yes, made before `before` shows anything."""
    plain = confirmer(yes, ask, no_terminal=no_terminal)
    over = ws.config.safety.confirm_typed_over

    def confirm(plan: Plan) -> bool:
        try:
            return typed(plan)
        except typer.Abort:
            # Ctrl-C (or end of input) at the prompt: nothing was written, and the exit code says so.
            raise KeyboardInterrupt from None

    def typed(plan: Plan) -> bool:
        # Refused first: a preview (thousands of lines) printed only to be refused buries the one line.
        refuse_without_terminal(yes, no_terminal)
        if before is not None:
            before(plan)
        writes = to_write(plan) if to_write else plan.changes
        deletions = sum(1 for c in writes if c.op in DELETE_OPS)
        if yes or deletions <= over:
            return plain(plan)
        err.print(one_line(ask(plan)), markup=False)
        answer = typer.prompt(
            # In the CRM's words: an archive the CRM keeps restorable is not told as a delete.
            f"This {removal_words(writes, DELETE_OPS, plan.header.provider)}. "
            f"Type {deletions:,} (or the connection name) to go on",
            default="", show_default=False, err=True,
        ).strip()
        # As shown (1,234) or as digits: both are the number asked for.
        if answer in (str(deletions), f"{deletions:,}", connection or plan.header.connection):
            return True
        err.print(f"You typed {answer!r}, not {deletions:,}.", markup=False)
        return False

    return confirm


@contextmanager
def resume_hints(resume: Callable[[str, str | None], str], *, as_json: bool = False) -> Iterator[None]:
    """Ctrl-C mid-run: say which run stopped and the exact command that finishes it, then exit 130.
    A refusal until a run is resumed gets that command too. `resume(run_id, plan_file)` builds it. With
    `as_json` both are also the JSON error on stdout, with the run and the command apart: a script that
    stopped a run must learn which one, and how to finish it."""
    try:
        yield
    except NeedsResume as exc:
        command = resume(exc.run_id, exc.plan_file)
        err.print(f"crmsweep: {exc.reason} {command}", markup=False, style="red")
        if as_json:
            emit_json({"error": {"message": f"{exc.reason} {command}", "exit_code": exc.exit_code,
                                 "run": exc.run_id, "resume": command}})
        raise typer.Exit(exc.exit_code) from None
    except Interrupted as exc:
        command = resume(exc.run_id, None)
        message = f"interrupted: run {exc.run_id} stopped; its log is consistent. Finish it with: {command}"
        err.print(f"crmsweep: {message}", markup=False)
        if as_json:
            emit_json({"error": {"message": message, "exit_code": EXIT_INTERRUPTED, "run": exc.run_id,
                                 "resume": command}})
        raise typer.Exit(EXIT_INTERRUPTED) from None


def already_rolled_back(run_id: str, outcome: api.ApplyOutcome, *, as_json: bool) -> None:
    """A rollback of run `run_id`, which was rolled back already: a repeat that writes nothing, so not a refusal
    (exit 0), told alike whether it came as `rollback RUN` or as `apply` of a rollback plan."""
    by, at = outcome.already_rolled_back_by, outcome.already_rolled_back_at
    if as_json:
        emit_json({"rollback_of": run_id, "already_rolled_back_by": by, "already_rolled_back_at": at, "run": None,
                   "applied": 0, "skipped": 0, "failed": 0, "nothing_to_do": True, "api_calls": 0, "undo": None})
        return
    err.print(f"Nothing to do: run {run_id} was already rolled back by run {by}{f' at {at}' if at else ''}; "
              f"nothing was written now. See `crmsweep runs show {by}`.", markup=False)


def declined(what: str) -> None:
    err.print(f"Nothing {what}: declined at the confirmation.")
    raise typer.Exit(EXIT_DECLINED)


def question(plan: Plan, connection: str | None = None) -> str:
    """What the admin says yes to: what the plan does, where (the connection written to: `connection`,
    else the plan's), and which plan exactly (its digest)."""
    return (f"Apply {len(plan.changes):,} changes ({breakdown(plan)}) to {plan.header.provider} org "
            f"{plan.header.org_id} ('{connection or plan.header.connection}')? "
            f"Plan {plan.header.plan_id}, {plan.digest}")


def where(plan: Plan) -> str:
    return (f"on {plan.header.provider} org {plan.header.org_id} ('{plan.header.connection}')? "
            f"Plan {plan.header.plan_id}, {plan.digest}")


def remaining(state: RunState) -> list[Change]:
    """The changes of a run not done yet (pending or not started): what resuming it may write."""
    return [state.plan.changes[o.index] for o in state.outcomes if not o.done]


def progress_text(state: RunState) -> str:
    left = remaining(state)
    done = len(state.outcomes) - len(left)
    changes = ops_breakdown(((c.op.value, c.object) for c in left), vocabulary_of(state.plan.header.provider))
    return f"{done:,} of {len(state.outcomes):,} changes done, {len(left):,} remain ({changes})"


@handle_errors
def apply(
    plan_file: PlanArg,
    yes: YesOpt = False,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Finish a stopped or killed run of this plan.")
    ] = None,
    connection: Annotated[
        str | None, typer.Option("--connection", "-c", help="Override the connection named in the plan.")
    ] = None,
    dry_run: DryRunOpt = False,
    allow_over_budget: AllowOverBudgetOpt = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Apply exactly the reviewed plan: checked, batched, drift-aware, logged before every write."""
    ws = workspace(config, home)

    # A command to finish a run names the config and home in effect, however they were given (options,
    # CRMSWEEP_CONFIG and CRMSWEEP_HOME): it pastes as is in another shell, and is the one `runs show` gives.
    def resume_hint(run_id: str, plan: str | None = None) -> str:
        return resume_command(Path(plan) if plan else plan_file, run_id, config=ws.config.path, home=ws.home.root,
                              connection=connection, yes=yes)

    def ask(plan: Plan) -> str:
        return question(plan, connection)

    to_write: Callable[[Plan], Sequence[Change]] | None = None
    if resume is not None:
        resumed = api.run(ws, resume).state

        def ask(plan: Plan) -> str:
            return f"Resume run {resume}: {progress_text(resumed)} {where(plan)}"

        def to_write(plan: Plan) -> Sequence[Change]:
            return remaining(resumed)

    with resume_hints(resume_hint, as_json=as_json), apply_progress(not as_json) as progress:
        # The review it names is this plan's, and the command pastes as is (--config/--home added on the way out).
        no_terminal = (f"no terminal to confirm on: review the plan with "
                       f"`crmsweep preview {shlex.quote(os.path.abspath(plan_file))}`, then pass --yes")
        confirm = confirm_writes(ws, yes, ask, connection=connection, to_write=to_write, no_terminal=no_terminal)
        outcome = api.apply(ws, plan_file, confirm=confirm, connection=connection,
                            resume_run=resume, progress=progress, dry_run=dry_run,
                            allow_over_budget=allow_over_budget)
    report = outcome.report
    if outcome.already_rolled_back_by is not None and outcome.plan.header.rollback_of:
        already_rolled_back(outcome.plan.header.rollback_of, outcome, as_json=as_json)
        return
    if outcome.nothing_to_do:
        if as_json:
            emit_json({"run": None, "applied": 0, "skipped": 0, "failed": 0, "nothing_to_do": True,
                       "api_calls": outcome.api_calls, "budget": None, "undo": None,
                       "rollback_of": outcome.plan.header.rollback_of,
                       "plan_notes": list(outcome.plan.header.notes), "run_notes": [], "notes": []})
        else:
            err.print("The plan holds no changes: nothing to apply, and no run was made.")
        return
    if report is None:
        declined("applied")
        return
    finished = not (report.stopped or report.dry_run or report.already_applied)
    undo = undo_command(report, config=config, home=home)
    # Re-scanning into the applied plan's file is safe: the run keeps its own copy (resume, rollback).
    scan = None if outcome.plan.header.rollback_of else scan_command(
        connection or outcome.plan.header.connection, os.path.abspath(plan_file), passes=outcome.plan.header.passes,
        config=config, home=home)
    if as_json:
        # A rollback plan (`rollback -o`) says which run it undoes, as `rollback --json` does; else null.
        emit_json({**report_json(report, resume_hint(report.run_id), plan_notes=outcome.plan.header.notes,
                                 scan=scan), "undo": undo,
                   "budget": budget_json(outcome), "rollback_of": outcome.plan.header.rollback_of})
    else:
        render_report(report, resume_hint=f"`{resume_hint(report.run_id)}`", provider=outcome.plan.header.provider,
                      scan=scan)
        failures_hint(report, again=None)
        if finished:
            err.print(f"To undo: `{undo}`" if undo else "Nothing was written, so there is nothing to undo.")
    exit_for(report)


ROLLBACK_PREVIEW_LIMIT = 50  # change lines an object, as `preview --limit 50`


def unlisted_text(hidden: int) -> str:
    return (f"{hidden:,} more changes of the rollback plan are not listed above "
            f"(at most {ROLLBACK_PREVIEW_LIMIT} an object)")


@handle_errors
def rollback(
    run_id: Annotated[str, typer.Argument(help="The run to undo, as `crmsweep runs list` shows it.")],
    yes: YesOpt = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Only write the inverse plan to this file, for review; apply nothing."),
    ] = None,
    dry_run: DryRunOpt = False,
    allow_over_budget: AllowOverBudgetOpt = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Undo a run: undelete (ids kept), patch back before-values, reactivate; previewed, then applied.

    Run again after an interrupted rollback, it finishes that rollback rather than starting another.
    """
    ws = workspace(config, home)
    again = command_line(["rollback", run_id, *(["--yes"] if yes else [])], config=ws.config.path, home=ws.home.root)

    hidden: list[int] = []

    def show(plan: Plan) -> None:
        if as_json:
            return
        # Bounded with --yes too: a prompt-free rollback of thousands printed every line, and its report
        # scrolled away under them. Asked, the admin may decline and write the whole plan with -o; with --yes
        # the rollback run keeps it, and its report is followed by where.
        print_preview(plan, limit=ROLLBACK_PREVIEW_LIMIT)
        hidden.append(unlisted(plan, ROLLBACK_PREVIEW_LIMIT))
        if hidden[0] and not yes:
            err.print(f"{unlisted_text(hidden[0])}: to see them all, decline and write the plan with "
                      f"`crmsweep rollback {run_id} -o FILE`, then `crmsweep preview FILE`.", markup=False)

    unfinished = api.started_run(ws, run_id)

    def ask(plan: Plan) -> str:
        if unfinished is not None and unfinished.plan.digest == plan.digest:
            return f"Finish rolling back run {run_id}: {progress_text(unfinished)} {where(plan)}"
        return f"Roll back run {run_id}: {len(plan.changes):,} changes ({breakdown(plan)}) {where(plan)}"

    def to_write(plan: Plan) -> Sequence[Change]:
        if unfinished is not None and unfinished.plan.digest == plan.digest:
            return remaining(unfinished)
        return plan.changes

    def settle(run: str, plan: str | None) -> str:
        if plan is None:  # the interrupted rollback itself: `rollback RUN` finishes it
            return again
        return resume_command(Path(plan), run, config=ws.config.path, home=ws.home.root, yes=yes)

    review = f"undo-{run_id}.json"
    no_terminal = (f"no terminal to confirm the rollback of run {run_id} on: pass --yes, or review it first with "
                   f"`{shlex.join(['crmsweep', 'rollback', run_id, '-o', review])}`, then "
                   f"`{shlex.join(['crmsweep', 'preview', review])}`")
    if unfinished is not None:
        # `rollback -o` is refused while a rollback is unfinished (a second plan would re-create its records
        # again): the plan to review is the one being finished.
        started = str(api.run_plan_path(ws, unfinished.run_id))
        no_terminal = (f"no terminal to confirm on: finishing rollback run {unfinished.run_id} of run {run_id}; "
                       f"review its plan with `{shlex.join(['crmsweep', 'preview', started])}`, then pass --yes")

    def confirmable() -> None:
        refuse_without_terminal(yes, no_terminal)

    with resume_hints(settle, as_json=as_json), apply_progress(not as_json) as progress:
        confirm = confirm_writes(ws, yes, ask, before=show, to_write=to_write, no_terminal=no_terminal)
        outcome = api.rollback(ws, run_id, confirm=confirm, progress=progress, dry_run=dry_run, output=output,
                               allow_over_budget=allow_over_budget, confirmable=confirmable)
    if outcome.already_rolled_back_by is not None:
        already_rolled_back(run_id, outcome, as_json=as_json)
        return
    if outcome.nothing_to_do:
        if as_json:
            emit_json({"rollback_of": run_id, "run": None, "applied": 0, "skipped": 0, "failed": 0,
                       "nothing_to_do": True, "api_calls": outcome.api_calls, "budget": budget_json(outcome),
                       "undo": None, **({"plan": None, "path": None} if output is not None else {})})
        else:
            err.print(f"Run {run_id} wrote nothing: there is nothing to roll back"
                      f"{' (no plan was written)' if output is not None else ''}.", markup=False)
        return
    if outcome.written is not None:
        path = os.path.abspath(outcome.written)
        if as_json:
            emit_json({"plan": outcome.plan.header.plan_id, "path": path, "changes": len(outcome.plan.changes),
                       "rollback_of": run_id, "api_calls": outcome.api_calls, "budget": budget_json(outcome),
                       "undo": None})  # a plan written for review: no run, nothing yet to undo
        else:
            err.print(f"Wrote the rollback plan of run {run_id} ({len(outcome.plan.changes):,} changes) to {path}; "
                      f"nothing was applied. Review it with `{shlex.join(['crmsweep', 'preview', path])}`, "
                      f"apply it with `{command_line(['apply', path], config=config, home=home)}`.", markup=False)
        return
    report = outcome.report
    if report is None:
        declined("rolled back")
        return
    if as_json:
        # As `apply --json` says it: the command that undoes this (rollback) run, or null.
        emit_json({**report_json(report, again, plan_notes=outcome.plan.header.notes), "rollback_of": run_id,
                   "resumed": outcome.resumed, "budget": budget_json(outcome),
                   "undo": undo_command(report, config=config, home=home)})
    else:
        if outcome.resumed:
            err.print(f"Finished the interrupted rollback run {report.run_id} of run {run_id}.")
        render_report(report, resume_hint=f"`{again}`", provider=outcome.plan.header.provider)
        failures_hint(report, again=again)
        if yes and hidden and hidden[0] and report.run_id:
            kept = shlex.join(["crmsweep", "preview", str(api.run_plan_path(ws, report.run_id))])
            err.print(f"{unlisted_text(hidden[0])}: see them all with `{kept}`.", markup=False)
    exit_for(report)
