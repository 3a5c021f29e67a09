"""Reversal without undelete (issue 6 item 5), on the Salesforce sandbox over TLS.

Records whose recycle-bin copy is gone are re-created: only createable fields (per the snapshot's
describe), parents before children, lookups pointing at the new parents through the run's id map;
a create that landed though its answer was lost is settled on resume without a duplicate; the
preview says which ids are kept and which are new. Outcomes are read back through simple-salesforce.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce.api import Salesforce

from crmsweep import api
from crmsweep.backup.runlog import read_run
from crmsweep.backup.snapshot import open_snapshot
from crmsweep.cleanup.drift import same_value
from crmsweep.cleanup.labels import record_label
from crmsweep.cleanup.preview import render_preview
from crmsweep.model import Change, Op, Plan, PlanHeader, placeholder
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.server import RunningSandbox
from tests.plans import write_signed

pytestmark = pytest.mark.usefixtures("test_pass_registered")

CONNECTION = "flaky"
AUDIT = {"LastModifiedDate", "LastModifiedById", "SystemModstamp", "CreatedDate", "CreatedById"}


def client(sandbox: RunningSandbox) -> Salesforce:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.info.ca_file)
    return Salesforce(instance_url=sandbox.info.url, session_id=sandbox.info.token, session=session)


def empty_recycle_bin(sandbox: RunningSandbox, ids: list[str]) -> list[bool]:
    """SOAP emptyRecycleBin, as an admin's tool calls it: each id's success."""
    body = (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader>'
        f"<urn:sessionId>{sandbox.info.token}</urn:sessionId></urn:SessionHeader></soapenv:Header>"
        "<soapenv:Body><urn:emptyRecycleBin>"
        + "".join(f"<urn:ids>{i}</urn:ids>" for i in ids)
        + "</urn:emptyRecycleBin></soapenv:Body></soapenv:Envelope>"
    )
    session = requests.Session()
    session.trust_env = False
    answer = session.post(
        f"{sandbox.info.url}/services/Soap/u/59.0", data=body.encode(), verify=str(sandbox.info.ca_file),
        headers={"Content-Type": "text/xml; charset=UTF-8", "SOAPAction": "emptyRecycleBin"}, timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert "<emptyRecycleBinResponse>" in answer.text
    return [part.startswith("true") for part in answer.text.split("<success>")[1:]]


def account_with_contacts(sf: Salesforce, at_least: int = 2) -> tuple[str, list[str]]:
    rows = sf.query_all("SELECT Id, AccountId FROM Contact WHERE AccountId != null")["records"]
    by_account: dict[str, list[str]] = {}
    for row in rows:
        by_account.setdefault(row["AccountId"], []).append(row["Id"])
    account = next(a for a, ids in sorted(by_account.items()) if len(ids) >= at_least)
    return account, sorted(by_account[account])


def delete_plan(ws: api.Workspace, snapshot_id: str, specs: list[tuple[str, str]]) -> Plan:
    """A plan deleting (object, id) in order, with before-images and fingerprints from the snapshot."""
    reader = open_snapshot(ws.home, snapshot_id)
    changes = []
    for obj, record_id in specs:
        before = reader.record_map(obj, [record_id])[record_id]
        changes.append(Change(
            op=Op.DELETE, object=obj, record_id=record_id, before=dict(before), after={}, reason="test",
            pass_name="test_pass", fingerprint=before["SystemModstamp"],
            label=record_label(SALESFORCE_VOCABULARY, obj, before),
        ))
    header = PlanHeader(
        plan_id="plan-20300101T000000Z-00aa", created="2030-01-01T00:00:00.000Z", tool_version="0.1.0",
        provider="salesforce", org_id=reader.manifest.org_id, connection=CONNECTION,
        source={"kind": "snapshot", "id": snapshot_id}, passes=("test_pass",),
    )
    return Plan.build(header, changes)


def yes(plan: Plan) -> bool:
    return True


def createable(ws: api.Workspace, snapshot_id: str, obj: str) -> list[str]:
    fields = open_snapshot(ws.home, snapshot_id).fields(obj)
    return [f.name for f in fields if f.createable and f.name not in AUDIT]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str) and len(a) >= 19 and a[10:11] == "T":
        return a[:19] == b[:19]
    # A number the snapshot keeps as its exact text (FieldKind.DECIMAL) against the JSON number read back.
    return bool(a == b) or same_value(a, b)


def deleted_account_and_contacts(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> tuple[str, str, list[str], str]:
    """Back up, then delete one Account and its Contacts through a plan: (snapshot, account, contacts, run)."""
    sf = client(sandbox)
    account, contacts = account_with_contacts(sf)
    snapshot = api.backup(ws, CONNECTION, ["User", "Account", "Contact"]).snapshot_id
    # Children first: deleting the Account first would cascade its Contacts out of the run's log.
    plan = delete_plan(ws, snapshot, [*(("Contact", c) for c in contacts), ("Account", account)])
    applied = api.apply(ws, write_signed(tmp_path / "delete.json", plan, ws.home), confirm=yes)
    assert applied.report is not None and applied.report.applied == len(contacts) + 1
    return snapshot, account, contacts, applied.report.run_id


def test_records_purged_from_the_recycle_bin_are_re_created_parents_first_and_relinked(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    sf = client(sandbox)
    snapshot, account, contacts, run_id = deleted_account_and_contacts(sandbox, ws, tmp_path)
    kept, purged = contacts[0], contacts[1:]
    live_account = sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"]
    assert empty_recycle_bin(sandbox, [live_account, account, *purged]) == [False] + [True] * (1 + len(purged))
    assert not sf.query_all(f"SELECT Id FROM Account WHERE Id = '{account}'", include_deleted=True)["records"]
    reader = open_snapshot(ws.home, snapshot)
    old_account = reader.record_map("Account", [account])[account]
    old_contacts = reader.record_map("Contact", contacts)

    seen: list[Plan] = []

    def shown(plan: Plan) -> bool:
        seen.append(plan)
        return True

    outcome = api.rollback(ws, run_id, confirm=shown)
    assert outcome.report is not None
    assert (outcome.report.applied, outcome.report.failed, outcome.report.skipped) == (len(contacts) + 1, 0, 0)

    # The plan: the Contact still in the bin is undeleted first, then the Account, then its Contacts.
    plan = seen[0]
    assert [(c.op, c.object, c.record_id) for c in plan.changes] == [
        (Op.UNDELETE, "Contact", kept),
        (Op.CREATE, "Account", account),
        *((Op.CREATE, "Contact", c) for c in reversed(purged)),
    ]
    for change in plan.changes[2:]:
        assert change.after["AccountId"] == placeholder("Account", account)
    account_fields = createable(ws, snapshot, "Account")
    assert set(plan.changes[1].after) == set(account_fields) & set(old_account)
    # Contact.Name is a formula of FirstName and LastName: the before-image has it, a create may not send it.
    assert not {"Id", "Name", "CreatedDate", "IsDeleted", "SystemModstamp"} & set(plan.changes[2].after)
    text = render_preview(plan)
    assert f"+ Contact {kept}" in text and "undelete (id kept)" in text
    assert text.count("create (new id)") == 1 + len(purged)
    assert f'AccountId: (the new id of Account {account})' in text

    # Read back: a new Account equal on every createable field, the Contacts pointing at it.
    id_map = read_run(ws.home, outcome.report.run_id).id_map
    new_account = id_map["Account"][account]
    assert new_account != account
    live = sf.query(f"SELECT {', '.join(account_fields)} FROM Account WHERE Id = '{new_account}'")["records"][0]
    for name in account_fields:
        assert same(live[name], old_account[name]), name
    contact_fields = createable(ws, snapshot, "Contact")
    for old_id in purged:
        new_id = id_map["Contact"][old_id]
        live = sf.query(f"SELECT {', '.join(contact_fields)} FROM Contact WHERE Id = '{new_id}'")["records"][0]
        assert live["AccountId"] == new_account
        for name in contact_fields:
            if name != "AccountId":
                assert same(live[name], old_contacts[old_id][name]), (old_id, name)
    undeleted = sf.query_all(f"SELECT Id, AccountId, IsDeleted FROM Contact WHERE Id = '{kept}'")["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in undeleted] == [(kept, False)]
    # Nothing else came back as a second copy.
    names = sf.query_all("SELECT Id FROM Account WHERE Name = '" + str(old_account["Name"]).replace("'", "\\'")
                         + "'")["records"]
    assert [r["Id"] for r in names] == [new_account]


def test_a_fault_after_the_request_is_only_for_answers_that_can_be_lost() -> None:
    assert FaultRule.from_dict({"kind": "drop", "after": True}).after
    with pytest.raises(ValueError, match="a timeout fault cannot come after the request"):
        FaultRule.from_dict({"kind": "timeout", "after": True})


def test_a_create_whose_answer_was_lost_is_settled_on_resume_without_a_duplicate(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    sf = client(sandbox)
    _snapshot, account, contacts, run_id = deleted_account_and_contacts(sandbox, ws, tmp_path)
    assert all(empty_recycle_bin(sandbox, [account, *contacts]))
    before = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    # The first create call is carried out, then the connection drops before the answer.
    sandbox.set_faults([FaultRule(kind="drop", method="POST", path="composite/sobjects", times=1,
                                          after=True)])
    stopped = api.rollback(ws, run_id, confirm=yes)
    assert stopped.report is not None and stopped.report.stopped
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == before + 1  # it did land

    resumed = api.rollback(ws, run_id, confirm=yes)
    assert resumed.resumed and resumed.report is not None
    assert (resumed.report.failed, resumed.report.remaining, resumed.report.stopped) == (0, 0, None)
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == before + 1  # and only once
    id_map = read_run(ws.home, resumed.report.run_id).id_map
    new_account = id_map["Account"][account]
    for old_id in contacts:
        live = sf.query(f"SELECT AccountId FROM Contact WHERE Id = '{id_map['Contact'][old_id]}'")["records"]
        assert live[0]["AccountId"] == new_account


def test_a_re_create_from_a_purged_recycle_bin_says_what_it_loses_and_maps_the_new_ids(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    sf = client(sandbox)
    snapshot, account, contacts, run_id = deleted_account_and_contacts(sandbox, ws, tmp_path)
    kept, purged = contacts[0], contacts[1:]
    assert all(empty_recycle_bin(sandbox, [account, *purged]))
    reader = open_snapshot(ws.home, snapshot)
    befores = [reader.record_map("Account", [account])[account], *reader.record_map("Contact", purged).values()]
    # What the org's describe (read through simple-salesforce) says no create may write, that they held.
    fixed = {name: {f["name"] for f in getattr(sf, name).describe()["fields"] if not f["createable"]}
             for name in ("Account", "Contact")}
    held = {k for obj, row in zip(["Account", *["Contact"] * len(purged)], befores, strict=True)
            for k, v in row.items() if k in fixed[obj] and v not in (None, "")} - {"Id", "IsDeleted"}
    assert {"CreatedDate", "LastModifiedDate", "SystemModstamp"} <= held

    seen: list[Plan] = []

    def shown(plan: Plan) -> bool:
        seen.append(plan)
        return True

    outcome = api.rollback(ws, run_id, confirm=shown)
    assert outcome.report is not None and outcome.report.failed == 0
    count = f"{1 + len(purged)} records"
    objects = f"(1 Account, {len(purged)} Contact)"
    note = next(n for n in seen[0].header.notes if "re-created under new ids" in n)
    assert note.startswith(f"{count} are re-created under new ids {objects}: the CRM sets their created")
    named = note.split("afresh (")[1].split(": read-only")[0]
    more = int(named.split(" and ")[1].split(" more")[0]) if " and " in named else 0
    names = named.split(" and ")[0].split(", ")
    assert set(names) <= held and len(names) + more == len(held) and names[0] == "CreatedDate"
    # The recycle bin no longer holds them: no way to keep the originals, said rather than a false hope.
    assert note.endswith("the CRM no longer holds the originals, so those values cannot be kept")
    assert render_preview(seen[0]).count(note) == 1
    done = next(n for n in outcome.report.notes if "re-created under new ids" in n)
    assert done.startswith(f"{count} were re-created under new ids {objects}: the CRM set their created")

    id_map = read_run(ws.home, outcome.report.run_id).id_map
    assert outcome.report.id_map == id_map and set(id_map["Contact"]) == set(purged) and kept not in id_map["Contact"]
    for old_id, new_id in id_map["Contact"].items():
        live = sf.query(f"SELECT AccountId FROM Contact WHERE Id = '{new_id}'")["records"][0]
        assert new_id != old_id and live["AccountId"] == id_map["Account"][account]
