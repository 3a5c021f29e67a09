"""`crmsweep scan` (write a plan), `crmsweep preview` (read one) and `crmsweep plan accept` (sign one)."""

from __future__ import annotations

import itertools
import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from crmsweep import api
from crmsweep.cleanup.passes import PASSES
from crmsweep.cleanup.plan_auth import Trust, accept_command
from crmsweep.cleanup.preview import breakdown, listed_changes, pass_summary, render_preview, summarize
from crmsweep.commands.common import (
    AllowOverBudgetOpt,
    ConfigOpt,
    ConnectionOpt,
    HomeOpt,
    JsonOpt,
    YesOpt,
    backup_progress,
    confirmer,
    emit_json,
    err,
    handle_errors,
    out,
    pasteable,
    workspace,
)
from crmsweep.commands.help import App
from crmsweep.errors import EXIT_DECLINED
from crmsweep.model import Plan

PlanArg = Annotated[
    Path, typer.Argument(metavar="PLAN", help="A plan file written by `crmsweep scan` (or a rollback).")
]


def passes_epilog() -> str:
    """The registered passes with their one-line summaries, for `scan --help`."""
    width = max(len(name) for name in PASSES)
    lines = [f"  {name:<{width}}  {spec.summary}" for name, spec in PASSES.items()]
    return "\b\nPasses (choose with --pass NAME; settings in [passes.NAME] of the config):\n" + "\n".join(lines)

plan_app = App(help="Plans: accept one written on another machine or edited by hand.")


def print_preview(
    plan: Plan, *, limit: int | None = None, signature: str | None = None, console: Console = out
) -> None:
    """The diff, coloured by the first character of each line when stdout is a terminal."""
    colours = {"-": "red", "~": "yellow", "+": "green"}

    def colour_of(line: str) -> str | None:
        stripped = line.lstrip()
        return colours.get(stripped[:1]) if stripped[1:2] == " " else None

    # A few dozen lines of one colour a call: the same bytes as a call per line, at a third of the time (a 1M
    # plan lists 351,421 changes: 14 s of rich's work per call). Not all at once: rich slows with a text's lines.
    for colour, run in itertools.groupby(render_preview(plan, limit=limit, signature=signature).splitlines(),
                                         key=colour_of):
        lines = list(run)
        for start in range(0, len(lines), _LINES_A_CALL):
            console.print("\n".join(lines[start : start + _LINES_A_CALL]), style=colour, markup=False,
                          highlight=False)


_LINES_A_CALL = 50


def signature_text(trust: Trust, plan_file: Path) -> str:
    if trust is Trust.SIGNED:
        return trust.value
    return pasteable(f"{trust.value}: apply refuses it until you review it and run `{accept_command(plan_file)}`")


@handle_errors
def scan(
    connection: ConnectionOpt,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", metavar="PLAN",
            help="Where to write the plan (JSON). An existing file is replaced only if it is a crmsweep plan.",
        ),
    ],
    snapshot: Annotated[
        str | None,
        typer.Option(
            "--snapshot", metavar="ID",
            help="Scan this snapshot (verified first). Default: take a fresh backup first.",
        ),
    ] = None,
    passes: Annotated[
        list[str] | None,
        typer.Option("--pass", metavar="NAME", help="Run only this pass (repeatable). Default: all passes, below."),
    ] = None,
    allow_over_cap: Annotated[
        bool, typer.Option("--allow-over-cap", help="Write the plan even if it exceeds the [safety] caps.")
    ] = False,
    allow_over_budget: AllowOverBudgetOpt = False,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Run cleanup passes over a snapshot and write the proposed changes as a plan. Writes nothing to the CRM."""
    ws = workspace(config, home)
    with backup_progress(not as_json) as progress:
        outcome = api.scan(
            ws, connection, output, snapshot_id=snapshot, passes=passes or (), allow_over_cap=allow_over_cap,
            progress=progress, allow_over_budget=allow_over_budget,
        )
    plan = outcome.result.plan
    if as_json:
        emit_json({**summarize(plan), "output": str(output), "snapshot": outcome.snapshot.snapshot_id,
                   "skipped_passes": outcome.result.skipped, "api_calls": outcome.api_calls})
        return
    if outcome.took_backup:
        err.print(f"Backed up first: snapshot {outcome.snapshot.snapshot_id}")
    result = outcome.result
    for name, text in pass_summary(plan, result.per_pass, result.held_back, result.skipped):
        err.print(f"  {name:<22} {text}")
    err.print(written_line(len(plan.changes), output))


def written_line(changes: int, output: Path) -> str:
    """The scan's closing line: how many changes (with thousands separators, as every count) and where."""
    # Quoted, so that the command pastes as is when the path holds a space.
    return (f"Plan with {changes:,} changes written to {output}. "
            f"Review it with `{shlex.join(['crmsweep', 'preview', str(output)])}`.")


@handle_errors
def preview(
    plan_file: PlanArg,
    limit: Annotated[
        int | None, typer.Option("--limit", metavar="N", help="Show (with --json, list) at most N changes per object.",
                                 min=1)
    ] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Show a plan as a diff, grouped by pass and object, and whether this home signed it. Reads only the file.

    With --json: the counts, notes and findings, and under "listed" each change the text shows (what it writes,
    before and after)."""
    review = api.read_plan(workspace(config, home), plan_file)
    if as_json:
        emit_json({**summarize(review.plan), "signed_by_this_home": review.trust is Trust.SIGNED,
                   "signature": review.trust.name.lower(), **listed_changes(review.plan, limit=limit)})
        return
    print_preview(review.plan, limit=limit, signature=signature_text(review.trust, plan_file))


@plan_app.command("accept")
@handle_errors
def accept(
    plan_file: Annotated[Path, typer.Argument(help="A plan written on another machine, or edited by hand.")],
    yes: YesOpt = False,
    connection: Annotated[
        str | None, typer.Option("--connection", "-c", help="Check it against this connection, not the plan's.")
    ] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Review a plan in full and sign it with this home's key, so that apply takes it. Writes nothing to the CRM.

    It must still pass every check apply makes (org, passes, before-images); its digest is made afresh.
    """
    ws = workspace(config, home)

    def ask(review: api.PlanReview) -> bool:
        # With --json, stdout carries the answer alone: the preview goes to stderr.
        print_preview(review.plan, signature=signature_text(review.trust, plan_file), console=err if as_json else out)
        return confirmer(yes, lambda p: (
            f"Accept plan {p.header.plan_id} ({breakdown(p)}), {p.digest}, and sign it with this home's key?"
        ))(review.plan)

    outcome = api.accept_plan(ws, plan_file, confirm=ask, connection=connection)
    plan = outcome.plan
    if as_json:
        emit_json({"plan": plan.header.plan_id, "digest": plan.digest, "file": str(plan_file),
                   "accepted": outcome.accepted, "was": outcome.was.name.lower()})
        return
    if outcome.was is Trust.SIGNED:
        err.print(f"Plan {plan_file} is already signed by this crmsweep home: nothing to accept.", markup=False)
    elif outcome.accepted:
        err.print(f"Plan {plan_file} accepted and signed ({plan.digest}). Apply it with "
                  f"`crmsweep apply {shlex.quote(str(plan_file))}`.", markup=False)
    else:
        err.print("Nothing accepted: declined at the confirmation.")
        raise typer.Exit(EXIT_DECLINED)
