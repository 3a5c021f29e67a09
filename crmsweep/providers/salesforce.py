"""Salesforce: its vocabulary (which objects and fields mean "person", "owner"...), what its API allows,
and how to reach it. Data only; the connector and sandbox are imported when first used."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from crmsweep.concepts import (
    Accounts,
    Campaigns,
    Cases,
    CompanyMatch,
    ContactPoints,
    Converted,
    CustomFields,
    DataQuality,
    DealStages,
    DuplicateKeys,
    EmailBounces,
    EmailTemplates,
    Files,
    Link,
    PeopleMatch,
    RemovalCascades,
    Reports,
    RunnableAsset,
    TaskWork,
    default_quality_rules,
)
from crmsweep.model import Capabilities, DealLink, Vocabulary
from crmsweep.providers import TOKEN_AUTH_KIND, AuthKind, Provider, SandboxHandle

if TYPE_CHECKING:
    from crmsweep.connectors.base import Connection, Connector
    from crmsweep.connectors.retry import RetryPolicy

NAME = "salesforce"



def _custom_field_of(row: Mapping[str, Any]) -> tuple[str, str] | None:
    object_name, _, field = str(row.get("FullName") or "").partition(".")
    return (object_name, field) if object_name and field.endswith("__c") else None


def _custom_field_kept(row: Mapping[str, Any]) -> str | None:
    if row.get("NamespacePrefix") or row.get("ManageableState") not in (None, "", "unmanaged"):
        return "a managed package's field (only its package may remove it)"
    return None


# Custom fields through the Tooling API (crmsweep/connectors/salesforce_fields.py): the definitions, and
# their uses from MetadataComponentDependency and the reports' columns. A Tooling DELETE keeps the field 15
# days, restorable only in Setup, so for crmsweep it is an archive: the rollback re-creates the field from
# FullName and Metadata (a new id) and writes the values back from the snapshot.
SALESFORCE_CUSTOM_FIELDS = CustomFields(
    definitions="CustomField",
    field_of=_custom_field_of,
    references=("FieldReference",),
    removal="archive",
    why_kept=_custom_field_kept,
    filled_field="filled",
    caveats="uses checked: MetadataComponentDependency (a beta API: at most 2,000 rows, blind to reports) and "
    "every report's columns; formulas of other orgs' packages, external integrations and list views are "
    "not covered",
)

# What `report quality` checks by default (the [quality] config section adds or replaces rules).
SALESFORCE_QUALITY = DataQuality(
    rules=default_quality_rules(
        people={
            "Contact": (("Email", "Phone", "MobilePhone"), ("MailingCity", "MailingState")),
            "Lead": (("Email", "Phone", "MobilePhone"), ("City", "State")),
        },
        deals={"Opportunity": ("Amount", "CloseDate")},
        owned_only=("Account",),
    ),
    owner_name_fields=("Name",),
    # OwnerId of a lead or case may be a queue (a Group, key prefix 00G) rather than a user.
    queue_id_prefixes=("00G",),
)
# The concepts of the asset passes (stale_reports, stale_templates, old_files) and of duplicates.
_ASSET_CONCEPTS = (
    Reports(
        assets=(RunnableAsset("Report", "LastRunDate", "Name"), RunnableAsset("Dashboard", "LastRefreshDate", "Title")),
        viewed_field="LastViewedDate",  # the querying user's own views only (Report / Dashboard object pages)
        removal="delete",  # DELETE /analytics/reports|dashboards/{id}: to the recycle bin
    ),
    # EmailTemplate has no undelete call, so a stale one is made unavailable (IsActive false), not deleted.
    EmailTemplates(
        object="EmailTemplate", last_used_field="LastUsedDate", times_used_field="TimesUsed",
        active_field="IsActive", draft_flag=None, draft_date_field=None, op="update", writes={"IsActive": False},
    ),
    Files(
        object="ContentDocument", links="ContentDocumentLink", link_file_field="ContentDocumentId",
        link_record_field="LinkedEntityId",
        # The standard key prefixes (the first three characters of every id) of the never-touch objects, and
        # of the standard objects a file is attached to, which `[protect] objects` may name.
        key_prefixes=MappingProxyType({
            "Contract": "800", "Order": "801", "OrderItem": "802", "Quote": "0Q0", "QuoteLineItem": "0QL",
            "Invoice": "3tt", "Account": "001", "Contact": "003", "Lead": "00Q", "Opportunity": "006",
            "Case": "500", "Campaign": "701", "User": "005",
        }),
        removal="delete",
    ),
    DuplicateKeys(
        people=(
            PeopleMatch("Contact", ("Email",), ("Phone", "MobilePhone"), "FirstName", "LastName", "AccountId",
                        company_is_record=True),
            PeopleMatch("Lead", ("Email",), ("Phone", "MobilePhone"), "FirstName", "LastName", "Company"),
        ),
        companies=(CompanyMatch("Account", "Name", "Website"),),
    ),
)
_ABSENT_ASSET_CONCEPTS = {
    "Lists": "Salesforce has no saved lists of the kind this pass cleans (list views and campaigns are not lists)",
}
# The concepts of the record passes (no_contact_info, bounced_emails, orphaned_tasks, stale_open_deals,
# finished_campaigns, empty_accounts).
_RECORD_CONCEPTS = (
    ContactPoints(
        fields={"Contact": ("Email", "Phone", "MobilePhone"), "Lead": ("Email", "Phone", "MobilePhone")},
        other_fields={"Contact": ("HomePhone", "OtherPhone", "AssistantPhone")},
    ),
    # A converted lead is read-only history of the contact it became.
    Converted(flags={"Lead": "IsConverted"}),
    # Contact and Lead both carry EmailBouncedDate; IsEmailBounced exists on Contact only.
    EmailBounces(
        set_fields=("EmailBouncedDate",),
        true_flags=(),
        detail_fields=("EmailBouncedDate", "EmailBouncedReason"),
        opt_out_field="HasOptedOutOfEmail",
        # A bounce stays on the record "until the email address is updated" (Bounce Management): the
        # clear drops it, and a rollback must write it back with the address.
        cleared_with_address=("EmailBouncedDate", "EmailBouncedReason"),
        # Bounce handling records soft bounces as well (Salesforce Help, "Enable Email Bounce Handling": 4xx
        # replies are soft, 5xx hard), with the server's reply here as text.
        reason_field="EmailBouncedReason",
    ),
    Cases(
        object="Case",
        closed_field="IsClosed",
        closed_values=(True,),
        people=(Link("Case", "ContactId", "Id"),),
        accounts=(Link("Case", "AccountId", "Id"),),
    ),
    # IsClosed is derived from Status (a closed status); writing Status "Completed" closes the task.
    TaskWork(
        object="Task",
        done_field="IsClosed",
        done_values=(True,),
        due_field="ActivityDate",
        close_writes={"Status": "Completed"},
    ),
    DealStages(stage_field="StageName", closed_stages=("Closed Won", "Closed Lost"), closed_lost="Closed Lost",
               won_stages=("Closed Won",), won_field="IsWon",
               # Probability is "implicitly set based on the StageName value" (Object Reference), and so is
               # the forecast category; a Closed/Lost stage holds 0% and Omitted.
               lost_writes={"Probability": 0, "ForecastCategoryName": "Omitted"}),
    Campaigns(
        object="Campaign",
        end_field="EndDate",
        status_field="Status",
        done_statuses=("Completed",),
        active_field="IsActive",
        end_writes={"IsActive": False},
    ),
    # Deleting a contact or lead deletes its activities (Task.WhoId, Event.WhoId) and a contact its
    # opportunity contact roles; the recycle bin gives them back with it.
    RemovalCascades(by_object={
        "Contact": (Link("Task", "WhoId", "Id"), Link("Event", "WhoId", "Id"),
                    Link("OpportunityContactRole", "ContactId", "Id")),
        "Lead": (Link("Task", "WhoId", "Id"), Link("Event", "WhoId", "Id")),
    }),
    Accounts(
        object="Account",
        contacts=(Link("Contact", "AccountId", "Id"),),
        deals=(Link("Opportunity", "AccountId", "Id"),),
        kept_by={o: (Link(o, "AccountId", "Id"),) for o in ("Contract", "Order", "Quote", "Invoice")},
        # Deleting an account deletes the activities related to it (Task.WhatId and Event.WhatId cascade) and
        # its opportunities (closed ones: an open one keeps the account): the plan's note counts them.
        cascades=(Link("Task", "WhatId", "Id"), Link("Event", "WhatId", "Id"),
                  Link("Opportunity", "AccountId", "Id")),
        # ... and each opportunity deleted takes its own activities.
        cascades_of={"Opportunity": (Link("Task", "WhatId", "Id"), Link("Event", "WhatId", "Id"),
                                     Link("OpportunityContactRole", "OpportunityId", "Id"))},
    ),
)

SALESFORCE_VOCABULARY = Vocabulary(
    provider=NAME,
    id_field="Id",
    fingerprint_field="SystemModstamp",
    deleted_field="IsDeleted",
    created_field="CreatedDate",
    owner_field="OwnerId",
    people_objects=("Contact", "Lead"),
    last_activity_fields=("LastActivityDate", "LastModifiedDate"),
    email_field="Email",
    user_object="User",
    user_active_field="IsActive",
    user_last_login_field="LastLoginDate",
    owner_must_be_active=True,  # INACTIVE_OWNER_OR_USER
    deal_object="Opportunity",
    deal_closed_field="IsClosed",
    deal_close_date_field="CloseDate",
    deal_links=(DealLink(object="OpportunityContactRole", person_field="ContactId", deal_field="OpportunityId"),),
    label_fields=MappingProxyType(
        {
            "Contact": ("Name", "Email"),
            "Lead": ("Name", "Email"),
            "User": ("Name", "Username"),
            "Account": ("Name",),
            "Opportunity": ("Name",),
            "Task": ("Subject",),
            "Case": ("Subject",),
            "Campaign": ("Name",),
            "EmailTemplate": ("Name",),
            "Report": ("Name",),
            "Dashboard": ("Title",),
            "ContentDocument": ("Title",),
            "CustomField": ("FullName",),
        }
    ),
    labels=MappingProxyType(
        {
            "Contact": ("contact", "contacts"),
            "Lead": ("lead", "leads"),
            "Opportunity": ("opportunity", "opportunities"),
            "Case": ("case", "cases"),
            "Account": ("account", "accounts"),
            "Task": ("task", "tasks"),
            "Event": ("event", "events"),
            "OpportunityContactRole": ("opportunity contact role", "opportunity contact roles"),
            "User": ("user", "users"),
            "EmailTemplate": ("email template", "email templates"),
        }
    ),
    # A field's removal is op archive on its definition (docs/design.md), which Salesforce calls deleting the
    # field (Tooling DELETE): the preview and the counts use the admin's word, not the op's.
    op_words=MappingProxyType({"CustomField": {"archive": "delete"}}),
    never_touch_objects=("Contract", "Order", "Quote", "Invoice", "OrderItem", "QuoteLineItem"),
    concepts=(SALESFORCE_QUALITY, SALESFORCE_CUSTOM_FIELDS, *_ASSET_CONCEPTS, *_RECORD_CONCEPTS),
    absent_concepts=MappingProxyType({**_ABSENT_ASSET_CONCEPTS}),
    audit_fields=("LastModifiedDate", "LastModifiedById", "SystemModstamp"),
    short_id_length=15,
    last_modified_by_field="LastModifiedById",
    # Parents before children, so a restore can re-link in this order.
    default_backup_objects=(
        "User", "Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole", "Task",
    ),
)

SALESFORCE_CAPABILITIES = Capabilities(
    supports_undelete=True,
    max_batch_write=200,  # sObject Collections limit per call
    max_query_page=2000,
    # What one query URI (MAX_QUERY_URI_BYTES) holds of 18-character ids with a check's fields: apply
    # reads drift fingerprints this many at a time. The URI length stays the real bound (the connector
    # splits a longer list), this only says how many ids to hand it per call.
    max_ids_per_read=500,
    has_reports_api=True,
    # Setup objects may not share a collections call with data objects (mixed DML).
    isolated_write_objects=("User",),
    # Salesforce links records through lookup fields (and junction objects such as
    # OpportunityContactRole), which are ordinary fields and records: no association calls.
    has_associations=False,
    # The session counts under a lock and each object's reads are its own (describe, COUNT(), job).
    concurrent_reads=True,
    # Custom fields (Tooling API sObjects), reports and dashboards (Analytics API) have no collections
    # call: each is deleted, restored or updated with a call of its own.
    per_record_writes=("CustomField", "Report", "Dashboard"),
    # A custom field read by id: the Tooling list of the fields, then per field its FullName and Metadata
    # (one query each, the restriction forces it) and its filled count: 3 per field at most.
    per_record_reads=(("CustomField", 3),),
)


def _connect(connection: Connection, retry: RetryPolicy | None) -> Connector:
    from crmsweep.connectors.salesforce import SalesforceConnector

    return SalesforceConnector(connection, retry=retry)


def _start_sandbox(state_dir: Path, /, **options: Any) -> SandboxHandle:
    """See `crmsweep.providers.SandboxFactory` for the options."""
    from crmsweep.sandbox.server import start_sandbox

    return start_sandbox(state_dir, provider=NAME, **options)


LOGIN_URL = "https://login.salesforce.com"  # https://test.salesforce.com for sandbox orgs
# Signed in by `crmsweep.connectors.salesforce_auth`. Secrets are never keys: only the NAMES of the
# environment variables that hold them (the `_env` keys).
_AUTH_KINDS = (
    TOKEN_AUTH_KIND,
    AuthKind("jwt", keys=("username", "client_id", "private_key_file", "login_url"),
             required=("username", "client_id", "private_key_file"), signs_in_at="login_url", login_url=LOGIN_URL),
    # The client credentials grant is served only on the org's My Domain: the connection's url.
    AuthKind("client_credentials", keys=("client_id_env", "client_secret_env"),
             required=("client_id_env", "client_secret_env")),
    # No security token where the org trusts the caller's IP range: then the password alone signs in.
    AuthKind("password", keys=("username", "password_env", "security_token_env", "client_id_env",
                               "client_secret_env", "login_url"),
             required=("username", "password_env", "client_id_env", "client_secret_env"),
             signs_in_at="login_url", login_url=LOGIN_URL),
    AuthKind("sf-cli", keys=("org",), required=("org",), signs_in_at="elsewhere"),
)

PROVIDER = Provider(
    name=NAME,
    title="Salesforce",
    vocabulary=SALESFORCE_VOCABULARY,
    capabilities=SALESFORCE_CAPABILITIES,
    connect=_connect,
    start_sandbox=_start_sandbox,
    builtin_connection="sandbox-salesforce",
    url_example="https://acme.my.salesforce.com",
    token_name="session id",
    token_env_example="ACME_SF_TOKEN",
    api_version_pattern=re.compile(r"[0-9]+\.[0-9]+"),
    api_version_example="59.0",
    client_library="simple-salesforce",
    sandbox_speaks="the REST and SOAP APIs",
    demo_objects=("Contact", "Lead", "Task", "OpportunityContactRole"),
    default=True,  # the first provider crmsweep spoke: commands that name none keep meaning it
    auth_kinds=_AUTH_KINDS,
)
