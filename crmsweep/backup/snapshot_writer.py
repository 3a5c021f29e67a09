"""Take a snapshot: stream every object from the connector to Parquet, one page at a time.

Everything is written into a hidden `.<id>.partial/` folder; the manifest goes in last, and only
then is the folder renamed into place. Any failure (Ctrl-C included) removes the partial folder, so
a snapshot either exists whole or not at all. A backup killed outright cannot clean up after itself:
the next backup of the same connection removes what it left (never a partial folder a running
backup still holds: see `snapshot_layout`).

Objects are read concurrently (a bounded pool, where the connector's capabilities allow it), so a backup
costs about its slowest object, not the sum; the first failure stops the others at their next page and
fails the whole snapshot. Links are read after every object, from the live ids the objects gave.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import crmsweep
from crmsweep.backup import snapshot_layout as layout
from crmsweep.backup.snapshot_values import (
    arrow_schema,
    canonical_value,
    page_to_batch,
    removed_rows,
    text_batch_to_batch,
)
from crmsweep.connectors.base import Connector
from crmsweep.errors import BadInput
from crmsweep.model import (
    ASSOCIATION_FROM_FIELD,
    ASSOCIATION_TO_FIELD,
    ASSOCIATION_TYPES_FIELD,
    FieldKind,
    FieldSpec,
    ObjectEntry,
    ReadPlan,
    Record,
    SnapshotManifest,
    association_object,
    canonical_datetime,
    canonical_json,
)
from crmsweep.paths import Home, fsync_dir, open_private_file, write_private_file

Progress = Callable[[str, int, bool], None]  # (object, rows so far, object finished)
# A progress callable may also have `planned(object, rows or None, method)`, told each object's expected
# rows before any is read (totals and an ETA); it is called from the backup's worker threads.
DEFAULT_WORKERS = 4

_ID_TIME_FORMAT = "%Y%m%dT%H%M%SZ"
ROW_GROUP_ROWS = 10_000  # rows per Parquet row group: see _RowGroups


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _checked_objects(objects: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(objects))
    if not unique:
        raise BadInput("no objects to back up: name at least one object")
    bad = [name for name in unique if not layout.is_safe_name(name)]
    if bad:
        raise BadInput(f"cannot back up objects named {bad}: object names are letters, digits, '_', '.' or '-'")
    return unique


def _claim_partial(snapshots_dir: Path, connection: str, started: datetime) -> tuple[str, Path]:
    """A fresh snapshot id and its partial folder, created atomically so two backups never share one.
    The caller holds the snapshots folder's lock and locks the partial folder before releasing it."""
    if not layout.is_safe_name(connection):
        raise BadInput(
            f"connection name {connection!r} cannot name a snapshot folder: "
            "rename the connection using letters, digits, '_', '.' or '-'"
        )
    base = f"{connection}-{started.strftime(_ID_TIME_FORMAT)}"
    for n in range(1, 1000):
        snapshot_id = base if n == 1 else f"{base}-{n}"
        partial = layout.partial_dir(snapshots_dir, snapshot_id)
        if (snapshots_dir / snapshot_id).exists():
            continue
        try:
            partial.mkdir(mode=layout.DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(partial, layout.DIR_MODE)
        return snapshot_id, partial
    raise BadInput(f"too many snapshots named {base}-N under {snapshots_dir}: remove old ones and retry")


@contextlib.contextmanager
def _claimed(snapshots_dir: Path, connection: str, started: datetime) -> Iterator[tuple[str, Path]]:
    """A new partial folder, locked for as long as the backup runs; what dead backups of this
    connection left is removed first."""
    with contextlib.ExitStack() as holding:
        with layout.locked_dir(snapshots_dir):
            layout.remove_abandoned(snapshots_dir, connection)
            snapshot_id, partial = _claim_partial(snapshots_dir, connection, started)
            holding.enter_context(layout.locked_dir(partial))
        yield snapshot_id, partial


@dataclass
class _ObjectResult:
    entry: ObjectEntry
    describe_path: str
    describe_sha256: str


def _write_describe(folder: Path, object_name: str, describe: dict[str, Any]) -> tuple[str, str]:
    relative = layout.describe_file(object_name)
    path = folder / relative
    # ASCII escapes: a describe is metadata nobody reads raw, and a stray surrogate must not stop a backup.
    text = json.dumps(describe, indent=2, sort_keys=True, ensure_ascii=True) + "\n"
    write_private_file(path, text.encode("utf-8"))
    return relative, layout.sha256_file(path)


def _later(current: str | None, candidate: str | None) -> str | None:
    # Canonical datetimes have a fixed width, so text order is time order.
    if candidate is None:
        return current
    return candidate if current is None or candidate > current else current


class _Stopped(Exception):
    """Another object of the backup failed: this one stops at its next page."""


def _write_object(connector: Connector, folder: Path, object_name: str, progress: Progress | None,
                  live_ids: list[str] | None = None, stop: threading.Event | None = None) -> _ObjectResult:
    """One object's data file and describe. `live_ids`, when given, receives the ids of its live records
    (the links a backup reads next start from them). `stop`, once set, ends it at the next page."""
    specs: list[FieldSpec] = list(connector.fields(object_name))
    describe = connector.describe(object_name)
    # Kept under the CRM's own spelling (`--object contact` is Contact): passes look objects up by it.
    object_name = str(describe.get("name") or object_name)
    describe_path, describe_sha = _write_describe(folder, object_name, describe)
    vocabulary = connector.vocabulary
    # Where deleted records cannot be undeleted (an archive with no restore API), the snapshot is their only copy.
    include_deleted = not connector.capabilities.undeletes(object_name)
    deleted_field = vocabulary.deleted_field
    names = [s.name for s in specs]
    id_field = vocabulary.id_field if vocabulary.id_field in names else None
    fingerprint = next((s for s in specs if s.name == vocabulary.fingerprint_field), None)
    schema = arrow_schema(specs, id_field=id_field)

    relative = layout.data_file(object_name)
    path = folder / relative
    rows = 0
    removed = 0  # of `rows`: the deleted/archived records read because the CRM cannot bring them back
    watermark: str | None = None
    with os.fdopen(open_private_file(path), "wb") as handle:
        with pq.ParquetWriter(handle, schema, compression="zstd") as parquet, _RowGroups(parquet) as writer:
            for page in _pages(connector, object_name, names, include_deleted):
                if stop is not None and stop.is_set():
                    raise _Stopped
                if not len(page):
                    continue
                # Pages are converted as they come; at most one row group's worth is held (_RowGroups).
                if isinstance(page, pa.RecordBatch):
                    batch = text_batch_to_batch(object_name, specs, schema, page, id_field=vocabulary.id_field)
                else:
                    batch = page_to_batch(object_name, specs, schema, page, id_field=vocabulary.id_field)
                if live_ids is not None:
                    live_ids.extend(_live_ids(batch, vocabulary.id_field, deleted_field))
                writer.write_batch(batch)
                rows += batch.num_rows
                removed += removed_rows(batch, deleted_field)
                if fingerprint is not None:
                    top = pc.max(batch.column(fingerprint.name)).as_py()
                    watermark = _later(watermark, _as_text(canonical_value(fingerprint.kind, top)))
                if progress is not None:
                    progress(object_name, rows, False)
        handle.flush()
        os.fsync(handle.fileno())
    if progress is not None:
        progress(object_name, rows, True)
    entry = ObjectEntry(
        name=object_name,
        rows=rows,
        file=relative,
        sha256=layout.sha256_file(path),
        fields=tuple(specs),
        watermark=watermark,
        removed_rows=removed,
    )
    return _ObjectResult(entry, describe_path, describe_sha)


def _pages(connector: Connector, object_name: str, names: Sequence[str],
           include_deleted: bool) -> Iterator[pa.RecordBatch | list[Record]]:
    """The object's rows: as batches of text columns where the connector reads them so (a Bulk job's CSV:
    optional method `iter_text_batches`, None where that read is not columnar), else as record pages."""
    columnar = getattr(connector, "iter_text_batches", None)
    batches: Iterator[pa.RecordBatch] | None = (
        columnar(object_name, names, include_deleted=include_deleted) if columnar is not None else None)
    if batches is not None:
        return batches
    return connector.iter_pages(object_name, names, include_deleted=include_deleted)


def _live_ids(batch: pa.RecordBatch, id_field: str, deleted_field: str | None) -> list[str]:
    """The ids of the batch's records that are not in the recycle bin (no deleted flag set)."""
    ids = batch.column(id_field).to_pylist()
    if not deleted_field or deleted_field not in batch.schema.names:
        return [str(i) for i in ids]
    flags = batch.column(deleted_field).to_pylist()
    return [str(i) for i, deleted in zip(ids, flags, strict=True) if not deleted]


_LINK_FIELDS = (
    FieldSpec(name=ASSOCIATION_FROM_FIELD, kind=FieldKind.STRING, provider_type="object_id", nillable=False),
    FieldSpec(name=ASSOCIATION_TO_FIELD, kind=FieldKind.STRING, provider_type="object_id", nillable=False),
    # The link's types (labels among them) as the connector read them, as JSON text: a re-link writes them
    # back, and the file's sha256 in the manifest covers them as it covers the ends.
    FieldSpec(name=ASSOCIATION_TYPES_FIELD, kind=FieldKind.STRING, provider_type="link_types", nillable=True),
)
LINK_BATCH = 1000  # from-ids per read_association_types call (the connector batches under its own limit)


def link_pairs(connector: Connector, names: Sequence[str]) -> list[tuple[str, str]]:
    """The pairs of backed-up objects whose links are kept: each pair once, in backup order."""
    if not connector.capabilities.has_associations:
        return []
    linked = [n for n in names if n in connector.capabilities.association_objects]
    return [(a, b) for i, a in enumerate(linked) for b in linked[i + 1 :]]


class _RowGroups:
    """Batches gathered into row groups of about `ROW_GROUP_ROWS`. A row group per page (as few as 100 rows
    on some CRMs) would make the footer the writer holds until close (statistics per column per group)
    grow with the org: at 100k contacts that was +65 MiB of peak RSS. Written out on a clean exit only;
    on an error the partial snapshot is removed anyway."""

    def __init__(self, writer: pq.ParquetWriter) -> None:
        self._writer = writer
        self._batches: list[pa.RecordBatch] = []
        self._rows = 0

    def write_batch(self, batch: pa.RecordBatch) -> None:
        self._batches.append(batch)
        self._rows += batch.num_rows
        if self._rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._batches:
            self._writer.write_table(pa.Table.from_batches(self._batches), row_group_size=self._rows)
            self._batches, self._rows = [], 0

    def __enter__(self) -> _RowGroups:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self._flush()


def _write_links(connector: Connector, folder: Path, source: str, target: str, ids: Sequence[str],
                 progress: Progress | None) -> ObjectEntry:
    """The links from `source` records to `target` records, as the pseudo-object
    `association_object(source, target)` with one row per link, so a re-created record can be re-linked."""
    name = association_object(source, target)
    schema = arrow_schema(list(_LINK_FIELDS), id_field=None)
    relative = layout.data_file(name)
    path = folder / relative
    rows = 0
    with os.fdopen(open_private_file(path), "wb") as handle:
        with pq.ParquetWriter(handle, schema, compression="zstd") as parquet, _RowGroups(parquet) as writer:
            for start in range(0, len(ids), LINK_BATCH):
                links = connector.read_association_types(source, target, ids[start : start + LINK_BATCH])
                page = [{ASSOCIATION_FROM_FIELD: frm, ASSOCIATION_TO_FIELD: to,
                         ASSOCIATION_TYPES_FIELD: canonical_json(types) if types else None}
                        for frm, targets in links.items() for to, types in targets.items()]
                if page:
                    writer.write_batch(page_to_batch(name, list(_LINK_FIELDS), schema, page,
                                                    id_field=ASSOCIATION_FROM_FIELD))
                    rows += len(page)
                if progress is not None:
                    progress(name, rows, False)
        handle.flush()
        os.fsync(handle.fileno())
    if progress is not None:
        progress(name, rows, True)
    # Links are read from live records only: none of them is removed.
    return ObjectEntry(name=name, rows=rows, file=relative, sha256=layout.sha256_file(path), fields=_LINK_FIELDS,
                       removed_rows=0)


def _plan(connector: Connector, name: str) -> ReadPlan | None:
    # Shim until every connector has `read_plan` (the API budget stream adds the others).
    planner = getattr(connector, "read_plan", None)
    return planner(name) if planner is not None else None


def _write_objects(connector: Connector, folder: Path, names: Sequence[str], progress: Progress | None,
                   live: dict[str, list[str]], workers: int) -> list[_ObjectResult]:
    """Every object's files, up to `workers` at once; results in `names` order. The first failure sets
    `stop` (the others end at their next page) and is raised once all have ended: no thread outlives
    the partial folder it writes into."""
    if workers <= 1 or len(names) <= 1 or not connector.capabilities.concurrent_reads:
        return [_write_object(connector, folder, name, progress, live.get(name)) for name in names]
    stop = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(min(workers, len(names)), thread_name_prefix="backup") as pool:
        futures = [pool.submit(_write_object, connector, folder, name, progress, live.get(name), stop)
                   for name in names]
        original: BaseException | None = None
        try:
            done, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_EXCEPTION)
            # What went wrong first, not what the others said as they were stopped.
            original = next((f.exception() for f in futures if f in done and f.exception() is not None), None)
        finally:  # a failure, or Ctrl-C in this thread: the others stop and are waited for
            if not all(f.done() and f.exception() is None for f in futures):
                stop.set()
                for future in futures:
                    future.cancel()
                # A connector whose reads wait on the CRM (a Bulk job being polled) stops them too.
                cancel = getattr(connector, "cancel_reads", None)
                if cancel is not None:
                    cancel()
            concurrent.futures.wait(futures)
    failures = [f.exception() for f in futures if not f.cancelled() and f.exception() is not None]
    first = original or next((e for e in failures if not isinstance(e, _Stopped)), failures[0] if failures else None)
    if first is not None:
        raise first
    return [f.result() for f in futures]


def _write_documents(connector: Connector, folder: Path) -> dict[str, str]:
    """The connector's metadata documents as metadata/<name>.json; their paths and sha256."""
    written: dict[str, str] = {}
    for name, document in connector.metadata_documents():
        if not layout.is_safe_name(name) or "." in name:
            raise ValueError(f"metadata document name {name!r} cannot name a file")
        relative = f"{layout.METADATA_DIR}/{name}.json"
        if relative in written:
            raise ValueError(f"metadata document {name!r} given twice")
        text = json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n"
        write_private_file(folder / relative, text.encode("utf-8"))
        written[relative] = layout.sha256_file(folder / relative)
    return written


def _as_text(value: Any) -> str | None:
    return None if value is None else str(value)


def _write_manifest(folder: Path, manifest: SnapshotManifest) -> None:
    text = json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False) + "\n"
    temporary = folder / (layout.MANIFEST_NAME + ".tmp")
    write_private_file(temporary, text.encode("utf-8"))
    os.replace(temporary, folder / layout.MANIFEST_NAME)
    fsync_dir(folder)


def take_snapshot(
    connector: Connector,
    home: Home,
    *,
    objects: Sequence[str],
    progress: Progress | None = None,
    clock: Callable[[], datetime] = _utc_now,
    calls_before: int | None = None,
    workers: int = DEFAULT_WORKERS,
) -> SnapshotManifest:
    """Back up `objects` into a new snapshot under `home.snapshots_dir`; returns its manifest.

    `calls_before` is the connector's call count when the backup began, where the caller already spent
    calls on it (choosing which objects the CRM has): the manifest counts those too. `workers` bounds
    how many objects are read at once (1: one after the other)."""
    names = _checked_objects(objects)
    started = _as_utc(clock())
    if calls_before is None:
        calls_before = connector.api_usage().calls
    org_id = connector.org_id()
    crm_started = crm_clock(connector, started)
    api_version = connector.api_version()
    for name in names:
        connector.fields(name)  # an unknown object fails here, before any folder exists
    planned = getattr(progress, "planned", None)
    for name in names:
        plan = _plan(connector, name)  # the path (REST or Bulk) is chosen here, from one count
        if planned is not None:
            planned(name, plan.rows if plan else None, plan.method if plan else "")
    snapshots_dir = home.snapshots_dir
    with _claimed(snapshots_dir, connector.connection_name, started) as (snapshot_id, partial):
        try:
            for sub in (layout.DATA_DIR, layout.METADATA_DIR, layout.DESCRIBE_DIR):
                layout.make_private_dir(partial / sub)
            pairs = link_pairs(connector, names)
            live: dict[str, list[str]] = {n: [] for pair in pairs for n in pair}
            results = _write_objects(connector, partial, names, progress, live, workers)
            # No live record on either side, no link to read: an empty table costs no call.
            links = [_write_links(connector, partial, a, b, live[a] if live[b] else [], progress) for a, b in pairs]
            manifest = finish_snapshot(connector, partial, snapshots_dir / snapshot_id, results, links,
                                       org_id=org_id, api_version=api_version, started=started,
                                       finished=_as_utc(clock()), calls_before=calls_before,
                                       crm_started=crm_started)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    return manifest


def crm_clock(connector: Connector, started: datetime) -> datetime | None:
    """The CRM's time as its last answer said (connectors that can tell: `server_time`), if that answer
    is recent (within an hour of `started`, by either clock): a long-lived connector's old answer says
    nothing of now."""
    told = getattr(connector, "server_time", None)
    moment = told() if callable(told) else None
    if not isinstance(moment, datetime) or abs((moment - started).total_seconds()) > 3600:
        return None
    return moment.astimezone(UTC)


def finish_snapshot(
    connector: Connector,
    partial: Path,
    final: Path,
    results: Sequence[_ObjectResult],
    links: Sequence[ObjectEntry],
    *,
    org_id: str,
    api_version: str,
    started: datetime,
    finished: datetime,
    calls_before: int,
    parent: str | None = None,
    notes: Mapping[str, str] | None = None,
    crm_started: datetime | None = None,
) -> SnapshotManifest:
    """The last steps of a backup (full or incremental), in the order that makes it crash-safe: the
    metadata documents, every folder fsynced, the manifest written last, then the partial folder renamed
    to `final` (rename(2) refuses a non-empty target, so a concurrent snapshot of the same id is never
    clobbered)."""
    documents = _write_documents(connector, partial)
    for sub in (layout.DATA_DIR, layout.DELETED_DIR, layout.DESCRIBE_DIR, layout.METADATA_DIR):
        if (partial / sub).is_dir():
            fsync_dir(partial / sub)
    extra: dict[str, Any] = {} if parent is None else {"parent": parent, "notes": dict(notes or {})}
    if crm_started is not None:
        extra["crm_started"] = _canonical(crm_started)
    manifest = SnapshotManifest(
        snapshot_id=final.name,
        connection=connector.connection_name,
        provider=connector.provider,
        org_id=org_id,
        api_version=api_version,
        tool_version=crmsweep.__version__,
        started=_canonical(started),
        finished=_canonical(finished),
        objects={**{r.entry.name: r.entry for r in results}, **{e.name: e for e in links}},
        metadata={**{r.describe_path: r.describe_sha256 for r in results}, **documents},
        api_calls=connector.api_usage().calls - calls_before,
        **extra,
    )
    _write_manifest(partial, manifest)
    os.rename(partial, final)
    fsync_dir(final.parent)
    return manifest


def _canonical(moment: datetime) -> str:
    text = canonical_datetime(moment)
    assert text is not None
    return text
