"""Counts a person reads carry thousands separators, as the rest of the CLI prints them (20,479, not 20479)."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsweep.cleanup.apply import ApplyReport
from crmsweep.commands.apply import render_report
from crmsweep.commands.plan import written_line
from crmsweep.commands.runs import _counts_text


def test_the_scan_s_closing_line_separates_thousands_and_quotes_the_path() -> None:
    assert written_line(20479, Path("/tmp/my plans/plan.json")) == (
        "Plan with 20,479 changes written to /tmp/my plans/plan.json. "
        "Review it with `crmsweep preview '/tmp/my plans/plan.json'`."
    )


def test_a_run_s_summary_separates_thousands(capsys: pytest.CaptureFixture[str]) -> None:
    report = ApplyReport(run_id="run-1", plan_id="plan-1", total=20479, applied=19000, skipped=1479, failed=0,
                         stopped="the org's API allowance is spent", remaining=1200, api_calls=1234)
    # A hint without a `crmsweep ...` command: one would be completed with the --home of an earlier test.
    render_report(report, resume_hint="resume it later")
    assert capsys.readouterr().err.splitlines() == [
        "Run run-1: applied 19,000, skipped 1,479, failed 0 of 20,479 (1,234 API calls).",
        "Stopped: the org's API allowance is spent. 1,200 changes remain: resume it later",
    ]


def test_runs_show_counts_separate_thousands() -> None:
    assert _counts_text({"applied": 20479, "skipped": 0, "failed": 1001}) == "applied 20,479, failed 1,001"
