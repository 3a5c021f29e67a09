"""Check a snapshot against its manifest: every file present, unchanged, readable and complete.

Apply trusts a snapshot's before-images only after this passes. A damaged snapshot is a finding, not
an error: the report lists every problem in plain words; only an unknown id raises.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from crmsweep import providers
from crmsweep.backup import snapshot_layers as layers
from crmsweep.backup import snapshot_layout as layout
from crmsweep.backup.snapshot_values import removed_rows
from crmsweep.errors import BadInput
from crmsweep.model import ObjectEntry, PlanFormatError, SnapshotManifest
from crmsweep.paths import Home


@dataclass
class VerifyReport:
    snapshot_id: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    objects: dict[str, int] = field(default_factory=dict)  # object -> rows verified


def _inside(folder: Path, relative: str) -> Path | None:
    """The file a manifest path names, or None if the path would leave the snapshot folder."""
    target = (folder / relative).resolve()
    root = folder.resolve()
    return target if target.is_relative_to(root) and target != root else None


def _check_hash(folder: Path, relative: str, expected: str, what: str) -> tuple[Path | None, list[str]]:
    path = _inside(folder, relative)
    if path is None:
        return None, [f"{what} {relative} points outside the snapshot folder"]
    if not path.is_file():
        return None, [f"{what} {relative} is missing"]
    try:
        actual = layout.sha256_file(path)
    except OSError as exc:
        return None, [f"{what} {relative} cannot be read ({exc.strerror or exc})"]
    if actual != expected:
        return path, [f"{what} {relative} has changed since the backup (its sha256 differs from the manifest)"]
    return path, []


def _check_file(folder: Path, relative: str, sha256: str, rows: int, columns: list[str] | None,
                what: str, flag: str | None = None) -> tuple[pa.Table | None, list[str]]:
    """Hash, row count and columns of one Parquet file, and a table of its id column (the one its metadata
    names; None if it has none, or the file cannot be read) then its `flag` column, where it has one."""
    path, problems = _check_hash(folder, relative, sha256, what)
    if path is None:
        return None, problems
    try:
        with pq.ParquetFile(path) as handle:
            held = handle.metadata.num_rows
            names = list(handle.schema_arrow.names)
            id_field = layers.id_field_of(handle.schema_arrow)
            wanted = [id_field, *([flag] if flag and flag in names and flag != id_field else [])]
            ids = handle.read(columns=wanted) if id_field in names else None
    except (OSError, pa.ArrowException) as exc:
        return None, [*problems, f"{what} {relative} is not a readable Parquet file ({exc})"]
    if held != rows:
        problems.append(f"{what} {relative} holds {held} rows, the manifest says {rows}")
    if columns is not None and names != columns:
        problems.append(f"{what} {relative} has other columns than the manifest lists")
    return ids, problems


def _removed_problems(entry: ObjectEntry, found: int, flag: str | None) -> list[str]:
    # An older manifest did not count them, or no deleted field is known to count by: nothing to hold
    # the file to.
    if flag is None or entry.removed_rows is None or entry.removed_rows == found:
        return []
    return [f"{entry.name} holds {found} removed rows (deleted or archived), the manifest says {entry.removed_rows}"]


def _check_object(folder: Path, entry: ObjectEntry, flag: str | None) -> tuple[int | None, list[str]]:
    """The rows `entry` reads as, once its files match the manifest (None if not); the problems found.
    `flag`: the provider's deleted field, whose set rows the manifest counts as removed."""
    columns = [spec.name for spec in entry.fields]
    layer = entry.layer
    if layer is None:
        held, problems = _check_file(folder, entry.file, entry.sha256, entry.rows, columns,
                                     f"data file of {entry.name}", flag)
        if held is not None and not problems:
            problems = _removed_problems(entry, removed_rows(held, flag), flag)
        return (entry.rows if not problems else None), problems
    changed, problems = _check_file(folder, entry.file, entry.sha256, layer.changed, columns,
                                    f"changed rows of {entry.name}", flag)
    deleted, found = _check_file(folder, layer.deleted_file, layer.deleted_sha256, layer.deleted, None,
                                 f"deleted ids of {entry.name}")
    problems += found
    # The chain: the base's file, as it was when this snapshot was taken.
    base_folder = folder.parent / layer.base_snapshot
    if not layout.is_safe_name(layer.base_snapshot) or not base_folder.is_dir():
        problems.append(
            f"{entry.name} reads through base snapshot {layer.base_snapshot!r}, which is gone (deleted or "
            "moved): this snapshot cannot be read or restored from; take a full backup")
        return None, problems
    base, found = _check_file(base_folder, layer.base_file, layer.base_sha256, layer.base_rows, columns,
                              f"{entry.name}'s base (snapshot {layer.base_snapshot})", flag)
    if found:
        found.append(f"{entry.name} reads through base snapshot {layer.base_snapshot!r}, which is damaged: "
                     "this snapshot cannot be trusted either")
    problems += found
    if problems or changed is None or deleted is None or base is None:
        return None, problems or [f"{entry.name}'s files have no id column"]
    id_field = base.schema.names[0]  # _check_file reads the id column first
    deleted_ids = deleted.column(0).combine_chunks()
    rows = layers.layered_rows(base.column(0).combine_chunks(), changed.column(0).combine_chunks(), deleted_ids)
    if rows != entry.rows:
        return None, [f"{entry.name} reads as {rows} rows, the manifest says {entry.rows}"]
    found = _removed_problems(entry, layers.layered_removed(base, changed, deleted_ids, id_field, flag), flag)
    return (None, found) if found else (rows, [])


def _files_on_disk(folder: Path) -> set[str]:
    found: set[str] = set()
    for directory, _, files in os.walk(folder):
        for name in files:
            found.add((Path(directory) / name).relative_to(folder).as_posix())
    return found


def _check_manifest(folder: Path, snapshot_id: str, manifest: SnapshotManifest) -> VerifyReport:
    problems: list[str] = []
    objects: dict[str, int] = {}
    if manifest.snapshot_id != snapshot_id:
        problems.append(f"the manifest names snapshot {manifest.snapshot_id!r}, but its folder is {snapshot_id!r}")
    try:
        flag = providers.get(manifest.provider).vocabulary.deleted_field
    except BadInput:  # a provider this crmsweep does not know: its files are checked, not its removed counts
        flag = None
    for entry in manifest.objects.values():
        rows, found = _check_object(folder, entry, flag)
        problems.extend(found)
        if rows is not None:
            objects[entry.name] = rows
    for relative, expected in manifest.metadata.items():
        problems.extend(_check_hash(folder, relative, expected, "metadata file")[1])
    listed = {layout.MANIFEST_NAME, *manifest.metadata, *(e.file for e in manifest.objects.values()),
              *(e.layer.deleted_file for e in manifest.objects.values() if e.layer is not None)}
    for extra in sorted(_files_on_disk(folder) - listed):
        problems.append(f"unexpected file {extra} (not listed in the manifest)")
    return VerifyReport(snapshot_id=snapshot_id, ok=not problems, problems=problems, objects=objects)


def verify_snapshot(home: Home, snapshot_id: str) -> VerifyReport:
    """Recompute hashes and row counts; BadInput only if no snapshot folder has this id."""
    folder = layout.snapshot_folder(home.snapshots_dir, snapshot_id)
    try:
        manifest = layout.read_manifest(folder)
    except FileNotFoundError:
        problem = f"{layout.MANIFEST_NAME} is missing: the backup did not finish, so this is no usable snapshot"
        return VerifyReport(snapshot_id=snapshot_id, ok=False, problems=[problem])
    except (OSError, UnicodeDecodeError, PlanFormatError) as exc:
        problem = f"{layout.MANIFEST_NAME} cannot be read ({exc})"
        return VerifyReport(snapshot_id=snapshot_id, ok=False, problems=[problem])
    return _check_manifest(folder, snapshot_id, manifest)
