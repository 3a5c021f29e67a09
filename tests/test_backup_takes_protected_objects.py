"""A backup takes the `[protect] objects` as well as what the passes read: a scan tells a protected record
among the records a change touches (a file on one) only from its rows, and old_files does not run on a
snapshot that lacks them."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.backup.snapshot_reader import open_snapshot
from crmsweep.sandbox.server import start_sandbox
from tests.test_protected_cascade import scan_with


def test_a_backup_takes_a_protected_object_no_pass_reads_and_old_files_runs_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start_sandbox(tmp_path / "state", records=200, seed=7) as sandbox:
        scanned = scan_with(sandbox, 'objects = ["event"]', tmp_path, monkeypatch)
    plan = scanned.result.plan
    ws = api.Workspace.load(tmp_path / "crmsweep.toml", tmp_path / "home")
    reader = open_snapshot(ws.home, plan.header.source["id"])
    # Named in any case, as the protections match it; no pass reads it, and the backup took it.
    assert "event" in {name.casefold() for name in reader.manifest.objects}
    assert "old_files" not in scanned.result.skipped
    assert any(c.pass_name == "old_files" for c in plan.changes), "the seed plants old unattached files"
