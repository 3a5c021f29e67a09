"""apply (unused_custom_fields removes a filled property) -> rollback R (partial) -> rollback of R (property
archived again, values gone) -> rollback of the run again: the values must come back."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crmsweep import api
from crmsweep.backup.runlog import read_run
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import hs, hubspot_sandbox
from tests.test_passes_hubspot import workspace, yes
from tests.test_unused_fields_hubspot import PASS, RAISED, _partner_code, _partner_holder, _without_partner_code, names

__all__ = ["hs", "hubspot_sandbox"]


def test_third_rollback_restores_values_a_rollback_of_the_rollback_removed_again(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch, RAISED)
    plan0 = api.scan(ws, "hs", tmp_path / "plan0.json", passes=[PASS]).result.plan
    other = _without_partner_code(hs, _partner_holder(ws, plan0))
    hs.crm.contacts.basic_api.update(other, {"properties": {"partner_code": "Y-VAL"}})
    plan = api.scan(ws, "hs", tmp_path / "plan.json", passes=[PASS]).result.plan
    keeper = _partner_holder(ws, plan)
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and not report.failed
    hs.crm.contacts.basic_api.archive(keeper)  # the first rollback cannot restore its value: run not marked
    first = api.rollback(ws, report.run_id, confirm=yes).report
    assert first is not None and [(s["id"], s["reason"]) for s in first.skipped_items] == [(keeper, "missing")]
    assert _partner_code(hs, other) == "Y-VAL"

    undone = api.rollback(ws, first.run_id, confirm=yes).report  # the admin undoes that rollback
    assert undone is not None and not undone.failed, undone
    assert "partner_code" not in names(hs, "contacts")
    assert read_run(ws.home, report.run_id).rolled_back_by is None

    third = api.rollback(ws, report.run_id, confirm=yes).report
    assert third is not None and not third.failed
    assert "partner_code" in names(hs, "contacts")
    # The value the first rollback wrote back, which the rollback of it took away again, must come back.
    assert _partner_code(hs, other) == "Y-VAL"
