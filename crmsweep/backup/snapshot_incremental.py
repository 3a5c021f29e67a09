"""Take an incremental snapshot: only what changed since the last snapshot of the connection.

Per object, the records whose modification stamp is at or after the parent's start less `overlap`
(one query, deleted rows included: a soft delete bumps the stamp) and the ids the CRM lists as
deleted since then (purged from the recycle bin too). The new snapshot layers them on the parent's
base: each layered object names the full data file it reads through and that file's sha256
(`ObjectLayer`), so nothing unchanged is copied and verify checks the whole chain.

Always on the base, never on a chain: a child of an incremental snapshot folds its parent's layer and
the new changes into one new layer over the same base, so reading costs the same two files however
many increments came before. When a layer grows past `COMPACT_FRACTION` of its base, the object is
written out in full instead and becomes the base of the increments after it.

Values the CRM derives from related records without moving the record's stamp (LastActivityDate)
are caught by reading again the records that the relatives changed in the window point at
(`Connector.derived_links`).

An object is read in full, saying why, when the parent lacks it, its fields changed (describe), it has
no modification stamp, or the CRM cannot list its deletes over the window.
"""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from crmsweep.backup import snapshot_layers as layers
from crmsweep.backup import snapshot_layout as layout
from crmsweep.backup.snapshot_reader import list_snapshots
from crmsweep.backup.snapshot_values import arrow_schema, canonical_value, page_to_batch, removed_rows
from crmsweep.backup.snapshot_verify import verify_snapshot
from crmsweep.backup.snapshot_writer import (
    ROW_GROUP_ROWS,
    Progress,
    _as_text,
    _as_utc,
    _canonical,
    _checked_objects,
    _claimed,
    _later,
    _ObjectResult,
    _utc_now,
    _write_describe,
    _write_links,
    _write_object,
    crm_clock,
    finish_snapshot,
    link_pairs,
)
from crmsweep.connectors.base import ChangeLogUnavailable, Connector
from crmsweep.errors import SafetyRefusal
from crmsweep.model import FieldSpec, ObjectEntry, ObjectLayer, Record, SnapshotManifest
from crmsweep.paths import Home, open_private_file

# Read again what changed in the last minutes before the parent began. SystemModstamp is taken when a
# transaction starts, not when it commits, so a long save commits with a stamp older than a read made
# meanwhile; records saved in the same second share a stamp; and this machine's clock (the parent's
# start) may run ahead of the CRM's. Five minutes covers all three with room; re-reading a few
# unchanged rows costs nothing but their bytes.
DEFAULT_OVERLAP = timedelta(minutes=5)
MAX_OVERLAP = timedelta(days=1)
COMPACT_FRACTION = 0.25


@dataclass(frozen=True)
class _Base:
    """What a new layer lays on: a full data file, and the layer already on it (empty for a full parent)."""

    snapshot: str
    file: str
    sha256: str
    rows: int
    path: Path
    changed: pa.Table | None
    deleted: pa.Array


def _fields_changed(before: Sequence[FieldSpec], now: Sequence[FieldSpec]) -> str | None:
    if tuple(before) == tuple(now):
        return None
    old, new = {f.name: f for f in before}, {f.name: f for f in now}
    added = [n for n in new if n not in old]
    removed = [n for n in old if n not in new]
    retyped = [n for n in new if n in old and new[n] != old[n]]
    said = [f"{what} {', '.join(names)}" for what, names in
            (("added", added), ("removed", removed), ("changed", retyped)) if names]
    return "its fields changed since the last snapshot (" + ("; ".join(said) or "order") + ")"


def _base_of(snapshots_dir: Path, parent: SnapshotManifest, entry: ObjectEntry) -> _Base:
    parent_folder = snapshots_dir / parent.snapshot_id
    layer = entry.layer
    if layer is None:
        empty = pa.array([], type=pa.string())
        return _Base(parent.snapshot_id, entry.file, entry.sha256, entry.rows, parent_folder / entry.file, None, empty)
    changed = pq.read_table(parent_folder / entry.file)
    deleted = layers.read_ids(parent_folder / layer.deleted_file)
    return _Base(layer.base_snapshot, layer.base_file, layer.base_sha256, layer.base_rows,
                 snapshots_dir / layer.base_snapshot / layer.base_file, changed, deleted)


def _write_table(path: Path, table: pa.Table) -> str:
    with os.fdopen(open_private_file(path), "wb") as handle:
        pq.write_table(table, handle, compression="zstd", row_group_size=ROW_GROUP_ROWS)
        handle.flush()
        os.fsync(handle.fileno())
    return layout.sha256_file(path)


@dataclass
class _Derived:
    """Records whose values the CRM recomputes from relatives without moving their fingerprint (a
    contact's LastActivityDate after a task is logged): the ids the relatives changed in the window
    point at, per object, to be read again with that object's changes."""

    touched: dict[str, set[str]]

    def note(self, connector: Connector, object_name: str, records: Sequence[Record]) -> None:
        for link, targets in connector.derived_links(object_name).items():
            found = {str(r[link]) for r in records if r.get(link)}
            for target in targets:
                self.touched.setdefault(target, set()).update(found)


def _layered_object(connector: Connector, folder: Path, snapshots_dir: Path, object_name: str,
                    specs: list[FieldSpec], parent: SnapshotManifest, entry: ObjectEntry, since: datetime,
                    progress: Progress | None, derived: _Derived) -> tuple[ObjectEntry, str]:
    """The object's changes since `since` laid on the parent's base; ChangeLogUnavailable to read it in full."""
    vocabulary = connector.vocabulary
    id_field = vocabulary.id_field
    deleted_field = vocabulary.deleted_field
    keeps_deleted = not connector.capabilities.undeletes(object_name)
    # Deletes first, then changes: a record deleted and then restored between the two reads shows as
    # changed (live), which it is; one deleted after the read of changes is caught by the next backup.
    gone = set(connector.deleted_since(object_name, since))
    schema = arrow_schema(specs, id_field=id_field)
    names = [s.name for s in specs]
    batches: list[pa.RecordBatch] = []
    watermark = entry.watermark
    fingerprint = vocabulary.fingerprint_field
    kind = next(s.kind for s in specs if s.name == fingerprint)
    rows = 0
    for page in connector.iter_pages(object_name, names, since=_canonical(since), include_deleted=True):
        derived.note(connector, object_name, page)
        live: list[Record] = []
        for record in page:
            if keeps_deleted or not (deleted_field and record.get(deleted_field)):
                live.append(record)
            else:
                gone.add(str(record[id_field]))
        if live:
            batch = page_to_batch(object_name, specs, schema, live, id_field=id_field)
            batches.append(batch)
            watermark = _later(watermark, _as_text(canonical_value(kind, pc.max(batch.column(fingerprint)).as_py())))
            rows += batch.num_rows
        if progress is not None:
            progress(object_name, rows, False)
    seen = {str(i) for b in batches for i in b.column(id_field).to_pylist()}
    again = sorted(derived.touched.get(object_name, set()) - seen - gone)
    if again:
        found = list(connector.read(object_name, again, names, include_deleted=False).values())
        if found:
            batches.append(page_to_batch(object_name, specs, schema, found, id_field=id_field))
    new_changed = pa.Table.from_batches(batches, schema=schema)
    new_ids = new_changed.column(id_field).combine_chunks()
    new_deleted = pa.array(sorted(gone - set(new_ids.to_pylist())), type=pa.string())

    base = _base_of(snapshots_dir, parent, entry)
    prior = base.changed if base.changed is not None else new_changed.slice(0, 0)
    changed = layers.overlay(prior.cast(schema), new_changed, new_deleted, id_field)
    changed_ids = changed.column(id_field).combine_chunks()
    flagged = [deleted_field] if deleted_field and deleted_field in pq.read_schema(base.path).names else []
    base_table = pq.read_table(base.path, columns=[id_field, *flagged])
    base_ids = base_table.column(id_field).combine_chunks()
    # Only ids the base holds need leaving out; the rest are simply not among the changed rows.
    deleted = pa.concat_arrays([base.deleted, new_deleted]).unique()
    deleted = deleted.filter(pc.and_(pc.is_in(deleted, value_set=base_ids),
                                     pc.invert(pc.is_in(deleted, value_set=changed_ids))))
    total = layers.layered_rows(base_ids, changed_ids, deleted)
    relative = layout.data_file(object_name)
    note = f"changes since {_canonical(since)}: {new_changed.num_rows:,} changed, {len(new_deleted):,} deleted"
    if changed.num_rows + len(deleted) > COMPACT_FRACTION * max(base.rows, 1):
        full = layers.overlay(pq.read_table(base.path).cast(schema), changed, deleted, id_field)
        sha = _write_table(folder / relative, full)
        result = ObjectEntry(object_name, full.num_rows, relative, sha, tuple(specs), watermark,
                             removed_rows=removed_rows(full, deleted_field))
        if progress is not None:
            progress(object_name, full.num_rows, True)
        return result, note + f"; written in full (the changes since {base.snapshot} passed a quarter of it)"
    deleted_relative = layout.deleted_file(object_name)
    layer = ObjectLayer(
        base_snapshot=base.snapshot, base_file=base.file, base_sha256=base.sha256, base_rows=base.rows,
        changed=changed.num_rows, deleted_file=deleted_relative,
        deleted_sha256=_write_table(folder / deleted_relative, layers.deleted_table(deleted, id_field)),
        deleted=len(deleted),
    )
    sha = _write_table(folder / relative, changed)
    if progress is not None:
        progress(object_name, total, True)
    removed = layers.layered_removed(base_table, changed, deleted, id_field, deleted_field)
    return ObjectEntry(object_name, total, relative, sha, tuple(specs), watermark, layer, removed), note


def _full_reason(connector: Connector, specs: Sequence[FieldSpec], entry: ObjectEntry | None) -> str | None:
    vocabulary = connector.vocabulary
    names = {s.name for s in specs}
    if entry is None:
        return "not in the last snapshot"
    if vocabulary.fingerprint_field not in names or vocabulary.id_field not in names:
        return f"it has no {vocabulary.fingerprint_field} to tell what changed"
    return _fields_changed(entry.fields, specs)


def find_parent(home: Home, connection: str, org_id: str) -> SnapshotManifest | None:
    """The latest snapshot of `connection` taken of this org, verified (a new layer reads through its
    files); None when there is none. A damaged one is a refusal: laying changes on it would hide
    the damage in a snapshot that looks new."""
    found = [m for m in list_snapshots(home, connection) if m.org_id == org_id]
    if not found:
        return None
    parent = found[-1]
    report = verify_snapshot(home, parent.snapshot_id)
    if not report.ok:
        raise SafetyRefusal(
            f"the last snapshot of '{connection}', {parent.snapshot_id}, fails verification ({report.problems[0]}): "
            f"an incremental backup would read through it; `crmsweep snapshots verify {parent.snapshot_id}` "
            f"lists the problems; run `crmsweep backup -c {shlex.quote(connection)}` (without --incremental) for a "
            "full one")
    return parent


def _window_start(parent: SnapshotManifest) -> datetime:
    """When the parent began: by this machine's clock, or by the CRM's where it told and is earlier (red
    team: a parent taken under a clock minutes fast put the window after changes made just after it)."""
    began = datetime.fromisoformat(parent.started.replace("Z", "+00:00")).astimezone(UTC)
    if parent.crm_started:
        crm = datetime.fromisoformat(parent.crm_started.replace("Z", "+00:00")).astimezone(UTC)
        # The Date header has whole seconds: a second earlier covers what it rounded away.
        began = min(began, crm - timedelta(seconds=1))
    return began


def take_incremental(
    connector: Connector,
    home: Home,
    parent: SnapshotManifest,
    *,
    objects: Sequence[str],
    overlap: timedelta = DEFAULT_OVERLAP,
    progress: Progress | None = None,
    clock: Callable[[], datetime] = _utc_now,
    calls_before: int | None = None,
) -> SnapshotManifest:
    """Back up what changed in `objects` since `parent` (a verified snapshot of the same connection and
    org) into a new snapshot that reads as a full copy; returns its manifest, whose `notes` say per
    object how it was read."""
    names = _checked_objects(objects)
    started = _as_utc(clock())
    if calls_before is None:
        calls_before = connector.api_usage().calls
    since = _window_start(parent) - overlap
    org_id = connector.org_id()
    crm_started = crm_clock(connector, started)
    api_version = connector.api_version()
    for name in names:
        connector.fields(name)
    snapshots_dir = home.snapshots_dir
    with _claimed(snapshots_dir, connector.connection_name, started) as (snapshot_id, partial):
        try:
            for sub in (layout.DATA_DIR, layout.DELETED_DIR, layout.METADATA_DIR, layout.DESCRIBE_DIR):
                layout.make_private_dir(partial / sub)
            pairs = link_pairs(connector, names)
            live: dict[str, list[str]] = {n: [] for pair in pairs for n in pair}
            results: dict[str, _ObjectResult] = {}
            notes: dict[str, str] = {}
            derived = _Derived({})
            # Objects whose values another object's records set (a task sets its contact's last activity):
            # when that other one is read in full, its changes are not known, so these are read in full too.
            whole: dict[str, str] = {}
            # Objects whose writes move values of others first, so those others are read after them.
            for name in sorted(names, key=lambda n: not connector.derived_links(n)):
                specs = list(connector.fields(name))
                describe = connector.describe(name)
                object_name = str(describe.get("name") or name)
                entry = parent.objects.get(object_name)
                reason = None if name in live else _full_reason(connector, specs, entry)
                reason = reason or whole.get(object_name)
                if reason is None and entry is not None:
                    try:
                        path, sha = _write_describe(partial, object_name, describe)
                        layered, note = _layered_object(connector, partial, snapshots_dir, object_name, specs,
                                                        parent, entry, since, progress, derived)
                        results[name] = _ObjectResult(layered, path, sha)
                        notes[object_name] = note
                        continue
                    except ChangeLogUnavailable as exc:
                        reason = str(exc)
                        for leftover in (layout.describe_file(object_name), layout.data_file(object_name),
                                         layout.deleted_file(object_name)):
                            (partial / leftover).unlink(missing_ok=True)
                results[name] = _write_object(connector, partial, name, progress, live.get(name))
                notes[object_name] = f"in full: {reason or 'its links are read with it'}"
                for targets in connector.derived_links(name).values():
                    for target in targets:
                        whole.setdefault(target, f"{object_name} was read in full, and its records set values of "
                                                 f"{target} records without moving their stamp")
            ordered = [results[name] for name in names]
            links = [_write_links(connector, partial, a, b, live[a] if live[b] else [], progress) for a, b in pairs]
            manifest = finish_snapshot(connector, partial, snapshots_dir / snapshot_id, ordered, links,
                                       org_id=org_id, api_version=api_version, started=started,
                                       finished=_as_utc(clock()), calls_before=calls_before,
                                       parent=parent.snapshot_id, notes=notes, crm_started=crm_started)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    return manifest
