"""Cleanup passes on hand-built snapshots with a fixed clock: exact ids, exact reasons, exact hold-backs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import pytest

from crmsweep import providers
from crmsweep.cleanup.passes import PASSES, PassContext, PassOutput, summary_in, validate_settings
from crmsweep.cleanup.passes.stale_contacts import years_before
from crmsweep.cleanup.view import TEXT_DTYPE, FrameView
from crmsweep.errors import BadInput
from crmsweep.model import FieldKind, FieldSpec, Op, Record, Severity, SnapshotManifest, Vocabulary
from tests.fake_connector import FAKE_VOCABULARY, spec, standard_fields

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)


def cid(n: int) -> str:
    return f"003{n:015d}"


def lid(n: int) -> str:
    return f"00Q{n:015d}"


def uid(n: int) -> str:
    return f"005{n:015d}"


def oid(n: int) -> str:
    return f"006{n:015d}"


def stamp(n: int) -> str:
    return f"2026-01-{n % 28 + 1:02d}T08:00:00.{n % 1000:03d}Z"


FIELDS: dict[str, list[FieldSpec]] = {
    "Contact": standard_fields(spec("Name"), spec("Email"), spec("LastActivityDate", FieldKind.DATE)),
    "Lead": standard_fields(spec("Name"), spec("Email"), spec("LastActivityDate", FieldKind.DATE)),
    "User": standard_fields(
        spec("Name"),
        spec("Username"),
        spec("IsActive", FieldKind.BOOL),
        spec("LastLoginDate", FieldKind.DATETIME),
        deletable=False,
    ),
    "Opportunity": standard_fields(spec("Name"), spec("IsClosed", FieldKind.BOOL)),
    "OpportunityContactRole": standard_fields(
        FieldSpec("ContactId", FieldKind.STRING, "reference", reference_to=("Contact",)),
        FieldSpec("OpportunityId", FieldKind.STRING, "reference", reference_to=("Opportunity",)),
    ),
}


def person(
    rid: str,
    name: str | None,
    *,
    activity: str | None,
    modified: str | None = "2018-05-05T09:30:00.000Z",
    created: str | None = "2015-01-01T00:00:00.000Z",
    email: str | None = None,
    deleted: bool = False,
    n: int = 0,
) -> Record:
    return {
        "Id": rid,
        "IsDeleted": deleted,
        "Name": name,
        "Email": email,
        "LastActivityDate": activity,
        "CreatedDate": created,
        "LastModifiedDate": modified,
        "SystemModstamp": stamp(n),
    }


def user(
    n: int,
    name: str,
    *,
    active: bool,
    login: str | None,
    created: str = "2020-01-01T00:00:00.000Z",
    username: str | None = None,
) -> Record:
    return {
        "Id": uid(n),
        "Name": name,
        "Username": username,
        "IsActive": active,
        "LastLoginDate": login,
        "CreatedDate": created,
        "LastModifiedDate": "2024-01-01T00:00:00.000Z",
        "SystemModstamp": stamp(100 + n),
    }


def records() -> dict[str, list[Record]]:
    return {
        "Contact": [
            person(cid(1), "Jane Doe", activity="2019-03-01", email="jane@x.org", n=1),
            person(cid(2), "On The Day", activity="2023-03-15", n=2),  # exactly 3 years: not stale
            person(cid(3), "Day Before", activity="2023-03-14", n=3),
            person(cid(4), "No Activity", activity=None, modified="2020-06-01T10:00:00.000Z", n=4),
            person(cid(5), "Touched Lately", activity=None, modified="2025-01-01T00:00:00.000Z", n=5),
            person(cid(6), "Open Deal", activity="2018-01-01", n=6),
            person(cid(7), "Closed Deal", activity="2018-01-01", n=7),
            person(cid(8), "Only Created", activity=None, modified=None, created="2019-01-01T00:00:00.000Z", n=8),
            person(cid(9), "In The Bin", activity="2018-01-01", deleted=True, n=9),
            person(cid(10), "No Dates", activity=None, modified=None, created=None, n=10),
            person(cid(11), "Recent Activity", activity="2026-01-01", modified="2010-01-01T00:00:00.000Z", n=11),
            person(cid(12), None, activity="2018-01-01", email="nameless@x.org", n=12),
            person(cid(13), "Unknown Deal", activity="2018-01-01", n=13),
            person(cid(14), "Open Flag Empty", activity="2018-01-01", n=14),
        ],
        "Lead": [
            person(lid(1), "Old Lead", activity="2020-01-01", email="old@lead.com", n=21),
            person(lid(2), "Fresh Lead", activity="2025-12-01", n=22),
        ],
        "User": [
            user(1, "Bob Ray", active=True, login="2025-01-04T17:45:00.000Z"),
            user(2, "Logs In", active=True, login="2026-03-01T08:00:00.000Z"),
            user(3, "Never In", active=True, login=None, created="2025-05-01T10:00:00.000Z", username="never@x.org"),
            user(4, "New Hire", active=True, login=None, created="2026-02-01T10:00:00.000Z"),
            user(5, "Gone Already", active=False, login="2020-01-01T00:00:00.000Z"),
            user(6, "Integration", active=True, login="2024-01-01T00:00:00.000Z", username="api@x.org"),
            user(7, "Excluded By Id", active=True, login="2024-01-01T00:00:00.000Z"),
            user(8, "On The Edge", active=True, login="2025-12-15T12:00:00.000Z"),  # exactly 90 days
        ],
        "Opportunity": [
            {"Id": oid(1), "Name": "Big deal", "IsClosed": False, "SystemModstamp": stamp(31)},
            {"Id": oid(2), "Name": "Won deal", "IsClosed": True, "SystemModstamp": stamp(32)},
            {"Id": oid(3), "Name": "Unsure", "IsClosed": None, "SystemModstamp": stamp(33)},
            {"Id": oid(4), "Name": "Deleted", "IsClosed": False, "IsDeleted": True, "SystemModstamp": stamp(34)},
        ],
        "OpportunityContactRole": [
            {"Id": "00K000000000000001", "ContactId": cid(6), "OpportunityId": oid(1)},
            {"Id": "00K000000000000002", "ContactId": cid(7), "OpportunityId": oid(2)},
            {"Id": "00K000000000000003", "ContactId": cid(13), "OpportunityId": "006999999999999999"},
            {"Id": "00K000000000000004", "ContactId": cid(14), "OpportunityId": oid(3)},
            # A deleted link to an open deal protects nobody.
            {"Id": "00K000000000000005", "ContactId": cid(1), "OpportunityId": oid(1), "IsDeleted": True},
        ],
    }


def manifest(snapshot_id: str = "20260315T120000Z-abc123") -> SnapshotManifest:
    return SnapshotManifest(
        snapshot_id=snapshot_id,
        connection="sandbox-salesforce",
        provider="fake",
        org_id="00DFAKE000000000AA",
        api_version="59.0",
        tool_version="0.1.0",
        started="2026-03-15T11:00:00.000Z",
        finished="2026-03-15T11:05:00.000Z",
        objects={},
    )


def make_view(recs: Mapping[str, Sequence[Record]] | None = None, *, only: Sequence[str] | None = None) -> FrameView:
    data = records() if recs is None else dict(recs)
    names = list(FIELDS) if only is None else list(only)
    return FrameView(manifest(), {o: FIELDS[o] for o in names}, {o: data.get(o, []) for o in names})


def run_pass(name: str, view: FrameView, vocabulary: Vocabulary = FAKE_VOCABULARY, **settings: Any) -> PassOutput:
    ctx = PassContext(view=view, vocabulary=vocabulary, now=NOW, settings=validate_settings(name, settings))
    return PASSES[name].run(ctx)


def summary(output: PassOutput) -> list[tuple[str, str, str]]:
    return [(c.object, c.record_id, c.reason) for c in output.changes]


# --- the view ------------------------------------------------------------------------------------


def test_frame_view_types_match_the_reader_contract() -> None:
    frame = make_view().frame("User")
    assert str(frame["LastLoginDate"].dtype) == "datetime64[ms, UTC]"
    assert str(frame["CreatedDate"].dtype) == "datetime64[ms, UTC]"
    assert str(frame["IsActive"].dtype) == "boolean"
    assert frame["Id"].dtype == TEXT_DTYPE
    contacts = make_view().frame("Contact", ["Id", "LastActivityDate"])
    assert list(contacts.columns) == ["Id", "LastActivityDate"]
    assert str(contacts["LastActivityDate"].dtype) == "datetime64[ms, UTC]"
    assert contacts.loc[0, "LastActivityDate"] == pd.Timestamp("2019-03-01T00:00:00Z")
    assert contacts.loc[contacts["LastActivityDate"].isna(), "Id"].tolist() == [cid(4), cid(5), cid(8), cid(10)]


def test_frame_view_ints_floats_and_empty_objects() -> None:
    specs = [spec("Id"), spec("Count", FieldKind.INT), spec("Amount", FieldKind.FLOAT), spec("Flag", FieldKind.BOOL)]
    view = FrameView(manifest(), {"Thing": specs, "Empty": specs}, {"Thing": [{"Id": "a", "Count": 2}]})
    frame = view.frame("Thing")
    assert str(frame["Count"].dtype) == "Int64" and frame.loc[0, "Count"] == 2
    assert str(frame["Amount"].dtype) == "float64" and frame["Amount"].isna().tolist() == [True]
    assert str(frame["Flag"].dtype) == "boolean" and frame["Flag"].isna().tolist() == [True]
    empty = view.frame("Empty")
    assert len(empty) == 0 and str(empty["Count"].dtype) == "Int64"
    assert view.record_map("Thing", ["a", "missing"]) == {"a": {"Id": "a", "Count": 2, "Amount": None, "Flag": None}}


def test_record_map_is_canonical_and_complete() -> None:
    view = make_view(
        {"Contact": [{"Id": cid(1), "LastActivityDate": "2019-03-01T00:00Z", "SystemModstamp": "2020-01-01T10:00Z"}]},
        only=["Contact"],
    )
    assert view.record_map("Contact", [cid(1)]) == {
        cid(1): {
            "Id": cid(1),
            "IsDeleted": None,
            "Name": None,
            "Email": None,
            "LastActivityDate": "2019-03-01",
            "CreatedDate": None,
            "LastModifiedDate": None,
            "SystemModstamp": "2020-01-01T10:00:00.000Z",
        }
    }


def test_frame_view_refuses_fields_it_has_no_spec_for() -> None:
    with pytest.raises(ValueError, match="Colour"):
        make_view({"Contact": [{"Id": cid(1), "Colour": "red"}]}, only=["Contact"])


# --- stale_contacts --------------------------------------------------------------------------------


def test_stale_contacts_proposes_exactly_the_stale_people() -> None:
    output = run_pass("stale_contacts", make_view())
    assert summary(output) == [
        ("Contact", cid(1), "stale: no activity since 2019-03-01"),
        ("Contact", cid(3), "stale: no activity since 2023-03-14"),
        ("Contact", cid(4), "stale: no activity recorded; last modified 2020-06-01"),
        ("Contact", cid(7), "stale: no activity since 2018-01-01"),
        ("Contact", cid(8), "stale: no activity recorded; created 2019-01-01"),
        ("Contact", cid(12), "stale: no activity since 2018-01-01"),
        ("Lead", lid(1), "stale: no activity since 2020-01-01"),
    ]
    # 6: open deal; 13: a deal the snapshot lacks; 14: closed flag empty. The deleted deal link protects no one.
    assert output.held_back == {"on an open opportunity": 3}
    assert output.notes == ["1 Contact record has no activity, modified or created date and was left alone"]
    assert output.skipped is None


def test_stale_contacts_change_carries_before_image_fingerprint_and_label() -> None:
    view = make_view()
    first = run_pass("stale_contacts", view).changes[0]
    assert first.op is Op.DELETE and first.severity is Severity.MINOR and first.pass_name == "stale_contacts"
    assert first.before == view.record_map("Contact", [cid(1)])[cid(1)]
    assert first.after == {}
    assert first.fingerprint == stamp(1)
    assert first.label == "Jane Doe <jane@x.org>"
    nameless = next(c for c in run_pass("stale_contacts", view).changes if c.record_id == cid(12))
    assert nameless.label == "<nameless@x.org>"


def test_stale_contacts_years_and_objects_settings() -> None:
    output = run_pass("stale_contacts", make_view(), years=7, objects=["Lead"])
    assert summary(output) == []
    output = run_pass("stale_contacts", make_view(), years=6, objects=["Lead"])
    assert summary(output) == [("Lead", lid(1), "stale: no activity since 2020-01-01")]


def test_stale_contacts_objects_must_be_people() -> None:
    with pytest.raises(BadInput, match=r"\[passes.stale_contacts\] objects: Account is not a people object"):
        run_pass("stale_contacts", make_view(), objects=["Account"])


def test_stale_contacts_skips_when_open_deals_cannot_be_checked() -> None:
    output = run_pass("stale_contacts", make_view(only=["Contact", "Lead", "OpportunityContactRole"]))
    assert output.changes == []
    assert output.skipped == (
        "the snapshot holds no Opportunity, so people on an open opportunity cannot be protected: "
        "if the CRM has Opportunity, back up without --object (a backup then takes it) and scan again"
    )


def test_stale_contacts_skips_without_people() -> None:
    output = run_pass("stale_contacts", make_view(only=["User"]))
    assert output.skipped == "no Contact or Lead object in the snapshot"


def test_stale_contacts_guard_only_for_the_objects_a_link_points_at() -> None:
    # Leads alone: OpportunityContactRole points at Contact, yet the deal objects must still be present
    # to know that; with them present the Lead pass runs and holds back no lead.
    output = run_pass("stale_contacts", make_view(), objects=["Lead"])
    assert [c.record_id for c in output.changes] == [lid(1)] and output.held_back == {}


def test_years_before_handles_leap_day() -> None:
    assert years_before(date(2024, 2, 29), 3) == date(2021, 2, 28)
    assert years_before(date(2026, 3, 15), 3) == date(2023, 3, 15)


# --- inactive_users --------------------------------------------------------------------------------


def test_inactive_users_proposes_exact_users() -> None:
    output = run_pass("inactive_users", make_view(), exclude=["API@x.org", uid(7)])
    assert summary(output) == [
        ("User", uid(1), "no login since 2025-01-04"),
        ("User", uid(3), "never logged in (created 2025-05-01)"),
    ]
    assert output.held_back == {"listed in [passes.inactive_users] exclude": 2}
    change = output.changes[0]
    assert change.op is Op.DEACTIVATE and change.severity is Severity.MAJOR
    assert change.after == {"IsActive": False}
    assert change.before["IsActive"] is True and change.fingerprint == stamp(101)
    assert change.label == "Bob Ray"
    assert output.changes[1].label == "Never In <never@x.org>"


def test_inactive_users_without_never_logged_in_and_other_days() -> None:
    output = run_pass("inactive_users", make_view(), include_never_logged_in=False)
    assert [c.record_id for c in output.changes] == [uid(1), uid(6), uid(7)]
    output = run_pass("inactive_users", make_view(), days=900, include_never_logged_in=False)
    assert [c.record_id for c in output.changes] == []


def test_inactive_users_skipped_without_user_object() -> None:
    output = run_pass("inactive_users", make_view(only=["Contact"]))
    assert output.skipped == "no User object in the snapshot" and output.changes == []


# --- settings ----------------------------------------------------------------------------------------


def test_registry_order_and_summaries() -> None:
    # In declared order; the two first passes keep their place (each helper adds passes of its own).
    assert list(PASSES) == sorted(PASSES, key=lambda name: PASSES[name].order)
    assert [p for p in PASSES if p in ("stale_contacts", "inactive_users")] == ["stale_contacts", "inactive_users"]
    assert PASSES["stale_contacts"].summary.startswith("Delete people")
    assert PASSES["inactive_users"].summary.startswith("Deactivate active users")


def test_summaries_say_what_the_pass_does_in_the_crm_s_words() -> None:
    sf, hs = providers.get("salesforce").vocabulary, providers.get("hubspot").vocabulary
    stale, templates = PASSES["stale_contacts"], PASSES["stale_templates"]
    # Where the CRM deletes into a recycle bin and deactivates templates, the generic summaries hold.
    assert summary_in(stale, sf) == stale.summary
    assert summary_in(templates, sf) == templates.summary
    # Where it archives people and marketing emails (restorable, same id), the summary says so.
    assert summary_in(stale, hs) == (
        "Archive people (contacts) with no activity for years, except those on an open deal.")
    assert summary_in(templates, hs) == (
        "Archive marketing emails unused for a number of days (the CRM restores them, same id).")
    assert summary_in(stale, None) == stale.summary
    # A CRM whose campaigns have no active flag ends one by writing its status: nothing is "deactivated".
    campaigns = PASSES["finished_campaigns"]
    assert summary_in(campaigns, sf) == campaigns.summary
    assert summary_in(campaigns, hs) == (
        'End campaigns still running though their end date is past, by setting hs_campaign_status = "completed".')
    # Companies are held by contacts, deals and tickets only: no cases, no contracts (their links are not read).
    accounts = PASSES["empty_accounts"]
    assert summary_in(accounts, sf) == accounts.summary
    assert summary_in(accounts, hs) == "Archive companies left with no contacts, no open deals and no tickets."
    # Owners cannot be deactivated through the API: the pass only hands records over.
    users = PASSES["inactive_users"]
    assert summary_in(users, sf) == users.summary
    assert summary_in(users, hs) == (
        "Hand the records and open tasks of deactivated owners to the active owner reassign_to names "
        "(this CRM deactivates owners only in its own settings, never through crmsweep).")
    # A pass the CRM cannot run (no reports API, no restorable files) describes nothing: its skip note says why.
    for name in ("stale_reports", "old_files"):
        assert summary_in(PASSES[name], sf) == PASSES[name].summary
        assert summary_in(PASSES[name], hs) == ""


def test_settings_defaults_are_merged() -> None:
    assert validate_settings("stale_contacts", {"years": 5}) == {"years": 5, "objects": [], "action": "delete"}


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        (
            "stale_contacts",
            {"yeras": 2},
            "[passes.stale_contacts] has no setting 'yeras' (did you mean 'years'?); "
            "known settings: action, objects, years",
        ),
        ("no_contact_info", {"action": "delete"},
         "[passes.no_contact_info] has no setting 'action'; it takes no settings"),
        ("stale_contacts", {"years": "3"}, "[passes.stale_contacts] years must be a whole number, not '3'"),
        ("stale_contacts", {"years": True}, "[passes.stale_contacts] years must be a whole number, not True"),
        ("stale_contacts", {"years": 0}, "[passes.stale_contacts] years must be between 1 and 100, got 0"),
        (
            "stale_contacts",
            {"action": "archive"},
            "[passes.stale_contacts] action must be one of: delete; not 'archive'",
        ),
        (
            "stale_contacts",
            {"objects": "Contact"},
            "[passes.stale_contacts] objects must be a list of strings, not 'Contact'",
        ),
        (
            "inactive_users",
            {"include_never_logged_in": "yes"},
            "[passes.inactive_users] include_never_logged_in must be true or false, not 'yes'",
        ),
        ("inactive_users", {"days": -1}, "[passes.inactive_users] days must be between 1 and 36500, got -1"),
        ("bounced", {},
         "[passes.bounced] is not a known pass (did you mean 'bounced_emails'?); known passes: " + ", ".join(PASSES)),
    ],
)
def test_bad_settings_are_refused_with_the_key(name: str, raw: dict[str, Any], message: str) -> None:
    with pytest.raises(BadInput) as caught:
        validate_settings(name, raw)
    assert str(caught.value) == message


def test_exclude_matches_ids_exactly_and_names_ignoring_case() -> None:
    bob = {**user(1, "Bob Ray", active=True, login="2025-01-04T17:45:00.000Z"), "Id": "005AbC000000000001"}
    view = make_view({"User": [bob]}, only=["User"])
    other_case = run_pass("inactive_users", view, exclude=["005abc000000000001"])
    assert [c.record_id for c in other_case.changes] == [bob["Id"]]
    assert run_pass("inactive_users", view, exclude=["BOB RAY"]).changes == []
    assert run_pass("inactive_users", view, exclude=["005AbC000000000001"]).changes == []


def test_exclude_matches_a_salesforce_15_character_id() -> None:
    bob = {**user(1, "Bob Ray", active=True, login="2025-01-04T17:45:00.000Z"), "Id": "005A0000006Vm9rIAC"}
    view = make_view({"User": [bob]}, only=["User"])
    salesforce_ids = replace(FAKE_VOCABULARY, short_id_length=15)
    assert run_pass("inactive_users", view, salesforce_ids, exclude=["005A0000006Vm9r"]).changes == []
    assert len(run_pass("inactive_users", view, salesforce_ids, exclude=["005a0000006Vm9r"]).changes) == 1
