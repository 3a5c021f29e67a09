"""Datetimes before year 1000 keep four-digit years on every path, as Salesforce answers them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from crmsweep.sandbox import describe, rules, schema
from crmsweep.sandbox.server import start_sandbox
from tests.test_sandbox_api import connect

EARLY = "0999-05-06T07:08:09.000+0000"


def test_query_record_get_and_filters_keep_the_four_digit_year(tmp_path: Path) -> None:
    with start_sandbox(tmp_path, records=30) as sandbox:
        sf = connect(sandbox.info)
        contact_id = sf.Contact.create({"LastName": "Early", "EmailBouncedDate": "0999-05-06T07:08:09Z"})["id"]
        soql = f"SELECT EmailBouncedDate FROM Contact WHERE Id = '{contact_id}'"
        assert sf.query(soql)["records"][0]["EmailBouncedDate"] == EARLY
        assert sf.Contact.get(contact_id)["EmailBouncedDate"] == EARLY
        # Text order is time order only with the padding: the early date sorts first and filters right.
        earlier = sf.query("SELECT Id FROM Contact WHERE EmailBouncedDate < 1000-01-01T00:00:00Z")["records"]
        assert [r["Id"] for r in earlier] == [contact_id]
        same = sf.query("SELECT Id FROM Contact WHERE EmailBouncedDate = 0999-05-06T07:08:09Z")["records"]
        assert [r["Id"] for r in same] == [contact_id]
        first = sf.query("SELECT Id FROM Contact WHERE EmailBouncedDate != null ORDER BY EmailBouncedDate LIMIT 1")
        assert first["records"][0]["Id"] == contact_id


def test_stamps_and_describe_defaults_are_padded() -> None:
    moment = datetime(999, 5, 6, 7, 8, 9, 120000, tzinfo=UTC)
    assert rules.format_datetime(moment) == "0999-05-06T07:08:09.120+0000"
    assert rules.next_stamp(datetime(5, 1, 2, tzinfo=UTC), None) == "0005-01-02T00:00:00.000+0000"
    assert rules.next_stamp(moment, "0999-05-06T07:08:09.120+0000") == "0999-05-06T07:08:09.121+0000"
    early = schema.Field("Since__c", schema.DATETIME, "Since", custom=True, default=moment)
    obj = schema.SObject("Thing__c", "a00", (schema.Field("Id", schema.ID, nillable=False), early))
    described = {f["name"]: f for f in describe.describe(obj, "59.0")["fields"]}
    assert described["Since__c"]["defaultValue"] == "0999-05-06T07:08:09.120+0000"


def test_values_stored_unpadded_by_an_older_version_are_repaired_on_start(tmp_path: Path) -> None:
    with start_sandbox(tmp_path, records=30) as sandbox:
        contact_id = connect(sandbox.info).Contact.create({"LastName": "Early"})["id"]
    db = sqlite3.connect(tmp_path / "org.sqlite3")
    db.execute("UPDATE Contact SET EmailBouncedDate = '999-05-06T07:08:09.000+0000' WHERE Id = ?", (contact_id,))
    db.execute("DELETE FROM _sandbox_meta WHERE key = 'four_digit_years'")
    db.commit()
    db.close()
    with start_sandbox(tmp_path, records=30) as again:
        assert connect(again.info).Contact.get(contact_id)["EmailBouncedDate"] == EARLY
