"""An in-memory CRM behind the Connector protocol, for unit tests of backup, apply and rollback.

A realistic fake, not a mock: it pages, keeps a recycle bin, bumps the fingerprint on every write,
refuses what the real API refuses, and has fault knobs. End-to-end tests use the sandbox instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

from crmsweep.connectors.salesforce_vocabulary import SALESFORCE_VOCABULARY
from crmsweep.errors import LimitExceeded, RetriableError
from crmsweep.model import (
    ApiUsage,
    Capabilities,
    CreateAttempt,
    FieldKind,
    FieldSpec,
    Record,
    WriteResult,
)

# The fake speaks Salesforce's field names, so passes and apply see the shapes they will see live.
FAKE_VOCABULARY = replace(
    SALESFORCE_VOCABULARY,
    provider="fake",
    label_fields={"Contact": ("Name", "Email"), "Lead": ("Name", "Email"), "User": ("Name", "Username")},
    never_touch_objects=("Contract", "Invoice"),
    audit_fields=("LastModifiedDate", "SystemModstamp"),
    short_id_length=None,  # test ids are made up, not Salesforce's checksummed 15/18-character ids
)

FAKE_CAPABILITIES = Capabilities(
    supports_undelete=True,
    max_batch_write=200,
    max_query_page=2000,
    max_ids_per_read=300,
    has_reports_api=False,
    isolated_write_objects=("User",),
)

AUDIT = ("CreatedDate", "LastModifiedDate", "SystemModstamp")


def spec(name: str, kind: FieldKind = FieldKind.STRING, *, writable: bool = True) -> FieldSpec:
    return FieldSpec(name=name, kind=kind, provider_type=kind.value, createable=writable, updateable=writable)


def standard_fields(*extra: FieldSpec, deletable: bool = True) -> list[FieldSpec]:
    """Id, the deleted flag (for deletable objects), the audit fields, then `extra`."""
    head = [spec("Id", writable=False)]
    if deletable:
        head.append(spec("IsDeleted", FieldKind.BOOL, writable=False))
    audit = [spec(name, FieldKind.DATETIME, writable=False) for name in AUDIT]
    return head + list(extra) + audit


class FakeConnector:
    connection_name = "fake"
    provider = "fake"
    capabilities = FAKE_CAPABILITIES
    vocabulary = FAKE_VOCABULARY

    def __init__(
        self,
        fields: dict[str, list[FieldSpec]],
        records: dict[str, list[Record]],
        *,
        org_id: str = "00DFAKE000000000AA",
        page_size: int = 2000,
    ) -> None:
        self._fields = fields
        self._rows: dict[str, dict[str, Record]] = {
            obj: {r["Id"]: {**{f.name: None for f in fields[obj]}, **r} for r in rows} for obj, rows in records.items()
        }
        for obj in fields:
            self._rows.setdefault(obj, {})
            for row in self._rows[obj].values():
                if any(f.name == "IsDeleted" for f in fields[obj]) and row.get("IsDeleted") is None:
                    row["IsDeleted"] = False
        self._org_id = org_id
        self.page_size = page_size
        self.calls = 0
        self._clock = itertools.count(1)
        self._ids = itertools.count(1)
        # Fault knobs.
        self.fail_ids: dict[str, str] = {}  # record id -> per-record error code, on every write
        self.limit_after_calls: int | None = None  # LimitExceeded once calls exceed this
        self.transient_failures = 0  # the next N calls raise RetriableError
        self.writes: list[tuple[str, str, list[str]]] = []
        self.created_keys: dict[str, tuple[str, str]] = {}  # idempotency key -> (object, id)
        self.running_user_id: str | None = None  # (op, object, ids) of every write call

    # --- helpers -------------------------------------------------------------------------------

    def _call(self) -> None:
        self.calls += 1
        if self.limit_after_calls is not None and self.calls > self.limit_after_calls:
            raise LimitExceeded("TotalRequests Limit exceeded.", status=403, code="REQUEST_LIMIT_EXCEEDED")
        if self.transient_failures > 0:
            self.transient_failures -= 1
            raise RetriableError("503 Service Unavailable", status=503)

    def _stamp(self) -> str:
        tick = next(self._clock)
        return f"2030-01-01T00:00:{tick // 1000 % 60:02d}.{tick % 1000:03d}Z"

    def _touch(self, row: Record) -> None:
        stamp = self._stamp()
        row["SystemModstamp"] = stamp
        row["LastModifiedDate"] = stamp

    def _deletable(self, obj: str) -> bool:
        return any(f.name == "IsDeleted" for f in self._fields[obj])

    def row(self, obj: str, record_id: str) -> Record:
        """A copy of the raw stored row (deleted or not), for assertions."""
        return dict(self._rows[obj][record_id])

    def all_rows(self, obj: str) -> dict[str, Record]:
        return {rid: dict(r) for rid, r in self._rows[obj].items()}

    def touch_behind_our_back(self, obj: str, record_id: str, **values: Any) -> None:
        """Someone else edits the record: the fingerprint moves."""
        self._rows[obj][record_id].update(values)
        self._touch(self._rows[obj][record_id])

    # --- Connector protocol ----------------------------------------------------------------------

    def org_id(self) -> str:
        return self._org_id

    def api_version(self) -> str:
        return "59.0"

    def current_user_id(self) -> str | None:
        return self.running_user_id

    def describe(self, object_name: str) -> dict[str, Any]:
        self._call()
        return {"name": object_name, "fields": [f.to_dict() for f in self._fields[object_name]]}

    def fields(self, object_name: str) -> list[FieldSpec]:
        if object_name not in self._fields:
            raise KeyError(object_name)
        return list(self._fields[object_name])

    def count(self, object_name: str, *, where: str | None = None) -> int:
        self._call()
        return sum(1 for r in self._rows[object_name].values() if not r.get("IsDeleted"))

    def iter_pages(
        self,
        object_name: str,
        fields: Sequence[str],
        *,
        where: str | None = None,
        include_deleted: bool = False,
    ) -> Iterator[list[Record]]:
        if where is not None:
            raise NotImplementedError("the fake connector does not filter")
        rows = [r for r in self._rows[object_name].values() if include_deleted or not r.get("IsDeleted")]
        self._call()
        if not rows:
            yield []
            return
        for start in range(0, len(rows), self.page_size):
            if start:
                self._call()
            yield [{f: r.get(f) for f in fields} for r in rows[start : start + self.page_size]]

    def read(
        self, object_name: str, ids: Sequence[str], fields: Sequence[str], *, include_deleted: bool = True
    ) -> dict[str, Record]:
        self._call()
        out: dict[str, Record] = {}
        for rid in ids:
            row = self._rows[object_name].get(rid)
            if row is None or (row.get("IsDeleted") and not include_deleted):
                continue
            out[rid] = {f: row.get(f) for f in fields}
        return out

    def read_related(
        self, object_name: str, field: str, values: Sequence[str], fields: Sequence[str]
    ) -> list[Record]:
        self._call()
        wanted = set(values)
        columns = list(dict.fromkeys(["Id", *fields]))
        return [
            {f: row.get(f) for f in columns}
            for row in self._rows.get(object_name, {}).values()
            if not row.get("IsDeleted") and row.get(field) in wanted
        ]

    def _check_batch(self, n: int) -> None:
        if n > self.capabilities.max_batch_write:
            raise ValueError(f"at most {self.capabilities.max_batch_write} records per call, got {n}")

    def delete(self, object_name: str, ids: Sequence[str]) -> list[WriteResult]:
        self._check_batch(len(ids))
        self._call()
        self.writes.append(("delete", object_name, list(ids)))
        results = []
        for rid in ids:
            row = self._rows[object_name].get(rid)
            if rid in self.fail_ids:
                results.append(WriteResult(rid, False, self.fail_ids[rid], "injected failure"))
            elif row is None:
                results.append(WriteResult(rid, False, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"))
            elif not self._deletable(object_name):
                results.append(WriteResult(rid, False, "ENTITY_IS_NOT_DELETABLE", "entity type cannot be deleted"))
            elif row.get("IsDeleted"):
                results.append(WriteResult(rid, False, "ENTITY_IS_DELETED", "entity is deleted"))
            else:
                row["IsDeleted"] = True
                self._touch(row)
                results.append(WriteResult(rid, True))
        return results

    def undelete(self, object_name: str, ids: Sequence[str]) -> list[WriteResult]:
        self._check_batch(len(ids))
        self._call()
        self.writes.append(("undelete", object_name, list(ids)))
        results = []
        for rid in ids:
            row = self._rows[object_name].get(rid)
            if rid in self.fail_ids:
                results.append(WriteResult(rid, False, self.fail_ids[rid], "injected failure"))
            elif row is None or not row.get("IsDeleted"):
                results.append(WriteResult(rid, False, "UNDELETE_FAILED", "Entity is not in the recycle bin"))
            else:
                row["IsDeleted"] = False
                self._touch(row)
                results.append(WriteResult(rid, True))
        return results

    def update(self, object_name: str, records: Sequence[Record]) -> list[WriteResult]:
        self._check_batch(len(records))
        self._call()
        self.writes.append(("update", object_name, [str(r["Id"]) for r in records]))
        writable = {f.name for f in self._fields[object_name] if f.updateable}
        results = []
        for rec in records:
            rid = str(rec["Id"])
            row = self._rows[object_name].get(rid)
            bad = [k for k in rec if k != "Id" and k not in writable]
            if rid in self.fail_ids:
                results.append(WriteResult(rid, False, self.fail_ids[rid], "injected failure"))
            elif row is None:
                results.append(WriteResult(rid, False, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"))
            elif row.get("IsDeleted"):
                results.append(WriteResult(rid, False, "ENTITY_IS_DELETED", "entity is deleted"))
            elif bad:
                results.append(WriteResult(rid, False, "INVALID_FIELD_FOR_INSERT_UPDATE", f"not writable: {bad}"))
            else:
                row.update({k: v for k, v in rec.items() if k != "Id"})
                self._touch(row)
                results.append(WriteResult(rid, True))
        return results

    def create(
        self, object_name: str, records: Sequence[Record], *, keys: Sequence[str] | None = None
    ) -> list[WriteResult]:
        self._check_batch(len(records))
        self._call()
        new_ids = []
        results = []
        for rec in records:
            rid = f"NEW{next(self._ids):015d}"
            row = {**{f.name: None for f in self._fields[object_name]}, **rec, "Id": rid}
            if self._deletable(object_name):
                row["IsDeleted"] = False
            self._touch(row)
            row["CreatedDate"] = row["SystemModstamp"]
            self._rows[object_name][rid] = row
            new_ids.append(rid)
            results.append(WriteResult(rid, True))
        # Like a CRM that holds the key on the record (a property), where find_created looks for it.
        for rid, key in zip(new_ids, keys or (), strict=False):
            self.created_keys[key] = (object_name, rid)
        self.writes.append(("create", object_name, new_ids))
        return results

    def find_created(self, object_name: str, attempts: Sequence[CreateAttempt]) -> dict[str, list[Record]]:
        self._call()
        found: dict[str, list[Record]] = {}
        for attempt in attempts:
            held = self.created_keys.get(attempt.key)
            row = self._rows[object_name].get(held[1]) if held and held[0] == object_name else None
            found[attempt.key] = [] if row is None else [{f: row.get(f) for f in ["Id", *attempt.values]}]
        return found

    def api_usage(self) -> ApiUsage:
        return ApiUsage(calls=self.calls)

    def close(self) -> None:
        pass
