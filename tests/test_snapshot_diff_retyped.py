"""`snapshots diff` of a field retyped in the CRM between the backups (a datetime become a text): the diff
names the field and both types, and a record counts changed only where `--detail` can name the field
whose value differs (a datetime and the same instant written as text are one value)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from crmsweep.backup.snapshot import open_snapshot
from crmsweep.backup.snapshot_diff import diff_snapshots
from crmsweep.cli import app
from crmsweep.model import FieldKind
from crmsweep.paths import Home
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY
from tests.fake_connector import FakeConnector, spec
from tests.test_snapshot import snap

DUE = ["2026-01-01T00:00:00.000Z", "2026-01-02T00:00:00.000Z", None, "2026-01-04T00:00:00.000Z"]
# 001 keeps its instant as text, 002 is rewritten, 003 stays empty, 004 is emptied.
DUE_AS_TEXT = ["2026-01-01T00:00:00.000Z", "next week", None, None]


def _backup(home: Home, kind: FieldKind, values: list[Any]) -> str:
    rows = [{"Id": f"00{n}", "Name": "x", "Due": v} for n, v in enumerate(values, 1)]
    # Salesforce's vocabulary, so the CLI finds the provider these snapshots were taken of.
    fake = FakeConnector({"Note": [spec("Id"), spec("Name"), spec("Due", kind)]}, {"Note": rows},
                         vocabulary=SALESFORCE_VOCABULARY)
    return snap(home, fake, objects=("Note",)).snapshot_id


def test_a_retyped_field_is_named_and_its_values_compared_as_one_value(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    older, newer = _backup(home, FieldKind.DATETIME, DUE), _backup(home, FieldKind.STRING, DUE_AS_TEXT)
    for a, b, kinds in ((older, newer, ["datetime", "string"]), (newer, older, ["string", "datetime"])):
        found = diff_snapshots(open_snapshot(home, a), open_snapshot(home, b), id_field="Id",
                               fingerprint_field="SystemModstamp", detail=True).objects["Note"]
        assert found.fields_retyped == {"Due": kinds}
        assert (found.changed, found.changed_fields) == (2, {"002": ["Due"], "004": ["Due"]})
        counted = diff_snapshots(open_snapshot(home, a), open_snapshot(home, b), id_field="Id",
                                 fingerprint_field="SystemModstamp").objects["Note"]
        assert counted.changed == 2

    config = tmp_path / "crmsweep.toml"
    config.write_text("", encoding="utf-8")
    args = ["--config", str(config), "--home", str(home.root)]
    runner = CliRunner()
    table = runner.invoke(app, ["snapshots", "diff", older, newer, "--detail", *args], catch_exceptions=False)
    assert table.exit_code == 0, table.stderr
    lines = [" ".join(line.split()) for line in table.stdout.splitlines()]
    assert lines == [
        "OBJECT ADDED REMOVED CHANGED FIELDS",
        "Note 0 0 2 ~Due",
        "Note: field Due is datetime in A, string in B: a record counts changed only where its value reads "
        "otherwise.",
        "Note ~ 002: Due",
        "Note ~ 004: Due",
    ]
    doc = json.loads(runner.invoke(app, ["snapshots", "diff", older, newer, "--json", *args]).stdout)
    assert doc["objects"]["Note"]["fields_retyped"] == {"Due": ["datetime", "string"]}
