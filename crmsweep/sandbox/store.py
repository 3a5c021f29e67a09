"""The sandbox org's SQLite state: tables per object, the recycle bin, ids and API usage.

One connection per process, guarded by a lock: the HTTP server is multi-threaded and SQLite
connections are not safe to share without one. WAL mode and IMMEDIATE write transactions let
several processes use one state folder at once (each waits its turn for writes).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from crmsweep.sandbox import activity, ids, rules
from crmsweep.sandbox.rules import RecordError
from crmsweep.sandbox.schema import BY_KEY_PREFIX, DATETIME, OBJECTS, REFERENCE, SObject, children_of

DB_NAME = "org.sqlite3"
_CHUNK = 500  # host parameters per IN list, well under SQLite's limit


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def hidden_columns(obj: SObject) -> list[str]:
    """Bookkeeping columns the API never shows (see `table_ddl`)."""
    # Which delete (its root record id) put this row in the recycle bin: undelete restores exactly those.
    columns = ["_deleted_with"]
    if obj.name in activity.TRACKED:
        columns.append(activity.HISTORY_COLUMN)
    return columns


def table_ddl(obj: SObject) -> list[str]:
    columns = []
    for f in obj.fields:
        column = f"{quote(f.name)} {f.sql_type}"
        if f.name == "Id":
            column += " PRIMARY KEY"
        columns.append(column)
    columns += [f"{quote(c)} TEXT" for c in hidden_columns(obj)]
    statements = [f"CREATE TABLE IF NOT EXISTS {quote(obj.name)} ({', '.join(columns)})"]
    indexed = [f.name for f in obj.fields if f.type == REFERENCE] + ["_deleted_with", "SystemModstamp"]
    for column in indexed:
        statements.append(
            f"CREATE INDEX IF NOT EXISTS {quote(f'ix_{obj.name}_{column}')} ON {quote(obj.name)} ({quote(column)})"
        )
    return statements


def _last_activity_sql(name: str, where: str = "") -> str:
    """UPDATE statement recomputing `name`.LastActivityDate from its history and live activity rows."""
    table = quote(name)
    links = " OR ".join(f"{quote(c)} = {table}.\"Id\"" for c in activity.LINK_FIELDS)
    sources = " UNION ALL ".join(
        f"SELECT {activity.DATE_SQL[a]} FROM {quote(a)} WHERE \"IsDeleted\" = 0 AND ({links})"
        for a in activity.ACTIVITY_OBJECTS
    )
    latest = f"(SELECT MAX(d) FROM (SELECT {table}.{quote(activity.HISTORY_COLUMN)} AS d UNION ALL {sources}))"
    return f'UPDATE {table} SET "LastActivityDate" = {latest}' + (f" WHERE {where}" if where else "")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Store:
    def __init__(self, state_dir: Path) -> None:
        path = state_dir / DB_NAME
        if not path.exists():
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.path = path
        self.lock = threading.RLock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30.0)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._meta: dict[str, str] = {}

    def close(self) -> None:
        with self.lock:
            self._db.close()

    # --- schema and metadata --------------------------------------------------------------------

    def create_schema(self) -> None:
        with self.transaction():
            self._db.execute("CREATE TABLE IF NOT EXISTS _sandbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS _sandbox_sequence (prefix TEXT PRIMARY KEY, next INTEGER NOT NULL)"
            )
            added: dict[str, set[str]] = {}
            for obj in OBJECTS.values():
                create_table, *indexes = table_ddl(obj)
                self._db.execute(create_table)
                added[obj.name] = self._add_missing_columns(obj)  # before indexes on new columns
                for statement in indexes:
                    self._db.execute(statement)
            if any(added.values()):
                self._migrate_activity(added)
            if self.meta("four_digit_years") != "1":
                self._pad_short_years()
                self.set_meta({"four_digit_years": "1"})

    def _pad_short_years(self) -> None:
        # Older versions stored years below 1000 unpadded ('999-05-06T...'), out of text order.
        for obj in OBJECTS.values():
            for f in obj.fields:
                if f.type == DATETIME:
                    column = quote(f.name)
                    self._db.execute(
                        f"UPDATE {quote(obj.name)} SET {column} = substr('000', 1, 5 - instr({column}, '-')) "
                        f"|| {column} WHERE instr({column}, '-') BETWEEN 2 AND 4"
                    )

    def _add_missing_columns(self, obj: SObject) -> set[str]:
        """Columns a state folder made by an older version lacks, added empty."""
        have = {r[1] for r in self._db.execute(f"PRAGMA table_info({quote(obj.name)})")}
        wanted = [(f.name, f.sql_type) for f in obj.fields] + [(c, "TEXT") for c in hidden_columns(obj)]
        missing = [(name, sql_type) for name, sql_type in wanted if name not in have]
        for name, sql_type in missing:
            self._db.execute(f"ALTER TABLE {quote(obj.name)} ADD COLUMN {quote(name)} {sql_type}")
        return {name for name, _ in missing}

    def _migrate_activity(self, added: Mapping[str, set[str]]) -> None:
        # An older state's activity dates become the history its rows do not explain.
        for name in activity.TRACKED:
            if activity.HISTORY_COLUMN in added.get(name, set()):
                self._db.execute(f"UPDATE {quote(name)} SET {quote(activity.HISTORY_COLUMN)} = LastActivityDate")
        if "AccountId" in added.get("Task", set()):
            self._db.execute(
                'UPDATE "Task" SET "AccountId" = CASE '
                'WHEN substr("WhatId", 1, 3) = \'001\' THEN "WhatId" '
                'WHEN substr("WhatId", 1, 3) = \'006\' '
                'THEN (SELECT o."AccountId" FROM "Opportunity" o WHERE o."Id" = "WhatId") '
                'WHEN "WhatId" IS NULL AND substr("WhoId", 1, 3) = \'003\' '
                'THEN (SELECT c."AccountId" FROM "Contact" c WHERE c."Id" = "WhoId") END'
            )
        if "CompletedDateTime" in added.get("Task", set()):
            self._db.execute('UPDATE "Task" SET "CompletedDateTime" = "LastModifiedDate" WHERE "IsClosed" = 1')
        for name in activity.TRACKED:
            self._db.execute(_last_activity_sql(name))

    def drop_everything(self) -> None:
        with self.transaction():
            for obj in OBJECTS.values():
                self._db.execute(f"DROP TABLE IF EXISTS {quote(obj.name)}")
            self._db.execute("DROP TABLE IF EXISTS _sandbox_meta")
            self._db.execute("DROP TABLE IF EXISTS _sandbox_sequence")
        self._meta.clear()

    def meta(self, key: str) -> str | None:
        if key not in self._meta:
            with self.lock:
                try:
                    row = self._db.execute("SELECT value FROM _sandbox_meta WHERE key = ?", (key,)).fetchone()
                except sqlite3.OperationalError:
                    return None
            if row is None:
                return None
            self._meta[key] = row[0]
        return self._meta[key]

    def set_meta(self, values: Mapping[str, str]) -> None:
        with self.transaction():
            self._db.executemany(
                "INSERT INTO _sandbox_meta (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )
        self._meta.update(values)

    @property
    def seeded(self) -> bool:
        return self.meta("seeded") == "1"

    @property
    def api_user_id(self) -> str:
        return self.meta("api_user_id") or ""

    @property
    def org_id(self) -> str:
        return self.meta("org_id") or ""

    @property
    def pod(self) -> str:
        return self.meta("pod") or "00"

    # --- transactions ---------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction that takes SQLite's write lock at once (no upgrade deadlocks)."""
        with self.lock:
            if self._db.in_transaction:  # nested use joins the outer transaction
                yield self._db
                return
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """One record's writes inside a batch: undone alone if that record fails."""
        self._db.execute("SAVEPOINT record")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK TO record")
            self._db.execute("RELEASE record")
            raise
        self._db.execute("RELEASE record")

    # --- API usage ------------------------------------------------------------------------------

    def count_api_call(self, allowance: int) -> int | None:
        """Count one call; the usage after it, or None (not counted) if the allowance is spent."""
        with self.transaction() as db:
            row = db.execute("SELECT value FROM _sandbox_meta WHERE key = 'api_used'").fetchone()
            used = int(row[0]) if row else 0
            if used >= allowance:
                return None
            db.execute(
                "INSERT INTO _sandbox_meta (key, value) VALUES ('api_used', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(used + 1),),
            )
            return used + 1

    def api_used(self) -> int:
        with self.lock:
            row = self._db.execute("SELECT value FROM _sandbox_meta WHERE key = 'api_used'").fetchone()
        return int(row[0]) if row else 0

    def reset_api_usage(self) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM _sandbox_meta WHERE key = 'api_used'")

    # --- reads ----------------------------------------------------------------------------------

    def fetch(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def row(self, obj: SObject, record_id: str) -> dict[str, Any] | None:
        """The stored row (recycle-bin rows included), by canonical field name."""
        with self.lock:
            cursor = self._db.execute(f"SELECT * FROM {quote(obj.name)} WHERE Id = ?", (record_id,))
            found = cursor.fetchone()
            if found is None:
                return None
            names = [d[0] for d in cursor.description]
        return dict(zip(names, found, strict=True))

    def snapshot(self, name: str, sql: str, params: Sequence[object], limit: int | None, offset: int) -> int:
        """Materialise a query's rows into a temp table so paging neither skips nor repeats rows
        while other writes happen between pages. Returns the row count."""
        with self.lock:
            self._db.execute(
                f"CREATE TEMP TABLE {quote(name)} AS SELECT * FROM ({sql}) LIMIT ? OFFSET ?",
                (*params, -1 if limit is None else limit, offset),
            )
            return int(self._db.execute(f"SELECT COUNT(*) FROM {quote(name)}").fetchone()[0])

    def snapshot_page(self, name: str, start: int, size: int) -> list[tuple[Any, ...]]:
        """Rows start+1 .. start+size of a snapshot, by keyset on rowid: a page costs the same at
        any depth (LIMIT/OFFSET walked every earlier row, so a large result paged quadratically).
        The snapshot is a fresh table filled in result order, so its rowids are exactly 1..n."""
        with self.lock:
            return self._db.execute(
                f"SELECT * FROM {quote(name)} WHERE rowid > ? ORDER BY rowid LIMIT ?", (start, size)
            ).fetchall()

    def drop_snapshot(self, name: str) -> None:
        with self.lock:
            self._db.execute(f"DROP TABLE IF EXISTS temp.{quote(name)}")

    # --- ids ------------------------------------------------------------------------------------

    def next_ids(self, obj: SObject, count: int) -> list[str]:
        """Fresh ids for `obj`; call inside a transaction so concurrent processes never share one."""
        row = self._db.execute("SELECT next FROM _sandbox_sequence WHERE prefix = ?", (obj.key_prefix,)).fetchone()
        start = int(row[0]) if row else 1
        self._db.execute(
            "INSERT INTO _sandbox_sequence (prefix, next) VALUES (?, ?) "
            "ON CONFLICT(prefix) DO UPDATE SET next = excluded.next",
            (obj.key_prefix, start + count),
        )
        return [ids.make_id(obj.key_prefix, self.pod, n) for n in range(start, start + count)]

    def set_sequences(self, next_numbers: Mapping[str, int]) -> None:
        """Where each key prefix's id sequence continues; call inside a transaction."""
        self._db.executemany(
            "INSERT INTO _sandbox_sequence (prefix, next) VALUES (?, ?) "
            "ON CONFLICT(prefix) DO UPDATE SET next = excluded.next",
            list(next_numbers.items()),
        )

    def insert_rows(self, obj: SObject, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        """Bulk insert for the seeder; call inside a transaction."""
        names = ", ".join(quote(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        self._db.executemany(f"INSERT INTO {quote(obj.name)} ({names}) VALUES ({marks})", rows)

    # --- platform writes (call inside `transaction()`; each raises RecordError) ----------------

    def _resolve(self, record_id: object, expected: SObject | None) -> tuple[SObject, dict[str, Any]]:
        if not isinstance(record_id, str) or (full := ids.normalize(record_id)) is None:
            raise RecordError("MALFORMED_ID", f"malformed id {record_id}", ("Id",) if expected else ())
        obj = BY_KEY_PREFIX.get(ids.key_prefix(full))
        if obj is None or (expected is not None and obj is not expected):
            label = expected.name if expected else "Record"
            raise RecordError("MALFORMED_ID", f"{label} ID: id value of incorrect type: {record_id}", ("Id",))
        found = self.row(obj, full)
        if found is None:
            raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
        return obj, found

    def _check_references(self, obj: SObject, values: Mapping[str, object]) -> None:
        for name, value in values.items():
            f = obj.field(name)
            if f is None or f.type != REFERENCE or value is None:
                continue
            full = ids.normalize(str(value))
            target = BY_KEY_PREFIX.get(ids.key_prefix(full)) if full else None
            if full is None or target is None or target.name not in f.reference_to:
                raise RecordError(
                    "MALFORMED_ID", f"{f.display_label}: id value of incorrect type: {value}", (f.name,)
                )
            parent = self.row(target, full)
            if parent is None:
                raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", (f.name,))
            if parent.get("IsDeleted"):
                raise RecordError("ENTITY_IS_DELETED", "entity is deleted", (f.name,))
            if f.name == "OwnerId" and target.name == "User" and not parent.get("IsActive"):
                raise RecordError(
                    "INACTIVE_OWNER_OR_USER",
                    f"operation performed with inactive user [{full}] as owner of [{obj.name}]",
                    (f.name,),
                )

    def _normalize_references(self, obj: SObject, values: dict[str, object]) -> None:
        for name, value in list(values.items()):
            f = obj.field(name)
            if f is not None and f.type == REFERENCE and isinstance(value, str):
                values[name] = ids.normalize(value) or value

    def create(self, obj: SObject, values: Mapping[str, object], now: datetime) -> str:
        if not obj.createable:
            raise RecordError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be inserted: {obj.name}")
        checked = rules.check_values(obj, values, creating=True)
        self._check_references(obj, checked)
        self._normalize_references(obj, checked)
        row: dict[str, object] = {**rules.defaults(obj), **checked}
        if obj.field("OwnerId") is not None and row.get("OwnerId") is None:
            row["OwnerId"] = self.api_user_id
        if obj.name == "Event":
            row.update(rules.event_times(row, checked))
        rules.check_required(obj, row)
        stamp = rules.next_stamp(now, None)
        row.update(
            {
                "CreatedDate": stamp,
                "CreatedById": self.api_user_id,
                "LastModifiedDate": stamp,
                "LastModifiedById": self.api_user_id,
                "SystemModstamp": stamp,
            }
        )
        if obj.has_is_deleted:
            row["IsDeleted"] = 0
        row.update(rules.calculated(obj.name, row))
        self._derive_activity(obj, row, None, stamp)
        row["Id"] = self.next_ids(obj, 1)[0]
        columns = [f.name for f in obj.fields if f.name in row]
        self.insert_rows(obj, columns, [[row[c] for c in columns]])
        if obj.name in activity.ACTIVITY_OBJECTS:
            self.refresh_last_activity(activity.linked_ids(row))
        return str(row["Id"])

    def update(self, expected: SObject, record_id: object, values: Mapping[str, object], now: datetime) -> str:
        obj, current = self._resolve(record_id, expected)
        if current.get("IsDeleted"):
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
        if not obj.updateable:
            raise RecordError("INVALID_TYPE_FOR_OPERATION", f"entity type cannot be updated: {obj.name}")
        checked = rules.check_values(obj, values, creating=False)
        changed_refs = {k: v for k, v in checked.items() if ids.normalize(str(v or "")) != current.get(k)}
        self._check_references(obj, changed_refs)
        self._normalize_references(obj, checked)
        row = {**current, **checked}
        if obj.name == "Event":
            row.update(rules.event_times(row, checked))
        rules.check_required(obj, row)
        stamp = rules.next_stamp(now, current.get("SystemModstamp"))
        row.update({"LastModifiedDate": stamp, "LastModifiedById": self.api_user_id, "SystemModstamp": stamp})
        row.update(rules.calculated(obj.name, row))
        self._derive_activity(obj, row, current, stamp)
        changes = {k: v for k, v in row.items() if k in current and current[k] != v}
        sets = ", ".join(f"{quote(k)} = ?" for k in changes)
        self._db.execute(f"UPDATE {quote(obj.name)} SET {sets} WHERE Id = ?", (*changes.values(), current["Id"]))
        if obj.name in activity.ACTIVITY_OBJECTS:
            self.refresh_last_activity(activity.linked_ids(current) | activity.linked_ids(row))
        return str(current["Id"])

    # --- activities ------------------------------------------------------------------------------

    def _derive_activity(
        self, obj: SObject, row: dict[str, object], before: Mapping[str, object] | None, stamp: str
    ) -> None:
        """The fields the platform derives on an activity: its account, and when a task was closed."""
        if obj.name not in activity.ACTIVITY_OBJECTS:
            return
        what_type, what_account = self._account_link(row.get("WhatId"))
        who_type, who_account = self._account_link(row.get("WhoId"))
        row["AccountId"] = activity.account_of(what_type, what_account, who_type, who_account)
        if obj.name == "Task":
            was_closed = bool(before and before.get("IsClosed"))
            if not row.get("IsClosed"):
                row["CompletedDateTime"] = None
            elif not was_closed:
                row["CompletedDateTime"] = stamp

    def _account_link(self, record_id: object) -> tuple[str | None, object]:
        """(object name, its account) of a record an activity points at."""
        if not isinstance(record_id, str):
            return None, None
        obj = BY_KEY_PREFIX.get(ids.key_prefix(record_id))
        if obj is None:
            return None, None
        if obj.name == "Account":
            return obj.name, record_id
        found = self.row(obj, record_id) if obj.field("AccountId") is not None else None
        return obj.name, (found or {}).get("AccountId")

    def refresh_last_activity(self, record_ids: Iterable[str]) -> None:
        """Recompute LastActivityDate of these records (others are ignored), as the platform does
        after an activity is written, deleted or undeleted. Records in the recycle bin keep theirs."""
        by_object: dict[str, list[str]] = {}
        for record_id in record_ids:
            target = BY_KEY_PREFIX.get(ids.key_prefix(record_id))
            if target is not None and target.name in activity.TRACKED:
                by_object.setdefault(target.name, []).append(record_id)
        for name, found in by_object.items():
            for start in range(0, len(found), _CHUNK):
                chunk = found[start : start + _CHUNK]
                marks = ", ".join("?" for _ in chunk)
                self._db.execute(_last_activity_sql(name, f'"Id" IN ({marks}) AND "IsDeleted" = 0'), chunk)

    def delete(self, record_id: object, now: datetime) -> str:
        obj, current = self._resolve(record_id, None)
        if not obj.deletable:
            raise RecordError("DELETE_FAILED", f"entity type cannot be deleted: {obj.name}")
        if current.get("IsDeleted"):
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted")
        root = str(current["Id"])
        self._bin(obj, [(root, current["SystemModstamp"])], root, now)
        return root

    def _bin(self, obj: SObject, rows: Sequence[tuple[str, str]], root: str, now: datetime) -> None:
        """Move rows to the recycle bin, then their cascade-delete children, remembering the root."""
        self._db.executemany(
            f"UPDATE {quote(obj.name)} SET IsDeleted = 1, _deleted_with = ?, SystemModstamp = ? WHERE Id = ?",
            [(root, rules.next_stamp(now, stamp), rid) for rid, stamp in rows],
        )
        parent_ids = [rid for rid, _ in rows]
        if obj.name in activity.ACTIVITY_OBJECTS:
            self.refresh_last_activity(self._activity_links(obj, parent_ids))
        for child, f in children_of(obj.name):
            if not f.cascade_delete or not child.has_is_deleted:
                continue
            for start in range(0, len(parent_ids), _CHUNK):
                chunk = parent_ids[start : start + _CHUNK]
                marks = ", ".join("?" for _ in chunk)
                found = self._db.execute(
                    f"SELECT Id, SystemModstamp FROM {quote(child.name)} "
                    f"WHERE {quote(f.name)} IN ({marks}) AND IsDeleted = 0",
                    chunk,
                ).fetchall()
                if found:
                    self._bin(child, [(r[0], r[1]) for r in found], root, now)

    def undelete(self, record_id: object, now: datetime) -> str:
        obj, current = self._resolve(record_id, None)
        if not obj.undeletable:
            raise RecordError("UNDELETE_FAILED", f"entity type cannot be undeleted: {obj.name}")
        if not current.get("IsDeleted"):
            raise RecordError("UNDELETE_FAILED", "Entity is not in the recycle bin")
        for f in obj.fields:
            parent_id = current.get(f.name)
            if f.type != REFERENCE or not f.cascade_delete or not parent_id:
                continue
            parent_obj = BY_KEY_PREFIX.get(ids.key_prefix(str(parent_id)))
            parent = self.row(parent_obj, str(parent_id)) if parent_obj else None
            if parent is not None and parent.get("IsDeleted"):
                raise RecordError(
                    "UNDELETE_FAILED", f"Parent record {parent_id} is in the recycle bin; undelete it first", (f.name,)
                )
        root = str(current["Id"])
        restored: dict[str, list[str]] = {}
        for table in OBJECTS.values():
            if not table.has_is_deleted:
                continue
            # The record itself (whichever delete binned it) and exactly the rows its own delete cascaded to.
            rows = self._db.execute(
                f"SELECT Id, SystemModstamp FROM {quote(table.name)} "
                "WHERE (_deleted_with = ? OR Id = ?) AND IsDeleted = 1",
                (root, root),
            ).fetchall()
            self._db.executemany(
                f"UPDATE {quote(table.name)} SET IsDeleted = 0, _deleted_with = NULL, SystemModstamp = ? WHERE Id = ?",
                [(rules.next_stamp(now, stamp), rid) for rid, stamp in rows],
            )
            restored[table.name] = [rid for rid, _ in rows]
        # Activities last: the records they count for may have come back in the same undelete.
        for name in activity.ACTIVITY_OBJECTS:
            self.refresh_last_activity(self._activity_links(OBJECTS[name], restored.get(name, [])))
        return root

    def purge(self, record_id: object) -> str:
        """Empty one record from the recycle bin (SOAP emptyRecycleBin), with the rows its delete
        cascaded to: they are gone for good, as if the bin had aged them out. Only binned records."""
        _obj, current = self._resolve(record_id, None)
        if not current.get("IsDeleted"):
            # Salesforce's docs name no code for this; the sandbox's choice is recorded in docs/design.md.
            raise RecordError("INVALID_ID_FIELD", "The record is not in the recycle bin")
        root = str(current["Id"])
        for table in OBJECTS.values():
            if table.has_is_deleted:
                self._db.execute(
                    f"DELETE FROM {quote(table.name)} WHERE (_deleted_with = ? OR Id = ?) AND IsDeleted = 1",
                    (root, root),
                )
        return root

    def _activity_links(self, obj: SObject, activity_ids: Sequence[str]) -> set[str]:
        links: set[str] = set()
        columns = ", ".join(quote(c) for c in activity.LINK_FIELDS)
        for start in range(0, len(activity_ids), _CHUNK):
            chunk = activity_ids[start : start + _CHUNK]
            marks = ", ".join("?" for _ in chunk)
            for found in self._db.execute(f"SELECT {columns} FROM {quote(obj.name)} WHERE Id IN ({marks})", chunk):
                links.update(str(v) for v in found if v)
        return links
