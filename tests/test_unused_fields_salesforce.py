"""unused_custom_fields on Salesforce: the sandbox's Tooling API through simple-salesforce, the pass's exact
proposals on the default seed (planted.json), what it holds back, and the round trip: backup, scan, apply
(fields deleted through the Tooling API, values gone), rollback (fields back in describe, values identical).

All against the Salesforce sandbox (seed 21, 250 contacts: the `sandbox` fixture).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from crmsweep import api
from crmsweep.backup.runlog import read_run
from crmsweep.backup.snapshot import open_snapshot
from crmsweep.cleanup.apply import ApplyReport
from crmsweep.connectors.salesforce import SalesforceConnector
from crmsweep.errors import ConnectorError
from crmsweep.model import Op, Plan
from crmsweep.sandbox.planted import read_planted
from crmsweep.sandbox.server import RunningSandbox

PASS = "unused_custom_fields"


@pytest.fixture()
def sf(sandbox: RunningSandbox) -> Any:
    session = requests.Session()
    session.verify, session.trust_env = str(sandbox.info.ca_file), False
    return Salesforce(instance_url=sandbox.info.url, session_id=sandbox.info.token, session=session)


def tooling_query(sf: Any, soql: str) -> Any:
    return sf.toolingexecute(f"query/?q={quote_plus(soql)}")


def error_of(exc: Any) -> Any:
    """The first error of a Salesforce error body (a JSON list of {message, errorCode})."""
    return exc.content[0]


def yes(plan: Plan) -> bool:
    return True


def custom_names(sf: Any, object_name: str) -> list[str]:
    return [f["name"] for f in getattr(sf, object_name).describe()["fields"] if f["custom"]]


# --- the sandbox, through simple-salesforce --------------------------------------------------------


def test_custom_field_query_refuses_full_name_over_more_than_one_row(sf: Any) -> None:
    rows = tooling_query(sf, "SELECT Id, DeveloperName, TableEnumOrId, NamespacePrefix, ManageableState "
                             "FROM CustomField WHERE TableEnumOrId = 'Contact'")["records"]
    assert [(r["DeveloperName"], r["NamespacePrefix"], r["ManageableState"]) for r in rows] == [
        ("Favourite_Colour", None, "unmanaged"), ("Legacy_Id", None, "unmanaged"), ("Score", "acme_pkg", "installed"),
        ("Campaign_Tag", None, "unmanaged"), ("Partner_Code", None, "unmanaged"), ("Tier", None, "unmanaged")]
    with pytest.raises(SalesforceMalformedRequest) as refused:
        tooling_query(sf, "SELECT FullName FROM CustomField WHERE TableEnumOrId = 'Contact'")
    assert error_of(refused.value)["errorCode"] == "MALFORMED_QUERY"
    assert "no more than one row" in error_of(refused.value)["message"]
    one = tooling_query(sf, f"SELECT FullName, Metadata FROM CustomField WHERE Id = '{rows[0]['Id']}'")["records"]
    assert one[0]["FullName"] == "Contact.Favourite_Colour__c"
    assert one[0]["Metadata"] == {"fullName": "Contact.Favourite_Colour__c", "label": "Favourite colour",
                                  "length": 40, "type": "Text"}


@pytest.mark.parametrize("soql, refused", [
    ("SELECT COUNT() FROM FieldDefinition WHERE EntityDefinitionId = 'Contact'", "COUNT"),
    ("SELECT QualifiedApiName FROM FieldDefinition WHERE EntityDefinitionId = 'Contact' LIMIT 5", "LIMIT"),
    ("SELECT QualifiedApiName FROM FieldDefinition WHERE EntityDefinitionId = 'Contact' OR "
     "EntityDefinitionId = 'Lead'", "OR"),
    ("SELECT QualifiedApiName FROM FieldDefinition WHERE NOT EntityDefinitionId = 'Contact'", "NOT"),
    ("SELECT Id FROM MetadataComponentDependency ORDER BY Id", "ORDER BY"),
    ("SELECT Id FROM MetadataComponentDependency LIMIT 5 OFFSET 1", "OFFSET"),
    ("SELECT Id FROM MetadataComponentDependency WHERE RefMetadataComponentName = 'Tier'", "filtering"),
])
def test_field_definition_and_dependency_refusals(sf: Any, soql: str, refused: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as error:
        tooling_query(sf, soql)
    assert error_of(error.value)["errorCode"] == "MALFORMED_QUERY" and refused in error_of(error.value)["message"]


def test_field_definitions_and_dependencies_answer_as_documented(sf: Any) -> None:
    fields = tooling_query(sf, "SELECT QualifiedApiName, DataType FROM FieldDefinition "
                               "WHERE EntityDefinitionId = 'Lead'")["records"]
    assert {"Email", "Fax_Opt_In__c"} <= {f["QualifiedApiName"] for f in fields}
    assert next(f["DataType"] for f in fields if f["QualifiedApiName"] == "Fax_Opt_In__c") == "Checkbox"
    uses = tooling_query(sf, "SELECT MetadataComponentName, MetadataComponentType FROM MetadataComponentDependency "
                             "WHERE RefMetadataComponentType = 'CustomField'")
    assert uses["done"] is True and "nextRecordsUrl" not in uses
    assert [(u["MetadataComponentType"], u["MetadataComponentName"]) for u in uses["records"]] == [
        ("ApexClass", "ForecastSync"), ("Layout", "Account-Account Layout"), ("ApexClass", "TierCalculator")]


def test_custom_field_create_appears_in_describe_and_delete_drops_it_and_its_values(sf: Any) -> None:
    made = sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Contact.Shoe_Size__c", "Metadata": {"type": "Number", "label": "Shoe size", "precision": 3,
                                                         "scale": 0}})
    assert made["success"] is True and made["id"].startswith("00N")
    assert "Shoe_Size__c" in custom_names(sf, "Contact")
    contact = sf.Contact.create({"LastName": "Feet", "Shoe_Size__c": 44})
    assert sf.Contact.get(contact["id"])["Shoe_Size__c"] == 44
    stamp = sf.Contact.get(contact["id"])["SystemModstamp"]
    with pytest.raises(SalesforceMalformedRequest) as duplicate:
        sf.toolingexecute("sobjects/CustomField", method="POST", data={
            "FullName": "Contact.Shoe_Size__c", "Metadata": {"type": "Text", "label": "Again"}})
    assert error_of(duplicate.value)["errorCode"] == "DUPLICATE_DEVELOPER_NAME"
    assert sf.toolingexecute(f"sobjects/CustomField/{made['id']}", method="DELETE") == ""
    assert "Shoe_Size__c" not in custom_names(sf, "Contact")
    assert sf.Contact.get(contact["id"])["SystemModstamp"] == stamp  # a schema change, not a write
    assert tooling_query(sf, f"SELECT Id FROM CustomField WHERE Id = '{made['id']}'")["records"] == []
    # Created again, the field is empty: its values went with the delete.
    sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Contact.Shoe_Size__c", "Metadata": {"type": "Number", "label": "Shoe size"}})
    assert sf.Contact.get(contact["id"])["Shoe_Size__c"] is None


def test_managed_and_apex_referenced_fields_cannot_be_deleted(sf: Any) -> None:
    rows = {r["DeveloperName"]: r["Id"] for r in tooling_query(sf, "SELECT Id, DeveloperName FROM CustomField")[
        "records"]}
    for name, why in (("Score", "managed package"), ("Forecast_Notes", "referenced elsewhere")):
        with pytest.raises(SalesforceMalformedRequest) as refused:
            sf.toolingexecute(f"sobjects/CustomField/{rows[name]}", method="DELETE")
        assert error_of(refused.value)["errorCode"] == "DELETE_FAILED" and why in error_of(refused.value)["message"]


# --- the pass on the seed ------------------------------------------------------------------------


def test_pass_proposes_exactly_the_planted_fields_and_holds_back_the_protected(
    ws: api.Workspace, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    planted = read_planted(sandbox.info.state_dir)[PASS]
    result = api.scan(ws, "flaky", tmp_path / "plan.json", passes=[PASS]).result
    changes = [c for c in result.plan.changes if c.pass_name == PASS]
    assert sorted(c.record_id for c in changes) == planted["proposed"]
    assert [c.label for c in changes] == ["Contact.Favourite_Colour__c", "Contact.Legacy_Id__c",
                                          "Account.Old_Rating__c", "Lead.Fax_Opt_In__c"]
    assert {(c.op, c.object) for c in changes} == {(Op.ARCHIVE, "CustomField")}
    assert result.held_back[PASS] == {"referenced": 3, "a managed package's field (only its package may remove it)": 1,
                                      "created in the last 30 days": 1}
    assert len(planted["held"]) == 5
    notes = result.plan.header.notes
    assert f"{PASS}: Opportunity.Forecast_Notes__c is kept: used by ApexClass ForecastSync" in notes
    assert any(n.startswith(f"{PASS}: Account.Segment__c is kept: used by Report ") for n in notes)
    assert any("MetadataComponentDependency (a beta API: at most 2,000 rows, blind to reports)" in n for n in notes)
    fax = next(c for c in changes if c.label == "Lead.Fax_Opt_In__c")
    assert fax.reason.startswith("unused: filled on 0 of ") and fax.reason.endswith(
        "Lead records (0.0%), never written, referenced by nothing in FieldReference; confidence high")


# --- the round trip --------------------------------------------------------------------------------


def test_removed_filled_field_comes_back_in_describe_with_its_values_after_rollback(
    ws: api.Workspace, sf: Any, tmp_path: Path
) -> None:
    # The `ws` fixture's config, with the pass's thresholds raised so a filled field goes too.
    (tmp_path / "crmsweep.toml").write_text((tmp_path / "crmsweep.toml").read_text(encoding="utf-8")
                                            + f"\n[passes.{PASS}]\nmax_fill = 0.01\ndays = 0\n", encoding="utf-8")
    ws = api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home")
    outcome = api.scan(ws, "flaky", tmp_path / "plan.json", passes=[PASS])
    removed = {c.label: c for c in outcome.result.plan.changes}
    assert "Contact.Partner_Code__c" in removed and "Contact.Tier__c" not in removed  # Tier__c: Apex uses it
    snapshot = open_snapshot(ws.home, outcome.result.plan.header.source["id"])
    held = {r["Id"]: r["Partner_Code__c"] for r in snapshot.records("Contact") if r["Partner_Code__c"] is not None}
    assert list(held.values()) == ["PRT-0042"]
    before = json.loads(removed["Contact.Partner_Code__c"].before["Metadata"])

    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and not report.failed and not report.skipped_items
    assert "Partner_Code__c" not in custom_names(sf, "Contact")

    rolled = api.rollback(ws, report.run_id, confirm=yes)
    assert rolled.report is not None and not rolled.report.failed and not rolled.report.skipped_items
    assert [c.op for c in rolled.plan.changes] == [Op.CREATE] * len(removed) + [Op.UPDATE]
    assert {"Partner_Code__c", "Favourite_Colour__c", "Legacy_Id__c"} <= set(custom_names(sf, "Contact"))
    contact_id = next(iter(held))
    assert sf.Contact.get(contact_id)["Partner_Code__c"] == "PRT-0042"
    back = tooling_query(sf, "SELECT Id FROM CustomField WHERE DeveloperName = 'Partner_Code'")["records"]
    new_id = back[0]["Id"]
    assert new_id != removed["Contact.Partner_Code__c"].record_id  # re-created: a new id, mapped in the run log
    metadata = tooling_query(sf, f"SELECT Metadata FROM CustomField WHERE Id = '{new_id}'")["records"][0]["Metadata"]
    assert metadata == before
    count = sf.query("SELECT COUNT() FROM Contact WHERE Partner_Code__c != null")["totalSize"]
    assert count == 1


# --- values removed with a field: every one back, or the run is not called rolled back (issue 7) -----


def _raised(ws: api.Workspace, tmp_path: Path) -> api.Workspace:
    """The `ws` fixture's config with max_fill raised, so fields holding values are removed too."""
    (tmp_path / "crmsweep.toml").write_text((tmp_path / "crmsweep.toml").read_text(encoding="utf-8")
                                            + f"\n[passes.{PASS}]\nmax_fill = 0.01\ndays = 0\n", encoding="utf-8")
    return api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home")


def _partner_holder(ws: api.Workspace, plan: Plan) -> str:
    snapshot = open_snapshot(ws.home, plan.header.source["id"])
    return next(str(r["Id"]) for r in snapshot.records("Contact") if r["Partner_Code__c"] == "PRT-0042")


def _removal_applied(ws: api.Workspace, tmp_path: Path) -> tuple[api.Workspace, Plan, str, ApplyReport]:
    """With max_fill raised: the scan's plan (which removes Partner_Code__c), the contact holding its one value,
    and the report of applying the plan."""
    ws = _raised(ws, tmp_path)
    plan = api.scan(ws, "flaky", tmp_path / "plan.json", passes=[PASS]).result.plan
    keeper = _partner_holder(ws, plan)
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None
    return ws, plan, keeper, report


def _partner_field_id(plan: Plan) -> str:
    return next(c.record_id for c in plan.changes if c.label == "Contact.Partner_Code__c")


def test_rollback_writes_values_back_onto_a_record_edited_since_and_one_the_plan_deleted(
    ws: api.Workspace, sf: Any, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    ws = _raised(ws, tmp_path)
    planted = read_planted(sandbox.info.state_dir)["no_contact_info"]["proposed"]
    gone_id = next(i for i in planted if i.startswith("003"))
    written = "Ünï—✓ 0043 \u00a0x"  # exact bytes, not only ASCII
    sf.Contact.update(gone_id, {"Partner_Code__c": written})
    plan = api.scan(ws, "flaky", tmp_path / "plan.json", passes=[PASS, "no_contact_info"]).result.plan
    assert (Op.DELETE, "Contact", gone_id) in {(c.op, c.object, c.record_id) for c in plan.changes}
    assert "Contact.Partner_Code__c" in {c.label for c in plan.changes}
    keeper = _partner_holder(ws, plan)
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and not report.failed and not report.skipped_items
    # Edited after the apply, on another field: its stamp moves, but nobody can have written the removed field.
    sf.Contact.update(keeper, {"Title": "Edited after the apply"})

    rolled = api.rollback(ws, report.run_id, confirm=yes)
    assert rolled.report is not None and not rolled.report.failed and not rolled.report.skipped_items
    assert sf.Contact.get(keeper)["Partner_Code__c"] == "PRT-0042"
    assert sf.Contact.get(keeper)["Title"] == "Edited after the apply"
    assert sf.Contact.get(gone_id)["Partner_Code__c"] == written  # undeleted, then its value written back
    assert read_run(ws.home, report.run_id).rolled_back_by == rolled.report.run_id


def test_a_value_that_cannot_be_restored_leaves_the_run_not_rolled_back_and_the_report_says_so(
    ws: api.Workspace, sf: Any, tmp_path: Path
) -> None:
    ws, plan, keeper, report = _removal_applied(ws, tmp_path)
    assert not report.failed
    sf.Contact.delete(keeper)  # to the recycle bin: no value can be written onto it

    rolled = api.rollback(ws, report.run_id, confirm=yes)
    assert rolled.report is not None and not rolled.report.failed
    assert [(s["object"], s["id"], s["reason"]) for s in rolled.report.skipped_items] == [
        ("Contact", keeper, "missing")]
    assert "Partner_Code__c" in custom_names(sf, "Contact")
    state = read_run(ws.home, report.run_id)
    assert state.rolled_back_by is None and state.status != "rolled back"
    assert rolled.report.notes[0] == (
        f"1 value of the fields run {report.run_id} removed could not be written back (1 missing: Contact "
        f"{keeper}); run {report.run_id} is not marked rolled back: the values are in snapshot "
        f"{plan.header.source['id']}; put the records back (undelete them), then run "
        f"`crmsweep rollback {report.run_id}` again")
    # The field definitions came back under new ids: said too, with what the CRM stamped afresh.
    assert len(rolled.report.notes) == 2 and rolled.report.notes[1].startswith(
        f"{len(rolled.report.id_map['CustomField'])} records were re-created under new ids (")
    # Doing what the note says writes the value back and, with it, marks the run rolled back.
    with api.connect(ws, "flaky") as connector:  # the admin's undelete (SOAP; simple-salesforce has none)
        assert [r.ok for r in connector.undelete("Contact", [keeper])] == [True]
    again = api.rollback(ws, report.run_id, confirm=yes)
    # It re-creates nothing the first one did: no note.
    assert again.report is not None and not again.report.failed and again.report.notes == []
    assert sf.Contact.get(keeper)["Partner_Code__c"] == "PRT-0042"
    assert read_run(ws.home, report.run_id).rolled_back_by == again.report.run_id


def test_the_note_on_values_not_restored_says_where_the_records_it_does_not_name_are(
    ws: api.Workspace, sf: Any, sandbox: RunningSandbox, tmp_path: Path
) -> None:
    ws = _raised(ws, tmp_path)
    holder = next(i for i in read_planted(sandbox.info.state_dir)["no_contact_info"]["proposed"] if i.startswith("003"))
    sf.Contact.update(holder, {"Partner_Code__c": "PRT-0099"})  # a second value, on a contact no pass touches
    plan = api.scan(ws, "flaky", tmp_path / "plan.json", passes=[PASS]).result.plan
    keeper = _partner_holder(ws, plan)
    assert "Contact.Partner_Code__c" in {c.label for c in plan.changes}
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and not report.failed
    sf.Contact.delete(keeper)
    sf.Contact.delete(holder)

    rolled = api.rollback(ws, report.run_id, confirm=yes).report
    assert rolled is not None
    skipped = sorted((s["object"], s["id"], s["reason"]) for s in rolled.skipped_items)
    assert skipped == sorted([("Contact", keeper, "missing"), ("Contact", holder, "missing")])
    named = next(n for n in rolled.notes if n.startswith("2 values of the fields"))
    # The one record named, and where the other is: the rollback run's skipped items.
    assert re.search(rf"\(2 missing: Contact ({keeper}|{holder}) and 1 more, `crmsweep runs show "
                     rf"{rolled.run_id}` lists them all\); run {report.run_id} is not marked", named), named


def test_apply_skips_removing_a_field_whose_values_changed_since_the_backup(
    ws: api.Workspace, sf: Any, tmp_path: Path
) -> None:
    ws = _raised(ws, tmp_path)
    plan = api.scan(ws, "flaky", tmp_path / "plan.json", passes=[PASS]).result.plan
    keeper = _partner_holder(ws, plan)
    sf.Contact.update(keeper, {"Partner_Code__c": "PRT-0043"})  # as many filled as at the backup: only the value moved
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and not report.failed
    assert [(s["id"], s["reason"], s["detail"]) for s in report.skipped_items] == [
        (_partner_field_id(plan), "no longer qualifies",
         f"values changed since the backup on 1 of the 1 Contact records holding one (e.g. {keeper}: changed): "
         "a rollback would write back the snapshot's stale values; back up and scan again")]
    assert "Partner_Code__c" in custom_names(sf, "Contact") and "Legacy_Id__c" not in custom_names(sf, "Contact")
    assert sf.Contact.get(keeper)["Partner_Code__c"] == "PRT-0043"


def test_apply_skips_removing_a_field_whose_values_salesforce_cannot_count(
    ws: api.Workspace, sf: Any, tmp_path: Path
) -> None:
    made = sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Contact.Call_Notes__c", "Metadata": {"type": "LongTextArea", "label": "Call notes",
                                                          "length": 32768, "visibleLines": 3}})
    # New fields are held back as recent: not here, so the new one is a candidate.
    (tmp_path / "crmsweep.toml").write_text((tmp_path / "crmsweep.toml").read_text(encoding="utf-8")
                                            + "\n[protect]\nrecent_days = 0\n", encoding="utf-8")
    ws = api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home")
    plan = api.scan(ws, "flaky", tmp_path / "plan.json", passes=[PASS]).result.plan
    assert made["id"] in {c.record_id for c in plan.changes}
    some = sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]
    sf.Contact.update(some, {"Call_Notes__c": "Called after the backup: keep"})  # not countable, not filterable
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and not report.failed
    skipped = {s["id"]: s["detail"] for s in report.skipped_items}
    assert skipped == {made["id"]: "the CRM gives no count of its values (e.g. a long text, rich text or "
                       "encrypted field), so values written since the backup cannot be seen: check and remove it "
                       "by hand"}
    assert "Call_Notes__c" in custom_names(sf, "Contact")
    assert sf.Contact.get(some)["Call_Notes__c"] == "Called after the backup: keep"


def test_a_value_written_into_the_re_created_field_is_not_overwritten_and_the_report_says_so(
    ws: api.Workspace, sf: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, _plan, keeper, report = _removal_applied(ws, tmp_path)
    assert not report.failed
    real_create = SalesforceConnector.create

    def someone_writes_right_after(self: SalesforceConnector, obj: str, records: Any, **kw: Any) -> Any:
        results = real_create(self, obj, records, **kw)
        if obj == "CustomField" and "Partner_Code__c" in custom_names(sf, "Contact"):
            sf.Contact.update(keeper, {"Partner_Code__c": "NEW-0001"})  # between the re-create and the restore
        return results

    monkeypatch.setattr(SalesforceConnector, "create", someone_writes_right_after)
    rolled = api.rollback(ws, report.run_id, confirm=yes).report
    assert rolled is not None and not rolled.failed
    assert [(s["id"], s["reason"]) for s in rolled.skipped_items] == [(keeper, "value written since")]
    assert sf.Contact.get(keeper)["Partner_Code__c"] == "NEW-0001"
    assert read_run(ws.home, report.run_id).rolled_back_by is None
    assert rolled.notes[0].startswith(f"1 value of the fields run {report.run_id} removed could not be written back "
                                      f"(1 value written since: Contact {keeper})")
    assert "compare the values written since with the snapshot and keep the right ones by hand" in rolled.notes[0]


def test_a_value_restore_whose_answer_was_lost_is_settled_on_resume_and_the_run_marked(
    ws: api.Workspace, sf: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, _plan, keeper, report = _removal_applied(ws, tmp_path)
    assert not report.failed
    real_update = SalesforceConnector.update

    def lands_then_drops(self: SalesforceConnector, obj: str, records: Any) -> Any:
        real_update(self, obj, records)  # the write lands; its answer is lost
        raise ConnectorError("update may or may not have been carried out", code="OUTCOME_UNKNOWN")

    monkeypatch.setattr(SalesforceConnector, "update", lands_then_drops)
    stopped = api.rollback(ws, report.run_id, confirm=yes).report
    monkeypatch.setattr(SalesforceConnector, "update", real_update)
    assert stopped is not None and stopped.stopped
    # Stopped: no not-restored note, only what it re-created before it stopped.
    made = sum(map(len, stopped.id_map.values()))
    assert [n.split(" under new ids")[0] for n in stopped.notes] == (
        [f"{made} record{'s were' if made != 1 else ' was'} re-created"] if made else [])
    assert read_run(ws.home, report.run_id).rolled_back_by is None
    resumed = api.rollback(ws, report.run_id, confirm=yes)
    assert resumed.resumed and resumed.report is not None
    report_back = resumed.report
    assert (report_back.applied, report_back.skipped, report_back.failed) == (report_back.total, 0, 0)
    assert sf.Contact.get(keeper)["Partner_Code__c"] == "PRT-0042"
    assert read_run(ws.home, report.run_id).rolled_back_by == resumed.report.run_id


def test_a_dry_run_rollback_counts_the_value_restores_as_writes_without_reading_fields_not_there_yet(
    ws: api.Workspace, sf: Any, tmp_path: Path
) -> None:
    ws, _plan, keeper, report = _removal_applied(ws, tmp_path)
    assert not report.failed
    dry = api.rollback(ws, report.run_id, confirm=yes, dry_run=True).report
    assert dry is not None and dry.dry_run and not dry.stopped and not dry.skipped_items
    assert [(i["op"], i["object"], i["id"]) for i in dry.planned_items if i["object"] == "Contact"] == [
        ("update", "Contact", keeper)]
    assert "Partner_Code__c" not in custom_names(sf, "Contact")  # nothing was written


def test_a_rollback_of_the_rollback_removes_the_field_again_once_its_values_are_the_snapshots(
    ws: api.Workspace, sf: Any, tmp_path: Path
) -> None:
    ws, _plan, keeper, report = _removal_applied(ws, tmp_path)
    back = api.rollback(ws, report.run_id, confirm=yes).report
    assert back is not None and not back.failed and not back.skipped_items
    assert sf.Contact.get(keeper)["Partner_Code__c"] == "PRT-0042"
    again = api.rollback(ws, back.run_id, confirm=yes).report
    assert again is not None
    assert not again.failed and not again.skipped_items, again.skipped_items
    assert "Partner_Code__c" not in custom_names(sf, "Contact")
    assert read_run(ws.home, back.run_id).rolled_back_by == again.run_id


def test_a_rollback_of_the_rollback_keeps_the_field_when_a_value_was_changed_since(
    ws: api.Workspace, sf: Any, tmp_path: Path
) -> None:
    ws, _plan, keeper, report = _removal_applied(ws, tmp_path)
    back = api.rollback(ws, report.run_id, confirm=yes).report
    assert back is not None and not back.failed
    sf.Contact.update(keeper, {"Partner_Code__c": "EDIT-0001"})
    again = api.rollback(ws, back.run_id, confirm=yes).report
    assert again is not None and not again.failed
    assert {(s["object"], s["reason"]) for s in again.skipped_items} == {
        ("Contact", "drift"), ("CustomField", "no longer qualifies")}
    assert "Partner_Code__c" in custom_names(sf, "Contact")
    assert sf.Contact.get(keeper)["Partner_Code__c"] == "EDIT-0001"


def test_a_field_whose_values_lie_on_records_in_the_recycle_bin_is_not_proposed(
    ws: api.Workspace, sf: Any, tmp_path: Path
) -> None:
    """Default max_fill = 0: the snapshot's live records hold no value, but a record in the recycle bin
    does; removing the field would take it, and an undelete would bring the record back without it."""
    binned = sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"]
    sf.Contact.update(binned, {"Legacy_Id__c": "LEGACY-IN-BIN"})
    sf.Contact.delete(binned)
    result = api.scan(ws, "flaky", tmp_path / "plan.json", passes=[PASS]).result
    assert "Contact.Legacy_Id__c" not in {c.label for c in result.plan.changes}
    assert result.held_back[PASS].get(
        "holds values on records the snapshot does not hold (e.g. in the recycle bin)") == 1


def test_a_holder_binned_while_a_value_is_written_elsewhere_stops_the_removal(
    ws: api.Workspace, sf: Any, tmp_path: Path
) -> None:
    """Between scan and apply the only holder goes to the recycle bin and another contact gets a value:
    the count of values is the same unless the bin is counted too, and the new value would be lost."""
    ws = _raised(ws, tmp_path)
    plan = api.scan(ws, "flaky", tmp_path / "plan.json", passes=[PASS]).result.plan
    keeper = _partner_holder(ws, plan)
    other = next(r["Id"] for r in sf.query("SELECT Id FROM Contact LIMIT 5")["records"] if r["Id"] != keeper)
    sf.Contact.delete(keeper)
    sf.Contact.update(other, {"Partner_Code__c": "WRITTEN-AFTER-BACKUP"})
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None
    assert _partner_field_id(plan) in {i["id"] for i in report.skipped_items}
    assert "Partner_Code__c" in custom_names(sf, "Contact")
    assert sf.Contact.get(other)["Partner_Code__c"] == "WRITTEN-AFTER-BACKUP"


def test_a_rollback_of_the_rollback_keeps_the_field_when_a_value_was_written_into_it_since(
    ws: api.Workspace, sf: Any, tmp_path: Path
) -> None:
    # Red team R3 finding 3: the removal undoes a create, whose before-image has no count to compare with.
    ws, _plan, keeper, report = _removal_applied(ws, tmp_path)
    back = api.rollback(ws, report.run_id, confirm=yes).report
    assert back is not None and not back.failed and not back.skipped_items
    other = next(r["Id"] for r in sf.query("SELECT Id FROM Contact WHERE Partner_Code__c = null LIMIT 1")["records"])
    sf.Contact.update(other, {"Partner_Code__c": "NEW-AFTER-ROLLBACK"})  # the field is back: people use it

    again = api.rollback(ws, back.run_id, confirm=yes).report
    assert again is not None and not again.failed
    assert [(s["object"], s["id"], s["reason"], s["detail"]) for s in again.skipped_items] == [
        ("CustomField", _recreated_field_id(ws, back.run_id), "no longer qualifies",
         "values written since a rollback re-created the field: 1 record holds one, none of them written by that "
         "rollback: removing the field again would destroy the others; clear them by hand first if they may go")]
    assert "Partner_Code__c" in custom_names(sf, "Contact")
    assert sf.Contact.get(other)["Partner_Code__c"] == "NEW-AFTER-ROLLBACK"
    assert sf.Contact.get(keeper)["Partner_Code__c"] is None  # the rollback's own value is cleared, as planned
    assert read_run(ws.home, back.run_id).rolled_back_by is None


def _recreated_field_id(ws: api.Workspace, rollback_run: str) -> str:
    state = read_run(ws.home, rollback_run)
    return next(str(state.outcomes[i].record_id) for i in state.applied_order
                if state.plan.changes[i].op is Op.CREATE and state.plan.changes[i].object == "CustomField")


def test_a_second_rollback_leaves_out_a_value_the_first_wrote_back_and_its_owner_cleared(
    ws: api.Workspace, sf: Any, tmp_path: Path
) -> None:
    # Red team R3 finding 7: only the value the first rollback could not write is written by the second.
    ws = _raised(ws, tmp_path)
    cleared = sf.query("SELECT Id FROM Contact WHERE Partner_Code__c = null LIMIT 1")["records"][0]["Id"]
    sf.Contact.update(cleared, {"Partner_Code__c": "Y-VAL"})
    plan = api.scan(ws, "flaky", tmp_path / "plan.json", passes=[PASS]).result.plan
    keeper = _partner_holder(ws, plan)
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and not report.failed
    sf.Contact.delete(keeper)
    first = api.rollback(ws, report.run_id, confirm=yes).report
    assert first is not None and [(s["id"], s["reason"]) for s in first.skipped_items] == [(keeper, "missing")]
    assert sf.Contact.get(cleared)["Partner_Code__c"] == "Y-VAL"
    sf.Contact.update(cleared, {"Partner_Code__c": None})  # its owner clears it on purpose
    with api.connect(ws, "flaky") as connector:
        assert [r.ok for r in connector.undelete("Contact", [keeper])] == [True]

    second = api.rollback(ws, report.run_id, confirm=yes)
    assert [(c.op, c.record_id, c.after) for c in second.plan.changes] == [
        (Op.UPDATE, keeper, {"Partner_Code__c": "PRT-0042"})]
    assert second.report is not None and not second.report.failed and not second.report.skipped_items
    assert sf.Contact.get(cleared)["Partner_Code__c"] is None
    assert sf.Contact.get(keeper)["Partner_Code__c"] == "PRT-0042"
    assert read_run(ws.home, report.run_id).rolled_back_by == second.report.run_id
