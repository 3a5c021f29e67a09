"""A second rollback of a run undoes what the first could not, never again what it did: the planner leaves
out what earlier rollbacks put back, and apply refuses a rollback plan written before another rollback put
some of it back (its creates would be second copies: a create has no drift check). On both CRMs, read back
through the API; HubSpot's through hubspot-api-client."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from crmsweep import api
from crmsweep.backup.runlog import read_run
from crmsweep.connectors.hubspot import HubSpotConnector
from crmsweep.connectors.salesforce import SalesforceConnector
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
    real_create = HubSpotConnector.create

    def first_refused(self: HubSpotConnector, obj: str, records: list[Record], **kwargs: Any) -> list[WriteResult]:
        if kwargs.get("keys") is not None:
            kwargs["keys"] = kwargs["keys"][1:]
        made = real_create(self, obj, records[1:], **kwargs) if len(records) > 1 else []
        return [WriteResult(id=None, ok=False, error_code="VALIDATION_ERROR", message="refused"), *made]

    monkeypatch.setenv(CLI_TOKEN_ENV, hubspot_sandbox.info.token)
    monkeypatch.setattr(HubSpotConnector, "create", first_refused)
    first = api.rollback(api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home"), run_id,
                         confirm=lambda plan: True).report
    monkeypatch.setattr(HubSpotConnector, "create", real_create)
    assert first is not None and first.failed == 1
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
