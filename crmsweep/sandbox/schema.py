"""The Salesforce sandbox's object model: which objects exist, their fields, and how they relate.

Shared by the SOQL compiler (`soql.py`), the store and the describe endpoint, so all three agree.
Storage convention (SQLite): one table per object, named exactly like the object; one column per
field, named exactly like the field. Booleans are INTEGER 0/1, int INTEGER, double/currency/percent
TEXT holding the exact decimal (Salesforce keeps up to 18 digits, more than a double: compared as REAL
in SOQL filters and ordering), date TEXT 'YYYY-MM-DD', datetime TEXT 'YYYY-MM-DDTHH:MM:SS.mmm+0000'
(always UTC, so text order is time order), everything else TEXT. Internal bookkeeping columns start
with an underscore and are never exposed through the API.
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
    # Exact decimal text, not REAL: an 18-digit number(18,0) or currency(16,2) does not fit in a double.
    DOUBLE: "TEXT",
    CURRENCY: "TEXT",
    PERCENT: "TEXT",
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
    # double/currency/percent: describe's `precision` (digits in all, at most 18) and `scale` (digits after
    # the point); a value is rounded to `scale`, and one with more digits before the point than
    # precision - scale is refused. 0 for other types.
    precision: int = 0
    scale: int = 0

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

    @property
    def custom(self) -> bool:
        """An org's own object: describe's `custom`, known by the API name's suffix."""
        return self.name.endswith("__c")

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


def _activity_links() -> tuple[Field, ...]:
    """Who and what a Task or Event is about, and the account it rolls up to."""
    return (
        Field("WhoId", REFERENCE, "Name ID", reference_to=("Contact", "Lead"), relationship_name="Who",
              cascade_delete=True),
        Field("WhatId", REFERENCE, "Related To ID", reference_to=("Account", "Opportunity"),
              relationship_name="What", cascade_delete=True),
        # Derived by the platform from WhatId, else WhoId (Object Reference, Task.AccountId).
        Field("AccountId", REFERENCE, "Account ID", createable=False, updateable=False, calculated=True,
              reference_to=("Account",), relationship_name="Account"),
    )


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
        Field("AnnualRevenue", CURRENCY, "Annual Revenue", precision=18, scale=0),
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
        Field("Amount", CURRENCY, "Amount", precision=16, scale=2),
        Field("Probability", PERCENT, "Probability (%)", precision=3, scale=0),
        Field("ForecastCategoryName", PICKLIST, "Forecast Category",
              picklist=("Omitted", "Pipeline", "Best Case", "Commit", "Closed")),
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
        *_activity_links(),
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

EVENT = SObject(
    "Event", "00U",
    (
        _id(),
        *_audit()[:1],
        *_activity_links(),
        Field("Subject", STRING, "Subject"),
        Field("Location", STRING, "Location"),
        Field("IsAllDayEvent", BOOLEAN, "All-Day Event", nillable=False, default=False),
        # The platform keeps these five consistent (rules.event_times).
        Field("ActivityDateTime", DATETIME, "Due Date Time"),
        Field("ActivityDate", DATE, "Due Date Only"),
        Field("StartDateTime", DATETIME, "Start Date Time"),
        Field("EndDateTime", DATETIME, "End Date Time"),
        Field("DurationInMinutes", INT, "Duration"),
        Field("Description", TEXTAREA, "Description"),
        _owner(),
        *_audit()[1:],
    ),
    label="Event",
)

# Where a report, dashboard or email template lives: the org (public folders) or a user (personal).
_FOLDER_OWNERS = ("Organization", "User")


def _read_only(*fields: Field) -> tuple[Field, ...]:
    """The same fields, none writable through the API (Report and Dashboard are read-only sObjects)."""
    return tuple(
        Field(f.name, f.type, f.label, nillable=f.nillable, createable=False, updateable=False,
              calculated=f.calculated, length=f.length, reference_to=f.reference_to,
              relationship_name=f.relationship_name, picklist=f.picklist, default=f.default)
        for f in fields
    )


CASE = SObject(
    "Case", "500",
    (
        _id(),
        *_audit()[:1],
        Field("ContactId", REFERENCE, "Contact ID", reference_to=("Contact",), relationship_name="Contact"),
        # Deleting an account deletes its cases with it (undelete brings them back).
        Field("AccountId", REFERENCE, "Account ID", reference_to=("Account",), relationship_name="Account",
              cascade_delete=True),
        Field("Subject", STRING, "Subject"),
        Field("Status", PICKLIST, "Status", nillable=False, picklist=("New", "Working", "Escalated", "Closed")),
        Field("Priority", PICKLIST, "Priority", picklist=("High", "Medium", "Low")),
        Field("Origin", PICKLIST, "Case Origin", picklist=("Phone", "Email", "Web")),
        Field("IsClosed", BOOLEAN, "Closed", nillable=False, createable=False, updateable=False,
              calculated=True, default=False),
        Field("ClosedDate", DATETIME, "Closed Date", createable=False, updateable=False),
        _owner(),
        *_audit()[1:],
    ),
    label="Case",
)

CAMPAIGN = SObject(
    "Campaign", "701",
    (
        _id(),
        *_audit()[:1],
        Field("Name", STRING, "Name", nillable=False, length=80),
        Field("Type", PICKLIST, "Type", picklist=("Conference", "Webinar", "Email", "Advertisement", "Other")),
        Field("Status", PICKLIST, "Status", picklist=("Planned", "In Progress", "Completed", "Aborted")),
        Field("StartDate", DATE, "Start Date"),
        Field("EndDate", DATE, "End Date"),
        Field("IsActive", BOOLEAN, "Active", nillable=False, default=False),
        _owner(),
        *_audit()[1:],
    ),
    label="Campaign",
)


def _account_child(*, cascade: bool, nillable: bool = False) -> Field:
    return Field("AccountId", REFERENCE, "Account ID", nillable=nillable, reference_to=("Account",),
                 relationship_name="Account", cascade_delete=cascade)


CONTRACT = SObject(
    "Contract", "800",
    (
        _id(),
        *_audit()[:1],
        _account_child(cascade=True),
        Field("ContractNumber", STRING, "Contract Number", createable=False, updateable=False, calculated=True),
        Field("Status", PICKLIST, "Status", nillable=False, picklist=("Draft", "In Approval Process", "Activated")),
        Field("StartDate", DATE, "Contract Start Date"),
        Field("ContractTerm", INT, "Contract Term (months)"),
        _owner(),
        *_audit()[1:],
    ),
    label="Contract",
)

ORDER = SObject(
    "Order", "801",
    (
        _id(),
        *_audit()[:1],
        _account_child(cascade=True),
        Field("OrderNumber", STRING, "Order Number", createable=False, updateable=False, calculated=True),
        Field("Status", PICKLIST, "Status", nillable=False, picklist=("Draft", "Activated")),
        Field("EffectiveDate", DATE, "Order Start Date", nillable=False),
        Field("ContractId", REFERENCE, "Contract ID", reference_to=("Contract",), relationship_name="Contract"),
        _owner(),
        *_audit()[1:],
    ),
    label="Order",
)

QUOTE = SObject(
    "Quote", "0Q0",
    (
        _id(),
        *_audit()[:1],
        Field("Name", STRING, "Quote Name", nillable=False),
        Field("OpportunityId", REFERENCE, "Opportunity ID", nillable=False, updateable=False,
              reference_to=("Opportunity",), relationship_name="Opportunity", cascade_delete=True),
        # Derived by the platform from the opportunity's account (Object Reference, Quote.AccountId).
        Field("AccountId", REFERENCE, "Account ID", createable=False, updateable=False, calculated=True,
              reference_to=("Account",), relationship_name="Account"),
        Field("Status", PICKLIST, "Status",
              picklist=("Draft", "Needs Review", "In Review", "Approved", "Rejected", "Presented", "Accepted",
                        "Denied")),
        Field("ExpirationDate", DATE, "Expiration Date"),
        *_audit()[1:],
    ),
    label="Quote",
)

INVOICE = SObject(
    "Invoice", "3tt",
    (
        _id(),
        *_audit()[:1],
        _account_child(cascade=False),
        Field("InvoiceNumber", STRING, "Invoice Number", createable=False, updateable=False, calculated=True),
        Field("Status", PICKLIST, "Status", nillable=False, picklist=("Draft", "Posted", "Canceled")),
        Field("InvoiceDate", DATE, "Invoice Date"),
        Field("DueDate", DATE, "Due Date"),
        Field("TotalAmount", CURRENCY, "Total Amount", precision=16, scale=2, createable=False, updateable=False,
              calculated=True),
        _owner(),
        *_audit()[1:],
    ),
    label="Invoice",
)

# An org's own object (Setup > Object Manager), as an admin protects their invoices when the org bills in
# one: API name ending in __c, an org-specific key prefix (custom objects' start with a letter, "a0X" here),
# the standard fields every custom object has and no custom field (unused_custom_fields judges none of it).
INVOICE_CUSTOM = SObject(
    "Invoice__c", "a0X",
    (
        _id(),
        *_audit()[:1],
        Field("Name", STRING, "Invoice Name", nillable=False, length=80),
        _owner(),
        *_audit()[1:],
    ),
    label="Invoice",
)

EMAIL_TEMPLATE = SObject(
    "EmailTemplate", "00X",
    (
        _id(),
        Field("Name", STRING, "Email Template Name", nillable=False, length=80),
        Field("DeveloperName", STRING, "Template Unique Name", nillable=False, length=80),
        Field("IsActive", BOOLEAN, "Available For Use", nillable=False, default=False),
        Field("TimesUsed", INT, "Times Used", createable=False, updateable=False),
        Field("LastUsedDate", DATETIME, "Last Used Date", createable=False, updateable=False),
        Field("FolderId", REFERENCE, "Folder ID", nillable=False, reference_to=_FOLDER_OWNERS,
              relationship_name="Folder"),
        Field("FolderName", STRING, "Folder Name", createable=False, updateable=False, calculated=True),
        Field("OwnerId", REFERENCE, "Owner ID", nillable=False, reference_to=("User",), relationship_name="Owner"),
        Field("TemplateType", PICKLIST, "Template Type", nillable=False, updateable=False,
              picklist=("text", "html", "custom", "visualforce")),
        Field("Subject", STRING, "Subject"),
        Field("Body", TEXTAREA, "Email Body"),
        *_audit(has_is_deleted=False),
    ),
    # No IsDeleted and no undelete() among EmailTemplate's supported calls: a delete is for good.
    label="Email Template", undeletable=False, has_is_deleted=False,
)

REPORT = SObject(
    "Report", "00O",
    _read_only(
        _id(),
        *_audit()[:1],
        Field("Name", STRING, "Report Name", nillable=False, length=40),
        Field("DeveloperName", STRING, "Report Unique Name", nillable=False, length=80),
        Field("FolderName", STRING, "Folder Name"),
        Field("Format", PICKLIST, "Format", nillable=False, picklist=("Tabular", "Summary", "Matrix", "MultiBlock")),
        Field("Description", STRING, "Description"),
        Field("LastRunDate", DATETIME, "Last Run"),
        Field("LastViewedDate", DATETIME, "Last Viewed Date"),
        Field("LastReferencedDate", DATETIME, "Last Referenced Date"),
        Field("OwnerId", REFERENCE, "Owner ID", nillable=False, reference_to=_FOLDER_OWNERS,
              relationship_name="Owner"),
        *_audit()[1:],
    ),
    # Read-only through the data API; deleted through the Analytics API; undeleted by SOAP (our choice).
    label="Report", createable=False, updateable=False, deletable=False,
)

DASHBOARD = SObject(
    "Dashboard", "01Z",
    _read_only(
        _id(),
        *_audit()[:1],
        Field("Title", STRING, "Title", nillable=False, length=80),
        Field("DeveloperName", STRING, "Dashboard Unique Name", nillable=False, length=80),
        Field("FolderName", STRING, "Folder Name"),
        Field("FolderId", REFERENCE, "Folder ID", nillable=False, reference_to=_FOLDER_OWNERS,
              relationship_name="Folder"),
        Field("Type", PICKLIST, "Dashboard Running User", nillable=False,
              picklist=("SpecifiedUser", "LoggedInUser", "MyTeamUser")),
        Field("RunningUserId", REFERENCE, "Running User ID", nillable=False, reference_to=("User",),
              relationship_name="RunningUser"),
        Field("LastRefreshDate", DATETIME, "Last Refresh Date"),
        Field("LastViewedDate", DATETIME, "Last Viewed Date"),
        Field("LastReferencedDate", DATETIME, "Last Referenced Date"),
        *_audit()[1:],
    ),
    label="Dashboard", createable=False, updateable=False, deletable=False,
)

CONTENT_DOCUMENT = SObject(
    "ContentDocument", "069",
    (
        _id(),
        *_audit()[:1],
        Field("Title", STRING, "Title", nillable=False),
        Field("FileType", STRING, "File Type", createable=False, updateable=False, length=20),
        Field("FileExtension", STRING, "File Extension", createable=False, updateable=False, length=40),
        Field("ContentSize", INT, "Size", createable=False, updateable=False),
        Field("Description", TEXTAREA, "Description"),
        Field("OwnerId", REFERENCE, "Owner ID", nillable=False, createable=False, reference_to=("User",),
              relationship_name="Owner"),
        *_audit()[1:],
    ),
    # Files are created by inserting a ContentVersion, not a ContentDocument.
    label="Content Document", createable=False,
)

LINKABLE = ("Account", "Contact", "Lead", "Opportunity", "Case", "Campaign", "Contract", "Order", "Quote",
            "Invoice", "Invoice__c", "User")

CONTENT_DOCUMENT_LINK = SObject(
    "ContentDocumentLink", "06A",
    (
        _id(),
        *_audit()[:1],
        Field("ContentDocumentId", REFERENCE, "ContentDocument ID", nillable=False, updateable=False,
              reference_to=("ContentDocument",), relationship_name="ContentDocument", cascade_delete=True),
        Field("LinkedEntityId", REFERENCE, "Linked Entity ID", nillable=False, updateable=False,
              reference_to=LINKABLE, relationship_name="LinkedEntity", cascade_delete=True),
        Field("ShareType", PICKLIST, "Share Type", nillable=False, picklist=("V", "C", "I")),
        Field("Visibility", PICKLIST, "Visibility", picklist=("AllUsers", "InternalUsers", "SharedUsers")),
        # The only audit field the object has (Object Reference, ContentDocumentLink).
        Field("SystemModstamp", DATETIME, "System Modstamp", nillable=False, createable=False, updateable=False),
    ),
    label="Content Document Link",
)

OBJECTS: dict[str, SObject] = {
    o.name: o
    for o in (
        ORGANIZATION, USER, ACCOUNT, CONTACT, LEAD, OPPORTUNITY, OPPORTUNITY_CONTACT_ROLE, TASK, EVENT, CASE,
        CAMPAIGN, CONTRACT, ORDER, QUOTE, INVOICE, INVOICE_CUSTOM, EMAIL_TEMPLATE, REPORT, DASHBOARD,
        CONTENT_DOCUMENT, CONTENT_DOCUMENT_LINK,
    )
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
