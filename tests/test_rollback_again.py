"""A second rollback of a run undoes what the first could not, never again what it did: the planner leaves
out what earlier rollbacks put back, and apply refuses a rollback plan written before another rollback put
some of it back (its creates would be second copies: a create has no drift check). On both CRMs, read back
through the API; HubSpot's through hubspot-api-client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hubspot.crm.objects import SimplePublicObjectInput

from crmsweep import api
from crmsweep.backup.runlog import read_run
from crmsweep.cleanup.apply import ApplyReport
from crmsweep.connectors.hubspot import HubSpotConnector
from crmsweep.connectors.salesforce import SalesforceConnector
from crmsweep.errors import ConnectorError
from crmsweep.model import Record, WriteResult
from crmsweep.paths import Home
from crmsweep.sandbox.server import RunningSandbox
from tests import test_cli_apply as cli_apply
from tests.hubspot_fixtures import CLI_TOKEN_ENV, hs, hubspot_sandbox, stale_contacts_applied
from tests.test_apply_settle import ids_of, live, load
from tests.test_cli_apply import cli
from tests.test_rollback_of_rollback_hubspot import live_contacts

__all__ = ["hs", "hubspot_sandbox"]
config, home, plan_file = cli_apply.config, cli_apply.home, cli_apply.plan_file


def rolled_back_while(sandbox: RunningSandbox, folder: Path, monkeypatch: pytest.MonkeyPatch, run_id: str,
                      method: str, fake: Callable[..., Any]) -> ApplyReport:
    """`api.rollback` of run `run_id` (the CLI fixtures' home and config under `folder`) with the HubSpot
    connector's `method` replaced by `fake` for that rollback only."""
    monkeypatch.setenv(CLI_TOKEN_ENV, sandbox.info.token)
    real = getattr(HubSpotConnector, method)
    monkeypatch.setattr(HubSpotConnector, method, fake)
    report = api.rollback(api.Workspace.load(folder / "crmsweep.toml", folder / "home"), run_id,
                          confirm=lambda plan: True).report
    monkeypatch.setattr(HubSpotConnector, method, real)
    assert report is not None
    return report


def first_create_refused(self: HubSpotConnector, obj: str, records: list[Record], **kwargs: Any) -> list[WriteResult]:
    """HubSpot's create, with the first record of each call refused and the rest made."""
    if kwargs.get("keys") is not None:
        kwargs["keys"] = kwargs["keys"][1:]
    made = HUBSPOT_CREATE(self, obj, records[1:], **kwargs) if len(records) > 1 else []
    return [WriteResult(id=None, ok=False, error_code="VALIDATION_ERROR", message="refused"), *made]


def links_dropped(self: HubSpotConnector, *args: Any, **kwargs: Any) -> Any:
    """A link call whose connection drops: whether it landed is unknown."""
    raise ConnectorError("connection dropped", code="OUTCOME_UNKNOWN")


HUBSPOT_CREATE = HubSpotConnector.create


def test_a_second_salesforce_rollback_undoes_only_what_the_first_left_not_a_record_deleted_again_since(
    sandbox: RunningSandbox, config: Path, home: Path, plan_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = load(plan_file)
    applied = json.loads(cli(config, home, "apply", str(plan_file), "--yes", "--json").stdout)
    lead, contact = ids_of(plan, "Lead")[0], ids_of(plan, "Contact")[0]
    real_undelete = SalesforceConnector.undelete

    def lead_refused(self: SalesforceConnector, obj: str, ids: list[str]) -> list[WriteResult]:
        done = iter(real_undelete(self, obj, [i for i in ids if i != lead]))
        return [WriteResult(id=i, ok=False, error_code="ENTITY_IS_LOCKED", message="locked") if i == lead
                else next(done) for i in ids]

    monkeypatch.setattr(SalesforceConnector, "undelete", lead_refused)
    first = api.rollback(api.Workspace.load(config, home), applied["run"], confirm=lambda plan: True).report
    monkeypatch.setattr(SalesforceConnector, "undelete", real_undelete)
    assert first is not None and (first.applied, first.failed) == (len(plan.changes) - 1, 1)
    with api.connect(api.Workspace.load(config, home), "cli") as connector:  # its owner deletes it again
        assert connector.delete("Contact", [contact])[0].ok

    dry = json.loads(cli(config, home, "rollback", applied["run"], "--dry-run", "--json").stdout)
    second = json.loads(cli(config, home, "rollback", applied["run"], "--yes", "--json").stdout)

    assert (dry["would_apply"], dry["would_skip"]) == (1, 0)
    assert [(i["op"], i["object"], i["id"]) for i in dry["would_write"]] == [("undelete", "Lead", lead)]
    assert (second["applied"], second["skipped"], second["failed"]) == (1, 0, 0)
    assert live(config, home, "Lead", [lead], "IsDeleted") == {lead: False}
    assert live(config, home, "Contact", [contact], "IsDeleted") == {contact: True}  # left as its owner left it
    state = read_run(Home(home), second["run"])
    assert f"{len(plan.changes) - 1:,} more undos are left out: earlier rollbacks put them back (run {first.run_id})" \
        in state.plan.header.notes
    assert read_run(Home(home), applied["run"]).rolled_back_by == second["run"]  # the two undid it all


def test_a_hubspot_rollback_plan_written_before_another_rollback_ran_is_refused_not_a_second_copy_of_each(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied = stale_contacts_applied(hubspot_sandbox, tmp_path)
    run_id = applied.applied["run"]
    after_apply = live_contacts(hs)
    written = tmp_path / "rollback.json"
    applied.cli("rollback", run_id, "-o", str(written))  # for review, later
    first = rolled_back_while(hubspot_sandbox, tmp_path, monkeypatch, run_id, "create", first_create_refused)
    assert first.failed == 1
    copies = live_contacts(hs) - after_apply
    assert len(copies) == len(applied.archived) - 1

    env = {**os.environ, CLI_TOKEN_ENV: hubspot_sandbox.info.token, "CRMSWEEP_HOME": str(tmp_path / "home")}
    refused = subprocess.run([sys.executable, "-m", "crmsweep", "apply", str(written), "--yes", "--config",
                              str(tmp_path / "crmsweep.toml")], capture_output=True, text=True, env=env, timeout=300)

    assert refused.returncode == 3 and "Traceback" not in refused.stderr
    assert f"of run {run_id} that rollback run {first.run_id} put back since the plan was made" in refused.stderr
    assert live_contacts(hs) - after_apply == copies  # nothing written
    second = json.loads(applied.cli("rollback", run_id, "--yes", "--json").stdout)
    assert second["failed"] == 0 and len(second["id_map"]["contacts"]) == 1
    assert len(live_contacts(hs) - after_apply) == len(applied.archived)  # one copy of each, no more


def company_links(hs: Any, contacts: set[str]) -> dict[str, list[str]]:
    """Contact id -> the companies it is associated with, through the SDK's v4 associations API."""
    found: dict[str, list[str]] = {}
    for contact in sorted(contacts):
        page = hs.crm.associations.v4.basic_api.get_page("contacts", contact, "companies")
        found[contact] = sorted(str(r.to_object_id) for r in page.results)
    return found


def test_a_stopped_hubspot_rollback_undone_in_part_is_not_resumed_a_new_one_brings_the_rest_back(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # R1 re-creates every archived contact, then the connection drops before its links; R2 undoes R1 but
    # leaves one copy someone edited (drift). Resuming R1 then would link copies R2 archived and count them as
    # back; a new rollback of the run re-creates the rest, and links the kept copy R1 made too.
    applied = stale_contacts_applied(hubspot_sandbox, tmp_path)
    run_id = applied.applied["run"]
    after_apply = live_contacts(hs)
    linked_before = {c for c, companies in company_links(hs, set(applied.archived) & after_apply).items()
                     if companies}  # (archived: none of them is live)
    assert not linked_before

    r1 = rolled_back_while(hubspot_sandbox, tmp_path, monkeypatch, run_id, "create_associations", links_dropped)
    assert r1.stopped
    copies = live_contacts(hs) - after_apply
    kept = sorted(copies)[0]
    hs.crm.objects.basic_api.update("contacts", kept, SimplePublicObjectInput(properties={"firstname": "Kept"}))
    r2 = json.loads(applied.cli("rollback", r1.run_id, "--yes", "--json").stdout)
    assert r2["applied"] == len(copies) - 1 and live_contacts(hs) == after_apply | {kept}

    again = json.loads(applied.cli("rollback", run_id, "--yes", "--json").stdout)

    assert (again["resumed"], again["skipped"], again["failed"]) == (False, 0, 0)
    assert again["run"] != r1.run_id and len(again["id_map"]["contacts"]) == len(copies) - 1
    back = live_contacts(hs) - after_apply
    assert len(back) == len(applied.archived) and kept in back
    assert all(company_links(hs, back).values())  # every contact back on its company, the kept copy included
    home = Home(tmp_path / "home")
    assert read_run(home, run_id).rolled_back_by == again["run"]
    assert read_run(home, r1.run_id).status == "stopped"  # given up: not resumed
    resumed = subprocess.run(
        [sys.executable, "-m", "crmsweep", "apply", str(home.runs_dir / r1.run_id / "plan.json"), "--resume",
         r1.run_id, "--yes", "--config", str(tmp_path / "crmsweep.toml")], capture_output=True, text=True,
        env={**os.environ, CLI_TOKEN_ENV: hubspot_sandbox.info.token, "CRMSWEEP_HOME": str(home.root)}, timeout=300)
    assert resumed.returncode == 3 and "Traceback" not in resumed.stderr and live_contacts(hs) - after_apply == back
