"""stale_reports on hand-built snapshots: exact ids, reasons, notes, protections, live re-check, provenance."""

from __future__ import annotations

from crmsweep.cleanup.passes import PASSES
from crmsweep.model import FieldKind, Op, Record
from tests.pass_views import (
    HS,
    SF,
    audit,
    fields,
    forged_problems,
    ids,
    recheck,
    run_one,
    scan,
    sfid,
    std,
    view,
    with_change,
)

D = FieldKind.DATETIME
OLD_CREATED = "2020-01-01T00:00:00.000Z"


def report(n: int, name: str, *, ran: str | None, created: str = "2020-01-01T00:00:00.000Z",
           deleted: bool = False) -> Record:
    return {"Id": sfid("00O", n), "Name": name, "FolderName": "Sales", "LastRunDate": ran,
            "LastViewedDate": "2026-03-01T00:00:00.000Z", "IsDeleted": deleted, **audit(SF, n, created)}


def dashboard(n: int, title: str, *, refreshed: str | None, created: str = "2020-01-01T00:00:00.000Z") -> Record:
    return {"Id": sfid("01Z", n), "Title": title, "FolderName": "Exec", "LastRefreshDate": refreshed,
            **audit(SF, 100 + n, created)}


SPECS = {
    "Report": std(SF, *fields("Name", "FolderName", ("LastRunDate", D), ("LastViewedDate", D))),
    "Dashboard": std(SF, *fields("Title", "FolderName", ("LastRefreshDate", D), ("LastViewedDate", D))),
}


def records() -> dict[str, list[Record]]:
    return {
        "Report": [
            report(1, "Pipeline 2019", ran="2024-06-01T10:00:00.000Z"),
            report(2, "Run last month", ran="2026-02-10T10:00:00.000Z"),
            report(3, "Never run, old", ran=None),
            report(4, "Never run, new", ran=None, created="2026-01-10T00:00:00.000Z"),
            report(5, "On the edge", ran="2025-03-15T12:00:00.000Z"),  # exactly 365 days: not stale
            report(6, "A day past", ran="2025-03-15T11:59:59.000Z"),
            report(7, "In the bin", ran="2019-01-01T00:00:00.000Z", deleted=True),
            report(8, "Old and young", ran=None, created="2026-03-01T00:00:00.000Z"),
        ],
        "Dashboard": [
            dashboard(1, "Exec board", refreshed="2023-01-01T00:00:00.000Z"),
            dashboard(2, "Live board", refreshed="2026-03-14T00:00:00.000Z"),
        ],
    }


def test_salesforce_reports_and_dashboards_not_run_for_a_year() -> None:
    out = run_one("stale_reports", view(SF, SPECS, records()), SF)
    assert [(c.op, c.object, c.record_id, c.reason) for c in out.changes] == [
        (Op.DELETE, "Report", sfid("00O", 1), "not run since 2024-06-01 (LastRunDate)"),
        (Op.DELETE, "Report", sfid("00O", 3), "never run; created 2020-01-01"),
        (Op.DELETE, "Report", sfid("00O", 6), "not run since 2025-03-15 (LastRunDate)"),
        (Op.DELETE, "Dashboard", sfid("01Z", 1), "not run since 2023-01-01 (LastRefreshDate)"),
    ]
    assert out.changes[0].label == "Pipeline 2019"
    assert out.changes[0].after == {}
    assert out.notes == [
        "LastViewedDate reflects only the views of the user crmsweep runs as, so it is not used: judged by when "
        "each last ran (Report by LastRunDate, Dashboard by LastRefreshDate)"
    ]


def test_the_days_setting_moves_the_cutoff() -> None:
    out = run_one("stale_reports", view(SF, SPECS, records()), SF, days=30)
    assert sfid("00O", 2) in ids(out) and sfid("00O", 4) in ids(out)
    assert sfid("01Z", 2) not in ids(out)


def test_scan_holds_back_recent_and_listed_reports() -> None:
    recs = records()
    recs["Report"].append(report(9, "Stale but young record", ran="2024-01-01T00:00:00.000Z",
                                 created="2026-03-10T00:00:00.000Z"))
    result = scan(view(SF, SPECS, recs), SF, ["stale_reports"], protect_ids=[sfid("01Z", 1)])
    assert ids(result) == [sfid("00O", 1), sfid("00O", 3), sfid("00O", 6)]
    assert result.held_back["stale_reports"] == {"listed in [protect] ids": 1, "created in the last 30 days": 1}


def test_a_snapshot_without_dashboards_still_judges_reports() -> None:
    out = run_one("stale_reports", view(SF, {"Report": SPECS["Report"]}, {"Report": records()["Report"]}), SF)
    assert len(out.changes) == 3
    assert "no Dashboard object in the snapshot: none judged" in out.notes


def test_hubspot_is_skipped_with_its_reason() -> None:
    result = scan(view(HS, {}, {}), HS, ["stale_reports"])
    assert result.skipped == {"stale_reports": "HubSpot has no reports API"}
    assert result.plan.changes == ()


def test_a_report_run_since_the_scan_is_left_alone() -> None:
    change = run_one("stale_reports", view(SF, SPECS, records()), SF).changes[0]
    assert recheck(change, SF, {"LastRunDate": "2026-03-14T09:00:00.000Z", "CreatedDate": OLD_CREATED}) == (
        "run since the scan: LastRunDate is 2026-03-14")
    assert recheck(change, SF, {"LastRunDate": "2024-06-01T10:00:00.000Z", "CreatedDate": OLD_CREATED}) is None
    needs = PASSES["stale_reports"].live_check
    assert needs is not None and needs.needs(SF, "Dashboard").fields == ("LastRefreshDate", "CreatedDate")



def test_provenance_refuses_a_forged_report_change() -> None:
    result = scan(view(SF, SPECS, records()), SF, ["stale_reports"])
    first = result.plan.changes[0]
    assert forged_problems(result, SF, first) == []
    assert forged_problems(result, SF, with_change(first, op=Op.UPDATE, after={"Name": "x"})) == [
        f"Report {first.record_id}: pass stale_reports does not propose update"]
    assert forged_problems(result, SF, with_change(first, object="Contact")) == [
        f"Contact {first.record_id}: pass stale_reports does not propose delete of Contact"]
    assert forged_problems(result, SF, with_change(first, after={"IsDeleted": True})) == [
        f"Report {first.record_id}: pass stale_reports writes nothing, not {{\"IsDeleted\":true}}"]
