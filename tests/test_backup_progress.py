"""The backup's progress bars: totals from the read plans, the whole backup's bar, rows past a total."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from crmsweep.commands.common import _BackupBars


def test_bars_take_planned_totals_and_an_overall_total() -> None:
    with Progress(console=Console(file=io.StringIO(), force_terminal=True)) as progress:
        bars = _BackupBars(progress)
        bars.planned("Contact", 100, "bulk")
        bars.planned("Account", 30, "rest")
        bars.planned("Custom", None, "rest")  # a connector that cannot count: no total, not in the overall
        bars("Contact", 40, False)
        bars("Account", 30, True)
        bars("Contact", 103, True)  # the recycle bin is read too: the count may be passed
        bars("Custom", 7, True)
        bars("Contact__Account", 5, True)  # links: never planned
        tasks = {t.description: t for t in progress.tasks}
    assert (tasks["Contact"].total, tasks["Contact"].completed) == (103, 103)
    assert (tasks["Account"].total, tasks["Account"].completed) == (30, 30)
    assert (tasks["Custom"].total, tasks["Custom"].completed) == (7, 7)
    assert (tasks["all objects"].total, tasks["all objects"].completed) == (130, 133)
    assert tasks["Contact"].fields["how"] == "bulk"
