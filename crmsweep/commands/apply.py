"""`crmsweep apply` and `crmsweep rollback` (the runs they leave: commands/runs.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crmsweep import api
from crmsweep.cleanup.apply import ApplyReport
from crmsweep.cleanup.preview import breakdown
from crmsweep.commands.common import (
    ConfigOpt,
    HomeOpt,
    JsonOpt,
    YesOpt,
    apply_progress,
    confirmer,
    emit_json,
    err,
    handle_errors,
    workspace,
)
from crmsweep.commands.plan import PlanArg, print_preview
from crmsweep.errors import EXIT_PARTIAL
from crmsweep.model import Plan

SHOW_ITEMS = 20


def resume_command(plan_file: Path, report: ApplyReport) -> str:
    return f"crmsweep apply {plan_file} --resume {report.run_id}"


def report_json(report: ApplyReport, plan_file: Path) -> dict[str, object]:
    return {
        "run": report.run_id,
        "plan": report.plan_id,
        "applied": report.applied,
        "skipped": report.skipped,
        "failed": report.failed,
        "remaining": report.remaining,
        "stopped": report.stopped,
        "api_calls": report.api_calls,
        "skipped_items": report.skipped_items,
        "failed_items": report.failed_items,
        "resume": resume_command(plan_file, report) if report.stopped else None,
    }


def render_report(report: ApplyReport, *, resume_hint: str) -> None:
    err.print(f"Run {report.run_id}: applied {report.applied}, skipped {report.skipped}, failed {report.failed} "
              f"of {report.total} ({report.api_calls} API calls).")
    for title, items in (("Skipped", report.skipped_items), ("Failed", report.failed_items)):
        for item in items[:SHOW_ITEMS]:
            detail = item.get("detail") or item.get("message") or ""
            code = item.get("reason") or item.get("error_code") or ""
            err.print(f"  {title.lower()}: {item.get('object', '')} {item.get('id', '')}  {code}  {detail}".rstrip())
        if len(items) > SHOW_ITEMS:
            err.print(f"  … and {len(items) - SHOW_ITEMS} more {title.lower()}; `--json` lists them all")
    if report.stopped:
        err.print(f"Stopped: {report.stopped}. {report.remaining} changes remain: {resume_hint}", style="yellow")


def exit_for(report: ApplyReport | None) -> None:
    if report is not None and (report.failed or report.stopped):
        raise typer.Exit(EXIT_PARTIAL)


def question(plan: Plan) -> str:
    """What the admin says yes to: what the plan does, where, and which plan exactly (its digest)."""
    return (f"Apply {len(plan.changes)} changes ({breakdown(plan)}) to {plan.header.provider} org "
            f"{plan.header.org_id} ('{plan.header.connection}')? Plan {plan.header.plan_id}, {plan.digest}")


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
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Apply exactly the reviewed plan: checked, batched, drift-aware, logged before every write."""
    ws = workspace(config, home)
    with apply_progress(not as_json) as progress:
        outcome = api.apply(ws, plan_file, confirm=confirmer(yes, question), connection=connection,
                            resume_run=resume, progress=progress)
    report = outcome.report
    if report is None:
        err.print("Nothing applied.")
        return
    if as_json:
        emit_json(report_json(report, plan_file))
    else:
        render_report(report, resume_hint=f"`{resume_command(plan_file, report)}`")
        if not report.stopped:
            err.print(f"To undo: `crmsweep rollback {report.run_id}`")
    exit_for(report)


@handle_errors
def rollback(
    run_id: Annotated[str, typer.Argument(help="The run to undo, as `crmsweep runs list` shows it.")],
    yes: YesOpt = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Undo a run: undelete (ids kept), patch back before-values, reactivate; previewed, then applied."""
    ws = workspace(config, home)

    def ask(plan: Plan) -> bool:
        if not as_json:
            print_preview(plan, limit=None if yes else 50)
        return confirmer(yes, lambda p: f"Roll back run {run_id}: {len(p.changes)} changes?")(plan)

    with apply_progress(not as_json) as progress:
        outcome = api.rollback(ws, run_id, confirm=ask, progress=progress)
    report = outcome.report
    if report is None:
        err.print("Nothing rolled back.")
        return
    # A stopped rollback resumes like any run, from the plan file its run keeps.
    plan_file = api.run_plan_path(ws, report.run_id)
    if as_json:
        emit_json({**report_json(report, plan_file), "rollback_of": run_id})
    else:
        render_report(report, resume_hint=f"`{resume_command(plan_file, report)}`")
    exit_for(report)
