"""Where crmsweep keeps its state: snapshots, runs and sandbox state under one home folder.

Snapshots and runs hold personal data, so every folder made here is 0700.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def default_home() -> Path:
    return Path(platformdirs.user_data_dir("crmsweep", appauthor=False))


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the owner only; tighten it if it already exists."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


class Home:
    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def snapshots_dir(self) -> Path:
        return private_dir(self.root / "snapshots")

    @property
    def runs_dir(self) -> Path:
        return private_dir(self.root / "runs")

    def sandbox_dir(self, provider: str) -> Path:
        return private_dir(self.root / "sandbox" / provider)

    def __repr__(self) -> str:
        return f"Home({str(self.root)!r})"
