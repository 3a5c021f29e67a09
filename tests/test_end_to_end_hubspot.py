"""The whole story through the CLI on the HubSpot sandbox: backup → scan → preview → apply → rollback.

HubSpot has no undelete API, so a rollback re-creates every archived record under a new id (mapped in
the rollback's run log) and re-links it. Proves, through hubspot-api-client (not our connector), that
each archived contact is back with equal writable properties and the same associations, and that the
records handed from deactivated owners to the configured owner are handed back. No pass archives
companies (stale_contacts removes people only), so contacts are the records re-created.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crmsweep import api
from crmsweep.backup.runlog import read_run
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import all_pages, hs, hubspot_cli, hubspot_sandbox

__all__ = ["hs", "hubspot_sandbox"]

LINKED = ("companies", "deals", "tickets", "tasks", "calls", "emails", "meetings", "notes")
OWNED = ("contacts", "companies", "deals", "tickets", "tasks")


def writable(hs: Any, object_type: str) -> list[str]:
    """The properties an API client may write: neither read-only nor calculated."""
    return sorted(
        p.name for p in hs.crm.properties.core_api.get_all(object_type, archived=False).results
        if not p.calculated and not (p.modification_metadata and p.modification_metadata.read_only_value)
    )


def records(hs: Any, object_type: str, properties: list[str], *, archived: bool = False) -> dict[str, dict[str, Any]]:
    rows = all_pages(hs.crm.objects.basic_api, object_type=object_type, properties=properties, archived=archived)
    return {r.id: {k: r.properties.get(k) for k in properties} for r in rows}


def links(hs: Any, ids: list[str]) -> dict[str, dict[str, set[str]]]:
    """Contact id -> linked object type -> linked ids, through the v4 API."""
    found: dict[str, dict[str, set[str]]] = {i: {t: set() for t in LINKED} for i in ids}
    for target in LINKED:
        for start in range(0, len(ids), 1000):
            answer = hs.crm.associations.v4.batch_api.get_page(
                "contacts", target, {"inputs": [{"id": i} for i in ids[start : start + 1000]]})
            for result in answer.results:
                found[result._from.id][target] |= {str(t.to_object_id) for t in result.to}
    return found


def test_backup_scan_apply_rollback_on_hubspot_brings_archived_contacts_back_under_new_ids(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    info = hubspot_sandbox.info
    heir = next(o.id for o in all_pages(hs.crm.owners.owners_api, archived=False))
    cli = hubspot_cli(info, tmp_path, f'[passes.inactive_users]\nreassign_to = "{heir}"\n')

    properties = writable(hs, "contacts")
    contacts_before = records(hs, "contacts", properties)
    owners_before = {o: records(hs, o, ["hubspot_owner_id"]) for o in OWNED}

    backup = json.loads(cli("backup", "-c", "e2e", "--json").stdout)
    plan_file = tmp_path / "plan.json"
    # The two passes this story is about; every pass: tests/test_end_to_end_every_pass.py.
    cli("scan", "-c", "e2e", "--snapshot", backup["snapshot"], "-o", str(plan_file), "--pass", "stale_contacts",
        "--pass", "inactive_users")
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    archived = sorted(c["record_id"] for c in plan["changes"] if c["op"] == "archive")
    handed = {(c["object"], c["record_id"]): c for c in plan["changes"] if c["op"] == "update"}
    assert {c["op"] for c in plan["changes"]} == {"archive", "update"}  # no delete, no deactivation
    assert {c["object"] for c in plan["changes"] if c["op"] == "archive"} == {"contacts"}
    assert len(archived) == 48 and handed  # the seed's 50 stale contacts less the 2 on open deals
    assert all(c["after"] == {"hubspot_owner_id": heir} for c in handed.values())
    links_before = links(hs, archived)
    linked = {t for i in archived for t, ids in links_before[i].items() if ids}
    assert {"companies", "tasks"} <= linked, linked

    preview = cli("preview", str(plan_file)).stdout
    assert "archive  stale:" in preview and 'hubspot_owner_id: "' in preview and f'→ "{heir}"' in preview

    applied = json.loads(cli("apply", str(plan_file), "--yes", "--json").stdout)
    assert (applied["applied"], applied["failed"], applied["skipped"]) == (len(plan["changes"]), 0, 0)
    live = records(hs, "contacts", ["email"])
    assert not set(archived) & set(live)
    for (obj, rid) in handed:
        assert records(hs, obj, ["hubspot_owner_id"])[rid]["hubspot_owner_id"] == heir

    rolled = json.loads(cli("rollback", applied["run"], "--yes", "--json").stdout)
    assert rolled["failed"] == 0 and rolled["skipped"] == 0

    home = api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home").home
    id_map = read_run(home, rolled["run"]).id_map
    assert set(id_map) == {"contacts"} and sorted(id_map["contacts"]) == archived
    new_ids = [id_map["contacts"][old] for old in archived]
    assert not set(new_ids) & set(archived)  # re-created, not restored: HubSpot has no undelete API
    contacts_after = records(hs, "contacts", properties)
    assert set(contacts_after) == (set(contacts_before) - set(archived)) | set(new_ids)
    links_after = links(hs, new_ids)
    for old in archived:
        new = id_map["contacts"][old]
        assert contacts_after[new] == contacts_before[old], f"contact {old} (now {new}) differs"
        assert links_after[new] == links_before[old], f"contact {old} (now {new}) lost links"
    assert set(records(hs, "contacts", ["email"], archived=True)) >= set(archived)  # the old ones stay archived
    # Every record handed over is back with its deactivated owner; nothing else changed owner.
    for obj in OWNED:
        now = records(hs, obj, ["hubspot_owner_id"])
        for rid, row in owners_before[obj].items():
            if obj == "contacts" and rid in archived:
                continue
            assert now[rid] == row, f"{obj} {rid}"
