"""A backup tells live records from removed ones: HubSpot's archived records are kept in the snapshot
(their only copy, for rollback) but are not counted as the CRM's records, in the manifest, in what
`backup` and `snapshots list` print and in their --json. `rows` stays the rows in the data file."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import requests
from simple_salesforce.api import Salesforce
from typer.testing import CliRunner

from crmsweep import api
from crmsweep.backup import snapshot_layers as layers
from crmsweep.backup.snapshot_layout import MANIFEST_NAME
from crmsweep.backup.snapshot_verify import verify_snapshot
from crmsweep.cli import app
from crmsweep.paths import Home
from crmsweep.sandbox.server import RunningSandbox
from tests.fake_connector import ACME_VOCABULARY, FAKE_CAPABILITIES, FakeConnector, spec, standard_fields
from tests.hubspot_fixtures import all_pages, hs, hubspot_cli, hubspot_sandbox
from tests.test_snapshot import snap

__all__ = ["hs", "hubspot_sandbox"]  # fixtures

runner = CliRunner()


def _line(text: str, name: str) -> str:
    """The backup's stderr line for object `name`, its spaces squeezed."""
    found = [re.sub(r"\s+", " ", line.strip()) for line in text.splitlines() if line.strip().startswith(name + " ")]
    assert len(found) == 1, text
    return found[0]


def test_a_hubspot_backup_counts_archived_contacts_apart_from_live_ones(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    live_before = [r.id for r in all_pages(hs.crm.objects.basic_api, object_type="contacts", archived=False)]
    hs.crm.contacts.batch_api.archive({"inputs": [{"id": i} for i in live_before[:3]]})
    crm = ("companies", "contacts", "deals")
    expected = {n: (len(all_pages(hs.crm.objects.basic_api, object_type=n, archived=False)),
                    len(all_pages(hs.crm.objects.basic_api, object_type=n, archived=True))) for n in crm}
    assert expected["contacts"] == (247, 3)  # the seed archives no contact: these three are ours
    # HubSpot archives the owners of deactivated users; the connector reads them as owners whose `active`
    # is false (the inactive-users pass looks at them), not as removed rows: all live.
    owners = sum(len(all_pages(hs.crm.owners.owners_api, archived=a)) for a in (False, True))
    assert owners > len(all_pages(hs.crm.owners.owners_api, archived=False))
    expected["owners"] = (owners, 0)
    cli = hubspot_cli(hubspot_sandbox.info, tmp_path)
    objects = [a for n in ("owners", *crm) for a in ("--object", n)]

    taken = json.loads(cli("backup", "-c", "e2e", *objects, "--json").stdout)
    for name, (live, archived) in expected.items():
        got = (taken["objects"][name], taken["live_rows"][name], taken["removed_rows"][name])
        assert got == (live + archived, live, archived), name
    assert (taken["objects"]["contacts"], taken["live_rows"]["contacts"], taken["removed_rows"]["contacts"]) == (
        250, 247, 3)
    # Links are read from live records only.
    assert taken["removed_rows"]["companies_to_contacts"] == 0
    assert taken["live_rows"]["companies_to_contacts"] == taken["objects"]["companies_to_contacts"] > 0
    manifest = json.loads((Path(taken["path"]) / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert (manifest["objects"]["contacts"]["rows"], manifest["objects"]["contacts"]["removed_rows"]) == (250, 3)

    told = cli("backup", "-c", "e2e", *objects)
    assert _line(told.stderr, "contacts") == "contacts 250 (247 live, 3 archived)"
    # Owners and links have no archived flag: their count alone, no "0 archived" beside each.
    assert _line(told.stderr, "owners") == f"owners {owners}"
    links = taken["objects"]["companies_to_contacts"]
    assert _line(told.stderr, "companies_to_contacts") == f"companies_to_contacts {links}"
    total = sum(taken["objects"].values())
    removed = sum(taken["removed_rows"].values())
    assert f": {total:,} ({total - removed:,} live, {removed:,} archived) records in 7 objects, " in told.stderr

    listed = cli("snapshots", "list").stdout
    assert listed.count(f"  {total:,} ({total - removed:,} live, {removed:,} archived)") == 2, listed
    for entry in json.loads(cli("snapshots", "list", "--json").stdout):
        assert (entry["objects"]["contacts"], entry["live_rows"]["contacts"], entry["removed_rows"]["contacts"]) == (
            250, 247, 3)
    # Verify re-counts the rows in the file, archived ones included: as before.
    verified = json.loads(cli("snapshots", "verify", taken["snapshot"], "--json").stdout)
    assert verified["ok"] and verified["objects"]["contacts"] == 250


def _salesforce(sandbox: RunningSandbox) -> Any:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.info.ca_file)
    return Salesforce(instance_url=sandbox.info.url, session_id=sandbox.info.token, session=session)


def _cli(ws: api.Workspace, *args: str) -> Any:
    assert ws.config.path is not None
    result = runner.invoke(app, [*args, "--home", str(ws.home.root), "--config", str(ws.config.path)],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result


def test_salesforce_reads_no_deleted_rows_where_it_undeletes_and_says_none(sandbox: RunningSandbox,
                                                                          ws: api.Workspace) -> None:
    sf = _salesforce(sandbox)
    for row in sf.query("SELECT Id FROM Contact ORDER BY Id LIMIT 2")["records"]:
        sf.Contact.delete(row["Id"])
    live = sf.query("SELECT COUNT() FROM Contact")["totalSize"]
    binned = sf.query_all("SELECT Id FROM Contact WHERE IsDeleted = true", include_deleted=True)["records"]
    assert len(binned) >= 2  # in the recycle bin, which Salesforce undeletes from: the backup leaves them

    taken = json.loads(_cli(ws, "backup", "-c", "flaky", "--object", "Contact", "--object", "Account",
                            "--json").stdout)
    assert (taken["objects"]["Contact"], taken["live_rows"]["Contact"], taken["removed_rows"]["Contact"]) == (
        live, live, 0)
    assert taken["removed_rows"] == {"Contact": 0, "Account": 0}
    told = _cli(ws, "backup", "-c", "flaky", "--object", "Contact").stderr
    assert _line(told, "Contact") == f"Contact {live} ({live} live, 0 deleted)"


def test_an_older_manifest_without_removed_counts_still_reads_lists_and_verifies(sandbox: RunningSandbox,
                                                                                ws: api.Workspace) -> None:
    taken = json.loads(_cli(ws, "backup", "-c", "flaky", "--object", "Contact", "--json").stdout)
    path = Path(taken["path"]) / MANIFEST_NAME
    older = json.loads(path.read_text(encoding="utf-8"))
    for entry in older["objects"].values():
        del entry["removed_rows"]
    path.write_text(json.dumps(older, indent=2) + "\n", encoding="utf-8")
    rows = taken["objects"]["Contact"]

    listed = json.loads(_cli(ws, "snapshots", "list", "--json").stdout)
    assert [(e["objects"], e["live_rows"], e["removed_rows"]) for e in listed] == [
        ({"Contact": rows}, {"Contact": None}, {"Contact": None})]
    # Not told apart is said, not guessed as none removed.
    assert f"{rows:,} (live and deleted not counted apart: an older backup)" in _cli(ws, "snapshots", "list").stdout
    verified = json.loads(_cli(ws, "snapshots", "verify", taken["snapshot"], "--json").stdout)
    assert (verified["ok"], verified["objects"]) == (True, {"Contact": rows})


def test_verify_holds_the_removed_count_to_the_file(sandbox: RunningSandbox, ws: api.Workspace) -> None:
    taken = json.loads(_cli(ws, "backup", "-c", "flaky", "--object", "Contact", "--json").stdout)
    path = Path(taken["path"]) / MANIFEST_NAME
    edited = json.loads(path.read_text(encoding="utf-8"))
    edited["objects"]["Contact"]["removed_rows"] = 1
    path.write_text(json.dumps(edited, indent=2) + "\n", encoding="utf-8")

    report = verify_snapshot(ws.home, taken["snapshot"])

    assert report.problems == ["Contact holds 0 removed rows (deleted or archived), the manifest says 1"]


def test_the_writer_counts_removed_rows_where_it_keeps_them(tmp_path: Path) -> None:
    # A CRM whose names are all unlike Salesforce's and HubSpot's: the count follows its vocabulary.
    fields = standard_fields(spec("full_name"), vocabulary=ACME_VOCABULARY)
    rows = [{"uid": f"p{i}", "full_name": f"n{i}", "trashed": i < 2, "born_at": "2020-01-01T00:00:00.000Z",
             "rev_at": "2020-01-01T00:00:00.000Z"} for i in range(5)]
    keeps = FakeConnector({"person": fields}, {"person": rows}, vocabulary=ACME_VOCABULARY,
                          capabilities=replace(FAKE_CAPABILITIES, supports_undelete=False))
    undeletes = FakeConnector({"person": fields}, {"person": rows}, vocabulary=ACME_VOCABULARY)

    kept = snap(Home(tmp_path / "a"), keeps, ("person",)).objects["person"]
    read = snap(Home(tmp_path / "b"), undeletes, ("person",)).objects["person"]

    assert (kept.rows, kept.removed_rows, kept.live_rows) == (5, 2, 3)
    assert (read.rows, read.removed_rows, read.live_rows) == (3, 0, 3)


def test_a_layered_object_counts_the_removed_rows_it_reads_as() -> None:
    base = pa.table({"Id": ["a", "b", "c", "d"], "IsDeleted": [True, True, False, None]})
    # b is changed (restored), c deleted for good, e is new and removed.
    changed = pa.table({"Id": ["b", "e"], "IsDeleted": [False, True]})
    deleted = pa.array(["c"])

    assert layers.layered_removed(base, changed, deleted, "Id", "IsDeleted") == 2  # a and e
    assert layers.layered_removed(base, changed, deleted, "Id", None) == 0


@pytest.mark.parametrize("bad", [-5, 99999, 1.5, True, "abc"])
def test_a_removed_count_that_is_no_count_of_the_rows_is_a_damaged_manifest(
    sandbox: RunningSandbox, ws: api.Workspace, bad: object
) -> None:
    """Red team R3: -5, more than the rows, 1.5 or true were printed ("-5 archived", "-95,376 live")."""
    taken = json.loads(_cli(ws, "backup", "-c", "flaky", "--object", "Contact", "--json").stdout)
    path = Path(taken["path"]) / MANIFEST_NAME
    edited = json.loads(path.read_text(encoding="utf-8"))
    edited["objects"]["Contact"]["removed_rows"] = bad
    path.write_text(json.dumps(edited, indent=2) + "\n", encoding="utf-8")
    # Damaged, as a manifest with a bad row count is: not listed as a snapshot to scan, and verify says so.
    listed = json.loads(_cli(ws, "snapshots", "list", "--json").stdout)
    assert taken["snapshot"] not in [s["snapshot"] for s in listed]
    assert verify_snapshot(ws.home, taken["snapshot"]).problems
