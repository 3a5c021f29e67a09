"""apply (stale contacts archived) -> rollback R1 (one create refused: run not marked) -> rollback of R1 (its
copies archived again, their links with them) -> rollback of the run again: every contact back ON ITS COMPANY."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crmsweep import api
from crmsweep.backup.runlog import read_run
from crmsweep.connectors.hubspot import HubSpotConnector
from crmsweep.model import Record, WriteResult
from crmsweep.paths import Home
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import CLI_TOKEN_ENV, hs, hubspot_sandbox, stale_contacts_applied
from tests.test_rollback_again import company_links
from tests.test_rollback_of_rollback_hubspot import live_contacts

__all__ = ["hs", "hubspot_sandbox"]


def test_links_come_back_after_a_rollback_of_a_partial_rollback(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied = stale_contacts_applied(hubspot_sandbox, tmp_path)
    run_id = applied.applied["run"]
    after_apply = live_contacts(hs)
    real_create = HubSpotConnector.create

    def first_refused(self: HubSpotConnector, obj: str, records: list[Record], **kwargs: Any) -> list[WriteResult]:
        if kwargs.get("keys") is not None:
            kwargs["keys"] = kwargs["keys"][1:]
        made = real_create(self, obj, records[1:], **kwargs) if len(records) > 1 else []
        return [WriteResult(id=None, ok=False, error_code="VALIDATION_ERROR", message="refused"), *made]

    monkeypatch.setenv(CLI_TOKEN_ENV, hubspot_sandbox.info.token)
    monkeypatch.setattr(HubSpotConnector, "create", first_refused)
    ws = api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home")
    r1 = api.rollback(ws, run_id, confirm=lambda plan: True).report
    monkeypatch.setattr(HubSpotConnector, "create", real_create)
    assert r1 is not None and r1.failed == 1
    copies = live_contacts(hs) - after_apply
    assert copies and sum(1 for v in company_links(hs, copies).values() if v) > 0  # R1 linked its copies

    r2 = json.loads(applied.cli("rollback", r1.run_id, "--yes", "--json").stdout)
    assert r2["failed"] == 0 and live_contacts(hs) == after_apply

    again = json.loads(applied.cli("rollback", run_id, "--yes", "--json").stdout)
    back = live_contacts(hs) - after_apply
    assert len(back) == len(applied.archived)
    links = company_links(hs, back)
    assert all(links.values()), links  # every contact back on its company
    assert read_run(Home(tmp_path / "home"), run_id).rolled_back_by == again["run"]
