"""Help that reads like the sf CLI's: plain text, value names instead of Python type labels.

Typer renders every parameter with its Python type (`--pass <list[str]>`, `PLAN_FILE <path>`). Those
labels mean nothing to an admin, so crmsweep's commands and groups are built from the classes here,
which show an option's value name (its metavar, else its name in capitals) and an argument's name.
Help is printed with `rich_markup_mode=None`: a help string is text, so `[safety]` shows as written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType


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
    pass


class HelpGroup(_PlainHelp, TyperGroup):
    def format_options(self, ctx: Any, formatter: Any) -> None:
        super().format_options(ctx, formatter)
        self.format_commands(ctx, formatter)


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
