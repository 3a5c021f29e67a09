"""Where crmsweep keeps its files: snapshots, runs and the sandbox's state, under one home folder.

The CLI chooses the root (`--home`, env CRMSWEEP_HOME, else `default_home()`); everything else asks a
`Home` for its folder. Folders hold personal data (backups of CRM records), so they are created 0700.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "crmsweep"
_PRIVATE_DIR_MODE = 0o700


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the owner only; tighten it if it already exists."""
    path.mkdir(mode=_PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    # mkdir's mode is filtered by the umask and ignored for folders that already exist.
    os.chmod(path, _PRIVATE_DIR_MODE)
    return path


@dataclass(frozen=True)
class Home:
    root: Path

    @property
    def snapshots_dir(self) -> Path:
        return private_dir(self.root / "snapshots")

    @property
    def runs_dir(self) -> Path:
        return private_dir(self.root / "runs")

    def sandbox_dir(self, provider: str) -> Path:
        if not provider or "/" in provider or provider.startswith("."):
            raise ValueError(f"not a provider name: {provider!r}")
        return private_dir(self.root / "sandbox" / provider)


def default_home() -> Home:
    """The per-user data folder (e.g. ~/.local/share/crmsweep on Linux)."""
    return Home(Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)))
