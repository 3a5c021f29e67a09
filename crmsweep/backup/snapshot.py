"""Snapshots: one backup of a CRM as a folder of Parquet files, describe JSON and a manifest written last.

The public face of the snapshot modules; callers import from here:
`take_snapshot` (snapshot_writer), `open_snapshot` / `list_snapshots` / `latest_snapshot`,
`unfinished_snapshots` and `SnapshotReader` (snapshot_reader), `Unfinished` (snapshot_layout),
`verify_snapshot` and `VerifyReport` (snapshot_verify).
"""

from __future__ import annotations

from crmsweep.backup.snapshot_layout import Unfinished
from crmsweep.backup.snapshot_reader import (
    SnapshotReader,
    latest_snapshot,
    list_snapshots,
    open_snapshot,
    unfinished_snapshots,
)
from crmsweep.backup.snapshot_verify import VerifyReport, verify_snapshot
from crmsweep.backup.snapshot_writer import Progress, take_snapshot

__all__ = [
    "Progress",
    "SnapshotReader",
    "Unfinished",
    "VerifyReport",
    "latest_snapshot",
    "list_snapshots",
    "open_snapshot",
    "take_snapshot",
    "unfinished_snapshots",
    "verify_snapshot",
]
