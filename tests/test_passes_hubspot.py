"""The existing passes on HubSpot (issue 6, item 7): what they propose where the CRM has no undelete
and cannot deactivate users through its API, how their plans are checked, and their live re-checks.

All against the HubSpot sandbox (seed 21, 250 contacts: 50 stale, 2 of them on open deals; owners
71000007 and 71000008 deactivated and still owning records and open tasks).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from crmsweep import api
from crmsweep.cleanup.provenance import scan_plan_problems
from crmsweep.errors import BadInput
from crmsweep.model import Op, Plan
from crmsweep.providers.hubspot import HUBSPOT_VOCABULARY
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import all_pages, hs, hubspot_sandbox

__all__ = ["hs", "hubspot_sandbox"]

TOKEN_ENV = "PASSES_HUBSPOT_TOKEN"
HEIR = "71000001"  # an active owner of the seed
DEPARTED = {"71000007", "71000008"}


def workspace(sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: str = "") -> Any:
    info = sandbox.info
    config = tmp_path / "crmsweep.toml"
    config.write_text(
        '[connections.hs]\nprovider = "hubspot"\n'
        f'url = "{info.url}"\ntoken_env = "{TOKEN_ENV}"\nca_file = "{info.ca_file}"\n\n{extra}',
        encoding="utf-8",
    )
    monkeypatch.setenv(TOKEN_ENV, info.token)
    return api.Workspace.load(config, tmp_path / "home")


def scan(ws: Any, tmp_path: Path, name: str = "plan.json") -> tuple[api.ScanOutcome, Path]:
    # The two passes these tests are about; every pass on the seeded portal: tests/test_planted_passes.py.
    path = tmp_path / name
    return api.scan(ws, "hs", path, passes=("stale_contacts", "inactive_users")), path


def yes(plan: Plan) -> bool:
    return True


def test_stale_contacts_archive_on_hubspot_and_spare_people_on_open_deals(
    hubspot_sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch)
    outcome, _ = scan(ws, tmp_path)
    result = outcome.result
    stale = [c for c in result.plan.changes if c.pass_name == "stale_contacts"]
    assert {c.op for c in stale} == {Op.ARCHIVE} and {c.object for c in stale} == {"contacts"}
    assert len(stale) == 48 and result.held_back["stale_contacts"] == {"on an open deal": 2}
    # Without reassign_to, inactive_users cannot do anything on a CRM that cannot deactivate: it says so.
    assert result.skipped["inactive_users"].startswith("this CRM cannot deactivate users through its API; "
                                                       "set [passes.inactive_users] reassign_to")
    assert not [c for c in result.plan.changes if c.pass_name == "inactive_users"]


def test_inactive_users_hands_deactivated_owners_records_and_open_tasks_to_the_configured_owner(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch, f'[passes.inactive_users]\nreassign_to = "{HEIR}"\n')
    outcome, _ = scan(ws, tmp_path)
    handed = [c for c in outcome.result.plan.changes if c.pass_name == "inactive_users"]
    claimed = {c.record_id for c in outcome.result.plan.changes if c.pass_name == "stale_contacts"}
    expected: set[tuple[str, str]] = set()
    for obj in ("contacts", "companies", "deals", "tickets", "tasks"):
        for r in all_pages(hs.crm.objects.basic_api, object_type=obj, archived=False,
                           properties=["hubspot_owner_id", "hs_task_status", "createdate", "hs_createdate"]):
            if r.properties.get("hubspot_owner_id") not in DEPARTED:
                continue
            if obj == "tasks" and r.properties.get("hs_task_status") == "COMPLETED":
                continue  # done tasks stay with who did them
            if obj == "contacts" and r.id in claimed:
                continue  # archived by stale_contacts, which runs first
            expected.add((obj, r.id))
    held = sum(outcome.result.held_back.get("inactive_users", {}).values())
    assert {(c.object, c.record_id) for c in handed} <= expected
    assert len(handed) + held == len(expected) and {c.object for c in handed} >= {"contacts", "tasks"}
    assert all(c.op is Op.UPDATE and c.after == {"hubspot_owner_id": HEIR} for c in handed)
    assert all(c.before["hubspot_owner_id"] in DEPARTED for c in handed)
    assert not [c for c in handed if c.object == "owners"]  # nobody is deactivated
    # What it cannot do is said plainly: the idle active owners it would have deactivated elsewhere.
    assert any("this CRM cannot deactivate users through its API: " in n and "deactivate them in the CRM's own "
               "settings" in n for n in outcome.result.plan.header.notes)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ('"12 34"', "[passes.inactive_users] reassign_to must be one owner id"),
        ('"' + "9" * 65 + '"', "[passes.inactive_users] reassign_to must be one owner id"),
    ],
)
def test_a_malformed_reassign_to_is_refused_when_the_config_loads(
    hubspot_sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, message: str
) -> None:
    with pytest.raises(BadInput) as caught:
        workspace(hubspot_sandbox, tmp_path, monkeypatch, f"[passes.inactive_users]\nreassign_to = {setting}\n")
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("owner", ["71000007", "99999999"])
def test_reassign_to_must_name_an_active_owner_of_the_snapshot(
    hubspot_sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, owner: str
) -> None:
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch, f'[passes.inactive_users]\nreassign_to = "{owner}"\n')
    with pytest.raises(BadInput) as caught:
        scan(ws, tmp_path)
    assert str(caught.value) == (
        f"[passes.inactive_users] reassign_to '{owner}' is not an active owners record in the snapshot: "
        "name an active owner's id"
    )


def test_a_plan_holding_what_the_passes_do_not_propose_on_hubspot_is_refused(
    hubspot_sandbox: RunningSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch, f'[passes.inactive_users]\nreassign_to = "{HEIR}"\n')
    plan = scan(ws, tmp_path)[0].result.plan
    assert scan_plan_problems(plan, HUBSPOT_VOCABULARY) == []
    archive = next(c for c in plan.changes if c.op is Op.ARCHIVE)
    update = next(c for c in plan.changes if c.op is Op.UPDATE)
    forged = [
        replace(archive, op=Op.DELETE),  # HubSpot removes by archiving: a delete is not what the pass proposes
        replace(update, after={"hubspot_owner_id": HEIR, "email": "x@example.com"}),
        replace(update, object="owners"),
        replace(update, op=Op.DEACTIVATE, after={"active": False}),
    ]
    problems = scan_plan_problems(replace(plan, changes=tuple(forged)), HUBSPOT_VOCABULARY)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "pass stale_contacts does not propose delete of contacts",
        f'pass inactive_users writes hubspot_owner_id="{HEIR}", not {{"email":"x@example.com","hubspot_owner_id":"'
        + HEIR + '"}',
        "pass inactive_users does not propose update of owners",
        "pass inactive_users does not propose deactivate of " + update.object,
    ]


def test_apply_re_checks_live_a_contact_put_on_an_open_deal_and_a_record_handed_over_meanwhile(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch, f'[passes.inactive_users]\nreassign_to = "{HEIR}"\n')
    outcome, path = scan(ws, tmp_path)
    plan = outcome.result.plan
    contact = next(c for c in plan.changes if c.op is Op.ARCHIVE)
    task = next(c for c in plan.changes if c.op is Op.UPDATE and c.object == "tasks")
    open_deal = next(d for d in all_pages(hs.crm.deals.basic_api, properties=["hs_is_closed"])
                     if d.properties.get("hs_is_closed") == "false")
    # Someone links the stale contact to an open deal (its own record is not written), and closes the task.
    hs.crm.associations.v4.batch_api.create_default(
        "contacts", "deals", {"inputs": [{"from": {"id": contact.record_id}, "to": {"id": open_deal.id}}]})
    hs.crm.objects.basic_api.update("tasks", task.record_id, {"properties": {"hs_task_status": "COMPLETED"}})

    report = api.apply(ws, path, confirm=yes).report
    assert report is not None
    skipped = {item["id"]: item for item in report.skipped_items}
    assert skipped[contact.record_id]["detail"] == f"now on an open deal ({open_deal.id})"
    assert task.record_id in skipped  # drift (the task was written) or the live rule: either way not handed over
    assert report.applied == len(plan.changes) - len(skipped)
    live = hs.crm.contacts.basic_api.get_by_id(contact.record_id)
    assert not live.archived
    still = hs.crm.objects.basic_api.get_by_id("tasks", task.record_id, properties=["hubspot_owner_id"])
    assert still.properties["hubspot_owner_id"] == task.before["hubspot_owner_id"]
