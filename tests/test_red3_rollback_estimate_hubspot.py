"""Red team R3: a HubSpot rollback's estimate covers the calls it makes. The re-creates' "already restored"
read (`_not_restored`) reads archived records: HubSpot's batch read finds none live, then reads them again
archived, two calls a batch, which the estimate counted as one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import hs, hubspot_cli, hubspot_sandbox

__all__ = ["hs", "hubspot_sandbox"]


def test_rollback_of_archived_contacts_estimate_covers_its_calls(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    cli = hubspot_cli(hubspot_sandbox.info, tmp_path)
    backup = json.loads(cli("backup", "-c", "e2e", "--json").stdout)
    plan_file = tmp_path / "plan.json"
    cli("scan", "-c", "e2e", "--snapshot", backup["snapshot"], "-o", str(plan_file), "--pass", "stale_contacts")
    applied = json.loads(cli("apply", str(plan_file), "--yes", "--json").stdout)
    assert applied["failed"] == 0 and applied["applied"] > 0
    rolled = json.loads(cli("rollback", applied["run"], "--yes", "--json").stdout)
    assert rolled["failed"] == 0
    assert rolled["budget"]["estimated_calls"] >= rolled["api_calls"], rolled["budget"]
