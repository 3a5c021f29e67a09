"""`[protect] objects` names records no pass ever proposes to change. empty_accounts still
proposes Salesforce accounts whose deletion takes their Opportunity records with them (the CRM cascades),
so `objects = ["Opportunity"]` holds back every stale_open_deals change and yet a closed-won opportunity
goes to the recycle bin with its account (the plan only notes the cascade). The same holds for Task, and for
a record `[protect] ids` names."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.backup.snapshot_reader import open_snapshot
from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.test_apply_live import other_admin
from tests.test_protected_cascade_at_apply import closed_won, configure, task_on


def scan_with(sandbox: RunningSandbox, protect: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
              snapshot: str | None = None) -> api.ScanOutcome:
    ws = configure(sandbox, protect, tmp_path, monkeypatch)
    return api.scan(ws, "org", tmp_path / "plan.json", snapshot_id=snapshot, allow_over_cap=True)


def assert_none_goes_with(protected: str, link: str, pass_name: str, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """With `protected` in [protect] objects, no record `pass_name` removes takes a live `protected` record (tied
    to it by `link`) with it, and the hold is counted."""
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        scanned = scan_with(sandbox, f'objects = ["{protected}"]', tmp_path, monkeypatch)
        ws = api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home")
    plan = scanned.result.plan
    removed = {c.record_id for c in plan.changes if c.pass_name == pass_name}
    assert removed, f"the seed plants {pass_name} candidates"
    reader = open_snapshot(ws.home, plan.header.source["id"])
    frame = reader.frame(protected)
    frame = frame[~frame["IsDeleted"].fillna(False).astype(bool)]
    going = sorted(str(i) for i, a in zip(frame["Id"], frame[link], strict=True) if str(a) in removed)
    assert going == [], f"{len(going)} {protected} records (protected) would be deleted along: {going}"
    held = plan.header.held_back[pass_name]
    assert any(reason.endswith(f"{protected} is a protected object") for reason in held), held


@pytest.mark.parametrize("protected", ["Opportunity", "Task"])
def test_no_account_is_removed_with_records_of_a_protected_object(protected: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    assert_none_goes_with(protected, "WhatId" if protected == "Task" else "AccountId", "empty_accounts", tmp_path,
                          monkeypatch)


def test_no_account_is_removed_with_a_task_protect_ids_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        first = scan_with(sandbox, "", tmp_path, monkeypatch)
        plan = first.result.plan
        reader = open_snapshot(api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home").home,
                               plan.header.source["id"])
        accounts = {c.record_id for c in plan.changes if c.pass_name == "empty_accounts"}
        tasks = reader.frame("Task")
        task, account = next((str(t), str(a)) for t, a in zip(tasks["Id"], tasks["WhatId"], strict=True)
                             if str(a) in accounts)
        # The 15-character form of its id, as an admin may copy it from the URL.
        again = scan_with(sandbox, f'ids = ["{task[:15]}"]', tmp_path, monkeypatch, snapshot=plan.header.source["id"])
    kept = again.result.plan
    assert {c.record_id for c in kept.changes if c.pass_name == "empty_accounts"} == accounts - {account}
    held = kept.header.held_back["empty_accounts"]
    assert held[f"its tasks would go with it, and [protect] ids names {task}"] == 1, held


def test_each_account_is_held_for_the_record_protect_ids_names_among_its_own_down_to_its_deals_tasks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reason names the account's own protected record (two accounts, two tasks: not the first task for
    both), and a task on one of its opportunities holds it too: the CRM deletes that task with the
    opportunity it deletes with the account. Apply-time wording is the same (test_protected_cascade_at_apply)."""
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        first = scan_with(sandbox, "", tmp_path, monkeypatch)
        accounts = sorted(c.record_id for c in first.result.plan.changes if c.pass_name == "empty_accounts")
        sf = other_admin(sandbox)
        direct, under_deal = accounts[:2]
        own, deals = task_on(sf, direct), task_on(sf, closed_won(sf, under_deal))
        again = scan_with(sandbox, f'ids = ["{own}", "{deals}"]', tmp_path, monkeypatch)
    kept = again.result.plan
    proposed = {c.record_id for c in kept.changes if c.pass_name == "empty_accounts"}
    assert proposed == set(accounts) - {direct, under_deal}
    held = kept.header.held_back["empty_accounts"]
    assert held[f"its tasks would go with it, and [protect] ids names {own}"] == 1, held
    assert held["its opportunities would go with it, and their tasks with them: "
                f"[protect] ids names {deals}"] == 1, held



@pytest.mark.parametrize("protected", ["Task", "OpportunityContactRole"])
def test_no_person_is_removed_with_records_of_a_protected_object(protected: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Deleting a contact deletes its activities and its opportunity contact roles (the CRM's cascade)."""
    assert_none_goes_with(protected, "WhoId" if protected == "Task" else "ContactId", "stale_contacts", tmp_path,
                          monkeypatch)
