"""`snapshots diff` on the HubSpot sandbox across an apply that archives contacts and property
definitions, and across its rollback: archived records count removed (HubSpot's `archived`), an archived
property shows though its `updatedAt` stays, and once rolled back a property whose definition differs
only in its own stamps is not counted changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crmsweep.providers.hubspot import HUBSPOT_VOCABULARY
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import hubspot_cli, hubspot_sandbox

__all__ = ["hubspot_sandbox"]


def test_diff_counts_archives_as_removals_and_an_undone_apply_as_no_change(
    hubspot_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    cli = hubspot_cli(hubspot_sandbox.info, tmp_path)
    wanted = [*HUBSPOT_VOCABULARY.default_backup_objects, "properties"]
    objects = [arg for name in wanted for arg in ("--object", name)]

    def backup() -> str:
        return str(json.loads(cli("backup", "-c", "e2e", *objects, "--json").stdout)["snapshot"])

    def diff(a: str, b: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(cli("snapshots", "diff", a, b, "--json", "--detail").stdout)["objects"]
        return found

    first = backup()
    plan_file = tmp_path / "plan.json"
    cli("scan", "-c", "e2e", "--snapshot", first, "-o", str(plan_file), "--pass", "stale_contacts",
        "--pass", "unused_custom_fields")
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    gone = {o: sorted(c["record_id"] for c in plan["changes"] if c["object"] == o) for o in ("contacts", "properties")}
    assert gone["contacts"] and gone["properties"], gone
    applied = json.loads(cli("apply", str(plan_file), "--yes", "--json").stdout)
    assert applied["failed"] == 0

    after = diff(first, backup())
    for name, ids in gone.items():
        assert after[name]["removed"] == len(ids) and sorted(after[name]["removed_ids"]) == ids, name
    assert after["contacts"]["changed"] == 0
    # The properties left live changed only in how many live contacts fill them (crmsweep's count).
    assert all(f == ["filled"] for f in after["properties"]["changed_records"].values())

    cli("rollback", applied["run"], "--yes")
    undone = diff(first, backup())
    # A property comes back under its own id with its definition as it was, but for HubSpot's stamps in it.
    properties = undone["properties"]
    assert (properties["added"], properties["removed"], properties["changed"]) == (0, 0, 0), properties
    assert properties["stamps_only"] >= len(gone["properties"])
    # Contacts come back under new ids; the old ones stay archived: added and removed, none changed.
    contacts = undone["contacts"]
    assert (contacts["added"], contacts["removed"], contacts["changed"]) == (len(gone["contacts"]),) * 2 + (0,)
