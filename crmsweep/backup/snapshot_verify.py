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

from crmsweep.backup import snapshot_layout as layout
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


def _check_object(folder: Path, entry: ObjectEntry) -> tuple[int | None, list[str]]:
    path, problems = _check_hash(folder, entry.file, entry.sha256, f"data file of {entry.name}")
    if path is None:
        return None, problems
    try:
        with pq.ParquetFile(path) as handle:
            rows = handle.metadata.num_rows
            columns = list(handle.schema_arrow.names)
    except (OSError, pa.ArrowException) as exc:
        return None, [*problems, f"data file of {entry.name} {entry.file} is not a readable Parquet file ({exc})"]
    if rows != entry.rows:
        problems.append(f"data file of {entry.name} {entry.file} holds {rows} rows, the manifest says {entry.rows}")
    expected_columns = [spec.name for spec in entry.fields]
    if columns != expected_columns:
        problems.append(f"data file of {entry.name} {entry.file} has other columns than the manifest lists")
    return (rows if not problems else None), problems


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
    for entry in manifest.objects.values():
        rows, found = _check_object(folder, entry)
        problems.extend(found)
        if rows is not None:
            objects[entry.name] = rows
    for relative, expected in manifest.metadata.items():
        problems.extend(_check_hash(folder, relative, expected, "metadata file")[1])
    listed = {layout.MANIFEST_NAME, *manifest.metadata, *(e.file for e in manifest.objects.values())}
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
