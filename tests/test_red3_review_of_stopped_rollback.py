"""Red team R3: `rollback RUN -o FILE` while a rollback of RUN is stopped (what the no-terminal refusal
suggests) wrote a plan re-creating every removed record again, those the stopped rollback had re-created
included (only finished rollbacks' creates are left out): applied, it made a second copy of each re-created
company. It is refused instead (exit 3), pointing to the resume, whose plan is the one to review."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from crmsweep.sandbox import faults
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import CLI_TOKEN_ENV, all_pages, hs, hubspot_cli, hubspot_sandbox

__all__ = ["hs", "hubspot_sandbox"]


def test_a_review_plan_is_refused_while_a_rollback_of_the_run_is_stopped(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    cli = hubspot_cli(hubspot_sandbox.info, tmp_path)
    config = tmp_path / "crmsweep.toml"
    env = {**os.environ, CLI_TOKEN_ENV: hubspot_sandbox.info.token, "CRMSWEEP_HOME": str(tmp_path / "home")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "crmsweep", *args, "--config", str(config)], capture_output=True,
                              text=True, env=env, stdin=subprocess.DEVNULL, timeout=600)

    def companies() -> int:
        return len(all_pages(hs.crm.objects.basic_api, object_type="companies", archived=False))

    backup = json.loads(cli("backup", "-c", "e2e", "--json").stdout)
    plan_file = tmp_path / "plan.json"
    cli("scan", "-c", "e2e", "--snapshot", backup["snapshot"], "-o", str(plan_file),
        "--pass", "stale_contacts", "--pass", "empty_accounts")
    applied = json.loads(cli("apply", str(plan_file), "--yes", "--json").stdout)
    archived = sum(1 for c in json.loads(plan_file.read_text())["changes"] if c["object"] == "companies")
    assert archived > 0
    before = companies()
    early = tmp_path / "early-undo.json"  # a review plan written before the rollback below was started
    cli("rollback", applied["run"], "-o", str(early))
    # The rollback stops at its first links (the daily allowance spent): its records are re-created already.
    hubspot_sandbox.set_faults([faults.FaultRule.from_dict(
        {"kind": "limit", "path": "associations", "method": "POST", "times": 50})])
    stopped = run("rollback", applied["run"], "--yes", "--json")
    hubspot_sandbox.set_faults([])
    assert stopped.returncode == 1 and json.loads(stopped.stdout)["stopped"]
    assert companies() == before + archived

    # Without a terminal, the refusal points at the plan being finished, not at a new one.
    no_tty = run("rollback", applied["run"])
    assert no_tty.returncode == 3 and " -o " not in no_tty.stderr and "crmsweep preview" in no_tty.stderr

    review = tmp_path / "undo.json"
    told = run("rollback", applied["run"], "-o", str(review))
    assert told.returncode == 3, told.stderr
    assert "stopped before it finished" in told.stderr and f"crmsweep rollback {applied['run']}" in told.stderr
    assert not review.exists()
    assert companies() == before + archived  # no second copy

    # The plan written before it would re-create them again too: refused when applied.
    late = run("apply", str(early), "--yes")
    assert late.returncode == 3 and "stopped before it finished" in late.stderr, late.stderr
    assert companies() == before + archived

    # Finishing it is the way on, and makes no copy either.
    cli("rollback", applied["run"], "--yes", "--json")
    assert companies() == before + archived
