"""Stopping, settling, resuming and rolling back as a new admin meets them (issue 5 follow-up A1-A8):
rollback settles writes of unknown outcome itself, dry runs do what the real command would, the
questions and hints say what resuming does, and a run rolled back already is said to be.

Against the sandbox over TLS; the CRM's state is read back through the API.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from crmsweep import api
from crmsweep.backup.runlog import Outcome, read_run
from crmsweep.cleanup.apply import ApplyProgress
from crmsweep.cli import app
from crmsweep.connectors.salesforce import SalesforceConnector
from crmsweep.errors import ConnectorError
from crmsweep.model import Op, Plan, WriteResult
from crmsweep.paths import Home
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.server import RunningSandbox
from tests import test_cli_apply as cli_apply
from tests.test_cli_apply import cli

# The fixtures of the CLI tests: connection "cli" to the sandbox, a home, a scanned plan, a terminal.
config, home, plan_file, terminal = cli_apply.config, cli_apply.home, cli_apply.plan_file, cli_apply.terminal


def yes(plan: Plan) -> bool:
    return True


def load(plan_file: Path) -> Plan:
    return Plan.from_json(plan_file.read_text())[0]


def ids_of(plan: Plan, obj: str) -> list[str]:
    return [c.record_id for c in plan.changes if c.object == obj]


def live(config: Path, home: Path, obj: str, ids: list[str], field: str) -> dict[str, Any]:
    with api.connect(api.Workspace.load(config, home), "cli") as connector:
        rows = connector.read(obj, ids, ["Id", field], include_deleted=True)
    return {i: rows[i][field] for i in ids}


def after_first_batch(sandbox: RunningSandbox, rule: FaultRule) -> Callable[[ApplyProgress], None]:
    """A progress callback that arms `rule` once the first batch is done (the Contact deletes)."""
    armed = False

    def progress(p: ApplyProgress) -> None:
        nonlocal armed
        if p.done and not armed:
            sandbox.set_faults([rule])
            armed = True
    return progress


def stop_after_contacts(sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path, kind: str) -> str:
    """Apply the plan (40 delete Contact, 24 delete Lead, 3 deactivate User); the Lead batch meets `kind`."""
    plan = load(plan_file)
    assert [(c.op, c.object) for c in plan.changes[:1]] == [(Op.DELETE, "Contact")]
    report = api.apply(api.Workspace.load(config, home), plan_file, confirm=yes,
                       progress=after_first_batch(sandbox, FaultRule(kind=kind, method="DELETE"))).report
    sandbox.set_faults([])
    assert report is not None and report.stopped is not None
    return report.run_id


# --- A1: rollback settles the writes of unknown outcome itself, and starts nothing new ------------------------


def test_rollback_after_a_drop_settles_pending_writes_and_undoes_exactly_what_was_applied(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path
) -> None:
    plan = load(plan_file)
    contacts, leads, users = ids_of(plan, "Contact"), ids_of(plan, "Lead"), ids_of(plan, "User")
    run_id = stop_after_contacts(sandbox, config, home, plan_file, "drop")
    state = read_run(Home(home), run_id)
    # A dropped connection after sending: the Lead deletes may have landed, so they stay pending.
    assert (state.count(Outcome.APPLIED), state.count(Outcome.PENDING), state.count(Outcome.NOT_STARTED)) == (
        len(contacts), len(leads), len(users))
    # Meanwhile another admin deletes one of those Leads.
    with api.connect(api.Workspace.load(config, home), "cli") as connector:
        assert connector.delete("Lead", [leads[0]])[0].ok

    answer = json.loads(cli(config, home, "rollback", run_id, "--yes", "--json").stdout)

    assert (answer["applied"], answer["failed"], answer["stopped"]) == (len(contacts), 0, None)
    settled = read_run(Home(home), run_id)
    assert settled.status == "rolled back" and settled.count(Outcome.PENDING) == 0
    assert settled.outcomes[plan.changes.index(next(c for c in plan.changes if c.record_id == leads[0]))].reason
    assert not any(live(config, home, "Contact", contacts, "IsDeleted").values())
    # The other admin's deletion is theirs: left alone. The Leads and Users never written stay as they were.
    assert live(config, home, "Lead", leads, "IsDeleted") == {rid: rid == leads[0] for rid in leads}
    assert all(live(config, home, "User", users, "IsActive").values())
    assert len(read_run(Home(home), answer["run"]).plan.changes) == len(contacts)


# --- A4: a batch refused as a whole before anything ran is back to not started --------------------------------


def test_a_batch_refused_up_front_is_not_left_pending_and_the_run_rolls_back(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path
) -> None:
    plan = load(plan_file)
    contacts, leads = ids_of(plan, "Contact"), ids_of(plan, "Lead")
    run_id = stop_after_contacts(sandbox, config, home, plan_file, "limit")
    state = read_run(Home(home), run_id)
    assert state.count(Outcome.PENDING) == 0
    assert (state.count(Outcome.APPLIED), state.count(Outcome.NOT_STARTED)) == (len(contacts), len(plan.changes)
                                                                                  - len(contacts))
    assert [e["why"] for e in state.entries if e["t"] == "unwritten"] == ["not sent"]
    assert not any(live(config, home, "Lead", leads, "IsDeleted").values())
    back = api.rollback(api.Workspace.load(config, home), run_id, confirm=yes).report
    assert back is not None and (back.applied, back.failed) == (len(contacts), 0)
    assert read_run(Home(home), run_id).status == "rolled back"


# --- A2, A5: the resume question and `runs show` say what resuming does -----------------------------------------


def test_resuming_asks_about_what_remains_and_runs_show_prints_the_command(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path, terminal: None
) -> None:
    plan = load(plan_file)
    run_id = stop_after_contacts(sandbox, config, home, plan_file, "limit")
    shown = cli(config, home, "runs", "show", run_id).stdout
    plan_copy = home / "runs" / run_id / "plan.json"
    command = f"crmsweep apply {plan_copy} --resume {run_id} --config '{config}' --home {home}"
    assert f"Resume with     {command}\n" in shown

    asked = cli(config, home, *shlex.split(command)[1:5], expect=4, input="64\n")
    assert (f"Resume run {run_id}: 40 of 67 changes done, 27 remain (24 delete Lead, 3 deactivate User) on "
            f"salesforce org {plan.header.org_id} ('cli')? Plan {plan.header.plan_id}, {plan.digest}") in asked.stderr
    assert "This deletes 24 records. Type 24" in asked.stderr
    done = cli(config, home, *shlex.split(command)[1:5], input="24\n")
    assert "applied 67, skipped 0, failed 0 of 67" in done.stderr
    assert "Resume with" not in cli(config, home, "runs", "show", run_id).stdout


def test_runs_show_explains_pending(sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path) -> None:
    run_id = stop_after_contacts(sandbox, config, home, plan_file, "drop")
    shown = cli(config, home, "runs", "show", run_id).stdout
    assert ("Pending         24: written or not, crmsweep cannot tell yet: resume settles it from the live "
            "records (so does rollback, writing nothing new)") in shown
    answer = json.loads(cli(config, home, "runs", "show", run_id, "--json").stdout)
    assert answer["resume"].startswith("crmsweep apply ") and answer["pending_means"]


# --- A3: dry runs do what the real command would ---------------------------------------------------------------


def test_dry_run_of_a_stopped_plan_is_refused_like_the_real_apply(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path
) -> None:
    run_id = stop_after_contacts(sandbox, config, home, plan_file, "limit")
    real = cli(config, home, "apply", str(plan_file), "--yes", expect=3).stderr
    dry = cli(config, home, "apply", str(plan_file), "--dry-run", expect=3).stderr
    assert dry == real.replace(" --yes", "") and f"--resume {run_id}" in dry


def test_dry_run_resume_reconciles_read_only_and_reports(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path
) -> None:
    plan = load(plan_file)
    run_id = stop_after_contacts(sandbox, config, home, plan_file, "limit")
    log = home / "runs" / run_id / "log.jsonl"
    before = log.read_bytes()
    answer = json.loads(cli(config, home, "apply", str(plan_file), "--resume", run_id, "--dry-run", "--json").stdout)
    assert (answer["run"], answer["dry_run"], answer["applied"]) == (run_id, True, 0)
    assert (answer["would_apply"], answer["would_skip"]) == (len(plan.changes) - 40, 0)
    assert {i["object"] for i in answer["would_write"]} == {"Lead", "User"}
    assert log.read_bytes() == before
    assert not any(live(config, home, "Lead", ids_of(plan, "Lead"), "IsDeleted").values())


def test_rollback_dry_run_after_an_interrupted_rollback_counts_its_own_landed_write_as_done(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = load(plan_file)
    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    real_undelete = SalesforceConnector.undelete

    def lands_then_drops(self: SalesforceConnector, obj: str, ids: list[str]) -> list[WriteResult]:
        real_undelete(self, obj, ids)  # the write lands; its answer is lost
        raise ConnectorError("undelete may or may not have been carried out", code="OUTCOME_UNKNOWN")

    monkeypatch.setattr(SalesforceConnector, "undelete", lands_then_drops)
    stopped = api.rollback(api.Workspace.load(config, home), applied["run"], confirm=yes).report
    monkeypatch.setattr(SalesforceConnector, "undelete", real_undelete)
    assert stopped is not None and stopped.stopped
    leads = ids_of(plan, "Lead")
    assert not any(live(config, home, "Lead", leads, "IsDeleted").values())  # it did land

    back = json.loads(cli(config, home, "rollback", applied["run"], "--dry-run", "--json").stdout)
    assert (back["run"], back["would_skip"], back["would_apply"]) == (stopped.run_id, 0, 40)
    assert {i["object"] for i in back["would_write"]} == {"Contact"}
    real = json.loads(cli(config, home, "rollback", applied["run"], "--yes", "--json").stdout)
    assert (real["run"], real["skipped"], real["applied"], real["resumed"]) == (stopped.run_id, 0, 67, True)


# --- A6, A7, A8 -------------------------------------------------------------------------------------------------


def test_failed_changes_are_said_to_be_final(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path
) -> None:
    locked = ids_of(load(plan_file), "Contact")[0]
    sandbox.set_faults([FaultRule(kind="lock", ids=(locked,))])
    done = cli(config, home, "apply", str(plan_file), "--yes", expect=1)
    sandbox.set_faults([])
    assert ("1 changes failed: that is final, resume does not retry them. Fix the cause, then scan again: "
            "a fresh plan proposes them again if they still qualify.") in done.stderr
    [run_id] = [p.name for p in (home / "runs").iterdir()]
    shown = cli(config, home, "runs", "show", run_id).stdout
    assert "Failed          1: final, resume does not retry them" in shown and "Resume with" not in shown


def test_rollback_of_a_run_rolled_back_already_says_so_and_exits_0(
    config: Path, home: Path, plan_file: Path
) -> None:
    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    back = json.loads(cli(config, home, "rollback", applied["run"], "--yes", "--json").stdout)
    at = api.run(api.Workspace.load(config, home), back["run"]).finished
    assert at
    again = cli(config, home, "rollback", applied["run"], "--yes")
    assert again.stderr.strip() == already_rolled_back_line(config, home, applied["run"], back["run"], at)
    answer = json.loads(cli(config, home, "rollback", applied["run"], "--yes", "--json").stdout)
    # The keys a rollback with nothing to undo answers with, so a script reads both one way.
    assert answer == already_rolled_back_json(applied["run"], back["run"], at)


def already_rolled_back_line(config: Path, home: Path, run: str, by: str, at: str) -> str:
    return (f"Nothing to do: run {run} was already rolled back by run {by} at {at}; nothing was written now. "
            f"See `crmsweep runs show {by} --config {shlex.quote(str(config))} --home {home}`.")


def already_rolled_back_json(run: str, by: str, at: str) -> dict[str, Any]:
    return {"rollback_of": run, "already_rolled_back_by": by, "already_rolled_back_at": at, "run": None,
            "applied": 0, "skipped": 0, "failed": 0, "nothing_to_do": True, "api_calls": 0, "undo": None}


def test_applying_the_rollback_plan_of_a_run_rolled_back_already_answers_as_a_second_rollback_does(
    config: Path, home: Path, plan_file: Path, tmp_path: Path
) -> None:
    """A second `rollback RUN` said "nothing to do" and exited 0, while applying a rollback plan of the same run,
    written before another rollback undid it, was refused with exit 3: the same repeat, writing nothing either
    way, now answered alike."""
    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    undo = tmp_path / "undo.json"
    cli(config, home, "rollback", applied["run"], "-o", str(undo))
    back = json.loads(cli(config, home, "rollback", applied["run"], "--yes", "--json").stdout)
    at = api.run(api.Workspace.load(config, home), back["run"]).finished
    assert at
    plan = load(plan_file)
    before = live(config, home, "Contact", ids_of(plan, "Contact"), "IsDeleted")
    runs = sorted(p.name for p in (home / "runs").iterdir())

    said = cli(config, home, "apply", str(undo), "--yes")
    assert said.stderr.strip() == already_rolled_back_line(config, home, applied["run"], back["run"], at)
    answer = json.loads(cli(config, home, "apply", str(undo), "--yes", "--json").stdout)
    assert answer == already_rolled_back_json(applied["run"], back["run"], at)
    dry = json.loads(cli(config, home, "apply", str(undo), "--dry-run", "--json").stdout)
    assert dry == already_rolled_back_json(applied["run"], back["run"], at)
    assert live(config, home, "Contact", ids_of(plan, "Contact"), "IsDeleted") == before  # nothing written
    assert sorted(p.name for p in (home / "runs").iterdir()) == runs  # and no run made


def test_rollback_confirmation_names_the_breakdown_org_and_digest(
    config: Path, home: Path, plan_file: Path, terminal: None
) -> None:
    plan = load(plan_file)
    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    asked = cli(config, home, "rollback", applied["run"], expect=4, input="n\n").stderr
    undo = read_run(Home(home), applied["run"])
    assert undo.status == "done"
    assert (f"Roll back run {applied['run']}: 67 changes (3 reactivate User, 24 undelete Lead, 40 undelete Contact) "
            f"on salesforce org {plan.header.org_id} ('cli')? Plan plan-") in asked
    assert ", sha256:" in asked.split("Roll back run", 1)[1]


def test_finishing_an_interrupted_rollback_asks_about_what_remains(
    config: Path, home: Path, plan_file: Path, monkeypatch: pytest.MonkeyPatch, terminal: None
) -> None:
    plan = load(plan_file)
    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    sandbox_undelete = SalesforceConnector.undelete

    def refused(self: SalesforceConnector, obj: str, ids: list[str]) -> list[WriteResult]:
        raise ConnectorError("the CRM refused to go on")

    monkeypatch.setattr(SalesforceConnector, "undelete", refused)
    stopped = api.rollback(api.Workspace.load(config, home), applied["run"], confirm=yes).report
    monkeypatch.setattr(SalesforceConnector, "undelete", sandbox_undelete)
    assert stopped is not None and stopped.stopped
    asked = cli(config, home, "rollback", applied["run"], expect=4, input="n\n").stderr
    assert (f"Finish rolling back run {applied['run']}: 3 of 67 changes done, 64 remain (24 undelete Lead, "
            f"40 undelete Contact) on salesforce org {plan.header.org_id} ('cli')? Plan "
            f"{stopped.plan_id}, ") in asked


def test_runs_show_without_the_config_names_the_one_the_run_was_started_with_and_its_command_finishes_it(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path
) -> None:
    run_id = stop_after_contacts(sandbox, config, home, plan_file, "limit")
    # Another terminal, another day: only the home is named, and no default config defines connection 'cli'.
    shown = cli_apply.runner.invoke(app, ["runs", "show", run_id, "--json", "--home", str(home)],
                                    catch_exceptions=False)
    assert shown.exit_code == 0, shown.stderr
    resume = json.loads(shown.stdout)["resume"]
    assert resume == (f"crmsweep apply {home / 'runs' / run_id / 'plan.json'} --resume {run_id} "
                      f"--config {shlex.quote(str(config))} --home {home}")
    words = shlex.split(resume)
    done = cli_apply.runner.invoke(app, [*words[1:], "--yes", "--json"], catch_exceptions=False)
    assert done.exit_code == 0, done.stderr
    answer = json.loads(done.stdout)
    assert (answer["remaining"], answer["applied"], answer["applied_earlier"]) == (0, 67, 40)  # 40 Contact before
    assert all(live(config, home, "Lead", ids_of(load(plan_file), "Lead"), "IsDeleted").values())
