"""The HubSpot portal's object model as the sandbox serves it: object types, property definitions,
association types and the rate-limit tiers. Pure data.

Property names, types and the association type ids follow /work/shared/api-notes/hubspot.md
(§2.5, §3.1-3.6); every property value on the wire is a string, as HubSpot sends it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

# Property `type`s, as HubSpot names them.
STRING, NUMBER, DATETIME, DATE, ENUM, BOOL = "string", "number", "datetime", "date", "enumeration", "bool"
FIELD_TYPE = {STRING: "text", NUMBER: "number", DATETIME: "date", DATE: "date", ENUM: "select", BOOL: "booleancheckbox"}


@dataclass(frozen=True)
class ObjectType:
    name: str  # the plural used in paths: "contacts"
    type_id: str  # "0-1"
    singular: str  # "contact", also accepted in paths
    modified_property: str  # the property every write bumps
    primary_group: str


@dataclass(frozen=True)
class PropertyDef:
    name: str
    label: str
    type: str = STRING
    group: str = ""
    hubspot_defined: bool = True
    read_only: bool = False  # modificationMetadata.readOnlyValue: a write is an error
    calculated: bool = False
    options: tuple[str, ...] = ()
    archivable: bool = True

    def to_json(self, object_type: ObjectType, created_at: str, *, archived: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": FIELD_TYPE[self.type],
            "description": "",
            "groupName": self.group or object_type.primary_group,
            "options": [
                {"label": o.replace("_", " ").title(), "value": o, "displayOrder": i, "hidden": False}
                for i, o in enumerate(self.options)
            ],
            "displayOrder": -1,
            "calculated": self.calculated,
            "externalOptions": False,
            "hasUniqueValue": self.name == "hs_object_id",
            "hidden": False,
            "hubspotDefined": self.hubspot_defined,
            "formField": not self.read_only,
            "createdAt": created_at,
            "updatedAt": created_at,
            "archived": archived,
            "modificationMetadata": {
                "archivable": self.archivable and not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
        }
        if not self.hubspot_defined:
            data["createdUserId"] = "1"
            data["updatedUserId"] = "1"
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PropertyDef:
        meta = data.get("modificationMetadata") or {}
        return cls(
            name=str(data["name"]),
            label=str(data.get("label") or data["name"]),
            type=str(data.get("type") or STRING),
            group=str(data.get("groupName") or ""),
            hubspot_defined=bool(data.get("hubspotDefined")),
            read_only=bool(meta.get("readOnlyValue")),
            calculated=bool(data.get("calculated")),
            options=tuple(str(o.get("value")) for o in data.get("options") or () if isinstance(o, dict)),
        )


OBJECT_TYPES: dict[str, ObjectType] = {
    o.name: o
    for o in (
        ObjectType("contacts", "0-1", "contact", "lastmodifieddate", "contactinformation"),
        ObjectType("companies", "0-2", "company", "hs_lastmodifieddate", "companyinformation"),
        ObjectType("deals", "0-3", "deal", "hs_lastmodifieddate", "dealinformation"),
        ObjectType("tickets", "0-5", "ticket", "hs_lastmodifieddate", "ticketinformation"),
        ObjectType("tasks", "0-27", "task", "hs_lastmodifieddate", "taskinformation"),
        ObjectType("notes", "0-46", "note", "hs_lastmodifieddate", "engagementinformation"),
        ObjectType("meetings", "0-47", "meeting", "hs_lastmodifieddate", "engagementinformation"),
        ObjectType("calls", "0-48", "call", "hs_lastmodifieddate", "engagementinformation"),
        ObjectType("emails", "0-49", "email", "hs_lastmodifieddate", "engagementinformation"),
    )
}
_ALIASES = {
    alias: o for o in OBJECT_TYPES.values() for alias in (o.name, o.singular, o.type_id)
}


def object_type(name: str) -> ObjectType | None:
    """The object type a path names: plural, singular or objectTypeId ("contacts", "contact", "0-1")."""
    return _ALIASES.get(name.lower())


def _common(o: str) -> tuple[PropertyDef, ...]:
    """Properties every object has: id, create and modify stamps, owner."""
    modified = OBJECT_TYPES[o].modified_property
    return (
        PropertyDef("hs_object_id", "Record ID", NUMBER, read_only=True, calculated=False),
        PropertyDef("createdate" if o in ("contacts", "companies", "deals", "tickets") else "hs_createdate",
                    "Create Date", DATETIME, read_only=True),
        PropertyDef(modified, "Last Modified Date", DATETIME, read_only=True),
        PropertyDef("hubspot_owner_id", "Owner", ENUM),
    )


_ENGAGEMENT = (PropertyDef("hs_timestamp", "Activity date", DATETIME),)

DEFAULT_PROPERTIES: dict[str, tuple[PropertyDef, ...]] = {
    "contacts": (
        *_common("contacts"),
        PropertyDef("email", "Email"),
        PropertyDef("firstname", "First Name"),
        PropertyDef("lastname", "Last Name"),
        PropertyDef("phone", "Phone Number"),
        PropertyDef("mobilephone", "Mobile Phone Number"),
        PropertyDef("company", "Company Name"),
        PropertyDef("jobtitle", "Job Title"),
        PropertyDef("city", "City"),
        PropertyDef("state", "State/Region"),
        PropertyDef("country", "Country/Region"),
        PropertyDef("hs_additional_emails", "Additional email addresses", read_only=True),
        PropertyDef("lifecyclestage", "Lifecycle Stage", ENUM,
                    options=("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity",
                             "customer", "evangelist", "other")),
        PropertyDef("notes_last_updated", "Last Activity Date", DATETIME, read_only=True),
        PropertyDef("notes_last_contacted", "Last Contacted", DATETIME, read_only=True),
        PropertyDef("hs_last_sales_activity_timestamp", "Last Engagement Date", DATETIME, read_only=True),
        PropertyDef("hs_email_last_open_date", "Last marketing email open date", DATETIME, read_only=True),
        PropertyDef("hs_email_last_click_date", "Last marketing email click date", DATETIME, read_only=True),
        PropertyDef("hs_email_last_send_date", "Last marketing email send date", DATETIME, read_only=True),
        PropertyDef("hs_email_hard_bounce_reason_enum", "Email hard bounce reason", ENUM, read_only=True,
                    options=("MAILBOX_FULL", "UNKNOWN_USER", "SPAM", "OTHER")),
        PropertyDef("hs_email_hard_bounce_reason", "Email hard bounce reason (text)", read_only=True),
        PropertyDef("hs_email_bounce", "Marketing emails bounced", NUMBER, read_only=True),
        PropertyDef("hs_email_bad_address", "Invalid email address", BOOL, read_only=True),
        PropertyDef("hs_email_quarantined", "Email Address Quarantined", BOOL, read_only=True),
        PropertyDef("hs_email_optout", "Unsubscribed from all email", BOOL, read_only=True),
        PropertyDef("num_associated_deals", "Number of Associated Deals", NUMBER, read_only=True, calculated=True),
    ),
    "companies": (
        *_common("companies"),
        PropertyDef("name", "Company name"),
        PropertyDef("domain", "Company Domain Name"),
        PropertyDef("phone", "Phone Number"),
        PropertyDef("city", "City"),
        PropertyDef("state", "State/Region"),
        PropertyDef("country", "Country/Region"),
        PropertyDef("industry", "Industry", ENUM,
                    options=("COMPUTER_SOFTWARE", "MACHINERY", "RETAIL", "FINANCIAL_SERVICES", "HOSPITAL_HEALTH_CARE",
                             "EDUCATION_MANAGEMENT")),
        PropertyDef("numberofemployees", "Number of Employees", NUMBER),
        PropertyDef("annualrevenue", "Annual Revenue", NUMBER),
        PropertyDef("notes_last_updated", "Last Activity Date", DATETIME, read_only=True),
        PropertyDef("num_associated_contacts", "Number of Associated Contacts", NUMBER, read_only=True,
                    calculated=True),
    ),
    "deals": (
        *_common("deals"),
        PropertyDef("dealname", "Deal Name"),
        PropertyDef("amount", "Amount", NUMBER),
        PropertyDef("pipeline", "Pipeline", ENUM, options=("default",)),
        PropertyDef("dealstage", "Deal Stage", ENUM,
                    options=("appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
                             "contractsent", "closedwon", "closedlost")),
        PropertyDef("closedate", "Close Date", DATETIME),
        PropertyDef("hs_is_closed", "Is Deal Closed?", BOOL, read_only=True, calculated=True),
        PropertyDef("num_associated_contacts", "Number of Associated Contacts", NUMBER, read_only=True,
                    calculated=True),
    ),
    "tickets": (
        *_common("tickets"),
        PropertyDef("subject", "Ticket name"),
        PropertyDef("content", "Ticket description"),
        PropertyDef("hs_pipeline", "Pipeline", ENUM, options=("0",)),
        PropertyDef("hs_pipeline_stage", "Ticket status", ENUM, options=("1", "2", "3", "4")),
        PropertyDef("hs_ticket_priority", "Priority", ENUM, options=("LOW", "MEDIUM", "HIGH")),
    ),
    "tasks": (
        *_common("tasks"),
        *_ENGAGEMENT,
        PropertyDef("hs_task_subject", "Task Title"),
        PropertyDef("hs_task_body", "Task notes"),
        PropertyDef("hs_task_status", "Task Status", ENUM, options=("NOT_STARTED", "IN_PROGRESS", "WAITING",
                                                                     "COMPLETED", "DEFERRED")),
        PropertyDef("hs_task_priority", "Priority", ENUM, options=("LOW", "MEDIUM", "HIGH")),
        PropertyDef("hs_task_type", "Task Type", ENUM, options=("TODO", "CALL", "EMAIL")),
    ),
    "notes": (*_common("notes"), *_ENGAGEMENT, PropertyDef("hs_note_body", "Note body")),
    "meetings": (*_common("meetings"), *_ENGAGEMENT, PropertyDef("hs_meeting_title", "Meeting name"),
                 PropertyDef("hs_meeting_start_time", "Start Time", DATETIME),
                 PropertyDef("hs_meeting_end_time", "End Time", DATETIME)),
    "calls": (*_common("calls"), *_ENGAGEMENT, PropertyDef("hs_call_title", "Call Title"),
              PropertyDef("hs_call_body", "Call notes"), PropertyDef("hs_call_duration", "Call duration", NUMBER)),
    "emails": (*_common("emails"), *_ENGAGEMENT, PropertyDef("hs_email_subject", "Email subject"),
               PropertyDef("hs_email_text", "Email body"), PropertyDef("hs_email_direction", "Email direction", ENUM,
                                                                        options=("EMAIL", "INCOMING_EMAIL"))),
}

# The default property groups of each object; custom properties land in their object's primary group.
PROPERTY_GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    name: ((o.primary_group, o.singular.title() + " information"),
           *((("emailinformation", "Email information"),) if name == "contacts" else ()))
    for name, o in OBJECT_TYPES.items()
}
EMAIL_GROUP_PROPERTIES = frozenset(p.name for p in DEFAULT_PROPERTIES["contacts"] if p.name.startswith("hs_email_"))


def default_group(object_name: str, prop: PropertyDef) -> str:
    if prop.group:
        return prop.group
    if object_name == "contacts" and prop.name in EMAIL_GROUP_PROPERTIES:
        return "emailinformation"
    return OBJECT_TYPES[object_name].primary_group


# Calculated properties the sandbox derives from associations when they are read or filtered on.
ASSOCIATION_COUNTS: dict[tuple[str, str], str] = {
    ("companies", "num_associated_contacts"): "contacts",
    ("deals", "num_associated_contacts"): "contacts",
    ("contacts", "num_associated_deals"): "deals",
}

CLOSED_DEAL_STAGES = frozenset(("closedwon", "closedlost"))


@dataclass(frozen=True)
class AssociationType:
    from_type: str
    to_type: str
    type_id: int
    label: str | None = None
    category: str = "HUBSPOT_DEFINED"


def _pair(a: str, b: str, forward: int, backward: int, label: str | None = None) -> tuple[AssociationType, ...]:
    return AssociationType(a, b, forward, label), AssociationType(b, a, backward, label)


# HubSpot's default association types (api-notes §2.5); the "Primary" ones beside the unlabelled default.
ASSOCIATION_TYPES: tuple[AssociationType, ...] = (
    *_pair("contacts", "companies", 279, 280),
    *_pair("contacts", "companies", 1, 2, "Primary"),
    *_pair("contacts", "deals", 4, 3),
    *_pair("deals", "companies", 341, 342),
    *_pair("deals", "companies", 5, 6, "Primary"),
    *_pair("contacts", "tasks", 203, 204),
    *_pair("tasks", "deals", 216, 215),
    *_pair("companies", "tasks", 191, 192),
    *_pair("contacts", "calls", 193, 194),
    *_pair("contacts", "emails", 197, 198),
    *_pair("contacts", "meetings", 199, 200),
    *_pair("contacts", "notes", 201, 202),
    *_pair("contacts", "tickets", 15, 16),
    *_pair("companies", "tickets", 340, 339),
    *_pair("deals", "tickets", 27, 28),
)


@cache
def association_types(from_type: str, to_type: str) -> tuple[AssociationType, ...]:
    return tuple(a for a in ASSOCIATION_TYPES if a.from_type == from_type and a.to_type == to_type)


def default_association(from_type: str, to_type: str) -> AssociationType | None:
    """The unlabelled type `batch/associate/default` and `…/associations/default/…` use."""
    return next((a for a in association_types(from_type, to_type) if a.label is None), None)


@cache
def inverse_association(assoc: AssociationType) -> AssociationType | None:
    """The same link seen from the other end (279 <-> 280)."""
    forward = association_types(assoc.from_type, assoc.to_type)
    backward = association_types(assoc.to_type, assoc.from_type)
    for a, b in zip(forward, backward, strict=False):
        if a.type_id == assoc.type_id:
            return b
    return None


@dataclass(frozen=True)
class Tier:
    """A HubSpot subscription tier's private-app limits (api-notes §4.1)."""

    name: str
    ten_secondly: int
    daily: int
    search_per_second: int = 5


TIERS: dict[str, Tier] = {
    "starter": Tier("starter", 100, 250_000),
    "professional": Tier("professional", 190, 625_000),
    "enterprise": Tier("enterprise", 190, 1_000_000),
}
DEFAULT_TIER = "professional"
