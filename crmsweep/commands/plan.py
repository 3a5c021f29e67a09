"""`crmsweep scan` (write a plan) and `crmsweep preview` (read one)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from crmsweep import api
from crmsweep.cleanup.passes import PASSES
from crmsweep.cleanup.preview import render_preview, summarize
from crmsweep.commands.common import (
    ConfigOpt,
    ConnectionOpt,
    HomeOpt,
    JsonOpt,
    backup_progress,
    emit_json,
    err,
    handle_errors,
    out,
    workspace,
)
from crmsweep.model import Plan

PlanArg = Annotated[
    Path, typer.Argument(metavar="PLAN", help="A plan file written by `crmsweep scan` (or a rollback).")
]


def passes_epilog() -> str:
    """The registered passes with their one-line summaries, for `scan --help`."""
    width = max(len(name) for name in PASSES)
    lines = [f"  {name:<{width}}  {spec.summary}" for name, spec in PASSES.items()]
    return "\b\nPasses (choose with --pass NAME; settings in [passes.NAME] of the config):\n" + "\n".join(lines)


def print_preview(plan: Plan, *, limit: int | None = None) -> None:
    """The diff, coloured by the first character of each line when stdout is a terminal."""
    colours = {"-": "red", "~": "yellow", "+": "green"}
    for line in render_preview(plan, limit=limit).splitlines():
        stripped = line.lstrip()
        colour = colours.get(stripped[:1]) if stripped[1:2] == " " else None
        out.print(line, style=colour, markup=False, highlight=False)


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
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Run cleanup passes over a snapshot and write the proposed changes as a plan. Writes nothing to the CRM."""
    ws = workspace(config, home)
    with backup_progress(not as_json) as progress:
        outcome = api.scan(
            ws, connection, output, snapshot_id=snapshot, passes=passes or (), allow_over_cap=allow_over_cap,
            progress=progress,
        )
    plan = outcome.result.plan
    if as_json:
        emit_json({**summarize(plan), "output": str(output), "snapshot": outcome.snapshot.snapshot_id,
                   "skipped_passes": outcome.result.skipped})
        return
    if outcome.took_backup:
        err.print(f"Backed up first: snapshot {outcome.snapshot.snapshot_id}")
    for name, count in outcome.result.per_pass.items():
        held = sum(outcome.result.held_back.get(name, {}).values())
        extra = f", {held} held back by protection" if held else ""
        err.print(f"  {name:<20} {count:>6} proposed{extra}")
    for name, why in outcome.result.skipped.items():
        err.print(f"  {name:<20} skipped: {why}")
    err.print(f"Plan with {len(plan.changes)} changes written to {output}. "
              f"Review it with `crmsweep preview {output}`.")


@handle_errors
def preview(
    plan_file: PlanArg,
    limit: Annotated[
        int | None, typer.Option("--limit", metavar="N", help="Show at most N lines per object.", min=1)
    ] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Show a plan as a diff, grouped by pass and object. Reads only the file."""
    plan = api.read_plan(plan_file)
    if as_json:
        emit_json(summarize(plan))
        return
    print_preview(plan, limit=limit)
