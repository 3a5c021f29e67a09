"""Every crmsweep command the README names (in its text and as its command table's first column) exists and
takes the options the README gives it: a reader pastes them as they are."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command

from crmsweep import providers
from crmsweep.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
ROOT = get_command(app)


def options(command: Any) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)}


def commands() -> list[str]:
    said = re.findall(r"`crmsweep ([^`]+)`", README)
    tabled = re.findall(r"^\| `([^`]+)`", README, re.MULTILINE)
    return said + tabled


def problems(line: str) -> list[str]:
    """What in `line` (a command without its leading `crmsweep`) the CLI does not have."""
    tokens = line.split()
    command = ROOT
    while tokens and (tokens[0] in options(ROOT) or tokens[0].endswith(".toml")):
        tokens.pop(0)  # the root's own options, before the command (`--config crmsweep.toml`)
    while hasattr(command, "commands") and tokens and tokens[0] in command.commands:
        command = command.commands[tokens.pop(0)]
    if hasattr(command, "commands") and command is not ROOT:
        return [f"{line!r}: no such command"]
    known = options(command) | options(ROOT)
    return [f"{line!r}: no option {flag}" for flag in re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", " ".join(tokens))
            if flag not in known]


def test_the_readme_names_commands() -> None:
    assert len(commands()) > 20  # the table is read: a format change must not make the test below vacuous


@pytest.mark.parametrize("line", commands())
def test_a_command_the_readme_names_exists_with_its_options(line: str) -> None:
    assert problems(line) == []


def test_the_check_finds_a_made_up_option_and_command() -> None:
    assert problems("sandbox serve --provider hubspot --fresh") == ["'sandbox serve --provider hubspot --fresh': "
                                                                    "no option --fresh"]
    assert problems("sandbox nope") == ["'sandbox nope': no such command"]


def test_after_the_hubspot_demo_the_readme_says_how_to_get_a_fresh_portal() -> None:
    # The demo's rollback leaves re-created records a scan holds back as recent: the reader is told the reset.
    told = re.search(r"`crmsweep demo --provider (\w+)` tells the HubSpot story\.(.+?)More passes", README, re.DOTALL)
    assert told is not None
    demo_provider, after = told.group(1), " ".join(told.group(2).split())
    fresh = re.search(r"`crmsweep (sandbox reset --provider (\w+))`", after)
    assert fresh is not None and fresh.group(2) == demo_provider in providers.names()
    assert problems(fresh.group(1)) == []
    assert "recent" in after
