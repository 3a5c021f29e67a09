"""stale_templates: Salesforce templates deactivated, HubSpot marketing emails deleted (restorable)."""

from __future__ import annotations

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

D, B, N = FieldKind.DATETIME, FieldKind.BOOL, FieldKind.INT

SF_SPECS = {
    "EmailTemplate": std(SF, *fields("Name", "DeveloperName", ("IsActive", B), ("TimesUsed", N), ("LastUsedDate", D),
                                     "FolderId", "FolderName", "OwnerId", "TemplateType", "Subject")),
}


def template(n: int, name: str, *, active: bool | None = True, used: str | None, times: int | None,
             created: str = "2019-05-01T00:00:00.000Z") -> Record:
    return {"Id": sfid("00X", n), "Name": name, "FolderName": "Marketing", "IsActive": active, "TimesUsed": times,
            "LastUsedDate": used, **audit(SF, n, created)}


def sf_records() -> dict[str, list[Record]]:
    return {"EmailTemplate": [
        template(1, "Spring promo 2023", used="2023-04-01T00:00:00.000Z", times=40),
        template(2, "Used last week", used="2026-03-08T00:00:00.000Z", times=900),
        template(3, "Never used", used=None, times=0),
        template(4, "Never used, no count", used=None, times=None),
        template(5, "Already off", active=False, used="2020-01-01T00:00:00.000Z", times=3),
        template(6, "Counted, no date", used=None, times=12),
        template(7, "New and unused", used=None, times=0, created="2026-02-01T00:00:00.000Z"),
        template(8, "Flag unknown", active=None, used="2020-01-01T00:00:00.000Z", times=1),
    ]}


def test_salesforce_deactivates_unused_templates() -> None:
    out = run_one("stale_templates", view(SF, SF_SPECS, sf_records()), SF)
    assert [(c.op, c.record_id, c.after, c.reason) for c in out.changes] == [
        (Op.UPDATE, sfid("00X", 1), {"IsActive": False}, "not used since 2023-04-01 (LastUsedDate)"),
        (Op.UPDATE, sfid("00X", 3), {"IsActive": False}, "never used; created 2019-05-01"),
        (Op.UPDATE, sfid("00X", 4), {"IsActive": False}, "never used; created 2019-05-01"),
    ]
    assert out.changes[0].label == "Spring promo 2023"
    assert out.notes == ["1 EmailTemplate counted as used but with no LastUsedDate: left alone, as when is unknown"]


def test_salesforce_scan_holds_back_a_listed_template() -> None:
    result = scan(view(SF, SF_SPECS, sf_records()), SF, ["stale_templates"], protect_ids=[sfid("00X", 3)])
    assert ids(result) == [sfid("00X", 1), sfid("00X", 4)]
    assert result.held_back["stale_templates"] == {"listed in [protect] ids": 1}


def test_salesforce_live_recheck() -> None:
    change = run_one("stale_templates", view(SF, SF_SPECS, sf_records()), SF).changes[0]
    live = {"IsActive": True, "LastUsedDate": "2023-04-01T00:00:00.000Z", "TimesUsed": 40, "CreatedDate": None}
    assert recheck(change, SF, live) is None
    assert recheck(change, SF, {**live, "LastUsedDate": "2026-03-10T00:00:00.000Z"}) == (
        "used since the scan: LastUsedDate is 2026-03-10")
    assert recheck(change, SF, {**live, "IsActive": False}) == "already unavailable (IsActive is False)"


def test_salesforce_provenance_refuses_another_value_or_a_delete() -> None:
    result = scan(view(SF, SF_SPECS, sf_records()), SF, ["stale_templates"])
    first = result.plan.changes[0]
    assert forged_problems(result, SF, first) == []
    assert forged_problems(result, SF, with_change(first, after={"IsActive": True})) == [
        f"EmailTemplate {first.record_id}: pass stale_templates writes IsActive=false, not {{\"IsActive\":true}}"]
    assert forged_problems(result, SF, with_change(first, after={"Subject": "Buy now"})) == [
        f"EmailTemplate {first.record_id}: pass stale_templates writes IsActive=false, not {{\"Subject\":\"Buy now\"}}"]
    assert forged_problems(result, SF, with_change(first, op=Op.DELETE, after={})) == [
        f"EmailTemplate {first.record_id}: pass stale_templates does not propose delete of EmailTemplate"]


HS_SPECS = {
    "marketing_emails": std(HS, *fields("name", "subject", "state", "type", ("isPublished", B), ("publishedAt", D),
                                        "campaign", "list_ids")),
}


def email(n: int, name: str, *, published: bool | None, at: str | None, updated: str,
          created: str = "2021-01-01T00:00:00.000Z", archived: bool = False, state: str | None = None) -> Record:
    state = state or ("PUBLISHED" if published else "DRAFT")
    row = {"id": str(9000 + n), "name": name, "subject": f"Subject {n}", "isPublished": published, "publishedAt": at,
           "state": state, "type": "BATCH_EMAIL", "archived": archived, **audit(HS, n, created)}
    row["updatedAt"] = updated
    return row


def hs_records() -> dict[str, list[Record]]:
    return {"marketing_emails": [
        email(1, "Newsletter 2022", published=True, at="2022-06-01T00:00:00.000Z", updated="2022-06-01T00:00:00.000Z"),
        email(2, "Sent last month", published=True, at="2026-02-01T00:00:00.000Z", updated="2026-02-01T00:00:00.000Z"),
        email(3, "Old draft", published=False, at=None, updated="2024-01-01T00:00:00.000Z"),
        email(4, "Draft edited lately", published=False, at=None, updated="2026-03-01T00:00:00.000Z"),
        # Published long ago but edited since: judged by its publication, as it was last sent then.
        email(5, "Edited after send", published=True, at="2023-01-01T00:00:00.000Z",
              updated="2026-03-02T00:00:00.000Z"),
        email(6, "Archived already", published=True, at="2020-01-01T00:00:00.000Z",
              updated="2020-01-01T00:00:00.000Z", archived=True),
        # Published years ago and still sent by a workflow every day: its sends are not in the snapshot.
        email(7, "Welcome series 1", published=True, at="2021-02-01T00:00:00.000Z",
              updated="2021-02-01T00:00:00.000Z", state="AUTOMATED"),
        email(8, "Blog digest", published=True, at="2021-02-01T00:00:00.000Z",
              updated="2021-02-01T00:00:00.000Z", state="BLOG_EMAIL_PUBLISHED"),
    ]}


def test_hubspot_deletes_stale_marketing_emails() -> None:
    out = run_one("stale_templates", view(HS, HS_SPECS, hs_records()), HS)
    assert [(c.op, c.object, c.record_id, c.after, c.reason) for c in out.changes] == [
        (Op.DELETE, "marketing_emails", "9001", {}, "not used since 2022-06-01 (publishedAt)"),
        (Op.DELETE, "marketing_emails", "9003", {}, "draft not edited since 2024-01-01"),
        (Op.DELETE, "marketing_emails", "9005", {}, "not used since 2023-01-01 (publishedAt)"),
    ]
    assert out.changes[0].label == "Newsletter 2022 <Subject 1>"
    assert out.held_back == {"automated email (sent by a workflow or form)": 1,
                             "email scheduled, sending, or sent on each new post": 1}


def test_hubspot_live_recheck_of_a_draft() -> None:
    change = run_one("stale_templates", view(HS, HS_SPECS, hs_records()), HS).changes[1]
    assert change.record_id == "9003"
    live = {"isPublished": "false", "publishedAt": None, "updatedAt": "2024-01-01T00:00:00.000Z", "state": "DRAFT"}
    assert recheck(change, HS, live) is None
    assert recheck(change, HS, {**live, "state": "AUTOMATED_DRAFT"}) == (
        "now kept: automated email (sent by a workflow or form)")
    assert recheck(change, HS, {**live, "updatedAt": "2026-03-12T00:00:00.000Z"}) == (
        "draft edited since the scan: updatedAt is 2026-03-12")
    assert recheck(change, HS, {**live, "isPublished": True, "publishedAt": "2026-03-13T00:00:00Z"}) == (
        "used since the scan: publishedAt is 2026-03-13")


def test_hubspot_provenance_refuses_an_update() -> None:
    result = scan(view(HS, HS_SPECS, hs_records()), HS, ["stale_templates"])
    first = result.plan.changes[0]
    assert forged_problems(result, HS, first) == []
    assert forged_problems(result, HS, with_change(first, op=Op.UPDATE, after={"name": "x"})) == [
        "marketing_emails 9001: pass stale_templates does not propose update of marketing_emails"]
    assert forged_problems(result, HS, with_change(first, object="contacts")) == [
        "contacts 9001: pass stale_templates does not propose delete of contacts"]
