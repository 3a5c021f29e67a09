"""old_files: Salesforce files over two years old attached to no never-touch record; HubSpot skipped."""

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

SPECS = {
    "ContentDocument": std(SF, *fields("Title", "FileType", ("ContentSize", FieldKind.INT), "OwnerId")),
    "ContentDocumentLink": std(SF, *fields("ContentDocumentId", "LinkedEntityId", "ShareType", "Visibility")),
    "Contract": std(SF, *fields("AccountId")),
}
ACCOUNT, CONTACT = sfid("001", 1), sfid("003", 1)
CONTRACT = sfid("800", 1)  # in the snapshot
ORDER = sfid("801", 7)  # Order rows not backed up: known by its id prefix
ODD_CONTRACT = "a0Z000000000009AAA"  # a Contract row whose id does not carry the usual prefix


def doc(n: int, title: str, created: str, *, deleted: bool = False) -> Record:
    return {"Id": sfid("069", n), "Title": title, "FileType": "PDF", "ContentSize": 1000 * n, "IsDeleted": deleted,
            **audit(SF, n, created)}


def link(n: int, document: int, entity: str) -> Record:
    return {"Id": sfid("06A", n), "ContentDocumentId": sfid("069", document), "LinkedEntityId": entity,
            "ShareType": "V", "Visibility": "AllUsers", **audit(SF, 100 + n)}


def records() -> dict[str, list[Record]]:
    return {
        "ContentDocument": [
            doc(1, "Brochure 2019", "2019-04-01T00:00:00.000Z"),
            doc(2, "Signed contract scan", "2019-04-01T00:00:00.000Z"),
            doc(3, "Recent deck", "2025-06-01T00:00:00.000Z"),
            doc(4, "Order confirmation", "2020-01-01T00:00:00.000Z"),
            doc(5, "On the day", "2024-03-15T00:00:00.000Z"),  # exactly two years: not old
            doc(6, "Day before", "2024-03-14T00:00:00.000Z"),
            doc(7, "Deleted", "2018-01-01T00:00:00.000Z", deleted=True),
            doc(8, "Odd contract", "2018-01-01T00:00:00.000Z"),
        ],
        "ContentDocumentLink": [
            link(1, 1, ACCOUNT), link(2, 1, CONTACT),
            link(3, 2, ACCOUNT), link(4, 2, CONTRACT),
            link(5, 4, ORDER),
            link(6, 8, ODD_CONTRACT),
        ],
        "Contract": [{"Id": CONTRACT, "AccountId": ACCOUNT, **audit(SF, 300)},
                     {"Id": ODD_CONTRACT, "AccountId": ACCOUNT, **audit(SF, 301)}],
    }


def test_old_files_not_attached_to_a_never_touch_record() -> None:
    out = run_one("old_files", view(SF, SPECS, records()), SF)
    assert [(c.op, c.object, c.record_id, c.reason) for c in out.changes] == [
        (Op.DELETE, "ContentDocument", sfid("069", 1), "created 2019-04-01, over 2 years ago; attached to 2 records, "
                                                       "none protected"),
        (Op.DELETE, "ContentDocument", sfid("069", 6), "created 2024-03-14, over 2 years ago; attached to no record"),
    ]
    assert out.held_back == {"attached to Contract records": 2, "attached to Order records": 1}
    assert out.changes[0].label == "Brochure 2019"


def test_scan_counts_hold_backs_with_the_protections() -> None:
    result = scan(view(SF, SPECS, records()), SF, ["old_files"], protect_ids=[sfid("069", 6)])
    assert ids(result) == [sfid("069", 1)]
    assert result.held_back["old_files"] == {
        "attached to Contract records": 2, "attached to Order records": 1, "listed in [protect] ids": 1}


def test_years_setting() -> None:
    assert ids(run_one("old_files", view(SF, SPECS, records()), SF, years=1)) == [
        sfid("069", 1), sfid("069", 5), sfid("069", 6)]


def test_without_the_links_the_pass_does_not_run() -> None:
    only = {"ContentDocument": SPECS["ContentDocument"]}
    result = scan(view(SF, only, {"ContentDocument": records()["ContentDocument"]}), SF, ["old_files"])
    assert result.plan.changes == ()
    assert "the snapshot holds no ContentDocumentLink" in result.skipped["old_files"]


def test_hubspot_is_skipped_with_its_reason() -> None:
    result = scan(view(HS, {}, {}), HS, ["old_files"])
    assert result.skipped == {"old_files": (
        "a file deleted through HubSpot's API cannot be restored and crmsweep does not back up file contents")}


def test_a_file_attached_to_a_contract_since_the_scan_is_left_alone() -> None:
    change = run_one("old_files", view(SF, SPECS, records()), SF).changes[0]
    live = {"CreatedDate": "2019-04-01T00:00:00.000Z"}
    links = [{"ContentDocumentId": change.record_id, "LinkedEntityId": ACCOUNT}]
    assert recheck(change, SF, live, {"links": links}) is None
    quote = sfid("0Q0", 3)
    assert recheck(change, SF, live, {"links": [*links, {"ContentDocumentId": change.record_id,
                                                         "LinkedEntityId": quote}]}) == f"now attached to Quote {quote}"
    live_check = PASSES["old_files"].live_check
    assert live_check is not None
    needs = live_check.needs(SF, "ContentDocument")
    assert [(r.name, r.object, r.match_field) for r in needs.related] == [
        ("links", "ContentDocumentLink", "ContentDocumentId")]


def test_provenance_refuses_a_forged_file_change() -> None:
    result = scan(view(SF, SPECS, records()), SF, ["old_files"])
    first = result.plan.changes[0]
    assert forged_problems(result, SF, first) == []
    assert forged_problems(result, SF, with_change(first, object="ContentDocumentLink")) == [
        f"ContentDocumentLink {first.record_id}: pass old_files does not propose delete of ContentDocumentLink"]
    assert forged_problems(result, SF, with_change(first, object="Contract")) == [
        f"Contract {first.record_id}: Contract records are never changed"]
    assert forged_problems(result, SF, with_change(first, op=Op.UPDATE, after={"Title": "x"})) == [
        f"ContentDocument {first.record_id}: pass old_files does not propose update"]


# An org's own invoice object, protected by the admin's config: "never delete contracts or invoices" covers the
# files on them as it covers the built-in ones.
INVOICES = {**SPECS, "Invoice__c": std(SF, *fields("Amount__c"))}
INVOICE = "a05000000000001AAA"


def with_invoice() -> dict[str, list[Record]]:
    rows = records()
    rows["ContentDocument"].append(doc(9, "Invoice PDF", "2019-04-01T00:00:00.000Z"))
    rows["ContentDocumentLink"].append(link(7, 9, INVOICE))
    rows["Invoice__c"] = [{"Id": INVOICE, "Amount__c": "10", **audit(SF, 302)}]
    return rows


def test_a_file_attached_to_a_record_of_a_config_protected_object_is_held_back() -> None:
    result = scan(view(SF, INVOICES, with_invoice()), SF, ["old_files"], protect_objects=["Invoice__c"])
    assert ids(result) == [sfid("069", 1), sfid("069", 6)]
    assert result.held_back["old_files"] == {
        "attached to Contract records": 2, "attached to Order records": 1, "attached to Invoice__c records": 1}
    # Unprotected, the same file is an old file like any other.
    assert sfid("069", 9) in ids(scan(view(SF, INVOICES, with_invoice()), SF, ["old_files"]))


def test_a_file_attached_to_a_record_protect_ids_names_is_held_back() -> None:
    result = scan(view(SF, SPECS, records()), SF, ["old_files"], protect_ids=[CONTACT[:15]])
    assert ids(result) == [sfid("069", 6)]
    assert result.held_back["old_files"] == {
        "attached to Contract records": 2, "attached to Order records": 1,
        "attached to a record [protect] ids names": 1}


def test_a_protected_object_the_snapshot_lacks_stops_the_pass() -> None:
    # Its records cannot be told among the link rows: a file on one would look attached to nothing protected.
    result = scan(view(SF, SPECS, records()), SF, ["old_files"], protect_objects=["Invoice__c"])
    assert result.plan.changes == ()
    assert result.skipped["old_files"] == (
        "[protect] objects names Invoice__c, which snapshot holds no rows of, so a file attached to one of its "
        "records cannot be told: back up again (a backup takes the [protect] objects) or correct the name")


def test_apply_leaves_a_file_attached_since_the_scan_to_a_record_protect_ids_names() -> None:
    from crmsweep.cleanup.passes import LiveRows
    from crmsweep.cleanup.protect import Protections
    from tests.pass_views import NOW

    change = run_one("old_files", view(SF, SPECS, records()), SF).changes[0]
    live_check = PASSES["old_files"].live_check
    assert live_check is not None and live_check.holds is not None
    links = [{"ContentDocumentId": change.record_id, "LinkedEntityId": ACCOUNT}]
    rows = LiveRows(record={"CreatedDate": "2019-04-01T00:00:00.000Z"}, related={"links": links}, vocabulary=SF)
    assert live_check.holds(change, rows, Protections(SF, NOW)) is None
    named = Protections(SF, NOW, ids=(ACCOUNT,))
    assert live_check.holds(change, rows, named) == f"attached to {ACCOUNT}, which [protect] ids names"
