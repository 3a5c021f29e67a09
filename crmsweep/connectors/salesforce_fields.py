"""Salesforce custom field definitions and their uses, as snapshot objects, through the Tooling API.

Two pseudo-objects, read like any object (`iter_pages`, `read`, `fields`):
- `CustomField`: the Tooling object's rows (Id, DeveloperName, TableEnumOrId, NamespacePrefix,
  ManageableState, CreatedDate, LastModifiedDate), with FullName ("Contact.Favourite_Colour__c") and
  Metadata (JSON text) read one field at a time, by Id, since a query selecting them must match at most one
  row. `SystemModstamp` is the row's LastModifiedDate (the Tooling object has no SystemModstamp of its own;
  the fingerprint every object of this provider is checked by), `IsDeleted` is false. `filled` is the
  number of records holding a value, `SELECT COUNT() ... WHERE F != null` (a checkbox: `= true`), one
  query per field.
- `FieldReference`: one row per use of a custom field crmsweep could read (columns id, object, field,
  by_type, by_id, by_name): MetadataComponentDependency rows whose referenced component is a CustomField
  (Apex, layouts, flows...; beta, at most 2,000 rows, and blind to reports), then the columns of every
  report (`GET /analytics/reports/{id}/describe`). When MetadataComponentDependency answers its cap, a row
  with object and field "*" says the uses past it are unknown, so every field counts as used.

Removing a definition is `DELETE /tooling/sobjects/CustomField/{id}` (Salesforce keeps the field 15 days,
restorable only in Setup); re-creating one is `POST /tooling/sobjects/CustomField` with FullName and
Metadata, under a new id. The values come back through the rollback's updates.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from crmsweep.errors import BadInput, ConnectorError
from crmsweep.model import FieldKind, FieldSpec, Record, WriteResult

if TYPE_CHECKING:
    from crmsweep.connectors.salesforce import SalesforceConnector

CUSTOM_FIELD = "CustomField"
FIELD_REFERENCE = "FieldReference"
PSEUDO_OBJECTS = (CUSTOM_FIELD, FIELD_REFERENCE)
FILLED = "filled"
MCD_CAP = 2000
_LISTED = ("Id", "DeveloperName", "TableEnumOrId", "NamespacePrefix", "ManageableState", "CreatedDate",
           "LastModifiedDate")
_ONE_BY_ONE = ("FullName", "Metadata")


def _spec(name: str, kind: FieldKind, provider_type: str, *, createable: bool = False) -> FieldSpec:
    return FieldSpec(name=name, kind=kind, provider_type=provider_type, nillable=name != "Id", createable=createable)


S, T = FieldKind.STRING, FieldKind.DATETIME
DEFINITION_FIELDS: tuple[FieldSpec, ...] = (
    # The name and object a create writes through FullName (Object.Name__c): createable, so a re-create's
    # note does not call them lost (the create itself sends only FullName and Metadata).
    _spec("Id", S, "id"), _spec("DeveloperName", S, "string", createable=True),
    _spec("TableEnumOrId", S, "string", createable=True),
    _spec("NamespacePrefix", S, "string"), _spec("ManageableState", S, "picklist"),
    _spec("FullName", S, "string", createable=True), _spec("Metadata", S, "json", createable=True),
    _spec("CreatedDate", T, "datetime"), _spec("LastModifiedDate", T, "datetime"),
    _spec("SystemModstamp", T, "datetime"), _spec("IsDeleted", FieldKind.BOOL, "boolean"),
    _spec(FILLED, FieldKind.INT, "int"),
)
REFERENCE_FIELDS: tuple[FieldSpec, ...] = tuple(
    _spec(n, S, "string") for n in ("Id", "object", "field", "by_type", "by_id", "by_name"))


def fields_of(name: str) -> list[FieldSpec]:
    return list(DEFINITION_FIELDS if name == CUSTOM_FIELD else REFERENCE_FIELDS)


def _only(record: Record, fields: Sequence[str]) -> Record:
    keep = {"Id", *fields}
    return {k: v for k, v in record.items() if k in keep}


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class CustomFieldDefinitions:
    """The pseudo-objects of one connector: it does the HTTP through the connector's own plumbing."""

    def __init__(self, connector: SalesforceConnector) -> None:
        self.connector = connector
        self._defined: int | None = None  # how many custom fields the org has, once asked (read_calls)

    def read_calls(self, name: str) -> tuple[int, int]:
        """(custom fields, the calls a backup of pseudo-object `name` makes), for the API budget: one list
        of the fields (asked here, once), then per field its FullName and Metadata (a query each) and,
        for CUSTOM_FIELD, its filled count (one COUNT() at most); FIELD_REFERENCE adds the
        MetadataComponentDependency query, the reports' list and one describe per report."""
        if self._defined is None:
            self._defined = len(self._query("SELECT Id FROM CustomField"))
        fields = self._defined
        if name == CUSTOM_FIELD:
            return fields, 1 + 2 * fields
        try:
            reports = self.connector.read_plan("Report")
        except (BadInput, ConnectorError):
            return fields, 1 + fields + 1 + 1  # no Report object: its list fails after one call
        listed = max(1, math.ceil((reports.rows or 0) / self.connector.capabilities.max_query_page))
        return fields, 1 + fields + 1 + listed + (reports.rows or 0)

    def _tooling(self, action: str, path: str, **kwargs: Any) -> Any:
        sf = self.connector._sf
        return self.connector._call(action, functools.partial(sf.toolingexecute, path, **kwargs))

    def _query(self, soql: str) -> list[Record]:
        from urllib.parse import quote_plus

        answer = self._tooling("query the Tooling API", f"query/?q={quote_plus(soql)}")
        return [{k: v for k, v in r.items() if k != "attributes"} for r in (answer or {}).get("records") or []]

    # -- reads

    def _definitions(self, fields: Sequence[str], where: str = "") -> list[Record]:
        rows = self._query(f"SELECT {', '.join(_LISTED)} FROM CustomField{where}")
        wanted = set(fields)
        for row in rows:
            if wanted & {*_ONE_BY_ONE, FILLED}:
                # The restriction forces it: FullName and Metadata come one row per query.
                one = self._query(f"SELECT FullName, Metadata FROM CustomField WHERE Id = {_quoted(str(row['Id']))}")
                if one:
                    row["FullName"] = one[0].get("FullName")
                    row["Metadata"] = json.dumps(one[0].get("Metadata"), sort_keys=True, separators=(",", ":"))
            row["SystemModstamp"] = row.get("LastModifiedDate")
            row["IsDeleted"] = False
            if FILLED in wanted:
                row[FILLED] = self._filled(row)
        return [_only(r, fields) for r in rows]

    def _filled(self, row: Mapping[str, Any]) -> int | None:
        object_name, _, field = str(row.get("FullName") or "").partition(".")
        if not field:
            return None
        try:
            kind = json.loads(str(row.get("Metadata") or "{}")).get("type")
        except ValueError:
            kind = None
        if kind in ("LongTextArea", "Html", "EncryptedText"):
            return None  # neither filterable nor countable: the snapshot's values tell
        # The recycle bin counted too: a field's removal takes the values of binned records with it, and
        # an undelete would bring those records back without them (the snapshot need not hold them).
        if kind == "Checkbox":
            return self.connector.count(object_name, equals={field: True}, include_deleted=True)
        return self.connector.count(object_name, has_value=[field], include_deleted=True)

    def pages(self, name: str, fields: Sequence[str], *, include_deleted: bool) -> Iterator[list[Record]]:
        rows = self._definitions(fields) if name == CUSTOM_FIELD else [_only(r, fields) for r in self.references()]
        if rows:
            yield rows

    def read(self, name: str, ids: Sequence[str], fields: Sequence[str]) -> dict[str, Record]:
        wanted = [str(i) for i in ids]
        if not wanted:
            return {}
        if name == FIELD_REFERENCE:
            return {str(r["Id"]): _only(r, fields) for r in self.references() if r["Id"] in wanted}
        found: dict[str, Record] = {}
        for start in range(0, len(wanted), 100):
            chunk = ", ".join(_quoted(i) for i in wanted[start : start + 100])
            for row in self._definitions(fields, f" WHERE Id IN ({chunk})"):
                found[str(row["Id"])] = row
        return found

    def references(self) -> list[Record]:
        definitions = self._definitions(["FullName"])
        by_id = {str(d["Id"])[:15]: str(d["FullName"]) for d in definitions if d.get("FullName")}
        rows: list[Record] = []
        uses = self._query("SELECT Id, MetadataComponentId, MetadataComponentName, MetadataComponentType, "
                           "RefMetadataComponentId FROM MetadataComponentDependency "
                           "WHERE RefMetadataComponentType = 'CustomField'")
        for use in uses:
            full_name = by_id.get(str(use.get("RefMetadataComponentId"))[:15])
            if full_name is None:
                continue
            object_name, _, field = full_name.partition(".")
            rows.append({"Id": f"{use.get('Id')}", "object": object_name, "field": field,
                         "by_type": use.get("MetadataComponentType"), "by_id": use.get("MetadataComponentId"),
                         "by_name": use.get("MetadataComponentName")})
        if len(uses) >= MCD_CAP:
            rows.append({"Id": "MetadataComponentDependency-cap", "object": "*", "field": "*",
                         "by_type": "MetadataComponentDependency",
                         "by_id": None, "by_name": f"its first {MCD_CAP} rows only: further uses are unknown"})
        rows.extend(self._report_columns(set(by_id.values())))
        return rows

    def _report_columns(self, full_names: set[str]) -> list[Record]:
        """The custom fields each report shows (MetadataComponentDependency does not see reports)."""
        lowered = {n.lower(): n for n in full_names}
        try:
            reports = [r for page in self.connector.iter_pages("Report", ["Id", "Name"]) for r in page]
        except (BadInput, ConnectorError):
            return []  # an org (or sandbox) without the Report object: no report uses to read
        rows: list[Record] = []
        for report in reports:
            answer = self.connector._call(f"describe report {report['Id']}", functools.partial(
                self.connector._sf.restful, f"analytics/reports/{report['Id']}/describe"))
            metadata = (answer or {}).get("reportMetadata") or {}
            for column in metadata.get("detailColumns") or []:
                full_name = lowered.get(str(column).lower())
                if full_name is not None:
                    object_name, _, field = full_name.partition(".")
                    rows.append({"Id": f"{report['Id']}:{full_name}", "object": object_name, "field": field,
                                 "by_type": "Report", "by_id": report["Id"], "by_name": report.get("Name")})
        return rows

    # -- writes

    def _refused(self, record_id: str | None, exc: ConnectorError) -> WriteResult:
        return WriteResult(id=record_id, ok=False, error_code=exc.code or str(exc.status), message=str(exc))

    def delete(self, ids: Sequence[str]) -> list[WriteResult]:
        results: list[WriteResult] = []
        for field_id in ids:
            object_name = self._object_of(field_id)
            try:
                self._tooling(f"delete custom field {field_id}", f"sobjects/CustomField/{field_id}", method="DELETE")
            except ConnectorError as exc:
                if exc.status not in (400, 404):
                    raise
                results.append(self._refused(field_id, exc))
                continue
            self.connector._describes.pop(object_name, None)
            results.append(WriteResult(id=field_id, ok=True))
        return results

    def _object_of(self, field_id: str) -> str:
        rows = self._query(f"SELECT TableEnumOrId FROM CustomField WHERE Id = {_quoted(field_id)}")
        return str(rows[0]["TableEnumOrId"]) if rows else ""

    def create(self, records: Sequence[Record]) -> list[WriteResult]:
        results: list[WriteResult] = []
        for record in records:
            full_name = str(record.get("FullName") or "")
            try:
                metadata = json.loads(str(record.get("Metadata") or ""))
            except ValueError:
                metadata = None
            if not full_name or not isinstance(metadata, Mapping):
                results.append(WriteResult(id=None, ok=False, error_code="INVALID_DEFINITION",
                                           message="the snapshot's row holds no FullName and Metadata"))
                continue
            body = {"FullName": full_name, "Metadata": dict(metadata)}
            try:
                answer = self.connector._call(
                    f"create custom field {full_name}",
                    functools.partial(self.connector._sf.toolingexecute, "sobjects/CustomField", method="POST",
                                      data=body),
                    resend_risk="a second sending would create the field twice or be refused as a duplicate")
            except ConnectorError as exc:
                if exc.status != 400:
                    raise
                results.append(self._refused(None, exc))
                continue
            self.connector._describes.pop(full_name.partition(".")[0], None)
            results.append(WriteResult(id=str((answer or {}).get("id")), ok=True))
        return results

    def find_created(self, keys: Sequence[str], values: Sequence[Mapping[str, Any]]) -> dict[str, list[Record]]:
        """Per key, the live field with the FullName the create sent (a field name is unique on its object)."""
        found: dict[str, list[Record]] = {}
        names = [f.name for f in DEFINITION_FIELDS if f.name != FILLED]
        for key, record in zip(keys, values, strict=True):
            object_name, _, field = str(record.get("FullName") or "").partition(".")
            developer = field.removesuffix("__c").rpartition("__")[2]
            rows = self._definitions(names, f" WHERE TableEnumOrId = {_quoted(object_name)} AND DeveloperName = "
                                            f"{_quoted(developer)}") if field else []
            found[key] = [r for r in rows if str(r.get("FullName")).lower() == str(record.get("FullName")).lower()]
        return found
