"""Lists, marketing emails and campaigns on the HubSpot sandbox (real TLS): the endpoints as the SDK
and the docs call them, the connector's delete and restore (ids kept), the campaign update read back,
and a backup of the new objects. The CRM properties the passes read are checked here too."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from crmsweep.backup.snapshot_writer import take_snapshot
from crmsweep.connectors.base import Connection
from crmsweep.connectors.hubspot import HubSpotConnector
from crmsweep.connectors.retry import RetryPolicy
from crmsweep.errors import BadInput
from crmsweep.paths import Home
from crmsweep.providers.hubspot import HUBSPOT_CAPABILITIES
from crmsweep.sandbox.hubspot_seed_assets import LIST_FILTER_PROPERTIES
from crmsweep.sandbox.hubspot_values import parse_ts
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import all_pages, hs, hubspot_get, hubspot_post, hubspot_sandbox

__all__ = ["hs", "hubspot_sandbox"]  # fixtures

CAMPAIGNS = "/marketing/v3/campaigns"
NAME_PROPERTIES = ("hs_name", "hs_start_date", "hs_end_date", "hs_campaign_status")


def connect(sandbox: RunningSandbox) -> HubSpotConnector:
    info = sandbox.info
    connection = Connection(name="hs", provider="hubspot", url=info.url, token=info.token,
                            ca_file=Path(info.ca_file))
    return HubSpotConnector(connection, retry=RetryPolicy.immediate(3))


def patch(sandbox: RunningSandbox, path: str, payload: object) -> requests.Response:
    info = sandbox.info
    return requests.patch(f"{info.url}{path}", json=payload, verify=str(info.ca_file),
                          headers={"Authorization": f"Bearer {info.token}"}, timeout=30)


def campaigns(sandbox: RunningSandbox, **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after: str | None = None
    while True:
        answer = hubspot_get(sandbox, CAMPAIGNS, properties=list(NAME_PROPERTIES), limit=2,
                             **({"after": after} if after else {}))
        assert answer.status_code == 200, answer.text
        rows += answer.json()["results"]
        following = answer.json().get("paging", {}).get("next")
        if not following:
            return rows
        after = following["after"]


# --- the sandbox, as the API is documented --------------------------------------------------------


def test_lists_search_pages_by_offset_and_a_list_shows_its_filters_only_when_asked(hs: Any) -> None:
    lists = hs.crm.lists.lists_api
    first = lists.do_search({"query": "", "offset": 0, "count": 5})
    second = lists.do_search({"query": "", "offset": first.offset, "count": 5})
    assert first.has_more and first.total == 11 and len(first.lists) == 5 and second.offset == 10
    assert not {x.list_id for x in first.lists} & {x.list_id for x in second.lists}
    assert lists.get_by_id("4").list.filter_branch is None
    branch = lists.get_by_id("4", include_filters=True).list.filter_branch
    tested = [f._property for b in branch.filter_branches for f in b.filters]
    assert tested == list(LIST_FILTER_PROPERTIES["4"])
    both = lists.get_all(list_ids=["1", "4"], include_filters=True).lists
    assert sorted(x.list_id for x in both) == ["1", "4"] and all(x.filter_branch for x in both)
    from hubspot.crm.lists.exceptions import ApiException

    with pytest.raises(ApiException) as missing:
        lists.get_by_id("999")
    assert missing.value.status == 404
    with pytest.raises(ApiException) as live:
        lists.restore("1")  # a list that is not deleted cannot be restored
    assert live.value.status == 400


def test_marketing_emails_page_filter_on_archived_and_come_back_by_patch(hs: Any) -> None:
    emails = hs.marketing.emails.marketing_emails_api
    live = all_pages(emails, archived=False)
    archived = all_pages(emails, archived=True)
    assert len(live) == 14 and len(archived) == 1 and archived[0].archived
    page = emails.get_page(limit=5)
    assert len(page.results) == 5 and page.paging.next.after == "5" and page.total == 14
    sent = live[0].to.contact_ils_lists.include
    assert sent and all(hs.crm.lists.lists_api.get_by_id(i).list.list_id == i for i in sent)
    target = live[1].id
    emails.archive(target)
    assert target not in {e.id for e in all_pages(emails, archived=False)}
    assert emails.get_by_id(target, archived=True).deleted_at is not None
    emails.update(target, {"archived": False})
    back = emails.get_by_id(target)
    assert back.id == target and not back.archived and back.deleted_at is None


def test_campaigns_page_name_their_properties_and_patch_partially(hubspot_sandbox: RunningSandbox) -> None:
    rows = campaigns(hubspot_sandbox)
    assert len(rows) == 6 and all(set(r) == {"id", "properties", "createdAt", "updatedAt", "businessUnits"}
                                  for r in rows)
    bare = hubspot_get(hubspot_sandbox, CAMPAIGNS).json()["results"][0]
    assert bare["properties"] == {}  # no properties= asked: an empty map, as documented
    active = next(r for r in rows if r["properties"]["hs_campaign_status"] == "active")
    answer = patch(hubspot_sandbox, f"{CAMPAIGNS}/{active['id']}",
                   {"properties": {"hs_campaign_status": "completed", "hs_end_date": ""}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["properties"] == {"hs_campaign_status": "completed"}  # the cleared date is gone
    read = hubspot_get(hubspot_sandbox, f"{CAMPAIGNS}/{active['id']}", properties=list(NAME_PROPERTIES)).json()
    assert read["properties"]["hs_campaign_status"] == "completed" and "hs_end_date" not in read["properties"]
    assert read["updatedAt"] > active["updatedAt"]
    refused = patch(hubspot_sandbox, f"{CAMPAIGNS}/{active['id']}", {"properties": {"hs_object_id": "1"}})
    assert refused.status_code == 400 and refused.json()["category"] == "VALIDATION_ERROR"
    bad = patch(hubspot_sandbox, f"{CAMPAIGNS}/{active['id']}", {"properties": {"hs_campaign_status": "over"}})
    assert bad.status_code == 400
    assert hubspot_get(hubspot_sandbox, f"{CAMPAIGNS}/00000000-0000-4000-8000-000000000000").status_code == 404


def test_deals_close_by_stage_and_the_pipeline_says_which_stages_close(hubspot_sandbox: RunningSandbox,
                                                                         hs: Any) -> None:
    stages = hubspot_get(hubspot_sandbox, "/crm/v3/pipelines/deals").json()["results"][0]["stages"]
    assert {s["id"] for s in stages if s["metadata"]["isClosed"] == "true"} == {"closedwon", "closedlost"}
    deal = next(d for d in all_pages(hs.crm.deals.basic_api, properties=["dealstage", "hs_is_closed"])
                if d.properties["hs_is_closed"] == "false")
    hs.crm.deals.basic_api.update(deal.id, {"properties": {"dealstage": "closedlost"}})
    assert hs.crm.deals.basic_api.get_by_id(deal.id, properties=["hs_is_closed"]).properties["hs_is_closed"] == "true"
    hs.crm.deals.basic_api.update(deal.id, {"properties": {"dealstage": deal.properties["dealstage"]}})
    assert hs.crm.deals.basic_api.get_by_id(deal.id, properties=["hs_is_closed"]).properties["hs_is_closed"] == "false"


def test_the_properties_the_passes_read_are_filled_and_tickets_name_their_company(hs: Any) -> None:
    contacts = all_pages(hs.crm.contacts.basic_api, properties=["city", "state", "phone", "mobilephone"])
    assert any(c.properties["state"] == "CA" and c.properties["city"] == "San Francisco" for c in contacts)
    companies = all_pages(hs.crm.companies.basic_api, properties=["city", "state", "phone"])
    assert any(c.properties["state"] for c in companies)
    tasks = all_pages(hs.crm.objects.basic_api, object_type="tasks", properties=["hs_task_status", "hs_timestamp"])
    assert all(t.properties["hs_task_status"] and t.properties["hs_timestamp"] for t in tasks)
    tickets = [t.id for t in all_pages(hs.crm.tickets.basic_api)]
    linked = hs.crm.associations.v4.batch_api.get_page("tickets", "companies",
                                                       {"inputs": [{"id": i} for i in tickets]}).results
    assert len(linked) == len(tickets) and all(r.to for r in linked)


# --- the connector -----------------------------------------------------------------------------------


def test_a_deleted_list_is_restored_by_the_connector_with_its_id(hubspot_sandbox: RunningSandbox, hs: Any) -> None:
    assert HUBSPOT_CAPABILITIES.undeletes("lists") and not HUBSPOT_CAPABILITIES.undeletes("contacts")
    connector = connect(hubspot_sandbox)
    before = connector.read("lists", ["3"], ["name", "updatedAt"], include_deleted=True)["3"]
    assert connector.delete("lists", ["3"])[0].ok
    assert "3" not in {x.list_id for x in hs.crm.lists.lists_api.do_search({"query": "", "count": 100}).lists}
    assert connector.read("lists", ["3"], ["name"], include_deleted=False) == {}
    gone = connector.read("lists", ["3"], ["name", "updatedAt"], include_deleted=True)["3"]
    assert gone["archived"] is True and gone["updatedAt"] == before["updatedAt"]
    assert connector.undelete("lists", ["3"])[0].ok
    back = hs.crm.lists.lists_api.get_by_id("3").list
    assert back.list_id == "3" and back.name == before["name"] and back.deleted_at is None
    again = connector.undelete("lists", ["3"])[0]  # live: nothing to restore, said per record
    assert not again.ok and again.id == "3"


def test_an_archived_marketing_email_is_restored_by_the_connector_with_its_id(hubspot_sandbox: RunningSandbox,
                                                                             hs: Any) -> None:
    connector = connect(hubspot_sandbox)
    emails = hs.marketing.emails.marketing_emails_api
    target = all_pages(emails, archived=False)[2].id
    assert connector.delete("marketing_emails", [target])[0].ok
    assert connector.read("marketing_emails", [target], ["name"], include_deleted=True)[target]["archived"] is True
    assert connector.read("marketing_emails", [target], ["name"], include_deleted=False) == {}
    assert connector.undelete("marketing_emails", [target])[0].ok
    assert not emails.get_by_id(target).archived
    with pytest.raises(BadInput):
        connector.create("marketing_emails", [{"name": "x"}])


def test_a_campaign_update_is_read_back_and_patched_back(hubspot_sandbox: RunningSandbox) -> None:
    connector = connect(hubspot_sandbox)
    rows = [r for page in connector.iter_pages("campaigns", ["hs_name", "hs_campaign_status", "hs_end_date",
                                                             "updatedAt"]) for r in page]
    target = next(r for r in rows if r["hs_campaign_status"] == "in_progress")
    assert connector.update("campaigns", [{"id": target["id"], "hs_campaign_status": "completed"}])[0].ok
    read = connector.read("campaigns", [target["id"]], ["hs_campaign_status", "hs_end_date", "updatedAt"])
    assert read[target["id"]]["hs_campaign_status"] == "completed"
    assert read[target["id"]]["hs_end_date"] == target["hs_end_date"]
    assert read[target["id"]]["updatedAt"] > target["updatedAt"]
    assert connector.update("campaigns", [{"id": target["id"], "hs_campaign_status": "in_progress"}])[0].ok
    assert connector.read("campaigns", [target["id"]], ["hs_campaign_status"])[target["id"]][
        "hs_campaign_status"] == "in_progress"
    with pytest.raises(BadInput):
        connector.update("campaigns", [{"id": target["id"], "hs_object_id": "1"}])
    with pytest.raises(BadInput):
        connector.delete("campaigns", [target["id"]])


def test_a_backup_holds_the_assets_as_objects(hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path) -> None:
    import pandas as pd

    connector = connect(hubspot_sandbox)
    home = Home(tmp_path / "home")
    objects = ["lists", "list_filters", "marketing_emails", "campaigns"]
    manifest = take_snapshot(connector, home, objects=objects)
    folder = home.snapshots_dir / manifest.snapshot_id
    frames = {o: pd.read_parquet(folder / manifest.objects[o].file) for o in objects}
    assert manifest.objects["lists"].rows == 11  # the deleted list is restorable: not a row to keep
    assert manifest.objects["marketing_emails"].rows == 14
    assert manifest.objects["campaigns"].rows == 6
    filters = frames["list_filters"]
    assert sorted(zip(filters["by_id"], filters["field"], strict=True)) == sorted(
        (k, p) for k, props in LIST_FILTER_PROPERTIES.items() for p in props)
    assert set(filters["object"]) == {"contacts"} and set(filters["by_type"]) == {"list"}
    emails = frames["marketing_emails"].set_index("id")
    for email in all_pages(hs.marketing.emails.marketing_emails_api, archived=False):
        assert json.loads(emails.loc[email.id, "list_ids"]) == email.to.contact_ils_lists.include
        held = emails.loc[email.id, "campaign"]
        assert (held if isinstance(held, str) else None) == email.campaign
    assert emails["campaign"].notna().any()
    assert list(frames["lists"].columns) == ["id", "name", "processingType", "objectTypeId", "createdAt",
                                             "updatedAt", "filtersUpdatedAt", "size", "archived", "deletedAt"]
    assert set(frames["campaigns"]["hs_campaign_status"]) == {"active", "in_progress", "paused", "completed",
                                                               "planned"}


# --- planted.json --------------------------------------------------------------------------------------


def test_planted_json_names_records_the_portal_holds_and_they_fit_each_rule(hubspot_sandbox: RunningSandbox,
                                                                          hs: Any) -> None:
    state = Path(hubspot_sandbox._store.path).parent
    planted = json.loads((state / "planted.json").read_text())
    anchor = parse_ts(hubspot_sandbox._store.meta("anchor") or "")
    assert anchor is not None
    for name, entry in planted.items():
        assert {"proposed", "held"} <= set(entry), name
        assert not set(entry["proposed"]) & set(entry["held"]), name
    for name in ("no_contact_info", "bounced_emails", "orphaned_tasks", "stale_open_deals", "finished_campaigns",
                 "empty_accounts", "stale_templates", "stale_lists", "stale_contacts", "inactive_users"):
        assert len(planted[name]["proposed"]) >= 2, name
    for name in ("no_contact_info", "bounced_emails", "orphaned_tasks", "stale_open_deals", "finished_campaigns",
                 "empty_accounts", "stale_contacts"):
        assert planted[name]["held"], name

    def props(kind: str, ids: list[int], names: list[str]) -> dict[str, dict[str, Any]]:
        found = hs.crm.objects.batch_api.read(kind, {"inputs": [{"id": str(i)} for i in ids], "properties": names})
        assert len(found.results) == len(set(ids)), kind
        return {r.id: r.properties for r in found.results}

    people = props("contacts", [*planted["no_contact_info"]["proposed"], *planted["no_contact_info"]["held"]],
                   ["email", "phone", "mobilephone"])
    assert all(not any(p.get(n) for n in ("email", "phone", "mobilephone")) for p in people.values())
    near = props("contacts", planted["no_contact_info"]["near"], ["email", "phone", "mobilephone"])
    assert all(p.get("phone") or p.get("mobilephone") for p in near.values())
    bounced = props("contacts", planted["bounced_emails"]["proposed"], ["email", "hs_email_hard_bounce_reason_enum"])
    assert all(p["email"] and p["hs_email_hard_bounce_reason_enum"] for p in bounced.values())
    cut = anchor - timedelta(days=90)
    deals = props("deals", planted["stale_open_deals"]["proposed"], ["closedate", "hs_is_closed"])
    assert all(p["hs_is_closed"] == "false" and parse_ts(p["closedate"]) < cut for p in deals.values())  # type: ignore[operator]
    tasks = props("tasks", planted["orphaned_tasks"]["proposed"] + planted["orphaned_tasks"]["held"],
                  ["hs_task_status", "hs_timestamp"])
    assert all(p["hs_task_status"] != "COMPLETED" and parse_ts(p["hs_timestamp"]) < anchor - timedelta(days=365)  # type: ignore[operator]
               for p in tasks.values())
    props("companies", planted["empty_accounts"]["proposed"] + planted["empty_accounts"]["held"], ["name"])
    by_id = {c["id"]: c["properties"] for c in campaigns(hubspot_sandbox)}
    for guid in planted["finished_campaigns"]["proposed"] + planted["finished_campaigns"]["held"]:
        assert by_id[guid]["hs_campaign_status"] != "completed"
        assert by_id[guid]["hs_end_date"] < anchor.date().isoformat()
    emails = hs.marketing.emails.marketing_emails_api
    year = anchor - timedelta(days=365)
    for email_id in planted["stale_templates"]["proposed"]:
        email = emails.get_by_id(email_id)
        assert not email.archived and (email.published_at if email.is_published else email.updated_at) < year
    used = {i for e in all_pages(emails, archived=False) for i in e.to.contact_ils_lists.include}
    for list_id in planted["stale_lists"]["proposed"]:
        held = hs.crm.lists.lists_api.get_by_id(list_id).list
        assert held.deleted_at is None and held.updated_at < year and list_id not in used
    assert set(planted["stale_lists"]["held"]) & used  # an old list an email still sends to


def test_only_the_planted_pairs_are_duplicates_of_each_other() -> None:
    from collections import defaultdict
    from datetime import UTC, datetime

    from crmsweep.sandbox.hubspot_seed import generate

    data = generate(1000, 7, datetime(2026, 12, 1, 9, tzinfo=UTC))
    pairs = {frozenset(pair) for pair in data.planted["duplicates"]["pairs"]}
    rows = {kind: [o for o in data.objects if o.type == kind] for kind in ("contacts", "companies")}

    def groups(kind: str, key: Any) -> set[frozenset[str]]:
        held: dict[Any, set[str]] = defaultdict(set)
        for row in rows[kind]:
            value = key(row.properties)
            if value:
                held[value].add(str(row.id))
        return {frozenset(ids) for ids in held.values() if len(ids) > 1}

    def word(name: str | None) -> str:
        return str(name or "").split(" ")[0].lower()  # the name without its legal suffix

    found = (groups("contacts", lambda p: (p.get("firstname"), p.get("lastname"), p.get("company"))
                    if p.get("company") else None)
             | groups("contacts", lambda p: "".join(ch for ch in str(p.get("phone") or "") if ch.isdigit()))
             | groups("contacts", lambda p: p.get("email")) | groups("companies", lambda p: word(p.get("name")))
             | groups("companies", lambda p: p.get("domain")))
    assert found and found <= pairs


# --- through scan, apply and rollback ----------------------------------------------------------------

ASSET_PASS = "asset_roundtrip"


def _asset_pass(lists: list[str], emails: list[str], campaign: str) -> Any:
    from crmsweep.cleanup.passes import ObjectRead, PassContext, PassOutput, PassSpec, Proposal, propose
    from crmsweep.model import Op, Severity

    def rows(ctx: PassContext, name: str, ids: list[str]) -> list[dict[str, Any]]:
        return list(ctx.view.record_map(name, ids).values())

    def run(ctx: PassContext) -> PassOutput:
        changes = [propose(ctx, ASSET_PASS, Op.DELETE, name, row, reason="test", severity=Severity.MINOR)
                   for name, ids in (("lists", lists), ("marketing_emails", emails)) for row in rows(ctx, name, ids)]
        changes += [propose(ctx, ASSET_PASS, Op.UPDATE, "campaigns", row, after={"hs_campaign_status": "completed"},
                            reason="test", severity=Severity.MINOR) for row in rows(ctx, "campaigns", [campaign])]
        return PassOutput(changes=changes)

    return PassSpec(
        name=ASSET_PASS, summary="Deletes lists and emails, completes a campaign (a test).", order=97,
        defaults={}, run=run,
        proposes=(Proposal(Op.DELETE, objects=lambda v: ("lists", "marketing_emails")),
                  Proposal(Op.UPDATE, objects=lambda v: ("campaigns",),
                           writes=lambda v: {"hs_campaign_status": "completed"})),
        reads=lambda v: (ObjectRead("lists"), ObjectRead("marketing_emails"), ObjectRead("campaigns")),
    )


def test_deleted_lists_and_emails_come_back_with_their_ids_and_a_campaign_is_patched_back(
        hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from crmsweep import api
    from crmsweep.cleanup.passes import PASSES

    state = Path(hubspot_sandbox._store.path).parent
    planted = json.loads((state / "planted.json").read_text())
    lists, emails = planted["stale_lists"]["proposed"][:2], planted["stale_templates"]["proposed"][:2]
    campaign = planted["finished_campaigns"]["proposed"][0]
    monkeypatch.setitem(PASSES, ASSET_PASS, _asset_pass(lists, emails, campaign))
    info = hubspot_sandbox.info
    config = tmp_path / "crmsweep.toml"
    config.write_text(f'[connections.hs]\nprovider = "hubspot"\nurl = "{info.url}"\ntoken_env = "HS_ASSETS_TOKEN"\n'
                      f'ca_file = "{info.ca_file}"\n', encoding="utf-8")
    monkeypatch.setenv("HS_ASSETS_TOKEN", info.token)
    ws = api.Workspace.load(config, tmp_path / "home")
    list_api, email_api = hs.crm.lists.lists_api, hs.marketing.emails.marketing_emails_api

    def seen() -> tuple[dict[str, Any], dict[str, Any], Any]:
        held = {i: list_api.get_by_id(i).list for i in lists}
        archived = {e.id for e in all_pages(email_api, archived=True)}
        mails = {i: email_api.get_by_id(i, archived=i in archived) for i in emails}
        status = hubspot_get(hubspot_sandbox, f"{CAMPAIGNS}/{campaign}", properties="hs_campaign_status").json()
        return held, mails, status["properties"].get("hs_campaign_status")

    before_lists, before_mails, before_status = seen()
    outcome = api.scan(ws, "hs", tmp_path / "plan.json", passes=[ASSET_PASS])
    assert sorted((c.op.value, c.object, c.record_id) for c in outcome.result.plan.changes) == sorted(
        [("delete", "lists", i) for i in lists] + [("delete", "marketing_emails", i) for i in emails]
        + [("update", "campaigns", campaign)])
    report = api.apply(ws, tmp_path / "plan.json", confirm=lambda plan: True).report
    assert report is not None and (report.applied, report.failed, report.skipped) == (5, 0, 0)
    assert all(list_api.get_by_id(i).list.deleted_at for i in lists)
    assert all(email_api.get_by_id(i, archived=True).archived for i in emails)
    assert seen()[2] == "completed"

    back = api.rollback(ws, report.run_id, confirm=lambda plan: True).report
    assert back is not None and (back.applied, back.failed, back.skipped) == (5, 0, 0)
    after_lists, after_mails, after_status = seen()
    audit = {"updated_at", "deleted_at"}
    for i in lists:  # the same ids, each as it was but for the stamp the restore bumped
        assert {k: v for k, v in after_lists[i].to_dict().items() if k not in audit} == {
            k: v for k, v in before_lists[i].to_dict().items() if k not in audit} and not after_lists[i].deleted_at
    for i in emails:
        assert {k: v for k, v in after_mails[i].to_dict().items() if k not in audit} == {
            k: v for k, v in before_mails[i].to_dict().items() if k not in audit} and not after_mails[i].archived
    assert after_status == before_status != "completed"


def test_a_list_search_with_a_malformed_page_is_a_400(hubspot_sandbox: RunningSandbox) -> None:
    answer = hubspot_post(hubspot_sandbox, "/crm/v3/lists/search", {"query": "", "offset": "ten"})
    assert answer.status_code == 400 and answer.json()["category"] == "VALIDATION_ERROR"


def test_a_reset_portal_forgets_what_its_old_seed_planted(tmp_path: Path) -> None:
    from crmsweep.sandbox.planted import read_planted
    from crmsweep.sandbox.server import start_sandbox

    with start_sandbox(tmp_path / "hs", provider="hubspot", records=60, seed=3) as running:
        state = running.info.state_dir
    planted = state / "planted.json"
    planted.write_text(json.dumps({**read_planted(state), "gone_pass": {"proposed": ["1"]}}), encoding="utf-8")
    with start_sandbox(tmp_path / "hs", provider="hubspot", records=60, seed=3, reset=True):
        assert "gone_pass" not in read_planted(state)
