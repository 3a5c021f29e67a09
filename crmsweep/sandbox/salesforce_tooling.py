"""The Tooling API of the Salesforce sandbox: custom fields, field definitions and metadata dependencies.

`GET /services/data/vXX.X/tooling/query?q=` over three objects, with the restrictions Salesforce documents:
- CustomField (Id, DeveloperName, TableEnumOrId, NamespacePrefix, ManageableState, CreatedDate,
  LastModifiedDate, FullName, Metadata): a query selecting FullName or Metadata must match at most one row
  ("the query qualifications must specify no more than one row for retrieval"), so a client reads them one
  field at a time, by Id. Metadata comes back as a JSON object.
- FieldDefinition (DurableId, QualifiedApiName, EntityDefinitionId, DataType, Label, NamespacePrefix): COUNT,
  LIMIT, OR and NOT are refused (GROUP BY is no SOQL the sandbox parses at all).
- MetadataComponentDependency (beta): at most 2,000 rows, in one page (no queryMore); ORDER BY, COUNT and
  OFFSET are refused, and so are filters on MetadataComponentName and RefMetadataComponentName.

`/tooling/sobjects/CustomField[/{id}]`: POST with FullName ("Contact.Shoe_Size__c") and Metadata creates the
field (a column of its object: it appears in describe and on every record, empty); GET reads one; PATCH
changes its Metadata (label, length, description); DELETE removes it and drops its values. Salesforce keeps a
deleted field for 15 days, restorable in Setup only; the sandbox keeps nothing, so after a DELETE the field
is queryable nowhere through the API (our choice: no API restores one). A field of a managed package, or one
an Apex class or trigger references (a MetadataComponentDependency row), cannot be deleted: 400
DELETE_FAILED (the code is chosen by analogy; Salesforce documents the refusal, not its code).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crmsweep.sandbox import ids, rules
from crmsweep.sandbox.schema import (
    BOOLEAN,
    DATE,
    DATETIME,
    DOUBLE,
    EMAIL,
    ID,
    OBJECTS,
    PHONE,
    PICKLIST,
    STRING,
    TEXTAREA,
    URL,
    Field,
    SObject,
    get_object,
)
from crmsweep.sandbox.soql import compile_soql, shape_record
from crmsweep.sandbox.soql_parse import BoolOp, Comparison, InList, Not, Query, SoqlError, parse_soql

if TYPE_CHECKING:
    from crmsweep.sandbox.salesforce_store import SalesforceStore

MCD_MAX_ROWS = 2000
# Objects an admin adds custom fields to in the sandbox.
CUSTOMIZABLE = ("Account", "Contact", "Lead", "Opportunity")
# Metadata `type` -> (describe type, default length)
METADATA_TYPES: dict[str, tuple[str, int]] = {
    "Text": (STRING, 255), "TextArea": (TEXTAREA, 255), "LongTextArea": (TEXTAREA, 32768), "Email": (EMAIL, 80),
    "Phone": (PHONE, 40), "Url": (URL, 255), "Number": (DOUBLE, 0), "Checkbox": (BOOLEAN, 0), "Date": (DATE, 0),
    "DateTime": (DATETIME, 0), "Picklist": (PICKLIST, 255),
}
_DESCRIBE_TO_DATA_TYPE = {STRING: "Text", TEXTAREA: "Text Area", EMAIL: "Email", PHONE: "Phone", URL: "URL",
                          DOUBLE: "Number", BOOLEAN: "Checkbox", DATE: "Date", DATETIME: "Date/Time",
                          PICKLIST: "Picklist", ID: "Lookup()", "reference": "Lookup()"}
# [namespace__]Name__c, where neither part holds a double underscore.
_NAME_RE = re.compile(r"(?:([A-Za-z](?:[A-Za-z0-9]|_(?!_))*)__)?([A-Za-z](?:[A-Za-z0-9]|_(?!_))*)__c")


def _audit() -> tuple[Field, ...]:
    return (Field("CreatedDate", DATETIME, createable=False, updateable=False),
            Field("LastModifiedDate", DATETIME, createable=False, updateable=False))


CUSTOM_FIELD = SObject("CustomField", "00N", (
    Field("Id", ID, createable=False, updateable=False),
    Field("DeveloperName", STRING, createable=False, updateable=False),
    Field("TableEnumOrId", STRING, createable=False, updateable=False),
    Field("NamespacePrefix", STRING, createable=False, updateable=False),
    Field("ManageableState", PICKLIST, createable=False, updateable=False),
    Field("FullName", STRING),
    Field("Metadata", TEXTAREA),
    *_audit(),
), label="Custom Field", has_is_deleted=False)
FIELD_DEFINITION = SObject("FieldDefinition", "000", (
    Field("Id", ID, createable=False, updateable=False),
    Field("DurableId", STRING, createable=False, updateable=False),
    Field("QualifiedApiName", STRING, createable=False, updateable=False),
    Field("EntityDefinitionId", STRING, createable=False, updateable=False),
    Field("DataType", STRING, createable=False, updateable=False),
    Field("Label", STRING, createable=False, updateable=False),
    Field("NamespacePrefix", STRING, createable=False, updateable=False),
), label="Field Definition", has_is_deleted=False, createable=False, updateable=False, deletable=False)
DEPENDENCY = SObject("MetadataComponentDependency", "0Hd", (
    Field("Id", ID, createable=False, updateable=False),
    *(Field(f"{side}MetadataComponent{part}", STRING, createable=False, updateable=False)
      for side in ("", "Ref") for part in ("Id", "Name", "Type", "Namespace")),
), label="Metadata Component Dependency", has_is_deleted=False, createable=False, updateable=False,
    deletable=False)
TOOLING_OBJECTS = {o.name: o for o in (CUSTOM_FIELD, FIELD_DEFINITION, DEPENDENCY)}
_NAMES_NOT_FILTERABLE = ("metadatacomponentname", "refmetadatacomponentname")


class ToolingError(Exception):
    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message


def create_tables(store: SalesforceStore) -> None:
    """The tooling objects' tables; call inside the schema transaction."""
    for obj in TOOLING_OBJECTS.values():
        store.ensure_table(obj.name, [(f.name, f.sql_type) for f in obj.fields])


def record_field(row: Mapping[str, Any]) -> Field | None:
    """The record field a CustomField row defines (its describe entry), from its Metadata."""
    try:
        metadata = json.loads(str(row.get("Metadata") or "{}"))
    except ValueError:
        return None
    kind, length = METADATA_TYPES.get(str(metadata.get("type")), (STRING, 255))
    name = str(row["FullName"]).partition(".")[2]
    values = tuple(str(v.get("fullName")) for v in ((metadata.get("valueSet") or {}).get("valueSetDefinition") or {})
                   .get("value", []) if isinstance(v, Mapping))
    return Field(name, kind, str(metadata.get("label") or name), custom=True,
                 length=int(metadata.get("length") or length), picklist=values,
                 default=False if kind == BOOLEAN else None, nillable=kind != BOOLEAN,
                 precision=int(metadata.get("precision") or 18) if kind == DOUBLE else 0,
                 scale=int(metadata.get("scale") or 0) if kind == DOUBLE else 0)


def custom_fields(store: SalesforceStore, object_name: str) -> tuple[Field, ...]:
    rows = store.fetch('SELECT "FullName", "Metadata" FROM "CustomField" WHERE "TableEnumOrId" = ? ORDER BY rowid',
                       (object_name,))
    found = (record_field({"FullName": r[0], "Metadata": r[1]}) for r in rows)
    return tuple(f for f in found if f is not None)


def with_custom_fields(store: SalesforceStore, obj: SObject | None) -> SObject | None:
    """`obj` with the custom fields the org has defined on it (the schema module holds the standard ones)."""
    if obj is None or obj.name not in CUSTOMIZABLE:
        return obj
    extra = custom_fields(store, obj.name)
    return replace(obj, fields=(*obj.fields, *extra), _by_name={}) if extra else obj


def lookup(store: SalesforceStore) -> Callable[[str], SObject | None]:
    """The object resolver queries compile against: standard objects with the org's custom fields."""
    return lambda name: with_custom_fields(store, get_object(name))


# --- query ---------------------------------------------------------------------------------------


def _names(condition: Any) -> list[str]:
    if isinstance(condition, Comparison | InList):
        return [condition.field.text.lower()]
    if isinstance(condition, Not):
        return _names(condition.operand)
    if isinstance(condition, BoolOp):
        return [n for part in condition.operands for n in _names(part)]
    return []


def _has(condition: Any, kind: type, op: str | None = None) -> bool:
    if isinstance(condition, kind) and (op is None or str(getattr(condition, "op", "")).upper() == op):
        return True
    if isinstance(condition, Not):
        return _has(condition.operand, kind, op)
    if isinstance(condition, BoolOp):
        return any(_has(part, kind, op) for part in condition.operands)
    return False


def _check_restrictions(query: Query) -> None:
    name = query.object_name.lower()
    if name == "fielddefinition":
        where = query.where
        refused = ("COUNT" if query.count_only else "LIMIT" if query.limit is not None
                   else "OR" if where is not None and _has(where, BoolOp, "OR")
                   else "NOT" if where is not None and _has(where, Not) else None)
        if refused:
            raise ToolingError(400, "MALFORMED_QUERY", f"FieldDefinition does not support {refused} in queries")
    if name == "metadatacomponentdependency":
        refused = ("ORDER BY" if query.order_by else "COUNT" if query.count_only
                   else "OFFSET" if query.offset is not None else None)
        if refused:
            raise ToolingError(400, "MALFORMED_QUERY", f"MetadataComponentDependency does not support {refused}")
        if query.where is not None and set(_names(query.where)) & set(_NAMES_NOT_FILTERABLE):
            raise ToolingError(400, "MALFORMED_QUERY", "MetadataComponentDependency does not support filtering "
                               "on MetadataComponentName or RefMetadataComponentName")


def refresh_field_definitions(store: SalesforceStore) -> None:
    """FieldDefinition as the org stands now: every standard field of the sandbox's objects and its custom ones."""
    rows: list[list[object]] = []
    for obj in OBJECTS.values():
        full = with_custom_fields(store, obj) or obj
        for n, f in enumerate(full.fields):
            namespace = None
            if f.custom and (match := _NAME_RE.fullmatch(f.name)) is not None:
                namespace = match.group(1)
            rows.append([f"000{obj.key_prefix}{n:012d}", f"{obj.name}.{f.name}", f.name, obj.name,
                         _DESCRIBE_TO_DATA_TYPE.get(f.type, "Text"), f.display_label, namespace])
    with store.transaction() as db:
        db.execute('DELETE FROM "FieldDefinition"')
        store.insert("FieldDefinition", ["Id", "DurableId", "QualifiedApiName", "EntityDefinitionId", "DataType",
                                         "Label", "NamespacePrefix"], rows)


def query(store: SalesforceStore, text: str, version: str, now: datetime) -> dict[str, Any]:
    """One page holding the whole answer: the tooling objects here are small, and MetadataComponentDependency
    allows no queryMore anyway."""
    try:
        parsed = parse_soql(text)
        _check_restrictions(parsed)
        if parsed.object_name.lower() == "fielddefinition":
            refresh_field_definitions(store)
        compiled = compile_soql(text, include_deleted=False, now=now,
                                objects=lambda name: TOOLING_OBJECTS.get(next(
                                    (k for k in TOOLING_OBJECTS if k.lower() == name.lower()), "")))
    except SoqlError as exc:
        raise ToolingError(400, exc.error_code, exc.message) from None
    if compiled.count_only:
        matched = int(store.fetch(compiled.sql, compiled.params)[0][0])
        return {"size": matched, "totalSize": matched, "done": True, "records": [],
                "entityTypeName": compiled.object.name}
    cap = MCD_MAX_ROWS if compiled.object is DEPENDENCY else None
    limit = min(x for x in (compiled.limit, cap, 50_000) if x is not None)
    rows = store.fetch(compiled.sql + " LIMIT ? OFFSET ?", (*compiled.params, limit, compiled.offset or 0))
    selected = {c.path[0].lower() for c in compiled.columns}
    if compiled.object is CUSTOM_FIELD and selected & {"fullname", "metadata"} and len(rows) > 1:
        raise ToolingError(400, "MALFORMED_QUERY", "When retrieving results with Metadata or FullName fields, the "
                           "query qualifications must specify no more than one row for retrieval. Result size: "
                           f"{len(rows)}")
    records = [_tooling_record(shape_record(compiled, row, version)) for row in rows]
    return {"size": len(records), "totalSize": len(records), "done": True, "queryLocator": None,
            "entityTypeName": compiled.object.name, "records": records}


def _tooling_record(record: dict[str, Any]) -> dict[str, Any]:
    attributes = record.get("attributes") or {}
    if isinstance(attributes.get("url"), str):
        attributes["url"] = attributes["url"].replace("/sobjects/", "/tooling/sobjects/", 1)
    if isinstance(record.get("Metadata"), str):
        record["Metadata"] = json.loads(record["Metadata"])
    return record


# --- CustomField ---------------------------------------------------------------------------------


def _row(store: SalesforceStore, field_id: str) -> dict[str, Any]:
    full = ids.normalize(field_id)
    row = store.get_row("CustomField", full) if full else None
    if row is None:
        raise ToolingError(404, "NOT_FOUND", "The requested resource does not exist")
    return row


def get_field(store: SalesforceStore, field_id: str, version: str) -> dict[str, Any]:
    row = _row(store, field_id)
    record: dict[str, Any] = {"attributes": {"type": "CustomField",
                                             "url": f"/services/data/v{version}/tooling/sobjects/CustomField/"
                                                    f"{row['Id']}"}}
    for f in CUSTOM_FIELD.fields:
        record[f.name] = rules.to_json_value(f, row.get(f.name))
    record["Metadata"] = json.loads(str(row.get("Metadata") or "{}"))
    return record


def create_field(store: SalesforceStore, body: Mapping[str, Any], now: datetime, *,
                 namespace: str | None = None, managed: str = "unmanaged") -> str:
    """A new custom field from FullName and Metadata; its id. Call outside a transaction."""
    full_name = body.get("FullName")
    metadata = body.get("Metadata")
    if not isinstance(full_name, str) or not isinstance(metadata, Mapping):
        raise ToolingError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [FullName, Metadata]")
    object_name, _, field_name = full_name.partition(".")
    obj = get_object(object_name)
    match = _NAME_RE.fullmatch(field_name)
    if obj is None or obj.name not in CUSTOMIZABLE or match is None:
        raise ToolingError(400, "FIELD_INTEGRITY_EXCEPTION", f"Invalid FullName: {full_name} (expected "
                           "Object.Name__c on an object that takes custom fields)")
    if str(metadata.get("type")) not in METADATA_TYPES:
        raise ToolingError(400, "FIELD_INTEGRITY_EXCEPTION", f"Invalid type for custom field: {metadata.get('type')}")
    canonical = f"{obj.name}.{field_name}"
    if store.fetch('SELECT 1 FROM "CustomField" WHERE lower("FullName") = lower(?)', (canonical,)) or (
            obj.field(field_name) is not None):
        raise ToolingError(400, "DUPLICATE_DEVELOPER_NAME", f"A field named {field_name} already exists on {obj.name}")
    stamp = rules.next_stamp(now, None)
    definition = {"fullName": canonical, **{k: v for k, v in metadata.items() if k != "fullName"}}
    row = {"DeveloperName": match.group(2), "TableEnumOrId": obj.name, "NamespacePrefix": namespace or match.group(1),
           "ManageableState": managed, "FullName": canonical, "Metadata": json.dumps(definition, sort_keys=True),
           "CreatedDate": stamp, "LastModifiedDate": stamp}
    described = record_field(row)
    assert described is not None
    with store.transaction() as db:
        row["Id"] = store.next_ids(CUSTOM_FIELD, 1)[0]
        columns = {r[1] for r in db.execute(f'PRAGMA table_info("{obj.name}")')}
        if described.name not in columns:
            db.execute(f'ALTER TABLE "{obj.name}" ADD COLUMN "{described.name}" {described.sql_type}')
        if described.type == BOOLEAN:
            db.execute(f'UPDATE "{obj.name}" SET "{described.name}" = 0')
        store.insert("CustomField", list(row), [list(row.values())])
    return str(row["Id"])


def update_field(store: SalesforceStore, field_id: str, body: Mapping[str, Any], now: datetime) -> None:
    row = _row(store, field_id)
    metadata = body.get("Metadata")
    if not isinstance(metadata, Mapping):
        raise ToolingError(400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [Metadata]")
    current = json.loads(str(row.get("Metadata") or "{}"))
    if metadata.get("type") not in (None, current.get("type")):
        raise ToolingError(400, "FIELD_INTEGRITY_EXCEPTION", "The sandbox does not change a field's type")
    merged = {**current, **{k: v for k, v in metadata.items() if k != "fullName"}}
    with store.transaction():
        store.set_values("CustomField", str(row["Id"]), {
            "Metadata": json.dumps(merged, sort_keys=True),
            "LastModifiedDate": rules.next_stamp(now, str(row.get("LastModifiedDate") or ""))})


def delete_field(store: SalesforceStore, field_id: str) -> None:
    row = _row(store, field_id)
    if row.get("NamespacePrefix") or row.get("ManageableState") not in (None, "unmanaged"):
        raise ToolingError(400, "DELETE_FAILED", f"Cannot delete {row['FullName']}: it belongs to a managed package")
    users = store.fetch('SELECT "MetadataComponentType", "MetadataComponentName" FROM "MetadataComponentDependency" '
                        'WHERE "RefMetadataComponentId" = ? AND "MetadataComponentType" IN (?, ?)',
                        (row["Id"], "ApexClass", "ApexTrigger"))
    if users:
        raise ToolingError(400, "DELETE_FAILED", f"This custom field is referenced elsewhere in salesforce.com: "
                           f"{users[0][0]} {users[0][1]}")
    described = record_field(row)
    object_name = str(row["TableEnumOrId"])
    with store.transaction() as db:
        if described is not None:
            db.execute(f'UPDATE "{object_name}" SET "{described.name}" = NULL')
        db.execute('DELETE FROM "CustomField" WHERE "Id" = ?', (row["Id"],))
        db.execute('DELETE FROM "MetadataComponentDependency" WHERE "RefMetadataComponentId" = ?', (row["Id"],))


def add_dependencies(store: SalesforceStore, rows: Sequence[Mapping[str, object]]) -> None:
    """MetadataComponentDependency rows (the seed's Apex classes and layouts using fields)."""
    with store.transaction():
        for row in rows:
            values = {"Id": store.next_ids(DEPENDENCY, 1)[0], **row}
            store.insert("MetadataComponentDependency", list(values), [list(values.values())])
