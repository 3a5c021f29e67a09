"""A killed backup leaves no personal data behind for long: the next backup of that connection removes
its partial folder, and `snapshots list --unfinished` shows what is still there.

The backup is killed for real (SIGKILL from inside the first Parquet write, so no cleanup code runs),
through the CLI against the built-in sandbox.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from crmsweep.backup import snapshot_layout as layout

CRMSWEEP = Path(sys.executable).parent / "crmsweep"
CONNECTION = "sandbox-salesforce"

# Runs the real CLI in a process that kills itself with SIGKILL once the first rows reach disk.
KILLED_BACKUP = """
import os, signal, sys
import pyarrow.parquet as pq
from crmsweep.cli import main

write_table = pq.ParquetWriter.write_table  # every row group goes through it

def write_then_die(self, *args, **kwargs):
    write_table(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)

pq.ParquetWriter.write_table = write_then_die
sys.argv = ["crmsweep", *sys.argv[1:]]
main()
"""


def crmsweep(home: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CRMSWEEP), *args, "--home", str(home), "--config", str(config)],
                          capture_output=True, text=True, timeout=120, check=False)


def unfinished(home: Path, config: Path) -> dict[str, str]:
    done = crmsweep(home, config, "snapshots", "list", "--unfinished", "--json")
    assert done.returncode == 0, done.stderr
    return {entry["snapshot"]: entry["status"] for entry in json.loads(done.stdout)}


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    config = tmp_path / "crmsweep.toml"
    config.write_text("[sandbox]\nrecords = 40\nseed = 2\n", encoding="utf-8")
    yield tmp_path / "home", config


def test_killed_backup_is_listed_then_removed_by_the_next_backup(setup: tuple[Path, Path]) -> None:
    home, config = setup
    killed = subprocess.run(
        [sys.executable, "-c", KILLED_BACKUP, "backup", "-c", CONNECTION, "--home", str(home), "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    snapshots = home / "snapshots"
    left = [p for p in snapshots.iterdir() if p.name.endswith(".partial")]
    assert len(left) == 1 and any((left[0] / "data").iterdir()), "the kill should leave a partial folder with data"
    dead_id = left[0].name[1:-len(".partial")]

    # What must survive the next backup: a backup still running (it holds its folder's lock), a dead
    # backup of another connection, and folders crmsweep did not name.
    running = snapshots / f".{CONNECTION}-20990101T000000Z.partial"
    other = snapshots / ".prod-20200101T000000Z.partial"
    not_ours = snapshots / f".{CONNECTION}-notes.partial"
    outside = home.parent / "outside"
    linked = snapshots / f".{CONNECTION}-20200101T000000Z.partial"
    for folder in (running, other, not_ours, outside):
        folder.mkdir()
        (folder / "keep").write_text("x", encoding="utf-8")
    linked.symlink_to(outside)

    with layout.locked_dir(running):
        assert unfinished(home, config) == {
            dead_id: "abandoned",
            f"{CONNECTION}-20990101T000000Z": "running",
            "prod-20200101T000000Z": "abandoned",
        }
        listed = crmsweep(home, config, "snapshots", "list")
        assert listed.returncode == 0 and "2 abandoned backup(s)" in listed.stderr

        done = crmsweep(home, config, "backup", "-c", CONNECTION, "--json")
        assert done.returncode == 0, done.stderr

        assert not left[0].exists()
        for folder in (running, other, not_ours, outside):
            assert (folder / "keep").is_file(), folder
        assert linked.is_symlink()
        assert unfinished(home, config) == {
            f"{CONNECTION}-20990101T000000Z": "running",
            "prod-20200101T000000Z": "abandoned",
        }
    # Once its holder is gone, the "running" one is abandoned and goes with the next backup.
    assert crmsweep(home, config, "backup", "-c", CONNECTION).returncode == 0
    assert not running.exists()
    assert unfinished(home, config) == {"prod-20200101T000000Z": "abandoned"}
    finished = crmsweep(home, config, "snapshots", "list", "--json")
    assert len(json.loads(finished.stdout)) == 2


def test_a_claimed_partial_folder_is_locked_before_anyone_can_remove_it(tmp_path: Path) -> None:
    """While a backup runs, its partial folder's lock is held: a cleaner in another process sees it
    as running. (The claim itself happens under the snapshots folder's lock, which the cleaner takes too.)"""
    snapshots = tmp_path / "snapshots"
    snapshots.mkdir()
    partial = snapshots / f".{CONNECTION}-20240101T000000Z.partial"
    partial.mkdir()
    probe = f"""
import sys
from pathlib import Path
from crmsweep.backup import snapshot_layout as layout
with layout.locked_dir(Path(sys.argv[1])):
    print(layout.remove_abandoned(Path(sys.argv[1]), "{CONNECTION}"))
"""
    with layout.locked_dir(partial):
        held = subprocess.run([sys.executable, "-c", probe, str(snapshots)], capture_output=True, text=True,
                              check=True, timeout=60)
        assert held.stdout.strip() == "[]" and partial.is_dir()
    freed = subprocess.run([sys.executable, "-c", probe, str(snapshots)], capture_output=True, text=True,
                           check=True, timeout=60)
    assert freed.stdout.strip() == f"['{CONNECTION}-20240101T000000Z']" and not partial.exists()
    assert os.listdir(snapshots) == []
