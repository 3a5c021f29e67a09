"""A HubSpot contact archived by a cleanup and re-created by its rollback comes back on its company as the
company's PRIMARY contact link as well as the plain one, as it was. HubSpot keeps a link's labels per
association type (contact->company 279 unlabelled, 1 "Primary": "Associations v4" guide, default type ids),
and a link written with `associate/default` carries the unlabelled type alone; a labelled PUT "replaces
existing labels: include every label to keep" (api-notes 2.5). The rollback re-links with the default type
only, so every re-created contact loses its primary company ("contact-to-primary company", a default labelled
association: Associations v3 guide), and nothing in the rollback's report says so. The same holds for any
custom label (USER_DEFINED) a link had: the snapshot keeps only the two ends of a link."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crmsweep.backup.runlog import read_run
from crmsweep.paths import Home
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import hs, hubspot_cli, hubspot_sandbox

__all__ = ["hs", "hubspot_sandbox"]


def company_link_types(hs: Any, contacts: list[str]) -> dict[str, dict[str, list[int]]]:
    """Contact id -> company id -> the association type ids of that link, read through the SDK's v4 API."""
    found: dict[str, dict[str, list[int]]] = {}
    for contact in contacts:
        page = hs.crm.associations.v4.basic_api.get_page("contacts", contact, "companies")
        found[contact] = {str(r.to_object_id): sorted(t.type_id for t in r.association_types) for r in page.results}
    return found


def test_a_rollback_re_creates_an_archived_contact_with_its_primary_company_label(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    cli = hubspot_cli(hubspot_sandbox.info, tmp_path)
    backup = json.loads(cli("backup", "-c", "e2e", "--json").stdout)
    plan_file = tmp_path / "plan.json"
    cli("scan", "-c", "e2e", "--snapshot", backup["snapshot"], "-o", str(plan_file), "--pass", "stale_contacts")
    archived = sorted(c["record_id"] for c in json.loads(plan_file.read_text())["changes"] if c["op"] == "archive")
    before = company_link_types(hs, archived)
    primary = {c: links for c, links in before.items() if any(1 in types for types in links.values())}
    assert primary, "the seed puts stale contacts on a company as its primary contact"

    applied = json.loads(cli("apply", str(plan_file), "--yes", "--json").stdout)
    assert applied["failed"] == 0
    undone = json.loads(cli("rollback", applied["run"], "--yes", "--json").stdout)
    assert undone["failed"] == 0

    made = read_run(Home(tmp_path / "home"), undone["run"]).id_map.get("contacts", {})
    assert set(primary) <= set(made), "every archived contact is re-created"
    after = {old: company_link_types(hs, [made[old]])[made[old]] for old in primary}
    assert after == primary
