"""stale_lists: HubSpot lists not updated for a year and named by no marketing email; Salesforce skipped."""

from __future__ import annotations

import json

import pytest

from crmsweep.cleanup.passes import PASSES, PassContext, PassOutput, PassSpec
from crmsweep.model import Change, FieldKind, Op, Record
from tests.pass_views import HS, SF, audit, fields, forged_problems, ids, recheck, run_one, scan, std, view, with_change

D = FieldKind.DATETIME

SPECS = {
    "lists": std(HS, *fields("name", "processingType", "objectTypeId", ("filtersUpdatedAt", D),
                             ("size", FieldKind.INT))),
    "marketing_emails": std(HS, *fields("name", "subject", "list_ids")),
}


def hs_list(n: int, name: str, *, updated: str, filters: str | None = None, created: str = "2020-02-02T00:00:00.000Z",
            ) -> Record:
    row = {"id": str(n), "name": name, "processingType": "MANUAL", "objectTypeId": "0-1", "size": 10,
           "filtersUpdatedAt": filters, **audit(HS, n, created)}
    row["updatedAt"] = updated
    return row


def mail(n: int, lists: object, *, archived: bool = False) -> Record:
    text = lists if isinstance(lists, str) or lists is None else json.dumps(lists)
    return {"id": str(7000 + n), "name": f"Email {n}", "list_ids": text, "archived": archived, **audit(HS, 50 + n)}


def records() -> dict[str, list[Record]]:
    return {
        "lists": [
            hs_list(1, "Webinar 2021 attendees", updated="2021-10-01T00:00:00.000Z"),
            hs_list(2, "Updated last month", updated="2026-02-01T00:00:00.000Z"),
            hs_list(3, "Old but mailed", updated="2022-01-01T00:00:00.000Z"),
            hs_list(4, "Old, mailed by an archived email", updated="2022-01-01T00:00:00.000Z"),
            hs_list(5, "Members old, filters new", updated="2022-01-01T00:00:00.000Z",
                    filters="2026-03-01T00:00:00.000Z"),
            hs_list(6, "Old, young record", updated="2022-01-01T00:00:00.000Z", created="2026-03-05T00:00:00.000Z"),
            hs_list(7, "Trade show 2019", updated="2019-06-01T00:00:00.000Z"),
        ],
        "marketing_emails": [mail(1, ["3", "2"]), mail(2, [4], archived=True), mail(3, None), mail(4, "")],
    }


def test_hubspot_lists_not_updated_and_unused() -> None:
    out = run_one("stale_lists", view(HS, SPECS, records()), HS)
    assert [(c.op, c.record_id, c.reason) for c in out.changes] == [
        (Op.DELETE, "1", "not updated since 2021-10-01; used by no marketing_emails record"),
        (Op.DELETE, "6", "not updated since 2022-01-01; used by no marketing_emails record"),
        (Op.DELETE, "7", "not updated since 2019-06-01; used by no marketing_emails record"),
    ]
    assert out.held_back == {"used by a marketing_emails record": 2}
    assert out.notes == [
        "only marketing_emails records are known to use lists: one that only a workflow or a form uses looks unused; "
        "check the 3 proposed before applying (each can be restored)"
    ]


def test_scan_holds_back_a_young_list_and_counts_the_mailed_ones() -> None:
    result = scan(view(HS, SPECS, records()), HS, ["stale_lists"])
    assert ids(result) == ["1", "7"]
    assert result.held_back["stale_lists"] == {"used by a marketing_emails record": 2, "created in the last 30 days": 1}


def test_unreadable_list_ids_stop_the_pass_rather_than_guess() -> None:
    recs = records()
    recs["marketing_emails"].append(mail(9, "3;4"))
    out = run_one("stale_lists", view(HS, SPECS, recs), HS)
    assert out.changes == []
    assert out.skipped == (
        "marketing_emails 7009 has a list_ids that is not a JSON list of ids, so the lists it uses are unknown")


def test_without_the_emails_in_the_snapshot_the_pass_does_not_run() -> None:
    result = scan(view(HS, {"lists": SPECS["lists"]}, {"lists": records()["lists"]}), HS, ["stale_lists"])
    assert result.plan.changes == ()
    assert "the snapshot holds no marketing_emails" in result.skipped["stale_lists"]


def test_salesforce_is_skipped_with_its_reason() -> None:
    result = scan(view(SF, {}, {}), SF, ["stale_lists"])
    assert result.skipped == {"stale_lists": (
        "Salesforce has no saved lists of the kind this pass cleans (list views and campaigns are not lists)")}


LIVE = {"updatedAt": "2021-10-01T00:00:00.000Z", "filtersUpdatedAt": None, "createdAt": "2020-02-02T00:00:00Z"}
EMAILS = [mail(1, ["3", "2"]), mail(3, None)]


def test_live_recheck_of_a_list_updated_since() -> None:
    change = run_one("stale_lists", view(HS, SPECS, records()), HS).changes[0]
    assert recheck(change, HS, LIVE, {"users": EMAILS}) is None
    assert recheck(change, HS, {**LIVE, "filtersUpdatedAt": "2026-03-14T00:00:00.000Z"}, {"users": EMAILS}) == (
        "updated since the scan: filtersUpdatedAt is 2026-03-14")


def test_live_recheck_of_a_list_an_email_names_now() -> None:
    change = run_one("stale_lists", view(HS, SPECS, records()), HS).changes[0]
    now = [*EMAILS, mail(12, ["1"], archived=True), mail(10, [1, 5])]
    assert recheck(change, HS, LIVE, {"users": now}) == "used by a marketing_emails record now (7010, 7012)"


def test_live_recheck_keeps_the_list_when_the_emails_are_unknown() -> None:
    change = run_one("stale_lists", view(HS, SPECS, records()), HS).changes[0]
    assert recheck(change, HS, LIVE, {"users": [*EMAILS, mail(9, "3;1")]}) == (
        "marketing_emails 7009 has a list_ids that is not a JSON list of ids, so whether it uses this list now "
        "is unknown")
    assert recheck(change, HS, LIVE) == (
        "the marketing_emails records could not be read, so whether one uses this list now is unknown: "
        "apply did not read them")


def test_provenance_refuses_a_forged_list_change() -> None:
    result = scan(view(HS, SPECS, records()), HS, ["stale_lists"])
    first = result.plan.changes[0]
    assert forged_problems(result, HS, first) == []
    assert forged_problems(result, HS, with_change(first, op=Op.ARCHIVE)) == [
        "lists 1: pass stale_lists does not propose archive"]
    assert forged_problems(result, HS, with_change(first, object="marketing_emails")) == [
        "marketing_emails 1: pass stale_lists does not propose delete of marketing_emails"]


def _archive_email_one(ctx: PassContext) -> PassOutput:
    before = ctx.view.record_map("marketing_emails", ["7001"])["7001"]
    return PassOutput(changes=[Change(op=Op.DELETE, object="marketing_emails", record_id="7001", before=before,
                                      after={}, reason="stale", pass_name="archiver")])


def test_an_email_an_earlier_pass_archives_still_uses_its_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    # Archived in the same plan, the email can be brought back: its list must still be there then.
    spec = PassSpec(name="archiver", summary="x", order=73, defaults={}, run=_archive_email_one)
    monkeypatch.setitem(PASSES, "archiver", spec)
    result = scan(view(HS, SPECS, records()), HS, ["archiver", "stale_lists"])
    lists = {c.record_id for c in result.plan.changes if c.pass_name == "stale_lists"}
    assert "3" not in lists and {"1", "7"} <= lists
