"""A rollback on the HubSpot sandbox after the admin restored an archived contact by hand (HubSpot's UI
recycle bin, which the sandbox's `recycle-bin/restore` setting stands for): that contact is left as it
is, under its own id, and reported as already restored; the others are re-created. Read back through
hubspot-api-client, not our connector."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crmsweep import api
from crmsweep.backup.runlog import SKIP_ALREADY_RESTORED, read_run
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import admin, all_pages, hs, hubspot_sandbox, stale_contacts_applied

__all__ = ["hs", "hubspot_sandbox"]


def contacts_with_email(hs: Any, email: str) -> list[str]:
    """The ids of the live contacts holding `email`."""
    rows = all_pages(hs.crm.objects.basic_api, object_type="contacts", properties=["email"], archived=False)
    return [r.id for r in rows if (r.properties.get("email") or "").lower() == email.lower()]


def test_rollback_leaves_a_contact_restored_by_hand_under_its_own_id_and_makes_no_copy(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    cli, _, archived, applied = stale_contacts_applied(hubspot_sandbox, tmp_path)
    assert len(archived) > 1

    # The admin restores one of them in HubSpot's recycle bin: it is live again, under its own id.
    by_hand = next(i for i in archived
                   if hs.crm.objects.basic_api.get_by_id("contacts", i, properties=["email"],
                                                         archived=True).properties.get("email"))
    email = hs.crm.objects.basic_api.get_by_id("contacts", by_hand, properties=["email"],
                                               archived=True).properties["email"]
    assert admin(hubspot_sandbox, "recycle-bin/restore", {"objectType": "contacts", "ids": [by_hand]})
    assert contacts_with_email(hs, email) == [by_hand]

    rolled = json.loads(cli("rollback", applied["run"], "--yes", "--json").stdout)
    assert rolled["failed"] == 0 and rolled["skipped"] == 1

    assert contacts_with_email(hs, email) == [by_hand]  # exactly one, the original: no second copy
    home = api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home").home
    state = read_run(home, rolled["run"])
    skipped = [o for o in state.outcomes if o.outcome.value == "skipped"]
    assert [(state.plan.changes[o.index].record_id, o.reason) for o in skipped] == [(by_hand, SKIP_ALREADY_RESTORED)]
    assert by_hand in (skipped[0].detail or "")
    new_ids = state.id_map["contacts"]
    assert new_ids[by_hand] == by_hand  # its own id stands for it
    others = [i for i in archived if i != by_hand]
    assert all(new_ids[i] != i for i in others)  # the rest re-created under new ids
    live = {r.id for r in all_pages(hs.crm.objects.basic_api, object_type="contacts", archived=False)}
    assert {new_ids[i] for i in others} <= live
    # Everything the run archived is back (one by hand, the rest re-created): the run counts as rolled back.
    assert read_run(home, applied["run"]).rolled_back_by == rolled["run"]


def test_a_dry_run_rollback_does_not_count_a_contact_restored_by_hand_as_re_created(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    # Red team R3: the dry run skipped it as already restored, yet its note said all the plan's creates
    # "are re-created under new ids", two more than it would write and than the real rollback then said.
    cli, _, archived, applied = stale_contacts_applied(hubspot_sandbox, tmp_path)
    assert admin(hubspot_sandbox, "recycle-bin/restore", {"objectType": "contacts", "ids": archived[:2]})
    dry = json.loads(cli("rollback", applied["run"], "--dry-run", "--json").stdout)
    assert dry["would_skip"] == 2
    expected = f"{len(archived) - 2} records are re-created under new ids ({len(archived) - 2} contacts)"
    assert any(note.startswith(expected) for note in dry["run_notes"]), dry["run_notes"]
