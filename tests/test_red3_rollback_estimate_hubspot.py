"""Red team R3: a HubSpot rollback's estimate covers the calls it makes. The re-creates' "already restored"
read (`_not_restored`) reads archived records: HubSpot's batch read finds none live, then reads them again
archived, two calls a batch, which the estimate counted as one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import hs, hubspot_sandbox, stale_contacts_applied

__all__ = ["hs", "hubspot_sandbox"]


def test_rollback_of_archived_contacts_estimate_covers_its_calls(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    cli, _, _, applied = stale_contacts_applied(hubspot_sandbox, tmp_path)
    rolled = json.loads(cli("rollback", applied["run"], "--yes", "--json").stdout)
    assert rolled["failed"] == 0
    assert rolled["budget"]["estimated_calls"] >= rolled["api_calls"], rolled["budget"]
