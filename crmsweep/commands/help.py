"""Help that reads like the sf CLI's, and usage errors in one line.

Typer renders every parameter with its Python type (`--pass <list[str]>`, `PLAN_FILE <path>`). Those
labels mean nothing to an admin, so crmsweep's commands and groups are built from the classes here,
which show an option's value name (its metavar, else its name in capitals) and an argument's name.
Help is printed with `rich_markup_mode=None`: a help string is text, so `[safety]` shows as written.

A usage error (a missing option, a value out of range) is one line naming the help to read, like
every other error, and under --json also the JSON error object on stdout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

import typer

# Typer vendors click; its usage errors are not re-exported under a public name.
from typer._click.exceptions import NoArgsIsHelpError, UsageError
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

from crmsweep.commands.common import report_error

JSON_REQUESTED = "crmsweep.json_requested"  # key in the click context's meta


def _name_values(params: list[Any]) -> None:
    """An option that takes a value and has no metavar shows its name in capitals, as click does."""
    for param in params:
        if param.param_type_name == "option" and not (param.is_flag or param.count) and param.metavar is None:
            param.metavar = (param.name or "value").upper()


def _plain_records(command: Any, ctx: Any) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(arguments, options) as help rows: an argument by its name alone, an option by its value name."""
    arguments: list[tuple[str, str]] = []
    options: list[tuple[str, str]] = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is None:
            continue
        name, text = record
        if param.param_type_name == "argument":
            arguments.append((param.metavar or (param.name or "").upper(), text))
        elif param.param_type_name == "option":
            options.append((name, text))
    return arguments, options


def _write_sections(command: Any, ctx: Any, formatter: Any) -> None:
    arguments, options = _plain_records(command, ctx)
    if arguments:
        with formatter.section("Arguments"):
            formatter.write_dl(arguments)
    if options:
        with formatter.section("Options"):
            formatter.write_dl(options)


class _PlainHelp:
    """Mixed into Typer's command and group classes: plain help rows, value names for options."""

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _name_values(self.params)

    def format_options(self, ctx: Any, formatter: Any) -> None:
        _write_sections(self, ctx, formatter)


class HelpCommand(_PlainHelp, TyperCommand):
    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        """`crmsweep apply [OPTIONS] PLAN`, as click writes it (Typer's own usage says `{PLAN}`)."""
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar or (param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces


class OneLineUsageError(UsageError):
    def __init__(self, message: str, ctx: Any, *, as_json: bool) -> None:
        super().__init__(message, ctx)
        self.as_json = as_json

    def show(self, file: IO[Any] | None = None) -> None:
        path = self.ctx.command_path if self.ctx is not None else "crmsweep"
        message = f"{self.format_message().rstrip('.')} (see `{path} --help`)"
        report_error(message, self.exit_code, as_json=self.as_json)


@contextmanager
def _usage_errors_in_one_line(as_json: bool) -> Iterator[None]:
    try:
        yield
    except (NoArgsIsHelpError, OneLineUsageError):
        raise
    except UsageError as exc:
        raise OneLineUsageError(exc.format_message(), exc.ctx, as_json=as_json) from None


class HelpGroup(_PlainHelp, TyperGroup):
    def format_options(self, ctx: Any, formatter: Any) -> None:
        super().format_options(ctx, formatter)
        self.format_commands(ctx, formatter)

    # A group parses its own options in make_context and its subcommand's in invoke.
    def make_context(self, info_name: str | None, args: Sequence[str], parent: Any = None, **extra: Any) -> Any:
        with _usage_errors_in_one_line("--json" in args):
            ctx = super().make_context(info_name, list(args), parent, **extra)
        ctx.meta[JSON_REQUESTED] = ctx.meta.get(JSON_REQUESTED, False) or "--json" in args
        return ctx

    def invoke(self, ctx: Any) -> Any:
        with _usage_errors_in_one_line(bool(ctx.meta.get(JSON_REQUESTED))):
            return super().invoke(ctx)


class App(typer.Typer):
    """A Typer app whose groups and commands print plain help without type labels."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cls", HelpGroup)
        kwargs.setdefault("rich_markup_mode", None)
        kwargs.setdefault("no_args_is_help", True)
        super().__init__(**kwargs)

    def command(
        self, name: str | None = None, **kwargs: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        kwargs.setdefault("cls", HelpCommand)
        return super().command(name, **kwargs)
