"""CRM search requests (POST /crm/v3/objects/{type}/search) compiled to SQL over `hs_object`.

Semantics from HubSpot's search guide (api-notes §2.2): filters in a group are ANDed, groups ORed;
at most 5 groups and 18 filters; one sort; string values compare case-insensitively, enumeration
values case-sensitively; datetimes take epoch milliseconds or ISO strings; archived records never
match. `associations.{type}` with EQ finds records linked to that id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from crmsweep.sandbox.hubspot_schema import (
    ASSOCIATION_COUNTS,
    BOOL,
    DATE,
    DATETIME,
    ENUM,
    NUMBER,
    PropertyDef,
    object_type,
)
from crmsweep.sandbox.hubspot_store import ARCHIVED, table
from crmsweep.sandbox.hubspot_values import format_ts, normalize_number, parse_ts

MAX_GROUPS = 5
MAX_FILTERS = 18
MAX_QUERY_CHARS = 3000
QUERY_PROPERTIES = {
    "contacts": ("firstname", "lastname", "email", "phone", "company", "hs_additional_emails"),
    "companies": ("name", "domain", "phone"),
    "deals": ("dealname",),
    "tickets": ("subject", "content"),
}
_COMPARISONS = {"LT": "<", "LTE": "<=", "GT": ">", "GTE": ">=", "EQ": "=", "NEQ": "!="}


class SearchError(Exception):
    """A search request HubSpot answers with 400 VALIDATION_ERROR."""


@dataclass(frozen=True)
class CompiledSearch:
    where: str
    params: tuple[object, ...]
    order_by: str


def property_sql(type_name: str, prop: PropertyDef) -> str:
    """The SQL expression for a property's value on an `o` row of hs_object (typed for comparison)."""
    counted = ASSOCIATION_COUNTS.get((type_name, prop.name))
    if counted is not None:
        return association_count_sql(type_name, counted)
    if prop.name == "hs_object_id":
        return "o.Id"
    raw = f"json_extract(o.props, '$.\"{prop.name}\"')"
    if prop.type == NUMBER:
        return f"CAST({raw} AS REAL)"
    return raw


def association_count_sql(type_name: str, counted: str) -> str:
    return (
        f"(SELECT COUNT(DISTINCT a.to_id) FROM hs_association a JOIN \"{table(counted)}\" t ON t.Id = a.to_id "
        f"AND t.{ARCHIVED} = 0 WHERE a.from_type = '{type_name}' AND a.from_id = o.Id AND a.to_type = '{counted}')"
    )


def _value(prop: PropertyDef, raw: object) -> object:
    text = str(raw).lower() if isinstance(raw, bool) else str(raw)
    if prop.name == "hs_object_id":
        if not text.strip().lstrip("-").isdigit():
            raise SearchError(f"{text} is not a valid record id for hs_object_id")
        return int(text)
    if prop.type == NUMBER:
        number = normalize_number(text)
        if number is None:
            raise SearchError(f"{text} is not a valid number for property {prop.name}")
        return float(number)
    if prop.type in (DATETIME, DATE):
        moment = parse_ts(text)
        if moment is None:
            raise SearchError(f"{text} is not a valid datetime for property {prop.name}")
        return format_ts(moment) if prop.type == DATETIME else moment.date().isoformat()
    if prop.type == ENUM or prop.name == "hubspot_owner_id":
        return text
    return text.lower()


def _case(prop: PropertyDef, expression: str) -> str:
    """Strings and booleans compare case-insensitively; enumerations exactly."""
    if prop.type in (NUMBER, DATETIME, DATE, ENUM) or prop.name in ("hs_object_id", "hubspot_owner_id"):
        return expression
    return f"lower({expression})"


def _filter_sql(
    type_name: str, properties: Mapping[str, PropertyDef], f: Mapping[str, Any]
) -> tuple[str, list[object]]:
    name = f.get("propertyName")
    operator = str(f.get("operator") or "EQ").upper()
    if not isinstance(name, str) or not name:
        raise SearchError("Each filter needs a propertyName")
    if name.startswith("associations."):
        target = object_type(name.split(".", 1)[1])
        if target is None or operator not in ("EQ", "IN"):
            raise SearchError(f"Invalid association filter {name} {operator}")
        values = f.get("values") if operator == "IN" else [f.get("value")]
        ids = [int(str(v)) for v in values or () if str(v).isdigit()]
        marks = ",".join("?" * len(ids)) or "NULL"
        return (
            f"EXISTS (SELECT 1 FROM hs_association a WHERE a.from_type = '{type_name}' AND a.from_id = o.Id "
            f"AND a.to_type = '{target.name}' AND a.to_id IN ({marks}))", list(ids)
        )
    prop = properties.get(name)
    if prop is None:
        raise SearchError(f"Property {name} does not exist on {type_name}")
    column = _case(prop, property_sql(type_name, prop))
    present = f"({column} IS NOT NULL AND {column} != '')"
    if operator == "HAS_PROPERTY":
        return present, []
    if operator == "NOT_HAS_PROPERTY":
        return f"NOT {present}", []
    if operator in _COMPARISONS:
        if "value" not in f:
            raise SearchError(f"Operator {operator} needs a value")
        sql = f"{column} {_COMPARISONS[operator]} ?"
        if operator == "NEQ":  # HubSpot's NEQ also matches records without a value
            sql = f"({column} IS NULL OR {sql})"
        return sql, [_value(prop, f["value"])]
    if operator == "BETWEEN":
        if "value" not in f or "highValue" not in f:
            raise SearchError("BETWEEN needs value and highValue")
        return f"{column} BETWEEN ? AND ?", [_value(prop, f["value"]), _value(prop, f["highValue"])]
    if operator in ("IN", "NOT_IN"):
        values = f.get("values")
        if not isinstance(values, list) or not values:
            raise SearchError(f"Operator {operator} needs a non-empty values list")
        marks = ",".join("?" * len(values))
        sql = f"{column} IN ({marks})"
        if operator == "NOT_IN":
            sql = f"({column} IS NULL OR {column} NOT IN ({marks}))"
        return sql, [_value(prop, v) for v in values]
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(f.get("value", "")).lower()
        pattern = token.replace("%", "").replace("*", "%") if "*" in token else f"%{token}%"
        sql = f"lower({property_sql(type_name, prop)}) LIKE ?"
        if operator == "NOT_CONTAINS_TOKEN":
            sql = f"NOT COALESCE({sql}, 0)"
        return sql, [pattern]
    raise SearchError(f"Unknown filter operator {operator}")


def compile_search(type_name: str, properties: Mapping[str, PropertyDef], body: Mapping[str, Any]) -> CompiledSearch:
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or not all(isinstance(g, dict) for g in groups):
        raise SearchError("filterGroups must be a list of objects")
    if len(groups) > MAX_GROUPS:
        raise SearchError(f"Too many filter groups: at most {MAX_GROUPS} are allowed")
    filters_total = sum(len(g.get("filters") or []) for g in groups)
    if filters_total > MAX_FILTERS:
        raise SearchError(f"Too many filters: at most {MAX_FILTERS} across all filter groups are allowed")
    clauses = [f"o.{ARCHIVED} = 0"]  # archived records never appear in search
    params: list[object] = []
    ored: list[str] = []
    for group in groups:
        anded: list[str] = []
        for f in group.get("filters") or []:
            if not isinstance(f, dict):
                raise SearchError("Each filter must be an object")
            sql, values = _filter_sql(type_name, properties, f)
            anded.append(sql)
            params += values
        if anded:
            ored.append("(" + " AND ".join(anded) + ")")
    if ored:
        clauses.append("(" + " OR ".join(ored) + ")")
    query = body.get("query")
    if isinstance(query, str) and query.strip():
        if len(query) > MAX_QUERY_CHARS:
            raise SearchError(f"The query is longer than {MAX_QUERY_CHARS} characters")
        searched = [p for p in QUERY_PROPERTIES.get(type_name, ()) if p in properties]
        if searched:
            clauses.append("(" + " OR ".join(
                f"lower(json_extract(o.props, '$.\"{p}\"')) LIKE ?" for p in searched
            ) + ")")
            params += [f"%{query.strip().lower()}%"] * len(searched)
    return CompiledSearch(" AND ".join(clauses), tuple(params), _order_by(type_name, properties, body.get("sorts")))


def _order_by(type_name: str, properties: Mapping[str, PropertyDef], sorts: object) -> str:
    if not sorts:
        return "o.created_at, o.Id"  # HubSpot's default: creation, oldest first
    if not isinstance(sorts, Sequence) or isinstance(sorts, str) or len(sorts) > 1:
        raise SearchError("Only one sort is allowed")
    sort = sorts[0]
    if isinstance(sort, str):  # the SDK's older form: "-createdate" or "createdate"
        name, direction = sort.lstrip("-"), "DESCENDING" if sort.startswith("-") else "ASCENDING"
    elif isinstance(sort, dict):
        name, direction = str(sort.get("propertyName")), str(sort.get("direction") or "ASCENDING").upper()
    else:
        raise SearchError("A sort is an object with propertyName and direction")
    prop = properties.get(name)
    if prop is None:
        raise SearchError(f"Property {name} does not exist on {type_name}")
    order = "DESC" if direction == "DESCENDING" else "ASC"
    expression = property_sql(type_name, prop)
    if prop.type == BOOL:
        expression = f"lower({expression})"
    return f"{expression} {order}, o.Id {order}"
