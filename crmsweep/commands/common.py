"""What every command shares: options, the error edge, output helpers, confirmation, progress."""

from __future__ import annotations

import contextvars
import functools
import inspect
import json
import os
import re
import shlex
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from crmsweep import providers
from crmsweep.api import Workspace
from crmsweep.cleanup.apply import ApplyProgress
from crmsweep.cleanup.labels import one_line, table_lines
from crmsweep.decimal_text import dumps_exact
from crmsweep.errors import EXIT_BAD_INPUT, CrmsweepError, OverBudget, SafetyRefusal
from crmsweep.model import Plan, PlanFormatError


# Messages and progress go to stderr; stdout carries only data (plans, --json answers, previews).
# Everything printed is text: config values, file names and CRM data hold brackets and colons that
# rich would otherwise read as markup or emoji codes ("[passes.x]" vanished, "[/x]" crashed). Colour
# is given with `style=`, never with markup.
class _MessageConsole(Console):
    """stderr: every command a message suggests (`crmsweep ...` in backticks) is completed with the
    --config and --home this command runs with, so that it pastes as is (see `pasteable`)."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        super().print(*(pasteable(o) if isinstance(o, str) else o for o in objects), **kwargs)


err = _MessageConsole(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)
out = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)

# No envvar= on these: click would fill a subcommand's option from the environment, and the
# environment would then beat a --config given before the command. `Workspace.load` reads it last.
CONFIG_HELP = "Config file (TOML) with connections and pass settings. Default: $CRMSWEEP_CONFIG, else none."
HOME_HELP = ("Folder for snapshots, runs and sandbox state. Default: $CRMSWEEP_HOME, else the user data folder "
             "(e.g. ~/.local/share/crmsweep).")
def _given_path(value: str) -> Path:
    # An empty value (`--home "$UNSET"`) would otherwise become ".", the folder the command runs in.
    if not value.strip():
        raise typer.BadParameter("is empty: name a path, or leave the option out for the default")
    return Path(value)


ConfigOpt = Annotated[Path | None, typer.Option("--config", metavar="PATH", help=CONFIG_HELP, parser=_given_path)]
HomeOpt = Annotated[Path | None, typer.Option("--home", metavar="DIR", help=HOME_HELP, parser=_given_path)]
ConnectionOpt = Annotated[
    str,
    typer.Option(
        "--connection", "-c", metavar="NAME",
        help="Connection name from the config, or a built-in sandbox: "
             + ", ".join(f"'{name}'" for name in providers.builtin_connections()) + ".",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON answer on stdout for scripts; no progress.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
AllowOverBudgetOpt = Annotated[
    bool,
    typer.Option("--allow-over-budget",
                 help="Go ahead even if the estimated API calls would eat into the [budget] reserve."),
]

P = ParamSpec("P")
R = TypeVar("R")


EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class RootOptions:
    """`--config` and `--home` given before the command (`crmsweep --home H runs list`)."""

    config: Path | None = None
    home: Path | None = None


ROOT_OPTIONS = "crmsweep.root_options"  # key in the click context's meta, shared by nested contexts
_CONTEXT_PARAM = "crmsweep_context"  # the parameter handle_errors adds so Typer hands it the context


# The --config and --home this command was given (after the root's were filled in), so that a command
# suggested in a message pastes as is: without them it would look in another home.
_GIVEN: contextvars.ContextVar[RootOptions] = contextvars.ContextVar(
    "crmsweep_given", default=RootOptions()  # noqa: B039 - frozen, never mutated
)
_SUGGESTED = re.compile(r"`(crmsweep [^`]*)`")


def pasteable(text: str) -> str:
    """`text` with every suggested `crmsweep ...` command given the --config and --home in force."""
    given = _GIVEN.get()
    extra = [(flag, value) for flag, value in (("--config", given.config), ("--home", given.home)) if value is not None]
    if not extra:
        return text

    def complete(match: re.Match[str]) -> str:
        command = match.group(1)
        words = command.split()
        if "--help" in words:
            return match.group(0)
        added = [f"{flag} {shlex.quote(os.path.abspath(value))}" for flag, value in extra if flag not in words]
        return f"`{' '.join([command, *added])}`"

    return _SUGGESTED.sub(complete, text)


def report_error(message: str, exit_code: int, *, as_json: bool, details: Mapping[str, Any] | None = None) -> None:
    """One line on stderr; with --json also `{"error": {...}}` on stdout, as the sf CLI answers, with the
    error's `details` (a budget refusal's numbers) beside its message."""
    message = pasteable(message)  # the JSON error too
    # The message may quote a plan's or the CRM's text: shown escaped, never interpreted by the terminal.
    err.print(f"crmsweep: {one_line(message)}", style="red")
    if as_json:
        emit_json({"error": {"message": message, "exit_code": exit_code, **(details or {})}})


def fail(message: str, exit_code: int, *, as_json: bool, details: Mapping[str, Any] | None = None) -> NoReturn:
    report_error(message, exit_code, as_json=as_json, details=details)
    raise typer.Exit(exit_code) from None


def _with_root_options(kwargs: dict[str, Any], ctx: Any) -> None:
    """The command's own --config/--home win; else the ones given before the command; else (None)
    the environment and the defaults, which `Workspace.load` applies."""
    # Typer hands over click's own Context class here, not typer.Context: look for its meta.
    meta = getattr(ctx, "meta", None)
    root = meta.get(ROOT_OPTIONS) if isinstance(meta, dict) else None
    if not isinstance(root, RootOptions):
        return
    for name in ("config", "home"):
        if name in kwargs and kwargs[name] is None:
            kwargs[name] = getattr(root, name)


def handle_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """The edge of every command: the root's --config/--home filled in, and a user-facing error made
    one line on stderr (and a JSON object on stdout under --json) with its exit code.

    A command that declares no `typer.Context` parameter is given one in its signature (and it is
    taken out again before the call), so Typer hands over the context without every command asking.
    """
    signature = inspect.signature(fn, eval_str=True)
    declared = next((p.name for p in signature.parameters.values() if p.annotation is typer.Context), None)

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = kwargs.get(declared) if declared else kwargs.pop(_CONTEXT_PARAM, None)
        _with_root_options(kwargs, ctx)
        config, home = kwargs.get("config"), kwargs.get("home")
        _GIVEN.set(RootOptions(config if isinstance(config, Path) else None, home if isinstance(home, Path) else None))
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except OverBudget as exc:
            fail(str(exc), exc.exit_code, as_json=as_json, details=exc.details)
        except CrmsweepError as exc:
            fail(str(exc), exc.exit_code, as_json=as_json)
        except PlanFormatError as exc:
            fail(str(exc), EXIT_BAD_INPUT, as_json=as_json)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED, as_json=as_json)

    if declared is None:
        context = inspect.Parameter(_CONTEXT_PARAM, inspect.Parameter.KEYWORD_ONLY, default=None,
                                    annotation=typer.Context)
        wrapper.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[*signature.parameters.values(), context]
        )
    return wrapper


def workspace(config: Path | None, home: Path | None) -> Workspace:
    return Workspace.load(config, home)


def emit_json(data: Any) -> None:
    """`data` as JSON on stdout. Readable letters stay as they are, but a character that would not show
    as itself (a bidi override, a C1 control, which JSON leaves raw) is written as its JSON escape:
    the output may land on a terminal, and it parses back to the same value. A Decimal (a number the CRM
    keeps as exact digits) is a JSON number of exactly those digits, not a text."""
    text = dumps_exact(data, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("".join(ch if ch.isprintable() or ch == "\n" else json.dumps(ch)[1:-1] for ch in text) + "\n")
    sys.stdout.flush()


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Rows under column headers on stdout, as plain text a person reads and `awk` splits on 2+ spaces."""
    for line in table_lines(headers, rows):
        out.print(line)


def interactive() -> bool:
    return sys.stdin.isatty()


NO_TERMINAL = "no terminal to confirm on: review the plan with `crmsweep preview`, then pass --yes"


def confirmer(yes: bool, question: Callable[[Plan], str], *, no_terminal: str = NO_TERMINAL) -> Callable[[Plan], bool]:
    """Ask before writing, unless --yes. With no terminal to ask on, refuse rather than guess
    (`no_terminal`: the refusal, saying how to review and go ahead)."""

    def confirm(plan: Plan) -> bool:
        if yes:
            return True
        refuse_without_terminal(yes, no_terminal)
        return typer.confirm(one_line(question(plan)), default=False, err=True)

    return confirm


def refuse_without_terminal(yes: bool, message: str = NO_TERMINAL) -> None:
    """Refuse (exit 3) a write that would need a confirmation when there is no terminal to ask on."""
    if not (yes or interactive()):
        raise SafetyRefusal(message)


def show_progress(enabled: bool) -> bool:
    return enabled and err.is_terminal


class _BackupBars:
    """A bar per object, with its total and an ETA where the backup knew the rows beforehand (from the
    connector's read plan), and one for the whole backup. Called from the backup's worker threads
    (rich's Progress takes its own lock)."""

    def __init__(self, bar: Progress) -> None:
        self._bar = bar
        self._tasks: dict[str, TaskID] = {}
        self._rows: dict[str, int] = {}
        self._overall: TaskID | None = None
        self._planned: set[str] = set()

    def _task(self, obj: str, total: int | None, how: str = "") -> TaskID:
        if obj not in self._tasks:
            self._tasks[obj] = self._bar.add_task(obj, total=total, how=how)
        return self._tasks[obj]

    def planned(self, obj: str, rows: int | None, method: str) -> None:
        self._task(obj, rows, method)
        if rows is not None:
            self._planned.add(obj)
            if self._overall is None:
                self._overall = self._bar.add_task("all objects", total=0, how="")
            self._bar.update(self._overall, total=(self._bar.tasks[self._overall].total or 0) + rows)

    def __call__(self, obj: str, rows: int, done: bool) -> None:
        task = self._task(obj, None)
        if self._overall is not None and obj in self._planned:
            self._bar.advance(self._overall, rows - self._rows.get(obj, 0))
        self._rows[obj] = rows
        # Deleted rows in the recycle bin are read as well: the count may be passed.
        total = self._bar.tasks[task].total
        self._bar.update(task, completed=rows, total=rows if done or (total is not None and rows > total) else total)


@contextmanager
def backup_progress(enabled: bool) -> Iterator[Callable[[str, int, bool], None] | None]:
    """A progress bar per object while a snapshot streams to disk: rows, total and time left."""
    if not show_progress(enabled):
        yield None
        return
    with Progress(
        TextColumn("{task.description:<24}", markup=False), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[how]}", markup=False), TimeElapsedColumn(), TimeRemainingColumn(), console=err,
    ) as bar:
        yield _BackupBars(bar)


@contextmanager
def apply_progress(enabled: bool) -> Iterator[Callable[[ApplyProgress], None] | None]:
    """A bar per run, started on the first batch: the confirmation prompt comes before it and must
    not be drawn over by a live display."""
    if not show_progress(enabled):
        yield None
        return
    bar = Progress(
        TextColumn("applying"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[detail]}", markup=False),
        TimeElapsedColumn(), console=err,
    )
    task: list[TaskID] = []

    def update(p: ApplyProgress) -> None:
        if not task:
            bar.start()
            task.append(bar.add_task("apply", total=p.total, detail=""))
        detail = f"applied {p.applied:,}  skipped {p.skipped:,}  failed {p.failed:,}  API calls {p.api_calls:,}"
        bar.update(task[0], total=p.total, completed=p.done, detail=detail)

    try:
        yield update
    finally:
        if task:
            bar.stop()
