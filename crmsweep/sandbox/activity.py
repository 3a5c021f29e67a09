"""Activities and the LastActivityDate they give the records they are about, as Salesforce keeps it.

Salesforce (Help "Guidelines for Tracking Activities", KB 000385365): a record's Last Activity is the
latest due date of its closed tasks and the latest date of its events. A contact or lead counts the
activities that name it (WhoId); an opportunity those related to it (WhatId); an account those that
roll up to it through the activity's AccountId, which is the WhatId's account (the account itself, or
the opportunity's account), else the WhoId contact's account (Task.AccountId, Object Reference).

The sandbox holds rows for only part of an org's history: a seeded record's activity date stands for
activities it has no rows for. That date is kept in the hidden `HISTORY_COLUMN`, so the platform's
recalculation after a write is max(history, the live activity rows), and deleting an activity can
lower the date back to what the rows and the history still support. Pure logic; the store runs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

# Objects whose LastActivityDate the platform keeps, and the activity objects that feed it.
TRACKED = ("Account", "Contact", "Lead", "Opportunity")
ACTIVITY_OBJECTS = ("Task",)
HISTORY_COLUMN = "_activity_history"
LINK_FIELDS = ("WhoId", "WhatId", "AccountId")

# The date an activity row gives its records (SQL over the row's own columns), NULL when none:
# a closed task its due date, or the day it was closed when it has no due date.
DATE_SQL = {
    "Task": 'CASE WHEN "IsClosed" = 1 THEN COALESCE("ActivityDate", substr("CompletedDateTime", 1, 10)) END',
}


def activity_date(obj_name: str, row: Mapping[str, object]) -> date | None:
    """The same rule as DATE_SQL, for the seeder's rows in Python."""
    if obj_name == "Task":
        if not row.get("IsClosed"):
            return None
        text = row.get("ActivityDate") or (str(row.get("CompletedDateTime") or "")[:10] or None)
        return date.fromisoformat(str(text)) if text else None
    return None


def linked_ids(row: Mapping[str, object]) -> set[str]:
    """The records an activity row counts for."""
    return {str(row[name]) for name in LINK_FIELDS if row.get(name)}


def account_of(what_type: str | None, what_account: object, who_type: str | None, who_account: object) -> object:
    """Task.AccountId: the WhatId's account if it has one, else the WhoId contact's account."""
    if what_type in ("Account", "Opportunity"):
        return what_account or None
    if who_type == "Contact":
        return who_account or None
    return None


def latest(*dates: str | date | None) -> str | None:
    """The most recent of ISO dates (None ignored), as an ISO date."""
    found = [d.isoformat() if isinstance(d, date) else d for d in dates if d]
    return max(found) if found else None
