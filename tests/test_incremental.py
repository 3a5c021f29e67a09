"""Incremental snapshots (issue 8 item 3) against the Salesforce sandbox over TLS.

Each test changes the org through simple-salesforce (not our connector), takes an incremental
snapshot and a full one of the same moment, and asserts that the incremental reads exactly as the
full one through every reader method, while holding only the changed rows itself.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import requests
from simple_salesforce.api import Salesforce
from typer.testing import CliRunner

from crmsweep import api
from crmsweep.backup import snapshot_incremental
from crmsweep.backup.snapshot import open_snapshot, verify_snapshot
from crmsweep.backup.snapshot_incremental import take_incremental
from crmsweep.backup.snapshot_layout import MANIFEST_NAME
from crmsweep.cli import app
from crmsweep.errors import ConnectorError, SafetyRefusal
from crmsweep.model import Plan, SnapshotManifest
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.rules import format_datetime
from crmsweep.sandbox.server import RunningSandbox
from tests.conftest import TOKEN_ENV
from tests.hubspot_fixtures import hubspot_sandbox
from tests.test_recreate import empty_recycle_bin

__all__ = ["hubspot_sandbox"]  # fixture

OBJECTS = ("Account", "Contact", "Task")


# Any: simple-salesforce types `sf.<Object>` as a union with its bulk handlers, so `sf.Contact.x()` fails mypy.
def client(sandbox: RunningSandbox) -> Any:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.info.ca_file)
    return Salesforce(instance_url=sandbox.info.url, session_id=sandbox.info.token, session=session)


def contact_ids(sf: Any, n: int, where: str = "") -> list[str]:
    rows = sf.query(f"SELECT Id FROM Contact {where} ORDER BY Id LIMIT {n}")["records"]
    return [r["Id"] for r in rows]


def by_id(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("Id").reset_index(drop=True)


def assert_reads_alike(ws: api.Workspace, incremental: SnapshotManifest, full: SnapshotManifest, *,
                       same_order: bool = True) -> None:
    """Every reader method answers for `incremental` as for `full` (rows in the same order, unless a
    record came back from the recycle bin: it reads after the base's rows)."""
    a, b = open_snapshot(ws.home, incremental.snapshot_id), open_snapshot(ws.home, full.snapshot_id)
    assert set(incremental.objects) == set(full.objects)
    order = (lambda f: f) if same_order else by_id
    for name, entry in full.objects.items():
        assert incremental.objects[name].rows == entry.rows, name
        got, want = list(a.records(name)), list(b.records(name))
        if not same_order:
            got, want = sorted(got, key=lambda r: r["Id"]), sorted(want, key=lambda r: r["Id"])
        assert got == want, name
        assert order(a.frame(name)).equals(order(b.frame(name))), name
        assert order(a.frame(name, ["Id"])).equals(order(b.frame(name, ["Id"]))), name
        ids = [*[str(i) for i in b.frame(name, ["Id"])["Id"]][::7], "003000000000000AAA"]
        assert a.record_map(name, ids) == b.record_map(name, ids), name
    report = verify_snapshot(ws.home, incremental.snapshot_id)
    assert report.ok, report.problems
    assert report.objects == {n: e.rows for n, e in full.objects.items()}


def test_updates_creates_and_deletes_read_as_a_full_copy(sandbox: RunningSandbox, ws: api.Workspace) -> None:
    sf = client(sandbox)
    first = api.backup(ws, "flaky", OBJECTS)
    changed, deleted = contact_ids(sf, 5), contact_ids(sf, 2, "WHERE Email = null")
    for i, cid in enumerate(changed):
        sf.Contact.update(cid, {"Title": f"Now, \"quoted\"\nline {i} ünïcode"})
    made = sf.Contact.create({"LastName": "Newcomer"})["id"]
    for cid in deleted:
        sf.Contact.delete(cid)

    second = api.backup(ws, "flaky", OBJECTS, incremental=True)
    full = api.backup(ws, "flaky", OBJECTS)

    assert second.parent == first.snapshot_id
    layer = second.objects["Contact"].layer
    assert layer is not None and layer.base_snapshot == first.snapshot_id
    assert (layer.changed, layer.deleted) == (len(changed) + 1, len(deleted))
    folder = ws.home.snapshots_dir / second.snapshot_id
    assert pq.ParquetFile(folder / second.objects["Contact"].file).metadata.num_rows == len(changed) + 1
    assert "changes since" in second.notes["Contact"]
    reader = open_snapshot(ws.home, second.snapshot_id)
    assert reader.record_map("Contact", [made])[made]["LastName"] == "Newcomer"
    assert reader.record_map("Contact", deleted) == {}
    assert_reads_alike(ws, second, full)


def test_chain_layers_on_the_base_and_purged_and_undeleted_records_come_out_right(
    sandbox: RunningSandbox, ws: api.Workspace
) -> None:
    sf = client(sandbox)
    binned, purged = contact_ids(sf, 2, "WHERE Email = null")
    sf.Contact.delete(binned)
    first = api.backup(ws, "flaky", OBJECTS)
    sf.Contact.delete(purged)
    assert empty_recycle_bin(sandbox, [purged]) == [True]
    second = api.backup(ws, "flaky", OBJECTS, incremental=True)
    # The bin's record comes back with its id; a purged one is listed by /deleted only.
    session = sf.session
    answer = session.post(f"{sandbox.info.url}/services/Soap/u/59.0", data=(
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:urn="urn:partner.soap.sforce.com"><soapenv:Header><urn:SessionHeader>'
        f"<urn:sessionId>{sandbox.info.token}</urn:sessionId></urn:SessionHeader></soapenv:Header>"
        f"<soapenv:Body><urn:undelete><urn:ids>{binned}</urn:ids></urn:undelete></soapenv:Body>"
        "</soapenv:Envelope>").encode(), headers={"Content-Type": "text/xml", "SOAPAction": "undelete"}, timeout=30)
    assert answer.status_code == 200 and "<success>true" in answer.text
    third = api.backup(ws, "flaky", OBJECTS, incremental=True)
    full = api.backup(ws, "flaky", OBJECTS)

    second_layer, third_layer = second.objects["Contact"].layer, third.objects["Contact"].layer
    assert second_layer is not None and third_layer is not None
    assert second_layer.deleted == 1
    assert open_snapshot(ws.home, second.snapshot_id).record_map("Contact", [purged]) == {}
    # Always on the base: the third reads through the first, never through the second.
    assert third_layer.base_snapshot == first.snapshot_id
    assert binned in open_snapshot(ws.home, third.snapshot_id).record_map("Contact", [binned])
    assert_reads_alike(ws, third, full, same_order=False)


def test_a_change_in_the_overlap_window_is_caught(sandbox: RunningSandbox, ws: api.Workspace) -> None:
    sf = client(sandbox)
    first = api.backup(ws, "flaky", ["Contact"])
    target = contact_ids(sf, 1)[0]
    # A save whose transaction began two minutes before the parent did and committed after the parent had
    # read the record: Salesforce stamps SystemModstamp when a transaction starts.
    began = datetime.fromisoformat(first.started.replace("Z", "+00:00")) - timedelta(minutes=2)
    store = sandbox.api.store  # type: ignore[attr-defined]
    with store.transaction():
        store.set_values("Contact", target, {"Title": "Saved late", "SystemModstamp": format_datetime(began)})

    with api.connect(ws, "flaky") as connector:
        blind = take_incremental(connector, ws.home, first, objects=["Contact"], overlap=timedelta(0))
        caught = take_incremental(connector, ws.home, first, objects=["Contact"])
    assert blind.objects["Contact"].layer is not None and caught.objects["Contact"].layer is not None
    assert open_snapshot(ws.home, blind.snapshot_id).record_map("Contact", [target])[target]["Title"] != "Saved late"
    assert open_snapshot(ws.home, caught.snapshot_id).record_map("Contact", [target])[target]["Title"] == "Saved late"


def test_a_field_added_to_describe_reads_that_object_in_full(sandbox: RunningSandbox, ws: api.Workspace) -> None:
    sf = client(sandbox)
    api.backup(ws, "flaky", OBJECTS)
    made = sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Contact.Shoe_Size__c", "Metadata": {"type": "Number", "label": "Shoe size", "precision": 3,
                                                         "scale": 0}})
    assert made["success"] is True
    second = api.backup(ws, "flaky", OBJECTS, incremental=True)
    assert second.objects["Contact"].layer is None
    note = second.notes["Contact"]
    assert note.startswith("in full: its fields changed") and "added Shoe_Size__c" in note
    assert second.objects["Account"].layer is not None
    assert "Shoe_Size__c" in [f.name for f in second.objects["Contact"].fields]
    assert_reads_alike(ws, second, api.backup(ws, "flaky", OBJECTS))


def test_a_parent_older_than_the_delete_log_reads_in_full(sandbox: RunningSandbox, ws: api.Workspace) -> None:
    first = api.backup(ws, "flaky", ["Contact"])
    folder = ws.home.snapshots_dir / first.snapshot_id
    doc = json.loads((folder / MANIFEST_NAME).read_text())
    doc["started"] = "2020-01-01T00:00:00.000Z"
    (folder / MANIFEST_NAME).write_text(json.dumps(doc))
    second = api.backup(ws, "flaky", ["Contact"], incremental=True)
    assert second.parent == first.snapshot_id and second.objects["Contact"].layer is None
    assert "deletes of the last 29 days" in second.notes["Contact"]


def test_a_deleted_or_tampered_parent_makes_the_child_unverifiable(sandbox: RunningSandbox, ws: api.Workspace) -> None:
    sf = client(sandbox)
    first = api.backup(ws, "flaky", ["Contact"])
    sf.Contact.update(contact_ids(sf, 1)[0], {"Title": "x"})
    second = api.backup(ws, "flaky", ["Contact"], incremental=True)
    base = ws.home.snapshots_dir / first.snapshot_id / first.objects["Contact"].file
    data = base.read_bytes()
    base.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    report = verify_snapshot(ws.home, second.snapshot_id)
    assert not report.ok and any("base snapshot" in p and "damaged" in p for p in report.problems)
    # Nor is anything laid on a damaged snapshot.
    with pytest.raises(SafetyRefusal, match="fails verification"):
        api.backup(ws, "flaky", ["Contact"], incremental=True)
    base.unlink()
    report = verify_snapshot(ws.home, second.snapshot_id)
    assert not report.ok
    import shutil
    shutil.rmtree(ws.home.snapshots_dir / first.snapshot_id)
    report = verify_snapshot(ws.home, second.snapshot_id)
    assert not report.ok and any("which is gone" in p for p in report.problems)


def test_no_earlier_snapshot_takes_a_full_one(ws: api.Workspace) -> None:
    manifest = api.backup(ws, "flaky", ["Contact"], incremental=True)
    assert manifest.parent is None and manifest.objects["Contact"].layer is None


def plan_changes(plan: Plan) -> list[Any]:
    return sorted((c.op.value, c.object, c.record_id, json.dumps(c.before_record(), sort_keys=True))
                  for c in plan.changes)


@pytest.mark.usefixtures("test_pass_registered")
def test_scan_apply_and_rollback_over_an_incremental_snapshot(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    sf = client(sandbox)
    api.backup(ws, "flaky")
    for cid in contact_ids(sf, 3):
        sf.Contact.update(cid, {"Title": "Changed"})
    incremental = api.backup(ws, "flaky", incremental=True)
    full = api.backup(ws, "flaky")
    assert any(e.layer is not None for e in incremental.objects.values())
    over_incremental = api.scan(ws, "flaky", tmp_path / "a.json", snapshot_id=incremental.snapshot_id).result.plan
    over_full = api.scan(ws, "flaky", tmp_path / "b.json", snapshot_id=full.snapshot_id).result.plan
    assert plan_changes(over_incremental) == plan_changes(over_full)
    assert over_incremental.changes

    before = {r["Id"]: r for r in sf.query_all("SELECT Id, LastName, Title, IsDeleted FROM Contact")["records"]}
    report = api.apply(ws, tmp_path / "a.json", confirm=lambda plan: True).report
    assert report is not None and report.failed == 0 and report.applied == len(over_incremental.changes)
    back = api.rollback(ws, report.run_id, confirm=lambda plan: True).report
    assert back is not None and back.failed == 0
    after = {r["Id"]: r for r in sf.query_all("SELECT Id, LastName, Title, IsDeleted FROM Contact")["records"]}
    assert after == before


def test_the_cli_says_how_each_object_was_read(sandbox: RunningSandbox, ws: api.Workspace) -> None:
    runner = CliRunner()
    env = {**os.environ, TOKEN_ENV: sandbox.info.token}
    args = ["backup", "-c", "flaky", "--object", "Contact", "--incremental",
            "--config", str(ws.config.path), "--home", str(ws.home.root)]
    first = runner.invoke(app, args, env=env)
    assert first.exit_code == 0 and "No earlier snapshot of 'flaky'" in first.stderr
    second = runner.invoke(app, [*args, "--json"], env=env)
    assert second.exit_code == 0, second.stderr
    doc = json.loads(second.stdout)
    assert doc["parent"] is not None and doc["notes"]["Contact"].startswith("changes since")
    third = runner.invoke(app, args, env=env)
    assert third.exit_code == 0 and "Incremental on" in third.stderr and "changes since" in third.stderr


def test_hubspot_refuses_incremental_with_one_line(hubspot_sandbox: RunningSandbox, tmp_path: Path) -> None:
    info = hubspot_sandbox.info
    config = tmp_path / "crmsweep.toml"
    config.write_text(f'[connections.hs]\nprovider = "hubspot"\nurl = "{info.url}"\ntoken_env = "HS_INC_TOKEN"\n'
                      f'ca_file = "{info.ca_file}"\n', encoding="utf-8")
    env = {**os.environ, "HS_INC_TOKEN": info.token}
    args = ["backup", "-c", "hs", "--object", "contacts", "--config", str(config), "--home", str(tmp_path / "home")]
    runner = CliRunner()
    # Refused the first time too (with no earlier snapshot), not only once there is one: a nightly job
    # must not pass on its first day and fail every day after.
    first = runner.invoke(app, [*args, "--incremental"], env=env)
    assert first.exit_code == 2 and "cannot back up incrementally" in first.stderr
    assert not (tmp_path / "home" / "snapshots").exists() or not list((tmp_path / "home" / "snapshots").iterdir())
    assert runner.invoke(app, args, env=env).exit_code == 0
    refused = runner.invoke(app, [*args, "--incremental"], env=env)
    assert refused.exit_code == 2 and "Traceback" not in refused.stderr
    assert "cannot back up incrementally" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    # The full backup it names pastes as is: the connection, and the --config and --home given.
    assert (f"run `crmsweep backup -c hs --config {config} --home {tmp_path / 'home'}` (without --incremental)"
            in " ".join(refused.stderr.split()))
    # Nothing half-made is left behind.
    assert len([p for p in (tmp_path / "home" / "snapshots").iterdir()]) == 1


@pytest.mark.parametrize("path", ["sobjects/Contact/deleted", "queryAll"])
def test_a_failing_read_fails_the_incremental_loudly_and_leaves_nothing(
    sandbox: RunningSandbox, ws: api.Workspace, path: str
) -> None:
    first = api.backup(ws, "flaky", ["Contact"])
    sandbox.set_faults([FaultRule(kind="status", status=500, path=path)])
    with pytest.raises(ConnectorError, match="HTTP 500"):
        api.backup(ws, "flaky", ["Contact"], incremental=True)
    sandbox.set_faults([])
    assert [p.name for p in ws.home.snapshots_dir.iterdir()] == [first.snapshot_id]
    # A transient failure is ridden out, and the snapshot is right.
    sandbox.set_faults([FaultRule(kind="status", status=503, path=path, times=2)])
    second = api.backup(ws, "flaky", ["Contact"], incremental=True)
    assert second.objects["Contact"].layer is not None
    assert verify_snapshot(ws.home, second.snapshot_id).ok


def test_a_layer_past_its_share_of_the_base_is_written_in_full(
    sandbox: RunningSandbox, ws: api.Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    sf = client(sandbox)
    api.backup(ws, "flaky", ["Contact"])
    sf.Contact.update(contact_ids(sf, 1)[0], {"Title": "One change"})
    with monkeypatch.context() as patched:
        patched.setattr(snapshot_incremental, "COMPACT_FRACTION", 0.0)
        compacted = api.backup(ws, "flaky", ["Contact"], incremental=True)
    assert compacted.objects["Contact"].layer is None and "written in full" in compacted.notes["Contact"]
    sf.Contact.delete(contact_ids(sf, 1, "WHERE Email = null")[0])
    # The compacted snapshot is the base of the next increment.
    on_it = api.backup(ws, "flaky", ["Contact"], incremental=True)
    layer = on_it.objects["Contact"].layer
    assert layer is not None and layer.base_snapshot == compacted.snapshot_id
    assert_reads_alike(ws, on_it, api.backup(ws, "flaky", ["Contact"]))


def test_an_incremental_makes_the_fewest_calls(sandbox: RunningSandbox, ws: api.Workspace) -> None:
    sf = client(sandbox)
    api.backup(ws, "flaky", ["Contact", "Account"])
    sf.Contact.update(contact_ids(sf, 1)[0], {"Title": "Once"})
    sandbox.reset_stats()
    second = api.backup(ws, "flaky", ["Contact", "Account"], incremental=True)
    # The org id once; per object its describe, its deletes and one page of changes.
    assert second.api_calls == sandbox.stats()["api_calls"] == 1 + 2 * 3


def test_a_task_logged_against_a_contact_refreshes_its_last_activity_date(
    sandbox: RunningSandbox, ws: api.Workspace
) -> None:
    sf = client(sandbox)
    api.backup(ws, "flaky", OBJECTS)
    target = contact_ids(sf, 1)[0]
    before = sf.Contact.get(target)
    sf.Task.create({"Subject": "Call", "WhoId": target, "ActivityDate": "2027-01-15", "Status": "Completed"})
    after = sf.Contact.get(target)
    # The platform moved the contact's LastActivityDate, not its stamp: only the task says so.
    assert after["LastActivityDate"] == "2027-01-15" != before["LastActivityDate"]
    assert after["SystemModstamp"] == before["SystemModstamp"]
    second = api.backup(ws, "flaky", OBJECTS, incremental=True)
    got = open_snapshot(ws.home, second.snapshot_id).record_map("Contact", [target])[target]
    assert got["LastActivityDate"] == "2027-01-15"
    assert list(second.objects) == list(OBJECTS)
    assert_reads_alike(ws, second, api.backup(ws, "flaky", OBJECTS))


def test_a_delete_log_that_lags_makes_the_object_read_whole(
    sandbox: RunningSandbox, ws: api.Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Red team: getDeleted's latestDateCovered may lag now; deletes after it are not listed, so an
    increment taken on it kept a purged contact as if it were there."""
    from crmsweep.sandbox import salesforce_replication as replication
    from tests.test_recreate import empty_recycle_bin

    real = replication._window

    def lagging(start: Any, end: Any, now: Any) -> Any:
        first, covered, earliest = real(start, end, now)
        return first, max(first, covered - timedelta(minutes=10)), earliest

    monkeypatch.setattr(replication, "_window", lagging)
    sf = client(sandbox)
    api.backup(ws, "flaky", ["Contact"])
    victim = contact_ids(sf, 1)[0]
    sf.Contact.delete(victim)
    empty_recycle_bin(sandbox, [victim])
    increment = api.backup(ws, "flaky", ["Contact"], incremental=True)
    assert increment.objects["Contact"].layer is None and "covers only up to" in increment.notes["Contact"]
    assert victim not in {r["Id"] for r in open_snapshot(ws.home, increment.snapshot_id).records("Contact")}


def test_objects_an_activity_sets_values_of_are_read_whole_when_the_activities_are(
    sandbox: RunningSandbox, ws: api.Workspace
) -> None:
    """Red team: a task logged against a contact moves its LastActivityDate, not its stamp; with Task read
    in full (not in the last snapshot) the contact kept the old date, and a scan proposed deleting it."""
    sf = client(sandbox)
    api.backup(ws, "flaky", ["Account", "Contact"])
    target = contact_ids(sf, 1)[0]
    sf.Task.create({"Subject": "Call today", "WhoId": target, "ActivityDate": "2026-11-30", "Status": "Completed"})
    now = sf.Contact.get(target)["LastActivityDate"]
    increment = api.backup(ws, "flaky", ["Account", "Contact", "Task"], incremental=True)
    assert "Task was read in full" in increment.notes["Contact"]
    row = open_snapshot(ws.home, increment.snapshot_id).record_map("Contact", [target])[target]
    assert str(row["LastActivityDate"])[:10] == str(now)[:10]


def test_a_parent_taken_under_a_fast_clock_still_gets_the_changes_made_after_it(
    sandbox: RunningSandbox, ws: api.Workspace
) -> None:
    """Red team: a parent stamped six minutes ahead (this machine's clock, not the CRM's) put the window's
    start after changes made just after it: the increment read none of them and kept the old values. The
    window now starts at the CRM's own time of the parent (its Date header) where that is earlier."""
    import time
    from datetime import UTC

    from crmsweep.backup.snapshot_incremental import find_parent
    from crmsweep.backup.snapshot_writer import take_snapshot

    sf = client(sandbox)
    ahead = datetime.now(UTC) + timedelta(minutes=6)
    with api.connect(ws, "flaky") as connector:
        parent = take_snapshot(connector, ws.home, objects=["Contact"], clock=lambda: ahead)
    assert parent.crm_started is not None
    changed = contact_ids(sf, 1)[0]
    sf.Contact.update(changed, {"Title": "CHANGED-AFTER-PARENT"})
    time.sleep(1.5)  # so the old window's start (1 s after the parent, by the CRM) lies before now
    with api.connect(ws, "flaky") as connector:
        found = find_parent(ws.home, "flaky", connector.org_id())
        assert found is not None
        # An overlap just short of the skew: the old code's window began a second after the parent.
        increment = take_incremental(connector, ws.home, found, objects=["Contact"],
                                     overlap=timedelta(minutes=5, seconds=59))
    rows = open_snapshot(ws.home, increment.snapshot_id).record_map("Contact", [changed])
    assert rows[changed]["Title"] == "CHANGED-AFTER-PARENT"
