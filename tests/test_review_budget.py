"""`rollback RUN -o PLAN` reads the CRM (the run's writes of unknown outcome, its deleted records among the
CRM's deleted ones) and writes no record: its reads are judged against the [budget] reserve before they
are made, as every command's calls are, and `--json` says what was judged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crmsweep.budget import read_estimate
from crmsweep.model import Op, Plan
from crmsweep.providers.hubspot import HUBSPOT_CAPABILITIES
from crmsweep.sandbox.server import RunningSandbox
from tests.test_budget import cli, config, counted, write_config

__all__ = ["config"]  # a fixture


def test_a_review_plan_whose_reads_would_eat_into_the_reserve_is_refused_before_them(
    sandbox: RunningSandbox, config: Path, tmp_path: Path
) -> None:
    home, plan_file, review = tmp_path / "home", tmp_path / "plan.json", tmp_path / "undo.json"
    cli(config, home, "scan", "-c", "org", "-o", str(plan_file), "--pass", "stale_contacts")
    plan, _ = Plan.from_json(plan_file.read_text())
    assert {c.op for c in plan.changes} == {Op.DELETE}
    run_id = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)["run"]

    left = 15_000 - sandbox.stats()["api_usage"]
    tight = write_config(tmp_path / "tight.toml", sandbox, f"[budget]\nreserve = {left - 1}\n")
    before = counted(sandbox)
    told = cli(tight, home, "rollback", run_id, "-o", str(review), "--json", expect=3)
    refused = told.stderr.strip()
    assert f"the rollback plan of run {run_id} needs about " in refused and "--allow-over-budget" in refused
    # A rollback without -o makes the same reads and the writes besides: no way out to advise.
    assert "without -o" not in refused and "split the plan" not in refused and "\n" not in refused
    reads = counted(sandbox) - before
    assert not review.exists()
    # The numbers it judged by, for a script: beside the message, as `--json` answers carry them.
    error = json.loads(told.stdout)["error"]
    assert error["exit_code"] == 3 and error["remaining"] - error["estimated_calls"] < error["reserve"] == left - 1
    assert error["limit"] == 15_000 and isinstance(error["source"], str)

    # Plain, the rollback is refused after its plan checks (a few reads), before any write, named by its run.
    before = counted(sandbox)
    plain = cli(tight, home, "rollback", run_id, "--yes", "--json", expect=3)
    assert f"the rollback of run {run_id} needs about " in plain.stderr and "split the plan" not in plain.stderr
    assert json.loads(plain.stdout)["error"]["estimated_calls"] > 0
    assert counted(sandbox) - before < 20

    before = counted(sandbox)
    written = json.loads(cli(config, home, "rollback", run_id, "-o", str(review), "--json").stdout)
    made = counted(sandbox) - before
    assert written["api_calls"] == made and review.exists()
    # What was judged covers the deleted-record reads the refusal spared (the rest: connecting, asking).
    assert written["budget"]["estimated_calls"] >= made - reads > 0
    assert written["budget"]["over_budget"] is False


def test_the_reads_are_priced_as_the_connector_reads_by_id() -> None:
    # 501 contacts: six reads of up to 100 ids; a marketing email is read alone, two calls each; the
    # settling asks who the connection runs as once, then reads each batch of unknown outcome.
    found = read_estimate({"contacts": 501, "marketing_emails": 3}, [("contacts", 2), ("companies", 1)],
                          capabilities=HUBSPOT_CAPABILITIES, what="the rollback plan of run R")
    assert dict(found.parts) == {"settle reads": 3, "deleted-record reads": 12} and found.calls == 15
    nothing = read_estimate({}, [], capabilities=HUBSPOT_CAPABILITIES, what="the rollback plan of run R")
    assert nothing.calls == 0 and dict(nothing.parts) == {}


@pytest.mark.parametrize("mode", ["--yes", "--dry-run"])
def test_a_plain_rollback_refused_by_the_budget_makes_none_of_its_reads_first(
    sandbox: RunningSandbox, config: Path, tmp_path: Path, mode: str
) -> None:
    home, plan_file = tmp_path / "home", tmp_path / "plan.json"
    cli(config, home, "scan", "-c", "org", "-o", str(plan_file), "--pass", "stale_contacts")
    run_id = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)["run"]

    left = 15_000 - sandbox.stats()["api_usage"]
    tight = write_config(tmp_path / "tight.toml", sandbox, f"[budget]\nreserve = {left - 1}\n")
    before = counted(sandbox)
    refused = cli(tight, home, "rollback", run_id, mode, "--json", expect=3)
    # Only the org id, which the plan checks need anyway and whose answer reports the allowance: the
    # recycle-bin reads the plan is built from were made, and wasted, before the refusal.
    assert counted(sandbox) - before == 1
    line = refused.stderr.strip()
    assert f"the rollback of run {run_id} needs about " in line and "\n" not in line
    assert sorted(p.name for p in (home / "runs").iterdir()) == [run_id]  # no rollback run was made

    # What was refused foresaw the plan the reads then build: the estimate covers the one judged after them.
    judged = json.loads(cli(config, home, "rollback", run_id, mode, "--json").stdout)["budget"]
    assert json.loads(refused.stdout)["error"]["estimated_calls"] >= judged["estimated_calls"] > 0
