"""`crmsweep report quality`: the data-quality report of a snapshot, per owner. Reads snapshots only."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from crmsweep import api
from crmsweep.cleanup.quality_render import render, render_detail_csv, report_data
from crmsweep.commands.common import (
    ConfigOpt,
    ConnectionOpt,
    HomeOpt,
    JsonOpt,
    emit_json,
    err,
    handle_errors,
    workspace,
)
from crmsweep.commands.help import App
from crmsweep.errors import BadInput

report_app = App(help="Reports made from snapshots. They never write to the CRM.")


class Format(StrEnum):
    text = "text"
    csv = "csv"
    html = "html"
    json = "json"


# Without --format, -o FILE's suffix says which report to write (a report.html holds HTML).
_FORMAT_OF_SUFFIX = {".txt": "text", ".csv": "csv", ".html": "html", ".htm": "html", ".json": "json"}


def _date(value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(f"--since: expected a date like 2026-12-01, got {value[:40]!r}") from None


@report_app.command("quality")
@handle_errors
def quality(
    connection: ConnectionOpt,
    snapshot: Annotated[
        str | None,
        typer.Option("--snapshot", metavar="ID", help="Report on this snapshot. Default: the connection's newest."),
    ] = None,
    compare: Annotated[
        str | None,
        typer.Option("--compare", metavar="SNAPSHOT",
                     help="Show the change since this earlier snapshot. Default: the one before the reported one."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="DATE",
                     help="Show the change since the newest snapshot taken before DATE (YYYY-MM-DD), "
                          "e.g. the first of the month for this month's worst offenders."),
    ] = None,
    fmt: Annotated[
        Format | None,
        typer.Option("--format", metavar="FORMAT",
                     help="text (default), csv (one row per owner), html (one self-contained page) or json."),
    ] = None,
    detail: Annotated[
        bool, typer.Option("--detail", help="CSV with one row per violation instead of one per owner.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", metavar="FILE",
                     help="Write the report here (0600). An existing file is replaced only if it is a crmsweep "
                          "report. Default: stdout."),
    ] = None,
    as_json: JsonOpt = False,
    config: ConfigOpt = None,
    home: HomeOpt = None,
) -> None:
    """Data quality per record owner: what each owner's records lack, by severity, worst owners first, and
    the change since an earlier snapshot. Reads a snapshot; never connects to the CRM.

    Rules come from the provider's defaults and [quality] in the config. Score: 100 - 10 x weighted
    violations per record (critical 10, major 3, minor 1), at least 0.
    """
    by_suffix = _FORMAT_OF_SUFFIX.get(output.suffix.lower()) if output is not None else None
    if fmt is not None and by_suffix is not None and fmt.value != by_suffix and not (detail and by_suffix == "csv"):
        raise BadInput(f"-o {output} looks like a {by_suffix} file but --format is {fmt.value}: "
                       f"use --format {by_suffix}, or name the file for what it holds")
    fallback = "json" if as_json and output is None else "text"
    chosen = fmt.value if fmt else ("csv" if detail else by_suffix or fallback)
    if detail and chosen != "csv":
        raise BadInput(f"--detail writes CSV (one row per violation): drop --format {chosen} or use --format csv")
    if as_json and output is None and chosen != "json":
        raise BadInput(f"--json prints the report as JSON on stdout: write the {chosen} report with -o FILE")
    if output is not None:
        api.check_report_output(output)  # before reading anything: `-o crmsweep.toml` must not cost the config
    ws = workspace(config, home)
    outcome = api.quality_report(ws, connection, snapshot_id=snapshot, compare=compare, since=_date(since),
                                 detail=detail)
    report = outcome.report
    text = render_detail_csv(outcome.detail) if outcome.detail is not None else render(report, chosen)
    source = (f"the newest snapshot of '{connection}', {report.snapshot_id}" if outcome.chosen_as_newest
              else f"snapshot {report.snapshot_id}")
    against = f", compared with {report.compared.snapshot_id}" if report.compared else ""
    if output is None:
        if chosen == "json" and not detail:
            emit_json(report_data(report))
        else:
            typer.echo(text, nl=False)
        if not as_json:
            err.print(f"Data quality of {source}{against}.")
        return
    api.write_report(text, output, ws.home)
    if as_json:
        emit_json({"output": str(output), "format": chosen, "detail": detail, "snapshot": report.snapshot_id,
                   "compared_with": report.compared.snapshot_id if report.compared else None,
                   "records": report.records, "score": report.score, "violations": dict(report.violations),
                   "owners": len(report.owners)})
        return
    err.print(f"Data quality of {source}{against}: {len(report.owners):,} owners, score {report.score:.1f}. "
              f"Written to {output}.")
