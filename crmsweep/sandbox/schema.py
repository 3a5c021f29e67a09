"""The Salesforce sandbox's object model: which objects exist, their fields, and how they relate.

Shared by the SOQL compiler (`soql.py`), the store and the describe endpoint, so all three agree.
Storage convention (SQLite): one table per object, named exactly like the object; one column per
field, named exactly like the field. Booleans are INTEGER 0/1, int INTEGER, double/currency/percent
REAL, date TEXT 'YYYY-MM-DD', datetime TEXT 'YYYY-MM-DDTHH:MM:SS.mmm+0000' (always UTC, so text order
is time order), everything else TEXT. Internal bookkeeping columns start with an underscore and are
never exposed through the API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Salesforce field types used here (describe `type` values).
ID = "id"
STRING = "string"
BOOLEAN = "boolean"
INT = "int"
DOUBLE = "double"
CURRENCY = "currency"
PERCENT = "percent"
DATE = "date"
DATETIME = "datetime"
REFERENCE = "reference"
PICKLIST = "picklist"
EMAIL = "email"
PHONE = "phone"
TEXTAREA = "textarea"
URL = "url"

SQL_TYPES = {
    BOOLEAN: "INTEGER",
    INT: "INTEGER",
    DOUBLE: "REAL",
    CURRENCY: "REAL",
    PERCENT: "REAL",
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    label: str = ""
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    calculated: bool = False  # derived by the platform (Name, IsClosed...): read-only
    custom: bool = False
    length: int = 0
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    cascade_delete: bool = False  # deleting the referenced parent deletes this row too
    picklist: tuple[str, ...] = ()
    default: object = None

    @property
    def sql_type(self) -> str:
        return SQL_TYPES.get(self.type, "TEXT")

    @property
    def display_label(self) -> str:
        return self.label or self.name


@dataclass(frozen=True)
class SObject:
    name: str
    key_prefix: str
    fields: tuple[Field, ...]
    label: str = ""
    deletable: bool = True
    undeletable: bool = True
    createable: bool = True
    updateable: bool = True
    has_is_deleted: bool = True
    setup_object: bool = False  # User: may not share a collections call with data objects
    _by_name: dict[str, Field] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({f.name.lower(): f for f in self.fields})

    def field(self, name: str) -> Field | None:
        """Case-insensitive lookup, as SOQL is."""
        return self._by_name.get(name.lower())

    def relationship(self, name: str) -> Field | None:
        """The reference field whose relationshipName is `name` (case-insensitive)."""
        for f in self.fields:
            if f.relationship_name and f.relationship_name.lower() == name.lower():
                return f
        return None


LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Trade Show")


def _audit(has_is_deleted: bool = True) -> tuple[Field, ...]:
    fields = [
        Field("CreatedDate", DATETIME, "Created Date", nillable=False, createable=False, updateable=False),
        Field("CreatedById", REFERENCE, "Created By ID", nillable=False, createable=False, updateable=False,
              reference_to=("User",), relationship_name="CreatedBy"),
        Field("LastModifiedDate", DATETIME, "Last Modified Date", nillable=False, createable=False,
              updateable=False),
        Field("LastModifiedById", REFERENCE, "Last Modified By ID", nillable=False, createable=False,
              updateable=False, reference_to=("User",), relationship_name="LastModifiedBy"),
        Field("SystemModstamp", DATETIME, "System Modstamp", nillable=False, createable=False, updateable=False),
    ]
    if has_is_deleted:
        fields.insert(0, Field("IsDeleted", BOOLEAN, "Deleted", nillable=False, createable=False,
                               updateable=False, default=False))
    return tuple(fields)


def _id() -> Field:
    return Field("Id", ID, "Record ID", nillable=False, createable=False, updateable=False)


def _owner() -> Field:
    return Field("OwnerId", REFERENCE, "Owner ID", nillable=False, reference_to=("User",),
                 relationship_name="Owner")


def _name_of_person() -> Field:
    return Field("Name", STRING, "Full Name", createable=False, updateable=False, calculated=True)


ORGANIZATION = SObject(
    "Organization", "00D",
    (
        _id(),
        Field("Name", STRING, "Name"),
        Field("OrganizationType", STRING, "Edition", createable=False, updateable=False),
        Field("InstanceName", STRING, "Instance Name", createable=False, updateable=False),
        Field("IsSandbox", BOOLEAN, "Is Sandbox", nillable=False, createable=False, updateable=False),
        *_audit(has_is_deleted=False),
    ),
    label="Organization", deletable=False, undeletable=False, createable=False, has_is_deleted=False,
)

USER = SObject(
    "User", "005",
    (
        _id(),
        Field("Username", STRING, "Username", nillable=False),
        Field("FirstName", STRING, "First Name"),
        Field("LastName", STRING, "Last Name", nillable=False),
        _name_of_person(),
        Field("Email", EMAIL, "Email", nillable=False),
        Field("Title", STRING, "Title"),
        Field("Department", STRING, "Department"),
        Field("IsActive", BOOLEAN, "Active", nillable=False, default=True),
        Field("UserType", PICKLIST, "User Type", createable=False, updateable=False,
              picklist=("Standard", "AutomatedProcess")),
        Field("ManagerId", REFERENCE, "Manager ID", reference_to=("User",), relationship_name="Manager"),
        Field("LastLoginDate", DATETIME, "Last Login", createable=False, updateable=False),
        *_audit(has_is_deleted=False),
    ),
    label="User", deletable=False, undeletable=False, has_is_deleted=False, setup_object=True,
)

ACCOUNT = SObject(
    "Account", "001",
    (
        _id(),
        *_audit()[:1],
        Field("Name", STRING, "Account Name", nillable=False),
        Field("Type", PICKLIST, "Account Type", picklist=("Prospect", "Customer", "Partner", "Other")),
        Field("Industry", PICKLIST, "Industry",
              picklist=("Technology", "Manufacturing", "Retail", "Finance", "Healthcare", "Education")),
        Field("BillingCity", STRING, "Billing City"),
        Field("BillingState", STRING, "Billing State/Province"),
        Field("BillingCountry", STRING, "Billing Country"),
        Field("Phone", PHONE, "Account Phone"),
        Field("Website", URL, "Website"),
        Field("NumberOfEmployees", INT, "Employees"),
        Field("AnnualRevenue", CURRENCY, "Annual Revenue"),
        _owner(),
        Field("LastActivityDate", DATE, "Last Activity", createable=False, updateable=False),
        *_audit()[1:],
    ),
    label="Account",
)

CONTACT = SObject(
    "Contact", "003",
    (
        _id(),
        *_audit()[:1],
        Field("AccountId", REFERENCE, "Account ID", reference_to=("Account",), relationship_name="Account",
              cascade_delete=True),
        Field("FirstName", STRING, "First Name"),
        Field("LastName", STRING, "Last Name", nillable=False),
        _name_of_person(),
        Field("Title", STRING, "Title"),
        Field("Email", EMAIL, "Email"),
        Field("Phone", PHONE, "Business Phone"),
        Field("MobilePhone", PHONE, "Mobile Phone"),
        Field("MailingCity", STRING, "Mailing City"),
        Field("MailingState", STRING, "Mailing State/Province"),
        Field("MailingCountry", STRING, "Mailing Country"),
        Field("LeadSource", PICKLIST, "Lead Source", picklist=LEAD_SOURCES),
        Field("HasOptedOutOfEmail", BOOLEAN, "Email Opt Out", nillable=False, default=False),
        Field("EmailBouncedReason", STRING, "Email Bounced Reason"),
        Field("EmailBouncedDate", DATETIME, "Email Bounced Date"),
        Field("IsEmailBounced", BOOLEAN, "Is Email Bounced", nillable=False, createable=False,
              updateable=False, calculated=True, default=False),
        Field("Description", TEXTAREA, "Contact Description"),
        _owner(),
        Field("LastActivityDate", DATE, "Last Activity", createable=False, updateable=False),
        *_audit()[1:],
    ),
    label="Contact",
)

LEAD = SObject(
    "Lead", "00Q",
    (
        _id(),
        *_audit()[:1],
        Field("FirstName", STRING, "First Name"),
        Field("LastName", STRING, "Last Name", nillable=False),
        _name_of_person(),
        Field("Company", STRING, "Company", nillable=False),
        Field("Title", STRING, "Title"),
        Field("Email", EMAIL, "Email"),
        Field("Phone", PHONE, "Phone"),
        Field("MobilePhone", PHONE, "Mobile Phone"),
        Field("City", STRING, "City"),
        Field("State", STRING, "State/Province"),
        Field("Country", STRING, "Country"),
        Field("Status", PICKLIST, "Status", nillable=False,
              picklist=("Open - Not Contacted", "Working - Contacted", "Closed - Converted",
                        "Closed - Not Converted")),
        Field("LeadSource", PICKLIST, "Lead Source", picklist=LEAD_SOURCES),
        Field("IsConverted", BOOLEAN, "Converted", nillable=False, createable=False, updateable=False,
              default=False),
        Field("HasOptedOutOfEmail", BOOLEAN, "Email Opt Out", nillable=False, default=False),
        Field("EmailBouncedReason", STRING, "Email Bounced Reason"),
        Field("EmailBouncedDate", DATETIME, "Email Bounced Date"),
        _owner(),
        Field("LastActivityDate", DATE, "Last Activity", createable=False, updateable=False),
        *_audit()[1:],
    ),
    label="Lead",
)

OPPORTUNITY = SObject(
    "Opportunity", "006",
    (
        _id(),
        *_audit()[:1],
        Field("AccountId", REFERENCE, "Account ID", reference_to=("Account",), relationship_name="Account",
              cascade_delete=True),
        Field("Name", STRING, "Name", nillable=False),
        Field("StageName", PICKLIST, "Stage", nillable=False,
              picklist=("Prospecting", "Qualification", "Proposal/Price Quote", "Negotiation/Review",
                        "Closed Won", "Closed Lost")),
        Field("Amount", CURRENCY, "Amount"),
        Field("Probability", PERCENT, "Probability (%)"),
        Field("CloseDate", DATE, "Close Date", nillable=False),
        Field("IsClosed", BOOLEAN, "Closed", nillable=False, createable=False, updateable=False,
              calculated=True, default=False),
        Field("IsWon", BOOLEAN, "Won", nillable=False, createable=False, updateable=False, calculated=True,
              default=False),
        _owner(),
        Field("LastActivityDate", DATE, "Last Activity", createable=False, updateable=False),
        *_audit()[1:],
    ),
    label="Opportunity",
)

OPPORTUNITY_CONTACT_ROLE = SObject(
    "OpportunityContactRole", "00K",
    (
        _id(),
        *_audit()[:1],
        Field("OpportunityId", REFERENCE, "Opportunity ID", nillable=False, updateable=False,
              reference_to=("Opportunity",), relationship_name="Opportunity", cascade_delete=True),
        Field("ContactId", REFERENCE, "Contact ID", nillable=False, reference_to=("Contact",),
              relationship_name="Contact", cascade_delete=True),
        Field("Role", PICKLIST, "Role", picklist=("Decision Maker", "Evaluator", "Influencer", "Other")),
        Field("IsPrimary", BOOLEAN, "Primary", nillable=False, default=False),
        *_audit()[1:],
    ),
    label="Opportunity Contact Role",
)

TASK = SObject(
    "Task", "00T",
    (
        _id(),
        *_audit()[:1],
        Field("WhoId", REFERENCE, "Name ID", reference_to=("Contact", "Lead"), relationship_name="Who",
              cascade_delete=True),
        Field("WhatId", REFERENCE, "Related To ID", reference_to=("Account", "Opportunity"),
              relationship_name="What", cascade_delete=True),
        # Derived from WhatId/WhoId by the platform (Object Reference, Task.AccountId).
        Field("AccountId", REFERENCE, "Account ID", createable=False, updateable=False, calculated=True,
              reference_to=("Account",), relationship_name="Account"),
        Field("Subject", STRING, "Subject"),
        Field("Status", PICKLIST, "Status", nillable=False,
              picklist=("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")),
        Field("Priority", PICKLIST, "Priority", nillable=False, picklist=("High", "Normal", "Low")),
        Field("ActivityDate", DATE, "Due Date Only"),
        Field("IsClosed", BOOLEAN, "Closed", nillable=False, createable=False, updateable=False,
              calculated=True, default=False),
        Field("CompletedDateTime", DATETIME, "Completed Date/Time", createable=False, updateable=False),
        Field("Description", TEXTAREA, "Description"),
        _owner(),
        *_audit()[1:],
    ),
    label="Task",
)

OBJECTS: dict[str, SObject] = {
    o.name: o
    for o in (ORGANIZATION, USER, ACCOUNT, CONTACT, LEAD, OPPORTUNITY, OPPORTUNITY_CONTACT_ROLE, TASK)
}
BY_KEY_PREFIX: dict[str, SObject] = {o.key_prefix: o for o in OBJECTS.values()}


def get_object(name: str) -> SObject | None:
    """Case-insensitive object lookup, as the REST API is for sobject names in SOQL."""
    for obj in OBJECTS.values():
        if obj.name.lower() == name.lower():
            return obj
    return None


def children_of(parent: str) -> list[tuple[SObject, Field]]:
    """(child object, reference field) pairs that point at `parent`: describe's childRelationships."""
    return [
        (obj, f)
        for obj in OBJECTS.values()
        for f in obj.fields
        if f.type == REFERENCE and parent in f.reference_to
    ]
