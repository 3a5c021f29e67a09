"""Hand-built snapshots under a real provider's vocabulary, and the calls pass tests make on them.

A pass test builds a `FrameView` with the shapes the sandbox seeders write (the common brief's snapshot
shapes), runs one pass (`run_one`) or the whole scan with protections (`scan`), and checks the exact ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from crmsweep.cleanup.passes import PASSES, LiveRows, PassContext, PassOutput, validate_settings
from crmsweep.cleanup.provenance import scan_plan_problems
from crmsweep.cleanup.scan import ScanResult, scan_snapshot
from crmsweep.cleanup.view import FrameView
from crmsweep.model import Change, FieldKind, FieldSpec, Plan, Record, SnapshotManifest, Vocabulary
from crmsweep.providers.hubspot import HUBSPOT_VOCABULARY
from crmsweep.providers.salesforce import SALESFORCE_VOCABULARY
from tests.fake_connector import spec, standard_fields

NOW = datetime(2026, 3, 15, 12, 0, tzinfo=UTC)
# The cleanup objects' labels as the Salesforce entry names them once those objects are merged in (sfdata).
SF = replace(SALESFORCE_VOCABULARY, label_fields={
    **SALESFORCE_VOCABULARY.label_fields, "EmailTemplate": ("Name",), "Report": ("Name",), "Dashboard": ("Title",),
    "ContentDocument": ("Title",)})
# The asset objects' labels as the HubSpot entry names them once its asset objects are merged in.
HS = replace(HUBSPOT_VOCABULARY, label_fields={
    **HUBSPOT_VOCABULARY.label_fields, "marketing_emails": ("name", "subject"), "lists": ("name",)})
OLD = "2020-01-01T00:00:00.000Z"  # created long ago: no protection for age


def std(vocab: Vocabulary, *extra: FieldSpec) -> list[FieldSpec]:
    return standard_fields(*extra, vocabulary=vocab)


def fields(*names: str | tuple[str, FieldKind]) -> list[FieldSpec]:
    return [spec(n) if isinstance(n, str) else spec(n[0], n[1]) for n in names]


def manifest(vocab: Vocabulary) -> SnapshotManifest:
    return SnapshotManifest(
        snapshot_id="20260315T120000Z-abc123", connection=f"sandbox-{vocab.provider}", provider=vocab.provider,
        org_id="ORG", api_version="59.0", tool_version="0.1.0", started="2026-03-15T11:00:00.000Z",
        finished="2026-03-15T11:05:00.000Z", objects={},
    )


def view(
    vocab: Vocabulary, specs: Mapping[str, Sequence[FieldSpec]], records: Mapping[str, Sequence[Record]]
) -> FrameView:
    return FrameView(manifest(vocab), specs, records, id_field=vocab.id_field)


def audit(vocab: Vocabulary, n: int, created: str = OLD) -> Record:
    """The created date and audit stamps of record number `n` (fingerprints differ per record)."""
    stamps: Record = {name: "2026-01-02T03:04:05.000Z" for name in vocab.audit_fields}
    stamps[vocab.fingerprint_field] = f"2026-01-{n % 28 + 1:02d}T08:00:00.{n % 1000:03d}Z"
    stamps[vocab.created_field] = created
    return stamps


def run_one(name: str, frame_view: FrameView, vocab: Vocabulary, **settings: Any) -> PassOutput:
    ctx = PassContext(view=frame_view, vocabulary=vocab, now=NOW, settings=validate_settings(name, settings))
    return PASSES[name].run(ctx)


def scan(frame_view: FrameView, vocab: Vocabulary, passes: Sequence[str], *, recent_days: int = 30,
         protect_ids: Sequence[str] = (), protect_objects: Sequence[str] = (),
         **settings: Mapping[str, Any]) -> ScanResult:
    return scan_snapshot(
        frame_view, vocabulary=vocab, passes=list(passes), pass_settings=settings, protect_recent_days=recent_days,
        protect_objects=list(protect_objects), protect_ids=list(protect_ids), max_changes=None,
        max_changes_per_object=None,
        allow_over_cap=False, connection=f"sandbox-{vocab.provider}", config_digest="sha256:test", now=NOW,
        running_user_id=None,
    )


def ids(output: PassOutput | ScanResult, obj: str | None = None) -> list[str]:
    changes = output.plan.changes if isinstance(output, ScanResult) else output.changes
    return [c.record_id for c in changes if obj is None or c.object == obj]


def recheck(change: Change, vocab: Vocabulary, record: Record, related: Mapping[str, Sequence[Record]] | None = None,
            **settings: Any) -> str | None:
    spec_ = PASSES[change.pass_name]
    assert spec_.live_check is not None
    merged = validate_settings(change.pass_name, settings)
    return spec_.live_check.recheck(change, LiveRows(record=record, related=related or {}, vocabulary=vocab), merged,
                                    NOW)


def forged_problems(result: ScanResult, vocab: Vocabulary, forged: Change) -> list[str]:
    """What provenance says of the scan's plan with its first change replaced by `forged`."""
    plan = result.plan
    return scan_plan_problems(Plan(plan.header, (forged, *plan.changes[1:])), vocab)


def with_change(change: Change, **fields_: Any) -> Change:
    return replace(change, **fields_)


def sfid(prefix: str, n: int) -> str:
    """An 18-character id whose 15-character form (the vocabulary's id key) differs per `n`."""
    return f"{prefix}{n:012d}AAA"
