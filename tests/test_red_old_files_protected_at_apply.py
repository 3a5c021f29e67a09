"""red: old_files at apply holds a file newly on a record [protect] ids names (LiveCheck.holds), but not one on a
record of a `[protect] objects` object: a file the scan proposed, then attached to an opportunity (or the admin
protects Opportunity after the scan, the file on one already), goes to the recycle bin, where empty_accounts keeps an
account whose records of a protected object would go with it, at apply time as at the scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.sandbox.server import start_sandbox
from tests.test_apply_live import other_admin
from tests.test_protected_cascade_at_apply import closed_won, configure, create, deleted, yes


@pytest.mark.parametrize("since", ["protected since the scan", "protected at the scan"])
def test_a_file_attached_to_a_record_of_a_protected_object_since_the_scan_is_kept(
        since: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    protect = 'objects = ["Opportunity"]'
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        ws = configure(sandbox, "" if since == "protected since the scan" else protect, tmp_path, monkeypatch)
        plan = api.scan(ws, "org", tmp_path / "plan.json", passes=["old_files"], allow_over_cap=True).result.plan
        files = [c.record_id for c in plan.changes if c.pass_name == "old_files"]
        assert files, "the seed plants old files"
        sf = other_admin(sandbox)
        account = str(sf.query("SELECT Id FROM Account LIMIT 1")["records"][0]["Id"])
        deal = closed_won(sf, account)
        create(sf, "ContentDocumentLink", {"ContentDocumentId": files[0], "LinkedEntityId": deal, "ShareType": "V"})
        ws = configure(sandbox, protect, tmp_path, monkeypatch)
        report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
        assert report is not None
        assert deleted(sf, "ContentDocument", [files[0]]) == {files[0]: False}
        skipped = {i["id"]: (i["reason"], i["detail"]) for i in report.skipped_items if i["id"] in files}
        assert skipped == {files[0]: ("protected", f"protected at apply time: attached to Opportunity {deal}, and "
                                                   "Opportunity is a protected object")}
        assert deleted(sf, "ContentDocument", files[1:]) == dict.fromkeys(files[1:], True)
