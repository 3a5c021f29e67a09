"""The scan a drift skip points to plans again what the plan did: a plan scanned with --pass names those
passes (a bare `scan` runs every pass, the ones the admin left out too), and the command pastes as is,
whatever the connection and path hold."""

from __future__ import annotations

import shlex
from pathlib import Path

from crmsweep.cleanup.passes import PASSES
from crmsweep.commands.apply import scan_command


def test_a_plan_of_some_passes_is_planned_again_with_those_passes() -> None:
    command = scan_command("prod", "/p/plan.json", passes=("stale_contacts", "duplicates"), config=None, home=None)
    assert shlex.split(command) == ["crmsweep", "scan", "-c", "prod", "-o", "/p/plan.json",
                                    "--pass", "stale_contacts", "--pass", "duplicates"]
    every = scan_command("prod", "/p/plan.json", passes=tuple(PASSES), config=None, home=None)
    assert shlex.split(every) == ["crmsweep", "scan", "-c", "prod", "-o", "/p/plan.json"]


def test_odd_names_paste_as_themselves() -> None:
    name, plan = "it's \"prod\"; $(rm -rf ~) `x`", "/tmp/a b/plan's;|&.json"
    command = scan_command(name, plan, passes=("stale_contacts",), config=Path("/c d/x.toml"), home=Path("/h'1"))
    assert shlex.split(command) == ["crmsweep", "scan", "-c", name, "-o", plan, "--pass", "stale_contacts",
                                    "--config", "/c d/x.toml", "--home", "/h'1"]
