"""Salesforce: its vocabulary (which objects and fields mean "person", "owner"...), what its API allows,
and how to reach it. Data only; the connector and sandbox are imported when first used."""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from crmsweep.model import Capabilities, DealLink, Vocabulary
from crmsweep.providers import Provider, SandboxHandle

if TYPE_CHECKING:
    from crmsweep.connectors.base import Connection, Connector
    from crmsweep.connectors.retry import RetryPolicy

NAME = "salesforce"

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
    # Salesforce links records through lookup fields (and junction objects such as
    # OpportunityContactRole), which are ordinary fields and records: no association calls.
    has_associations=False,
)


def _connect(connection: Connection, retry: RetryPolicy | None) -> Connector:
    from crmsweep.connectors.salesforce import SalesforceConnector

    return SalesforceConnector(connection, retry=retry)


def _start_sandbox(state_dir: Path, /, **options: Any) -> SandboxHandle:
    """See `crmsweep.providers.SandboxFactory` for the options."""
    from crmsweep.sandbox.server import start_sandbox

    return start_sandbox(state_dir, provider=NAME, **options)


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
)
