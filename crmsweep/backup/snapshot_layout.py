"""Where a snapshot's files live, and the small file-system steps every snapshot module shares.

Layout of one snapshot under `home.snapshots_dir`:

    <id>/manifest.json                       written last: no manifest, no snapshot
    <id>/data/<Object>.parquet
    <id>/metadata/describe/<Object>.json
    <id>/deleted/<Object>.parquet            incremental snapshots only: ids deleted since the base
    .<id>.partial/                           the same, while the backup is still running

Snapshots hold personal data: folders are 0700 and files 0600, whatever the umask says.

A running backup holds an exclusive `flock` on its partial folder, so a partial folder nobody holds
was left by a backup that died (kill -9, power cut). Claiming a partial folder and removing dead
ones happen under a lock on the snapshots folder, so a fresh partial folder is never mistaken for a
dead one before its backup locks it.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from crmsweep.errors import BadInput
from crmsweep.model import PlanFormatError, SnapshotManifest
from crmsweep.paths import MAX_NAME_LENGTH, checked_dir

MANIFEST_NAME = "manifest.json"
DATA_DIR = "data"
METADATA_DIR = "metadata"
DESCRIBE_DIR = f"{METADATA_DIR}/describe"
DELETED_DIR = "deleted"  # incremental snapshots: the ids deleted since their base, per object
PARTIAL_SUFFIX = ".partial"

DIR_MODE = 0o700

_HASH_CHUNK = 1 << 20
# Connection and object names become folder and file names: keep them to a portable, inert alphabet.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def is_safe_name(name: str) -> bool:
    return len(name) <= MAX_NAME_LENGTH and bool(_SAFE_NAME.fullmatch(name)) and ".." not in name


def data_file(object_name: str) -> str:
    """The data file's path relative to the snapshot folder (as the manifest records it)."""
    return f"{DATA_DIR}/{object_name}.parquet"


def deleted_file(object_name: str) -> str:
    return f"{DELETED_DIR}/{object_name}.parquet"


def describe_file(object_name: str) -> str:
    return f"{DESCRIBE_DIR}/{object_name}.json"


def partial_dir(snapshots_dir: Path, snapshot_id: str) -> Path:
    return snapshots_dir / f".{snapshot_id}{PARTIAL_SUFFIX}"


# `.<connection>-<UTC time>[-n].partial`: the only names crmsweep gives partial folders.
_PARTIAL_NAME = re.compile(r"\.(?P<connection>.+)-(?P<time>\d{8}T\d{6}Z)(?:-\d+)?" + re.escape(PARTIAL_SUFFIX))


@dataclass(frozen=True)
class Unfinished:
    """A partial folder: a backup still running, or one that died and left (personal) data behind."""

    snapshot_id: str
    connection: str
    path: Path
    running: bool

    @property
    def status(self) -> str:
        return "running" if self.running else "abandoned"


@contextmanager
def locked_dir(path: Path, *, shared: bool = False, wait: bool = True) -> Iterator[bool]:
    """An flock on the folder itself; yields False (holding nothing) if `wait` is off and it is taken.
    The kernel drops it with its holder, so a killed process never leaves a stale lock behind."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _is_own_dir(path: Path) -> bool:
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()


def unfinished(snapshots_dir: Path, connection: str | None = None) -> list[Unfinished]:
    """Partial folders crmsweep made (optionally of one connection), with whether a backup holds them."""
    found: list[Unfinished] = []
    for path in sorted(snapshots_dir.iterdir()):
        match = _PARTIAL_NAME.fullmatch(path.name)
        if match is None or not _is_own_dir(path):
            continue
        if connection is not None and match["connection"] != connection:
            continue
        try:
            with locked_dir(path, shared=True, wait=False) as free:
                running = not free
        except OSError:  # removed meanwhile
            continue
        found.append(Unfinished(path.name[1 : -len(PARTIAL_SUFFIX)], match["connection"], path, running))
    return found


def remove_abandoned(snapshots_dir: Path, connection: str) -> list[str]:
    """Remove the partial folders of `connection` that no running backup holds; their ids.
    The caller holds the snapshots folder's lock, so no backup is between creating and locking one."""
    removed: list[str] = []
    for entry in unfinished(snapshots_dir, connection):
        if entry.running:
            continue
        try:
            with locked_dir(entry.path, wait=False) as free:
                if free:
                    shutil.rmtree(entry.path)
                    removed.append(entry.snapshot_id)
        except FileNotFoundError:
            continue
    return removed


def sha256_file(path: Path) -> str:
    """Same "sha256:<hex>" spelling as `model.sha256_text`; streamed, so large files stay cheap."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def make_private_dir(path: Path) -> Path:
    """One folder, 0700; its parent must exist (so no folder escapes the mode through `parents=True`)."""
    path.mkdir(mode=DIR_MODE, exist_ok=True)
    # mkdir's mode is filtered by the umask.
    os.chmod(path, DIR_MODE)
    return path


def snapshot_folder(snapshots_dir: Path, snapshot_id: str) -> Path:
    """The folder of a finished snapshot, or BadInput naming where we looked and what to do."""
    if not is_safe_name(snapshot_id) or not checked_dir(snapshots_dir / snapshot_id, "snapshot folder"):
        raise BadInput(
            f"snapshot {snapshot_id!r} not found under {snapshots_dir}: "
            "`crmsweep snapshots list` shows the snapshots there"
        )
    return snapshots_dir / snapshot_id


def read_manifest(folder: Path) -> SnapshotManifest:
    """Parse `<folder>/manifest.json`; raises FileNotFoundError, or PlanFormatError if malformed."""
    text = (folder / MANIFEST_NAME).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PlanFormatError(f"manifest is not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict):
        raise PlanFormatError("manifest is not a JSON object")
    return SnapshotManifest.from_dict(data)


def load_manifest(snapshots_dir: Path, snapshot_id: str) -> tuple[Path, SnapshotManifest]:
    """The folder and manifest of a finished snapshot; BadInput for unknown or incomplete ones."""
    folder = snapshot_folder(snapshots_dir, snapshot_id)
    try:
        return folder, read_manifest(folder)
    except FileNotFoundError:
        raise BadInput(
            f"snapshot {snapshot_id!r} under {snapshots_dir} is incomplete (no {MANIFEST_NAME}): "
            "the backup did not finish; take a new one with `crmsweep backup`"
        ) from None
    except (OSError, UnicodeDecodeError, PlanFormatError) as exc:
        raise BadInput(
            f"snapshot {snapshot_id!r} under {snapshots_dir} has an unreadable {MANIFEST_NAME} ({exc}): "
            "take a new backup with `crmsweep backup`"
        ) from exc
