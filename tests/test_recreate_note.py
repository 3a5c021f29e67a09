"""The re-create note's pure parts: which fields it names, in what order, and its wording's edge cases."""

from __future__ import annotations

from crmsweep import providers
from crmsweep.backup.recreate import create_values
from crmsweep.backup.recreate_note import SHOW_FIELDS, recreate_note, unwritten_fields
from crmsweep.connectors.hubspot_properties import FILLED, PROPERTIES, PROPERTY_FIELDS, property_row
from crmsweep.model import Capabilities, FieldKind, FieldSpec
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY as VOCAB


def caps(*, undelete: bool, by_hand: str = "") -> Capabilities:
    return Capabilities(supports_undelete=undelete, max_batch_write=200, max_query_page=2000,
                        max_ids_per_read=800, has_reports_api=False, restore_by_hand=by_hand)


def spec(name: str, kind: FieldKind = FieldKind.STRING) -> FieldSpec:
    return FieldSpec(name=name, kind=kind, provider_type=kind.value)


def test_named_fields_are_those_held_and_not_written_scan_fields_then_dates_then_the_rest() -> None:
    specs = {"Contact": (spec("Id"), spec("Zeta"), spec("Seen", FieldKind.DATE), spec(VOCAB.created_field,
                                                                                       FieldKind.DATETIME))}
    before = {"Id": "003A", "IsDeleted": False, "Zeta": "z", "Seen": "2020-01-01", "Empty": "", "Null": None,
              "LastName": "Ng", VOCAB.created_field: "2019-01-01T00:00:00.000Z", "SystemModstamp": "x"}
    written = {"LastName": "Ng"}
    # Nulls and empty strings hold nothing; the id and deleted flag are the re-create's point.
    assert unwritten_fields([("Contact", before, written)], specs, VOCAB) == [
        VOCAB.created_field, "SystemModstamp", "Seen", "Zeta"]


def test_the_note_counts_names_and_says_what_to_do_in_the_providers_words() -> None:
    by_hand = caps(undelete=False, by_hand="restore them in the bin within 9 days")
    fields = [f"f{i}" for i in range(SHOW_FIELDS + 3)]
    note = recreate_note({"people": 2, "firms": 1}, fields, by_hand, done=True, run_id="run-1")
    assert note is not None and note.startswith("3 records were re-created under new ids (2 people, 1 firms): the CRM "
                                                "set their created and modified dates and activity history afresh")
    assert f"{', '.join(fields[:SHOW_FIELDS])} and 3 more: read-only" in note
    assert note.endswith("restore them in the bin within 9 days, then delete the re-created copies (the rollback "
                         "run's id_map names them: `crmsweep runs show run-1 --json`)")
    one = recreate_note({"people": 1}, ["f0"], caps(undelete=True))
    assert one is not None and one.startswith("1 record is re-created under new ids (1 people): the CRM sets its ")
    assert "(f0: read-only" in one and "sees it as new" in one
    # Undeletable, yet re-created: the recycle bin no longer held them, so no false hope of keeping them.
    assert one.endswith("the CRM no longer holds the originals, so those values cannot be kept")
    assert recreate_note({}, fields, by_hand) is None


def test_a_report_note_names_the_first_re_created_records_and_the_command_that_lists_them_all() -> None:
    records = [("people", f"old{i}", f"new{i}") for i in range(5)]
    cannot = "the CRM no longer holds the originals, so those values cannot be kept"
    note = recreate_note({"people": 5}, ["f0"], caps(undelete=True), done=True, run_id="run-1", records=records)
    assert note is not None and note.endswith(
        f"{cannot}; re-created: people old0 -> new0, people old1 -> new1, people old2 -> new2 and 2 more: "
        "`crmsweep runs show run-1` lists them all")
    few = recreate_note({"people": 2}, ["f0"], caps(undelete=True), done=True, run_id="run-1", records=records[:2])
    assert few is not None and few.endswith(f"{cannot}; re-created: people old0 -> new0, people old1 -> new1")
    # A plan's note names none: its preview shows each re-create on a line of its own.
    planned = recreate_note({"people": 5}, ["f0"], caps(undelete=True), records=records)
    assert planned is not None and planned.endswith(cannot)


# A property definition as HubSpot gives it; `properties` backs it up with crmsweep's own `filled` count.
DEFINITION = {
    "name": "old_forecast_category", "label": "Old forecast category", "type": "enumeration",
    "fieldType": "select", "groupName": "dealinformation", "description": "", "options": [],
    "displayOrder": -1, "hidden": False, "formField": True, "calculated": False, "hubspotDefined": False,
    "archived": False, "createdAt": "2020-03-02T10:00:00Z", "updatedAt": "2020-03-02T10:00:00Z",
    "modificationMetadata": {"archivable": True, "readOnlyValue": False, "readOnlyDefinition": False},
}


def test_a_property_re_create_names_only_the_stamps_hubspot_sets_itself() -> None:
    """Not crmsweep's own `filled` count, nor the label, fieldType, groupName... the create sends whole in
    the definition: only the stamps HubSpot sets itself."""
    vocabulary = providers.get("hubspot").vocabulary
    before = {**property_row("deals", DEFINITION), FILLED: 0}
    specs = {PROPERTIES: PROPERTY_FIELDS}
    written = create_values(PROPERTIES, before, specs, {(PROPERTIES, before["id"])}, vocabulary)
    assert unwritten_fields([(PROPERTIES, before, written)], specs, vocabulary) == ["createdAt", "updatedAt"]
