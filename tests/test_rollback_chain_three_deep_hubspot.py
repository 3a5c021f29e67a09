"""apply (stale contacts archived) -> R1 re-creates every contact, connection drops before its links (stopped)
-> R2 undoes R1 (copies archived) -> R3 undoes R2 (copies re-created again, new ids) -> rollback of the run:
the links R1 never made must land on the copies that are live now."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crmsweep.backup.runlog import read_run
from crmsweep.paths import Home
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import hs, hubspot_sandbox, stale_contacts_applied
from tests.test_rollback_again import company_links, links_dropped, rolled_back_while
from tests.test_rollback_of_rollback_hubspot import live_contacts

__all__ = ["hs", "hubspot_sandbox"]


def test_links_land_on_live_copies_after_three_deep_chain(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    applied = stale_contacts_applied(hubspot_sandbox, tmp_path)
    run_id = applied.applied["run"]
    after_apply = live_contacts(hs)

    r1 = rolled_back_while(hubspot_sandbox, tmp_path, monkeypatch, run_id, "create_associations", links_dropped)
    assert r1.stopped
    r2 = json.loads(applied.cli("rollback", r1.run_id, "--yes", "--json").stdout)
    assert r2["failed"] == 0 and live_contacts(hs) == after_apply
    r3 = json.loads(applied.cli("rollback", r2["run"], "--yes", "--json").stdout)
    assert r3["failed"] == 0
    copies = live_contacts(hs) - after_apply  # R3's, under ids of its own: R1's are archived
    assert len(copies) == len(applied.archived)
    r1_copies = set(read_run(Home(tmp_path / "home"), r1.run_id).id_map.get("contacts", {}).values())
    assert not r1_copies & copies

    again = json.loads(applied.cli("rollback", run_id, "--yes", "--json").stdout)

    assert again["failed"] == 0
    back = live_contacts(hs) - after_apply
    assert back == copies  # no second copies
    assert all(company_links(hs, back).values())  # the links R1 never made, on the copies that stand
    plan = read_run(Home(tmp_path / "home"), again["run"]).plan
    assert not {str(c.after.get("from_id")) for c in plan.changes if c.op.value == "associate"} & r1_copies
