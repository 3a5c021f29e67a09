"""HubSpot property definitions and their uses, as snapshot objects, and their archive and re-creation.

Two pseudo-objects, read like any object (`iter_pages`, `read`, `fields`):
- `properties`: one row per property of each object type crmsweep backs up, id `<objectType>.<name>`
  ("contacts.favourite_colour"), the definition's main keys as columns and the whole definition as the
  API gave it in `definition` (JSON text), so a rollback can re-create it. `filled` is the number of live
  records holding a value, counted by a search (HAS_PROPERTY, `total`) for custom properties only: one
  search per property, at five a second; HubSpot-defined ones are left empty.
- `form_fields`: one row per property a marketing form asks for (`GET /marketing/v3/forms/`, its
  `fieldGroups[].fields[]`): columns id, object, field, by_type ("form"), by_id, by_name.

Removing a definition is `DELETE /crm/v3/properties/{objectType}/{name}` (archive, 204). Re-creating
one prefers the 2027-03 beta `properties/batch/restore` (the definition comes back under its name; the
notes call it optional), and falls back to `POST /crm/v3/properties/{objectType}` from the definition
when the portal does not serve it (404). Either way the values come back only through the rollback's
updates, from the snapshot.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmsweep.connectors.hubspot_client import Answer, read_answer
from crmsweep.connectors.hubspot_errors import body_json
from crmsweep.errors import BadInput, ConnectorError
from crmsweep.model import FieldKind, FieldSpec, Record, WriteResult

if TYPE_CHECKING:
    from crmsweep.connectors.hubspot import HubSpotConnector

PROPERTIES = "properties"
FORM_FIELDS = "form_fields"
PSEUDO_OBJECTS = (PROPERTIES, FORM_FIELDS)
FILLED = "filled"
# The object type ids forms name their fields by (HubSpot's fixed ids for the standard objects).
TYPE_IDS = {"0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-5": "tickets", "0-27": "tasks"}
RESTORE_PATH = "/crm/schemas/2027-03-beta/objects/{type_id}/properties/batch/restore"
FORM_PAGE = 50
# What a create may send of a definition (the rest is HubSpot's to set: dates, users, metadata).
_CREATE_KEYS = ("name", "label", "type", "fieldType", "groupName", "description", "options", "displayOrder",
                "hidden", "formField", "hasUniqueValue", "calculationFormula", "externalOptions")


def _spec(name: str, kind: FieldKind, provider_type: str, *, createable: bool = False,
          nillable: bool = True) -> FieldSpec:
    return FieldSpec(name=name, kind=kind, provider_type=provider_type, nillable=nillable, createable=createable)


S, B, T = FieldKind.STRING, FieldKind.BOOL, FieldKind.DATETIME
PROPERTY_FIELDS: tuple[FieldSpec, ...] = (
    _spec("id", S, "property_id", nillable=False),
    _spec("objectType", S, "string", createable=True),
    _spec("name", S, "string"),
    _spec("label", S, "string"),
    _spec("type", S, "string"),
    _spec("fieldType", S, "string"),
    _spec("groupName", S, "string"),
    _spec("hubspotDefined", B, "bool"),
    _spec("archived", B, "bool"),
    _spec("archivable", B, "bool"),
    _spec("readOnlyValue", B, "bool"),
    _spec("calculated", B, "bool"),
    _spec("formField", B, "bool"),
    _spec("createdAt", T, "datetime"),
    _spec("updatedAt", T, "datetime"),
    # A re-create sends the whole definition as the API gave it (less what HubSpot sets itself).
    _spec("definition", S, "json", createable=True),
    _spec(FILLED, FieldKind.INT, "number"),
)
USE_FIELDS: tuple[FieldSpec, ...] = tuple(
    _spec(n, S, "string", nillable=n != "id") for n in ("id", "object", "field", "by_type", "by_id", "by_name")
)


def fields_of(name: str) -> list[FieldSpec]:
    return list(PROPERTY_FIELDS if name == PROPERTIES else USE_FIELDS)


def property_id(object_type: str, name: str) -> str:
    return f"{object_type}.{name}"


def split_id(value: str) -> tuple[str, str]:
    object_type, _, name = str(value).partition(".")
    if not object_type or not name:
        raise BadInput(f"{value!r} is not a HubSpot property id (<objectType>.<name>, e.g. contacts.favourite_colour)")
    return object_type, name


def property_row(object_type: str, definition: Mapping[str, Any]) -> Record:
    meta = definition.get("modificationMetadata") or {}
    return {
        "id": property_id(object_type, str(definition.get("name"))),
        "objectType": object_type,
        "name": definition.get("name"),
        "label": definition.get("label"),
        "type": definition.get("type"),
        "fieldType": definition.get("fieldType"),
        "groupName": definition.get("groupName"),
        "hubspotDefined": bool(definition.get("hubspotDefined", False)),
        "archived": bool(definition.get("archived", False)),
        "archivable": bool(meta.get("archivable", not definition.get("hubspotDefined", False))),
        "readOnlyValue": bool(meta.get("readOnlyValue", False)),
        "calculated": bool(definition.get("calculated", False)),
        "formField": bool(definition.get("formField", False)),
        "createdAt": definition.get("createdAt"),
        "updatedAt": definition.get("updatedAt"),
        "definition": json.dumps(definition, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
    }


class PropertyDefinitions:
    """The pseudo-objects of one connector: it does the HTTP through the connector's own plumbing."""

    def __init__(self, connector: HubSpotConnector, object_types: Sequence[str]) -> None:
        self.connector = connector
        self.object_types = tuple(object_types)

    # -- reads

    def read_calls(self, name: str) -> int:
        """The calls a backup of pseudo-object `name` makes once the describes are held (they are read
        here): one fill-rate search per live custom property; the forms' list for FORM_FIELDS."""
        if name == FORM_FIELDS:
            return 1
        return sum(1 for t in self.object_types for d in self._definitions(t, archived=False)
                   if not d.get("hubspotDefined", False) and not d.get("archived", False))

    def _definitions(self, object_type: str, *, archived: bool) -> list[Mapping[str, Any]]:
        described = self.connector.describe(object_type)
        return list(described["archivedProperties" if archived else "properties"])

    def _rows(self, object_type: str, fields: Sequence[str], *, archived: bool) -> list[Record]:
        rows = [property_row(object_type, d) for d in self._definitions(object_type, archived=archived)]
        if FILLED in fields:
            for row in rows:
                custom = not row["hubspotDefined"] and not row["archived"]
                row[FILLED] = self.connector.count(object_type, has_value=[str(row["name"])]) if custom else None
        return [_only(row, fields) for row in rows]

    def pages(self, name: str, fields: Sequence[str], *, include_deleted: bool) -> Iterator[list[Record]]:
        if name == FORM_FIELDS:
            rows = [_only(r, fields) for r in self.form_fields()]
            if rows:
                yield rows
            return
        for object_type in self.object_types:
            for archived in (False, True) if include_deleted else (False,):
                rows = self._rows(object_type, fields, archived=archived)
                if rows:
                    yield rows

    def read(self, name: str, ids: Sequence[str], fields: Sequence[str], *, include_deleted: bool) -> dict[str, Record]:
        if name == FORM_FIELDS:
            wanted = set(ids)
            return {str(r["id"]): _only(r, fields) for r in self.form_fields() if r["id"] in wanted}
        by_type: dict[str, set[str]] = {}
        for value in ids:
            object_type, prop = split_id(value)
            by_type.setdefault(object_type, set()).add(prop)
        found: dict[str, Record] = {}
        for object_type, names in by_type.items():
            self.forget(object_type)  # a live read must see definitions as they are now
            for archived in (False, True) if include_deleted else (False,):
                for definition in self._definitions(object_type, archived=archived):
                    key = property_id(object_type, str(definition.get("name")))
                    if definition.get("name") in names and key not in found:
                        found[key] = property_row(object_type, definition)
            if FILLED in fields:
                for row in (r for r in found.values() if r["objectType"] == object_type):
                    row[FILLED] = None if row["archived"] else self.connector.count(
                        object_type, has_value=[str(row["name"])])
        return {k: _only(v, [*fields, "archived"]) for k, v in found.items()}

    def form_fields(self) -> list[Record]:
        """Every (form, property) pair of the portal's forms, live forms only."""
        rows: list[Record] = []
        after: str | None = None
        seen: set[str] = set()
        while True:
            query = f"?limit={FORM_PAGE}" + (f"&after={after}" if after else "")
            answer = self.connector._call("list forms", functools.partial(
                self.connector._client.get_path, f"/marketing/v3/forms/{query}"))
            data = answer.data if isinstance(answer.data, Mapping) else {}
            for form in data.get("results") or []:
                for group in form.get("fieldGroups") or []:
                    for item in group.get("fields") or []:
                        object_type = TYPE_IDS.get(str(item.get("objectTypeId")), str(item.get("objectTypeId")))
                        rows.append({"id": f"{form.get('id')}:{object_type}.{item.get('name')}",
                                     "object": object_type, "field": item.get("name"), "by_type": "form",
                                     "by_id": str(form.get("id")), "by_name": form.get("name")})
            after = ((data.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return rows
            if after in seen:
                raise ConnectorError("HubSpot repeated a paging cursor listing forms: stopped to avoid an endless loop")
            seen.add(str(after))

    def forget(self, object_type: str) -> None:
        self.connector._describes.pop(object_type, None)

    # -- writes

    def archive(self, ids: Sequence[str]) -> list[WriteResult]:
        """Archive each property (one call each: HubSpot's batch/archive answers 204 whatever happened,
        which would hide a refusal such as a property that is not archivable)."""
        results: list[WriteResult] = []
        for value in ids:
            object_type, name = split_id(value)
            answer = self.connector._call(f"archive property {value}", functools.partial(
                self.connector._client.raw, self.connector._client.properties.archive, object_type, name),
                answer_400=True)
            self.forget(object_type)
            results.append(_result(value, answer.status, answer.data))
        return results

    def create(self, records: Sequence[Record]) -> list[WriteResult]:
        """Bring each definition back: restored under its name where the beta restore exists, else
        created from the definition. The result's id is the property's id (its name does not change)."""
        results: list[WriteResult] = []
        for record in records:
            object_type = str(record.get("objectType") or "")
            try:
                definition = json.loads(str(record.get("definition") or ""))
            except ValueError:
                definition = None
            if not object_type or not isinstance(definition, Mapping) or not definition.get("name"):
                results.append(WriteResult(id=None, ok=False, error_code="INVALID_DEFINITION",
                                           message="the snapshot's definition is not a property definition"))
                continue
            results.append(self._bring_back(object_type, definition))
        return results

    def _bring_back(self, object_type: str, definition: Mapping[str, Any]) -> WriteResult:
        name = str(definition["name"])
        key = property_id(object_type, name)
        self.forget(object_type)
        archived = {str(d.get("name")) for d in self._definitions(object_type, archived=True)}
        type_id = next((t for t, o in TYPE_IDS.items() if o == object_type), object_type)
        if name in archived:
            answer = self.connector._call(f"restore property {key}", functools.partial(
                self._post, RESTORE_PATH.format(type_id=type_id), {"inputs": [{"name": name}]}),
                answer_400=True, resendable=False)
            if answer.status != 404:
                self.forget(object_type)
                errors = answer.data.get("errors") if isinstance(answer.data, Mapping) else None
                if answer.status < 300 and not errors:
                    return WriteResult(id=key, ok=True)
                return _result(key, 400 if errors else answer.status, (errors or [answer.data])[0])
        body = {k: definition[k] for k in _CREATE_KEYS if k in definition}
        answer = self.connector._call(f"create property {key}", functools.partial(
            self._post, f"/crm/v3/properties/{object_type}", body), resendable=False)
        self.forget(object_type)
        return _result(key, answer.status, answer.data)

    def _post(self, path: str, body: Mapping[str, Any]) -> Answer:
        """POST a path no generated API wraps; a refusal of this request (4xx other than auth and rate
        limits) comes back as an answer, judged per definition, rather than stopping the run."""
        client = self.connector._client
        try:
            response = client.api_client.call_api(
                path, "POST", header_params={"Accept": "application/json", "Content-Type": "application/json"},
                body=dict(body), auth_settings=["oauth2"], _return_http_data_only=True, _preload_content=False,
                _request_timeout=client.timeout,
            )
        except Exception as exc:
            status = getattr(exc, "status", None)
            if isinstance(status, int) and 400 <= status < 500 and status not in (401, 403, 429):
                return Answer(status=status, data=body_json(getattr(exc, "body", None)), headers={})
            raise
        return read_answer(response)

    def find_created(self, keys: Sequence[str], values: Sequence[Mapping[str, Any]]) -> dict[str, list[Record]]:
        """Per key, the live property each create would have made (same object type and name)."""
        found: dict[str, list[Record]] = {}
        for key, record in zip(keys, values, strict=True):
            try:
                name = str(json.loads(str(record.get("definition") or "{}")).get("name") or "")
            except ValueError:
                name = ""
            wanted = property_id(str(record.get("objectType") or ""), name)
            live = self.read(PROPERTIES, [wanted], [f.name for f in PROPERTY_FIELDS if f.name != FILLED],
                             include_deleted=False) if name else {}
            found[key] = [live[wanted]] if wanted in live else []
        return found


def _only(record: Record, fields: Sequence[str]) -> Record:
    keep = {"id", *fields}
    return {k: v for k, v in record.items() if k in keep}


def _result(record_id: str, status: int, data: Any) -> WriteResult:
    if status < 300:
        return WriteResult(id=record_id, ok=True)
    body = data if isinstance(data, Mapping) else {}
    return WriteResult(id=record_id, ok=False, error_code=str(body.get("category") or status),
                       message=str(body.get("message") or f"HubSpot answered {status}"))
