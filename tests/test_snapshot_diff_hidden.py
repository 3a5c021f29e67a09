"""`snapshots diff` must never hide a change: a value written into a field only one backup has, a change
the CRM makes without moving the record's fingerprint (an archived definition), and an archive, which is a
removal, not a change; and it must not count one either where only stamps inside a definition moved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from crmsweep.backup.snapshot import open_snapshot
from crmsweep.backup.snapshot_diff import WHOLE_ROWS_UP_TO, diff_snapshots
from crmsweep.model import FieldKind
from crmsweep.paths import Home
from tests.fake_connector import FakeConnector, spec
from tests.test_snapshot import snap

OLD, NEW = "2026-01-01T00:00:00.000Z", "2026-02-01T00:00:00.000Z"
STAMPS = ("LastModifiedDate", "SystemModstamp")


def _backup(home: Home, names: list[str], rows: list[dict[str, Any]]) -> Any:
    kinds = {"SystemModstamp": FieldKind.DATETIME, "LastModifiedDate": FieldKind.DATETIME, "archived": FieldKind.BOOL}
    fields = {"Contact": [spec(n, kinds.get(n, FieldKind.STRING)) for n in names]}
    return open_snapshot(home, snap(home, FakeConnector(fields, {"Contact": rows}), objects=("Contact",)).snapshot_id)


def _diff(a: Any, b: Any, **rules: Any) -> Any:
    found = diff_snapshots(a, b, id_field="Id", fingerprint_field="SystemModstamp", detail=True, **rules)
    return found.objects["Contact"]


def test_a_value_in_a_field_only_one_backup_has_is_a_change_not_a_stamp(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    before = _backup(home, ["Id", "Name", "Fax", "SystemModstamp"],
                     [{"Id": f"00{n}", "Name": "x", "Fax": "1" if n == 3 else None, "SystemModstamp": OLD}
                      for n in (1, 2, 3, 4)])
    # Region is new in B and written into 001; 002 only has new stamps; Fax (dropped in B) held 003's value.
    after = _backup(home, ["Id", "Name", "Region", "SystemModstamp"],
                    [{"Id": "001", "Name": "x", "Region": "EMEA", "SystemModstamp": NEW},
                     {"Id": "002", "Name": "x", "Region": None, "SystemModstamp": NEW},
                     {"Id": "003", "Name": "x", "Region": None, "SystemModstamp": OLD},
                     {"Id": "004", "Name": "x", "Region": None, "SystemModstamp": OLD}])
    found = _diff(before, after, audit_fields=STAMPS)
    assert (found.changed, found.stamps_only) == (2, 1)
    assert found.changed_fields == {"001": ["Region"], "003": ["Fax"]}
    counted = diff_snapshots(before, after, id_field="Id", fingerprint_field="SystemModstamp").objects["Contact"]
    assert counted.changed == 3  # without stamps left out, 002's new stamp counts too


def _definition(label: str, stamp: str, archived: bool = False) -> str:
    return json.dumps({"name": "region", "label": label, "archived": archived, "updatedAt": stamp}, sort_keys=True)


def test_a_change_that_leaves_the_fingerprint_as_it_was_is_counted_on_a_small_object(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    names = ["Id", "definition", "SystemModstamp"]
    before = _backup(home, names, [{"Id": f"00{n}", "definition": _definition("Region", OLD), "SystemModstamp": OLD}
                                   for n in (1, 2)])
    after = _backup(home, names, [{"Id": "001", "definition": _definition("Region", OLD, archived=True),
                                   "SystemModstamp": OLD},
                                  {"Id": "002", "definition": _definition("Region", OLD), "SystemModstamp": OLD}])
    assert before.manifest.objects["Contact"].rows <= WHOLE_ROWS_UP_TO
    found = _diff(before, after, audit_fields=STAMPS)
    assert (found.changed, found.changed_fields) == (1, {"001": ["definition"]})


def test_stamps_inside_a_json_field_the_provider_declares_are_stamps(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    names = ["Id", "definition", "SystemModstamp"]
    before = _backup(home, names, [{"Id": f"00{n}", "definition": _definition("Region", OLD), "SystemModstamp": OLD}
                                   for n in (1, 2)])
    after = _backup(home, names, [{"Id": "001", "definition": _definition("Region", NEW), "SystemModstamp": NEW},
                                  {"Id": "002", "definition": _definition("Area", NEW), "SystemModstamp": NEW}])
    found = _diff(before, after, audit_fields=STAMPS, audit_keys={"definition": ("updatedAt",)})
    assert (found.changed, found.stamps_only, found.changed_fields) == (1, 1, {"002": ["definition"]})
    undeclared = _diff(before, after, audit_fields=STAMPS)
    assert (undeclared.changed, undeclared.stamps_only) == (2, 0)


def test_an_archive_is_a_removal_and_an_unarchive_an_addition(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    names = ["Id", "Name", "archived", "SystemModstamp"]
    before = _backup(home, names, [{"Id": "001", "Name": "x", "archived": False, "SystemModstamp": OLD},
                                   {"Id": "002", "Name": "x", "archived": True, "SystemModstamp": OLD},
                                   {"Id": "003", "Name": "x", "archived": False, "SystemModstamp": OLD}])
    after = _backup(home, names, [{"Id": "001", "Name": "x", "archived": True, "SystemModstamp": NEW},
                                  {"Id": "002", "Name": "x", "archived": False, "SystemModstamp": NEW},
                                  {"Id": "003", "Name": "y", "archived": False, "SystemModstamp": NEW}])
    found = _diff(before, after, audit_fields=STAMPS, deleted_field="archived")
    assert (found.added, found.removed, found.changed) == (1, 1, 1)
    assert (found.added_ids, found.removed_ids, found.changed_fields) == (["002"], ["001"], {"003": ["Name"]})
    plain = _diff(before, after, audit_fields=STAMPS)
    assert (plain.added, plain.removed, plain.changed) == (0, 0, 3)
