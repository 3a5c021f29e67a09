"""`snapshots diff` says which stamps it left out of what counts as a change: the audit fields, and the stamp
keys inside a JSON text field (a HubSpot property's `definition` -> `updatedAt`, `updatedUserId`), which a
record whose only difference is there would otherwise be left out for without the admin being told why."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from crmsweep.backup.snapshot import open_snapshot
from crmsweep.backup.snapshot_diff import diff_snapshots
from crmsweep.cli import app
from crmsweep.paths import Home
from crmsweep.providers.hubspot import HUBSPOT_VOCABULARY
from tests.fake_connector import FakeConnector, spec
from tests.test_snapshot import snap


def _definition(label: str, stamp: str) -> str:
    return json.dumps({"name": "region", "label": label, "updatedAt": stamp}, sort_keys=True)


def _backup(home: Home, definitions: list[str]) -> str:
    rows = [{"id": f"p{n}", "definition": d} for n, d in enumerate(definitions, 1)]
    # HubSpot's vocabulary, so the CLI finds its audit keys for these snapshots.
    fake = FakeConnector({"properties": [spec("id"), spec("definition")]}, {"properties": rows},
                         vocabulary=HUBSPOT_VOCABULARY)
    return snap(home, fake, objects=("properties",)).snapshot_id


def test_the_footnote_names_the_json_stamp_keys_left_out(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    old, new = "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z"
    older = _backup(home, [_definition("Region", old), _definition("Region", old)])
    # p1 differs only in the stamp inside its definition, p2 in its label too.
    newer = _backup(home, [_definition("Region", new), _definition("Area", new)])

    found = diff_snapshots(open_snapshot(home, older), open_snapshot(home, newer), id_field="id",
                           fingerprint_field="updatedAt", audit_keys={"definition": ["updatedAt", "updatedUserId"]})
    assert found.audit_keys == {"definition": ("updatedAt", "updatedUserId")}
    assert found.to_dict()["audit_keys"] == {"definition": ["updatedAt", "updatedUserId"]}

    config = tmp_path / "crmsweep.toml"
    config.write_text("", encoding="utf-8")
    args = ["--config", str(config), "--home", str(home.root)]
    runner = CliRunner()
    table = runner.invoke(app, ["snapshots", "diff", older, newer, *args], catch_exceptions=False)
    assert table.exit_code == 0, table.stderr
    assert [" ".join(line.split()) for line in table.stdout.splitlines()] == [
        "OBJECT ADDED REMOVED CHANGED FIELDS",
        "properties 0 0 1",
        "Not counted changed: 1 records whose only differences are the CRM's audit stamps (updatedAt, "
        "lastmodifieddate, hs_lastmodifieddate, hs_updated_by_user_id; in the JSON of definition: updatedAt, "
        "updatedUserId); --all-fields counts them.",
    ]
    doc = json.loads(runner.invoke(app, ["snapshots", "diff", older, newer, "--json", *args]).stdout)
    assert doc["audit_keys"] == {"definition": ["updatedAt", "updatedUserId"]}
    every = json.loads(runner.invoke(app, ["snapshots", "diff", older, newer, "--json", "--all-fields", *args]).stdout)
    assert (every["audit_keys"], every["objects"]["properties"]["changed"]) == ({}, 2)
