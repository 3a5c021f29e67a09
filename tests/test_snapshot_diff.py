"""`crmsweep snapshots diff A B` (issue 8 item 3): per object, the records added, removed and changed and
the fields added to or removed from describe, alike for full and incremental snapshots."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce
from typer.testing import CliRunner

from crmsweep import api
from crmsweep.cli import app
from crmsweep.errors import BadInput
from crmsweep.sandbox.server import RunningSandbox
from tests.conftest import TOKEN_ENV

OBJECTS = ("Account", "Contact")


# Any: simple-salesforce types `sf.<Object>` as a union with its bulk handlers, so `sf.Contact.x()` fails mypy.
def client(sandbox: RunningSandbox) -> Any:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.info.ca_file)
    return Salesforce(instance_url=sandbox.info.url, session_id=sandbox.info.token, session=session)


def test_diff_counts_ids_and_fields_alike_for_full_and_incremental(sandbox: RunningSandbox, ws: api.Workspace) -> None:
    sf = client(sandbox)
    first = api.backup(ws, "flaky", OBJECTS)
    rows = sf.query("SELECT Id FROM Contact WHERE Email = null ORDER BY Id LIMIT 5")["records"]
    updated, deleted = [r["Id"] for r in rows[:3]], [r["Id"] for r in rows[3:]]
    for cid in updated:
        sf.Contact.update(cid, {"Title": "Promoted"})
    for cid in deleted:
        sf.Contact.delete(cid)
    made = sf.Contact.create({"LastName": "Added"})["id"]
    sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Account.Tier__c", "Metadata": {"type": "Text", "label": "Tier", "length": 20}})

    incremental = api.backup(ws, "flaky", OBJECTS, incremental=True)
    full = api.backup(ws, "flaky", OBJECTS)
    for newer in (incremental, full):
        found = api.diff(ws, first.snapshot_id, newer.snapshot_id, detail=True)
        contact = found.objects["Contact"]
        assert (contact.added, contact.removed, contact.changed) == (1, 2, 3)
        assert contact.added_ids == [made] and sorted(contact.removed_ids) == sorted(deleted)
        assert set(contact.changed_fields) == set(updated)
        # The audit stamps every write moves are not listed as changed fields unless asked for.
        assert all("Title" in fields and "SystemModstamp" not in fields for fields in contact.changed_fields.values())
        stamped = api.diff(ws, first.snapshot_id, newer.snapshot_id, detail=True, all_fields=True).objects["Contact"]
        assert stamped.changed_fields.keys() == contact.changed_fields.keys()
        assert all("Title" in fields and "SystemModstamp" in fields for fields in stamped.changed_fields.values())
        account = found.objects["Account"]
        assert account.fields_added == ["Tier__c"] and account.fields_removed == []
        assert (account.added, account.removed) == (0, 0)
    same = api.diff(ws, incremental.snapshot_id, full.snapshot_id)
    assert all((d.added, d.removed, d.changed) == (0, 0, 0) for d in same.objects.values())
    only = api.diff(ws, first.snapshot_id, full.snapshot_id, objects=["Contact"])
    assert list(only.objects) == ["Contact"]
    with pytest.raises(BadInput, match="neither snapshot holds"):
        api.diff(ws, first.snapshot_id, full.snapshot_id, objects=["Lead"])


def test_an_object_in_one_snapshot_only_and_the_cli(sandbox: RunningSandbox, ws: api.Workspace) -> None:
    first = api.backup(ws, "flaky", ["Contact"])
    second = api.backup(ws, "flaky", ["Contact", "Lead"])
    found = api.diff(ws, first.snapshot_id, second.snapshot_id)
    # The first backup did not take Lead: its rows are not compared, so none counts added.
    lead = found.objects["Lead"]
    assert (lead.status, lead.uncompared, lead.added, lead.removed) == ("only_in_b", second.objects["Lead"].rows, 0, 0)
    assert lead.uncompared > 0

    runner = CliRunner()
    env = {**os.environ, TOKEN_ENV: sandbox.info.token}
    args = ["--config", str(ws.config.path), "--home", str(ws.home.root)]
    result = runner.invoke(app, ["snapshots", "diff", first.snapshot_id, second.snapshot_id, "--json", *args],
                           env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["objects"]["Lead"]["status"] == "only_in_b" and doc["objects"]["Lead"]["added"] == 0
    assert doc["objects"]["Contact"]["changed"] == 0
    table = runner.invoke(app, ["snapshots", "diff", first.snapshot_id, second.snapshot_id, *args], env=env)
    lines = [" ".join(line.split()) for line in table.stdout.splitlines()]
    assert table.exit_code == 0 and "Lead (not in A) - - -" in lines
    assert (f"Lead: not in snapshot A ({first.snapshot_id}): its {lead.uncompared:,} rows in B are not compared, "
            "nor counted added or removed.") in lines
    assert f"Nothing changed between {first.snapshot_id} and {second.snapshot_id} in the objects both hold." in lines
    missing = runner.invoke(app, ["snapshots", "diff", first.snapshot_id, "nope", *args], env=env)
    assert missing.exit_code == 2 and "Traceback" not in missing.stderr and "not found" in missing.stderr
