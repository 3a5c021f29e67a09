"""HubSpot number properties are kept exactly as HubSpot wrote them (issue 7's closing note): through the
snapshot, the plan's before-images, the re-create a rollback writes, and the value check apply makes before
it archives a property. A double would round "12345678901234567890" and "0.1000000000000000055", and a
value check over doubles cannot see a change in the 18th digit.

The pure parts (the DECIMAL kind's text, its fast paths, its comparison) against plain references; the
round trips through hubspot-api-client against the HubSpot sandbox (seed 21, 250 contacts).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hubspot.crm.contacts.exceptions import ApiException
from hubspot.crm.properties import PropertyCreate
from hypothesis import given, settings
from hypothesis import strategies as st

from crmsweep import api
from crmsweep.backup.field_restore import CHANGED, how_changed, live_matches
from crmsweep.backup.runlog import read_run
from crmsweep.backup.snapshot import open_snapshot
from crmsweep.backup.snapshot_diff import diff_snapshots
from crmsweep.backup.snapshot_values import UnfitValue, fast_column, text_column, to_arrow_value
from crmsweep.cleanup.view import FrameView
from crmsweep.connectors.hubspot_records import field_spec
from crmsweep.decimal_text import DECIMAL_PATTERN, decimal_text, same_decimal
from crmsweep.model import FieldKind
from crmsweep.paths import Home
from crmsweep.sandbox.planted import read_planted
from crmsweep.sandbox.server import RunningSandbox
from tests.fake_connector import FAKE_VOCABULARY, FakeConnector, spec, standard_fields
from tests.hubspot_fixtures import hs, hubspot_sandbox
from tests.pass_views import manifest
from tests.test_passes_hubspot import workspace, yes
from tests.test_snapshot import snap

__all__ = ["hs", "hubspot_sandbox"]

DECIMAL = FieldKind.DECIMAL
# More digits than a double holds, and the spellings a CRM might send.
EXACT = ["12345678901234567890", "0.1000000000000000055", "-98765432109876543.21", "-0", "0", "1e3", "1E-400",
         "+.5", "5.", "100000000000000000000000000000000000000001", "1.50"]
NOT_NUMBERS = ["1,000", "1.2.3", "NaN", "Infinity", "-inf", "1_000", "\u0661\u0662", "0x10", "e3", "1e", ".", "-",
               "5 5", "abc"]
AWKWARD = st.sampled_from([*EXACT, *NOT_NUMBERS, "", " ", "\t", " 5", "5 ", "\n7\n", "\u3000 8", None])
TEXTS = st.one_of(AWKWARD, st.from_regex(DECIMAL_PATTERN, fullmatch=True))


def reference(value: Any) -> Any:
    """What the value-by-value path keeps of one API value: the text (blanks round it off), None, or why not."""
    try:
        return to_arrow_value(DECIMAL, value)
    except UnfitValue as exc:
        return exc


# --- the kind, pure ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", EXACT)
def test_a_decimal_keeps_the_crms_own_text(text: str) -> None:
    assert decimal_text(text) == text
    assert decimal_text(f" {text}\n") == text
    assert to_arrow_value(DECIMAL, text) == text


@pytest.mark.parametrize("value", [*NOT_NUMBERS, True, float("nan"), float("inf"), Decimal("NaN"), [1],
                                   Decimal("1e999999999999"), "1e9999999999"])
def test_what_is_not_a_finite_decimal_is_refused_not_rounded(value: Any) -> None:
    with pytest.raises(UnfitValue):
        to_arrow_value(DECIMAL, value)


def test_a_number_given_as_a_number_keeps_its_exact_spelling() -> None:
    assert [decimal_text(v) for v in (12345678901234567890, 10**40, 0.1, -0.0, 1e16, Decimal("1.50"))] == [
        "12345678901234567890", str(10**40), "0.1", "-0.0", "1e+16", "1.50"]


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXTS, max_size=8))
def test_the_whole_column_paths_keep_exactly_what_the_value_by_value_path_keeps(values: list[Any]) -> None:
    expected = [reference(v) for v in values]
    for fast in (fast_column(DECIMAL, values), text_column(DECIMAL, pa.array(values, type=pa.string()))):
        if fast is not None:
            assert fast.type == pa.string()
            assert fast.to_pylist() == expected
    for value, kept in zip(values, expected, strict=True):
        if isinstance(kept, str):
            assert isinstance(value, str) and kept == value.strip() and Decimal(kept) == Decimal(value.strip())


def test_the_value_check_compares_exact_decimals() -> None:
    backed_up = "12345678901234567890"
    assert float(backed_up) == float("12345678901234567990")  # what a check over doubles saw
    assert how_changed({"score": "12345678901234567990"}, "score", backed_up, DECIMAL) == CHANGED
    assert how_changed({"score": "0.1000000000000000056"}, "score", "0.1000000000000000055", DECIMAL) == CHANGED
    assert how_changed({"score": backed_up}, "score", backed_up, DECIMAL) is None
    assert all(live_matches(a, b, DECIMAL) for a, b in (("1000", "1e3"), ("1.5", "1.50"), ("0", "-0")))
    assert not live_matches("1000", "1,000", DECIMAL) and not same_decimal("NaN", "NaN")
    # A snapshot written before numbers were kept as text holds a double, compared as before.
    assert how_changed({"score": "2.5"}, "score", 2.5, FieldKind.FLOAT) is None
    assert how_changed({"score": "2.6"}, "score", 2.5, FieldKind.FLOAT) == CHANGED


def test_hubspot_number_properties_are_decimals_and_other_kinds_stay() -> None:
    assert field_spec({"name": "amount", "type": "number"}).kind is DECIMAL
    assert field_spec({"name": "closedate", "type": "datetime"}).kind is FieldKind.DATETIME
    assert field_spec({"name": "email", "type": "string"}).kind is FieldKind.STRING


# --- the snapshot: exact text for before-images, numbers for passes, old FLOAT columns still read ----


def test_a_snapshot_keeps_decimal_text_and_still_reads_a_float_column_of_an_older_one(tmp_path: Path) -> None:
    # "Old" is typed FLOAT, as every HubSpot number was before: the kind comes from the snapshot's own fields.
    specs = standard_fields(spec("Exact", DECIMAL), spec("Old", FieldKind.FLOAT))
    rows: list[dict[str, Any]] = [{"Id": f"00{i}", "IsDeleted": False, "Exact": text, "Old": text} for i, text in
            enumerate(["12345678901234567890", "0.1000000000000000055", " -0 ", "", None])]
    home = Home(tmp_path / "home")
    reader = open_snapshot(home, snap(home, FakeConnector({"Contact": specs}, {"Contact": rows})).snapshot_id)

    held = reader.record_map("Contact", [r["Id"] for r in rows])
    assert [held[r["Id"]]["Exact"] for r in rows] == ["12345678901234567890", "0.1000000000000000055", "-0", None, None]
    assert [held[r["Id"]]["Old"] for r in rows[:3]] == [1.2345678901234567e19, 0.1, -0.0]
    frame = reader.frame("Contact", ["Exact", "Old"])
    assert list(frame.dtypes) == ["float64", "float64"]
    assert frame["Exact"].tolist()[:3] == [1.2345678901234567e19, 0.1, -0.0]
    assert frame["Exact"].isna().tolist() == [False, False, False, True, True]
    # pandas or DuckDB reading the file itself sees the text, not a rounded double.
    entry = reader.manifest.objects["Contact"]
    table = pq.read_table(reader.path / entry.file, columns=["Exact"])
    assert table.schema.field("Exact").type == pa.string()
    assert table.column(0).to_pylist()[0] == "12345678901234567890"

    # The in-memory view passes are tested on answers alike (its input is canonical: no blank texts).
    canonical = [r for r in rows if r["Exact"] != ""]
    view = FrameView(manifest(FAKE_VOCABULARY), {"Contact": specs}, {"Contact": canonical})
    ids = [str(r["Id"]) for r in canonical]
    assert view.record_map("Contact", ids) == reader.record_map("Contact", ids)
    pd.testing.assert_frame_equal(view.frame("Contact", ["Exact", "Old"]),
                                  frame[frame.index != 3].reset_index(drop=True))


# --- through hubspot-api-client and the sandbox -----------------------------------------------------

POINTS = "loyalty_points"


def _number_property(hs: Any, name: str) -> None:
    hs.crm.properties.core_api.create("contacts", PropertyCreate(
        name=name, label=name.replace("_", " ").title(), type="number", field_type="number",
        group_name="contactinformation"))


def _number(hs: Any, contact_id: str, name: str = POINTS) -> Any:
    return hs.crm.contacts.basic_api.get_by_id(contact_id, properties=[name]).properties.get(name)


def test_the_sandbox_takes_numbers_as_hubspot_documents_and_keeps_every_digit(
    hubspot_sandbox: RunningSandbox, hs: Any
) -> None:
    _number_property(hs, POINTS)
    contact = hs.crm.contacts.basic_api.get_page(limit=1).results[0].id
    for written, stored in (("12345678901234567890", "12345678901234567890"),
                            # Past 28 digits (Decimal's default precision, which rounded them).
                            ("123456789012345678901234567890123", "123456789012345678901234567890123"),
                            ("-98765432109876543210.123456789", "-98765432109876543210.123456789"),
                            ("0.1000000000000000055", "0.1000000000000000055"), ("-0", "0"), ("1.50", "1.5"),
                            (".5", "0.5")):
        hs.crm.contacts.basic_api.update(contact, {"properties": {POINTS: written}})
        assert _number(hs, contact) == stored
    # Digits, one "-" and one "." only: an exponent, a "+", a comma, a blank around it are refused (400).
    for refused in ("1e3", "+5", "1,000", "1.2.3", " 5", "5 ", "NaN"):
        with pytest.raises(ApiException) as caught:
            hs.crm.contacts.basic_api.update(contact, {"properties": {POINTS: refused}})
        assert caught.value.status == 400 and "INVALID_DECIMAL" in caught.value.body
    assert _number(hs, contact) == "0.5"


def test_archived_contacts_come_back_from_a_rollback_with_every_digit_of_their_numbers(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _number_property(hs, POINTS)
    gone = read_planted(hubspot_sandbox.info.state_dir)["no_contact_info"]["proposed"][:3]
    for contact_id, text in zip(gone, ("12345678901234567890", "0.1000000000000000055", "-0"), strict=True):
        hs.crm.contacts.basic_api.update(contact_id, {"properties": {POINTS: text}})
    backed_up = {i: _number(hs, i) for i in gone}
    assert list(backed_up.values()) == ["12345678901234567890", "0.1000000000000000055", "0"]

    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch)
    plan = api.scan(ws, "hs", tmp_path / "plan.json", passes=["no_contact_info"]).result.plan
    archives = {c.record_id: c for c in plan.changes if c.object == "contacts" and c.op == "archive"}
    assert set(gone) <= set(archives)
    assert {i: archives[i].before[POINTS] for i in gone} == backed_up  # the plan file holds the text
    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and not report.failed and not report.skipped_items
    assert not {r.id for r in hs.crm.contacts.basic_api.get_page(limit=100, archived=False).results} & set(gone)

    rolled = api.rollback(ws, report.run_id, confirm=yes).report
    assert rolled is not None and not rolled.failed and not rolled.skipped_items
    id_map = read_run(ws.home, rolled.run_id).id_map["contacts"]
    assert {i: _number(hs, id_map[i]) for i in gone} == backed_up


def test_apply_keeps_a_number_property_whose_value_changed_in_the_18th_digit_since_the_backup(
    hubspot_sandbox: RunningSandbox, hs: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _number_property(hs, "legacy_score")
    holder = hs.crm.contacts.basic_api.get_page(limit=1).results[0].id
    hs.crm.contacts.basic_api.update(holder, {"properties": {"legacy_score": "12345678901234567890"}})
    # A property made today is protected as recent unless the admin says otherwise.
    ws = workspace(hubspot_sandbox, tmp_path, monkeypatch,
                   "[protect]\nrecent_days = 0\n\n[passes.unused_custom_fields]\nmax_fill = 0.01\ndays = 0\n")
    plan = api.scan(ws, "hs", tmp_path / "plan.json", passes=["unused_custom_fields"]).result.plan
    assert "contacts.legacy_score" in {c.record_id for c in plan.changes}
    hs.crm.contacts.basic_api.update(holder, {"properties": {"legacy_score": "12345678901234567990"}})

    report = api.apply(ws, tmp_path / "plan.json", confirm=yes).report
    assert report is not None and not report.failed
    assert [(s["id"], s["detail"]) for s in report.skipped_items if s["id"] == "contacts.legacy_score"] == [
        ("contacts.legacy_score",
         f"values changed since the backup on 1 of the 1 contacts records holding one (e.g. {holder}: changed): "
         "a rollback would write back the snapshot's stale values; back up and scan again")]
    assert "legacy_score" in {p.name for p in hs.crm.properties.core_api.get_all("contacts").results}
    assert _number(hs, holder, "legacy_score") == "12345678901234567990"


def test_diff_of_an_older_float_snapshot_and_a_decimal_one_lists_only_numbers_that_changed(tmp_path: Path) -> None:
    # The same property typed FLOAT by the older backup and DECIMAL by the newer: one number is the same
    # (as the older one could hold it: 0.1000000000000000055 was kept as 0.1), one changed. Contact has a
    # fingerprint, written since for all three; Note has none, so every shared field is compared.
    home = Home(tmp_path / "home")
    old = [{"Id": f"00{n}", "IsDeleted": False, "Score": score, "SystemModstamp": "2026-01-01T00:00:00.000Z"}
           for n, score in enumerate(["12.5", "7", "0.1000000000000000055"], 1)]
    new = [{**row, "SystemModstamp": "2026-02-01T00:00:00.000Z"} for row in old]
    new[0]["Score"], new[1]["Score"] = "12.50", "8"
    notes = [{"Id": row["Id"], "Score": row["Score"]} for row in old], [{"Id": row["Id"], "Score": row["Score"]}
                                                                        for row in new]

    def backup(kind: FieldKind, contacts: list[dict[str, Any]], more: list[dict[str, Any]]) -> Any:
        fields = {"Contact": standard_fields(spec("Score", kind)), "Note": [spec("Id"), spec("Score", kind)]}
        done = snap(home, FakeConnector(fields, {"Contact": contacts, "Note": more}), objects=("Contact", "Note"))
        return open_snapshot(home, done.snapshot_id)

    diff = diff_snapshots(backup(FieldKind.FLOAT, old, notes[0]), backup(DECIMAL, new, notes[1]),
                          id_field="Id", fingerprint_field="SystemModstamp", detail=True).objects
    assert diff["Contact"].changed_fields == {"001": ["SystemModstamp"], "002": ["Score", "SystemModstamp"],
                                              "003": ["SystemModstamp"]}
    assert diff["Note"].changed == 1 and diff["Note"].changed_fields == {"002": ["Score"]}
