"""HubSpot's marketing assets as objects a backup keeps and a plan writes: `lists`, `list_filters`,
`marketing_emails` and `campaigns`. Driven by `HubSpotConnector`, which hands these names here.

None of them is a CRM object: each has its own API and shape, made flat here (fixed fields, like
owners). What each write is:
- lists: delete = `DELETE /crm/v3/lists/{id}` (restorable for 90 days), undelete =
  `PUT /crm/v3/lists/{id}/restore`, the id kept. Search never shows a deleted list; `GET` by id does,
  with its `deletedAt` (UNCONFIRMED: the field is in the documented shape), which is how a drift check
  and a rollback see one in the recycle bin (`archived` true);
- marketing emails: delete = `DELETE /marketing/v3/emails/{id}` (archives), undelete =
  `PATCH … {"archived": false}` (the field is in EmailUpdateRequest; that it un-archives keeping the id
  is UNCONFIRMED);
- campaigns: update = `PATCH /marketing/v3/campaigns/{guid}` with `{"properties": …}` ("" clears);
  not wrapped by hubspot-api-client 12, so sent through its ApiClient as a path;
- list_filters: read only, one row per property a list's filters test (from `includeFilters`), the
  evidence the unused-fields pass weighs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmsweep.connectors.base import RecordFilter
from crmsweep.connectors.hubspot_records import next_after
from crmsweep.errors import BadInput, ConnectorError
from crmsweep.model import FieldKind, FieldSpec, Record, WriteResult, canonical_datetime

if TYPE_CHECKING:
    from crmsweep.connectors.hubspot import HubSpotConnector
    from crmsweep.connectors.hubspot_client import Answer

LISTS, LIST_FILTERS, EMAILS, CAMPAIGNS = "lists", "list_filters", "marketing_emails", "campaigns"
PAGE = 100
_S, _B, _T, _D, _N = FieldKind.STRING, FieldKind.BOOL, FieldKind.DATETIME, FieldKind.DATE, FieldKind.FLOAT


def _spec(name: str, kind: FieldKind = _S, *, writable: bool = False) -> FieldSpec:
    return FieldSpec(name=name, kind=kind, provider_type=kind.value, nillable=name != "id", updateable=writable)


ASSET_FIELDS: dict[str, tuple[FieldSpec, ...]] = {
    LISTS: tuple(_spec(n, k) for n, k in (
        ("id", _S), ("name", _S), ("processingType", _S), ("objectTypeId", _S), ("createdAt", _T),
        ("updatedAt", _T), ("filtersUpdatedAt", _T), ("size", _N), ("archived", _B), ("deletedAt", _T))),
    LIST_FILTERS: tuple(_spec(n) for n in ("id", "object", "field", "by_type", "by_id", "by_name")),
    EMAILS: tuple(_spec(n, k) for n, k in (
        ("id", _S), ("name", _S), ("subject", _S), ("state", _S), ("type", _S), ("isPublished", _B),
        ("publishedAt", _T), ("createdAt", _T), ("updatedAt", _T), ("archived", _B), ("campaign", _S),
        ("list_ids", _S))),
    CAMPAIGNS: (_spec("id"), _spec("hs_name", writable=True), _spec("hs_start_date", _D, writable=True),
                _spec("hs_end_date", _D, writable=True), _spec("hs_campaign_status", writable=True),
                _spec("createdAt", _T), _spec("updatedAt", _T)),
}
ASSET_OBJECTS = frozenset(ASSET_FIELDS)
CAMPAIGN_PROPERTIES = tuple(f.name for f in ASSET_FIELDS[CAMPAIGNS] if f.updateable)
# The CRM object a list holds, by objectTypeId (the names snapshots use).
_OBJECT_OF_TYPE = {"0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-5": "tickets"}
_IDS = {LISTS: re.compile(r"[0-9]{1,20}"), EMAILS: re.compile(r"[0-9]{1,20}"),
        CAMPAIGNS: re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")}


def _when(value: Any) -> str | None:
    return canonical_datetime(str(value)) if value not in (None, "") else None


def list_record(raw: Mapping[str, Any]) -> Record:
    extra = raw.get("additionalProperties")
    size = raw.get("size", extra.get("hs_list_size") if isinstance(extra, Mapping) else None)
    return {
        "id": str(raw.get("listId")), "name": raw.get("name"), "processingType": raw.get("processingType"),
        "objectTypeId": raw.get("objectTypeId"), "createdAt": _when(raw.get("createdAt")),
        "updatedAt": _when(raw.get("updatedAt")), "filtersUpdatedAt": _when(raw.get("filtersUpdatedAt")),
        "size": float(size) if size not in (None, "") else None, "archived": bool(raw.get("deletedAt")),
        "deletedAt": _when(raw.get("deletedAt")),
    }


def filter_rows(raw: Mapping[str, Any]) -> list[Record]:
    """One row per (list, property) its filter branch tests, nested branches included."""
    list_id = str(raw.get("listId"))
    type_id = str(raw.get("objectTypeId") or "")
    found: dict[str, None] = {}

    def walk(branch: Any) -> None:
        if not isinstance(branch, Mapping):
            return
        for item in branch.get("filters") or ():
            if isinstance(item, Mapping) and item.get("property"):
                found.setdefault(str(item["property"]))
        for child in branch.get("filterBranches") or ():
            walk(child)

    walk(raw.get("filterBranch"))
    target = _OBJECT_OF_TYPE.get(type_id, type_id)
    return [{"id": f"list:{list_id}:{target}.{name}", "object": target, "field": name, "by_type": "list",
             "by_id": list_id, "by_name": raw.get("name")} for name in found]


def email_record(raw: Mapping[str, Any]) -> Record:
    to = raw.get("to") if isinstance(raw.get("to"), Mapping) else {}
    lists = (to or {}).get("contactIlsLists") if isinstance((to or {}).get("contactIlsLists"), Mapping) else {}
    # An excluded list is used as much as an included one: deleted, the email sends to those it left out.
    named = [*((lists or {}).get("include") or ()), *((lists or {}).get("exclude") or ())]
    used = sorted({str(i) for i in named}, key=lambda i: (len(i), i))
    return {
        "id": str(raw.get("id")), "name": raw.get("name"), "subject": raw.get("subject"), "state": raw.get("state"),
        "type": raw.get("type"), "isPublished": bool(raw.get("isPublished", False)),
        "publishedAt": _when(raw.get("publishedAt")), "createdAt": _when(raw.get("createdAt")),
        "updatedAt": _when(raw.get("updatedAt")), "archived": bool(raw.get("archived", False)),
        "campaign": raw.get("campaign"), "list_ids": json.dumps(used),
    }


def campaign_record(raw: Mapping[str, Any]) -> Record:
    properties = raw.get("properties") if isinstance(raw.get("properties"), Mapping) else {}
    record: Record = {"id": str(raw.get("id"))}
    for name in CAMPAIGN_PROPERTIES:
        value = (properties or {}).get(name)
        record[name] = None if value in (None, "") else value
    record["createdAt"] = _when(raw.get("createdAt"))
    record["updatedAt"] = _when(raw.get("updatedAt"))
    return record


def _results(data: Any, key: str = "results") -> list[Mapping[str, Any]]:
    rows = data.get(key) if isinstance(data, Mapping) else None
    return [r for r in rows if isinstance(r, Mapping)] if isinstance(rows, list) else []


def _only(record: Record, fields: Sequence[str]) -> Record:
    keep = {"id", *fields}
    return {k: v for k, v in record.items() if k in keep}


class HubSpotAssets:
    """The asset objects' reads and writes, through the connector's one call path (retry, pacing,
    failure mapping)."""

    def __init__(self, connector: HubSpotConnector) -> None:
        self._connector = connector
        self._client = connector._client

    # -- shape

    def describe(self, name: str) -> dict[str, Any]:
        return {"objectType": name, "fields": [f.to_dict() for f in ASSET_FIELDS[name]]}

    def fields(self, name: str) -> list[FieldSpec]:
        return list(ASSET_FIELDS[name])

    def _id(self, name: str, value: Any) -> str:
        pattern = _IDS.get(name)
        if pattern is None:
            raise BadInput(f"{name} rows are derived by a backup: they are not read or written by id")
        if not isinstance(value, str | int) or isinstance(value, bool) or not pattern.fullmatch(str(value)):
            raise BadInput(f"{str(value)[:40]!r} is not a HubSpot {name} id")
        return str(value)

    def _get(self, action: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Answer:
        return self._connector._get(action, method, *args, **kwargs)

    def _path(self, action: str, method: str, path: str, *, query: Sequence[tuple[str, str]] = (),
              body: Any = None) -> Answer:
        return self._connector._call(action, lambda: self._client.call_path(method, path, query=query, body=body))

    # -- reads

    def pages(self, name: str, fields: Sequence[str], flt: RecordFilter, *,
              include_deleted: bool = False) -> Iterator[list[Record]]:
        vocabulary = self._connector.vocabulary
        batch: list[Record] = []
        for record in self._all(name, include_deleted=include_deleted):
            if flt.ids is not None and record["id"] not in set(flt.ids):
                continue
            if flt.matches(record, vocabulary):
                batch.append(_only(record, fields))
            if len(batch) == PAGE:
                yield batch
                batch = []
        if batch:
            yield batch

    def _all(self, name: str, *, include_deleted: bool) -> Iterator[Record]:
        if name == LISTS:
            yield from (list_record(r) for r in self._live_lists())
        elif name == LIST_FILTERS:
            ids = [str(r.get("listId")) for r in self._live_lists()]
            for start in range(0, len(ids), PAGE):
                answer = self._get("read list filters", self._client.lists.get_all,
                                   list_ids=ids[start : start + PAGE], include_filters=True)
                for raw in _results(answer.data, "lists"):
                    yield from filter_rows(raw)
        elif name == EMAILS:
            for archived in (False, True) if include_deleted else (False,):
                yield from (email_record(r) for r in self._paged(
                    f"list {'archived ' if archived else ''}marketing emails", self._client.emails.get_page,
                    archived=archived))
        else:
            after: str | None = None
            while True:
                query = [("limit", str(PAGE)), *(("properties", p) for p in CAMPAIGN_PROPERTIES)]
                answer = self._path("list campaigns", "GET", "/marketing/v3/campaigns",
                                    query=[*query, *((("after", after),) if after else ())])
                yield from (campaign_record(r) for r in _results(answer.data))
                after = next_after(answer.data)
                if not after:
                    return

    def _paged(self, action: str, method: Callable[..., Any], **kwargs: Any) -> Iterator[Mapping[str, Any]]:
        after: str | None = None
        seen: set[str] = set()
        while True:
            answer = self._get(action, method, limit=PAGE, **kwargs, **({"after": after} if after else {}))
            yield from _results(answer.data)
            after = next_after(answer.data)
            if not after:
                return
            if after in seen:
                raise ConnectorError(f"HubSpot repeated a paging cursor when crmsweep tried to {action}: stopped")
            seen.add(after)

    def _live_lists(self) -> list[Mapping[str, Any]]:
        rows: list[Mapping[str, Any]] = []
        offset = 0
        while True:
            body = {"query": "", "offset": offset, "count": PAGE, "additionalProperties": ["hs_list_size"]}
            answer = self._get("search lists", self._client.lists.do_search, body)
            rows.extend(_results(answer.data, "lists"))
            if not (isinstance(answer.data, Mapping) and answer.data.get("hasMore")):
                return rows
            following = int(answer.data.get("offset") or 0)
            if following <= offset:
                raise ConnectorError("HubSpot repeated a list-search offset: stopped to avoid an endless loop")
            offset = following

    def read(self, name: str, ids: Sequence[str], fields: Sequence[str], *,
             include_deleted: bool) -> dict[str, Record]:
        """By id, one GET each; a deleted list or archived email comes back flagged `archived` with
        `include_deleted`, and is left out without it."""
        found: dict[str, Record] = {}
        if name == LIST_FILTERS:
            wanted = set(ids)
            return {r["id"]: _only(r, fields) for r in self._all(name, include_deleted=False) if r["id"] in wanted}
        for raw_id in dict.fromkeys(ids):
            record = self._one(name, self._id(name, raw_id), include_deleted=include_deleted)
            if record is not None and (include_deleted or not record.get("archived")):
                found[record["id"]] = _only(record, [*fields, "archived"] if name != CAMPAIGNS else fields)
        return found

    def _one(self, name: str, record_id: str, *, include_deleted: bool) -> Record | None:
        try:
            if name == LISTS:
                answer = self._get(f"read list {record_id}", self._client.lists.get_by_id, record_id)
                raw = answer.data.get("list") if isinstance(answer.data, Mapping) else None
                return list_record(raw) if isinstance(raw, Mapping) else None
            if name == EMAILS:
                for archived in (False, True) if include_deleted else (False,):
                    try:
                        answer = self._get(f"read marketing email {record_id}", self._client.emails.get_by_id,
                                           record_id, archived=archived)
                        return email_record(answer.data) if isinstance(answer.data, Mapping) else None
                    except ConnectorError as exc:
                        if exc.status != 404:
                            raise
                return None
            query = [("properties", p) for p in CAMPAIGN_PROPERTIES]
            answer = self._path(f"read campaign {record_id}", "GET", f"/marketing/v3/campaigns/{record_id}",
                                query=query)
            return campaign_record(answer.data) if isinstance(answer.data, Mapping) else None
        except ConnectorError as exc:
            if exc.status == 404:
                return None
            raise

    # -- writes (one call per record: none of these APIs has a batch for them)

    def _each(self, name: str, ids: Sequence[str], verb: str, send: Callable[[str], Any]) -> list[WriteResult]:
        if name not in _IDS:
            raise BadInput(f"{name} rows are derived by a backup: crmsweep does not {verb} them")
        results: list[WriteResult] = []
        for raw_id in ids:
            record_id = self._id(name, raw_id)
            try:
                send(record_id)
            except ConnectorError as exc:
                if exc.status not in (400, 404, 409):
                    raise
                results.append(WriteResult(id=record_id, ok=False, error_code=exc.code or str(exc.status),
                                           message=str(exc)))
                continue
            results.append(WriteResult(id=record_id, ok=True))
        return results

    def delete(self, name: str, ids: Sequence[str]) -> list[WriteResult]:
        if name == LISTS:
            return self._each(name, ids, "delete", lambda i: self._get(
                f"delete list {i}", self._client.lists.remove, i))
        if name == EMAILS:
            return self._each(name, ids, "delete", lambda i: self._get(
                f"archive marketing email {i}", self._client.emails.archive, i))
        raise BadInput(f"crmsweep does not delete HubSpot {name}: it updates them")

    def undelete(self, name: str, ids: Sequence[str]) -> list[WriteResult]:
        if name == LISTS:
            return self._each(name, ids, "restore", lambda i: self._get(
                f"restore list {i}", self._client.lists.restore, i))
        if name == EMAILS:
            return self._each(name, ids, "restore", lambda i: self._get(
                f"un-archive marketing email {i}", self._client.emails.update, i, {"archived": False}))
        raise BadInput(f"HubSpot {name} are never deleted by crmsweep: nothing to restore")

    def update(self, name: str, records: Sequence[Record]) -> list[WriteResult]:
        if name != CAMPAIGNS:
            raise BadInput(f"crmsweep does not update HubSpot {name}")
        by_id = {self._id(name, r.get("id")): r for r in records}  # a record named twice: its last values
        unknown = sorted({k for r in records for k in r if k != "id" and k not in CAMPAIGN_PROPERTIES})
        if unknown:
            raise BadInput(f"campaign properties crmsweep may write are {', '.join(CAMPAIGN_PROPERTIES)}, "
                           f"not {', '.join(unknown)}")

        def patch(record_id: str) -> Answer:
            values = {k: "" if v is None else str(v) for k, v in by_id[record_id].items() if k != "id"}
            return self._path(f"update campaign {record_id}", "PATCH", f"/marketing/v3/campaigns/{record_id}",
                              body={"properties": values})

        return self._each(name, [str(r.get("id")) for r in records], "update", patch)


__all__ = ["ASSET_FIELDS", "ASSET_OBJECTS", "HubSpotAssets"]
