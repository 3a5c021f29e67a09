"""HubSpot's JSON shapes and crmsweep's canonical records, both ways. Pure: no I/O.

A canonical HubSpot record is flat: an object's `properties` plus its envelope `id`, `createdAt`,
`updatedAt`, `archived` and `archivedAt` (see `crmsweep.providers.hubspot`). Property definitions become
FieldSpecs; typed filters become search filter groups; batch answers (200, 201, 207) become one
WriteResult per input, in request order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from crmsweep.connectors.base import RecordFilter
from crmsweep.connectors.http_failures import one_line
from crmsweep.model import FieldKind, FieldSpec, Record, WriteResult, canonical_datetime

# Envelope keys of every CRM object, first in a snapshot's columns.
ENVELOPE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(name="id", kind=FieldKind.STRING, provider_type="object_id", nillable=False),
    FieldSpec(name="createdAt", kind=FieldKind.DATETIME, provider_type="datetime", nillable=False),
    FieldSpec(name="updatedAt", kind=FieldKind.DATETIME, provider_type="datetime", nillable=False),
    FieldSpec(name="archived", kind=FieldKind.BOOL, provider_type="bool"),
    FieldSpec(name="archivedAt", kind=FieldKind.DATETIME, provider_type="datetime"),
)
ENVELOPE_NAMES = frozenset(f.name for f in ENVELOPE_FIELDS)

# Owners are not CRM objects: a fixed shape from the owners API, `active` standing for "not archived"
# (owners of deactivated users are archived, their user id moved to userIdIncludingInactive).
OWNER_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec(name="id", kind=FieldKind.STRING, provider_type="owner_id", nillable=False),
    FieldSpec(name="email", kind=FieldKind.STRING, provider_type="string"),
    FieldSpec(name="firstName", kind=FieldKind.STRING, provider_type="string"),
    FieldSpec(name="lastName", kind=FieldKind.STRING, provider_type="string"),
    FieldSpec(name="userId", kind=FieldKind.STRING, provider_type="user_id"),
    FieldSpec(name="userIdIncludingInactive", kind=FieldKind.STRING, provider_type="user_id"),
    FieldSpec(name="type", kind=FieldKind.STRING, provider_type="enumeration"),
    FieldSpec(name="active", kind=FieldKind.BOOL, provider_type="bool"),
    FieldSpec(name="createdAt", kind=FieldKind.DATETIME, provider_type="datetime"),
    FieldSpec(name="updatedAt", kind=FieldKind.DATETIME, provider_type="datetime"),
)

# Numbers come as text and may hold more digits than a double: kept as that text (FieldKind.DECIMAL), so a
# restore writes back exactly what was backed up.
_KIND_BY_TYPE: Mapping[str, FieldKind] = {
    "number": FieldKind.DECIMAL,
    "bool": FieldKind.BOOL,
    "datetime": FieldKind.DATETIME,
    "date": FieldKind.DATE,
}
# The property search filters on for `since=` (what `updatedAt` reflects), per object type.
_MODIFIED_PROPERTY = {"contacts": "lastmodifieddate"}
DEFAULT_MODIFIED_PROPERTY = "hs_lastmodifieddate"
# Search's own bounds (api-notes §2.2): 200 a page, 10,000 results a query, 100 values in an IN.
SEARCH_PAGE = 200
SEARCH_CAP = 10_000
IN_VALUES = 100
KEYSET_PROPERTY = "hs_object_id"


def modified_property(object_name: str) -> str:
    return _MODIFIED_PROPERTY.get(object_name, DEFAULT_MODIFIED_PROPERTY)


def field_spec(definition: Mapping[str, Any]) -> FieldSpec:
    """A FieldSpec from one property definition (GET /crm/v3/properties/{type})."""
    meta = definition.get("modificationMetadata")
    meta = meta if isinstance(meta, Mapping) else {}
    kind_name = str(definition.get("type") or "string")
    writable = not meta.get("readOnlyValue", False) and not definition.get("calculated", False)
    return FieldSpec(
        name=str(definition["name"]),
        kind=_KIND_BY_TYPE.get(kind_name, FieldKind.STRING),
        provider_type=kind_name,
        nillable=True,
        createable=writable,
        updateable=writable,
        custom=not definition.get("hubspotDefined", False),
    )


def object_fields(definitions: Sequence[Mapping[str, Any]]) -> list[FieldSpec]:
    """The envelope, then every property in definition order (a property named like an envelope key
    is skipped: the envelope's value is the one HubSpot keeps for it)."""
    specs = list(ENVELOPE_FIELDS)
    specs.extend(field_spec(d) for d in definitions if str(d.get("name")) not in ENVELOPE_NAMES)
    return specs


def canonical_record(raw: Mapping[str, Any], wanted: Sequence[str] | None, kinds: Mapping[str, FieldKind]) -> Record:
    """One SimplePublicObject as a flat record: the envelope, then its properties. An empty string in a
    typed property is HubSpot's way of saying empty, and becomes None."""
    record: Record = {
        "id": str(raw.get("id")),
        "createdAt": raw.get("createdAt"),
        "updatedAt": raw.get("updatedAt"),
        "archived": bool(raw.get("archived", False)),
        "archivedAt": raw.get("archivedAt"),
    }
    properties = raw.get("properties")
    if isinstance(properties, Mapping):
        for name, value in properties.items():
            if name in ENVELOPE_NAMES:
                continue
            if value == "" and kinds.get(name, FieldKind.STRING) is not FieldKind.STRING:
                value = None
            record[name] = value
    if wanted is not None:
        keep = set(wanted) | {"id"}
        record = {k: v for k, v in record.items() if k in keep}
        for name in wanted:
            record.setdefault(name, None)
    return record


def owner_record(raw: Mapping[str, Any]) -> Record:
    def text(name: str) -> str | None:
        value = raw.get(name)
        return None if value is None else str(value)

    return {
        "id": str(raw.get("id")),
        "email": text("email"),
        "firstName": text("firstName"),
        "lastName": text("lastName"),
        "userId": text("userId"),
        "userIdIncludingInactive": text("userIdIncludingInactive"),
        "type": text("type"),
        "active": not bool(raw.get("archived", False)),
        "createdAt": text("createdAt"),
        "updatedAt": text("updatedAt"),
    }


def next_after(data: Any) -> str | None:
    """The `paging.next.after` cursor of a page, or None on the last one."""
    paging = data.get("paging") if isinstance(data, Mapping) else None
    following = paging.get("next") if isinstance(paging, Mapping) else None
    after = following.get("after") if isinstance(following, Mapping) else None
    return str(after) if after not in (None, "") else None


def property_chunks(names: Sequence[str], max_chars: int) -> list[list[str]]:
    """Split property names so each chunk's repeated `&properties=` query stays under `max_chars`."""
    chunks: list[list[str]] = [[]]
    size = 0
    for name in names:
        cost = len("&properties=") + len(quote(name, safe=""))
        if chunks[-1] and size + cost > max_chars:
            chunks.append([])
            size = 0
        chunks[-1].append(name)
        size += cost
    return [c for c in chunks if c] or [[]]


# --- search ---------------------------------------------------------------------------------------


def _epoch_ms(when: str) -> str:
    from datetime import datetime

    text = canonical_datetime(when)
    assert text is not None
    moment = datetime.fromisoformat(text[:-1] + "+00:00")
    return str(int(moment.timestamp() * 1000))


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def search_filters(object_name: str, flt: RecordFilter) -> list[dict[str, Any]]:
    """One filter group's filters (ANDed) for `flt`'s since / equals / has_value (ids are read by batch)."""
    filters: list[dict[str, Any]] = []
    if flt.since is not None:
        filters.append({"propertyName": modified_property(object_name), "operator": "GTE",
                        "value": _epoch_ms(flt.since)})
    for name, value in flt.equals.items():
        if value is None or value == "":
            filters.append({"propertyName": name, "operator": "NOT_HAS_PROPERTY"})
        else:
            filters.append({"propertyName": name, "operator": "EQ", "value": _value(value)})
    filters.extend({"propertyName": name, "operator": "HAS_PROPERTY"} for name in flt.has_value)
    return filters


def in_filters(name: str, values: Sequence[str]) -> Iterator[dict[str, Any]]:
    """`name IN values`, a filter per at most IN_VALUES values."""
    for start in range(0, len(values), IN_VALUES):
        yield {"propertyName": name, "operator": "IN", "values": list(values[start : start + IN_VALUES])}


def keyset_body(filters: Sequence[Mapping[str, Any]], properties: Sequence[str], after_id: str | None,
                offset: int, limit: int = SEARCH_PAGE) -> dict[str, Any]:
    """A search page ordered by record id; past the 10,000 cap a new query restarts from the last id seen."""
    group = [*filters]
    if after_id is not None:
        group.append({"propertyName": KEYSET_PROPERTY, "operator": "GT", "value": after_id})
    body: dict[str, Any] = {
        "filterGroups": [{"filters": group}] if group else [],
        "sorts": [{"propertyName": KEYSET_PROPERTY, "direction": "ASCENDING"}],
        "properties": list(properties),
        "limit": limit,
    }
    if offset:
        body["after"] = str(offset)
    return body


# --- batch answers ----------------------------------------------------------------------------------


def _error_text(error: Mapping[str, Any], secret: str | None) -> tuple[str, str]:
    code = str(error.get("category") or error.get("subCategory") or "UNKNOWN")
    message = str(error.get("message") or "")
    context = error.get("context")
    # A portal validation rule's name, when HubSpot gives it, is what the admin looks up.
    if isinstance(context, Mapping):
        rule = context.get("ruleName") or context.get("rule") or context.get("validationRule")
        if isinstance(rule, list):
            rule = ", ".join(str(r) for r in rule)
        if rule and str(rule) not in message:
            message = f"{message} (portal rule: {rule})" if message else f"portal rule: {rule}"
    return one_line(code, secret), one_line(message, secret)


def _context_values(error: Mapping[str, Any], key: str) -> list[str]:
    context = error.get("context")
    values = context.get(key) if isinstance(context, Mapping) else None
    if isinstance(values, list):
        return [str(v) for v in values]
    return [str(values)] if values is not None else []


def batch_results(answer: Any, keys: Sequence[str], *, key_of_result: str, key_of_error: str,
                  secret: str | None) -> list[WriteResult | None]:
    """One result per key, in `keys` order; None where the answer says nothing of that input.

    `key_of_result` names what ties a result to its input ("id" for updates, "objectWriteTraceId" for
    creates); `key_of_error` the context list in an error that names inputs ("ids", "objectWriteTraceId").
    """
    by_key: dict[str, WriteResult] = {}
    data = answer if isinstance(answer, Mapping) else {}
    for result in data.get("results") or []:
        if isinstance(result, Mapping) and result.get(key_of_result) is not None:
            by_key[str(result[key_of_result])] = WriteResult(id=str(result.get("id")), ok=True)
    for error in data.get("errors") or []:
        if not isinstance(error, Mapping):
            continue
        code, message = _error_text(error, secret)
        for key in _context_values(error, key_of_error):
            by_key.setdefault(key, WriteResult(id=None, ok=False, error_code=code, message=message))
    return [by_key.get(k) for k in keys]


def whole_batch_failure(answer: Any, secret: str | None) -> WriteResult:
    """The per-record outcome a 400 on a batch of one names (VALIDATION_ERROR and the portal rule)."""
    data = answer if isinstance(answer, Mapping) else {}
    errors = data.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], Mapping) else {}
    code, message = _error_text({**first, **{k: v for k, v in data.items() if k in ("category", "message")}}, secret)
    if first and first.get("message") and str(first["message"]) not in message:
        message = one_line(f"{message} ({first['message']})", secret)
    return WriteResult(id=None, ok=False, error_code=code, message=message)


__all__ = [
    "ENVELOPE_FIELDS",
    "OWNER_FIELDS",
    "batch_results",
    "canonical_record",
    "field_spec",
    "in_filters",
    "keyset_body",
    "modified_property",
    "next_after",
    "object_fields",
    "owner_record",
    "property_chunks",
    "search_filters",
    "whole_batch_failure",
]
