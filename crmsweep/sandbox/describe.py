"""Salesforce's describe, version and limits documents for the sandbox's object model. Pure data."""

from __future__ import annotations

from typing import Any

from crmsweep.sandbox import schema
from crmsweep.sandbox.rules import PICKLIST_DEFAULTS, default_json, defaulted_on_create, field_length
from crmsweep.sandbox.schema import OBJECTS, Field, SObject

MIN_VERSION = 50
MAX_VERSION = 62
_RELEASES = {50: "Winter '21", 51: "Spring '21", 52: "Summer '21", 53: "Winter '22", 54: "Spring '22",
             55: "Summer '22", 56: "Winter '23", 57: "Spring '23", 58: "Summer '23", 59: "Winter '24",
             60: "Spring '24", 61: "Summer '24", 62: "Winter '25"}
_NUMBERS = frozenset({schema.DOUBLE, schema.CURRENCY, schema.PERCENT})
_NOT_GROUPABLE = frozenset({schema.TEXTAREA, schema.DOUBLE, schema.CURRENCY, schema.PERCENT, schema.DATETIME})


def versions() -> list[dict[str, str]]:
    return [
        {"label": _RELEASES[n], "url": f"/services/data/v{n}.0", "version": f"{n}.0"}
        for n in range(MIN_VERSION, MAX_VERSION + 1)
    ]


def resources(version: str) -> dict[str, str]:
    base = f"/services/data/v{version}"
    return {name: f"{base}/{name}" for name in ("sobjects", "query", "queryAll", "limits", "composite", "analytics")}


def _urls(obj: SObject, version: str) -> dict[str, str]:
    base = f"/services/data/v{version}/sobjects/{obj.name}"
    return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}


def object_summary(obj: SObject, version: str) -> dict[str, Any]:
    label = obj.label or obj.name
    return {
        "name": obj.name,
        "label": label,
        "labelPlural": label + "s",
        "keyPrefix": obj.key_prefix,
        "custom": obj.custom,
        "customSetting": False,
        "queryable": True,
        "retrieveable": True,
        "searchable": obj.name != "Organization",
        "createable": obj.createable,
        "updateable": obj.updateable,
        "deletable": obj.deletable,
        "undeletable": obj.undeletable,
        "triggerable": obj.name != "Organization",
        "layoutable": obj.name != "Organization",
        "replicateable": True,
        "urls": _urls(obj, version),
    }


def global_describe(version: str) -> dict[str, Any]:
    return {
        "encoding": "UTF-8",
        "maxBatchSize": 200,
        "sobjects": [object_summary(obj, version) for obj in OBJECTS.values()],
    }


def _field(obj: SObject, f: Field) -> dict[str, Any]:
    is_long_text = f.type == schema.TEXTAREA
    return {
        "name": f.name,
        "label": f.display_label,
        "type": f.type,
        "custom": f.custom,
        "nillable": f.nillable,
        "createable": f.createable,
        "updateable": f.updateable,
        "filterable": not is_long_text,
        "sortable": not is_long_text,
        "groupable": f.type not in _NOT_GROUPABLE,
        "aggregatable": f.type not in (schema.TEXTAREA, schema.BOOLEAN),
        "calculated": f.calculated,
        "length": field_length(f) if f.type not in (schema.BOOLEAN, schema.DATE, schema.DATETIME) else 0,
        # double/currency/percent: digits in all and after the point (Salesforce's precision is at most 18).
        "precision": (f.precision or 18) if f.type in _NUMBERS else 0,
        "scale": f.scale if f.type in _NUMBERS else 0,
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship_name,
        "defaultedOnCreate": defaulted_on_create(obj, f),
        "defaultValue": default_json(f),
        "externalId": False,
        "unique": False,
        "idLookup": f.name == "Id",
        "cascadeDelete": False,
        "restrictedPicklist": False,
        "picklistValues": [
            {"value": v, "label": v, "active": True, "defaultValue": PICKLIST_DEFAULTS.get((obj.name, f.name)) == v,
             "validFor": None}
            for v in f.picklist
        ],
    }


def describe(obj: SObject, version: str) -> dict[str, Any]:
    children = [
        {
            "childSObject": child.name,
            "field": f.name,
            "relationshipName": _child_relationship_name(child, f),
            "cascadeDelete": f.cascade_delete,
            "restrictedDelete": False,
            "deprecatedAndHidden": False,
        }
        for child, f in schema.children_of(obj.name)
    ]
    return {
        **object_summary(obj, version),
        "fields": [_field(obj, f) for f in obj.fields],
        "childRelationships": children,
        "recordTypeInfos": [],
    }


def _child_relationship_name(child: SObject, f: Field) -> str | None:
    # The platform names only some child relationships (Account.Contacts); audit lookups have none.
    if f.name in ("CreatedById", "LastModifiedById", "OwnerId", "ManagerId", "FolderId", "RunningUserId"):
        return None
    if child.name in ("Task", "Event"):  # AccountId is derived; its relationship stays unnamed
        return None if f.name == "AccountId" else child.name + "s"
    return {"OpportunityContactRole": "OpportunityContactRoles"}.get(child.name, child.name + "s")


def limits(api_limit: int, used: int) -> dict[str, dict[str, int]]:
    return {
        "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
        "DailyApiRequests": {"Max": api_limit, "Remaining": max(api_limit - used, 0)},
        "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
        "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
        "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
        "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
        "DataStorageMB": {"Max": 5, "Remaining": 5},
        "FileStorageMB": {"Max": 20, "Remaining": 20},
        "HourlyTimeBasedWorkflow": {"Max": 50, "Remaining": 50},
        "SingleEmail": {"Max": 15, "Remaining": 15},
    }
