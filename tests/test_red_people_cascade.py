"""The people passes that remove people (bounced_emails with action "delete", no_contact_info) hold back a person
whose removal would take a protected record, as stale_contacts does, and count exactly what the rest take."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.backup.snapshot_reader import open_snapshot
from crmsweep.sandbox.server import start_sandbox
from tests.test_protected_cascade_at_apply import configure

LINKS = {"Task": "WhoId", "Event": "WhoId", "OpportunityContactRole": "ContactId"}


@pytest.mark.parametrize("pass_name", ["bounced_emails", "no_contact_info", "stale_contacts"])
@pytest.mark.parametrize("protected", ["Task", "OpportunityContactRole"])
def test_no_person_is_removed_with_a_protected_record_and_the_rest_is_counted(
        pass_name: str, protected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    extra = f'objects = ["{protected.lower()}"]\n\n[passes.bounced_emails]\naction = "delete"\n'
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        ws = configure(sandbox, extra, tmp_path, monkeypatch)
        plan = api.scan(ws, "org", tmp_path / "plan.json", passes=[pass_name], allow_over_cap=True).result.plan
    reader = open_snapshot(ws.home, plan.header.source["id"])
    removed = {c.record_id for c in plan.changes if c.pass_name == pass_name}
    assert removed, f"the seed plants {pass_name} candidates"
    going: dict[str, set[str]] = {}
    for obj, field in LINKS.items():
        frame = reader.frame(obj)
        frame = frame[~frame["IsDeleted"].fillna(False).astype(bool)]
        going[obj] = {str(i) for i, who in zip(frame["Id"], frame[field], strict=True) if str(who) in removed}
    assert going[protected] == set()
    # Held by the protection under its own words, and counted.
    many = {"Task": "tasks", "OpportunityContactRole": "opportunity contact roles"}[protected]
    held = plan.header.held_back.get(pass_name, {})
    assert held.get(f"its {many} would go with it, and {protected} is a protected object", 0) > 0, held
    notes = [n for n in plan.header.notes if n.startswith(f"{pass_name}: removing these")]
    assert notes == [
        f"{pass_name}: removing these contacts and leads also deletes {len(ids)} {obj} record(s) tied to them (the "
        "CRM deletes them with the records they belong to); a rollback brings them back with them"
        for obj, ids in going.items() if ids]


def test_a_person_is_held_for_a_task_protect_ids_names_by_its_short_id(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        ws = configure(sandbox, "", tmp_path, monkeypatch)
        first = api.scan(ws, "org", tmp_path / "plan.json", passes=["stale_contacts"], allow_over_cap=True)
        plan = first.result.plan
        removed = {c.record_id for c in plan.changes}
        tasks = open_snapshot(ws.home, plan.header.source["id"]).frame("Task")
        task, person = next((str(t), str(w)) for t, w in zip(tasks["Id"], tasks["WhoId"], strict=True)
                            if str(w) in removed)
        ws = configure(sandbox, f'ids = ["{task[:15]}"]', tmp_path, monkeypatch)
        again = api.scan(ws, "org", tmp_path / "plan2.json", passes=["stale_contacts"],
                         snapshot_id=plan.header.source["id"], allow_over_cap=True).result.plan
    others = [t for t, w in zip(tasks["Id"], tasks["WhoId"], strict=True) if str(w) == person]
    assert {c.record_id for c in again.changes} == removed - {person}
    assert again.header.held_back["stale_contacts"][f"its tasks would go with it, and [protect] ids names {task}"] \
        == 1, (again.header.held_back, others)
