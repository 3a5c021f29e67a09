"""apply (stale contacts archived) -> rollback R1 (one create refused: run not marked) -> rollback of R1 (its
copies archived again, their links with them) -> rollback of the run again: every contact back ON ITS COMPANY."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crmsweep.backup.runlog import read_run
from crmsweep.paths import Home
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import hs, hubspot_sandbox, stale_contacts_applied
from tests.test_rollback_again import company_links, first_create_refused, rolled_back_while
from tests.test_rollback_of_rollback_hubspot import live_contacts

__all__ = ["hs", "hubspot_sandbox"]


def test_links_come_back_after_a_rollback_of_a_partial_rollback(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied = stale_contacts_applied(hubspot_sandbox, tmp_path)
    run_id = applied.applied["run"]
    after_apply = live_contacts(hs)
    r1 = rolled_back_while(hubspot_sandbox, tmp_path, monkeypatch, run_id, "create", first_create_refused)
    assert r1.failed == 1
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
