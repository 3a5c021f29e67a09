"""The sandbox SOQL compiler, run for real against SQLite tables laid out by the schema's storage convention."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsweep.sandbox import ids as sf_ids
from crmsweep.sandbox import schema
from crmsweep.sandbox.soql import CompiledQuery, SoqlError, compile_soql, shape_record

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)  # a Monday; TODAY is 2026-06-15 in UTC

Row = Mapping[str, object]
_SHORT: dict[str, str] = {}


def rid(short: str) -> str:
    """A well-formed 18-character id made from a readable name ("003C1"); results are read back as names."""
    full = sf_ids.to_18(short.ljust(15, "0"))
    _SHORT[full] = short
    return full

USERS: list[Row] = [
    {"Id": rid("005U1"), "Name": "Ada Admin", "IsActive": 1, "Email": "ada@example.com"},
    {"Id": rid("005U2"), "Name": "bob Gone", "IsActive": 0, "Email": "bob@example.com"},
]
ACCOUNTS: list[Row] = [
    {"Id": rid("001A1"), "IsDeleted": 0, "Name": "Acme", "NumberOfEmployees": 50, "AnnualRevenue": 1000.5,
     "OwnerId": rid("005U1"), "LastActivityDate": "2026-06-01"},
    {"Id": rid("001A2"), "IsDeleted": 0, "Name": "Globex", "NumberOfEmployees": None, "AnnualRevenue": None,
     "OwnerId": rid("005U2")},
    {"Id": rid("001A3"), "IsDeleted": 1, "Name": "Deleted Co", "OwnerId": rid("005U1")},
    {"Id": rid("001A4"), "IsDeleted": 0, "Name": "Lonely", "NumberOfEmployees": 7, "OwnerId": rid("005U1")},
]
CONTACTS: list[Row] = [
    {"Id": rid("003C1"), "IsDeleted": 0, "FirstName": "Ann", "LastName": "Lee", "Email": "ann@acme.com",
     "AccountId": rid("001A1"), "OwnerId": rid("005U1"), "HasOptedOutOfEmail": 0, "LastActivityDate": "2026-06-15",
     "CreatedDate": "2026-06-15T10:00:00.000+0000", "LeadSource": "Web"},
    {"Id": rid("003C2"), "IsDeleted": 0, "FirstName": None, "LastName": "O'Brien", "Email": "OB@Globex.com",
     "AccountId": rid("001A2"), "OwnerId": rid("005U2"), "HasOptedOutOfEmail": 1, "LastActivityDate": "2024-01-01",
     "CreatedDate": "2023-02-01T08:30:00.000+0000", "LeadSource": "Phone Inquiry"},
    {"Id": rid("003C3"), "IsDeleted": 0, "FirstName": "Cy", "LastName": "100%_sure", "Email": None,
     "AccountId": None, "OwnerId": rid("005U1"), "HasOptedOutOfEmail": 0, "LastActivityDate": None,
     "CreatedDate": "2026-01-01T00:00:00.000+0000"},
    {"Id": rid("003C4"), "IsDeleted": 1, "FirstName": "Gil", "LastName": "Gone", "Email": "gil@acme.com",
     "AccountId": rid("001A1"), "OwnerId": rid("005U1"), "HasOptedOutOfEmail": 0,
     "CreatedDate": "2025-05-05T05:05:05.005+0000"},
    {"Id": rid("003C5"), "IsDeleted": 0, "FirstName": "Ora", "LastName": "Orphan", "Email": "ora\\x@acme.com",
     "AccountId": rid("001XX"), "OwnerId": rid("005XX"), "HasOptedOutOfEmail": 0,
     "CreatedDate": "2026-06-14T23:59:59.999+0000"},
]
OPPORTUNITIES: list[Row] = [
    {"Id": rid("006O1"), "IsDeleted": 0, "AccountId": rid("001A1"), "Name": "Big deal", "IsClosed": 0, "Amount": 10.0},
    {"Id": rid("006O2"), "IsDeleted": 0, "AccountId": rid("001A2"), "Name": "Done deal", "IsClosed": 1, "Amount": 20.0},
]
ROLES: list[Row] = [
    {"Id": rid("00KK1"), "IsDeleted": 0, "OpportunityId": rid("006O1"), "ContactId": rid("003C1")},
    {"Id": rid("00KK2"), "IsDeleted": 0, "OpportunityId": rid("006O2"), "ContactId": rid("003C2")},
    {"Id": rid("00KK3"), "IsDeleted": 1, "OpportunityId": rid("006O1"), "ContactId": rid("003C3")},
]


def make_db(rows: Mapping[str, list[Row]]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    for obj in schema.OBJECTS.values():
        cols = ", ".join(f'"{f.name}" {f.sql_type}' for f in obj.fields)
        db.execute(f'CREATE TABLE "{obj.name}" ({cols}, "_secret" TEXT)')
        for row in rows.get(obj.name, []):
            names = ", ".join(f'"{k}"' for k in row)
            marks = ", ".join("?" for _ in row)
            db.execute(f'INSERT INTO "{obj.name}" ({names}, "_secret") VALUES ({marks}, ?)', [*row.values(), "x"])
    return db


@pytest.fixture(scope="module")
def db() -> Iterator[sqlite3.Connection]:
    conn = make_db({"User": USERS, "Account": ACCOUNTS, "Contact": CONTACTS, "Opportunity": OPPORTUNITIES,
                    "OpportunityContactRole": ROLES})
    yield conn
    conn.close()


def run(db: sqlite3.Connection, soql: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
    q = compile_soql(soql, include_deleted=include_deleted, now=NOW)
    sql, params = q.sql, list(q.params)
    if q.limit is not None or q.offset is not None:  # what the server does when it pages
        sql += " LIMIT ? OFFSET ?"
        params += [q.limit if q.limit is not None else -1, q.offset or 0]
    return [shape_record(q, row, "59.0") for row in db.execute(sql, params)]


def ids(db: sqlite3.Connection, soql: str, *, include_deleted: bool = False) -> list[str]:
    found = [r["attributes"]["url"].rsplit("/", 1)[1] for r in run(db, soql, include_deleted=include_deleted)]
    return [_SHORT.get(i, i) for i in found]


def count(db: sqlite3.Connection, soql: str, *, include_deleted: bool = False) -> int:
    q = compile_soql(soql, include_deleted=include_deleted, now=NOW)
    assert q.count_only and q.columns == ()
    (n,) = db.execute(q.sql, q.params).fetchone()
    return int(n)


def url(obj: str, short: str) -> str:
    return f"/services/data/v59.0/sobjects/{obj}/{rid(short)}"


# --- field lists and shaping ----------------------------------------------------------------------


def test_shapes_records_in_select_order_with_canonical_names_and_json_types(db: sqlite3.Connection) -> None:
    records = run(db, "select name, numberofemployees, ANNUALREVENUE, Owner.isactive, id "
                      f"from ACCOUNT where Id = '{rid('001A1')}'")
    assert records == [{
        "attributes": {"type": "Account", "url": url("Account", "001A1")},
        "Name": "Acme",
        "NumberOfEmployees": 50,
        "AnnualRevenue": 1000.5,
        "Owner": {"attributes": {"type": "User", "url": url("User", "005U1")}, "IsActive": True},
        "Id": rid("001A1"),
    }]
    assert list(records[0]) == ["attributes", "Name", "NumberOfEmployees", "AnnualRevenue", "Owner", "Id"]
    # A Decimal: the exact number, which the sandbox's JSON writes digit for digit (Salesforce keeps 18).
    assert type(records[0]["AnnualRevenue"]) is Decimal


def test_record_url_uses_the_id_even_when_not_selected_and_nulls_are_null(db: sqlite3.Connection) -> None:
    records = run(db, "SELECT FirstName, HasOptedOutOfEmail, Account.Name, Owner.Name, Owner.IsActive "
                      f"FROM Contact WHERE Id IN ('{rid('003C2')}', '{rid('003C3')[:15]}', '{rid('003C5')}') "
                      "ORDER BY Id")
    assert records == [
        {"attributes": {"type": "Contact", "url": url("Contact", "003C2")}, "FirstName": None,
         "HasOptedOutOfEmail": True,
         "Account": {"attributes": {"type": "Account", "url": url("Account", "001A2")}, "Name": "Globex"},
         "Owner": {"attributes": {"type": "User", "url": url("User", "005U2")}, "Name": "bob Gone",
                   "IsActive": False}},
        # no AccountId: the relationship is null
        {"attributes": {"type": "Contact", "url": url("Contact", "003C3")}, "FirstName": "Cy",
         "HasOptedOutOfEmail": False, "Account": None,
         "Owner": {"attributes": {"type": "User", "url": url("User", "005U1")}, "Name": "Ada Admin",
                   "IsActive": True}},
        # references that point nowhere are null too
        {"attributes": {"type": "Contact", "url": url("Contact", "003C5")}, "FirstName": "Ora",
         "HasOptedOutOfEmail": False, "Account": None, "Owner": None},
    ]


def test_api_version_with_or_without_v(db: sqlite3.Connection) -> None:
    q = compile_soql(f"SELECT Id FROM User WHERE Id = '{rid('005U1')}'", include_deleted=False, now=NOW)
    row = db.execute(q.sql, q.params).fetchone()
    assert shape_record(q, row, "v60.0")["attributes"]["url"] == f"/services/data/v60.0/sobjects/User/{rid('005U1')}"
    assert shape_record(q, row, "60.0")["attributes"]["url"] == f"/services/data/v60.0/sobjects/User/{rid('005U1')}"


def test_internal_columns_and_rowid_are_not_fields() -> None:
    for soql in ("SELECT _secret FROM Contact", "SELECT rowid FROM Contact",
                 "SELECT Id FROM Contact WHERE _secret = 'x'"):
        with pytest.raises(SoqlError) as err:
            compile_soql(soql, include_deleted=False, now=NOW)
        assert err.value.error_code == "INVALID_FIELD"


def test_output_columns_carry_schema_names_and_owning_object() -> None:
    q = compile_soql("SELECT email, owner.isactive FROM contact", include_deleted=False, now=NOW)
    assert [(c.path, c.field.name, c.object_name) for c in q.columns] == [
        (("Email",), "Email", "Contact"), (("Owner", "IsActive"), "IsActive", "User")]
    assert q.object is schema.CONTACT and not q.count_only


# --- operators and null handling --------------------------------------------------------------------


@pytest.mark.parametrize(("where", "expected"), [
    ("LastName = 'lee'", ["003C1"]),  # text equality ignores case
    ("LastName = 'O\\'Brien'", ["003C2"]),
    ("LastName != 'Lee'", ["003C2", "003C3", "003C5"]),
    ("LastName <> 'Lee'", ["003C2", "003C3", "003C5"]),
    ("FirstName != 'Ann'", ["003C2", "003C3", "003C5"]),  # a null field is "not equal"
    ("FirstName = null", ["003C2"]),
    ("FirstName != null", ["003C1", "003C3", "003C5"]),
    ("LastName < 'M'", ["003C1", "003C3"]),
    ("LastName <= 'lee'", ["003C1", "003C3"]),
    ("LastName > 'o'", ["003C2", "003C5"]),
    ("LastName >= 'ORPHAN'", ["003C5"]),
    ("FirstName < 'B'", ["003C1"]),  # null is neither smaller nor larger
    ("HasOptedOutOfEmail = true", ["003C2"]),
    ("HasOptedOutOfEmail != true", ["003C1", "003C3", "003C5"]),
    ("HasOptedOutOfEmail = FALSE", ["003C1", "003C3", "003C5"]),
    ("NOT FirstName = 'Ann'", ["003C2", "003C3", "003C5"]),
    ("NOT (FirstName < 'B')", ["003C2", "003C3", "003C5"]),  # two-valued logic: NOT of false is true
    ("LastName LIKE 'o%'", ["003C2", "003C5"]),
    ("LastName LIKE '_EE'", ["003C1"]),
    ("LastName LIKE '100\\%\\_%'", ["003C3"]),  # escaped wildcards match literally
    ("LastName LIKE '1000%'", []),
    ("Email LIKE '%\\\\x%'", ["003C5"]),  # an escaped backslash is a literal backslash
    ("Email LIKE '%globex%'", ["003C2"]),
    ("NOT Email LIKE '%acme%'", ["003C2", "003C3"]),
    ("FirstName IN ('ann', 'CY')", ["003C1", "003C3"]),
    ("FirstName NOT IN ('Ann', 'Cy')", ["003C2", "003C5"]),
    ("FirstName IN ('Ann', null)", ["003C1", "003C2"]),
    ("FirstName NOT IN ('Ann', null)", ["003C3", "003C5"]),
    ("LeadSource IN ('Web', 'Phone Inquiry')", ["003C1", "003C2"]),
    (f"AccountId = '{rid('001A1')}'", ["003C1"]),
    (f"AccountId = '{rid('001A1')[:15]}'", ["003C1"]),  # a 15-character id means its 18-character form
    ("AccountId = ''", ["003C3"]),  # '' on an id field means null
    ("AccountId != ''", ["003C1", "003C2", "003C5"]),
    (f"AccountId IN ('{rid('001A2')}', '')", ["003C2", "003C3"]),
    ("(FirstName = 'Ann' OR FirstName = 'Cy') AND HasOptedOutOfEmail = false", ["003C1", "003C3"]),
    ("FirstName = 'Ann' OR (LastName = 'Orphan' AND NOT HasOptedOutOfEmail = true)", ["003C1", "003C5"]),
])
def test_where_operators(db: sqlite3.Connection, where: str, expected: list[str]) -> None:
    assert ids(db, f"SELECT Id FROM Contact WHERE {where} ORDER BY Id") == expected


@pytest.mark.parametrize(("where", "expected"), [
    ("NumberOfEmployees = 50", ["001A1"]),
    ("NumberOfEmployees > 7", ["001A1"]),
    ("NumberOfEmployees >= 7", ["001A1", "001A4"]),
    ("NumberOfEmployees < 50.5", ["001A1", "001A4"]),
    ("NumberOfEmployees != 7", ["001A1", "001A2"]),
    ("AnnualRevenue <= 1000.5", ["001A1"]),
    ("AnnualRevenue > -1", ["001A1"]),
    ("NumberOfEmployees IN (7, 8)", ["001A4"]),
    ("NumberOfEmployees < 99999999999999999999", ["001A1", "001A4"]),
])
def test_numbers(db: sqlite3.Connection, where: str, expected: list[str]) -> None:
    assert ids(db, f"SELECT Id FROM Account WHERE {where} ORDER BY Id") == expected


def test_string_values_are_parameters_not_sql(db: sqlite3.Connection) -> None:
    q = compile_soql("SELECT Id FROM Contact WHERE LastName = 'x\\' OR 1=1 --'", include_deleted=False, now=NOW)
    assert "1=1" not in q.sql and q.params == ("x' OR 1=1 --",)
    assert ids(db, "SELECT Id FROM Contact WHERE LastName = 'x\\' OR 1=1 --'") == []


def test_string_escapes_decode() -> None:
    q = compile_soql("SELECT Id FROM Contact WHERE Description = 'a\\nb\\tc\\\\d\\\"e\\rf\\bg\\fh'",
                     include_deleted=False, now=NOW)
    assert q.params == ('a\nb\tc\\d"e\rf\bg\fh',)


# --- semi-joins and anti-joins ----------------------------------------------------------------------


def test_semi_join_with_relationship_in_subquery(db: sqlite3.Connection) -> None:
    soql = ("SELECT Id FROM Contact WHERE Id IN "
            "(SELECT ContactId FROM OpportunityContactRole WHERE Opportunity.IsClosed = false)")
    assert ids(db, soql) == ["003C1"]  # 003C3's role is in the recycle bin


def test_anti_join_keeps_contacts_without_open_deals(db: sqlite3.Connection) -> None:
    soql = ("SELECT Id FROM Contact WHERE Id NOT IN "
            "(SELECT ContactId FROM OpportunityContactRole WHERE Opportunity.IsClosed = false) ORDER BY Id")
    assert ids(db, soql) == ["003C2", "003C3", "003C5"]


def test_anti_join_on_a_nullable_reference(db: sqlite3.Connection) -> None:
    # Contact 003C3 has no account: the subquery's null must not empty an anti-join
    assert ids(db, "SELECT Id FROM Account WHERE Id NOT IN (SELECT AccountId FROM Contact) ORDER BY Id") == ["001A4"]
    # deleted Contact 003C4 does not count as a contact of Acme
    assert ids(db, "SELECT Id FROM Account WHERE Id IN (SELECT AccountId FROM Contact WHERE LastName = 'Gone')") == []


def test_semi_join_on_reference_field(db: sqlite3.Connection) -> None:
    soql = "SELECT Id FROM Contact WHERE AccountId IN (SELECT Id FROM Account WHERE NumberOfEmployees > 10)"
    assert ids(db, soql) == ["003C1"]
    soql = ("SELECT Id FROM Contact WHERE AccountId NOT IN (SELECT Id FROM Account WHERE NumberOfEmployees > 10) "
            "ORDER BY Id")
    assert ids(db, soql) == ["003C2", "003C3", "003C5"]


def test_semi_join_combined_with_other_conditions(db: sqlite3.Connection) -> None:
    soql = ("SELECT Id FROM Contact WHERE LastActivityDate < LAST_N_DAYS:730 AND Id NOT IN "
            "(SELECT ContactId FROM OpportunityContactRole WHERE Opportunity.IsClosed = false)")
    assert ids(db, soql) == ["003C2"]


# --- dates ----------------------------------------------------------------------------------------

DAYS = ["2023-12-31", "2024-01-01", "2025-12-31", "2026-01-01", "2026-06-11", "2026-06-12", "2026-06-14",
        "2026-06-15", "2026-06-16", "2026-06-18", "2026-06-19", "2026-12-31", "2027-01-01"]


@pytest.fixture(scope="module")
def dated() -> Iterator[sqlite3.Connection]:
    rows: list[Row] = [{"Id": d, "IsDeleted": 0, "Name": d, "CloseDate": d,
                        "CreatedDate": f"{d}T{'00:00:00.000' if i % 2 else '23:59:59.999'}+0000"}
                       for i, d in enumerate(DAYS)]
    conn = make_db({"Opportunity": rows})
    yield conn
    conn.close()


@pytest.mark.parametrize(("cond", "expected"), [
    ("= TODAY", ["2026-06-15"]),
    ("= YESTERDAY", ["2026-06-14"]),
    ("= TOMORROW", ["2026-06-16"]),
    ("= LAST_N_DAYS:3", ["2026-06-12", "2026-06-14", "2026-06-15"]),
    ("< LAST_N_DAYS:3", ["2023-12-31", "2024-01-01", "2025-12-31", "2026-01-01", "2026-06-11"]),
    (">= LAST_N_DAYS:3", ["2026-06-12", "2026-06-14", "2026-06-15", "2026-06-16", "2026-06-18", "2026-06-19",
                          "2026-12-31", "2027-01-01"]),
    ("= NEXT_N_DAYS:3", ["2026-06-16", "2026-06-18"]),
    ("> NEXT_N_DAYS:3", ["2026-06-19", "2026-12-31", "2027-01-01"]),
    ("<= NEXT_N_DAYS:3", ["2023-12-31", "2024-01-01", "2025-12-31", "2026-01-01", "2026-06-11", "2026-06-12",
                          "2026-06-14", "2026-06-15", "2026-06-16", "2026-06-18"]),
    ("= N_DAYS_AGO:3", ["2026-06-12"]),
    ("= LAST_N_YEARS:2", ["2024-01-01", "2025-12-31"]),
    ("< LAST_N_YEARS:2", ["2023-12-31"]),
    ("> LAST_N_YEARS:2", ["2026-01-01", "2026-06-11", "2026-06-12", "2026-06-14", "2026-06-15", "2026-06-16",
                          "2026-06-18", "2026-06-19", "2026-12-31", "2027-01-01"]),
    ("= N_YEARS_AGO:1", ["2025-12-31"]),
    ("= THIS_YEAR", ["2026-01-01", "2026-06-11", "2026-06-12", "2026-06-14", "2026-06-15", "2026-06-16",
                     "2026-06-18", "2026-06-19", "2026-12-31"]),
    ("!= THIS_YEAR", ["2023-12-31", "2024-01-01", "2025-12-31", "2027-01-01"]),
    ("= LAST_YEAR", ["2025-12-31"]),
    ("= 2026-06-15", ["2026-06-15"]),
    ("> 2026-12-31", ["2027-01-01"]),
])
def test_date_literals_on_a_date_field(dated: sqlite3.Connection, cond: str, expected: list[str]) -> None:
    assert ids(dated, f"SELECT Id FROM Opportunity WHERE CloseDate {cond} ORDER BY CloseDate") == expected


@pytest.mark.parametrize(("cond", "expected"), [
    # rows alternate between the first and the last millisecond of their day
    ("= TODAY", ["2026-06-15"]),
    ("= LAST_N_DAYS:3", ["2026-06-12", "2026-06-14", "2026-06-15"]),
    ("< N_DAYS_AGO:3", ["2023-12-31", "2024-01-01", "2025-12-31", "2026-01-01", "2026-06-11"]),
    ("> TOMORROW", ["2026-06-18", "2026-06-19", "2026-12-31", "2027-01-01"]),
    ("= LAST_YEAR", ["2025-12-31"]),
    ("= THIS_YEAR", ["2026-01-01", "2026-06-11", "2026-06-12", "2026-06-14", "2026-06-15", "2026-06-16",
                     "2026-06-18", "2026-06-19", "2026-12-31"]),
])
def test_date_literals_on_a_datetime_field(dated: sqlite3.Connection, cond: str, expected: list[str]) -> None:
    assert ids(dated, f"SELECT Id FROM Opportunity WHERE CreatedDate {cond} ORDER BY CloseDate") == expected


@pytest.mark.parametrize(("literal", "expected"), [
    ("2026-06-14T23:59:59.999Z", ["003C1"]),
    ("2026-06-15T00:59:59+01:00", ["003C1", "003C5"]),  # = 2026-06-14T23:59:59Z
    ("2026-06-14T18:59:59.9995-0500", ["003C1"]),  # = 2026-06-14T23:59:59.999Z, fraction truncated to ms
    ("2026-06-14T18:59:59.998-05:00", ["003C1", "003C5"]),
    ("2026-06-15T10:00:00Z", []),
])
def test_datetime_literals_with_offsets(db: sqlite3.Connection, literal: str, expected: list[str]) -> None:
    assert ids(db, f"SELECT Id FROM Contact WHERE CreatedDate > {literal} ORDER BY Id") == expected


def test_datetime_literal_equality_converts_to_utc(db: sqlite3.Connection) -> None:
    assert ids(db, "SELECT Id FROM Contact WHERE CreatedDate = 2023-02-01T03:30:00-05:00") == ["003C2"]
    q = compile_soql("SELECT Id FROM Contact WHERE CreatedDate = 2023-02-01T03:30:00.5-05:00",
                     include_deleted=False, now=NOW)
    assert q.params == ("2023-02-01T08:30:00.500+0000",)


# --- relationships, ordering, paging, count, deleted ---------------------------------------------------


def test_relationship_in_where(db: sqlite3.Connection) -> None:
    assert ids(db, "SELECT Id FROM Contact WHERE Owner.IsActive = false") == ["003C2"]
    assert ids(db, "SELECT Id FROM Contact WHERE Account.Name LIKE 'ac%' AND Owner.Name = 'ADA ADMIN'") == ["003C1"]
    # unmatched references read as null fields
    assert ids(db, "SELECT Id FROM Contact WHERE Owner.Name = null") == ["003C5"]


def test_order_by_relationship_field_with_nulls_first_by_default(db: sqlite3.Connection) -> None:
    assert ids(db, "SELECT Id FROM Contact ORDER BY Account.Name, Id") == ["003C3", "003C5", "003C1", "003C2"]
    assert ids(db, "SELECT Id FROM Contact ORDER BY Account.Name DESC, Id") == ["003C3", "003C5", "003C2", "003C1"]


def test_order_by_nulls_last_and_case_insensitive_text(db: sqlite3.Connection) -> None:
    assert ids(db, "SELECT Id FROM Contact ORDER BY FirstName NULLS LAST") == ["003C1", "003C3", "003C5", "003C2"]
    assert ids(db, "SELECT Id FROM Contact ORDER BY FirstName DESC NULLS FIRST") == [
        "003C2", "003C5", "003C3", "003C1"]
    assert ids(db, "SELECT Id FROM Contact ORDER BY FirstName DESC NULLS LAST") == [
        "003C5", "003C3", "003C1", "003C2"]
    assert ids(db, "SELECT Id FROM User ORDER BY Name DESC") == ["005U2", "005U1"]  # 'bob' > 'Ada' ignoring case


def test_order_is_total_with_rowid_tiebreak(db: sqlite3.Connection) -> None:
    q = compile_soql("SELECT Id FROM Contact ORDER BY HasOptedOutOfEmail", include_deleted=False, now=NOW)
    assert q.sql.endswith("t0.rowid")
    assert ids(db, "SELECT Id FROM Contact ORDER BY HasOptedOutOfEmail") == ["003C1", "003C3", "003C5", "003C2"]


def test_limit_and_offset(db: sqlite3.Connection) -> None:
    q = compile_soql("SELECT Id FROM Contact ORDER BY Id LIMIT 2 OFFSET 1", include_deleted=False, now=NOW)
    assert (q.limit, q.offset) == (2, 1) and "LIMIT" not in q.sql
    assert ids(db, "SELECT Id FROM Contact ORDER BY Id LIMIT 2 OFFSET 1") == ["003C2", "003C3"]
    assert ids(db, "SELECT Id FROM Contact ORDER BY Id LIMIT 2") == ["003C1", "003C2"]
    assert ids(db, "SELECT Id FROM Contact ORDER BY Id OFFSET 3") == ["003C5"]


def test_count(db: sqlite3.Connection) -> None:
    assert count(db, "SELECT COUNT() FROM Contact") == 4
    assert count(db, "SELECT count() FROM Contact", include_deleted=True) == 5
    assert count(db, "SELECT COUNT() FROM Contact WHERE Owner.IsActive = true") == 2
    assert count(db, "SELECT COUNT() FROM User") == 2  # no IsDeleted column on User
    q = compile_soql("SELECT COUNT() FROM Contact LIMIT 1", include_deleted=False, now=NOW)
    assert q.limit == 1


def test_include_deleted(db: sqlite3.Connection) -> None:
    assert ids(db, "SELECT Id FROM Contact ORDER BY Id") == ["003C1", "003C2", "003C3", "003C5"]
    assert ids(db, "SELECT Id FROM Contact ORDER BY Id", include_deleted=True) == [
        "003C1", "003C2", "003C3", "003C4", "003C5"]
    assert ids(db, "SELECT Id FROM Contact WHERE IsDeleted = true", include_deleted=True) == ["003C4"]
    assert ids(db, "SELECT Id FROM Contact WHERE IsDeleted = true") == []
    # the semi-join still ignores the deleted role even for queryAll
    soql = "SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM OpportunityContactRole) ORDER BY Id"
    assert ids(db, soql, include_deleted=True) == ["003C1", "003C2"]


def test_server_paging_suffix_is_valid(db: sqlite3.Connection) -> None:
    q = compile_soql("SELECT Id, Owner.Name FROM Contact WHERE LastName != 'x' ORDER BY Owner.Name",
                     include_deleted=False, now=NOW)
    pages = [db.execute(q.sql + " LIMIT ? OFFSET ?", [*q.params, 2, start]).fetchall() for start in (0, 2, 4)]
    assert [_SHORT[row[0]] for page in pages for row in page] == ["003C5", "003C1", "003C3", "003C2"]
    # also as the store materialises a result: wrapped, with unique column names and the order kept
    db.execute(f"CREATE TEMP TABLE page_test AS SELECT * FROM ({q.sql}) LIMIT ? OFFSET ?", [*q.params, 3, 1])
    try:
        cursor = db.execute("SELECT * FROM page_test ORDER BY rowid")
        rows = cursor.fetchall()
        assert len({d[0] for d in cursor.description}) == len(cursor.description) == 4  # own Id, Id, Name, Owner Id
        assert [_SHORT[r[0]] for r in rows] == ["003C1", "003C3", "003C2"]
        assert shape_record(q, rows[0], "59.0")["Owner"]["Name"] == "Ada Admin"
    finally:
        db.execute("DROP TABLE temp.page_test")


# --- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("soql", "code", "message"), [
    ("SELECT Id FROM Foo", "INVALID_TYPE", "sObject type 'Foo' is not supported."),
    ("SELECT Foo FROM Contact", "INVALID_FIELD", "No such column 'Foo' on entity 'Contact'."),
    ("SELECT Owner.Foo FROM Contact", "INVALID_FIELD", "No such column 'Foo' on entity 'User'."),
    ("SELECT Id FROM Contact WHERE Foo = 1", "INVALID_FIELD", "No such column 'Foo' on entity 'Contact'."),
    ("SELECT Id FROM Contact ORDER BY Foo", "INVALID_FIELD", "No such column 'Foo' on entity 'Contact'."),
    ("SELECT Boss.Name FROM Contact", "INVALID_FIELD", "Didn't understand relationship 'Boss' in field path."),
    ("SELECT Who.Name FROM Task", "INVALID_FIELD", "polymorphic relationships"),
    ("SELECT Id FROM Task WHERE What.Name = 'x'", "INVALID_FIELD", "polymorphic relationships"),
    ("SELECT Id FROM Contact WHERE CreatedDate > '2020-01-01'", "INVALID_FIELD",
     "value of filter criterion for field 'CreatedDate' must be of type dateTime and should not be enclosed"),
    ("SELECT Id FROM Contact WHERE CreatedDate > 2020-01-01", "INVALID_FIELD", "must be of type dateTime"),
    ("SELECT Id FROM Contact WHERE LastActivityDate = 2020-01-01T00:00:00Z", "INVALID_FIELD", "must be of type date"),
    ("SELECT Id FROM Contact WHERE LastActivityDate = '2020-01-01'", "INVALID_FIELD", "must be of type date"),
    ("SELECT Id FROM Contact WHERE LastName = 5", "INVALID_FIELD",
     "must be of type string and should be enclosed in quotes"),
    ("SELECT Id FROM Account WHERE NumberOfEmployees = '5'", "INVALID_FIELD", "must be of type int"),
    ("SELECT Id FROM Contact WHERE HasOptedOutOfEmail = 1", "INVALID_FIELD", "must be of type boolean"),
    ("SELECT Id FROM Contact WHERE HasOptedOutOfEmail < true", "INVALID_FIELD", "boolean"),
    ("SELECT Id FROM Contact WHERE LastName = TODAY", "INVALID_FIELD", "date or dateTime field"),
    ("SELECT Id FROM Contact WHERE HasOptedOutOfEmail LIKE 'x'", "INVALID_FIELD", "LIKE"),
    ("SELECT Id FROM Contact WHERE LastName < null", "INVALID_FIELD", "null"),
    ("SELECT Id FROM Contact WHERE LastName IN (SELECT Id FROM Account)", "INVALID_FIELD", "semi-join"),
    ("SELECT Id FROM Contact WHERE Id IN (SELECT Name FROM Account)", "INVALID_FIELD", "Id or reference"),
    ("SELECT Id FROMM Contact", "MALFORMED_QUERY", "unexpected token: 'FROMM'"),
    ("SELECT Id, FROM Contact", "MALFORMED_QUERY", "unexpected token: 'FROM'"),
    ("SELECT Id FROM Contact WHERE", "MALFORMED_QUERY", "unexpected token: '<EOF>'"),
    ("SELECT Id FROM Contact WHERE LastName = 'x", "MALFORMED_QUERY", "unterminated string"),
    ("SELECT Id FROM Contact WHERE LastName = 'a\\qb'", "MALFORMED_QUERY", "Invalid string literal"),
    ("SELECT Id FROM Contact WHERE LastName = 'a' AND FirstName = 'b' OR Email = 'c'", "MALFORMED_QUERY",
     "unexpected token: 'OR'"),
    ("SELECT LeadSource FROM Contact GROUP BY LeadSource", "MALFORMED_QUERY", "GROUP BY is not supported"),
    ("SELECT Id FROM Contact WITH SECURITY_ENFORCED", "MALFORMED_QUERY", "WITH is not supported"),
    ("SELECT Id FROM Contact FOR VIEW", "MALFORMED_QUERY", "FOR VIEW"),
    ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "MALFORMED_QUERY", "child relationship subquery"),
    ("SELECT TYPEOF What WHEN Account THEN Name END FROM Task", "MALFORMED_QUERY", "TYPEOF"),
    ("SELECT COUNT(Id) FROM Contact", "MALFORMED_QUERY", "COUNT(field)"),
    ("SELECT MAX(Amount) FROM Opportunity", "MALFORMED_QUERY", "MAX()"),
    ("SELECT Account.Owner.Name FROM Contact", "MALFORMED_QUERY", "more than one level"),
    ("SELECT Id, id FROM Contact", "MALFORMED_QUERY", "duplicate field selected: Id"),
    ("SELECT Id FROM Contact WHERE CloseDate = THIS_QUARTER", "MALFORMED_QUERY", "THIS_QUARTER"),
    ("SELECT Id FROM Contact WHERE LastActivityDate = LAST_N_DAYS", "MALFORMED_QUERY", "LAST_N_DAYS:30"),
    ("SELECT Id FROM Contact WHERE LastActivityDate IN (TODAY)", "MALFORMED_QUERY", "IN list"),
    ("SELECT Id FROM Contact LIMIT -1", "MALFORMED_QUERY", "LIMIT must be a non-negative whole number"),
    ("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM OpportunityContactRole WHERE OpportunityId IN "
     "(SELECT Id FROM Opportunity))", "MALFORMED_QUERY", "nested semi-join"),
    ("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId, Id FROM OpportunityContactRole)", "MALFORMED_QUERY",
     "exactly one"),
    ("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM OpportunityContactRole LIMIT 5)", "MALFORMED_QUERY",
     "not allowed in a semi-join"),
    ("SELECT Id FROM Contact WHERE Name INCLUDES ('a')", "MALFORMED_QUERY", "INCLUDES"),
    ("SELECT Id FROM Contact WHERE Id = '003C1'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: 003C1"),
    (f"SELECT Id FROM Contact WHERE AccountId IN ('{rid('001A1')[:15]}AAA')", "INVALID_QUERY_FILTER_OPERATOR",
     "invalid ID field"),
    ("SELECT Id FROM Contact LIMIT 99999999999999999999", "MALFORMED_QUERY", "LIMIT must be"),
    ("SELECT Id FROM Contact WHERE CreatedDate = LAST_N_DAYS:99999999999", "NUMBER_OUTSIDE_VALID_RANGE",
     "outside the calendar"),
    ("SELECT Id FROM Contact WHERE LastActivityDate < N_YEARS_AGO:5000", "NUMBER_OUTSIDE_VALID_RANGE",
     "outside the calendar"),
    ("SELECT Id FROM Contact WHERE " + "NOT " * 5000 + "LastName = 'x'", "MALFORMED_QUERY", "too deeply"),
    ("SELECT Id FROM Contact OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000"),
])
def test_errors(soql: str, code: str, message: str) -> None:
    with pytest.raises(SoqlError) as err:
        compile_soql(soql, include_deleted=False, now=NOW)
    assert err.value.error_code == code
    assert message in err.value.message
    assert str(err.value) == err.value.message and "\n" not in err.value.message


def test_syntax_errors_say_where() -> None:
    with pytest.raises(SoqlError) as err:
        compile_soql("SELECT Id\nFROMM Contact", include_deleted=False, now=NOW)
    assert err.value.message == "unexpected token: 'FROMM' at Row:2:Column:1"


# --- property: random nested conditions agree with a plain Python evaluator -------------------------

PROP_ROWS: list[Row] = [
    {"Id": rid(f"001P{i}"), "IsDeleted": 0, "Name": name, "NumberOfEmployees": emp, "Type": kind}
    for i, (name, emp, kind) in enumerate([
        ("acme", 10, "Customer"), ("Beta", None, "Partner"), (None, 5, None), ("ZED", 0, "Customer"),
        ("beta", 10, None), ("Mid", -3, "Other"),
    ])
]

Predicate = Callable[[Row], bool]


def _leaf() -> st.SearchStrategy[tuple[str, Predicate]]:
    def compare(field: str, op: str, value: object) -> Predicate:
        def pred(row: Row) -> bool:
            actual = row[field]
            if value is None:
                return (actual is None) if op == "=" else (actual is not None)
            if actual is None:
                return op == "!="
            a, b = (actual.lower(), value.lower()) if isinstance(actual, str) and isinstance(value, str) \
                else (actual, value)
            outcomes: dict[str, bool] = {"=": a == b, "!=": a != b, "<": a < b, "<=": a <= b,  # type: ignore[operator]
                                         ">": a > b, ">=": a >= b}  # type: ignore[operator]
            return outcomes[op]
        return pred

    def soql_value(value: object) -> str:
        return "null" if value is None else f"'{value}'" if isinstance(value, str) else str(value)

    def build(field: str, op: str, value: object) -> tuple[str, Predicate]:
        return f"{field} {op} {soql_value(value)}", compare(field, op, value)

    ops = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
    name = st.tuples(st.just("Name"), ops, st.sampled_from(["acme", "BETA", "m", "zed", "c"]))
    emp = st.tuples(st.just("NumberOfEmployees"), ops, st.sampled_from([0, 5, 10, -3, 7]))
    nulls = st.tuples(st.sampled_from(["Name", "NumberOfEmployees", "Type"]), st.sampled_from(["=", "!="]),
                      st.none())
    in_list = st.tuples(st.booleans(), st.lists(st.sampled_from(["Customer", "partner", "Other"]), min_size=1,
                                                max_size=3))

    def build_in(negated: bool, values: list[str]) -> tuple[str, Predicate]:
        lowered = {v.lower() for v in values}

        def pred(row: Row) -> bool:
            actual = row["Type"]
            inside = isinstance(actual, str) and actual.lower() in lowered
            return not inside if negated else inside
        listed = ", ".join(f"'{v}'" for v in values)
        return f"Type {'NOT IN' if negated else 'IN'} ({listed})", pred

    return st.one_of(
        st.one_of(name, emp, nulls).map(lambda t: build(*t)),
        in_list.map(lambda t: build_in(*t)),
    )


def _combine(children: st.SearchStrategy[tuple[str, Predicate]]) -> st.SearchStrategy[tuple[str, Predicate]]:
    def negate(child: tuple[str, Predicate]) -> tuple[str, Predicate]:
        text, pred = child
        return f"NOT ({text})", lambda row: not pred(row)

    def join(op: str, parts: list[tuple[str, Predicate]]) -> tuple[str, Predicate]:
        text = f" {op} ".join(f"({t})" for t, _ in parts)
        preds = [p for _, p in parts]
        if op == "AND":
            return text, lambda row: all(p(row) for p in preds)
        return text, lambda row: any(p(row) for p in preds)

    return st.one_of(
        children.map(negate),
        st.tuples(st.sampled_from(["AND", "OR"]), st.lists(children, min_size=2, max_size=3)).map(lambda t: join(*t)),
    )


@pytest.fixture(scope="module")
def prop_db() -> Iterator[sqlite3.Connection]:
    conn = make_db({"Account": PROP_ROWS})
    yield conn
    conn.close()


@settings(max_examples=150, deadline=None)
@given(cond=st.recursive(_leaf(), _combine, max_leaves=8))
def test_random_conditions_match_python_evaluator(prop_db: sqlite3.Connection, cond: tuple[str, Predicate]) -> None:
    text, pred = cond
    expected = [_SHORT[str(r["Id"])] for r in PROP_ROWS if pred(r)]
    assert ids(prop_db, f"SELECT Id FROM Account WHERE {text} ORDER BY Id") == expected, text


def test_compiled_query_is_plain_data() -> None:
    q = compile_soql("SELECT Id FROM Lead", include_deleted=True, now=NOW)
    assert isinstance(q, CompiledQuery) and q.params == () and q.limit is None and q.offset is None
