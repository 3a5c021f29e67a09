"""The pure rules behind apply's live re-check and its "changed by someone else" verdict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from crmsweep.cleanup.drift import someone_else_verdict
from crmsweep.cleanup.passes import PASSES, LiveRows
from crmsweep.model import Change, Op, Record
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY as SF

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
ME, THEM = "005000000000001AAA", "005000000000002AAA"


def change(op: Op, obj: str = "Contact", after: Record | None = None) -> Change:
    return Change(op=op, object=obj, record_id="003000000000001AAA", before={"Id": "003000000000001AAA"},
                  after=after or {}, reason="test", pass_name="stale_contacts")


def test_a_stamp_after_the_stop_is_someone_elses_and_before_it_is_ours() -> None:
    live = {"Id": "003000000000001AAA", "IsDeleted": True, "SystemModstamp": "2030-06-01T11:00:00.000Z"}
    theirs = someone_else_verdict(change(Op.DELETE), live, SF, settled_at="2030-06-01T10:59:59.999Z",
                                  running_user=ME)
    assert theirs == "SystemModstamp is 2030-06-01T11:00:00.000Z, after the run stopped at 2030-06-01T10:59:59.999Z"
    assert someone_else_verdict(change(Op.DELETE), live, SF, settled_at="2030-06-01T11:00:00.000Z",
                                running_user=ME) is None
    # Killed or interrupted: no time bound, and a delete does not say who made it.
    assert someone_else_verdict(change(Op.DELETE), {**live, "LastModifiedById": THEM}, SF, settled_at=None,
                                running_user=ME) is None


def test_an_update_last_made_by_another_user_is_theirs() -> None:
    live = {"Id": "005000000000009AAA", "IsActive": False, "SystemModstamp": "2030-06-01T11:00:00.000Z",
            "LastModifiedById": THEM}
    update = change(Op.DEACTIVATE, "User", {"IsActive": False})
    assert someone_else_verdict(update, live, SF, settled_at=None, running_user=ME) == (
        f"LastModifiedById is {THEM}, not the user this connection runs as ({ME})"
    )
    # The 15-character form of our own id is still us.
    assert someone_else_verdict(update, {**live, "LastModifiedById": ME[:15]}, SF, settled_at=None,
                                running_user=ME) is None


def test_stale_contacts_recheck_on_live_rows() -> None:
    check = PASSES["stale_contacts"].live_check
    assert check is not None
    settings = {"years": 3, "objects": [], "action": "delete"}
    needs = check.needs(SF, "Contact")
    assert [(r.name, r.object, r.match_field, r.via) for r in needs.related] == [
        ("links0", "OpportunityContactRole", "ContactId", None),
        ("deals0", "Opportunity", "Id", ("links0", "OpportunityId")),
        # What the CRM deletes with the contact, for the protections in force at apply time.
        ("cascade_Task", "Task", "WhoId", None),
        ("cascade_Event", "Event", "WhoId", None),
        ("cascade_OpportunityContactRole", "OpportunityContactRole", "ContactId", None),
    ]

    def rows(record: Mapping[str, Any], links: Sequence[Record] = (), deals: Sequence[Record] = ()) -> LiveRows:
        return LiveRows(record=record, related={"links0": list(links), "deals0": list(deals)}, vocabulary=SF)

    old = {"LastActivityDate": "2020-01-01", "LastModifiedDate": "2029-01-01T00:00:00.000Z"}
    assert check.recheck(change(Op.DELETE), rows(old), settings, NOW) is None
    # 3 years before 2030-06-01 is 2027-06-01: that very day is not stale.
    assert check.recheck(change(Op.DELETE), rows({"LastActivityDate": "2027-06-01"}), settings, NOW) == (
        "no longer stale: LastActivityDate is 2027-06-01"
    )
    link: Record = {"ContactId": "003000000000001AAA", "OpportunityId": "006000000000001AAA"}
    closed: Record = {"Id": "006000000000001AAA", "IsClosed": True}
    assert check.recheck(change(Op.DELETE), rows(old, [link], [closed]), settings, NOW) is None
    assert check.recheck(change(Op.DELETE), rows(old, [link], [{**closed, "IsClosed": False}]), settings, NOW) == (
        "now on an open opportunity (006000000000001AAA)"
    )
    # A deal the link names but the CRM did not return (deleted) counts as open: when in doubt, keep.
    assert check.recheck(change(Op.DELETE), rows(old, [link], []), settings, NOW) == (
        "now on an open opportunity (006000000000001AAA)"
    )


def test_inactive_users_recheck_on_live_rows() -> None:
    check = PASSES["inactive_users"].live_check
    assert check is not None
    settings = {"days": 90, "include_never_logged_in": True, "exclude": []}
    user = change(Op.DEACTIVATE, "User", {"IsActive": False})

    def live(record: Mapping[str, Any]) -> LiveRows:
        return LiveRows(record=record, related={}, vocabulary=SF)

    assert check.recheck(user, live({"IsActive": True, "LastLoginDate": "2029-01-01T00:00:00.000Z"}), settings,
                         NOW) is None
    assert check.recheck(user, live({"IsActive": True, "LastLoginDate": "2030-05-31T08:00:00.000Z"}), settings,
                         NOW) == "logged in since the scan: LastLoginDate is 2030-05-31T08:00:00.000Z"
    assert check.recheck(user, live({"IsActive": False}), settings, NOW) == "already inactive"
