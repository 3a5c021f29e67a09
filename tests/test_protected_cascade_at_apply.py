"""Apply re-checks what the CRM would delete with an account, under the protections in force at apply time.

The scan holds back an empty account whose deletion would carry records of a `[protect] objects` object, or a
record `[protect] ids` names, to the recycle bin (tests/test_protected_cascade.py). Between the scan and the apply
the org moves on (a closed-won opportunity logged on the account, a task on that opportunity) and so does the
config (the admin protects Opportunity, or names a task): the account must then be kept, as protected, and the
records it would take must still be there; a dry run says the same; the other accounts still go.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from simple_salesforce.api import Salesforce

from crmsweep import api
from crmsweep.backup.snapshot_reader import open_snapshot
from crmsweep.model import Plan
from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.sandbox_workspace import org_workspace
from tests.test_apply_live import other_admin

TOKEN_ENV = "CASCADE_APPLY_TOKEN"
PASS = "empty_accounts"


def yes(plan: Plan) -> bool:
    return True


def configure(sandbox: RunningSandbox, protect: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> api.Workspace:
    return org_workspace(sandbox.info, tmp_path, monkeypatch, provider="salesforce", token_env=TOKEN_ENV,
                         extra=f"[protect]\n{protect}\n")


def create(sf: Salesforce, obj: str, values: dict[str, Any]) -> str:
    return str(getattr(sf, obj).create(values)["id"])


def closed_won(sf: Salesforce, account: str) -> str:
    today = datetime.now(UTC).date().isoformat()
    return create(sf, "Opportunity", {"AccountId": account, "Name": "Renewal", "StageName": "Closed Won",
                                      "CloseDate": today, "Amount": 1200})


def task_on(sf: Salesforce, what: str) -> str:
    return create(sf, "Task", {"WhatId": what, "Subject": "Kick-off call", "Status": "Completed"})


def scan(ws: api.Workspace, tmp_path: Path) -> tuple[Plan, list[str]]:
    plan = api.scan(ws, "org", tmp_path / "plan.json", passes=[PASS], allow_over_cap=True).result.plan
    accounts = [c.record_id for c in plan.changes if c.pass_name == PASS]
    assert len(accounts) >= 3, "the seed plants empty accounts"
    return plan, accounts


def apply_both(ws: api.Workspace, tmp_path: Path) -> dict[str, tuple[str, str]]:
    """The skips of a dry run and of the real apply, which must be the same; the real run's."""
    dry = api.apply(ws, tmp_path / "plan.json", confirm=yes, dry_run=True).report
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert dry is not None and report is not None and report.failed == 0
    skipped = {i["id"]: (i["reason"], i["detail"]) for i in report.skipped_items}
    assert {i["id"]: (i["reason"], i["detail"]) for i in dry.skipped_items} == skipped
    return skipped


def deleted(sf: Salesforce, obj: str, ids: list[str]) -> dict[str, bool]:
    """Whether each record is deleted (in the recycle bin or gone), read back through the API."""
    found = {r["Id"]: r["IsDeleted"] for r in sf.query_all(
        f"SELECT Id, IsDeleted FROM {obj} WHERE Id IN ('" + "','".join(ids) + "')", include_deleted=True)["records"]}
    return {i: bool(found.get(i, True)) for i in ids}


def with_live(sf: Salesforce, obj: str, field: str, accounts: list[str]) -> set[str]:
    rows = sf.query_all(f"SELECT {field} FROM {obj} WHERE {field} IN ('" + "','".join(accounts) + "')")["records"]
    return {str(r[field]) for r in rows}


def on_deals_with_tasks(sf: Salesforce, accounts: list[str]) -> set[str]:
    """The accounts whose opportunities have tasks."""
    deals = {str(r["Id"]): str(r["AccountId"]) for r in sf.query_all(
        "SELECT Id, AccountId FROM Opportunity WHERE AccountId IN ('" + "','".join(accounts) + "')")["records"]}
    return {deals[d] for d in with_live(sf, "Task", "WhatId", sorted(deals))} if deals else set()


def scanned(sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protect: str = ""
            ) -> tuple[list[str], Salesforce]:
    """The accounts a scan under `protect` proposes, and the other admin who then works in the org."""
    _, accounts = scan(configure(sandbox, protect, tmp_path, monkeypatch), tmp_path)
    return accounts, other_admin(sandbox)


@pytest.mark.parametrize("since", ["protected since the scan", "protected at the scan"])
@pytest.mark.parametrize("protected", ["Opportunity", "Task"])
def test_a_record_of_a_protected_object_tied_to_an_empty_account_since_the_scan_keeps_it(
        protected: str, since: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    protect = f'objects = ["{protected}"]'
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        accounts, sf = scanned(sandbox, tmp_path, monkeypatch, "" if since == "protected since the scan" else protect)
        account = accounts[0]
        added = closed_won(sf, account) if protected == "Opportunity" else task_on(sf, account)
        ws = configure(sandbox, protect, tmp_path, monkeypatch)
        link = "WhatId" if protected == "Task" else "AccountId"
        # Accounts the scan proposed that held such records already (not protected then) are kept as well.
        holding = with_live(sf, protected, link, accounts)
        assert account in holding and len(holding) < len(accounts)
        skipped = apply_both(ws, tmp_path)
        many = "tasks" if protected == "Task" else "opportunities"
        why = ("protected",
               f"protected at apply time: its {many} would go with it, and {protected} is a protected object")
        assert {i: s for i, s in skipped.items() if i in accounts} == dict.fromkeys(sorted(holding), why)
        assert deleted(sf, "Account", accounts) == {a: a not in holding for a in accounts}
        assert deleted(sf, protected, [added]) == {added: False}


def test_a_task_protect_ids_names_after_the_scan_keeps_its_account(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        ws = configure(sandbox, "", tmp_path, monkeypatch)
        plan, accounts = scan(ws, tmp_path)
        tasks = open_snapshot(ws.home, plan.header.source["id"]).frame("Task")
        task, account = next((str(t), str(a)) for t, a in zip(tasks["Id"], tasks["WhatId"], strict=True)
                             if str(a) in accounts)
        # The 15-character form of its id, as an admin may copy it from the URL.
        ws = configure(sandbox, f'ids = ["{task[:15]}"]', tmp_path, monkeypatch)
        skipped = apply_both(ws, tmp_path)
        sf = other_admin(sandbox)
        why = f"protected at apply time: its tasks would go with it, and [protect] ids names {task}"
        assert {i: s for i, s in skipped.items() if i in accounts} == {account: ("protected", why)}
        assert deleted(sf, "Account", accounts) == {a: a != account for a in accounts}
        assert deleted(sf, "Task", [task]) == {task: False}


@pytest.mark.parametrize("protect", ["ids", "objects"])
def test_a_task_on_an_opportunity_of_an_empty_account_protected_after_the_scan_keeps_the_account(
        protect: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        accounts, sf = scanned(sandbox, tmp_path, monkeypatch)
        # An account without tasks of its own: only the opportunity's task can hold it back.
        with_tasks = with_live(sf, "Task", "WhatId", accounts)
        account = next(a for a in accounts if a not in with_tasks)
        deal = closed_won(sf, account)
        task = task_on(sf, deal)
        ws = configure(sandbox, f'ids = ["{task}"]' if protect == "ids" else 'objects = ["Task"]', tmp_path,
                       monkeypatch)
        skipped = apply_both(ws, tmp_path)
        why = f"[protect] ids names {task}" if protect == "ids" else "Task is a protected object"
        assert skipped[account] == ("protected", "protected at apply time: its opportunities would go with it, "
                                                 f"and their tasks with them: {why}")
        kept = {account} | (with_tasks | on_deals_with_tasks(sf, accounts) if protect == "objects" else set())
        assert {i for i in skipped if i in accounts} == kept
        assert deleted(sf, "Account", accounts) == {a: a not in kept for a in accounts}
        assert deleted(sf, "Opportunity", [deal]) == {deal: False}
        assert deleted(sf, "Task", [task]) == {task: False}
