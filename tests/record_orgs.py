"""Hand-built snapshots under the real Salesforce and HubSpot vocabularies, for the record passes' tests.

`Org` declares objects with their real API field names and kinds and adds rows; every row gets the
provider's id, deleted flag, created date and fingerprint, so a pass sees what a backup would give it.
`scan` runs passes the way `crmsweep scan` does (order, effects of earlier passes, protections).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from crmsweep.cleanup.passes import PASSES, LiveRows, PassContext, PassOutput, validate_settings
from crmsweep.cleanup.scan import ScanResult, scan_snapshot
from crmsweep.cleanup.view import FrameView
from crmsweep.model import (
    Change,
    FieldKind,
    FieldSpec,
    ObjectEntry,
    Record,
    SnapshotManifest,
    Vocabulary,
)
from crmsweep.providers.hubspot import HUBSPOT_VOCABULARY
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY

SF = SALESFORCE_VOCABULARY
HS = HUBSPOT_VOCABULARY
NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
OLD = "2020-01-01T00:00:00.000Z"  # created long before any threshold
S, B, D, T = FieldKind.STRING, FieldKind.BOOL, FieldKind.DATE, FieldKind.DATETIME


class Org:
    """Objects and rows of one provider's snapshot."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab
        self.fields: dict[str, list[FieldSpec]] = {}
        self.rows: dict[str, list[Record]] = {}
        self._stamp = 0

    def object(self, name: str, kinds: Mapping[str, FieldKind], *, deletable: bool = True) -> Org:
        v = self.vocab
        head = [FieldSpec(v.id_field, S, "id")]
        if deletable and v.deleted_field:
            head.append(FieldSpec(v.deleted_field, B, "boolean"))
        own = [FieldSpec(n, k, k.value, createable=True, updateable=True) for n, k in kinds.items()]
        tail = [FieldSpec(n, T, "datetime") for n in dict.fromkeys([v.created_field, v.fingerprint_field])
                if n not in kinds]
        self.fields[name] = [*head, *own, *tail]
        self.rows[name] = []
        return self

    def link(self, name: str) -> Org:
        """An association pseudo-object (from_id, to_id), as a backup of a CRM with associations holds it."""
        self.fields[name] = [FieldSpec("from_id", S, "id"), FieldSpec("to_id", S, "id")]
        self.rows[name] = []
        return self

    def add(self, obj: str, rid: str, **values: Any) -> Org:
        v = self.vocab
        self._stamp += 1
        names = {f.name for f in self.fields[obj]}
        base: Record = {v.id_field: rid} if v.id_field in names else {}
        if v.created_field in names:
            base[v.created_field] = OLD
        if v.fingerprint_field in names:
            base[v.fingerprint_field] = f"2026-01-01T00:00:{self._stamp % 60:02d}.{self._stamp:03d}Z"
        self.rows[obj].append({**base, **values})
        return self

    def without(self, obj: str, field: str) -> Org:
        """The org as a snapshot lacking `field` of `obj` shows it (not read: hidden by field security, say)."""
        self.fields[obj] = [f for f in self.fields[obj] if f.name != field]
        for row in self.rows[obj]:
            row.pop(field, None)
        return self

    def tie(self, obj: str, from_id: str, to_id: str) -> Org:
        self.rows[obj].append({"from_id": from_id, "to_id": to_id})
        return self

    def view(self, only: Sequence[str] | None = None) -> FrameView:
        names = [n for n in self.fields if only is None or n in only]
        entries = {n: ObjectEntry(n, len(self.rows[n]), f"{n}.parquet", "sha256:0", tuple(self.fields[n]))
                   for n in names}
        manifest = SnapshotManifest(
            snapshot_id="20260315T110000Z-rec001", connection="test", provider=self.vocab.provider,
            org_id="ORG", api_version="59.0", tool_version="0.1.0", started="2026-03-15T11:00:00.000Z",
            finished="2026-03-15T11:05:00.000Z", objects=entries,
        )
        # Association rows carry no id of their own: FrameView keys rows by the id field, so give them one.
        records = {n: list(self.rows[n]) for n in names}
        fields = {n: self.fields[n] for n in names}
        for n in names:
            if self.vocab.id_field not in {f.name for f in fields[n]}:
                fields[n] = [FieldSpec(self.vocab.id_field, S, "id"), *fields[n]]
                records[n] = [{self.vocab.id_field: f"{r['from_id']}-{r['to_id']}", **r} for r in records[n]]
        return FrameView(manifest, fields, records, id_field=self.vocab.id_field)


def run_pass(name: str, view: FrameView, vocab: Vocabulary, **settings: Any) -> PassOutput:
    ctx = PassContext(view=view, vocabulary=vocab, now=NOW, settings=validate_settings(name, settings))
    return PASSES[name].run(ctx)


def ids(output: PassOutput | ScanResult, name: str | None = None) -> list[str]:
    changes = output.changes if isinstance(output, PassOutput) else output.plan.changes
    return [c.record_id for c in changes if name is None or c.pass_name == name]


def scan(
    view: FrameView, vocab: Vocabulary, passes: Sequence[str], *,
    settings: Mapping[str, Mapping[str, Any]] | None = None, recent_days: int = 30,
    protect_ids: Sequence[str] = (),
) -> ScanResult:
    return scan_snapshot(
        view, vocabulary=vocab, passes=passes, pass_settings=settings or {}, protect_recent_days=recent_days,
        protect_objects=(), protect_ids=protect_ids, max_changes=None, max_changes_per_object=None,
        allow_over_cap=False, connection="test", config_digest="sha256:test", now=NOW,
    )


def recheck(change: Change, vocab: Vocabulary, record: Record, related: Mapping[str, Any] | None = None,
            **settings: Any) -> str | None:
    """The pass's live re-check of `change` against a live record (and related rows)."""
    spec = PASSES[change.pass_name]
    assert spec.live_check is not None
    live = LiveRows(record=record, related=related or {}, vocabulary=vocab)
    return spec.live_check.recheck(change, live, validate_settings(change.pass_name, settings), NOW)


def sf_org() -> Org:
    """The Salesforce objects the record passes read, with their real field names (no rows)."""
    people = {"Name": S, "Email": S, "Phone": S, "MobilePhone": S, "EmailBouncedDate": T, "EmailBouncedReason": S,
              "HasOptedOutOfEmail": B, "LastModifiedDate": T}
    org = Org(SF)
    org.object("Contact", {**people, "AccountId": S})
    org.object("Lead", {**people, "IsConverted": B, "Company": S})
    org.object("Opportunity", {"Name": S, "StageName": S, "IsClosed": B, "CloseDate": D, "AccountId": S})
    org.object("OpportunityContactRole", {"ContactId": S, "OpportunityId": S})
    org.object("Case", {"ContactId": S, "AccountId": S, "IsClosed": B, "Status": S})
    org.object("Account", {"Name": S})
    org.object("User", {"Name": S, "Username": S, "IsActive": B, "LastLoginDate": T}, deletable=False)
    org.object("Task", {"OwnerId": S, "WhatId": S, "IsClosed": B, "Status": S, "ActivityDate": D, "Subject": S})
    org.object("Campaign", {"Name": S, "IsActive": B, "Status": S, "EndDate": D})
    for obj in ("Contract", "Order", "Quote", "Invoice"):
        org.object(obj, {"AccountId": S})
    return org


def hs_org() -> Org:
    """The HubSpot objects and association links the record passes read (no rows)."""
    org = Org(HS)
    org.object("contacts", {"firstname": S, "lastname": S, "email": S, "phone": S, "mobilephone": S,
                            "hs_email_hard_bounce_reason_enum": S, "hs_email_hard_bounce_reason": S,
                            "hs_email_bad_address": B})
    org.object("companies", {"name": S, "domain": S})
    org.object("deals", {"dealname": S, "dealstage": S, "pipeline": S, "closedate": T, "hs_is_closed": B})
    org.object("tickets", {"subject": S, "hs_pipeline_stage": S})
    org.object("owners", {"firstName": S, "lastName": S, "email": S, "active": B})
    org.object("tasks", {"hubspot_owner_id": S, "hs_task_status": S, "hs_timestamp": T, "hs_task_subject": S})
    org.object("campaigns", {"hs_name": S, "hs_end_date": D, "hs_campaign_status": S})
    for link in ("companies_to_contacts", "companies_to_deals", "companies_to_tickets", "contacts_to_deals",
                 "contacts_to_tickets"):
        org.link(link)
    return org
