"""Salesforce's answers to the canonical questions passes ask (data only, no code paths).

Passes are written once against `crmsweep.model.Vocabulary`; this module says which Salesforce
objects and fields mean "person", "last activity", "owner" and so on, and what the API allows.
"""

from __future__ import annotations

from types import MappingProxyType

from crmsweep.model import Capabilities, DealLink, Vocabulary

SALESFORCE_VOCABULARY = Vocabulary(
    provider="salesforce",
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
        }
    ),
    never_touch_objects=("Contract", "Order", "Quote", "Invoice", "OrderItem", "QuoteLineItem"),
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
    max_ids_per_read=300,  # the URI length (16,384 bytes) is the real bound; see SalesforceConnector.read
    has_reports_api=True,
    # Setup objects may not share a collections call with data objects (mixed DML).
    isolated_write_objects=("User",),
)
