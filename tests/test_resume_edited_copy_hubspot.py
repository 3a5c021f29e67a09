"""A HubSpot rollback stopped after its re-creates landed unanswered (a dropped connection after sending);
someone edits one landed copy; `rollback RUN` resumes it and settles the creates by looking for what they
made. The edited copy is that create's record, not a reason to send it again: where the portal has the
key property it is found by its key and kept, edit and all (in the run's id map, its links made); without
it, values alone cannot tell it from a stranger, so the resume stops (exit 3) naming it, never a second copy.
Everything is read back through hubspot-api-client.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hubspot.crm.objects import SimplePublicObjectInput

from crmsweep import api
from crmsweep.backup.runlog import Outcome, read_run
from crmsweep.connectors.hubspot import RESTORE_KEY_PROPERTY, HubSpotConnector
from crmsweep.errors import EXIT_OK, EXIT_REFUSED, ConnectorError
from crmsweep.paths import Home
from crmsweep.sandbox.server import RunningSandbox
from tests.hubspot_fixtures import CLI_TOKEN_ENV, all_pages, hs, hubspot_cli, hubspot_sandbox

__all__ = ["hs", "hubspot_sandbox"]


def live_contacts(hs: Any) -> set[str]:
    return {r.id for r in all_pages(hs.crm.objects.basic_api, object_type="contacts", archived=False)}


def companies_of(hs: Any, ids: list[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {i: set() for i in ids}
    answer = hs.crm.associations.v4.batch_api.get_page("contacts", "companies", {"inputs": [{"id": i} for i in ids]})
    for result in answer.results:
        found[result._from.id] |= {str(t.to_object_id) for t in result.to}
    return found


def add_key_property(hs: Any) -> None:
    hs.crm.properties.core_api.create("contacts", {"name": RESTORE_KEY_PROPERTY, "label": "crmsweep restore key",
                                                   "type": "string", "fieldType": "text",
                                                   "groupName": "contactinformation"})


class Stopped:
    """An applied pass, then its rollback stopped with every re-create landed but unanswered."""

    def __init__(self, sandbox: RunningSandbox, hs: Any, folder: Path, monkeypatch: pytest.MonkeyPatch,
                 pass_name: str, *, keyed: bool) -> None:
        self.folder, self.home = folder, Home(folder / "home")
        cli = hubspot_cli(sandbox.info, folder)
        backup = json.loads(cli("backup", "-c", "e2e", "--json").stdout)
        plan_file = folder / "plan.json"
        cli("scan", "-c", "e2e", "--snapshot", backup["snapshot"], "-o", str(plan_file), "--pass", pass_name)
        plan = json.loads(plan_file.read_text(encoding="utf-8"))
        self.archived = sorted(c["record_id"] for c in plan["changes"] if c["op"] == "archive")
        self.companies_before = companies_of(hs, self.archived)
        applied = json.loads(cli("apply", str(plan_file), "--yes", "--json").stdout)
        assert applied["failed"] == 0 and applied["applied"] > 0
        self.run_id: str = applied["run"]
        if keyed:
            add_key_property(hs)
        self.after_apply = live_contacts(hs)
        real_create = HubSpotConnector.create

        def lands_then_drops(self: HubSpotConnector, *args: Any, **kwargs: Any) -> Any:
            real_create(self, *args, **kwargs)
            raise ConnectorError("create may or may not have been carried out", code="OUTCOME_UNKNOWN")

        monkeypatch.setenv(CLI_TOKEN_ENV, sandbox.info.token)
        with monkeypatch.context() as patched:
            patched.setattr(HubSpotConnector, "create", lands_then_drops)
            ws = api.Workspace.load(folder / "crmsweep.toml", self.home.root)
            report = api.rollback(ws, self.run_id, confirm=lambda plan: True).report
        assert report is not None and report.stopped
        self.rollback_run = report.run_id
        self.copies = live_contacts(hs) - self.after_apply
        assert len(self.copies) == len(self.archived)
        self.env = {**os.environ, CLI_TOKEN_ENV: sandbox.info.token, "CRMSWEEP_HOME": str(self.home.root)}

    def resume(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "crmsweep", "rollback", self.run_id, "--yes", "--json",
                               "--config", str(self.folder / "crmsweep.toml")], capture_output=True, text=True,
                              env=self.env, stdin=subprocess.DEVNULL, timeout=600)

    def id_map(self) -> dict[str, str]:
        return read_run(self.home, self.rollback_run).id_map.get("contacts", {})


def original_of(hs: Any, stopped: Stopped, copy_ids: set[str]) -> dict[str, str]:
    """Copy id -> the archived contact it re-creates, by the key each copy carries (run:change index)."""
    plan = read_run(stopped.home, stopped.rollback_run).plan
    held = all_pages(hs.crm.objects.basic_api, object_type="contacts", archived=False,
                     properties=[RESTORE_KEY_PROPERTY])
    return {r.id: plan.changes[int(r.properties[RESTORE_KEY_PROPERTY].rpartition(":")[2])].record_id
            for r in held if r.id in copy_ids}


def firstname(hs: Any, record_id: str) -> str | None:
    record = hs.crm.objects.basic_api.get_by_id("contacts", record_id, properties=["firstname"])
    return record.properties.get("firstname")  # type: ignore[no-any-return]


@pytest.mark.parametrize("pass_name", ["no_contact_info", "stale_contacts"])
def test_a_landed_copy_edited_before_the_resume_is_found_by_its_key_and_kept_not_created_again(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pass_name: str
) -> None:
    stopped = Stopped(hubspot_sandbox, hs, tmp_path, monkeypatch, pass_name, keyed=True)
    originals = original_of(hs, stopped, stopped.copies)
    assert set(originals.values()) == set(stopped.archived)
    # The edited copy is one whose original had a company, where any had: its link is checked too.
    linked = sorted(c for c, old in originals.items() if stopped.companies_before[old])
    edited = (linked or sorted(stopped.copies))[0]
    hs.crm.objects.basic_api.update("contacts", edited, SimplePublicObjectInput(properties={"firstname": "Kept"}))

    done = stopped.resume()

    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    resumed = json.loads(done.stdout)
    assert resumed["failed"] == 0
    assert live_contacts(hs) - stopped.after_apply == stopped.copies  # no second copy of any
    assert firstname(hs, edited) == "Kept"  # the edit is theirs, and stays
    id_map = stopped.id_map()
    assert id_map.get(originals[edited]) == edited
    assert set(id_map.values()) == stopped.copies
    if pass_name == "stale_contacts":
        assert linked, "the seed's stale contacts have companies"
        assert companies_of(hs, [edited])[edited] == stopped.companies_before[originals[edited]]


def test_without_the_key_property_an_edited_copy_stops_the_resume_naming_it_and_nothing_is_sent_again(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stopped = Stopped(hubspot_sandbox, hs, tmp_path, monkeypatch, "no_contact_info", keyed=False)
    edited = sorted(stopped.copies)[0]
    sent = firstname(hs, edited)
    assert sent  # what the message asks to put back
    hs.crm.objects.basic_api.update("contacts", edited, SimplePublicObjectInput(properties={"firstname": "Kept"}))

    done = stopped.resume()

    assert done.returncode == EXIT_REFUSED, done.stdout + done.stderr
    message = json.loads(done.stdout)["error"]["message"]
    assert edited in message and "firstname" in message and "second copy" in message
    assert live_contacts(hs) == stopped.after_apply | stopped.copies  # nothing created
    assert firstname(hs, edited) == "Kept"
    state = read_run(stopped.home, stopped.rollback_run)
    assert state.count(Outcome.PENDING) >= 1  # still to settle: the next resume looks again

    # Doing what the message says (the copy's value back as sent) settles it: kept, mapped, no duplicate.
    hs.crm.objects.basic_api.update("contacts", edited, SimplePublicObjectInput(properties={"firstname": sent}))
    again = stopped.resume()
    assert again.returncode == EXIT_OK, again.stdout + again.stderr
    assert live_contacts(hs) - stopped.after_apply == stopped.copies
    assert edited in stopped.id_map().values()
    assert set(stopped.id_map().values()) == stopped.copies
