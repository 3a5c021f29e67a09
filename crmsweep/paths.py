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
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the owner only; tighten it if it already exists."""
    path.mkdir(mode=_PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    # mkdir's mode is filtered by the umask and ignored for folders that already exist.
    os.chmod(path, _PRIVATE_DIR_MODE)
    return path


def open_private_file(path: Path) -> int:
    """A new file (never an existing one) readable by the owner only; returns the descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
    # The mode given to open() is filtered by the umask.
    os.fchmod(fd, PRIVATE_FILE_MODE)
    return fd


def write_private_file(path: Path, data: bytes) -> None:
    """Create `path` (it must not exist) with `data`, owner-only, and fsync it."""
    with os.fdopen(open_private_file(path), "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def replace_private_file(path: Path, data: bytes) -> None:
    """Write `path` atomically: a reader sees the old file or the new one, never half of either."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)
    write_private_file(temporary, data)
    os.replace(temporary, path)
    fsync_dir(path.parent)


def fsync_dir(path: Path) -> None:
    """Make a new or renamed entry in `path` durable (a file's own fsync does not cover its name)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Home:
    root: Path

    @property
    def snapshots_dir(self) -> Path:
        return private_dir(self.root / "snapshots")

    @property
    def runs_dir(self) -> Path:
        return private_dir(self.root / "runs")

    @property
    def keys_dir(self) -> Path:
        """Secrets of this home (the plan-signing key): never copied with a plan or a snapshot."""
        return private_dir(self.root / "keys")

    def sandbox_dir(self, provider: str) -> Path:
        if not provider or "/" in provider or provider.startswith("."):
            raise ValueError(f"not a provider name: {provider!r}")
        return private_dir(self.root / "sandbox" / provider)


def default_home() -> Home:
    """The per-user data folder (e.g. ~/.local/share/crmsweep on Linux)."""
    return Home(Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)))
