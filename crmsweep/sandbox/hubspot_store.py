"""The HubSpot portal's state on the core `Store`: one table per CRM object type (properties as
JSON), the associations between records, and the portal's other documents (property definitions
and groups, owners, users, lists, marketing emails, validation rules).

Archive uses the core's recycle bin (`Store.bin`, flag column `archived`): the row stays, hidden
from the default list, as HubSpot's recycle bin keeps it; only a GDPR delete removes a row.
Metadata, id sequences and the daily API usage are the core's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crmsweep.sandbox.hubspot_schema import OBJECT_TYPES
from crmsweep.sandbox.store import CHUNK, Store, quote

ARCHIVED = "archived"  # the recycle-bin flag column of every object table
COLUMNS = ("Id", ARCHIVED, "archived_at", "created_at", "updated_at", "props")
_COLUMN_TYPES = (("Id", "INTEGER"), (ARCHIVED, "INTEGER NOT NULL DEFAULT 0"), ("archived_at", "TEXT"),
                 ("created_at", "TEXT"), ("updated_at", "TEXT"), ("props", "TEXT"))
SELECT_COLUMNS = ", ".join(f"o.{quote(c)}" for c in COLUMNS)
_DDL = (
    "CREATE TABLE IF NOT EXISTS hs_association (from_type TEXT NOT NULL, from_id INTEGER NOT NULL, "
    "to_type TEXT NOT NULL, to_id INTEGER NOT NULL, type_id INTEGER NOT NULL, category TEXT NOT NULL, "
    "PRIMARY KEY (from_type, from_id, to_type, to_id, type_id))",
    "CREATE INDEX IF NOT EXISTS ix_hs_association_to ON hs_association (to_type, to_id)",
    "CREATE TABLE IF NOT EXISTS hs_doc (kind TEXT NOT NULL, key TEXT NOT NULL, seq INTEGER NOT NULL, "
    "archived INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL, PRIMARY KEY (kind, key))",
    "CREATE INDEX IF NOT EXISTS ix_hs_doc_seq ON hs_doc (kind, seq)",
)
OWN_TABLES = ("hs_association", "hs_doc")


def table(type_name: str) -> str:
    """The table holding one object type's records."""
    return f"hs_{type_name}"


@dataclass
class ObjectRow:
    type: str
    id: int
    archived: bool
    archived_at: str | None
    created_at: str
    updated_at: str
    properties: dict[str, str | None]

    @classmethod
    def from_sql(cls, type_name: str, row: Sequence[Any]) -> ObjectRow:
        return cls(type_name, int(row[0]), bool(row[1]), row[2], row[3], row[4], json.loads(row[5]))


@dataclass
class Doc:
    key: str
    archived: bool
    data: dict[str, Any]


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class HubSpotStore(Store):
    def create_schema(self) -> None:
        self.create_core_tables()
        with self.transaction() as db:
            for name in OBJECT_TYPES:
                self.ensure_table(table(name), _COLUMN_TYPES, (ARCHIVED,))
            for statement in _DDL:
                db.execute(statement)

    def drop_everything(self) -> None:
        self.drop_tables([*(table(n) for n in OBJECT_TYPES), *OWN_TABLES])

    @property
    def portal_id(self) -> str:
        return self.meta("portal_id") or ""

    # --- objects --------------------------------------------------------------------------------

    def insert_objects(self, rows: Iterable[ObjectRow]) -> None:
        """Bulk insert (seeder, create); call inside a transaction."""
        by_type: dict[str, list[tuple[object, ...]]] = {}
        for r in rows:
            by_type.setdefault(r.type, []).append(
                (r.id, int(r.archived), r.archived_at, r.created_at, r.updated_at, _json(r.properties))
            )
        for type_name, values in by_type.items():
            self.insert(table(type_name), COLUMNS, values)

    def save_object(self, row: ObjectRow) -> None:
        """Write back a record's properties and stamps; call inside a transaction."""
        self.set_values(table(row.type), str(row.id), {"updated_at": row.updated_at, "props": _json(row.properties)})

    def archive_object(self, row: ObjectRow, stamp: str) -> None:
        """Into the recycle bin; call inside a transaction."""
        self.bin(table(row.type), ARCHIVED, str(row.id), {str(row.id): {"archived_at": stamp, "updated_at": stamp}})
        row.archived, row.archived_at, row.updated_at = True, stamp, stamp

    def get_objects(self, type_name: str, ids: Sequence[int]) -> dict[int, ObjectRow]:
        out: dict[int, ObjectRow] = {}
        for start in range(0, len(ids), CHUNK):
            chunk = list(ids[start : start + CHUNK])
            marks = ",".join("?" * len(chunk))
            for row in self.fetch(f"SELECT {SELECT_COLUMNS} FROM {quote(table(type_name))} o WHERE o.Id IN ({marks})",
                                  chunk):
                found = ObjectRow.from_sql(type_name, row)
                out[found.id] = found
        return out

    def get_object(self, type_name: str, record_id: int) -> ObjectRow | None:
        return self.get_objects(type_name, [record_id]).get(record_id)

    def find_by(self, type_name: str, name: str, value: str) -> ObjectRow | None:
        """The first record whose property `name` equals `value` (case-insensitive), live ones first."""
        found = self.fetch(
            f"SELECT {SELECT_COLUMNS} FROM {quote(table(type_name))} o "
            f"WHERE lower(json_extract(o.props, ?)) = ? ORDER BY o.{ARCHIVED}, o.Id LIMIT 1",
            (f'$."{name}"', value.lower()),
        )
        return ObjectRow.from_sql(type_name, found[0]) if found else None

    def list_page(self, type_name: str, *, archived: bool, after: int, limit: int) -> list[ObjectRow]:
        """Up to `limit` records with id >= `after`, by id (keyset: a page costs the same at any depth)."""
        return [ObjectRow.from_sql(type_name, r) for r in self.fetch(
            f"SELECT {SELECT_COLUMNS} FROM {quote(table(type_name))} o WHERE o.{ARCHIVED} = ? AND o.Id >= ? "
            "ORDER BY o.Id LIMIT ?",
            (int(archived), after, limit),
        )]

    def delete_object(self, type_name: str, record_id: int) -> None:
        """Remove a record and its associations for good (GDPR delete); call inside a transaction."""
        self._db.execute(f"DELETE FROM {quote(table(type_name))} WHERE Id = ?", (record_id,))
        self._db.execute(
            "DELETE FROM hs_association WHERE (from_type = ? AND from_id = ?) OR (to_type = ? AND to_id = ?)",
            (type_name, record_id, type_name, record_id),
        )

    # --- associations ---------------------------------------------------------------------------

    def associations(
        self, from_type: str, from_ids: Sequence[int], to_type: str
    ) -> dict[int, list[tuple[int, int, str]]]:
        """Live links (neither end archived) by source id: (to_id, type_id, category), ordered."""
        out: dict[int, list[tuple[int, int, str]]] = {}
        for start in range(0, len(from_ids), CHUNK):
            chunk = list(from_ids[start : start + CHUNK])
            marks = ",".join("?" * len(chunk))
            rows = self.fetch(
                "SELECT a.from_id, a.to_id, a.type_id, a.category FROM hs_association a "
                f"JOIN {quote(table(to_type))} t ON t.Id = a.to_id AND t.{ARCHIVED} = 0 "
                f"JOIN {quote(table(from_type))} f ON f.Id = a.from_id AND f.{ARCHIVED} = 0 "
                f"WHERE a.from_type = ? AND a.to_type = ? AND a.from_id IN ({marks}) "
                "ORDER BY a.from_id, a.to_id, a.type_id",
                (from_type, to_type, *chunk),
            )
            for from_id, to_id, type_id, category in rows:
                out.setdefault(int(from_id), []).append((int(to_id), int(type_id), str(category)))
        return out

    def add_associations(self, rows: Iterable[tuple[str, int, str, int, int, str]]) -> None:
        """(from_type, from_id, to_type, to_id, type_id, category); call inside a transaction."""
        self._db.executemany(
            "INSERT OR IGNORE INTO hs_association (from_type, from_id, to_type, to_id, type_id, category) "
            "VALUES (?, ?, ?, ?, ?, ?)", list(rows),
        )

    def remove_associations(self, from_type: str, from_id: int, to_type: str, to_id: int,
                            type_ids: Sequence[int] | None = None) -> None:
        """The link in both directions (all its types, or `type_ids` and their inverses, which the
        caller includes); call inside a transaction."""
        for a_type, a_id, b_type, b_id in ((from_type, from_id, to_type, to_id), (to_type, to_id, from_type, from_id)):
            sql = "DELETE FROM hs_association WHERE from_type = ? AND from_id = ? AND to_type = ? AND to_id = ?"
            params: list[object] = [a_type, a_id, b_type, b_id]
            if type_ids is not None:
                sql += f" AND type_id IN ({','.join('?' * len(type_ids)) or 'NULL'})"
                params += list(type_ids)
            self._db.execute(sql, params)

    # --- documents ------------------------------------------------------------------------------

    def put_doc(self, kind: str, key: str, data: Mapping[str, Any], *, archived: bool = False) -> None:
        """Insert or replace; a new key goes last in `kind`'s order. Call inside a transaction."""
        text = _json(data)
        updated = self._db.execute(
            "UPDATE hs_doc SET data = ?, archived = ? WHERE kind = ? AND key = ?", (text, int(archived), kind, key)
        ).rowcount
        if not updated:
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM hs_doc WHERE kind = ?", (kind,)).fetchone()[0]
            self._db.execute("INSERT INTO hs_doc (kind, key, seq, archived, data) VALUES (?, ?, ?, ?, ?)",
                             (kind, key, seq, int(archived), text))

    def doc(self, kind: str, key: str) -> Doc | None:
        rows = self.fetch("SELECT key, archived, data FROM hs_doc WHERE kind = ? AND key = ?", (kind, key))
        return Doc(rows[0][0], bool(rows[0][1]), json.loads(rows[0][2])) if rows else None

    def docs(self, kind: str, *, archived: bool | None = None) -> list[Doc]:
        sql = "SELECT key, archived, data FROM hs_doc WHERE kind = ?"
        if archived is not None:
            sql += f" AND archived = {int(archived)}"
        return [Doc(k, bool(a), json.loads(d)) for k, a, d in self.fetch(sql + " ORDER BY seq", (kind,))]

    def delete_docs(self, kind: str) -> None:
        """Every document of `kind`; call inside a transaction."""
        self._db.execute("DELETE FROM hs_doc WHERE kind = ?", (kind,))
