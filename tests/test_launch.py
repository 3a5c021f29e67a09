"""The `crmsweep` command's start (crmsweep/launch.py): its process settings made before Arrow loads, an
admin's own left as they are."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from crmsweep import launch


def test_the_settings_are_made_unless_the_environment_has_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str | None] = []
    monkeypatch.setattr("crmsweep.cli.main", lambda: seen.append(os.environ.get("MIMALLOC_PURGE_DELAY")))
    monkeypatch.delenv("MIMALLOC_PURGE_DELAY", raising=False)
    launch.main()
    monkeypatch.setenv("MIMALLOC_PURGE_DELAY", "5")
    launch.main()
    assert seen == ["1000", "5"]


def test_arrow_is_not_loaded_before_the_settings_are_made() -> None:
    # mimalloc reads its options once, as Arrow loads: an import that loaded it here would void them.
    done = subprocess.run([sys.executable, "-c", "import sys, crmsweep.launch; print('pyarrow' in sys.modules)"],
                          capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_the_command_runs_through_it() -> None:
    done = subprocess.run([sys.executable, "-m", "crmsweep", "--version"], capture_output=True, text=True,
                          check=True)
    assert done.stdout.startswith("crmsweep ")
