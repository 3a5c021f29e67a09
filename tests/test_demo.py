"""`crmsweep demo` is the README's first command: it must tell the whole story and leave the org as it was."""

from __future__ import annotations

import json
import os
import re
import shlex
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crmsweep import api
from crmsweep.api import Workspace
from crmsweep.backup.runlog import Outcome
from crmsweep.cli import app
from crmsweep.demo import DemoResult, run_demo
from crmsweep.model import Change, Op, Plan

IdMap = dict[str, dict[str, str]]


def _workspace(tmp_path: Path, records: int, seed: int) -> Workspace:
    config = tmp_path / "crmsweep.toml"
    config.write_text(f"[sandbox]\nrecords = {records}\nseed = {seed}\n", encoding="utf-8")
    return Workspace.load(config, tmp_path / "home")


@dataclass(frozen=True)
class Told:
    """One demo run, as it was told: the workspace it ran in, its lines and its result."""

    ws: Workspace
    lines: list[str]
    result: DemoResult


def _told(folder: Path, records: int, seed: int, provider: str | None = None) -> Told:
    ws = _workspace(folder, records, seed)
    lines: list[str] = []
    return Told(ws, lines, run_demo(ws, lines.append, provider=provider))


# A demo run takes seconds (the HubSpot one most); tests that only read what one run said and left share it.
# A test that runs the demo again on its workspace takes its own (test_a_second_demo_tells_...).
@pytest.fixture(scope="module")
def salesforce_demo(tmp_path_factory: pytest.TempPathFactory) -> Told:
    return _told(tmp_path_factory.mktemp("salesforce-demo"), 200, 5)


@pytest.fixture(scope="module")
def hubspot_demo(tmp_path_factory: pytest.TempPathFactory) -> Told:
    return _told(tmp_path_factory.mktemp("hubspot-demo"), 250, 21, provider="hubspot")


def _rolled_back(ws: Workspace, result: DemoResult) -> list[Change]:
    """The changes the demo's rollback applied, read back from its run log."""
    state = api.run(ws, result.rollback_run_id).state
    return [state.plan.changes[o.index] for o in state.outcomes if o.outcome is Outcome.APPLIED]


def _closing_says(lines: list[str], changes: list[Change], run_id: str, id_map: IdMap | None = None) -> None:
    """The closing sentences name every record the rollback re-created under a new id and every one it
    undeleted; a create the CRM answered with the old id (`id_map`) is told as restored, not as new."""
    same = Counter(obj for obj, ids in (id_map or {}).items() for old, new in ids.items() if old == new)
    created = Counter(c.object for c in changes if c.op is Op.CREATE) - same
    undeleted = Counter(c.object for c in changes if c.op is Op.UNDELETE)
    back = next(line for line in lines if line.startswith("Back under their own ids: "))
    # An undelete the CRM words as an un-archive (a HubSpot marketing email) is told so.
    undeleted_part = "; ".join(p for p in back.split("; ") if p.rstrip(".").endswith((" undeleted", " un-archived")))
    for obj, n in undeleted.items():
        assert f"{n:,} {obj}" in undeleted_part, back
    restored_part = next((p for p in back.split("; ") if p.rstrip(".").endswith(" restored")), "")
    for obj, n in same.items():
        assert f"{n:,} {obj}" in restored_part, back
    made = [line for line in lines if line.startswith("Re-created under new ids")]
    if created:
        head = f"Re-created under new ids (old -> new: `crmsweep runs show {run_id} --json`): "
        assert len(made) == 1 and made[0].startswith(head), made
        listed = made[0][len(head):]
        assert listed.count(" and ") + listed.count(", ") + 1 == len(created), made[0]
        for obj, n in created.items():
            assert f"{n:,} {obj}" in listed
    else:
        assert made == [] and "Nothing had to be re-created under a new id." in lines


def _scan_lines(lines: list[str]) -> list[str]:
    """What each pass proposed and held back, as step 3 told it."""
    start = lines.index("3. Scan: the cleanup passes read the snapshot (never the CRM) and propose changes as a plan.")
    end = next(i for i, line in enumerate(lines) if line.startswith("   Plan written to "))
    return lines[start + 1 : end]


def test_the_demo_tells_the_story_and_restores_the_org(salesforce_demo: Told) -> None:
    lines, result = salesforce_demo.lines, salesforce_demo.result

    assert result.org_restored and result.applied > 0 and result.restored == result.applied
    told = "\n".join(lines)
    for step in ("1. The org", "2. Back up", "3. Scan", "4. Preview", "5. Apply", "6. Roll back"):
        assert step in told
    assert Path(result.plan_path).is_file()


def test_the_demo_says_which_records_kept_their_ids_and_which_were_re_created(salesforce_demo: Told) -> None:
    """The unused custom fields it removes cannot be undeleted: the rollback re-creates them under new
    ids, and the demo must not claim that every record is back under its own id."""
    ws, lines, result = salesforce_demo.ws, salesforce_demo.lines, salesforce_demo.result

    changes = _rolled_back(ws, result)
    assert Counter(c.object for c in changes if c.op is Op.CREATE) == {"CustomField": 4}
    assert any(c.op is Op.UNDELETE and c.object == "Contact" for c in changes)
    new_ids = api.run(ws, result.rollback_run_id).state.id_map["CustomField"]
    assert len(new_ids) == 4 and all(old != new for old, new in new_ids.items())
    assert not any("Every record is back" in line for line in lines)
    _closing_says(lines, changes, result.rollback_run_id)
    assert sum(result.rolled_back.values()) == result.restored == len(changes)
    assert "a scan holds them back for 30 days ([protect] recent_days)" in "\n".join(lines)


def test_a_second_demo_tells_the_first_one_s_story(tmp_path: Path) -> None:
    """The first demo leaves re-created fields behind (created today). A second one seeds a fresh sandbox,
    so it proposes what the first did; told to keep the sandbox, it holds those fields back as recent."""
    ws = _workspace(tmp_path, 200, 5)
    first: list[str] = []
    again: list[str] = []
    kept: list[str] = []

    run_demo(ws, first.append)
    second = run_demo(ws, again.append)
    run_demo(ws, kept.append, reset=False)

    assert _scan_lines(again) == _scan_lines(first)
    assert "   unused_custom_fields: 4 proposed;" in "\n".join(_scan_lines(first))
    _closing_says(again, _rolled_back(ws, second), second.rollback_run_id)
    fields_kept = next(line for line in _scan_lines(kept) if line.startswith("   unused_custom_fields: "))
    assert fields_kept.startswith("   unused_custom_fields: 0 proposed;"), fields_kept
    assert "held back 5 (created in the last 30 days)" in fields_kept


def test_the_demo_on_hubspot_archives_re_creates_and_says_what_it_cannot_do(hubspot_demo: Told) -> None:
    ws, lines, result = hubspot_demo.ws, hubspot_demo.lines, hubspot_demo.result

    told = "\n".join(lines)
    assert result.org_restored, told
    assert result.applied == len(Plan.from_json(Path(result.plan_path).read_text(encoding="utf-8"))[0].changes)
    assert "stale_contacts: 48 proposed; held back 2 (on an open deal)\n" in told
    assert "skipped: this CRM cannot deactivate users through its API; set [passes.inactive_users] reassign_to" in told
    changes = _rolled_back(ws, result)
    assert {c.object for c in changes if c.op is Op.CREATE} >= {"contacts", "companies"}
    _closing_says(lines, changes, result.rollback_run_id, api.run(ws, result.rollback_run_id).state.id_map)
    assert not any("Every record is back" in line for line in lines)

    # Said, not hidden: the re-created records look new to the next scan, and how to keep the originals.
    assert "records were re-created under new ids (" in told and "54 contacts" in told
    assert "createdate" in told and "recycle bin" in told


def test_the_demo_on_hubspot_speaks_hubspot(hubspot_demo: Told) -> None:
    """Sentences built from the vocabulary: one deal, owners not users, archives not deletes."""
    told = "\n".join(hubspot_demo.lines)
    for wrong in ("open deals)", "open tickets", "<user id>", "Delete people", "Deactivate (or"):
        assert wrong not in told, wrong
    assert 'reassign_to = "<owner id>" to hand these tasks to that owner' in told
    assert "  Archive people (contacts) with no activity for years, except those on an open deal." in told
    assert "  Archive marketing emails unused for a number of days (the CRM restores them, same id)." in told


def test_the_hubspot_demo_tells_properties_restored_under_their_names_as_not_new(hubspot_demo: Told) -> None:
    """HubSpot gives an archived property back under its name, its created date kept: the id map maps each
    to itself, the next scan proposes them again. So neither the rollback's note nor the closing may call
    them re-created under new ids or created today; the contacts and companies are, and are told so."""
    ws, lines, result = hubspot_demo.ws, hubspot_demo.lines, hubspot_demo.result
    id_map = api.run(ws, result.rollback_run_id).state.id_map
    properties = id_map["properties"]
    assert properties and all(old == new for old, new in properties.items())
    note = next(line for line in lines if "re-created under new ids (" in line)
    new_ids = sum(1 for ids in id_map.values() for old, new in ids.items() if old != new)
    assert f"{new_ids} records were re-created under new ids (" in note and "properties" not in note, note
    for name in ("filled", "label", "fieldType", "groupName", "formField"):
        assert f" {name}," not in note and f"({name}," not in note, (name, note)

    changes = _rolled_back(ws, result)
    _closing_says(lines, changes, result.rollback_run_id, id_map)
    back = next(line for line in lines if line.startswith("Back under their own ids: "))
    assert f"{len(properties)} properties restored" in back, back
    made = next(line for line in lines if line.startswith("Re-created under new ids"))
    assert "properties" not in made and "contacts" in made, made


def test_the_salesforce_demo_note_names_only_what_the_field_create_cannot_write(salesforce_demo: Told) -> None:
    """The re-created custom fields are definitions: no activity history to lose, and `filled` is crmsweep's
    own count, not a field of the CRM's, so the note names neither."""
    note = next(line for line in salesforce_demo.lines if "re-created under new ids (" in line)
    assert "(4 CustomField)" in note and "activity history" not in note, note
    named = note.split("afresh (")[1].split(": read-only")[0].split(", ")
    assert "filled" not in named and "CreatedDate" in named, note
    # Written through FullName (Object.Name__c): the re-created field has the same name, on the same object.
    assert "DeveloperName" not in named and "TableEnumOrId" not in named, note


def test_the_re_create_note_names_the_first_records_and_runs_show_lists_every_one(salesforce_demo: Told) -> None:
    import json

    from typer.testing import CliRunner

    from crmsweep.cli import app

    ws, run_id = salesforce_demo.ws, salesforce_demo.result.rollback_run_id
    state = api.run(ws, run_id).state
    made = [(c.object, c.record_id, state.id_map[c.object][c.record_id])
            for c in state.plan.changes if c.op is Op.CREATE]
    assert len(made) == 4
    note = next(line for line in salesforce_demo.lines if "re-created under new ids (" in line)
    first = ", ".join(f"{obj} {old} -> {new}" for obj, old, new in made[:3])
    assert note.endswith(f"; re-created: {first} and 1 more: `crmsweep runs show {run_id}` lists them all"), note

    common = ["--config", str(ws.config.path), "--home", str(ws.home.root)]
    shown = CliRunner().invoke(app, ["runs", "show", run_id, *common]).stdout
    table = shown.split("\nRe-created (4):\n")[1].split("\n\n")[0].splitlines()
    assert table[0].split() == ["OBJECT", "OLD", "ID", "NEW", "ID", "LABEL"]
    assert [tuple(row.split()[:3]) for row in table[1:]] == made
    answer = json.loads(CliRunner().invoke(app, ["runs", "show", run_id, "--json", *common]).stdout)
    assert [(i["object"], i["old_id"], i["new_id"]) for i in answer["recreated_items"]] == made
    # The command the note names pastes as is: with the --config and --home the command was given.
    pasted = (f"`crmsweep runs show {run_id} --config {os.path.abspath(str(ws.config.path))} "
              f"--home {os.path.abspath(ws.home.root)}` lists them all")
    assert any(n.endswith(pasted) for n in answer["run_notes"]), answer["run_notes"]


def test_the_demo_on_hubspot_says_archive_where_hubspot_archives(hubspot_demo: Told) -> None:
    """DELETE /marketing/v3/emails/{id} archives (the email stays readable, un-archived with its id): the
    plan's op is delete, but the preview, the rollback's note and the closing say archive and un-archive.
    Nothing the plan does touches an owner, so no hand-back is told."""
    ws, lines, result = hubspot_demo.ws, hubspot_demo.lines, hubspot_demo.result
    told = "\n".join(lines)
    plan = Plan.from_json(Path(result.plan_path).read_text(encoding="utf-8"))[0]
    emails = sum(1 for c in plan.changes if c.object == "marketing_emails")
    assert emails and all(c.op is Op.DELETE for c in plan.changes if c.object == "marketing_emails")
    assert f"   marketing_emails: {emails} archive\n" in told, told
    assert "delete marketing_emails" not in told and "marketing_emails: 6 delete" not in told
    assert "handed back" not in told
    header = "6. Roll back: the inverse plan (records re-created from their before-images), applied the same way."
    assert header in lines
    # The demo it points to next is this one (the default provider's would tell another story).
    assert "The next `crmsweep demo --provider hubspot` seeds a fresh sandbox first." in told, told
    back = next(line for line in lines if line.startswith("Back under their own ids: "))
    assert f"{emails} marketing_emails un-archived" in back and "marketing_emails undeleted" not in back, back
    # The rollback plan's first note (what preview shows of it): only the ids it keeps, in HubSpot's words.
    note = api.run(ws, result.rollback_run_id).state.plan.header.notes[0]
    assert "recycle-bin undelete" not in note and "reactivation" not in note, note
    assert f"{emails} un-archive" in note and "re-created with new ids" in note, note
    undone = [c for c in _rolled_back(ws, result) if c.object == "marketing_emails"]
    assert len(undone) == emails and all(c.reason.startswith("undo archive: ") for c in undone), undone[0].reason


def test_every_command_the_demo_prints_pastes_as_is(tmp_path: Path) -> None:
    """Told through the CLI with a --config and a --home (spaces in both), each `crmsweep ...` it prints
    names them, quoted; run as printed, the closing `runs show` answers about the demo's rollback run."""
    folder = tmp_path / "a folder"
    folder.mkdir()
    ws = _workspace(folder, 200, 5)
    config, home = str(ws.config.path), str(folder / "my home")
    runner = CliRunner()
    told = runner.invoke(app, ["demo", "--config", config, "--home", home], catch_exceptions=False)
    assert told.exit_code == 0, told.stdout
    commands = re.findall(r"`(crmsweep [^`]*)`", told.stdout)
    assert any(c.startswith("crmsweep runs show ") for c in commands), told.stdout
    assert any(c.startswith("crmsweep scan -c ") for c in commands), told.stdout
    for command in commands:
        words = shlex.split(command)
        assert words[-4:] == ["--config", config, "--home", home], command
    show = next(c for c in commands if c.startswith("crmsweep runs show ") and " --json " in c)
    answer = runner.invoke(app, shlex.split(show)[1:], catch_exceptions=False)
    assert answer.exit_code == 0, answer.stdout
    assert json.loads(answer.stdout)["kind"] == "rollback"
