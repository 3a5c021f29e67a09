"""Tasks set LastActivityDate on the records they are about, as Salesforce does: through the real
simple-salesforce client over TLS, read back through the API."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crmsweep.sandbox.server import RunningSandbox, start_sandbox
from tests.test_sandbox_api import Client, connect, undelete


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    with start_sandbox(tmp_path_factory.mktemp("activity"), records=200) as running:
        yield running


@pytest.fixture(scope="module")
def sf(sandbox: RunningSandbox) -> Client:
    return connect(sandbox.info)


def today() -> str:
    return datetime.now(UTC).date().isoformat()


def record(sf: Client, soql: str) -> dict[str, Any]:
    records = sf.query(soql)["records"]
    assert records, soql
    return dict(records[0])


def last_activity(sf: Client, object_name: str, record_id: str) -> str | None:
    found = record(sf, f"SELECT LastActivityDate FROM {object_name} WHERE Id = '{record_id}'")["LastActivityDate"]
    assert found is None or isinstance(found, str)
    return found


def stale_contact(sf: Client, skip: int = 0) -> dict[str, Any]:
    return record(sf, "SELECT Id, AccountId, LastActivityDate FROM Contact WHERE AccountId != null "
                      f"AND LastActivityDate < LAST_N_DAYS:1095 ORDER BY Id LIMIT 1 OFFSET {skip}")


def test_a_completed_task_logged_today_sets_the_contacts_and_its_accounts_last_activity(sf: Client) -> None:
    contact = stale_contact(sf)
    task_id = sf.Task.create({"WhoId": contact["Id"], "Subject": "Call", "Status": "Completed",
                              "ActivityDate": today()})["id"]
    assert last_activity(sf, "Contact", contact["Id"]) == today()
    assert last_activity(sf, "Account", contact["AccountId"]) == today()
    task = record(sf, f"SELECT AccountId, IsClosed, CompletedDateTime FROM Task WHERE Id = '{task_id}'")
    assert task["AccountId"] == contact["AccountId"] and task["IsClosed"] is True
    assert task["CompletedDateTime"].startswith(today())


def test_open_tasks_do_not_count_and_a_task_counts_while_it_is_closed_and_live(
    sandbox: RunningSandbox, sf: Client
) -> None:
    contact = stale_contact(sf, skip=1)
    before = contact["LastActivityDate"]
    task_id = sf.Task.create({"WhoId": contact["Id"], "Subject": "Follow up", "ActivityDate": today()})["id"]
    assert last_activity(sf, "Contact", contact["Id"]) == before  # open: not an activity yet
    sf.Task.update(task_id, {"Status": "Completed"})
    assert last_activity(sf, "Contact", contact["Id"]) == today()
    sf.Task.update(task_id, {"Status": "In Progress"})  # reopened: recomputed from what is left
    assert last_activity(sf, "Contact", contact["Id"]) == before
    assert record(sf, f"SELECT CompletedDateTime FROM Task WHERE Id = '{task_id}'")["CompletedDateTime"] is None
    sf.Task.update(task_id, {"Status": "Completed"})
    sf.Task.delete(task_id)
    assert last_activity(sf, "Contact", contact["Id"]) == before
    assert undelete(sf, sandbox.info, [task_id]).status_code == 200
    assert last_activity(sf, "Contact", contact["Id"]) == today()


def test_moving_a_closed_task_moves_its_activity(sf: Client) -> None:
    first, second = stale_contact(sf, skip=2), stale_contact(sf, skip=3)
    task_id = sf.Task.create({"WhoId": first["Id"], "Subject": "Call", "Status": "Completed",
                              "ActivityDate": today()})["id"]
    sf.Task.update(task_id, {"WhoId": second["Id"]})
    assert last_activity(sf, "Contact", first["Id"]) == first["LastActivityDate"]
    assert last_activity(sf, "Contact", second["Id"]) == today()


def test_a_task_on_an_opportunity_counts_for_it_and_its_account(sf: Client) -> None:
    opportunity = record(sf, "SELECT Id, AccountId FROM Opportunity WHERE AccountId != null ORDER BY Id LIMIT 1")
    task_id = sf.Task.create({"WhatId": opportunity["Id"], "Subject": "Demo", "Status": "Completed",
                              "ActivityDate": today()})["id"]
    assert last_activity(sf, "Opportunity", opportunity["Id"]) == today()
    assert last_activity(sf, "Account", opportunity["AccountId"]) == today()
    assert record(sf, f"SELECT AccountId FROM Task WHERE Id = '{task_id}'")["AccountId"] == opportunity["AccountId"]


def test_a_closed_task_without_a_due_date_counts_the_day_it_was_closed_and_leads_count_too(sf: Client) -> None:
    lead = record(sf, "SELECT Id FROM Lead WHERE LastActivityDate = null ORDER BY Id LIMIT 1")
    task_id = sf.Task.create({"WhoId": lead["Id"], "Subject": "Email", "Status": "Completed"})["id"]
    assert last_activity(sf, "Lead", lead["Id"]) == today()
    assert record(sf, f"SELECT AccountId FROM Task WHERE Id = '{task_id}'")["AccountId"] is None


def test_deleting_a_contact_recomputes_its_account_and_undelete_restores_it(
    sandbox: RunningSandbox, sf: Client
) -> None:
    contact = stale_contact(sf, skip=4)
    account_before = last_activity(sf, "Account", contact["AccountId"])
    sf.Task.create({"WhoId": contact["Id"], "Subject": "Call", "Status": "Completed", "ActivityDate": today()})
    assert last_activity(sf, "Account", contact["AccountId"]) == today()
    sf.Contact.delete(contact["Id"])  # cascades to its tasks
    assert last_activity(sf, "Account", contact["AccountId"]) == account_before
    assert undelete(sf, sandbox.info, [contact["Id"]]).status_code == 200
    assert last_activity(sf, "Account", contact["AccountId"]) == today()
    assert last_activity(sf, "Contact", contact["Id"]) == today()


def test_the_seeded_org_is_consistent_with_its_tasks(tmp_path: Path) -> None:
    with start_sandbox(tmp_path, records=300) as fresh:
        sf = connect(fresh.info)
        dates: dict[str, str | None] = {}
        for name in ("Account", "Contact", "Lead", "Opportunity"):
            for row in sf.query_all(f"SELECT Id, LastActivityDate FROM {name}")["records"]:
                dates[row["Id"]] = row["LastActivityDate"]
        closed = sf.query_all("SELECT WhoId, WhatId, AccountId, ActivityDate FROM Task WHERE IsClosed = true")
        assert closed["totalSize"] > 50
        for task in closed["records"]:
            for linked in (task["WhoId"], task["WhatId"], task["AccountId"]):
                if linked:
                    assert (dates[linked] or "") >= task["ActivityDate"], (linked, task)


def test_an_older_state_folder_gets_the_derived_fields(tmp_path: Path) -> None:
    with start_sandbox(tmp_path, records=60):
        pass
    db = sqlite3.connect(tmp_path / "org.sqlite3")
    db.execute('DROP INDEX "ix_Task_AccountId"')
    db.execute('ALTER TABLE "Task" DROP COLUMN "AccountId"')
    db.execute('ALTER TABLE "Task" DROP COLUMN "CompletedDateTime"')
    db.execute('ALTER TABLE "Contact" DROP COLUMN "_activity_history"')
    db.commit()
    db.close()
    with start_sandbox(tmp_path, records=60) as again:
        sf = connect(again.info)
        linked = sf.query_all("SELECT Id FROM Task WHERE AccountId != null AND IsClosed = true")["totalSize"]
        assert linked > 0
        assert sf.query("SELECT COUNT() FROM Task WHERE IsClosed = true AND CompletedDateTime = null")["totalSize"] == 0
