"""`snapshots diff` of a backup of fewer objects (`backup --object Contact`) against a fuller one: an object
one snapshot lacks is not compared, so none of its rows count removed (or, the other way round, added): a
manifest lists only what its backup took, and cannot say the object is gone from the CRM."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crmsweep.backup.snapshot import open_snapshot
from crmsweep.backup.snapshot_diff import diff_snapshots
from crmsweep.paths import Home
from tests.fake_connector import FakeConnector, spec
from tests.test_snapshot import snap

FIELDS = {"Account": [spec("Id"), spec("Name")], "Contact": [spec("Id"), spec("Name")]}
ACCOUNTS = [{"Id": f"A0{n}", "Name": "x"} for n in (1, 2, 3)]


def _backup(home: Home, objects: tuple[str, ...], contacts: list[dict[str, Any]]) -> Any:
    fake = FakeConnector(FIELDS, {"Account": ACCOUNTS, "Contact": contacts})
    return open_snapshot(home, snap(home, fake, objects=objects).snapshot_id)


def test_an_object_one_snapshot_did_not_take_counts_no_row(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    full = _backup(home, ("Account", "Contact"), [{"Id": "C01", "Name": "x"}, {"Id": "C02", "Name": "x"}])
    # Only Contact backed up: C01 renamed, C02 deleted, C03 added; Account's three rows not taken.
    contacts_only = _backup(home, ("Contact",), [{"Id": "C01", "Name": "y"}, {"Id": "C03", "Name": "x"}])

    forward = diff_snapshots(full, contacts_only, id_field="Id", fingerprint_field="SystemModstamp", detail=True)
    account, contact = forward.objects["Account"], forward.objects["Contact"]
    assert (account.status, account.uncompared, account.added, account.removed, account.removed_ids) == (
        "only_in_a", 3, 0, 0, [])
    assert (contact.added, contact.removed, contact.changed) == (1, 1, 1)
    assert sum(d.removed for d in forward.objects.values()) == 1
    assert forward.to_dict(detail=True)["objects"]["Account"] == {
        "status": "only_in_a", "uncompared_rows": 3, "added": 0, "removed": 0, "changed": 0, "stamps_only": 0,
        "fields_added": [], "fields_removed": [], "fields_retyped": {},
        "added_ids": [], "removed_ids": [], "changed_records": {}}

    backward = diff_snapshots(contacts_only, full, id_field="Id", fingerprint_field="SystemModstamp")
    mirrored = backward.objects["Account"]
    assert (mirrored.status, mirrored.uncompared, mirrored.added, mirrored.removed) == ("only_in_b", 3, 0, 0)
    assert sum(d.added for d in backward.objects.values()) == 1
