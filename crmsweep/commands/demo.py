"""`crmsweep demo`."""

from __future__ import annotations

from typing import Annotated

import typer

from crmsweep.commands.common import ConfigOpt, HomeOpt, handle_errors, out, workspace
from crmsweep.demo import run_demo
from crmsweep.errors import EXIT_PARTIAL


@handle_errors
def demo(
    reset: Annotated[bool, typer.Option("--reset", help="Seed a fresh sandbox org first.")] = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Run the whole story on the built-in Salesforce sandbox: backup, scan, preview, apply, rollback."""
    result = run_demo(workspace(config, home), lambda line: out.print(line, markup=False, highlight=False),
                      reset=reset)
    if not result.org_restored:
        raise typer.Exit(EXIT_PARTIAL)
