"""old_files at apply keeps a file attached since the scan to a record of a protected object of the org's own
(`[protect] objects = ["Invoice__c"]`), whose key prefix no documentation lists: apply learns the org's prefixes
from the CRM's list of objects (the global describe), so the new link's record is known for an invoice's."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.sandbox.server import start_sandbox
from tests.test_apply_live import other_admin
from tests.test_protected_cascade_at_apply import configure, create, deleted, yes

PROTECT = 'objects = ["Invoice__c"]'


def test_a_file_attached_since_the_scan_to_a_record_of_a_protected_custom_object_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        sf = other_admin(sandbox)
        listed = {o["name"]: o for o in sf.describe()["sobjects"]}
        assert (listed["Invoice__c"]["keyPrefix"], listed["Invoice__c"]["custom"]) == ("a0X", True)
        invoice = create(sf, "Invoice__c", {"Name": "INV-0042"})
        ws = configure(sandbox, PROTECT, tmp_path, monkeypatch)
        plan = api.scan(ws, "org", tmp_path / "plan.json", passes=["old_files"], allow_over_cap=True).result.plan
        files = [c.record_id for c in plan.changes if c.pass_name == "old_files"]
        assert len(files) >= 2, "the seed plants old unattached files"
        create(sf, "ContentDocumentLink", {"ContentDocumentId": files[0], "LinkedEntityId": invoice, "ShareType": "V"})
        report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
        assert report is not None and report.failed == 0
        assert deleted(sf, "ContentDocument", [files[0]]) == {files[0]: False}
        skipped = {i["id"]: (i["reason"], i["detail"]) for i in report.skipped_items if i["id"] in files}
        assert skipped == {files[0]: ("protected", f"protected at apply time: attached to Invoice__c {invoice}, and "
                                                   "Invoice__c is a protected object")}
        assert deleted(sf, "ContentDocument", files[1:]) == dict.fromkeys(files[1:], True)
