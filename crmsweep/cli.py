"""The crmsweep command line: a thin coat of paint over `crmsweep.api`.

Exit codes, for every command: 0 done; 1 done but some changes failed (or the CRM stopped us);
2 bad input; 3 refused by a safety rule; 4 declined at the confirmation prompt, nothing written;
130 interrupted (Ctrl-C; a started run prints the command that resumes it).
"""

from __future__ import annotations

from typing import Annotated

import typer

from crmsweep import __version__, providers
from crmsweep.commands import apply, backup, demo, plan, report, runs, sandbox
from crmsweep.commands.common import ROOT_OPTIONS, ConfigOpt, HomeOpt, RootOptions
from crmsweep.commands.help import App

# "\b" keeps click from re-flowing the paragraph that follows it.
EPILOG = """\b
Exit codes:
  0    done
  1    done, but some changes failed (final: scan again), or the CRM stopped the run (resume it)
  2    bad input: usage, config, missing file, unknown connection, plan for another org
  3    refused by a safety rule (edited plan, damaged snapshot, caps, no terminal to confirm on)
  4    declined at the confirmation prompt: nothing was written
  130  interrupted (Ctrl-C)

With --json, an error is also printed on stdout as {"error": {"message": ..., "exit_code": N}}.
--config and --home may come before the command or after it; the one after it wins, then the one
before it, then $CRMSWEEP_CONFIG / $CRMSWEEP_HOME."""

app = App(
    name="crmsweep",
    help="Back up, clean up and restore a CRM (" + ", ".join(p.title for p in providers.all())
    + "). Every write is a plan you review first.",
    epilog=EPILOG,
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"crmsweep {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """crmsweep: backup → scan → preview → apply → rollback."""
    ctx.meta[ROOT_OPTIONS] = RootOptions(config=config, home=home)


app.command()(backup.backup)
app.add_typer(backup.snapshots_app, name="snapshots")
app.command(epilog=plan.passes_epilog())(plan.scan)
app.command()(plan.preview)
app.add_typer(plan.plan_app, name="plan")
app.command()(apply.apply)
app.command()(apply.rollback)
app.add_typer(runs.runs_app, name="runs")
app.add_typer(report.report_app, name="report")
app.command()(demo.demo)
app.add_typer(sandbox.sandbox_app, name="sandbox")


def main() -> None:
    app()
