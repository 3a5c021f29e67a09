"""The sandbox's SQLite state, for any provider: tables, metadata, id sequences, API usage, the recycle bin.

One connection per process, guarded by a lock: the HTTP server is multi-threaded and SQLite
connections are not safe to share without one. WAL mode and IMMEDIATE write transactions let
several processes use one state folder at once (each waits its turn for writes).

The recycle bin is generic: a deleted or archived row stays in its table with the provider's flag
column set (Salesforce `IsDeleted`, HubSpot `archived`) and, in the hidden `BIN_COLUMN`, the id of
the record whose delete put it there, so that restoring that record brings back exactly the rows
its delete took (a cascade) and no others. Every table's key column is `Id` (SQLite names are
case-insensitive, so a provider's `id` is the same column).

A provider adds its own writes in a subclass (see `salesforce_store.py`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

DB_NAME = "org.sqlite3"
BIN_COLUMN = "_deleted_with"  # which delete (its root record id) put this row in the recycle bin
CHUNK = 500  # host parameters per IN list, well under SQLite's limit
_CORE_TABLES = ("_sandbox_meta", "_sandbox_sequence")


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def utc_now() -> datetime:
    return datetime.now(UTC)


def chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


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

    # --- tables ---------------------------------------------------------------------------------

    def create_core_tables(self) -> None:
        with self.transaction():
            self._db.execute("CREATE TABLE IF NOT EXISTS _sandbox_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS _sandbox_sequence (prefix TEXT PRIMARY KEY, next INTEGER NOT NULL)"
            )

    def ensure_table(
        self, table: str, columns: Sequence[tuple[str, str]], indexed: Sequence[str] = ()
    ) -> set[str]:
        """Create `table` (`columns`: (name, SQL type), one of them the `Id` key) with the bin
        column, add the columns a state folder made by an older version lacks, and index `indexed`.
        Returns the names of the columns added to an existing table. Call inside a transaction."""
        wanted = [*columns, (BIN_COLUMN, "TEXT")]
        definitions = [f"{quote(name)} {sql_type}" + (" PRIMARY KEY" if name.lower() == "id" else "")
                       for name, sql_type in wanted]
        self._db.execute(f"CREATE TABLE IF NOT EXISTS {quote(table)} ({', '.join(definitions)})")
        have = {r[1] for r in self._db.execute(f"PRAGMA table_info({quote(table)})")}
        missing = [(name, sql_type) for name, sql_type in wanted if name not in have]
        for name, sql_type in missing:
            self._db.execute(f"ALTER TABLE {quote(table)} ADD COLUMN {quote(name)} {sql_type}")
        for column in (*indexed, BIN_COLUMN):  # after the columns they index exist
            self._db.execute(
                f"CREATE INDEX IF NOT EXISTS {quote(f'ix_{table}_{column}')} ON {quote(table)} ({quote(column)})"
            )
        return {name for name, _ in missing}

    def drop_tables(self, tables: Sequence[str]) -> None:
        """Drop the provider's `tables` and the core's own: the state starts from nothing."""
        with self.transaction():
            for table in (*tables, *_CORE_TABLES):
                self._db.execute(f"DROP TABLE IF EXISTS {quote(table)}")
        self._meta.clear()

    # --- metadata -------------------------------------------------------------------------------

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
            self.set_api_used(used + 1)
            return used + 1

    def set_api_used(self, used: int) -> None:
        """Set the day's count of answered calls: a test spends the allowance so without making the calls."""
        with self.transaction() as db:
            db.execute(
                "INSERT INTO _sandbox_meta (key, value) VALUES ('api_used', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (str(used),),
            )

    def api_used(self) -> int:
        with self.lock:
            try:
                row = self._db.execute("SELECT value FROM _sandbox_meta WHERE key = 'api_used'").fetchone()
            except sqlite3.OperationalError:  # not created yet
                return 0
        return int(row[0]) if row else 0

    def reset_api_usage(self) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM _sandbox_meta WHERE key = 'api_used'")

    # --- reads ----------------------------------------------------------------------------------

    def fetch(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        with self.lock:
            return self._db.execute(sql, tuple(params)).fetchall()

    def get_row(self, table: str, record_id: str) -> dict[str, Any] | None:
        """The stored row (recycle-bin rows included), by column name."""
        with self.lock:
            cursor = self._db.execute(f"SELECT * FROM {quote(table)} WHERE Id = ?", (record_id,))
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

    # --- writes (call inside `transaction()`) ---------------------------------------------------

    def next_numbers(self, prefix: str, count: int) -> range:
        """The next `count` numbers of sequence `prefix`, never handed out twice, even across processes."""
        row = self._db.execute("SELECT next FROM _sandbox_sequence WHERE prefix = ?", (prefix,)).fetchone()
        start = int(row[0]) if row else 1
        self.set_sequences({prefix: start + count})
        return range(start, start + count)

    def set_sequences(self, next_numbers: Mapping[str, int]) -> None:
        """Where each sequence continues."""
        self._db.executemany(
            "INSERT INTO _sandbox_sequence (prefix, next) VALUES (?, ?) "
            "ON CONFLICT(prefix) DO UPDATE SET next = excluded.next",
            list(next_numbers.items()),
        )

    def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        names = ", ".join(quote(c) for c in columns)
        marks = ", ".join("?" for _ in columns)
        self._db.executemany(f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})", rows)

    def set_values(self, table: str, record_id: str, values: Mapping[str, object]) -> None:
        if values:
            sets = ", ".join(f"{quote(k)} = ?" for k in values)
            self._db.execute(f"UPDATE {quote(table)} SET {sets} WHERE Id = ?", (*values.values(), record_id))

    # --- recycle bin (call inside `transaction()`) ----------------------------------------------

    def bin(self, table: str, flag: str, root: str, rows: Mapping[str, Mapping[str, object]]) -> None:
        """Put `rows` (id -> the provider's own column values to set with it, e.g. a stamp) in the
        recycle bin as part of the delete of `root`: `flag` set to 1, the rows kept."""
        for record_id, values in rows.items():
            self.set_values(table, record_id, {**values, flag: 1, BIN_COLUMN: root})

    def binned_with(self, table: str, flag: str, root: str, columns: Sequence[str] = ("Id",)) -> list[tuple[Any, ...]]:
        """`columns` of the binned rows that restoring `root` brings back: `root` itself (whichever
        delete binned it) and exactly the rows its own delete took with it."""
        names = ", ".join(quote(c) for c in columns)
        return self._db.execute(
            f"SELECT {names} FROM {quote(table)} WHERE ({quote(BIN_COLUMN)} = ? OR Id = ?) AND {quote(flag)} = 1",
            (root, root),
        ).fetchall()

    def restore(self, table: str, flag: str, rows: Mapping[str, Mapping[str, object]]) -> None:
        """Take `rows` (id -> column values to set with it) out of the recycle bin."""
        for record_id, values in rows.items():
            self.set_values(table, record_id, {**values, flag: 0, BIN_COLUMN: None})

    def purge_binned(self, table: str, flag: str, root: str) -> None:
        """Empty from the recycle bin what restoring `root` would bring back (see `binned_with`): gone for
        good, as when a bin is emptied or ages its rows out."""
        self._db.execute(
            f"DELETE FROM {quote(table)} WHERE ({quote(BIN_COLUMN)} = ? OR Id = ?) AND {quote(flag)} = 1", (root, root)
        )

    def children(self, table: str, column: str, parent_ids: Sequence[str], flag: str | None,
                 columns: Sequence[str] = ("Id",)) -> list[tuple[Any, ...]]:
        """`columns` of the rows of `table` whose `column` points at one of `parent_ids` (live rows
        only when `flag` names the table's bin flag)."""
        names = ", ".join(quote(c) for c in columns)
        live = f" AND {quote(flag)} = 0" if flag else ""
        found: list[tuple[Any, ...]] = []
        for chunk in chunks(parent_ids):
            marks = ", ".join("?" for _ in chunk)
            found += self._db.execute(
                f"SELECT {names} FROM {quote(table)} WHERE {quote(column)} IN ({marks}){live}", list(chunk)
            ).fetchall()
        return found
