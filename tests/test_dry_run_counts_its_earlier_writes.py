"""A dry run says what the real run writes, also where a later batch's live check depends on an earlier
batch's write: a company (account) whose only contact the same plan removes first is empty in the real run
by the time it is checked, so the dry run must count that contact as gone too (it wrote nothing). On
HubSpot (the contact's association goes with it) and Salesforce (the contact row itself), for a scan plan
and for undoing a rollback. The CRMs are read back through their own SDKs, not our connector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crmsweep import api
from crmsweep.backup.runlog import read_run
from crmsweep.cleanup.live_check import WouldBeWritten
from crmsweep.model import ASSOCIATION_FROM_FIELD, ASSOCIATION_TO_FIELD, Change, Op, association_object
from crmsweep.providers.hubspot import HUBSPOT_CAPABILITIES, HUBSPOT_VOCABULARY
from crmsweep.providers.salesforce import SALESFORCE_CAPABILITIES, SALESFORCE_VOCABULARY
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import all_pages, hs, hubspot_cli, hubspot_sandbox
from tests.test_apply_live import CONNECTION, deleted, other_admin, sobject, yes

__all__ = ["hs", "hubspot_sandbox"]


def writes_of(home: Any, run_id: str) -> list[tuple[str, str, str]]:
    """(op, object, record id) of what run `run_id` applied, as its log says, in order."""
    state = read_run(home, run_id)
    return [(c.op.value, c.object, c.record_id) for c in (state.plan.changes[i] for i in state.applied_order)]


def planned(items: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(i["op"], i["object"], i["id"]) for i in sorted(items, key=lambda item: item["i"])]


def skips(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((i["id"], i["reason"]) for i in items)


def company_left_with_one_stale_contact(hs: Any, cli: Any, folder: Path) -> str:
    """A company on no deal whose contacts but one stale one are unlinked (through the SDK): its id."""
    first = json.loads(cli("backup", "-c", "e2e", "--json").stdout)
    probe = folder / "probe.json"
    cli("scan", "-c", "e2e", "--snapshot", first["snapshot"], "-o", str(probe), "--pass", "stale_contacts")
    stale = {c["record_id"] for c in json.loads(probe.read_text(encoding="utf-8"))["changes"]}
    assoc = hs.crm.associations.v4.basic_api
    for company in all_pages(hs.crm.objects.basic_api, object_type="companies", archived=False):
        if assoc.get_page("companies", company.id, "deals", limit=500).results:
            continue
        contacts = [str(r.to_object_id) for r in assoc.get_page("companies", company.id, "contacts", limit=500).results]
        kept = next((c for c in contacts if c in stale), None)
        if kept is not None:
            for other in contacts:
                if other != kept:
                    assoc.archive("companies", company.id, "contacts", other)
            return str(company.id)
    raise AssertionError("the sandbox has no company on no deal with a stale contact")


def scanned_with_a_company_left_one_stale_contact(
    sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> tuple[Any, str, Path]:
    """The CLI, that company, and a plan of stale_contacts then empty_accounts over a fresh backup."""
    cli = hubspot_cli(sandbox.info, tmp_path)
    company = company_left_with_one_stale_contact(hs, cli, tmp_path)
    backup = json.loads(cli("backup", "-c", "e2e", "--json").stdout)
    plan_file = tmp_path / "plan.json"
    cli("scan", "-c", "e2e", "--snapshot", backup["snapshot"], "-o", str(plan_file),
        "--pass", "stale_contacts", "--pass", "empty_accounts")
    return cli, company, plan_file


def test_a_hubspot_dry_run_counts_the_contacts_it_would_archive_first_as_gone_from_their_company(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    cli, company, plan_file = scanned_with_a_company_left_one_stale_contact(hubspot_sandbox, hs, tmp_path)
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    assert company in {c["record_id"] for c in plan["changes"] if c["object"] == "companies"}

    dry = json.loads(cli("apply", str(plan_file), "--dry-run", "--json").stdout)
    real = json.loads(cli("apply", str(plan_file), "--yes", "--json").stdout)

    assert (dry["would_apply"], dry["would_skip"]) == (real["applied"], real["skipped"]) == (len(plan["changes"]), 0)
    assert skips(dry["would_skip_items"]) == skips(real["skipped_items"])
    home = api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home").home
    assert planned(dry["would_write"]) == writes_of(home, real["run"])
    archived = {r.id for r in all_pages(hs.crm.objects.basic_api, object_type="companies", archived=True)}
    assert company in archived


def test_a_dry_run_undoing_a_hubspot_rollback_counts_the_copies_it_would_archive_first_as_gone(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    """The rollback re-created the contact and linked it to the re-created company: undoing it archives the
    copy before it judges the company, which has no contact left by then."""
    cli, company, plan_file = scanned_with_a_company_left_one_stale_contact(hubspot_sandbox, hs, tmp_path)
    applied = json.loads(cli("apply", str(plan_file), "--yes", "--json").stdout)
    assert applied["failed"] == 0 and applied["skipped"] == 0
    rolled = json.loads(cli("rollback", applied["run"], "--yes", "--json").stdout)
    assert rolled["failed"] == 0
    copy = rolled["id_map"].get("companies", {}).get(company, company)

    dry = json.loads(cli("rollback", rolled["run"], "--dry-run", "--json").stdout)
    real = json.loads(cli("rollback", rolled["run"], "--yes", "--json").stdout)

    assert (dry["would_apply"], dry["would_skip"]) == (real["applied"], real["skipped"])
    assert real["skipped"] == 0 and real["failed"] == 0
    assert skips(dry["would_skip_items"]) == skips(real["skipped_items"])
    home = api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home").home
    assert planned(dry["would_write"]) == writes_of(home, real["run"])
    archived = {r.id for r in all_pages(hs.crm.objects.basic_api, object_type="companies", archived=True)}
    assert copy in archived


def test_a_salesforce_dry_run_counts_the_contacts_it_would_delete_first_as_gone_from_their_account(
    sandbox: RunningSandbox, ws: api.Workspace, tmp_path: Path
) -> None:
    sf = other_admin(sandbox)
    probe = api.scan(ws, CONNECTION, tmp_path / "probe.json", passes=["stale_contacts"]).result.plan
    stale = {c.record_id for c in probe.changes if c.object == "Contact"}
    busy = {r["AccountId"] for obj in ("Opportunity", "Case")
            for r in sf.query_all(f"SELECT AccountId FROM {obj} WHERE AccountId != null")["records"]}
    contacts = sf.query_all("SELECT Id, AccountId FROM Contact WHERE AccountId != null")["records"]
    account, kept = next((c["AccountId"], c["Id"]) for c in contacts if c["Id"] in stale and c["AccountId"] not in busy)
    for other in contacts:
        if other["AccountId"] == account and other["Id"] != kept:
            sobject(sf, "Contact").update(other["Id"], {"AccountId": None})
    plan_path = tmp_path / "plan.json"
    plan = api.scan(ws, CONNECTION, plan_path, passes=["stale_contacts", "empty_accounts"]).result.plan
    assert account in {c.record_id for c in plan.changes if c.object == "Account"}

    dry = api.apply(ws, plan_path, confirm=yes, dry_run=True).report
    real = api.apply(ws, plan_path, confirm=yes).report

    assert dry is not None and real is not None and real.failed == 0
    assert (dry.applied, dry.skipped) == (real.applied, real.skipped)
    assert skips(dry.skipped_items) == skips(real.skipped_items)
    assert planned(dry.planned_items) == writes_of(ws.home, real.run_id)
    assert deleted(ws, "Account", [account]) == {account: True}


def written(op: Op, obj: str, record_id: str, after: dict[str, Any] | None = None) -> Change:
    return Change(op=op, object=obj, record_id=record_id, before={}, after=after or {}, reason="", pass_name="p")


def test_a_removal_laid_drops_the_record_and_the_links_at_either_end_that_name_it() -> None:
    laid = WouldBeWritten(HUBSPOT_VOCABULARY, HUBSPOT_CAPABILITIES.association_objects)
    laid.lay([written(Op.ARCHIVE, "contacts", "256")])
    to_contacts = association_object("companies", "contacts")
    links = [{ASSOCIATION_FROM_FIELD: "7", ASSOCIATION_TO_FIELD: "256"},
             {ASSOCIATION_FROM_FIELD: "7", ASSOCIATION_TO_FIELD: "257"}]
    assert laid.related(to_contacts, ASSOCIATION_FROM_FIELD, {"7"}, links) == links[1:]
    from_contacts = association_object("contacts", "companies")
    back = [{ASSOCIATION_FROM_FIELD: "256", ASSOCIATION_TO_FIELD: "7"}]
    assert laid.related(from_contacts, ASSOCIATION_TO_FIELD, {"7"}, back) == []
    assert laid.related("contacts", "id", {"256", "257"}, [{"id": "256"}, {"id": "257"}]) == [{"id": "257"}]


def test_a_write_laid_reads_as_written_and_a_record_it_moves_off_the_match_is_left_out() -> None:
    laid = WouldBeWritten(SALESFORCE_VOCABULARY, SALESFORCE_CAPABILITIES.association_objects)
    account, other = "001000000000001AAA", "001000000000002AAA"
    # Planned in one id form, read back in the other: the same record.
    laid.lay([written(Op.UPDATE, "Contact", "003000000000001", {"AccountId": other}),
              written(Op.UPDATE, "Contact", "003000000000002AAA", {"Title": "Kept"})])
    rows = [{"Id": "003000000000001AAA", "AccountId": account}, {"Id": "003000000000002AAA", "AccountId": account}]
    key = SALESFORCE_VOCABULARY.id_key
    assert laid.related("Contact", "AccountId", {key(account)}, rows) == [{**rows[1], "Title": "Kept"}]
    assert laid.moved_in("Contact", "AccountId", {key(other)}) == ["003000000000001"]
    assert laid.record("Contact", {"Id": "003000000000002AAA", "Title": "Old"})["Title"] == "Kept"
