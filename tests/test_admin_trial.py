"""What a new admin's first session on the built-in sandboxes showed: the plan and the preview must tell what
the CRM will do, read back through its API after the apply."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crmsweep.cli import app

runner = CliRunner()


def _cli(where: list[str], *args: str) -> Any:
    result = runner.invoke(app, [*args, *where], catch_exceptions=False)
    assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def _live(where: list[str], *objects: str) -> dict[str, int]:
    """Live rows of `objects` as the CRM's API reads them now (a backup of those objects alone)."""
    args = [arg for obj in objects for arg in ("--object", obj)]
    answer = _cli(where, "backup", "-c", "sandbox-salesforce", *args, "--json")
    return {obj: int(answer["live_rows"][obj]) for obj in objects}


def test_deleting_people_says_what_the_crm_deletes_with_them(tmp_path: Path) -> None:
    """Deleting a Contact deletes its activities and its opportunity contact roles with it, as deleting an
    Account deletes its tasks: the empty_accounts pass says so in a note ("also deletes N Task record(s)"),
    the people passes said nothing, so a preview of 100 deletions hid the tasks and roles that went too."""
    config = tmp_path / "crmsweep.toml"
    config.write_text("[sandbox]\nrecords = 150\nseed = 3\n", encoding="utf-8")
    where = ["--home", str(tmp_path / "home"), "--config", str(config)]
    plan = tmp_path / "plan.json"
    scanned = _cli(where, "scan", "-c", "sandbox-salesforce", "-o", str(plan), "--pass", "stale_contacts", "--json")
    assert scanned["by_pass"]["stale_contacts"]["Contact"]["delete"] > 0
    before = _live(where, "Task", "OpportunityContactRole")
    applied = _cli(where, "apply", str(plan), "--yes", "--json")
    assert applied["failed"] == 0 and applied["skipped"] == 0
    after = _live(where, "Task", "OpportunityContactRole")
    gone = {obj: before[obj] - after[obj] for obj in before}
    assert gone["Task"] > 0 and gone["OpportunityContactRole"] > 0  # the CRM's cascade, read back

    notes = [n for n in _cli(where, "preview", str(plan), "--json")["notes"] if n.startswith("stale_contacts:")]
    assert any(f"{gone['Task']} Task" in n for n in notes), notes
    assert any(f"{gone['OpportunityContactRole']} OpportunityContactRole" in n for n in notes), notes


def test_two_plans_applied_at_once_never_write_one_record_twice(tmp_path: Path) -> None:
    """Two plans scanned from one snapshot propose the same changes; applied at once from one home (two
    terminals, or a cron job beside the admin), each re-read the records before the other wrote and both wrote
    every one of them, each run reporting no drift: the second write lands on a record changed since its
    scan, which apply promises to skip as drift, never overwrite. The lock was per plan; an org's lock now
    refuses the second."""
    import os
    import subprocess
    import sys

    from crmsweep.sandbox.server import start_sandbox

    with start_sandbox(tmp_path / "state", records=150, seed=3) as running:
        info = running.info
        config = tmp_path / "crmsweep.toml"
        config.write_text(f'[connections.org]\nprovider = "salesforce"\nurl = "{info.url}"\n'
                          f'token_env = "ADMIN_TRIAL_TOKEN"\nca_file = "{info.ca_file}"\n', encoding="utf-8")
        env = {**os.environ, "ADMIN_TRIAL_TOKEN": info.token, "CRMSWEEP_HOME": str(tmp_path / "home"),
               "CRMSWEEP_CONFIG": str(config)}
        where = ["--home", str(tmp_path / "home"), "--config", str(config)]
        runner_env = {"ADMIN_TRIAL_TOKEN": info.token}
        first, second = tmp_path / "a.json", tmp_path / "b.json"
        result = runner.invoke(app, ["scan", "-c", "org", "-o", str(first), "--pass", "stale_open_deals", "--json",
                                     *where], env=runner_env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        snapshot_id = json.loads(result.stdout)["source"]["id"]
        result = runner.invoke(app, ["scan", "-c", "org", "-o", str(second), "--snapshot", snapshot_id, "--pass",
                                     "stale_open_deals", "--json", *where], env=runner_env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        changes = json.loads(result.stdout)["changes"]
        assert changes > 0

        # A second per call from here on: the two applies, started together, each read the records before
        # either writes.
        running._server.core.latency_ms = 1000
        both = [subprocess.Popen([sys.executable, "-m", "crmsweep", "apply", str(plan), "--yes", "--json"],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for plan in (first, second)]
        outputs = [p.communicate(timeout=300) for p in both]
        codes = [p.returncode for p in both]

    # One writes; the other is refused (exit 3) by the org's lock, and writes nothing.
    assert sorted(codes) == [0, 3], (codes, [err for _out, err in outputs])
    refused = outputs[codes.index(3)][1]
    assert "is writing to salesforce org" in refused and "wait for it to finish" in refused, refused
    answer = json.loads(outputs[codes.index(0)][0])
    assert answer["applied"] == changes and answer["failed"] == 0


def test_a_reassignment_its_rollback_cannot_undo_is_told_before_it_is_applied(tmp_path: Path) -> None:
    """orphaned_tasks hands the open tasks of users who were inactive before the scan to reassign_to; the
    CRM refuses to give a task back to an inactive owner (INACTIVE_OWNER_OR_USER), so the rollback that apply
    offers as its undo fails on every one of them, and only reactivating departed users would let it finish.
    The preview said nothing of it: its notes should, before the admin writes what cannot be put back."""
    from crmsweep.backup.snapshot import open_snapshot
    from crmsweep.paths import Home

    config = tmp_path / "crmsweep.toml"
    config.write_text("[sandbox]\nrecords = 150\nseed = 3\n", encoding="utf-8")
    home = tmp_path / "home"
    where = ["--home", str(home), "--config", str(config)]
    snapshot = _cli(where, "backup", "-c", "sandbox-salesforce", "--json")["snapshot"]
    users = list(open_snapshot(Home(home), snapshot).records("User"))
    inactive = {str(u["Id"]) for u in users if not u["IsActive"]}
    assert inactive
    target = next(str(u["Id"]) for u in users if u["IsActive"] and u["LastLoginDate"] is not None)
    config.write_text(f'[sandbox]\nrecords = 150\nseed = 3\n\n[passes.orphaned_tasks]\nreassign_to = "{target}"\n',
                      encoding="utf-8")
    plan = tmp_path / "plan.json"
    _cli(where, "scan", "-c", "sandbox-salesforce", "-o", str(plan), "--snapshot", snapshot,
         "--pass", "orphaned_tasks", "--json")
    changes = json.loads(plan.read_text(encoding="utf-8"))["changes"]
    from_inactive = [c for c in changes if c["before"].get("OwnerId") in inactive]
    assert from_inactive

    applied = _cli(where, "apply", str(plan), "--yes", "--json")
    assert applied["undo"]  # offered as the way back
    undo = runner.invoke(app, ["rollback", applied["run"], "--yes", "--json", *where], catch_exceptions=False)
    assert undo.exit_code == 1 and json.loads(undo.stdout)["failed"] == len(from_inactive)  # the CRM's refusal

    notes = [n for n in _cli(where, "preview", str(plan), "--json")["notes"] if n.startswith("orphaned_tasks:")]
    assert any("inactive" in n and "rollback" in n for n in notes), notes


BUILTIN_API_LIMIT = 15000  # the built-in sandboxes' daily API allowance


def _leave_calls(home: Path, left: int) -> None:
    """Spend the built-in org's daily API allowance but `left` calls (kept in its state, across servers): an
    apply that runs out stops, resumable, as on a real org."""
    from crmsweep.sandbox.store import Store

    store = Store(home / "sandbox" / "salesforce")
    try:
        store.set_api_used(BUILTIN_API_LIMIT - left)
    finally:
        store.close()


def test_the_resume_runs_show_prints_for_a_built_in_sandbox_keeps_the_config_the_run_was_started_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A built-in sandbox needs no config file to be reached, so `runs show` without --config printed the resume
    of a run on one without the --config the run was started with: pasted, it resumed without that config's
    protections and deleted a lead the admin had protected since the scan."""
    from crmsweep import api

    monkeypatch.delenv("CRMSWEEP_CONFIG", raising=False)
    monkeypatch.delenv("CRMSWEEP_HOME", raising=False)
    for module in ("crmsweep.commands.common", "crmsweep.commands.apply"):  # as if typed at a terminal
        monkeypatch.setattr(f"{module}.interactive", lambda: True, raising=False)
    config = tmp_path / "crmsweep.toml"
    config.write_text("[sandbox]\nrecords = 150\nseed = 3\n", encoding="utf-8")
    home = tmp_path / "home"
    where = ["--home", str(home), "--config", str(config)]
    plan = tmp_path / "plan.json"
    _cli(where, "scan", "-c", "sandbox-salesforce", "-o", str(plan), "--pass", "stale_contacts", "--json")
    kept = json.loads(plan.read_text(encoding="utf-8"))["changes"][-1]  # written last: the stop comes before it
    config.write_text(f'[sandbox]\nrecords = 150\nseed = 3\n\n[protect]\nids = ["{kept["record_id"]}"]\n',
                      encoding="utf-8")
    _leave_calls(home, 7)  # the apply's checks and reads, not its writes
    stopped = runner.invoke(app, ["apply", str(plan), "--yes", "--allow-over-budget", "--json", *where],
                            catch_exceptions=False)
    assert stopped.exit_code == 1, stopped.stderr
    answer = json.loads(stopped.stdout)
    assert answer["stopped"] and answer["skipped"] == 0  # the protected lead not reached yet
    _leave_calls(home, BUILTIN_API_LIMIT)  # the allowance recovers

    shown = runner.invoke(app, ["runs", "show", answer["run"], "--json", "--home", str(home)], catch_exceptions=False)
    assert shown.exit_code == 0, shown.stderr
    words = shlex.split(json.loads(shown.stdout)["resume"])
    assert words[0] == "crmsweep"
    pasted = runner.invoke(app, words[1:], input="y\n", catch_exceptions=False)
    assert pasted.exit_code == 0, pasted.stderr

    run = _cli(where, "runs", "show", answer["run"], "--json")
    assert run["status"] == "done"
    assert [(i["id"], i["reason"]) for i in run["skipped_items"]] == [(kept["record_id"], "protected")]
    with api.connect(api.Workspace.load(config, home), "sandbox-salesforce") as connector:
        live = connector.read(kept["object"], [kept["record_id"]], ["Id", "IsDeleted"])
    assert live[kept["record_id"]]["IsDeleted"] is False  # still there, as the admin protected it


def test_a_plan_or_snapshot_of_another_org_is_refused_with_the_connection_it_was_made_with_and_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refusal of a plan (or a snapshot) made for another org than the connection reaches named both orgs and
    stopped there: which connection it was made with, and the two ways on (that connection, or a scan of this
    org), were left for the admin to work out."""
    from crmsweep import api
    from crmsweep.sandbox.server import start_sandbox

    with start_sandbox(tmp_path / "other-state", records=40, seed=5) as other:
        info = other.info
        config = tmp_path / "crmsweep.toml"
        config.write_text(f'[sandbox]\nrecords = 150\nseed = 3\n\n[connections.other]\nprovider = "salesforce"\n'
                          f'url = "{info.url}"\ntoken_env = "ADMIN_TRIAL_OTHER"\nca_file = "{info.ca_file}"\n',
                          encoding="utf-8")
        env = {"ADMIN_TRIAL_OTHER": info.token}
        where = ["--home", str(tmp_path / "home"), "--config", str(config)]
        plan = tmp_path / "plan.json"
        scanned = runner.invoke(app, ["scan", "-c", "sandbox-salesforce", "-o", str(plan), "--pass",
                                      "stale_contacts", "--json", *where], env=env, catch_exceptions=False)
        assert scanned.exit_code == 0, scanned.stderr
        made = json.loads(scanned.stdout)
        monkeypatch.setenv("ADMIN_TRIAL_OTHER", info.token)
        with api.connect(api.Workspace.load(config, tmp_path / "home"), "other") as connector:
            theirs = connector.org_id()
        assert theirs != made["org_id"]

        applied = runner.invoke(app, ["apply", str(plan), "-c", "other", "--yes", *where], env=env,
                                catch_exceptions=False)
        assert applied.exit_code == 2
        assert applied.stderr.strip() == (
            f"crmsweep: plan is for org {made['org_id']} but connection 'other' is org {theirs}: it was made with "
            f"connection 'sandbox-salesforce'; apply it with that one (without -c), or scan again with 'other' for "
            f"a plan of org {theirs}")

        rescanned = runner.invoke(app, ["scan", "-c", "other", "--snapshot", made["snapshot"], "-o",
                                        str(tmp_path / "never.json"), *where], env=env, catch_exceptions=False)
        assert rescanned.exit_code == 2
        assert rescanned.stderr.strip() == (
            f"crmsweep: snapshot {made['snapshot']} is of salesforce org {made['org_id']}, but connection 'other' "
            f"is salesforce org {theirs}: it was taken with connection 'sandbox-salesforce'; scan it with that one, "
            f"or scan with 'other' without --snapshot, which backs up org {theirs} first")


def test_a_number_kept_as_text_in_the_snapshot_shows_as_a_number_beside_the_number_written(tmp_path: Path) -> None:
    """stale_open_deals previewed `Probability: "60" → 0`: the snapshot keeps a decimal field's value as the
    CRM's text (exact digits), and the pass writes a number, so one field read as text going to a number. Both
    sides now read as numbers, in the scan's preview and in its rollback's, and the plan still writes 0."""
    import re

    config = tmp_path / "crmsweep.toml"
    config.write_text("[sandbox]\nrecords = 150\nseed = 3\n", encoding="utf-8")
    where = ["--home", str(tmp_path / "home"), "--config", str(config)]
    plan = tmp_path / "plan.json"
    _cli(where, "scan", "-c", "sandbox-salesforce", "-o", str(plan), "--pass", "stale_open_deals", "--json")
    changes = json.loads(plan.read_text(encoding="utf-8"))["changes"]
    assert changes and all(isinstance(c["before"]["Probability"], str) for c in changes)  # the snapshot's text
    assert {c["after"]["Probability"] for c in changes} == {0}  # what is written: unchanged, a number

    def probabilities(plan_file: Path) -> list[str]:
        shown = runner.invoke(app, ["preview", str(plan_file), *where], catch_exceptions=False)
        assert shown.exit_code == 0, shown.stderr
        found: list[str] = re.findall(r"Probability: ([^,]+?)(?:,|  )", shown.stdout)
        # `--json` reads them as the text does: two numbers (it said `"before": "60"` beside `"after": 0`).
        listed = _cli(where, "preview", str(plan_file), "--json")["listed"]
        writes = [item["writes"]["Probability"] for item in listed]
        assert all(type(w["before"]) is int and type(w["after"]) is int for w in writes), writes
        assert [f"{w['before']} → {w['after']}" for w in writes] == found
        return found

    shown = probabilities(plan)
    assert len(shown) == len(changes)
    assert shown == [f"{c['before']['Probability']} → 0" for c in changes]

    applied = _cli(where, "apply", str(plan), "--yes", "--json")
    undo = tmp_path / "undo.json"
    result = runner.invoke(app, ["rollback", applied["run"], "-o", str(undo), *where], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert sorted(probabilities(undo)) == sorted(f"0 → {c['before']['Probability']}" for c in changes)
