"""Every pass on the default seeded sandbox of each provider: it proposes exactly the records the seed planted
as its candidates, the protections hold back exactly the planted protected ones, near-misses are left
alone, and a pass the provider cannot support is skipped with its reason.

The seed writes what it planted to `planted.json` in the sandbox state folder (crmsweep/sandbox/planted.py);
this test runs the real backup and scan through the library, as `crmsweep scan` does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from crmsweep import api
from crmsweep.cleanup.passes import PASSES
from crmsweep.providers import names as provider_names
from crmsweep.sandbox.planted import read_planted
from crmsweep.sandbox.server import start_sandbox

TOKEN_ENV = "PLANTED_PASSES_TOKEN"
# The settings the seeds planted for, beyond the defaults: hand-overs need an owner to hand to (HubSpot
# cannot deactivate users), and orphaned tasks are closed (a reassignment needs a chosen user).
SETTINGS = {
    "salesforce": '[passes.orphaned_tasks]\naction = "close"\n',
    "hubspot": '[passes.orphaned_tasks]\naction = "close"\n\n[passes.inactive_users]\nreassign_to = "71000001"\n',
}


@pytest.fixture(scope="module", params=provider_names())
def scanned(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    provider = request.param
    folder = tmp_path_factory.mktemp(f"planted-{provider}")
    with start_sandbox(folder / "state", provider=provider) as sandbox:  # the default size and seed
        info = sandbox.info
        planted = read_planted(info.state_dir)
        settings = SETTINGS[provider]
        config = folder / "crmsweep.toml"
        config.write_text(
            f'[connections.seeded]\nprovider = "{provider}"\nurl = "{info.url}"\ntoken_env = "{TOKEN_ENV}"\n'
            f'ca_file = "{info.ca_file}"\n{settings}',
            encoding="utf-8",
        )
        mp = pytest.MonkeyPatch()
        mp.setenv(TOKEN_ENV, info.token)
        try:
            ws = api.Workspace.load(config, folder / "home")
            outcome = api.scan(ws, "seeded", folder / "plan.json", allow_over_cap=True)
        finally:
            mp.undo()
        yield {"provider": provider, "planted": planted, "result": outcome.result}


def _proposed(result: Any, name: str) -> set[str]:
    return {c.record_id for c in result.plan.changes if c.pass_name == name}


@pytest.mark.parametrize("name", [n for n, s in PASSES.items() if not s.report_only])
def test_each_pass_proposes_exactly_the_planted_candidates(scanned: dict[str, Any], name: str) -> None:
    result, planted = scanned["result"], scanned["planted"]
    if name not in planted:
        assert name in result.skipped, f"{name} ran on {scanned['provider']} but the seed planted nothing for it"
        assert result.skipped[name]
        return
    entry = planted[name]
    assert name not in result.skipped, f"{name} skipped: {result.skipped.get(name)}"
    assert _proposed(result, name) == set(entry["proposed"])
    assert not _proposed(result, name) & set(entry.get("near_misses", entry.get("near", [])))
    assert sum(result.held_back.get(name, {}).values()) == len(entry.get("held", []))


def test_report_only_passes_find_exactly_the_planted_groups(scanned: dict[str, Any]) -> None:
    result, planted = scanned["result"], scanned["planted"]
    for name, spec in PASSES.items():
        if not spec.report_only:
            continue
        found = {frozenset(item.record_ids) for item in result.plan.header.review if item.pass_name == name}
        entry = planted[name]
        groups = entry.get("groups") or entry.get("pairs") or []
        assert found >= {frozenset(map(str, group)) for group in groups}, name


def test_bounced_emails_lists_the_ids_it_holds_back_and_they_are_planted_held(scanned: dict[str, Any]) -> None:
    result, planted = scanned["result"], scanned["planted"]
    listed: set[str] = set()
    for note in result.plan.header.notes:
        if note.startswith("bounced_emails: held back, "):
            for part in note.rsplit("): ", 1)[1].split("; "):
                listed.update(part.split(" ", 1)[1].split(", "))
    held = {str(i) for i in planted["bounced_emails"]["held"]}
    # The pass's own hold-backs (soft, another address); the rest of the planted held are recent (a protection).
    assert listed and listed <= held
    assert not listed & _proposed(result, "bounced_emails")
    if scanned["provider"] == "salesforce":  # the seed renamed this contact after its address bounced
        assert "0030700000000D0AAI" in listed
