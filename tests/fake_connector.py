"""An in-memory CRM behind the Connector protocol, for unit tests of backup, apply and rollback.

A realistic fake, not a mock: it pages, keeps a recycle bin, bumps the fingerprint on every write,
refuses what the real API refuses, and has fault knobs. End-to-end tests use the sandbox instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType
from typing import Any

from crmsweep.connectors.base import AssociationsUnsupported, IncrementalUnsupported, RecordFilter, Scalar
from crmsweep.errors import LimitExceeded, RetriableError, UnknownObject
from crmsweep.model import (
    ApiAllowance,
    ApiUsage,
    Capabilities,
    CreateAttempt,
    DealLink,
    FieldKind,
    FieldSpec,
    ReadPlan,
    Record,
    Vocabulary,
    WriteResult,
)
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY

# The fake speaks Salesforce's field names, so passes and apply see the shapes they will see live.
FAKE_VOCABULARY = replace(
    SALESFORCE_VOCABULARY,
    provider="fake",
    label_fields={"Contact": ("Name", "Email"), "Lead": ("Name", "Email"), "User": ("Name", "Username")},
    never_touch_objects=("Contract", "Invoice"),
    audit_fields=("LastModifiedDate", "SystemModstamp"),
    short_id_length=None,  # test ids are made up, not Salesforce's checksummed 15/18-character ids
    concepts=(),  # the fake holds no custom field definitions (nor other concept objects)
)

FAKE_CAPABILITIES = Capabilities(
    supports_undelete=True,
    max_batch_write=200,
    max_query_page=2000,
    max_ids_per_read=300,
    has_reports_api=False,
    isolated_write_objects=("User",),
)

# A made-up CRM whose every name differs from Salesforce's: generic code that hard-codes a Salesforce
# name (Id, IsDeleted, SystemModstamp, Contact...) fails under it. Its people are `person`, its users
# `member`, its deals `bargain`, linked to people through `bargain_person` rows.
ACME_VOCABULARY = Vocabulary(
    provider="acme",
    id_field="uid",
    fingerprint_field="rev_at",
    deleted_field="trashed",
    created_field="born_at",
    owner_field="keeper",
    people_objects=("person",),
    last_activity_fields=("touched_at", "changed_at"),
    email_field="mail",
    user_object="member",
    user_active_field="enabled",
    user_last_login_field="seen_at",
    deal_object="bargain",
    deal_closed_field="sealed",
    deal_close_date_field="seal_day",
    deal_links=(DealLink(object="bargain_person", person_field="person_ref", deal_field="bargain_ref"),),
    label_fields=MappingProxyType({"person": ("full_name", "mail"), "member": ("full_name", "handle")}),
    never_touch_objects=("contract",),
    audit_fields=("changed_at", "rev_at"),
    default_backup_objects=("member", "person", "bargain", "bargain_person"),
)


def audit_names(vocabulary: Vocabulary) -> tuple[str, ...]:
    """The datetime fields the CRM stamps itself: created, then those rewritten on every write."""
    return (vocabulary.created_field, *vocabulary.audit_fields)


AUDIT = audit_names(FAKE_VOCABULARY)


def spec(name: str, kind: FieldKind = FieldKind.STRING, *, writable: bool = True) -> FieldSpec:
    return FieldSpec(name=name, kind=kind, provider_type=kind.value, createable=writable, updateable=writable)


def standard_fields(
    *extra: FieldSpec, deletable: bool = True, vocabulary: Vocabulary = FAKE_VOCABULARY
) -> list[FieldSpec]:
    """The id, the deleted flag (for deletable objects), `extra`, then the audit fields."""
    head = [spec(vocabulary.id_field, writable=False)]
    if deletable and vocabulary.deleted_field:
        head.append(spec(vocabulary.deleted_field, FieldKind.BOOL, writable=False))
    audit = [spec(name, FieldKind.DATETIME, writable=False) for name in audit_names(vocabulary)]
    return head + list(extra) + audit


class FakeConnector:
    connection_name = "fake"

    def __init__(
        self,
        fields: dict[str, list[FieldSpec]],
        records: dict[str, list[Record]],
        *,
        org_id: str = "00DFAKE000000000AA",
        page_size: int = 2000,
        vocabulary: Vocabulary = FAKE_VOCABULARY,
        capabilities: Capabilities = FAKE_CAPABILITIES,
    ) -> None:
        self.vocabulary = vocabulary
        self.capabilities = capabilities
        self.provider = vocabulary.provider
        self._id = vocabulary.id_field
        # Without a recycle bin the fake still keeps deleted rows, under a flag no reader is shown.
        self._deleted = vocabulary.deleted_field or "_deleted"
        self._fields = fields
        self._rows: dict[str, dict[str, Record]] = {
            obj: {r[self._id]: {**{f.name: None for f in fields[obj]}, **r} for r in rows}
            for obj, rows in records.items()
        }
        for obj in fields:
            self._rows.setdefault(obj, {})
            for row in self._rows[obj].values():
                if self._deletable(obj) and row.get(self._deleted) is None:
                    row[self._deleted] = False
        # What metadata_documents yields: name -> JSON document.
        self.documents: dict[str, Any] = {}
        # Associations (when capabilities.has_associations): (from object, to object) -> {(from id, to id)}.
        self.links: dict[tuple[str, str], set[tuple[str, str]]] = {}
        # A link's types, where it has some (read back as they were written); none: the default link.
        self.link_types: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
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
        for name in (self.vocabulary.fingerprint_field, *self.vocabulary.audit_fields):
            if name in row or name == self.vocabulary.fingerprint_field:
                row[name] = stamp

    def _deletable(self, obj: str) -> bool:
        return any(f.name == self._deleted for f in self._fields[obj]) or (
            self.vocabulary.deleted_field is None and obj in self._fields
        )

    def _is_deleted(self, row: Record) -> bool:
        return bool(row.get(self._deleted))

    def _shown(self, row: Record, fields: Sequence[str]) -> Record:
        return {f: row.get(f) for f in fields}

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

    def key_prefixes(self) -> dict[str, str]:
        self._call()
        return {}

    def describe(self, object_name: str) -> dict[str, Any]:
        self._call()
        return {"name": object_name, "fields": [f.to_dict() for f in self._fields[object_name]]}

    def fields(self, object_name: str) -> list[FieldSpec]:
        if object_name not in self._fields:
            raise UnknownObject(f"no object {object_name!r}")
        return list(self._fields[object_name])

    def count(
        self,
        object_name: str,
        *,
        since: str | None = None,
        ids: Sequence[str] | None = None,
        equals: Mapping[str, Scalar] | None = None,
        has_value: Sequence[str] = (),
        include_deleted: bool = False,
    ) -> int:
        flt = RecordFilter.of(since=since, ids=ids, equals=equals, has_value=has_value)
        self._call()
        rows = self._rows[object_name].values()
        return sum(1 for r in rows if not self._is_deleted(r) and flt.matches(r, self.vocabulary))

    def iter_pages(
        self,
        object_name: str,
        fields: Sequence[str],
        *,
        since: str | None = None,
        ids: Sequence[str] | None = None,
        equals: Mapping[str, Scalar] | None = None,
        has_value: Sequence[str] = (),
        include_deleted: bool = False,
    ) -> Iterator[list[Record]]:
        flt = RecordFilter.of(since=since, ids=ids, equals=equals, has_value=has_value)
        rows = [
            r for r in self._rows[object_name].values()
            if (include_deleted or not self._is_deleted(r)) and flt.matches(r, self.vocabulary)
        ]
        self._call()
        if not rows:
            yield []
            return
        for start in range(0, len(rows), self.page_size):
            if start:
                self._call()
            yield [self._shown(r, fields) for r in rows[start : start + self.page_size]]

    def read(
        self, object_name: str, ids: Sequence[str], fields: Sequence[str], *, include_deleted: bool = True
    ) -> dict[str, Record]:
        self._call()
        out: dict[str, Record] = {}
        for rid in ids:
            row = self._rows[object_name].get(rid)
            if row is None or (self._is_deleted(row) and not include_deleted):
                continue
            if self.vocabulary.deleted_field is None and self._is_deleted(row):
                continue  # without a recycle bin, a deleted record is gone
            out[rid] = self._shown(row, fields)
        return out

    def read_related(
        self, object_name: str, field: str, values: Sequence[str], fields: Sequence[str]
    ) -> list[Record]:
        self._call()
        wanted = set(values)
        columns = list(dict.fromkeys([self._id, *fields]))
        return [
            self._shown(row, columns)
            for row in self._rows.get(object_name, {}).values()
            if not self._is_deleted(row) and row.get(field) in wanted
        ]

    def read_associations(self, from_object: str, to_object: str, ids: Sequence[str]) -> dict[str, list[str]]:
        self._needs_associations()
        self._call()
        links = self.links.get((from_object, to_object), set())
        return {rid: sorted(to for frm, to in links if frm == rid) for rid in ids}

    def read_association_types(
        self, from_object: str, to_object: str, ids: Sequence[str]
    ) -> dict[str, dict[str, list[dict[str, Any]]]]:
        return {frm: {to: self.link_types.get((from_object, to_object, frm, to), []) for to in tos}
                for frm, tos in self.read_associations(from_object, to_object, ids).items()}

    def create_associations(
        self, from_object: str, to_object: str, pairs: Sequence[tuple[str, str]],
        types: Sequence[Sequence[Mapping[str, Any]]] | None = None,
    ) -> list[WriteResult]:
        self._needs_associations()
        self._check_batch(len(pairs))
        self._call()
        self.writes.append(("associate", f"{from_object}->{to_object}", [f"{a}->{b}" for a, b in pairs]))
        results = []
        for n, (frm, to) in enumerate(pairs):
            missing = [rid for obj, rid in ((from_object, frm), (to_object, to))
                       if rid not in self._rows.get(obj, {}) or self._is_deleted(self._rows[obj][rid])]
            if missing:
                results.append(WriteResult(frm, False, "NOT_FOUND", f"no live record {missing[0]}"))
            else:
                self.links.setdefault((from_object, to_object), set()).add((frm, to))
                if types and types[n]:
                    self.link_types[(from_object, to_object, frm, to)] = [dict(t) for t in types[n]]
                results.append(WriteResult(frm, True))
        return results

    def deleted_since(self, object_name: str, start: datetime) -> list[str]:
        # The fake's fingerprints are a counter, not times: it cannot say what was deleted since a moment.
        raise IncrementalUnsupported(f"the {self.provider} fake cannot back up incrementally")

    def derived_links(self, object_name: str) -> Mapping[str, tuple[str, ...]]:
        return {}

    def metadata_documents(self) -> Iterator[tuple[str, Any]]:
        yield from self.documents.items()

    def _needs_associations(self) -> None:
        if not self.capabilities.has_associations:
            raise AssociationsUnsupported(f"{self.provider} links records by fields, not associations")

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
            elif self._is_deleted(row):
                results.append(WriteResult(rid, False, "ENTITY_IS_DELETED", "entity is deleted"))
            else:
                row[self._deleted] = True
                self._touch(row)
                results.append(WriteResult(rid, True))
        return results

    def undelete(self, object_name: str, ids: Sequence[str]) -> list[WriteResult]:
        if not self.capabilities.supports_undelete:
            raise ValueError(f"{self.provider} has no undelete")
        self._check_batch(len(ids))
        self._call()
        self.writes.append(("undelete", object_name, list(ids)))
        results = []
        for rid in ids:
            row = self._rows[object_name].get(rid)
            if rid in self.fail_ids:
                results.append(WriteResult(rid, False, self.fail_ids[rid], "injected failure"))
            elif row is None or not self._is_deleted(row):
                results.append(WriteResult(rid, False, "UNDELETE_FAILED", "Entity is not in the recycle bin"))
            else:
                row[self._deleted] = False
                self._touch(row)
                results.append(WriteResult(rid, True))
        return results

    def update(self, object_name: str, records: Sequence[Record]) -> list[WriteResult]:
        self._check_batch(len(records))
        self._call()
        self.writes.append(("update", object_name, [str(r[self._id]) for r in records]))
        writable = {f.name for f in self._fields[object_name] if f.updateable}
        results = []
        for rec in records:
            rid = str(rec[self._id])
            row = self._rows[object_name].get(rid)
            bad = [k for k in rec if k != self._id and k not in writable]
            if rid in self.fail_ids:
                results.append(WriteResult(rid, False, self.fail_ids[rid], "injected failure"))
            elif row is None:
                results.append(WriteResult(rid, False, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id"))
            elif self._is_deleted(row):
                results.append(WriteResult(rid, False, "ENTITY_IS_DELETED", "entity is deleted"))
            elif bad:
                results.append(WriteResult(rid, False, "INVALID_FIELD_FOR_INSERT_UPDATE", f"not writable: {bad}"))
            else:
                row.update({k: v for k, v in rec.items() if k != self._id})
                self._touch(row)
                results.append(WriteResult(rid, True))
        return results

    def create(
        self, object_name: str, records: Sequence[Record], *, keys: Sequence[str] | None = None
    ) -> list[WriteResult]:
        self._check_batch(len(records))
        self._call()
        new_ids = []
        results: list[WriteResult] = []
        createable = {f.name for f in self._fields[object_name] if f.createable}
        for rec in records:
            # Like Salesforce: a create naming a field it may not write fails (INVALID_FIELD_FOR_INSERT_UPDATE).
            bad = sorted(set(rec) - createable)
            if bad:
                results.append(WriteResult(None, False, "INVALID_FIELD_FOR_INSERT_UPDATE", f"not createable: {bad}"))
                continue
            rid = f"NEW{next(self._ids):015d}"
            row = {**{f.name: None for f in self._fields[object_name]}, **rec, self._id: rid}
            if self._deletable(object_name):
                row[self._deleted] = False
            self._touch(row)
            row[self.vocabulary.created_field] = row[self.vocabulary.fingerprint_field]
            self._rows[object_name][rid] = row
            new_ids.append(rid)
            results.append(WriteResult(rid, True))
        # Like a CRM that holds the key on the record (a property), where find_created looks for it.
        for result, key in zip(results, keys or (), strict=False):
            if result.ok and result.id:
                self.created_keys[key] = (object_name, result.id)
        self.writes.append(("create", object_name, new_ids))
        return results

    def find_created(self, object_name: str, attempts: Sequence[CreateAttempt]) -> dict[str, list[Record]]:
        self._call()
        found: dict[str, list[Record]] = {}
        for attempt in attempts:
            held = self.created_keys.get(attempt.key)
            row = self._rows[object_name].get(held[1]) if held and held[0] == object_name else None
            found[attempt.key] = [] if row is None else [{f: row.get(f) for f in [self._id, *attempt.values]}]
        return found

    def metadata_calls(self) -> int:
        return 0  # the fake's documents cost no call

    def read_plan(self, object_name: str) -> ReadPlan:
        # Counted from what it holds, for free: the fake meters only the calls a real CRM would answer.
        rows = len(self._rows.get(object_name, {}))
        return ReadPlan(object=object_name, rows=rows, method="fake", calls=max(1, -(-rows // self.page_size)))

    def allowance(self) -> ApiAllowance | None:
        return None  # the fake has no daily allowance

    def api_usage(self) -> ApiUsage:
        return ApiUsage(calls=self.calls)

    def close(self) -> None:
        pass
