"""Every folder crmsweep creates is 0700 whatever the umask, and a home it cannot vouch for is refused.

The umask is process-wide, so each case runs the real CLI in a subprocess that sets it first.
Refusals of odd homes (symlink, another user's, a file, /dev/null...) are rows of test_bad_inputs.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

# Sets the umask, then runs the CLI with the remaining arguments.
UNDER_UMASK = """
import os, sys
os.umask(int(sys.argv[1], 8))
from crmsweep.cli import main
sys.argv = ["crmsweep", *sys.argv[2:]]
main()
"""


def run_under_umask(umask: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CRMSWEEP_HOME", "CRMSWEEP_CONFIG")}
    done = subprocess.run([sys.executable, "-c", UNDER_UMASK, f"{umask:o}", *args], env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    return done


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "crmsweep.toml"
    path.write_text("[sandbox]\nrecords = 40\nseed = 4\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("umask", [0o000, 0o022])
def test_home_and_every_missing_parent_are_0700(tmp_path: Path, config: Path, umask: int) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o755)
    home = shared / "a" / "b"
    run_under_umask(umask, "runs", "list", "--home", str(home), "--config", str(config))
    assert mode(shared / "a") == mode(home) == mode(home / "runs") == 0o700
    assert mode(shared) == 0o755, "a folder that was there before is not crmsweep's to change"


def test_backup_scan_and_plan_folders_are_0700_under_umask_000(tmp_path: Path, config: Path) -> None:
    home = tmp_path / "home"
    plan = tmp_path / "plans" / "spring" / "plan.json"
    run_under_umask(0o000, "scan", "-c", "sandbox-salesforce", "-o", str(plan), "--home", str(home),
                    "--config", str(config))
    created = [home, tmp_path / "plans", plan.parent]
    for root, dirs, _files in os.walk(home):
        created += [Path(root) / d for d in dirs]
    assert len(created) > 8
    assert {str(p): oct(mode(p)) for p in created if mode(p) != 0o700} == {}
    assert mode(plan) == 0o600


def test_an_earlier_homes_loose_mode_is_tightened_but_a_shared_folder_is_not(tmp_path: Path, config: Path) -> None:
    old_home = tmp_path / "old"
    (old_home / "runs").mkdir(parents=True)
    os.chmod(old_home, 0o755)
    os.chmod(old_home / "runs", 0o755)
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "notes.txt").write_text("mine", encoding="utf-8")
    os.chmod(mixed, 0o755)
    for home in (old_home, mixed):
        run_under_umask(0o022, "runs", "list", "--home", str(home), "--config", str(config))
    assert mode(old_home) == mode(old_home / "runs") == 0o700
    assert mode(mixed) == 0o755 and mode(mixed / "runs") == 0o700


def test_a_run_or_snapshot_folder_planted_as_a_link_is_refused_not_followed(tmp_path: Path, config: Path) -> None:
    """Someone who can write into the home swaps a run (or snapshot) folder for a link to a folder of
    theirs: crmsweep must not read a plan from there, nor append to a log there."""
    from typer.testing import CliRunner

    from crmsweep.cli import app

    runner = CliRunner()
    home = tmp_path / "home"
    common = ["--home", str(home), "--config", str(config)]
    plan = tmp_path / "plan.json"
    assert runner.invoke(app, ["scan", "-c", "sandbox-salesforce", "-o", str(plan), *common]).exit_code == 0
    applied = runner.invoke(app, ["apply", str(plan), "--yes", "--json", *common])
    assert applied.exit_code == 0, applied.stderr
    run_id = json.loads(applied.stdout)["run"]
    [snapshot] = [p for p in (home / "snapshots").iterdir() if not p.name.startswith(".")]

    elsewhere = tmp_path / "elsewhere"
    for folder in (home / "runs" / run_id, snapshot):
        target = elsewhere / folder.name
        target.parent.mkdir(exist_ok=True)
        folder.rename(target)
        folder.symlink_to(target)
    log_before = (elsewhere / run_id / "log.jsonl").read_bytes()

    rollback = runner.invoke(app, ["rollback", run_id, "--yes", *common])
    verify = runner.invoke(app, ["snapshots", "verify", snapshot.name, *common])
    listed = runner.invoke(app, ["runs", "list", "--json", *common])

    assert rollback.exit_code == 3 and "symbolic link" in rollback.stderr
    assert verify.exit_code == 3 and "symbolic link" in verify.stderr
    assert (elsewhere / run_id / "log.jsonl").read_bytes() == log_before
    assert listed.exit_code == 0
    assert [r["status"] for r in json.loads(listed.stdout) if r["run"] == run_id] == ["damaged"]
