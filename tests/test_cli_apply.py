"""`apply` and `rollback` as an admin meets them: dry runs, review plans, typed confirmation, declining,
Ctrl-C and the command that resumes, a plan applied twice (issue 5 items 6, 18, 19).

Against the sandbox over TLS; the CRM's state is read back through the API.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crmsweep import api
from crmsweep.cleanup.plan_checks import load_plan
from crmsweep.cli import app
from crmsweep.model import Op, Plan
from crmsweep.paths import Home
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.server import RunningSandbox
from tests.test_budget import counted

TOKEN_ENV = "CLI_APPLY_TOKEN"
runner = CliRunner()


@pytest.fixture()
def config(sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    info = sandbox.info
    path = tmp_path / "my config.toml"  # a space: the resume hint must quote it
    path.write_text(
        "[connections.cli]\n"
        'provider = "salesforce"\n'
        f'url = "{info.url}"\n'
        f'token_env = "{TOKEN_ENV}"\n'
        f'ca_file = "{info.ca_file}"\n\n'
        "[safety]\nconfirm_typed_over = 2\n\n"
        "[retry]\nattempts = 3\ninitial_wait = 0.01\nmax_wait = 0.02\n",
        encoding="utf-8",
    )
    monkeypatch.setenv(TOKEN_ENV, info.token)
    monkeypatch.delenv("CRMSWEEP_CONFIG", raising=False)
    monkeypatch.delenv("CRMSWEEP_HOME", raising=False)
    return path


@pytest.fixture()
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def cli(config: Path, home: Path, *args: str, expect: int = 0, input: str | None = None) -> Any:
    result = runner.invoke(app, [*args, "--config", str(config), "--home", str(home)], input=input,
                           catch_exceptions=False)
    assert result.exit_code == expect, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return result


def ws(config: Path, home: Path) -> api.Workspace:
    return api.Workspace.load(config, home)


def org_rows(config: Path, home: Path, plan: Plan) -> dict[tuple[str, str], tuple[Any, ...]]:
    """What each record of the plan looks like now, read through the API."""
    rows: dict[tuple[str, str], tuple[Any, ...]] = {}
    with api.connect(ws(config, home), "cli") as connector:
        for obj in sorted({c.object for c in plan.changes}):
            ids = [c.record_id for c in plan.changes if c.object == obj]
            names = {f.name for f in connector.fields(obj)}
            fields = [f for f in ("Id", "IsDeleted", "IsActive", "SystemModstamp") if f in names]
            for rid, row in connector.read(obj, ids, fields).items():
                rows[(obj, rid)] = tuple(row.get(f) for f in fields)
    return rows


def run_ids(home: Path) -> list[str]:
    runs = home / "runs"
    return sorted(p.name for p in runs.iterdir()) if runs.exists() else []


@pytest.fixture()
def plan_file(config: Path, home: Path, tmp_path: Path) -> Path:
    path = tmp_path / "plan.json"
    # The two passes these plans were written for; every pass: tests/test_planted_passes.py.
    cli(config, home, "scan", "-c", "cli", "-o", str(path), "--json", "--pass", "stale_contacts",
        "--pass", "inactive_users")
    return path


def deletions(plan_file: Path) -> int:
    plan, _ = Plan.from_json(plan_file.read_text())
    return sum(1 for c in plan.changes if c.op is Op.DELETE)


# --- item 19 ---------------------------------------------------------------------------------------------------


def test_dry_run_reads_and_reports_but_writes_nothing_and_makes_no_run(
    config: Path, home: Path, plan_file: Path
) -> None:
    plan, _ = Plan.from_json(plan_file.read_text())
    before = org_rows(config, home, plan)
    answer = json.loads(cli(config, home, "apply", str(plan_file), "--dry-run", "--json").stdout)
    assert answer["dry_run"] is True and answer["run"] is None
    # Nothing was applied, and the keys say so: what would be written is under would_*.
    assert (answer["applied"], answer["skipped"], answer["failed"]) == (0, 0, 0)
    assert (answer["would_apply"], answer["would_skip"]) == (len(plan.changes), 0)
    assert len(answer["would_write"]) == len(plan.changes)
    text = cli(config, home, "apply", str(plan_file), "--dry-run").stderr
    assert f"Dry run: would write {len(plan.changes)} of {len(plan.changes)} changes" in text
    assert org_rows(config, home, plan) == before
    assert run_ids(home) == [] and not (home / "plans").exists()

    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    assert applied["undo"] == f"crmsweep rollback {applied['run']} --config {shlex.quote(str(config))} --home {home}"
    runs = run_ids(home)
    after = org_rows(config, home, plan)
    back = json.loads(cli(config, home, "rollback", applied["run"], "--dry-run", "--json").stdout)
    assert back["dry_run"] is True and (back["applied"], back["would_apply"]) == (0, len(plan.changes))
    assert run_ids(home) == runs and org_rows(config, home, plan) == after
    assert back["undo"] is None  # as a dry run of apply: no run, nothing to undo


def test_rollback_json_says_how_to_undo_the_rollback_as_apply_json_does(
    config: Path, home: Path, plan_file: Path
) -> None:
    plan, _ = Plan.from_json(plan_file.read_text())
    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    after = org_rows(config, home, plan)
    back = json.loads(cli(config, home, "rollback", applied["run"], "--yes", "--json").stdout)
    given = f"--config {shlex.quote(str(config))} --home {home}"
    assert back["undo"] == f"crmsweep rollback {back['run']} {given}"
    # The command, run as given, undoes the rollback: the org is as the apply left it.
    undone = json.loads(cli(config, home, *shlex.split(back["undo"])[1:-4], "--yes", "--json").stdout)
    assert undone["rollback_of"] == back["run"] and undone["applied"] == back["applied"] > 0
    assert {k: v[:2] for k, v in org_rows(config, home, plan).items()} == {k: v[:2] for k, v in after.items()}
    # Nothing left to undo of the first rollback: said, with no command.
    again = json.loads(cli(config, home, "rollback", back["run"], "--yes", "--json").stdout)
    assert again["nothing_to_do"] is True and again["undo"] is None


def test_rollback_without_a_terminal_or_yes_refuses_in_one_line_before_any_call_or_preview(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path
) -> None:
    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    run_id, runs = applied["run"], run_ids(home)
    given = f"--config {shlex.quote(str(config))} --home {shlex.quote(str(home))}"
    before = counted(sandbox)
    refused = cli(config, home, "rollback", run_id, expect=3)  # the test runner's stdin is no terminal
    # Once, the whole preview came first (thousands of lines at scale), the refusal last.
    assert refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"crmsweep: no terminal to confirm the rollback of run {run_id} on: pass --yes, or review it first "
        f"with `crmsweep rollback {run_id} -o undo-{run_id}.json {given}`, then "
        f"`crmsweep preview undo-{run_id}.json {given}`"]
    error = json.loads(cli(config, home, "rollback", run_id, "--json", expect=3).stdout)["error"]
    assert error["exit_code"] == 3 and error["message"].startswith("no terminal to confirm the rollback")
    assert counted(sandbox) == before and run_ids(home) == runs


def test_apply_without_a_terminal_or_yes_names_the_plan_to_review(config: Path, home: Path, plan_file: Path) -> None:
    given = f"--config {shlex.quote(str(config))} --home {shlex.quote(str(home))}"
    runs = run_ids(home)
    refused = cli(config, home, "apply", str(plan_file), expect=3)  # the test runner's stdin is no terminal
    assert refused.stderr.splitlines() == [
        f"crmsweep: no terminal to confirm on: review the plan with "
        f"`crmsweep preview {shlex.quote(os.path.abspath(plan_file))} {given}`, then pass --yes"]
    assert run_ids(home) == runs


def test_rollback_o_writes_the_inverse_plan_for_review_and_applies_nothing(
    config: Path, home: Path, plan_file: Path, tmp_path: Path
) -> None:
    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    plan, _ = Plan.from_json(plan_file.read_text())
    after_apply = org_rows(config, home, plan)
    runs = run_ids(home)
    review = tmp_path / "undo.json"

    answer = json.loads(cli(config, home, "rollback", applied["run"], "-o", str(review), "--json").stdout)

    inverse, _ = load_plan(review, Home(home))  # a plan file like any other: digest and signature checked
    assert answer == {"plan": inverse.header.plan_id, "path": str(review), "changes": len(plan.changes),
                      "rollback_of": applied["run"], "api_calls": answer["api_calls"],
                      "budget": answer["budget"], "undo": None}  # both: tests/test_budget.py
    assert inverse.header.rollback_of == applied["run"] and len(inverse.changes) == len(plan.changes)
    assert org_rows(config, home, plan) == after_apply
    assert run_ids(home) == runs
    # Reviewed, it is applied like any plan, and the run counts as rolled back.
    cli(config, home, "apply", str(review), "--yes")
    statuses = {r["run"]: r["status"] for r in json.loads(cli(config, home, "runs", "list", "--json").stdout)}
    assert statuses[applied["run"]] == "rolled back"


@pytest.fixture()
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if typed at a terminal."""
    monkeypatch.setattr("crmsweep.commands.common.interactive", lambda: True)
    monkeypatch.setattr("crmsweep.commands.apply.interactive", lambda: True, raising=False)


def test_many_deletions_need_their_number_typed_and_a_wrong_one_writes_nothing(
    config: Path, home: Path, plan_file: Path, terminal: None
) -> None:
    count = deletions(plan_file)
    assert count > 2  # over confirm_typed_over
    plan, _ = Plan.from_json(plan_file.read_text())
    before = org_rows(config, home, plan)

    refused = cli(config, home, "apply", str(plan_file), expect=4, input="y\n")
    assert f"Type {count} (or the connection name) to go on" in refused.stderr
    assert f"You typed 'y', not {count}." in refused.stderr
    assert "Nothing applied: declined at the confirmation." in refused.stderr
    cli(config, home, "apply", str(plan_file), expect=4, input=f"{count + 1}\n")
    assert org_rows(config, home, plan) == before and run_ids(home) == []

    typed = cli(config, home, "apply", str(plan_file), "--json", input=f"{count}\n").stdout
    done = json.loads(typed[typed.index("{"):])  # the test runner echoes what was typed
    assert done["applied"] == len(plan.changes) and run_ids(home) == [done["run"]]


def test_declining_exits_4_and_ctrl_c_at_the_prompt_exits_130_with_no_run_folder(
    config: Path, home: Path, plan_file: Path, terminal: None
) -> None:
    plan, _ = Plan.from_json(plan_file.read_text())
    before = org_rows(config, home, plan)
    cli(config, home, "apply", str(plan_file), expect=4, input="n\n")
    # End of input stands in for Ctrl-C: the prompt is abandoned either way.
    cli(config, home, "apply", str(plan_file), expect=130, input="")
    assert org_rows(config, home, plan) == before
    assert run_ids(home) == []


# --- item 6 through the CLI ------------------------------------------------------------------------------------


def test_applying_a_finished_plan_again_says_so_and_exits_0(config: Path, home: Path, plan_file: Path) -> None:
    first = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    again = cli(config, home, "apply", str(plan_file), "--yes")
    assert again.stderr.strip() == (
        f"Plan {first['plan']} was already applied by run {first['run']} (done): nothing to do, nothing applied "
        f"now. See `crmsweep runs show {first['run']} --config {shlex.quote(str(config))} --home {home}`."
    )
    answer = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    # As a rollback of a run rolled back already answers: this invocation did nothing, the earlier run is named.
    assert first["applied"] > 0
    assert {k: answer[k] for k in ("run", "applied", "skipped", "failed", "nothing_to_do", "already_applied",
                                   "already_applied_by", "skipped_items", "failed_items", "undo")} == {
        "run": None, "applied": 0, "skipped": 0, "failed": 0, "nothing_to_do": True, "already_applied": "done",
        "already_applied_by": first["run"], "skipped_items": [], "failed_items": [], "undo": None}
    assert first["nothing_to_do"] is False
    assert run_ids(home) == [first["run"]]


def test_resuming_a_finished_run_says_nothing_was_applied_now(config: Path, home: Path, plan_file: Path) -> None:
    # Red team R3: `apply --resume RUN` of a run that finished answered with the earlier run's counts
    # ("applied": N, nothing_to_do false) though it wrote nothing, what the plain re-apply no longer does.
    first = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    assert first["applied"] > 0
    answer = json.loads(cli(config, home, "apply", str(plan_file), "--resume", first["run"], "--yes",
                            "--json").stdout)
    assert {k: answer[k] for k in ("run", "applied", "nothing_to_do", "already_applied", "already_applied_by")} == {
        "run": None, "applied": 0, "nothing_to_do": True, "already_applied": "done",
        "already_applied_by": first["run"]}
    assert run_ids(home) == [first["run"]]


def test_a_dry_run_of_a_finished_plan_says_it_is_a_dry_run_and_would_do_nothing(
    config: Path, home: Path, plan_file: Path
) -> None:
    # A reviewer's `apply --dry-run --json` of a plan applied already answered "dry_run": false.
    first = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    assert first["applied"] > 0
    for extra in ((), ("--resume", first["run"])):
        answer = json.loads(cli(config, home, "apply", str(plan_file), *extra, "--dry-run", "--json").stdout)
        assert {k: answer[k] for k in ("run", "dry_run", "applied", "nothing_to_do", "already_applied",
                                       "already_applied_by", "would_apply", "would_skip", "would_write",
                                       "would_skip_items", "id_map", "undo")} == {
            "run": None, "dry_run": True, "applied": 0, "nothing_to_do": True, "already_applied": "done",
            "already_applied_by": first["run"], "would_apply": 0, "would_skip": 0, "would_write": [],
            "would_skip_items": [], "id_map": {}, "undo": None}
    text = cli(config, home, "apply", str(plan_file), "--dry-run")
    assert text.stderr.strip() == (
        f"Dry run: plan {first['plan']} was already applied by run {first['run']} (done): nothing to do, nothing "
        f"applied now. See `crmsweep runs show {first['run']} --config {shlex.quote(str(config))} --home {home}`."
    )
    assert run_ids(home) == [first["run"]]


def test_a_plan_whose_run_stopped_is_finished_by_resuming_it_not_by_a_second_run(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path
) -> None:
    sandbox.set_faults([FaultRule(kind="limit", path="composite/sobjects", method="DELETE", times=1)])
    stopped = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json", expect=1).stdout)
    sandbox.set_faults([])
    refused = cli(config, home, "apply", str(plan_file), "--yes", expect=3)
    assert refused.stderr.strip() == (
        f"crmsweep: plan {stopped['plan']} was started by run {stopped['run']}, which is stopped: finish that run "
        f"rather than starting another, with crmsweep apply {plan_file} --resume {stopped['run']} --yes "
        f"--config '{config}' --home {home}"
    )
    assert run_ids(home) == [stopped["run"]]


def test_the_command_to_finish_a_run_names_the_config_and_home_given_by_the_environment_as_runs_show_does(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path
) -> None:
    # An admin with CRMSWEEP_CONFIG and CRMSWEEP_HOME set was given a command without them, which failed in
    # another shell ("unknown connection"), while `runs show` printed another, with both.
    env = {"CRMSWEEP_CONFIG": str(config), "CRMSWEEP_HOME": str(home)}
    sandbox.set_faults([FaultRule(kind="limit", path="composite/sobjects", method="DELETE", times=1)])
    stopped = runner.invoke(app, ["apply", str(plan_file), "--yes", "--json"], env=env, catch_exceptions=False)
    sandbox.set_faults([])
    assert stopped.exit_code == 1, stopped.stderr
    run = json.loads(stopped.stdout)["run"]
    refused = runner.invoke(app, ["apply", str(plan_file)], env=env, catch_exceptions=False)
    assert refused.exit_code == 3
    assert refused.stderr.strip().endswith(
        f"with crmsweep apply {plan_file} --resume {run} --config '{config}' --home {home}")
    shown = runner.invoke(app, ["runs", "show", run, "--json"], env=env, catch_exceptions=False)
    copy = home / "runs" / run / "plan.json"
    resume = json.loads(shown.stdout)["resume"]
    assert resume == f"crmsweep apply {copy} --resume {run} --config '{config}' --home {home}"


# --- item 18: Ctrl-C mid-run, and the printed command finishes it ----------------------------------------------


def interrupt_when_writing(args: list[str], home: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run crmsweep, and press Ctrl-C once its log announces a write (an intent entry)."""
    before = set(run_ids(home))
    proc = subprocess.Popen([sys.executable, "-m", "crmsweep", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        while proc.poll() is None:
            new = [r for r in run_ids(home) if r not in before]
            log = home / "runs" / new[0] / "log.jsonl" if new else None
            if log is not None and log.exists() and '"t": "intent"' in log.read_text(encoding="utf-8"):
                proc.send_signal(signal.SIGINT)
                break
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    return subprocess.CompletedProcess(args, proc.returncode, stdout, stderr)


def hint_of(stderr: str) -> str:
    match = re.search(r"Finish it with: (.+)$", stderr.strip(), re.MULTILINE)
    assert match, stderr
    return match.group(1)


def test_ctrl_c_prints_the_resume_command_and_running_it_as_printed_finishes_the_run(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path
) -> None:
    plan, _ = Plan.from_json(plan_file.read_text())
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    # Every write takes a while, so the interrupt lands mid-run.
    sandbox.set_faults([FaultRule(kind="timeout", path="composite/sobjects|Soap", delay=0.3)])
    done = interrupt_when_writing(["apply", str(plan_file), "--yes", "--config", str(config), "--home", str(home)],
                                  home, env)
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr
    [run_id] = run_ids(home)
    hint = hint_of(done.stderr)
    assert hint == f"crmsweep apply {plan_file} --resume {run_id} --yes --config '{config}' --home {home}"
    assert done.stderr.strip().splitlines()[-1].startswith(f"crmsweep: interrupted: run {run_id} stopped")

    sandbox.set_faults([])
    resumed = subprocess.run(hint, shell=True, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    statuses = {r.run_id: r.status for r in api.runs(ws(config, home))}
    assert statuses == {run_id: "done"}
    rows = org_rows(config, home, plan)
    assert all(rows[(c.object, c.record_id)][1] is True for c in plan.changes if c.op is Op.DELETE)

    # The same for a rollback: re-running the printed `rollback RUN` resumes it, no second rollback.
    sandbox.set_faults([FaultRule(kind="timeout", path="composite/sobjects|Soap", delay=0.3)])
    stopped = interrupt_when_writing(["rollback", run_id, "--yes", "--config", str(config), "--home", str(home)],
                                     home, env)
    assert stopped.returncode == 130, stopped.stderr
    hint = hint_of(stopped.stderr)
    assert hint == f"crmsweep rollback {run_id} --yes --config '{config}' --home {home}"
    sandbox.set_faults([])
    again = subprocess.run(hint, shell=True, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "Finished the interrupted rollback run" in again.stderr
    runs = api.runs(ws(config, home))
    assert [r.kind for r in runs] == ["apply", "rollback"]
    assert {r.run_id: r.status for r in runs}[run_id] == "rolled back"
    rows = org_rows(config, home, plan)
    assert not any(rows[(c.object, c.record_id)][1] for c in plan.changes if c.op is Op.DELETE)


def test_rollback_o_never_overwrites_a_file_that_is_not_a_plan(
    config: Path, home: Path, plan_file: Path, tmp_path: Path
) -> None:
    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    notes = tmp_path / "notes.txt"
    notes.write_text("hi\n", encoding="utf-8")
    for target in (notes, config):
        before = target.read_bytes()
        result = cli(config, home, "rollback", applied["run"], "-o", str(target), expect=2)
        assert "is not a crmsweep plan: refusing to overwrite it" in result.stderr
        assert target.read_bytes() == before


def test_suggested_commands_carry_the_config_and_home_in_force(config: Path, home: Path, tmp_path: Path) -> None:
    plan = tmp_path / "p.json"
    scanned = cli(config, home, "scan", "-c", "cli", "-o", str(plan))
    suggested = re.findall(r"`(crmsweep preview [^`]*)`", scanned.stderr)
    assert suggested == [f"crmsweep preview {plan} --config {shlex.quote(str(config))} --home {home}"]
    empty = runner.invoke(app, ["runs", "list", "--home", ""])
    assert empty.exit_code == 2 and "is empty" in empty.stderr


def test_a_plan_with_no_changes_is_checked_and_makes_no_run(config: Path, home: Path, tmp_path: Path) -> None:
    with config.open("a", encoding="utf-8") as f:
        f.write("\n[passes.stale_contacts]\nyears = 100\n")  # nobody has been idle a hundred years
    path = tmp_path / "empty.json"
    cli(config, home, "scan", "-c", "cli", "-o", str(path), "--json", "--pass", "stale_contacts")
    plan, _ = Plan.from_json(path.read_text())
    assert plan.changes == ()
    answer = json.loads(cli(config, home, "apply", str(path), "--yes", "--json").stdout)
    assert answer["nothing_to_do"] is True and answer["run"] is None and answer["applied"] == 0
    assert "undo" in answer and answer["undo"] is None
    assert answer["api_calls"] >= 1  # the plan was still checked against the org
    assert run_ids(home) == []
    said = cli(config, home, "apply", str(path), "--yes")
    assert "nothing to apply" in said.stderr and run_ids(home) == []


def test_an_apply_that_wrote_nothing_offers_no_rollback(config: Path, home: Path, tmp_path: Path) -> None:
    paths = [tmp_path / "stale.json", tmp_path / "again.json"]
    for path in paths:  # two plans of the same records, both scanned before anyone edits them
        cli(config, home, "scan", "-c", "cli", "-o", str(path), "--json", "--pass", "stale_contacts")
    plan, _ = Plan.from_json(paths[0].read_text())
    assert plan.changes and {c.object for c in plan.changes} <= {"Contact", "Lead"}
    with api.connect(ws(config, home), "cli") as connector:
        for obj in {c.object for c in plan.changes}:
            edits = [{"Id": c.record_id, "Title": "Edited since the scan"} for c in plan.changes if c.object == obj]
            assert all(r.ok for r in connector.update(obj, edits))
    said = cli(config, home, "apply", str(paths[0]), "--yes")
    assert "To undo" not in said.stderr and "nothing to undo" in said.stderr
    answer = json.loads(cli(config, home, "apply", str(paths[1]), "--yes", "--json").stdout)
    assert (answer["applied"], answer["skipped"], answer["undo"]) == (0, len(plan.changes), None)
    assert org_rows(config, home, plan) and all(row[1] is False for row in org_rows(config, home, plan).values())


def test_ctrl_c_with_json_answers_the_run_and_its_resume_command_on_stdout(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path
) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    sandbox.set_faults([FaultRule(kind="timeout", path="composite/sobjects|Soap", delay=0.3)])
    done = interrupt_when_writing(["apply", str(plan_file), "--yes", "--json", "--config", str(config), "--home",
                                   str(home)], home, env)
    sandbox.set_faults([])
    assert done.returncode == 130, done.stderr
    [run_id] = run_ids(home)
    answer = json.loads(done.stdout)["error"]
    assert (answer["exit_code"], answer["run"]) == (130, run_id)
    assert answer["resume"] == hint_of(done.stderr) and answer["message"].startswith(f"interrupted: run {run_id}")


def test_applying_a_plan_whose_run_was_rolled_back_says_to_scan_again(config: Path, home: Path,
                                                                       plan_file: Path) -> None:
    first = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    cli(config, home, "rollback", first["run"], "--yes", "--json")
    again = cli(config, home, "apply", str(plan_file), "--yes").stderr.strip()
    assert again.startswith(f"Plan {first['plan']} was already applied by run {first['run']} (rolled back)")
    scan = again.split("To clean up again, scan again for a fresh plan: `", 1)[1].rstrip("`.")
    words = shlex.split(scan)
    assert words[:6] == ["crmsweep", "scan", "-c", "cli", "-o", str(plan_file)]
    cli(config, home, *words[1:-4])  # the command as given, --config and --home added by `cli`
    fresh = json.loads(cli(config, home, "apply", str(plan_file), "--dry-run", "--json").stdout)
    assert fresh["would_apply"] == first["applied"]


def test_a_dry_run_while_the_plan_is_being_applied_says_so_not_that_its_run_is_unfinished(
    config: Path, home: Path, plan_file: Path
) -> None:
    """A dry run takes no lock, so while another apply of the plan was writing it was told the run "is unfinished:
    finish that run rather than starting another", as if it had died: it is live, and the dry run can be repeated
    once it is done."""
    seen: list[Any] = []

    def dry_run_meanwhile(progress: object) -> None:
        if not seen:  # the apply is live: its run started, the plan's lock held
            seen.append(runner.invoke(app, ["apply", str(plan_file), "--dry-run", "--config", str(config),
                                            "--home", str(home)], catch_exceptions=False))

    applied = api.apply(ws(config, home), plan_file, confirm=lambda plan: True, progress=dry_run_meanwhile).report
    assert applied is not None and applied.run_id and applied.failed == 0
    [dry] = seen
    assert dry.exit_code == 3, dry.stderr
    assert dry.stderr.strip() == (
        f"crmsweep: plan {applied.plan_id} is being applied now by run {applied.run_id} (pid {os.getpid()}): a dry "
        "run would read its records while they are written; repeat the dry run once that run has finished")
    assert "unfinished" not in dry.stderr


def test_rollback_yes_lists_at_most_50_changes_an_object_and_says_how_to_see_the_rest(
    config: Path, home: Path, tmp_path: Path, terminal: None
) -> None:
    """`rollback RUN --yes` printed every change line of its preview (without --yes it shows 50 an object, as
    `preview --limit 50`): thousands of lines, the prompt-free run's report scrolled away under them."""
    with config.open("a", encoding="utf-8") as f:
        f.write("\n[passes.stale_contacts]\nyears = 1\n")  # more than 50 contacts
    plan_file = tmp_path / "plan.json"
    cli(config, home, "scan", "-c", "cli", "-o", str(plan_file), "--json", "--pass", "stale_contacts")
    plan, _ = Plan.from_json(plan_file.read_text())
    contacts = sum(1 for c in plan.changes if c.object == "Contact")
    assert contacts > 50
    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    # Asked at a terminal, the admin can decline and write the whole plan first.
    declined = cli(config, home, "rollback", applied["run"], input="n\n", expect=4)
    assert (f"more changes of the rollback plan are not listed above (at most 50 an object): to see them all, "
            f"decline and write the plan with `crmsweep rollback {applied['run']} -o FILE") in declined.stderr
    back = cli(config, home, "rollback", applied["run"], "--yes")
    listed = [line for line in back.stdout.splitlines() if re.match(r"\s*[-~+] ", line)]
    assert 50 <= len(listed) < len(plan.changes)
    assert f"… and {contacts - 50:,} more" in back.stdout
    [undo] = [r for r in api.runs(ws(config, home)) if r.rollback_of == applied["run"]]
    kept = home / "runs" / undo.run_id / "plan.json"
    assert back.stderr.strip().splitlines()[-1] == (
        f"{undo.total - len(listed):,} more changes of the rollback plan are not listed above (at most 50 an "
        f"object): see them all with `crmsweep preview {kept} --config {shlex.quote(str(config))} --home {home}`.")
    whole = cli(config, home, "preview", str(kept)).stdout
    assert len([line for line in whole.splitlines() if re.match(r"\s*[-~+] ", line)]) == undo.total
    statuses = {r.run_id: r.status for r in api.runs(ws(config, home))}
    assert statuses[applied["run"]] == "rolled back"  # and it was applied all the same
