"""The crmsweep command line: a thin coat of paint over `crmsweep.api`.

Exit codes, for every command: 0 done; 1 done but some changes failed (or the CRM stopped us);
2 bad input; 3 refused by a safety rule; 4 declined at the confirmation prompt, nothing written;
130 interrupted (Ctrl-C; a started run prints the command that resumes it).
"""

from __future__ import annotations

from typing import Annotated

import typer

from crmsweep import __version__
from crmsweep.commands import apply, backup, demo, plan, sandbox

app = typer.Typer(
    name="crmsweep",
    help="Back up, clean up and restore a Salesforce org. Every write is a plan you review first.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"crmsweep {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """crmsweep: backup → scan → preview → apply → rollback."""


app.command()(backup.backup)
app.add_typer(backup.snapshots_app, name="snapshots")
app.command()(plan.scan)
app.command()(plan.preview)
app.command()(apply.apply)
app.command()(apply.rollback)
app.add_typer(apply.runs_app, name="runs")
app.command()(demo.demo)
app.add_typer(sandbox.sandbox_app, name="sandbox")


def main() -> None:
    app()
