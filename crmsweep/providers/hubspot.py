"""HubSpot: its vocabulary, what its API allows, and how to reach it (see ../shared api-notes/hubspot.md).

Canonical HubSpot records are flat: a CRM object's `properties` plus its envelope keys `id`,
`createdAt`, `updatedAt` and `archived`. The envelope is used for identity, fingerprint and the
deleted flag because it is spelt alike on every object type, whereas the property behind `updatedAt`
is `lastmodifieddate` on contacts and `hs_lastmodifieddate` on companies, deals and tickets. The
connector expresses `since=` in its own API through that per-object property.

Associations are first-class calls (`Connector.read_association_types` / `create_associations`); in a
snapshot, the links from one object type to another are the pseudo-object
`model.association_object(from, to)` with the columns `from_id` and `to_id`, which is how the
stale-contacts pass finds people on open deals, and `types`: each link's association types (category,
type id, label), so a re-created record gets its labels back ("Primary" company and custom labels alike).
"""

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
    CustomFields,
    DataQuality,
    DealStages,
    DuplicateKeys,
    EmailBounces,
    EmailTemplates,
    Link,
    Lists,
    PeopleMatch,
    TaskWork,
    default_quality_rules,
)
from crmsweep.model import (
    ASSOCIATION_FROM_FIELD,
    ASSOCIATION_TO_FIELD,
    Capabilities,
    DealLink,
    Vocabulary,
    association_object,
)
from crmsweep.providers import Provider, SandboxHandle, import_part

if TYPE_CHECKING:
    from crmsweep.connectors.base import Connection, Connector
    from crmsweep.connectors.retry import RetryPolicy

NAME = "hubspot"
# The idempotency key a re-create writes, where the portal has this text property (an admin adds it once).
RESTORE_KEY_PROPERTY = "crmsweep_restore_key"


def _both_ways(near: str, far: str) -> tuple[Link, ...]:
    """The links from `near` records to `far` ones, as a snapshot holds them from either end."""
    return (
        Link(association_object(near, far), ASSOCIATION_FROM_FIELD, ASSOCIATION_TO_FIELD),
        Link(association_object(far, near), ASSOCIATION_TO_FIELD, ASSOCIATION_FROM_FIELD),
    )
CONNECTOR_MODULE = "crmsweep.connectors.hubspot"  # defines HubSpotConnector(connection, *, retry=None)



def _property_of(row: Mapping[str, Any]) -> tuple[str, str] | None:
    object_type, name = row.get("objectType"), row.get("name")
    return (str(object_type), str(name)) if object_type and name else None


def _property_kept(row: Mapping[str, Any]) -> str | None:
    if row.get("hubspotDefined"):
        return "HubSpot defines it"
    if row.get("archivable") is False:
        return "HubSpot does not let it be archived (modificationMetadata.archivable is false)"
    if row.get("readOnlyValue") or row.get("calculated"):
        return "its values are HubSpot's to set (read-only or calculated)"
    return None


# Properties: the definitions read by the connector (crmsweep/connectors/hubspot_properties.py); forms and
# lists are what can use one. Archive is HubSpot's only removal; no stable API brings one back (a 2027-03
# beta restores the definition), so a rollback brings the definition back and writes the values again.
HUBSPOT_CUSTOM_FIELDS = CustomFields(
    definitions="properties",
    field_of=_property_of,
    references=("form_fields", "list_filters"),
    removal="archive",
    why_kept=_property_kept,
    is_custom=lambda row: not row.get("hubspotDefined"),
    filled_field="filled",
    caveats="uses checked: forms and list filters; workflows, reports, sequences and "
    "integrations are not readable through HubSpot's public API and were not checked",
)

# What `report quality` checks by default (the [quality] config section adds or replaces rules).
HUBSPOT_QUALITY = DataQuality(
    rules=default_quality_rules(
        people={"contacts": (("email", "phone", "mobilephone"), ("city", "state"))},
        deals={"deals": ("amount", "closedate")},
        owned_only=("companies",),
    ),
    owner_name_fields=("firstName", "lastName"),
)


def _email_kept(row: Mapping[str, Any]) -> str | None:
    """A marketing email that sends by itself (automated by a workflow or a form, RSS or blog digests,
    scheduled or sending now): its publication date says nothing of its last send."""
    state = str(row.get("state") or "")
    if state.startswith("AUTOMATED"):
        return "automated email (sent by a workflow or form)"
    if state.startswith(("RSS_TO_EMAIL", "BLOG_EMAIL")) or state in ("SCHEDULED", "SCHEDULED_AB", "PROCESSING",
                                                                       "PRE_PROCESSING"):
        return "email scheduled, sending, or sent on each new post"
    return None


# The concepts of the asset passes (stale_templates, stale_lists) and of duplicates.
_ASSET_CONCEPTS = (
    # DELETE /marketing/v3/emails/{id} archives; PATCH archived=false gives it back with its id.
    EmailTemplates(
        object="marketing_emails", last_used_field="publishedAt", times_used_field=None, active_field=None,
        draft_flag="isPublished", draft_date_field="updatedAt", op="delete", writes={},
        why_kept=_email_kept, kept_fields=("state",),
    ),
    # DELETE /crm/v3/lists/{id}; PUT /crm/v3/lists/{id}/restore brings it back with its id (90 days).
    Lists(
        object="lists", updated_fields=("updatedAt", "filtersUpdatedAt"), used_by=("marketing_emails", "list_ids"),
        removal="delete",
    ),
    DuplicateKeys(
        people=(PeopleMatch("contacts", ("email",), ("phone", "mobilephone"), "firstname", "lastname", "company"),),
        companies=(CompanyMatch("companies", "name", "domain"),),
    ),
)
_ABSENT_ASSET_CONCEPTS = {
    "Reports": "HubSpot has no reports API",
    "Files": (
        "a file deleted through HubSpot's API cannot be restored and crmsweep does not back up file contents"
    ),
}
# The concepts of the record passes (no_contact_info, bounced_emails, orphaned_tasks, stale_open_deals,
# finished_campaigns, empty_accounts).
_RECORD_CONCEPTS = (
    ContactPoints(fields={"contacts": ("email", "phone", "mobilephone")}, other_fields={}),
    # api-notes 3.2: the enum's values are UNCONFIRMED, so "has any value" is the test.
    EmailBounces(
        set_fields=("hs_email_hard_bounce_reason_enum",),
        true_flags=("hs_email_bad_address",),
        detail_fields=("hs_email_hard_bounce_reason_enum", "hs_email_hard_bounce_reason"),
        opt_out_field=None,
        no_opt_out=(
            "HubSpot has no opt-out the API may write (hs_marketable_status and subscriptions are set in "
            "HubSpot itself): the contacts whose address is cleared are not opted out"
        ),
        # HubSpot files security-filter refusals (spam, policy) among its hard bounces and says to unbounce
        # such valid contacts (knowledge base, "Email bounce types"): the reply judges them, as on Salesforce.
        # The bad-address flag is HubSpot's word that the address itself is bad, whatever the reply reads.
        reason_field="hs_email_hard_bounce_reason",
        bad_address_flags=("hs_email_bad_address",),
    ),
    # Stage "4" is "Closed" in the default ticket pipeline; tickets of other pipelines with another
    # closed stage count as open, which keeps their people and companies (UNCONFIRMED: no flag).
    Cases(
        object="tickets",
        closed_field="hs_pipeline_stage",
        closed_values=("4",),
        people=_both_ways("contacts", "tickets"),
        accounts=_both_ways("companies", "tickets"),
    ),
    TaskWork(
        object="tasks",
        done_field="hs_task_status",
        done_values=("COMPLETED",),
        due_field="hs_timestamp",
        close_writes={"hs_task_status": "COMPLETED"},
    ),
    # Stage ids belong to a pipeline: "closedlost" is the default pipeline's.
    DealStages(
        stage_field="dealstage",
        closed_stages=("closedwon", "closedlost"),
        closed_lost="closedlost",
        pipeline_field="pipeline",
        closed_lost_pipeline="default",
        won_stages=("closedwon",),
        # "A deal's close date is automatically set or updated by HubSpot when ... a user moves a deal into a
        # closed-won or a closed-lost deal stage" (default deal properties), and not on the move back.
        kept_on_close=("closedate",),
    ),
    # No "active" flag: a campaign runs until its status says completed.
    Campaigns(
        object="campaigns",
        end_field="hs_end_date",
        status_field="hs_campaign_status",
        done_statuses=("completed",),
        active_field=None,
        end_writes={"hs_campaign_status": "completed"},
    ),
    Accounts(
        object="companies",
        contacts=_both_ways("companies", "contacts"),
        deals=_both_ways("companies", "deals"),
        kept_by={},
        kept_by_unchecked=(
            "links from companies to quotes, invoices and orders are not backed up, so a company tied only "
            "to one of them looks empty: check it in HubSpot before applying"
        ),
    ),
)

HUBSPOT_VOCABULARY = Vocabulary(
    provider=NAME,
    id_field="id",
    fingerprint_field="updatedAt",
    deleted_field="archived",
    created_field="createdAt",
    owner_field="hubspot_owner_id",
    people_objects=("contacts",),
    # "Last Activity Date", "Last Engagement Date", "Last Contacted", then the last write of any kind.
    last_activity_fields=(
        "notes_last_updated", "hs_last_sales_activity_timestamp", "notes_last_contacted", "lastmodifieddate",
    ),
    email_field="email",
    # Records are owned by owners (hubspot_owner_id holds an owner id), not by users. Owners of
    # deactivated users are archived; the connector presents `active` as `not archived`. HubSpot
    # reports no last login through the API: an owner's updatedAt is the nearest signal.
    user_object="owners",
    user_active_field="active",
    user_last_login_field="updatedAt",
    deal_object="deals",
    # hs_is_closed is widely used but UNCONFIRMED in the spec; the fallback is dealstage vs closed stages.
    deal_closed_field="hs_is_closed",
    deal_close_date_field="closedate",
    deal_links=(
        DealLink(
            object=association_object("contacts", "deals"),
            person_field=ASSOCIATION_FROM_FIELD,
            deal_field=ASSOCIATION_TO_FIELD,
        ),
    ),
    label_fields=MappingProxyType(
        {
            "contacts": ("firstname", "lastname", "email"),
            "companies": ("name", "domain"),
            "deals": ("dealname",),
            "tickets": ("subject",),
            "tasks": ("hs_task_subject",),
            "owners": ("firstName", "lastName", "email"),
            "properties": ("label", "id"),
            "lists": ("name",),
            "marketing_emails": ("name",),
            "campaigns": ("hs_name",),
        }
    ),
    label_name_fields=MappingProxyType({"contacts": 2, "owners": 2}),
    # Records are owned by owners: sentences say "owner" where a CRM with users says "user".
    labels=MappingProxyType(
        {
            "contacts": ("contact", "contacts"),
            "companies": ("company", "companies"),
            "deals": ("deal", "deals"),
            "tickets": ("ticket", "tickets"),
            "tasks": ("task", "tasks"),
            "owners": ("owner", "owners"),
            "lists": ("list", "lists"),
            "marketing_emails": ("marketing email", "marketing emails"),
        }
    ),
    # DELETE /marketing/v3/emails/{id} archives the email (api-notes 3.4): it stays readable with
    # archived=true and comes back with its id, so its delete and undelete are an archive and an un-archive.
    # A property comes back under its own name (HUBSPOT_CAPABILITIES.recreated_under_own_id): its create is
    # a restore, and the preview must not promise it a new id.
    op_words=MappingProxyType({"marketing_emails": {"delete": "archive", "undelete": "un-archive"},
                               "properties": {"create": "restore"}}),
    never_touch_objects=("quotes", "invoices", "line_items", "orders", "payments", "subscriptions", "carts"),
    concepts=(HUBSPOT_QUALITY, HUBSPOT_CUSTOM_FIELDS, *_ASSET_CONCEPTS, *_RECORD_CONCEPTS),
    absent_concepts=MappingProxyType({**_ABSENT_ASSET_CONCEPTS}),
    audit_fields=("updatedAt", "lastmodifieddate", "hs_lastmodifieddate", "hs_updated_by_user_id"),
    # A property's `definition` is the API's whole JSON, its own stamps inside.
    audit_keys=MappingProxyType({"definition": ("updatedAt", "updatedUserId")}),
    short_id_length=None,  # ids are numeric strings with one form
    # hs_updated_by_user_id names a user, and a Service Key writes as none: no reliable "written by us".
    last_modified_by_field=None,
    create_key_field=RESTORE_KEY_PROPERTY,
    # No undelete through the API: archive, and a rollback re-creates (new ids, mapped in the run log).
    removal="archive",
    # Users are deactivated only in HubSpot's settings; an owner's records can be handed over by API.
    users_deactivatable=False,
    owned_objects=("contacts", "companies", "deals", "tickets"),
    task_object="tasks",
    task_status_field="hs_task_status",
    task_done_values=("COMPLETED",),
    # Parents before children, so a re-create can re-link in this order.
    default_backup_objects=(
        "owners", "companies", "contacts", "deals", "tickets", "tasks", "calls", "emails", "meetings", "notes",
    ),
)

HUBSPOT_CAPABILITIES = Capabilities(
    supports_undelete=False,  # no public API restores an archived record: reversal re-creates it
    incremental_backups=False,  # HubSpot lists no records deleted for good since a date
    max_batch_write=100,  # batch/create, batch/update, batch/archive inputs
    max_query_page=100,  # list endpoints
    max_ids_per_read=100,  # batch/read inputs
    has_reports_api=False,
    has_associations=True,  # v4 associations: batch read at most 1,000 ids, batch create at most 2,000 pairs
    # CRM objects, not owners (owners are linked by the hubspot_owner_id property).
    association_objects=("companies", "contacts", "deals", "tickets", "tasks", "calls", "emails", "meetings", "notes"),
    # A deleted list comes back with its id (PUT /crm/v3/lists/{id}/restore, 90 days); an archived
    # marketing email by PATCH {"archived": false} (the field is in EmailUpdateRequest; UNCONFIRMED).
    undeletable_objects=("lists", "marketing_emails"),
    # The recycle bin is UI-only (api-notes 2.4): a contact sharing an email with an active one cannot come back.
    restore_by_hand="restore them in HubSpot's UI (its recycle bin) within 90 days of their deletion",
    # A property's id is <objectType>.<name>: restored or created anew, it comes back under it.
    recreated_under_own_id=("properties",),
    # One GET per list and campaign; a marketing email, a live GET then an archived one. A property is
    # read with its object type's live and archived definitions, after which that type is described
    # anew (3 calls): 5 per property at most (less where several share a type).
    per_record_reads=(("lists", 1), ("marketing_emails", 2), ("campaigns", 1), ("properties", 5)),
    # Lists, marketing emails, campaigns and property definitions are deleted, restored and updated one a call.
    per_record_writes=("lists", "marketing_emails", "campaigns", "properties"),
    describe_calls=3,  # an object type's live properties, archived properties and property groups
    rereads_deleted=True,  # batch/read with archived=true for the ids the live batch/read did not find
)


def _connect(connection: Connection, retry: RetryPolicy | None) -> Connector:
    connector: Connector = import_part(CONNECTOR_MODULE, "the HubSpot connector").HubSpotConnector(
        connection, retry=retry
    )
    return connector


def _start_sandbox(state_dir: Path, /, **options: Any) -> SandboxHandle:
    """See `crmsweep.providers.SandboxFactory` for the options."""
    # The one sandbox core serves every provider; until its HubSpot API is registered this is BadInput.
    from crmsweep.sandbox.server import start_sandbox

    return start_sandbox(state_dir, provider=NAME, **options)


PROVIDER = Provider(
    name=NAME,
    title="HubSpot",
    vocabulary=HUBSPOT_VOCABULARY,
    capabilities=HUBSPOT_CAPABILITIES,
    connect=_connect,
    start_sandbox=_start_sandbox,
    builtin_connection="sandbox-hubspot",
    url_example="https://api.hubapi.com",
    token_name="private-app token or service key",
    token_env_example="ACME_HUBSPOT_TOKEN",
    # Dated API versions ("2026-09"); empty means the connector's default (v3 paths).
    api_version_pattern=re.compile(r"[0-9]{4}-[0-9]{2}"),
    api_version_example="2026-09",
    client_library="hubspot-api-client",
    sandbox_speaks="the CRM v3 and v4 APIs",
    demo_objects=("contacts", "companies", "deals", "tasks"),
)
