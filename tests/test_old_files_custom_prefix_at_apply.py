"""old_files at apply keeps a file attached since the scan to a record of a protected object of the org's own
(`[protect] objects = ["Invoice__c"]`), whose key prefix no documentation lists: apply learns the org's prefixes
from the CRM's list of objects (the global describe), so the new link's record is known for an invoice's."""

from __future__ import annotations

from pathlib import Path

import pytest

from crmsweep import api
from crmsweep.cleanup.passes import PASSES, LiveRows
from crmsweep.cleanup.protect import Protections
from crmsweep.model import Change, Op
from crmsweep.sandbox.faults import FaultRule
from crmsweep.sandbox.server import start_sandbox
from tests.pass_views import NOW, SF, sfid
from tests.test_apply_live import other_admin
from tests.test_protected_cascade_at_apply import configure, create, deleted, yes

PROTECT = 'objects = ["Invoice__c"]'


def test_a_file_attached_since_the_scan_to_a_record_of_a_protected_custom_object_is_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        sf = other_admin(sandbox)
        listing = sf.describe()
        assert listing is not None
        listed = {o["name"]: o for o in listing["sobjects"]}
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


# --- the pure hold, on the CRM's prefixes as apply hands them over (or why it could not) -----------------

FILE = sfid("069", 1)
INVOICE = sfid("a0X", 7)
ACCOUNT = sfid("001", 3)
UNREAD = "Salesforce answered 403 INSUFFICIENT_ACCESS to GET /sobjects/"


def held(linked: list[str], prefixes: dict[str, str] | None, unread: str | None = None,
         objects: tuple[str, ...] = ("Invoice__c",)) -> str | None:
    check = PASSES["old_files"].live_check
    assert check is not None and check.holds is not None
    change = Change(Op.DELETE, "ContentDocument", FILE, {"Id": FILE}, {}, "old", "old_files")
    rows = LiveRows(record={"Id": FILE}, vocabulary=SF, key_prefixes=prefixes, prefixes_unread=unread,
                    related={"links": [{"ContentDocumentId": FILE, "LinkedEntityId": r} for r in linked]})
    return check.holds(change, rows, Protections(vocabulary=SF, now=NOW, objects=objects))


def test_a_link_is_told_by_the_org_s_prefixes_and_only_a_protected_object_s_holds_the_file() -> None:
    org = {"Account": "001", "Invoice__c": "a0X", "Project__c": "a0Y"}
    assert held([ACCOUNT, INVOICE], org) == f"attached to Invoice__c {INVOICE}, and Invoice__c is a protected object"
    assert held([ACCOUNT, sfid("a0Y", 2)], org) is None
    # Where the CRM lists two objects under one prefix, a protected one among them holds the file.
    assert held([INVOICE], {"Invoice__c": "a0X", "Other__c": "a0X"}) == (
        f"attached to Invoice__c {INVOICE}, and Invoice__c is a protected object")
    # Named in any case, as the protections match object names.
    assert held([INVOICE], org, objects=("invoice__c",)) == (
        f"attached to Invoice__c {INVOICE}, and Invoice__c is a protected object")


def test_without_the_org_s_prefixes_a_link_no_documented_prefix_tells_holds_the_file() -> None:
    assert held([ACCOUNT, INVOICE], None, UNREAD) == (
        f"attached to {INVOICE}, which may be a record of Invoice__c: the CRM's list of objects, which tells a "
        f"record's object by its id, could not be read ({UNREAD})")
    # Links the documented prefixes tell are judged as ever; with no undocumented object protected, nothing is
    # in doubt.
    assert held([ACCOUNT], None, UNREAD) is None
    assert held([INVOICE], None, UNREAD, objects=("Contract",)) is None


def test_an_apply_that_cannot_read_the_org_s_prefixes_stops_before_deleting_and_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with start_sandbox(tmp_path / "state", records=400, seed=7) as sandbox:
        sf = other_admin(sandbox)
        invoice = create(sf, "Invoice__c", {"Name": "INV-0043"})
        ws = configure(sandbox, PROTECT, tmp_path, monkeypatch)
        plan = api.scan(ws, "org", tmp_path / "plan.json", passes=["old_files"], allow_over_cap=True).result.plan
        files = [c.record_id for c in plan.changes if c.pass_name == "old_files"]
        create(sf, "ContentDocumentLink", {"ContentDocumentId": files[0], "LinkedEntityId": invoice, "ShareType": "V"})
        # The global describe answers 503 however often it is asked: the run stops, resumable, deleting nothing.
        sandbox.set_faults([FaultRule(kind="status", status=503, method="GET", path=r"/sobjects/?$")])
        first = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
        assert first is not None and first.stopped is not None and (first.applied, first.failed) == (0, 0)
        assert "when crmsweep tried to describe the org's objects" in first.stopped
        assert deleted(sf, "ContentDocument", files) == dict.fromkeys(files, False)
        sandbox.set_faults([])
        second = api.apply(ws, tmp_path / "plan.json", confirm=yes, resume_run=first.run_id).report
        assert second is not None and (second.failed, second.remaining, second.stopped) == (0, 0, None)
        assert deleted(sf, "ContentDocument", files) == {files[0]: False, **dict.fromkeys(files[1:], True)}
        assert {i["id"]: i["reason"] for i in second.skipped_items if i["id"] in files} == {files[0]: "protected"}
