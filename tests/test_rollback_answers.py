"""What `rollback`, `apply` of a rollback plan and `runs show` answer an admin (and a script, in `--json`)
about a rollback: a run that wrote nothing has nothing to undo, said plainly and exit 0.

Against the sandbox over TLS, with the CLI tests' fixtures.
"""

from __future__ import annotations

import json
from pathlib import Path

from crmsweep import api
from crmsweep.model import Plan
from crmsweep.sandbox.server import RunningSandbox
from tests import test_cli_apply as cli_apply
from tests.test_budget import counted
from tests.test_cli_apply import cli, run_ids

# The fixtures of the CLI tests: connection "cli" to the sandbox, a home, a scanned plan.
config, home, plan_file = cli_apply.config, cli_apply.home, cli_apply.plan_file


def a_run_that_wrote_nothing(config: Path, home: Path, plan_file: Path) -> str:
    """Apply `plan_file` after every record it changes was edited: each change is skipped as drift."""
    plan, _ = Plan.from_json(plan_file.read_text())
    with api.connect(api.Workspace.load(config, home), "cli") as connector:
        for obj in {c.object for c in plan.changes}:
            edits = [{"Id": c.record_id, "Title": "Edited since the scan"} for c in plan.changes if c.object == obj]
            assert all(r.ok for r in connector.update(obj, edits))
    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    assert (applied["applied"], applied["skipped"]) == (0, len(plan.changes))
    return str(applied["run"])


def test_a_rollback_of_a_run_that_wrote_nothing_says_so_and_exits_0(
    config: Path, home: Path, plan_file: Path, tmp_path: Path
) -> None:
    run_id = a_run_that_wrote_nothing(config, home, plan_file)
    for flags in ((), ("--dry-run",), ("-o", str(tmp_path / "undo.json"))):
        said = cli(config, home, "rollback", run_id, "--yes", *flags)
        assert f"Run {run_id} wrote nothing: there is nothing to roll back" in said.stderr
        answer = json.loads(cli(config, home, "rollback", run_id, "--yes", "--json", *flags).stdout)
        assert answer["rollback_of"] == run_id and answer["nothing_to_do"] is True
        assert (answer["run"], answer["applied"]) == (None, 0)
    assert not (tmp_path / "undo.json").exists()
    assert run_ids(home) == [run_id]  # no rollback run was made


def test_a_run_whose_record_shows_no_write_is_answered_without_an_api_call(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path, tmp_path: Path
) -> None:
    run_id = a_run_that_wrote_nothing(config, home, plan_file)
    review = tmp_path / "undo.json"
    for flags in ((), ("--dry-run",), ("-o", str(review))):
        before = counted(sandbox)
        answer = json.loads(cli(config, home, "rollback", run_id, "--yes", "--json", *flags).stdout)
        # `-o` once read the allowance to judge reads it was not going to make.
        assert (answer["nothing_to_do"], answer["api_calls"], answer["budget"]) == (True, 0, None), flags
        assert counted(sandbox) == before, flags
    assert not review.exists()


def test_a_reviewed_rollback_plan_says_what_it_undoes_and_its_run_keeps_the_plans_notes(
    config: Path, home: Path, plan_file: Path, tmp_path: Path
) -> None:
    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    assert applied["applied"] > 0 and applied["rollback_of"] is None
    review = tmp_path / "undo.json"
    cli(config, home, "rollback", applied["run"], "-o", str(review), "--json")
    undo, _ = Plan.from_json(review.read_text())
    assert undo.header.notes and undo.header.notes[0].startswith(f"rollback of run {applied['run']}: ")
    back = json.loads(cli(config, home, "apply", str(review), "--yes", "--json").stdout)
    assert back["rollback_of"] == applied["run"] and back["applied"] == len(undo.changes)

    shown = json.loads(cli(config, home, "runs", "show", back["run"], "--json").stdout)
    assert shown["rollback_of"] == applied["run"] and shown["notes"] == list(undo.header.notes)
    # One meaning per key in both answers: the plan's notes, and what the run itself reported.
    assert (back["plan_notes"], shown["plan_notes"]) == (list(undo.header.notes), list(undo.header.notes))
    assert (back["run_notes"], shown["run_notes"]) == (back["notes"], back["notes"])
    text = cli(config, home, "runs", "show", back["run"]).stdout
    assert f"rollback of run {applied['run']}: " in text
    scanned, _ = Plan.from_json(plan_file.read_text())
    first = json.loads(cli(config, home, "runs", "show", applied["run"], "--json").stdout)
    assert first["notes"] == list(scanned.header.notes)
