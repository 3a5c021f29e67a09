"""What every command shares: options, the error edge, output helpers, confirmation, progress."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from crmsweep.api import Workspace
from crmsweep.cleanup.apply import ApplyProgress
from crmsweep.errors import EXIT_BAD_INPUT, CrmsweepError, SafetyRefusal
from crmsweep.model import Plan, PlanFormatError

# Messages and progress go to stderr; stdout carries only data (plans, --json answers, previews).
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", envvar="CRMSWEEP_CONFIG", help="Config file (TOML) with connections and pass settings."),
]
HomeOpt = Annotated[
    Path | None,
    typer.Option(
        "--home", envvar="CRMSWEEP_HOME", help="Folder for snapshots, runs and sandbox state (default: user data dir)."
    ),
]
ConnectionOpt = Annotated[
    str,
    typer.Option("--connection", "-c", help="Connection name from the config, or the built-in 'sandbox-salesforce'."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON answer on stdout for scripts; no progress.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

P = ParamSpec("P")
R = TypeVar("R")


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """The one place a user-facing error becomes one line on stderr and an exit code."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except CrmsweepError as exc:
            err.print(f"[red]crmsweep: {exc}[/red]", markup=True, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except PlanFormatError as exc:
            err.print(f"[red]crmsweep: {exc}[/red]")
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except KeyboardInterrupt:
            err.print("crmsweep: interrupted")
            raise typer.Exit(130) from None

    return wrapper


def workspace(config: Path | None, home: Path | None) -> Workspace:
    return Workspace.load(config, home)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def interactive() -> bool:
    return sys.stdin.isatty()


def confirmer(yes: bool, question: Callable[[Plan], str]) -> Callable[[Plan], bool]:
    """Ask before writing, unless --yes. With no terminal to ask on, refuse rather than guess."""

    def confirm(plan: Plan) -> bool:
        if yes:
            return True
        if not interactive():
            raise SafetyRefusal("no terminal to confirm on: review the plan with `crmsweep preview`, then pass --yes")
        return typer.confirm(question(plan), default=False, err=True)

    return confirm


def show_progress(enabled: bool) -> bool:
    return enabled and err.is_terminal


@contextmanager
def backup_progress(enabled: bool) -> Iterator[Callable[[str, int, bool], None] | None]:
    """A progress line per object while a snapshot streams to disk."""
    if not show_progress(enabled):
        yield None
        return
    with Progress(
        TextColumn("{task.description:<24}"), TextColumn("{task.completed:>9,} rows"), TimeElapsedColumn(), console=err
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def update(obj: str, rows: int, done: bool) -> None:
            if obj not in tasks:
                tasks[obj] = bar.add_task(obj, total=None)
            bar.update(tasks[obj], completed=rows)
            if done:
                bar.update(tasks[obj], total=rows, completed=rows)

        yield update


@contextmanager
def apply_progress(enabled: bool) -> Iterator[Callable[[ApplyProgress], None] | None]:
    """A bar per run, started on the first batch: the confirmation prompt comes before it and must
    not be drawn over by a live display."""
    if not show_progress(enabled):
        yield None
        return
    bar = Progress(
        TextColumn("applying"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(), console=err,
    )
    task: list[TaskID] = []

    def update(p: ApplyProgress) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task("apply", total=p.total, detail=""))
        detail = f"applied {p.applied}  skipped {p.skipped}  failed {p.failed}  API calls {p.api_calls}"
        bar.update(task[0], total=p.total, completed=p.done, detail=detail)

    try:
        yield update
    finally:
        if task:
            bar.stop()
