"""A HubSpot rollback re-creates archived contacts under new ids, and HubSpot sets their read-only
properties (createdate, lastmodifieddate, activity dates) afresh: the next scan sees them as new. The
rollback plan's notes (shown by preview) and its report say so with the numbers and the fields, and the
old -> new ids are in `rollback --json` and `runs show --json`. Checked through hubspot-api-client, not
our connector: which properties are read-only, what the contacts held, and what the new ids hold.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from crmsweep import api
from crmsweep.backup.runlog import read_run
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import all_pages, hs, hubspot_cli, hubspot_sandbox

__all__ = ["hs", "hubspot_sandbox"]

# The object envelope's stamps, which every record has and no create writes.
ENVELOPE = {"createdAt", "updatedAt"}


def read_only(hs: Any) -> list[str]:
    """The contact properties HubSpot does not let a client write: read-only or calculated."""
    return sorted(
        p.name for p in hs.crm.properties.core_api.get_all("contacts", archived=False).results
        if p.calculated or (p.modification_metadata and p.modification_metadata.read_only_value)
    )


def records(hs: Any, properties: list[str], *, archived: bool = False) -> dict[str, dict[str, Any]]:
    rows = all_pages(hs.crm.objects.basic_api, object_type="contacts", properties=properties, archived=archived)
    return {r.id: {k: r.properties.get(k) for k in properties} for r in rows}


def named_fields(note: str) -> tuple[list[str], int]:
    """The fields a re-create note names, and how many more it counts."""
    found = re.search(r"afresh \((.*?)(?: and (\d+) more)?: read-only", note)
    assert found, note
    return found.group(1).split(", "), int(found.group(2) or 0)


def test_hubspot_rollback_says_what_re_created_contacts_lose_and_maps_their_ids(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path
) -> None:
    info = hubspot_sandbox.info
    cli = hubspot_cli(info, tmp_path)

    fixed = read_only(hs)
    assert {"createdate", "lastmodifieddate", "notes_last_contacted"} <= set(fixed)

    backup = json.loads(cli("backup", "-c", "e2e", "--json").stdout)
    plan_file = tmp_path / "plan.json"
    cli("scan", "-c", "e2e", "--snapshot", backup["snapshot"], "-o", str(plan_file), "--pass", "stale_contacts")
    plan = json.loads(plan_file.read_text(encoding="utf-8"))
    archived = sorted(c["record_id"] for c in plan["changes"] if c["op"] == "archive")
    assert len(archived) == 48 and len(plan["changes"]) == 48
    before = records(hs, fixed)
    # The read-only properties the archived contacts held a value in: what no re-create can write back.
    held = {name for rid in archived for name, value in before[rid].items() if value not in (None, "")}
    assert {"createdate", "lastmodifieddate", "notes_last_contacted"} <= held
    run = json.loads(cli("apply", str(plan_file), "--yes", "--json").stdout)["run"]

    # The plan, as preview shows it: how many, which fields, and what to do instead.
    rollback_file = tmp_path / "rollback.json"
    cli("rollback", run, "-o", str(rollback_file))
    rollback_plan = json.loads(rollback_file.read_text(encoding="utf-8"))
    notes = rollback_plan["header"]["notes"]
    note = next(n for n in notes if "re-created under new ids" in n)
    assert note.startswith("48 records are re-created under new ids (48 contacts): the CRM sets their created")
    shown, more = named_fields(note)
    assert len(shown) + more == len(held | ENVELOPE) and set(shown) <= held | ENVELOPE
    assert {"createdAt", "createdate", "lastmodifieddate", "notes_last_contacted"} <= set(shown)
    assert "the next scan sees them as new" in note and "recycle bin" in note and "90 days" in note
    preview = " ".join(cli("preview", str(rollback_file)).stdout.split())
    assert note in preview

    rolled = json.loads(cli("rollback", run, "--yes", "--json").stdout)
    # The 48 creates and their links.
    assert (rolled["applied"], rolled["failed"], rolled["skipped"]) == (len(rollback_plan["changes"]), 0, 0)
    done = next(n for n in rolled["notes"] if "re-created under new ids" in n)
    assert done.startswith("48 records were re-created under new ids (48 contacts): the CRM set their created")
    # The command it names pastes as is: with the --config the rollback was given.
    pasted = f"`crmsweep runs show {rolled['run']} --json --config {tmp_path / 'crmsweep.toml'}`"
    assert named_fields(done) == (shown, more) and pasted in done, done

    # The id map, in both answers, as the run log holds it, and true of the portal.
    id_map = rolled["id_map"]
    assert set(id_map) == {"contacts"} and sorted(id_map["contacts"]) == archived
    shown_run = json.loads(cli("runs", "show", rolled["run"], "--json").stdout)
    assert shown_run["id_map"] == id_map
    # The run's notes (the one above among them) and the plan's, under their own keys in both answers.
    assert rolled["run_notes"] == rolled["notes"] and done in rolled["run_notes"]
    assert (shown_run["run_notes"], shown_run["plan_notes"], rolled["plan_notes"]) == (
        rolled["run_notes"], notes, notes)
    shown_text = cli("runs", "show", rolled["run"]).stdout
    facts_text, listed = shown_text.split("\n\nRe-created (48):\n")
    facts = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in facts_text.splitlines() if line.strip()}
    assert facts["Re-created"] == "48 contacts under new ids (old -> new: listed below, and `--json` id_map)"
    rows = [line.split()[:3] for line in listed.split("\n\n")[0].splitlines()[1:]]
    assert len(rows) == 48 and {old: new for _obj, old, new in rows} == id_map["contacts"]
    assert [(i["old_id"], i["new_id"]) for i in shown_run["recreated_items"]] == [(old, new) for _o, old, new in rows]
    home = api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home").home
    assert read_run(home, rolled["run"]).id_map == id_map
    assert json.loads(cli("runs", "show", run, "--json").stdout)["id_map"] == {}  # the apply created nothing
    after = records(hs, [*fixed, "email"])
    emails = records(hs, ["email"], archived=True)
    for old, new in id_map["contacts"].items():
        assert new not in archived and after[new]["email"] == emails[old]["email"]
        # What the note warns of: HubSpot stamped the new record itself.
        assert after[new]["createdate"] != before[old]["createdate"], (old, new)
