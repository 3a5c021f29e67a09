"""unused_custom_fields on HubSpot: the sandbox's property and form endpoints through the real SDK, the
pass's exact proposals on the default seed (planted.json), what it holds back, and the round trip:
backup, scan, apply (properties archived, values gone), rollback (definitions back, values identical).

All against the HubSpot sandbox (seed 21, 250 contacts).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from hubspot.crm.properties import PropertyCreate
from hubspot.crm.properties.exceptions import ApiException

from crmsweep import api, providers
from crmsweep.backup.runlog import read_run
from crmsweep.backup.snapshot import open_snapshot
from crmsweep.cleanup.plan_checks import check_plan
from crmsweep.cleanup.preview import change_line
from crmsweep.connectors.hubspot_properties import PROPERTY_FIELDS, USE_FIELDS
from crmsweep.errors import SafetyRefusal
from crmsweep.model import Change, Op, Plan
from crmsweep.sandbox.planted import read_planted
from crmsweep.sandbox.server import RunningSandbox
from tests.fake_connector import spec
from tests.hubspot_fixtures import all_pages, hs, hubspot_sandbox
from tests.pass_views import HS, audit, run_one, std, view
from tests.test_passes_hubspot import workspace, yes

__all__ = ["hs", "hubspot_sandbox"]

PASS = "unused_custom_fields"


def post(sandbox: RunningSandbox, path: str, body: object) -> requests.Response:
    info = sandbox.info
    return requests.post(f"{info.url}{path}", json=body, verify=str(info.ca_file),
                         headers={"Authorization": f"Bearer {info.token}"}, timeout=30)


def names(hs: Any, object_type: str, *, archived: bool = False) -> set[str]:
    return {p.name for p in hs.crm.properties.core_api.get_all(object_type, archived=archived).results}


# --- the sandbox, through the SDK ----------------------------------------------------------------


def test_property_archive_leaves_it_archived_without_values_and_refuses_what_hubspot_refuses(
    hubspot_sandbox: RunningSandbox, hs: Any
) -> None:
    core = hs.crm.properties.core_api
    core.create("contacts", PropertyCreate(name="shoe_size", label="Shoe size", type="string",
                                           field_type="text", group_name="contactinformation"))
    contact = hs.crm.contacts.basic_api.create({"properties": {"email": "feet@example.org", "shoe_size": "44"}})
    stamp = hs.crm.contacts.basic_api.get_by_id(contact.id).updated_at
    core.archive("contacts", "shoe_size")
    assert "shoe_size" not in names(hs, "contacts") and "shoe_size" in names(hs, "contacts", archived=True)
    read = hs.crm.contacts.basic_api.get_by_id(contact.id, properties=["shoe_size"])
    assert "shoe_size" not in read.properties and read.updated_at == stamp  # a schema change, not a write
    with pytest.raises(ApiException) as refused:
        core.archive("contacts", "crm_sync_lock")  # modificationMetadata.archivable is false
    assert refused.value.status == 400 and "not archivable" in json.loads(refused.value.body)["message"]
    with pytest.raises(ApiException) as defined:
        core.archive("contacts", "email")
    assert defined.value.status == 400
    # The beta restore brings the definition back under its name; the values do not come with it.
    answer = post(hubspot_sandbox, "/crm/schemas/2027-03-beta/objects/0-1/properties/batch/restore",
                  {"inputs": [{"name": "shoe_size"}, {"name": "email"}]})
    assert answer.status_code == 207
    assert [r["name"] for r in answer.json()["results"]] == ["shoe_size"]
    assert answer.json()["errors"][0]["context"] == {"names": ["email"]}
    assert "shoe_size" in names(hs, "contacts")
    assert hs.crm.contacts.basic_api.get_by_id(contact.id, properties=["shoe_size"]).properties["shoe_size"] is None


def test_forms_are_paged_and_name_the_properties_they_ask_for(hubspot_sandbox: RunningSandbox) -> None:
    info = hubspot_sandbox.info
    seen, after = [], None
    while True:
        answer = requests.get(f"{info.url}/marketing/v3/forms/", params={"limit": 2, **({"after": after} if after
                              else {})}, verify=str(info.ca_file),
                              headers={"Authorization": f"Bearer {info.token}"}, timeout=30)
        assert answer.status_code == 200
        seen += answer.json()["results"]
        after = answer.json().get("paging", {}).get("next", {}).get("after")
        if not after:
            break
    assert [f["name"] for f in seen] == ["Contact us", "Webinar sign-up", "Newsletter"]
    webinar = seen[1]["fieldGroups"][0]["fields"]
    assert [(f["objectTypeId"], f["name"]) for f in webinar] == [
        ("0-1", "email"), ("0-1", "firstname"), ("0-1", "webinar_topic"), ("0-1", "preferred_language")]


# --- the pass on the seed ------------------------------------------------------------------------


def test_pass_proposes_exactly_the_planted_properties_and_holds_back_the_protected(
    hubspot_sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    planted = read_planted(hubspot_sandbox.info.state_dir)[PASS]
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch)
    result = api.scan(ws, "hs", tmp_path / "plan.json", passes=[PASS]).result
    changes = [c for c in result.plan.changes if c.pass_name == PASS]
    assert sorted(c.record_id for c in changes) == planted["proposed"] == [
        "companies.legacy_erp_id", "companies.sic_code_2015", "contacts.legacy_fax_number",
        "contacts.old_region_code", "contacts.trade_show_2019", "deals.old_forecast_category"]
    assert {(c.op, c.object) for c in changes} == {(Op.ARCHIVE, "properties")}
    assert planted["held"] == ["contacts.crm_sync_lock", "contacts.new_campaign_code", "contacts.webinar_topic"]
    assert result.held_back[PASS] == {
        "HubSpot does not let it be archived (modificationMetadata.archivable is false)": 1,
        "created in the last 30 days": 1, "referenced": 1}
    fax = next(c for c in changes if c.record_id == "contacts.legacy_fax_number")
    assert fax.label == "Fax (legacy import) <contacts.legacy_fax_number>"
    assert fax.reason == ("unused: filled on 0 of 250 contacts records (0.0%), never written, "
                          "referenced by nothing in form_fields, list_filters; confidence high")
    notes = result.plan.header.notes
    assert f"{PASS}: contacts.webinar_topic is kept: used by form Webinar sign-up" in notes
    assert any(n.startswith(f"{PASS}: uses checked: forms") for n in notes)
    # partner_code, filled on one contact, is a near miss at the default max_fill of 0.
    assert "contacts.partner_code" not in {c.record_id for c in changes}


def test_apply_time_recheck_skips_a_property_filled_since_the_backup(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch)
    api.scan(ws, "hs", tmp_path / "plan.json", passes=[PASS])
    some = all_pages(hs.crm.contacts.basic_api, archived=False)[0]
    hs.crm.contacts.basic_api.update(some.id, {"properties": {"trade_show_2019": "BADGE-7"}})
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None
    skipped = {s["id"]: s["detail"] for s in report.skipped_items}
    assert skipped == {"contacts.trade_show_2019": "values written since the backup: 1 records hold one, 0 did"}
    assert "trade_show_2019" in names(hs, "contacts") and "legacy_fax_number" not in names(hs, "contacts")


# --- the round trip --------------------------------------------------------------------------------


def test_removed_filled_property_comes_back_with_every_value_identical_after_rollback(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch, f"[passes.{PASS}]\nmax_fill = 0.5\ndays = 0\n")
    outcome = api.scan(ws, "hs", tmp_path / "plan.json", passes=[PASS])
    removed = sorted(c.record_id for c in outcome.result.plan.changes)
    # Raised max_fill: the filled ones go too (partner_code on one contact, customer_tier on many).
    assert {"contacts.partner_code", "contacts.customer_tier", "contacts.legacy_fax_number"} <= set(removed)
    snapshot = open_snapshot(ws.home, outcome.result.plan.header.source["id"])
    before = {r["id"]: r for r in snapshot.records("contacts")}
    filled = {i: (r["partner_code"], r["customer_tier"]) for i, r in before.items()
              if r["partner_code"] is not None or r["customer_tier"] is not None}
    assert len(filled) > 50

    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and not report.failed
    assert not {"partner_code", "customer_tier"} & names(hs, "contacts")

    rolled = api.rollback(ws, report.run_id, confirm=yes)
    assert rolled.report is not None and not rolled.report.failed and not rolled.report.skipped_items
    creates = [c for c in rolled.plan.changes if c.op is Op.CREATE]
    assert [c.object for c in rolled.plan.changes[: len(creates)]] == ["properties"] * len(removed)
    assert {"partner_code", "customer_tier", "legacy_fax_number"} <= names(hs, "contacts")
    live = {r.id: r.properties for r in all_pages(hs.crm.contacts.basic_api, archived=False,
                                                  properties=["partner_code", "customer_tier"])}
    assert {i: (live[i]["partner_code"], live[i]["customer_tier"]) for i in filled} == filled
    assert not [i for i, p in live.items() if i not in filled and (p["partner_code"] or p["customer_tier"])]
    definition = json.loads(next(r for r in snapshot.records("properties")
                                 if r["id"] == "contacts.customer_tier")["definition"])
    back = hs.crm.properties.core_api.get_by_name("contacts", "customer_tier")
    assert [o.value for o in back.options] == [o["value"] for o in definition["options"]]
    assert (back.label, back.type, back.group_name) == (definition["label"], definition["type"],
                                                        definition["groupName"])


def test_rollback_plan_checks_refuse_a_forged_value_restore(
    hubspot_sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch, f"[passes.{PASS}]\nmax_fill = 0.01\ndays = 0\n")
    api.scan(ws, "hs", tmp_path / "plan.json", passes=[PASS])
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None
    with api.connect(ws, "hs") as connector:
        plan = api.rollback_plan(ws, report.run_id, connector)
        restore = next(c for c in plan.changes if c.op is Op.UPDATE and c.object == "contacts")
        assert restore.after == {"partner_code": "PRT-0042"} and restore.before["partner_code"] is None
        check_plan(plan, connector, ws.home)  # the plan as built passes
        forged_value = _with(plan, restore, Change.from_dict({**restore.to_dict(), "after": {"partner_code": "X"}}))
        with pytest.raises(SafetyRefusal, match="partner_code differs"):
            check_plan(forged_value, connector, ws.home)
        other = Change.from_dict({**restore.to_dict(), "after": {"customer_tier": "gold"},
                                  "before": {**restore.before, "customer_tier": None}})
        with pytest.raises(SafetyRefusal, match="contacts 104: no applied change of the run is undone by it"):
            check_plan(_with(plan, restore, other), connector, ws.home)
        # Shaped as a value restore (no stamp to check, only the fields it writes, empty): still rebuilt.
        shaped = Change.from_dict({**restore.to_dict(), "after": {"customer_tier": "gold"},
                                   "before": {"id": restore.record_id, "customer_tier": None}})
        with pytest.raises(SafetyRefusal, match="it writes customer_tier, which undoing the applied change does not"):
            check_plan(_with(plan, restore, shaped), connector, ws.home)
        elsewhere = Change.from_dict({**restore.to_dict(), "record_id": "101", "before": {"id": "101",
                                                                                          "partner_code": None}})
        with pytest.raises(SafetyRefusal, match="contacts 101: no applied change of the run is undone by it"):
            check_plan(_with(plan, restore, elsewhere), connector, ws.home)
        # A second restore of the same record (one as the undo of a record's change would be keyed) is refused.
        with pytest.raises(SafetyRefusal, match="undone twice"):
            check_plan(Plan.build(plan.header, [*plan.changes, restore]), connector, ws.home)


def _with(plan: Plan, old: Change, new: Change) -> Plan:
    return Plan.build(plan.header, [new if c is old else c for c in plan.changes])


# --- values removed with a property: every one back, or the run is not called rolled back (issue 7) --

RAISED = f"[passes.{PASS}]\nmax_fill = 0.01\ndays = 0\n"


def _partner_holder(ws: Any, plan: Plan) -> str:
    snapshot = open_snapshot(ws.home, plan.header.source["id"])
    return next(str(r["id"]) for r in snapshot.records("contacts") if r["partner_code"] == "PRT-0042")


def _partner_code(hs: Any, contact_id: str) -> Any:
    return hs.crm.contacts.basic_api.get_by_id(contact_id, properties=["partner_code"]).properties["partner_code"]


def test_rollback_writes_values_back_onto_a_contact_edited_since_and_one_the_plan_removed(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch, RAISED)
    gone_id = read_planted(hubspot_sandbox.info.state_dir)["no_contact_info"]["proposed"][0]
    written = "Ünï—✓ 0043 \u00a0x"
    hs.crm.contacts.basic_api.update(gone_id, {"properties": {"partner_code": written}})
    plan = api.scan(ws, "hs", tmp_path / "plan.json", passes=[PASS, "no_contact_info"]).result.plan
    assert gone_id in {c.record_id for c in plan.changes if c.object == "contacts"}
    assert "contacts.partner_code" in {c.record_id for c in plan.changes}
    keeper = _partner_holder(ws, plan)
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and not report.failed and not report.skipped_items
    hs.crm.contacts.basic_api.update(keeper, {"properties": {"jobtitle": "Edited after the apply"}})

    rolled = api.rollback(ws, report.run_id, confirm=yes)
    assert rolled.report is not None and not rolled.report.failed and not rolled.report.skipped_items
    assert _partner_code(hs, keeper) == "PRT-0042"
    back = read_run(ws.home, rolled.report.run_id).id_map.get("contacts", {}).get(gone_id, gone_id)
    assert _partner_code(hs, back) == written
    assert read_run(ws.home, report.run_id).rolled_back_by == rolled.report.run_id


def test_a_value_that_cannot_be_restored_leaves_the_hubspot_run_not_rolled_back(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch, RAISED)
    plan = api.scan(ws, "hs", tmp_path / "plan.json", passes=[PASS]).result.plan
    keeper = _partner_holder(ws, plan)
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and not report.failed
    hs.crm.contacts.basic_api.archive(keeper)

    shown: list[Plan] = []

    def show(plan: Plan) -> bool:
        shown.append(plan)
        return True

    rolled = api.rollback(ws, report.run_id, confirm=show)
    assert rolled.report is not None and not rolled.report.failed
    assert [(s["object"], s["id"], s["reason"]) for s in rolled.report.skipped_items] == [
        ("contacts", keeper, "missing")]
    # The plan, as preview shows it, says so before the writes too: the properties keep their ids.
    notes = shown[0].header.notes
    restores = sum(1 for c in shown[0].changes if c.object == "properties")
    assert restores and notes[0].endswith(f"ids are kept ({restores} restore, 1 update)"), notes
    # And each line of the preview says the same: restored under its name, not given a new id.
    vocabulary = providers.get("hubspot").vocabulary
    lines = [change_line(c, vocabulary) for c in shown[0].changes if c.object == "properties"]
    assert all("  restore (id kept) with " in line and "new id" not in line for line in lines), lines
    assert not any("re-created under new ids" in n for n in notes), notes
    assert "partner_code" in names(hs, "contacts")
    assert read_run(ws.home, report.run_id).rolled_back_by is None
    # The properties came back under their own names (the id map maps each to itself), their created dates
    # kept: no "re-created under new ids" note, which would tell the admin the next scan holds them back.
    properties = rolled.report.id_map["properties"]
    assert properties and all(old == new for old, new in properties.items())
    assert len(rolled.report.notes) == 1 and "re-created under new ids" not in rolled.report.notes[0]
    assert rolled.report.notes[0].startswith(
        f"1 value of the fields run {report.run_id} removed could not be written back (1 missing: contacts {keeper})")
    # crmsweep cannot undelete a HubSpot contact (its capabilities say so): the admin is told what they can do.
    how = "restore them in HubSpot's UI (its recycle bin) within 90 days of their deletion"
    assert [s["detail"] for s in rolled.report.skipped_items] == [
        f"it is deleted: put the record back ({how}), then roll back again to write its values"]
    todo = f"; put the records back ({how}), then run `crmsweep rollback {report.run_id}` again"
    assert todo in rolled.report.notes[0]
    assert "undelete" not in rolled.report.notes[0]


def test_apply_skips_archiving_a_property_whose_values_changed_since_the_backup(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch, RAISED)
    plan = api.scan(ws, "hs", tmp_path / "plan.json", passes=[PASS]).result.plan
    keeper = _partner_holder(ws, plan)
    hs.crm.contacts.basic_api.update(keeper, {"properties": {"partner_code": "PRT-0043"}})
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and not report.failed
    assert [(s["id"], s["detail"]) for s in report.skipped_items] == [
        ("contacts.partner_code",
         f"values changed since the backup on 1 of the 1 contacts records holding one (e.g. {keeper}: changed): "
         "a rollback would write back the snapshot's stale values; back up and scan again")]
    assert "partner_code" in names(hs, "contacts") and "legacy_fax_number" not in names(hs, "contacts")
    assert _partner_code(hs, keeper) == "PRT-0043"


def _three_said_no(hs: Any) -> list[str]:
    """A checkbox property answered "no" (false) on three contacts: HubSpot's checkboxes can also be empty,
    so false is an answer."""
    hs.crm.properties.core_api.create("contacts", PropertyCreate(
        name="gdpr_consent", label="GDPR consent", type="bool", field_type="booleancheckbox",
        group_name="contactinformation",
        options=[{"label": "Yes", "value": "true"}, {"label": "No", "value": "false"}]))
    ids = [c.id for c in all_pages(hs.crm.contacts.basic_api, archived=False)][:3]
    for contact_id in ids:
        hs.crm.contacts.basic_api.update(contact_id, {"properties": {"gdpr_consent": "false"}})
    return ids


def _consent(hs: Any, ids: list[str]) -> dict[str, Any]:
    return {i: hs.crm.contacts.basic_api.get_by_id(i, properties=["gdpr_consent"]).properties.get("gdpr_consent")
            for i in ids}


def test_a_checkbox_answered_no_is_filled_and_comes_back_as_no(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = _three_said_no(hs)
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch, "[protect]\nrecent_days = 0\n")  # max_fill = 0
    plan = api.scan(ws, "hs", tmp_path / "plan.json", passes=[PASS]).result.plan
    assert "contacts.gdpr_consent" not in {c.record_id for c in plan.changes}  # filled on 3: not unused

    raised = workspace(hubspot_sandbox, tmp_path, monkeypatch,
                       f"[protect]\nrecent_days = 0\n\n[passes.{PASS}]\nmax_fill = 0.02\ndays = 0\n")
    plan = api.scan(raised, "hs", tmp_path / "plan2.json", passes=[PASS]).result.plan
    change = next(c for c in plan.changes if c.record_id == "contacts.gdpr_consent")
    assert "filled on 3 of" in change.reason
    report = api.apply(raised, tmp_path / "plan2.json", confirm=yes).report
    assert report is not None and not report.failed
    rolled = api.rollback(raised, report.run_id, confirm=yes).report
    assert rolled is not None and not rolled.failed and not rolled.skipped_items
    assert _consent(hs, ids) == dict.fromkeys(ids, "false")
    assert read_run(raised.home, report.run_id).rolled_back_by == rolled.run_id


def _without_partner_code(hs: Any, but: str) -> str:
    return next(str(c.id) for c in all_pages(hs.crm.contacts.basic_api, archived=False, properties=["partner_code"])
                if c.id != but and not c.properties.get("partner_code"))


def test_a_rollback_of_the_rollback_keeps_the_property_when_a_value_was_written_into_it_since(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Red team R3 finding 3: the archive undoes a create, whose before-image has no count to compare with.
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch, RAISED)
    plan = api.scan(ws, "hs", tmp_path / "plan.json", passes=[PASS]).result.plan
    keeper = _partner_holder(ws, plan)
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None
    back = api.rollback(ws, report.run_id, confirm=yes).report
    assert back is not None and not back.failed and not back.skipped_items
    other = _without_partner_code(hs, keeper)
    hs.crm.contacts.basic_api.update(other, {"properties": {"partner_code": "NEW-AFTER-ROLLBACK"}})

    again = api.rollback(ws, back.run_id, confirm=yes).report
    assert again is not None and not again.failed
    assert [(s["id"], s["reason"], s["detail"]) for s in again.skipped_items] == [
        ("contacts.partner_code", "no longer qualifies",
         "values written since a rollback re-created the field: 1 record holds one, none of them written by that "
         "rollback: removing the field again would destroy the others; clear them by hand first if they may go")]
    assert "partner_code" in names(hs, "contacts")
    assert not {"legacy_fax_number", "old_region_code"} & names(hs, "contacts")  # the unfilled ones go again
    assert _partner_code(hs, other) == "NEW-AFTER-ROLLBACK"
    assert read_run(ws.home, back.run_id).rolled_back_by is None


def test_a_second_hubspot_rollback_leaves_out_a_value_the_first_wrote_back_and_its_owner_cleared(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Red team R3 finding 7, where the holder the first rollback missed stays archived.
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch, RAISED)
    plan0 = api.scan(ws, "hs", tmp_path / "plan0.json", passes=[PASS]).result.plan
    cleared = _without_partner_code(hs, _partner_holder(ws, plan0))
    hs.crm.contacts.basic_api.update(cleared, {"properties": {"partner_code": "Y-VAL"}})
    plan = api.scan(ws, "hs", tmp_path / "plan.json", passes=[PASS]).result.plan
    keeper = _partner_holder(ws, plan)
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and not report.failed
    hs.crm.contacts.basic_api.archive(keeper)
    first = api.rollback(ws, report.run_id, confirm=yes).report
    assert first is not None and [(s["id"], s["reason"]) for s in first.skipped_items] == [(keeper, "missing")]
    assert _partner_code(hs, cleared) == "Y-VAL"
    hs.crm.contacts.basic_api.update(cleared, {"properties": {"partner_code": ""}})  # its owner clears it

    second = api.rollback(ws, report.run_id, confirm=yes)
    assert [(c.record_id, c.after) for c in second.plan.changes] == [(keeper, {"partner_code": "PRT-0042"})]
    assert second.report is not None and [(s["id"], s["reason"]) for s in second.report.skipped_items] == [
        (keeper, "missing")]
    assert not _partner_code(hs, cleared)
    assert read_run(ws.home, report.run_id).rolled_back_by is None


def test_a_use_without_a_type_or_name_is_told_without_nan() -> None:
    # A form the API gives without a name is kept with an empty by_name; an empty text cell reads NaN in a
    # frame, which is truthy: the note said "used by form nan", and a use naming no property counted.
    props = [{"id": f"contacts.{name}", "objectType": "contacts", "name": name, "hubspotDefined": False,
              "archivable": True, "readOnlyValue": False, "calculated": False, "filled": 0,
              "createdAt": "2020-01-01T00:00:00.000Z", "updatedAt": "2020-01-01T00:00:00.000Z"}
             for name in ("x_custom", "y_custom")]
    uses = [{"id": "u1", "object": "contacts", "field": "x_custom", "by_type": None, "by_id": "f1", "by_name": None},
            {"id": "u2", "object": "contacts", "field": "y_custom", "by_type": "form", "by_id": "f2", "by_name": None},
            {"id": "u3", "object": None, "field": None, "by_type": "form", "by_id": "f3", "by_name": "Empty"}]
    specs = {"properties": PROPERTY_FIELDS, "form_fields": USE_FIELDS,
             "contacts": std(HS, spec("x_custom"), spec("y_custom"))}
    out = run_one(PASS, view(HS, specs, {"properties": props, "form_fields": uses,
                                         "contacts": [{HS.id_field: "101", **audit(HS, 1)}]}), HS)
    kept = sorted(n for n in out.notes if "is kept" in n)
    assert kept == ["contacts.x_custom is kept: used by use", "contacts.y_custom is kept: used by form"]
    assert out.changes == []
