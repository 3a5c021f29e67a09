"""`crmsweep demo`."""

from __future__ import annotations

from typing import Annotated

import typer

from crmsweep import providers
from crmsweep.commands.common import ConfigOpt, HomeOpt, handle_errors, out, pasteable, workspace
from crmsweep.demo import run_demo
from crmsweep.errors import EXIT_PARTIAL


@handle_errors
def demo(
    provider: Annotated[
        str, typer.Option("--provider", help=f"Which CRM's sandbox: {', '.join(providers.names())}.")
    ] = providers.default().name,
    reset: Annotated[bool, typer.Option(
        "--reset/--no-reset",
        help="Seed a fresh sandbox org first (the default), so every demo tells the same story; --no-reset runs "
             "on the sandbox as earlier commands left it.")] = True,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Run the whole story on a built-in sandbox: backup, scan, preview, apply, rollback."""
    def say(line: str) -> None:
        # On stdout, which the message console's completion does not reach: every `crmsweep ...` the demo
        # tells (runs show of its rollback, runs list) gets the --config and --home it ran with, to paste as is.
        out.print(pasteable(line), markup=False, highlight=False)

    result = run_demo(workspace(config, home), say, provider=provider, reset=reset)
    if not result.org_restored:
        raise typer.Exit(EXIT_PARTIAL)
