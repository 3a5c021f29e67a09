"""A run's own copy of the plan it applied is what its log's change numbers name: no command writes over it,
and a copy that is not the plan the log began with is refused, not read (a rollback would undo changes the run
never made, and count as back the records it did change). Against the Salesforce sandbox, read back through
the API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from crmsweep.sandbox.server import RunningSandbox
from tests import test_cli_apply as cli_apply
from tests.test_apply_settle import ids_of, live, load
from tests.test_cli_apply import cli

config, home, plan_file = cli_apply.config, cli_apply.home, cli_apply.plan_file


def test_no_output_goes_among_the_runs_snapshots_or_keys_of_the_home(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path
) -> None:
    run_id = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)["run"]
    kept = home / "runs" / run_id / "plan.json"
    before = kept.read_bytes()
    [snapshot] = [p.name for p in (home / "snapshots").iterdir() if p.is_dir()]
    for target in (kept, home / "snapshots" / snapshot / "plan.json", home / "keys" / "plan.json"):
        refused = cli(config, home, "scan", "-c", "cli", "--snapshot", snapshot, "-o", str(target), expect=2)
        assert refused.stderr.startswith(f"crmsweep: cannot write the plan to {target}: crmsweep keeps its runs")
    assert kept.read_bytes() == before
    refused = cli(config, home, "rollback", run_id, "-o", str(kept), expect=2)
    assert kept.read_bytes() == before and "crmsweep keeps its runs" in refused.stderr
    refused = cli(config, home, "report", "quality", "-c", "cli", "-o", str(home / "runs" / "q.html"), expect=2)
    assert "crmsweep keeps its runs" in refused.stderr and not (home / "runs" / "q.html").exists()


def test_a_run_whose_plan_copy_was_replaced_is_refused_and_nothing_is_written(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path
) -> None:
    plan = load(plan_file)
    run_id = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)["run"]
    other = home.parent / "other.json"
    [snapshot] = [p.name for p in (home / "snapshots").iterdir() if p.is_dir()]
    cli(config, home, "scan", "-c", "cli", "--snapshot", snapshot, "-o", str(other), "--pass", "inactive_users")
    shutil.copyfile(other, home / "runs" / run_id / "plan.json")  # by hand: a signed plan of this home

    refused = cli(config, home, "rollback", run_id, "--yes", expect=2)

    assert refused.stderr.strip().startswith(f"crmsweep: the plan of run {run_id} (")
    assert "is not the plan the run applied" in refused.stderr
    contacts = ids_of(plan, "Contact")
    assert all(live(config, home, "Contact", contacts, "IsDeleted").values())  # nothing undone, nothing marked
    shown = cli(config, home, "runs", "show", run_id, expect=2)
    assert "is not the plan the run applied" in shown.stderr


def test_no_output_goes_into_another_homes_run_or_snapshot_folder(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path
) -> None:
    # One command names the home with --home, the next takes CRMSWEEP_HOME or the default: the run folder is
    # then another home's, and its plan copy must survive all the same.
    run_id = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)["run"]
    kept = home / "runs" / run_id / "plan.json"
    before = kept.read_bytes()
    [snapshot] = [p for p in (home / "snapshots").iterdir() if p.is_dir()]
    elsewhere = home.parent / "other-home"
    for target in (kept, snapshot / "data" / "plan.json"):
        refused = cli(config, elsewhere, "scan", "-c", "cli", "-o", str(target), "--pass", "inactive_users", expect=2)
        assert "is a crmsweep run or snapshot folder; choose a file outside it" in refused.stderr
    assert kept.read_bytes() == before
    (home.parent / "site").mkdir()
    (home.parent / "site" / "manifest.json").write_text('{"name": "a web app"}', encoding="utf-8")
    site = home.parent / "site" / "plan.json"  # a folder of another project's manifest.json is no snapshot
    cli(config, elsewhere, "scan", "-c", "cli", "-o", str(site), "--pass", "inactive_users")
