"""`crmsweep sandbox reset`: a built-in sandbox seeded afresh without serving it (a script's reset, where `sandbox
serve --reset` needed a Ctrl-C once it printed its url); its connection then backs up the fresh org."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crmsweep import api
from tests.test_cli import Cli


@pytest.mark.parametrize("provider, connection, people", [("salesforce", "sandbox-salesforce", "Contact"),
                                                           ("hubspot", "sandbox-hubspot", "contacts")])
def test_a_reset_seeds_the_org_its_connection_then_backs_up(
    tmp_path: Path, provider: str, connection: str, people: str
) -> None:
    config = tmp_path / "crmsweep.toml"
    config.write_text("[sandbox]\nrecords = 40\nseed = 3\n", encoding="utf-8")
    cli = Cli(tmp_path / "home", config)
    ws = api.Workspace.load(config, tmp_path / "home")

    def people_backed_up() -> int:
        return api.backup(ws, connection, objects=[people]).objects[people].rows

    answer = json.loads(cli("sandbox", "reset", "--provider", provider, "--records", "25", "--json").stdout)
    assert answer == {"provider": provider, "connection": connection, "state_dir": str(ws.home.sandbox_dir(provider)),
                      "records": 25, "seed": 3}
    assert people_backed_up() == 25
    # Without --records, the config's [sandbox] records; and the text answer says where and what.
    told = cli("sandbox", "reset", "--provider", provider).stderr
    assert f"Sandbox ({provider}) seeded afresh: 40 contacts, seed 3" in told and f"Connection {connection}" in told
    assert people_backed_up() == 40


def test_a_reset_out_of_bounds_is_bad_input(tmp_path: Path) -> None:
    config = tmp_path / "crmsweep.toml"
    config.write_text("", encoding="utf-8")
    cli = Cli(tmp_path / "home", config)
    result = cli("sandbox", "reset", "--records", "0", expect=2)
    assert "--records" in result.stderr and not (tmp_path / "home").exists()
    assert "unknown provider" in cli("sandbox", "reset", "--provider", "acme", expect=2).stderr
