"""duplicates: exact groups of likely duplicates, reported for review and never proposed as changes."""

from __future__ import annotations

import pandas as pd

from crmsweep.cleanup.passes import PASSES, PassOutput
from crmsweep.cleanup.passes.duplicates import exact_groups, normal_domain, normal_email, normal_name, normal_phone
from crmsweep.cleanup.preview import render_preview, summarize
from crmsweep.model import Record
from tests.pass_views import HS, SF, audit, fields, run_one, scan, sfid, std, view

SF_SPECS = {
    "Contact": std(SF, *fields("Name", "FirstName", "LastName", "Email", "Phone", "MobilePhone", "AccountId")),
    "Lead": std(SF, *fields("Name", "FirstName", "LastName", "Email", "Phone", "MobilePhone", "Company")),
    "Account": std(SF, *fields("Name", "Website", "Phone")),
}


def contact(n: int, first: str | None, last: str | None, *, email: str | None = None, phone: str | None = None,
            mobile: str | None = None, account: str | None = None, deleted: bool = False) -> Record:
    name = " ".join(p for p in (first, last) if p) or None
    return {"Id": sfid("003", n), "Name": name, "FirstName": first, "LastName": last, "Email": email, "Phone": phone,
            "MobilePhone": mobile, "AccountId": account, "IsDeleted": deleted, **audit(SF, n)}


def account(n: int, name: str, website: str | None) -> Record:
    return {"Id": sfid("001", n), "Name": name, "Website": website, **audit(SF, 200 + n)}


ACME, GLOBEX = sfid("001", 1), sfid("001", 2)


def sf_records() -> dict[str, list[Record]]:
    return {
        "Contact": [
            contact(1, "Jane", "Doe", email="Jane.Doe@Acme.com ", account=ACME),
            contact(2, "Jane", "Doe", email="jane.doe@acme.com", account=GLOBEX),
            contact(3, "J.", "Smith", email="jane.doe+news@acme.com", phone="+1 (555) 010-2030"),  # +tag kept apart
            contact(4, "Bob", "Ray", phone="555.010.2030", account=GLOBEX),
            contact(5, "Jonathan", "Fitzgerald", account=ACME),
            contact(6, "Jonathon", "Fitzgerald", account=ACME),  # similar name, same company
            contact(7, "Jonathan", "Fitzgerald", account=GLOBEX),  # same name, another company
            contact(8, "Al", "Bo", phone="12-34", account=ACME),  # too few digits to compare
            contact(9, "Al", "Bo", phone="1234", account=ACME),  # same name+company as 8
            contact(10, "Gone", "Away", email="jane.doe@acme.com", deleted=True),  # in the recycle bin
            contact(11, "Mary", "Major", mobile="0044 20 7946 0958", account=GLOBEX),
            contact(12, "Marie", "Minor", phone="20 7946 0958", account=ACME),  # same last 10 digits
        ],
        "Lead": [],
        "Account": [
            account(1, "Acme, Inc.", "https://www.acme.com/about"),
            account(2, "Globex", "globex.com"),
            account(3, "ACME inc", None),
            account(4, "Initech", "http://WWW.Globex.com:8080"),
        ],
    }


def found(output: PassOutput) -> list[tuple[str, tuple[str, ...], str, float]]:
    return [(i.object, i.record_ids, i.reason, i.score) for i in output.review]


def test_salesforce_groups_exactly() -> None:
    out = run_one("duplicates", view(SF, SF_SPECS, sf_records()), SF)

    def c(n: int) -> str:
        return sfid("003", n)

    def a(n: int) -> str:
        return sfid("001", n)

    assert found(out) == [
        ("Contact", (c(1), c(2)), "same email jane.doe@acme.com", 1.0),
        ("Contact", (c(11), c(12)), "same phone 2079460958", 0.8),
        ("Contact", (c(3), c(4)), "same phone 5550102030", 0.8),
        ("Contact", (c(8), c(9)), f"same name and company al bo / {ACME}", 0.95),
        ("Contact", (c(5), c(6)), f"similar names at the same company {ACME}", 0.9),
        ("Account", (a(1), a(3)), "same name acme inc", 0.9),
        ("Account", (a(2), a(4)), "same domain globex.com", 0.9),
    ]
    assert out.changes == [] and out.held_back == {}
    assert out.review[0].labels == ("Jane Doe <Jane.Doe@Acme.com >", "Jane Doe <jane.doe@acme.com>")


def test_the_threshold_setting() -> None:
    out = run_one("duplicates", view(SF, SF_SPECS, sf_records()), SF, threshold=99)
    assert not any(i.reason.startswith("similar") for i in out.review)


def test_big_groups_are_counted_not_listed() -> None:
    recs = sf_records()
    recs["Contact"] += [contact(100 + n, f"P{n}", f"Q{n}", phone="000-000-0000") for n in range(4)]
    out = run_one("duplicates", view(SF, SF_SPECS, recs), SF, max_group=3)
    assert not any(i.reason == "same phone 0000000000" for i in out.review)
    assert out.notes == ["1 Contact group of more than 3 records not listed (largest: 4 records, same phone "
                         "0000000000): likely a placeholder value"]


def test_normalisation() -> None:
    assert normal_email(pd.Series([" A.B@C.d ", "", None])).tolist() == ["a.b@c.d", pd.NA, pd.NA]
    assert normal_phone(pd.Series(["+1 (555) 010-2030", "12-34", None])).tolist() == ["5550102030", pd.NA, pd.NA]
    assert normal_name(pd.Series(["  ACME,  Inc. ", "--"])).tolist() == ["acme inc", pd.NA]
    assert normal_domain(pd.Series(["https://user@www.Acme.com:443/x?y", "www.acme.com.", "acme.com/", ""])).tolist() \
        == ["acme.com", "acme.com", "acme.com", pd.NA]
    ids = pd.Series(["a", "b", "c"])
    assert exact_groups(ids, [pd.Series(["x", None, "y"]), pd.Series(["y", "x", None])]) == [
        ("x", ("a", "b")), ("y", ("a", "c"))]


HS_SPECS = {
    "contacts": std(HS, *fields("firstname", "lastname", "email", "phone", "mobilephone", "company")),
    "companies": std(HS, *fields("name", "domain", "city", "state", "phone")),
}


def hs_contact(n: int, first: str, last: str, **props: str | None) -> Record:
    return {"id": str(n), "firstname": first, "lastname": last, "archived": False, **props, **audit(HS, n)}


def test_hubspot_groups_exactly() -> None:
    recs = {
        "contacts": [
            hs_contact(1, "Ann", "Lee", email="ann@lee.io", company="Lee Ltd"),
            hs_contact(2, "Anne", "Lee", email="ANN@lee.io", company="Lee Ltd"),
            hs_contact(3, "Catherine", "Zeta", company="Zeta Films", mobilephone="555 123 4567"),
            hs_contact(4, "Katherine", "Zeta", company="zeta films", phone="(555) 123-4567"),
            hs_contact(5, "Catherine", "Zeta", company="Other"),
        ],
        "companies": [
            {"id": "11", "name": "Lee Ltd", "domain": "lee.io", "archived": False, **audit(HS, 11)},
            {"id": "12", "name": "LEE LTD.", "domain": "www.lee.io", "archived": False, **audit(HS, 12)},
        ],
    }
    out = run_one("duplicates", view(HS, HS_SPECS, recs), HS)
    assert found(out) == [
        ("contacts", ("1", "2"), "same email ann@lee.io", 1.0),
        ("contacts", ("3", "4"), "same phone 5551234567", 0.8),
        ("companies", ("11", "12"), "same name lee ltd; same domain lee.io", 0.9),
    ]
    # The similar names 1/2 and 3/4 are the very groups already reported: not reported twice.
    assert out.review[0].labels == ("Ann Lee <ann@lee.io>", "Anne Lee <ANN@lee.io>")


def test_a_scan_carries_the_findings_into_the_plan_and_the_preview() -> None:
    result = scan(view(SF, SF_SPECS, sf_records()), SF, ["duplicates"])
    assert result.plan.changes == ()
    assert len(result.plan.header.review) == 7
    text = render_preview(result.plan)
    assert "for review (never applied) — 7 findings" in text
    assert f"  duplicates Contact: same email jane.doe@acme.com (100%): {sfid('003', 1)} Jane Doe" in text
    assert summarize(result.plan)["review"][0]["record_ids"] == [sfid("003", 1), sfid("003", 2)]
    assert PASSES["duplicates"].report_only and PASSES["duplicates"].proposes == ()


def test_similar_sets_are_the_connected_rows_with_their_lowest_link() -> None:
    import numpy as np

    from crmsweep.cleanup.passes._similar_names import matrix_sets

    # 0-1 and 1-2 link (a chain: 0 and 2 are together through 1), 3-4 link, 5 alone.
    scores = np.full((6, 6), 10.0)
    for a, b, score in ((0, 1, 95.0), (1, 2, 93.0), (3, 4, 99.0)):
        scores[a, b] = scores[b, a] = score
    np.fill_diagonal(scores, 100.0)
    assert matrix_sets(scores, 92) == [([0, 1, 2], 93.0), ([3, 4], 99.0)]
    assert matrix_sets(scores, 96) == [([3, 4], 99.0)]
