"""Undoing a HubSpot rollback: the contacts it re-created under new ids (created and modified today by
HubSpot, not by anyone's work) are archived again, so the portal is as the original apply left it; a
re-created contact someone edited since is left to them (drift), and one put on an open deal since is
held back as the pass holds people back. Through the CLI; the portal is read back through
hubspot-api-client, not our connector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hubspot.crm.objects import SimplePublicObjectInput

from crmsweep import api
from crmsweep.backup.runlog import read_run
from crmsweep.connectors.hubspot import HubSpotConnector
from crmsweep.errors import ConnectorError
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import (
    CLI_TOKEN_ENV,
    StaleApplied,
    all_pages,
    hs,
    hubspot_cli,
    hubspot_sandbox,
    stale_contacts_applied,
)

__all__ = ["hs", "hubspot_sandbox"]

BOUNCE = "hs_email_hard_bounce_reason_enum"


def live_contacts(hs: Any) -> set[str]:
    return {r.id for r in all_pages(hs.crm.objects.basic_api, object_type="contacts", archived=False)}


def archived_contacts(hs: Any) -> set[str]:
    return {r.id for r in all_pages(hs.crm.objects.basic_api, object_type="contacts", archived=True)}


def skipped_of(answer: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((item["id"], item["reason"]) for item in answer["skipped_items"])


class RolledBack(NamedTuple):
    applied: StaleApplied
    after_apply: set[str]  # the live contacts the apply left
    rolled: dict[str, Any]  # `rollback --json`'s answer
    copies: dict[str, str]  # old id -> the id of its re-created copy


def rolled_back(sandbox: RunningSandbox, hs: Any, folder: Path) -> RolledBack:
    """stale_contacts applied, then rolled back through the CLI: every archived contact re-created."""
    applied = stale_contacts_applied(sandbox, folder)
    after_apply = live_contacts(hs)
    rolled = json.loads(applied.cli("rollback", applied.applied["run"], "--yes", "--json").stdout)
    copies = rolled["id_map"]["contacts"]
    assert sorted(copies) == applied.archived and not set(copies.values()) & set(applied.archived)
    return RolledBack(applied, after_apply, rolled, copies)


def test_undoing_a_hubspot_rollback_archives_the_contacts_it_re_created_again(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    (cli, plan_file, archived, applied), after_apply, rolled, copies = rolled_back(hubspot_sandbox, hs, tmp_path)
    assert live_contacts(hs) == after_apply | set(copies.values())
    # Applying the original plan again is not the way back: a plan applied once is not applied again.
    again = json.loads(cli("apply", str(plan_file), "--yes", "--json").stdout)
    assert again["nothing_to_do"] and again["already_applied_by"] == applied["run"]

    undone = json.loads(cli("rollback", rolled["run"], "--yes", "--json").stdout)

    assert (undone["applied"], undone["skipped"], undone["failed"]) == (len(archived), 0, 0)
    assert live_contacts(hs) == after_apply
    # Archived, not purged: HubSpot's recycle bin holds the copies beside the originals.
    assert set(copies.values()) | set(archived) <= archived_contacts(hs)
    home = api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home").home
    assert read_run(home, rolled["run"]).rolled_back_by == undone["run"]


def test_undoing_a_hubspot_rollback_leaves_a_copy_edited_since_and_one_put_on_an_open_deal(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    (cli, _, archived, _), after_apply, rolled, copies = rolled_back(hubspot_sandbox, hs, tmp_path)
    edited, on_deal = copies[archived[0]], copies[archived[1]]
    hs.crm.objects.basic_api.update("contacts", edited, SimplePublicObjectInput(properties={"firstname": "Kept"}))
    deals = all_pages(hs.crm.objects.basic_api, object_type="deals", properties=["hs_is_closed"], archived=False)
    open_deal = next(d.id for d in deals if (d.properties.get("hs_is_closed") or "").lower() == "false")
    hs.crm.associations.v4.basic_api.create_default("contacts", on_deal, "deals", open_deal)

    undone = json.loads(cli("rollback", rolled["run"], "--yes", "--json").stdout)

    assert skipped_of(undone) == sorted([(edited, "drift"), (on_deal, "no longer qualifies")])
    assert (undone["applied"], undone["failed"]) == (len(archived) - 2, 0)
    assert live_contacts(hs) == after_apply | {edited, on_deal}
    kept = hs.crm.objects.basic_api.get_by_id("contacts", edited, properties=["firstname"])
    assert kept.properties["firstname"] == "Kept"
    home = api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home").home
    assert read_run(home, rolled["run"]).rolled_back_by is None  # two copies are not undone: it may be run again


def test_undoing_a_hubspot_rollback_of_bounced_contacts_archives_the_copies_hubspot_shows_no_bounce_on(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    # A create cannot write HubSpot's bounce properties (read-only): the copies hold the bounced address
    # without the bounce, by crmsweep's doing, which must not read as "no longer bounced".
    cli = hubspot_cli(hubspot_sandbox.info, tmp_path, '[passes.bounced_emails]\naction = "delete"\n')
    backup = json.loads(cli("backup", "-c", "e2e", "--json").stdout)
    plan_file = tmp_path / "plan.json"
    cli("scan", "-c", "e2e", "--snapshot", backup["snapshot"], "-o", str(plan_file), "--pass", "bounced_emails")
    bounced = sorted(c["record_id"] for c in json.loads(plan_file.read_text(encoding="utf-8"))["changes"])
    assert len(bounced) > 1
    applied = json.loads(cli("apply", str(plan_file), "--yes", "--json").stdout)
    after_apply = live_contacts(hs)
    rolled = json.loads(cli("rollback", applied["run"], "--yes", "--json").stdout)
    copies = rolled["id_map"]["contacts"]
    assert sorted(copies) == bounced
    for copy in copies.values():
        shown = hs.crm.objects.basic_api.get_by_id("contacts", copy, properties=[BOUNCE]).properties
        assert not shown.get(BOUNCE)

    undone = json.loads(cli("rollback", rolled["run"], "--yes", "--json").stdout)

    assert (undone["applied"], undone["skipped"], undone["failed"]) == (len(bounced), 0, 0)
    assert live_contacts(hs) == after_apply
    assert set(copies.values()) <= archived_contacts(hs)


def test_a_dry_run_undoing_a_stopped_rollback_whose_creates_landed_unanswered_says_what_the_real_one_does(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dry run settles the stopped rollback's creates in memory only: the copies it finds must be judged
    # as their pass judged the originals (as the real run, which settles them into the log, judges them),
    # not by HubSpot's stamps of today on the copies ("no longer stale").
    applied = stale_contacts_applied(hubspot_sandbox, tmp_path)
    after_apply = live_contacts(hs)
    real_create = HubSpotConnector.create

    def lands_then_drops(self: HubSpotConnector, *args: Any, **kwargs: Any) -> Any:
        real_create(self, *args, **kwargs)
        raise ConnectorError("create may or may not have been carried out", code="OUTCOME_UNKNOWN")

    monkeypatch.setenv(CLI_TOKEN_ENV, hubspot_sandbox.info.token)
    monkeypatch.setattr(HubSpotConnector, "create", lands_then_drops)
    ws = api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home")
    stopped = api.rollback(ws, applied.applied["run"], confirm=lambda plan: True).report
    monkeypatch.setattr(HubSpotConnector, "create", real_create)
    assert stopped is not None and stopped.stopped
    copies = live_contacts(hs) - after_apply
    assert len(copies) == len(applied.archived)  # they landed, unanswered
    log = tmp_path / "home" / "runs" / stopped.run_id / "log.jsonl"
    before = log.read_bytes()

    dry = json.loads(applied.cli("rollback", stopped.run_id, "--dry-run", "--json").stdout)

    assert log.read_bytes() == before and live_contacts(hs) == after_apply | copies
    assert (dry["would_apply"], dry["would_skip"]) == (len(copies), 0)
    assert {i["id"] for i in dry["would_write"]} == copies
    real = json.loads(applied.cli("rollback", stopped.run_id, "--yes", "--json").stdout)
    assert (real["applied"], real["skipped"], real["failed"]) == (len(copies), 0, 0)
    assert live_contacts(hs) == after_apply
