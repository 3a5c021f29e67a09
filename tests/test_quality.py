"""The data-quality report's numbers, against a hand-built snapshot under the Salesforce vocabulary.

The two snapshots below are small enough to count by hand (the expected numbers are worked out in the
comments). Weights: critical 10, major 3, minor 1; score = 100 - 10 x weighted violations per record.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from crmsweep import providers
from crmsweep.cleanup.quality import QualityReport, build_report, detail_rows
from crmsweep.cleanup.quality_render import render_csv, render_detail_csv, render_html, render_json, render_text
from crmsweep.cleanup.quality_rules import effective_rules, measure
from crmsweep.cleanup.view import FrameView
from crmsweep.concepts import DataQuality, QualityRule
from crmsweep.errors import BadInput
from crmsweep.model import FieldKind, FieldSpec, Record, SnapshotManifest
from tests.test_preview import check_golden

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
SF = providers.get("salesforce")
VOCAB = SF.vocabulary
QUALITY = VOCAB.concept(DataQuality)
ANN, BOB, CY, GHOST = "005000000000001AAA", "005000000000002AAA", "005000000000003AAA", "005000000000099AAA"
SCRIPT = "<script>alert(1)</script>"


def _spec(name: str, kind: FieldKind = FieldKind.STRING) -> FieldSpec:
    return FieldSpec(name=name, kind=kind, provider_type=kind.value)


FIELDS: Mapping[str, Sequence[FieldSpec]] = {
    "User": [_spec("Id"), _spec("Name"), _spec("IsActive", FieldKind.BOOL)],
    "Contact": [_spec("Id"), _spec("Name"), _spec("Email"), _spec("Phone"), _spec("MobilePhone"),
                _spec("MailingCity"), _spec("MailingState"), _spec("OwnerId"), _spec("IsDeleted", FieldKind.BOOL)],
    "Lead": [_spec("Id"), _spec("Name"), _spec("Email"), _spec("Phone"), _spec("MobilePhone"), _spec("City"),
             _spec("State"), _spec("OwnerId"), _spec("IsDeleted", FieldKind.BOOL)],
    "Opportunity": [_spec("Id"), _spec("Name"), _spec("Amount", FieldKind.FLOAT), _spec("CloseDate", FieldKind.DATE),
                    _spec("OwnerId"), _spec("IsDeleted", FieldKind.BOOL)],
    "Account": [_spec("Id"), _spec("Name"), _spec("OwnerId"), _spec("IsDeleted", FieldKind.BOOL)],
}


def manifest(snapshot_id: str, started: str) -> SnapshotManifest:
    return SnapshotManifest(snapshot_id=snapshot_id, connection="prod", provider="salesforce",
                            org_id="00D000000000001AAA", api_version="59.0", tool_version="0.1.0",
                            started=started, finished=started.replace("00.000Z", "30.000Z"), objects={})


def contact(cid: str, owner: str | None, *, name: str = "", email: str | None = None, phone: str | None = None,
            mobile: str | None = None, city: str | None = None, state: str | None = None,
            deleted: bool = False) -> Record:
    return {"Id": cid, "Name": name or cid, "Email": email, "Phone": phone, "MobilePhone": mobile,
            "MailingCity": city, "MailingState": state, "OwnerId": owner, "IsDeleted": deleted}


USERS = [
    {"Id": ANN, "Name": "Ann Active", "IsActive": True},
    {"Id": BOB, "Name": "Bob Gone", "IsActive": False},
    {"Id": CY, "Name": "Cy Clean", "IsActive": True},
]
LEAD: Record = {"Id": "00Q000000000001AAA", "Name": "Lee Lead", "Email": None, "Phone": " ", "MobilePhone": None,
        "City": "Leeds", "State": None, "OwnerId": BOB, "IsDeleted": False}
ACCOUNTS = [{"Id": "001000000000001AAA", "Name": "Acme", "OwnerId": CY, "IsDeleted": False},
            {"Id": "001000000000002AAA", "Name": "Orphan Ltd", "OwnerId": GHOST, "IsDeleted": False}]
O2: Record = {"Id": "006000000000002AAA", "Name": "Zero deal", "Amount": 0.0, "CloseDate": "2026-10-01", "OwnerId": CY,
      "IsDeleted": False}


def current_view() -> FrameView:
    """Now. Per record (weighted): C2 13 (no email/phone 10, no city 3), C3 10 (owner Bob inactive),
    C4 10 (no owner), C5 3 (blank email but a phone; no city), L1 20, O1 3 (no amount), A2 10 (unknown
    owner); C1, C6, O2 (amount 0 is a value), A1 clean; C7 is in the recycle bin and not counted."""
    contacts = [
        contact("C1", ANN, email="c1@x.org", city="Oslo"),
        contact("C2", ANN, name=SCRIPT),
        contact("C3", BOB, email="c3@x.org", city="Rome"),
        contact("C4", None, mobile="+1 555", state="CA"),
        contact("C5", ANN, email="  ", phone="555-1"),
        contact("C6", CY, phone="555-6", city="Lima"),
        contact("C7", CY, deleted=True),
    ]
    opportunities: list[Record] = [
        {"Id": "006000000000001AAA", "Name": "No amount", "Amount": None, "CloseDate": "2026-11-01",
         "OwnerId": ANN, "IsDeleted": False},
        O2,
    ]
    records: dict[str, Sequence[Record]] = {"User": USERS, "Contact": contacts, "Lead": [LEAD],
                                            "Opportunity": opportunities, "Account": ACCOUNTS}
    return FrameView(manifest("prod-20261201T090000Z", "2026-12-01T09:00:00.000Z"), FIELDS, records)


def earlier_view(*, c1_city: str | None = "Oslo") -> FrameView:
    """A month ago: C2 had an email (so only its city was missing), C3 was Cy's, C8 (Bob's, 20) existed, C4
    and O1 did not. Ann: C1, C2 3, C5 3 -> 3 records, 6, score 80. Bob: C8 23 (no email/phone, no city,
    inactive owner), L1 20 -> 0. Cy: C3, C6, O2, A1 -> 100. Ghost: A2 -> 0. Totals: 10 records, 59 -> 41.0."""
    contacts = [
        contact("C1", ANN, email="c1@x.org", city=c1_city),
        contact("C2", ANN, name=SCRIPT, email="c2@x.org"),
        contact("C3", CY, email="c3@x.org", city="Rome"),
        contact("C5", ANN, email="  ", phone="555-1"),
        contact("C6", CY, phone="555-6", city="Lima"),
        contact("C8", BOB),
    ]
    records: dict[str, Sequence[Record]] = {"User": USERS, "Contact": contacts, "Lead": [LEAD],
                                            "Opportunity": [O2], "Account": ACCOUNTS}
    return FrameView(manifest("prod-20261101T090000Z", "2026-11-01T09:00:00.000Z"), FIELDS, records)


def default_rules() -> tuple[QualityRule, ...]:
    return effective_rules(VOCAB.concept(DataQuality), "salesforce", keep_defaults=True, extra=(),
                           known_objects=list(FIELDS))


def report(*, worst: int = 2, compared: bool = True) -> QualityReport:
    return build_report(current_view(), VOCAB, default_rules(), now=NOW, worst=worst,
                        earlier=earlier_view() if compared else None)


# Owners worst first: Bob 0.0 (30 weighted), then the two 0.0 groups of 10 by name ("(no owner)" sorts
# before the unknown owner's id), Ann 52.5 (19 over 4 records), Cy 100.
EXPECTED_OWNERS = [
    # owner_id, name, active, records, (critical, major, minor), weighted, score, defective
    (BOB, "Bob Gone", False, 2, (3, 0, 0), 30, 0.0, 2),
    (None, "(no owner)", None, 1, (1, 0, 0), 10, 0.0, 1),
    (GHOST, GHOST, None, 1, (1, 0, 0), 10, 0.0, 1),
    (ANN, "Ann Active", True, 4, (1, 3, 0), 19, 52.5, 3),
    (CY, "Cy Clean", True, 3, (0, 0, 0), 0, 100.0, 0),
]
# score_before, score_delta, records_before, new, fixed
EXPECTED_TREND = {
    # new: C3 now Bob's (inactive owner); C8's three violations went with C8 (deleted): removed, not fixed
    BOB: (0.0, 0.0, 2, 1, 0, 3),
    None: (None, None, 0, 1, 0, 0),  # C4 is new
    GHOST: (0.0, 0.0, 1, 0, 0, 0),
    ANN: (80.0, -27.5, 3, 2, 0, 0),  # new: C2 lost its email, O1 is new without an amount
    CY: (100.0, 0.0, 4, 0, 0, 0),
}


def test_owner_numbers_ranking_and_score() -> None:
    got = report()
    assert [(o.owner_id, o.name, o.active, o.records, tuple(o.violations.values()), o.penalty, o.score,
             o.records_with_defects) for o in got.owners] == EXPECTED_OWNERS
    assert (got.records, dict(got.violations), got.penalty, got.score) == (
        11, {"critical": 6, "major": 3, "minor": 0}, 69, 37.3)


def test_worst_records_say_what_they_lack() -> None:
    ann = next(o for o in report().owners if o.owner_id == ANN)
    # C5 (Contact, 3) comes before O1 (Opportunity, 3): ties go by object, then id.
    assert [(w.object, w.record_id, w.label, w.penalty, w.lacks) for w in ann.worst] == [
        ("Contact", "C2", SCRIPT, 13, ("email or phone", "city or region")),
        ("Contact", "C5", "C5", 3, ("city or region",)),
    ]
    bob = next(o for o in report().owners if o.owner_id == BOB)
    assert [(w.record_id, w.lacks) for w in bob.worst] == [
        ("00Q000000000001AAA", ("email or phone", "active owner")), ("C3", ("active owner",)),
    ]


def test_rule_counts() -> None:
    """Grouped by object, in the order the rules first name them."""
    assert [(r.object, r.label, r.severity, r.checked, r.violations) for r in report().rules] == [
        ("Contact", "email or phone", "critical", 6, 1),
        ("Contact", "city or region", "major", 6, 2),
        ("Contact", "active owner", "critical", 6, 2),
        ("Lead", "email or phone", "critical", 1, 1),
        ("Lead", "city or region", "major", 1, 0),
        ("Lead", "active owner", "critical", 1, 1),
        ("Opportunity", "amount", "major", 2, 1),
        ("Opportunity", "close date", "major", 2, 0),
        ("Opportunity", "active owner", "critical", 2, 0),
        ("Account", "active owner", "critical", 2, 1),
    ]


def test_trend_against_the_earlier_snapshot() -> None:
    got = report()
    trends = {o.owner_id: o.trend for o in got.owners}
    assert {k: (t.score_before, t.score_delta, t.records_before, t.new_violations, t.fixed_violations,
                t.removed_violations) for k, t in trends.items() if t} == EXPECTED_TREND
    c = got.compared
    assert c is not None
    assert (c.snapshot_id, c.records_before, dict(c.violations_before), c.score_before, c.score_delta,
            c.new_violations, c.fixed_violations, c.removed_violations) == (
        "prod-20261101T090000Z", 10, {"critical": 5, "major": 3, "minor": 0}, 41.0, -3.7, 4, 0, 3)


# --- every format carries the same numbers ------------------------------------------------------------------


def test_json_holds_everything_with_fixed_keys() -> None:
    data = json.loads(render_json(report()))
    assert data["format"] == "crmsweep.quality/1"
    assert (data["snapshot_id"], data["records"], data["score"], data["violations"]) == (
        "prod-20261201T090000Z", 11, 37.3, {"critical": 6, "major": 3, "minor": 0})
    assert [(o["owner_id"], o["records"], o["penalty"], o["score"]) for o in data["owners"]] == [
        (o[0], o[3], o[5], o[6]) for o in EXPECTED_OWNERS]
    assert data["owners"][3]["worst"][0] == {"object": "Contact", "record_id": "C2", "label": SCRIPT, "penalty": 13,
                                             "lacks": ["email or phone", "city or region"]}
    assert data["owners"][3]["trend"] == {"score_before": 80.0, "score_delta": -27.5, "records_before": 3,
                                          "new_violations": 2, "fixed_violations": 0,
                                          "removed_violations": 0}
    assert data["compared"]["new_violations"] == 4 and data["weights"] == {"critical": 10, "major": 3, "minor": 1}
    assert set(data) == {"format", "snapshot_id", "connection", "provider", "org_id", "snapshot_finished",
                         "generated", "records", "violations", "penalty", "score", "rules", "owners", "notes",
                         "compared", "worst_per_owner", "weights"}


def test_csv_is_one_row_per_owner() -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(report()))))
    assert [(r["rank"], r["owner_id"], r["owner_name"], r["active"], r["records"], r["critical"], r["major"],
             r["weighted"], r["score"], r["score_before"], r["score_delta"], r["new_violations"],
             r["fixed_violations"], r["removed_violations"]) for r in rows] == [
        ("1", BOB, "Bob Gone", "false", "2", "3", "0", "30", "0.0", "0.0", "0.0", "1", "0", "3"),
        ("2", "", "(no owner)", "", "1", "1", "0", "10", "0.0", "", "", "1", "0", "0"),
        ("3", GHOST, GHOST, "", "1", "1", "0", "10", "0.0", "0.0", "0.0", "0", "0", "0"),
        ("4", ANN, "Ann Active", "true", "4", "1", "3", "19", "52.5", "80.0", "-27.5", "2", "0", "0"),
        ("5", CY, "Cy Clean", "true", "3", "0", "0", "0", "100.0", "100.0", "0.0", "0", "0", "0"),
    ]
    assert rows[3]["worst_records"] == (f"Contact C2 {SCRIPT}: lacks email or phone, city or region | "
                                        "Contact C5 C5: lacks city or region")


def test_detail_csv_is_one_row_per_violation() -> None:
    found = measure(current_view(), VOCAB, default_rules(), QUALITY)
    rows = list(csv.reader(io.StringIO(render_detail_csv(detail_rows(found, QUALITY)))))
    assert rows[0] == ["owner_id", "owner_name", "object", "record_id", "rule", "severity", "fields"]
    assert rows[1:] == [
        ["", "(no owner)", "Contact", "C4", "active owner", "critical", ""],
        [ANN, "Ann Active", "Contact", "C2", "city or region", "major", "MailingCity | MailingState"],
        [ANN, "Ann Active", "Contact", "C2", "email or phone", "critical", "Email | Phone | MobilePhone"],
        [ANN, "Ann Active", "Contact", "C5", "city or region", "major", "MailingCity | MailingState"],
        [ANN, "Ann Active", "Opportunity", "006000000000001AAA", "amount", "major", "Amount"],
        [BOB, "Bob Gone", "Contact", "C3", "active owner", "critical", ""],
        [BOB, "Bob Gone", "Lead", "00Q000000000001AAA", "active owner", "critical", ""],
        [BOB, "Bob Gone", "Lead", "00Q000000000001AAA", "email or phone", "critical", "Email | Phone | MobilePhone"],
        [GHOST, GHOST, "Account", "001000000000002AAA", "active owner", "critical", ""],
    ]


def test_text_is_an_aligned_table_of_the_same_numbers() -> None:
    text = render_text(report())
    lines = text.splitlines()
    assert lines[0] == "crmsweep data-quality report (crmsweep.quality/1)"
    assert ("11 records, score 37.3 (-3.7 since); violations: 6 critical, 3 major, 0 minor; 4 new, 0 fixed and 3 "
            "gone with removed records since") in lines
    start = lines.index(next(line for line in lines if line.startswith("RANK")))
    assert lines[start:start + 6] == [
        "RANK  OWNER                RECORDS  CRITICAL  MAJOR  MINOR  SCORE  CHANGE  NEW  FIXED  REMOVED",
        "1     Bob Gone (inactive)  2        3         0      0      0.0    0.0     1    0      3",
        "2     (no owner)           1        1         0      0      0.0    new     1    0      0",
        f"3     {GHOST}   1        1         0      0      0.0    0.0     0    0      0",
        "4     Ann Active           4        1         3      0      52.5   -27.5   2    0      0",
        "5     Cy Clean             3        0         0      0      100.0  0.0     0    0      0",
    ]
    assert f"    Contact C2 {SCRIPT}: lacks email or phone, city or region" in lines


def test_html_is_one_file_with_nothing_fetched_and_crm_text_escaped() -> None:
    page = render_html(report())
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<style>" in page
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "@import" not in page and "url(" not in page and "<link" not in page
    # the numbers: the score tile, a card per owner in rank order, the trend arrows
    assert ">37.3</b>" in page and page.count('<section class="card">') == 5
    names = ["Bob Gone (inactive)", "(no owner)", GHOST, "Ann Active", "Cy Clean"]
    positions = [page.index(f"#{rank} {name}") for rank, name in enumerate(names, 1)]
    assert positions == sorted(positions)
    assert "&#9660; -27.5" in page and "&#9644; 0.0" in page and "new owner" in page
    assert ">52.5</span>" in page and ">6</b><span>critical" in page


def test_a_report_without_an_earlier_snapshot_has_no_trend() -> None:
    got = report(compared=False)
    assert got.compared is None and all(o.trend is None for o in got.owners)
    assert "CHANGE" not in render_text(got) and json.loads(render_json(got))["compared"] is None


# --- rules from the config ------------------------------------------------------------------------------------


def test_config_rules_add_to_and_replace_the_defaults() -> None:
    extra = (
        QualityRule("Contact", "minor", "city or region", any_of=("MailingCity", "MailingState")),  # replaces
        QualityRule("Account", "minor", "name", any_of=("Name",)),
        QualityRule("contacts", "minor", "other provider's", any_of=("email",), provider="hubspot"),
    )
    rules = effective_rules(VOCAB.concept(DataQuality), "salesforce", keep_defaults=True, extra=extra,
                            known_objects=list(FIELDS))
    assert [(r.object, r.label, r.severity) for r in rules if r.severity == "minor"] == [
        ("Contact", "city or region", "minor"), ("Account", "name", "minor")]
    got = build_report(current_view(), VOCAB, rules, now=NOW)
    ann = next(o for o in got.owners if o.owner_id == ANN)
    assert (dict(ann.violations), ann.penalty) == ({"critical": 1, "major": 1, "minor": 2}, 15)
    only = effective_rules(VOCAB.concept(DataQuality), "salesforce", keep_defaults=False, extra=extra[1:2],
                           known_objects=list(FIELDS))
    assert only == extra[1:2]


def test_an_unknown_object_is_one_line_naming_the_closest() -> None:
    with pytest.raises(BadInput, match=r"^\[\[quality.rules\]\] object 'Contcat' is not an object of this "
                                       r"salesforce connection \(did you mean 'Contact'\?\); known objects: "):
        effective_rules(VOCAB.concept(DataQuality), "salesforce", keep_defaults=True,
                        extra=(QualityRule("Contcat", "major", "x", any_of=("Email",)),), known_objects=list(FIELDS))


def test_an_absent_object_or_field_is_a_note_not_a_crash() -> None:
    extra = (QualityRule("Contact", "minor", "title", any_of=("Title",)),
             QualityRule("Case", "major", "subject", any_of=("Subject",)))
    rules = effective_rules(VOCAB.concept(DataQuality), "salesforce", keep_defaults=True, extra=extra,
                            known_objects=[*FIELDS, "Case"])
    got = build_report(current_view(), VOCAB, rules, now=NOW)
    assert "rule 'title' of Contact not checked: Contact has no Title in the snapshot" in got.notes
    assert "Case is not in snapshot prod-20261201T090000Z: its rules (subject) were not checked" in got.notes
    assert [(r.label, r.checked, r.skipped) for r in got.rules if r.label in ("title", "subject")] == [
        ("title", 0, "Contact has no Title in the snapshot"), ("subject", 0, "Case is not in the snapshot")]
    assert got.penalty == 69  # nothing else changed


def test_a_lead_in_a_queue_has_an_owner() -> None:
    """Salesforce lets a queue (a Group, id prefix 00G) own a lead: not a missing owner, and named as a queue."""
    queue = "00G000000000001AAA"
    lead = {**LEAD, "Id": "00Q000000000002AAA", "Email": "q@x.org", "OwnerId": queue}
    view = FrameView(manifest("prod-q", "2026-12-01T09:00:00.000Z"), FIELDS,
                     {"User": USERS, "Lead": [lead], "Contact": [], "Opportunity": [], "Account": []})
    got = build_report(view, VOCAB, default_rules(), now=NOW)
    assert [(o.owner_id, o.name, o.records, o.penalty, o.score) for o in got.owners] == [
        (queue, f"queue {queue}", 1, 0, 100.0)]


def test_invisible_characters_in_crm_text_are_shown_escaped_in_every_format() -> None:
    """A bidi override in a name could make a manager misread a report; a newline could fake a table row."""
    users = [{**USERS[0], "Name": "Ann\u202eevil\nrow"}]
    view = FrameView(manifest("prod-x", "2026-12-01T09:00:00.000Z"), FIELDS,
                     {"User": users, "Contact": [contact("C9", ANN)], "Lead": [], "Opportunity": [], "Account": []})
    got = build_report(view, VOCAB, default_rules(), now=NOW)
    assert "Ann\\u202eevil\\nrow" in render_html(got) and "\u202e" not in render_html(got)
    assert "Ann\\u202eevil\\nrow" in render_text(got) and "\u202e" not in render_text(got)
    assert json.loads(render_json(got))["owners"][0]["name"] == "Ann\u202eevil\nrow"  # data stays data


GOLDEN = Path(__file__).parent / "snapshots" / "quality"


@pytest.mark.parametrize(("name", "render"), [
    ("report.txt", render_text), ("report.csv", render_csv), ("report.json", render_json),
    ("report.html", render_html),
])
def test_every_format_matches_its_golden_file(name: str, render: Any) -> None:
    """The exact bytes a person or a script reads (CRMSWEEP_UPDATE_GOLDEN=1 rewrites them)."""
    check_golden(name, render(report()), GOLDEN)


def test_detail_csv_matches_its_golden_file() -> None:
    found = measure(current_view(), VOCAB, default_rules(), QUALITY)
    check_golden("detail.csv", render_detail_csv(detail_rows(found, QUALITY)), GOLDEN)


def test_a_defect_mended_on_a_held_record_is_fixed_one_that_went_with_its_record_is_removed() -> None:
    """A month ago C1 had no city (now mended: fixed) and C8 lacked three things (now deleted: removed)."""
    got = build_report(current_view(), VOCAB, default_rules(), now=NOW, worst=2, earlier=earlier_view(c1_city=None))
    assert got.compared is not None
    assert (got.compared.fixed_violations, got.compared.removed_violations) == (1, 3)
    trends = {o.owner_id: o.trend for o in got.owners}
    assert (trends[ANN].fixed_violations, trends[ANN].removed_violations) == (1, 0)  # type: ignore[union-attr]
    assert (trends[BOB].fixed_violations, trends[BOB].removed_violations) == (0, 3)  # type: ignore[union-attr]


def test_owners_of_the_same_name_are_told_apart_by_id_wherever_they_are_ranked() -> None:
    base = report(compared=False)
    ann = next(o for o in base.owners if o.owner_id == ANN)
    twin = replace(ann, owner_id="005000000000077AAA", records=1)
    twins = replace(base, owners=(*base.owners, twin))
    text = render_text(twins)
    assert f"Ann Active [{ANN}]" in text and "Ann Active [005000000000077AAA]" in text
    assert "Cy Clean  " in text and "Cy Clean [" not in text  # a unique name stays as it is
    page = render_html(twins)
    assert f"Ann Active [{ANN}]: 52.5" in page and "Ann Active [005000000000077AAA]: 52.5" in page
