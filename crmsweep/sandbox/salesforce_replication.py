"""Salesforce's replication resources over the sandbox store: `/sobjects/{Type}/deleted/` and `/updated/`.

As documented for "sObject Get Deleted" / "sObject Get Updated" (REST, API 29.0+, the SOAP
getDeleted / getUpdated calls): `start` and `end` are ISO 8601 UTC datetimes whose seconds are
ignored; `start` must precede `end` and lie within the last 30 days; a window's answer holds at most
600,000 ids. Deleted records are kept in a delete log the store writes on every delete path (data
API, collections, cascades, analytics deletes, and whatever else deletes through the store), so a
record purged from the recycle bin is still listed; an undeleted record leaves the log (it is no
longer deleted: docs/design.md records this choice).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from crmsweep.sandbox.rules import format_datetime, parse_datetime

if TYPE_CHECKING:
    from crmsweep.sandbox.salesforce_store import SalesforceStore
    from crmsweep.sandbox.schema import SObject

LOG_TABLE = "_sandbox_deleted_log"
RETENTION = timedelta(days=30)
MAX_IDS = 600_000


class ReplicationError(Exception):
    """A refused replication request: (HTTP status, errorCode, message) as Salesforce answers it."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def create_table(db: sqlite3.Connection) -> None:
    """The delete log; call inside the schema transaction."""
    db.execute(
        f"CREATE TABLE IF NOT EXISTS {LOG_TABLE} "
        "(Id TEXT PRIMARY KEY, ObjectName TEXT NOT NULL, DeletedDate TEXT NOT NULL)"
    )
    db.execute(f"CREATE INDEX IF NOT EXISTS ix_{LOG_TABLE}_date ON {LOG_TABLE} (ObjectName, DeletedDate)")


def log_deleted(db: sqlite3.Connection, object_name: str, stamps: dict[str, str]) -> None:
    """Record deletes (id -> deleted date); call inside the delete's transaction."""
    db.executemany(
        f"INSERT INTO {LOG_TABLE} (Id, ObjectName, DeletedDate) VALUES (?, ?, ?) "
        "ON CONFLICT(Id) DO UPDATE SET ObjectName = excluded.ObjectName, DeletedDate = excluded.DeletedDate",
        [(rid, object_name, stamp) for rid, stamp in stamps.items()],
    )


def forget_deleted(db: sqlite3.Connection, record_ids: Sequence[str]) -> None:
    db.executemany(f"DELETE FROM {LOG_TABLE} WHERE Id = ?", [(rid,) for rid in record_ids])


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _window(start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime, datetime]:
    """(start, end, earliest available), seconds dropped, or the error Salesforce answers."""
    if not start or not end:
        missing = "start" if not start else "end"
        raise ReplicationError(400, "MALFORMED_QUERY", f"Missing required parameter: {missing}")
    try:
        first, last = _minute(parse_datetime(start)), _minute(parse_datetime(end))
    except ValueError:
        raise ReplicationError(400, "MALFORMED_QUERY", "start and end must be ISO 8601 datetimes") from None
    earliest = _minute(now.astimezone(UTC) - RETENTION)
    if first >= last or first > now:
        raise ReplicationError(400, "INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate")
    if first < earliest:
        raise ReplicationError(
            400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago")
    # The answer covers up to the end asked for or now, whichever comes first (the log is written as
    # records are deleted).
    return first, min(last, now.astimezone(UTC)), earliest


def deleted(store: SalesforceStore, obj: SObject, start: str | None, end: str | None, now: datetime) -> dict[str, Any]:
    first, covered, earliest = _window(start, end, now)
    rows = store.fetch(
        f"SELECT Id, DeletedDate FROM {LOG_TABLE} WHERE ObjectName = ? AND DeletedDate >= ? AND DeletedDate < ? "
        "ORDER BY DeletedDate, Id LIMIT ?",
        (obj.name, format_datetime(first), format_datetime(covered), MAX_IDS + 1),
    )
    if len(rows) > MAX_IDS:
        raise ReplicationError(400, "EXCEEDED_ID_LIMIT", f"The result would hold more than {MAX_IDS} ids")
    return {
        "deletedRecords": [{"id": rid, "deletedDate": stamp} for rid, stamp in rows],
        "earliestDateAvailable": format_datetime(earliest),
        "latestDateCovered": format_datetime(covered),
    }


def updated(store: SalesforceStore, obj: SObject, start: str | None, end: str | None, now: datetime) -> dict[str, Any]:
    first, covered, _ = _window(start, end, now)
    live = ' AND "IsDeleted" = 0' if obj.has_is_deleted else ""
    rows = store.fetch(
        f'SELECT Id FROM "{obj.name}" WHERE "SystemModstamp" >= ? AND "SystemModstamp" < ?{live} '
        'ORDER BY "SystemModstamp", Id LIMIT ?',
        (format_datetime(first), format_datetime(covered), MAX_IDS + 1),
    )
    if len(rows) > MAX_IDS:
        raise ReplicationError(400, "EXCEEDED_ID_LIMIT", f"The result would hold more than {MAX_IDS} ids")
    return {"ids": [r[0] for r in rows], "latestDateCovered": format_datetime(covered)}
